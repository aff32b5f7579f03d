//! Evidence event types: what the log records at each step of a case.
//!
//! The store keeps each event as canonical JSON `{seq, at, case_id, kind, actor,
//! payload}` in a hash chain; [`Event`] is the typed `kind` + `payload` part.
//! Secrets never appear here: connector requests and responses are redacted
//! before they become evidence.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decide::{CustomerFacts, Facts, IdentityFacts, OrderFacts, PlanDecision, StepDecision};
use crate::digest::{canonical_json, sha256_hex};
use crate::model::{Case, Citation, Operator, Pause, Plan};
use crate::policy::Outcome;

/// How a countersignature went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Approved,
    Rejected,
}

/// Where a reply to a case from a source is posted, and the key of every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplyDelivery {
    pub source: String,
    pub conversation_id: String,
    pub idempotency_key: String,
}

/// How an executed step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Succeeded,
    Failed,
    /// Started but never finished (crash); reconciled by a read, never retried blindly.
    Unknown,
    /// The page or platform asked for a human (verification, expired session).
    NeedsHuman,
}

/// How a write is known not to have applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotAppliedBy {
    /// The platform refused it (its own answer, to the request or to the same request
    /// sent again under the same key).
    PlatformRefused,
    /// Nothing was sent: it stopped before the call or the submit.
    NothingSent,
    /// The target stayed as it was through the settling window (a platform that takes
    /// no idempotency key: read back, never resent).
    Unchanged,
    /// A team lead settled it by hand, with a reason.
    ByHand,
}

/// A pause switch being set or cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PauseChange {
    Set,
    Cleared,
}

/// The signed pack a policy came in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PackRef {
    pub id: String,
    pub version: u64,
    /// The id of the trusted admin key that signed it.
    pub key_id: String,
    /// `sha256:<hex>` of the pack's manifest (what the signature covers).
    pub digest: String,
    /// `sha256:` of the simulation report its signer was shown (absent: signed without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation: Option<String>,
}

/// Everything a decision read besides the policy and the plan (recorded just before it,
/// in `plan_proposed`): the case as decided and the trusted facts, money history, pauses
/// in force, the operator and their role, citations and the cut-off state included. A
/// decision is a pure function of (policy, case, plan, facts), so these replay it
/// exactly (`countersign policy simulate`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInputs {
    /// The case as decided, when it is not the one this log last recorded for the case
    /// (`case_opened`, `case_received`): a case file edited between two runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<Case>,
    /// `sha256:` of the case's canonical JSON.
    pub case_digest: String,
    pub facts: Facts,
    /// `sha256:` of the canonical `{case, facts, plan, policy}` (the case's, the plan's
    /// and the policy's digests, the facts whole): binds the inputs to the decision.
    pub digest: String,
}

impl DecisionInputs {
    /// The inputs of deciding `plan` on `case` under the policy `policy_hash`; the case is
    /// kept whole only when `keep_case` (the log does not hold it already).
    pub fn new(case: &Case, plan: &Plan, facts: Facts, policy_hash: &str, keep_case: bool) -> DecisionInputs {
        let case_digest = case_digest(case);
        let digest = inputs_digest(&case_digest, plan, &facts, policy_hash);
        DecisionInputs { case: keep_case.then(|| case.clone()), case_digest, facts, digest }
    }

    /// Whether these inputs are the ones recorded for deciding `plan` on `case` under
    /// `policy_hash` (nothing edited since).
    pub fn holds_for(&self, case: &Case, plan: &Plan, policy_hash: &str) -> bool {
        self.case_digest == case_digest(case)
            && self.digest == inputs_digest(&self.case_digest, plan, &self.facts, policy_hash)
    }
}

/// `sha256:` of a case's canonical JSON.
pub fn case_digest(case: &Case) -> String {
    sha256_hex(canonical_json(case).as_bytes())
}

fn inputs_digest(case_digest: &str, plan: &Plan, facts: &Facts, policy_hash: &str) -> String {
    #[derive(Serialize)]
    struct Bound<'a> {
        case: &'a str,
        facts: &'a Facts,
        plan: String,
        policy: &'a str,
    }
    let plan = sha256_hex(canonical_json(plan).as_bytes());
    sha256_hex(canonical_json(&Bound { case: case_digest, facts, plan, policy: policy_hash }).as_bytes())
}

/// The typed body of an evidence event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Event {
    CaseOpened {
        case: Case,
    },
    /// A case arrived from a source, or its conversation changed there (a new customer
    /// message): revision 1, 2, … of the case as read from the source.
    CaseReceived {
        source: String,
        conversation_id: String,
        revision: u32,
        /// The conversation's state at the source: `open`, `waiting` or `resolved`.
        state: String,
        case: Case,
    },
    ContextRead {
        orders: Vec<OrderFacts>,
        fields: Vec<String>,
        /// The accounts read for ownership checks (their payment methods).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        customers: Vec<CustomerFacts>,
        /// How the customer was verified when the plan was decided (the identity
        /// look-ups run then are in it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<IdentityFacts>,
    },
    /// An agent verified the customer themselves (a one-time code sent to the account's
    /// contact, a call back): a strong verification of that account, in their words.
    IdentityChecked {
        customer_id: String,
        how: String,
    },
    /// A read a planner asked for while planning: decided by the policy first, run only
    /// when `auto`, the response cut to the fields the action may read.
    PlanningRead {
        action: String,
        params: serde_json::Value,
        /// `read`, `not_found`, `refused` or `failed`.
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response: Option<serde_json::Value>,
    },
    PlanProposed {
        plan: Plan,
    },
    Decided {
        decision: PlanDecision,
        /// What the decision read, so it can be replayed exactly (absent in decisions
        /// recorded before inputs were kept).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inputs: Option<Box<DecisionInputs>>,
    },
    ReviewRequested {
        plan_id: String,
        step_id: String,
        step_digest: String,
        decision: Outcome,
        approver_roles: Vec<String>,
    },
    ReviewDecided {
        plan_id: String,
        step_id: String,
        step_digest: String,
        policy_hash: String,
        verdict: Verdict,
        by: Operator,
        reason: String,
        /// A lead's signed grant from their own desk over the team plane (instead of a
        /// passphrase typed at this seat).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        grant: Option<crate::team::SignedEntry>,
        /// The engine ended the review, not a person: an approval expired, or the step was
        /// decided again (another policy, new facts) before it ran.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        by_engine: bool,
    },
    /// Someone claimed to be a roster member at this seat and could not prove it
    /// (the passphrase is never recorded).
    ReviewRefused {
        plan_id: String,
        step_id: String,
        step_digest: String,
        claimed_id: String,
        seat: Operator,
        reason: String,
    },
    StepStarted {
        plan_id: String,
        step_id: String,
        step_digest: String,
        idempotency_key: String,
        /// The object's state read just before the call (writes), kept so a step
        /// that never finished can be reconciled against it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<serde_json::Value>,
        /// The request about to go out, secrets redacted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<serde_json::Value>,
        /// The step decided again on the facts read just before it ran (no stricter than
        /// the decision it ran under, or it would not have started).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        redecided: Option<StepDecision>,
    },
    StepFinished {
        plan_id: String,
        step_id: String,
        outcome: StepOutcome,
        before: serde_json::Value,
        after: serde_json::Value,
        request: serde_json::Value,
        response: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Where the step stopped before anything was sent, when it did (`before-state
        /// read`: a page a person must see came up while reading the state).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stopped_at: Option<String>,
        /// For a step that did not apply: how that is known (what a retry may do with
        /// the idempotency key depends on it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_applied: Option<NotAppliedBy>,
    },
    /// A failed or not-applied step is tried again: under its approval when nothing
    /// changed and the approval holds, otherwise waiting for a new countersignature. The
    /// idempotency key stays the same unless the platform's own answer showed the earlier
    /// attempt did not apply.
    StepRetried {
        plan_id: String,
        step_id: String,
        /// The step decided again now.
        decision: StepDecision,
        /// The earlier approval still holds (`false`: it waits for a new one).
        under_approval: bool,
        idempotency_key: String,
        /// A new key (the platform's answer showed the earlier attempt did not apply).
        fresh_key: bool,
        /// Why a new key, or why the same one.
        key_reason: String,
    },
    /// A team lead settled a step whose outcome was unknown, from what they saw on the
    /// platform.
    StepSettled {
        plan_id: String,
        step_id: String,
        applied: bool,
        reason: String,
    },
    /// A lead recorded that a step that ran was undone afterwards (a refund reversed by the
    /// bank, an order sent back): it counts against its band's earned autonomy.
    StepReversed {
        plan_id: String,
        step_id: String,
        reason: String,
    },
    ReplySent {
        plan_id: String,
        text: String,
        citations: Vec<Citation>,
        /// For a case from a source: where the reply goes, and the key every attempt to
        /// post it carries (recorded before the first attempt, so a retry after a crash
        /// posts with the same key).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery: Option<ReplyDelivery>,
    },
    /// A promise the sent reply of `plan_id` made (a reply rule found it): the day it falls
    /// due, who owns it, and the case's orders as they were then (what the check on that
    /// day compares with).
    PromiseMade {
        plan_id: String,
        /// The reply rule that found it.
        promise_id: String,
        category: crate::policy::PromiseCategory,
        /// The reply's sentence that makes it.
        sentence: String,
        /// The day it falls due (UTC): the date or time it states, else a week on.
        due: jiff::civil::Date,
        /// Who owns the outcome (the reply policy's owner).
        owner: String,
        /// The case's orders as last read before the reply went out.
        orders: Vec<OrderFacts>,
    },
    /// A promise checked once the day it fell due had passed: the orders as the platform
    /// showed them then, and what that says.
    PromiseChecked {
        plan_id: String,
        promise_id: String,
        outcome: crate::promise::PromiseOutcome,
        /// Each order read (`None`: the platform did not find it).
        orders: Vec<(String, Option<OrderFacts>)>,
        reason: String,
    },
    /// A lead's verdict on a case an escalation signal handed to a human: was the handoff
    /// right? Recorded at the lead's desk about a desk's case (which may be another's),
    /// signed with the lead's team key.
    EscalationJudged {
        verdict: crate::team::EscalationVerdict,
        signed: crate::team::SignedEntry,
    },
    /// Who holds a case from a source, as its conversation's assignee there: this seat
    /// claimed it on opening (`claimed`), or found it held by someone else.
    CaseAssigned {
        source: String,
        conversation_id: String,
        assignee: String,
        claimed: bool,
    },
    /// The source accepted the reply (or, asked again with the same key, answered with
    /// the message it had already posted).
    ReplyDelivered {
        plan_id: String,
        source: String,
        conversation_id: String,
        /// The platform's id of the posted message.
        message_id: String,
        idempotency_key: String,
    },
    /// An attempt to post the reply did not end in a posted message: `unknown` when it may
    /// have landed (a timeout, a lost answer), `failed` when the platform refused it.
    ReplyNotDelivered {
        plan_id: String,
        source: String,
        conversation_id: String,
        idempotency_key: String,
        outcome: StepOutcome,
        error: String,
    },
    PauseChanged {
        change: PauseChange,
        pause: Pause,
        /// Why a pause was cleared (the reason it was set is in `pause`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// A team pause's signed entry, as this desktop received it from the team plane.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signed: Option<crate::team::SignedEntry>,
    },
    /// A policy was loaded: `signed` with the pack it came in, or unsigned (dev mode).
    PolicyLoaded {
        policy_id: String,
        version: u64,
        hash: String,
        signed: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pack: Option<PackRef>,
    },
    /// A policy pack (or an unsigned policy) was refused; the app keeps the last good pack.
    PolicyRefused {
        reason: String,
        /// `unsigned`, `malformed`, `unknown_key`, `bad_signature`, `tampered`,
        /// `missing_file`, `unlisted_file`, `invalid_contents`, `downgrade` or
        /// `version_reused`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pack_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pack_version: Option<u64>,
        /// `sha256:<hex>` of the refused pack's manifest.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        digest: Option<String>,
    },
    /// A waiting or approved step decided under another policy, invalidated when a new
    /// policy loaded: it must be decided again.
    StepInvalidated {
        plan_id: String,
        step_id: String,
        step_digest: String,
        /// The policy hash it was decided under.
        decided_under: String,
        /// The policy hash now loaded.
        policy_hash: String,
        reason: String,
    },
    /// The workspace's data folder (this log with it) was moved into place from where an
    /// earlier version kept it; the log's bytes were not changed.
    DataMoved {
        from: String,
        to: String,
    },
    ExportMade {
        path: String,
        count: u64,
        head: String,
    },
    Checkpoint {
        count: u64,
        head: String,
        device_key: String,
        signature: String,
    },
    /// A lead answered an agent desk's supervisor step from this desk: the request as
    /// this lead saw it, and the grant they signed.
    TeamGrantSigned {
        request: Box<crate::team::ApprovalRequest>,
        grant: crate::team::SignedEntry,
    },
}

impl Event {
    /// The `kind` string as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::CaseOpened { .. } => "case_opened",
            Event::CaseReceived { .. } => "case_received",
            Event::ContextRead { .. } => "context_read",
            Event::IdentityChecked { .. } => "identity_checked",
            Event::PlanningRead { .. } => "planning_read",
            Event::PlanProposed { .. } => "plan_proposed",
            Event::Decided { .. } => "decided",
            Event::ReviewRequested { .. } => "review_requested",
            Event::ReviewDecided { .. } => "review_decided",
            Event::ReviewRefused { .. } => "review_refused",
            Event::StepStarted { .. } => "step_started",
            Event::StepFinished { .. } => "step_finished",
            Event::StepRetried { .. } => "step_retried",
            Event::StepSettled { .. } => "step_settled",
            Event::StepReversed { .. } => "step_reversed",
            Event::ReplySent { .. } => "reply_sent",
            Event::ReplyDelivered { .. } => "reply_delivered",
            Event::PromiseMade { .. } => "promise_made",
            Event::PromiseChecked { .. } => "promise_checked",
            Event::EscalationJudged { .. } => "escalation_judged",
            Event::CaseAssigned { .. } => "case_assigned",
            Event::ReplyNotDelivered { .. } => "reply_not_delivered",
            Event::PauseChanged { .. } => "pause_changed",
            Event::PolicyLoaded { .. } => "policy_loaded",
            Event::PolicyRefused { .. } => "policy_refused",
            Event::StepInvalidated { .. } => "step_invalidated",
            Event::DataMoved { .. } => "data_moved",
            Event::ExportMade { .. } => "export_made",
            Event::Checkpoint { .. } => "checkpoint",
            Event::TeamGrantSigned { .. } => "team_grant_signed",
        }
    }

    /// An event from its stored parts: the `kind` and the `payload` beside it, read from
    /// the payload in place (nothing of it is copied first).
    pub fn from_parts(kind: &str, payload: &serde_json::Value) -> Result<Event, serde_json::Error> {
        let kind = serde_json::Value::String(kind.to_owned());
        let parts = [("kind", &kind), ("payload", payload)];
        Event::deserialize(serde::de::value::MapDeserializer::<_, serde_json::Error>::new(parts.into_iter()))
    }

    /// An event from its `kind` and its payload as JSON text, read straight from the text.
    pub fn from_text(kind: &str, payload: &str) -> Result<Event, serde_json::Error> {
        let kind = serde_json::to_string(kind)?;
        serde_json::from_str(&format!(r#"{{"kind":{kind},"payload":{payload}}}"#))
    }

    /// The payload alone, as stored beside the kind.
    pub fn payload(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut m)) => m.remove("payload").unwrap_or(serde_json::Value::Null),
            _ => serde_json::Value::Null,
        }
    }
}

/// An event as it sits in the log (the hashed body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EvidenceRecord {
    pub seq: u64,
    pub at: Timestamp,
    pub case_id: Option<String>,
    pub actor: String,
    #[serde(flatten)]
    pub event: Event,
}
