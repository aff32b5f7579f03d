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

use unicode_normalization::UnicodeNormalization;
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
    let folded: String = text.nfkc().filter(|c| !is_ignorable(*c)).collect();
    // Lower-case first so the skeleton sees one case; then the skeleton; then
    // lower-case again because some prototypes are upper-case letters.
    // Case folding first: matching is case-insensitive, and the skeleton is not
    // (it maps `I` to `l` but keeps `i`). Lower-case again after the skeleton
    // because some prototypes are upper-case letters.
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

/// The confusables skeleton of an identifier, case kept: `refund_partiaI` (capital
/// I) and `refund_partial` share one. Used to call out look-alike action names.
pub fn identifier_skeleton(name: &str) -> String {
    let folded: String = name.nfkc().filter(|c| !is_ignorable(*c)).collect();
    skeleton(&folded).collect()
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
        if normalized.trim().is_empty() {
            None
        } else {
            Some(Phrase {
                original: original.to_string(),
                normalized,
            })
        }
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
        assert!(
            !p.is_in(&normalize("lawyers-to-be")),
            "word boundary: lawyers is another word"
        );
        assert!(
            !p.is_in(&normalize("flawyer")),
            "must not match inside a word"
        );
    }
}
