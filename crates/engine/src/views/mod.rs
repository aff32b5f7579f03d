//! What the faces show: plain data views of the engine's results, built once here so the
//! desktop app and the command line show the same thing, and typed once: with the `ts`
//! feature each view derives its TypeScript declaration (ts-rs), which the desktop app
//! writes to `ui/src/bindings/` (a test there fails when they drift).
//!
//! Timestamps are RFC 3339 strings, money is a decimal string, counters are plain
//! numbers (`u32`, never floats), JSON payloads are `JsonValue`.

mod build;
mod event;
mod metrics;

use serde::{Deserialize, Serialize};

pub use crate::error::ErrorCode;
pub use crate::intake::SyncReport;
pub use build::*;
/// The policy's decision on a step or a reply, as the faces show it.
pub use countersign_core::Outcome as Decision;
pub use countersign_core::model::PauseScope;
pub use event::{DecidedStep, EventDetail, EventView, event};
pub use metrics::metrics;

/// A unit enum's serde name (`needs_human`), or any value as compact JSON.
pub fn snake<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// A count for a view (views carry `u32`, which TypeScript reads as `number`).
pub fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// One row of the inbox.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InboxItem {
    pub case_id: String,
    pub channel: String,
    pub customer_id: Option<String>,
    /// `strong` for a case whose channel signed the customer in; nothing otherwise (the
    /// Case screen shows the whole verification, look-ups and checks included).
    pub identity: Option<String>,
    pub subject: Option<String>,
    pub last_message: String,
    /// The workflow of the plan in force, once the case has been planned.
    pub intent: Option<String>,
    /// Steps waiting for a countersignature.
    pub waiting: u32,
    /// An escalation signal in the customer's words hands the case to a human (found by
    /// the policy from the messages alone, before anything is planned).
    pub handoff: bool,
    /// The escalation signals found (`category: matched words`).
    pub signals: Vec<String>,
    /// The languages the signals do not read that the customer wrote in (`Tagalog`), when
    /// the policy checks them (`[signal_languages]`): a person reads the case before any
    /// write or the reply. Empty when every text is in a language read.
    pub unread_languages: Vec<String>,
    /// The case's plan has been decided and recorded.
    pub opened: bool,
    /// The reply has been sent.
    pub replied: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MessageView {
    pub from: String,
    pub text: String,
    pub at: Option<String>,
}

/// An order as the AI was allowed to see it (the recorded context read).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OrderView {
    pub order_id: String,
    pub customer_id: String,
    pub status: String,
    pub currency: String,
    pub paid: String,
    pub refunded: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReasonView {
    pub rule: String,
    pub decision: Decision,
    pub text: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ParamView {
    pub name: String,
    /// The value as JSON text (a decimal amount stays a string).
    pub value: String,
    /// Where the value came from (connector, agent, customer_message, …).
    pub source: String,
}

/// A plan step with its decision and where it stands.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StepView {
    pub plan_id: String,
    pub step_id: String,
    pub action: String,
    pub params: Vec<ParamView>,
    pub rationale: Option<String>,
    pub decision: Decision,
    pub reasons: Vec<ReasonView>,
    pub rule_ids: Vec<String>,
    pub approver_roles: Vec<String>,
    pub money: Option<String>,
    /// The queue state (waiting, approved, succeeded, failed, …); none for recommend/forbid.
    pub state: Option<String>,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    /// The last run's refusal or failure, with its code when it was refused.
    pub error: Option<String>,
    pub error_code: Option<ErrorCode>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CitationView {
    pub index: u32,
    pub article_id: String,
    pub version: Option<String>,
    pub anchor: Option<String>,
    pub quote: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PromiseView {
    pub id: String,
    pub category: String,
    pub matched: String,
}

/// A factual claim of the reply (an amount, a duration, a date, a claim phrase such as
/// `free`) and whether a passage the reply cites states it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ClaimView {
    /// The sentence that makes the claim.
    pub sentence: String,
    /// Where the sentence is in the text that was checked, in UTF-16 code units (what a
    /// JavaScript string's `slice` takes): `text.slice(start, end) === sentence`.
    pub start: u32,
    pub end: u32,
    /// The claim as written (`30 days`), or the claim phrase that matched (`free`).
    pub claim: String,
    /// `money`, `duration`, `percent`, `date` or `phrase`.
    pub kind: String,
    /// `supported`, `unsupported` or `contradicted`.
    pub status: String,
    /// The citation it was checked against (`[1] article#anchor`), when one states or
    /// contradicts it.
    pub citation: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReplyView {
    pub text: String,
    pub citations: Vec<CitationView>,
    pub decision: Decision,
    pub reasons: Vec<ReasonView>,
    pub rule_ids: Vec<String>,
    pub promises: Vec<PromiseView>,
    pub unresolved_citations: Vec<String>,
    /// Every claim of the draft and whether its citations state it.
    pub claims: Vec<ClaimView>,
    /// The reply as sent, once it has been.
    pub sent: Option<SentView>,
}

/// A reply recorded as sent.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SentView {
    pub text: String,
    /// Who sent it (or countersigned it, for a reply that needed a team lead).
    pub by: String,
    pub at: String,
    /// Where it stands at the case's source: `local` (the case is not from a source),
    /// `pending`, `delivered`, `unknown` (may have landed: settled before any new attempt)
    /// or `failed` (the platform refused it).
    pub delivery: String,
    /// The platform's id of the posted message, once delivered.
    pub message_id: Option<String>,
    /// Why the last attempt did not deliver it.
    pub delivery_error: Option<String>,
}

/// The policy's decision on the reply text as the agent is editing it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReplyCheck {
    pub decision: Decision,
    pub reasons: Vec<ReasonView>,
    pub promises: Vec<PromiseView>,
    pub unresolved_citations: Vec<String>,
    /// Every claim of the text and whether the reply's citations state it.
    pub claims: Vec<ClaimView>,
}

/// A blob of evidence (a screenshot, a page snapshot), base64-encoded.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BlobView {
    pub hash: String,
    pub media_type: String,
    pub size: u32,
    pub base64: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SignalView {
    pub id: String,
    pub category: String,
    pub matched: String,
    pub reason: String,
}

/// Everything the Case screen shows.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CaseView {
    pub case_id: String,
    /// For a case from a source: the conversation there, and who holds it.
    pub source: Option<SourceView>,
    pub tenant: String,
    pub store: String,
    pub platform: String,
    pub channel: String,
    pub subject: Option<String>,
    pub customer_id: Option<String>,
    /// How strongly the evidence shows the customer is the account holder: `none`,
    /// `matched` (an identity look-up with what they typed) or `strong` (the channel
    /// signed them in, or an agent checked). The case's own claim plays no part.
    pub identity: String,
    /// The evidence for it, in words.
    pub identity_how: Vec<String>,
    pub messages: Vec<MessageView>,
    pub orders: Vec<OrderView>,
    /// The order fields the policy let the AI read.
    pub fields_read: Vec<String>,
    pub plan_id: String,
    pub planner: String,
    pub intent: String,
    pub policy_id: String,
    pub policy_version: u32,
    pub policy_hash: String,
    pub handoff: bool,
    pub signals: Vec<SignalView>,
    /// Patterns' hits the learned models read as the words' ordinary sense: shown, not
    /// handed off (`[signal_model] patterns_min_probability`).
    pub set_aside: Vec<SignalView>,
    pub steps: Vec<StepView>,
    pub reply: Option<ReplyView>,
    /// Steps of plans this one replaced (planned again, or edited), oldest first: what ran,
    /// was rejected or was replaced before.
    pub earlier: Vec<StepView>,
}

/// A case's conversation at its source.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SourceView {
    pub source: String,
    pub conversation_id: String,
    /// The case's revision (a new one each time the conversation changed).
    pub revision: u32,
    /// `open`, `waiting` or `resolved`, at the last revision.
    pub state: String,
    /// Who holds the conversation at the source, as last seen.
    pub assignee: Option<String>,
    /// This seat claimed it (else someone else holds it: they answer it).
    pub claimed_here: bool,
}

/// Progress of a long command, streamed over a channel.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Progress {
    Planning { case_id: String },
    Deciding { plan_id: String, steps: u32 },
    Running { step_id: String, action: String },
    Ran { step_id: String, state: String, error: Option<String> },
    Done,
}

/// How a reviewer answers a waiting step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approve,
    Reject,
}

/// A team lead's proof for a supervisor step (never stored, never logged).
#[derive(Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LeadProof {
    pub id: String,
    pub passphrase: String,
}

impl std::fmt::Debug for LeadProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeadProof").field("id", &self.id).field("passphrase", &"[redacted]").finish()
    }
}

/// A cited passage, opened from a citation chip.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PassageView {
    pub article_id: String,
    pub title: String,
    pub version: u32,
    pub anchor: Option<String>,
    pub heading: Option<String>,
    pub text: String,
    pub resolved: bool,
    /// What the resolution found ("… resolves", "the quoted text is not in …").
    pub resolution: String,
}

/// Filter for the team lead's log browser.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LogQuery {
    pub case_id: Option<String>,
    pub kind: Option<String>,
    pub text: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct VerifyView {
    pub ok: bool,
    pub count: u32,
    pub head: String,
    /// Where the chain first breaks, or else the first checkpoint that does not hold.
    pub first_broken_seq: Option<u32>,
    pub problem: Option<String>,
    /// Device-signed checkpoints found in the log (each checked against the chain).
    pub checkpoints: u32,
    /// Key ids of the devices whose checkpoints verified.
    pub devices: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ExportView {
    pub dir: String,
    pub count: u32,
    pub head: String,
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PauseView {
    pub id: String,
    pub scope: PauseScope,
    pub value: String,
    pub reason: String,
    pub set_by: String,
    pub set_at: String,
    pub cleared_by: Option<String>,
    pub cleared_at: Option<String>,
    pub cleared_reason: Option<String>,
}

/// Counts for one bar of a chart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OutcomeCounts {
    pub label: String,
    pub auto_run: u32,
    pub confirmed: u32,
    pub rejected: u32,
    pub forbidden: u32,
    pub waiting: u32,
}

/// The team lead's metrics, from the step queue and the evidence log.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Metrics {
    pub totals: OutcomeCounts,
    pub per_action: Vec<OutcomeCounts>,
    pub per_agent: Vec<OutcomeCounts>,
    /// Seconds from decision to countersignature, per approved step (for the median and chart).
    pub approval_latency_secs: Vec<u32>,
    /// Plan revisions agents made by editing a waiting step before approving it.
    pub edits_before_approval: u32,
    /// Cases an escalation signal handed to a human.
    pub escalations: u32,
    pub cases: u32,
}
