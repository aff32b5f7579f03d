//! The evidence log as the faces see it: typed events, verification (the hash chain and
//! the device-signed checkpoints, together), export and blobs.
//!
//! Every event leaves the store through [`LoggedEvent`], read back into core's typed
//! [`Event`]: nothing in the engine or a face reads a stored payload by JSON path, so a
//! change of an event's shape is a compile error, not a silent zero on a chart.

use std::path::Path;

use countersign_core::evidence::Event;
use countersign_store::{EventFilter, ExportSummary, Store, StoredEvent, VerifyReport};
use jiff::Timestamp;
use serde::Serialize;

use crate::checkpoints::CheckpointReport;
use crate::{Engine, EngineError};

/// An event as recorded: where it sits in the chain, who caused it, when, and what it says.
/// Serialises as the log's own shape (`seq`, `at`, `case_id`, `actor`, `kind`, `payload`,
/// `hash`, `body`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub case_id: Option<String>,
    pub actor: String,
    #[serde(flatten)]
    pub event: Event,
    /// The event's chain hash (hex).
    pub hash: String,
    /// The canonical JSON that was hashed, exactly as stored (what an outside verifier
    /// re-hashes).
    pub body: String,
}

impl LoggedEvent {
    /// The stored `kind` (`case_opened`, `decided`…).
    pub fn kind(&self) -> &'static str {
        self.event.kind()
    }
}

impl TryFrom<StoredEvent> for LoggedEvent {
    type Error = EngineError;

    fn try_from(stored: StoredEvent) -> Result<LoggedEvent, EngineError> {
        let event = stored.event()?;
        Ok(LoggedEvent {
            seq: stored.seq,
            at: stored.at,
            case_id: stored.case_id,
            actor: stored.actor,
            event,
            hash: stored.hash.to_hex(),
            body: stored.body,
        })
    }
}

/// The whole verification of a log: its hash chain and every device-signed checkpoint in
/// it. It holds only when both do ([`LogVerification::ok`]): a rewrite that re-hashed the
/// chain and head verifies as a chain, but not against a checkpoint signed before it.
/// Serialises as the chain's report with the checkpoints beside it.
#[derive(Debug, Clone, Serialize)]
pub struct LogVerification {
    #[serde(flatten)]
    pub chain: VerifyReport,
    pub checkpoints: CheckpointReport,
    /// The newest checkpoint of this desk its team witnessed, checked against this log
    /// (a desk in a team, once the team witnessed one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witnessed: Option<crate::team::WitnessCheck>,
}

impl LogVerification {
    pub fn ok(&self) -> bool {
        self.chain.ok && self.checkpoints.ok && self.witnessed.as_ref().is_none_or(|w| w.ok)
    }
}

/// Events of `store` matching `filter`, oldest first, typed.
pub(crate) fn events_in(store: &Store, filter: &EventFilter) -> Result<Vec<LoggedEvent>, EngineError> {
    store.list_events(filter)?.into_iter().map(LoggedEvent::try_from).collect()
}

/// The last event of `kind` in `store`.
pub(crate) fn last_of(store: &Store, kind: &str) -> Result<Option<LoggedEvent>, EngineError> {
    Ok(events_in(store, &EventFilter { kind: Some(kind.into()), ..EventFilter::default() })?.pop())
}

impl Engine {
    /// Events matching `filter`, oldest first, typed.
    pub(crate) fn events(&self, filter: &EventFilter) -> Result<Vec<LoggedEvent>, EngineError> {
        events_in(&self.store, filter)
    }

    /// Events of one case of one kind, oldest first.
    pub(crate) fn case_events(&self, case_id: &str, kind: &str) -> Result<Vec<LoggedEvent>, EngineError> {
        self.events(&EventFilter {
            case_id: Some(case_id.to_string()),
            kind: Some(kind.to_string()),
            ..EventFilter::default()
        })
    }

    pub fn log_list(&self, filter: &EventFilter) -> Result<Vec<LoggedEvent>, EngineError> {
        self.events(filter)
    }

    pub fn log_case(&self, case_id: &str) -> Result<Vec<LoggedEvent>, EngineError> {
        self.events(&EventFilter { case_id: Some(case_id.to_string()), ..EventFilter::default() })
    }

    /// The hash chain alone (see [`Engine::verify`] for the whole check).
    pub fn log_verify(&self) -> Result<VerifyReport, EngineError> {
        Ok(self.store.verify()?)
    }

    /// Verify the log: the hash chain and every device-signed checkpoint. What both faces
    /// call (`countersign log verify`, the team lead's Verify).
    pub fn verify(&self) -> Result<LogVerification, EngineError> {
        let chain = self.log_verify()?;
        let checkpoints = self.verify_checkpoints()?;
        let witnessed = self.team_witness_check()?;
        Ok(LogVerification { chain, checkpoints, witnessed })
    }

    /// Export a self-verifying bundle; a checkpoint signed by this device's key is
    /// recorded first (when the OS keyring can be reached), so the bundle says which
    /// machine it came from.
    pub fn log_export(&self, dir: &Path) -> Result<ExportSummary, EngineError> {
        self.checkpoint_before_export();
        Ok(self.store.export(dir, &self.operator.id, self.clock.now())?)
    }

    /// A screenshot or page snapshot that evidence names by hash.
    pub fn blob(&self, hash: &str) -> Result<Option<countersign_store::Blob>, EngineError> {
        Ok(self.store.blob(hash)?)
    }

    pub fn store_path(&self) -> &Path {
        self.store.path()
    }
}

/// Verify an exported bundle (no workspace needed): its chain and its checkpoints.
pub fn verify_bundle(dir: &Path) -> Result<LogVerification, EngineError> {
    let chain = countersign_store::verify_bundle(dir)?;
    let checkpoints = crate::checkpoints::check_bundle_checkpoints(dir)?;
    Ok(LogVerification { chain, checkpoints, witnessed: None })
}

/// What a browser step's response says about the pages it saw (the part a summary shows).
#[derive(Debug, serde::Deserialize)]
struct BrowserResponse {
    evidence: PageTrail,
}

#[derive(Debug, serde::Deserialize)]
struct PageTrail {
    pages: Vec<PageSeen>,
}

#[derive(Debug, serde::Deserialize)]
struct PageSeen {
    #[serde(default)]
    moment: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    screenshot: Option<BlobRef>,
}

#[derive(Debug, serde::Deserialize)]
struct BlobRef {
    sha256: String,
}

impl LoggedEvent {
    /// One line (more for a browser step's pages) saying what the event records, for a
    /// person reading the log (`countersign log show`).
    pub fn summary(&self) -> String {
        match &self.event {
            Event::CaseOpened { case } => format!("case from {} on {}", case.channel, case.store),
            Event::PlanProposed { plan } => {
                format!("plan {} ({}): {} steps", plan.id, plan.intent, plan.steps.len())
            }
            Event::Decided { decision, .. } => {
                decision.steps.iter().map(|s| format!("{}={}", s.action, s.decision)).collect::<Vec<_>>().join(", ")
            }
            Event::ReviewRequested { step_id, decision, .. } => format!("{step_id} waits for {decision}"),
            // A browser step: its outcome, then each page it saw, with the screenshot to open
            // (`countersign log blob HASH --out FILE`).
            Event::StepFinished { step_id, outcome, error, response, .. }
                if let Ok(browser) = serde_json::from_value::<BrowserResponse>(response.clone()) =>
            {
                let mut out = format!("{step_id} {}", crate::views::snake(outcome));
                if let Some(error) = error {
                    out.push_str(&format!(": {error}"));
                }
                for page in browser.evidence.pages {
                    out.push_str(&format!("\n        {:<14} {}", page.moment, page.url));
                    if let Some(shot) = page.screenshot {
                        out.push_str(&format!("  screenshot {}", shot.sha256));
                    }
                }
                out
            }
            Event::PromiseMade { category, due, owner, sentence, .. } => {
                format!("{} promise, due {due}, owned by {owner}: {sentence:?}", crate::views::snake(category))
            }
            Event::PromiseChecked { outcome, reason, .. } => format!("{}: {reason}", outcome.as_str()),
            Event::EscalationJudged { verdict, .. } => format!(
                "{} judged the escalation of {} on {} {}: {}",
                verdict.by,
                verdict.case_id,
                verdict.desk,
                if verdict.right { "right" } else { "wrong" },
                verdict.reason
            ),
            other => other.payload().to_string().chars().take(160).collect(),
        }
    }
}

/// The ids of the policies the log in `dir` ran under (its `policy_loaded` events): what
/// tells whose log an earlier version's folder holds.
pub fn logged_policies(dir: &Path) -> Result<std::collections::BTreeSet<String>, EngineError> {
    let store = Store::open(dir.join("evidence.sqlite"))?;
    let loaded = events_in(&store, &EventFilter { kind: Some("policy_loaded".into()), ..EventFilter::default() })?;
    Ok(loaded
        .into_iter()
        .filter_map(|e| match e.event {
            Event::PolicyLoaded { policy_id, .. } => Some(policy_id),
            _ => None,
        })
        .collect())
}
