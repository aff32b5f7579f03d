//! The app's state, built in full before it is handed to Tauri: which workspace, where
//! its data lives, the engine over it, and (on the demo workspace) the demo seller
//! center on loopback with its credential in the OS keyring.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_connectors::credentials::CredentialStore;
use countersign_core::model::{Case, Plan};
use countersign_demo_store::{ApiToken, BackgroundServer};
use countersign_engine::{Engine, EngineError, EngineOptions, Secret, SystemClock, credentials};

use crate::dto::{AppInfo, PolicyInfo, RosterMemberView};

/// Where the app finds its workspace and keeps its data.
#[derive(Debug, Clone)]
pub struct Locations {
    /// `assets/` of the project, or the bundled copy (`demo/` in the resource dir).
    pub assets: PathBuf,
    /// A workspace the user configured (`$COUNTERSIGN_WORKSPACE`); none means the demo.
    pub workspace: Option<PathBuf>,
    /// The app's data dir; each workspace gets a folder in it.
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Start the demo seller center on loopback for the demo workspace.
    pub live_demo: bool,
}

/// Everything the commands need.
#[derive(Debug)]
pub struct AppState {
    pub engine: Engine,
    pub info: AppInfo,
    /// Bundles exported from the team-lead screen go here, one folder each.
    pub export_dir: PathBuf,
    /// Kept alive for as long as the app runs; stops when dropped.
    _demo_store: Option<BackgroundServer>,
}

impl AppState {
    /// Open the configured workspace, or the demo one (live if the demo store starts and
    /// the keyring takes its credential, else on the snapshot).
    pub fn build(loc: &Locations) -> Result<AppState, EngineError> {
        let demo_dir = loc.assets.join("demo");
        let (workspace, connector, note, server) = match &loc.workspace {
            Some(w) => (w.clone(), None, None, None),
            None if loc.live_demo => match start_demo_store(&loc.assets, &loc.data_dir) {
                Ok((server, connector)) => (demo_dir.join("workspace-live.toml"), Some(connector), None, Some(server)),
                Err(why) => {
                    tracing::warn!(%why, "demo store not started; using the snapshot");
                    (demo_dir.join("workspace-snapshot.toml"), None, Some(why), None)
                }
            },
            None => (demo_dir.join("workspace-snapshot.toml"), None, None, None),
        };
        let ws = countersign_engine::Workspace::load(&workspace)?;
        let data_dir = loc.data_dir.join(&ws.id);
        let connector_name = match (&server, &ws.connector) {
            (Some(s), _) => format!("demo seller center on {} (HTTP, token in the OS keyring)", s.url()),
            (None, countersign_engine::workspace::ConnectorConfig::Snapshot { dataset }) => {
                format!("snapshot of {} (read-only)", dataset.display())
            }
            (None, countersign_engine::workspace::ConnectorConfig::Http { base_url, .. }) => {
                format!("HTTP {}", base_url.as_deref().unwrap_or("(catalog's base URL)"))
            }
            (None, countersign_engine::workspace::ConnectorConfig::DemoStore { .. }) => {
                "demo seller center on loopback (HTTP, token in memory)".to_string()
            }
        };
        let engine = Engine::open(
            EngineOptions { workspace, data_dir: data_dir.clone(), operator: None, connector },
            Arc::new(SystemClock),
        )?;
        // Steps a crash left running or unknown are reconciled before anything else runs.
        if let Err(e) = engine.recover() {
            tracing::warn!(error = %e, "recovering unfinished steps failed");
        }
        let policy = engine.policy();
        let info = AppInfo {
            workspace_id: engine.workspace().id.clone(),
            workspace_name: engine.workspace().name.clone(),
            operator_id: engine.operator().id.clone(),
            operator_role: engine.operator().role.clone(),
            policy: PolicyInfo {
                id: policy.id.clone(),
                title: policy.title.clone(),
                version: u32::try_from(policy.version).unwrap_or(u32::MAX),
                hash: policy.hash.clone(),
                signed: engine.policy_is_signed(),
                actions: count(policy.actions.len()),
                rules: count(policy.rules.len()),
            },
            planner: PLANNER.to_string(),
            connector: connector_name,
            connector_note: note,
            data_dir: data_dir.display().to_string(),
            log_dir: loc.log_dir.display().to_string(),
            roster: engine
                .roster()
                .into_iter()
                .map(|m| RosterMemberView { id: m.id, role: m.role, name: m.name })
                .collect(),
        };
        Ok(AppState { engine, info, export_dir: data_dir.join("exports"), _demo_store: server })
    }
}

pub fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// What the Settings screen says about planning.
pub const PLANNER: &str = "recorded plans of the sample cases (the local planner replaces this)";

/// The one place a case gets its plan. Today: the plan recorded with the workspace's sample
/// case; when the engine gains a planner, this calls it instead.
pub fn plan_for(engine: &Engine, case_id: &str) -> Result<(Case, Plan), EngineError> {
    sample_cases(engine)?
        .into_iter()
        .find(|(c, _)| c.id == case_id)
        .ok_or_else(|| EngineError::NotFound { message: format!("no case {case_id} in this workspace") })
}

/// The cases of the inbox, with their plans.
pub fn sample_cases(engine: &Engine) -> Result<Vec<(Case, Plan)>, EngineError> {
    Ok(engine.workspace().sample_cases()?.into_iter().map(|(_, f)| (f.case, f.plan)).collect())
}

const DEMO_CREDENTIAL: &str = "demo_seller_center/demo";

/// Start the demo seller center on loopback with a fresh token, store the token in the OS
/// keyring under the name the demo catalog uses, and build the HTTP connector to it.
fn start_demo_store(
    assets: &Path,
    data_dir: &Path,
) -> Result<(BackgroundServer, Arc<dyn countersign_connectors::Connector>), String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for the demo token: {e}"))?;
    let token = hex::encode(bytes);
    let keyring = credentials::keyring();
    let name = credentials::parse_name(DEMO_CREDENTIAL).map_err(|e| e.to_string())?;
    keyring
        .set(&name, &Secret::new(token.clone()))
        .map_err(|e| format!("the OS keyring did not take the demo credential: {e}"))?;
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let server = BackgroundServer::start(
        data_dir.join("demo-store.sqlite3"),
        assets.join("demo-store"),
        ApiToken::new(token).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("the demo store did not start: {e}"))?;
    let catalog =
        countersign_connectors::Catalog::load(&assets.join("demo").join("catalog.toml")).map_err(|e| e.to_string())?;
    let http = countersign_connectors::HttpConnector::new(catalog, Arc::new(keyring))
        .and_then(|c| c.with_base_url(&server.url()))
        .map_err(|e| e.to_string())?;
    Ok((server, Arc::new(http)))
}

/// What Tauri manages: the state, or why it could not be built (shown by every screen,
/// with its code and a next step, instead of a window that never fills).
#[derive(Debug)]
pub struct Shell(pub Result<AppState, crate::dto::AppError>);

impl Shell {
    pub fn get(&self) -> Result<&AppState, crate::dto::AppError> {
        self.0.as_ref().map_err(Clone::clone)
    }
}
