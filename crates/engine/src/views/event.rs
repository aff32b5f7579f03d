//! An evidence event for the timeline: what each kind says, typed, built once from the
//! typed [`Event`] (the UI branches on `detail.kind` and reads fields, never a payload by
//! JSON path). The raw payload stays beside it for the "payload" disclosure and for finding
//! screenshots.

use countersign_core::evidence::{Event, StepOutcome};
use countersign_core::model::IdentityLevel;
use serde::Serialize;

use super::{Decision, count, snake};
use crate::LoggedEvent;

/// One evidence event.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EventView {
    pub seq: u32,
    pub at: String,
    pub case_id: Option<String>,
    pub kind: String,
    pub actor: String,
    pub hash: String,
    /// What the event says, typed per kind.
    pub detail: EventDetail,
    /// The payload as recorded (shown raw, searched for screenshots).
    pub payload: serde_json::Value,
}

/// One step of a recorded decision.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DecidedStep {
    pub step_id: String,
    pub action: String,
    pub decision: Decision,
}

/// What an event says, per kind (`kind` as stored). Kinds the timeline shows as raw
/// payload only are `other`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant, reason = "a view built once per event shown; boxing buys nothing")]
pub enum EventDetail {
    ContextRead {
        orders: u32,
        fields: Vec<String>,
        /// How strongly the customer was verified then (`none`, `matched`, `strong`).
        identity: String,
        /// The evidence for it, in words.
        identity_how: Vec<String>,
    },
    IdentityChecked {
        customer_id: String,
        how: String,
    },
    PlanProposed {
        plan_id: String,
        planner: String,
        intent: String,
        steps: u32,
    },
    Decided {
        steps: Vec<DecidedStep>,
        handoff: bool,
        policy_hash: String,
    },
    ReviewRequested {
        step_id: String,
        decision: Decision,
        approver_roles: Vec<String>,
    },
    ReviewDecided {
        step_id: String,
        /// `approved` or `rejected`.
        verdict: String,
        by_id: String,
        by_role: String,
        policy_hash: String,
        reason: String,
    },
    ReviewRefused {
        step_id: String,
        claimed_id: String,
        reason: String,
    },
    StepStarted {
        step_id: String,
        idempotency_key: String,
        request: Option<serde_json::Value>,
    },
    StepFinished {
        step_id: String,
        /// `succeeded`, `failed`, `unknown` or `needs_human`.
        outcome: String,
        error: Option<String>,
        /// `null` for a read, or a step stopped before anything was sent.
        before: Option<serde_json::Value>,
        after: serde_json::Value,
        request: serde_json::Value,
        response: serde_json::Value,
        /// Where a browser step stopped before sending anything, when it did.
        stopped_at: Option<String>,
    },
    ReplySent {
        plan_id: String,
        text: String,
        citations: u32,
    },
    StepInvalidated {
        plan_id: String,
        step_id: String,
        reason: String,
    },
    StepRetried {
        step_id: String,
        decision: Decision,
        under_approval: bool,
        idempotency_key: String,
        key_reason: String,
    },
    StepReversed {
        plan_id: String,
        step_id: String,
        reason: String,
    },
    StepSettled {
        step_id: String,
        applied: bool,
        reason: String,
    },
    CaseReceived {
        source: String,
        conversation_id: String,
        revision: u32,
        /// The conversation's state at the source.
        state: String,
    },
    CaseAssigned {
        assignee: String,
        /// This seat claimed it (else it was found held by `assignee`).
        claimed: bool,
    },
    ReplyDelivered {
        source: String,
        message_id: String,
    },
    ReplyNotDelivered {
        source: String,
        /// `unknown` (may have landed) or `failed` (refused).
        outcome: String,
        error: String,
    },
    PromiseMade {
        promise_id: String,
        category: String,
        sentence: String,
        /// The day it falls due (YYYY-MM-DD).
        due: String,
        owner: String,
    },
    PromiseChecked {
        promise_id: String,
        /// `kept`, `broken` or `not_checkable`.
        outcome: String,
        reason: String,
    },
    EscalationJudged {
        desk: String,
        case_id: String,
        right: bool,
        reason: String,
    },
    Other,
}

impl EventDetail {
    fn of(event: &Event) -> EventDetail {
        match event {
            Event::ContextRead { orders, fields, identity, .. } => EventDetail::ContextRead {
                orders: count(orders.len()),
                fields: fields.clone(),
                identity: identity.as_ref().map_or(IdentityLevel::None, |i| i.level).to_string(),
                identity_how: identity.as_ref().map(|i| i.how.clone()).unwrap_or_default(),
            },
            Event::IdentityChecked { customer_id, how } => {
                EventDetail::IdentityChecked { customer_id: customer_id.clone(), how: how.clone() }
            }
            Event::PlanProposed { plan } => EventDetail::PlanProposed {
                plan_id: plan.id.clone(),
                planner: plan.planner.clone(),
                intent: plan.intent.clone(),
                steps: count(plan.steps.len()),
            },
            Event::Decided { decision, .. } => EventDetail::Decided {
                steps: decision
                    .steps
                    .iter()
                    .map(|s| DecidedStep { step_id: s.step_id.clone(), action: s.action.clone(), decision: s.decision })
                    .collect(),
                handoff: decision.handoff,
                policy_hash: decision.policy_hash.clone(),
            },
            Event::ReviewRequested { step_id, decision, approver_roles, .. } => EventDetail::ReviewRequested {
                step_id: step_id.clone(),
                decision: *decision,
                approver_roles: approver_roles.clone(),
            },
            Event::ReviewDecided { step_id, policy_hash, verdict, by, reason, .. } => EventDetail::ReviewDecided {
                step_id: step_id.clone(),
                verdict: snake(verdict),
                by_id: by.id.clone(),
                by_role: by.role.clone(),
                policy_hash: policy_hash.clone(),
                reason: reason.clone(),
            },
            Event::ReviewRefused { step_id, claimed_id, reason, .. } => EventDetail::ReviewRefused {
                step_id: step_id.clone(),
                claimed_id: claimed_id.clone(),
                reason: reason.clone(),
            },
            Event::StepStarted { step_id, idempotency_key, request, .. } => EventDetail::StepStarted {
                step_id: step_id.clone(),
                idempotency_key: idempotency_key.clone(),
                request: request.clone(),
            },
            Event::StepFinished { step_id, outcome, before, after, request, response, error, stopped_at, .. } => {
                EventDetail::StepFinished {
                    step_id: step_id.clone(),
                    outcome: snake::<StepOutcome>(outcome),
                    error: error.clone(),
                    before: (!before.is_null()).then(|| before.clone()),
                    after: after.clone(),
                    request: request.clone(),
                    response: response.clone(),
                    stopped_at: stopped_at.clone(),
                }
            }
            Event::ReplySent { plan_id, text, citations, .. } => EventDetail::ReplySent {
                plan_id: plan_id.clone(),
                text: text.clone(),
                citations: count(citations.len()),
            },
            Event::StepRetried { step_id, decision, under_approval, idempotency_key, key_reason, .. } => {
                EventDetail::StepRetried {
                    step_id: step_id.clone(),
                    decision: decision.decision,
                    under_approval: *under_approval,
                    idempotency_key: idempotency_key.clone(),
                    key_reason: key_reason.clone(),
                }
            }
            Event::StepReversed { plan_id, step_id, reason } => {
                EventDetail::StepReversed { plan_id: plan_id.clone(), step_id: step_id.clone(), reason: reason.clone() }
            }
            Event::StepSettled { step_id, applied, reason, .. } => {
                EventDetail::StepSettled { step_id: step_id.clone(), applied: *applied, reason: reason.clone() }
            }
            Event::StepInvalidated { plan_id, step_id, reason, .. } => EventDetail::StepInvalidated {
                plan_id: plan_id.clone(),
                step_id: step_id.clone(),
                reason: reason.clone(),
            },
            Event::CaseReceived { source, conversation_id, revision, state, .. } => EventDetail::CaseReceived {
                source: source.clone(),
                conversation_id: conversation_id.clone(),
                revision: *revision,
                state: state.clone(),
            },
            Event::PromiseMade { promise_id, category, sentence, due, owner, .. } => EventDetail::PromiseMade {
                promise_id: promise_id.clone(),
                category: snake(category),
                sentence: sentence.clone(),
                due: due.to_string(),
                owner: owner.clone(),
            },
            Event::PromiseChecked { promise_id, outcome, reason, .. } => EventDetail::PromiseChecked {
                promise_id: promise_id.clone(),
                outcome: outcome.as_str().to_string(),
                reason: reason.clone(),
            },
            Event::EscalationJudged { verdict, .. } => EventDetail::EscalationJudged {
                desk: verdict.desk.clone(),
                case_id: verdict.case_id.clone(),
                right: verdict.right,
                reason: verdict.reason.clone(),
            },
            Event::CaseAssigned { assignee, claimed, .. } => {
                EventDetail::CaseAssigned { assignee: assignee.clone(), claimed: *claimed }
            }
            Event::ReplyDelivered { source, message_id, .. } => {
                EventDetail::ReplyDelivered { source: source.clone(), message_id: message_id.clone() }
            }
            Event::ReplyNotDelivered { source, outcome, error, .. } => EventDetail::ReplyNotDelivered {
                source: source.clone(),
                outcome: snake::<StepOutcome>(outcome),
                error: error.clone(),
            },
            // Shown as their raw payload. Listed, not `_`: a new kind must be placed here.
            Event::CaseOpened { .. }
            | Event::PlanningRead { .. }
            | Event::PauseChanged { .. }
            | Event::PolicyLoaded { .. }
            | Event::PolicyRefused { .. }
            | Event::DataMoved { .. }
            | Event::ExportMade { .. }
            | Event::Checkpoint { .. }
            | Event::TeamGrantSigned { .. } => EventDetail::Other,
        }
    }
}

pub fn event(e: LoggedEvent) -> EventView {
    EventView {
        seq: super::count_u64(e.seq),
        at: e.at.to_string(),
        case_id: e.case_id,
        kind: e.event.kind().to_string(),
        actor: e.actor,
        hash: e.hash,
        detail: EventDetail::of(&e.event),
        payload: e.event.payload(),
    }
}
