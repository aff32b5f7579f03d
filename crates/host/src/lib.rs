//! # countersign-host
//!
//! What the two faces (the desktop app and the command line) share around the engine, so
//! that both see the same data: where a workspace's data lives ([`data`]), opening a
//! workspace with the connector and services it names ([`open`]), and logging
//! ([`logging`]).
//!
//! **Architecture invariant:** the engine decides and records; the host only wires. It
//! starts what a workspace needs beside the engine (the demo seller center, a browser
//! connector) and hands it in through `EngineOptions::connector`; it never decides,
//! never reads the evidence store and never touches a platform itself. Faces call
//! [`open`] and then the engine; nothing else.

pub mod data;
pub mod encoder;
pub mod logging;
pub mod push;
pub mod team;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_browser::{BrowserConnector, DemoMessagePages};
use countersign_connectors::Connector;
use countersign_connectors::credentials::{CredentialName, CredentialStore, ProcessCredential, Secret};
use countersign_connectors::source::demo::DemoMessages;
use countersign_connectors::source::zendesk::{Zendesk, ZendeskAuth};
use countersign_connectors::source::{CaseSource, Source, SourceKind};
use countersign_core::model::Operator;
use countersign_engine::workspace::ConnectorConfig;
use countersign_engine::{Clock, Engine, EngineError, EngineOptions, SystemClock, Workspace};

pub use data::{DataRoot, Moved};

/// How a face opens a workspace.
#[derive(Debug, Clone)]
pub struct Options {
    /// The workspace's `workspace.toml`.
    pub workspace: PathBuf,
    /// Where every workspace's data folder lives ([`DataRoot::resolve`]).
    pub root: DataRoot,
    /// Who works at this seat, and in which role (one the policy declares); the
    /// workspace's operator fills in what is not given.
    pub operator_id: Option<String>,
    pub role: Option<String>,
}

/// What a workspace runs beside the engine; kept alive as long as it is held.
#[derive(Debug, Default)]
pub struct Services {
    /// The demo seller center on loopback, for a `kind = "demo_store"` workspace.
    demo_store: Option<countersign_demo_store::BackgroundServer>,
    /// Its token, held in memory only, for the connector and the sources that read it.
    demo_token: Option<Arc<ProcessCredential>>,
    /// The browser connector of a `kind = "browser"` workspace, which its page sources
    /// share (one Chromium per profile).
    browser: Option<Arc<BrowserConnector>>,
}

impl Services {
    /// The address of the demo seller center started for this workspace, if any.
    pub fn demo_store_url(&self) -> Option<String> {
        self.demo_store.as_ref().map(countersign_demo_store::BackgroundServer::url)
    }
}

/// An open workspace: its engine, its data folder and what runs beside it. The engine is
/// dropped before the services it uses.
#[derive(Debug)]
pub struct Opened {
    pub engine: Engine,
    /// This workspace's data folder (the evidence log, the demo store's database, browser
    /// profiles, exports).
    pub data_dir: PathBuf,
    pub services: Services,
    /// A data folder found under an earlier rule and moved here at this start (recorded
    /// in the evidence as `data_moved`).
    pub moved: Option<Moved>,
    /// A folder an earlier version used that still holds a log, left where it is: another
    /// workspace's, or this one's when this workspace already has a log (two logs are never
    /// merged). The faces say where it is.
    pub left_behind: Option<PathBuf>,
    /// The link to this workspace's team, when it is enrolled in one (see [`team`]): the
    /// engine is joined and caught up; a face keeps [`team::pump`] running beside it.
    pub team: Option<Arc<countersign_plane::link::TeamLink>>,
}

/// Open a workspace as every face does: the data folder by the one rule (an earlier
/// folder moved in first), the connector the workspace names (the demo seller center
/// started on loopback with a token held in memory, or the browser connector), then the
/// engine over them.
pub fn open(options: Options) -> Result<Opened, EngineError> {
    open_with_clock(options, Arc::new(SystemClock))
}

/// [`open`] with a clock of the caller's (tests).
pub fn open_with_clock(options: Options, clock: Arc<dyn Clock>) -> Result<Opened, EngineError> {
    let ws = Workspace::load(&options.workspace)?;
    let data_dir = options.root.workspace_dir(&ws.id);
    // Whose an earlier folder's log is: this workspace's when it ran under this
    // workspace's policy (a workspace on a signed pack is never guessed at). Asked only
    // when there is such a folder, so an ordinary start parses nothing more.
    let owner =
        |dir: &Path| -> Result<bool, EngineError> {
            match &ws.pack {
                None => Ok(countersign_engine::logged_policies(dir)?
                    .contains(&countersign_engine::check_policy(&ws.policy)?.id)),
                Some(_) => Ok(false),
            }
        };
    let adoption = data::adopt(&options.root, &ws.id, &owner)?;
    let (connector, services) = connector_for(&ws, &data_dir)?;
    let sources = sources_for(&ws, &services)?;
    let operator = match (options.operator_id, options.role) {
        (None, None) => None,
        (id, role) => Some(Operator {
            id: id.unwrap_or_else(|| ws.operator.id.clone()),
            role: role.unwrap_or_else(|| ws.operator.role.clone()),
        }),
    };
    let mut engine = Engine::open(
        EngineOptions { workspace: options.workspace, data_dir: data_dir.clone(), operator, connector },
        clock,
    )?
    .with_sources(sources);
    // A pack the team published that a run staged and did not load before it stopped: it
    // runs from this start on, if it verifies, and before the enrolment is checked
    // against the team its policy names.
    match team::load_staged_pack(&engine) {
        Some(Ok(info)) => tracing::info!(version = info.version, "running on the team's new pack"),
        Some(Err(e)) => tracing::warn!(error = %e, "the team's new pack was refused"),
        None => {}
    }
    let enrolled = match team::enrollment(&data_dir)? {
        // A policy that names a team takes only that team's signed enrolment; without
        // one the desk decides as cut off (never solo).
        Some(enrolled) => {
            match team::verify_enrollment(&engine, &enrolled, &countersign_engine::credentials::keyring()) {
                Ok(()) => Some(enrolled),
                Err(e) => {
                    engine.team_missing(e.to_string());
                    None
                }
            }
        }
        None => {
            if engine.policy().team.is_some() {
                let file = team::enrollment_path(&data_dir);
                engine.team_missing(format!("no enrolment in {} (`countersign team join`)", file.display()));
            }
            None
        }
    };
    let team = match enrolled {
        Some(enrolled) => {
            let link = team::connect(&mut engine, &enrolled, None)?;
            if !team::catch_up(&engine, &link, std::time::Duration::from_secs(2)) {
                tracing::warn!(team = %enrolled.team, url = %enrolled.url, "the team server was not reached: deciding as cut off");
            }
            team::report(&engine, &link);
            // What earlier commands recorded goes to the team now (the app keeps sending
            // as it records; a command line sends its backlog at each start).
            if link.connected()
                && let Err(e) = team::replicate(&engine, &link, true)
            {
                tracing::warn!(error = %e, "evidence not sent to the team yet");
            }
            Some(link)
        }
        None => None,
    };
    // A move is recorded once the log can be written, even when it happened at an
    // earlier start that failed after moving (the note stays until it is recorded).
    let note = data_dir.join(data::MOVED_FROM);
    if let Ok(from) = std::fs::read_to_string(&note) {
        engine.record_data_moved(&from, &data_dir.display().to_string())?;
        std::fs::remove_file(&note).map_err(|e| EngineError::io(&note, e))?;
        tracing::info!(from = %from, to = %data_dir.display(), "data folder moved to the one rule's place");
    }
    if let Some(other) = &adoption.left_behind {
        tracing::warn!(
            other = %other.display(),
            "a log an earlier version kept stays where it is (another workspace's, or this one already has a log)"
        );
    }
    Ok(Opened { engine, data_dir, services, moved: adoption.moved, left_behind: adoption.left_behind, team })
}

/// The connector the engine does not build itself, and the services behind it.
fn connector_for(ws: &Workspace, data_dir: &Path) -> Result<(Option<Arc<dyn Connector>>, Services), EngineError> {
    match &ws.connector {
        ConnectorConfig::DemoStore { catalog, seed, buyers } => {
            let options = demo_options(ws, buyers.as_deref())?;
            let (server, http, credential) = start_demo_store(catalog, seed, data_dir, options)?;
            Ok((
                Some(Arc::new(http)),
                Services { demo_store: Some(server), demo_token: Some(credential), browser: None },
            ))
        }
        // The browser starts at the first step that needs it, in the workspace's
        // persistent profile under its data folder.
        ConnectorConfig::Browser(settings) => {
            let browser = Arc::new(
                countersign_browser::connector_for_workspace(settings, data_dir)
                    .map_err(|e| EngineError::Config { message: format!("{}: {e}", ws.file.display()) })?,
            );
            Ok((Some(browser.clone()), Services { browser: Some(browser), ..Services::default() }))
        }
        ConnectorConfig::Snapshot { .. } | ConnectorConfig::Http { .. } => Ok((None, Services::default())),
    }
}

/// The adapters for the workspace's `[[sources]]`. A demo seller center source without a
/// `base_url` reads the demo seller center this workspace started, with its in-memory
/// token; a pages source drives the workspace's browser connector (its browser, profile
/// and session); any other source reads its credential from the OS keyring at each call.
fn sources_for(ws: &Workspace, services: &Services) -> Result<Vec<Source>, EngineError> {
    let config = |m: String| EngineError::Config { message: format!("{}: {m}", ws.file.display()) };
    ws.sources
        .iter()
        .map(|settings| {
            let keyring = |name: &Option<String>| -> Result<(Arc<dyn CredentialStore>, CredentialName), EngineError> {
                let name = name
                    .as_deref()
                    .ok_or_else(|| config(format!("source {}: a base_url needs a `credential`", settings.name)))?;
                let name = CredentialName::parse(name).map_err(|e| config(e.to_string()))?;
                Ok((Arc::new(countersign_engine::credentials::keyring()), name))
            };
            let adapter: Arc<dyn CaseSource> = match (settings.kind, &settings.base_url) {
                (SourceKind::DemoSellerCenter, Some(url)) => {
                    let (store, name) = keyring(&settings.credential)?;
                    Arc::new(DemoMessages::new(&settings.name, url, store, name)?)
                }
                (SourceKind::DemoSellerCenter, None) => match (services.demo_store_url(), &services.demo_token) {
                    (Some(url), Some(token)) => {
                        Arc::new(DemoMessages::new(&settings.name, &url, token.clone(), token.name().clone())?)
                    }
                    _ => {
                        return Err(config(format!(
                            "source {}: without a base_url it reads the demo seller center the app starts, which \
                             needs `[connector] kind = \"demo_store\"`",
                            settings.name
                        )));
                    }
                },
                (SourceKind::DemoSellerCenterPages, _) => match &services.browser {
                    Some(browser) => Arc::new(DemoMessagePages::new(&settings.name, browser.clone())),
                    None => {
                        return Err(config(format!(
                            "source {}: a demo_seller_center_pages source reads the pages in the workspace's \
                             browser, which needs `[connector] kind = \"browser\"`",
                            settings.name
                        )));
                    }
                },
                (SourceKind::Zendesk, url) => {
                    let url =
                        url.as_deref().ok_or_else(|| config(format!("source {}: needs a base_url", settings.name)))?;
                    let (store, name) = keyring(&settings.credential)?;
                    Arc::new(Zendesk::new(&settings.name, url, store, name, ZendeskAuth::ApiToken)?)
                }
            };
            Ok(Source { settings: settings.clone(), adapter })
        })
        .collect()
}

/// How the demo seller center is served for `ws`: its buyer conversations seeded from the
/// workspace's own sample cases (an installed app has no source tree), and, when
/// `COUNTERSIGN_DEMO_BUYERS=SECONDS` is set and the workspace names a `buyers` script,
/// simulated buyers writing every SECONDS so the demo inbox is alive.
fn demo_options(ws: &Workspace, buyers: Option<&Path>) -> Result<countersign_demo_store::ServeOptions, EngineError> {
    let every = match std::env::var("COUNTERSIGN_DEMO_BUYERS") {
        Ok(v) if !v.trim().is_empty() => {
            Some(v.trim().parse::<u64>().ok().filter(|s| *s >= 1).ok_or_else(|| EngineError::Config {
                message: format!("COUNTERSIGN_DEMO_BUYERS={v:?}: seconds between messages, 1 or more"),
            })?)
        }
        _ => None,
    };
    let simulate_buyers = match (every, buyers) {
        (Some(secs), Some(script)) => Some(
            countersign_demo_store::BuyerSimulation::load(script, std::time::Duration::from_secs(secs))
                .map_err(|e| EngineError::Config { message: format!("{}: {e}", script.display()) })?,
        ),
        _ => None,
    };
    Ok(countersign_demo_store::ServeOptions { simulate_buyers, cases_dir: Some(ws.cases.clone()) })
}

/// Start the demo seller center on loopback (its database in `data_dir`, seeded from
/// `seed` on first use) with a fresh random token, and an HTTP connector that holds the
/// token in memory only.
pub fn start_demo_store(
    catalog: &Path,
    seed: &Path,
    data_dir: &Path,
    options: countersign_demo_store::ServeOptions,
) -> Result<
    (countersign_demo_store::BackgroundServer, countersign_connectors::HttpConnector, Arc<ProcessCredential>),
    EngineError,
> {
    let catalog =
        countersign_connectors::Catalog::load(catalog).map_err(|e| EngineError::Config { message: e.to_string() })?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| EngineError::Config { message: format!("no randomness for a token: {e}") })?;
    let token = hex::encode(bytes);
    std::fs::create_dir_all(data_dir).map_err(|e| EngineError::io(data_dir, e))?;
    let server = countersign_demo_store::BackgroundServer::start_with(
        data_dir.join("demo-store.sqlite3"),
        seed.to_path_buf(),
        countersign_demo_store::ApiToken::new(token.clone())
            .map_err(|e| EngineError::Config { message: e.to_string() })?,
        options,
    )
    .map_err(|e| EngineError::Config { message: format!("cannot start the demo store: {e}") })?;
    let credential = Arc::new(ProcessCredential::new(catalog.platform.credential.clone(), Secret::new(token)));
    let http = countersign_connectors::HttpConnector::new(catalog, credential.clone())?.with_base_url(&server.url())?;
    Ok((server, http, credential))
}
