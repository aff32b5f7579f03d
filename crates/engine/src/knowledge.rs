//! The knowledge base: Markdown articles parsed here, indexed and searched by the store.
//!
//! An article is one `<id>.md` file in the workspace's knowledge directory (format in
//! `assets/knowledge/README.md`): a front matter block between `---` lines with `id`,
//! `title`, `version`, `tags` and `owner`, then sections, each starting at a `## `
//! heading. Each section is a passage; its anchor is the heading's slug. Parse errors
//! name `file:line:column`.
//!
//! Indexing is incremental: every file is hashed, only new and changed files are parsed
//! (`Store::kb_plan`), and deleted or broken files are taken out of the index, all in one
//! transaction. [`Engine::open`] indexes the directory, so the engine's
//! `Facts::articles` (id → current version) always come from the index.
//!
//! A [`Citation`] resolves when its article exists at the cited version, its anchor (if
//! any) names a passage, and its quote (if any) occurs in that passage; see
//! [`resolve_citation`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use countersign_core::model::Citation;
use countersign_store::{KbArticle, KbChanges, KbFile, KbHit, KbPassage, Store};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{Engine, EngineError};

/// How many distinct searches `Engine::kb_search` keeps before starting over.
const SEARCH_CACHE_ENTRIES: usize = 4096;

/// The front matter keys, all required.
const KEYS: [&str; 5] = ["id", "title", "version", "tags", "owner"];

/// A problem in one article file, at `file:line:column` (1-based; columns count characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for ArticleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

impl std::error::Error for ArticleError {}

/// What indexing the knowledge directory did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KbIndexReport {
    /// The knowledge directory.
    pub dir: PathBuf,
    /// New articles indexed.
    pub added: usize,
    /// Articles whose file changed, parsed and indexed again.
    pub updated: usize,
    /// Articles taken out of the index: their file was deleted, or no longer parses.
    pub removed: usize,
    /// Files whose content hash matched the index: not parsed.
    pub unchanged: usize,
    /// Files that could not be parsed (see `errors`); they are not in the index.
    pub failed: usize,
    /// Articles in the index now.
    pub articles: usize,
    pub errors: Vec<ArticleError>,
    /// Wall time of the whole run, in milliseconds.
    pub elapsed_ms: u64,
}

impl KbIndexReport {
    /// Did the run parse, write or remove anything?
    pub fn did_work(&self) -> bool {
        self.added + self.updated + self.removed + self.failed > 0
    }
}

/// Whether a citation resolves, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CitationResolution {
    /// The article exists at the cited version (or the citation names none), the anchor
    /// names one of its passages and the quote occurs there. `anchor` is the passage the
    /// quote was found in when the citation did not name one.
    Resolved { article_id: String, version: String, anchor: Option<String> },
    /// No indexed article has this id.
    UnknownArticle { article_id: String },
    /// The article exists, at another version.
    WrongVersion { article_id: String, cited: String, current: String },
    /// The article has no passage with this anchor.
    UnknownAnchor { article_id: String, anchor: String, anchors: Vec<String> },
    /// The quote is not in the named passage (or, without an anchor, in any passage).
    QuoteNotFound { article_id: String, anchor: Option<String> },
}

impl CitationResolution {
    pub fn is_resolved(&self) -> bool {
        matches!(self, CitationResolution::Resolved { .. })
    }

    /// One sentence for a reviewer.
    pub fn describe(&self) -> String {
        match self {
            CitationResolution::Resolved { article_id, version, anchor } => match anchor {
                Some(a) => format!("{article_id} v{version} #{a} resolves"),
                None => format!("{article_id} v{version} resolves"),
            },
            CitationResolution::UnknownArticle { article_id } => {
                format!("{article_id} is not in the knowledge base")
            }
            CitationResolution::WrongVersion { article_id, cited, current } => {
                format!("{article_id} is at version {current}, the citation quotes version {cited}")
            }
            CitationResolution::UnknownAnchor { article_id, anchor, anchors } => {
                format!("{article_id} has no section #{anchor} (it has #{})", anchors.join(", #"))
            }
            CitationResolution::QuoteNotFound { article_id, anchor } => match anchor {
                Some(a) => format!("the quoted text is not in {article_id} #{a}"),
                None => format!("the quoted text is not in {article_id}"),
            },
        }
    }
}

/// Does `citation` resolve against `article` (the indexed article with its id, if any)?
///
/// The quote is compared whitespace-normalised: runs of whitespace are one space, and
/// Markdown emphasis and code markers (`*`, `` ` ``) and curly quotes (`’` → `'`, `“ ”` → `"`)
/// are ignored on both sides, so a quote of the rendered text matches the source. Case
/// and every other character must match.
pub fn resolve_citation(citation: &Citation, article: Option<&KbArticle>) -> CitationResolution {
    let article_id = citation.article_id.clone();
    let Some(article) = article.filter(|a| a.id == citation.article_id) else {
        return CitationResolution::UnknownArticle { article_id };
    };
    let current = article.version.to_string();
    if let Some(cited) = &citation.version
        && cited.trim() != current
    {
        return CitationResolution::WrongVersion { article_id, cited: cited.clone(), current };
    }
    let passages: Vec<&KbPassage> = match &citation.anchor {
        Some(anchor) => match article.passages.iter().find(|p| &p.anchor == anchor) {
            Some(p) => vec![p],
            None => {
                return CitationResolution::UnknownAnchor {
                    article_id,
                    anchor: anchor.clone(),
                    anchors: article.passages.iter().map(|p| p.anchor.clone()).collect(),
                };
            }
        },
        None => article.passages.iter().collect(),
    };
    let quote = normalize_quote(&citation.quote);
    if quote.is_empty() {
        return CitationResolution::Resolved { article_id, version: current, anchor: citation.anchor.clone() };
    }
    match passages.iter().find(|p| normalize_quote(&p.text).contains(&quote)) {
        Some(p) => CitationResolution::Resolved { article_id, version: current, anchor: Some(p.anchor.clone()) },
        None => CitationResolution::QuoteNotFound { article_id, anchor: citation.anchor.clone() },
    }
}

/// Whitespace collapsed, emphasis and code markers dropped, curly quotes made straight.
pub fn normalize_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        let c = match c {
            '*' | '`' => continue,
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            c => c,
        };
        if c.is_whitespace() {
            space = !out.is_empty();
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// The anchor of a heading: letters and digits lower-cased, spaces, `-` and `_` as one
/// `-`, other punctuation dropped (`Credit cards & PayPal` → `credit-cards-paypal`).
pub fn slug(heading: &str) -> String {
    let mut out = String::with_capacity(heading.len());
    let mut dash = false;
    for c in heading.chars() {
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        } else if c.is_whitespace() || c == '-' || c == '_' {
            dash = true;
        }
    }
    out
}

/// Parse one article file. `file` is used for errors and its name (without `.md`) must
/// equal the article's id; the returned article's `path` is the file name and its
/// `content_hash` the SHA-256 of `text`.
pub fn parse_article(file: &Path, text: &str) -> Result<KbArticle, ArticleError> {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = name.strip_suffix(".md").unwrap_or(&name).to_string();
    let mut article = Parser { file: file.display().to_string(), stem }.parse(text)?;
    article.path = name;
    article.content_hash = hex::encode(Sha256::digest(text.as_bytes()));
    Ok(article)
}

struct Parser {
    file: String,
    stem: String,
}

/// A front matter value and where it starts.
struct Value<'a> {
    text: &'a str,
    line: usize,
    column: usize,
}

impl Parser {
    fn err<T>(&self, line: usize, column: usize, message: impl Into<String>) -> Result<T, ArticleError> {
        Err(ArticleError { file: self.file.clone(), line, column, message: message.into() })
    }

    fn parse(&self, text: &str) -> Result<KbArticle, ArticleError> {
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut lines =
            text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).enumerate().map(|(i, l)| (i + 1, l));
        if lines.next().map(|(_, l)| l.trim_end()) != Some("---") {
            return self.err(1, 1, "an article starts with a front matter block: a `---` line");
        }
        let mut front = Vec::new();
        let mut close = None;
        for (n, line) in lines.by_ref() {
            if line.trim_end() == "---" {
                close = Some(n);
                break;
            }
            front.push((n, line));
        }
        let Some(close) = close else {
            return self.err(1, 1, "the front matter is not closed by a `---` line");
        };
        let mut values: BTreeMap<&str, Value<'_>> = BTreeMap::new();
        for (n, line) in front {
            if line.trim().is_empty() {
                continue;
            }
            let (key, value_at) = match line.find(": ") {
                Some(i) => (&line[..i], i + 2),
                None => match line.strip_suffix(':') {
                    Some(k) => (k, line.len()),
                    None => return self.err(n, 1, format!("expected `key: value`, found {line:?}")),
                },
            };
            if key.is_empty() || key.trim() != key {
                return self.err(
                    n,
                    1,
                    format!("expected `key: value` with the key at the start of the line, found {line:?}"),
                );
            }
            let Some(known) = KEYS.iter().find(|k| **k == key) else {
                return self.err(n, 1, format!("unknown key `{key}` (the keys are {})", KEYS.join(", ")));
            };
            if let Some(first) = values.get(known) {
                return self.err(n, 1, format!("duplicate `{key}` (first given on line {})", first.line));
            }
            let raw = &line[value_at..];
            let lead = raw.len() - raw.trim_start().len();
            let column = line[..value_at + lead].chars().count() + 1;
            values.insert(known, Value { text: raw.trim(), line: n, column });
        }
        for key in KEYS {
            match values.get(key) {
                None => return self.err(close, 1, format!("the front matter has no `{key}`")),
                Some(v) if v.text.is_empty() => return self.err(v.line, v.column, format!("`{key}` is empty")),
                Some(_) => {}
            }
        }
        let get = |k: &str| values.get(k).map_or("", |v| v.text);
        let at = |k: &str| values.get(k).map_or((close, 1), |v| (v.line, v.column));

        let id = get("id");
        let (line, column) = at("id");
        if !is_kebab(id) {
            return self.err(line, column, format!("id {id:?} must be lowercase kebab-case (a-z, 0-9, single '-')"));
        }
        if id != self.stem {
            return self.err(line, column, format!("id {id:?} must equal the file name ({}.md)", self.stem));
        }
        let (line, column) = at("version");
        let version = get("version");
        let version = match version.parse::<u32>() {
            Ok(v) if v > 0 && version.bytes().all(|b| b.is_ascii_digit()) => v,
            _ => return self.err(line, column, format!("version must be a positive integer, found {version:?}")),
        };
        let tags = self.tags(values.get("tags"))?;

        let passages = self.sections(lines, close)?;
        Ok(KbArticle {
            id: id.to_string(),
            path: String::new(),
            content_hash: String::new(),
            title: get("title").to_string(),
            version,
            tags,
            owner: get("owner").to_string(),
            passages,
        })
    }

    /// `[a, b-c]`: lowercase kebab-case words; `[]` is no tags.
    fn tags(&self, value: Option<&Value<'_>>) -> Result<Vec<String>, ArticleError> {
        let Some(v) = value else { return Ok(Vec::new()) };
        let Some(inner) = v.text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
            return self.err(
                v.line,
                v.column,
                format!("tags must be a list like `[returns, delivered]`, found {:?}", v.text),
            );
        };
        if inner.trim().is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut offset = 1; // chars from the start of the value: past the `[`
        for item in inner.split(',') {
            let lead = item.chars().take_while(|c| c.is_whitespace()).count();
            let tag = item.trim();
            if !is_kebab(tag) {
                let what = if tag.is_empty() { "an empty tag".to_string() } else { format!("tag {tag:?}") };
                return self.err(
                    v.line,
                    v.column + offset + lead,
                    format!("{what}: tags are lowercase kebab-case words separated by commas"),
                );
            }
            out.push(tag.to_string());
            offset += item.chars().count() + 1;
        }
        Ok(out)
    }

    /// The body after the front matter: one passage per `## ` heading.
    fn sections<'a>(
        &self,
        lines: impl Iterator<Item = (usize, &'a str)>,
        close: usize,
    ) -> Result<Vec<KbPassage>, ArticleError> {
        let mut out: Vec<KbPassage> = Vec::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut body: Vec<&str> = Vec::new();
        let mut fence: Option<&str> = None;
        let finish = |out: &mut Vec<KbPassage>, body: &mut Vec<&str>| {
            if let Some(last) = out.last_mut() {
                last.text = body.join("\n").trim_matches('\n').trim_end().to_string();
            }
            body.clear();
        };
        for (n, line) in lines {
            let trimmed = line.trim_start();
            if let Some(marker) = fence {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
            } else if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                fence = Some(&trimmed[..3]);
            } else if line == "##" || line.starts_with("## ") {
                finish(&mut out, &mut body);
                let heading = closing_hashes(line[2..].trim());
                if heading.is_empty() {
                    return self.err(n, 1, "a `## ` heading needs text");
                }
                let anchor = slug(heading);
                if anchor.is_empty() {
                    return self.err(n, 4, format!("heading {heading:?} has no letters or digits to make an anchor"));
                }
                if let Some(first) = seen.insert(anchor.clone(), n) {
                    return self.err(
                        n,
                        4,
                        format!(
                            "heading {heading:?} gives anchor #{anchor}, already used by the heading on line {first}"
                        ),
                    );
                }
                out.push(KbPassage { anchor, heading: heading.to_string(), text: String::new() });
                continue;
            }
            if out.is_empty() {
                if !line.trim().is_empty() {
                    return self.err(n, 1, "text before the first `## ` heading belongs to no section: add a heading");
                }
                continue;
            }
            body.push(line);
        }
        finish(&mut out, &mut body);
        if out.is_empty() {
            return self.err(close + 1, 1, "the article has no `## ` sections, so nothing in it can be cited");
        }
        Ok(out)
    }
}

/// A heading without its optional closing `#`s (`## Title ##`).
fn closing_hashes(heading: &str) -> &str {
    let stripped = heading.trim_end_matches('#');
    if stripped.len() < heading.len() && (stripped.is_empty() || stripped.ends_with(' ')) {
        stripped.trim_end()
    } else {
        heading
    }
}

fn is_kebab(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('-')
        && !s.ends_with('-')
        && !s.contains("--")
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The article files of a knowledge directory: `*.md` except `README.md` and hidden
/// files, sorted by name. A missing directory has none.
fn article_files(dir: &Path) -> Result<Vec<PathBuf>, EngineError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EngineError::io(dir, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| EngineError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".md") || name.starts_with('.') || name.eq_ignore_ascii_case("readme.md") {
            continue;
        }
        let path = entry.path();
        if path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Index the knowledge directory `dir` into `store`: parse new and changed files, remove
/// deleted and broken ones, skip the rest. With `rebuild`, every file is parsed again and
/// the full-text index is rebuilt. Files that do not parse are reported in `errors` and
/// left out; the run itself fails only on I/O or store errors.
pub fn index_dir(store: &Store, dir: &Path, rebuild: bool) -> Result<KbIndexReport, EngineError> {
    let started = Instant::now();
    let mut files = Vec::new();
    let mut contents = BTreeMap::new();
    for path in article_files(dir)? {
        let bytes = std::fs::read(&path).map_err(|e| EngineError::io(&path, e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        files.push(KbFile { path: name.clone(), content_hash: hex::encode(Sha256::digest(&bytes)) });
        contents.insert(name, (path, bytes));
    }
    let mut plan = store.kb_plan(&files)?;
    if rebuild {
        plan.parse = files.iter().map(|f| f.path.clone()).collect();
        plan.unchanged = 0;
    }
    let mut report = KbIndexReport { dir: dir.to_path_buf(), unchanged: plan.unchanged, ..KbIndexReport::default() };
    let mut changes = KbChanges { remove: plan.remove, rebuild, ..KbChanges::default() };
    for name in &plan.parse {
        let Some((path, bytes)) = contents.get(name) else { continue };
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => parse_article(path, text),
            Err(e) => Err(ArticleError {
                file: path.display().to_string(),
                line: 1 + bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count(),
                column: 1,
                message: "the file is not valid UTF-8".into(),
            }),
        };
        match parsed {
            Ok(article) => changes.upsert.push(article),
            Err(e) => {
                // A file that no longer parses must not keep answering with its old text.
                changes.remove.push(name.clone());
                report.errors.push(e);
            }
        }
    }
    report.failed = report.errors.len();
    let applied = store.kb_apply(changes)?;
    report.added = applied.added;
    report.updated = applied.updated;
    report.removed = applied.removed;
    report.unchanged += applied.unchanged;
    report.articles = store.kb_indexed()?.len();
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// Index the workspace's knowledge on open. Broken articles are logged and left out
/// rather than stopping the engine: a typo in one article must not lock an operator out
/// of the review queue or the evidence log.
pub(crate) fn open_index(store: &Store, dir: &Path) -> Result<(BTreeMap<String, String>, KbIndexReport), EngineError> {
    let report = index_dir(store, dir, false)?;
    for e in &report.errors {
        tracing::warn!("knowledge article left out of the index: {e}");
    }
    Ok((store.kb_versions()?, report))
}

impl Engine {
    /// What indexing the knowledge directory did when this engine was opened.
    pub fn kb_open_report(&self) -> &KbIndexReport {
        &self.knowledge_report
    }

    /// Index the knowledge directory again (incremental; `rebuild` re-parses everything
    /// and rebuilds the full-text index). The articles the policy sees are refreshed.
    pub fn kb_index(&self, rebuild: bool) -> Result<KbIndexReport, EngineError> {
        let running = self.running();
        let report = index_dir(&self.store, &running.workspace.knowledge, rebuild)?;
        if let Ok(mut cache) = self.searches.lock() {
            cache.clear();
        }
        let versions = self.store.kb_versions()?;
        if let Ok(mut articles) = self.articles.write() {
            *articles = versions;
        }
        Ok(report)
    }

    /// Knowledge article id → current version, as the policy sees them.
    pub fn article_versions(&self) -> BTreeMap<String, String> {
        self.articles.read().map(|a| a.clone()).unwrap_or_default()
    }

    /// Search the knowledge base: the best passages for `query`, best first. The query
    /// is plain text (see `countersign_store::query_terms`); `word*` matches a prefix.
    ///
    /// Results are kept until the index changes (`kb_index`): planners ask the same
    /// questions again and again (a playbook's queries are constants), and a search over a
    /// large index costs milliseconds.
    pub fn kb_search(&self, query: &str, limit: usize) -> Result<Vec<KbHit>, EngineError> {
        let key = (query.to_string(), limit);
        if let Some(hits) = self.searches.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(hits);
        }
        let hits = self.store.kb_search(query, limit)?;
        if let Ok(mut cache) = self.searches.lock() {
            if cache.len() >= SEARCH_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(key, hits.clone());
        }
        Ok(hits)
    }

    /// One article, with all its passages or only the one at `anchor`.
    pub fn kb_article(&self, id: &str, anchor: Option<&str>) -> Result<KbArticle, EngineError> {
        let mut article = self
            .store
            .kb_article(id)?
            .ok_or_else(|| EngineError::NotFound { message: format!("no knowledge article {id:?}") })?;
        if let Some(anchor) = anchor {
            let anchors: Vec<String> = article.passages.iter().map(|p| p.anchor.clone()).collect();
            article.passages.retain(|p| p.anchor == anchor);
            if article.passages.is_empty() {
                return Err(EngineError::NotFound {
                    message: format!("{id} has no section #{anchor} (it has #{})", anchors.join(", #")),
                });
            }
        }
        Ok(article)
    }

    /// Does a citation resolve against the knowledge index? See [`resolve_citation`].
    pub fn resolve_citation(&self, citation: &Citation) -> Result<CitationResolution, EngineError> {
        let article = self.store.kb_article(&citation.article_id)?;
        Ok(resolve_citation(citation, article.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = "---\nid: refund-timing\ntitle: Refunds: timing by payment method\nversion: 3\n\
        tags: [refunds, gift-cards]\nowner: payments-team\n---\n\n## Gift cards\n\nGift card refunds are \
        added to the balance **right away**.\n\n## Credit cards and PayPal\n\nUsually  5 to 7\nbusiness days.\n";

    fn parse(text: &str) -> Result<KbArticle, ArticleError> {
        parse_article(Path::new("kb/refund-timing.md"), text)
    }

    fn err_at(text: &str) -> (usize, usize, String) {
        let e = parse(text).unwrap_err();
        assert_eq!(e.file, "kb/refund-timing.md");
        assert!(e.to_string().starts_with(&format!("kb/refund-timing.md:{}:{}: ", e.line, e.column)));
        (e.line, e.column, e.message)
    }

    #[test]
    fn a_good_article_parses_with_titles_holding_colons() {
        let a = parse(GOOD).unwrap();
        assert_eq!(a.id, "refund-timing");
        assert_eq!(a.path, "refund-timing.md");
        assert_eq!(a.title, "Refunds: timing by payment method", "split at the first `: ` only");
        assert_eq!((a.version, a.owner.as_str()), (3, "payments-team"));
        assert_eq!(a.tags, vec!["refunds", "gift-cards"]);
        let anchors: Vec<&str> = a.passages.iter().map(|p| p.anchor.as_str()).collect();
        assert_eq!(anchors, vec!["gift-cards", "credit-cards-and-paypal"]);
        assert_eq!(a.passages[1].text, "Usually  5 to 7\nbusiness days.");
        assert_eq!(a.content_hash.len(), 64);
    }

    #[test]
    fn crlf_a_bom_fenced_headings_and_closing_hashes_are_handled() {
        let text = format!("\u{FEFF}{}", GOOD.replace('\n', "\r\n"))
            .replace("## Gift cards", "## Gift cards ##")
            .replace("right away", "right away\r\n```\r\n## not a heading\r\n```");
        let a = parse(&text).unwrap();
        assert_eq!(a.passages.len(), 2, "a `## ` line inside a code fence is text");
        assert_eq!(a.passages[0].heading, "Gift cards");
        assert!(a.passages[0].text.contains("## not a heading"));
        assert!(!a.passages[0].text.contains('\r'));
    }

    #[test]
    fn front_matter_errors_point_at_file_line_and_column() {
        let cases: Vec<(String, (usize, usize), &str)> = vec![
            (GOOD.replace("id: refund-timing\n", ""), (6, 1), "no `id`"),
            (
                GOOD.replace("owner: payments-team\n", "owner: payments-team\nid: refund-timing\n"),
                (7, 1),
                "duplicate `id` (first given on line 2)",
            ),
            (GOOD.replace("version: 3", "version: three"), (4, 10), "positive integer, found \"three\""),
            (GOOD.replace("version: 3", "version: 0"), (4, 10), "positive integer"),
            (GOOD.replace("version: 3", "version: +3"), (4, 10), "positive integer"),
            (GOOD.replace("owner: payments-team", "owner: payments-team\nauthor: me"), (7, 1), "unknown key `author`"),
            (GOOD.replace("id: refund-timing", "id: Refund_Timing"), (2, 5), "kebab-case"),
            (GOOD.replace("id: refund-timing", "id: refund-times"), (2, 5), "must equal the file name"),
            (GOOD.replace("tags: [refunds, gift-cards]", "tags: refunds"), (5, 7), "tags must be a list"),
            (GOOD.replace("tags: [refunds, gift-cards]", "tags: [refunds, Gift Cards]"), (5, 17), "tag \"Gift Cards\""),
            (GOOD.replace("tags: [refunds, gift-cards]", "tags: [refunds,, x]"), (5, 16), "an empty tag"),
            (GOOD.replace("title: Refunds: timing by payment method", "title:"), (3, 7), "`title` is empty"),
            (GOOD.replace("owner: payments-team", "owner payments-team"), (6, 1), "expected `key: value`"),
            (GOOD.replace("---\nid", "id"), (1, 1), "front matter block"),
            (GOOD.replacen("\n---\n", "\n", 1), (1, 1), "not closed"),
        ];
        for (text, (line, column), want) in cases {
            let (l, c, m) = err_at(&text);
            assert!(m.contains(want), "expected {want:?} in {m:?}");
            assert_eq!((l, c), (line, column), "position of {want:?}");
        }
    }

    #[test]
    fn body_errors_point_at_the_heading_or_text() {
        let dup = GOOD.replace("## Credit cards and PayPal", "## Gift Cards!");
        let (l, c, m) = err_at(&dup);
        assert_eq!((l, c), (13, 4));
        assert!(m.contains("#gift-cards, already used by the heading on line 9"), "{m}");
        let (l, _, m) = err_at(&GOOD.replace("\n\n## Gift cards", "\nIntro.\n## Gift cards"));
        assert_eq!(l, 8);
        assert!(m.contains("before the first `## ` heading"), "{m}");
        let (l, _, m) = err_at(GOOD.split("## Gift").next().unwrap());
        assert_eq!(l, 8);
        assert!(m.contains("no `## ` sections"), "{m}");
        let (l, _, m) = err_at(&GOOD.replace("## Gift cards", "## !!!"));
        assert_eq!(l, 9);
        assert!(m.contains("no letters or digits"), "{m}");
    }

    #[test]
    fn slugs_are_lowercase_dashed_and_drop_punctuation() {
        assert_eq!(slug("The 30-day window"), "the-30-day-window");
        assert_eq!(slug("Credit cards & PayPal"), "credit-cards-paypal");
        assert_eq!(slug("  What's next? "), "whats-next");
        assert_eq!(slug("Größe und Änderungen"), "größe-und-änderungen");
    }

    #[test]
    fn citations_resolve_only_to_the_right_version_anchor_and_quote() {
        let a = parse(GOOD).unwrap();
        let r = |c: &Citation| resolve_citation(c, Some(&a));
        let good = Citation::new("refund-timing", Some("3"), Some("gift-cards"), "added to the balance right away");
        assert!(r(&good).is_resolved(), "emphasis markers are ignored: {:?}", r(&good));
        assert!(
            r(&Citation::new(
                "refund-timing",
                Some("3"),
                Some("credit-cards-and-paypal"),
                "Usually 5 to 7 business days"
            ))
            .is_resolved(),
            "whitespace and line breaks are normalised"
        );
        assert_eq!(
            r(&Citation::new("refund-timing", None, None, "5 to 7 business")),
            CitationResolution::Resolved {
                article_id: "refund-timing".into(),
                version: "3".into(),
                anchor: Some("credit-cards-and-paypal".into())
            },
            "without an anchor the quote may be in any passage, and the passage is named"
        );
        assert!(r(&Citation::new("refund-timing", Some("3"), Some("gift-cards"), "")).is_resolved());
        assert_eq!(
            resolve_citation(&Citation::new("refund-timer", None, None, ""), None),
            CitationResolution::UnknownArticle { article_id: "refund-timer".into() }
        );
        assert!(matches!(
            r(&Citation::new("refund-timing", Some("2"), Some("gift-cards"), "")),
            CitationResolution::WrongVersion { cited, current, .. } if cited == "2" && current == "3"
        ));
        assert!(matches!(
            r(&Citation::new("refund-timing", Some("3"), Some("store-credit"), "")),
            CitationResolution::UnknownAnchor { anchor, anchors, .. }
                if anchor == "store-credit" && anchors == vec!["gift-cards", "credit-cards-and-paypal"]
        ));
        assert_eq!(
            r(&Citation::new("refund-timing", Some("3"), Some("gift-cards"), "5 to 7 business days")),
            CitationResolution::QuoteNotFound { article_id: "refund-timing".into(), anchor: Some("gift-cards".into()) },
            "a quote from another passage does not resolve against this one"
        );
        assert!(!r(&Citation::new("refund-timing", None, None, "within 3 business days")).is_resolved());
        assert!(
            !r(&Citation::new("refund-timing", None, Some("gift-cards"), "ADDED to the balance")).is_resolved(),
            "case matters"
        );
    }
}
