//! The app's state, built in full before it is handed to Tauri: which workspace, where
//! its data lives, and the engine over it. With nothing configured that is the demo
//! workspace, whose engine starts the demo seller center on loopback itself.

use std::path::PathBuf;

use countersign_engine::workspace::ConnectorConfig;
use countersign_engine::{Engine, EngineError, PlannerProvider};
use countersign_host::{DataRoot, Opened, Services};

use crate::dto::{AppInfo, PolicyInfo, RosterMemberView, SourceInfo, count};

/// Where the app finds its workspace and keeps its data.
#[derive(Debug, Clone)]
pub struct Locations {
    /// `assets/` of the project, or the bundled copy (`demo/` in the resource dir).
    pub assets: PathBuf,
    /// A workspace the user configured (`$COUNTERSIGN_WORKSPACE`); none means the demo.
    pub workspace: Option<PathBuf>,
    /// Where every workspace's data folder lives (the one rule: `countersign_host::data`).
    pub root: DataRoot,
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
    /// The link to this desktop's team, when it is in one; a thread feeds its entries to
    /// the engine (`countersign_host::team::pump`).
    pub team: Option<std::sync::Arc<countersign_plane::link::TeamLink>>,
    /// What runs beside the engine (the demo seller center); dropped after it.
    _services: Services,
}

impl AppState {
    /// Open the configured workspace, or the demo one: live on the demo seller center
    /// started on loopback, or on the snapshot if that cannot start (or `live_demo` is
    /// off), saying why in Settings.
    pub fn build(loc: &Locations) -> Result<AppState, EngineError> {
        let demo_dir = loc.assets.join("demo");
        let open = |workspace: PathBuf| {
            countersign_host::open(countersign_host::Options {
                workspace,
                root: loc.root.clone(),
                operator_id: None,
                role: None,
            })
        };
        let (opened, note) = match &loc.workspace {
            Some(w) => (open(w.clone())?, None),
            None if loc.live_demo => match open(demo_dir.join("workspace.toml")) {
                Ok(opened) => (opened, None),
                Err(e) => {
                    tracing::warn!(error = %e, "the demo seller center did not start; using the snapshot");
                    (open(demo_dir.join("workspace-snapshot.toml"))?, Some(e.to_string()))
                }
            },
            None => (open(demo_dir.join("workspace-snapshot.toml"))?, None),
        };
        let Opened { engine, data_dir, services, moved, left_behind, team } = opened;
        countersign_host::encoder::load_in_background(&engine);
        // Steps a crash left running or unknown are reconciled before anything else runs.
        if let Err(e) = engine.recover() {
            tracing::warn!(error = %e, "recovering unfinished steps failed");
        }
        let connector = match (&engine.workspace().connector, services.demo_store_url()) {
            (_, Some(url)) => format!("demo seller center on {url} (HTTP, token in memory)"),
            (ConnectorConfig::Snapshot { dataset }, None) => format!("snapshot of {} (read-only)", dataset.display()),
            (ConnectorConfig::Http { base_url, .. }, None) => {
                format!("HTTP {}", base_url.as_deref().unwrap_or("(catalog's base URL)"))
            }
            (ConnectorConfig::DemoStore { .. }, None) => "demo seller center".to_string(),
            (ConnectorConfig::Browser(b), None) => format!(
                "seller-center pages at {} in a browser (profile {}; pages {})",
                b.base_url.as_deref().unwrap_or("the page-actions file's base URL"),
                b.profile.as_deref().unwrap_or("from the page-actions file"),
                b.pages.display()
            ),
        };
        let data_note = match (moved, left_behind) {
            (Some(m), _) => Some(format!("data moved here from {} (an earlier version's folder)", m.from.display())),
            (None, Some(other)) => Some(format!(
                "another log is still in {} (an earlier version's folder): it was not moved, because it is \
                 another workspace's or this workspace already has a log; nothing in it was changed",
                other.display()
            )),
            (None, None) => None,
        };
        let info = AppInfo {
            workspace_id: engine.workspace().id.clone(),
            workspace_name: engine.workspace().name.clone(),
            operator_id: engine.operator().id.clone(),
            operator_role: engine.operator().role.clone(),
            policy: policy_info(&engine),
            planner: planner_label(&engine),
            connector,
            connector_note: note.or(data_note),
            data_dir: data_dir.display().to_string(),
            log_dir: loc.log_dir.display().to_string(),
            roster: roster_of(&engine),
            sources: engine
                .sources()
                .iter()
                .map(|s| SourceInfo {
                    name: s.settings.name.clone(),
                    tenant: s.settings.tenant.clone(),
                    store: s.settings.store.clone(),
                    platform: s.settings.platform.clone(),
                    channel: s.settings.channel.to_string(),
                })
                .collect(),
            signal_encoder: engine.signal_encoder_problem(),
        };
        Ok(AppState { engine, info, export_dir: data_dir.join("exports"), team, _services: services })
    }
}

impl AppState {
    /// What the app shows of itself, with the policy and roster it runs now (a pack the
    /// team publishes loads while the app runs).
    pub fn info_now(&self) -> AppInfo {
        AppInfo {
            policy: policy_info(&self.engine),
            roster: roster_of(&self.engine),
            signal_encoder: self.engine.signal_encoder_problem(),
            ..self.info.clone()
        }
    }
}

/// The policy the engine runs, for the header and Settings.
fn policy_info(engine: &Engine) -> PolicyInfo {
    let status = engine.policy_status();
    let policy = engine.policy();
    PolicyInfo {
        id: policy.id.clone(),
        title: policy.title.clone(),
        version: u32::try_from(policy.version).unwrap_or(u32::MAX),
        hash: policy.hash.clone(),
        signed: status.pack.is_some(),
        pack_digest: status.pack.as_ref().map(|p| p.digest.clone()),
        simulation: status.pack.and_then(|p| p.simulation),
        actions: count(policy.actions.len()),
        rules: count(policy.rules.len()),
    }
}

fn roster_of(engine: &Engine) -> Vec<RosterMemberView> {
    engine.roster().into_iter().map(|m| RosterMemberView { id: m.id, role: m.role, name: m.name }).collect()
}

/// What the Settings screen says about planning: the workspace's `[planner]`.
fn planner_label(engine: &Engine) -> String {
    let p = &engine.workspace().planner;
    match p.provider {
        PlannerProvider::Local => {
            "local planner (playbooks over the knowledge base; nothing leaves this machine)".into()
        }
        other => format!(
            "{other:?} model {} at {}",
            p.model.as_deref().unwrap_or("(default)"),
            p.base_url.as_deref().unwrap_or("(provider default)")
        ),
    }
}

/// What Tauri manages: the state, or why it could not be built (shown by every screen,
/// with its code and a next step, instead of a window that never fills). The workspace
/// opens on a thread of its own while the window loads (a first launch's migrations and
/// demo-store seeding overlap WebKit's start instead of holding up the GTK main loop);
/// commands wait for it.
#[derive(Debug, Default)]
pub struct Shell(std::sync::OnceLock<Result<AppState, crate::dto::AppError>>);

impl Shell {
    /// Open the workspace; called once. A panic while opening becomes an `Internal`
    /// error every screen shows, never a window waiting forever.
    pub fn open(&self, loc: &Locations) {
        let started = std::time::Instant::now();
        let state = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            AppState::build(loc).map_err(crate::dto::AppError::from)
        }))
        .unwrap_or_else(|_| Err(crate::dto::AppError::internal("opening the workspace failed unexpectedly")));
        match &state {
            Ok(s) => tracing::info!(
                workspace = %s.info.workspace_id,
                connector = %s.info.connector,
                ms = started.elapsed().as_millis(),
                "workspace opened"
            ),
            Err(e) => tracing::error!(code = ?e.code, message = %e.message, "workspace did not open"),
        }
        if self.0.set(state).is_err() {
            tracing::warn!("the workspace was already open");
        }
    }

    /// The state, once the workspace has opened (waits for it).
    pub fn get(&self) -> Result<&AppState, crate::dto::AppError> {
        self.0.wait().as_ref().map_err(Clone::clone)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::dto::ErrorCode;
    use std::path::Path;

    fn locations(dir: &Path, workspace: Option<PathBuf>) -> Locations {
        Locations {
            assets: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets"),
            workspace,
            root: DataRoot::named(dir.join("data")),
            log_dir: dir.join("logs"),
            live_demo: false,
        }
    }

    #[test]
    fn a_command_waits_for_the_workspace_and_sees_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let loc = locations(dir.path(), None);
        let shell = Shell::default();
        std::thread::scope(|s| {
            // The command asks before the workspace has opened; it waits, then gets it.
            let command = s.spawn(|| shell.get().map(|state| state.info.workspace_id.clone()));
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!command.is_finished(), "a command does not run before the workspace is open");
            shell.open(&loc);
            assert_eq!(command.join().unwrap().unwrap(), "demo-snapshot");
        });
    }

    #[test]
    fn a_workspace_that_cannot_open_is_the_error_every_command_gets() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere/workspace.toml");
        let shell = Shell::default();
        shell.open(&locations(dir.path(), Some(missing.clone())));
        for _ in 0..2 {
            let e = shell.get().unwrap_err();
            assert_ne!(e.code, ErrorCode::Internal, "{e:?}");
            assert!(e.message.contains("nowhere"), "the error names the file: {e:?}");
            assert!(!e.next_step.is_empty());
        }
        // Opening again changes nothing: what commands see is published once.
        shell.open(&locations(dir.path(), None));
        assert!(shell.get().is_err());
    }
}
