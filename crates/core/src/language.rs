//! The languages the escalation signals read. The patterns and both learned models were
//! written and trained on English; a message in another language is read only through
//! the English words in it, so a threat or a cry for help in Tagalog can pass unseen
//! (docs/policy.md, "Languages"). `[signal_languages]` names the languages the signals
//! read, and a customer's text reliably identified as another one sets a floor on every
//! write and on the reply: a person reads the case before anything is done for it.
//!
//! The identification is `whatlang`'s (trigrams over the text's own script), counted only
//! when the text has [`MIN_WORDS`] words or more (on a few words any guess is weak) and the
//! guess has a confidence over [`MIN_CONFIDENCE`]. `whatlang` reads some plain English as
//! French or Catalan ("Our procurement policy does not permit surcharges"), so under a
//! policy that reads English a text whose words are at least [`ENGLISH_SHARE`] English
//! function words counts as English, whatever the guess. Measured on the 13,282 labelled
//! messages of `assets/eval/signals` (docs/signals.md, step 52).

use crate::policy::Outcome;

/// A text of fewer words is never counted as written in another language.
pub const MIN_WORDS: usize = 4;

/// `whatlang`'s confidence in its guess (how far its best language leads the next) above
/// which the guess counts. Its own "reliable" is over 0.9; on the labelled set that leaves
/// out Tagalog and Spanish customers' short messages (a threat, "alguien entró a mi
/// cuenta"), while under 0.4 most guesses that are not English are English slang.
pub const MIN_CONFIDENCE: f64 = 0.4;

/// The share of a text's words that are English function words at which it counts as
/// English (under a policy that reads English). Ordinary English has about a third or more;
/// none of the labelled set's messages in Tagalog or Spanish reaches a fifth.
pub const ENGLISH_SHARE: (usize, usize) = (1, 5);

/// English function words (and the commonest courtesies), lower case.
const ENGLISH_FUNCTION_WORDS: &[&str] = &[
    "a", "about", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "being", "but", "by",
    "can", "could", "dear", "did", "do", "does", "done", "for", "from", "get", "got", "had", "has", "have", "he",
    "hello", "her", "here", "hi", "him", "his", "how", "i", "i'm", "if", "in", "into", "is", "it", "it's", "its",
    "just", "many", "may", "me", "might", "mine", "more", "much", "must", "my", "no", "not", "of", "on", "one", "or",
    "our", "please", "shall", "she", "should", "so", "some", "than", "thank", "thanks", "that", "the", "their", "them",
    "then", "there", "these", "they", "this", "those", "to", "us", "very", "was", "we", "were", "what", "when",
    "where", "which", "who", "why", "will", "with", "would", "yes", "you", "your", "yours",
];

/// `[signal_languages]`: the languages the signals read, and the floor for a text in
/// another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalLanguages {
    /// In the order the policy names them.
    pub read: Vec<whatlang::Lang>,
    /// What every write and the reply are at least when a customer's text is in another.
    pub unread: Outcome,
}

/// A language the signals do not read, found in one of the customer's texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadText {
    /// The language's ISO 639-3 code (`tgl`).
    pub code: String,
    /// Its English name (`Tagalog`).
    pub language: String,
}

impl SignalLanguages {
    /// A language by its ISO 639-3 code (`eng`, `tgl`), as the policy names it.
    pub fn lang(code: &str) -> Option<whatlang::Lang> {
        whatlang::Lang::from_code(code.trim().to_ascii_lowercase())
    }

    /// The English names of the languages read, for a reason: "English and Spanish".
    pub fn read_names(&self) -> String {
        let names: Vec<&str> = self.read.iter().map(|l| l.eng_name()).collect();
        match names.split_last() {
            Some((last, [])) => (*last).to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    /// The language of `text` when it is one the signals do not read.
    pub fn unread_language(&self, text: &str) -> Option<whatlang::Lang> {
        let words: Vec<String> = text
            .split(|c: char| !(c.is_alphabetic() || c == '\'' || c == '’'))
            .map(|w| w.trim_matches(['\'', '’']).replace('’', "'").to_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        if words.len() < MIN_WORDS {
            return None;
        }
        let info = whatlang::detect(text)?;
        if info.confidence() <= MIN_CONFIDENCE || self.read.contains(&info.lang()) {
            return None;
        }
        if self.read.contains(&whatlang::Lang::Eng) {
            let english = words.iter().filter(|w| ENGLISH_FUNCTION_WORDS.contains(&w.as_str())).count();
            if english * ENGLISH_SHARE.1 >= words.len() * ENGLISH_SHARE.0 {
                return None;
            }
        }
        Some(info.lang())
    }

    /// The languages the signals do not read that some of `texts` are reliably in, each
    /// once, in the order found.
    pub fn unread_texts<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Vec<UnreadText> {
        let mut out: Vec<UnreadText> = Vec::new();
        for lang in texts.into_iter().filter_map(|t| self.unread_language(t)) {
            if !out.iter().any(|u| u.code == lang.code()) {
                out.push(UnreadText { code: lang.code().to_string(), language: lang.eng_name().to_string() });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn english_only() -> SignalLanguages {
        SignalLanguages { read: vec![whatlang::Lang::Eng], unread: Outcome::Confirm }
    }

    #[test]
    fn a_text_in_another_language_is_found_and_named() {
        let l = english_only();
        let spanish = "Mi pedido llegó roto y quiero que me devuelvan el dinero, por favor.";
        assert_eq!(l.unread_language(spanish), Some(whatlang::Lang::Spa));
        let tagalog = "Magandang araw po. Nasira ang blender na binili ko, paano ko po ito maibabalik?";
        assert_eq!(l.unread_language(tagalog), Some(whatlang::Lang::Tgl));
        let found = l.unread_texts([spanish, "Hi there", tagalog, spanish]);
        let names: Vec<&str> = found.iter().map(|u| u.language.as_str()).collect();
        assert_eq!(names, ["Spanish", "Tagalog"], "each language once, in the order found");
    }

    #[test]
    fn english_that_reads_as_french_is_english() {
        let l = english_only();
        let text = "Could you confirm whether your prices include a card surcharge? Our procurement policy does not \
                    permit surcharges.";
        let guess = whatlang::detect(text).map(|i| i.lang());
        assert_ne!(guess, Some(whatlang::Lang::Eng), "the case this guards: whatlang does not take it for English");
        assert_eq!(l.unread_language(text), None, "a third of its words are English function words");
    }

    #[test]
    fn a_few_words_are_too_few_to_tell() {
        let l = english_only();
        assert_eq!(l.unread_language("¡Muchas gracias, amigos!"), None);
        assert_eq!(l.unread_language("¡Muchas gracias, amigos míos!").map(|l| l.code()), Some("spa"));
    }

    #[test]
    fn a_policy_that_reads_the_language_sets_no_floor() {
        let l = SignalLanguages { read: vec![whatlang::Lang::Eng, whatlang::Lang::Spa], unread: Outcome::Confirm };
        assert_eq!(l.unread_language("Mi pedido llegó roto y quiero que me devuelvan el dinero, por favor."), None);
        assert_eq!(l.read_names(), "English and Spanish");
    }
}
