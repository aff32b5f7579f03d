//! The languages the escalation signals read. The patterns and both learned models were
//! written and trained on English; a message in another language is read only through
//! the English words in it, so a threat or a cry for help in Tagalog can pass unseen
//! (docs/policy.md, "Languages"). `[signal_languages]` names the languages the signals
//! read, and a customer's text reliably identified as another one sets a floor on every
//! write and on the reply: a person reads the case before anything is done for it.
//!
//! The identification is `whatlang`'s (trigrams over the text's own script), counted only
//! when the text has [`MIN_WORDS`] words or more (on a few words any guess is weak) and the
//! guess has a confidence over [`MIN_CONFIDENCE`]; a text mostly in a script that none of
//! the languages read is written in (Chinese, Cyrillic, Arabic…) counts at any length. `whatlang` reads some plain English as
//! French or Catalan ("Our procurement policy does not permit surcharges"), so under a
//! policy that reads English a text whose words are at least [`ENGLISH_SHARE`] English
//! function words counts as English, whatever the guess. Measured on the 13,282 labelled
//! messages of `assets/eval/signals` (docs/signals.md, step 52).

use crate::policy::Outcome;

/// A text of fewer words is never counted as written in another language.
pub const MIN_WORDS: usize = 4;

/// A text of fewer words is a chat line: when no text is in another language on its own,
/// a case's chat lines are read together.
pub const CHAT_LINE_WORDS: usize = 10;

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
    // contractions
    "aren't", "can't", "couldn't", "didn't", "doesn't", "don't", "hasn't", "haven't", "he's", "i'd", "i'll", "i've",
    "isn't", "she's", "that's", "there's", "they're", "wasn't", "we're", "we've", "weren't", "what's", "won't",
    "wouldn't", "you'd", "you'll", "you're", "you've",
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
        let info = whatlang::detect(text)?;
        if self.read.contains(&info.lang()) {
            return None;
        }
        // A text mostly in a script that none of the languages read is written in (Chinese,
        // Cyrillic, Arabic…): none of its words is read, however short it is and however
        // unsure the guess between that script's languages.
        let script = info.script();
        if script != whatlang::Script::Latin && !self.read.iter().any(|l| script.langs().contains(l)) {
            return Some(info.lang());
        }
        let words = words(text, script);
        if words.len() < MIN_WORDS || info.confidence() <= MIN_CONFIDENCE {
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

    /// The languages the signals do not read that the customer's texts are in, each once, in
    /// the order found. When no text is in one on its own, the short ones (under
    /// [`CHAT_LINE_WORDS`] words) are read together too: a customer who writes in chat lines
    /// of a few words each is still found. (Only those: identifying a text takes about
    /// 0.4 µs a character, and the long ones have been read.)
    pub fn unread_texts<'a>(&self, texts: impl IntoIterator<Item = &'a str>) -> Vec<UnreadText> {
        let texts: Vec<&str> = texts.into_iter().collect();
        let mut found: Vec<whatlang::Lang> = Vec::new();
        for lang in texts.iter().filter_map(|t| self.unread_language(t)) {
            if !found.contains(&lang) {
                found.push(lang);
            }
        }
        let short: Vec<&str> = texts
            .iter()
            .copied()
            .filter(|t| t.split_whitespace().filter(|w| w.chars().any(char::is_alphabetic)).count() < CHAT_LINE_WORDS)
            .collect();
        if found.is_empty() && short.len() > 1 {
            found.extend(self.unread_language(&short.join("\n")));
        }
        found
            .into_iter()
            .map(|l| UnreadText { code: l.code().to_string(), language: l.eng_name().to_string() })
            .collect()
    }
}

/// The words of `text`, lower case, as the minimum and the English share count them: the
/// letters (and apostrophes) of each space-separated token with no digit in it (an order
/// number, `#W123`, or a postcode is no word), and in a script written without spaces
/// (Chinese, Japanese, Thai, Khmer, Burmese) each letter.
fn words(text: &str, script: whatlang::Script) -> Vec<String> {
    use whatlang::Script;
    if matches!(
        script,
        Script::Mandarin | Script::Hiragana | Script::Katakana | Script::Thai | Script::Khmer | Script::Myanmar
    ) {
        return text.chars().filter(|c| c.is_alphabetic()).map(String::from).collect();
    }
    text.split_whitespace()
        .filter(|t| !t.chars().any(char::is_numeric))
        .flat_map(|t| t.split(|c: char| !(c.is_alphabetic() || c == '\'' || c == '’')))
        .map(|w| w.trim_matches(['\'', '’']).replace('’', "'").to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
        let guess = whatlang::detect(text).unwrap();
        assert!(
            guess.lang() != whatlang::Lang::Eng && guess.confidence() > MIN_CONFIDENCE,
            "the case this guards: whatlang is sure enough it is not English ({guess:?})"
        );
        assert_eq!(l.unread_language(text), None, "a third of its words are English function words");
    }

    #[test]
    fn a_few_words_are_too_few_to_tell_unless_the_customer_writes_more() {
        let l = english_only();
        assert_eq!(l.unread_language("¡Muchas gracias, amigos!"), None);
        assert_eq!(l.unread_language("¡Muchas gracias, amigos míos!").map(|l| l.code()), Some("spa"));
        assert_eq!(l.unread_language("Pedido #W2817 12345 recibido"), None, "numbers are no words");
        // Short chat lines, none of four words, read together.
        let lines = ["hola buenas tardes", "el pedido llegó roto", "quiero mi dinero", "por favor"];
        assert!(lines.iter().all(|t| l.unread_language(t).is_none()));
        let found = l.unread_texts(lines);
        // … and beside a long English message.
        let mut with_english = vec!["Hi, I wrote earlier about my order and nobody has answered me yet."];
        with_english.extend(lines);
        assert_eq!(l.unread_texts(with_english).len(), 1);
        assert_eq!(found.iter().map(|u| u.code.as_str()).collect::<Vec<_>>(), ["spa"]);
        assert!(l.unread_texts(["hi there", "my order", "came broken", "refund please"]).is_empty());
    }

    #[test]
    fn a_script_the_signals_read_no_language_of_is_unread_however_short() {
        let l = english_only();
        // "I want a refund" in Chinese: one run of letters, no spaces between words.
        assert_eq!(l.unread_language("我想退款").map(|l| l.code()), Some("cmn"));
        assert!(l.unread_language("Верните деньги").is_some(), "two words of Russian");
        // An English message with a name in another script is English.
        assert_eq!(l.unread_language("Please send the parcel to 王小明 at the office, thank you."), None);
        // A policy that reads a language of the script counts each of its letters as a word.
        let chinese =
            SignalLanguages { read: vec![whatlang::Lang::Eng, whatlang::Lang::Cmn], unread: Outcome::Confirm };
        assert_eq!(chinese.unread_language("我想退款"), None);
        assert_eq!(chinese.unread_language("私の注文はまだ届いていません").map(|l| l.code()), Some("jpn"));
        // … and asks for the usual confidence.
        let russian =
            SignalLanguages { read: vec![whatlang::Lang::Eng, whatlang::Lang::Rus], unread: Outcome::Confirm };
        assert_eq!(russian.unread_language("Верните деньги за заказ, пожалуйста, товар пришёл сломанным."), None);
    }

    #[test]
    fn a_policy_that_reads_the_language_sets_no_floor() {
        let l = SignalLanguages { read: vec![whatlang::Lang::Eng, whatlang::Lang::Spa], unread: Outcome::Confirm };
        assert_eq!(l.unread_language("Mi pedido llegó roto y quiero que me devuelvan el dinero, por favor."), None);
        assert_eq!(l.read_names(), "English and Spanish");
    }
}
