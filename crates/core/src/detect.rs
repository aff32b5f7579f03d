//! Escalation signals that hold under paraphrase: token patterns with word families,
//! idiom guards and negation, matched clause by clause on stemmed words.
//!
//! A policy's `[[signals]]` may list, besides exact `phrases` and `regex`, **token
//! patterns** (`patterns`), written by an admin in the policy file (see `docs/policy.md`):
//!
//! - the customer's text is cut into clauses (at `.`, `!`, `?`, `;` and line breaks; a `.`
//!   between two letters or digits, as in `tom.b@example.com` or `12.50`, ends nothing),
//!   each clause is normalised ([`crate::normalize`]) and split into words, and each word
//!   is lightly stemmed ([`stem`]): `hacked`, `hacking`, `hacks` all read `hack`;
//! - a pattern is a sequence of elements separated by spaces: a word (`sue`), a word
//!   family defined under `[signal_words]` (`@harm_verb`), alternatives (`kill|hurt|@harm_verb`),
//!   any of these optional (`really?`), or a gap of up to N other words (`~3`). Words in a
//!   pattern are normalised and stemmed like the text, so both sides meet in one form;
//! - a pattern never spans two clauses, unless it says where: one `/` in a pattern is the
//!   end of a clause, and the pattern then reads a clause and the next one of the same text
//!   (`name on order ~2 / ~2 not mine` finds "What's the name on order 77321? It's not
//!   mine"). Gaps never skip a clause end;
//! - a **guard** is a pattern for an idiom that uses the same words harmlessly (`to die
//!   for`, `killing it`): a hit whose words overlap a guard's match in the same clause does
//!   not count. A guard with `/` reads a hit's clause with the next one, so a customer who
//!   takes back what one sentence says in the next (`my password was changed / that was
//!   me`) is not handed off;
//! - **negation** (words or families): a hit with one of them inside it, or ending within
//!   [`NEGATION_WINDOW`] words before it in the same clause, does not count (`I'm not going to
//!   sue`, `not planning to charge it back`). A subject or a conjunction (`i`, `we`, `but`,
//!   `if`…) closes the reach of a negation before it (`if you don't refund me I'll sue`
//!   counts). A pattern that names a negation itself (`don't want to live`) is not
//!   negated by it.
//!
//! The first pattern that matches without being guarded or negated is the signal's hit,
//! and the words it matched are reported. Everything here is pure and deterministic; the
//! engine scans a case once per revision ([`crate::decide::CaseScan`]).

use std::collections::{BTreeMap, HashMap};

use crate::normalize::normalize;

/// How many words before a hit a negation may stand.
pub const NEGATION_WINDOW: usize = 4;

/// The largest gap a pattern may state (`~8`).
pub const MAX_GAP: usize = 8;

/// Light, predictable stemming for English: words of up to three letters are kept;
/// `-ies` → `-y`; `-ing`, `-ed` are dropped (a doubled final consonant other than
/// `l`, `s`, `z` is then undoubled: `stopped` → `stop`); `-es` after `s`, `x`, `z`, `ch`,
/// `sh` is dropped, otherwise a final `-s` (not after `s`, `u`, `i`); finally a final `e`,
/// when four letters remain. Each rule keeps at least three letters. Irregular forms
/// (`die`, `died`, `dying`) are listed in a family instead.
pub fn stem(word: &str) -> String {
    if word.len() <= 3 || !word.bytes().all(|b| b.is_ascii_lowercase()) {
        return word.to_string();
    }
    let mut s: String = if let Some(b) = word.strip_suffix("ies").filter(|b| b.len() >= 3) {
        format!("{b}y")
    } else if let Some(b) = word.strip_suffix("ing").filter(|b| b.len() >= 3) {
        undouble(b)
    } else if let Some(b) = word.strip_suffix("ed").filter(|b| b.len() >= 3) {
        undouble(b)
    } else if let Some(b) = word
        .strip_suffix("es")
        .filter(|b| b.len() >= 3 && (b.ends_with(['s', 'x', 'z']) || b.ends_with("ch") || b.ends_with("sh")))
    {
        b.to_string()
    } else if let Some(b) = word.strip_suffix('s').filter(|b| b.len() >= 3 && !b.ends_with(['s', 'u', 'i'])) {
        b.to_string()
    } else {
        word.to_string()
    };
    if s.len() >= 5 && s.ends_with('e') {
        s.pop();
    }
    s
}

fn undouble(base: &str) -> String {
    let b = base.as_bytes();
    let n = b.len();
    if n >= 4 && b[n - 1] == b[n - 2] && !matches!(b[n - 1], b'l' | b's' | b'z' | b'a' | b'e' | b'i' | b'o' | b'u') {
        base[..n - 1].to_string()
    } else {
        base.to_string()
    }
}

/// Normalised, stemmed words of a phrase.
pub fn stemmed_words(text: &str) -> Vec<String> {
    normalize(text).split_whitespace().map(stem).collect()
}

/// Word families (`[signal_words]`): name → its entries, each a sequence of stemmed words.
pub type Families = BTreeMap<String, Vec<Vec<String>>>;

/// Compile `[signal_words]`: every entry must normalise to at least one word.
pub fn family(entries: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let words = stemmed_words(e);
        if words.is_empty() {
            return Err(format!("{e:?} has no letters or digits: it could never match"));
        }
        out.push(words);
    }
    Ok(out)
}

/// A pattern element over words `W`: stemmed strings as parsed, word ids once compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Elem<W> {
    /// One of these word sequences (already stemmed).
    Words { alts: Vec<Vec<W>>, optional: bool },
    /// Up to this many other words.
    Gap(usize),
    /// The end of a clause (`/`): the pattern goes on in the next clause of the same text.
    Break,
}

/// A parsed token pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPattern {
    source: String,
    elems: Vec<Elem<String>>,
}

/// The most word sequences one alternative may stand for once its `@family` names are
/// expanded (`@a @b` is every member of `a` followed by every member of `b`).
const MAX_EXPANSION: usize = 4096;

/// Alternatives separated by `|`: words or several words (normalised and stemmed), each
/// of which may be a `@family` name (`with @bank` is `with` followed by any member).
fn alternatives(spec: &str, families: &Families) -> Result<Vec<Vec<String>>, String> {
    let mut alts = Vec::new();
    for alt in spec.split('|').map(str::trim) {
        let mut seqs: Vec<Vec<String>> = vec![Vec::new()];
        for token in alt.split_whitespace() {
            let next: Vec<Vec<String>> = match token.strip_prefix('@') {
                Some(name) => families
                    .get(name)
                    .ok_or_else(|| format!("unknown word family `@{name}`: define it under [signal_words]"))?
                    .clone(),
                None => vec![stemmed_words(token)],
            };
            seqs = seqs
                .iter()
                .flat_map(|head| next.iter().map(move |tail| [head.clone(), tail.clone()].concat()))
                .collect();
            if seqs.len() > MAX_EXPANSION {
                return Err(format!("{alt:?} stands for more than {MAX_EXPANSION} word sequences (in {spec:?})"));
            }
        }
        for words in seqs {
            if words.is_empty() {
                return Err(format!("{alt:?} has no letters or digits (in {spec:?})"));
            }
            alts.push(words);
        }
    }
    Ok(alts)
}

/// A pattern's elements: runs without spaces, or `(…)` groups whose alternatives may hold
/// several words (a `?` may follow the `)`).
fn parts(source: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = source.trim_start();
    while !rest.is_empty() {
        let end = if rest.starts_with('(') {
            let close = rest.find(')').ok_or_else(|| format!("a `(` in {source:?} is never closed"))?;
            let after = &rest[close + 1..];
            close + 1 + after.find(char::is_whitespace).unwrap_or(after.len())
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        let part = &rest[..end];
        let malformed = match part.strip_prefix('(') {
            Some(group) => {
                let close = group.find(')').unwrap_or(group.len());
                group[..close].contains('(') || !matches!(group.get(close + 1..), Some("" | "?"))
            }
            None => part.contains(['(', ')']),
        };
        if malformed {
            return Err(format!("{part:?}: groups are `(a b|c)`, not nested or mixed with other words"));
        }
        out.push(part);
        rest = rest[end..].trim_start();
    }
    Ok(out)
}

impl TokenPattern {
    /// Parse a pattern (`@i ~2 @harm_verb myself|me (no longer|not) alive`) against the
    /// policy's word families.
    pub fn parse(source: &str, families: &Families) -> Result<TokenPattern, String> {
        let mut elems = Vec::new();
        for part in parts(source)? {
            if part == "/" {
                if elems.is_empty() {
                    return Err("a clause end `/` must stand between two words".into());
                }
                if elems.iter().any(|e| matches!(e, Elem::Break)) {
                    return Err("a pattern may cross one clause end `/`, not more".into());
                }
                elems.push(Elem::Break);
                continue;
            }
            if let Some(n) = part.strip_prefix('~') {
                let n: usize = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_GAP).contains(n))
                    .ok_or_else(|| format!("a gap is `~N` with N from 1 to {MAX_GAP}, not {part:?}"))?;
                if matches!(elems.last(), None | Some(Elem::Gap(_))) {
                    return Err(format!("the gap {part:?} must stand between two words"));
                }
                elems.push(Elem::Gap(n));
                continue;
            }
            let (spec, optional) = match part.strip_suffix('?') {
                Some(s) => (s, true),
                None => (part, false),
            };
            let spec = match spec.strip_prefix('(') {
                Some(inner) => inner.strip_suffix(')').ok_or_else(|| format!("{part:?} is missing its `)`"))?,
                None => spec,
            };
            if spec.trim().is_empty() || spec.split('|').any(|a| a.trim().is_empty()) {
                return Err(format!("{part:?} has an empty alternative"));
            }
            elems.push(Elem::Words { alts: alternatives(spec, families)?, optional });
        }
        if matches!(elems.last(), Some(Elem::Gap(_))) {
            return Err("a pattern cannot end with a gap".into());
        }
        if matches!(elems.last(), Some(Elem::Break)) {
            return Err("a clause end `/` must stand between two words".into());
        }
        if !elems.iter().any(|e| matches!(e, Elem::Words { optional: false, .. })) {
            return Err("a pattern needs at least one word that is not optional, or it would match anything".into());
        }
        Ok(TokenPattern { source: source.to_string(), elems })
    }

    /// As written in the policy.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Some alternative of the pattern contains these words.
    fn mentions(&self, seq: &[String]) -> bool {
        self.elems.iter().any(|e| match e {
            Elem::Words { alts, .. } => alts.iter().any(|a| a.windows(seq.len().max(1)).any(|w| w == seq)),
            Elem::Gap(_) | Elem::Break => false,
        })
    }

    /// The pattern crosses a clause end (`/`).
    pub fn crosses_clauses(&self) -> bool {
        self.elems.iter().any(|e| matches!(e, Elem::Break))
    }

    /// The end of a match starting at `pos`, if there is one (over words, for tests; the
    /// detector matches word ids).
    #[cfg(test)]
    fn match_at(&self, words: &[String], pos: usize) -> Option<usize> {
        match_from(&self.elems, words, pos, &String::from("/"))
    }

    /// Every match's span `(start, end)`, the first match from each start.
    #[cfg(test)]
    fn spans<'a>(&'a self, words: &'a [String]) -> impl Iterator<Item = (usize, usize)> + 'a {
        (0..words.len()).filter_map(move |s| self.match_at(words, s).filter(|e| *e > s).map(|e| (s, e)))
    }
}

/// The end of a match of `elems` starting at `pos`, if there is one. `brk` is the word that
/// stands for a clause end: only a `/` element matches it, and no gap skips it.
fn match_from<W: PartialEq>(elems: &[Elem<W>], words: &[W], pos: usize, brk: &W) -> Option<usize> {
    let Some((first, rest)) = elems.split_first() else {
        return Some(pos);
    };
    match first {
        Elem::Gap(n) => (0..=*n)
            .take_while(|k| pos + k <= words.len() && (*k == 0 || words[pos + k - 1] != *brk))
            .find_map(|k| match_from(rest, words, pos + k, brk)),
        Elem::Break => (words.get(pos) == Some(brk)).then(|| match_from(rest, words, pos + 1, brk)).flatten(),
        Elem::Words { alts, optional } => {
            let tail = words.get(pos..).unwrap_or(&[]);
            alts.iter()
                .filter(|alt| tail.starts_with(alt))
                .find_map(|alt| match_from(rest, words, pos + alt.len(), brk))
                .or_else(|| if *optional { match_from(rest, words, pos, brk) } else { None })
        }
    }
}

/// A word no pattern names: it matches only gaps.
const UNKNOWN: u32 = u32::MAX;

/// The end of a clause, between two clauses read together: only `/` matches it.
const BREAK: u32 = u32::MAX - 1;

/// The words a detector's patterns name, each with a number: the text's stems are looked
/// up once per clause, and matching compares numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Vocab(HashMap<String, u32>);

impl Vocab {
    fn intern(&mut self, word: &str) -> u32 {
        let next = u32::try_from(self.0.len()).unwrap_or(UNKNOWN);
        *self.0.entry(word.to_string()).or_insert(next)
    }

    fn id(&self, word: &str) -> u32 {
        self.0.get(word).copied().unwrap_or(UNKNOWN)
    }

    fn seq(&mut self, words: &[String]) -> Vec<u32> {
        words.iter().map(|w| self.intern(w)).collect()
    }
}

/// A pattern over word ids, with the words it can start with (when its first element is
/// not optional) as a bit set: most positions of a clause are ruled out by one lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Compiled {
    elems: Vec<Elem<u32>>,
    first: Option<Vec<u64>>,
}

impl Compiled {
    fn new(p: &TokenPattern, vocab: &mut Vocab) -> Compiled {
        let elems: Vec<Elem<u32>> = p
            .elems
            .iter()
            .map(|e| match e {
                Elem::Words { alts, optional } => {
                    Elem::Words { alts: alts.iter().map(|a| vocab.seq(a)).collect(), optional: *optional }
                }
                Elem::Gap(n) => Elem::Gap(*n),
                Elem::Break => Elem::Break,
            })
            .collect();
        Compiled { elems, first: None }
    }

    /// Fill in the first-word sets once every word has its number.
    fn index(&mut self, words: usize) {
        if let Some(Elem::Words { alts, optional: false }) = self.elems.first() {
            let mut set = vec![0u64; words.div_ceil(64)];
            for id in alts.iter().filter_map(|a| a.first()) {
                if let Some(slot) = set.get_mut((*id / 64) as usize) {
                    *slot |= 1 << (id % 64);
                }
            }
            self.first = Some(set);
        }
    }

    fn may_start(&self, word: u32) -> bool {
        match &self.first {
            None => true,
            Some(set) => set.get((word / 64) as usize).is_some_and(|slot| slot & (1 << (word % 64)) != 0),
        }
    }

    fn spans<'a>(&'a self, words: &'a [u32]) -> impl Iterator<Item = (usize, usize)> + 'a {
        (0..words.len())
            .filter(move |s| self.may_start(words[*s]))
            .filter_map(move |s| match_from(&self.elems, words, s, &BREAK).filter(|e| *e > s).map(|e| (s, e)))
    }
}

/// A signal's token patterns, guards and negations, compiled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Detector {
    patterns: Vec<TokenPattern>,
    compiled: Vec<Compiled>,
    /// Per pattern: it names a negation itself (`don't want to live`), so a negation
    /// inside its match is part of what it looks for.
    own_negation: Vec<bool>,
    /// Per pattern: it crosses a clause end (`/`), so it reads two clauses at once.
    crosses: Vec<bool>,
    guards: Vec<Compiled>,
    /// Some guard crosses a clause end (`/`), so a hit's clause is read with the next one
    /// for the guards.
    guard_crosses: bool,
    /// Word sequences that negate a hit standing just after them (or inside it).
    negations: Vec<Vec<u32>>,
    /// The scope breakers' ids.
    breakers: Vec<u32>,
    vocab: Vocab,
}

/// Words that open a new stretch of a sentence: a negation before one of them does not
/// reach past it (`if you don't refund me I'll sue`). Stemmed like the text.
const SCOPE_BREAKERS: [&str; 14] =
    ["i", "we", "you", "he", "she", "they", "but", "or", "and", "so", "if", "unless", "then", "because"];

/// One clause of customer text: its normalised words and their stems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub words: Vec<String>,
    pub stems: Vec<String>,
    /// It follows another clause of the same text (a pattern with `/` may read both).
    pub continues: bool,
}

/// Where a clause ends: `.`, `!`, `?`, `;`, line breaks (and their full-width forms). A `.`
/// between two digits (`12.50`) ends nothing, nor one inside an address (a run without
/// spaces holding `@`, `://` or `www.`: `tom.b@example.com`); one between two words typed
/// without a space ("still not here.chargeback it is") still ends its sentence, so a
/// negation in one never reaches the next.
fn clause_ends(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    let mut prev: Option<char> = None;
    let in_address = |i: usize| {
        let before = text[..i].rfind(char::is_whitespace).map_or(0, |w| w + 1);
        let after = text[i..].find(char::is_whitespace).map_or(text.len(), |w| i + w);
        let run = &text[before..after];
        run.contains('@') || run.contains("://") || run.to_lowercase().contains("www.")
    };
    while let Some((i, c)) = chars.next() {
        let next = chars.peek().map(|(_, n)| *n);
        let ends = match c {
            '.' => {
                let between = prev.is_some_and(char::is_alphanumeric) && next.is_some_and(char::is_alphanumeric);
                let digits = prev.is_some_and(|p| p.is_ascii_digit()) && next.is_some_and(|n| n.is_ascii_digit());
                !(between && (digits || in_address(i)))
            }
            '!' | '?' | ';' | '\n' | '\r' | '\u{3002}' | '\u{FF01}' | '\u{FF1F}' | '\u{FF1B}' => true,
            _ => false,
        };
        if ends {
            out.push(&text[start..i]);
            start = i + c.len_utf8();
        }
        prev = Some(c);
    }
    out.push(&text[start..]);
    out
}

/// Cut text into clauses and read each one's words (once per text; every signal reads them).
pub fn clauses(text: &str) -> Vec<Clause> {
    let mut out: Vec<Clause> = Vec::new();
    for c in clause_ends(text) {
        let words: Vec<String> = normalize(c).split_whitespace().map(str::to_string).collect();
        if words.is_empty() {
            continue;
        }
        let stems = words.iter().map(|w| stem(w)).collect();
        let continues = !out.is_empty();
        out.push(Clause { words, stems, continues });
    }
    out
}

impl Detector {
    pub fn new(patterns: Vec<TokenPattern>, guards: Vec<TokenPattern>, negations: Vec<Vec<String>>) -> Detector {
        let own_negation = patterns.iter().map(|p| negations.iter().any(|n| p.mentions(n))).collect();
        let crosses = patterns.iter().map(TokenPattern::crosses_clauses).collect();
        let guard_crosses = guards.iter().any(TokenPattern::crosses_clauses);
        let mut vocab = Vocab::default();
        let mut compiled: Vec<Compiled> = patterns.iter().map(|p| Compiled::new(p, &mut vocab)).collect();
        let mut guards: Vec<Compiled> = guards.iter().map(|p| Compiled::new(p, &mut vocab)).collect();
        let negations = negations.iter().map(|n| vocab.seq(n)).collect();
        let mut breakers: Vec<u32> = SCOPE_BREAKERS.iter().map(|b| vocab.intern(&stem(b))).collect();
        breakers.push(BREAK);
        for c in compiled.iter_mut().chain(guards.iter_mut()) {
            c.index(vocab.0.len());
        }
        Detector { patterns, compiled, own_negation, crosses, guards, guard_crosses, negations, breakers, vocab }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn patterns(&self) -> &[TokenPattern] {
        &self.patterns
    }

    /// The words of the first hit that is neither guarded nor negated, clause by clause (a
    /// pattern with `/` reads a clause with the next one of the same text; its words are
    /// shown with a `/` between the clauses).
    pub fn find(&self, clauses: &[Clause]) -> Option<String> {
        if self.compiled.is_empty() {
            return None;
        }
        let any_cross = self.crosses.contains(&true);
        clauses.iter().enumerate().find_map(|(i, c)| {
            let words = self.ids(c);
            // The clause, a clause end and the next clause of the same text, when a pattern
            // or a guard reads across one. The clause's words keep their places in it.
            let both = clauses.get(i + 1).filter(|n| (any_cross || self.guard_crosses) && n.continues).map(|next| {
                let mut both = words.clone();
                both.push(BREAK);
                both.extend(self.ids(next));
                both
            });
            let guard_words = both.as_deref().filter(|_| self.guard_crosses).unwrap_or(&words);
            self.find_in(&words, guard_words, false).map(|(s, e)| c.words[s..e].join(" ")).or_else(|| {
                let both = both.as_deref().filter(|_| any_cross)?;
                let next = clauses.get(i + 1)?;
                let (s, e) = self.find_in(both, both, true)?;
                let shown: Vec<&str> = c
                    .words
                    .iter()
                    .map(String::as_str)
                    .chain(["/"])
                    .chain(next.words.iter().map(String::as_str))
                    .collect();
                Some(shown[s..e].join(" "))
            })
        })
    }

    fn ids(&self, clause: &Clause) -> Vec<u32> {
        clause.stems.iter().map(|w| self.vocab.id(w)).collect()
    }

    /// The first hit of the patterns that cross a clause end (`cross`) or of the others, in
    /// `words`; the guards read `guard_words`, which begin with `words` (and may go on into
    /// the next clause).
    fn find_in(&self, words: &[u32], guard_words: &[u32], cross: bool) -> Option<(usize, usize)> {
        let mut guarded: Option<Vec<(usize, usize)>> = None;
        for ((p, own_negation), _) in
            self.compiled.iter().zip(&self.own_negation).zip(&self.crosses).filter(|(_, c)| **c == cross)
        {
            for (s, e) in p.spans(words) {
                if self.negated(words, s, e, *own_negation) {
                    continue;
                }
                let guards =
                    guarded.get_or_insert_with(|| self.guards.iter().flat_map(|g| g.spans(guard_words)).collect());
                if guards.iter().any(|(gs, ge)| *gs < e && s < *ge) {
                    continue;
                }
                return Some((s, e));
            }
        }
        None
    }

    /// A negation inside the hit (unless the pattern names one itself), or ending within
    /// the window before it with no scope breaker in between. A hit that starts with a
    /// breaker (`I'll sue`) starts a stretch of its own.
    fn negated(&self, words: &[u32], start: usize, end: usize, own_negation: bool) -> bool {
        let cue_at =
            |i: usize, limit: usize| self.negations.iter().any(|n| i + n.len() <= limit && words[i..].starts_with(n));
        if !own_negation && (start..end).any(|i| cue_at(i, end)) {
            return true;
        }
        let breaks_scope = |w: u32| self.breakers.contains(&w);
        if breaks_scope(words[start]) {
            return false;
        }
        for i in (start.saturating_sub(NEGATION_WINDOW)..start).rev() {
            if cue_at(i, start) {
                return true;
            }
            if breaks_scope(words[i]) {
                return false;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fams() -> Families {
        let mut f = Families::new();
        f.insert("harm".into(), family(&["kill".into(), "hurt".into(), "end".into()]).unwrap_or_default());
        f
    }

    #[test]
    fn stems_meet() {
        for (a, b) in [
            ("hacked", "hack"),
            ("hacking", "hacks"),
            ("disputed", "dispute"),
            ("disputing", "disputes"),
            ("charged", "charge"),
            ("charges", "charging"),
            ("killed", "kill"),
            ("killing", "kills"),
            ("stopped", "stop"),
            ("lawyers", "lawyer"),
            ("addresses", "address"),
            ("bodies", "body"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} and {b} should share a stem");
        }
        assert_eq!(stem("me"), "me");
        assert_eq!(stem("sue"), "sue");
    }

    #[test]
    fn patterns_gaps_options_and_families() {
        let f = fams();
        let p = TokenPattern::parse("i ~2 @harm myself|me", &f).unwrap_or_else(|e| panic!("{e}"));
        let d = Detector::new(vec![p], vec![], vec![]);
        assert_eq!(d.find(&clauses("Honestly I might kill myself.")).as_deref(), Some("i might kill myself"));
        assert_eq!(d.find(&clauses("I really really just want to end myself")), None, "gap is at most 2");
        assert_eq!(d.find(&clauses("I. kill myself")), None, "no match across clauses");
        let group = TokenPattern::parse("(i m|i am|im) ~1 (a minor|underage)", &f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(group.spans(&stemmed_words("well I'm only a minor")).collect::<Vec<_>>(), vec![(1, 6)]);
        let opt = TokenPattern::parse("really? sue", &f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(opt.spans(&stemmed_words("i will sue")).collect::<Vec<_>>(), vec![(2, 3)]);
        // A family inside a group's alternative of several words stands for its members
        // there too (it once read as the literal word `harm`).
        let inside = TokenPattern::parse("(want to @harm|@harm) me", &f).unwrap_or_else(|e| panic!("{e}"));
        let spans = |text: &str| inside.spans(&stemmed_words(text)).collect::<Vec<_>>();
        assert_eq!(spans("they want to hurt me"), vec![(1, 5), (3, 5)]);
        assert_eq!(spans("they want to harm me"), vec![], "the family's name is no word of it");
    }

    #[test]
    fn guards_and_negation() {
        let f = fams();
        let d = Detector::new(
            vec![TokenPattern::parse("die|dying", &f).unwrap_or_else(|e| panic!("{e}"))],
            vec![TokenPattern::parse("to die for", &f).unwrap_or_else(|e| panic!("{e}"))],
            vec![stemmed_words("not"), stemmed_words("never")],
        );
        assert_eq!(d.find(&clauses("this dress is to die for")), None);
        assert_eq!(d.find(&clauses("I want to die")).as_deref(), Some("die"));
        assert_eq!(d.find(&clauses("It would never die on this hill")), None);
        assert_eq!(d.find(&clauses("It's not that I would die")).as_deref(), Some("die"), "`I` closes the negation");
        assert_eq!(d.find(&clauses("Not now. I want to die")).as_deref(), Some("die"), "negation stays in its clause");
    }

    #[test]
    fn a_pattern_crosses_a_clause_end_only_where_it_says() {
        let f = fams();
        let parse = |p: &str| TokenPattern::parse(p, &f).unwrap_or_else(|e| panic!("{e}"));
        let d = Detector::new(vec![parse("name ~2 / ~2 not mine")], vec![], vec![stemmed_words("not")]);
        assert_eq!(
            d.find(&clauses("What's the name on it? It's not mine")).as_deref(),
            Some("name on it / it s not mine"),
            "a clause and the next one, shown with a `/`"
        );
        assert_eq!(d.find(&clauses("What's the name on it? Fine. It's not mine")), None, "only the next clause");
        assert_eq!(d.find(&clauses("the name on it, it's not mine")), None, "the clause end is required");
        let mut two_texts = clauses("What's the name on it?");
        two_texts.extend(clauses("It's not mine"));
        assert_eq!(d.find(&two_texts), None, "never from one text into the next");
        let gap = Detector::new(vec![parse("kill ~3 myself")], vec![], vec![]);
        assert_eq!(gap.find(&clauses("kill. myself")), None, "a gap never skips a clause end");
        let after = Detector::new(vec![parse("a / b")], vec![], vec![]);
        assert_eq!(after.find(&clauses("a. x b")), None, "nothing between the `/` and the next word");
        assert_eq!(after.find(&clauses("a. b")).as_deref(), Some("a / b"));
    }

    #[test]
    fn a_guard_with_a_clause_end_reads_the_hits_clause_with_the_next() {
        let f = fams();
        let parse = |p: &str| TokenPattern::parse(p, &f).unwrap_or_else(|e| panic!("{e}"));
        let hit = || vec![parse("password ~2 changed")];
        let unguarded = Detector::new(hit(), vec![], vec![]);
        let taken_back = "I got an email: my password was changed. That was me just now.";
        assert_eq!(unguarded.find(&clauses(taken_back)).as_deref(), Some("password was changed"), "the control");
        let d = Detector::new(hit(), vec![parse("changed / (that|it) was me")], vec![]);
        assert_eq!(d.find(&clauses(taken_back)), None, "taken back in the next clause");
        assert_eq!(
            d.find(&clauses("My password was changed. That was not me")).as_deref(),
            Some("password was changed"),
            "the guard's own words are needed"
        );
        assert_eq!(
            d.find(&clauses("My password was changed. Odd. That was me")).as_deref(),
            Some("password was changed"),
            "only the next clause"
        );
        let mut two_texts = clauses("My password was changed.");
        two_texts.extend(clauses("That was me"));
        assert_eq!(d.find(&two_texts).as_deref(), Some("password was changed"), "never from one text into the next");
        // A guard that overlaps nothing of the hit guards nothing, whatever the next clause says.
        let elsewhere = Detector::new(hit(), vec![parse("odd / (that|it) was me")], vec![]);
        assert_eq!(
            elsewhere.find(&clauses("My password was changed, odd. That was me")).as_deref(),
            Some("password was changed")
        );
    }

    #[test]
    fn dots_inside_words_end_no_clause() {
        let c = clauses("Mail tom.b@example.com about the 12.50 fee. Thanks! ok");
        let words: Vec<String> = c.iter().map(|c| c.words.join(" ")).collect();
        assert_eq!(words, ["mail tom b example com about the 12 50 fee", "thanks", "ok"]);
        assert_eq!(c.iter().map(|c| c.continues).collect::<Vec<_>>(), [false, true, true]);
        // Two sentences typed without a space are still two: a negation stays in its own.
        let typed = clauses("Still not here.Chargeback it is");
        assert_eq!(typed.iter().map(|c| c.words.join(" ")).collect::<Vec<_>>(), ["still not here", "chargeback it is"]);
        let d = Detector::new(
            vec![TokenPattern::parse("chargeback", &fams()).unwrap_or_else(|e| panic!("{e}"))],
            vec![],
            vec![stemmed_words("not")],
        );
        assert_eq!(d.find(&typed).as_deref(), Some("chargeback"), "the first sentence's `not` does not reach it");
    }

    #[test]
    fn bad_patterns_say_why() {
        let f = fams();
        for (p, why) in [
            ("~2 sue", "between two words"),
            ("sue ~2", "end with a gap"),
            ("sue ~0 you", "~N"),
            ("sue ~9 you", "~N"),
            ("really?", "not optional"),
            ("@nope", "unknown word family `@nope`"),
            ("a||b", "empty alternative"),
            ("(a b|c", "never closed"),
            ("(a (b))", "not nested"),
            ("!!!", "no letters"),
            ("/ sue", "between two words"),
            ("sue /", "between two words"),
            ("a / b / c", "one clause end"),
        ] {
            let err = TokenPattern::parse(p, &f).err().unwrap_or_default();
            assert!(err.contains(why), "{p:?}: {err:?} should say {why:?}");
        }
    }
}
