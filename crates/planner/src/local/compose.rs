//! The reply draft: sentences, each policy sentence quoted from a passage the knowledge
//! search returned, with a numbered marker (`[1]`) pointing at its citation.

use countersign_core::model::{Citation, ReplyDraft};

use crate::context::{ContextError, Passage, PlanningContext};

/// How many passages one playbook search looks at.
const SEARCH_LIMIT: usize = 8;

/// Where a playbook looks for the rule it states: an article's section, a query that
/// finds it, and a word that picks the sentence to quote (from the playbooks file's
/// `[sources]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub article: String,
    pub anchor: String,
    pub query: String,
    /// The quoted sentence is the first one in the section containing this (lower case);
    /// empty: the section's first sentence.
    pub hint: String,
}

/// A reply being drafted.
#[derive(Debug, Default)]
pub struct Draft {
    greeting: String,
    sentences: Vec<String>,
    citations: Vec<Citation>,
    /// Articles a playbook wanted but the search did not return (said honestly in the
    /// draft's note to the agent, never invented).
    pub missing: Vec<String>,
}

impl Draft {
    /// A draft opening with `greeting` (the playbooks' `Hi {name},`, filled).
    pub fn new(greeting: String) -> Draft {
        Draft { greeting, ..Draft::default() }
    }

    /// A sentence of our own (facts from the platform, questions): no citation.
    pub fn say(&mut self, sentence: impl Into<String>) {
        let s = sentence.into();
        if !s.trim().is_empty() && !self.sentences.contains(&s) {
            self.sentences.push(s);
        }
    }

    /// State the rule `source` points at: search for it, quote the sentence, cite it.
    /// Returns whether it was found. The same passage is cited once.
    pub fn cite(&mut self, ctx: &dyn PlanningContext, source: &Source) -> Result<bool, ContextError> {
        let hits = ctx.search(&source.query, SEARCH_LIMIT)?;
        let Some(passage) = pick(&hits, source) else {
            self.missing.push(format!("{}#{}", source.article, source.anchor));
            return Ok(false);
        };
        let Some(sentence) = quote(&passage.text, &source.hint) else {
            self.missing.push(format!("{}#{}", source.article, source.anchor));
            return Ok(false);
        };
        if self.citations.iter().any(|c| c.quote == sentence) {
            return Ok(true);
        }
        self.citations.push(Citation::new(
            &passage.article_id,
            Some(&passage.version),
            Some(&passage.anchor),
            sentence.clone(),
        ));
        self.sentences.push(format!("{} [{}]", readable(&sentence), self.citations.len()));
        Ok(true)
    }

    /// Does the draft already cite this article?
    pub fn cites(&self, article: &str) -> bool {
        self.citations.iter().any(|c| c.article_id == article)
    }

    pub fn is_empty(&self) -> bool {
        self.sentences.is_empty()
    }

    /// The reply: the greeting, each sentence on its own line, then `sign_off`.
    pub fn finish(self, sign_off: &str) -> ReplyDraft {
        let mut text = self.greeting;
        for s in &self.sentences {
            text.push('\n');
            text.push_str(s);
        }
        text.push('\n');
        text.push_str(sign_off);
        ReplyDraft { text, citations: self.citations }
    }
}

/// The passage a playbook asked for, if the search returned it.
fn pick<'a>(hits: &'a [Passage], source: &Source) -> Option<&'a Passage> {
    hits.iter().find(|p| p.article_id == source.article && p.anchor == source.anchor)
}

/// The first sentence of `text` containing `hint` (or the first sentence), as it stands in
/// the passage, so the quote is found there verbatim.
pub fn quote(text: &str, hint: &str) -> Option<String> {
    let sentences = sentences(text);
    let hint = hint.to_lowercase();
    sentences.iter().find(|s| s.to_lowercase().contains(&hint)).or_else(|| sentences.first()).map(|s| s.to_string())
}

/// Sentences of a Markdown passage: lines are split at `. `, `? `, `! `; list markers and
/// headings are dropped; table rows are kept whole.
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim().trim_start_matches(['-', '*', '#']).trim();
        let line = match line.split_once(". ") {
            Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => rest,
            _ => line,
        };
        if line.len() < 12 || line.starts_with('|') {
            continue;
        }
        let mut start = 0;
        let bytes = line.as_bytes();
        for i in 0..bytes.len() {
            let end = matches!(bytes[i], b'.' | b'?' | b'!') && (i + 1 == bytes.len() || bytes[i + 1] == b' ');
            if end {
                let s = line[start..=i].trim();
                if s.len() >= 12 {
                    out.push(s.to_string());
                }
                start = i + 1;
            }
        }
        let rest = line[start..].trim();
        if rest.len() >= 12 {
            out.push(rest.to_string());
        }
    }
    out
}

/// Markdown emphasis and code markers removed, for the customer's eyes.
fn readable(s: &str) -> String {
    s.replace(['*', '`'], "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hinted_sentence_is_quoted_verbatim() {
        let text = "Only **pending** orders can be cancelled. Processed orders cannot.\n\n- Gift cards: at once.";
        assert_eq!(quote(text, "processed").as_deref(), Some("Processed orders cannot."));
        assert_eq!(quote(text, "gift").as_deref(), Some("Gift cards: at once."));
        assert_eq!(quote(text, "nothing like this").as_deref(), Some("Only **pending** orders can be cancelled."));
    }
}
