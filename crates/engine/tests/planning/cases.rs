//! An agent's work on a case as the desktop app does it — open (plan once), edit a waiting
//! step, send the reply — on the demo workspace: the demo seller center on loopback, the
//! local planner, a real evidence store.

use std::collections::BTreeMap;

use countersign_core::Outcome;
use countersign_core::model::{Case, Provenance};
use countersign_engine::cases::OpenedCase;
use countersign_engine::{Engine, ErrorCode, LogFilter, StepState};

use super::{Live, assets, open};

/// The workspace's case `id`, whose customer an agent has verified (a one-time code): the
/// case file's own claim counts for nothing.
fn case(engine: &Engine, id: &str) -> Case {
    let c = engine.workspace().cases().unwrap().into_iter().find(|c| c.id == id).unwrap();
    super::verified(engine, &c);
    c
}

/// A fresh engine with the workspace's case `id` (its customer verified) opened: planned
/// the first time.
fn opened(id: &str) -> (tempfile::TempDir, Live, Case, OpenedCase) {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let c = case(&engine, id);
    let opened = engine.open_case(&c).unwrap();
    (dir, engine, c, opened)
}

fn events(engine: &Engine, case_id: &str, kind: &str) -> Vec<countersign_engine::LoggedEvent> {
    engine
        .log_list(&LogFilter { case_id: Some(case_id.into()), kind: Some(kind.into()), ..LogFilter::default() })
        .unwrap()
}

fn state(engine: &Engine, plan_id: &str, step_id: &str) -> StepState {
    engine.all_steps().unwrap().into_iter().find(|s| s.plan_id == plan_id && s.step_id == step_id).unwrap().state
}

#[test]
fn the_inbox_has_every_case_file_and_its_escalations_before_anything_is_planned() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let cases = engine.workspace().cases().unwrap();
    let files = std::fs::read_dir(assets().join("demo/cases")).unwrap().count();
    assert_eq!(cases.len(), files);
    let legal = engine.case_signals(&case(&engine, "demo-04"));
    assert!(legal.iter().any(|s| s.id.contains("legal")), "{legal:?}");
    assert!(engine.case_signals(&case(&engine, "demo-01")).is_empty());
    assert!(engine.log_list(&LogFilter::default()).unwrap().iter().all(|e| e.kind() != "plan_proposed"));
}

#[test]
fn a_case_is_planned_the_first_time_it_is_opened_and_shown_as_recorded_after() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let c = case(&engine, "demo-01");
    let first = engine.open_case(&c).unwrap();
    assert!(first.planned_now);
    assert_eq!(first.plan.planner, "local", "the workspace's planner, not the plan recorded in the case file");
    let cancel = first.decision.steps.iter().find(|s| s.action == "cancel_pending_order").unwrap();
    assert_eq!(cancel.decision, Outcome::Confirm);
    let again = engine.open_case(&c).unwrap();
    assert!(!again.planned_now);
    assert_eq!(again.plan.id, first.plan.id);
    assert_eq!(events(&engine, "demo-01", "plan_proposed").len(), 1);
    // Planning again over unchanged data gives the same plan, recorded once.
    let replanned = engine.plan_again(&c).unwrap();
    assert_eq!(replanned.plan.id, first.plan.id);
    assert_eq!(events(&engine, "demo-01", "plan_proposed").len(), 1);
}

#[test]
fn an_edited_step_is_a_new_revision_the_policy_decides_again() {
    let (_dir, engine, c, opened) = opened("demo-02");
    let refund = opened.plan.steps.iter().find(|s| s.action == "refund_partial").unwrap().clone();
    assert_eq!(state(&engine, &opened.plan.id, &refund.id), StepState::Waiting, "a model's amount waits");

    // An amount that is not money is refused, and nothing changes.
    let bad = BTreeMap::from([("amount".to_string(), "four dollars".to_string())]);
    let err = engine.edit_step(&c, &opened.plan.id, &refund.id, &bad, "typo").unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "{err}");
    let unknown = BTreeMap::from([("amount_usd".to_string(), "4.00".to_string())]);
    assert_eq!(
        engine.edit_step(&c, &opened.plan.id, &refund.id, &unknown, "x").unwrap_err().code(),
        ErrorCode::BadInput
    );
    assert_eq!(state(&engine, &opened.plan.id, &refund.id), StepState::Waiting);

    // The agent types the amount: it is the agent's value now, and small enough to be auto.
    let small = BTreeMap::from([("amount".to_string(), "4.00".to_string())]);
    let edited = engine.edit_step(&c, &opened.plan.id, &refund.id, &small, "customer agreed to 4.00").unwrap();
    assert_ne!(edited.plan.id, opened.plan.id);
    let step = edited.plan.steps.iter().find(|s| s.id == refund.id).unwrap();
    assert_eq!(step.params["amount"].source, Provenance::Agent);
    assert_eq!(step.params["amount"].value, serde_json::json!({"amount": "4.00", "currency": "USD"}));
    assert_eq!(step.params["order_id"], refund.params["order_id"], "what was not edited is carried over as it was");
    let decided = edited.decision.steps.iter().find(|s| s.step_id == refund.id).unwrap();
    assert_eq!(decided.decision, Outcome::Auto, "{:?}", decided.reasons);
    assert_eq!(edited.plan.steps.len(), 1, "steps that already ran are not proposed again");
    assert_eq!(edited.earlier.len(), 1);
    // The replaced step is invalidated with evidence naming the edit; the revision is the agent's.
    assert_eq!(state(&engine, &opened.plan.id, &refund.id), StepState::Invalidated);
    let invalidated = events(&engine, "demo-02", "step_invalidated");
    assert!(invalidated[0].event.payload()["reason"].as_str().unwrap().contains("customer agreed to 4.00"));
    let proposed = events(&engine, "demo-02", "plan_proposed");
    assert_eq!(proposed.last().unwrap().actor, engine.operator().id);
    // The old step can no longer be edited or countersigned.
    let err = engine.edit_step(&c, &opened.plan.id, &refund.id, &small, "again").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);

    // An amount above the team-lead limit is decided as such, whoever typed it.
    let again = engine.open_case(&c).unwrap();
    assert_eq!(again.plan.id, edited.plan.id, "the revision is the plan in force");
    let runs = engine.run_approved(&c.id).unwrap();
    assert!(runs.iter().any(|r| r.step_id == refund.id), "the auto revision ran: {runs:?}");
}

#[test]
fn an_amount_over_the_limit_typed_by_the_agent_still_needs_a_team_lead() {
    let (_dir, engine, c, opened) = opened("demo-23");
    let refund = opened.plan.steps.iter().find(|s| s.action == "refund_partial").unwrap();
    let big = BTreeMap::from([("amount".to_string(), "250.00 USD".to_string())]);
    let edited = engine.edit_step(&c, &opened.plan.id, &refund.id, &big, "asked for more").unwrap();
    let d = edited.decision.steps.iter().find(|s| s.step_id == refund.id).unwrap();
    assert!(d.decision >= Outcome::Supervisor, "{:?}: {:?}", d.decision, d.reasons);
}

#[test]
fn the_reply_is_decided_as_sent_and_sent_once() {
    let (_dir, engine, c, opened) = opened("demo-01");
    let draft = opened.plan.reply.clone().unwrap();
    assert_eq!(opened.decision.reply.as_ref().unwrap().decision, Outcome::Auto);

    // The agent adds a promise: the check sees it, and a send that was shown `auto` is stopped.
    let promised = format!("{}\nI guarantee it will arrive by tomorrow.", draft.text);
    let checked = engine.check_reply(&c, &opened.plan.id, &promised).unwrap();
    assert_eq!(checked.decision, Outcome::Confirm);
    assert!(checked.promises.iter().any(|p| p.id == "guarantee"), "{:?}", checked.promises);
    let err = engine.send_reply(&c, &opened.plan.id, &promised, Outcome::Auto, None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    assert!(events(&engine, "demo-01", "reply_sent").is_empty());

    // Shown `confirm`, the agent's send is the countersignature.
    let sent = engine.send_reply(&c, &opened.plan.id, &promised, Outcome::Confirm, None).unwrap();
    assert_eq!(sent.by, engine.operator().id);
    let recorded = events(&engine, "demo-01", "reply_sent");
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].event.payload()["text"], promised.as_str());
    assert_eq!(recorded[0].event.payload()["citations"].as_array().unwrap().len(), draft.citations.len());
    assert_eq!(engine.sent_reply("demo-01").unwrap().unwrap().text, promised);

    let err = engine.send_reply(&c, &opened.plan.id, &draft.text, Outcome::Auto, None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(events(&engine, "demo-01", "reply_sent").len(), 1);
}

#[test]
fn a_reply_the_policy_hands_to_a_team_lead_is_not_sent_on_the_agents_word() {
    let (_dir, engine, c, opened) = opened("demo-04");
    let reply = opened.decision.reply.clone().unwrap();
    assert_eq!(reply.decision, Outcome::Supervisor);
    let text = opened.plan.reply.clone().unwrap().text;
    let err = engine.send_reply(&c, &opened.plan.id, &text, Outcome::Supervisor, None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted, "{err}");
    let wrong = countersign_engine::Proof {
        id: engine.roster()[0].id.clone(),
        passphrase: countersign_engine::Secret::new(String::from("not the passphrase")),
    };
    let err = engine.send_reply(&c, &opened.plan.id, &text, Outcome::Supervisor, Some(&wrong)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted);
    assert!(events(&engine, "demo-04", "reply_sent").is_empty());
    assert_eq!(events(&engine, "demo-04", "review_refused").len(), 1, "the failed proof is recorded");

    // DEMO ONLY passphrase, documented in assets/demo/roster.toml.
    let lead = countersign_engine::Proof {
        id: "lead-demo".into(),
        passphrase: countersign_engine::Secret::new(String::from("demo-lead-passphrase")),
    };
    let sent = engine.send_reply(&c, &opened.plan.id, &text, Outcome::Supervisor, Some(&lead)).unwrap();
    assert_eq!(sent.by, "lead-demo");
    assert_eq!(events(&engine, "demo-04", "reply_sent")[0].actor, "lead-demo");
}

#[test]
fn an_agents_identity_check_is_evidence_and_planning_again_decides_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    // The case file says its customer is "verified": a claim, which verifies no one.
    let view = engine.open_case_view("demo-01", &|_| ()).unwrap();
    assert_eq!(view.identity, "none");
    let cancel = view.steps.iter().find(|s| s.action == "cancel_pending_order").unwrap();
    assert_eq!(
        cancel.decision,
        countersign_engine::views::Decision::Recommend,
        "advice until the customer is verified"
    );
    assert!(cancel.reasons.iter().any(|r| r.rule == "builtin.identity"), "{:?}", cancel.reasons);

    let err = engine.verify_identity_view("demo-01", "  ").unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput, "a check says how it was made");

    let view = engine.verify_identity_view("demo-01", "a one-time code sent to the account's phone").unwrap();
    assert_eq!(view.identity, "strong");
    assert!(view.identity_how.iter().any(|h| h.contains("one-time code")), "{:?}", view.identity_how);
    let checked = events(&engine, "demo-01", "identity_checked");
    assert_eq!(checked.len(), 1, "the check is evidence");
    assert_eq!(checked[0].actor, engine.operator().id, "who checked");

    let again = engine.replan_case_view("demo-01", &|_| ()).unwrap();
    assert_ne!(again.plan_id, view.plan_id, "a new fact: a new plan, decided anew");
    let cancel = again.steps.iter().find(|s| s.action == "cancel_pending_order").unwrap();
    assert_eq!(cancel.decision, countersign_engine::views::Decision::Confirm);
    assert_eq!(cancel.state.as_deref(), Some("waiting"));
}
