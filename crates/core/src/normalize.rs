//! Text normalisation for pattern matching on untrusted text.
//!
//! Customers (and attackers) write `ＬＡＷＹＥＲ`, `lаwyer` with a Cyrillic `а`,
//! `law\u{200B}yer` with a zero-width space. Escalation signals and reply promise rules are matched on the *normalised* text, and their patterns go
//! through the same function, so both sides meet in one canonical form:
//!
//! 1. NFKC (full-width and compatibility forms fold to plain letters);
//! 2. drop default-ignorable code points (zero-width spaces and joiners, soft hyphens, BOM…);
//! 3. the Unicode confusables *skeleton* (UTS #39), so look-alike letters from other
//!    scripts map to the same prototype;
//! 4. lower-case; every run of non-alphanumeric characters becomes one space.
//!
//! Matching is on word boundaries: the pattern's words must appear consecutively.

use std::sync::OnceLock;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfd_quick, is_nfkc_quick};
use unicode_security::confusable_detection::skeleton;

fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// The canonical form used for matching: words separated by single spaces,
/// with a leading and trailing space so that `" word "` finds whole words.
///
/// Performance (this runs on every customer message of every decision): the
/// steps are applied as written by [`normalize_slow`]; [`normalize_fast`] gets
/// the same result in one pass over ordinary text, and hands back to the slow
/// path whenever its preconditions do not hold. The unit tests below check both
/// against a plain reference implementation.
pub fn normalize(text: &str) -> String {
    let folded = fold(text);
    normalize_fast(&folded).unwrap_or_else(|| normalize_slow(&folded))
}

/// Steps 3 and 4 on folded text, applied one after the other.
fn normalize_slow(folded: &str) -> String {
    // Case folding first: matching is case-insensitive, and the skeleton is not
    // (it maps `I` to `l` but keeps `i`). Lower-case again after the skeleton
    // because some prototypes are upper-case letters.
    let lowered = lowercase(folded.to_string());
    let skel = lowercase(skeleton_string(&lowered));
    let mut out = Collapse::new(skel.len());
    for c in skel.chars() {
        out.push(c);
    }
    out.finish()
}

/// Steps 3 and 4 on folded text in one pass, segment by segment: each ASCII
/// character, and each run of non-ASCII characters between them.
///
/// Why per segment is exact (`None` hands the text to [`normalize_slow`] when a
/// condition does not hold):
/// - lower-casing is per character except for `Σ` (final sigma depends on its
///   neighbours): no `Σ` may occur, before or after the skeleton;
/// - the skeleton is `NFD(prototypes(NFD(s)))`: NFD never composes and only
///   reorders runs of combining marks, which never cross a starter, and every
///   ASCII character is a starter with no decomposition, so the text may be cut
///   next to any ASCII character (see [`skeleton_string`]); and the pieces
///   joined are already NFD when every ASCII piece is non-empty, NFD and made of
///   starters only (checked once on the table), so the outer NFD changes nothing;
/// - collapsing runs of non-alphanumeric characters is a left-to-right scan.
fn normalize_fast(folded: &str) -> Option<String> {
    let table = ascii_table();
    if !table.pieces_are_starters {
        return None;
    }
    let mut out = Collapse::new(folded.len());
    let bytes = folded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if table.word_byte[usize::from(b)] {
            // A stretch of bytes that are letters or digits and their own
            // normalised form: copied whole.
            let start = i;
            i += 1;
            while i < bytes.len() && table.word_byte[usize::from(bytes[i])] {
                i += 1;
            }
            out.push_word(&folded[start..i]);
            continue;
        }
        if b.is_ascii() {
            match table.normalized_byte[usize::from(b)] {
                Some(byte) => out.push_ascii(byte),
                None => {
                    for c in table.normalized[usize::from(b)].chars() {
                        out.push(c);
                    }
                }
            }
            i += 1;
            continue;
        }
        // ASCII bytes never occur inside a multi-byte UTF-8 sequence, so these
        // byte positions are character boundaries.
        let end = bytes[i..].iter().position(u8::is_ascii).map_or(bytes.len(), |p| i + p);
        let run = &folded[i..end];
        if run.contains('\u{03A3}') {
            return None;
        }
        let skel: String = skeleton(&run.to_lowercase()).collect();
        if skel.contains('\u{03A3}') {
            return None;
        }
        for c in skel.to_lowercase().chars() {
            out.push(c);
        }
        i = end;
    }
    Some(out.finish())
}

/// Step 4: every run of non-alphanumeric characters becomes one space, with a
/// space before the first word and after the last.
struct Collapse {
    out: String,
    last_space: bool,
}

impl Collapse {
    fn new(capacity: usize) -> Collapse {
        let mut out = String::with_capacity(capacity + 2);
        out.push(' ');
        Collapse { out, last_space: true }
    }

    #[inline]
    fn push(&mut self, c: char) {
        if c.is_alphanumeric() {
            self.out.push(c);
            self.last_space = false;
        } else if !self.last_space {
            self.out.push(' ');
            self.last_space = true;
        }
    }

    /// `word` is ASCII letters and digits only.
    #[inline]
    fn push_word(&mut self, word: &str) {
        self.out.push_str(word);
        self.last_space = false;
    }

    #[inline]
    fn push_ascii(&mut self, b: u8) {
        if b.is_ascii_alphanumeric() {
            self.out.push(char::from(b));
            self.last_space = false;
        } else if !self.last_space {
            self.out.push(' ');
            self.last_space = true;
        }
    }

    fn finish(mut self) -> String {
        if !self.last_space {
            self.out.push(' ');
        }
        self.out
    }
}

/// The confusables skeleton of an identifier, case kept: `refund_partiaI` (capital
/// I) and `refund_partial` share one. Used to call out look-alike action names.
pub fn identifier_skeleton(name: &str) -> String {
    skeleton_string(&fold(name))
}

/// `s.to_lowercase()`, in place when `s` is ASCII (where the two agree).
fn lowercase(mut s: String) -> String {
    if s.is_ascii() {
        s.make_ascii_lowercase();
        s
    } else {
        s.to_lowercase()
    }
}

/// Steps 1 and 2: NFKC, then drop default-ignorable code points.
///
/// NFKC is the identity on text already in NFKC (nearly all real text, all
/// ASCII), which the quick check proves in one cheap pass; only text it cannot
/// prove normalised goes through the (costly) normaliser.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        // ASCII is NFKC and holds no default-ignorable code point.
        return text.to_string();
    }
    // One pass: ASCII characters are skipped (NFKC, never ignorable, and a
    // starter, which resets the quick check's state); each run of non-ASCII
    // characters is quick-checked on its own (the whole text is proven NFKC
    // exactly when every run is) and its ignorable code points dropped.
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let (mut from, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i].is_ascii() {
            i += 1;
            continue;
        }
        // ASCII bytes never occur inside a multi-byte UTF-8 sequence, so these
        // byte positions are character boundaries.
        let end = bytes[i..].iter().position(u8::is_ascii).map_or(bytes.len(), |p| i + p);
        let run = &text[i..end];
        if is_nfkc_quick(run.chars()) != IsNormalized::Yes {
            return text.nfkc().filter(|c| !is_ignorable(*c)).collect();
        }
        for (j, c) in run.char_indices() {
            if is_ignorable(c) {
                out.push_str(&text[from..i + j]);
                from = i + j + c.len_utf8();
            }
        }
        i = end;
    }
    out.push_str(&text[from..]);
    out
}

/// What the pipeline does to each ASCII character, computed once by the
/// libraries themselves (so it can never drift from them).
struct AsciiTable {
    /// `skeleton(c)`, case kept (for identifiers).
    skeleton: [String; 128],
    /// `skeleton(c)` is `c` itself.
    skeleton_same: [bool; 128],
    /// Steps 3 on `c`: lower-case, skeleton, lower-case.
    normalized: [String; 128],
    /// `normalized[c]` when it is a single ASCII byte.
    normalized_byte: [Option<u8>; 128],
    /// Indexed by any byte: an ASCII letter or digit that is its own normalised
    /// form (`false` for every non-ASCII byte).
    word_byte: [bool; 256],
    /// Every `normalized` piece is non-empty, NFD, made of starters only and
    /// free of `Σ` (the preconditions of [`normalize_fast`]).
    pieces_are_starters: bool,
}

fn ascii_table() -> &'static AsciiTable {
    static TABLE: OnceLock<AsciiTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let skel = |c: char| -> String {
            let mut buf = [0u8; 4];
            skeleton(c.encode_utf8(&mut buf)).collect()
        };
        let chars: [char; 128] = std::array::from_fn(|i| char::from(i as u8));
        let skeleton: [String; 128] = chars.map(skel);
        let skeleton_same = std::array::from_fn(|i| skeleton[i].as_bytes() == [i as u8]);
        let lowered: [String; 128] = chars.map(|c| skel(c.to_ascii_lowercase()));
        let pieces_are_starters = lowered.iter().all(|p| {
            !p.is_empty()
                && is_nfd_quick(p.chars()) == IsNormalized::Yes
                && p.chars().all(|c| canonical_combining_class(c) == 0 && c != '\u{03A3}')
        });
        let normalized: [String; 128] = lowered.map(|p| p.to_lowercase());
        let normalized_byte = std::array::from_fn(|i| match normalized[i].as_bytes() {
            [b] if b.is_ascii() => Some(*b),
            _ => None,
        });
        let word_byte = std::array::from_fn(|i| {
            i < 128 && (i as u8).is_ascii_alphanumeric() && normalized_byte[i] == Some(i as u8)
        });
        AsciiTable { skeleton, skeleton_same, normalized, normalized_byte, word_byte, pieces_are_starters }
    })
}

/// Exactly `skeleton(s).collect::<String>()`, without its per-character cost
/// on ordinary text.
///
/// `skeleton(s)` is `NFD(prototypes(NFD(s)))`, prototypes taken per character.
/// NFD never composes and only reorders runs of combining marks, which never
/// cross a starter; every ASCII character is a starter with no decomposition.
/// So cutting `s` before and after every ASCII character splits the inner NFD
/// exactly: `skeleton(s) = NFD(concat(skeleton(segment)))`, and the NFD of a
/// concatenation of NFD pieces equals the NFD of the concatenation of the raw
/// pieces. ASCII segments take their skeleton from a table computed by the
/// library itself, non-ASCII runs go through it; the outer NFD is skipped when
/// the quick check (exact for NFD) proves the result already is NFD.
fn skeleton_string(s: &str) -> String {
    let table = ascii_table();
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while !rest.is_empty() {
        // ASCII bytes never occur inside a multi-byte UTF-8 sequence, so these
        // byte positions are character boundaries.
        let ascii = rest.bytes().position(|b| !b.is_ascii()).unwrap_or(rest.len());
        // Copy stretches of characters that are their own skeleton whole.
        let run = &rest[..ascii];
        let mut from = 0;
        for (i, b) in run.bytes().enumerate() {
            if !table.skeleton_same[usize::from(b)] {
                out.push_str(&run[from..i]);
                out.push_str(&table.skeleton[usize::from(b)]);
                from = i + 1;
            }
        }
        out.push_str(&run[from..]);
        rest = &rest[ascii..];
        let run = rest.bytes().position(|b| b.is_ascii()).unwrap_or(rest.len());
        out.extend(skeleton(&rest[..run]));
        rest = &rest[run..];
    }
    if out.is_ascii() || is_nfd_quick(out.chars()) == IsNormalized::Yes { out } else { out.nfd().collect() }
}

/// A phrase pattern, pre-normalised. Matches when its words occur consecutively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phrase {
    original: String,
    normalized: String,
}

impl Phrase {
    /// `None` if the phrase normalises to nothing (it could never match).
    pub fn new(original: &str) -> Option<Phrase> {
        let normalized = normalize(original);
        if normalized.trim().is_empty() { None } else { Some(Phrase { original: original.to_string(), normalized }) }
    }

    pub fn original(&self) -> &str {
        &self.original
    }

    /// The normalised form searched for (words between single spaces, with a
    /// leading and trailing space).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// Does the already-normalised `text` contain this phrase on word boundaries?
    pub fn is_in(&self, normalized_text: &str) -> bool {
        normalized_text.contains(&self.normalized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The straightforward pipeline the fast paths must reproduce exactly.
    fn reference_normalize(text: &str) -> String {
        let folded: String = text.nfkc().filter(|c| !is_ignorable(*c)).collect();
        let lowered = folded.to_lowercase();
        let skel: String = skeleton(&lowered).collect::<String>().to_lowercase();
        let mut out = String::with_capacity(skel.len() + 2);
        out.push(' ');
        let mut last_space = true;
        for c in skel.chars() {
            if c.is_alphanumeric() {
                out.push(c);
                last_space = false;
            } else if !last_space {
                out.push(' ');
                last_space = true;
            }
        }
        if !last_space {
            out.push(' ');
        }
        out
    }

    fn reference_identifier_skeleton(name: &str) -> String {
        let folded: String = name.nfkc().filter(|c| !is_ignorable(*c)).collect();
        skeleton(&folded).collect()
    }

    const TRICKY: &[&str] = &[
        "",
        "plain ascii, with punctuation! and 0123456789 `~|@#$%^&*()_+-=[]{};':\",<>/?",
        "Every ASCII: \u{0}\u{1f} \x7f",
        "I will call my LAWYER",
        "my ＬＡＷＹＥＲ will hear of this",
        "my l\u{0430}wyer",
        "my law\u{200B}yer and law\u{00AD}yer!",
        "Café déjà vu — “quotes” ‘single’ … 🙂👍🏽",
        "e\u{0301} a\u{0308}\u{0323} o\u{0323}\u{0308} q\u{0307}\u{0323}",
        "\u{1100}\u{1161}\u{11A8} 한국어 ㄱㅏ",
        "ΟΔΥΣΣΕΥΣ ΣΑΣ σΣς Σ aΣ Σa",
        "ﬁ ﬀ ² ½ Ⅻ ㎏ ℌ ℍ ℻ ｶﾀｶﾅ",
        "rn m vv w cl d 0O 1lI| ǀ ˋ`",
        "Ǆ ǅ ǆ İ ı ẞ ß ŉ \u{212A}elvin \u{2211}um a\u{2211}b ΑΣa aΣ, Σ",
        "ΑΣ",
        "word ΑΣ word",
        "\u{0301}leading mark, trailing mark a\u{0301}",
        "refund_partiaI c\u{0430}ncel_pending_order Cancel_Pending_Order",
        "\u{FEFF}\u{2060}\u{E0041}tag\u{FE0F}",
        "x\u{0345}\u{0301} ᾴ ΐ",
    ];

    #[test]
    fn fast_paths_equal_the_reference_on_tricky_text() {
        assert!(ascii_table().pieces_are_starters, "the one-pass path would never be taken");
        for t in TRICKY {
            assert_eq!(normalize(t), reference_normalize(t), "normalize({t:?})");
            assert_eq!(identifier_skeleton(t), reference_identifier_skeleton(t), "identifier_skeleton({t:?})");
        }
        for i in 0u8..128 {
            let t = char::from(i).to_string();
            assert_eq!(normalize(&t), reference_normalize(&t), "normalize({t:?})");
            let t = format!("a{t}\u{0301}b{t}");
            assert_eq!(normalize(&t), reference_normalize(&t), "normalize({t:?})");
        }
    }

    /// Text built from pieces that stress normalisation: ASCII, combining marks
    /// (in and out of canonical order), Hangul, compatibility forms, confusables,
    /// Greek sigma, ignorables, astral characters.
    fn stress_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[ -~]{0,6}",
            Just("\u{0301}".to_string()),
            Just("\u{0323}".to_string()),
            Just("\u{0308}".to_string()),
            Just("\u{0345}".to_string()),
            Just("\u{1100}\u{1161}".to_string()),
            Just("\u{11A8}".to_string()),
            Just("한".to_string()),
            Just("Σ".to_string()),
            Just("ς".to_string()),
            Just("ﬁ".to_string()),
            Just("Ａ".to_string()),
            Just("\u{0430}".to_string()),
            Just("\u{200B}".to_string()),
            Just("\u{00AD}".to_string()),
            Just("İ".to_string()),
            Just("\u{212A}".to_string()),
            Just("\u{2211}".to_string()),
            Just("ΑΣ".to_string()),
            Just("ǅ".to_string()),
            Just("—".to_string()),
            Just("🙂".to_string()),
            any::<char>().prop_map(|c| c.to_string()),
        ];
        prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn normalize_equals_the_reference(t in stress_text()) {
            prop_assert_eq!(normalize(&t), reference_normalize(&t));
            prop_assert_eq!(identifier_skeleton(&t), reference_identifier_skeleton(&t));
        }

        #[test]
        fn normalize_equals_the_reference_on_any_string(t in any::<String>()) {
            prop_assert_eq!(normalize(&t), reference_normalize(&t));
            prop_assert_eq!(identifier_skeleton(&t), reference_identifier_skeleton(&t));
        }
    }

    #[test]
    fn folds_tricks_to_the_same_form() {
        let p = Phrase::new("lawyer").expect("non-empty");
        for text in [
            "I will call my LAWYER",
            "my ＬＡＷＹＥＲ will hear of this",
            "my l\u{0430}wyer",   // Cyrillic a
            "my law\u{200B}yer",  // zero-width space
            "my law\u{00AD}yer!", // soft hyphen
        ] {
            assert!(p.is_in(&normalize(text)), "{text:?} should match 'lawyer'");
        }
        assert!(!p.is_in(&normalize("lawyers-to-be")), "word boundary: lawyers is another word");
        assert!(!p.is_in(&normalize("flawyer")), "must not match inside a word");
    }
}
