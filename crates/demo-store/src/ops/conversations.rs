//! Buyer messages: listing conversations by change, reading a thread, the seller's
//! replies, notes and updates, and the buyer's messages. Each runs on a connection
//! inside the caller's transaction, like the other operations.

use axum::http::StatusCode;
use rusqlite::Connection;
use serde::{Deserialize, Deserializer, Serialize};

use super::Reply;
use crate::db;
use crate::db::conversations as sql;
use crate::error::{ApiError, ErrorCode};
use crate::model::{Author, ConversationSummary, ConversationThread, Message, MessageKind};
use crate::rules;

/// `limit` when a listing gives none, and the most it may ask for.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

fn conversation_or_404(conn: &Connection, id: &str) -> Result<ConversationSummary, ApiError> {
    sql::summary(conn, id)?
        .ok_or_else(|| ApiError::new(ErrorCode::ConversationNotFound, format!("no conversation with id {id:?}")))
}

// ---------------------------------------------------------------- reads

/// `GET /conversations?since=&limit=`, as sent (both validated here, so a bad value gets
/// a clear message rather than a parser's).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub since: Option<String>,
    pub limit: Option<String>,
}

#[derive(Serialize)]
struct Listing {
    conversations: Vec<ConversationSummary>,
    next_cursor: String,
    has_more: bool,
}

fn parse_since(since: Option<&str>) -> Result<i64, ApiError> {
    let Some(since) = since else { return Ok(0) };
    since.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("`since` must be a cursor from an earlier listing (a whole number >= 0), not {since:?}"),
        )
    })
}

fn parse_limit(limit: Option<&str>) -> Result<i64, ApiError> {
    let Some(limit) = limit else { return Ok(DEFAULT_LIMIT) };
    limit.parse::<i64>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("`limit` must be a whole number from 1 to {MAX_LIMIT}, not {limit:?}"),
        )
    })
}

/// The conversations changed after the cursor `since`, oldest change first.
pub fn list_changed(conn: &Connection, query: &ListQuery) -> Result<Reply, ApiError> {
    let since = parse_since(query.since.as_deref())?;
    let limit = parse_limit(query.limit.as_deref())?;
    let mut conversations = sql::changed_since(conn, since, limit + 1)?;
    let has_more = conversations.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    conversations.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next_cursor = conversations.last().map_or_else(|| since.to_string(), |c| c.cursor.clone());
    Reply::json(StatusCode::OK, &Listing { conversations, next_cursor, has_more })
}

pub fn thread(conn: &Connection, id: &str) -> Result<ConversationThread, ApiError> {
    let conversation = conversation_or_404(conn, id)?;
    let messages = sql::messages(conn, &conversation.id)?;
    Ok(ConversationThread { conversation, messages })
}

pub fn conversation_details(conn: &Connection, id: &str) -> Result<Reply, ApiError> {
    Reply::json(StatusCode::OK, &thread(conn, id)?)
}

// ---------------------------------------------------------------- seller writes

/// What the seller posts: a reply the buyer sees, or an internal note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PostKind {
    Reply,
    Note,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    pub text: String,
    pub kind: PostKind,
    pub author_name: String,
}

#[derive(Serialize)]
struct Posted {
    message: Message,
    conversation: ConversationSummary,
}

/// Appends the seller's reply or note. A reply hands the turn to the buyer (`waiting`,
/// unless resolved); a note changes no status. Either is a change of the conversation.
pub fn post_message(conn: &Connection, id: &str, req: PostMessage) -> Result<Reply, ApiError> {
    let text = rules::message_text(&req.text)?;
    let author_name = rules::required_text("author_name", &req.author_name)?;
    let conversation = conversation_or_404(conn, id)?;
    let (kind, status) = match req.kind {
        PostKind::Reply => (MessageKind::Message, rules::status_after_reply(conversation.status)),
        PostKind::Note => (MessageKind::Note, conversation.status),
    };
    let now = db::now();
    let message = sql::insert_message(conn, &conversation.id, Author::Seller, kind, &author_name, &text, &now)?;
    sql::touch(conn, &conversation.id, status, conversation.assignee.as_deref(), &now)?;
    Reply::json(StatusCode::CREATED, &Posted { message, conversation: conversation_or_404(conn, id)? })
}

/// Tells a field that was sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateConversation {
    #[serde(default)]
    pub status: Option<String>,
    /// `null` unassigns; left out, the assignee stays.
    #[serde(default, deserialize_with = "present")]
    pub assignee: Option<Option<String>>,
}

/// Sets the status and/or the assignee. A change that changes nothing is not a change
/// (the conversation keeps its cursor).
pub fn update_conversation(conn: &Connection, id: &str, req: UpdateConversation) -> Result<Reply, ApiError> {
    let status = req.status.as_deref().map(rules::conversation_status).transpose()?;
    let assignee = match req.assignee {
        Some(Some(name)) => Some(Some(rules::required_text("assignee", &name)?)),
        Some(None) => Some(None),
        None => None,
    };
    let conversation = conversation_or_404(conn, id)?;
    let new_status = status.unwrap_or(conversation.status);
    let new_assignee = assignee.unwrap_or_else(|| conversation.assignee.clone());
    if new_status != conversation.status || new_assignee != conversation.assignee {
        sql::touch(conn, &conversation.id, new_status, new_assignee.as_deref(), &db::now())?;
    }
    Reply::json(StatusCode::OK, &conversation_or_404(conn, id)?)
}

// ---------------------------------------------------------------- buyer writes

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuyerMessage {
    pub user_id: String,
    #[serde(default)]
    pub order_id: Option<String>,
    pub text: String,
}

/// A buyer writes: the message goes to their latest conversation about that order (or
/// about no order), which (re)opens; with none yet, a new conversation starts.
pub fn buyer_message(conn: &Connection, req: BuyerMessage) -> Result<Reply, ApiError> {
    let text = rules::message_text(&req.text)?;
    let buyer_name = sql::customer_name(conn, &req.user_id)?
        .ok_or_else(|| ApiError::new(ErrorCode::CustomerNotFound, format!("no customer with id {:?}", req.user_id)))?;
    let order_id = req.order_id.as_deref().map(super::normalize_order_id);
    if let Some(order_id) = &order_id {
        rules::check_buyer_order(&req.user_id, order_id, sql::order_owner(conn, order_id)?.as_deref())?;
    }
    let now = db::now();
    let (id, assignee, status) = match sql::latest_of_buyer(conn, &req.user_id, order_id.as_deref())? {
        Some(c) => (c.id, c.assignee, rules::status_after_buyer_message(c.status)),
        None => {
            let status = crate::model::ConversationStatus::Open;
            (sql::insert_conversation(conn, &req.user_id, order_id.as_deref(), status, &now)?, None, status)
        }
    };
    let message = sql::insert_message(conn, &id, Author::Buyer, MessageKind::Message, &buyer_name, &text, &now)?;
    sql::touch(conn, &id, status, assignee.as_deref(), &now)?;
    Reply::json(StatusCode::CREATED, &Posted { message, conversation: conversation_or_404(conn, &id)? })
}
