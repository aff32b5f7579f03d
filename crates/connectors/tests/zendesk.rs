//! The Zendesk Support case source against a loopback server answering as Zendesk's API
//! reference documents.
//!
//! **Fixtures** (`tests/fixtures/zendesk/`) are Zendesk's documented response shapes with
//! our data: the incremental export's pages, a ticket, two pages of comments, and ticket
//! update answers (audit + ticket). `fixtures_follow_zendesks_openapi` validates every one
//! of them, and the request bodies the adapter sends, against an excerpt of Zendesk's own
//! OpenAPI description of the Support API (`oas-excerpt.json`: where it came from and
//! its terms are in its `x-source`). OpenAPI 3.0 schemas are not quite JSON Schema, so the
//! test translates them first: `nullable: true` adds `null` to the type, and every object
//! schema that lists `properties` without saying anything about `additionalProperties` is
//! closed (a fixture field Zendesk does not document fails, so a misspelt field name
//! cannot pass unnoticed); schemas used as `allOf` parts stay open. `format`s
//! (`date-time`, `email`) are checked. A cursor-paginated comment page is checked against
//! `TicketCommentsResponse`'s properties joined with `Pagination`'s (the description
//! lists them separately).
//!
//! Not checked against the description, and why: Zendesk's error bodies
//! (`{"error": "RecordNotFound", "description": …}`; the description only has the newer
//! `Errors` shape), the ticket answer with `"assignee_id": null` and the request
//! unassigning a ticket (`"assignee_id": null`): the description types `assignee_id` as a
//! non-nullable integer, while Zendesk sends and accepts `null` for "no assignee".
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use countersign_connectors::ConnectorError;
use countersign_connectors::credentials::{CredentialName, ProcessCredential, Secret};
use countersign_connectors::source::zendesk::{Zendesk, ZendeskAuth};
use countersign_connectors::source::{CaseSource, ConversationState, Cursor, Post, Visibility};
use countersign_core::model::Sender;
use serde_json::{Value, json};

const SECRET: &str = "agent@example.com/token:Zk9p4TokenNeverShown7Qx";
const API_TOKEN: &str = "Zk9p4TokenNeverShown7Qx";
/// The origin written in the fixtures' URLs; the server answers with its own instead.
const FIXTURE_ORIGIN: &str = "https://example.zendesk.com";

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zendesk").join(name)
}

fn fixture(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture_path(name)).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// The loopback server
// ---------------------------------------------------------------------------------------

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Option<Value>,
}

impl Seen {
    fn query(&self, key: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the server answers.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    fn json(value: &Value) -> Reply {
        Reply { status: 200, headers: Vec::new(), body: value.to_string() }
    }

    fn fixture(name: &str) -> Reply {
        Reply::json(&fixture(name))
    }

    fn status(status: u16, body: &str) -> Reply {
        Reply { status, headers: Vec::new(), body: body.to_owned() }
    }
}

type Answer = dyn Fn(&Seen) -> Reply + Send + Sync;

#[derive(Clone)]
struct Shared {
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Answer>,
    origin: String,
}

/// A Zendesk stand-in on a random loopback port, on a tokio runtime of its own (the
/// adapter is blocking); dropping it stops the runtime, also when a test fails.
struct Server {
    origin: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    _runtime: tokio::runtime::Runtime,
}

async fn handle(State(shared): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let query = uri
        .query()
        .map(|q| reqwest::Url::parse(&format!("http://x/?{q}")).unwrap().query_pairs().into_owned().collect())
        .unwrap_or_default();
    let seen = Seen {
        method,
        path: uri.path().to_owned(),
        query,
        headers,
        body: if body.is_empty() { None } else { serde_json::from_slice(&body).ok() },
    };
    let reply = (shared.answer)(&seen);
    shared.seen.lock().unwrap().push(seen);
    let mut response =
        (StatusCode::from_u16(reply.status).unwrap(), reply.body.replace(FIXTURE_ORIGIN, &shared.origin))
            .into_response();
    response.headers_mut().insert("content-type", "application/json".parse().unwrap());
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

impl Server {
    fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let origin = format!("http://{addr}");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared { seen: Arc::clone(&seen), answer: Arc::new(answer), origin: origin.clone() };
        let app = Router::new().fallback(handle).with_state(shared);
        runtime.spawn(async move { axum::serve(listener, app).await });
        Server { origin, seen, _runtime: runtime }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn source(&self, auth: ZendeskAuth) -> Zendesk {
        let name = CredentialName::new("zendesk", "acme").unwrap();
        let store = Arc::new(ProcessCredential::new(name.clone(), Secret::new(SECRET)));
        Zendesk::new("zendesk-acme", &self.origin, store, name, auth).unwrap()
    }
}

fn basic_header() -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(SECRET))
}

/// The error, and its `Debug`, never show the credential in any form.
fn assert_no_secret(error: &ConnectorError) {
    let shown = format!("{error} {error:?}");
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    for form in [SECRET, API_TOKEN, b64.as_str()] {
        assert!(!shown.contains(form), "an error must never show the credential ({form:?} in {shown})");
    }
}

// ---------------------------------------------------------------------------------------
// Zendesk's OpenAPI description
// ---------------------------------------------------------------------------------------

fn schemas() -> serde_json::Map<String, Value> {
    let excerpt = fixture("oas-excerpt.json");
    excerpt["components"]["schemas"].as_object().unwrap().clone()
}

/// Named schemas used as `allOf` parts: closing them would refuse their siblings' fields.
fn all_of_parts(node: &Value, parts: &mut BTreeSet<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get("allOf") {
                for item in items {
                    if let Some(r) = item.get("$ref").and_then(Value::as_str) {
                        parts.insert(r.trim_start_matches("#/components/schemas/").to_owned());
                    }
                }
            }
            map.values().for_each(|v| all_of_parts(v, parts));
        }
        Value::Array(items) => items.iter().for_each(|v| all_of_parts(v, parts)),
        _ => {}
    }
}

/// An OpenAPI 3.0 schema as JSON Schema (draft 4): `nullable` → `null` in the type;
/// object schemas with `properties` closed unless `open`.
fn translate(node: &Value, open: bool) -> Value {
    match node {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                if k == "nullable" {
                    continue;
                }
                out.insert(k.clone(), translate(v, false));
            }
            if let (Some(Value::Bool(true)), Some(Value::String(t))) = (map.get("nullable"), map.get("type")) {
                out.insert("type".into(), json!([t, "null"]));
            }
            if !open && map.contains_key("properties") && !map.contains_key("additionalProperties") {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| translate(v, false)).collect()),
        other => other.clone(),
    }
}

/// The validator for one named schema of the description, or for `TicketCommentsPage`
/// (`TicketCommentsResponse` with `Pagination`'s fields).
fn validator(name: &str) -> jsonschema::Validator {
    let mut source = schemas();
    let page = {
        let mut properties = source["TicketCommentsResponse"]["properties"].as_object().unwrap().clone();
        properties.extend(source["Pagination"]["properties"].as_object().unwrap().clone());
        json!({ "type": "object", "properties": properties })
    };
    source.insert("TicketCommentsPage".into(), page);
    let mut parts = BTreeSet::new();
    all_of_parts(&Value::Object(source.clone()), &mut parts);
    let translated: serde_json::Map<String, Value> =
        source.iter().map(|(k, v)| (k.clone(), translate(v, parts.contains(k)))).collect();
    let root = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": { "schemas": translated },
    });
    jsonschema::options().with_draft(jsonschema::Draft::Draft4).should_validate_formats(true).build(&root).unwrap()
}

fn assert_valid(schema: &str, what: &str, instance: &Value) {
    let validator = validator(schema);
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{what} must be shaped as Zendesk's {schema} documents: {errors:#?}");
}

#[test]
fn fixtures_follow_zendesks_openapi() {
    let cases = [
        ("export-page1.json", "CursorBasedExportIncrementalTicketsResponse"),
        ("export-page2.json", "CursorBasedExportIncrementalTicketsResponse"),
        ("ticket.json", "TicketResponse"),
        ("comments-page1.json", "TicketCommentsPage"),
        ("comments-page2.json", "TicketCommentsPage"),
        ("update-comment.json", "TicketUpdateResponse"),
        ("update-status.json", "TicketUpdateResponse"),
        ("update-assignee.json", "TicketUpdateResponse"),
    ];
    let files: BTreeSet<String> = std::fs::read_dir(fixture_path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f != "oas-excerpt.json")
        .collect();
    let checked: BTreeSet<String> = cases.iter().map(|(f, _)| (*f).to_owned()).collect();
    assert_eq!(files, checked, "every fixture must be checked against the description");
    for (file, schema) in cases {
        assert_valid(schema, file, &fixture(file));
    }
}

#[test]
fn the_closed_schemas_catch_a_misspelt_field() {
    let mut ticket = fixture("ticket.json");
    ticket["ticket"]["asignee_id"] = json!(1);
    assert!(!validator("TicketResponse").is_valid(&ticket), "an undocumented field must fail the check");
    let mut ticket = fixture("ticket.json");
    ticket["ticket"]["status"] = json!("waiting");
    assert!(!validator("TicketResponse").is_valid(&ticket), "a status outside Zendesk's enum must fail");
    let mut ticket = fixture("ticket.json");
    ticket["ticket"]["updated_at"] = json!("yesterday");
    assert!(!validator("TicketResponse").is_valid(&ticket), "formats are checked");
}

// ---------------------------------------------------------------------------------------
// Listing changes
// ---------------------------------------------------------------------------------------

#[test]
fn listing_walks_the_export_pages_and_hands_the_cursor_back() {
    let server = Server::start(|seen| match (seen.query("start_time"), seen.query("cursor")) {
        (Some("0"), None) => Reply::fixture("export-page1.json"),
        (None, Some("MTU3NjYxMzUzOS4wfHw0Njd8")) => Reply::fixture("export-page2.json"),
        (None, Some("MTU3NjYxMzk0My4wfHw0Njl8")) => Reply::json(&json!({
            "after_cursor": "MTU3NjYxMzk0My4wfHw0Njl8", "after_url": null,
            "before_cursor": null, "before_url": null, "end_of_stream": true, "tickets": []
        })),
        _ => Reply::status(400, r#"{"error":"InvalidPaginationParameter"}"#),
    });
    let source = server.source(ZendeskAuth::ApiToken).with_order_field(27642);
    assert_eq!(source.name(), "zendesk-acme");

    let first = source.changes(None).unwrap();
    assert!(first.more, "end_of_stream false: more changes are waiting");
    let ids: Vec<&str> = first.conversations.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["35436", "35437"]);
    let c = &first.conversations[0];
    assert_eq!(c.customer.user_id, "20978392");
    assert!(!c.customer.authenticated, "a Zendesk requester is not signed in by the channel");
    assert_eq!(c.customer.name, None);
    assert_eq!(c.subject.as_deref(), Some("Broken key on my new keyboard"));
    assert_eq!(c.order_ids, ["#W2378156"], "the configured custom field holds the order id");
    assert_eq!(c.state, ConversationState::Open);
    assert_eq!(c.assignee.as_deref(), Some("235323"));
    assert_eq!(c.updated_at, "2024-03-04T10:02:11Z");
    let unassigned = &first.conversations[1];
    assert_eq!((unassigned.state, unassigned.assignee.as_deref()), (ConversationState::Open, None), "new → open");
    assert!(unassigned.order_ids.is_empty(), "another custom field is not an order id");

    let second = source.changes(Some(&first.cursor)).unwrap();
    assert!(!second.more, "end_of_stream true: nothing more now");
    let states: Vec<(&str, ConversationState)> =
        second.conversations.iter().map(|c| (c.id.as_str(), c.state)).collect();
    assert_eq!(
        states,
        [
            ("35438", ConversationState::Waiting),
            ("35439", ConversationState::Open),
            ("35440", ConversationState::Resolved),
            ("35441", ConversationState::Resolved),
        ],
        "pending → waiting, hold → open, solved and closed → resolved"
    );

    // Polling later from the last cursor asks for what changed since.
    let later = source.changes(Some(&second.cursor)).unwrap();
    assert!(later.conversations.is_empty() && !later.more);
    assert_eq!(later.cursor, second.cursor, "the stream's last cursor is kept");

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!((s.method.clone(), s.path.as_str()), (Method::GET, "/api/v2/incremental/tickets/cursor.json"));
        assert_eq!(s.header("authorization"), Some(basic_header().as_str()));
    }
    assert_eq!(seen[1].query("cursor"), Some("MTU3NjYxMzUzOS4wfHw0Njd8"), "page 1's after_cursor is handed back");
    assert_eq!(seen[2].query("cursor"), Some("MTU3NjYxMzk0My4wfHw0Njl8"));
}

#[test]
fn the_first_listing_starts_at_the_configured_time_and_foreign_cursors_are_refused() {
    let server = Server::start(|_| {
        Reply::json(&json!({
            "after_cursor": null, "after_url": null, "before_cursor": null, "before_url": null,
            "end_of_stream": true, "tickets": []
        }))
    });
    let source = server.source(ZendeskAuth::ApiToken).with_start_time(1_709_510_400);
    let changes = source.changes(None).unwrap();
    assert_eq!(server.seen()[0].query("start_time"), Some("1709510400"));
    // Nothing exported yet: the next listing starts from the same time again.
    source.changes(Some(&changes.cursor)).unwrap();
    assert_eq!(server.seen()[1].query("start_time"), Some("1709510400"));

    let err = source.changes(Some(&Cursor("since=2024-01-01".into()))).unwrap_err();
    assert!(matches!(err, ConnectorError::InvalidParams { .. }), "a cursor this source did not hand out: {err:?}");
    assert_eq!(server.seen().len(), 2, "nothing is asked with a foreign cursor");
}

// ---------------------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------------------

fn thread_server() -> Server {
    Server::start(|seen| match (seen.path.as_str(), seen.query("page[after]")) {
        ("/api/v2/tickets/35436.json", _) => Reply::fixture("ticket.json"),
        ("/api/v2/tickets/35436/comments.json", None) => Reply::fixture("comments-page1.json"),
        ("/api/v2/tickets/35436/comments.json", Some("eyJvIjoiY3JlYXRlZF9hdCIsInYiOiJhV1Y0In0=")) => {
            Reply::fixture("comments-page2.json")
        }
        _ => Reply::status(404, r#"{"error":"RecordNotFound","description":"Not found"}"#),
    })
}

#[test]
fn a_thread_reads_the_ticket_and_every_comment_page() {
    let server = thread_server();
    let source = server.source(ZendeskAuth::ApiToken);
    let thread = source.thread("35436").unwrap();
    assert_eq!(thread.conversation.id, "35436");
    assert_eq!(thread.conversation.customer.user_id, "20978392");

    let got: Vec<(&str, Sender, Visibility, &str)> =
        thread.messages.iter().map(|m| (m.id.as_str(), m.from, m.visibility, m.at.as_str())).collect();
    assert_eq!(
        got,
        [
            ("1274", Sender::Customer, Visibility::Public, "2024-03-04T09:12:40Z"),
            ("1275", Sender::Agent, Visibility::Internal, "2024-03-04T09:30:05Z"),
            ("1276", Sender::Agent, Visibility::Public, "2024-03-04T10:02:11Z"),
            ("1277", Sender::Customer, Visibility::Public, "2024-03-04T10:15:40Z"),
        ],
        "the requester's and the CC'd end user's comments are the customer side (their words are what the \
         policy reads for signals); public false is an internal note; both pages, in order"
    );
    assert_eq!(thread.messages[0].text, "My keyboard arrived with a broken key. Can I get a replacement?");
    assert_eq!(thread.messages[1].author.as_deref(), Some("235323"));

    let seen = server.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(
        paths,
        ["/api/v2/tickets/35436.json", "/api/v2/tickets/35436/comments.json", "/api/v2/tickets/35436/comments.json"]
    );
    assert_eq!(seen[1].query("page[size]"), Some("100"));
    assert_eq!(seen[2].query("page[size]"), Some("100"), "links.next is followed as Zendesk wrote it");
    assert_eq!(seen.len(), 3, "has_more false ends the pages");
}

#[test]
fn a_next_page_off_the_account_is_not_followed() {
    let server = Server::start(|seen| match seen.path.as_str() {
        "/api/v2/tickets/35436.json" => Reply::fixture("ticket.json"),
        _ => {
            let mut page = fixture("comments-page1.json");
            page["links"]["next"] = json!("https://attacker.example/api/v2/tickets/35436/comments.json");
            Reply::json(&page)
        }
    });
    let err = server.source(ZendeskAuth::ApiToken).thread("35436").unwrap_err();
    assert!(matches!(err, ConnectorError::MalformedResponse { .. }), "{err:?}");
    assert_eq!(server.seen().len(), 2, "the credential never goes to another origin");
}

#[test]
fn ids_that_are_not_zendesk_numbers_are_refused_before_any_request() {
    let server = thread_server();
    let source = server.source(ZendeskAuth::ApiToken);
    for id in ["", "../admin", "35436.json", "abc"] {
        let err = source.thread(id).unwrap_err();
        assert!(matches!(err, ConnectorError::InvalidParams { .. }), "{id:?}: {err:?}");
    }
    assert!(server.seen().is_empty());
}

// ---------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------

#[test]
fn a_public_reply_and_an_internal_note_are_ticket_updates_with_a_comment() {
    let server = Server::start(|_| Reply::fixture("update-comment.json"));
    let source = server.source(ZendeskAuth::ApiToken);
    let caps = source.capabilities();
    assert!(!caps.reply_idempotency, "Zendesk documents no idempotency key for ticket updates");
    assert!(caps.push);

    let reply =
        Post { visibility: Visibility::Public, text: "A replacement keyboard is on its way.", author: "235323" };
    let posted = source.post("35436", reply, "key-1").unwrap();
    assert_eq!(posted.message_id, "206091192547", "the audit's Comment event is the new comment");
    assert_eq!(posted.at, "2024-03-04T12:00:00Z");
    let note =
        Post { visibility: Visibility::Internal, text: "Replacement shipped, tracking 1Z999.", author: "235323" };
    source.post("35436", note, "key-2").unwrap();

    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let bodies = [
        json!({ "ticket": { "comment": { "body": "A replacement keyboard is on its way.", "public": true } } }),
        json!({ "ticket": { "comment": { "body": "Replacement shipped, tracking 1Z999.", "public": false } } }),
    ];
    for (s, body) in seen.iter().zip(bodies) {
        assert_eq!((s.method.clone(), s.path.as_str()), (Method::PUT, "/api/v2/tickets/35436.json"));
        assert_eq!(s.body.as_ref(), Some(&body));
        assert_valid("TicketUpdateRequest", "the update request", s.body.as_ref().unwrap());
        assert_eq!(s.header("authorization"), Some(basic_header().as_str()), "API token as HTTP Basic");
        assert_eq!(s.header("content-type"), Some("application/json"));
        assert_eq!(s.header("idempotency-key"), None, "no key Zendesk would not honour is sent");
    }
}

#[test]
fn an_update_answer_without_its_comment_event_is_malformed() {
    let server = Server::start(|_| {
        let mut answer = fixture("update-comment.json");
        answer["audit"]["events"] = json!([]);
        Reply::json(&answer)
    });
    let post = Post { visibility: Visibility::Public, text: "hi", author: "1" };
    let err = server.source(ZendeskAuth::ApiToken).post("35436", post, "k").unwrap_err();
    assert!(matches!(err, ConnectorError::MalformedResponse { .. }), "the post's outcome must be read back: {err:?}");
}

#[test]
fn state_and_assignee_map_to_status_and_assignee_id() {
    let server = Server::start(|seen| {
        let ticket = seen.body.as_ref().map(|b| b["ticket"].clone()).unwrap_or_default();
        if ticket.get("status").is_some() {
            let mut answer = fixture("update-status.json");
            answer["ticket"]["status"] = ticket["status"].clone();
            Reply::json(&answer)
        } else if ticket.get("assignee_id") == Some(&Value::Null) {
            // Not a fixture: Zendesk sends null for "no assignee" (see the module doc).
            let mut answer = fixture("update-assignee.json");
            answer["ticket"]["assignee_id"] = Value::Null;
            Reply::json(&answer)
        } else {
            Reply::fixture("update-assignee.json")
        }
    });
    let source = server.source(ZendeskAuth::ApiToken);
    for (state, status) in [
        (ConversationState::Waiting, "pending"),
        (ConversationState::Open, "open"),
        (ConversationState::Resolved, "solved"),
    ] {
        let conversation = source.set_state("35436", state).unwrap();
        assert_eq!(conversation.state, state, "{status} reads back as {state:?}");
        let seen = server.seen();
        let sent = seen.last().unwrap().body.clone().unwrap();
        assert_eq!(sent, json!({ "ticket": { "status": status } }));
        assert_valid("TicketUpdateRequest", "the status update", &sent);
    }

    let assigned = source.assign("35436", Some("411093")).unwrap();
    assert_eq!(assigned.assignee.as_deref(), Some("411093"));
    let sent = server.seen().last().unwrap().body.clone().unwrap();
    assert_eq!(sent, json!({ "ticket": { "assignee_id": 411093 } }), "the agent id goes as a number");
    assert_valid("TicketUpdateRequest", "the assignee update", &sent);

    let released = source.assign("35436", None).unwrap();
    assert_eq!(released.assignee, None);
    assert_eq!(server.seen().last().unwrap().body, Some(json!({ "ticket": { "assignee_id": null } })));

    let before = server.seen().len();
    let err = source.assign("35436", Some("agent-7")).unwrap_err();
    let ConnectorError::InvalidParams { errors } = &err else { panic!("{err:?}") };
    assert!(errors[0].contains("numeric") && errors[0].contains("agent-7"), "the message says why: {errors:?}");
    assert_eq!(server.seen().len(), before, "nothing is sent for an id Zendesk cannot take");
}

#[test]
fn oauth_tokens_go_as_bearer() {
    let server = thread_server();
    server.source(ZendeskAuth::OAuth).thread("35436").unwrap();
    assert_eq!(server.seen()[0].header("authorization"), Some(format!("Bearer {SECRET}").as_str()));
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

#[test]
fn a_429_is_a_rate_limit_with_its_retry_after() {
    let server = Server::start(|_| Reply {
        status: 429,
        headers: vec![("retry-after", "93".into())],
        body: r#"{"error":"TooManyRequests","description":"Rate limit exceeded"}"#.into(),
    });
    let err = server.source(ZendeskAuth::ApiToken).changes(None).unwrap_err();
    assert!(
        matches!(err, ConnectorError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(93)),
        "{err:?}"
    );
    assert!(err.retryable());
}

#[test]
fn refusals_say_what_zendesk_said_and_never_the_token() {
    let server = Server::start(|seen| {
        match seen.path.as_str() {
        // A server echoing what it was sent must still not leak it through our errors.
        "/api/v2/tickets/1.json" => Reply::status(
            401,
            &json!({ "error": format!("Couldn't authenticate you ({} / {SECRET})", seen.header("authorization").unwrap()) })
                .to_string(),
        ),
        "/api/v2/tickets/2.json" => Reply::status(401, &json!({ "error": format!("bad token {API_TOKEN}") }).to_string()),
        _ => Reply::status(404, r#"{"error":"RecordNotFound","description":"Not found"}"#),
    }
    });
    let source = server.source(ZendeskAuth::ApiToken);

    for id in ["1", "2"] {
        let err = source.thread(id).unwrap_err();
        let ConnectorError::Rejected { status, message, .. } = &err else { panic!("{err:?}") };
        assert_eq!(*status, 401);
        assert!(message.contains(&format!("ticket {id}")), "names what was asked: {message}");
        assert!(message.contains("check the credential"), "says what to do: {message}");
        assert_no_secret(&err);
    }

    let err = source.thread("999").unwrap_err();
    let ConnectorError::Rejected { status, code, message } = &err else { panic!("{err:?}") };
    assert_eq!((*status, code.as_str()), (404, "RecordNotFound"));
    assert_eq!(message, "ticket 999: Not found");

    let post = Post { visibility: Visibility::Public, text: "hi", author: "1" };
    let err = source.post("999", post, "k").unwrap_err();
    assert!(matches!(&err, ConnectorError::Rejected { status: 404, .. }), "{err:?}");
    assert!(!err.retryable(), "a refusal is not retried");
}

#[test]
fn an_answer_that_is_not_zendesks_json_is_malformed() {
    let server = Server::start(|seen| match seen.path.as_str() {
        "/api/v2/incremental/tickets/cursor.json" => Reply::status(200, "{\"tickets\": [ {\"id\": 1,"),
        "/api/v2/tickets/1.json" => Reply::json(&json!({ "ticket": { "id": 1, "requester_id": 2, "status": "open" } })),
        "/api/v2/tickets/2.json" => Reply::json(&json!({ "ticket": {
            "id": 2, "requester_id": 2, "status": "escalated", "updated_at": "2024-03-04T10:00:00Z"
        } })),
        _ => Reply::json(&json!({ "tickets": "none" })),
    });
    let source = server.source(ZendeskAuth::ApiToken);
    let err = source.changes(None).unwrap_err();
    assert!(matches!(err, ConnectorError::MalformedResponse { .. }), "cut-off JSON: {err:?}");
    let err = source.thread("1").unwrap_err();
    assert!(matches!(err, ConnectorError::MalformedResponse { .. }), "a ticket without updated_at: {err:?}");
    let err = source.thread("2").unwrap_err();
    assert!(
        matches!(&err, ConnectorError::MalformedResponse { detail } if detail.contains("escalated")),
        "a status Zendesk does not document is not guessed: {err:?}"
    );
    let err = source.thread("3").unwrap_err();
    assert!(matches!(err, ConnectorError::MalformedResponse { .. }), "the wrong shape: {err:?}");
}
