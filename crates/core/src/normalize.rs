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
pub fn normalize(text: &str) -> String {
    let folded = fold(text);
    // Case folding first: matching is case-insensitive, and the skeleton is not
    // (it maps `I` to `l` but keeps `i`). Lower-case again after the skeleton
    // because some prototypes are upper-case letters.
    let lowered = folded.to_lowercase();
    let skel: String = skeleton_string(&lowered).to_lowercase();
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

/// The confusables skeleton of an identifier, case kept: `refund_partiaI` (capital
/// I) and `refund_partial` share one. Used to call out look-alike action names.
pub fn identifier_skeleton(name: &str) -> String {
    skeleton_string(&fold(name))
}

/// Steps 1 and 2: NFKC, then drop default-ignorable code points.
///
/// Performance: NFKC is the identity on text already in NFKC (nearly all real
/// text, and all ASCII), and the quick check proves that in one cheap pass; only
/// text it cannot prove normalised goes through the (costly) normaliser.
fn fold(text: &str) -> String {
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        text.chars().filter(|c| !is_ignorable(*c)).collect()
    } else {
        text.nfkc().filter(|c| !is_ignorable(*c)).collect()
    }
}

/// The UTS #39 skeleton of every ASCII character, computed once by the
/// library's own [`skeleton`] (so it can never drift from it).
fn ascii_skeletons() -> &'static [String; 128] {
    static TABLE: OnceLock<[String; 128]> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            let mut buf = [0u8; 4];
            skeleton(char::from(i as u8).encode_utf8(&mut buf)).collect()
        })
    })
}

/// Exactly `skeleton(s).collect::<String>()`, without its per-character cost
/// on ordinary text.
///
/// `skeleton(s)` is `NFD(prototypes(NFD(s)))`. When `s` is already NFD (the
/// quick check is exact for NFD), every character is its own decomposition, so
/// the inner NFD is the identity and the prototypes can be taken one character
/// at a time: `skeleton(c)` is `NFD(prototype(c))`, and the NFD of a
/// concatenation of NFD pieces equals the NFD of the concatenation of the raw
/// pieces. ASCII characters take their piece from a table; the outer NFD is
/// skipped when the quick check proves the result is already NFD.
fn skeleton_string(s: &str) -> String {
    if is_nfd_quick(s.chars()) != IsNormalized::Yes {
        return skeleton(s).collect();
    }
    let table = ascii_skeletons();
    let mut out = String::with_capacity(s.len() + 8);
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if c.is_ascii() {
            out.push_str(&table[c as usize]);
        } else {
            out.extend(skeleton(c.encode_utf8(&mut buf)));
        }
    }
    if is_nfd_quick(out.chars()) == IsNormalized::Yes { out } else { out.nfd().collect() }
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
        "Ǆ ǅ ǆ İ ı ẞ ß ŉ",
        "refund_partiaI c\u{0430}ncel_pending_order Cancel_Pending_Order",
        "\u{FEFF}\u{2060}\u{E0041}tag\u{FE0F}",
        "x\u{0345}\u{0301} ᾴ ΐ",
    ];

    #[test]
    fn fast_paths_equal_the_reference_on_tricky_text() {
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
