//! The workspace: a directory with `workspace.toml` naming the policy, the
//! knowledge base, sample cases and where platform facts come from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use countersign_connectors::BrowserSettings;
use countersign_connectors::browser::{check_pages_base_url, check_profile};
use countersign_connectors::source::SourceSettings;
use countersign_core::model::{Case, Operator, Plan};
use serde::{Deserialize, Serialize};

use crate::error::EngineError;
use crate::roster::RosterEntry;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkspace {
    workspace: RawMeta,
    connector: RawConnector,
    operator: Operator,
    #[serde(default)]
    roster: Vec<RosterEntry>,
    planner: Option<toml::Spanned<RawPlanner>>,
    #[serde(default)]
    sources: Vec<toml::Spanned<SourceSettings>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    id: String,
    name: String,
    /// An unsigned policy (dev mode). Ignored when `pack` is given.
    #[serde(default)]
    policy: Option<PathBuf>,
    /// A signed policy pack directory (see `crate::pack`).
    #[serde(default)]
    pack: Option<PathBuf>,
    knowledge: PathBuf,
    cases: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "snake_case")]
enum RawConnector {
    Snapshot {
        dataset: PathBuf,
    },
    Http {
        catalog: PathBuf,
        base_url: Option<String>,
    },
    DemoStore {
        catalog: PathBuf,
        seed: PathBuf,
        /// What simulated buyers write while the demo runs (`COUNTERSIGN_DEMO_BUYERS=SECONDS`
        /// turns them on).
        #[serde(default)]
        buyers: Option<PathBuf>,
    },
    Browser(RawBrowser),
}

/// `[connector] kind = "browser"` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBrowser {
    pages: PathBuf,
    base_url: Option<String>,
    profile: Option<String>,
    executable: Option<PathBuf>,
    headless: Option<bool>,
    no_sandbox: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlanner {
    provider: PlannerProvider,
    base_url: Option<toml::Spanned<String>>,
    model: Option<toml::Spanned<String>>,
    credential: Option<toml::Spanned<String>>,
    timeout_secs: Option<toml::Spanned<u64>>,
    api_version: Option<toml::Spanned<String>>,
    max_tool_rounds: Option<toml::Spanned<usize>>,
    max_tokens: Option<toml::Spanned<u32>>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The local planner's playbooks file, relative to the workspace file.
    playbooks: Option<toml::Spanned<PathBuf>>,
}

/// Which planner proposes plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlannerProvider {
    /// The offline playbook planner.
    Local,
    /// OpenAI, or any OpenAI-compatible server (Ollama, vLLM, llama.cpp) at `base_url`.
    Openai,
    /// Azure OpenAI: `base_url` is the resource, `model` the deployment.
    Azure,
    /// The Anthropic Messages API.
    Anthropic,
}

impl PlannerProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            PlannerProvider::Local => "local",
            PlannerProvider::Openai => "openai",
            PlannerProvider::Azure => "azure",
            PlannerProvider::Anthropic => "anthropic",
        }
    }
}

/// The workspace's `[planner]` section, checked. See `crates/engine/src/planners.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannerConfig {
    pub provider: PlannerProvider,
    /// The API root (a provider default when the file gives none; Azure needs one).
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// The keyring entry (`PLATFORM/STORE`) holding the API key; `None` for servers that
    /// want no key.
    pub credential: Option<String>,
    pub timeout: std::time::Duration,
    /// Azure's `api-version`.
    pub api_version: Option<String>,
    pub max_tool_rounds: Option<usize>,
    pub max_tokens: Option<u32>,
    /// Extra, non-secret headers.
    pub headers: Vec<(String, String)>,
    /// The local planner's playbooks file (`playbooks`); the built-in demo playbooks
    /// when absent.
    pub playbooks: Option<PathBuf>,
}

impl Default for PlannerConfig {
    fn default() -> PlannerConfig {
        PlannerConfig {
            provider: PlannerProvider::Local,
            base_url: None,
            model: None,
            credential: None,
            timeout: std::time::Duration::from_secs(DEFAULT_PLANNER_TIMEOUT_SECS),
            api_version: None,
            max_tool_rounds: None,
            max_tokens: None,
            headers: Vec::new(),
            playbooks: None,
        }
    }
}

const DEFAULT_PLANNER_TIMEOUT_SECS: u64 = 120;

/// Where order facts come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectorConfig {
    /// A platform export on disk (reads only).
    Snapshot { dataset: PathBuf },
    /// A platform's HTTP API described by an action catalog; the token comes from the
    /// OS keyring entry the catalog names.
    Http { catalog: PathBuf, base_url: Option<String> },
    /// The demo seller center, started by the engine on loopback (its database in the
    /// data dir, seeded from `seed` on first use) and reached over HTTP through `catalog`
    /// with a token made for this process alone.
    DemoStore {
        catalog: PathBuf,
        seed: PathBuf,
        /// The script simulated buyers write from, when they are turned on.
        buyers: Option<PathBuf>,
    },
    /// A seller center's web pages in Chromium, inside the agent's signed-in profile
    /// (`crates/browser`). The engine does not build this one: a face builds it with
    /// `countersign_browser::connector_for_workspace` and passes it in
    /// (`EngineOptions::connector`).
    Browser(BrowserSettings),
}

/// A loaded workspace; every path is absolute or relative to the process's cwd.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub file: PathBuf,
    pub id: String,
    pub name: String,
    /// The policy file in force: the workspace's own (dev mode), or the verified copy of
    /// the signed pack's once the engine has loaded it.
    pub policy: PathBuf,
    /// A signed policy pack directory; without one the workspace runs in dev mode.
    pub pack: Option<PathBuf>,
    pub knowledge: PathBuf,
    pub cases: PathBuf,
    pub connector: ConnectorConfig,
    pub operator: Operator,
    /// Who may countersign beyond the seat's role, with the hash of their passphrase
    /// (see [`crate::roster`]).
    pub roster: Vec<RosterEntry>,
    /// Which planner proposes plans (`[planner]`; the local one when absent).
    pub planner: PlannerConfig,
    /// Where cases arrive from besides the cases folder (`[[sources]]`).
    pub sources: Vec<SourceSettings>,
}

impl Workspace {
    /// Load `workspace.toml`. Errors name the file, line and column.
    pub fn load(file: &Path) -> Result<Workspace, EngineError> {
        let text = std::fs::read_to_string(file).map_err(|e| EngineError::io(file, e))?;
        let raw: RawWorkspace = toml::from_str(&text)
            .map_err(|e| EngineError::Config { message: located(file, &text, e.span(), e.message()) })?;
        let base = file.parent().unwrap_or(Path::new("."));
        let id = raw.workspace.id;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(EngineError::Config {
                message: format!("{}: workspace id {id:?} must be letters, digits, '-' or '_'", file.display()),
            });
        }
        let (policy, pack) = match (raw.workspace.policy, raw.workspace.pack) {
            (_, Some(pack)) => {
                if !raw.roster.is_empty() {
                    return Err(EngineError::Config {
                        message: format!(
                            "{}: a workspace with a signed pack takes its roster from the pack; remove [[roster]]",
                            file.display()
                        ),
                    });
                }
                let pack = base.join(pack);
                (pack.join(crate::pack::POLICY_FILE), Some(pack))
            }
            (Some(policy), None) => (base.join(policy), None),
            (None, None) => {
                return Err(EngineError::Config {
                    message: format!(
                        "{}: [workspace] needs `pack` (a signed policy pack) or `policy` (dev mode)",
                        file.display()
                    ),
                });
            }
        };
        let mut ids = std::collections::BTreeSet::new();
        for entry in &raw.roster {
            entry.check().map_err(|m| EngineError::Config { message: format!("{}: {m}", file.display()) })?;
            if !ids.insert(entry.id.as_str()) {
                return Err(EngineError::Config {
                    message: format!("{}: roster id {:?} is listed twice", file.display(), entry.id),
                });
            }
        }
        let planner = match raw.planner {
            Some(p) => planner_config(file, &text, base, p)?,
            None => PlannerConfig::default(),
        };
        let connector = match raw.connector {
            RawConnector::Snapshot { dataset } => ConnectorConfig::Snapshot { dataset: base.join(dataset) },
            RawConnector::Http { catalog, base_url } => ConnectorConfig::Http { catalog: base.join(catalog), base_url },
            RawConnector::DemoStore { catalog, seed, buyers } => ConnectorConfig::DemoStore {
                catalog: base.join(catalog),
                seed: base.join(seed),
                buyers: buyers.map(|b| base.join(b)),
            },
            RawConnector::Browser(raw) => ConnectorConfig::Browser(browser_settings(file, &text, base, raw)?),
        };
        let mut sources: Vec<SourceSettings> = Vec::new();
        for spanned in raw.sources {
            let span = spanned.span();
            let source = spanned.into_inner();
            let at = |m: String| EngineError::Config { message: located(file, &text, Some(span.clone()), &m) };
            source.check().map_err(at)?;
            if sources.iter().any(|s| s.name == source.name) {
                return Err(at(format!("source name {:?} is used twice", source.name)));
            }
            sources.push(source);
        }
        Ok(Workspace {
            file: file.to_path_buf(),
            sources,
            id,
            name: raw.workspace.name,
            policy,
            pack,
            knowledge: base.join(raw.workspace.knowledge),
            cases: base.join(raw.workspace.cases),
            connector,
            operator: raw.operator,
            roster: raw.roster,
            planner,
        })
    }

    /// The browser connector's settings, when the workspace's connector is the browser
    /// (`[connector] kind = "browser"`): what a face builds the connector from.
    pub fn browser(&self) -> Option<&BrowserSettings> {
        match &self.connector {
            ConnectorConfig::Browser(settings) => Some(settings),
            _ => None,
        }
    }

    /// Knowledge articles that exist: id → version, read loosely from each article's front
    /// matter without checking it. The engine no longer uses this: its articles come from the
    /// knowledge index ([`crate::knowledge`]), which parses and checks every article.
    pub fn articles(&self) -> Result<BTreeMap<String, String>, EngineError> {
        let mut out = BTreeMap::new();
        let dir = match std::fs::read_dir(&self.knowledge) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(EngineError::io(&self.knowledge, e)),
        };
        for entry in dir {
            let path = entry.map_err(|e| EngineError::io(&self.knowledge, e))?.path();
            if path.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| EngineError::io(&path, e))?;
            if let Some((id, version)) = front_matter_id_version(&text) {
                out.insert(id, version);
            }
        }
        Ok(out)
    }

    /// The sample cases shipped with the workspace, each with the plan a planner
    /// proposed for it, in file-name order.
    pub fn sample_cases(&self) -> Result<Vec<(PathBuf, CaseFile)>, EngineError> {
        self.case_files()?.into_iter().map(|p| CaseFile::load(&p).map(|c| (p, c))).collect()
    }

    /// The `*.json` files of the cases folder, sorted by name.
    pub(crate) fn case_files(&self) -> Result<Vec<PathBuf>, EngineError> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.cases)
            .map_err(|e| EngineError::io(&self.cases, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        Ok(paths)
    }
}

/// A case and the plan proposed for it, as one JSON file.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub case: Case,
    pub plan: Plan,
}

impl CaseFile {
    pub fn load(path: &Path) -> Result<CaseFile, EngineError> {
        read_json(path)
    }
}

/// Read and parse a JSON file; errors carry file:line:column.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| EngineError::BadInput { message: format!("{}:{}:{}: {e}", path.display(), e.line(), e.column()) })
}

/// Check a `[planner]` section; every error names the file, line and column.
fn planner_config(
    file: &Path,
    text: &str,
    base: &Path,
    raw: toml::Spanned<RawPlanner>,
) -> Result<PlannerConfig, EngineError> {
    let at = |span: std::ops::Range<usize>, message: String| EngineError::Config {
        message: located(file, text, Some(span), &message),
    };
    let table = raw.span();
    let raw = raw.into_inner();
    let provider = raw.provider;
    let name = provider.as_str();
    let llm_only = [
        raw.base_url.as_ref().map(|v| ("base_url", v.span())),
        raw.model.as_ref().map(|v| ("model", v.span())),
        raw.credential.as_ref().map(|v| ("credential", v.span())),
        raw.api_version.as_ref().map(|v| ("api_version", v.span())),
        raw.max_tool_rounds.as_ref().map(|v| ("max_tool_rounds", v.span())),
        raw.max_tokens.as_ref().map(|v| ("max_tokens", v.span())),
    ];
    if provider == PlannerProvider::Local {
        if let Some((key, span)) = llm_only.into_iter().flatten().next() {
            return Err(at(span, format!("`{key}` is for LLM planners; the local planner takes none")));
        }
        if !raw.headers.is_empty() {
            return Err(at(table, "`headers` are for LLM planners; the local planner takes none".into()));
        }
    }
    if let Some(name) = raw.headers.keys().find(|k| countersign_planner::llm::is_credential_header(k)) {
        return Err(at(
            table,
            format!("header {name:?} carries a credential: set `credential` and keep the key in the keyring"),
        ));
    }
    let model = raw.model.map(|m| (m.span(), m.into_inner().trim().to_string()));
    if let Some((span, m)) = &model
        && m.is_empty()
    {
        return Err(at(span.clone(), "`model` is empty".into()));
    }
    if provider != PlannerProvider::Local && model.is_none() {
        return Err(at(table, format!("provider {name:?} needs `model` (for Azure: the deployment name)")));
    }
    let base_url = match raw.base_url {
        Some(u) => {
            let span = u.span();
            let url = u.into_inner();
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && !url.contains(char::is_whitespace)
                && !url.split("//").nth(1).unwrap_or("").split('/').next().unwrap_or("").contains('@');
            if !ok {
                return Err(at(span, format!("base_url {url:?} must be an http(s) URL without credentials in it")));
            }
            Some(url)
        }
        None if provider == PlannerProvider::Azure => {
            return Err(at(table, "provider \"azure\" needs `base_url` (https://RESOURCE.openai.azure.com)".into()));
        }
        None => None,
    };
    let credential = match raw.credential {
        Some(c) => {
            let span = c.span();
            let c = c.into_inner();
            crate::credentials::parse_name(&c).map_err(|e| at(span, e.to_string()))?;
            Some(c)
        }
        None if matches!(provider, PlannerProvider::Azure | PlannerProvider::Anthropic) => {
            return Err(at(table, format!("provider {name:?} needs `credential`, the keyring entry with the API key")));
        }
        None => None,
    };
    let timeout = match raw.timeout_secs {
        Some(t) if !(1..=600).contains(t.get_ref()) => {
            return Err(at(t.span(), "timeout_secs must be between 1 and 600".into()));
        }
        Some(t) => std::time::Duration::from_secs(t.into_inner()),
        None => std::time::Duration::from_secs(DEFAULT_PLANNER_TIMEOUT_SECS),
    };
    let max_tool_rounds = match raw.max_tool_rounds {
        Some(r) if *r.get_ref() > 16 => return Err(at(r.span(), "max_tool_rounds must be at most 16".into())),
        r => r.map(toml::Spanned::into_inner),
    };
    let max_tokens = match raw.max_tokens {
        Some(t) if *t.get_ref() == 0 => return Err(at(t.span(), "max_tokens must be positive".into())),
        t => t.map(toml::Spanned::into_inner),
    };
    let api_version = match raw.api_version {
        Some(v) if provider != PlannerProvider::Azure => {
            return Err(at(v.span(), "`api_version` is for provider \"azure\"".into()));
        }
        v => v.map(toml::Spanned::into_inner),
    };
    let playbooks = match raw.playbooks {
        Some(p) if provider != PlannerProvider::Local => {
            return Err(at(p.span(), "`playbooks` is for the local planner".into()));
        }
        p => p.map(|p| base.join(p.into_inner())),
    };
    Ok(PlannerConfig {
        provider,
        base_url,
        model: model.map(|(_, m)| m),
        credential,
        timeout,
        api_version,
        max_tool_rounds,
        max_tokens,
        headers: raw.headers.into_iter().collect(),
        playbooks,
    })
}

/// Check a browser connector's settings; every error names the file, line and column of
/// the value. Paths are relative to the workspace file (`base`).
fn browser_settings(file: &Path, text: &str, base: &Path, raw: RawBrowser) -> Result<BrowserSettings, EngineError> {
    let at = |key: &str, message: String| EngineError::Config {
        message: located(file, text, connector_key_span(text, key), &message),
    };
    if raw.pages.as_os_str().is_empty() {
        return Err(at("pages", "`pages` names the page-actions file".into()));
    }
    let base_url = raw
        .base_url
        .map(|u| check_pages_base_url(&u).map_err(|m| at("base_url", format!("base_url {m}"))))
        .transpose()?;
    if let Some(p) = &raw.profile {
        check_profile(p).map_err(|m| at("profile", m))?;
    }
    let executable = match raw.executable {
        Some(e) if e.as_os_str().is_empty() => {
            return Err(at("executable", "`executable` is empty: leave it out to find Chromium".into()));
        }
        // A bare name is looked up on PATH; a path is relative to this file.
        Some(e) if e.components().count() == 1 && e.is_relative() => Some(e),
        Some(e) => Some(base.join(e)),
        None => None,
    };
    Ok(BrowserSettings {
        pages: base.join(raw.pages),
        base_url,
        profile: raw.profile,
        executable,
        headless: raw.headless.unwrap_or(true),
        no_sandbox: raw.no_sandbox.unwrap_or(false),
    })
}

/// Where the value of `[connector]`'s `key` is in the file (the connector section is a
/// tagged enum, which cannot carry spans itself).
fn connector_key_span(text: &str, key: &str) -> Option<std::ops::Range<usize>> {
    #[derive(Deserialize)]
    struct Doc {
        connector: BTreeMap<String, toml::Spanned<toml::Value>>,
    }
    toml::from_str::<Doc>(text).ok()?.connector.get(key).map(toml::Spanned::span)
}

fn located(file: &Path, text: &str, span: Option<std::ops::Range<usize>>, message: &str) -> String {
    let start = span.map_or(0, |s| s.start.min(text.len()));
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{}:{line}:{column}: {}", file.display(), message.trim_end())
}

fn front_matter_id_version(text: &str) -> Option<(String, String)> {
    let rest = text.strip_prefix("---")?;
    let end = rest.find("\n---")?;
    let mut id = None;
    let mut version = None;
    for line in rest[..end].lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("version:") {
            version = Some(v.trim().to_string());
        }
    }
    Some((id?, version.unwrap_or_else(|| "1".into())))
}
