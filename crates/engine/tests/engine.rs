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
        EngineOptions {
            workspace: workspace.to_path_buf(),
            data_dir: data.to_path_buf(),
            operator: None,
            connector: None,
        },
        Arc::new(Fixed),
    )
    .unwrap()
}

fn open(data: &Path) -> Engine {
    open_at(&assets().join("demo/workspace.toml"), data)
}

/// A copy of the demo workspace whose policy is version 2 (another content hash).
fn workspace_with_policy_v2() -> tempfile::TempDir {
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
    ws
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
    let ws = workspace_with_policy_v2();
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
    let ws = workspace_with_policy_v2();
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

// ------------------------------------------------------------- execution

/// The real demo store on loopback (temp SQLite), on its own thread.
struct DemoServer {
    server: countersign_demo_store::BackgroundServer,
    _dir: tempfile::TempDir,
}

impl DemoServer {
    fn start(token: &str) -> DemoServer {
        let dir = tempfile::tempdir().unwrap();
        let server = countersign_demo_store::BackgroundServer::start(
            dir.path().join("demo-store.sqlite3"),
            assets().join("demo-store"),
            countersign_demo_store::ApiToken::new(token).unwrap(),
        )
        .unwrap();
        DemoServer { server, _dir: dir }
    }
}

/// An engine whose connector is the HTTP connector (shipped catalog) pointed at a
/// running demo store, with the token in the real OS keyring.
fn live_engine(data: &Path) -> (Engine, DemoServer, Arc<countersign_connectors::credentials::KeyringStore>) {
    live_engine_with(data, |c| Arc::new(c))
}

fn live_engine_with(
    data: &Path,
    wrap: impl FnOnce(countersign_connectors::HttpConnector) -> Arc<dyn countersign_connectors::Connector>,
) -> (Engine, DemoServer, Arc<countersign_connectors::credentials::KeyringStore>) {
    use countersign_connectors::credentials::{CredentialName, CredentialStore, KeyringStore, Secret};
    let token = "engine-test-token-5b2e";
    let server = DemoServer::start(token);
    let keyring = Arc::new(KeyringStore::new(format!("countersign-engine-test-{}", std::process::id())));
    keyring.set(&CredentialName::new("demo_seller_center", "demo").unwrap(), &Secret::new(token)).unwrap();
    let catalog = countersign_connectors::Catalog::load(&assets().join("demo/catalog.toml")).unwrap();
    let connector = countersign_connectors::HttpConnector::new(catalog, keyring.clone())
        .unwrap()
        .with_base_url(&server.server.url())
        .unwrap();
    let engine = Engine::open(
        EngineOptions {
            workspace: assets().join("demo/workspace.toml"),
            data_dir: data.to_path_buf(),
            operator: None,
            connector: Some(wrap(connector)),
        },
        Arc::new(Fixed),
    )
    .unwrap();
    (engine, server, keyring)
}

#[test]
fn a_confirmed_write_runs_after_approval_and_changes_the_platform() {
    use countersign_core::evidence::Verdict;
    use countersign_engine::StepState;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _server, _keyring) = live_engine(dir.path());
    let file = countersign_engine::CaseFile::load(&assets().join("demo/cases/01-cancel-pending.json")).unwrap();
    let order = file.plan.steps[1].params["order_id"].value.as_str().unwrap().to_string();
    engine.process(&file.case, &file.plan).unwrap();

    // The auto read runs at once; the cancel waits.
    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!((runs[0].action.as_str(), runs[0].state), ("get_order_details", StepState::Succeeded), "{runs:?}");
    let facts = engine.gather_facts(&file.case, &file.plan).unwrap();
    assert_eq!(facts.orders[&order].status, "pending", "nothing changed before the approval");

    engine.review(&file.plan.id, "s2", Verdict::Approved, "customer confirmed in chat").unwrap();
    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, StepState::Succeeded, "{runs:?}");

    // The demo store's own state changed exactly as promised.
    let facts = engine.gather_facts(&file.case, &file.plan).unwrap();
    assert_eq!(facts.orders[&order].status, "cancelled");

    let events = engine.log_case(&file.case.id).unwrap();
    let finished: Vec<_> = events.iter().filter(|e| e.kind == "step_finished").collect();
    assert_eq!(finished.len(), 2);
    let cancel = finished.last().unwrap();
    assert_eq!(cancel.payload["before"]["status"], "pending", "before-state recorded");
    assert_eq!(cancel.payload["after"]["status"], "cancelled", "after-state recorded");
    assert!(cancel.payload["request"]["headers"]["idempotency-key"].as_str().unwrap().starts_with("cs-"));
    assert!(!cancel.body.contains("engine-test-token-5b2e"), "the token never reaches evidence");
    assert!(engine.log_verify().unwrap().ok);

    // Approved and ran: it cannot run twice.
    let again = engine.execute(&file.plan.id, "s2").unwrap_err();
    assert_eq!(again.code(), countersign_engine::ErrorCode::Conflict);
}

#[test]
fn a_pause_set_after_approval_stops_the_step_before_the_call() {
    use countersign_core::evidence::Verdict;
    use countersign_engine::StepState;
    let dir = tempfile::tempdir().unwrap();
    let (engine, _server, _keyring) = live_engine(dir.path());
    let file = countersign_engine::CaseFile::load(&assets().join("demo/cases/01-cancel-pending.json")).unwrap();
    engine.process(&file.case, &file.plan).unwrap();
    engine.review(&file.plan.id, "s2", Verdict::Approved, "ok").unwrap();
    engine.pause_set(PauseScope::Action, "cancel_pending_order", "incident").unwrap();
    let err = engine.execute(&file.plan.id, "s2").unwrap_err();
    assert_eq!(err.code(), countersign_engine::ErrorCode::Paused, "{err}");
    let step = engine.all_steps().unwrap().into_iter().find(|s| s.step_id == "s2").unwrap();
    assert_eq!(step.state, StepState::Approved, "a paused step did not start and keeps its approval");
    let order = file.plan.steps[1].params["order_id"].value.as_str().unwrap();
    assert_eq!(engine.gather_facts(&file.case, &file.plan).unwrap().orders[order].status, "pending");
}

/// A connector whose write answers are lost on the way back (a timeout after the
/// request went out, or before it did): the step's fate is unknown to the app.
#[derive(Debug)]
struct LostReply {
    inner: countersign_connectors::HttpConnector,
    request_arrives: bool,
}

impl countersign_connectors::Connector for LostReply {
    fn order_facts(
        &self,
        id: &str,
    ) -> Result<Option<countersign_core::decide::OrderFacts>, countersign_connectors::ConnectorError> {
        self.inner.order_facts(id)
    }
    fn call(
        &self,
        action: &str,
        params: &serde_json::Map<String, serde_json::Value>,
        key: Option<&str>,
    ) -> Result<countersign_connectors::CallRecord, countersign_connectors::ConnectorError> {
        if key.is_none() {
            return self.inner.call(action, params, key);
        }
        if self.request_arrives {
            self.inner.call(action, params, key)?;
        }
        Err(countersign_connectors::ConnectorError::Timeout)
    }
    fn describe_call(
        &self,
        action: &str,
        params: &serde_json::Map<String, serde_json::Value>,
        key: Option<&str>,
    ) -> Result<countersign_connectors::RecordedRequest, countersign_connectors::ConnectorError> {
        self.inner.describe_call(action, params, key)
    }
    fn read_state(
        &self,
        action: &str,
        params: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, countersign_connectors::ConnectorError> {
        self.inner.read_state(action, params)
    }
    fn check_expectation(
        &self,
        action: &str,
        params: &serde_json::Map<String, serde_json::Value>,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
    ) -> Result<(), countersign_connectors::ExpectationError> {
        self.inner.check_expectation(action, params, before, after)
    }
}

#[test]
fn a_write_with_a_lost_answer_is_reconciled_by_a_read_never_retried() {
    use countersign_engine::StepState;
    for (arrives, expected) in [(true, StepState::Succeeded), (false, StepState::NotApplied)] {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _server, _keyring) =
            live_engine_with(dir.path(), |inner| Arc::new(LostReply { inner, request_arrives: arrives }));
        // A small refund: its outcome check compares with the before-state.
        let file =
            countersign_engine::CaseFile::load(&assets().join("demo/cases/02-damaged-item-small-refund.json")).unwrap();
        engine.process(&file.case, &file.plan).unwrap();
        let runs = engine.run_approved(&file.case.id).unwrap();
        let refund = runs.iter().find(|r| r.action == "refund_partial").unwrap();
        assert_eq!(
            refund.state, expected,
            "request arrived: {arrives}; the read decides what happened, the write is not sent again: {runs:?}"
        );
        let events = engine.log_case(&file.case.id).unwrap();
        let started = events.iter().filter(|e| e.kind == "step_started" && e.payload["step_id"] == "s2").count();
        assert_eq!(started, 1, "the write was started once");
        let outcomes: Vec<_> = events
            .iter()
            .filter(|e| e.kind == "step_finished" && e.payload["step_id"] == "s2")
            .map(|e| e.payload["outcome"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(outcomes[0], "unknown", "first recorded as unknown, then reconciled: {outcomes:?}");
        assert!(engine.log_verify().unwrap().ok);
    }
}
