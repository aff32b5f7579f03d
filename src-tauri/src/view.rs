//! Engine results → the views in `dto.rs`. Presentation only: nothing here decides,
//! writes or reads a file.

use std::collections::BTreeMap;

use countersign_core::Outcome;
use countersign_core::decide::{PlanDecision, ReplyDecision};
use countersign_core::evidence::Event;
use countersign_core::model::{Case, Plan};
use countersign_engine::cases::OpenedCase;
use countersign_engine::{EngineError, StepRecord, StepRun};

use crate::dto::{
    AppError, CaseView, CitationView, Decision, ErrorCode, EventView, MessageView, OrderView, ParamView, PromiseView,
    ReasonView, ReplyCheck, ReplyView, SentView, SignalView, StepView,
};
use crate::state::count;

pub fn decision(o: Outcome) -> Decision {
    match o {
        Outcome::Auto => Decision::Auto,
        Outcome::Confirm => Decision::Confirm,
        Outcome::Supervisor => Decision::Supervisor,
        Outcome::Recommend => Decision::Recommend,
        Outcome::Forbid => Decision::Forbid,
    }
}

pub fn code(c: countersign_engine::ErrorCode) -> ErrorCode {
    use countersign_engine::ErrorCode as E;
    match c {
        E::ConfigInvalid => ErrorCode::ConfigInvalid,
        E::PolicyInvalid => ErrorCode::PolicyInvalid,
        E::BadInput => ErrorCode::BadInput,
        E::NotFound => ErrorCode::NotFound,
        E::Conflict => ErrorCode::Conflict,
        E::StoreFailed => ErrorCode::StoreFailed,
        E::ConnectorFailed => ErrorCode::ConnectorFailed,
        E::CredentialMissing => ErrorCode::CredentialMissing,
        E::KeyringUnavailable => ErrorCode::KeyringUnavailable,
        E::Io => ErrorCode::Io,
        E::NotPermitted => ErrorCode::NotPermitted,
        E::ApprovalStale => ErrorCode::ApprovalStale,
        E::Paused => ErrorCode::Paused,
        E::PlannerFailed => ErrorCode::PlannerFailed,
        E::PackRefused => ErrorCode::PackRefused,
        E::ReleaseInvalid => ErrorCode::ReleaseInvalid,
        E::NeedsHuman => ErrorCode::NeedsHuman,
    }
}

/// What a person can do about an error with this code.
pub fn next_step(c: ErrorCode) -> &'static str {
    match c {
        ErrorCode::ConfigInvalid => "Fix the workspace file named in the message, then restart the app.",
        ErrorCode::PolicyInvalid => "Fix the policy at the file:line:column shown, then restart the app.",
        ErrorCode::BadInput => "Check what you entered and try again.",
        ErrorCode::NotFound => "Refresh the screen: it may have changed meanwhile.",
        ErrorCode::Conflict => "Refresh the case: someone or something changed it meanwhile.",
        ErrorCode::StoreFailed => "Check the disk and the data folder in Settings; the evidence log was not changed.",
        ErrorCode::ConnectorFailed => "Check the platform connection in Settings, then try again.",
        ErrorCode::CredentialMissing => "Add the platform credential in Settings.",
        ErrorCode::KeyringUnavailable => "Unlock the OS keyring (Secret Service), then try again.",
        ErrorCode::Io => "Check the path and its permissions.",
        ErrorCode::NotPermitted => "Ask someone with the role named in the message to countersign.",
        ErrorCode::ApprovalStale => "Open the case again so the plan is decided under the current policy.",
        ErrorCode::Paused => "A pause covers this step. A team lead can clear it on the Pause screen.",
        ErrorCode::PlannerFailed => {
            "Check the planner in Settings (endpoint, model, key), or plan with the local planner."
        }
        ErrorCode::PackRefused => {
            "Ask your admin for a pack signed by a trusted key; the app keeps running on the last good pack."
        }
        ErrorCode::ReleaseInvalid => "Do not install it: ask your admin for the signed release.",
        ErrorCode::NeedsHuman => {
            "Sign in or verify in the seller center yourself (nothing was sent); this step does not run again on \
             its own, so finish it there by hand."
        }
        ErrorCode::Internal => "Restart the app; if it happens again, send the log file from Settings.",
        ErrorCode::UpdateNotConfigured => {
            "Updates come from your admin: ask for an installer built with the updater key, or a policy pack that names the update endpoint."
        }
        ErrorCode::UpdateRefused => {
            "Nothing was installed. Do not install this update by hand; tell your admin, who should check the update server."
        }
        ErrorCode::UpdateFailed => {
            "Check the network and try again; if it keeps failing, tell your admin what the message says."
        }
    }
}

impl From<EngineError> for AppError {
    fn from(e: EngineError) -> AppError {
        let code = code(e.code());
        AppError { code, message: e.to_string(), next_step: next_step(code).to_string() }
    }
}

impl AppError {
    pub fn internal(message: impl Into<String>) -> AppError {
        AppError {
            code: ErrorCode::Internal,
            message: message.into(),
            next_step: next_step(ErrorCode::Internal).into(),
        }
    }
}

fn reasons(rs: &[countersign_core::decide::Reason]) -> Vec<ReasonView> {
    rs.iter()
        .map(|r| ReasonView { rule: r.rule.clone(), decision: decision(r.decision), text: r.text.clone() })
        .collect()
}

pub fn snake<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// The recorded context read of a case (the latest), from its evidence.
fn context(events: &[countersign_store::StoredEvent]) -> (Vec<OrderView>, Vec<String>) {
    for ev in events.iter().rev().filter(|e| e.kind == "context_read") {
        let parsed = serde_json::from_value::<Event>(serde_json::json!({"kind": ev.kind, "payload": ev.payload}));
        if let Ok(Event::ContextRead { orders, fields }) = parsed {
            let orders = orders
                .into_iter()
                .map(|o| OrderView {
                    order_id: o.order_id,
                    customer_id: o.customer_id,
                    status: o.status,
                    currency: o.currency.to_string(),
                    paid: o.paid.to_string(),
                    refunded: o.refunded.to_string(),
                })
                .collect();
            return (orders, fields);
        }
    }
    (Vec::new(), Vec::new())
}

/// A parameter's value as the agent reads and edits it: text as is, money as `12.50 USD`,
/// anything else as JSON.
pub fn param_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(m) if m.len() == 2 && m.contains_key("amount") && m.contains_key("currency") => {
            format!("{} {}", m["amount"].as_str().unwrap_or_default(), m["currency"].as_str().unwrap_or_default())
        }
        v => v.to_string(),
    }
}

/// The steps of one plan as decided, with their queue state and the latest runs.
fn steps_of(plan: &Plan, decided: &PlanDecision, queue: &[StepRecord], runs: &[StepRun]) -> Vec<StepView> {
    let queued: BTreeMap<&str, &StepRecord> =
        queue.iter().filter(|r| r.plan_id == plan.id).map(|r| (r.step_id.as_str(), r)).collect();
    let ran: BTreeMap<&str, &StepRun> =
        runs.iter().filter(|r| r.plan_id == plan.id).map(|r| (r.step_id.as_str(), r)).collect();
    decided
        .steps
        .iter()
        .map(|d| {
            let step = plan.steps.iter().find(|s| s.id == d.step_id);
            let record = queued.get(d.step_id.as_str());
            let run = ran.get(d.step_id.as_str());
            StepView {
                plan_id: plan.id.clone(),
                step_id: d.step_id.clone(),
                action: d.action.clone(),
                params: step
                    .map(|s| {
                        s.params
                            .iter()
                            .map(|(k, p)| ParamView {
                                name: k.clone(),
                                value: param_text(&p.value),
                                source: p.source.as_str().to_string(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                rationale: step.and_then(|s| s.rationale.clone()),
                decision: decision(d.decision),
                reasons: reasons(&d.reasons),
                rule_ids: d.rule_ids.clone(),
                approver_roles: d.approver_roles.clone(),
                money: d.money.as_ref().map(|m| m.to_string()),
                state: record.map(|r| r.state.as_str().to_string()),
                reviewed_by: record.and_then(|r| r.reviewed_by.clone()),
                review_reason: record.and_then(|r| r.review_reason.clone()),
                error: run.and_then(|r| r.error.clone()),
                error_code: run.and_then(|r| r.code).map(code),
            }
        })
        .collect()
}

/// The policy's reply decision as the UI shows it.
pub fn reply_check(rd: &ReplyDecision) -> ReplyCheck {
    ReplyCheck {
        decision: decision(rd.decision),
        reasons: reasons(&rd.reasons),
        promises: rd
            .promises
            .iter()
            .map(|p| PromiseView { id: p.id.clone(), category: snake(&p.category), matched: p.matched.clone() })
            .collect(),
        unresolved_citations: rd.unresolved_citations.clone(),
    }
}

/// Assemble the Case screen from the opened case (plan in force, its recorded decision,
/// the plans before it), the step queue, the case's evidence, the latest runs and the
/// reply as sent.
pub fn case_view(
    case: &Case,
    opened: &OpenedCase,
    queue: &[StepRecord],
    events: &[countersign_store::StoredEvent],
    runs: &[StepRun],
    sent: Option<SentView>,
) -> CaseView {
    let (plan, decided) = (&opened.plan, &opened.decision);
    let (orders, fields_read) = context(events);
    let steps = steps_of(plan, decided, queue, runs);
    let earlier = opened.earlier.iter().flat_map(|(p, d)| steps_of(p, d, queue, runs)).collect();
    let reply = plan.reply.as_ref().map(|draft| {
        let rd = decided.reply.as_ref();
        let check = rd.map(reply_check);
        ReplyView {
            text: draft.text.clone(),
            citations: draft
                .citations
                .iter()
                .enumerate()
                .map(|(i, c)| CitationView {
                    index: count(i + 1),
                    article_id: c.article_id.clone(),
                    version: c.version.clone(),
                    anchor: c.anchor.clone(),
                    quote: c.quote.clone(),
                })
                .collect(),
            decision: check.as_ref().map_or(Decision::Confirm, |c| c.decision),
            reasons: check.as_ref().map(|c| c.reasons.clone()).unwrap_or_default(),
            rule_ids: rd.map(|r| r.rule_ids.clone()).unwrap_or_default(),
            promises: check.as_ref().map(|c| c.promises.clone()).unwrap_or_default(),
            unresolved_citations: check.map(|c| c.unresolved_citations).unwrap_or_default(),
            sent: sent.clone(),
        }
    });
    CaseView {
        case_id: case.id.clone(),
        tenant: case.tenant.clone(),
        store: case.store.clone(),
        platform: case.platform.clone(),
        channel: case.channel.to_string(),
        subject: case.subject.clone(),
        customer_id: case.customer.as_ref().map(|c| c.id.clone()),
        identity: case.customer.as_ref().map(|c| snake(&c.identity)),
        messages: case
            .messages
            .iter()
            .map(|m| MessageView { from: snake(&m.from), text: m.text.clone(), at: m.at.map(|t| t.to_string()) })
            .collect(),
        orders,
        fields_read,
        plan_id: plan.id.clone(),
        planner: plan.planner.clone(),
        intent: plan.intent.clone(),
        policy_id: decided.policy_id.clone(),
        policy_version: u32::try_from(decided.policy_version).unwrap_or(u32::MAX),
        policy_hash: decided.policy_hash.clone(),
        handoff: decided.handoff,
        signals: decided
            .signals
            .iter()
            .map(|s| SignalView {
                id: s.id.clone(),
                category: snake(&s.category),
                matched: s.matched.clone(),
                reason: s.reason.clone(),
            })
            .collect(),
        steps,
        reply,
        earlier,
    }
}

pub fn event(e: countersign_store::StoredEvent) -> EventView {
    EventView {
        seq: u32::try_from(e.seq).unwrap_or(u32::MAX),
        at: e.at.to_string(),
        case_id: e.case_id,
        kind: e.kind,
        actor: e.actor,
        hash: e.hash.to_hex(),
        payload: e.payload,
    }
}

/// A blob for the UI: images are shown inline, page snapshots as text.
pub fn blob(hash: &str, b: countersign_store::Blob) -> crate::dto::BlobView {
    use base64::Engine as _;
    crate::dto::BlobView {
        hash: hash.to_string(),
        media_type: b.media_type,
        size: count(b.data.len()),
        base64: base64::engine::general_purpose::STANDARD.encode(&b.data),
    }
}
