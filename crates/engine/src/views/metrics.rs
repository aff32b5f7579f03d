//! The team lead's metrics: counts over the step queue and the `decided` / `plan_proposed`
//! events of the log, read back as typed events.

use std::collections::{BTreeMap, BTreeSet};

use countersign_core::Outcome;
use countersign_core::evidence::Event;

use super::{Metrics, OutcomeCounts, count};
use crate::cases::AGENT_EDIT;
use crate::{LoggedEvent, StepRecord, StepState};

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
pub fn metrics(steps: &[StepRecord], events: &[LoggedEvent]) -> Metrics {
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
        match &e.event {
            Event::Decided { decision, .. } => {
                cases.insert(case.clone());
                if decision.handoff {
                    handoffs.insert(case);
                }
                for s in decision.steps.iter().filter(|s| s.decision == Outcome::Forbid) {
                    bump(&mut m.totals, Bucket::Forbidden);
                    add(&mut per_action, &s.action, Bucket::Forbidden);
                }
            }
            // An agent's edit is a plan revision proposed by the agent (planning again
            // over changed data is not an edit).
            Event::PlanProposed { plan } if plan.planner == AGENT_EDIT => {
                edits.insert(plan.id.clone());
            }
            _ => {}
        }
    }
    m.edits_before_approval = count(edits.len());
    m.escalations = count(handoffs.len());
    m.cases = count(cases.len());
    m.per_action = per_action.into_values().collect();
    m.per_agent = per_agent.into_values().collect();
    m
}
