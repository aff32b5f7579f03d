//! The engine's use cases over the demo workspace with a real SQLite store.
#![allow(clippy::unwrap_used)]

/// LLM planners configured in the workspace, against recorded provider streams.
#[path = "planning/llm.rs"]
mod llm_planner;
use countersign_test_support::demo::{DemoServer, demo_workspace, seed_orders};
use countersign_test_support::loopback::read_request;
use countersign_test_support::replay;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_connectors::{Connector, HttpConnector};
use countersign_core::Outcome;
use countersign_core::evidence::Verdict;
use countersign_core::model::{Param, PauseScope, Provenance, Step};
use countersign_engine::{CaseFile, Clock, Engine, EngineOptions, ErrorCode, LogFilter, Scope, StepState};
use jiff::Timestamp;
use serde_json::json;

#[path = "engine/autonomy.rs"]
mod autonomy;
#[path = "engine/claims.rs"]
mod claims;
#[path = "engine/defects.rs"]
mod defects;
#[path = "engine/intake.rs"]
mod intake;
#[path = "engine/pack.rs"]
mod pack;
#[path = "engine/promises.rs"]
mod promises;
#[path = "engine/provenance.rs"]
mod provenance;
#[path = "engine/signals.rs"]
mod signals;
#[path = "engine/simulate.rs"]
mod simulate;
#[path = "engine/statuses.rs"]
mod statuses;

#[derive(Debug)]
struct Fixed;
impl Clock for Fixed {
    fn now(&self) -> Timestamp {
        "2026-11-21T10:00:00Z".parse().unwrap()
    }
}

/// An agent verified `customer` for the case themselves: a one-time code sent to the account.
fn verify_by_code(engine: &Engine, case_id: &str, customer: &str) {
    engine.record_identity_check(case_id, customer, "a one-time code sent to the account's phone").unwrap();
}

/// Processing a case whose customer an agent verified themselves (a one-time code sent to
/// the account): what the demo policy's writes need. A case file's own `identity` claim
/// counts for nothing, so the tests that are not about identity say how it was verified.
pub(crate) trait ProcessVerified {
    fn process_verified(
        &self,
        case: &countersign_core::Case,
        plan: &countersign_core::Plan,
    ) -> Result<countersign_core::PlanDecision, countersign_engine::EngineError>;
}

impl ProcessVerified for Engine {
    fn process_verified(
        &self,
        case: &countersign_core::Case,
        plan: &countersign_core::Plan,
    ) -> Result<countersign_core::PlanDecision, countersign_engine::EngineError> {
        if let Some(c) = &case.customer {
            self.record_identity_check(&case.id, &c.id, "a one-time code sent to the account's phone")?;
        }
        self.process(case, plan)
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
    open_at(&assets().join("demo/workspace-snapshot.toml"), data)
}

/// A copy of the demo workspace whose policy is version 2 (another content hash).
fn workspace_with_policy_v2() -> tempfile::TempDir {
    workspace_copy(|p| p.replace("version = 1", "version = 2"), "")
}

/// A copy of the demo workspace: its policy edited by `policy`, `extra` appended to
/// `workspace.toml`.
fn workspace_copy(policy: impl Fn(String) -> String, extra: &str) -> tempfile::TempDir {
    let ws = tempfile::tempdir().unwrap();
    let src = assets().join("demo");
    std::fs::write(ws.path().join("policy.toml"), policy(std::fs::read_to_string(src.join("policy.toml")).unwrap()))
        .unwrap();
    let toml = demo_workspace("workspace-snapshot.toml", &["policy.toml"]);
    std::fs::write(ws.path().join("workspace.toml"), format!("{toml}\n{extra}")).unwrap();
    ws
}

/// A sample case of the demo (`assets/demo/cases/<name>.json`).
fn demo_case(name: &str) -> CaseFile {
    CaseFile::load(&assets().join("demo/cases").join(format!("{name}.json"))).unwrap()
}

fn split_refund_case() -> countersign_engine::CaseFile {
    demo_case("06-split-refunds")
}

/// Plan `plan-<i>` of the split-refunds case: its first refund ($20) alone, as `s1`.
fn split_refund_plan(file: &CaseFile, i: usize) -> countersign_core::Plan {
    let mut plan = file.plan.clone();
    plan.id = format!("plan-{i}");
    plan.steps = vec![Step { id: "s1".into(), ..file.plan.steps[0].clone() }];
    plan
}

#[test]
fn refunds_split_across_plans_still_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let file = split_refund_case();
    let mut outcomes = Vec::new();
    for i in 0..3 {
        outcomes.push(engine.process_verified(&file.case, &split_refund_plan(&file, i)).unwrap().steps[0].decision);
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
    let cancel = demo_case("01-cancel-pending");
    let email = demo_case("07-injection-in-message");
    e.process_verified(&cancel.case, &cancel.plan).unwrap();
    e.process_verified(&email.case, &email.plan).unwrap();
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

    let kinds: Vec<&str> = e.log_case(&cancel.case.id).unwrap().iter().map(|ev| ev.kind()).collect();
    assert_eq!(kinds.last().copied(), Some("review_decided"), "the approval is evidence");
    assert!(e.log_verify().unwrap().ok);
}

#[test]
fn a_new_policy_invalidates_pending_approvals() {
    use countersign_core::evidence::Verdict;
    use countersign_engine::ErrorCode;
    use countersign_store::StepState;
    let dir = tempfile::tempdir().unwrap();
    let cancel = demo_case("01-cancel-pending");
    {
        let e = open(dir.path());
        e.process_verified(&cancel.case, &cancel.plan).unwrap();
    }
    // The same data dir, now with a changed policy: the waiting step is invalidated as the
    // policy loads, with evidence, not later when someone tries to approve it.
    let ws = workspace_with_policy_v2();
    let e = open_at(&ws.path().join("workspace.toml"), dir.path());
    assert!(e.review_queue().unwrap().is_empty(), "nothing waits under the old policy");
    let step = e.all_steps().unwrap().into_iter().find(|s| s.action == "cancel_pending_order").unwrap();
    assert_eq!(state_of(&e, &step.plan_id, &step.step_id), StepState::Invalidated);
    let invalidated = e
        .log_list(&countersign_engine::LogFilter { kind: Some("step_invalidated".into()), ..Default::default() })
        .unwrap();
    assert!(invalidated.iter().any(|ev| ev.event.payload()["step_id"] == step.step_id.as_str()));
    let err = e.review(&step.plan_id, &step.step_id, Verdict::Approved, "").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
}

fn state_of(e: &Engine, plan: &str, step: &str) -> countersign_store::StepState {
    e.all_steps().unwrap().into_iter().find(|s| s.plan_id == plan && s.step_id == step).unwrap().state
}

// ------------------------------------------------------------- execution

/// An engine whose connector is the HTTP connector (shipped catalog) pointed at a
/// running demo store, with the token in the real OS keyring.
fn live_engine(data: &Path) -> (Engine, DemoServer, Arc<countersign_connectors::credentials::KeyringStore>) {
    live_engine_with(data, |c| Arc::new(c))
}

fn live_engine_with(
    data: &Path,
    wrap: impl FnOnce(countersign_connectors::HttpConnector) -> Arc<dyn countersign_connectors::Connector>,
) -> (Engine, DemoServer, Arc<countersign_connectors::credentials::KeyringStore>) {
    live_engine_at(data, Arc::new(Fixed), wrap)
}

fn live_engine_at(
    data: &Path,
    clock: Arc<dyn Clock>,
    wrap: impl FnOnce(countersign_connectors::HttpConnector) -> Arc<dyn countersign_connectors::Connector>,
) -> (Engine, DemoServer, Arc<countersign_connectors::credentials::KeyringStore>) {
    live_engine_in(&format!("countersign-engine-test-{}", std::process::id()), data, clock, wrap)
}

/// [`live_engine_at`] with the store's token in keyring namespace `service` (a test that
/// takes the token away uses its own, so the tests beside it keep theirs).
fn live_engine_in(
    service: &str,
    data: &Path,
    clock: Arc<dyn Clock>,
    wrap: impl FnOnce(countersign_connectors::HttpConnector) -> Arc<dyn countersign_connectors::Connector>,
) -> (Engine, DemoServer, Arc<countersign_connectors::credentials::KeyringStore>) {
    use countersign_connectors::credentials::{CredentialName, CredentialStore, KeyringStore, Secret};
    let token = "engine-test-token-5b2e";
    let server = DemoServer::start(token);
    let keyring = Arc::new(KeyringStore::new(service.to_string()));
    keyring.set(&CredentialName::new("demo_seller_center", "demo").unwrap(), &Secret::new(token)).unwrap();
    let catalog = countersign_connectors::Catalog::load(&assets().join("demo/catalog.toml")).unwrap();
    let connector = countersign_connectors::HttpConnector::new(catalog, keyring.clone())
        .unwrap()
        .with_base_url(&server.server.url())
        .unwrap();
    let engine = Engine::open(
        EngineOptions {
            workspace: assets().join("demo/workspace-snapshot.toml"),
            data_dir: data.to_path_buf(),
            operator: None,
            connector: Some(wrap(connector)),
        },
        clock,
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
    let file = demo_case("01-cancel-pending");
    let order = file.plan.steps[1].params["order_id"].value.as_str().unwrap().to_string();
    engine.process_verified(&file.case, &file.plan).unwrap();

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
    let finished: Vec<_> = events.iter().filter(|e| e.kind() == "step_finished").collect();
    assert_eq!(finished.len(), 2);
    assert_eq!(finished[0].event.payload()["after"]["status"], "pending", "a read step records what it read");
    let cancel = finished.last().unwrap();
    assert_eq!(cancel.event.payload()["before"]["status"], "pending", "before-state recorded");
    assert_eq!(cancel.event.payload()["after"]["status"], "cancelled", "after-state recorded");
    assert!(cancel.event.payload()["request"]["headers"]["idempotency-key"].as_str().unwrap().starts_with("cs-"));
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
    let file = recorded(&engine, "01-cancel-pending");
    engine.review(&file.plan.id, "s2", Verdict::Approved, "ok").unwrap();
    engine.pause_set(PauseScope::Action, "cancel_pending_order", "incident").unwrap();
    let err = engine.execute(&file.plan.id, "s2").unwrap_err();
    assert_eq!(err.code(), countersign_engine::ErrorCode::Paused, "{err}");
    let step = engine.all_steps().unwrap().into_iter().find(|s| s.step_id == "s2").unwrap();
    assert_eq!(step.state, StepState::Approved, "a paused step did not start and keeps its approval");
    let order = file.plan.steps[1].params["order_id"].value.as_str().unwrap();
    assert_eq!(engine.gather_facts(&file.case, &file.plan).unwrap().orders[order].status, "pending");
}

type CallHook = Box<
    dyn Fn(
            &HttpConnector,
            &str,
            &serde_json::Map<String, serde_json::Value>,
            Option<&str>,
        ) -> Result<countersign_connectors::CallRecord, countersign_connectors::ConnectorError>
        + Send
        + Sync,
>;

/// The real HTTP connector with hooks: `call` replaces the call (it gets the real
/// connector to delegate to), `before_read_state` runs before every state read.
struct Intercept {
    inner: HttpConnector,
    /// Does this platform honour idempotency keys? (`false` plays one that does not.)
    keys: bool,
    call: Option<CallHook>,
    before_read_state: Option<Box<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for Intercept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intercept").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl Connector for Intercept {
    fn honours_idempotency(&self, action: &str) -> bool {
        self.keys && self.inner.honours_idempotency(action)
    }
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
        match &self.call {
            Some(hook) => hook(&self.inner, action, params, key),
            None => self.inner.call(action, params, key),
        }
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
        if let Some(hook) = &self.before_read_state {
            hook();
        }
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

/// A connector whose first write answer is lost on the way back (a timeout after the
/// request went out, or before it did): the step's fate is unknown to the app. Later
/// calls go through. With `keys: false` it plays a platform that takes no idempotency key.
fn lost_reply(inner: HttpConnector, request_arrives: bool, keys: bool) -> Intercept {
    let lost = std::sync::atomic::AtomicBool::new(false);
    Intercept {
        inner,
        keys,
        call: Some(Box::new(move |inner, action, params, key| {
            if key.is_none() || lost.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return inner.call(action, params, key);
            }
            if request_arrives {
                inner.call(action, params, key)?;
            }
            Err(countersign_connectors::ConnectorError::Timeout)
        })),
        before_read_state: None,
    }
}

/// A write held on its way to the platform: its parameters and idempotency key.
type HeldWrite = (serde_json::Map<String, serde_json::Value>, String);

/// A sample case of the demo, its plan recorded by `engine` (the customer verified).
fn recorded(engine: &Engine, name: &str) -> CaseFile {
    let file = demo_case(name);
    engine.process_verified(&file.case, &file.plan).unwrap();
    file
}

/// Demo case 02: a small refund for a damaged item (the refund is its step `s2`).
fn damaged_item_case() -> CaseFile {
    demo_case("02-damaged-item-small-refund")
}

/// Records the case's plan (its customer verified) and runs the approved steps: every run,
/// and the refund's.
fn run_refund(engine: &Engine, file: &CaseFile) -> (Vec<countersign_engine::StepRun>, countersign_engine::StepRun) {
    engine.process_verified(&file.case, &file.plan).unwrap();
    let runs = engine.run_approved(&file.case.id).unwrap();
    let refund = runs.iter().find(|r| r.action == "refund_partial").unwrap().clone();
    (runs, refund)
}

/// The payloads of the case's `kind` events (`step_started`, `step_finished`) for step `s2`.
fn s2_events(engine: &Engine, case_id: &str, kind: &str) -> Vec<serde_json::Value> {
    let events = engine.log_case(case_id).unwrap();
    events
        .iter()
        .filter(|e| e.kind() == kind && e.event.payload()["step_id"] == "s2")
        .map(|e| e.event.payload())
        .collect()
}

fn refunded(direct: &HttpConnector, order: &str) -> String {
    read_order(direct, order)["totals"]["refunded"].as_str().unwrap().to_string()
}

#[test]
fn a_write_with_a_lost_answer_settles_by_the_same_request_under_the_same_key() {
    use countersign_engine::StepState;
    for arrives in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (engine, server, keyring) =
            live_engine_with(dir.path(), |inner| Arc::new(lost_reply(inner, arrives, true)));
        let direct = platform(&server, &keyring);
        let file = damaged_item_case();
        let order = file.plan.steps[1].params["order_id"].value.as_str().unwrap().to_string();
        let amount = file.plan.steps[1].params["amount"].value["amount"].as_str().unwrap().to_string();
        let before = refunded(&direct, &order);
        let (runs, refund) = run_refund(&engine, &file);
        assert_eq!(
            refund.state,
            StepState::Succeeded,
            "request arrived: {arrives}; sent again under the same key, the platform answers the first result or applies it once: {runs:?}"
        );
        let after: rust_decimal::Decimal = refunded(&direct, &order).parse().unwrap();
        let expected =
            before.parse::<rust_decimal::Decimal>().unwrap() + amount.parse::<rust_decimal::Decimal>().unwrap();
        assert_eq!(after, expected, "request arrived: {arrives}: the refund landed exactly once");
        let started = s2_events(&engine, &file.case.id, "step_started").len();
        assert_eq!(started, 1, "one attempt, settled under its own key");
        let finished = s2_events(&engine, &file.case.id, "step_finished");
        assert_eq!(finished[0]["outcome"], "unknown", "first recorded as unknown: {finished:?}");
        // Landed: the read shows it; lost on the way: sent again under its key.
        let how = if arrives { "read" } else { "sent again under the same key" };
        assert_eq!(finished[1]["response"]["how"], how, "{finished:?}");
        assert!(engine.log_verify().unwrap().ok);
    }
}

#[test]
fn without_keys_an_unknown_write_is_read_back_and_never_settled_not_applied_before_the_window() {
    use countersign_engine::StepState;
    // The exact race: the request lands after the first reads, and the agent tries again.
    let dir = tempfile::tempdir().unwrap();
    let clock = Movable::at("2026-11-21T10:00:00Z");
    let held: Arc<std::sync::Mutex<Option<HeldWrite>>> = Arc::default();
    let hold = held.clone();
    let (engine, server, keyring) = live_engine_at(dir.path(), clock.clone(), |inner| {
        Arc::new(Intercept {
            inner,
            keys: false,
            // The write is held on the way (no answer): it lands when the test lets it.
            call: Some(Box::new(move |inner, action, params, key| match (key, action) {
                (Some(k), "refund_partial") if hold.lock().unwrap().is_none() => {
                    *hold.lock().unwrap() = Some((params.clone(), k.to_string()));
                    Err(countersign_connectors::ConnectorError::Timeout)
                }
                _ => inner.call(action, params, key),
            })),
            before_read_state: None,
        })
    });
    let direct = platform(&server, &keyring);
    let file = damaged_item_case();
    let order = file.plan.steps[1].params["order_id"].value.as_str().unwrap().to_string();
    let before = refunded(&direct, &order);
    let (runs, refund) = run_refund(&engine, &file);
    assert_eq!(
        refund.state,
        StepState::Unknown,
        "read back (several times): not applied so far, but not final: {runs:?}"
    );
    assert!(refund.error.as_deref().unwrap().contains("may yet land"), "{runs:?}");

    // The agent tries again: refused while the first attempt may land.
    let err = engine.retry_step(&file.plan.id, "s2").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
    // Planning the same change again does not start a second attempt either.
    let again = countersign_engine::CaseFile {
        plan: countersign_core::Plan { id: "demo-02-plan-2".into(), ..file.plan.clone() },
        ..file.clone()
    };
    engine.process(&again.case, &again.plan).unwrap();
    let err = engine.execute("demo-02-plan-2", "s2").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "the same change is in flight: {err}");

    // The held request lands now, late.
    let (params, key) = held.lock().unwrap().take().unwrap();
    direct.call("refund_partial", &params, Some(&key)).unwrap();
    let run = engine.reconcile(&file.plan.id, "s2").unwrap();
    assert_eq!(run.state, StepState::Succeeded, "the read shows it landed: {run:?}");
    let after: rust_decimal::Decimal = refunded(&direct, &order).parse().unwrap();
    let amount: rust_decimal::Decimal =
        file.plan.steps[1].params["amount"].value["amount"].as_str().unwrap().parse().unwrap();
    assert_eq!(after, before.parse::<rust_decimal::Decimal>().unwrap() + amount, "one refund, not two");
    let err = engine.retry_step(&file.plan.id, "s2").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "a step that succeeded is not tried again: {err}");
    assert!(engine.log_verify().unwrap().ok);

    // A write that never lands: unknown until the target has stayed as it was for the window.
    let (pending_order, customer) = seed_orders("delivered").into_iter().nth(3).unwrap();
    let f = refund_case("never-lands", &customer, &pending_order, "6.00");
    engine.process_verified(&f.case, &f.plan).unwrap();
    *held.lock().unwrap() = None;
    let runs = engine.run_approved("never-lands").unwrap();
    assert_eq!(runs[0].state, StepState::Unknown, "{runs:?}");
    clock.advance(jiff::SignedDuration::from_mins(5));
    assert_eq!(engine.reconcile("never-lands-p", "s1").unwrap().state, StepState::Unknown, "5 minutes: not yet");
    clock.advance(jiff::SignedDuration::from_mins(6));
    let run = engine.reconcile("never-lands-p", "s1").unwrap();
    assert_eq!(run.state, StepState::NotApplied, "unchanged for the window: {run:?}");
    let events = engine.log_case("never-lands").unwrap();
    let last = events.iter().rev().find(|e| e.kind() == "step_finished").unwrap().event.payload();
    assert_eq!(last["not_applied"], "unchanged");

    // Retried: the earlier attempt is not known from the platform's answer to have failed,
    // so the same key goes out again (it cannot apply twice where keys are honoured).
    *held.lock().unwrap() = Some((serde_json::Map::new(), String::new())); // let the next call through
    let key_of = |n: usize| {
        let started: Vec<_> =
            engine.log_case("never-lands").unwrap().into_iter().filter(|e| e.kind() == "step_started").collect();
        started[n].event.payload()["idempotency_key"].as_str().unwrap().to_string()
    };
    let run = engine.retry_step("never-lands-p", "s1").unwrap();
    assert_eq!(run.state, StepState::Succeeded, "an auto step retried runs at once: {run:?}");
    assert_eq!(key_of(1), key_of(0), "the same change, the same key");
    let retried = engine.log_case("never-lands").unwrap().into_iter().find(|e| e.kind() == "step_retried").unwrap();
    assert_eq!(retried.event.payload()["fresh_key"], false);
}

#[test]
fn a_team_lead_settles_an_unknown_step_by_hand_and_a_retry_keeps_its_key() {
    use countersign_engine::{Proof, Secret, StepState};
    let dir = tempfile::tempdir().unwrap();
    let (mut engine, _server, _keyring) =
        live_engine_with(dir.path(), |inner| Arc::new(lost_reply(inner, false, false)));
    let (order, customer) = seed_orders("delivered").into_iter().nth(2).unwrap();
    let f = refund_case("by-hand", &customer, &order, "4.00");
    engine.process_verified(&f.case, &f.plan).unwrap();
    let runs = engine.run_approved("by-hand").unwrap();
    assert_eq!(runs[0].state, StepState::Unknown, "{runs:?}");
    let saw = "not in the seller center's refund list";
    let proof = |who: &str, pass: &str| Proof { id: who.into(), passphrase: Secret::new(pass) };
    // The demo roster's lead (assets/demo/roster.toml; DEMO ONLY passphrase).
    let lead = proof("lead-demo", "demo-lead-passphrase");
    let err = engine.settle_step("by-hand-p", "s1", false, saw, &proof("lead-demo", "guess-1234")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted, "a lead proves who they are: {err}");
    as_role(&mut engine, "lead-demo", "team_lead");
    let err = engine.settle_step("by-hand-p", "s1", false, saw, &proof("agent-x", "whatever")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted, "claiming the role is not proof: {err}");
    let err = engine.settle_step("by-hand-p", "s1", false, "  ", &lead).unwrap_err();
    assert_eq!(err.code(), ErrorCode::BadInput);
    let run = engine.settle_step("by-hand-p", "s1", false, saw, &lead).unwrap();
    assert_eq!(run.state, StepState::NotApplied);
    let settled = engine.log_case("by-hand").unwrap().into_iter().find(|e| e.kind() == "step_settled").unwrap();
    assert_eq!((settled.actor.as_str(), settled.event.payload()["applied"].clone()), ("lead-demo", json!(false)));
    assert_eq!(settled.event.payload()["reason"], saw);

    // Retried, it keeps its key: only the platform's own answer would have settled it.
    let run = engine.retry_step("by-hand-p", "s1").unwrap();
    assert_eq!(run.state, StepState::Succeeded, "{run:?}");
    let started: Vec<String> = engine
        .log_case("by-hand")
        .unwrap()
        .into_iter()
        .filter(|e| e.kind() == "step_started")
        .map(|e| e.event.payload()["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started[1], started[0], "the same change, the same key");
}

#[test]
fn a_step_the_platform_refused_is_retried_under_a_new_key() {
    use countersign_engine::StepState;
    let error_json = r#"{"error": {"code": "refund_on_hold", "message": "refunds on this order are on hold"}}"#;
    let fake = FakePlatform::start((409, error_json, std::time::Duration::from_millis(0), false));
    let dir = tempfile::tempdir().unwrap();
    let engine = fake_engine(&fake, true, dir.path());
    let file = damaged_item_case();
    let (runs, refund) = run_refund(&engine, &file);
    assert_eq!(refund.state, StepState::Failed, "{runs:?}");
    let finished = s2_events(&engine, &file.case.id, "step_finished");
    assert_eq!(finished[0]["not_applied"], "platform_refused", "the platform's own answer: {finished:?}");
    // The platform keeps its refusal under the old key: the retry takes a new one.
    let run = engine.retry_step(&file.plan.id, "s2").unwrap();
    assert_eq!(run.state, StepState::Failed, "refused again: {run:?}");
    let started: Vec<String> = s2_events(&engine, &file.case.id, "step_started")
        .iter()
        .map(|e| e["idempotency_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(started.len(), 2);
    assert_ne!(started[0], started[1], "a new key once the platform said no");
    assert_eq!(fake.writes(), 2, "two attempts reached the platform, each under its own key");
    let retried = engine.log_case(&file.case.id).unwrap().into_iter().find(|e| e.kind() == "step_retried").unwrap();
    assert_eq!(retried.event.payload()["fresh_key"], true);

    // Planned again since: the earlier plan's failed step is not revived.
    let mut again = file.plan.clone();
    again.id = "demo-02-plan-2".into();
    again.steps[1].params.get_mut("reason").unwrap().value = json!("dented on arrival");
    engine.process(&file.case, &again).unwrap();
    let err = engine.retry_step(&file.plan.id, "s2").unwrap_err();
    assert_eq!(err.code(), ErrorCode::ApprovalStale, "{err}");
    assert!(err.to_string().contains("planned again"), "{err}");
    assert!(engine.log_verify().unwrap().ok);
}
// ---------------------------------------------------------------------------------------
// Knowledge base: indexing on open, Facts from the index, citations
// ---------------------------------------------------------------------------------------

mod knowledge {
    use super::*;
    use countersign_core::model::Citation;
    use countersign_engine::knowledge::CitationResolution;

    fn article_files(dir: &Path) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap() != "README.md")
            .collect();
        out.sort();
        out
    }

    /// A workspace like the demo, over a knowledge directory of its own (the first `n`
    /// demo articles), so tests can change files.
    fn workspace_with_knowledge(n: usize) -> tempfile::TempDir {
        let ws = tempfile::tempdir().unwrap();
        let kb = ws.path().join("knowledge");
        std::fs::create_dir(&kb).unwrap();
        for p in article_files(&assets().join("knowledge")).iter().take(n) {
            std::fs::copy(p, kb.join(p.file_name().unwrap())).unwrap();
        }
        std::fs::copy(assets().join("knowledge/README.md"), kb.join("README.md")).unwrap();
        let toml =
            demo_workspace("workspace-snapshot.toml", &["../knowledge"]).replace("\"../knowledge\"", "\"knowledge\"");
        std::fs::write(ws.path().join("workspace.toml"), toml).unwrap();
        ws
    }

    #[test]
    fn opening_indexes_the_knowledge_and_the_policy_sees_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let r = e.kb_open_report().clone();
        assert_eq!((r.added, r.articles, r.failed), (40, 40, 0), "{:?}", r.errors);
        let file = damaged_item_case();
        let facts = e.gather_facts(&file.case, &file.plan).unwrap();
        let cited = file.plan.reply.as_ref().map_or(0, |r| r.citations.len());
        assert!(cited > 0, "the sample plan cites the knowledge base");
        assert_eq!(facts.citations.len(), cited, "every citation of the draft is checked against the index");
        assert!(facts.citations.iter().all(|c| c.resolved), "{:?}", facts.citations);
        assert_eq!(e.article_versions()["refund-timing"], "3");
        drop(e);

        let e = open(dir.path());
        let r = e.kb_open_report();
        assert!(!r.did_work(), "reopening with unchanged files parses nothing: {r:?}");
        assert_eq!(r.unchanged, 40);
    }

    #[test]
    fn citations_resolve_against_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let resolve = |c: Citation| e.resolve_citation(&c).unwrap();
        let good = resolve(Citation::new(
            "returns-window",
            Some("3"),
            Some("the-30-day-window"),
            "A return must be requested within 30 days of delivery.",
        ));
        assert!(good.is_resolved(), "{good:?}");
        assert_eq!(
            resolve(Citation::new("returns-windows", Some("3"), None, "")),
            CitationResolution::UnknownArticle { article_id: "returns-windows".into() }
        );
        assert!(matches!(
            resolve(Citation::new("returns-window", Some("2"), Some("the-30-day-window"), "")),
            CitationResolution::WrongVersion { current, .. } if current == "3"
        ));
        assert!(matches!(
            resolve(Citation::new("returns-window", Some("3"), Some("the-60-day-window"), "")),
            CitationResolution::UnknownAnchor { .. }
        ));
        let elsewhere = resolve(Citation::new(
            "returns-window",
            Some("3"),
            Some("status-rules"),
            "A return must be requested within 30 days of delivery.",
        ));
        assert!(
            matches!(elsewhere, CitationResolution::QuoteNotFound { .. }),
            "a true quote from another section does not support this anchor: {elsewhere:?}"
        );
        let invented = resolve(Citation::new("returns-window", Some("3"), None, "Returns are accepted for 90 days."));
        assert!(matches!(invented, CitationResolution::QuoteNotFound { anchor: None, .. }), "{invented:?}");
    }

    #[test]
    fn reindexing_follows_the_files_and_broken_articles_are_left_out() {
        let ws = workspace_with_knowledge(5);
        let wsf = ws.path().join("workspace.toml");
        let kb = ws.path().join("knowledge");
        let data = tempfile::tempdir().unwrap();
        let e = open_at(&wsf, data.path());
        assert_eq!((e.kb_open_report().added, e.kb_open_report().articles), (5, 5));

        let unchanged = e.kb_index(false).unwrap();
        assert!(!unchanged.did_work() && unchanged.unchanged == 5, "{unchanged:?}");

        // Same bytes written again (a new mtime): the content hash decides, nothing to do.
        let files = article_files(&kb);
        let (first, second) = (files[0].clone(), files[1].clone());
        let id = first.file_stem().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&first).unwrap();
        std::fs::write(&first, &text).unwrap();
        assert!(!e.kb_index(false).unwrap().did_work(), "touching a file is not a change");

        // A new version of one article: exactly one update, and the policy sees it.
        let old_version = e.article_versions()[&id].clone();
        let bumped = text.replacen(&format!("version: {old_version}"), "version: 9", 1);
        std::fs::write(&first, &bumped).unwrap();
        let r = e.kb_index(false).unwrap();
        assert_eq!((r.added, r.updated, r.removed, r.unchanged), (0, 1, 0, 4), "{r:?}");
        assert_eq!(e.article_versions()[&id], "9", "the articles the policy sees are refreshed");

        // A broken edit: reported at file:line:column and taken out of the index.
        std::fs::write(&first, bumped.replacen("version: 9", "version: nine", 1)).unwrap();
        let r = e.kb_index(false).unwrap();
        assert_eq!((r.failed, r.removed, r.articles), (1, 1, 4), "{r:?}");
        let msg = r.errors[0].to_string();
        assert!(msg.starts_with(&format!("{}:4:10: version must be a positive integer", first.display())), "{msg}");
        assert!(!e.article_versions().contains_key(&id), "a broken article cannot be cited");

        // A deleted file is removed; a broken one does not stop the engine opening.
        std::fs::remove_file(&second).unwrap();
        let r = e.kb_index(false).unwrap();
        assert_eq!((r.removed, r.failed, r.articles), (1, 1, 3), "{r:?}");
        drop(e);
        let e = open_at(&wsf, data.path());
        assert_eq!(e.kb_open_report().failed, 1, "still reported, still left out, the engine still opens");

        // A rebuild parses everything again.
        std::fs::write(&first, &text).unwrap();
        let r = e.kb_index(true).unwrap();
        assert_eq!((r.failed, r.articles, r.unchanged), (0, 4, 0), "{r:?}");
    }

    /// Article and version only: several demo quotes paraphrase the article (sample-case
    /// data written before the index existed), so they do not pass the quote rule yet.
    #[test]
    fn the_demo_cases_cite_articles_and_versions_that_exist() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path());
        let mut checked = 0;
        for (path, file) in e.workspace().sample_cases().unwrap() {
            let Some(reply) = &file.plan.reply else { continue };
            for c in &reply.citations {
                let r = e.resolve_citation(&Citation { quote: String::new(), ..c.clone() }).unwrap();
                let unknown_on_purpose = path.ends_with("12-unknown-article.json");
                assert_eq!(r.is_resolved(), !unknown_on_purpose, "{}: {}", path.display(), r.describe());
                checked += 1;
            }
        }
        assert!(checked >= 10, "{checked}");
    }
}

// ------------------------------------------- races, bad input, expiry, team-lead proof

/// A clock the test moves.
#[derive(Debug)]
struct Movable(std::sync::Mutex<Timestamp>);

impl Movable {
    fn at(t: &str) -> Arc<Movable> {
        Arc::new(Movable(std::sync::Mutex::new(t.parse().unwrap())))
    }

    fn advance(&self, by: jiff::SignedDuration) {
        let mut t = self.0.lock().unwrap();
        *t = t.checked_add(by).unwrap();
    }
}

impl Clock for Movable {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

fn case_with(case_id: &str, plan_id: &str, customer: &str, intent: &str, steps: serde_json::Value) -> CaseFile {
    serde_json::from_value(json!({
        "case": {
            "id": case_id, "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
            "channel": "email", "customer": {"id": customer, "identity": "verified"},
            "messages": [{"from": "customer", "text": "Please help with my order.", "at": "2026-11-20T15:10:00Z"}],
        },
        "plan": {"id": plan_id, "case_id": case_id, "planner": "scripted", "intent": intent, "steps": steps},
    }))
    .unwrap()
}

/// Case `case_id`, planned as `<case_id>-p`: one refund (`s1`) of `amount` on `order`.
fn refund_case(case_id: &str, customer: &str, order: &str, amount: &str) -> CaseFile {
    case_with(case_id, &format!("{case_id}-p"), customer, "refund", json!([refund_step("s1", order, amount)]))
}

/// Case `case_id`, planned as `<case_id>-p`: one cancellation (`s1`) of `order`.
fn cancel_case(case_id: &str, customer: &str, order: &str) -> CaseFile {
    case_with(case_id, &format!("{case_id}-p"), customer, "cancel_order", json!([cancel_step("s1", order)]))
}

fn refund_step(id: &str, order: &str, amount: &str) -> serde_json::Value {
    json!({"id": id, "action": "refund_partial", "params": {
        "order_id": {"value": order, "source": "connector"},
        "amount": {"value": {"amount": amount, "currency": "USD"}, "source": "policy"},
        "reason": {"value": "damaged item", "source": "connector"},
    }})
}

fn cancel_step(id: &str, order: &str) -> serde_json::Value {
    json!({"id": id, "action": "cancel_pending_order", "params": {
        "order_id": {"value": order, "source": "connector"},
        "reason": {"value": "ordered by mistake", "source": "customer_message"},
    }})
}

/// The demo store as the test sees it, past the engine (another actor on the platform).
fn platform(server: &DemoServer, keyring: &Arc<countersign_connectors::credentials::KeyringStore>) -> HttpConnector {
    let catalog = countersign_connectors::Catalog::load(&assets().join("demo/catalog.toml")).unwrap();
    HttpConnector::new(catalog, keyring.clone()).unwrap().with_base_url(&server.server.url()).unwrap()
}

fn read_order(platform: &HttpConnector, order: &str) -> serde_json::Value {
    let params = json!({"order_id": order}).as_object().unwrap().clone();
    platform.call("get_order_details", &params, None).unwrap().response
}

fn started_steps(e: &Engine) -> usize {
    e.log_list(&LogFilter { kind: Some("step_started".into()), ..LogFilter::default() }).unwrap().len()
}

#[test]
fn a_pause_stops_every_queued_or_approved_step_in_its_scope_that_has_not_started() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(dir.path());
    let direct = platform(&server, &keyring);
    let delivered = seed_orders("delivered");
    let pending = seed_orders("pending");
    // Three auto refunds and an approved cancel, each in its own case, plus a cancel that
    // still waits for its countersignature: queued, none started.
    let mut cases = Vec::new();
    for (i, (order, customer)) in delivered.iter().take(3).enumerate() {
        let f = refund_case(&format!("pause-{i}"), customer, order, "12.00");
        assert_eq!(engine.process_verified(&f.case, &f.plan).unwrap().steps[0].decision, Outcome::Auto);
        cases.push((f, order.clone()));
    }
    for (i, (order, customer)) in pending.iter().take(2).enumerate() {
        let f = cancel_case(&format!("pause-c{i}"), customer, order);
        assert_eq!(engine.process_verified(&f.case, &f.plan).unwrap().steps[0].decision, Outcome::Confirm);
        cases.push((f, order.clone()));
    }
    engine.review("pause-c0-p", "s1", Verdict::Approved, "customer confirmed").unwrap();
    let before: Vec<_> = cases.iter().map(|(_, o)| read_order(&direct, o)).collect();

    let pause = engine.pause_set(PauseScope::Store, "acme-us", "incident: duplicate refunds").unwrap();
    // The waiting cancel is countersigned after the pause: it is stopped as well.
    engine.review("pause-c1-p", "s1", Verdict::Approved, "customer confirmed").unwrap();
    for (f, _) in &cases {
        let runs = engine.run_approved(&f.case.id).unwrap();
        assert_eq!(runs.len(), 1, "{runs:?}");
        assert_eq!(runs[0].code, Some(ErrorCode::Paused), "a paused step does not run: {runs:?}");
        assert_eq!(runs[0].state, StepState::Approved, "a paused step keeps its approval");
        let err = engine.execute(&f.plan.id, "s1").unwrap_err();
        assert_eq!(err.code(), ErrorCode::Paused, "{err}");
    }
    let after: Vec<_> = cases.iter().map(|(_, o)| read_order(&direct, o)).collect();
    assert_eq!(before, after, "no paused step reached the platform");
    assert_eq!(started_steps(&engine), 0, "no paused step started");

    engine.pause_clear(&pause.id, "resolved").unwrap();
    for (f, _) in &cases {
        let runs = engine.run_approved(&f.case.id).unwrap();
        assert_eq!(runs[0].state, StepState::Succeeded, "once cleared, the approvals still hold: {runs:?}");
    }
    assert!(engine.log_verify().unwrap().ok);
}

#[test]
fn an_approval_for_one_set_of_params_never_executes_another() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(dir.path());
    let direct = platform(&server, &keyring);
    let (order, customer) = seed_orders("delivered").into_iter().next().unwrap();
    let a = case_with("bind", "bind-a", &customer, "refund", json!([refund_step("s2", &order, "30.00")]));
    let b = case_with("bind", "bind-b", &customer, "refund", json!([refund_step("s2", &order, "40.00")]));
    assert_eq!(engine.process_verified(&a.case, &a.plan).unwrap().steps[0].decision, Outcome::Confirm);
    engine.review("bind-a", "s2", Verdict::Approved, "30 agreed with the customer").unwrap();
    assert_eq!(engine.process_verified(&b.case, &b.plan).unwrap().steps[0].decision, Outcome::Confirm);

    // The same plan id with another amount is a conflict, not a new decision or a reuse of the approval.
    let mut changed = a.plan.clone();
    changed.steps[0].params.get_mut("amount").unwrap().value = json!({"amount": "45.00", "currency": "USD"});
    let err = engine.process_verified(&a.case, &changed).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");

    let runs = engine.run_approved("bind").unwrap();
    assert_eq!(runs.len(), 1, "only the approved step runs: {runs:?}");
    assert_eq!((runs[0].plan_id.as_str(), runs[0].state), ("bind-a", StepState::Succeeded), "{runs:?}");
    assert_eq!(state_of(&engine, "bind-b", "s2"), StepState::Waiting, "B's step waits for its own countersignature");
    assert_eq!(engine.execute("bind-b", "s2").unwrap_err().code(), ErrorCode::Conflict);
    assert_eq!(read_order(&direct, &order)["totals"]["refunded"], "30.00", "A ran with A's amount, once");
    let started = engine.log_list(&LogFilter { kind: Some("step_started".into()), ..LogFilter::default() }).unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0].event.payload()["plan_id"], "bind-a");
    assert_eq!(started[0].event.payload()["request"]["body"]["amount"], "30.00");
}

#[test]
fn a_step_row_edited_after_its_approval_does_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(dir.path());
    let direct = platform(&server, &keyring);
    let (order, customer) = seed_orders("delivered").into_iter().next().unwrap();
    let f = refund_case("tamper", &customer, &order, "30.00");
    engine.process_verified(&f.case, &f.plan).unwrap();
    engine.review("tamper-p", "s1", Verdict::Approved, "ok").unwrap();

    // Someone with write access to the database raises the approved amount.
    let db = rusqlite::Connection::open(engine.store_path()).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let stored: String =
        db.query_row("SELECT step FROM steps WHERE plan_id = 'tamper-p' AND step_id = 's1'", [], |r| r.get(0)).unwrap();
    let mut step: serde_json::Value = serde_json::from_str(&stored).unwrap();
    step["params"]["amount"]["value"]["amount"] = json!("300.00");
    db.execute("UPDATE steps SET step = ?1 WHERE plan_id = 'tamper-p'", [step.to_string()]).unwrap();
    let err = engine.execute("tamper-p", "s1").unwrap_err();
    assert_eq!(err.code(), ErrorCode::ApprovalStale, "{err}");
    assert!(err.to_string().contains("digest"), "{err}");

    // ... and recomputes the row's digest to match: the evidence log still says otherwise.
    let digest = countersign_core::digest::step_digest(&serde_json::from_value::<Step>(step).unwrap());
    db.execute("UPDATE steps SET step_digest = ?1 WHERE plan_id = 'tamper-p'", [digest]).unwrap();
    let err = engine.execute("tamper-p", "s1").unwrap_err();
    assert_eq!(err.code(), ErrorCode::ApprovalStale, "{err}");
    assert!(err.to_string().contains("evidence log"), "{err}");

    assert_eq!(started_steps(&engine), 0);
    assert_eq!(read_order(&direct, &order)["totals"]["refunded"], "0.00", "nothing reached the platform");
    assert_eq!(state_of(&engine, "tamper-p", "s1"), StepState::Approved);
}

#[test]
fn a_step_is_decided_again_before_it_runs_and_a_stale_one_never_goes_out() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(dir.path());
    let direct = platform(&server, &keyring);
    let params = |v: serde_json::Value| v.as_object().unwrap().clone();

    // A cancel decided while the order was pending, run after someone else cancelled it.
    let (pending, owner) = seed_orders("pending").into_iter().next().unwrap();
    let f = cancel_case("stale-cancel", &owner, &pending);
    engine.process_verified(&f.case, &f.plan).unwrap();
    engine.review("stale-cancel-p", "s1", Verdict::Approved, "ok").unwrap();
    direct
        .call(
            "cancel_pending_order",
            &params(json!({"order_id": pending, "reason": "no longer needed"})),
            Some("someone-else-1"),
        )
        .unwrap();
    let err = engine.execute("stale-cancel-p", "s1").unwrap_err();
    assert_eq!(err.code(), ErrorCode::ApprovalStale, "{err}");
    let why = err.to_string();
    assert!(why.contains("decided again") && why.contains("pending"), "the reason says what changed: {why}");
    assert_eq!(state_of(&engine, "stale-cancel-p", "s1"), StepState::Invalidated);
    assert_eq!(started_steps(&engine), 0, "nothing went out");

    // A refund decided within what was refundable, run after the order was refunded in full elsewhere.
    let (delivered, customer) = seed_orders("delivered").into_iter().next().unwrap();
    let f = refund_case("stale-refund", &customer, &delivered, "20.00");
    engine.process_verified(&f.case, &f.plan).unwrap();
    let refundable = read_order(&direct, &delivered)["totals"]["refundable"].as_str().unwrap().to_string();
    direct
        .call(
            "refund_partial",
            &params(json!({"order_id": delivered, "amount": format!("{refundable} USD"), "reason": "full refund"})),
            Some("someone-else-2"),
        )
        .unwrap();
    let runs = engine.run_approved("stale-refund").unwrap();
    assert_eq!(runs[0].state, StepState::Invalidated, "{runs:?}");
    assert!(runs[0].error.as_deref().is_some_and(|e| e.contains("can still refund")), "{runs:?}");
    assert_eq!(started_steps(&engine), 0, "nothing went out");
    assert!(engine.log_verify().unwrap().ok);
}

/// Runs `change` once, the first time a write's before-state is read: after the step was
/// decided again, before it is sent (what no read can foresee).
fn change_before_send(inner: HttpConnector, change: Arc<dyn Fn() + Send + Sync>) -> Intercept {
    let done = std::sync::atomic::AtomicBool::new(false);
    Intercept {
        inner,
        keys: true,
        call: None,
        before_read_state: Some(Box::new(move || {
            if !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
                change();
            }
        })),
    }
}

#[test]
fn platform_refusals_are_failed_steps_with_the_platforms_reason() {
    let dir = tempfile::tempdir().unwrap();
    let direct: Arc<std::sync::OnceLock<HttpConnector>> = Arc::default();
    let target: Arc<std::sync::OnceLock<String>> = Arc::default();
    let (d, t) = (direct.clone(), target.clone());
    // Someone refunds the order in full elsewhere between the re-decision and the send.
    let change: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
        let (Some(direct), Some(order)) = (d.get(), t.get()) else { return };
        let refundable = read_order(direct, order)["totals"]["refundable"].as_str().unwrap().to_string();
        let params = json!({"order_id": order, "amount": format!("{refundable} USD"), "reason": "full refund"});
        direct.call("refund_partial", params.as_object().unwrap(), Some("someone-else-3")).unwrap();
    });
    let (engine, server, keyring) = live_engine_with(dir.path(), |inner| Arc::new(change_before_send(inner, change)));
    let _ = direct.set(platform(&server, &keyring));
    let (delivered, customer) = seed_orders("delivered").into_iter().next().unwrap();
    let _ = target.set(delivered.clone());
    let f = refund_case("raced-refund", &customer, &delivered, "20.00");
    engine.process_verified(&f.case, &f.plan).unwrap();
    let runs = engine.run_approved("raced-refund").unwrap();
    assert_eq!(runs[0].state, StepState::Failed, "{runs:?}");
    let why = runs[0].error.clone().unwrap();
    assert!(why.contains("422") && why.contains("refund_exceeds_refundable"), "the store's reason is kept: {why}");
    let finished = engine.log_list(&LogFilter { kind: Some("step_finished".into()), ..LogFilter::default() }).unwrap();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].event.payload()["outcome"], "failed");
    assert_eq!(finished[0].event.payload()["error"], why.as_str(), "the reason is evidence");
    let started = engine.log_list(&LogFilter { kind: Some("step_started".into()), ..LogFilter::default() }).unwrap();
    assert_eq!(
        started[0].event.payload()["redecided"]["decision"],
        "auto",
        "the decision taken again just before the send is evidence"
    );
    assert!(engine.log_verify().unwrap().ok);
}

// A tiny HTTP/1.1 server on loopback playing a platform that misbehaves on writes.

/// Credentials in memory (the keyring is not what these tests are about).
#[derive(Debug, Default)]
struct MemoryCredentials(std::sync::Mutex<std::collections::BTreeMap<String, String>>);

impl countersign_connectors::credentials::CredentialStore for MemoryCredentials {
    fn get(
        &self,
        name: &countersign_connectors::credentials::CredentialName,
    ) -> Result<countersign_connectors::credentials::Secret, countersign_connectors::credentials::CredentialError> {
        self.0
            .lock()
            .unwrap()
            .get(&name.to_string())
            .map(countersign_connectors::credentials::Secret::new)
            .ok_or(countersign_connectors::credentials::CredentialError::Missing { name: name.clone() })
    }
    fn set(
        &self,
        name: &countersign_connectors::credentials::CredentialName,
        value: &countersign_connectors::credentials::Secret,
    ) -> Result<(), countersign_connectors::credentials::CredentialError> {
        self.0.lock().unwrap().insert(name.to_string(), value.expose().to_string());
        Ok(())
    }
    fn delete(
        &self,
        name: &countersign_connectors::credentials::CredentialName,
    ) -> Result<(), countersign_connectors::credentials::CredentialError> {
        self.0.lock().unwrap().remove(&name.to_string());
        Ok(())
    }
    fn list(
        &self,
    ) -> Result<
        Vec<countersign_connectors::credentials::CredentialName>,
        countersign_connectors::credentials::CredentialError,
    > {
        Ok(Vec::new())
    }
}

/// What the fake answers a write: status, body, delay, and whether it applies the refund.
type WriteAnswer = (u16, &'static str, std::time::Duration, bool);

/// Serves `GET /orders/…` as demo case 02's order (refunded 0.00, or 18.00 once a write
/// applied) and answers `POST …/refunds` as told; counts the writes it received.
struct FakePlatform {
    addr: std::net::SocketAddr,
    writes: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl FakePlatform {
    fn start(answer: WriteAnswer) -> FakePlatform {
        use std::io::Write;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let writes = Arc::new(AtomicUsize::new(0));
        let applied = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (w, st) = (writes.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let (writes, applied) = (w.clone(), applied.clone());
                std::thread::spawn(move || {
                    let Some((head, _)) = read_request(&mut stream) else { return };
                    let (status, body, delay) = if head.starts_with("POST ") {
                        writes.fetch_add(1, Ordering::SeqCst);
                        let (status, body, delay, applies) = answer;
                        if applies {
                            applied.store(true, Ordering::SeqCst);
                        }
                        (status, body.to_string(), delay)
                    } else {
                        let refunded = if applied.load(Ordering::SeqCst) { "18.00" } else { "0.00" };
                        let order = json!({
                            "order_id": "#W4817420", "customer_id": "ava_moore_2033", "status": "delivered",
                            "currency": "USD", "totals": {"paid": "100.00", "refunded": refunded},
                        });
                        (200, order.to_string(), std::time::Duration::ZERO)
                    };
                    std::thread::sleep(delay);
                    let out = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(out.as_bytes());
                });
            }
        });
        FakePlatform { addr, writes, stop }
    }

    fn writes(&self) -> usize {
        self.writes.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for FakePlatform {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// An engine on the demo snapshot workspace whose connector talks to `fake` (the shipped
/// catalog with short timeouts; `refund_partial` idempotent or not), data under `data`.
fn fake_engine(fake: &FakePlatform, idempotent: bool, data: &Path) -> Engine {
    let connector = quick_connector(idempotent, fake.addr);
    Engine::open(
        EngineOptions {
            workspace: assets().join("demo/workspace-snapshot.toml"),
            data_dir: data.to_path_buf(),
            operator: None,
            connector: Some(Arc::new(connector)),
        },
        Arc::new(Fixed),
    )
    .unwrap()
}

/// A connector to `addr` over [`quick_catalog`], with a token in memory.
fn quick_connector(idempotent: bool, addr: std::net::SocketAddr) -> HttpConnector {
    let credentials = Arc::new(MemoryCredentials::default());
    countersign_connectors::credentials::CredentialStore::set(
        &*credentials,
        &countersign_connectors::credentials::CredentialName::new("demo_seller_center", "demo").unwrap(),
        &countersign_connectors::credentials::Secret::new("fake-token"),
    )
    .unwrap();
    HttpConnector::new(quick_catalog(idempotent), credentials)
        .unwrap()
        .with_base_url(&format!("http://{addr}"))
        .unwrap()
}

/// The shipped catalog with short timeouts, and `refund_partial` idempotent or not.
fn quick_catalog(idempotent: bool) -> countersign_connectors::Catalog {
    let text = std::fs::read_to_string(assets().join("demo/catalog.toml")).unwrap();
    let text = text.replace("timeout_ms = 20000", "timeout_ms = 300").replace("backoff_ms = 250", "backoff_ms = 10");
    let at = text.find("[actions.refund_partial]").unwrap();
    let (head, tail) = text.split_at(at);
    let tail = if idempotent { tail.to_string() } else { tail.replacen("idempotent = true", "idempotent = false", 1) };
    countersign_connectors::Catalog::parse("catalog.toml", &format!("{head}{tail}")).unwrap()
}

#[test]
fn server_errors_timeouts_and_malformed_answers_fail_clearly_and_only_idempotent_writes_are_retried() {
    use std::time::Duration;
    let ms = Duration::from_millis;
    let error_json = r#"{"error": {"code": "invalid_amount", "message": "amount is not acceptable"}}"#;
    // (what, refund idempotent?, the write's answer, the step's end state, writes received, the reason says)
    let scenarios: Vec<(&str, bool, WriteAnswer, StepState, usize, &str)> = vec![
        ("a 500 is a platform bug: never retried", true, (500, "{}", ms(0), false), StepState::Failed, 1, "(500)"),
        ("a 503 is retried for an idempotent write", true, (503, "", ms(0), false), StepState::Failed, 3, "(503)"),
        ("a 503 is not retried otherwise", false, (503, "", ms(0), false), StepState::Failed, 1, "(503)"),
        ("a 4xx is final", true, (422, error_json, ms(0), false), StepState::Failed, 1, "invalid_amount"),
        // Never final after a read: an answer that does not come leaves the write unknown
        // (where that is safe, sent again under its key: the first call's 3 attempts, then 4
        // settling resends, at once and with back-off, of 3 attempts each — 15 requests, one
        // change at most; read back otherwise).
        ("a timeout, idempotent", true, (200, "{}", ms(700), false), StepState::Unknown, 15, "in time"),
        ("a timeout, not idempotent", false, (200, "{}", ms(700), false), StepState::Unknown, 1, "in time"),
        ("malformed JSON", true, (200, "{\"refund\": ", ms(0), false), StepState::Failed, 1, "malformed"),
        ("malformed JSON, applied", true, (200, "{\"refund\": ", ms(0), true), StepState::Succeeded, 1, "malformed"),
    ];
    for (what, idempotent, answer, end, writes, says) in scenarios {
        let fake = FakePlatform::start(answer);
        let dir = tempfile::tempdir().unwrap();
        let engine = fake_engine(&fake, idempotent, dir.path());
        let file = damaged_item_case();
        let (runs, refund) = run_refund(&engine, &file);
        assert_eq!(refund.state, end, "{what}: {runs:?}");
        assert_eq!(fake.writes(), writes, "{what}: writes the platform received");
        let finished = s2_events(&engine, &file.case.id, "step_finished");
        let first = finished[0]["error"].as_str().unwrap_or_default().to_string();
        assert!(first.contains(says), "{what}: the recorded reason says what happened: {first:?}");
        if end == StepState::NotApplied {
            assert_eq!(finished[0]["outcome"], "unknown", "{what}: unknown first, then reconciled by a read");
            assert_eq!(finished[1]["response"]["reconciled"], true, "{what}");
        }
        let started = s2_events(&engine, &file.case.id, "step_started").len();
        assert_eq!(started, 1, "{what}: the executor started the write once");
        assert!(engine.log_verify().unwrap().ok);
    }
}

#[test]
fn an_approval_past_its_expiry_is_not_executed() {
    let clock = Movable::at("2026-11-21T10:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine_at(dir.path(), clock.clone(), |c| Arc::new(c));
    let direct = platform(&server, &keyring);
    let pending = seed_orders("pending");
    let (late, late_owner) = &pending[0];
    let (soon, soon_owner) = &pending[1];
    let a = cancel_case("late", late_owner, late);
    let b = cancel_case("soon", soon_owner, soon);
    engine.process_verified(&a.case, &a.plan).unwrap();
    engine.process_verified(&b.case, &b.plan).unwrap();
    engine.review("late-p", "s1", Verdict::Approved, "ok").unwrap();
    clock.advance(jiff::SignedDuration::from_mins(10));
    engine.review("soon-p", "s1", Verdict::Approved, "ok").unwrap();

    // 4 h 5 min after the first approval, 3 h 55 min after the second.
    clock.advance(jiff::SignedDuration::from_mins(3 * 60 + 55));
    let err = engine.execute("late-p", "s1").unwrap_err();
    assert_eq!(err.code(), ErrorCode::ApprovalStale, "{err}");
    assert_eq!(state_of(&engine, "late-p", "s1"), StepState::Expired);
    let last = engine.log_case("late").unwrap().pop().unwrap();
    assert_eq!(last.kind(), "review_decided");
    assert_eq!(last.event.payload()["reason"], "the approval expired before the step ran", "the expiry is evidence");
    assert_eq!(read_order(&direct, late)["status"], "pending", "an expired approval runs nothing");
    assert_eq!(engine.execute("late-p", "s1").unwrap_err().code(), ErrorCode::Conflict, "and it stays expired");

    assert_eq!(engine.execute("soon-p", "s1").unwrap().state, StepState::Succeeded, "within 4 h it runs");
    assert_eq!(read_order(&direct, soon)["status"], "cancelled");
}

/// `lead passphrase 4 tests`, hashed with `countersign roster hash` (Argon2id, OWASP cost).
const LEAD_PASSPHRASE: &str = "lead passphrase 4 tests";
const LEAD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$rxMR3NC/OhkH266Zh9ufyQ$+J7+Ou6dEeB1Pwf8PWgGKgN6Zb59GAPlrTST2moue5k";

fn roster_entry(id: &str, role: &str, hash: &str) -> String {
    format!("[[roster]]\nid = {id:?}\nrole = {role:?}\npassphrase = {hash:?}\n")
}

#[test]
fn supervisor_steps_need_a_team_lead_who_proves_it_on_the_roster() {
    use countersign_engine::{Proof, Secret};
    let ws = workspace_copy(|p| p, &roster_entry("lead-dana", "team_lead", LEAD_HASH));
    let dir = tempfile::tempdir().unwrap();
    let clock = Movable::at("2026-11-21T10:00:00Z");
    let options = EngineOptions {
        workspace: ws.path().join("workspace.toml"),
        data_dir: dir.path().to_path_buf(),
        operator: None,
        connector: None,
    };
    let mut e = Engine::open(options.clone(), clock.clone()).unwrap();
    assert!(e.roster().iter().any(|m| m.id == "lead-dana"), "the added lead is on the roster");
    let file = recorded(&e, "07-injection-in-message");
    let step = e.review_queue().unwrap().into_iter().find(|s| s.decision == "supervisor").unwrap();
    let (plan, id) = (step.plan_id.as_str(), step.step_id.as_str());
    let proof = |who: &str, pass: &str| Proof { id: who.into(), passphrase: Secret::new(pass) };

    // The agent at the seat may not; claiming the role on the command line is not proof.
    assert_eq!(e.review(plan, id, Verdict::Approved, "").unwrap_err().code(), ErrorCode::NotPermitted);
    as_role(&mut e, "lead-dana", "team_lead");
    let err = e.review(plan, id, Verdict::Approved, "").unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted);
    assert!(err.to_string().contains("--as"), "the refusal says how: {err}");
    as_role(&mut e, "agent-demo", "agent");

    // A wrong passphrase, or someone not on the roster: refused alike, and recorded.
    let wrong = e.review_as(plan, id, Verdict::Approved, "", &proof("lead-dana", "guess-1234")).unwrap_err();
    let nobody = e.review_as(plan, id, Verdict::Approved, "", &proof("lead-ghost", LEAD_PASSPHRASE)).unwrap_err();
    assert_eq!((wrong.code(), nobody.code()), (ErrorCode::NotPermitted, ErrorCode::NotPermitted));
    assert_eq!(state_of(&e, plan, id), StepState::Waiting, "a failed proof changes nothing");
    let refused = e.log_list(&LogFilter { kind: Some("review_refused".into()), ..LogFilter::default() }).unwrap();
    let seen: Vec<_> = refused
        .iter()
        .map(|r| (r.event.payload()["claimed_id"].clone(), r.event.payload()["reason"].clone()))
        .collect();
    assert_eq!(
        seen,
        vec![(json!("lead-dana"), json!("wrong passphrase")), (json!("lead-ghost"), json!("not on the roster"))]
    );
    assert!(refused.iter().all(|r| r.actor == "agent-demo" && r.event.payload()["step_id"] == id));

    // The team lead proves it at the agent's seat.
    let r =
        e.review_as(plan, id, Verdict::Approved, "verified by phone", &proof("lead-dana", LEAD_PASSPHRASE)).unwrap();
    assert_eq!((r.state, r.reviewed_by.as_deref()), (StepState::Approved, Some("lead-dana")));
    let decided = e.log_case(&file.case.id).unwrap().pop().unwrap();
    assert_eq!((decided.kind(), decided.actor.as_str()), ("review_decided", "lead-dana"));
    assert_eq!(decided.event.payload()["by"], json!({"id": "lead-dana", "role": "team_lead"}));

    // Five failures in 15 minutes lock the id, even against the right passphrase; then it clears.
    let mut again = file.plan.clone();
    again.id = "demo-07-plan-2".into();
    e.process_verified(&file.case, &again).unwrap();
    for i in 0..4 {
        e.review_as("demo-07-plan-2", id, Verdict::Approved, "", &proof("lead-dana", &format!("guess-{i}")))
            .unwrap_err();
    }
    let locked =
        e.review_as("demo-07-plan-2", id, Verdict::Approved, "", &proof("lead-dana", LEAD_PASSPHRASE)).unwrap_err();
    assert_eq!(locked.code(), ErrorCode::NotPermitted);
    assert!(locked.to_string().contains("locked out"), "{locked}");
    clock.advance(jiff::SignedDuration::from_mins(16));
    e.review_as("demo-07-plan-2", id, Verdict::Approved, "", &proof("lead-dana", LEAD_PASSPHRASE)).unwrap();
    assert!(e.log_verify().unwrap().ok);
    drop(e);

    // The passphrase is nowhere on disk.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(LEAD_PASSPHRASE.len()).any(|w| w == LEAD_PASSPHRASE.as_bytes()));
    }

    // The roster is checked when the workspace loads.
    let cheap = "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (extra, says) in [
        (roster_entry("lead-x", "team_lead", cheap), "too cheap"),
        (roster_entry("lead-x", "team_lead", "hunter2"), "not a PHC"),
        (roster_entry("lead-x", "ceo", LEAD_HASH), "ceo"),
        (format!("{0}{0}", roster_entry("lead-x", "team_lead", LEAD_HASH)), "twice"),
    ] {
        let ws = workspace_copy(|p| p, &extra);
        let options = EngineOptions { workspace: ws.path().join("workspace.toml"), ..options.clone() };
        let err = Engine::open(options, clock.clone()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{err}");
        assert!(err.to_string().contains(says), "{says}: {err}");
    }
}

/// Sets a pause (through a second engine on the same data dir, as another seat would)
/// while the executor reads the before-state: after its pause check, before its start.
fn pause_during_read(inner: HttpConnector, data: PathBuf) -> Intercept {
    change_before_send(
        inner,
        Arc::new(move || {
            let other = open(&data);
            other.pause_set(PauseScope::Action, "refund_partial", "incident, set from another seat").unwrap();
        }),
    )
}

#[test]
fn a_pause_set_between_the_check_and_the_start_still_stops_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let (engine, server, keyring) = live_engine_with(dir.path(), |inner| Arc::new(pause_during_read(inner, data)));
    let direct = platform(&server, &keyring);
    let (order, customer) = seed_orders("delivered").into_iter().next().unwrap();
    let f = refund_case("late-pause", &customer, &order, "10.00");
    assert_eq!(engine.process_verified(&f.case, &f.plan).unwrap().steps[0].decision, Outcome::Auto);
    assert!(engine.pauses().unwrap().is_empty(), "no pause when the executor checks");
    let err = engine.execute("late-pause-p", "s1").unwrap_err();
    assert_eq!(err.code(), ErrorCode::Paused, "the start is refused in its own transaction: {err}");
    assert_eq!(state_of(&engine, "late-pause-p", "s1"), StepState::Approved);
    assert_eq!(started_steps(&engine), 0);
    assert_eq!(read_order(&direct, &order)["totals"]["refunded"], "0.00", "the write never went out");
}

#[test]
fn a_browser_workspace_is_read_but_its_connector_is_built_by_a_face() {
    let file = assets().join("demo/workspace-browser.toml");
    let ws = countersign_engine::Workspace::load(&file).unwrap();
    let b = ws.browser().expect("kind = \"browser\" gives browser settings");
    assert_eq!(b.pages, assets().join("demo/pages.toml"), "paths are relative to the workspace file");
    assert_eq!(b.base_url.as_deref(), Some("http://127.0.0.1:8787"));
    assert_eq!(b.profile.as_deref(), Some("demo_seller_center/demo"));
    assert!(b.headless && !b.no_sandbox && b.executable.is_none(), "{b:?}");

    let dir = tempfile::tempdir().unwrap();
    let options =
        EngineOptions { workspace: file, data_dir: dir.path().to_path_buf(), operator: None, connector: None };
    let err = Engine::open(options, Arc::new(Fixed)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    let message = err.to_string();
    assert!(
        message.contains("workspace-browser.toml")
            && message.contains("countersign_browser::connector_for_workspace")
            && message.contains("EngineOptions::connector"),
        "the error says who builds the browser connector: {message}"
    );
}

#[test]
fn browser_connector_settings_errors_name_file_line_and_column() {
    let source = std::fs::read_to_string(assets().join("demo/workspace-browser.toml")).unwrap();
    let line_of = |text: &str, start: &str| text.lines().position(|l| l.starts_with(start)).unwrap() + 1;
    let section = line_of(&source, "[connector]");
    // (edit, what the error says, line and column of the value, or 0 for "in the section")
    let cases = [
        ("base_url = \"http://127.0.0.1:8787\"", "base_url = \"http://sellers.example.com\"", "use https", 12),
        ("base_url = \"http://127.0.0.1:8787\"", "base_url = \"https://a.example/seller\"", "scheme://host", 12),
        ("profile = \"demo_seller_center/demo\"", "profile = \"demo\"", "must be PLATFORM/STORE", 11),
        ("profile = \"demo_seller_center/demo\"", "profile = \"a/../../etc\"", "must be PLATFORM/STORE", 11),
        ("pages = \"pages.toml\"", "pages = \"\"", "names the page-actions file", 9),
        ("# executable = \"/usr/bin/chromium\"", "executable = \"\"", "`executable` is empty", 14),
        ("# headless = true", "headless = \"yes\"", "invalid type", 0),
        ("kind = \"browser\"", "kind = \"browser\"\ncolour = \"red\"", "unknown field `colour`", 0),
        ("pages = \"pages.toml\"", "# no pages", "missing field `pages`", 0),
    ];
    for (from, to, says, column) in cases {
        assert!(source.contains(from), "{from}");
        let text = source.replacen(from, to, 1);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("workspace.toml");
        std::fs::write(&file, &text).unwrap();
        let err = countersign_engine::Workspace::load(&file).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfigInvalid, "{err}");
        let message = err.to_string();
        assert!(message.contains(says), "{to}: {message}");
        let at = message.strip_prefix(&format!("{}:", file.display())).unwrap_or_else(|| panic!("{message}"));
        let mut parts = at.splitn(3, ':');
        let (line, col): (usize, usize) =
            (parts.next().unwrap().parse().unwrap(), parts.next().unwrap().parse().unwrap());
        if column > 0 {
            let key = to.split(' ').next().unwrap();
            assert_eq!((line, col), (line_of(&text, &format!("{key} =")), column), "{to}: {message}");
        } else {
            assert!(line >= section, "{to}: the error points into [connector] (line {section} on): {message}");
        }
    }
}

/// The account of `customer` as the demo store answers it.
fn account(direct: &HttpConnector, customer: &str) -> serde_json::Value {
    let params = json!({ "customer_id": customer });
    direct.call("get_customer_details", params.as_object().unwrap(), None).unwrap().response
}

#[test]
fn identity_comes_from_evidence_and_every_entity_named_must_be_the_customers() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(dir.path());
    let direct = platform(&server, &keyring);
    let (pending, owner) = seed_orders("pending").into_iter().next().unwrap();
    let email = account(&direct, &owner)["email"].as_str().unwrap().to_string();
    let (stranger_order, stranger) = seed_orders("delivered").into_iter().find(|(_, c)| *c != owner).unwrap();
    let _ = stranger_order;
    let theirs = account(&direct, &stranger)["email"].as_str().unwrap().to_string();
    let decide = |case_id: &str, steps: serde_json::Value| {
        let mut f = case_with(case_id, &format!("{case_id}-p"), &owner, "cancel_order", steps);
        // The e-mail address the look-ups use is one the customer typed.
        let typed = if case_id == "id-stranger" { &theirs } else { &email };
        f.case.messages[0].text = format!("Hi, it's me ({typed}), please cancel my order.");
        let d = engine.process(&f.case, &f.plan).unwrap();
        d.steps.into_iter().map(|s| (s.decision, s.rule_ids)).collect::<Vec<_>>()
    };
    let lookup = |address: &str| {
        json!({"id": "s1", "action": "find_customer_by_email", "params": {
            "email": {"value": address, "source": "customer_message"}}})
    };

    // The case file says "verified": it counts for nothing.
    let d = decide("id-none", json!([cancel_step("s1", &pending)]));
    assert_eq!(d[0].0, Outcome::Recommend, "nothing verifies who writes: advice only ({:?})", d[0].1);
    assert!(d[0].1.iter().any(|r| r == "builtin.identity"));

    // The e-mail the customer typed, looked up on the platform, matches the account: the
    // look-up runs without a click and the cancel waits for the agent as usual.
    let d = decide("id-matched", json!([lookup(&email), cancel_step("s2", &pending)]));
    assert_eq!(d[0].0, Outcome::Auto, "the look-up is the verification: {:?}", d[0].1);
    assert_eq!(d[1].0, Outcome::Confirm, "{:?}", d[1].1);
    let read = engine
        .log_list(&LogFilter {
            case_id: Some("id-matched".into()),
            kind: Some("context_read".into()),
            ..LogFilter::default()
        })
        .unwrap();
    let identity = &read[0].event.payload()["identity"];
    assert_eq!(identity["level"], "matched", "how the customer was verified is evidence: {identity}");

    // A look-up with an address the customer never wrote is not run: a plan cannot pick
    // whom to match.
    let d = decide("id-not-typed", json!([lookup("someone.else@example.com"), cancel_step("s2", &pending)]));
    assert_eq!(d[1].0, Outcome::Recommend, "{:?}", d[1].1);

    // A typed e-mail never unlocks an account change.
    let change = json!({"id": "s2", "action": "change_account_email", "params": {
        "customer_id": {"value": owner, "source": "connector"},
        "new_email": {"value": "new-address@example.com", "source": "customer_message"}}});
    let d = decide("id-typed-email", json!([lookup(&email), change]));
    assert_eq!(d[1].0, Outcome::Recommend, "{:?}", d[1].1);

    // Someone else's e-mail verifies no one here.
    let d = decide("id-stranger", json!([lookup(&theirs), cancel_step("s2", &pending)]));
    assert_eq!(d[1].0, Outcome::Recommend, "{:?}", d[1].1);

    // Paying with another customer's card is refused at decide time, read from the platform.
    let their_card = account(&direct, &stranger)["payment_methods"][0]["id"].as_str().unwrap().to_string();
    let pay = |id: &str, card: &str| {
        json!({"id": id, "action": "modify_pending_order_payment", "params": {
            "order_id": {"value": pending, "source": "connector"},
            "payment_method_id": {"value": card, "source": "connector"}}})
    };
    let d = decide("id-their-card", json!([lookup(&email), pay("s2", &their_card)]));
    assert_eq!(d[1].0, Outcome::Forbid, "{:?}", d[1].1);
    assert!(d[1].1.iter().any(|r| r == "ownership.payment-method"), "{:?}", d[1].1);
    let mine = account(&direct, &owner)["payment_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect::<Vec<_>>();
    let d = decide("id-my-card", json!([lookup(&email), pay("s2", &mine[0])]));
    assert!(!d[1].1.iter().any(|r| r == "ownership.payment-method"), "the customer's own card: {:?}", d[1].1);

    // An agent's recorded check is a strong verification.
    verify_by_code(&engine, "id-checked", &owner);
    let change = json!({"id": "s1", "action": "change_account_email", "params": {
        "customer_id": {"value": owner, "source": "connector"},
        "new_email": {"value": "new-address@example.com", "source": "agent"}}});
    let d = decide("id-checked", json!([change]));
    assert_eq!(d[0].0, Outcome::Supervisor, "a team lead countersigns it: {:?}", d[0].1);
}

#[test]
fn a_write_that_never_left_says_so_and_is_not_left_unknown() {
    use countersign_engine::StepState;
    // A second route to the platform that refuses every connection (nothing listens).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dead = quick_connector(true, closed);
    let dir = tempfile::tempdir().unwrap();
    let (engine, _server, _keyring) = live_engine_with(dir.path(), move |inner| {
        Arc::new(Intercept {
            inner,
            keys: true,
            // Reads reach the platform; the write's connection is refused.
            call: Some(Box::new(move |inner, action, params, key| match key {
                Some(_) => dead.call(action, params, key),
                None => inner.call(action, params, key),
            })),
            before_read_state: None,
        })
    });
    let file = damaged_item_case();
    let (runs, refund) = run_refund(&engine, &file);
    assert_eq!(refund.state, StepState::Failed, "never sent, so known not applied: {runs:?}");
    let finished = s2_events(&engine, &file.case.id, "step_finished");
    assert_eq!(finished.len(), 1, "no unknown to settle: {finished:?}");
    assert_eq!(finished[0]["response"]["request_sent"], "no", "{finished:?}");
    assert_eq!(finished[0]["not_applied"], "nothing_sent", "{finished:?}");
}
