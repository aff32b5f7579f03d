//! The browser connector for real: Debian's Chromium (headless, `--no-sandbox`, background
//! networking off) drives the demo store's seller-center pages on loopback, under the
//! engine with its real SQLite evidence store. If Chromium cannot start, these tests fail
//! (they never skip).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use countersign_test_support::{demo, sign_in};

use countersign_browser::{BrowserConnector, BrowserOptions, DemoMessagePages, PageActions};
use countersign_connectors::source::{CaseSource, ConversationState, Cursor, Post, Visibility};
use countersign_connectors::{BlobSink, CallRecord, Connector, ConnectorError, SubmitGate};
use countersign_core::evidence::Verdict;
use countersign_core::model::PauseScope;
use countersign_demo_store::BackgroundServer;
use countersign_engine::{CaseFile, Engine, EngineOptions, ErrorCode, StepState, SystemClock};
use serde_json::{Map, Value, json};

const PASSWORD: &str = "browser-test-password-71c3";
const ORDER: &str = "#W5918442";

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

/// The demo store on loopback, its JSON API for checking what really changed, and a data
/// dir holding the browser profile and the evidence store.
struct World {
    server: BackgroundServer,
    data: tempfile::TempDir,
    _store_dir: tempfile::TempDir,
    http: reqwest::blocking::Client,
}

impl World {
    fn start() -> World {
        let store_dir = tempfile::tempdir().unwrap();
        let server = demo::start_in(store_dir.path(), PASSWORD);
        World {
            server,
            data: tempfile::tempdir().unwrap(),
            _store_dir: store_dir,
            http: countersign_http::blocking_client_builder().build().unwrap(),
        }
    }

    /// A world whose agent has signed in by hand in the connector's profile.
    fn signed_in() -> World {
        let w = World::start();
        w.sign_in_by_hand();
        w
    }

    fn options(&self) -> BrowserOptions {
        BrowserOptions { no_sandbox: true, headless: true, ..BrowserOptions::new(self.data.path()) }
    }

    fn pages(&self) -> PageActions {
        PageActions::load(&assets().join("demo/pages.toml")).unwrap().with_base_url(&self.server.url()).unwrap()
    }

    /// The order as the store's JSON API shows it (not through the browser).
    fn order(&self) -> Value {
        self.order_of(ORDER)
    }

    fn order_of(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/orders/{}", self.server.url(), id.replace('#', "%23")))
            .bearer_auth(PASSWORD)
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// A GET on the store's JSON API with its token (not through the browser).
    fn api(&self, path: &str) -> Value {
        let r = self.http.get(format!("{}{path}", self.server.url())).bearer_auth(PASSWORD).send().unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap()
    }

    /// A buyer writes (the store's buyer endpoint, as the marketplace app would).
    fn buyer_writes(&self, user: &str, order: &str, text: &str, key: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/buyer/messages", self.server.url()))
            .bearer_auth(PASSWORD)
            .header("Idempotency-Key", key)
            .json(&json!({ "user_id": user, "order_id": order, "text": text }))
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
        r.json().unwrap()
    }

    fn settings(&self, change: Value) {
        let r = self
            .http
            .put(format!("{}/seller-center/settings", self.server.url()))
            .bearer_auth(PASSWORD)
            .json(&change)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().unwrap());
    }

    /// What the agent does by hand in the login window (the connector never signs in).
    fn sign_in_by_hand(&self) {
        let profile = self.options().profile_dir(&self.pages().profile);
        sign_in::sign_in_by_hand(&profile, &self.server.url(), PASSWORD);
    }

    fn connector(&self) -> BrowserConnector {
        BrowserConnector::new(self.pages(), self.options()).unwrap()
    }

    /// An engine over this world's browser connector.
    fn page_engine(&self) -> Engine {
        self.engine(Arc::new(self.connector()))
    }

    fn engine(&self, connector: Arc<dyn Connector>) -> Engine {
        Engine::open(
            EngineOptions {
                workspace: assets().join("demo/workspace-snapshot.toml"),
                data_dir: self.data.path().to_path_buf(),
                operator: None,
                connector: Some(connector),
            },
            Arc::new(SystemClock),
        )
        .unwrap()
    }
}

/// Process a case whose customer an agent verified themselves (a one-time code): the demo
/// policy's writes need it, and a case file's own claim counts for nothing.
fn process_verified(engine: &Engine, file: &CaseFile) {
    let customer = &file.case.customer.as_ref().unwrap().id;
    engine.record_identity_check(&file.case.id, customer, "a one-time code sent to the account's phone").unwrap();
    engine.process(&file.case, &file.plan).unwrap();
}

fn cancel_case() -> CaseFile {
    CaseFile::load(&assets().join("demo/cases/01-cancel-pending.json")).unwrap()
}

/// The demo cancel case processed, its auto read run, its cancel approved (not yet run).
fn approved_cancel(engine: &Engine) -> CaseFile {
    let file = cancel_case();
    process_verified(engine, &file);
    engine.run_approved(&file.case.id).unwrap();
    engine.review(&file.plan.id, "s2", Verdict::Approved, "ok").unwrap();
    file
}

fn finished(engine: &Engine, case: &str, step: &str) -> Value {
    engine
        .log_case(case)
        .unwrap()
        .into_iter()
        .rfind(|e| e.kind() == "step_finished" && e.event.payload()["step_id"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {step}"))
        .event
        .payload()
}

/// Every screenshot and snapshot the evidence names is in the store, under its SHA-256.
fn blobs_named(engine: &Engine, evidence: &Value) -> Vec<countersign_store::Blob> {
    let mut out = Vec::new();
    for page in evidence["pages"].as_array().unwrap() {
        for kind in ["screenshot", "snapshot"] {
            if let Some(hash) = page[kind]["sha256"].as_str() {
                assert_eq!(page[kind]["stored"], true, "{page}");
                let blob = engine.blob(hash).unwrap().unwrap_or_else(|| panic!("blob {hash} is stored"));
                assert_eq!(countersign_store::blob_hash(&blob.data), hash);
                out.push(blob);
            }
        }
    }
    out
}

#[test]
fn a_read_step_returns_the_orders_fields_with_screenshot_and_snapshot() {
    let w = World::signed_in();
    let engine = w.page_engine();
    let file = cancel_case();
    process_verified(&engine, &file);
    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs.len(), 1, "only the read is auto: {runs:?}");
    assert_eq!(runs[0].state, StepState::Succeeded, "{runs:?}");

    let api = w.order();
    let done = finished(&engine, &file.case.id, "s1");
    let after = &done["after"];
    assert_eq!(after["order_id"], ORDER);
    assert_eq!(after["status"], "pending");
    assert_eq!(after["customer_id"], "sofia_rossi_8776");
    assert_eq!(after["currency"], "USD");
    assert_eq!(after["paid"], api["totals"]["paid"], "money read as the exact decimal text");
    assert_eq!(after["refunded"], "0.00");
    let evidence = &done["response"]["evidence"];
    assert_eq!(evidence["read"], *after, "the values read are in the evidence");
    assert_eq!(evidence["submitted"], false);
    let page = &evidence["pages"][0];
    assert!(page["url"].as_str().unwrap().ends_with("/seller/orders/%23W5918442"), "{page}");
    assert_eq!(page["status"], 200);
    let blobs = blobs_named(&engine, evidence);
    assert!(blobs.iter().any(|b| b.media_type == "image/png" && b.data.starts_with(b"\x89PNG")), "a PNG screenshot");
    assert!(
        blobs.iter().any(|b| b.media_type == "text/html" && String::from_utf8_lossy(&b.data).contains("order-status"))
    );
    assert!(engine.log_verify().unwrap().ok);
}

#[test]
fn a_confirmed_write_waits_then_runs_after_approval_and_the_store_changed() {
    let w = World::signed_in();
    let engine = w.page_engine();
    let file = cancel_case();
    process_verified(&engine, &file);
    engine.run_approved(&file.case.id).unwrap();
    assert_eq!(w.order()["status"], "pending", "nothing is submitted before the approval");

    engine.review(&file.plan.id, "s2", Verdict::Approved, "customer confirmed in chat").unwrap();
    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].state, StepState::Succeeded, "{runs:?}");
    let order = w.order();
    assert_eq!(order["status"], "cancelled", "the demo store's own state changed");
    assert_eq!(order["cancel_reason"], "ordered by mistake");

    let done = finished(&engine, &file.case.id, "s2");
    assert_eq!(done["outcome"], "succeeded");
    assert_eq!(done["before"]["status"], "pending");
    assert_eq!(done["after"]["status"], "cancelled");
    assert_eq!(done["request"]["method"], "PAGE SUBMIT");
    let evidence = &done["response"]["evidence"];
    assert_eq!(evidence["submitted"], true);
    assert_eq!(evidence["filled"], json!([{ "selector": "select#cancel-reason", "value": "ordered by mistake" }]));
    let moments: Vec<&str> =
        evidence["pages"].as_array().unwrap().iter().map(|p| p["moment"].as_str().unwrap()).collect();
    assert_eq!(moments, ["opened", "before submit", "after submit"], "{evidence}");
    let blobs = blobs_named(&engine, evidence);
    assert_eq!(blobs.iter().filter(|b| b.media_type == "image/png").count(), 2, "screenshots before and after");
    for b in blobs.iter().filter(|b| b.media_type == "text/html") {
        let html = String::from_utf8_lossy(&b.data);
        assert!(!html.contains(PASSWORD), "no secret in a snapshot");
        if html.contains("csrf_token") {
            assert!(html.contains("name=\"csrf_token\" value=\"[redacted]\""), "the CSRF token is redacted: {html}");
        }
    }
    // The form carried the step's idempotency key, the one its start recorded.
    let started = engine
        .log_case(&file.case.id)
        .unwrap()
        .into_iter()
        .rfind(|e| e.kind() == "step_started" && e.event.payload()["step_id"] == "s2")
        .unwrap()
        .event
        .payload();
    let key = started["idempotency_key"].as_str().unwrap();
    let field = "form#cancel-form input[name=form_token]";
    assert_eq!(evidence["idempotency"], json!({ "field": field, "key": key }), "{evidence}");
    assert_eq!(started["request"]["body"]["idempotency"], json!({ "field": field, "key": key }), "{started}");
    let before_submit = blobs.iter().find(|b| b.media_type == "text/html").unwrap();
    let html = String::from_utf8_lossy(&before_submit.data);
    assert!(html.contains(&format!("name=\"form_token\" value=\"{key}\"")), "the form as sent holds the key: {html}");
    let all: String = engine.log_case(&file.case.id).unwrap().iter().map(|e| e.body.clone()).collect();
    assert!(!all.contains(PASSWORD) && !all.contains("cs_session"), "no secret or cookie in the evidence log");
    assert!(engine.log_verify().unwrap().ok);
}

#[test]
fn the_verification_interstitial_turns_the_step_into_needs_human_with_nothing_submitted() {
    let w = World::signed_in();
    let engine = w.page_engine();
    let file = approved_cancel(&engine);
    w.settings(json!({ "verify_sensitive": true }));

    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs[0].state, StepState::Failed, "{runs:?}");
    assert_eq!(runs[0].code, Some(ErrorCode::NeedsHuman), "{runs:?}");
    assert!(runs[0].error.as_deref().unwrap().contains("verify"), "{runs:?}");
    assert_eq!(w.order()["status"], "pending", "nothing was submitted");

    let done = finished(&engine, &file.case.id, "s2");
    assert_eq!(done["outcome"], "needs_human");
    let evidence = &done["response"]["evidence"];
    assert_eq!(evidence["submitted"], false);
    assert!(
        evidence["pages"].as_array().unwrap().iter().any(|p| p["url"].as_str().unwrap().contains("/seller/verify"))
    );
    let blobs = blobs_named(&engine, evidence);
    assert!(blobs.iter().any(|b| b.media_type == "image/png"), "a screenshot for the person taking over");
}

#[test]
fn an_ended_session_is_needs_human_and_the_connector_does_not_sign_in() {
    let w = World::signed_in();
    let connector: Arc<dyn Connector> = Arc::new(w.connector());
    let engine = w.engine(connector.clone());
    let file = approved_cancel(&engine);

    w.settings(json!({ "end_sessions": true }));
    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs[0].code, Some(ErrorCode::NeedsHuman), "{runs:?}");
    assert_eq!(runs[0].state, StepState::Failed, "stopped before the step started, which the evidence shows");
    assert_eq!(w.order()["status"], "pending");
    let done = finished(&engine, &file.case.id, "s2");
    assert_eq!(done["outcome"], "needs_human");
    assert!(done["response"]["evidence"]["pages"][0]["url"].as_str().unwrap().contains("/seller/login"), "{done}");

    let mut params = Map::new();
    params.insert("order_id".into(), json!(ORDER));
    let err = connector.call("get_order_details", &params, None).unwrap_err();
    let ConnectorError::NeedsHuman { reason, evidence } = &err else { panic!("{err}") };
    assert!(reason.contains("session has ended"), "{reason}");
    let pages = evidence["pages"].as_array().unwrap();
    assert!(pages.iter().any(|p| p["url"].as_str().unwrap().contains("/seller/login")), "{evidence}");
    assert!(pages.iter().any(|p| p["screenshot"]["stored"] == true), "a screenshot for the agent: {evidence}");
}

#[test]
fn verification_before_the_step_starts_is_recorded_with_the_page_and_its_screenshot() {
    let w = World::signed_in();
    let engine = w.page_engine();
    let file = approved_cancel(&engine);
    // The interstitial on every page: the order page the facts are read from again (to
    // decide the step once more, before anything starts) asks too.
    w.settings(json!({ "verify_all": true }));

    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].code, Some(ErrorCode::NeedsHuman), "{runs:?}");
    assert_eq!(runs[0].state, StepState::Failed, "{runs:?}");
    let error = runs[0].error.as_deref().unwrap();
    assert!(error.contains("decide the step again") && error.contains("verify"), "{error}");
    assert_eq!(w.order()["status"], "pending", "nothing was submitted");

    let events = engine.log_case(&file.case.id).unwrap();
    let s2 = |kind: &str| events.iter().filter(|e| e.kind() == kind && e.event.payload()["step_id"] == "s2").count();
    assert_eq!(s2("step_started"), 0, "the step never started: no call went out");
    assert_eq!(s2("step_finished"), 1, "the timeline says why the step stopped");
    let done = finished(&engine, &file.case.id, "s2");
    assert_eq!(done["outcome"], "needs_human");
    assert_eq!(done["stopped_at"], "reading the facts to decide the step again");
    assert_eq!(done["error"], error, "the evidence holds the reason the agent saw");
    let evidence = &done["response"]["evidence"];
    assert_eq!(evidence["submitted"], false);
    let page = &evidence["pages"][0];
    assert!(page["url"].as_str().unwrap().contains("/seller/verify?next=/seller/orders/"), "{evidence}");
    let shots: Vec<_> = blobs_named(&engine, evidence).into_iter().filter(|b| b.media_type == "image/png").collect();
    assert_eq!(shots.len(), 1, "one screenshot of the page the person takes over: {evidence}");
    assert!(shots[0].data.starts_with(b"\x89PNG"));
    assert!(engine.log_verify().unwrap().ok, "the chain verifies with the new event");

    // The person verifies; the step does not run again by itself.
    w.settings(json!({ "verify_all": false }));
    assert!(engine.run_approved(&file.case.id).unwrap().is_empty(), "a stopped step is not retried");
}

#[test]
fn the_changed_layout_fails_before_submitting_and_names_the_mismatch() {
    let w = World::signed_in();
    let engine = w.page_engine();
    let file = approved_cancel(&engine);
    w.settings(json!({ "layout": "changed" }));

    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs[0].state, StepState::Failed, "{runs:?}");
    let error = runs[0].error.as_deref().unwrap();
    assert!(error.contains("does not match") && error.contains("form#cancel-form is missing"), "{error}");
    assert_eq!(w.order()["status"], "pending", "nothing was submitted");
    let done = finished(&engine, &file.case.id, "s2");
    assert_eq!(done["outcome"], "failed");
    assert_eq!(done["response"]["evidence"]["submitted"], false);
    assert!(!blobs_named(&engine, &done["response"]["evidence"]).is_empty(), "the changed page is in the evidence");
}

/// The real browser connector, with a pause set from another seat at the moment the
/// connector asks whether it may submit (after the form is filled).
#[derive(Debug)]
struct PauseAtSubmit {
    inner: BrowserConnector,
    data: PathBuf,
}

struct SetPauseThen<'a> {
    data: &'a Path,
    gate: &'a dyn SubmitGate,
}

impl SubmitGate for SetPauseThen<'_> {
    fn may_submit(&self) -> Result<(), String> {
        let other = Engine::open(
            EngineOptions {
                workspace: assets().join("demo/workspace-snapshot.toml"),
                data_dir: self.data.to_path_buf(),
                operator: None,
                connector: None,
            },
            Arc::new(SystemClock),
        )
        .unwrap();
        other.pause_set(PauseScope::Action, "cancel_pending_order", "incident, set from another seat").unwrap();
        self.gate.may_submit()
    }
}

impl Connector for PauseAtSubmit {
    fn order_facts(&self, id: &str) -> Result<Option<countersign_core::decide::OrderFacts>, ConnectorError> {
        self.inner.order_facts(id)
    }
    fn call(&self, a: &str, p: &Map<String, Value>, k: Option<&str>) -> Result<CallRecord, ConnectorError> {
        self.inner.call(a, p, k)
    }
    fn call_gated(
        &self,
        a: &str,
        p: &Map<String, Value>,
        k: Option<&str>,
        gate: &dyn SubmitGate,
    ) -> Result<CallRecord, ConnectorError> {
        self.inner.call_gated(a, p, k, &SetPauseThen { data: &self.data, gate })
    }
    fn describe_call(
        &self,
        a: &str,
        p: &Map<String, Value>,
        k: Option<&str>,
    ) -> Result<countersign_connectors::RecordedRequest, ConnectorError> {
        self.inner.describe_call(a, p, k)
    }
    fn read_state(&self, a: &str, p: &Map<String, Value>) -> Result<Option<Value>, ConnectorError> {
        self.inner.read_state(a, p)
    }
    fn check_expectation(
        &self,
        a: &str,
        p: &Map<String, Value>,
        b: Option<&Value>,
        after: Option<&Value>,
    ) -> Result<(), countersign_connectors::ExpectationError> {
        self.inner.check_expectation(a, p, b, after)
    }
    fn attach_blobs(&self, sink: Arc<dyn BlobSink>) {
        self.inner.attach_blobs(sink);
    }
}

#[test]
fn a_pause_set_mid_flow_stops_the_step_before_the_submit_click() {
    let w = World::signed_in();
    let connector = PauseAtSubmit { inner: w.connector(), data: w.data.path().to_path_buf() };
    let engine = w.engine(Arc::new(connector));
    let file = approved_cancel(&engine);
    assert!(engine.pauses().unwrap().is_empty(), "no pause when the step starts");

    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs[0].state, StepState::Failed, "{runs:?}");
    assert_eq!(runs[0].code, Some(ErrorCode::Paused), "{runs:?}");
    assert!(runs[0].error.as_deref().unwrap().contains("stopped before submitting"), "{runs:?}");
    assert_eq!(w.order()["status"], "pending", "the form was never submitted");
    let done = finished(&engine, &file.case.id, "s2");
    let evidence = &done["response"]["evidence"];
    assert_eq!(evidence["submitted"], false);
    assert_eq!(evidence["filled"][0]["value"], "ordered by mistake", "it stopped after filling, before the click");
    let moments: Vec<&str> =
        evidence["pages"].as_array().unwrap().iter().map(|p| p["moment"].as_str().unwrap()).collect();
    assert_eq!(moments, ["opened", "before submit"], "{evidence}");
}

#[test]
fn a_refund_through_the_pages_moves_the_exact_amount() {
    let w = World::signed_in();
    let connector = w.connector();
    let mut params = Map::new();
    params.insert("order_id".into(), json!(ORDER));
    params.insert("amount".into(), json!("10.50 USD"));
    params.insert("reason".into(), json!("late"));
    // Pending orders cannot be refunded: the page refuses, with the store's own code.
    let err = connector.call("refund_partial", &params, None).unwrap_err();
    assert!(matches!(&err, ConnectorError::PageRefused { code, .. } if code == "order_not_delivered"), "{err}");
    assert_eq!(w.order()["totals"]["refunded"], "0.00");
    // The refusal keeps what was seen: the form as sent and the page that refused it.
    let evidence = err.evidence().expect("a refusal carries the pages seen");
    assert_eq!((&evidence["submitted"], &evidence["result"]), (&json!(true), &json!("refused")), "{evidence}");
    let pages = evidence["pages"].as_array().unwrap();
    let moments: Vec<&str> = pages.iter().map(|p| p["moment"].as_str().unwrap()).collect();
    assert_eq!(moments, ["opened", "before submit", "after submit"], "{evidence}");
    assert!(pages[2]["screenshot"]["sha256"].as_str().is_some_and(|h| h.len() == 64), "{evidence}");

    params.insert("amount".into(), json!(10.5));
    let err = connector.call("refund_partial", &params, None).unwrap_err();
    assert!(matches!(err, ConnectorError::InvalidParams { .. }), "money is never a number: {err}");

    // A delivered order: the exact decimal amount is filled in and refunded.
    params.insert("order_id".into(), json!("#W4817420"));
    params.insert("amount".into(), json!({ "amount": "10.50", "currency": "USD" }));
    let before = connector.read_state("refund_partial", &params).unwrap();
    let done = connector.call("refund_partial", &params, None).unwrap();
    assert_eq!(done.evidence.as_ref().unwrap()["filled"][0]["value"], "10.50");
    assert_eq!(w.order_of("#W4817420")["totals"]["refunded"], "10.50");
    let after = connector.read_state("refund_partial", &params).unwrap();
    connector.check_expectation("refund_partial", &params, before.as_ref(), after.as_ref()).unwrap();
    let unchanged = connector.check_expectation("refund_partial", &params, after.as_ref(), after.as_ref());
    assert!(unchanged.is_err(), "no increase is not a refund");
}

/// A write sent again with the same key (a retry after a submit whose answer never came)
/// is the same form token to the seller center: it answers the first result, and the
/// order is refunded once.
#[test]
fn a_refund_through_the_pages_sent_again_with_the_same_key_lands_once() {
    let w = World::signed_in();
    let connector = w.connector();
    let mut params = Map::new();
    params.insert("order_id".into(), json!("#W4817420"));
    params.insert("amount".into(), json!("10.50 USD"));
    params.insert("reason".into(), json!("late"));
    let field = "form#refund-form input[name=form_token]";
    let described = connector.describe_call("refund_partial", &params, Some("cs-retry-1")).unwrap();
    assert_eq!(described.body.unwrap()["idempotency"], json!({ "field": field, "key": "cs-retry-1" }));

    let first = connector.call("refund_partial", &params, Some("cs-retry-1")).unwrap();
    let evidence = first.evidence.as_ref().unwrap();
    assert_eq!(evidence["idempotency"], json!({ "field": field, "key": "cs-retry-1" }), "{evidence}");
    assert_eq!(w.order_of("#W4817420")["totals"]["refunded"], "10.50");
    let again = connector.call("refund_partial", &params, Some("cs-retry-1")).unwrap();
    assert_eq!(again.response["confirmed"], true, "the first result, answered again: {:?}", again.response);
    assert_eq!(w.order_of("#W4817420")["totals"]["refunded"], "10.50", "the same key lands once");

    // The same key for another change is refused by the seller center, nothing applied.
    params.insert("amount".into(), json!("5.00 USD"));
    let err = connector.call("refund_partial", &params, Some("cs-retry-1")).unwrap_err();
    assert!(matches!(&err, ConnectorError::PageRefused { code, .. } if code == "idempotency_key_reused"), "{err}");
    assert_eq!(w.order_of("#W4817420")["totals"]["refunded"], "10.50");
    // A new change has a new key; without one, the page's own one-time token is sent.
    connector.call("refund_partial", &params, Some("cs-retry-2")).unwrap();
    assert_eq!(w.order_of("#W4817420")["totals"]["refunded"], "15.50");
    let bare = connector.call("refund_partial", &params, None).unwrap();
    assert_eq!(bare.evidence.as_ref().unwrap()["idempotency"], json!({ "field": field, "key": null }));
    assert_eq!(w.order_of("#W4817420")["totals"]["refunded"], "20.50");

    // A platform whose form offers no such field: the action says none, and still works.
    let pages = PageActions::parse(
        "pages.toml",
        &std::fs::read_to_string(assets().join("demo/pages.toml"))
            .unwrap()
            .replace("idempotency_field = \"form#refund-form input[name=form_token]\"\n", ""),
    )
    .unwrap()
    .with_base_url(&w.server.url())
    .unwrap();
    drop(connector);
    let plain = BrowserConnector::new(pages, w.options()).unwrap();
    let done = plain.call("refund_partial", &params, Some("cs-retry-3")).unwrap();
    assert!(done.evidence.as_ref().unwrap().get("idempotency").is_none(), "no field, no key sent");
    assert_eq!(w.order_of("#W4817420")["totals"]["refunded"], "25.50");
}

/// The demo cancel case, for another pending order of another customer.
fn cancel_case_for(order: &str, customer: &str, id: &str) -> CaseFile {
    let text = std::fs::read_to_string(assets().join("demo/cases/01-cancel-pending.json"))
        .unwrap()
        .replace("demo-01", id)
        .replace(ORDER, order)
        .replace("sofia_rossi_8776", customer);
    serde_json::from_str(&text).unwrap()
}

fn dialogs_of(evidence: &Value) -> Vec<(String, String, String)> {
    evidence["dialogs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["answer"], "dismissed", "a dialog is never accepted: {d}");
            let s = |k: &str| d[k].as_str().unwrap().to_owned();
            (s("type"), s("message"), s("moment"))
        })
        .collect()
}

#[test]
fn a_javascript_dialog_while_the_form_opens_or_fills_fails_the_step_before_submitting() {
    let w = World::signed_in();
    let connector: Arc<dyn Connector> = Arc::new(w.connector());
    let engine = w.engine(connector.clone());
    let file = approved_cancel(&engine);
    w.settings(json!({ "dialog": "alert", "dialog_on": "open" }));

    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs[0].state, StepState::Failed, "{runs:?}");
    let error = runs[0].error.as_deref().unwrap();
    assert!(
        error.contains("does not match")
            && error.contains("JavaScript alert dialog \"Heads up: changes made here are final.\" (dismissed)"),
        "the failure names the dialog and its text: {error}"
    );
    assert_eq!(w.order()["status"], "pending", "nothing was submitted");
    let done = finished(&engine, &file.case.id, "s2");
    assert_eq!(done["outcome"], "failed");
    let evidence = &done["response"]["evidence"];
    assert_eq!(evidence["submitted"], false);
    assert_eq!(
        dialogs_of(evidence),
        [("alert".into(), "Heads up: changes made here are final.".into(), "opening the page".into())]
    );
    assert!(blobs_named(&engine, evidence).iter().any(|b| b.media_type == "image/png"), "the page is in the evidence");

    // A prompt opened by the form's own change handler, while the connector fills it.
    w.settings(json!({ "dialog": "prompt", "dialog_on": "fill" }));
    let params = json!({ "order_id": ORDER, "reason": "ordered by mistake" }).as_object().unwrap().clone();
    let err = connector.call("cancel_pending_order", &params, None).unwrap_err();
    let ConnectorError::PageMismatch { mismatch, evidence } = &err else { panic!("{err}") };
    assert!(
        mismatch.contains("while the form was filled")
            && mismatch.contains("JavaScript prompt dialog \"Type CONFIRM to go ahead.\""),
        "{mismatch}"
    );
    assert_eq!(evidence["submitted"], false, "{evidence}");
    assert_eq!(dialogs_of(evidence)[0].2, "filling");
    assert_eq!(w.order()["status"], "pending", "nothing was submitted");

    // The next call on a page without a dialog goes through: nothing stale is left over.
    w.settings(json!({ "dialog": "none" }));
    let read = connector.call("get_order_details", &json!({ "order_id": ORDER }).as_object().unwrap().clone(), None);
    assert_eq!(read.unwrap().response["status"], "pending");
    assert!(engine.log_verify().unwrap().ok);
}

#[test]
fn a_javascript_dialog_after_the_submit_click_is_settled_by_the_after_state_never_a_silent_success() {
    let w = World::signed_in();
    let engine = w.page_engine();

    // A confirm in the form's submit handler, dismissed: the form does not go; the step
    // fails, naming the dialog, as the after-state shows.
    let file = approved_cancel(&engine);
    w.settings(json!({ "dialog": "confirm", "dialog_on": "submit" }));
    let runs = engine.run_approved(&file.case.id).unwrap();
    assert_eq!(runs[0].state, StepState::Failed, "{runs:?}");
    let error = runs[0].error.as_deref().unwrap();
    assert!(
        error.contains("after the submit click")
            && error.contains("JavaScript confirm dialog \"Are you sure? This cannot be undone.\" (dismissed)")
            && error.contains("the after-state shows it was not applied"),
        "{error}"
    );
    assert_eq!(w.order()["status"], "pending", "a dismissed confirm let nothing through");
    let done = finished(&engine, &file.case.id, "s2");
    assert_eq!(done["outcome"], "failed");
    assert_eq!(done["after"]["status"], "pending", "the outcome comes from the state read after");
    let evidence = &done["response"]["evidence"];
    assert_eq!(evidence["submitted"], true, "the submit control was clicked, once");
    assert_eq!(dialogs_of(evidence)[0].0, "confirm");
    assert_eq!(dialogs_of(evidence)[0].2, "after submit");
    let moments: Vec<&str> =
        evidence["pages"].as_array().unwrap().iter().map(|p| p["moment"].as_str().unwrap()).collect();
    assert_eq!(moments, ["opened", "before submit", "after submit"], "the pages around the click stay: {evidence}");
    assert_eq!(blobs_named(&engine, evidence).iter().filter(|b| b.media_type == "image/png").count(), 2);

    // An alert in the submit handler, after which the form goes: the change was applied,
    // and the step says so with the dialog named, not as a plain success.
    let other = cancel_case_for("#W1006327", "james_johnson_9321", "demo-01-alert");
    process_verified(&engine, &other);
    engine.run_approved(&other.case.id).unwrap();
    engine.review(&other.plan.id, "s2", Verdict::Approved, "ok").unwrap();
    w.settings(json!({ "dialog": "alert", "dialog_on": "submit" }));
    let runs = engine.run_approved(&other.case.id).unwrap();
    assert_eq!(runs[0].state, StepState::Succeeded, "{runs:?}");
    let note = runs[0].error.as_deref().unwrap_or_default();
    assert!(
        note.contains("JavaScript alert dialog") && note.contains("the after-state shows the change was applied"),
        "a success after a dialog carries the dialog: {note:?}"
    );
    assert_eq!(w.order_of("#W1006327")["status"], "cancelled");
    let done = finished(&engine, &other.case.id, "s2");
    assert_eq!(done["outcome"], "succeeded");
    assert_eq!(done["error"], note);
    assert_eq!(dialogs_of(&done["response"]["evidence"])[0].0, "alert");
    assert!(engine.log_verify().unwrap().ok);
}

// ---------------------------------------------------------------- configuration (no browser)

#[test]
fn the_demo_page_actions_parse_and_name_policy_actions_of_the_same_kind() {
    let pages = PageActions::load(&assets().join("demo/pages.toml")).unwrap();
    let text = std::fs::read_to_string(assets().join("demo/policy.toml")).unwrap();
    let policy = countersign_core::Policy::parse("policy.toml", &text).unwrap();
    for (name, action) in &pages.actions {
        let def = policy.actions.get(name).unwrap_or_else(|| panic!("{name} is not a policy action"));
        assert_eq!(def.kind, action.kind, "{name}");
    }
}

#[test]
fn page_action_errors_point_at_file_line_and_column() {
    let good = std::fs::read_to_string(assets().join("demo/pages.toml")).unwrap();
    for (edit, says, line) in [
        (good.replace("timeout_ms = 15000", "timeout_ms = 15000\ncolour = \"red\""), "unknown field `colour`", 15),
        (good.replace("value = \"{reason}\"", "value = \"{reson}\""), "no parameter \"reson\"", 0),
        (good.replace("base_url = \"http://127.0.0.1:8787\"", "base_url = \"http://example.com\""), "loopback", 11),
        (good.replace("submit = \"button#cancel-submit\"\n", ""), "needs `submit`", 0),
        (
            good.replace("read.address = {", "idempotency_field = \"input[name=form_token]\"\nread.address = {"),
            "a read only opens a page",
            0,
        ),
        (
            good.replace("form#cancel-form input[name=form_token]", "select#cancel-reason"),
            "neither filled nor clicked",
            0,
        ),
        (
            good.replace("{ field = \"status\", equals = \"cancelled\" }", "{ field = \"colour\", equals = \"x\" }"),
            "no field \"colour\"",
            0,
        ),
    ] {
        let err = PageActions::parse("pages.toml", &edit).unwrap_err().to_string();
        assert!(err.starts_with("pages.toml:") && err.contains(says), "{says}: {err}");
        if line > 0 {
            assert!(err.starts_with(&format!("pages.toml:{line}:")), "{err}");
        }
    }
}

// ------------------------------------------------------------------ buyer messages on the pages

fn message_pages(connector: &Arc<BrowserConnector>) -> DemoMessagePages {
    DemoMessagePages::new("seller-pages", connector.clone())
}

#[test]
fn the_message_pages_list_read_and_post_a_reply_once_per_idempotency_key() {
    let w = World::signed_in();
    let connector = Arc::new(w.connector());
    let source = message_pages(&connector);
    assert!(source.capabilities().reply_idempotency, "a repeated form token is replayed");

    // The whole inbox, oldest change first, with the API's own cursor.
    let api = w.api("/conversations?limit=200");
    assert_eq!(api["has_more"], false);
    let all = source.changes(None).unwrap();
    assert!(!all.more);
    let ids = |v: &Value| -> Vec<String> {
        v["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(all.conversations.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), ids(&api));
    assert_eq!(all.cursor.0, api["next_cursor"].as_str().unwrap(), "the cursor means what the API's does");
    assert!(source.changes(Some(&all.cursor)).unwrap().conversations.is_empty(), "nothing new since");

    // A buyer writes: that conversation, and only it, is listed from the cursor.
    let wrote = w.buyer_writes("harper_kim_2998", "#W2959713", "Where is it?\nStill nothing.", "pages-buyer-1");
    let id = wrote["conversation"]["id"].as_str().unwrap().to_owned();
    let since = source.changes(Some(&all.cursor)).unwrap();
    assert_eq!(since.conversations.len(), 1, "{since:?}");
    let c = &since.conversations[0];
    assert_eq!(
        (c.id.as_str(), c.state, c.customer.user_id.as_str()),
        (id.as_str(), ConversationState::Open, "harper_kim_2998")
    );
    assert!(c.customer.authenticated);
    assert_eq!(c.order_ids, vec!["#W2959713".to_owned()]);
    assert_eq!(since.cursor.0, w.api(&format!("/conversations?since={}", all.cursor.0))["next_cursor"]);

    // The thread as the API has it, message for message.
    let thread = source.thread(&id).unwrap();
    let api_thread = w.api(&format!("/conversations/{id}"));
    let api_messages = api_thread["messages"].as_array().unwrap();
    assert_eq!(thread.messages.len(), api_messages.len());
    for (m, a) in thread.messages.iter().zip(api_messages) {
        assert_eq!(
            (m.id.as_str(), m.text.as_str(), m.at.as_str()),
            (a["id"].as_str().unwrap(), a["text"].as_str().unwrap(), a["created_at"].as_str().unwrap())
        );
    }
    assert_eq!(thread.messages.last().unwrap().text, "Where is it?\nStill nothing.", "text exactly as written");
    assert_eq!(thread.conversation.updated_at, api_thread["updated_at"].as_str().unwrap());

    // A reply with a key; the same post again (a retry after an uncertain submit) is
    // answered with the first message and posts nothing more.
    let reply = Post {
        visibility: Visibility::Public,
        text: "It left the warehouse today.\nTracking follows.",
        author: "agent-demo",
    };
    let count = api_messages.len();
    let first = source.post(&id, reply, "countersign-reply-k1").unwrap();
    let after = w.api(&format!("/conversations/{id}"));
    let replies: Vec<&Value> =
        after["messages"].as_array().unwrap().iter().filter(|m| m["author"] == "seller").collect();
    assert_eq!(after["messages"].as_array().unwrap().len(), count + 1, "posted once");
    let last = replies.last().unwrap();
    assert_eq!(last["id"].as_str(), Some(first.message_id.as_str()), "the adapter returns the store's message id");
    assert_eq!(
        (last["kind"].as_str(), last["text"].as_str()),
        (Some("message"), Some(reply.text)),
        "a public reply, line breaks kept"
    );
    let again = source.post(&id, reply, "countersign-reply-k1").unwrap();
    assert_eq!(again, first, "the same key is answered with the first post");
    assert_eq!(w.api(&format!("/conversations/{id}"))["messages"].as_array().unwrap().len(), count + 1, "still once");

    // The same key with other text is refused, never posted.
    let other = Post { text: "Something else", ..reply };
    let err = source.post(&id, other, "countersign-reply-k1").unwrap_err();
    let ConnectorError::PageRefused { code, .. } = &err else { panic!("{err}") };
    assert_eq!(code, "idempotency_key_reused");

    // A note, then state and assignee through the status form.
    let note = Post { visibility: Visibility::Internal, text: "Carrier says Friday.", author: "agent-demo" };
    let noted = source.post(&id, note, "countersign-note-k1").unwrap();
    let thread = source.thread(&id).unwrap();
    let seen = thread.messages.iter().find(|m| m.id == noted.message_id).unwrap();
    assert_eq!(seen.visibility, Visibility::Internal);
    assert_eq!(thread.messages.iter().filter(|m| m.id == first.message_id).count(), 1);
    let assigned = source.assign(&id, Some("agent-7")).unwrap();
    assert_eq!((assigned.assignee.as_deref(), assigned.state), (Some("agent-7"), ConversationState::Waiting));
    let resolved = source.set_state(&id, ConversationState::Resolved).unwrap();
    assert_eq!((resolved.assignee.as_deref(), resolved.state), (Some("agent-7"), ConversationState::Resolved));
    let api_now = w.api(&format!("/conversations/{id}"));
    assert_eq!((api_now["status"].as_str(), api_now["assignee"].as_str()), (Some("resolved"), Some("agent-7")));
    let released = source.assign(&id, None).unwrap();
    assert_eq!(released.assignee, None);

    let err = source.thread("C-9999").unwrap_err();
    assert!(matches!(err, ConnectorError::Rejected { status: 404, .. }), "{err}");
    let err = source.changes(Some(&Cursor("soon".into()))).unwrap_err();
    assert!(matches!(err, ConnectorError::InvalidParams { .. }), "{err}");
}

#[test]
fn a_signed_out_profile_makes_the_message_pages_need_a_human_and_posts_nothing() {
    let w = World::start();
    let connector = Arc::new(w.connector());
    let source = message_pages(&connector);
    let err = source.changes(None).unwrap_err();
    let ConnectorError::NeedsHuman { reason, evidence } = &err else { panic!("{err}") };
    assert!(reason.contains("session has ended"), "{reason}");
    let pages = evidence["pages"].as_array().unwrap();
    assert!(pages.iter().any(|p| p["url"].as_str().unwrap().contains("/seller/login")), "{evidence}");
    assert!(pages.iter().any(|p| p["screenshot"]["sha256"].is_string()), "a screenshot for the agent: {evidence}");

    let before = w.api("/conversations/C-0015")["messages"].as_array().unwrap().len();
    let reply = Post { visibility: Visibility::Public, text: "Hello", author: "agent-demo" };
    let err = source.post("C-0015", reply, "countersign-signed-out").unwrap_err();
    assert!(matches!(err, ConnectorError::NeedsHuman { .. }), "{err}");
    assert_eq!(w.api("/conversations/C-0015")["messages"].as_array().unwrap().len(), before, "nothing posted");

    // A verification page is a person's too, never a guess. (The agent signs in with the
    // app's browser closed: a profile is open in one browser at a time.)
    drop((source, connector));
    w.sign_in_by_hand();
    w.settings(json!({ "verify_all": true }));
    let source = message_pages(&Arc::new(w.connector()));
    let err = source.thread("C-0015").unwrap_err();
    let ConnectorError::NeedsHuman { reason, .. } = &err else { panic!("{err}") };
    assert!(reason.contains("verify"), "{reason}");
}

#[test]
fn a_submit_answered_too_late_keeps_its_evidence_and_settles_once() {
    let w = World::signed_in();
    // A connector as impatient as a busy agent: 4 s for a page action.
    let text = std::fs::read_to_string(assets().join("demo/pages.toml")).unwrap();
    assert!(text.contains("timeout_ms = 15000"), "the demo pages' timeout changed: update this test");
    let pages = PageActions::parse("pages.toml", &text.replace("timeout_ms = 15000", "timeout_ms = 4000"))
        .unwrap()
        .with_base_url(&w.server.url())
        .unwrap();
    let engine = w.engine(Arc::new(BrowserConnector::new(pages, w.options()).unwrap()));
    let (order, customer) = demo::seed_orders("delivered").into_iter().next().unwrap();
    let file: CaseFile = serde_json::from_value(json!({
        "case": {"id": "slow-refund", "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
                 "channel": "chat", "customer": {"id": customer, "identity": "verified"},
                 "messages": [{"from": "customer", "text": "It arrived scratched.", "at": "2026-11-20T15:10:00Z"}],
                 "order_ids": [order]},
        "plan": {"id": "slow-refund-p", "case_id": "slow-refund", "planner": "scripted", "intent": "refund",
                 "steps": [{"id": "s1", "action": "refund_partial", "params": {
                     "order_id": {"value": order, "source": "connector"},
                     "amount": {"value": {"amount": "7.25", "currency": "USD"}, "source": "agent"},
                     "reason": {"value": "scratched", "source": "agent"}}}]},
    }))
    .unwrap();
    process_verified(&engine, &file);
    let before = w.order_of(&order)["totals"]["refunded"].as_str().unwrap().to_owned();
    // The seller center applies the next submit and answers it only after 8 s.
    w.settings(json!({ "slow_submits": 1, "slow_ms": 8000 }));

    let runs = engine.run_approved("slow-refund").unwrap();
    assert_eq!(runs[0].state, StepState::Succeeded, "settled: {runs:?}");
    let after = w.order_of(&order)["totals"]["refunded"].as_str().unwrap().to_owned();
    let grew: rust_decimal::Decimal =
        after.parse::<rust_decimal::Decimal>().unwrap() - before.parse::<rust_decimal::Decimal>().unwrap();
    assert_eq!(grew.to_string(), "7.25", "refunded once, not twice");

    let finished: Vec<Value> = engine
        .log_case("slow-refund")
        .unwrap()
        .into_iter()
        .filter(|e| e.kind() == "step_finished")
        .map(|e| e.event.payload())
        .collect();
    let lost = &finished[0];
    assert_eq!(lost["outcome"], "unknown", "{lost}");
    assert_eq!(lost["response"]["request_sent"], "yes", "the submit had been clicked: {lost}");
    let evidence = &lost["response"]["evidence"];
    assert_eq!(evidence["submitted"], true, "{evidence}");
    let moment = evidence["pages"].as_array().unwrap().iter().find(|p| p["moment"] == "timed out");
    let moment = moment.unwrap_or_else(|| panic!("the page at the timeout is evidence: {evidence}"));
    assert!(moment["url"].as_str().is_some_and(|u| u.contains("/seller/")), "{moment}");
    assert_eq!(moment["screenshot"]["stored"], true, "a screenshot of it: {moment}");
    // It landed: the order read back shows it, and nothing is sent again (where it had
    // not, the same form token would go out: `a_refund_through_the_pages_sent_again_…`).
    assert_eq!(finished[1]["response"]["how"], "read", "{:?}", finished[1]);
}

// ---------------------------------------------------------------- a browser left on the profile

/// A process the test started, killed when the test ends (passed or not).
struct Started(std::process::Child);

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Chromium on `profile` that no Countersign process owns, as a crash leaves one (the
/// test starts it; nothing ties it to the test), once it holds the profile's lock.
fn chromium_on(profile: &Path) -> Started {
    let exe = countersign_browser::find_chromium(None).unwrap();
    let mut child = std::process::Command::new(exe)
        .args(["--headless", "--no-sandbox", "--no-first-run", "--disable-background-networking"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--remote-debugging-port=0", "about:blank"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    while lock_of(profile).is_none_or(|(_, holder)| holder != pid) {
        assert!(child.try_wait().unwrap().is_none(), "the browser on {} started", profile.display());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Started(child)
}

/// The profile's `SingletonLock` as Chromium writes it: `(host, pid)`.
fn lock_of(profile: &Path) -> Option<(String, String)> {
    let target = std::fs::read_link(profile.join("SingletonLock")).ok()?;
    let (host, pid) = target.to_str()?.rsplit_once('-')?;
    Some((host.to_owned(), pid.to_owned()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned()
}

/// A lock that names `pid` on `host` (what a browser on that host would have left).
fn lock_profile(profile: &Path, host: &str, pid: u32) {
    let _ = std::fs::remove_file(profile.join("SingletonLock"));
    std::os::unix::fs::symlink(format!("{host}-{pid}"), profile.join("SingletonLock")).unwrap();
}

fn refused(connector: &BrowserConnector) -> String {
    match connector.start() {
        Err(ConnectorError::Config { detail }) => detail,
        other => panic!("the start is refused with a configuration error, not {other:?}"),
    }
}

#[test]
fn a_browser_left_on_the_profile_is_closed_at_start_and_a_lock_held_by_anything_else_is_refused() {
    let w = World::start();
    w.sign_in_by_hand();
    let profile = w.options().profile_dir(&w.pages().profile);
    let shown = profile.display().to_string();

    // A Chromium on this very profile whose starter is gone: closed, and the connector
    // starts in the same signed-in session.
    let Started(leftover) = &mut chromium_on(&profile);
    let connector = w.connector();
    connector.start().unwrap_or_else(|e| panic!("the start closes the browser left on the profile: {e}"));
    assert!(leftover.try_wait().unwrap().is_some(), "the leftover browser was closed before the start returned");
    let (_, holder) = lock_of(&profile).unwrap();
    assert_ne!(holder, leftover.id().to_string(), "the profile is held by the connector's own browser now");
    assert!(connector.order_facts(ORDER).unwrap().is_some(), "the agent's session is still signed in");

    // While that connector's browser runs, it belongs to a live process: a second
    // connector on the profile (another window, or the CLI beside the app) is refused and
    // closes nothing.
    let second = w.connector();
    let detail = refused(&second);
    assert!(detail.contains(&shown) && detail.contains(&holder), "names the profile and the browser: {detail}");
    assert!(detail.contains("still running"), "says its owner runs: {detail}");
    assert!(connector.order_facts(ORDER).unwrap().is_some(), "the first connector's browser was left alone");
    drop(second);
    drop(connector);

    // A live process that is not a Chromium: refused, named, left alone.
    let Started(other) = &mut Started(std::process::Command::new("sleep").arg("600").spawn().unwrap());
    lock_profile(&profile, &hostname(), other.id());
    let detail = refused(&w.connector());
    assert!(
        detail.contains(&shown) && detail.contains(&format!("process {}", other.id())) && detail.contains("sleep"),
        "names the profile and the process: {detail}"
    );
    assert!(detail.contains("not a Chromium on this profile"), "{detail}");
    assert!(other.try_wait().unwrap().is_none(), "a process that is not ours is never killed");

    // A Chromium, but on another profile: not ours to close either.
    let elsewhere = tempfile::tempdir().unwrap();
    let Started(foreign) = &mut chromium_on(elsewhere.path());
    lock_profile(&profile, &hostname(), foreign.id());
    let detail = refused(&w.connector());
    assert!(detail.contains(&format!("process {}", foreign.id())), "{detail}");
    assert!(detail.contains("not a Chromium on this profile"), "{detail}");
    assert!(foreign.try_wait().unwrap().is_none(), "another profile's browser is left alone");

    // A lock from another computer (a profile on a shared folder): refused, the host named.
    lock_profile(&profile, "another-host.example", other.id());
    let detail = refused(&w.connector());
    assert!(detail.contains("another computer") && detail.contains("another-host.example"), "{detail}");
    assert!(other.try_wait().unwrap().is_none(), "a process named from another host is never touched");

    // Once that process is gone, its lock is stale and Chromium takes the profile over.
    other.kill().unwrap();
    other.wait().unwrap();
    lock_profile(&profile, &hostname(), other.id());
    let connector = w.connector();
    assert!(connector.order_facts(ORDER).unwrap().is_some(), "a stale lock does not stop the start");
}
