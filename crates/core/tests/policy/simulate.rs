//! Simulation: recorded decisions replayed through a draft policy
//! (`countersign_core::simulate`). The records are made here as the engine makes them:
//! each decision on the facts of its time, its money history the steps queued before it.
//! (The engine's own test compares a simulation with processing the cases afresh.)

use countersign_core::simulate::{Recorded, SimulationReport, simulate};

use super::*;

/// The demo policy with one more rule: refunds over $40 are refused.
fn forbidding_big_refunds() -> Policy {
    let source = format!(
        "{DEMO}\n[[rules]]\nid = \"refund.never-over-40\"\nreason = \"No refund over $40\"\nactions = [\"refund_partial\"]\ndecision = \"forbid\"\namount_over = \"40.00 USD\"\n"
    );
    Policy::parse("draft.toml", &source).unwrap()
}

/// Decide `refunds` (case, order, amount) one plan each under `policy`, in order, with
/// the money history the engine would read: every earlier step that was queued.
fn record(policy: &Policy, refunds: &[(&str, &str, &str)]) -> Vec<Recorded> {
    record_rejecting(policy, refunds, &[])
}

/// [`record`], a person rejecting the steps of the cases in `rejected` as soon as they
/// wait (so no later history counts them).
fn record_rejecting(policy: &Policy, refunds: &[(&str, &str, &str)], rejected: &[&str]) -> Vec<Recorded> {
    let mut out: Vec<Recorded> = Vec::new();
    for (i, (case_id, order_id, amount)) in refunds.iter().enumerate() {
        let mut w = world();
        w.case.id = (*case_id).into();
        w.case.order_ids = vec![(*order_id).into()];
        w.facts.now += jiff::SignedDuration::from_secs(60 * i as i64);
        w.facts.history = out
            .iter()
            .flat_map(|r| r.decision.steps.iter().map(move |s| (r, s)))
            .filter(|(_, s)| matches!(s.decision, Outcome::Auto | Outcome::Confirm | Outcome::Supervisor))
            .filter(|(r, s)| s.decision == Outcome::Auto || !rejected.contains(&r.case.id.as_str()))
            .map(|(r, s)| PriorStep {
                case_id: r.case.id.clone(),
                action: s.action.clone(),
                order_id: r.case.order_ids.first().cloned(),
                amount: s.money.clone().unwrap(),
                state: if s.decision == Outcome::Auto { PriorState::Approved } else { PriorState::Pending },
                plan_id: Some(r.plan.id.clone()),
                step_id: Some(s.step_id.clone()),
            })
            .filter(|h| h.case_id == w.case.id || h.order_id.as_deref() == Some(*order_id))
            .collect();
        let plan = Plan {
            id: format!("plan-{i}"),
            case_id: w.case.id.clone(),
            planner: "test".into(),
            intent: "refund".into(),
            steps: vec![refund("s1", order_id, amount)],
            signals: Vec::new(),
            reply: None,
        };
        let decision = decide(policy, &w.case, &plan, &w.facts).unwrap();
        out.push(Recorded { at: w.facts.now, case: w.case, plan, facts: w.facts, decision });
    }
    out
}

const REFUNDS: [(&str, &str, &str); 2] = [("case-1", "#W4", "45.00"), ("case-2", "#W4", "20.00")];

#[test]
fn replaying_the_policy_a_decision_was_recorded_under_changes_nothing() {
    for policy in [demo(), forbidding_big_refunds()] {
        let recorded = record(&policy, &REFUNDS);
        let sim = simulate(&policy, &recorded);
        assert_eq!(sim.steps.len(), 2);
        for s in &sim.steps {
            assert_eq!(s.before, s.after, "{s:?}");
            assert_eq!(s.rules_before, s.rules_after, "{s:?}");
        }
        let report = SimulationReport::new(&policy, &sim, None, 0);
        assert_eq!((report.decisions, report.steps, report.changed), (2, 2, 0));
        assert!(report.money_without_a_human.is_empty());
    }
}

#[test]
fn a_refund_the_draft_refuses_leaves_the_history_and_a_later_one_runs_on_its_own() {
    // Recorded under the demo: the $45 refund waits for the agent, so the $20 one on the
    // same order is $65 in total on it: over $50, it waits too.
    let recorded = record(&demo(), &REFUNDS);
    assert_eq!(recorded[1].decision.steps[0].decision, Outcome::Confirm);

    let draft = forbidding_big_refunds();
    let sim = simulate(&draft, &recorded);
    let [first, second] = &sim.steps[..] else { panic!("{:?}", sim.steps) };
    assert_eq!((first.before, first.after), (Outcome::Confirm, Outcome::Forbid));
    assert_eq!(first.rules_after, ["rule.refund.never-over-40"]);
    // Refused, the $45 never enters the queue: $20 alone on the order runs on its own.
    assert_eq!((second.before, second.after), (Outcome::Confirm, Outcome::Auto), "{second:?}");
    // Exactly what deciding it afresh says, with the history the draft would have left.
    assert_eq!(record(&draft, &REFUNDS)[1].decision.steps[0].decision, second.after);

    let report = SimulationReport::new(&draft, &sim, None, 0);
    assert_eq!((report.steps, report.changed), (2, 2));
    assert_eq!(report.money_without_a_human, vec![Money::from_json(&usd("20.00")).unwrap()]);
    let refunds = &report.actions[0];
    assert_eq!((refunds.action.as_str(), refunds.steps, refunds.changed), ("refund_partial", 2, 2));
    let rule = report.rules.iter().find(|r| r.rule == "rule.refund.never-over-40").unwrap();
    assert_eq!((rule.sets_before, rule.sets_after, rule.starts.len()), (0, 1, 1));
    assert_eq!(rule.starts[0].samples[0].case_id, "case-1");
    let over = report.rules.iter().find(|r| r.rule == "rule.refund.over-auto-limit").unwrap();
    assert_eq!((over.sets_before, over.sets_after), (2, 0));
}

#[test]
fn a_refund_the_draft_would_queue_joins_the_history_of_later_decisions() {
    // Recorded under the stricter policy: the $45 refund is refused and never queued, so
    // the $20 one is alone on the order and runs on its own.
    let recorded = record(&forbidding_big_refunds(), &REFUNDS);
    assert_eq!(recorded[1].decision.steps[0].decision, Outcome::Auto);
    assert!(recorded[1].facts.history.is_empty());

    let sim = simulate(&demo(), &recorded);
    assert_eq!((sim.steps[0].before, sim.steps[0].after), (Outcome::Forbid, Outcome::Confirm));
    // Under the demo the $45 would wait, so $65 would be on the order: the $20 waits too.
    assert_eq!((sim.steps[1].before, sim.steps[1].after), (Outcome::Auto, Outcome::Confirm));
    assert_eq!(record(&demo(), &REFUNDS)[1].decision.steps[0].decision, sim.steps[1].after);
    let report = SimulationReport::new(&demo(), &sim, None, 0);
    assert_eq!(report.money_no_longer_automatic, vec![Money::from_json(&usd("20.00")).unwrap()]);
    // Counted from a day on, only the later decision is reported (the earlier still
    // shaped its history).
    let since = Some(recorded[1].at);
    let later = SimulationReport::new(&demo(), &sim, since, 0);
    assert_eq!((later.decisions, later.steps, later.changed), (1, 1, 1));
}

#[test]
fn a_report_names_its_draft_and_its_digest_changes_with_it() {
    let recorded = record(&demo(), &REFUNDS);
    let draft = forbidding_big_refunds();
    let a = SimulationReport::new(&draft, &simulate(&draft, &recorded), None, 0);
    assert_eq!(a.draft.hash, draft.hash);
    let b = SimulationReport::new(&demo(), &simulate(&demo(), &recorded), None, 0);
    assert_ne!(a.digest(), b.digest());
    assert_eq!(a.digest(), a.clone().digest());
    let text = serde_json::to_string(&a).unwrap();
    let back: SimulationReport = serde_json::from_str(&text).unwrap();
    assert_eq!(back.digest(), a.digest());
}

#[test]
fn a_step_a_person_rejected_that_the_draft_would_run_counts_toward_later_limits() {
    // Recorded under the demo: the $45 refund waits and the agent rejects it, so the $20
    // one on the same order is alone there and runs on its own.
    let recorded = record_rejecting(&demo(), &REFUNDS, &["case-1"]);
    assert_eq!(recorded[0].decision.steps[0].decision, Outcome::Confirm);
    assert_eq!(recorded[1].decision.steps[0].decision, Outcome::Auto);
    // The draft lets refunds up to $50 each run on their own: the $45 one would have run
    // before anyone could reject it, and $65 would then be on the order, over its $50.
    let draft =
        Policy::parse("draft.toml", &DEMO.replacen("amount_over = \"25.00 USD\"", "amount_over = \"50.00 USD\"", 1))
            .unwrap();
    let sim = simulate(&draft, &recorded);
    assert_eq!((sim.steps[0].before, sim.steps[0].after), (Outcome::Confirm, Outcome::Auto));
    assert_eq!((sim.steps[1].before, sim.steps[1].after), (Outcome::Auto, Outcome::Confirm), "{:?}", sim.steps[1]);
    assert_eq!(record(&draft, &REFUNDS)[1].decision.steps[0].decision, sim.steps[1].after);
}
