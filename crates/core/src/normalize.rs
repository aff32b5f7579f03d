//! Text normalisation for pattern matching on untrusted text.
//!
//! Customers (and attackers) write `ＬＡＷＹＥＲ`, `lаwyer` with a Cyrillic `а`,
//! `law\u{200B}yer` with a zero-width space, `lawyér`. Escalation signals and reply
//! promise rules are matched on the *normalised* text; phrase patterns go through
//! the same function, so both sides meet in one form:
//!
//! 1. NFKC (full-width and compatibility forms fold to plain letters);
//! 2. drop default-ignorable code points (zero-width spaces and joiners, soft hyphens, BOM…);
//! 3. lower-case;
//! 4. every non-ASCII character that is a look-alike of an ASCII letter or digit
//!    (UTS #39 confusables) becomes that letter; combining marks are dropped
//!    (`é` → `e`). ASCII itself is left as written: mapping ASCII to confusable
//!    prototypes would turn `m` into `rn` and make regexes unwritable;
//! 5. every run of non-alphanumeric characters becomes one space, with a space
//!    before the first word and after the last.
//!
//! Matching is on word boundaries: a phrase's words must appear consecutively.
//! Regexes see the normalised text, so they are written in lower case with single
//! spaces (`my wife's order` reads `my wife s order`).

use std::collections::HashMap;
use std::sync::OnceLock;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};
use unicode_security::confusable_detection::skeleton;

fn is_ignorable(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0000}'..='\u{E0FFF}')
}

/// Steps 1 and 2. NFKC is the identity on ASCII and on nearly all real text; the
/// quick check proves it in one pass, so only text it cannot prove goes through
/// the normaliser.
fn fold(text: &str) -> String {
    if text.is_ascii() {
        return text.to_string();
    }
    if is_nfkc_quick(text.chars()) == IsNormalized::Yes {
        text.chars().filter(|c| !is_ignorable(*c)).collect()
    } else {
        text.nfkc().filter(|c| !is_ignorable(*c)).collect()
    }
}

/// The confusables prototype of each ASCII letter and digit, mapped back to it:
/// a non-ASCII character whose prototype is one of these imitates that character.
fn ascii_lookalikes() -> &'static HashMap<String, char> {
    static MAP: OnceLock<HashMap<String, char>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = HashMap::new();
        // Digits first, so that where a digit and a letter share a prototype
        // (`1` and `l`), the letter wins.
        for c in ('0'..='9').chain('a'..='z') {
            let proto: String = skeleton(&c.to_string()).collect();
            map.insert(proto, c);
        }
        map
    })
}

/// The ASCII letter or digit a non-ASCII character imitates, if any.
fn lookalike(c: char) -> Option<char> {
    let proto: String = skeleton(&c.to_string()).collect();
    ascii_lookalikes().get(&proto).copied()
}

/// Step 4 for one lower-cased non-ASCII character.
fn push_non_ascii(c: char, out: &mut Collapse) {
    if let Some(ascii) = lookalike(c) {
        out.push(ascii);
        return;
    }
    // Otherwise its base characters without combining marks (`ὕ` → `υ`), each
    // mapped again (`υ` imitates `u`), so normalising twice changes nothing.
    for d in c.nfd().filter(|d| canonical_combining_class(*d) == 0) {
        match d {
            d if d.is_ascii() => out.push(d.to_ascii_lowercase()),
            d => out.push(lookalike(d).unwrap_or(d)),
        }
    }
}

/// The canonical form used for matching: words separated by single spaces, with a
/// leading and trailing space so that `" word "` finds whole words.
pub fn normalize(text: &str) -> String {
    let folded = fold(text);
    let mut out = Collapse::new(folded.len());
    let bytes = folded.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_alphanumeric() {
            // A run of ASCII letters and digits is copied whole, lower-cased.
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            out.push_ascii_word(&folded[start..i]);
        } else if b.is_ascii() {
            out.push(' ');
            i += 1;
        } else {
            // `i` is on a character boundary: ASCII bytes never occur inside a
            // multi-byte sequence, and we only stop after whole characters.
            let Some(c) = folded[i..].chars().next() else { break };
            i += c.len_utf8();
            for lower in c.to_lowercase() {
                push_non_ascii(lower, &mut out);
            }
        }
    }
    out.finish()
}

/// Step 5: every run of non-alphanumeric characters becomes one space.
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

    fn push(&mut self, c: char) {
        if c.is_alphanumeric() {
            self.out.push(c);
            self.last_space = false;
        } else if !self.last_space {
            self.out.push(' ');
            self.last_space = true;
        }
    }

    /// A run of ASCII letters and digits, lower-cased.
    fn push_ascii_word(&mut self, word: &str) {
        let start = self.out.len();
        self.out.push_str(word);
        self.out[start..].make_ascii_lowercase();
        self.last_space = false;
    }

    fn finish(mut self) -> String {
        if !self.last_space {
            self.out.push(' ');
        }
        self.out
    }
}

/// The full confusables skeleton of an identifier, case kept: `refund_partiaI`
/// (capital I) and `refund_partial` share one. Used to call out look-alike action
/// names, where ASCII look-alikes are exactly the trick.
pub fn identifier_skeleton(name: &str) -> String {
    let folded = fold(name);
    if folded.is_ascii() {
        // ASCII characters are starters without decompositions, so the skeleton of
        // ASCII text is the concatenation of each character's (from a table built
        // once by the library itself).
        let table = ascii_skeletons();
        folded.bytes().map(|b| table[usize::from(b)].as_str()).collect()
    } else {
        skeleton(&folded).collect()
    }
}

fn ascii_skeletons() -> &'static [String; 128] {
    static TABLE: OnceLock<[String; 128]> = OnceLock::new();
    TABLE.get_or_init(|| std::array::from_fn(|i| skeleton(&char::from(i as u8).to_string()).collect()))
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

    #[test]
    fn folds_tricks_to_the_same_form() {
        let p = Phrase::new("lawyer").expect("non-empty");
        for text in [
            "I will call my LAWYER",
            "my ＬＡＷＹＥＲ will hear of this",
            "my l\u{0430}wyer",   // Cyrillic a
            "my law\u{200B}yer",  // zero-width space
            "my law\u{00AD}yer!", // soft hyphen
            "my lawy\u{0435}r",   // Cyrillic e
            "my lawyér",          // accent
            "my l\u{0251}wyer",   // Latin alpha
        ] {
            assert!(p.is_in(&normalize(text)), "{text:?} should match 'lawyer': {:?}", normalize(text));
        }
        assert!(!p.is_in(&normalize("lawyers-to-be")), "word boundary: lawyers is another word");
        assert!(!p.is_in(&normalize("flawyer")), "must not match inside a word");
    }

    #[test]
    fn ascii_is_kept_as_written() {
        assert_eq!(normalize("Burn my MOM's order, NOW!"), " burn my mom s order now ");
        assert_eq!(normalize("rn m 0O 1lI"), " rn m 0o 1li ");
        assert_eq!(normalize(""), " ");
        assert_eq!(normalize("  --  "), " ");
    }

    #[test]
    fn regexes_can_be_written_against_plain_words() {
        let re = regex::Regex::new(r"\b(mom|mother) s (order|account)\b").expect("regex");
        for text in ["Can you cancel my mom's order?", "my MOM’S ORDER", "my m\u{043E}m's order"] {
            assert!(re.is_match(&normalize(text)), "{text:?} → {:?}", normalize(text));
        }
    }

    #[test]
    fn the_ascii_skeleton_table_agrees_with_the_library() {
        for name in ["refund_partiaI", "cancel_pending_order", "rn_m_0O_1lI|", "Get-Order Details 42"] {
            assert_eq!(identifier_skeleton(name), skeleton(name).collect::<String>(), "{name}");
        }
    }

    #[test]
    fn identifiers_keep_ascii_lookalikes_distinct_but_equal_in_skeleton() {
        assert_eq!(identifier_skeleton("refund_partiaI"), identifier_skeleton("refund_partial"));
        assert_eq!(identifier_skeleton("c\u{0430}ncel"), identifier_skeleton("cancel"));
        assert_ne!(normalize("refund_partiaI"), normalize("refund_partial"), "text matching keeps ASCII as written");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        /// Normalising twice changes nothing, and the result is made of single-spaced words.
        #[test]
        fn normalize_is_idempotent_and_well_formed(t in any::<String>()) {
            let once = normalize(&t);
            prop_assert_eq!(normalize(&once), once.clone());
            prop_assert!(once.starts_with(' ') && once.ends_with(' '));
            prop_assert!(!once.contains("  "));
        }

        /// Whatever surrounds it, a phrase present in plain ASCII is found.
        #[test]
        fn phrases_are_found_in_any_context(pre in "[a-zA-Z ,.!?]{0,20}", post in "[a-zA-Z ,.!?]{0,20}") {
            let p = Phrase::new("small claims").expect("phrase");
            let text = format!("{pre} Small-Claims {post}");
            prop_assert!(p.is_in(&normalize(&text)));
        }
    }
}
