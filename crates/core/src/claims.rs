//! The *say* layer: the factual claims a reply draft makes, and whether the passages it
//! cites state them. Pure: the passages' text arrives with the facts.
//!
//! A draft is cut into sentences (at `.`, `!`, `?` before a space, and at line ends; a
//! citation marker such as `[1]` right after the stop stays with its sentence). In each
//! sentence these are claims:
//!
//! - **amounts**: `$25`, `25.00 USD`, `USD 25`, `25 dollars` (amount and currency);
//! - **durations** and **percentages**: `30 days`, `within 48 hours`, `5 to 7 business
//!   days`, `a 30-day window`, `thirty days`, `10%` (number, or range, and unit);
//! - **dates**: `December 3`, `3rd of Dec`, `2026-12-03`, weekday names;
//! - **claim phrases**: the policy's `[[reply.claims]]` (`free`, `any time`, `no questions
//!   asked`…), data an admin reads and edits, never a list in the code.
//!
//! A claim is **supported** when a passage the draft cites states the same fact: the same
//! amount in the same currency (`$25` is `25.00 USD`, never `$250`); the same number and the
//! same unit (`30 minutes` never supports `30 days`; a single value is also stated by a
//! range that ends at it: `within 7 business days` by `5 to 7 business days`); the same
//! date; for a claim phrase, any phrase or regex of the same rule. An amount the case's
//! own data carries (a step's money parameter, an order's total) is supported by it, with no
//! passage. Otherwise a claim is **contradicted** when a cited passage states another value
//! of the same kind and unit (`14 days` against `30 days`), or a claim rule's
//! `contradicted_by` phrase (`fee` against `free`); else **unsupported**.
//!
//! What a passage says is the text the engine read from the knowledge index (trusted),
//! never the draft's own `quote` (model output). Passages the draft does not cite, and
//! citations that do not resolve, support nothing.
//!
//! Deliberately simple, and on the safe side: a passage states a fact when the fact occurs
//! anywhere in it (the check does not parse which thing is free); a claim phrase in a
//! negated sentence still counts as a claim; there is no unit conversion (`48 hours` is not
//! `2 days`). Each of these sends a reply to a person, never one out on its own.

use std::sync::LazyLock;

use regex::Regex;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::normalize::{Phrase, normalize};
use crate::policy::ClaimRule;

/// What kind of fact a claim states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    Money,
    Duration,
    Percent,
    Date,
    /// One of the policy's claim phrases (`free`, `any time`).
    Phrase,
}

/// Whether the cited passages state a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    Supported,
    Unsupported,
    Contradicted,
}

/// One claim of the draft and what the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClaimCheck {
    /// The sentence that makes the claim, as written in the draft.
    pub sentence: String,
    /// Byte offsets of the sentence in the draft: `draft[start..end] == sentence`.
    pub start: usize,
    pub end: usize,
    /// The claim as written (`30 days`), or the claim rule's phrase that matched.
    pub claim: String,
    pub kind: ClaimKind,
    /// The claim rule (`[[reply.claims]]` id) of a claim phrase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub status: ClaimStatus,
    /// The citation (`[1] article#anchor`) that states or contradicts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation: Option<String>,
    /// In words, for the reviewer.
    pub reason: String,
}

/// A passage the draft cites, with its text as the knowledge index holds it.
#[derive(Debug, Clone, Copy)]
pub struct Cited<'a> {
    /// The draft's marker for it (`[1]` is 1): the citation's position, from 1.
    pub marker: usize,
    /// `article#anchor`.
    pub label: &'a str,
    pub text: &'a str,
}

/// An amount the case's own data carries, which a reply may state without a passage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub currency: String,
    pub amount: Decimal,
    /// Where it comes from, in words (`step s2 (refund_partial)`).
    pub source: String,
}

/// Every claim of `draft`, each checked against the `cited` passages (and, for amounts,
/// the `known` ones), in the order they occur.
pub fn check_claims(rules: &[ClaimRule], draft: &str, cited: &[Cited<'_>], known: &[Known]) -> Vec<ClaimCheck> {
    let passages: Vec<Passage<'_>> =
        cited.iter().map(|c| Passage { cited: *c, facts: facts_in(c.text), normalized: normalize(c.text) }).collect();
    let mut out = Vec::new();
    for (start, end) in sentences(draft) {
        let sentence = &draft[start..end];
        let markers: Vec<usize> =
            MARKER.captures_iter(sentence).filter_map(|c| c.get(1)?.as_str().parse().ok()).collect();
        // The sentence's own citations are asked first, then the rest of the draft's.
        let mut order: Vec<&Passage<'_>> = passages.iter().filter(|p| markers.contains(&p.cited.marker)).collect();
        order.extend(passages.iter().filter(|p| !markers.contains(&p.cited.marker)));
        let check =
            |claim: String, kind: ClaimKind, rule: Option<String>, verdict: (ClaimStatus, Option<String>, String)| {
                ClaimCheck {
                    sentence: sentence.to_string(),
                    start,
                    end,
                    claim,
                    kind,
                    rule,
                    status: verdict.0,
                    citation: verdict.1,
                    reason: verdict.2,
                }
            };
        let mut seen: Vec<Fact> = Vec::new();
        for found in facts_in(sentence) {
            if seen.contains(&found.fact) {
                continue;
            }
            let verdict = judge_fact(&found, &order, known);
            seen.push(found.fact.clone());
            out.push(check(found.text, found.fact.kind(), None, verdict));
        }
        let normalized = normalize(sentence);
        for rule in rules {
            let text = without(&normalized, &rule.ignore);
            if let Some(matched) = rule.patterns.find(&text) {
                let verdict = judge_phrase(rule, &matched, &order);
                out.push(check(matched, ClaimKind::Phrase, Some(rule.id.clone()), verdict));
            }
        }
    }
    out
}

struct Passage<'a> {
    cited: Cited<'a>,
    facts: Vec<Found>,
    normalized: String,
}

impl Passage<'_> {
    fn name(&self) -> String {
        format!("[{}] {}", self.cited.marker, self.cited.label)
    }
}

fn cited_names(order: &[&Passage<'_>]) -> String {
    order.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
}

fn judge_fact(claim: &Found, order: &[&Passage<'_>], known: &[Known]) -> (ClaimStatus, Option<String>, String) {
    if let Some(p) = order.iter().find(|p| p.facts.iter().any(|f| claim.fact.stated_by(&f.fact))) {
        return (ClaimStatus::Supported, Some(p.name()), format!("{} states it", p.name()));
    }
    if let Fact::Quantity { kind: ClaimKind::Money, unit, lo, .. } = &claim.fact
        && let Some(k) = known.iter().find(|k| &k.currency == unit && k.amount == *lo)
    {
        return (ClaimStatus::Supported, None, format!("the amount of {}", k.source));
    }
    for p in order {
        let other: Vec<&str> =
            p.facts.iter().filter(|f| claim.fact.same_measure(&f.fact)).map(|f| f.text.as_str()).collect();
        if !other.is_empty() {
            return (
                ClaimStatus::Contradicted,
                Some(p.name()),
                format!("{} states {}, not {}", p.name(), other.join(", "), claim.text),
            );
        }
    }
    (ClaimStatus::Unsupported, None, unsupported(&claim.text, order))
}

fn judge_phrase(rule: &ClaimRule, matched: &str, order: &[&Passage<'_>]) -> (ClaimStatus, Option<String>, String) {
    let texts: Vec<String> = order.iter().map(|p| without(&p.normalized, &rule.ignore)).collect();
    if let Some((p, _)) = order.iter().zip(&texts).find(|(_, t)| rule.patterns.find(t).is_some()) {
        return (ClaimStatus::Supported, Some(p.name()), format!("{} states it", p.name()));
    }
    for (p, t) in order.iter().zip(&texts) {
        if let Some(c) = rule.contradicted_by.iter().find(|c| c.is_in(t)) {
            return (
                ClaimStatus::Contradicted,
                Some(p.name()),
                format!("{}: {} says {:?} instead", rule.reason, p.name(), c.original()),
            );
        }
    }
    (ClaimStatus::Unsupported, None, format!("{}: {}", rule.reason, unsupported(matched, order)))
}

fn unsupported(claim: &str, order: &[&Passage<'_>]) -> String {
    if order.is_empty() {
        format!("no cited passage states {claim:?} (the draft cites none the knowledge base holds)")
    } else {
        format!("no cited passage states {claim:?} (checked {})", cited_names(order))
    }
}

/// Normalised text with the `ignore` phrases taken out.
fn without(normalized: &str, ignore: &[Phrase]) -> String {
    let mut text = normalized.to_string();
    for p in ignore {
        while text.contains(p.normalized()) {
            text = text.replace(p.normalized(), " ");
        }
    }
    text
}

/// A fact a sentence or passage states.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fact {
    /// `unit`: a currency code (money), a duration unit, or `%`. A single value has
    /// `lo == hi`.
    Quantity { kind: ClaimKind, unit: String, lo: Decimal, hi: Decimal },
    /// `date:MM-DD`, `date:YYYY-MM-DD` or `weekday:NAME`.
    Date(String),
}

impl Fact {
    fn kind(&self) -> ClaimKind {
        match self {
            Fact::Quantity { kind, .. } => *kind,
            Fact::Date(_) => ClaimKind::Date,
        }
    }

    /// Does `passage` (a fact in a passage) state this claim?
    fn stated_by(&self, passage: &Fact) -> bool {
        match (self, passage) {
            (Fact::Quantity { kind, unit, lo, hi }, Fact::Quantity { kind: pk, unit: pu, lo: plo, hi: phi }) => {
                // The same range, or a single value that the passage's range ends at.
                kind == pk && unit == pu && hi == phi && (lo == plo || lo == hi)
            }
            (Fact::Date(a), Fact::Date(b)) => a == b,
            _ => false,
        }
    }

    /// Is `other` a value of the same kind and unit (so a passage stating it, and not this
    /// one, says something else)?
    fn same_measure(&self, other: &Fact) -> bool {
        match (self, other) {
            (Fact::Quantity { kind, unit, .. }, Fact::Quantity { kind: k, unit: u, .. }) => kind == k && unit == u,
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
struct Found {
    fact: Fact,
    /// As written.
    text: String,
}

const NUM: &str = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)(?:[\s-](?:one|two|three|four|five|six|seven|eight|nine)\b)?|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|one|two|three|four|five|six|seven|eight|nine|ten";
const AMT: &str = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d{1,2})?";
const CODES: &str = r"usd|eur|gbp|cad|aud";
const MONTHS: &str = r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";

static MONEY: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)(?P<sym>[$€£])[ \t]?(?P<a1>{AMT})(?:[ \t]?(?P<c1>{CODES})\b)?|\b(?P<c2>{CODES})[ \t]?\$?(?P<a2>{AMT})\b|\b(?P<a3>{AMT})[ \t]?(?P<c3>{CODES}|dollars?|euros?)\b"
    ))
});

static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)\b(?P<a>{NUM})(?:\s*(?:-|–|to|or|and)\s*(?P<b>{NUM}))?(?:\s+|-)?(?P<unit>(?:business|working|calendar)[\s-]+days?\b|minutes?\b|mins?\b|hours?\b|hrs?\b|days?\b|weeks?\b|months?\b|years?\b|%|percent\b)"
    ))
});

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    compile(&format!(
        r"(?i)\b(?P<m1>{MONTHS})\.?[ \t]+(?P<d1>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?[ \t]+(?P<y1>\d{{4}})\b)?|\b(?P<d2>\d{{1,2}})(?:st|nd|rd|th)?[ \t]+(?:of[ \t]+)?(?P<m2>{MONTHS})\b\.?(?:,?[ \t]+(?P<y2>\d{{4}})\b)?|\b(?P<iso>\d{{4}}-\d{{2}}-\d{{2}})\b|\b(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b"
    ))
});

static MARKER: LazyLock<Regex> = LazyLock::new(|| compile(r"\[(\d{1,3})\]"));

fn compile(pattern: &str) -> Regex {
    // The patterns are constants of this module; a test compiles each of them.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("claim pattern compiles")
}

/// Each match of `re` in `text` that `take` accepts; after a match it refuses, the search
/// goes on from the next character (not after the match), so a refused match hides no
/// other (`$25\nMay 5`: `25\nMay` overlaps the amount, `May 5` is still a date).
fn each_match(re: &Regex, text: &str, mut take: impl FnMut(&regex::Captures<'_>) -> bool) {
    let mut at = 0;
    while at <= text.len() {
        let Some(c) = re.captures_at(text, at) else { return };
        let Some(all) = c.get(0) else { return };
        at = if take(&c) {
            all.end().max(all.start() + 1)
        } else {
            all.start() + text[all.start()..].chars().next().map_or(1, char::len_utf8)
        };
    }
}

/// Every fact stated in `text`, in order; overlapping matches keep the first.
fn facts_in(text: &str) -> Vec<Found> {
    let mut found: Vec<(usize, usize, Found)> = Vec::new();
    let mut add = |start: usize, end: usize, fact: Option<Fact>| -> bool {
        let Some(fact) = fact else { return false };
        if inside_identifier(text, start, end) || found.iter().any(|(s, e, _)| start < *e && *s < end) {
            return false;
        }
        found.push((start, end, Found { fact, text: text[start..end].trim().to_string() }));
        true
    };
    each_match(&MONEY, text, |c| {
        let Some(all) = c.get(0) else { return false };
        let amount = c.name("a1").or(c.name("a2")).or(c.name("a3")).and_then(|a| number(a.as_str()));
        let currency = c.name("c1").or(c.name("c2")).or(c.name("c3")).map_or_else(
            || match c.name("sym").map(|s| s.as_str()) {
                Some("€") => "EUR".to_string(),
                Some("£") => "GBP".to_string(),
                _ => "USD".to_string(),
            },
            |code| match code.as_str().to_ascii_lowercase().as_str() {
                "dollar" | "dollars" => "USD".to_string(),
                "euro" | "euros" => "EUR".to_string(),
                other => other.to_ascii_uppercase(),
            },
        );
        add(
            all.start(),
            all.end(),
            amount.map(|a| Fact::Quantity { kind: ClaimKind::Money, unit: currency, lo: a, hi: a }),
        )
    });
    each_match(&DATE, text, |c| c.get(0).is_some_and(|all| add(all.start(), all.end(), date(c))));
    each_match(&QUANTITY, text, |c| {
        let Some(all) = c.get(0) else { return false };
        let lo = c.name("a").and_then(|a| number(a.as_str()));
        let hi = c.name("b").map_or(lo, |b| number(b.as_str()));
        let unit = c.name("unit").map(|u| unit(u.as_str()));
        let fact = match (lo, hi, unit) {
            (Some(lo), Some(hi), Some((kind, unit))) => Some(Fact::Quantity { kind, unit: unit.to_string(), lo, hi }),
            _ => None,
        };
        add(all.start(), all.end(), fact)
    });
    found.sort_by_key(|(s, _, _)| *s);
    found.into_iter().map(|(_, _, f)| f).collect()
}

/// A match that is part of an identifier (an anchor `the-30-day-window`, an order number)
/// states nothing.
fn inside_identifier(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let mut after = text[end..].chars();
    let joined = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '#' | '/'));
    // A currency sign may follow letters (`US$25`, `C$10`): that is still an amount.
    let sign = text[start..].starts_with(['$', '€', '£']);
    (joined(before) && !sign)
        || (matches!(after.next(), Some('-' | '_')) && after.next().is_some_and(char::is_alphanumeric))
}

fn unit(u: &str) -> (ClaimKind, &'static str) {
    let u = u.to_ascii_lowercase();
    let d = ClaimKind::Duration;
    match u.as_str() {
        "%" | "percent" => (ClaimKind::Percent, "%"),
        _ if u.starts_with("business") || u.starts_with("working") => (d, "business day"),
        _ if u.starts_with("calendar") || u.starts_with("day") => (d, "day"),
        _ if u.starts_with("min") => (d, "minute"),
        _ if u.starts_with('h') => (d, "hour"),
        _ if u.starts_with('w') => (d, "week"),
        _ if u.starts_with("mo") => (d, "month"),
        _ => (d, "year"),
    }
}

fn month(m: &str) -> Option<u32> {
    let m = m.to_ascii_lowercase();
    let names = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    names.iter().position(|n| m.starts_with(n)).and_then(|i| u32::try_from(i + 1).ok())
}

fn date(c: &regex::Captures<'_>) -> Option<Fact> {
    if let Some(wd) = c.name("wd") {
        let day = wd.as_str().to_ascii_lowercase();
        return Some(Fact::Date(format!("weekday:{}", day.trim_end_matches('s'))));
    }
    if let Some(iso) = c.name("iso") {
        return Some(Fact::Date(format!("date:{}", iso.as_str())));
    }
    let written = c.name("m1").or(c.name("m2"))?.as_str();
    // `items 2 may be returned`: the verb, not the month (which is written `May`).
    if written == "may" {
        return None;
    }
    let m = month(written)?;
    let d: u32 = c.name("d1").or(c.name("d2"))?.as_str().parse().ok()?;
    if !(1..=31).contains(&d) {
        return None;
    }
    Some(Fact::Date(match c.name("y1").or(c.name("y2")) {
        Some(y) => format!("date:{}-{m:02}-{d:02}", y.as_str()),
        None => format!("date:{m:02}-{d:02}"),
    }))
}

/// A number written in digits (`1,250.50`) or words (`thirty`, `twenty-four`).
fn number(s: &str) -> Option<Decimal> {
    let s = s.trim().to_ascii_lowercase();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        return s.replace(',', "").parse::<Decimal>().ok().map(|d| d.normalize());
    }
    const SMALL: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    let mut total = 0i64;
    for w in s.split(|c: char| c == '-' || c.is_whitespace()).filter(|w| !w.is_empty()) {
        if let Some(i) = SMALL.iter().position(|n| *n == w) {
            total += i64::try_from(i).ok()?;
        } else if let Some(i) = TENS.iter().position(|n| *n == w) {
            total += (i64::try_from(i).ok()? + 2) * 10;
        } else {
            return None;
        }
    }
    Some(Decimal::from(total))
}

/// The day a sentence promises something by, counted from `sent_on`: the first date it
/// states (`December 11`, `2026-12-11`, `Friday`: the next one after `sent_on`;
/// `tomorrow`), else the longest end of the first duration (`within 5-7 business days`:
/// seven working days on), else `None` (it states no time).
pub fn promised_by(sentence: &str, sent_on: jiff::civil::Date) -> Option<jiff::civil::Date> {
    use jiff::ToSpan;
    let lower = sentence.to_lowercase();
    if lower.contains("tomorrow") || lower.contains("tonight") {
        return sent_on.checked_add(1.day()).ok();
    }
    for found in facts_in(sentence) {
        match found.fact {
            Fact::Date(d) => return date_after(&d, sent_on),
            Fact::Quantity { kind: ClaimKind::Duration, unit, hi, .. } => {
                let n = i64::try_from(hi.ceil().mantissa()).ok().filter(|n| (0..=3650).contains(n))?;
                return match unit.as_str() {
                    // Within hours or minutes: the days they reach into, at least the next.
                    "minute" => sent_on.checked_add(((n + 24 * 60 - 1) / (24 * 60)).max(1).days()).ok(),
                    "hour" => sent_on.checked_add(((n + 23) / 24).max(1).days()).ok(),
                    "business day" => {
                        let mut day = sent_on;
                        let mut left = n;
                        while left > 0 {
                            day = day.checked_add(1.day()).ok()?;
                            if !matches!(day.weekday(), jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday) {
                                left -= 1;
                            }
                        }
                        Some(day)
                    }
                    "week" => sent_on.checked_add((n * 7).days()).ok(),
                    "month" => sent_on.checked_add(n.months()).ok(),
                    "year" => sent_on.checked_add(n.years()).ok(),
                    _ => sent_on.checked_add(n.days()).ok(),
                };
            }
            Fact::Quantity { .. } => {}
        }
    }
    None
}

/// The day a stated date (`date:YYYY-MM-DD`, `date:MM-DD`, `weekday:NAME`) names, said on
/// `sent_on`: a date without a year, or a weekday, is the next one from then on.
fn date_after(stated: &str, sent_on: jiff::civil::Date) -> Option<jiff::civil::Date> {
    use jiff::ToSpan;
    if let Some(day) = stated.strip_prefix("weekday:") {
        let names = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
        let want = names.iter().position(|n| *n == day)?;
        let mut d = sent_on.checked_add(1.day()).ok()?;
        while usize::try_from(d.weekday().to_monday_zero_offset()).ok()? != want {
            d = d.checked_add(1.day()).ok()?;
        }
        return Some(d);
    }
    let date = stated.strip_prefix("date:")?;
    if let Ok(full) = date.parse::<jiff::civil::Date>() {
        return Some(full);
    }
    let (m, d) = date.split_once('-')?;
    let (m, d): (i8, i8) = (m.parse().ok()?, d.parse().ok()?);
    let this_year = jiff::civil::Date::new(sent_on.year(), m, d).ok()?;
    if this_year >= sent_on { Some(this_year) } else { jiff::civil::Date::new(sent_on.year() + 1, m, d).ok() }
}

/// The sentences of `text` as byte ranges, trimmed: cut at `.`, `!` or `?` before
/// whitespace (citation markers right after the stop stay with the sentence) and at line
/// ends.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut push = |start: usize, end: usize| {
        let piece = &text[start..end];
        let lead = piece.len() - piece.trim_start().len();
        let trimmed = piece.trim();
        if !trimmed.is_empty() {
            out.push((start + lead, start + lead + trimmed.len()));
        }
    };
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                push(start, i);
                start = i + 1;
            }
            b'.' | b'!' | b'?' if bytes.get(i + 1).is_none_or(u8::is_ascii_whitespace) => {
                let mut end = i + 1;
                // `… 30 days. [1] [2]`: the markers belong to this sentence.
                loop {
                    let mut j = end;
                    while bytes.get(j).is_some_and(|b| *b == b' ' || *b == b'\t') {
                        j += 1;
                    }
                    match MARKER.find(&text[j..]) {
                        Some(m) if m.start() == 0 => end = j + m.end(),
                        _ => break,
                    }
                }
                push(start, end);
                start = end;
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    push(start, bytes.len());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn facts(text: &str) -> Vec<(String, Fact)> {
        facts_in(text).into_iter().map(|f| (f.text, f.fact)).collect()
    }

    fn q(kind: ClaimKind, unit: &str, lo: &str, hi: &str) -> Fact {
        Fact::Quantity { kind, unit: unit.into(), lo: lo.parse().unwrap(), hi: hi.parse().unwrap() }
    }

    #[test]
    fn a_promise_falls_due_on_the_date_or_after_the_time_it_states() {
        let sent: jiff::civil::Date = "2026-12-03".parse().unwrap(); // a Thursday
        let due = |s: &str| promised_by(s, sent).map(|d| d.to_string());
        assert_eq!(due("It will arrive by Friday."), Some("2026-12-04".into()));
        assert_eq!(due("It will arrive by Thursday."), Some("2026-12-10".into()), "the next one, not today");
        assert_eq!(due("You will see it within 5-7 business days."), Some("2026-12-14".into()));
        assert_eq!(due("Expect it in 10 days."), Some("2026-12-13".into()));
        assert_eq!(due("Within two weeks."), Some("2026-12-17".into()));
        assert_eq!(due("Within 24 hours."), Some("2026-12-04".into()));
        assert_eq!(due("Within 72 hours."), Some("2026-12-06".into()), "three days on, not the next");
        assert_eq!(due("In 30 minutes."), Some("2026-12-04".into()));
        assert_eq!(due("It will be delivered by tomorrow."), Some("2026-12-04".into()));
        assert_eq!(due("It will arrive on December 11."), Some("2026-12-11".into()));
        assert_eq!(due("It will arrive on January 4."), Some("2027-01-04".into()), "next year's");
        assert_eq!(due("It will arrive on 2026-12-24."), Some("2026-12-24".into()));
        assert_eq!(due("We will refund you in full."), None);
        assert_eq!(due("A $25 coupon is yours."), None, "an amount is no time");
    }

    #[test]
    fn amounts_durations_and_dates_are_read_with_their_units() {
        use ClaimKind::{Duration, Money, Percent};
        let f = facts("Refunds of $25.00 (or 25 USD, USD 25, 1,250 dollars) take 5 to 7 business days, 30-day window.");
        assert_eq!(
            f,
            vec![
                ("$25.00".into(), q(Money, "USD", "25", "25")),
                ("25 USD".into(), q(Money, "USD", "25", "25")),
                ("USD 25".into(), q(Money, "USD", "25", "25")),
                ("1,250 dollars".into(), q(Money, "USD", "1250", "1250")),
                ("5 to 7 business days".into(), q(Duration, "business day", "5", "7")),
                ("30-day".into(), q(Duration, "day", "30", "30")),
            ]
        );
        assert_eq!(facts("It is US$25.")[0].1, q(Money, "USD", "25", "25"), "a sign after letters is an amount");
        assert_eq!(facts("within thirty days, twenty-four hours, 10% off")[0].1, q(Duration, "day", "30", "30"));
        assert_eq!(facts("within thirty days, twenty-four hours, 10% off")[1].1, q(Duration, "hour", "24", "24"));
        assert_eq!(facts("within thirty days, twenty-four hours, 10% off")[2].1, q(Percent, "%", "10", "10"));
        assert_eq!(
            facts("by December 3rd, on 3 Dec 2026, 2026-12-03 or Friday").into_iter().map(|f| f.1).collect::<Vec<_>>(),
            vec![
                Fact::Date("date:12-03".into()),
                Fact::Date("date:2026-12-03".into()),
                Fact::Date("date:2026-12-03".into()),
                Fact::Date("weekday:friday".into()),
            ]
        );
    }

    #[test]
    fn identifiers_and_bare_numbers_state_nothing() {
        for text in [
            "the-30-day-window",
            "order #W2378156",
            "tracking number 426588568563",
            "[1] [2]",
            "comes in 5 variants",
            "seventeen",
        ] {
            assert!(facts(text).is_empty(), "{text:?}: {:?}", facts(text));
        }
    }

    proptest::proptest! {
        /// Whatever the text, every claim marks a sentence of it (a valid span holding the
        /// sentence), and a passage that is the draft itself states every fact in it.
        #[test]
        fn claims_mark_their_sentences_in_any_text(
            text in "([A-Za-z$€.,!?\\[\\]0-9 -]|\n|days|hours|\\$25|30 days|Friday|May 5|\u{e9}|\u{1F44B}){0,60}"
        ) {
            let cited = [Cited { marker: 1, label: "self", text: &text }];
            for c in check_claims(&[], &text, &cited, &[]) {
                proptest::prop_assert_eq!(text.get(c.start..c.end), Some(c.sentence.as_str()));
                proptest::prop_assert_eq!(c.status, ClaimStatus::Supported, "{:?}", c);
            }
        }
    }

    #[test]
    fn sentences_keep_their_markers_and_decimals() {
        let text = "Hi Ava,\nIt is $25.00 now. Returns take 30 days. [1] [2]\nDone! Yes? ok";
        let got: Vec<&str> = sentences(text).into_iter().map(|(s, e)| &text[s..e]).collect();
        assert_eq!(got, vec!["Hi Ava,", "It is $25.00 now.", "Returns take 30 days. [1] [2]", "Done!", "Yes?", "ok"]);
    }
}
