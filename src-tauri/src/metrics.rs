//! The team lead's metrics: counts over the step queue and the `decided` / `plan_proposed`
//! events the engine returns. A pure function, tested below.

use std::collections::{BTreeMap, BTreeSet};

use countersign_engine::cases::AGENT_EDIT;
use countersign_engine::{StepRecord, StepState};
use countersign_store::StoredEvent;

use crate::dto::{Metrics, OutcomeCounts};

#[derive(Clone, Copy)]
enum Bucket {
    AutoRun,
    Confirmed,
    Rejected,
    Forbidden,
    Waiting,
}

fn bump(c: &mut OutcomeCounts, b: Bucket) {
    let slot = match b {
        Bucket::AutoRun => &mut c.auto_run,
        Bucket::Confirmed => &mut c.confirmed,
        Bucket::Rejected => &mut c.rejected,
        Bucket::Forbidden => &mut c.forbidden,
        Bucket::Waiting => &mut c.waiting,
    };
    *slot += 1;
}

fn add(map: &mut BTreeMap<String, OutcomeCounts>, key: &str, b: Bucket) {
    let c =
        map.entry(key.to_string()).or_insert_with(|| OutcomeCounts { label: key.to_string(), ..Default::default() });
    bump(c, b);
}

/// `steps`: every queued step; `events`: the log's `decided` and `plan_proposed` events.
pub fn compute(steps: &[StepRecord], events: &[StoredEvent]) -> Metrics {
    let mut m = Metrics::default();
    let mut per_action = BTreeMap::new();
    let mut per_agent = BTreeMap::new();
    m.totals.label = "all".into();
    for s in steps {
        let bucket = match (s.decision.as_str(), s.state) {
            (_, StepState::Waiting) => Bucket::Waiting,
            (_, StepState::Rejected) => Bucket::Rejected,
            ("auto", _) => Bucket::AutoRun,
            (_, StepState::Expired | StepState::Invalidated) => continue,
            _ => Bucket::Confirmed,
        };
        bump(&mut m.totals, bucket);
        add(&mut per_action, &s.action, bucket);
        let who = match bucket {
            Bucket::AutoRun => "policy (auto)",
            _ => s.reviewed_by.as_deref().unwrap_or("(not reviewed)"),
        };
        add(&mut per_agent, who, bucket);
        if let (Bucket::Confirmed, Some(at)) = (bucket, s.reviewed_at) {
            let secs = at.duration_since(s.decided_at).as_secs().max(0);
            m.approval_latency_secs.push(u32::try_from(secs).unwrap_or(u32::MAX));
        }
    }
    let mut cases = BTreeSet::new();
    let mut handoffs = BTreeSet::new();
    let mut edits: BTreeSet<String> = BTreeSet::new();
    for e in events {
        let case = e.case_id.clone().unwrap_or_default();
        match e.kind.as_str() {
            "decided" => {
                cases.insert(case.clone());
                if e.payload["handoff"].as_bool() == Some(true) {
                    handoffs.insert(case);
                }
                for s in e.payload["steps"].as_array().into_iter().flatten() {
                    if s["decision"].as_str() == Some("forbid") {
                        bump(&mut m.totals, Bucket::Forbidden);
                        add(&mut per_action, s["action"].as_str().unwrap_or("?"), Bucket::Forbidden);
                    }
                }
            }
            // An agent's edit is a plan revision proposed by the agent (planning again
            // over changed data is not an edit).
            "plan_proposed" if e.payload["plan"]["planner"].as_str() == Some(AGENT_EDIT) => {
                if let Some(id) = e.payload["plan"]["id"].as_str() {
                    edits.insert(id.to_string());
                }
            }
            _ => {}
        }
    }
    m.edits_before_approval = crate::state::count(edits.len());
    m.escalations = crate::state::count(handoffs.len());
    m.cases = crate::state::count(cases.len());
    m.per_action = per_action.into_values().collect();
    m.per_agent = per_agent.into_values().collect();
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use jiff::Timestamp;

    fn step(action: &str, decision: &str, state: StepState, by: Option<&str>, latency: i64) -> StepRecord {
        let decided: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        StepRecord {
            plan_id: "p".into(),
            step_id: format!("{action}-{decision}"),
            case_id: "c".into(),
            action: action.into(),
            step: serde_json::Value::Null,
            step_digest: String::new(),
            policy_hash: String::new(),
            decision: decision.into(),
            approver_roles: vec![],
            state,
            decided_at: decided,
            reviewed_by: by.map(str::to_string),
            reviewed_at: by.map(|_| decided + jiff::SignedDuration::from_secs(latency)),
            review_reason: None,
            approval_expires_at: None,
            idempotency_key: None,
            last_seq: 0,
        }
    }

    fn event(case: &str, kind: &str, payload: serde_json::Value) -> StoredEvent {
        serde_json::from_value(serde_json::json!({
            "seq": 1, "at": "2026-01-01T10:00:00Z", "case_id": case, "kind": kind, "actor": "x",
            "payload": payload, "hash": "00".repeat(32), "body": ""
        }))
        .unwrap()
    }

    #[test]
    fn counts_each_outcome_once_per_action_and_per_reviewer() {
        let steps = vec![
            step("order_read", "auto", StepState::Succeeded, None, 0),
            step("cancel_order", "confirm", StepState::Succeeded, Some("agent-a"), 30),
            step("refund_full", "confirm", StepState::Rejected, Some("agent-b"), 5),
            step("refund_full", "supervisor", StepState::Waiting, None, 0),
        ];
        let events = vec![
            event(
                "c1",
                "decided",
                serde_json::json!({"handoff": true, "steps": [{"action": "reset_password", "decision": "forbid"}]}),
            ),
            event("c1", "plan_proposed", serde_json::json!({"plan": {"id": "p1", "planner": "local"}})),
            event("c1", "plan_proposed", serde_json::json!({"plan": {"id": "p2", "planner": "local"}})),
            event("c1", "plan_proposed", serde_json::json!({"plan": {"id": "p2.edit-1", "planner": "agent-edit"}})),
            event("c2", "decided", serde_json::json!({"handoff": false, "steps": []})),
        ];
        let m = compute(&steps, &events);
        assert_eq!(
            (m.totals.auto_run, m.totals.confirmed, m.totals.rejected, m.totals.waiting, m.totals.forbidden),
            (1, 1, 1, 1, 1),
            "every step lands in exactly one bucket"
        );
        assert_eq!(m.approval_latency_secs, vec![30], "only countersigned steps have an approval latency");
        assert_eq!((m.escalations, m.cases, m.edits_before_approval), (1, 2, 1), "planning again is not an edit");
        let refund = m.per_action.iter().find(|c| c.label == "refund_full").unwrap();
        assert_eq!((refund.rejected, refund.waiting), (1, 1));
        let b = m.per_agent.iter().find(|c| c.label == "agent-b").unwrap();
        assert_eq!(b.rejected, 1, "a rejection is counted for the agent who rejected");
    }
}
