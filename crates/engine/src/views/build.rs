//! Engine results → views. Presentation only: nothing here decides, writes or reads a file.

use std::collections::BTreeMap;

use countersign_core::decide::{PlanDecision, ReplyDecision};
use countersign_core::evidence::Event;
use countersign_core::model::{Case, Plan};

use super::{
    BlobView, CaseView, CitationView, ClaimView, Decision, MessageView, OrderView, ParamView, PromiseView, ReasonView,
    ReplyCheck, ReplyView, SentView, SignalView, StepView, VerifyView, count, snake,
};
use crate::cases::OpenedCase;
use crate::{LoggedEvent, StepRecord, StepRun};

/// A sequence number or a count from the store, for a view.
pub fn count_u64(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn reasons(rs: &[countersign_core::decide::Reason]) -> Vec<ReasonView> {
    rs.iter().map(|r| ReasonView { rule: r.rule.clone(), decision: r.decision, text: r.text.clone() }).collect()
}

/// The recorded context read of a case (the latest), from its evidence.
fn context(events: &[LoggedEvent]) -> (Vec<OrderView>, Vec<String>) {
    for ev in events.iter().rev() {
        if let Event::ContextRead { orders, fields, .. } = &ev.event {
            let (orders, fields) = (orders.clone(), fields.clone());
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
        serde_json::Value::Object(_) => {
            countersign_core::Money::from_json(v).map_or_else(|_| v.to_string(), |m| m.to_string())
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
                decision: d.decision,
                reasons: reasons(&d.reasons),
                rule_ids: d.rule_ids.clone(),
                approver_roles: d.approver_roles.clone(),
                money: d.money.as_ref().map(|m| m.to_string()),
                state: record.map(|r| r.state.as_str().to_string()),
                reviewed_by: record.and_then(|r| r.reviewed_by.clone()),
                review_reason: record.and_then(|r| r.review_reason.clone()),
                error: run.and_then(|r| r.error.clone()),
                error_code: run.and_then(|r| r.code),
            }
        })
        .collect()
}

/// A claim check as the UI shows it; `text` is the draft it was checked in (its byte
/// offsets become UTF-16 ones).
fn claim_view(text: &str, c: &countersign_core::claims::ClaimCheck) -> ClaimView {
    let utf16 = |byte: usize| count(text.get(..byte).map_or(0, |t| t.encode_utf16().count()));
    ClaimView {
        sentence: c.sentence.clone(),
        start: utf16(c.start),
        end: utf16(c.end),
        claim: c.claim.clone(),
        kind: snake(&c.kind),
        status: snake(&c.status),
        citation: c.citation.clone(),
        reason: c.reason.clone(),
    }
}

/// The policy's reply decision on `text` as the UI shows it.
pub fn reply_check(rd: &ReplyDecision, text: &str) -> ReplyCheck {
    ReplyCheck {
        decision: rd.decision,
        reasons: reasons(&rd.reasons),
        promises: rd
            .promises
            .iter()
            .map(|p| PromiseView { id: p.id.clone(), category: snake(&p.category), matched: p.matched.clone() })
            .collect(),
        unresolved_citations: rd.unresolved_citations.clone(),
        claims: rd.claims.iter().map(|c| claim_view(text, c)).collect(),
    }
}

/// Assemble the Case screen from the opened case (plan in force, its recorded decision,
/// the plans before it), the step queue, the case's evidence, the latest runs and the
/// reply as sent.
pub fn case_view(
    case: &Case,
    opened: &OpenedCase,
    queue: &[StepRecord],
    events: &[LoggedEvent],
    runs: &[StepRun],
    sent: Option<SentView>,
) -> CaseView {
    let (plan, decided) = (&opened.plan, &opened.decision);
    let (orders, fields_read) = context(events);
    let steps = steps_of(plan, decided, queue, runs);
    let earlier = opened.earlier.iter().flat_map(|(p, d)| steps_of(p, d, queue, runs)).collect();
    let reply = plan.reply.as_ref().map(|draft| {
        let rd = decided.reply.as_ref();
        let check = rd.map(|rd| reply_check(rd, &draft.text));
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
            unresolved_citations: check.as_ref().map(|c| c.unresolved_citations.clone()).unwrap_or_default(),
            claims: check.map(|c| c.claims).unwrap_or_default(),
            sent: sent.clone(),
        }
    });
    let source = source_of(events);
    let identity = crate::identity::recorded_identity(case, events);
    CaseView {
        case_id: case.id.clone(),
        source,
        tenant: case.tenant.clone(),
        store: case.store.clone(),
        platform: case.platform.clone(),
        channel: case.channel.to_string(),
        subject: case.subject.clone(),
        customer_id: case.customer.as_ref().map(|c| c.id.clone()),
        identity: identity.level.to_string(),
        identity_how: identity.how,
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
        signals: decided.signals.iter().map(signal_view).collect(),
        set_aside: decided.set_aside.iter().map(signal_view).collect(),
        steps,
        reply,
        earlier,
    }
}

/// A blob for the UI: images are shown inline, page snapshots as text.
pub fn blob(hash: &str, b: countersign_store::Blob) -> BlobView {
    use base64::Engine as _;
    BlobView {
        hash: hash.to_string(),
        media_type: b.media_type,
        size: count(b.data.len()),
        base64: base64::engine::general_purpose::STANDARD.encode(&b.data),
    }
}

/// A log's verification as the team lead's screen shows it: where the chain first breaks,
/// else the first device-signed checkpoint that does not hold.
pub fn verify(v: &crate::LogVerification) -> VerifyView {
    let chain = &v.chain;
    let (first_broken_seq, problem) = match (&chain.first_broken, v.checkpoints.checkpoints.iter().find(|c| !c.ok)) {
        (Some(b), _) => (Some(count_u64(b.seq)), Some(b.problem.to_string())),
        (None, Some(c)) => (
            Some(count_u64(c.seq)),
            Some(format!(
                "checkpoint {} signed by device {}: {}",
                c.seq,
                c.device_key_id,
                c.problem.as_deref().unwrap_or("does not verify")
            )),
        ),
        (None, None) => (None, None),
    };
    VerifyView {
        ok: v.ok(),
        count: count_u64(chain.count),
        head: chain.head.to_hex(),
        first_broken_seq,
        problem,
        checkpoints: count(v.checkpoints.checkpoints.len()),
        devices: v.checkpoints.devices.clone(),
    }
}

/// A sent reply, with where its delivery stands.
pub fn sent(r: crate::cases::SentReply, delivery: Option<crate::delivery::Delivery>) -> super::SentView {
    use crate::delivery::Delivery;
    let (state, message_id, error) = match delivery.unwrap_or(Delivery::Local) {
        Delivery::Local => ("local", None, None),
        Delivery::Pending => ("pending", None, None),
        Delivery::Delivered { message_id } => ("delivered", Some(message_id), None),
        Delivery::Unknown { error } => ("unknown", None, Some(error)),
        Delivery::Failed { error } => ("failed", None, Some(error)),
    };
    super::SentView { text: r.text, by: r.by, at: r.at, delivery: state.to_owned(), message_id, delivery_error: error }
}

/// Where a case from a source stands there, as its evidence says: the conversation's
/// state at the last revision, and who holds it (`None` for a case not from a source).
fn source_of(events: &[LoggedEvent]) -> Option<super::SourceView> {
    use countersign_core::evidence::Event;
    let mut view: Option<super::SourceView> = None;
    for e in events {
        match &e.event {
            Event::CaseReceived { source, conversation_id, revision, state, .. } => {
                let v = view.get_or_insert_with(Default::default);
                v.source = source.clone();
                v.conversation_id = conversation_id.clone();
                v.revision = *revision;
                v.state = state.clone();
            }
            Event::CaseAssigned { assignee, claimed, .. } => {
                if let Some(v) = view.as_mut() {
                    v.assignee = Some(assignee.clone());
                    v.claimed_here = *claimed;
                }
            }
            _ => {}
        }
    }
    view
}

fn signal_view(s: &countersign_core::decide::SignalHit) -> SignalView {
    SignalView { id: s.id.clone(), category: snake(&s.category), matched: s.matched.clone(), reason: s.reason.clone() }
}
