//! Buyer messages over real HTTP: the conversations seeded from the sample cases, the
//! change cursor, the seller's replies, notes and updates, buyers writing, and the
//! simulated buyers.

use std::time::{Duration, Instant};

use countersign_demo_store::{
    ApiToken, BuyerSimulation, DEFAULT_BUYER_SCRIPT, DEFAULT_SEED_DIR, DemoStore, ServeOptions,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Browser, Harness, TOKEN, code, hidden_field};

/// The sample cases on the demo seller center that name a customer of the store.
const SEEDED: usize = 40;

impl Harness {
    async fn listing(&self, query: &str) -> Value {
        self.get_ok(&format!("/conversations{query}")).await
    }

    async fn thread(&self, id: &str) -> Value {
        self.get_ok(&format!("/conversations/{id}")).await
    }

    async fn patch(&self, path: &str, body: Value, key: Option<&str>) -> (StatusCode, Value) {
        let (status, body, _) = self.request(Method::PATCH, path, Some(body.to_string()), key, Some(TOKEN)).await;
        (status, body)
    }

    /// Every conversation, paging through the cursor `limit` at a time.
    async fn all_conversations(&self, limit: usize) -> Vec<Value> {
        let mut all = Vec::new();
        let mut since = "0".to_owned();
        loop {
            let page = self.listing(&format!("?since={since}&limit={limit}")).await;
            let conversations = page["conversations"].as_array().unwrap();
            assert!(conversations.len() <= limit);
            all.extend(conversations.iter().cloned());
            since = page["next_cursor"].as_str().unwrap().to_owned();
            if !page["has_more"].as_bool().unwrap() {
                return all;
            }
        }
    }
}

fn cursor(value: &Value) -> u64 {
    value["cursor"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn conversations_are_seeded_from_the_sample_cases_and_listed_by_change() {
    let h = Harness::start().await;
    let all = h.all_conversations(7).await;
    assert_eq!(all.len(), SEEDED, "cases 40 and 41 name no customer; every other case is a conversation");
    let cursors: Vec<u64> = all.iter().map(cursor).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "ordered by change, each once: {cursors:?}");

    let first = &all[0];
    assert_eq!(first["id"], "C-0001");
    assert_eq!(first["buyer"], json!({ "user_id": "sofia_rossi_8776", "name": "Sofia Rossi" }));
    assert_eq!(first["order_id"], "#W5918442");
    assert_eq!(first["status"], "open", "the buyer wrote last");
    assert_eq!(first["assignee"], Value::Null);
    assert_eq!(first["message_count"], 1);
    assert_eq!(first["created_at"], "2026-11-20T15:10:00Z");
    assert_eq!(first["last_message_at"], "2026-11-20T15:10:00Z");
    let no_order = all.iter().find(|c| c["buyer"]["user_id"] == "omar_khan_2363").unwrap();
    assert_eq!(no_order["order_id"], Value::Null);

    // The default page, and the end of the stream.
    let page = h.listing("").await;
    assert_eq!(page["conversations"].as_array().unwrap().len(), SEEDED.min(50));
    assert_eq!(page["has_more"], false);
    let end = page["next_cursor"].as_str().unwrap().to_owned();
    assert_eq!(end, cursors.last().unwrap().to_string());
    let page = h.listing(&format!("?since={end}")).await;
    assert_eq!(
        page,
        json!({ "conversations": [], "next_cursor": end, "has_more": false }),
        "nothing new: cursor unchanged"
    );

    let page = h.listing("?limit=3").await;
    assert_eq!(page["has_more"], true);
    assert_eq!(page["next_cursor"], all[2]["cursor"]);

    for bad in ["?limit=0", "?limit=201", "?limit=ten", "?since=-1", "?since=abc", "?since=1.5", "?page=2"] {
        let (status, body) = h.get(&format!("/conversations{bad}")).await;
        assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "invalid_query"), "{bad}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn reads_a_thread_oldest_message_first() {
    let h = Harness::start().await;
    let thread = h.thread("C-0015").await;
    assert_eq!(thread["buyer"]["user_id"], "harper_kim_2998");
    assert_eq!(thread["order_id"], "#W2959713");
    assert_eq!(thread["message_count"], 3);
    let messages = thread["messages"].as_array().unwrap();
    let authors: Vec<&str> = messages.iter().map(|m| m["author"].as_str().unwrap()).collect();
    assert_eq!(authors, ["buyer", "seller", "buyer"]);
    assert_eq!(messages[0]["text"], "hi can you cancel order #W2959713");
    assert_eq!(messages[0]["author_name"], "Harper Kim");
    assert_eq!(messages[0]["kind"], "message");
    assert!(messages[0]["id"].as_str().unwrap().starts_with("M-"));
    assert_eq!(thread["last_message_at"], messages[2]["created_at"]);

    let (status, body) = h.get("/conversations/C-9999").await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "conversation_not_found"));
}

#[tokio::test]
async fn a_reply_posts_once_per_idempotency_key_and_hands_the_turn_to_the_buyer() {
    let h = Harness::start().await;
    let before = h.thread("C-0001").await;
    let reply = json!({ "text": "Hi Sofia, order #W5918442 is cancelled.", "kind": "reply", "author_name": "agent-7" });
    let (status, first, replayed) = h.post_with_key("/conversations/C-0001/messages", reply.clone(), "reply-1").await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    assert_eq!(first["message"]["author"], "seller");
    assert_eq!(first["message"]["kind"], "message");
    assert_eq!(first["message"]["author_name"], "agent-7");
    assert_eq!(first["conversation"]["status"], "waiting");
    assert_eq!(first["conversation"]["message_count"], 2);
    assert!(cursor(&first["conversation"]) > cursor(&before), "a reply is a change");

    let (status, again, replayed) = h.post_with_key("/conversations/C-0001/messages", reply, "reply-1").await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(again, first, "the same key answers the first response");
    assert_eq!(h.thread("C-0001").await["messages"].as_array().unwrap().len(), 2, "posted once");

    let other = json!({ "text": "Something else", "kind": "reply", "author_name": "agent-7" });
    let (status, body, _) = h.post_with_key("/conversations/C-0001/messages", other.clone(), "reply-1").await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));
    let (status, body, _) =
        h.request(Method::POST, "/conversations/C-0001/messages", Some(other.to_string()), None, Some(TOKEN)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "idempotency_key_required"));
    assert_eq!(h.thread("C-0001").await["message_count"], 2, "refusals post nothing");

    let cases = [
        (json!({ "text": "   ", "kind": "reply", "author_name": "agent-7" }), "invalid_text"),
        (json!({ "text": "hi", "kind": "shout", "author_name": "agent-7" }), "invalid_request"),
        (json!({ "text": "hi", "kind": "reply", "author_name": "" }), "invalid_request"),
        (json!({ "text": "hi", "kind": "reply" }), "invalid_request"),
    ];
    for (n, (body, expected)) in cases.into_iter().enumerate() {
        let (status, error, _) = h.post_with_key("/conversations/C-0001/messages", body, &format!("bad-{n}")).await;
        assert_eq!((status, code(&error)), (StatusCode::UNPROCESSABLE_ENTITY, expected), "{error}");
    }
    let (status, error, _) = h
        .post_with_key(
            "/conversations/C-0404/messages",
            json!({ "text": "hi", "kind": "reply", "author_name": "a" }),
            "k",
        )
        .await;
    assert_eq!((status, code(&error)), (StatusCode::NOT_FOUND, "conversation_not_found"));
}

#[tokio::test]
async fn a_note_is_recorded_as_a_note_and_changes_no_status() {
    let h = Harness::start().await;
    let note = json!({ "text": "Checked the warehouse: not shipped.", "kind": "note", "author_name": "agent-2" });
    let (status, posted, _) = h.post_with_key("/conversations/C-0002/messages", note, "note-1").await;
    assert_eq!(status, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["message"]["kind"], "note");
    assert_eq!(posted["message"]["author"], "seller");
    assert_eq!(posted["conversation"]["status"], "open", "a note is not an answer to the buyer");
    let last = h.thread("C-0002").await["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["kind"].as_str(), last["text"].as_str()),
        (Some("note"), Some("Checked the warehouse: not shipped."))
    );
}

#[tokio::test]
async fn patch_sets_status_and_assignee() {
    let h = Harness::start().await;
    let before = h.thread("C-0003").await;
    let (status, summary) =
        h.patch("/conversations/C-0003", json!({ "status": "resolved", "assignee": "agent-7" }), Some("p-1")).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    assert_eq!((summary["status"].as_str(), summary["assignee"].as_str()), (Some("resolved"), Some("agent-7")));
    assert!(cursor(&summary) > cursor(&before));
    assert!(summary.get("messages").is_none(), "PATCH answers the summary");

    let (status, same) = h.patch("/conversations/C-0003", json!({ "status": "resolved" }), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(same["cursor"], summary["cursor"], "a change that changes nothing keeps the cursor");
    assert_eq!(same["assignee"], "agent-7", "left out: the assignee stays");

    let reply = json!({ "text": "Done!", "kind": "reply", "author_name": "agent-7" });
    let (_, posted, _) = h.post_with_key("/conversations/C-0003/messages", reply, "after-resolve").await;
    assert_eq!(posted["conversation"]["status"], "resolved", "a reply keeps a resolved conversation resolved");

    let (status, unassigned) = h.patch("/conversations/C-0003", json!({ "assignee": null }), Some("p-2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unassigned["assignee"], Value::Null);

    let (status, body) = h.patch("/conversations/C-0003", json!({ "status": "closed" }), Some("p-3")).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_status"));
    assert!(body["error"]["message"].as_str().unwrap().contains("open, waiting, resolved"));
    let (status, body) = h.patch("/conversations/C-0003", json!({ "owner": "x" }), None).await;
    assert_eq!((status, code(&body)), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"));
    let (status, body) = h.patch("/conversations/C-0999", json!({ "status": "open" }), None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "conversation_not_found"));
}

#[tokio::test]
async fn a_buyer_message_starts_or_reopens_a_conversation_and_moves_the_cursor() {
    let h = Harness::start().await;
    let end = h.listing("").await["next_cursor"].as_str().unwrap().to_owned();

    // sofia_rossi_8776 writes about another of her orders: a new conversation.
    let body =
        json!({ "user_id": "sofia_rossi_8776", "order_id": "W5500815", "text": "Is the coffee maker the black one?" });
    let (status, created, _) = h.post_with_key("/buyer/messages", body, "buyer-1").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["conversation"]["id"], format!("C-{:04}", SEEDED + 1));
    assert_eq!(created["conversation"]["order_id"], "#W5500815");
    assert_eq!(created["conversation"]["status"], "open");
    assert_eq!(created["message"]["author"], "buyer");
    assert_eq!(created["message"]["author_name"], "Sofia Rossi");
    let page = h.listing(&format!("?since={end}")).await;
    let ids: Vec<&str> = page["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [format!("C-{:04}", SEEDED + 1)], "the new conversation is the only change");

    // A resolved conversation about the same order is reopened, not duplicated.
    let (status, _) = h.patch("/conversations/C-0001", json!({ "status": "resolved" }), None).await;
    assert_eq!(status, StatusCode::OK);
    let body = json!({ "user_id": "sofia_rossi_8776", "order_id": "#W5918442", "text": "Actually, one more thing." });
    let (status, appended, _) = h.post_with_key("/buyer/messages", body.clone(), "buyer-2").await;
    assert_eq!(status, StatusCode::CREATED, "{appended}");
    assert_eq!(appended["conversation"]["id"], "C-0001");
    assert_eq!(appended["conversation"]["status"], "open");
    assert_eq!(appended["conversation"]["message_count"], 2);
    let (_, again, replayed) = h.post_with_key("/buyer/messages", body, "buyer-2").await;
    assert!(replayed);
    assert_eq!(again, appended);
    assert_eq!(h.thread("C-0001").await["message_count"], 2, "the same key posts once");

    let refusals = [
        (json!({ "user_id": "nobody_0000", "text": "hi" }), StatusCode::NOT_FOUND, "customer_not_found"),
        (
            json!({ "user_id": "sofia_rossi_8776", "order_id": "#W2611340", "text": "hi" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "order_not_of_buyer",
        ),
        (
            json!({ "user_id": "sofia_rossi_8776", "order_id": "#W0000000", "text": "hi" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "order_not_of_buyer",
        ),
        (json!({ "user_id": "sofia_rossi_8776", "text": "" }), StatusCode::UNPROCESSABLE_ENTITY, "invalid_text"),
    ];
    for (n, (body, expected_status, expected)) in refusals.into_iter().enumerate() {
        let (status, error, _) = h.post_with_key("/buyer/messages", body, &format!("refused-{n}")).await;
        assert_eq!((status, code(&error)), (expected_status, expected), "{error}");
    }
    let (status, body, _) = h
        .request(
            Method::POST,
            "/buyer/messages",
            Some(json!({ "user_id": "sofia_rossi_8776", "text": "hi" }).to_string()),
            None,
            Some(TOKEN),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, "idempotency_key_required"));
    assert_eq!(h.all_conversations(200).await.len(), SEEDED + 1);
}

#[tokio::test]
async fn seeding_happens_once_and_can_be_left_out() {
    let h = Harness::start().await;
    let body = json!({ "user_id": "omar_khan_2363", "text": "hello?" });
    let (status, _, _) = h.post_with_key("/buyer/messages", body, "before-restart").await;
    assert_eq!(status, StatusCode::CREATED);
    let h = h.restart().await;
    let all = h.all_conversations(200).await;
    assert_eq!(all.len(), SEEDED, "a reopen seeds nothing twice");
    assert_eq!(all.last().unwrap()["buyer"]["user_id"], "omar_khan_2363", "and keeps what happened");

    let dir = tempfile::tempdir().unwrap();
    let store = DemoStore::open_with_messages(dir.path().join("s.sqlite3"), DEFAULT_SEED_DIR, None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = store.serve(listener, ApiToken::new(TOKEN).unwrap()).unwrap();
    let client = countersign_http::client_builder().build().unwrap();
    let page: Value = client
        .get(format!("http://{}/conversations", server.local_addr()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["conversations"], json!([]), "no cases folder: no conversations");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn simulated_buyers_write_the_script_in_order_until_shutdown() {
    let script: Value = serde_json::from_str(&std::fs::read_to_string(DEFAULT_BUYER_SCRIPT).unwrap()).unwrap();
    let first = &script["messages"][0];
    let dir = tempfile::tempdir().unwrap();
    let store = DemoStore::open(dir.path().join("s.sqlite3"), DEFAULT_SEED_DIR).unwrap();
    let simulation = BuyerSimulation::load(DEFAULT_BUYER_SCRIPT, Duration::from_millis(50)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = store
        .serve_with(
            listener,
            ApiToken::new(TOKEN).unwrap(),
            ServeOptions { simulate_buyers: Some(simulation), ..ServeOptions::default() },
        )
        .unwrap();
    let base = format!("http://{}", server.local_addr());
    let client = countersign_http::client_builder().build().unwrap();
    let get = |path: String| {
        let request = client.get(format!("{base}{path}")).bearer_auth(TOKEN);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    // sofia_rossi_8776's seeded conversation about #W5918442 gets the script's first message.
    let deadline = Instant::now() + Duration::from_secs(10);
    let thread = loop {
        let thread = get("/conversations/C-0001".to_owned()).await;
        if thread["message_count"] == 2 {
            break thread;
        }
        assert!(Instant::now() < deadline, "no simulated buyer message within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!((&thread["buyer"]["user_id"], &thread["order_id"]), (&first["user_id"], &first["order_id"]));
    let last = thread["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["text"], first["text"], "the script's first message comes first");
    assert_eq!(last["author"], "buyer");
    assert_eq!(thread["status"], "open");
    tokio::time::timeout(Duration::from_secs(5), server.shutdown()).await.unwrap().unwrap();
}

// ------------------------------------------------------------------ the seller center's pages

#[tokio::test]
async fn the_message_pages_list_show_and_post_once_per_form_token() {
    let h = Harness::start().await;
    let mut b = Browser::new(&h);
    let (status, location, _) = b.get("/seller/messages").await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/seller/login?next=/seller/messages"));
    b.login().await;

    // Newest change first: after a buyer writes, that conversation tops the inbox.
    let body = json!({ "user_id": "harper_kim_2998", "order_id": "#W2959713", "text": "hello??" });
    assert_eq!(h.post_with_key("/buyer/messages", body, "page-buyer").await.0, StatusCode::CREATED);
    let (status, _, html) = b.get("/seller/messages").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let first_row = html.find("<tr data-conversation-id=").unwrap();
    assert!(html[first_row..].starts_with("<tr data-conversation-id=\"C-0015\""), "{html}");
    assert!(html.contains("<td class=\"status\">open</td>"));

    let (status, _, html) = b.get("/seller/messages/C-0015").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<dd id=\"conversation-status\">open</dd>"), "{html}");
    assert_eq!(html.matches("<li class=\"message\"").count(), 4, "{html}");
    assert!(html.contains("<p class=\"text\">hello??</p>"));
    let csrf = hidden_field(&html, "reply-form", "csrf_token");
    let reply_token = hidden_field(&html, "reply-form", "form_token");
    let note_token = hidden_field(&html, "note-form", "form_token");
    assert_ne!(reply_token, note_token, "a token per form");

    let reply =
        [("csrf_token", csrf.as_str()), ("form_token", reply_token.as_str()), ("text", "It shipped already, sorry!")];
    let (status, _, html) = b.post("/seller/messages/C-0015/reply", &reply).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<main id=\"confirmation\" data-replayed=\"false\">"), "{html}");
    assert!(html.contains("<dd id=\"conversation-status\">waiting</dd>"), "{html}");
    let posted = attribute(&html, "<p id=\"posted\"", "data-message-id");
    let (status, _, html) = b.post("/seller/messages/C-0015/reply", &reply).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-replayed=\"true\""), "a resubmitted form is answered, not posted again: {html}");
    assert_eq!(attribute(&html, "<p id=\"posted\"", "data-message-id"), posted, "a replay names the first post");
    let thread = h.thread("C-0015").await;
    assert_eq!(thread["message_count"], 5, "posted once");
    let last = thread["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["id"].as_str(), Some(posted.as_str()), "the confirmation names the message posted");
    assert_eq!((last["author_name"].as_str(), last["kind"].as_str()), (Some("agent"), Some("message")));

    let other = [("csrf_token", csrf.as_str()), ("form_token", reply_token.as_str()), ("text", "Something else")];
    let (status, _, html) = b.post("/seller/messages/C-0015/reply", &other).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("<p id=\"error-code\">idempotency_key_reused</p>"), "{html}");
    let no_token = [("csrf_token", csrf.as_str()), ("text", "hi")];
    let (status, _, html) = b.post("/seller/messages/C-0015/reply", &no_token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert_eq!(h.thread("C-0015").await["message_count"], 5, "refused forms post nothing");

    let note = [("csrf_token", csrf.as_str()), ("form_token", note_token.as_str()), ("text", "Carrier says Friday.")];
    let (status, _, html) = b.post("/seller/messages/C-0015/note", &note).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert_eq!(h.thread("C-0015").await["messages"][5]["kind"], "note");

    let (_, _, html) = b.get("/seller/messages/C-0015").await;
    assert!(html.contains("<li class=\"note\""), "{html}");
    let status_token = hidden_field(&html, "status-form", "form_token");
    let update = [
        ("csrf_token", csrf.as_str()),
        ("form_token", status_token.as_str()),
        ("status", "resolved"),
        ("assignee", "agent-7"),
    ];
    let (status, _, html) = b.post("/seller/messages/C-0015/status", &update).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("<dd id=\"conversation-status\">resolved</dd>"), "{html}");
    let summary = h.thread("C-0015").await;
    assert_eq!((summary["status"].as_str(), summary["assignee"].as_str()), (Some("resolved"), Some("agent-7")));
    let bad = [("csrf_token", csrf.as_str()), ("form_token", "t-bad"), ("status", "closed"), ("assignee", "")];
    let (status, _, html) = b.post("/seller/messages/C-0015/status", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("invalid_status"), "{html}");

    let (status, _, html) = b.get("/seller/messages/C-0999").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
}

/// The value of `name` on the first element of `html` starting with `element`.
fn attribute(html: &str, element: &str, name: &str) -> String {
    let at = html.find(element).unwrap_or_else(|| panic!("no {element}: {html}"));
    let tag = &html[at..at + html[at..].find('>').unwrap_or(html.len() - at)];
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker).unwrap_or_else(|| panic!("no {name} in {tag}")) + marker.len();
    tag[start..start + tag[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_inbox_pages_to_older_conversations_and_the_pages_carry_their_data_as_attributes() {
    let h = Harness::start().await;
    // More conversations than one inbox page shows (200), written beside the server.
    let beside = DemoStore::open(h.dir.path().join("store.sqlite3"), DEFAULT_SEED_DIR).unwrap();
    beside.add_backlog(170, "Any news?").unwrap();
    drop(beside);
    let mut b = Browser::new(&h);
    b.login().await;

    let api = h.all_conversations(200).await;
    assert_eq!(api.len(), SEEDED + 170);
    let (status, _, first) = b.get("/seller/messages").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first.matches("<tr data-conversation-id=").count(), 200, "one page holds 200");
    let older = attribute(&first, "<a id=\"older\"", "data-cursor");
    let (status, _, second) = b.get(&format!("/seller/messages?before={older}")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second.matches("<tr data-conversation-id=").count(), SEEDED + 170 - 200);
    assert!(!second.contains("id=\"older\""), "the last page links nowhere older: {second}");

    // Both pages together: every conversation once, newest change first, with the API's
    // cursor and summary in the row's attributes.
    let both = format!("{first}{second}");
    let rows: Vec<&str> =
        both.split("<tr data-conversation-id=").skip(1).map(|r| r.split('>').next().unwrap()).collect();
    let mut newest_first = api.clone();
    newest_first.reverse();
    assert_eq!(rows.len(), newest_first.len());
    for (row, c) in rows.iter().zip(&newest_first) {
        let tag = format!("<tr data-conversation-id={row}");
        assert_eq!(attribute(&tag, "<tr", "data-conversation-id"), c["id"].as_str().unwrap());
        assert_eq!(attribute(&tag, "<tr", "data-cursor"), c["cursor"].as_str().unwrap());
        assert_eq!(attribute(&tag, "<tr", "data-buyer-id"), c["buyer"]["user_id"].as_str().unwrap());
        assert_eq!(attribute(&tag, "<tr", "data-status"), c["status"].as_str().unwrap());
        assert_eq!(attribute(&tag, "<tr", "data-updated-at"), c["updated_at"].as_str().unwrap());
        assert_eq!(attribute(&tag, "<tr", "data-order-id"), c["order_id"].as_str().unwrap_or(""));
    }
    let (status, _, bad) = b.get("/seller/messages?before=soon").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");

    let thread = h.thread("C-0015").await;
    let (_, _, html) = b.get("/seller/messages/C-0015").await;
    assert_eq!(attribute(&html, "<dl class=\"facts\"", "data-conversation-id"), "C-0015");
    assert_eq!(attribute(&html, "<dl class=\"facts\"", "data-cursor"), thread["cursor"].as_str().unwrap());
    assert_eq!(attribute(&html, "<dl class=\"facts\"", "data-buyer-name"), thread["buyer"]["name"].as_str().unwrap());
    let first_message = &thread["messages"][0];
    let li = format!("<li class=\"message\" data-message-id=\"{}\"", first_message["id"].as_str().unwrap());
    assert_eq!(attribute(&html, &li, "data-created-at"), first_message["created_at"].as_str().unwrap());
    assert_eq!(attribute(&html, &li, "data-author-name"), first_message["author_name"].as_str().unwrap());
}
