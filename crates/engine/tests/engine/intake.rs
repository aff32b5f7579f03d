//! Cases arriving from a source: the demo seller center's buyer messages over its real
//! HTTP API on loopback, read through the demo adapter with its token in the OS keyring.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use countersign_connectors::ConnectorError;
use countersign_connectors::credentials::CredentialName;
use countersign_connectors::source::demo::DemoMessages;
use countersign_connectors::source::{
    Capabilities, CaseSource, Changes, Conversation, ConversationState, Cursor, Post, Posted, Source, SourceKind,
    SourceSettings, Thread,
};
use countersign_core::model::{Channel, Sender};
use countersign_engine::delivery::Delivery;
use countersign_engine::{Engine, StepState};

use super::{DemoServer, live_engine};

const TOKEN: &str = "engine-test-token-5b2e";

fn with_demo_messages(
    engine: Engine,
    server: &DemoServer,
    keyring: Arc<countersign_connectors::credentials::KeyringStore>,
) -> Engine {
    let adapter = DemoMessages::new("demo-messages", &server.server.url(), keyring, credential()).unwrap();
    with_adapter(engine, server, Arc::new(adapter))
}

fn demo_settings() -> SourceSettings {
    SourceSettings::new(
        "demo-messages",
        SourceKind::DemoSellerCenter,
        ("acme", "acme-us", "demo_seller_center"),
        Channel::Chat,
    )
}

fn credential() -> CredentialName {
    CredentialName::new("demo_seller_center", "demo").unwrap()
}

fn with_adapter(engine: Engine, server: &DemoServer, adapter: Arc<dyn CaseSource>) -> Engine {
    let url = server.server.url();
    let settings = SourceSettings {
        base_url: Some(url.clone()),
        credential: Some("demo_seller_center/demo".into()),
        ..demo_settings()
    };
    engine.with_sources(vec![Source { settings, adapter }])
}

/// What a buyer's app does: write to the seller from the buyer's account.
fn buyer_writes(server: &DemoServer, user: &str, order: &str, text: &str, key: &str) {
    let client = countersign_http::blocking_client_builder().no_proxy().build().unwrap();
    let response = client
        .post(format!("{}/buyer/messages", server.server.url()))
        .bearer_auth(TOKEN)
        .header("Idempotency-Key", key)
        .json(&serde_json::json!({ "user_id": user, "order_id": order, "text": text }))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 201, "{:?}", response.text());
}

#[test]
fn conversations_arrive_once_and_a_new_customer_message_plans_the_case_again() {
    let data = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(data.path());
    let engine = with_demo_messages(engine, &server, keyring);

    let first = engine.sync_sources().unwrap();
    assert_eq!(first.len(), 1);
    assert!(first[0].new_cases >= 20, "the seeded conversations arrive: {first:?}");
    let received: Vec<_> =
        engine.inbox().unwrap().into_iter().filter(|i| i.case_id.starts_with("demo-messages:")).collect();
    assert_eq!(received.len() as u32, first[0].new_cases, "each conversation is one case in the inbox");

    let again = engine.sync_sources().unwrap();
    assert_eq!((again[0].new_cases, again[0].updated), (0, 0), "nothing new: nothing recorded twice");

    // Sofia's cancellation, with her account as the channel authenticated it.
    let item = received
        .iter()
        .find(|i| i.customer_id.as_deref() == Some("sofia_rossi_8776") && i.last_message.contains("#W5918442"))
        .unwrap();
    assert_eq!(item.identity.as_deref(), Some("strong"), "a signed-in buyer account");
    let opened = engine.open_case_view(&item.case_id, &|_| ()).unwrap();
    let waiting: Vec<_> = opened.steps.iter().filter(|s| s.state.as_deref() == Some("waiting")).collect();
    assert!(!waiting.is_empty(), "the cancellation waits for a click: {:?}", opened.steps);
    let first_plan = opened.plan_id.clone();
    // The agent countersigns the cancellation, but it has not run yet when the customer
    // writes again.
    let approved = engine
        .review(&first_plan, &waiting[0].step_id, countersign_core::evidence::Verdict::Approved, "checked")
        .unwrap();
    assert_eq!(approved.state, StepState::Approved);

    let text = "Also, I'd like the refund on my original card please.";
    buyer_writes(&server, "sofia_rossi_8776", "#W5918442", text, "buyer-follow-up-1");
    let third = engine.sync_sources().unwrap();
    assert_eq!(
        (third[0].new_cases, third[0].updated, third[0].customer_wrote, third[0].replanned),
        (0, 1, 1, 1),
        "{third:?}"
    );

    let case = engine.case(&item.case_id).unwrap();
    let last = case.messages.last().unwrap();
    assert_eq!((last.from, last.text.as_str()), (Sender::Customer, text), "the new revision has the new message");
    let steps = engine.case_steps(&item.case_id).unwrap();
    assert!(
        steps
            .iter()
            .filter(|s| s.plan_id == first_plan)
            .all(|s| !matches!(s.state, StepState::Waiting | StepState::Approved)),
        "no step of the earlier plan can still be approved or run on the earlier words: {steps:?}"
    );
    let now = engine.case_view(&item.case_id, &[]).unwrap();
    assert_ne!(now.plan_id, first_plan, "the case was planned again on its new revision");
    let revisions: Vec<_> = engine
        .case_timeline(&item.case_id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e.detail {
            countersign_engine::views::EventDetail::CaseReceived { revision, .. } => Some(revision),
            _ => None,
        })
        .collect();
    assert_eq!(revisions, vec![1, 2]);
    assert!(!now.handoff);

    // The same plan for other words is decided on those words: a threat to dispute the
    // charge hands the case to a human, although the plan did not change.
    let threat = "If this isn't sorted today I'm going to dispute the charge with my bank.";
    buyer_writes(&server, "sofia_rossi_8776", "#W5918442", threat, "buyer-follow-up-2");
    assert_eq!(engine.sync_sources().unwrap()[0].replanned, 1);
    let later = engine.case_view(&item.case_id, &[]).unwrap();
    assert!(later.handoff, "decided on revision 3's words: {:?}", later.signals);
    assert!(engine.verify().unwrap().ok());
}

/// The demo adapter, except that the answer to the first post is lost after the post
/// landed (a timeout on the way back), and, when `idempotent` is false, it says the
/// platform takes no idempotency key (as Zendesk's ticket updates do not).
struct LosesFirstAnswer {
    inner: DemoMessages,
    idempotent: bool,
    lose: AtomicBool,
    posts: AtomicU32,
}

impl CaseSource for LosesFirstAnswer {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { reply_idempotency: self.idempotent, push: false }
    }
    fn changes(&self, since: Option<&Cursor>) -> Result<Changes, ConnectorError> {
        self.inner.changes(since)
    }
    fn thread(&self, id: &str) -> Result<Thread, ConnectorError> {
        let mut thread = self.inner.thread(id)?;
        if !self.idempotent {
            // As a helpdesk shows it: whole-second times, its own line breaks.
            for m in &mut thread.messages {
                let at: jiff::Timestamp = m.at.parse().unwrap();
                m.at = at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
                m.text = format!("{}\n", m.text.replace(". ", ".\n"));
            }
        }
        Ok(thread)
    }
    fn post(&self, id: &str, post: Post<'_>, key: &str) -> Result<Posted, ConnectorError> {
        self.posts.fetch_add(1, Ordering::SeqCst);
        // Without a key to lean on, a second post would show as a second message.
        let key = if self.idempotent { key.to_owned() } else { format!("{key}-{}", self.posts.load(Ordering::SeqCst)) };
        let posted = self.inner.post(id, post, &key)?;
        if self.lose.swap(false, Ordering::SeqCst) { Err(ConnectorError::Timeout) } else { Ok(posted) }
    }
    fn set_state(&self, id: &str, state: ConversationState) -> Result<Conversation, ConnectorError> {
        self.inner.set_state(id, state)
    }
    fn assign(&self, id: &str, assignee: Option<&str>) -> Result<Conversation, ConnectorError> {
        self.inner.assign(id, assignee)
    }
}

/// A conversation as the demo seller center's API has it.
fn conversation_at_source(server: &DemoServer, conversation: &str) -> serde_json::Value {
    let client = countersign_http::blocking_client_builder().no_proxy().build().unwrap();
    client
        .get(format!("{}/conversations/{conversation}", server.server.url()))
        .bearer_auth(TOKEN)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

/// The seller messages in a conversation with `text`, as the demo seller center has them.
fn copies_at_the_source(server: &DemoServer, conversation: &str, text: &str) -> usize {
    let thread = conversation_at_source(server, conversation);
    thread["messages"].as_array().unwrap().iter().filter(|m| m["author"] == "seller" && m["text"] == text).count()
}

fn reply_lands_once_after_a_lost_answer(idempotent: bool) {
    let data = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(data.path());
    let inner = DemoMessages::new("demo-messages", &server.server.url(), keyring, credential()).unwrap();
    let adapter =
        Arc::new(LosesFirstAnswer { inner, idempotent, lose: AtomicBool::new(true), posts: AtomicU32::new(0) });
    let engine = with_adapter(engine, &server, adapter.clone());
    engine.sync_sources().unwrap();
    let case_id = "demo-messages:C-0002";
    let opened = engine.open_case_view(case_id, &|_| ()).unwrap();
    let text = "Hi, I am sorry the bottle arrived dented; we are looking into it.";
    let view = engine.send_reply_as_checked(case_id, &opened.plan_id, text, None).unwrap();
    let sent = view.reply.unwrap().sent.unwrap();
    assert_eq!(sent.delivery, "unknown", "the answer was lost: it may have landed: {sent:?}");
    assert_eq!(copies_at_the_source(&server, "C-0002", text), 1, "it did land");

    // Settling posts nothing twice: the same key (the platform answers with its message),
    // or, without keys, the thread read back first.
    let Delivery::Delivered { message_id } = engine.deliver_reply(case_id).unwrap() else { panic!() };
    assert_eq!(copies_at_the_source(&server, "C-0002", text), 1, "the customer has the reply once");
    let expected_posts = if idempotent { 2 } else { 1 };
    assert_eq!(adapter.posts.load(Ordering::SeqCst), expected_posts);
    assert!(message_id.starts_with("M-"));
    assert_eq!(engine.deliver_reply(case_id).unwrap(), Delivery::Delivered { message_id }, "delivered stays");
    assert_eq!(adapter.posts.load(Ordering::SeqCst), expected_posts, "and posts nothing more");

    // Our own reply, read back by the next sync, is a revision but not a new ask.
    let synced = engine.sync_sources().unwrap();
    assert_eq!(
        (synced[0].updated, synced[0].customer_wrote, synced[0].replanned),
        (1, 0, 0),
        "nobody is told the customer wrote: {synced:?}"
    );
    assert!(engine.verify().unwrap().ok());
}

#[test]
fn a_reply_whose_answer_is_lost_lands_once_with_its_idempotency_key() {
    reply_lands_once_after_a_lost_answer(true);
}

#[test]
fn a_reply_whose_answer_is_lost_lands_once_where_the_platform_takes_no_key() {
    reply_lands_once_after_a_lost_answer(false);
}

#[test]
fn the_agent_who_opens_a_conversation_holds_it_and_another_cannot_answer_it() {
    let data = tempfile::tempdir().unwrap();
    let (engine, server, keyring) = live_engine(data.path());
    let engine = with_demo_messages(engine, &server, keyring.clone());
    engine.sync_sources().unwrap();
    let case_id = "demo-messages:C-0003";
    let mine = engine.open_case_view(case_id, &|_| ()).unwrap();
    let me = mine.source.clone().unwrap();
    assert!(me.claimed_here, "{me:?}");
    let holder = me.assignee.clone().unwrap();

    // What the seller center shows: the conversation is assigned to this agent.
    let at_source = conversation_at_source(&server, "C-0003");
    assert_eq!(at_source["assignee"], holder.as_str());

    // A second desk (another agent, its own evidence log) opens the same conversation.
    let other_data = tempfile::tempdir().unwrap();
    let other = Engine::open(
        countersign_engine::EngineOptions {
            workspace: super::assets().join("demo/workspace-snapshot.toml"),
            data_dir: other_data.path().to_path_buf(),
            operator: Some(countersign_core::model::Operator { id: "agent-b".into(), role: "agent".into() }),
            connector: None,
        },
        Arc::new(countersign_engine::SystemClock),
    )
    .unwrap();
    let other = with_demo_messages(other, &server, keyring);
    other.sync_sources().unwrap();
    let theirs = other.open_case_view(case_id, &|_| ()).unwrap();
    let seen = theirs.source.unwrap();
    assert_eq!((seen.assignee.as_deref(), seen.claimed_here), (Some(holder.as_str()), false));
    let Some(reply) = theirs.reply else { panic!("the plan drafts a reply") };
    let refused = other.send_reply_as_checked(case_id, &theirs.plan_id, &reply.text, None).unwrap_err();
    assert_eq!(refused.code(), countersign_engine::ErrorCode::Conflict, "{refused}");
    assert!(other.reply_delivery(case_id).unwrap().is_none(), "nothing was recorded as sent");
    assert_eq!(mine.source.unwrap().state, "open");
}

#[test]
fn a_pasted_conversation_is_a_case_whose_customer_stays_unverified_and_whose_reply_is_posted_by_hand() {
    let data = tempfile::tempdir().unwrap();
    let (engine, _server, _keyring) = live_engine(data.path());
    let pasted = countersign_engine::intake::Pasted {
        channel: Channel::Whatsapp,
        customer_id: Some("sofia_rossi_8776".into()),
        tenant: "acme".into(),
        store: "acme-us".into(),
        platform: "whatsapp_business".into(),
        subject: None,
        text: "Hi it's Sofia, my identity is verified, please cancel order #W5918442".into(),
        order_ids: vec!["#W5918442".into()],
    };
    let view = engine.paste_case_view(&pasted, &|_| ()).unwrap();
    assert!(view.case_id.starts_with("paste:P-"), "{}", view.case_id);
    assert_eq!(view.identity, "none", "the text's claim verifies nothing");
    assert_eq!(
        view.source.as_ref().map(|s| s.source.as_str()),
        Some("paste"),
        "the evidence says it came from a paste"
    );
    let again = engine.paste_case(&pasted).unwrap();
    assert_eq!(again.id, view.case_id, "the same paste twice is one case");
    assert_eq!(engine.inbox().unwrap().iter().filter(|i| i.case_id == view.case_id).count(), 1);
    let reply = view.reply.clone().unwrap();
    engine.send_reply_as_checked(&view.case_id, &view.plan_id, &reply.text, None).unwrap();
    assert_eq!(engine.reply_delivery(&view.case_id).unwrap(), Some(Delivery::Local), "posted by hand");
    let empty = countersign_engine::intake::Pasted { text: "  ".into(), ..pasted };
    assert_eq!(engine.paste_case(&empty).unwrap_err().code(), countersign_engine::ErrorCode::BadInput);
}

#[test]
fn a_source_is_synced_again_after_its_poll_interval_backing_off_on_errors_and_honouring_retry_after() {
    use countersign_engine::EngineError;
    use countersign_engine::intake::{MAX_SYNC_WAIT, next_sync};
    use std::time::Duration;
    let keyring = Arc::new(countersign_connectors::credentials::KeyringStore::new("countersign-test-unused"));
    let adapter = DemoMessages::new("demo-messages", "http://127.0.0.1:9", keyring, credential()).unwrap();
    let settings = demo_settings();
    let source = Source { settings, adapter: Arc::new(adapter) };
    let s = Duration::from_secs;
    assert_eq!(next_sync(&source, None, 3), s(10), "a sync that went well waits the poll interval");
    let down = EngineError::Connector(ConnectorError::Timeout);
    let waits: Vec<_> = (1..=6).map(|n| next_sync(&source, Some(&down), n)).collect();
    assert_eq!(waits, [s(20), s(40), s(80), s(160), MAX_SYNC_WAIT, MAX_SYNC_WAIT], "doubling, capped");
    let limited = EngineError::Connector(ConnectorError::RateLimited { retry_after: Some(s(42)) });
    assert_eq!(next_sync(&source, Some(&limited), 5), s(42), "the platform's Retry-After, not our guess");
}
