//! What both faces got wrong while each composed the use cases itself, now driven through
//! the one engine API with evidence recorded by the engine (never built by hand).

use countersign_core::Outcome;
use countersign_core::evidence::Verdict;
use countersign_engine::{ErrorCode, StepState};

use super::{
    ProcessVerified as _, as_role, demo_case, open, recorded, split_refund_case, split_refund_plan, verify_by_code,
};

#[test]
fn metrics_count_escalations_and_forbidden_steps_as_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = open(dir.path());
    // The agents verified the sample cases' customers (the files' own claims count for nothing).
    for (_, file) in e.workspace().sample_cases().unwrap() {
        if let Some(c) = &file.case.customer {
            verify_by_code(&e, &file.case.id, &c.id);
        }
    }
    let results = e.demo().unwrap();
    let handoffs = results.iter().filter(|r| r.decision.handoff).count();
    let forbidden: Vec<&str> = results
        .iter()
        .flat_map(|r| r.decision.steps.iter())
        .filter(|s| s.decision == Outcome::Forbid)
        .map(|s| s.action.as_str())
        .collect();
    assert!(handoffs > 0 && !forbidden.is_empty(), "the demo has escalations and refusals to count");

    // An agent approves one waiting step and rejects another; a lead rejects a third.
    let queue = e.review_queue().unwrap();
    let confirm: Vec<_> = queue.iter().filter(|s| s.decision == "confirm").collect();
    assert!(confirm.len() >= 2, "{queue:?}");
    as_role(&mut e, "agent-a", "agent");
    e.review(&confirm[0].plan_id, &confirm[0].step_id, Verdict::Approved, "checked").unwrap();
    as_role(&mut e, "agent-b", "agent");
    e.review(&confirm[1].plan_id, &confirm[1].step_id, Verdict::Rejected, "not what they asked").unwrap();

    let m = e.metrics().unwrap();
    assert_eq!(m.escalations as usize, handoffs, "every case an escalation signal handed to a human");
    assert_eq!(m.totals.forbidden as usize, forbidden.len(), "every forbidden step of every recorded decision");
    assert_eq!(m.cases as usize, results.len());
    let per_action_forbidden: u32 = m.per_action.iter().map(|c| c.forbidden).sum();
    assert_eq!(per_action_forbidden as usize, forbidden.len(), "each refusal lands under its action");
    let steps = e.all_steps().unwrap();
    let live = steps.iter().filter(|s| !matches!(s.state, StepState::Expired | StepState::Invalidated)).count();
    let t = &m.totals;
    assert_eq!(
        (t.auto_run + t.confirmed + t.rejected + t.waiting) as usize,
        live,
        "every queued step lands in exactly one bucket"
    );
    assert_eq!(t.confirmed, 1);
    assert_eq!(m.approval_latency_secs, vec![0], "only the countersigned step has an approval latency");
    let b = m.per_agent.iter().find(|c| c.label == "agent-b").unwrap();
    assert_eq!(b.rejected, 1, "a rejection is counted for the agent who rejected");
    assert_eq!(m.edits_before_approval, 0, "nothing was edited");
}

#[test]
fn an_edit_counts_once_and_planning_again_is_not_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let file = recorded(&e, "01-cancel-pending");
    let waiting = e.review_queue().unwrap().into_iter().find(|s| s.case_id == file.case.id).unwrap();
    let before = e.metrics().unwrap();
    let changes = [("reason".to_string(), "no longer needed".to_string())].into_iter().collect();
    e.edit_step(&file.case, &waiting.plan_id, &waiting.step_id, &changes, "the customer's words").unwrap();
    e.process_verified(&file.case, &file.plan).unwrap();
    let after = e.metrics().unwrap();
    assert_eq!((before.edits_before_approval, after.edits_before_approval), (0, 1));
}

#[test]
fn a_money_step_the_queue_cannot_read_is_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let file = split_refund_case();
    let plan = |i: usize| split_refund_plan(&file, i);
    for i in 0..2 {
        assert_eq!(engine.process_verified(&file.case, &plan(i)).unwrap().steps[0].decision, Outcome::Auto);
    }
    // The second $20 refund's queued row becomes unreadable: its amount is not money.
    let db = rusqlite::Connection::open(engine.store_path()).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let stored: String = db.query_row("SELECT step FROM steps WHERE plan_id = 'plan-1'", [], |r| r.get(0)).unwrap();
    let mut step: serde_json::Value = serde_json::from_str(&stored).unwrap();
    step["params"]["amount"]["value"] = serde_json::json!("twenty dollars");
    db.execute("UPDATE steps SET step = ?1 WHERE plan_id = 'plan-1'", [step.to_string()]).unwrap();

    // Counting only the readable $20 would let a third $20 through under the $50 limit.
    let err = engine.process_verified(&file.case, &plan(2)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreFailed, "{err}");
    assert!(err.to_string().contains("plan-1") && err.to_string().contains("cannot be read"), "{err}");
    assert!(engine.decide(&file.case, &plan(2)).is_err(), "deciding without recording refuses as well");

    // A row that is not a step at all is refused the same way.
    db.execute("UPDATE steps SET step = '{\"not\": \"a step\"}' WHERE plan_id = 'plan-1'", []).unwrap();
    assert_eq!(engine.process_verified(&file.case, &plan(2)).unwrap_err().code(), ErrorCode::StoreFailed);
    assert!(engine.case_steps(&file.case.id).unwrap().iter().all(|s| s.plan_id != "plan-2"), "nothing recorded");
}

#[test]
fn verify_checks_the_signed_checkpoints_not_only_the_chain() {
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("evidence.sqlite");
    let e = open(data.path());
    recorded(&e, "01-cancel-pending");
    e.checkpoint().unwrap();
    let v = e.verify().unwrap();
    assert!(v.ok() && v.checkpoints.checkpoints.len() == 1, "{v:?}");
    let view = e.verify_view().unwrap();
    assert!(view.ok && view.checkpoints == 1 && view.devices.len() == 1, "{view:?}");
    drop(e);

    // A rewrite that re-hashes chain and head: the chain alone verifies, the log does not.
    super::pack::rewrite_chain(&db, 2, |body| body.replacen("agent-demo", "agent-evil", 1));
    let e = open(data.path());
    let v = e.verify().unwrap();
    assert!(v.chain.ok, "the re-hashed chain verifies on its own: {v:?}");
    assert!(!v.ok(), "the log as a whole does not: a signed checkpoint no longer holds");
    let view = e.verify_view().unwrap();
    assert!(!view.ok, "the team lead's Verify says so too: {view:?}");
    assert!(view.problem.as_deref().unwrap_or_default().contains("checkpoint"), "{view:?}");
}

#[test]
fn a_step_another_process_is_running_is_not_recovered_as_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let app = open(dir.path());
    let cancel = recorded(&app, "01-cancel-pending");
    app.review(&cancel.plan.id, "s2", Verdict::Approved, "customer confirmed").unwrap();
    // The app has started the step: its call is out (the state an executor commits first).
    let db = rusqlite::Connection::open(app.store_path()).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute("UPDATE steps SET state = 'running' WHERE plan_id = ?1 AND step_id = 's2'", [&cancel.plan.id]).unwrap();

    // A second process on the same folder (the CLI beside the app) must not call it a crash.
    let cli = open(dir.path());
    assert!(cli.recover().unwrap().is_empty(), "a step another live process runs is left to it");
    assert_eq!(super::state_of(&cli, &cancel.plan.id, "s2"), StepState::Running);

    // Once the other process is gone, the step left running is a crash's, and is settled.
    drop(app);
    let settled = cli.recover().unwrap();
    assert_eq!(settled.len(), 1, "{settled:?}");
    assert_ne!(super::state_of(&cli, &cancel.plan.id, "s2"), StepState::Running);
}

#[test]
fn the_timeline_says_what_each_recorded_event_says_typed() {
    use countersign_engine::views::EventDetail;
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let file = demo_case("01-cancel-pending");
    let result = e.process_verified(&file.case, &file.plan).unwrap();
    let timeline = e.case_timeline(&file.case.id).unwrap();
    let detail = |kind: &str| timeline.iter().find(|v| v.kind == kind).map(|v| v.detail.clone()).unwrap();

    let EventDetail::PlanProposed { plan_id, steps, intent, .. } = detail("plan_proposed") else { panic!() };
    assert_eq!(
        (plan_id.as_str(), steps as usize, intent.as_str()),
        (file.plan.id.as_str(), file.plan.steps.len(), "cancel_order")
    );
    let EventDetail::Decided { steps, handoff, policy_hash } = detail("decided") else { panic!() };
    let recorded: Vec<_> = result.steps.iter().map(|s| (s.step_id.clone(), s.decision)).collect();
    let shown: Vec<_> = steps.iter().map(|s| (s.step_id.clone(), s.decision)).collect();
    assert_eq!(shown, recorded, "each step's decision as decided");
    assert_eq!((handoff, policy_hash), (result.handoff, result.policy_hash.clone()));
    let waiting = result.steps.iter().find(|s| s.decision == Outcome::Confirm).unwrap();
    let EventDetail::ReviewRequested { step_id, decision, approver_roles } = detail("review_requested") else {
        panic!()
    };
    assert_eq!((step_id, decision), (waiting.step_id.clone(), Outcome::Confirm));
    assert!(!approver_roles.is_empty());
    assert!(
        timeline.iter().all(|v| !matches!(v.detail, EventDetail::Other) || v.kind == "case_opened"),
        "{timeline:?}"
    );
}
