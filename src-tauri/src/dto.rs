//! What crosses into the UI beyond the engine's views (`countersign_engine::views`, re-exported
//! here): the app's own error, its settings and its updates. Each derives its TypeScript
//! declaration (ts-rs) into `ui/src/bindings/`; a test fails when the checked-in files drift.

use serde::Serialize;
use ts_rs::TS;

pub use countersign_engine::autonomy::{Autonomy, SavedProposal};
pub use countersign_engine::promises::{PromiseStatus, PromiseSweep};
pub use countersign_engine::simulate::Simulated;
pub use countersign_engine::team::{DeskReport, TeamRequestView, TeamStatus};
pub use countersign_engine::teamview::{
    DeletionRecord, EscalationVerdicts, PromiseCounts, StepFilter, StepRow, TeamAlert, TeamAudit, TeamCaseView,
    TeamCounts, TeamEventView, TeamExportView, TeamMetrics, TeamStepsView, UnknownOutcomes, ViewRecord,
};
pub use countersign_engine::views::*;

/// A failed command: a code the UI branches on, what happened, and what to do next.
#[derive(Debug, Clone, Serialize, TS)]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    pub next_step: String,
}

/// The app, its workspace and its policy (the Settings screen and the header).
#[derive(Debug, Clone, Serialize, TS)]
pub struct AppInfo {
    pub workspace_id: String,
    pub workspace_name: String,
    pub operator_id: String,
    pub operator_role: String,
    pub policy: PolicyInfo,
    /// How plans are made today.
    pub planner: String,
    /// Where platform data comes from: a snapshot on disk, or the demo store on loopback.
    pub connector: String,
    /// Why the app runs on the snapshot when it tried to start the demo store (if it did).
    pub connector_note: Option<String>,
    pub data_dir: String,
    pub log_dir: String,
    pub roster: Vec<RosterMemberView>,
    /// Where cases arrive from (`[[sources]]`): what a pasted case may be filed under.
    pub sources: Vec<SourceInfo>,
    /// Why every case is handed off: the policy turns the signal encoder on and its base
    /// cannot be read on this machine (none when it can, or the policy does not use it).
    pub signal_encoder: Option<String>,
}

/// How far fetching the signal encoder's base has come (the banner's progress bar).
#[derive(Debug, Clone, Serialize, TS)]
pub struct EncoderProgress {
    /// `downloading`, `checking` (each file against its pinned SHA-256) or `loading`.
    pub phase: String,
    /// Bytes received so far, of `total` when the server said.
    pub received: u32,
    pub total: Option<u32>,
}

/// The signal encoder's base, fetched and loaded.
#[derive(Debug, Clone, Serialize, TS)]
pub struct EncoderFetched {
    pub dir: String,
    /// Bytes downloaded (0: it was in place already).
    pub downloaded: u32,
}

/// A source of the workspace, as Settings and the paste form show it.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SourceInfo {
    pub name: String,
    pub tenant: String,
    pub store: String,
    pub platform: String,
    pub channel: String,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct PolicyInfo {
    pub id: String,
    pub title: String,
    pub version: u32,
    pub hash: String,
    /// Whether it came in a signed pack (else the app runs in dev mode).
    pub signed: bool,
    /// The signed pack's digest (none in dev mode).
    pub pack_digest: Option<String>,
    /// `sha256:` of the simulation report the pack's signer was shown; `None` for a pack
    /// signed without one (and in dev mode).
    pub simulation: Option<String>,
    pub actions: u32,
    pub rules: u32,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct RosterMemberView {
    pub id: String,
    pub role: String,
    pub name: Option<String>,
}

/// Names of stored credentials (values never leave the keyring through the app).
#[derive(Debug, Clone, Serialize, TS)]
pub struct CredentialList {
    pub names: Vec<String>,
    pub error: Option<AppError>,
}

/// What checking for an app update found (Settings, "Updates").
#[derive(Debug, Clone, Serialize, TS)]
pub struct UpdateCheck {
    pub current_version: String,
    /// The endpoint asked (without query string), with its `{{variables}}`.
    pub endpoint: String,
    /// Who set the endpoint: the signed policy pack, or the installer.
    pub chosen_by: String,
    /// A newer version the endpoint offers (its signature is checked when it is installed).
    pub available: Option<UpdateOffer>,
}

#[derive(Debug, Clone, Serialize, TS)]
pub struct UpdateOffer {
    pub version: String,
    pub date: Option<String>,
    pub notes: Option<String>,
}

/// What a background sync of the workspace's sources recorded (sent to the window, which
/// reloads the inbox).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, TS)]
pub struct InboxChanged {
    /// Conversations seen for the first time.
    pub new_cases: u32,
    /// Conversations with a new revision (a customer's message, an agent's reply read back,
    /// a state change at the source).
    pub updated: u32,
    /// Of those, the ones in which the customer wrote again.
    pub customer_wrote: u32,
    /// Of those, the cases that were planned before and were planned again.
    pub replanned: u32,
}
