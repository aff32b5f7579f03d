//! Buyer messages in the seller center: the inbox (newest change first, in pages of
//! [`INBOX_SIZE`] with a link to the older ones), a conversation's thread, and its reply,
//! note and status forms. Each form carries a one-time `form_token` that the store treats
//! exactly as the API's `Idempotency-Key`: the same token posted again (a double click, a
//! browser retry) posts once and shows the same confirmation; the same token with other
//! fields is refused.
//!
//! The token is the client's to choose: the page fills in a fresh random one, and any
//! token the form comes back with (1 to 255 printable ASCII characters) is taken, so a
//! client that must be able to retry (the browser case source) puts its own idempotency
//! key there. Form tokens live in their own namespace of the store's idempotency keys
//! (`form:TOKEN`): a form token and an API `Idempotency-Key` with the same text are two
//! keys.
//!
//! Every page carries what a program reads as data attributes (the conversation's
//! `dl.facts`, each `tr` of the inbox, each `li` of the thread, the posted message on the
//! confirmation page), so a client never parses the visible text.

use std::fmt::Write as _;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

use super::{
    Access, Common, Need, Pages, csrf_ok, error_page, esc, hidden_csrf, hidden_form_token, page, random_hex,
    session_user,
};
use crate::error::{ApiError, ErrorCode};
use crate::idempotency::Idempotency;
use crate::model::{ConversationStatus, ConversationSummary};
use crate::ops::Reply;
use crate::ops::conversations::{self as talk, PostKind, PostMessage, UpdateConversation};

/// The inbox shows this many conversations, the most recently changed first.
pub(crate) const INBOX_SIZE: i64 = 200;

pub(super) fn routes(router: Router<Pages>) -> Router<Pages> {
    router
        .route("/seller/messages", get(inbox))
        .route("/seller/messages/{conversation_id}", get(thread_page))
        .route("/seller/messages/{conversation_id}/reply", post(|s, h, p, f| post_text(PostKind::Reply, s, h, p, f)))
        .route("/seller/messages/{conversation_id}/note", post(|s, h, p, f| post_text(PostKind::Note, s, h, p, f)))
        .route("/seller/messages/{conversation_id}/status", post(status))
}

fn conversation_path(id: &str) -> String {
    format!("/seller/messages/{id}")
}

#[derive(Debug, Deserialize)]
struct InboxQuery {
    /// Only conversations whose last change came before this change cursor (older pages).
    before: Option<String>,
}

async fn inbox(State(pages): State<Pages>, headers: HeaderMap, Query(q): Query<InboxQuery>) -> Response {
    if let Access::Denied(r) = pages.access(&headers, "/seller/messages", Need::Read) {
        return r;
    }
    let before = match q.before.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if n >= 0 => Some(n),
        Some(_) => {
            return error_page(&ApiError::new(ErrorCode::InvalidRequest, "`before` must be a change cursor"));
        }
    };
    let mut conversations =
        match pages.store.read(move |conn| crate::db::conversations::latest(conn, before, INBOX_SIZE + 1)).await {
            Ok(c) => c,
            Err(e) => return error_page(&e),
        };
    let older = usize::try_from(INBOX_SIZE).is_ok_and(|n| conversations.len() > n);
    conversations.truncate(usize::try_from(INBOX_SIZE).unwrap_or(usize::MAX));
    let mut rows = String::new();
    for c in &conversations {
        let _ = writeln!(
            rows,
            "<tr data-conversation-id=\"{id}\" data-cursor=\"{cursor}\" {data}><td class=\"conversation-id\"><a href=\"{href}\">{id}</a></td><td class=\"buyer\">{buyer}</td><td class=\"order\">{order}</td><td class=\"status\">{status}</td><td class=\"assignee\">{assignee}</td><td class=\"count\">{count}</td><td class=\"updated\">{updated}</td></tr>",
            id = esc(&c.id),
            cursor = esc(&c.cursor),
            data = data_attributes(c),
            href = conversation_path(&esc(&c.id)),
            buyer = esc(&c.buyer.name),
            order = esc(c.order_id.as_deref().unwrap_or("")),
            status = c.status.as_str(),
            assignee = esc(c.assignee.as_deref().unwrap_or("")),
            count = c.message_count,
            updated = esc(&c.last_message_at),
        );
    }
    // The oldest change shown: the next page lists what changed before it.
    let older = match conversations.last() {
        Some(last) if older => format!(
            "<p><a id=\"older\" href=\"/seller/messages?before={0}\" data-cursor=\"{0}\">Older conversations</a></p>",
            esc(&last.cursor)
        ),
        _ => String::new(),
    };
    let body = format!(
        "<main id=\"messages\"><h1>Buyer messages</h1>\n<table id=\"conversations\"><thead><tr><th>Conversation</th><th>Buyer</th><th>Order</th><th>Status</th><th>Assignee</th><th>Messages</th><th>Last message</th></tr></thead><tbody>\n{rows}</tbody></table>{older}</main>"
    );
    page(StatusCode::OK, "Buyer messages", &body)
}

/// A conversation's summary as data attributes (empty: none), for programs.
fn data_attributes(c: &ConversationSummary) -> String {
    format!(
        "data-buyer-id=\"{}\" data-buyer-name=\"{}\" data-order-id=\"{}\" data-status=\"{}\" data-assignee=\"{}\" data-updated-at=\"{}\"",
        esc(&c.buyer.user_id),
        esc(&c.buyer.name),
        esc(c.order_id.as_deref().unwrap_or("")),
        c.status.as_str(),
        esc(c.assignee.as_deref().unwrap_or("")),
        esc(&c.updated_at),
    )
}

fn facts(c: &ConversationSummary) -> String {
    format!(
        "<dl class=\"facts\" data-conversation-id=\"{id}\" data-cursor=\"{cursor}\" {data}>\n<dt>Buyer</dt><dd id=\"conversation-buyer\" data-user-id=\"{user}\">{name}</dd>\n<dt>Order</dt><dd id=\"conversation-order\">{order}</dd>\n<dt>Status</dt><dd id=\"conversation-status\">{status}</dd>\n<dt>Assignee</dt><dd id=\"conversation-assignee\">{assignee}</dd>\n</dl>",
        id = esc(&c.id),
        cursor = esc(&c.cursor),
        data = data_attributes(c),
        user = esc(&c.buyer.user_id),
        name = esc(&c.buyer.name),
        order = esc(c.order_id.as_deref().unwrap_or("")),
        status = c.status.as_str(),
        assignee = esc(c.assignee.as_deref().unwrap_or("")),
    )
}

async fn thread_page(State(pages): State<Pages>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let here = conversation_path(&id);
    let csrf = match pages.access(&headers, &here, Need::Read) {
        Access::Granted { csrf, .. } => csrf,
        Access::Denied(r) => return r,
    };
    let thread = match pages.store.read(move |conn| talk::thread(conn, &id)).await {
        Ok(t) => t,
        Err(e) => return error_page(&e),
    };
    // One fresh token per form: each form may be posted once.
    let tokens = match (random_hex(16), random_hex(16), random_hex(16)) {
        (Ok(a), Ok(b), Ok(c)) => [a, b, c],
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return error_page(&e),
    };
    let c = &thread.conversation;
    let mut messages = String::new();
    for m in &thread.messages {
        let _ = writeln!(
            messages,
            "<li class=\"{kind}\" data-message-id=\"{id}\" data-author=\"{author}\" data-kind=\"{kind}\" data-author-name=\"{name}\" data-created-at=\"{at}\"><span class=\"author\">{name}</span> <time>{at}</time><p class=\"text\">{text}</p></li>",
            kind = m.kind.as_str(),
            id = esc(&m.id),
            author = m.author.as_str(),
            name = esc(&m.author_name),
            at = esc(&m.created_at),
            text = esc(&m.text),
        );
    }
    let statuses: String = ConversationStatus::ALL
        .iter()
        .map(|s| {
            let selected = if *s == c.status { " selected" } else { "" };
            format!("<option value=\"{0}\"{selected}>{0}</option>", s.as_str())
        })
        .collect();
    let base = conversation_path(&esc(&c.id));
    let hidden = |token: &str| format!("{}{}", hidden_csrf(&csrf), hidden_form_token(token));
    let body = format!(
        "<main id=\"conversation\" data-conversation-id=\"{id}\" data-cursor=\"{cursor}\"><h1>Conversation {id}</h1>\n{facts}\n<ol id=\"thread\">\n{messages}</ol>\n<form id=\"reply-form\" method=\"post\" action=\"{base}/reply\">{reply_hidden}\n<label>Reply to the buyer <textarea name=\"text\" id=\"reply-text\"></textarea></label>\n<button type=\"submit\" id=\"reply-submit\">Send reply</button>\n</form>\n<form id=\"note-form\" method=\"post\" action=\"{base}/note\">{note_hidden}\n<label>Internal note (never shown to the buyer) <textarea name=\"text\" id=\"note-text\"></textarea></label>\n<button type=\"submit\" id=\"note-submit\">Add note</button>\n</form>\n<form id=\"status-form\" method=\"post\" action=\"{base}/status\">{status_hidden}\n<label>Status <select name=\"status\" id=\"status-select\">{statuses}</select></label>\n<label>Assignee <input name=\"assignee\" id=\"status-assignee\" value=\"{assignee}\"></label>\n<button type=\"submit\" id=\"status-submit\">Update</button>\n</form>\n<p><a href=\"/seller/messages\">All messages</a></p></main>",
        id = esc(&c.id),
        cursor = esc(&c.cursor),
        facts = facts(c),
        reply_hidden = hidden(&tokens[0]),
        note_hidden = hidden(&tokens[1]),
        status_hidden = hidden(&tokens[2]),
        assignee = esc(c.assignee.as_deref().unwrap_or("")),
    );
    page(StatusCode::OK, &format!("Conversation {}", c.id), &body)
}

/// What a posted form asks for, once the session is known.
enum Ask {
    Post { kind: PostKind, text: String },
    Update { status: String, assignee: String },
}

/// Applies a posted form: session, verification and CSRF checks, then the API's own
/// operation under the form's token in the writer transaction, then the confirmation
/// (or refusal) page.
async fn submit(pages: &Pages, headers: &HeaderMap, id: &str, what: &str, common: &Common, ask: Ask) -> Response {
    let here = format!("{}/{what}", conversation_path(id));
    let sid = match pages.access(headers, &here, Need::Change) {
        Access::Granted { sid, .. } => sid,
        Access::Denied(r) => return r,
    };
    if !csrf_ok(pages, &sid, &common.csrf_token) {
        return error_page(&ApiError::new(ErrorCode::InvalidRequest, "the form expired: open it again"));
    }
    let user = session_user(pages, &sid).unwrap_or_default();
    let (fields, done): (String, &str) = match &ask {
        Ask::Post { kind, text } => (format!("{kind:?}\n{user}\n{text}"), "Message posted"),
        Ask::Update { status, assignee } => (format!("{status}\n{assignee}"), "Conversation updated"),
    };
    // These forms must carry a token: a message posted twice cannot be taken back.
    let idem = match Idempotency::from_form(&common.form_token, &here, &fields) {
        Ok(Some(idem)) => idem,
        Ok(None) => {
            return error_page(&ApiError::new(ErrorCode::InvalidRequest, "the form has no form_token: open it again"));
        }
        Err(e) => return error_page(&e),
    };
    let cid = id.to_owned();
    let op = move |conn: &rusqlite::Connection| -> Result<Reply, ApiError> {
        match ask {
            Ask::Post { kind, text } => talk::post_message(conn, &cid, PostMessage { text, kind, author_name: user }),
            Ask::Update { status, assignee } => {
                let assignee = Some(assignee.trim().to_owned()).filter(|a| !a.is_empty());
                talk::update_conversation(
                    conn,
                    &cid,
                    UpdateConversation { status: Some(status), assignee: Some(assignee) },
                )
            }
        }
    };
    let (reply, replayed) = match pages.store.write(Some(idem), op).await {
        Ok(done) => done,
        Err(e) => return error_page(&e),
    };
    let back = conversation_path(&esc(id));
    if !reply.status.is_success() {
        let parsed: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
        let code = parsed["error"]["code"].as_str().unwrap_or("internal").to_owned();
        let message = parsed["error"]["message"].as_str().unwrap_or("the store refused the change").to_owned();
        let body = format!(
            "<main id=\"refused\"><h1>Not done</h1><p id=\"error-message\">{}</p><p id=\"error-code\">{}</p><p><a href=\"{back}\">Back to the conversation</a></p></main>",
            esc(&message),
            esc(&code),
        );
        return page(reply.status, "Not done", &body);
    }
    // The message the form posted (the first post's, on a replay), as the API answered.
    let answer: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
    let posted = match (answer["message"]["id"].as_str(), answer["message"]["created_at"].as_str()) {
        (Some(mid), Some(at)) => format!(
            "<p id=\"posted\" data-message-id=\"{}\" data-created-at=\"{}\">Message {} posted at {}.</p>",
            esc(mid),
            esc(at),
            esc(mid),
            esc(at)
        ),
        _ => String::new(),
    };
    let cid = id.to_owned();
    let conversation = match pages.store.read(move |conn| talk::thread(conn, &cid)).await {
        Ok(t) => t.conversation,
        Err(e) => return error_page(&e),
    };
    let body = format!(
        "<main id=\"confirmation\" data-replayed=\"{replayed}\"><h1>Done</h1><p id=\"confirmation-message\">{done} in conversation {}.</p>{posted}{}<p><a href=\"{back}\">Back to the conversation</a></p></main>",
        esc(&conversation.id),
        facts(&conversation),
    );
    page(StatusCode::OK, "Done", &body)
}

/// A textarea's text as typed: browsers send its line breaks as CRLF (HTML's form
/// submission rules); the store keeps them as the API does, LF.
fn from_textarea(text: &str) -> String {
    text.replace("\r\n", "\n")
}

#[derive(Debug, Deserialize)]
struct TextForm {
    #[serde(flatten)]
    common: Common,
    #[serde(default)]
    text: String,
}

/// The reply and the note forms: a message of `kind` posted to the conversation.
async fn post_text(
    kind: PostKind,
    State(pages): State<Pages>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TextForm>,
) -> Response {
    let text = from_textarea(&form.text);
    let what = match kind {
        PostKind::Reply => "reply",
        PostKind::Note => "note",
    };
    submit(&pages, &headers, &id, what, &form.common, Ask::Post { kind, text }).await
}

#[derive(Debug, Deserialize)]
struct StatusForm {
    #[serde(flatten)]
    common: Common,
    #[serde(default)]
    status: String,
    #[serde(default)]
    assignee: String,
}

async fn status(
    State(pages): State<Pages>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<StatusForm>,
) -> Response {
    let ask = Ask::Update { status: form.status, assignee: form.assignee };
    submit(&pages, &headers, &id, "status", &form.common, ask).await
}
