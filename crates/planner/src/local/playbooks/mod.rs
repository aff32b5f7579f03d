//! The playbooks file: what the local planner says and looks for, per intent, as workspace
//! content (`assets/demo/playbooks.toml`) rather than code.
//!
//! The code decides *when* (which branch of a playbook applies, which reads to make, which
//! steps to build from what they returned); the file says *what*: the phrases that pick
//! intents and branches (regular expressions over the normalised text), the sentences of
//! the reply, the knowledge sections each branch quotes, the rationale and fixed values of
//! each step, and the reply's greeting, sign-off and note to the agent.
//!
//! Parsing is strict: every table is closed (unknown keys are errors), every key the
//! planner needs must be there, a sentence may use only the `{holes}` its place fills,
//! a pattern must compile, a quoted source must exist and every source must be quoted.
//! Errors read `file:line:column: message`.
//!
//! To add content to a playbook: add the field to its struct below (its type says what
//! it is: [`Say`] with its holes, [`When`], a list of [`Cite`], a `String` rationale or
//! value, an [`Amount`]), use it in the playbook's code, and write it in every playbooks
//! file (the demo's is the reference, and a test parses it).

use std::collections::{BTreeMap, BTreeSet};
use std::marker::PhantomData;
use std::ops::Range;
use std::path::Path;
use std::str::FromStr;

use regex::Regex;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};
use serde_spanned::Spanned;

use super::compose::Source;

/// A playbooks file that could not be loaded: where and why.
pub type PlaybookError = countersign_connectors::config_file::FileError;

// ------------------------------------------------------------------ value types

/// The holes a sentence may use, fixed by where the planner says it.
pub trait Holes {
    const NAMES: &'static [&'static str];
}

macro_rules! holes {
    ($($name:ident = [$($hole:literal),*];)*) => {$(
        #[derive(Debug)]
        pub struct $name;
        impl Holes for $name {
            const NAMES: &'static [&'static str] = &[$($hole),*];
        }
    )*};
}

holes! {
    NoHoles = [];
    NameHole = ["name"];
    NotesHole = ["notes"];
    SourceHole = ["source"];
    ActionHole = ["action"];
    ActionMessage = ["action", "message"];
    OrderHole = ["order"];
    OrderStatus = ["order", "status"];
    OrdersHole = ["orders"];
    TrackingHole = ["tracking"];
    ItemHole = ["item"];
    ItemOrder = ["item", "order"];
    ItemsOrder = ["items", "order"];
    ProductVariants = ["product", "variants", "available"];
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Hole(String),
}

/// A sentence with `{hole}`s that the planner fills (`H` says which it may use).
#[derive(Debug)]
pub struct Say<H = NoHoles> {
    parts: Vec<Part>,
    holes: PhantomData<H>,
}

impl<H: Holes> Say<H> {
    fn parse(text: &str) -> Result<Say<H>, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err(format!("unopened '}}' in {text:?}"));
            }
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..].find('}').ok_or_else(|| format!("unclosed '{{' in {text:?}"))? + open;
            let hole = &rest[open + 1..close];
            if !H::NAMES.contains(&hole) {
                let allowed = if H::NAMES.is_empty() {
                    "this sentence has no holes".to_string()
                } else {
                    format!(
                        "this sentence's holes are {}",
                        H::NAMES.iter().map(|h| format!("{{{h}}}")).collect::<Vec<_>>().join(", ")
                    )
                };
                return Err(format!("{{{hole}}} is not a hole here: {allowed}"));
            }
            parts.push(Part::Hole(hole.to_string()));
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Say { parts, holes: PhantomData })
    }

    /// The sentence with its holes filled (a hole given no value stays empty).
    pub fn fill(&self, values: &[(&str, &str)]) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Hole(h) => out.push_str(values.iter().find(|(k, _)| k == h).map_or("", |(_, v)| v)),
            }
        }
        out
    }
}

impl Say<NoHoles> {
    pub fn text(&self) -> String {
        self.fill(&[])
    }
}

impl<'de, H: Holes> Deserialize<'de> for Say<H> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Say::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A phrase the customer's normalised text may contain: a regular expression over the
/// policy's normal form (lower case, single spaces, no punctuation; see `intents`).
#[derive(Debug)]
pub struct When(pub Regex);

impl When {
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl<'de> Deserialize<'de> for When {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Err(serde::de::Error::custom("an empty pattern matches every text"));
        }
        Regex::new(&text).map(When).map_err(|e| serde::de::Error::custom(format!("not a regular expression: {e}")))
    }
}

/// A knowledge section a playbook quotes, by its name in `[sources]`.
#[derive(Debug)]
pub struct Cite(Spanned<String>);

impl Cite {
    pub fn name(&self) -> &str {
        self.0.get_ref()
    }
}

impl<'de> Deserialize<'de> for Cite {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Spanned::<String>::deserialize(d).map(Cite)
    }
}

/// A decimal amount written as text (`"10.00"`): money is never a float.
#[derive(Debug, Clone, Copy)]
pub struct Amount(pub Decimal);

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let ok = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit() || b == b'.');
        match Decimal::from_str(&text) {
            Ok(v) if ok && v > Decimal::ZERO => Ok(Amount(v)),
            _ => Err(serde::de::Error::custom(format!("{text:?} is not a positive decimal amount like \"10.00\""))),
        }
    }
}

/// Everything in a playbook that names a source, for the cross-checks.
trait Cites {
    fn cites<'a>(&'a self, out: &mut Vec<&'a Cite>);
}

impl Cites for Cite {
    fn cites<'a>(&'a self, out: &mut Vec<&'a Cite>) {
        out.push(self);
    }
}

impl<T: Cites> Cites for Vec<T> {
    fn cites<'a>(&'a self, out: &mut Vec<&'a Cite>) {
        self.iter().for_each(|c| c.cites(out));
    }
}

impl<K, T: Cites> Cites for BTreeMap<K, T> {
    fn cites<'a>(&'a self, out: &mut Vec<&'a Cite>) {
        self.values().for_each(|c| c.cites(out));
    }
}

macro_rules! no_cites {
    ($($t:ty),*) => {$(
        impl Cites for $t {
            fn cites<'a>(&'a self, _: &mut Vec<&'a Cite>) {}
        }
    )*};
}

no_cites!(When, String, Amount);

impl<H> Cites for Say<H> {
    fn cites<'a>(&'a self, _: &mut Vec<&'a Cite>) {}
}

/// A closed table of the file: its fields, and the sources they quote.
macro_rules! table {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$m])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl Cites for $name {
            fn cites<'a>(&'a self, _out: &mut Vec<&'a Cite>) {
                $(Cites::cites(&self.$field, _out);)*
            }
        }
    };
}

impl Cites for Spanned<SourceEntry> {
    fn cites<'a>(&'a self, _: &mut Vec<&'a Cite>) {}
}

/// A knowledge section: the article and anchor, the query that finds it, and a word that
/// picks the sentence to quote (the first sentence when none is given).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceEntry {
    article: String,
    anchor: String,
    query: String,
    #[serde(default)]
    hint: String,
}

mod tables;
pub use tables::*;

// ------------------------------------------------------------------ loading

/// A checked playbooks file.
#[derive(Debug)]
pub struct Playbooks {
    /// Where it was read from (for messages).
    pub file: String,
    pub reply: Reply,
    pub reading: Phrases,
    pub books: Set,
    sources: BTreeMap<String, Source>,
}

impl Playbooks {
    /// Read and check the playbooks at `path`.
    pub fn load(path: &Path) -> Result<Playbooks, PlaybookError> {
        let (shown, text) = countersign_connectors::config_file::read("playbooks", path)?;
        Playbooks::parse(&shown, &text)
    }

    /// Parse and check a playbooks file. `file` is only used in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Playbooks, PlaybookError> {
        let err = |span: Range<usize>, message: String| {
            let (line, column) = countersign_connectors::catalog::line_column(text, span.start);
            PlaybookError::Invalid { file: file.to_string(), line, column, message }
        };
        let raw: PlaybooksFile =
            toml::from_str(text).map_err(|e| err(e.span().unwrap_or(0..0), e.message().trim_end().to_string()))?;
        let mut cites = Vec::new();
        raw.reply.cites(&mut cites);
        raw.reading.cites(&mut cites);
        raw.playbooks.cites(&mut cites);
        for c in &cites {
            if !raw.sources.contains_key(c.name()) {
                return Err(err(c.0.span(), format!("no source named {:?} in [sources]", c.name())));
            }
        }
        let quoted: BTreeSet<&str> = cites.iter().map(|c| c.name()).collect();
        let mut sources = BTreeMap::new();
        for (name, entry) in raw.sources {
            if !quoted.contains(name.as_str()) {
                return Err(err(
                    entry.span(),
                    format!("sources.{name} is quoted by no playbook: remove it or quote it"),
                ));
            }
            let span = entry.span();
            let e = entry.into_inner();
            for (key, value) in [("article", &e.article), ("anchor", &e.anchor), ("query", &e.query)] {
                if value.trim().is_empty() {
                    return Err(err(span, format!("sources.{name}: `{key}` is empty")));
                }
            }
            sources.insert(name, Source { article: e.article, anchor: e.anchor, query: e.query, hint: e.hint });
        }
        Ok(Playbooks { file: file.to_string(), reply: raw.reply, reading: raw.reading, books: raw.playbooks, sources })
    }

    /// Every knowledge section a playbook may quote (a test checks each is found by its
    /// own query).
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.values()
    }

    /// The section a cite names (checked at load: always there).
    pub fn source(&self, cite: &Cite) -> Option<&Source> {
        self.sources.get(cite.name())
    }
}

#[cfg(test)]
mod tests;
