//! The engine's use cases over the demo workspace with a real SQLite store.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_core::Outcome;
use countersign_core::model::{Param, PauseScope, Provenance, Step};
use countersign_engine::{Clock, Engine, EngineOptions, LogFilter};
use jiff::Timestamp;
use serde_json::json;

#[derive(Debug)]
struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        "2026-11-21T10:00:00Z".parse().unwrap()
    }
}

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

fn open_at(workspace: &Path, data: &Path) -> Engine {
    Engine::open(
        EngineOptions { workspace: workspace.to_path_buf(), data_dir: data.to_path_buf(), operator: None },
        Arc::new(Fixed),
    )
    .unwrap()
}

fn open(data: &Path) -> Engine {
    open_at(&assets().join("demo/workspace.toml"), data)
}

fn split_refund_case() -> countersign_engine::CaseFile {
    countersign_engine::CaseFile::load(&assets().join("demo/cases/06-split-refunds.json")).unwrap()
}

#[test]
fn refunds_split_across_plans_still_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let file = split_refund_case();
    let one = file.plan.steps[0].clone();
    let mut outcomes = Vec::new();
    for i in 0..3 {
        let mut plan = file.plan.clone();
        plan.id = format!("plan-{i}");
        plan.steps = vec![Step { id: "s1".into(), ..one.clone() }];
        outcomes.push(engine.process(&file.case, &plan).unwrap().steps[0].decision);
    }
    assert_eq!(
        outcomes,
        vec![Outcome::Auto, Outcome::Auto, Outcome::Confirm],
        "three $20 refunds in three plans of one case cross the $50 case limit on the third"
    );
}

#[test]
fn process_records_the_pipeline_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let results = engine.demo().unwrap();
    assert!(results.len() >= 10);
    let report = engine.log_verify().unwrap();
    assert!(report.ok, "{report:?}");
    let reviews =
        engine.log_list(&LogFilter { kind: Some("review_requested".into()), ..LogFilter::default() }).unwrap();
    let waiting: usize = results
        .iter()
        .map(|r| {
            r.decision.steps.iter().filter(|s| matches!(s.decision, Outcome::Confirm | Outcome::Supervisor)).count()
        })
        .sum();
    assert_eq!(reviews.len(), waiting, "every step waiting for a countersignature has a review request");
}

#[test]
fn policy_loaded_is_recorded_once_per_policy_version() {
    let dir = tempfile::tempdir().unwrap();
    let count = |e: &Engine| {
        e.log_list(&LogFilter { kind: Some("policy_loaded".into()), ..LogFilter::default() }).unwrap().len()
    };
    {
        let e = open(dir.path());
        assert_eq!(count(&e), 1);
    }
    let e = open(dir.path());
    assert_eq!(count(&e), 1, "reopening with the same policy records nothing new");
    drop(e);

    // A copy of the workspace with a changed policy.
    let ws = tempfile::tempdir().unwrap();
    let src = assets().join("demo");
    std::fs::write(
        ws.path().join("policy.toml"),
        std::fs::read_to_string(src.join("policy.toml")).unwrap().replace("version = 1", "version = 2"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(src.join("workspace.toml"))
        .unwrap()
        .replace("\"../knowledge\"", &format!("{:?}", assets().join("knowledge")))
        .replace("\"cases\"", &format!("{:?}", src.join("cases")))
        .replace("\"../demo-store\"", &format!("{:?}", assets().join("demo-store")));
    std::fs::write(ws.path().join("workspace.toml"), toml).unwrap();
    let e = open_at(&ws.path().join("workspace.toml"), dir.path());
    assert_eq!(count(&e), 2, "a new policy is recorded when loaded");
    assert_eq!(e.policy().version, 2);
}

#[test]
fn a_pause_survives_a_restart_and_applies() {
    let dir = tempfile::tempdir().unwrap();
    let file = split_refund_case();
    {
        let e = open(dir.path());
        e.pause_set(PauseScope::Store, &file.case.store, "audit").unwrap();
    }
    let e = open(dir.path());
    assert_eq!(e.pauses().unwrap().len(), 1);
    let d = e.decide(&file.case, &file.plan).unwrap();
    assert!(d.steps.iter().all(|s| s.decision == Outcome::Forbid), "a paused store runs nothing");
}

#[test]
fn an_order_the_platform_does_not_know_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let mut file = split_refund_case();
    file.plan.steps.truncate(1);
    file.plan.steps[0]
        .params
        .insert("order_id".into(), Param { value: json!("#W0000000"), source: Provenance::Connector });
    let d = e.decide(&file.case, &file.plan).unwrap();
    assert_eq!(d.steps[0].decision, Outcome::Forbid);
    assert!(d.steps[0].rule_ids.contains(&"precondition.order-known".to_string()));
}

fn as_role(e: &mut Engine, id: &str, role: &str) {
    e.set_operator(countersign_core::model::Operator { id: id.into(), role: role.into() }).unwrap();
}

#[test]
fn the_review_queue_binds_approvals_to_roles_and_states() {
    use countersign_core::evidence::Verdict;
    use countersign_engine::ErrorCode;
    use countersign_store::StepState;
    let dir = tempfile::tempdir().unwrap();
    let mut e = open(dir.path());
    let cancel = countersign_engine::CaseFile::load(&assets().join("demo/cases/01-cancel-pending.json")).unwrap();
    let email = countersign_engine::CaseFile::load(&assets().join("demo/cases/07-injection-in-message.json")).unwrap();
    e.process(&cancel.case, &cancel.plan).unwrap();
    e.process(&email.case, &email.plan).unwrap();
    let queue = e.review_queue().unwrap();
    assert_eq!(queue.len(), 2, "the confirm cancel and the supervisor refund wait: {queue:?}");
    let auto = e.case_steps(&cancel.case.id).unwrap();
    assert!(
        auto.iter().any(|s| s.action == "get_order_details" && s.state == StepState::Approved),
        "auto steps are queued approved"
    );

    // An agent cannot countersign a supervisor step.
    let refund = queue.iter().find(|s| s.action == "refund_partial").unwrap();
    let err = e.review(&refund.plan_id, &refund.step_id, Verdict::Approved, "").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted, "{err}");
    assert_eq!(
        state_of(&e, &refund.plan_id, &refund.step_id),
        StepState::Waiting,
        "a refused approval changes nothing"
    );

    // The agent approves the cancel once; a second approval is a conflict.
    let c = queue.iter().find(|s| s.action == "cancel_pending_order").unwrap();
    let r = e.review(&c.plan_id, &c.step_id, Verdict::Approved, "customer confirmed").unwrap();
    assert_eq!(r.state, StepState::Approved);
    assert_eq!(r.reviewed_by.as_deref(), Some("agent-demo"));
    assert!(r.approval_expires_at.is_some(), "approvals expire");
    let again = e.review(&c.plan_id, &c.step_id, Verdict::Approved, "").unwrap_err();
    assert_eq!(again.code(), ErrorCode::Conflict);

    // A team lead rejects the refund; a rejection needs a reason.
    as_role(&mut e, "lead-1", "team_lead");
    let err = e.review(&refund.plan_id, &refund.step_id, Verdict::Rejected, " ").unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput);
    let r = e.review(&refund.plan_id, &refund.step_id, Verdict::Rejected, "injected instructions").unwrap();
    assert_eq!(r.state, StepState::Rejected);
    assert!(e.review_queue().unwrap().is_empty());

    let kinds: Vec<String> = e.log_case(&cancel.case.id).unwrap().into_iter().map(|ev| ev.kind).collect();
    assert_eq!(kinds.last().map(String::as_str), Some("review_decided"), "the approval is evidence");
    assert!(e.log_verify().unwrap().ok);
}

#[test]
fn a_new_policy_invalidates_pending_approvals() {
    use countersign_core::evidence::Verdict;
    use countersign_engine::ErrorCode;
    use countersign_store::StepState;
    let dir = tempfile::tempdir().unwrap();
    let cancel = countersign_engine::CaseFile::load(&assets().join("demo/cases/01-cancel-pending.json")).unwrap();
    {
        let e = open(dir.path());
        e.process(&cancel.case, &cancel.plan).unwrap();
    }
    // The same data dir, now with a changed policy.
    let ws = tempfile::tempdir().unwrap();
    let src = assets().join("demo");
    std::fs::write(
        ws.path().join("policy.toml"),
        std::fs::read_to_string(src.join("policy.toml")).unwrap().replace("version = 1", "version = 2"),
    )
    .unwrap();
    let toml = std::fs::read_to_string(src.join("workspace.toml"))
        .unwrap()
        .replace("\"../knowledge\"", &format!("{:?}", assets().join("knowledge")))
        .replace("\"cases\"", &format!("{:?}", src.join("cases")))
        .replace("\"../demo-store\"", &format!("{:?}", assets().join("demo-store")));
    std::fs::write(ws.path().join("workspace.toml"), toml).unwrap();
    let e = open_at(&ws.path().join("workspace.toml"), dir.path());
    let waiting = e.review_queue().unwrap();
    let step = waiting.iter().find(|s| s.action == "cancel_pending_order").unwrap();
    let err = e.review(&step.plan_id, &step.step_id, Verdict::Approved, "").unwrap_err();
    assert_eq!(err.code(), ErrorCode::ApprovalStale, "{err}");
    assert_eq!(state_of(&e, &step.plan_id, &step.step_id), StepState::Invalidated);
}

fn state_of(e: &Engine, plan: &str, step: &str) -> countersign_store::StepState {
    e.all_steps().unwrap().into_iter().find(|s| s.plan_id == plan && s.step_id == step).unwrap().state
}
