//! # countersign-engine
//!
//! The use cases of Countersign, as one API: open a workspace, decide a plan,
//! record the evidence, set and clear pauses, list, verify and export the log,
//! run the demo cases.
//!
//! **Architecture invariant:** the desktop shell and the CLI are two thin faces
//! of this crate. Neither holds policy logic, SQL or platform access; they parse
//! arguments, call one [`Engine`] method and present the result. The engine owns
//! the order of operations (facts are gathered, the policy decides, evidence is
//! written) so that no face can skip a step.
//!
//! Time comes from an injected [`Clock`], so tests can fix it.

pub mod autonomy;
pub mod cases;
pub mod checkpoints;
pub mod credentials;
pub mod delivery;
mod desk;
mod error;
pub mod eval;
pub mod execute;
mod identity;
pub mod intake;
pub mod knowledge;
mod log;
pub mod managed;
mod pause;
pub mod planners;
pub mod planning;
pub mod promises;
pub mod provenance;
mod record;
mod review;
pub mod simulate;
pub mod team;
pub mod teamview;
pub mod views;
pub mod workspace;

/// Keys, packs, releases, the device key and the roster live in `countersign-trust`; the
/// faces reach them here, under the same names as before.
pub use countersign_trust::team as team_signing;
pub use countersign_trust::{TrustError, device, keys, pack, release, roster};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_connectors::Connector;
use countersign_connectors::snapshot::SnapshotConnector;
use countersign_core::Policy;
use countersign_core::decide::PlanDecision;
use countersign_core::evidence::Event;
use countersign_core::model::Operator;
use countersign_store::{NewEvent, Store};
use jiff::Timestamp;
use serde::Serialize;

pub use countersign_connectors::credentials::Secret;
/// Plain records the engine returns as they are stored (steps, pauses, knowledge hits).
pub use countersign_store::{ExportSummary, KbArticle, KbHit, PauseRecord, StepRecord, StepState};
pub use desk::Review;
pub use error::{EngineError, ErrorCode};
pub use execute::StepRun;
pub use log::{LogVerification, LoggedEvent, logged_policies, verify_bundle};
pub use managed::{PolicyMode, PolicyStatus};
pub use pack::{ManagedSettings, PackInfo, PackRefusal, RefusalCode};
pub use roster::{Proof, RosterMember};
pub use teamview::Scope;
pub use workspace::{CaseFile, PlannerConfig, PlannerProvider, Workspace};

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// Connectors' screenshots and page snapshots go to the store's content-addressed blobs,
/// through the one writer, so a blob is durable before the event that names it.
#[derive(Debug)]
pub(crate) struct StoreBlobs {
    pub(crate) writer: countersign_store::EvidenceWriter,
    pub(crate) clock: Arc<dyn Clock>,
}

impl countersign_connectors::BlobSink for StoreBlobs {
    fn put(&self, media_type: &str, data: &[u8]) -> Result<String, String> {
        self.writer.put_blob(media_type, data, self.clock.now()).map_err(|e| e.to_string())
    }
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// How to open an engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// The workspace's `workspace.toml`.
    pub workspace: PathBuf,
    /// Where the evidence database lives (created if missing).
    pub data_dir: PathBuf,
    /// Overrides the workspace's default operator.
    pub operator: Option<Operator>,
    /// Overrides the workspace's connector (tests, the desktop app's own demo store).
    /// Required for a browser workspace (`[connector] kind = "browser"`), whose connector
    /// the engine never builds: `countersign_browser::connector_for_workspace`.
    pub connector: Option<Arc<dyn Connector>>,
}

/// A summary of the loaded policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicySummary {
    pub id: String,
    pub version: u64,
    pub title: String,
    pub hash: String,
    pub actions: usize,
    pub rules: usize,
    pub signals: usize,
    /// Promise rules and claim rules of the reply.
    pub reply_rules: usize,
}

impl PolicySummary {
    pub fn of(p: &Policy) -> PolicySummary {
        PolicySummary {
            id: p.id.clone(),
            version: p.version,
            title: p.title.clone(),
            hash: p.hash.clone(),
            actions: p.actions.len(),
            rules: p.rules.len(),
            signals: p.signals.len(),
            reply_rules: p.reply.promises.len() + p.reply.claims.len(),
        }
    }
}

/// Parse and check a policy file without opening a workspace.
pub fn check_policy(path: &Path) -> Result<PolicySummary, EngineError> {
    let text = std::fs::read_to_string(path).map_err(|e| EngineError::io(path, e))?;
    let policy = Policy::parse(&path.display().to_string(), &text)?;
    Ok(PolicySummary::of(&policy))
}

/// What the demo did with one sample case.
#[derive(Debug, Clone, Serialize)]
pub struct DemoCase {
    pub file: String,
    pub case_id: String,
    pub channel: String,
    pub customer_says: String,
    pub intent: String,
    pub decision: PlanDecision,
}

/// A lock file in a data folder, created if missing (its content is never used).
pub(crate) fn lock_file(path: &Path) -> Result<std::fs::File, EngineError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| EngineError::io(path, e))
}

/// This process's hold on a workspace's data folder: a shared lock on `engine.lock` for
/// the engine's life, so a process can tell whether it has the folder to itself.
#[derive(Debug)]
struct Presence(std::fs::File);

/// While held, this process has the folder to itself; on drop, back to shared.
struct Alone<'a>(&'a std::fs::File);

impl Drop for Alone<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.lock_shared() {
            tracing::warn!(error = %e, "could not go back to a shared hold on the data folder");
        }
    }
}

impl Presence {
    fn open(data_dir: &Path) -> Result<Presence, EngineError> {
        let path = data_dir.join("engine.lock");
        let file = lock_file(&path)?;
        file.lock_shared().map_err(|e| EngineError::io(&path, e))?;
        Ok(Presence(file))
    }

    /// The folder to this process alone (no other engine has it open), or `None`.
    fn alone(&self) -> Option<Alone<'_>> {
        match self.0.try_lock() {
            Ok(()) => Some(Alone(&self.0)),
            Err(_) => {
                // A failed conversion may have dropped the shared hold: take it again.
                if let Err(e) = self.0.lock_shared() {
                    tracing::warn!(error = %e, "could not take the data folder's shared hold again");
                }
                None
            }
        }
    }
}

/// The engine: a workspace, its policy, the evidence store and a connector.
#[derive(Debug)]
pub struct Engine {
    /// The policy it decides under and what comes with it, swapped whole when a new
    /// signed pack loads while it runs ([`Engine::load_pack`]).
    /// Shared with the team's pause intake ([`team::PauseIntake`]), which takes a lead's
    /// pause in on the link's own thread.
    running: Arc<std::sync::RwLock<Arc<Running>>>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    operator: Operator,
    /// Knowledge article id → current version, from the index (refreshed by `kb_index`).
    articles: std::sync::RwLock<BTreeMap<String, String>>,
    knowledge_report: knowledge::KbIndexReport,
    /// Knowledge searches since the index last changed: (query, limit) → hits.
    searches: std::sync::Mutex<std::collections::HashMap<(String, usize), Vec<countersign_store::KbHit>>>,
    /// What the policy's signals found in each case's current words (see [`Engine::case_scan`]).
    scans: std::sync::Mutex<std::collections::HashMap<String, Arc<countersign_core::CaseScan>>>,
    approval_ttl: jiff::SignedDuration,
    /// How long the target of an unknown write on a platform that takes no idempotency
    /// key must stay as it was before the write is settled as not applied.
    settle_window: jiff::SignedDuration,
    /// Where the policy came from: a signed pack or dev mode (see [`managed`]).
    managed: managed::Managed,
    presence: Presence,
    /// Where cases arrive from besides the cases folder (see [`intake`]).
    sources: Vec<countersign_connectors::source::Source>,
    /// The team this desktop belongs to, if any (see [`team`]).
    team: Option<Arc<team::Team>>,
    /// Why this desktop is not in the team its signed policy names (no enrolment, or one
    /// that did not hold): it decides as cut off for as long as that lasts.
    team_missing: Option<String>,
}

/// What the running policy sets: the workspace as its pack leaves it (roster, policy and
/// catalog files), the policy, the connector built on that catalog, and the pack. A use
/// case reads it once ([`Engine::running`]) and goes on with that, so a pack loaded
/// meanwhile never mixes two policies in one decision.
#[derive(Debug)]
pub struct Running {
    pub workspace: Arc<Workspace>,
    pub policy: Arc<Policy>,
    pub connector: Arc<dyn Connector>,
    /// The signed pack it came from (none: the workspace's own policy, dev mode).
    pub loaded: Option<PackInfo>,
    /// The last pack refused since it loaded.
    pub refused: Option<PackRefusal>,
    /// The pack's managed settings (the defaults in dev mode).
    pub settings: ManagedSettings,
}

impl Engine {
    /// Open a workspace: load and check the policy, open (or create) the evidence
    /// store, and record `policy_loaded` when this policy is new to the log.
    ///
    /// A workspace that names a signed pack runs only on packs signed by the admin keys
    /// this build trusts ([`keys::TrustedKeys::bundled`]); see [`managed`].
    pub fn open(options: EngineOptions, clock: Arc<dyn Clock>) -> Result<Engine, EngineError> {
        Engine::open_with_trust(options, clock, keys::TrustedKeys::bundled())
    }

    /// [`Engine::open`] trusting `trusted` instead of the bundled admin keys (tests, and
    /// tools that check packs against keys they were given).
    pub fn open_with_trust(
        options: EngineOptions,
        clock: Arc<dyn Clock>,
        trusted: keys::TrustedKeys,
    ) -> Result<Engine, EngineError> {
        let mut workspace = Workspace::load(&options.workspace)?;
        let dev_policy = match workspace.pack {
            Some(_) => None,
            None => {
                let text =
                    std::fs::read_to_string(&workspace.policy).map_err(|e| EngineError::io(&workspace.policy, e))?;
                Some(Policy::parse(&workspace.policy.display().to_string(), &text)?)
            }
        };
        std::fs::create_dir_all(&options.data_dir).map_err(|e| EngineError::io(&options.data_dir, e))?;
        let presence = Presence::open(&options.data_dir)?;
        let store = Store::open(options.data_dir.join("evidence.sqlite"))?;
        let selected = managed::select(&mut workspace, &store, &options.data_dir, &trusted, dev_policy, clock.now())?;
        let policy = selected.policy;
        // Without the encoder's base the workspace still opens (pauses, the log, its
        // verification need no scan), and every scan fails closed: each case is handed off
        // with the reason. Said once here too.
        if let Err(e) = countersign_core::learned::check_encoder_for(&policy) {
            tracing::warn!(error = %e, "every case will be handed off until the signal encoder can be read");
        }
        let operator = options.operator.unwrap_or_else(|| workspace.operator.clone());
        if let Some(e) = workspace.roster.iter().find(|e| !policy.roles.contains(&e.role)) {
            return Err(EngineError::Config {
                message: format!(
                    "{}: roster entry {:?} has role {:?}, which policy {} does not declare",
                    workspace.file.display(),
                    e.id,
                    e.role,
                    policy.id
                ),
            });
        }
        if !policy.roles.contains(&operator.role) {
            return Err(EngineError::BadInput {
                message: format!(
                    "operator role {:?} is not one the policy knows ({})",
                    operator.role,
                    policy.roles.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        let managed = managed::Managed {
            trusted,
            data_dir: options.data_dir.clone(),
            connector_overridden: options.connector.is_some(),
            loading: std::sync::Mutex::new(()),
        };
        let connector: Arc<dyn Connector> = match (options.connector, &workspace.connector) {
            (Some(c), _) => c,
            (None, workspace::ConnectorConfig::Snapshot { dataset }) => Arc::new(SnapshotConnector::load(dataset)?),
            (None, workspace::ConnectorConfig::Http { catalog, base_url }) => {
                let catalog = countersign_connectors::Catalog::load(catalog)
                    .map_err(|e| EngineError::Config { message: e.to_string() })?;
                let mut http = countersign_connectors::HttpConnector::new(catalog, Arc::new(credentials::keyring()))?;
                if let Some(url) = base_url {
                    http = http.with_base_url(url)?;
                }
                Arc::new(http)
            }
            (None, workspace::ConnectorConfig::DemoStore { catalog, .. }) => {
                return Err(EngineError::Config {
                    message: format!(
                        "{}: [connector] kind = \"demo_store\" ({}): the engine does not start the demo seller \
                         center; the app or the command line does (countersign_host::open) and passes its connector \
                         in EngineOptions::connector",
                        workspace.file.display(),
                        catalog.display()
                    ),
                });
            }
            (None, workspace::ConnectorConfig::Browser(settings)) => {
                return Err(EngineError::Config {
                    message: format!(
                        "{}: [connector] kind = \"browser\" ({}): the engine does not build the browser connector; \
                         the app or the command line builds it (countersign_browser::connector_for_workspace) and \
                         passes it in EngineOptions::connector",
                        workspace.file.display(),
                        settings.pages.display()
                    ),
                });
            }
        };
        connector.attach_blobs(Arc::new(StoreBlobs { writer: store.writer(), clock: clock.clone() }));
        let (articles, knowledge_report) = knowledge::open_index(&store, &workspace.knowledge)?;
        let refused = selected.refused;
        let engine = Engine {
            running: Arc::new(std::sync::RwLock::new(Arc::new(Running {
                workspace: Arc::new(workspace),
                policy: Arc::new(policy),
                connector,
                settings: selected.pack.as_ref().map(|p| p.info.settings.clone()).unwrap_or_default(),
                loaded: selected.pack.map(|p| p.info),
                refused: refused.clone(),
            }))),
            store: Arc::new(store),
            clock,
            operator,
            articles: std::sync::RwLock::new(articles),
            knowledge_report,
            searches: Default::default(),
            scans: Default::default(),
            approval_ttl: jiff::SignedDuration::from_hours(4),
            settle_window: jiff::SignedDuration::from_mins(10),
            managed,
            presence,
            sources: Vec::new(),
            team: None,
            team_missing: None,
        };
        engine.finish_policy_load(refused.as_ref())?;
        Ok(engine)
    }

    /// Record that this workspace's data folder was moved into place from `from` (an
    /// earlier version's folder; see `countersign_host::data`).
    pub fn record_data_moved(&self, from: &str, to: &str) -> Result<(), EngineError> {
        self.append(None, "system", Event::DataMoved { from: from.to_string(), to: to.to_string() })
    }

    /// The running policy and what comes with it, as they stand now.
    pub fn running(&self) -> Arc<Running> {
        self.running.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Run on `next` from now on (a new signed pack loaded, or one refused).
    fn set_running(&self, next: Running) {
        *self.running.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
    }

    /// Where a connector keeps the screenshots and page snapshots it takes.
    pub(crate) fn blobs(&self) -> Arc<dyn countersign_connectors::BlobSink> {
        Arc::new(StoreBlobs { writer: self.store.writer(), clock: self.clock.clone() })
    }

    /// Forget what the signals found in each case (a new policy's signals read anew).
    pub(crate) fn forget_scans(&self) {
        self.scans.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    pub fn workspace(&self) -> Arc<Workspace> {
        self.running().workspace.clone()
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.running().policy.clone()
    }

    pub fn operator(&self) -> &Operator {
        &self.operator
    }

    /// Who may countersign beyond the seat's role (no hashes).
    pub fn roster(&self) -> Vec<RosterMember> {
        let running = self.running();
        running.workspace.roster.iter().map(roster::RosterEntry::member).collect()
    }

    /// Switch the operator (a team lead taking over the seat); the role must be one
    /// the policy declares.
    pub fn set_operator(&mut self, operator: Operator) -> Result<(), EngineError> {
        let running = self.running();
        if !running.policy.roles.contains(&operator.role) {
            return Err(EngineError::BadInput {
                message: format!("operator role {:?} is not one the policy knows", operator.role),
            });
        }
        self.operator = operator;
        Ok(())
    }

    fn append(&self, case_id: Option<&str>, actor: &str, event: Event) -> Result<(), EngineError> {
        self.store.append(self.new_event(case_id, actor, &event))?;
        Ok(())
    }

    fn new_event(&self, case_id: Option<&str>, actor: &str, event: &Event) -> NewEvent {
        NewEvent {
            case_id: case_id.map(str::to_string),
            kind: event.kind().to_string(),
            actor: actor.to_string(),
            at: self.clock.now(),
            payload: event.payload(),
        }
    }
}

pub use countersign_store::{EventFilter as LogFilter, VerifyReport as LogVerifyReport};
