//! The lead's team view, as data: what a lead's desk asks the team service over the
//! team plane (request / reply; desks never hold database credentials) and what it
//! answers. The ask is signed with the lead's device key ([`ViewAsk`] inside a
//! [`crate::team::SignedEntry`]); the service checks it against the signed pack's roster,
//! answers only with what the pack grants that lead, and records every answer that
//! showed customer data (who saw what, when).
//!
//! Times are RFC 3339 text here, so the desktop app reads them as they travel.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The most step rows one answer carries.
pub const MAX_ROWS: u32 = 500;

/// What a lead asks, signed with their device key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewAsk {
    pub team: String,
    /// The desk asking (it must be the desk the server let publish the ask).
    pub device: String,
    /// The lead (a roster id); the signature must be their roster key's.
    pub by: String,
    pub query: TeamQuery,
    /// When the lead's desk signed it: an ask older than a few minutes is refused.
    pub at: Timestamp,
    pub nonce: String,
}

/// The questions a lead's desk may ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TeamQuery {
    /// Decided steps across the team, newest first.
    Steps { filter: StepFilter },
    /// One case's timeline: every event of it from every desk the lead may see.
    Case { case_id: String },
    /// A blob (screenshot, page snapshot) an event of a visible case names.
    Blob { device: String, case_id: String, hash: String },
    /// One case's evidence as a bundle to keep: the events with their hashed bodies,
    /// and each desk's witnessed checkpoints.
    Export { case_id: String },
    /// What the projection could not verify (gaps, forks, bad hashes or signatures).
    Alerts,
    /// Counts over the steps decided in a time window (RFC 3339; open ends allowed), per
    /// action, per agent and per week.
    Metrics {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<String>,
    },
    /// A draft policy (its text) replayed over the decisions of every desk the lead may
    /// see, reporting those made at or after `since` (RFC 3339).
    Simulate {
        draft: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        since: Option<String>,
    },
    /// Earned autonomy across the desks the lead may see: each band's record and the
    /// changes the newest pack's `[autonomy]` proposes, each simulated over the team's
    /// recorded decisions.
    Autonomy,
    /// The team's own record, newest first: who saw what (every recorded view) and what
    /// retention deleted. For a lead granted every desk and tenant.
    Audit {
        /// Rows of each (at most [`MAX_ROWS`]; 100 when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
}

impl TeamQuery {
    /// Whether an answer to it shows customer data (and so is recorded).
    pub fn shows_customer_data(&self) -> bool {
        !matches!(self, TeamQuery::Alerts | TeamQuery::Metrics { .. } | TeamQuery::Audit { .. })
    }
}

/// An answer a lead was given that showed customer data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ViewRecord {
    pub at: String,
    /// The desk that asked, and the lead (roster id) who signed the ask.
    pub desk: String,
    pub by: String,
    /// `steps`, `case`, `blob` or `export`.
    pub kind: String,
    /// How many rows or events it showed, and the cases they belong to.
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub shown: u64,
    pub cases: Vec<String>,
}

/// A case's events that retention deleted from the team's store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct DeletionRecord {
    pub at: String,
    pub tenant: String,
    pub desk: String,
    pub case_id: String,
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub events: u64,
    /// The retention in days, and the pack that set it.
    pub days: u32,
    pub pack: String,
}

/// A filter of the team's decided steps; every field narrows, none is required.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct StepFilter {
    /// Who sat at the desk (the operator's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The desk (its enrolled device name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The policy's decision: `auto`, `confirm`, `supervisor`, `recommend` or `forbid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// How it ended: `succeeded`, `failed`, `unknown`, `needs_human`, `settled_applied`,
    /// `settled_not_applied`, `rejected`, `superseded` (decided again: it will not run as
    /// it was), `expired` (its approval expired before it ran), or `open` (not ended yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The signed pack's version it was decided under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub pack_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Decided at or after (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Decided before (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// The `next` of the page before (steps older than its last row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Rows in a page (at most [`MAX_ROWS`]; 50 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// What the team service answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TeamAnswer {
    Steps {
        rows: Vec<StepRow>,
        /// Give it as the filter's `after` for the next page; absent on the last.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
    Case {
        case_id: String,
        events: Vec<TeamEvent>,
    },
    Blob {
        content_type: String,
        /// The blob's bytes, hex.
        data: String,
    },
    Export {
        bundle: CaseBundle,
    },
    Alerts {
        alerts: Vec<TeamAlert>,
    },
    Metrics {
        metrics: TeamMetrics,
    },
    Audit {
        views: Vec<ViewRecord>,
        deletions: Vec<DeletionRecord>,
    },
    Autonomy {
        autonomy: TeamAutonomy,
    },
    Simulate {
        report: crate::simulate::SimulationReport,
        /// The desks whose decisions were replayed.
        desks: Vec<String>,
    },
    /// The service would not answer: why, in words, and a stable code
    /// (`bad_ask`, `not_a_lead`, `stale`, `not_granted`, `not_found`, `no_pack`,
    /// `too_large`, `unavailable`).
    Refused {
        code: String,
        reason: String,
    },
}

/// Earned autonomy across the team: what the newest pack's `[autonomy]` makes of every
/// visible desk's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeamAutonomy {
    /// The pack whose policy was read (and drafted from).
    pub pack_id: String,
    pub pack_version: u64,
    /// The desks whose steps were counted.
    pub desks: Vec<String>,
    /// `None`: the pack's policy keeps no bands on record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<crate::policy::AutonomyPolicy>,
    pub records: Vec<crate::autonomy::BandRecord>,
    pub proposals: Vec<TeamProposal>,
}

/// A proposal over the team's record, with its draft replayed over the team's decisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TeamProposal {
    pub proposal: crate::autonomy::Proposal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<crate::simulate::SimulationReport>,
}

/// One decided step on a desk of the team, as far as the desk's evidence tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct StepRow {
    pub desk: String,
    pub case_id: Option<String>,
    pub tenant: Option<String>,
    pub plan_id: String,
    pub step_id: String,
    pub action: String,
    pub decision: String,
    pub agent: String,
    pub pack_id: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "number | null"))]
    pub pack_version: Option<u64>,
    pub decided_at: String,
    /// `approved` or `rejected`, once countersigned.
    pub verdict: Option<String>,
    pub reviewed_by: Option<String>,
    /// How it ended, once it did.
    pub outcome: Option<String>,
    pub ended_at: Option<String>,
}

/// One evidence event of a desk, as the desk hashed it: a reader can check `hash`
/// against `prev_hash` and `body` with the log's own rule. That catches a body changed
/// without its hash; a store that recomputed the hash too is caught by the desk's own log
/// against the team's witnessed checkpoint (`countersign log verify`), not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamEvent {
    pub desk: String,
    pub seq: u64,
    pub hash: String,
    pub prev_hash: String,
    /// The canonical body the hash covers (`{seq, at, case_id, kind, actor, payload}`).
    pub body: String,
}

/// A case's evidence from the team, to keep: its events from every desk the lead may
/// see, and each of those desks' witnessed checkpoints (signed notes) at the time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseBundle {
    pub team: String,
    pub case_id: String,
    pub exported_by: String,
    pub exported_at: Timestamp,
    pub events: Vec<TeamEvent>,
    /// Each desk's newest witnessed checkpoint: (desk, signed note).
    pub witnessed: Vec<(String, String)>,
}

/// A desk's evidence the team could not verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TeamAlert {
    pub desk: String,
    /// The first bad event (for a gap: the first missing one).
    #[cfg_attr(feature = "ts", ts(type = "number"))]
    pub seq: u64,
    /// `gap`, `fork`, `bad_hash` or `bad_signature`.
    pub kind: String,
    pub detail: String,
    pub raised_at: String,
}

/// How a group of decided steps went (one bar of a chart).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TeamCounts {
    /// The action, the agent, or the week's first day.
    pub label: String,
    /// Decided `auto`: ran without a human.
    pub auto_run: u32,
    /// Countersigned (approved) by a person.
    pub confirmed: u32,
    pub rejected: u32,
    pub forbidden: u32,
    /// Waiting for a countersignature.
    pub waiting: u32,
    /// Decided `recommend`: the AI only suggested it.
    pub recommended: u32,
    /// Edited by an agent before it was decided (counted besides how it went).
    pub edited: u32,
}

/// Steps whose outcome was not known (a call that may or may not have landed), and how
/// they settled.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UnknownOutcomes {
    /// Still unknown.
    pub open: u32,
    /// Settled: it had applied.
    pub settled_applied: u32,
    /// Settled: it had not.
    pub settled_not_applied: u32,
}

/// Promises made in sent replies, and how they went when checked on their day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct PromiseCounts {
    /// The agent, or the week's first day (`all` for the totals).
    pub label: String,
    pub made: u32,
    pub kept: u32,
    pub broken: u32,
    /// No platform read can show it (a guarantee, a coupon): its owner checks it.
    pub not_checkable: u32,
    /// Its day has passed and no check has been recorded yet.
    pub overdue: u32,
    /// Not due yet.
    pub open: u32,
}

/// Leads' verdicts on the escalations (the newest verdict recorded at a lead's desk).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct EscalationVerdicts {
    /// A human was needed.
    pub right: u32,
    /// The handoff was not needed (a false alarm).
    pub wrong: u32,
    pub unjudged: u32,
}

/// The team's metrics over a window, on the desks and tenants a lead may see. Read
/// leniently: a newer service may count more than this desk knows how to show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TeamMetrics {
    pub totals: TeamCounts,
    pub per_action: Vec<TeamCounts>,
    pub per_agent: Vec<TeamCounts>,
    /// Per week (Monday), oldest first.
    pub per_week: Vec<TeamCounts>,
    /// Seconds from decision to countersignature, per approved step (the newest 5,000).
    pub approval_latency_secs: Vec<u32>,
    /// Overrides: steps the policy let through with a click (`confirm`) that a person
    /// rejected.
    pub overrides: u32,
    /// Cases an escalation signal handed to a human.
    pub escalations: u32,
    /// Whether those escalations were right, by a lead's recorded verdict.
    pub escalation_verdicts: EscalationVerdicts,
    pub cases: u32,
    pub unknown: UnknownOutcomes,
    /// Promises made in replies sent within the window, and whether they were kept.
    pub promises: PromiseCounts,
    pub promises_per_agent: Vec<PromiseCounts>,
    /// Per week (Monday) the reply was sent, oldest first.
    pub promises_per_week: Vec<PromiseCounts>,
    /// Per rule (`rule.<id>`, `signal.<id>`, `action.<name>`, `builtin.…`): how often it
    /// fired, decided a step and was overridden; the rules that fire most first.
    #[serde(default)]
    pub rules: Vec<RuleCounts>,
    /// The rules and signals of the team's newest signed policy that fired on no step in
    /// the window.
    #[serde(default)]
    pub rules_never_fired: Vec<String>,
}

/// One rule over the team's steps in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RuleCounts {
    pub rule: String,
    /// Steps it fired on (any of their reasons).
    pub fired: u32,
    /// Steps whose outcome it set (the most restrictive of their reasons).
    pub decided: u32,
    /// Of those, steps held for a person that the person rejected, or an agent edited.
    pub overridden: u32,
}
