//! Connectors against real parts: the snapshot connector over the shipped demo
//! data, credentials in the real OS keyring (Secret Service; in CI a gnome-keyring
//! inside `dbus-run-session`, see scripts/test.sh), and the HTTP connector driven by
//! the shipped catalog against the real demo store (its own SQLite file per test) and
//! against a small server that misbehaves on purpose.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use countersign_test_support::demo::DemoServer;
use countersign_test_support::loopback::read_request;

use countersign_connectors::catalog::{Catalog, CatalogError};
use countersign_connectors::credentials::{CredentialError, CredentialName, CredentialStore, KeyringStore, Secret};
use countersign_connectors::snapshot::SnapshotConnector;
use countersign_connectors::{CallRecord, Connector, ConnectorError, ExpectationError, HttpConnector, Sent};
use serde_json::{Map, Value, json};

#[test]
fn snapshot_reads_orders_exactly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/demo-store");
    let c = SnapshotConnector::load(&dir).unwrap();
    assert_eq!(c.len(), 1000);
    let o = c.order_facts("#W2611340").unwrap().unwrap();
    assert_eq!(o.customer_id, "james_li_5688");
    assert_eq!(o.status, "processed");
    assert_eq!(o.paid.to_string(), "536.65", "amounts are read exactly from the JSON text");
    assert!(c.order_facts("#W0").unwrap().is_none());
}

#[test]
fn snapshot_reports_malformed_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.json"), "{\"#W1\": {\"order_id\": 5}}").unwrap();
    let err = SnapshotConnector::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("orders.json") && err.contains("malformed"), "{err}");
    let missing = SnapshotConnector::load(&dir.path().join("nope")).unwrap_err().to_string();
    assert!(missing.contains("nope/orders.json"), "{missing}");
}

#[test]
fn keyring_set_get_list_delete() {
    let store = KeyringStore::new(format!("countersign-test-{}", std::process::id()));
    let name = CredentialName::new("demo_seller_center", "acme-us").unwrap();
    let other = CredentialName::new("tiktok_shop", "acme-us").unwrap();

    match store.get(&name) {
        Err(CredentialError::Missing { .. }) => {}
        other => panic!("a credential never set must be CredentialMissing, got {other:?}"),
    }
    store.set(&name, &Secret::new("tok-planted-7f3a")).unwrap();
    store.set(&other, &Secret::new("tok-other")).unwrap();
    assert_eq!(store.get(&name).unwrap().expose(), "tok-planted-7f3a", "read back from the OS keyring");
    assert_eq!(store.list().unwrap(), vec![name.clone(), other.clone()], "list shows names");

    store.set(&name, &Secret::new("tok-rotated")).unwrap();
    assert_eq!(store.get(&name).unwrap().expose(), "tok-rotated", "setting again replaces the value");

    store.delete(&name).unwrap();
    store.delete(&other).unwrap();
    assert!(matches!(store.get(&name), Err(CredentialError::Missing { .. })));
    assert!(matches!(store.delete(&name), Err(CredentialError::Missing { .. })), "deleting twice is an error");
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(store.set(&name, &Secret::new("  ")), Err(CredentialError::EmptyValue)));
    assert!(CredentialName::new("demo", "acme us").is_err(), "names are checked");
}

// ====================================================================== helpers

fn demo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/demo").join(name)
}

fn params(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("params must be an object, got {other}"),
    }
}

/// The credential the shipped catalog names.
fn demo_credential() -> CredentialName {
    CredentialName::new("demo_seller_center", "demo").unwrap()
}

fn token() -> String {
    format!("tok-planted-{}-7f3a9c", std::process::id())
}

/// A keyring namespace of its own per test (tests run in parallel and the keyring's
/// name index is read-modify-write), emptied again when the test ends.
struct TestKeyring {
    store: Arc<KeyringStore>,
}

impl TestKeyring {
    fn new(test: &str, value: Option<&str>) -> TestKeyring {
        let store = Arc::new(KeyringStore::new(format!("countersign-test-{}-{test}", std::process::id())));
        if let Some(v) = value {
            store.set(&demo_credential(), &Secret::new(v)).unwrap();
        }
        TestKeyring { store }
    }

    fn set(&self, value: &str) {
        self.store.set(&demo_credential(), &Secret::new(value)).unwrap();
    }
}

impl Drop for TestKeyring {
    fn drop(&mut self) {
        let _ = self.store.delete(&demo_credential());
    }
}

/// The shipped catalog, pointed at `url`, with credentials from `keyring`.
fn demo_connector(url: &str, keyring: &TestKeyring) -> HttpConnector {
    let catalog = Catalog::load(&demo_file("catalog.toml")).unwrap();
    HttpConnector::new(catalog, keyring.store.clone()).unwrap().with_base_url(url).unwrap()
}

/// The demo seller center under a planted token, and a connector to it with the token in
/// a keyring namespace of the test's own. Keep the keyring and the server while testing.
fn on_demo(test: &str) -> (String, TestKeyring, DemoServer, HttpConnector) {
    let token = token();
    let keyring = TestKeyring::new(test, Some(&token));
    let server = DemoServer::start(&token);
    let c = demo_connector(&server.url(), &keyring);
    (token, keyring, server, c)
}

/// A call record goes into evidence: the token must not be in it, in any form.
fn assert_no_token(record: &CallRecord, token: &str) {
    let debug = format!("{record:?}");
    let json = serde_json::to_string(record).unwrap();
    assert!(!debug.contains(token), "the token leaked into a CallRecord's Debug: {debug}");
    assert!(!json.contains(token), "the token leaked into a CallRecord's JSON: {json}");
    assert_eq!(record.request.headers.get("authorization").map(String::as_str), Some("[redacted]"));
}

fn assert_error_has_no_token(e: &ConnectorError, token: &str) {
    assert!(!format!("{e:?} {e}").contains(token), "the token leaked into an error: {e:?}");
}

// ============================================================ catalog and policy

#[test]
fn shipped_catalog_covers_every_action_of_the_demo_policy() {
    let source = std::fs::read_to_string(demo_file("policy.toml")).unwrap();
    let policy = countersign_core::Policy::parse("policy.toml", &source).unwrap();
    let catalog = Catalog::load(&demo_file("catalog.toml")).unwrap();
    let coverage = catalog.check_against(&policy);
    assert!(coverage.missing.is_empty(), "policy actions with no catalog entry: {:?}", coverage.missing);
    assert!(coverage.unknown.is_empty(), "catalog entries the policy does not name: {:?}", coverage.unknown);
    assert!(coverage.mismatches.is_empty(), "catalog and policy disagree: {:?}", coverage.mismatches);
    assert_eq!(coverage.advice_only, vec!["suggest_replacement_product"], "advice is never executed");
    assert!(coverage.is_complete());

    // And the check notices drift both ways.
    let renamed = source.replace("[actions.list_product_types]", "[actions.list_product_families]");
    let drifted = countersign_core::Policy::parse("policy.toml", &renamed).unwrap();
    let coverage = catalog.check_against(&drifted);
    assert_eq!(coverage.missing, vec!["list_product_families"]);
    assert_eq!(coverage.unknown, vec!["list_product_types"]);
    assert!(!coverage.is_complete());
}

const MINIMAL: &str = r#"[platform]
name = "flaky"
base_url = "http://127.0.0.1:9"
credential = "demo_seller_center/demo"

[actions.get_thing]
kind = "read"
method = "GET"
path = "/things/{id}"
params.id = { in = "path" }
schema = { type = "object", required = ["id"], properties = { id = { type = "string" } } }
"#;

#[test]
fn catalog_errors_point_at_file_line_column() {
    assert!(Catalog::parse("ok.toml", MINIMAL).is_ok(), "the base of the cases below is valid");
    let cases: &[(&str, &str, &str)] = &[
        // (replace this, with this, expect "line:column: ...fragment")
        ("kind = \"read\"", "kind = \"read\"\nverb = \"GET\"", "8:1: unknown field `verb`"),
        (
            "path = \"/things/{id}\"",
            "path = \"/things/{id}/{thing_id}\"",
            "9:22: placeholder {thing_id} names no parameter",
        ),
        ("path = \"/things/{id}\"", "path = \"/things/{id\"", "9:17: unclosed '{'"),
        ("params.id = { in = \"path\" }", "params.id = { in = \"header\" }", "10:20: unknown variant `header`"),
        ("{ type = \"string\" }", "{ type = \"strung\" }", "11:10: invalid JSON Schema"),
        (
            "properties = { id = { type = \"string\" } }",
            "properties = { }",
            "10:13: parameter id is not in the schema's `properties`",
        ),
        (
            "{ id = { type = \"string\" } }",
            "{ id = { type = \"string\" }, colour = { type = \"string\" } }",
            "11:10: the schema declares \"colour\" but `params` does not say where it goes",
        ),
        ("required = [\"id\"], ", "", "11:10: path parameter id must be listed in the schema's `required`"),
        (
            "base_url = \"http://127.0.0.1:9\"",
            "base_url = \"http://example.com\"",
            "3:12: base_url \"http://example.com\": plain http is only allowed on loopback",
        ),
        (
            "credential = \"demo_seller_center/demo\"",
            "credential = \"demo\"",
            "4:14: credential must be PLATFORM/STORE",
        ),
        (
            "kind = \"read\"",
            "kind = \"write\"\nreversible = true\nidempotent = true",
            "10:10: get_thing: a write cannot be a GET",
        ),
        (
            "kind = \"read\"\nmethod = \"GET\"",
            "kind = \"write\"\nmethod = \"POST\"",
            "6:1: get_thing: a write must say whether it is `reversible` and `idempotent`",
        ),
        (
            "kind = \"read\"\nmethod = \"GET\"",
            "kind = \"write\"\nmethod = \"POST\"\nreversible = true\nidempotent = true",
            "6:1: write get_thing needs `state`",
        ),
    ];
    for (from, to, want) in cases {
        assert!(MINIMAL.contains(from), "test case base must contain {from:?}");
        let source = MINIMAL.replacen(from, to, 1);
        let err = Catalog::parse("bad.toml", &source).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CatalogError::Invalid { .. }));
        assert!(text.starts_with("bad.toml:"), "errors name the file: {text}");
        assert!(text.contains(want), "replacing {from:?} with {to:?}: expected {want:?} in {text:?}");
    }

    // Write-side checks: a state read that is not a read, an expectation on a parameter
    // that does not exist, and an expectation with two operators.
    let write = format!(
        "{MINIMAL}\n[actions.poke]\nkind = \"write\"\nmethod = \"POST\"\npath = \"/things/{{id}}/poke\"\nreversible = false\nidempotent = false\nparams.id = {{ in = \"path\" }}\nschema = {{ type = \"object\", required = [\"id\"], properties = {{ id = {{ type = \"string\" }} }} }}\nstate = {{ action = \"get_thing\", params = {{ id = \"id\" }} }}\nexpect = [{{ path = \"/poked\", equals = true }}]\n"
    );
    assert!(
        Catalog::parse("w.toml", &write).is_ok(),
        "the write base is valid: {:?}",
        Catalog::parse("w.toml", &write).err()
    );
    let bad: &[(&str, &str, &str)] = &[
        ("action = \"get_thing\"", "action = \"poke\"", "21:20: state action \"poke\" is not a read"),
        ("equals = true", "equals_param = \"nope\"", "22:45: poke has no parameter \"nope\""),
        ("equals = true", "equals = true, changed = true", "22:11: an expectation has a `path` and exactly one of"),
        ("path = \"/poked\"", "path = \"poked\"", "22:20: \"poked\" is not a JSON Pointer"),
    ];
    for (from, to, want) in bad {
        let source = write.replacen(from, to, 1);
        let text = Catalog::parse("w.toml", &source).unwrap_err().to_string();
        assert!(text.contains(want), "replacing {from:?} with {to:?}: expected {want:?} in {text:?}");
    }
    let missing = Catalog::load(Path::new("/nonexistent/catalog.toml")).unwrap_err().to_string();
    assert!(missing.contains("/nonexistent/catalog.toml"), "{missing}");
}

// ============================================================ the real demo store

#[test]
fn reads_return_the_platform_objects() {
    let (token, _keyring, _server, c) = on_demo("reads");

    let order = c.call("get_order_details", &params(json!({"order_id": "#W2611340"})), None).unwrap();
    assert_eq!(order.status, 200);
    assert_eq!(order.request.method, "GET");
    assert!(order.request.url.ends_with("/orders/%23W2611340"), "the '#' is percent-encoded: {}", order.request.url);
    assert_eq!(order.response["customer_id"], "james_li_5688");
    assert_eq!(order.response["totals"]["paid"], "536.65");
    assert_eq!(order.attempts, 1);

    let customer = c.call("get_customer_details", &params(json!({"customer_id": "james_li_5688"})), None).unwrap();
    assert_eq!(customer.response["email"], "james.li4495@example.com");

    let by_email =
        c.call("find_customer_by_email", &params(json!({"email": "noah.brown7922@example.com"})), None).unwrap();
    assert_eq!(by_email.response["customer_id"], "noah_brown_6181");
    assert!(by_email.request.url.contains("?email=noah.brown7922%40example.com"), "{}", by_email.request.url);

    let by_name = c
        .call(
            "find_customer_by_name_zip",
            &params(json!({"first_name": "James", "last_name": "Li", "zip": "10083"})),
            None,
        )
        .unwrap();
    assert_eq!(by_name.response["customer_id"], "james_li_5688");

    let product = c.call("get_product_details", &params(json!({"product_id": "9523456873"})), None).unwrap();
    assert_eq!(product.response["name"], "T-Shirt");

    let products = c.call("list_product_types", &Map::new(), None).unwrap();
    assert_eq!(products.request.body, None, "a GET has no body");
    assert!(products.response.to_string().contains("T-Shirt"), "{}", products.response);

    let facts = c.order_facts("#W2611340").unwrap().unwrap();
    assert_eq!((facts.customer_id.as_str(), facts.status.as_str()), ("james_li_5688", "processed"));
    assert_eq!((facts.paid.to_string(), facts.refunded.to_string()), ("536.65".into(), "0.00".into()));
    assert_eq!(facts.currency.as_str(), "USD");
    assert!(c.order_facts("#W0000000").unwrap().is_none(), "an unknown order is None, not an error");
    assert!(c.order_facts("#W0").unwrap().is_none(), "an id no order can have is None");

    let missing = c.call("get_customer_details", &params(json!({"customer_id": "nobody_here_0000"})), None);
    assert!(
        matches!(&missing, Err(ConnectorError::Rejected { status: 404, code, .. }) if code == "customer_not_found"),
        "{missing:?}"
    );
    for r in [&order, &customer, &by_email, &by_name, &product, &products] {
        assert_no_token(r, &token);
    }
}

#[test]
fn cancelling_a_pending_order_changes_it_and_meets_the_expectation() {
    let (token, _keyring, _server, c) = on_demo("cancel");
    let p = params(json!({"order_id": "#W5918442", "reason": "ordered by mistake"}));

    let preview = c.describe_call("cancel_pending_order", &p, Some("step-cancel-1")).unwrap();
    let before = c.read_state("cancel_pending_order", &p).unwrap().unwrap();
    assert_eq!(before["status"], "pending");
    assert!(
        c.check_expectation("cancel_pending_order", &p, Some(&before), Some(&before)).is_err(),
        "an unchanged order must not pass for cancelled"
    );

    let record = c.call("cancel_pending_order", &p, Some("step-cancel-1")).unwrap();
    assert_eq!(record.request, preview, "describe_call shows exactly what call sends");
    assert_eq!(record.request.method, "POST");
    assert_eq!(record.request.body, Some(json!({"reason": "ordered by mistake"})));
    assert_eq!(record.request.headers.get("idempotency-key").map(String::as_str), Some("step-cancel-1"));
    assert_eq!(record.response["order"]["status"], "cancelled");
    assert_no_token(&record, &token);

    let after = c.read_state("cancel_pending_order", &p).unwrap().unwrap();
    assert_eq!(after["status"], "cancelled");
    c.check_expectation("cancel_pending_order", &p, Some(&before), Some(&after)).unwrap();

    let other_reason = params(json!({"order_id": "#W5918442", "reason": "no longer needed"}));
    let unmet = c.check_expectation("cancel_pending_order", &other_reason, Some(&before), Some(&after));
    assert!(matches!(unmet, Err(ExpectationError::Unmet { .. })), "the reason is checked too: {unmet:?}");
    assert!(matches!(
        c.check_expectation("get_order_details", &p, None, Some(&after)),
        Err(ExpectationError::NotAWrite { .. })
    ));
    assert!(matches!(
        c.check_expectation("cancel_pending_order", &p, Some(&before), None),
        Err(ExpectationError::MissingState { .. })
    ));
}

#[test]
fn every_write_of_the_catalog_meets_its_expectation_on_the_real_store() {
    let (token, _keyring, _server, c) = on_demo("writes");
    let address = json!({"address1": "1 Loop Road", "address2": "", "city": "Austin", "state": "TX", "country": "USA", "zip": "78701"});
    let cases = [
        ("cancel_pending_order", json!({"order_id": "#W2974929", "reason": "no longer needed"})),
        ("modify_pending_order_address", json!({"order_id": "#W2631563", "address": address})),
        (
            "modify_pending_order_items",
            json!({"order_id": "#W6779827", "item_ids": ["7896397433"], "new_item_ids": ["2444431651"], "payment_method_id": "credit_card_9789590"}),
        ),
        ("modify_pending_order_payment", json!({"order_id": "#W9583042", "payment_method_id": "credit_card_9503061"})),
        (
            "return_delivered_order_items",
            json!({"order_id": "#W6304490", "item_ids": ["6956751343"], "payment_method_id": "credit_card_4420174"}),
        ),
        (
            "exchange_delivered_order_items",
            json!({"order_id": "#W7303089", "item_ids": ["2492465580"], "new_item_ids": ["3928046918"], "payment_method_id": "credit_card_4387170"}),
        ),
        ("refund_partial", json!({"order_id": "#W4817420", "amount": "10.50 USD", "reason": "box arrived dented"})),
        (
            "modify_customer_address",
            json!({"customer_id": "james_li_5688", "address": {"address1": "5 Elm Street", "city": "Boulder", "state": "CO", "country": "USA", "zip": "80301"}}),
        ),
        (
            "create_goodwill_coupon",
            json!({"customer_id": "mia_moore_8366", "amount": {"amount": "15.00", "currency": "USD"}, "reason": "late delivery"}),
        ),
        ("change_account_email", json!({"customer_id": "noah_brown_6181", "new_email": "noah.b@example.org"})),
        ("send_password_reset", json!({"customer_id": "chen_silva_7485"})),
    ];
    let writes: Vec<&String> = c.catalog().actions.iter().filter(|(_, a)| a.state.is_some()).map(|(n, _)| n).collect();
    assert_eq!(writes.len(), cases.len(), "every write of the catalog has a case here");
    for (i, (action, p)) in cases.iter().enumerate() {
        let p = params(p.clone());
        let before = c.read_state(action, &p).unwrap().unwrap();
        let record =
            c.call(action, &p, Some(&format!("step-{i}-{action}"))).unwrap_or_else(|e| panic!("{action}: {e}"));
        assert!((200..300).contains(&record.status), "{action}: {record:?}");
        assert_no_token(&record, &token);
        let after = c.read_state(action, &p).unwrap().unwrap();
        c.check_expectation(action, &p, Some(&before), Some(&after))
            .unwrap_or_else(|e| panic!("{action}: the write happened but its expectation failed: {e}"));
    }
}

#[test]
fn the_same_idempotency_key_applies_a_write_once() {
    let (token, _keyring, _server, c) = on_demo("idem");
    let p =
        params(json!({"order_id": "#W9077205", "amount": {"amount": "12.34", "currency": "USD"}, "reason": "dented"}));

    let first = c.call("refund_partial", &p, Some("step-refund-77")).unwrap();
    let second = c.call("refund_partial", &p, Some("step-refund-77")).unwrap();
    assert_eq!(first.request.body, Some(json!({"amount": "12.34", "currency": "USD", "reason": "dented"})));
    assert_eq!(first.response, second.response, "a replay answers what the first call answered");
    let facts = c.order_facts("#W9077205").unwrap().unwrap();
    assert_eq!(facts.refunded.to_string(), "12.34", "refunded once, not twice");

    let other = params(json!({"order_id": "#W9077205", "amount": "1.00 USD", "reason": "dented"}));
    let reused = c.call("refund_partial", &other, Some("step-refund-77"));
    assert!(
        matches!(&reused, Err(ConnectorError::Rejected { status: 422, code, .. }) if code == "idempotency_key_reused"),
        "{reused:?}"
    );
    for r in [&first, &second] {
        assert_no_token(r, &token);
    }
}

#[test]
fn the_stores_rules_come_back_as_typed_rejections() {
    let (token, _keyring, _server, c) = on_demo("rules");

    let delivered = params(json!({"order_id": "#W8032761", "reason": "no longer needed"}));
    let e = c.call("cancel_pending_order", &delivered, Some("k-cancel-delivered")).unwrap_err();
    match &e {
        ConnectorError::Rejected { status, code, message } => {
            assert_eq!((*status, code.as_str()), (409, "order_not_pending"), "{message}");
        }
        other => panic!("cancelling a delivered order must be Rejected by the store, got {other:?}"),
    }
    assert!(!e.retryable(), "a rule violation does not go away by retrying");
    assert_error_has_no_token(&e, &token);

    let too_much = params(json!({"order_id": "#W7303089", "amount": "99999.00 USD", "reason": "x"}));
    let e = c.call("refund_partial", &too_much, Some("k-refund-too-much")).unwrap_err();
    assert!(
        matches!(&e, ConnectorError::Rejected { status: 422, code, .. } if code == "refund_exceeds_refundable"),
        "{e:?}"
    );
}

#[test]
fn a_wrong_token_is_rejected_and_credentials_are_read_at_every_call() {
    let token = token();
    let keyring = TestKeyring::new("rotate", Some("tok-wrong-0000"));
    let server = DemoServer::start(&token);
    let c = demo_connector(&server.url(), &keyring);
    let p = params(json!({"order_id": "#W2611340"}));

    let e = c.call("get_order_details", &p, None).unwrap_err();
    assert!(matches!(&e, ConnectorError::Rejected { status: 401, code, .. } if code == "unauthorized"), "{e:?}");
    assert!(!e.retryable());

    keyring.set(&token);
    let ok = c.call("get_order_details", &p, None).unwrap();
    assert_eq!(ok.status, 200, "the new credential is used at the next call, without rebuilding the connector");
    assert_no_token(&ok, &token);

    keyring.set("tok-rotated-away");
    assert!(matches!(c.call("get_order_details", &p, None), Err(ConnectorError::Rejected { status: 401, .. })));
}

// ============================================================ a misbehaving server

#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    head: String,
}

/// What the fake server answers: (status, extra headers, body, delay before answering).
type Behaviour = dyn Fn(usize) -> (u16, Vec<(String, String)>, String, Duration) + Send + Sync;

/// A tiny HTTP/1.1 server on loopback that answers as told and records what it saw.
/// Every connection is closed after one answer; it stops when dropped.
struct FakeServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    fn start(
        behaviour: impl Fn(usize) -> (u16, Vec<(String, String)>, String, Duration) + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let behaviour: Arc<Behaviour> = Arc::new(behaviour);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (seen, behaviour) = (seen2.clone(), behaviour.clone());
                std::thread::spawn(move || serve_one(stream, &seen, &*behaviour));
            }
        });
        FakeServer { addr, seen, stop, thread: Some(thread) }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut stream: TcpStream, seen: &Mutex<Vec<Seen>>, behaviour: &Behaviour) {
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let Some((head, _)) = read_request(&mut stream) else { return };
    let index = {
        let mut seen = seen.lock().unwrap();
        seen.push(Seen { request_line: head.lines().next().unwrap_or("").to_string(), head: head.clone() });
        seen.len() - 1
    };
    let (status, headers, body, delay) = behaviour(index);
    std::thread::sleep(delay);
    let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    let _ = stream.write_all(out.as_bytes());
}

/// A catalog for the fake server: a read, a write the platform makes idempotent, and one
/// it does not. Short timeouts and backoff keep the tests quick.
fn flaky_catalog(url: &str) -> Catalog {
    let source = format!(
        r##"[platform]
name = "flaky"
base_url = "{url}"
credential = "demo_seller_center/demo"
timeout_ms = 400
connect_timeout_ms = 400
backoff_ms = 10
max_retry_after_ms = 1000

[defs]
id = {{ type = "string", pattern = "^[a-z0-9-]{{1,20}}$" }}

[actions.get_thing]
kind = "read"
method = "GET"
path = "/things/{{id}}"
params.id = {{ in = "path" }}
schema = {{ type = "object", additionalProperties = false, required = ["id"], properties = {{ id = {{ "$ref" = "#/$defs/id" }} }} }}

[actions.set_thing]
kind = "write"
method = "PUT"
path = "/things/{{id}}"
reversible = true
idempotent = true
params.id = {{ in = "path" }}
params.colour = {{ in = "body" }}
schema = {{ type = "object", additionalProperties = false, required = ["id", "colour"], properties = {{ id = {{ "$ref" = "#/$defs/id" }}, colour = {{ type = "string" }} }} }}
state = {{ action = "get_thing", params = {{ id = "id" }} }}
expect = [{{ path = "/colour", equals_param = "colour" }}]

[actions.poke_thing]
kind = "write"
method = "POST"
path = "/things/{{id}}/pokes"
reversible = false
idempotent = false
params.id = {{ in = "path" }}
schema = {{ type = "object", additionalProperties = false, required = ["id"], properties = {{ id = {{ "$ref" = "#/$defs/id" }} }} }}
state = {{ action = "get_thing", params = {{ id = "id" }} }}
expect = [{{ path = "/pokes", grew_by = 1 }}]
"##
    );
    Catalog::parse("flaky.toml", &source).unwrap()
}

fn flaky_connector(server_url: &str, keyring: &TestKeyring) -> HttpConnector {
    HttpConnector::new(flaky_catalog(server_url), keyring.store.clone()).unwrap()
}

fn ok_json(body: &str) -> (u16, Vec<(String, String)>, String, Duration) {
    (200, vec![("Content-Type".into(), "application/json".into())], body.to_string(), Duration::ZERO)
}

#[test]
fn a_missing_credential_or_invalid_params_send_nothing() {
    let server = FakeServer::start(|_| ok_json(r#"{"colour": "red"}"#));
    let empty = TestKeyring::new("missing", None);
    let c = flaky_connector(&server.url(), &empty);
    let e = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap_err();
    match &e {
        ConnectorError::CredentialMissing { name } => assert_eq!(name, &demo_credential()),
        other => panic!("no credential in the keyring must be CredentialMissing, got {other:?}"),
    }
    assert!(e.to_string().contains("countersign credentials set demo_seller_center/demo"), "{e}");
    assert_eq!(server.hits(), 0, "no request goes out without a credential");

    let token = token();
    let keyring = TestKeyring::new("invalid", Some(&token));
    let c = flaky_connector(&server.url(), &keyring);
    for bad in [json!({"id": "NOT VALID"}), json!({}), json!({"id": "a1", "extra": 1}), json!({"id": 7})] {
        let e = c.call("get_thing", &params(bad.clone()), None).unwrap_err();
        assert!(
            matches!(&e, ConnectorError::InvalidParams { errors } if !errors.is_empty()),
            "{bad} must fail the schema, got {e:?}"
        );
    }
    let e =
        c.call("set_thing", &params(json!({"id": "a1", "colour": "red"})), Some("bad key with spaces")).unwrap_err();
    assert!(matches!(e, ConnectorError::InvalidParams { .. }), "{e:?}");
    let e = c.call("delete_everything", &Map::new(), None).unwrap_err();
    assert!(matches!(e, ConnectorError::UnknownAction { .. }), "{e:?}");
    assert_eq!(server.hits(), 0, "parameters failing the schema never reach the platform");

    let ok = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap();
    assert_eq!(server.hits(), 1);
    let seen = server.seen.lock().unwrap()[0].clone();
    assert_eq!(seen.request_line, "GET /things/a1 HTTP/1.1");
    assert!(seen.head.contains(&format!("authorization: Bearer {token}")), "the token is sent: {}", seen.head);
    assert_no_token(&ok, &token);
}

#[test]
fn server_errors_are_retried_for_reads_and_idempotent_writes_only() {
    let token = token();
    let keyring = TestKeyring::new("5xx", Some(&token));
    let server = FakeServer::start(|_| (503, vec![], "unavailable".into(), Duration::ZERO));
    let c = flaky_connector(&server.url(), &keyring);

    let e = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap_err();
    assert!(matches!(e, ConnectorError::ServerError { status: 503 }), "{e:?}");
    assert!(e.retryable());
    assert_eq!(server.hits(), 3, "a read is tried once and retried twice");

    let e = c.call("poke_thing", &params(json!({"id": "a1"})), Some("k-poke")).unwrap_err();
    assert!(matches!(e, ConnectorError::ServerError { status: 503 }), "{e:?}");
    assert_eq!(server.hits(), 4, "a non-idempotent write is never retried");

    c.call("set_thing", &params(json!({"id": "a1", "colour": "red"})), Some("k-set")).unwrap_err();
    assert_eq!(server.hits(), 7, "an idempotent write with a key is retried");
    let heads: Vec<String> = server.seen.lock().unwrap()[4..].iter().map(|s| s.head.clone()).collect();
    assert!(heads.iter().all(|h| h.contains("idempotency-key: k-set")), "every retry carries the same key");

    c.call("set_thing", &params(json!({"id": "a1", "colour": "red"})), None).unwrap_err();
    assert_eq!(server.hits(), 8, "without a key even an idempotent write is sent once");

    let internal = FakeServer::start(|_| (500, vec![], "{}".into(), Duration::ZERO));
    let c = flaky_connector(&internal.url(), &keyring);
    let e = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap_err();
    assert!(matches!(e, ConnectorError::ServerError { status: 500 }) && !e.retryable(), "{e:?}");
    assert_eq!(internal.hits(), 1, "a 500 is a bug on the platform, not a transient failure");
}

#[test]
fn timeouts_are_typed_and_retried_only_when_safe() {
    let token = token();
    let keyring = TestKeyring::new("timeout", Some(&token));
    let server = FakeServer::start(|_| (200, vec![], "{}".into(), Duration::from_millis(1500)));
    let c = flaky_connector(&server.url(), &keyring);

    let e = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap_err();
    assert!(matches!(e, ConnectorError::Timeout), "{e:?}");
    assert!(e.retryable());
    assert_eq!(server.hits(), 3, "a read that times out is retried");

    let e = c.call("poke_thing", &params(json!({"id": "a1"})), Some("k-poke")).unwrap_err();
    assert!(
        matches!(e, ConnectorError::WriteLost { sent: Sent::Unknown, .. }),
        "a write whose answer never came says it may have been sent: {e:?}"
    );
    assert_eq!(server.hits(), 4, "a non-idempotent write that timed out may have happened: never resent");

    // A write to a port nothing listens on was never sent.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let c = flaky_connector(&format!("http://{closed}"), &keyring);
    let e = c.call("poke_thing", &params(json!({"id": "a1"})), Some("k-poke")).unwrap_err();
    assert!(matches!(e, ConnectorError::WriteLost { sent: Sent::No, .. }), "refused, so never sent: {e:?}");
}

#[test]
fn malformed_answers_and_refused_connections_are_typed() {
    let token = token();
    let keyring = TestKeyring::new("malformed", Some(&token));
    let server = FakeServer::start(|_| ok_json("{\"colour\": \"red\""));
    let c = flaky_connector(&server.url(), &keyring);
    let e = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap_err();
    assert!(matches!(e, ConnectorError::MalformedResponse { .. }), "{e:?}");
    assert!(!e.retryable());
    assert_eq!(server.hits(), 1, "a malformed answer is not transient");

    let html = FakeServer::start(|_| (403, vec![], "<html>forbidden</html>".into(), Duration::ZERO));
    let c = flaky_connector(&html.url(), &keyring);
    let e = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap_err();
    assert!(matches!(&e, ConnectorError::Rejected { status: 403, code, .. } if code == "http_403"), "{e:?}");

    // A port nothing listens on: bind one, note it, close it.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let c = flaky_connector(&format!("http://{closed}"), &keyring);
    let started = std::time::Instant::now();
    let e = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap_err();
    assert!(matches!(&e, ConnectorError::Transport(m) if m.contains("connect")), "{e:?}");
    assert!(e.retryable());
    assert!(started.elapsed() >= Duration::from_millis(30), "two retries with 10 ms then 20 ms of backoff");
    assert_error_has_no_token(&e, &token);
}

#[test]
fn rate_limits_honour_retry_after_up_to_a_bound() {
    let token = token();
    let keyring = TestKeyring::new("429", Some(&token));
    let server = FakeServer::start(|i| {
        if i == 0 {
            (429, vec![("Retry-After".into(), "0".into())], String::new(), Duration::ZERO)
        } else {
            ok_json(r#"{"colour": "blue"}"#)
        }
    });
    let c = flaky_connector(&server.url(), &keyring);
    let r = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap();
    assert_eq!((r.attempts, server.hits()), (2, 2), "a 429 with a short Retry-After is retried");
    assert_eq!(r.response["colour"], "blue");

    let slow = FakeServer::start(|_| (429, vec![("Retry-After".into(), "3600".into())], String::new(), Duration::ZERO));
    let c = flaky_connector(&slow.url(), &keyring);
    let e = c.call("get_thing", &params(json!({"id": "a1"})), None).unwrap_err();
    match e {
        ConnectorError::RateLimited { retry_after } => assert_eq!(retry_after, Some(Duration::from_secs(3600))),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(slow.hits(), 1, "an hour is past the bound: not waited for");

    let write = FakeServer::start(|_| (429, vec![("Retry-After".into(), "0".into())], String::new(), Duration::ZERO));
    let c = flaky_connector(&write.url(), &keyring);
    assert!(matches!(
        c.call("poke_thing", &params(json!({"id": "a1"})), Some("k")),
        Err(ConnectorError::RateLimited { .. })
    ));
    assert_eq!(write.hits(), 1, "not even a 429 makes a non-idempotent write go twice");
}

#[test]
fn secrets_are_redacted_from_call_records_even_when_echoed() {
    let token = token();
    let keyring = TestKeyring::new("echo", Some(&token));
    let echo = format!(
        r#"{{"colour": "red", "access_token": "abc", "note": "you sent Bearer {token}", "nested": [{{"client_secret": "s"}}]}}"#
    );
    let server = FakeServer::start(move |_| ok_json(&echo));
    let c = flaky_connector(&server.url(), &keyring);
    let r = c.call("set_thing", &params(json!({"id": "a1", "colour": "red"})), Some("k-echo")).unwrap();
    assert_no_token(&r, &token);
    assert_eq!(r.response["access_token"], "[redacted]");
    assert_eq!(r.response["nested"][0]["client_secret"], "[redacted]");
    assert_eq!(r.response["note"], "you sent Bearer [redacted]");
    assert_eq!(r.response["colour"], "red", "the rest is kept");
}

// ============================================================ the snapshot connector

#[test]
fn snapshot_answers_order_reads_and_refuses_writes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/demo-store");
    let c = SnapshotConnector::load(&dir).unwrap();
    let r = c.call("get_order_details", &params(json!({"order_id": "#W2611340"})), None).unwrap();
    assert_eq!(r.response["totals"]["paid"], "536.65");
    assert_eq!(r.response["customer_id"], "james_li_5688");
    assert!(matches!(
        c.call("get_order_details", &params(json!({"order_id": "#W0"})), None),
        Err(ConnectorError::Rejected { status: 404, .. })
    ));
    let p = params(json!({"order_id": "#W5918442", "reason": "ordered by mistake"}));
    assert!(matches!(c.call("cancel_pending_order", &p, Some("k")), Err(ConnectorError::Unsupported { .. })));
    assert!(matches!(c.read_state("cancel_pending_order", &p), Err(ConnectorError::Unsupported { .. })));
    assert!(matches!(
        c.check_expectation("cancel_pending_order", &p, None, None),
        Err(ExpectationError::Unsupported { .. })
    ));
}
