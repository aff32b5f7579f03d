//! The knowledge base index: articles and their passages in SQLite FTS5 (migration 0004).
//!
//! The store knows nothing about Markdown: the engine parses article files into
//! [`KbArticle`]s and hands them over. What the store owns is the SQL: which files must be
//! parsed again ([`plan`]: content hashes), replacing and removing articles in one
//! transaction ([`apply`], run by the writer thread so the process keeps one write
//! connection), and search with bm25 ranking and snippets over queries built from the
//! words [`query_terms`] finds in the user's text, each quoted, so user text is never read
//! as FTS5 syntax.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// Most results one search returns, whatever the caller asks for.
pub const MAX_SEARCH_LIMIT: usize = 200;

/// Shortest `word*` prefix searched as a prefix (shorter ones are plain words): a short
/// prefix expands to a large part of the vocabulary, which costs a merge of all of it.
pub const MIN_PREFIX_CHARS: usize = 3;

/// Fewest passages a word must be in to count as common (see [`search`]).
pub const COMMON_WORD_MIN_PASSAGES: usize = 256;

/// Most terms taken from one query; the rest are ignored (each term costs a posting-list scan).
const MAX_QUERY_TERMS: usize = 24;

/// Relative weights of the indexed columns in bm25: title, tags, heading, body. A match
/// in a section's heading or the article's title says more about the passage than one
/// word somewhere in its text.
const BM25_WEIGHTS: &str = "3.0, 2.0, 3.0, 1.0";

/// Snippet markers around matched words, the ellipsis for cut text, and its length in tokens.
pub const SNIPPET_OPEN: &str = "«";
pub const SNIPPET_CLOSE: &str = "»";
const SNIPPET_ELLIPSIS: &str = "…";
const SNIPPET_TOKENS: u32 = 20;

/// Words too common to help ranking; dropped from a query unless nothing else is left.
const STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "do", "does", "for", "from",
    "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or", "our",
    "please", "so", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to", "was", "we",
    "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// One article, parsed, ready to index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbArticle {
    pub id: String,
    /// The file, relative to the knowledge directory (`returns-window.md`).
    pub path: String,
    /// SHA-256 of the file's bytes, hex: the file is parsed again only when it changes.
    pub content_hash: String,
    pub title: String,
    pub version: u32,
    pub tags: Vec<String>,
    pub owner: String,
    /// The sections, in article order.
    pub passages: Vec<KbPassage>,
}

/// One section of an article: what a citation points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbPassage {
    /// The heading's slug, unique within the article.
    pub anchor: String,
    pub heading: String,
    /// The section's Markdown text, without its heading.
    pub text: String,
}

/// A file found in the knowledge directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbFile {
    pub path: String,
    pub content_hash: String,
}

/// What an incremental re-index has to do, by comparing files on disk with the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KbPlan {
    /// New files and files whose content changed: parse these.
    pub parse: Vec<String>,
    /// Indexed files that are gone: remove these.
    pub remove: Vec<String>,
    /// Indexed files with the same content: nothing to do.
    pub unchanged: usize,
}

/// Changes to apply in one transaction.
#[derive(Debug, Clone, Default)]
pub struct KbChanges {
    /// Articles to add or to replace (matched by path).
    pub upsert: Vec<KbArticle>,
    /// Paths to remove from the index (deleted files, files that no longer parse).
    pub remove: Vec<String>,
    /// Re-read every passage into the full-text index afterwards (a full rebuild).
    pub rebuild: bool,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KbApplied {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    /// Upserts whose path was already indexed with the same content hash (skipped).
    pub unchanged: usize,
}

/// An indexed article file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KbIndexed {
    pub path: String,
    pub article_id: String,
    pub version: u32,
    pub content_hash: String,
}

/// One search result: a passage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KbHit {
    pub article_id: String,
    pub version: u32,
    pub title: String,
    pub anchor: String,
    pub heading: String,
    /// Relevance, higher is better (bm25 with its sign flipped); only comparable within one query.
    pub score: f64,
    /// A short extract of the passage around the matched words, which are marked
    /// `«` … `»`.
    pub snippet: String,
    /// The whole passage text.
    pub text: String,
}

/// Turn user text into a safe FTS5 query, or `None` when it holds no searchable word.
///
/// The text is never FTS5 syntax: it is split into words (see [`query_terms`]), each word
/// becomes a quoted string (so `AND`, `NEAR`, `title:`, `-`, `^`, `(`, `"` are just text),
/// and the words are joined with `OR`, so bm25 ranks passages matching more of them
/// first. Matching is case-insensitive, folds diacritics and stems English (`refunds`
/// finds `refund`). [`Store::kb_search`](crate::Store::kb_search) builds its queries from
/// the same quoted words.
pub fn fts_query(text: &str) -> Option<String> {
    let terms = query_terms(text);
    (!terms.is_empty()).then(|| or(&terms.iter().collect::<Vec<_>>()))
}

/// One word of a search, safe to put in an FTS5 query as [`QueryTerm::fts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTerm {
    /// Lower-cased; no ASCII punctuation or whitespace.
    pub word: String,
    /// Written with a trailing `*`: matches every word starting with it.
    pub prefix: bool,
}

impl QueryTerm {
    /// The word as an FTS5 string (`"word"` or `"word"*`). Words hold no ASCII
    /// punctuation, but quote-escaping keeps this safe on its own.
    pub fn fts(&self) -> String {
        let quoted = format!("\"{}\"", self.word.replace('"', "\"\""));
        if self.prefix { format!("{quoted}*") } else { quoted }
    }
}

/// The words of a search: runs of letters and digits (whitespace, ASCII punctuation and
/// common Unicode punctuation separate them). A word written with a trailing `*`
/// (`ship*`) and at least [`MIN_PREFIX_CHARS`] characters is a prefix. Common English words are dropped
/// unless nothing else is left; repeated words count once; at most 24 words are kept.
pub fn query_terms(text: &str) -> Vec<QueryTerm> {
    let mut terms: Vec<QueryTerm> = Vec::new();
    let mut word = String::new();
    let mut push = |word: &mut String, prefix: bool| {
        if word.chars().any(char::is_alphanumeric) {
            let lower = word.to_lowercase();
            let prefix = prefix && lower.chars().filter(|c| c.is_alphanumeric()).count() >= MIN_PREFIX_CHARS;
            let term = QueryTerm { word: lower, prefix };
            if !terms.contains(&term) {
                terms.push(term);
            }
        }
        word.clear();
    };
    for c in text.chars() {
        if is_separator(c) {
            push(&mut word, c == '*');
        } else {
            word.push(c);
        }
    }
    push(&mut word, false);
    if terms.iter().any(|t| !STOPWORDS.contains(&t.word.as_str())) {
        terms.retain(|t| !STOPWORDS.contains(&t.word.as_str()));
    }
    terms.truncate(MAX_QUERY_TERMS);
    terms
}

fn or(terms: &[&QueryTerm]) -> String {
    terms.iter().map(|t| t.fts()).collect::<Vec<_>>().join(" OR ")
}

fn and(terms: &[&QueryTerm]) -> String {
    terms.iter().map(|t| t.fts()).collect::<Vec<_>>().join(" AND ")
}

/// Word boundaries for [`fts_query`]: whitespace, ASCII punctuation, and the Unicode
/// punctuation and symbols people type around words. Anything else (letters, digits,
/// combining marks, other scripts) stays in the word, and the FTS5 tokenizer splits
/// what remains inside the quotes.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || c.is_ascii_punctuation()
        || c.is_control()
        || matches!(
            c,
            '\u{2010}'..='\u{205E}' // dashes, quotes, bullets, ellipsis, primes
                | '\u{00A1}'..='\u{00BF}' // Latin-1 punctuation and symbols
                | '\u{00D7}' | '\u{00F7}'
                | '\u{3000}'..='\u{303F}' // CJK punctuation
                | '\u{FF01}'..='\u{FF0F}' | '\u{FF1A}'..='\u{FF20}' // full-width punctuation
        )
}

/// Compare files on disk with the index: which to parse, which to remove, how many are unchanged.
pub(crate) fn plan(conn: &Connection, files: &[KbFile]) -> Result<KbPlan, StoreError> {
    let indexed: HashMap<String, String> = conn
        .prepare_cached("SELECT path, content_hash FROM kb_articles")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut out = KbPlan::default();
    let mut present = BTreeSet::new();
    for f in files {
        present.insert(f.path.as_str());
        match indexed.get(&f.path) {
            Some(hash) if *hash == f.content_hash => out.unchanged += 1,
            _ => out.parse.push(f.path.clone()),
        }
    }
    out.remove = indexed.keys().filter(|p| !present.contains(p.as_str())).cloned().collect();
    out.remove.sort();
    out.parse.sort();
    Ok(out)
}

/// Apply changes in the caller's transaction. An upsert replaces whatever is indexed at
/// its path (and refuses an id another path already holds); one whose path is indexed
/// with the same content hash is skipped, so replaying a change is harmless.
pub(crate) fn apply(conn: &Connection, changes: &KbChanges) -> Result<KbApplied, StoreError> {
    let mut out = KbApplied::default();
    for path in &changes.remove {
        out.removed += conn.prepare_cached("DELETE FROM kb_articles WHERE path = ?")?.execute([path])?;
    }
    for a in &changes.upsert {
        let existing: Option<String> = conn
            .prepare_cached("SELECT content_hash FROM kb_articles WHERE path = ?")?
            .query_row([&a.path], |r| r.get(0))
            .optional()?;
        if existing.as_deref() == Some(a.content_hash.as_str()) && !changes.rebuild {
            out.unchanged += 1;
            continue;
        }
        let other: Option<String> = conn
            .prepare_cached("SELECT path FROM kb_articles WHERE id = ? AND path <> ?")?
            .query_row([&a.id, &a.path], |r| r.get(0))
            .optional()?;
        if let Some(other_path) = other {
            return Err(StoreError::KnowledgeIdTaken { id: a.id.clone(), path: a.path.clone(), other_path });
        }
        if existing.is_some() {
            conn.prepare_cached("DELETE FROM kb_articles WHERE path = ?")?.execute([&a.path])?;
            out.updated += 1;
        } else {
            out.added += 1;
        }
        let tags = serde_json::to_string(&a.tags).map_err(|e| StoreError::InvalidEvent { reason: e.to_string() })?;
        conn.prepare_cached(
            "INSERT INTO kb_articles (id, path, title, version, tags, owner, content_hash)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )?
        .execute(params![a.id, a.path, a.title, a.version, tags, a.owner, a.content_hash])?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO kb_passages (article_id, ord, anchor, heading, body) VALUES (?, ?, ?, ?, ?)",
        )?;
        for (ord, p) in a.passages.iter().enumerate() {
            insert.execute(params![a.id, i64::try_from(ord).unwrap_or(i64::MAX), p.anchor, p.heading, p.text])?;
        }
    }
    if changes.rebuild {
        conn.execute_batch("INSERT INTO kb_fts (kb_fts) VALUES ('rebuild')")?;
    }
    Ok(out)
}

/// Every indexed file, by path.
pub(crate) fn indexed(conn: &Connection) -> Result<Vec<KbIndexed>, StoreError> {
    let rows = conn
        .prepare_cached("SELECT path, id, version, content_hash FROM kb_articles ORDER BY path")?
        .query_map([], |r| {
            Ok(KbIndexed { path: r.get(0)?, article_id: r.get(1)?, version: r.get(2)?, content_hash: r.get(3)? })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Article id → current version, as text (the shape `Facts::articles` takes).
pub(crate) fn versions(conn: &Connection) -> Result<BTreeMap<String, String>, StoreError> {
    let rows = conn
        .prepare_cached("SELECT id, version FROM kb_articles")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?.to_string())))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One article with its passages in order.
pub(crate) fn article(conn: &Connection, id: &str) -> Result<Option<KbArticle>, StoreError> {
    let head = conn
        .prepare_cached("SELECT id, path, content_hash, title, version, tags, owner FROM kb_articles WHERE id = ?")?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })
        .optional()?;
    let Some((id, path, content_hash, title, version, tags, owner)) = head else {
        return Ok(None);
    };
    let tags: Vec<String> = serde_json::from_str(&tags)
        .map_err(|e| StoreError::Corrupt { path: path.clone().into(), detail: format!("tags of {id}: {e}") })?;
    let passages = conn
        .prepare_cached("SELECT anchor, heading, body FROM kb_passages WHERE article_id = ? ORDER BY ord")?
        .query_map([&id], |r| Ok(KbPassage { anchor: r.get(0)?, heading: r.get(1)?, text: r.get(2)? }))?
        .collect::<Result<_, _>>()?;
    Ok(Some(KbArticle { id, path, content_hash, title, version, tags, owner, passages }))
}

/// The best passages for `query`, best first; empty when the query holds no searchable
/// word (see [`query_terms`]).
///
/// Ranking costs about 2 µs per candidate passage (bm25 in FTS5), and bm25 also reads the
/// whole posting list of every word in the query once, for its idf. Ranking every passage
/// that holds a very common word (`order`, `customer` in a support knowledge base) would
/// cost tens of milliseconds at 10,000 articles, for words that barely move the ranking
/// (bm25's idf of a word found in a large share of passages is small, and near zero past
/// half). So the words are split into rare and common ones first: a word is common when at
/// least [`common_threshold`] passages hold it (a count that stops there, so it is cheap).
/// Common words then act like stop words when rarer ones are present. Candidates are:
///
/// 1. when some word is rare: passages holding a rare word, ranked on the rare words;
/// 2. when every word is common: passages holding all of them, if those are not common
///    themselves; then passages whose title or heading holds one of them;
/// 3. to fill up to `limit`: passages holding a common word, in index order (scored, but
///    not ranked against all the others: that is the cost this avoids).
///
/// Scores are bm25 within each step, and a later step's hits come after an earlier
/// step's. On a small knowledge base no word is common and this is plain bm25 over `OR`.
pub(crate) fn search(conn: &Connection, query: &str, limit: usize) -> Result<Vec<KbHit>, StoreError> {
    let terms = query_terms(query);
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let limit = limit.clamp(1, MAX_SEARCH_LIMIT);
    let threshold = common_threshold(conn)?;
    let mut rare = Vec::new();
    let mut common = Vec::new();
    for t in &terms {
        if matches_at_least(conn, &t.fts(), threshold)? {
            common.push(t);
        } else {
            rare.push(t);
        }
    }
    let mut steps = Vec::new();
    if !rare.is_empty() {
        steps.push((or(&rare), true));
    } else {
        let all = and(&common);
        if common.len() > 1 && !matches_at_least(conn, &all, threshold)? {
            steps.push((all, true));
        }
        // Tags are the same on every passage of an article, so they pick passages poorly
        // and make this step several times larger.
        steps.push((format!("{{title heading}} : ({})", or(&common)), true));
    }
    if !common.is_empty() {
        steps.push((or(&common), false));
    }
    let mut hits: Vec<KbHit> = Vec::new();
    for (expr, rank) in &steps {
        let more = if *rank { ranked(conn, expr, limit)? } else { unranked(conn, expr, limit)? };
        append_hits(&mut hits, more, limit);
        if hits.len() >= limit {
            break;
        }
    }
    Ok(hits)
}

/// Passages a word must be in to count as common: one in 32, and at least 256 (so on a
/// small knowledge base no word is common).
pub(crate) fn common_threshold(conn: &Connection) -> Result<usize, StoreError> {
    // Kept by the passage triggers: counting 40,000 passage rows would cost ~10 ms.
    let passages: i64 =
        conn.prepare_cached("SELECT passages FROM kb_stats WHERE id = 1")?.query_row([], |r| r.get(0))?;
    Ok((usize::try_from(passages).unwrap_or(0) / 32).max(COMMON_WORD_MIN_PASSAGES))
}

/// Do at least `n` passages match `expr`? Stops counting at `n`.
fn matches_at_least(conn: &Connection, expr: &str, n: usize) -> Result<bool, StoreError> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let found: i64 = conn
        .prepare_cached("SELECT count(*) FROM (SELECT 1 FROM kb_fts WHERE kb_fts MATCH ?1 LIMIT ?2)")?
        .query_row(params![expr, n], |r| r.get(0))?;
    Ok(found >= n)
}

fn append_hits(hits: &mut Vec<KbHit>, more: Vec<KbHit>, limit: usize) {
    for h in more {
        if hits.len() >= limit {
            break;
        }
        if !hits.iter().any(|x| x.article_id == h.article_id && x.anchor == h.anchor) {
            hits.push(h);
        }
    }
}

/// The first `limit` passages matching one FTS5 expression in index order, scored and
/// sorted among themselves: bm25 and the snippet are computed for those rows only.
fn unranked(conn: &Connection, expr: &str, limit: usize) -> Result<Vec<KbHit>, StoreError> {
    let sql = format!(
        "SELECT p.article_id, a.version, a.title, p.anchor, p.heading, -m.score, m.snippet, p.body
         FROM (SELECT rowid, bm25(kb_fts, {BM25_WEIGHTS}) AS score,
                      snippet(kb_fts, 3, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', '{SNIPPET_ELLIPSIS}', {SNIPPET_TOKENS})
                          AS snippet
               FROM kb_fts
               WHERE kb_fts MATCH ?1
               LIMIT ?2) AS m
         JOIN kb_passages p ON p.id = m.rowid
         JOIN kb_articles a ON a.id = p.article_id
         ORDER BY m.score"
    );
    hits(conn, &sql, expr, limit)
}

/// The best `limit` passages for one FTS5 expression (built only from quoted words).
fn ranked(conn: &Connection, expr: &str, limit: usize) -> Result<Vec<KbHit>, StoreError> {
    // FTS5 orders by `rank` itself (the ORDER BY is consumed by the virtual table), so the
    // snippet is only made for the rows the LIMIT keeps; with `ORDER BY bm25(..)` SQLite
    // would compute every result column, snippet included, for every match before sorting.
    // The joins happen outside the LIMITed subquery for the same reason.
    let sql = format!(
        "SELECT p.article_id, a.version, a.title, p.anchor, p.heading, -m.rank, m.snippet, p.body
         FROM (SELECT rowid, rank,
                      snippet(kb_fts, 3, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', '{SNIPPET_ELLIPSIS}', {SNIPPET_TOKENS})
                          AS snippet
               FROM kb_fts
               WHERE kb_fts MATCH ?1 AND rank MATCH 'bm25({BM25_WEIGHTS})'
               ORDER BY rank
               LIMIT ?2) AS m
         JOIN kb_passages p ON p.id = m.rowid
         JOIN kb_articles a ON a.id = p.article_id
         ORDER BY m.rank"
    );
    hits(conn, &sql, expr, limit)
}

fn hits(conn: &Connection, sql: &str, expr: &str, limit: usize) -> Result<Vec<KbHit>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let hits = conn
        .prepare_cached(sql)?
        .query_map(params![expr, limit], |r| {
            Ok(KbHit {
                article_id: r.get(0)?,
                version: r.get(1)?,
                title: r.get(2)?,
                anchor: r.get(3)?,
                heading: r.get(4)?,
                score: r.get(5)?,
                snippet: r.get(6)?,
                text: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_and_ored() {
        assert_eq!(fts_query("refund timing").as_deref(), Some(r#""refund" OR "timing""#));
    }

    #[test]
    fn fts_syntax_is_only_text() {
        let q = fts_query(r#"title:refund NEAR(a b) "x" -y ^z AND (c OR d)"#).unwrap_or_default();
        assert_eq!(
            q, r#""title" OR "refund" OR "near" OR "b" OR "x" OR "y" OR "z" OR "c" OR "d""#,
            "column filters, operators, groups and quotes become quoted words"
        );
    }

    #[test]
    fn prefixes_need_a_trailing_star_and_three_characters() {
        assert_eq!(fts_query("ship* re* r*").as_deref(), Some(r#""ship"* OR "re" OR "r""#));
        assert_eq!(fts_query("*ship").as_deref(), Some(r#""ship""#), "a leading star is just punctuation");
    }

    #[test]
    fn nothing_searchable_gives_none() {
        for q in ["", "   ", "\"\"", "*", "-- ( ) :", "😀🙂", "“”…"] {
            assert_eq!(fts_query(q), None, "{q:?}");
        }
    }

    #[test]
    fn stopwords_go_unless_nothing_else_is_left() {
        assert_eq!(fts_query("how do I return it").as_deref(), Some(r#""return""#));
        assert_eq!(fts_query("how do I").as_deref(), Some(r#""how" OR "do" OR "i""#));
    }

    #[test]
    fn unicode_words_survive_and_repeats_count_once() {
        assert_eq!(fts_query("Café CAFÉ naïve—größe").as_deref(), Some(r#""café" OR "naïve" OR "größe""#));
        assert_eq!(fts_query("返品 について").as_deref(), Some(r#""返品" OR "について""#));
    }
}
