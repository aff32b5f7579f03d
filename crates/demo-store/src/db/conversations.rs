//! SQL for buyer messages: conversations, their messages and the change counter.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::ApiError;
use crate::model::{Author, Buyer, ConversationStatus, ConversationSummary, Message, MessageKind};

/// A conversation's columns, with its buyer's name, message count and last message time.
const SUMMARY: &str = "SELECT c.id, c.buyer_id, cu.first_name || ' ' || cu.last_name, c.order_id, c.status,
        c.assignee, c.created_at, c.updated_at,
        COALESCE((SELECT m.created_at FROM messages m WHERE m.conversation_id = c.id
                  ORDER BY m.seq DESC LIMIT 1), c.created_at),
        (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id),
        c.change_seq
    FROM conversations c JOIN customers cu ON cu.customer_id = c.buyer_id";

fn summary_row(r: &Row<'_>) -> rusqlite::Result<(ConversationSummary, String)> {
    let status: String = r.get(4)?;
    let change_seq: i64 = r.get(10)?;
    Ok((
        ConversationSummary {
            id: r.get(0)?,
            buyer: Buyer { user_id: r.get(1)?, name: r.get(2)? },
            order_id: r.get(3)?,
            // Checked below: the column's CHECK constraint allows only the three statuses.
            status: ConversationStatus::Open,
            assignee: r.get(5)?,
            created_at: r.get(6)?,
            updated_at: r.get(7)?,
            last_message_at: r.get(8)?,
            message_count: r.get(9)?,
            cursor: change_seq.to_string(),
        },
        status,
    ))
}

fn with_status((mut summary, status): (ConversationSummary, String)) -> Result<ConversationSummary, ApiError> {
    summary.status = ConversationStatus::parse(&status)
        .ok_or_else(|| ApiError::internal(format_args!("conversation {} has status {status:?}", summary.id)))?;
    Ok(summary)
}

pub fn summary(conn: &Connection, id: &str) -> Result<Option<ConversationSummary>, ApiError> {
    conn.prepare_cached(&format!("{SUMMARY} WHERE c.id = ?1"))?
        .query_row([id], summary_row)
        .optional()?
        .map(with_status)
        .transpose()
}

/// Conversations changed after `since`, in the order of their changes (at most `limit`).
pub fn changed_since(conn: &Connection, since: i64, limit: i64) -> Result<Vec<ConversationSummary>, ApiError> {
    conn.prepare_cached(&format!("{SUMMARY} WHERE c.change_seq > ?1 ORDER BY c.change_seq LIMIT ?2"))?
        .query_map(params![since, limit], summary_row)?
        .map(|row| with_status(row?))
        .collect()
}

/// The most recently changed conversations first (the seller center's inbox), those
/// changed before the change `before` only, if given (its older pages).
pub fn latest(conn: &Connection, before: Option<i64>, limit: i64) -> Result<Vec<ConversationSummary>, ApiError> {
    conn.prepare_cached(&format!("{SUMMARY} WHERE c.change_seq < ?1 ORDER BY c.change_seq DESC LIMIT ?2"))?
        .query_map(params![before.unwrap_or(i64::MAX), limit], summary_row)?
        .map(|row| with_status(row?))
        .collect()
}

/// A conversation's messages, oldest first.
pub fn messages(conn: &Connection, conversation_id: &str) -> Result<Vec<Message>, ApiError> {
    conn.prepare_cached(
        "SELECT id, author, kind, author_name, text, created_at FROM messages
         WHERE conversation_id = ?1 ORDER BY seq",
    )?
    .query_map([conversation_id], super::six_texts)?
    .map(|row| {
        let [id, author, kind, author_name, text, created_at] = row?;
        let author = match author.as_str() {
            "buyer" => Author::Buyer,
            "seller" => Author::Seller,
            other => return Err(ApiError::internal(format_args!("message {id} has author {other:?}"))),
        };
        let kind = match kind.as_str() {
            "message" => MessageKind::Message,
            "note" => MessageKind::Note,
            other => return Err(ApiError::internal(format_args!("message {id} has kind {other:?}"))),
        };
        Ok(Message { id, author, kind, author_name, text, created_at })
    })
    .collect()
}

/// The next value of the global change counter: one more than any conversation holds.
/// Only the writer connection calls this, inside its transaction, so values are never
/// shared and commit in order.
fn next_change_seq(conn: &Connection) -> Result<i64, ApiError> {
    Ok(conn
        .prepare_cached("SELECT COALESCE(MAX(change_seq), 0) + 1 FROM conversations")?
        .query_row([], |r| r.get(0))?)
}

/// Creates a conversation (without messages) and returns its id.
pub fn insert_conversation(
    conn: &Connection,
    buyer_id: &str,
    order_id: Option<&str>,
    status: ConversationStatus,
    created_at: &str,
) -> Result<String, ApiError> {
    let number: i64 = conn.prepare_cached("SELECT COUNT(*) + 1 FROM conversations")?.query_row([], |r| r.get(0))?;
    let id = format!("C-{number:04}");
    let seq = next_change_seq(conn)?;
    conn.prepare_cached(
        "INSERT INTO conversations (id, buyer_id, order_id, status, assignee, created_at, updated_at, change_seq)
         VALUES (?1, ?2, ?3, ?4, NULL, ?5, ?5, ?6)",
    )?
    .execute(params![id, buyer_id, order_id, status.as_str(), created_at, seq])?;
    Ok(id)
}

/// Appends a message to a conversation (the caller records the change with [`touch`]).
pub fn insert_message(
    conn: &Connection,
    conversation_id: &str,
    author: Author,
    kind: MessageKind,
    author_name: &str,
    text: &str,
    created_at: &str,
) -> Result<Message, ApiError> {
    let seq: i64 =
        conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM messages")?.query_row([], |r| r.get(0))?;
    let id = format!("M-{seq:06}");
    conn.prepare_cached(
        "INSERT INTO messages (id, conversation_id, seq, author, kind, author_name, text, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![id, conversation_id, seq, author.as_str(), kind.as_str(), author_name, text, created_at])?;
    Ok(Message {
        id,
        author,
        kind,
        author_name: author_name.to_owned(),
        text: text.to_owned(),
        created_at: created_at.to_owned(),
    })
}

/// Records a change of a conversation: its status and assignee now, `updated_at`, and the
/// next change_seq.
pub fn touch(
    conn: &Connection,
    id: &str,
    status: ConversationStatus,
    assignee: Option<&str>,
    updated_at: &str,
) -> Result<(), ApiError> {
    let seq = next_change_seq(conn)?;
    conn.prepare_cached(
        "UPDATE conversations SET status = ?2, assignee = ?3, updated_at = ?4, change_seq = ?5 WHERE id = ?1",
    )?
    .execute(params![id, status.as_str(), assignee, updated_at, seq])?;
    Ok(())
}

/// The buyer's most recently changed conversation about `order_id` (`None`: about no
/// order), if any.
pub fn latest_of_buyer(
    conn: &Connection,
    buyer_id: &str,
    order_id: Option<&str>,
) -> Result<Option<ConversationSummary>, ApiError> {
    let id: Option<String> = conn
        .prepare_cached(
            "SELECT id FROM conversations WHERE buyer_id = ?1 AND order_id IS ?2
             ORDER BY change_seq DESC LIMIT 1",
        )?
        .query_row(params![buyer_id, order_id], |r| r.get(0))
        .optional()?;
    match id {
        Some(id) => summary(conn, &id),
        None => Ok(None),
    }
}

/// Whether the conversations were seeded already.
pub fn seeded(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row("SELECT EXISTS (SELECT 1 FROM conversation_seed_info)", [], |r| r.get(0))
}

pub fn mark_seeded(conn: &Connection, source: &str, conversations: usize) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO conversation_seed_info (id, seeded_at, source, conversations) VALUES (1, ?1, ?2, ?3)",
        params![super::now(), source, i64::try_from(conversations).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}

/// The customer who placed an order, if the order exists.
pub fn order_owner(conn: &Connection, order_id: &str) -> Result<Option<String>, ApiError> {
    Ok(conn
        .prepare_cached("SELECT customer_id FROM orders WHERE order_id = ?1")?
        .query_row([order_id], |r| r.get(0))
        .optional()?)
}

/// A customer's display name ("First Last"), if the customer exists.
pub fn customer_name(conn: &Connection, customer_id: &str) -> Result<Option<String>, ApiError> {
    Ok(conn
        .prepare_cached("SELECT first_name || ' ' || last_name FROM customers WHERE customer_id = ?1")?
        .query_row([customer_id], |r| r.get(0))
        .optional()?)
}

/// `n` new conversations, one buyer message each, from the seeded buyers in turn (a
/// backlog for benchmarks). Returns their ids.
pub fn backlog(conn: &Connection, n: usize, text: &str) -> Result<Vec<String>, ApiError> {
    let ids: Vec<String> = conn
        .prepare("SELECT customer_id FROM customers ORDER BY customer_id")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut buyers = Vec::with_capacity(ids.len());
    for id in ids {
        let name = customer_name(conn, &id)?.unwrap_or_default();
        buyers.push((id, name));
    }
    let mut ids = Vec::with_capacity(n);
    let now = super::now();
    for (buyer, name) in buyers.iter().cycle().take(if buyers.is_empty() { 0 } else { n }) {
        let id = insert_conversation(conn, buyer, None, ConversationStatus::Open, &now)?;
        insert_message(conn, &id, Author::Buyer, MessageKind::Message, name, text, &now)?;
        touch(conn, &id, ConversationStatus::Open, None, &now)?;
        ids.push(id);
    }
    Ok(ids)
}
