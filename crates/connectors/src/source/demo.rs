//! The demo seller center's buyer messages (`crates/demo-store`, its README lists the
//! endpoints): conversations per buyer and order, listed by a change cursor, replies and
//! notes with an `Idempotency-Key` the store honours. A buyer writes from a signed-in
//! marketplace account, so the channel's identity of the customer is authenticated.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use countersign_core::model::Sender;
use serde::Deserialize;
use serde_json::json;

use super::wire::{Auth, Wire, malformed, parse};
use super::{
    Capabilities, CaseSource, Changes, ChannelIdentity, Conversation, ConversationState, Cursor, Post, Posted, Thread,
    ThreadMessage, Visibility,
};
use crate::ConnectorError;
use crate::credentials::{CredentialName, CredentialStore};

/// How many conversations one listing asks for.
const PAGE: u32 = 100;

#[derive(Debug)]
pub struct DemoMessages {
    name: String,
    wire: Wire,
}

impl DemoMessages {
    /// The source named `name` at `base_url` (the demo store's root), its bearer token under
    /// `credential` in `credentials`.
    pub fn new(
        name: &str,
        base_url: &str,
        credentials: Arc<dyn CredentialStore>,
        credential: CredentialName,
    ) -> Result<DemoMessages, ConnectorError> {
        Ok(DemoMessages { name: name.to_owned(), wire: Wire::new(base_url, credentials, credential, Auth::Bearer)? })
    }
}

#[derive(Deserialize)]
struct Buyer {
    user_id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Summary {
    id: String,
    buyer: Buyer,
    #[serde(default)]
    order_id: Option<String>,
    status: ConversationState,
    #[serde(default)]
    assignee: Option<String>,
    updated_at: String,
}

impl From<Summary> for Conversation {
    fn from(s: Summary) -> Conversation {
        Conversation {
            id: s.id,
            customer: ChannelIdentity { user_id: s.buyer.user_id, name: s.buyer.name, authenticated: true },
            subject: None,
            order_ids: s.order_id.into_iter().collect(),
            state: s.status,
            assignee: s.assignee,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Deserialize)]
struct Listing {
    conversations: Vec<Summary>,
    next_cursor: String,
    has_more: bool,
}

#[derive(Deserialize)]
struct Message {
    id: String,
    author: String,
    kind: String,
    #[serde(default)]
    author_name: Option<String>,
    text: String,
    created_at: String,
}

impl TryFrom<Message> for ThreadMessage {
    type Error = ConnectorError;

    fn try_from(m: Message) -> Result<ThreadMessage, ConnectorError> {
        let from = match m.author.as_str() {
            "buyer" => Sender::Customer,
            "seller" => Sender::Agent,
            other => return Err(malformed(format!("message {} has author {other:?}", m.id))),
        };
        let visibility = match m.kind.as_str() {
            "message" => Visibility::Public,
            "note" => Visibility::Internal,
            other => return Err(malformed(format!("message {} has kind {other:?}", m.id))),
        };
        Ok(ThreadMessage { id: m.id, from, visibility, author: m.author_name, text: m.text, at: m.created_at })
    }
}

#[derive(Deserialize)]
struct Read {
    #[serde(flatten)]
    summary: Summary,
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct PostAnswer {
    message: Message,
}

fn conversation_path(id: &str) -> Result<String, ConnectorError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ConnectorError::InvalidParams { errors: vec![format!("conversation id {id:?}")] });
    }
    Ok(format!("conversations/{id}"))
}

/// A key for a state or assignee change: unique per change, so setting a value back is a
/// new change (the store would answer a reused key with the first change's result).
fn change_key(conversation: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("countersign-{conversation}-{}-{nanos}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

impl CaseSource for DemoMessages {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { reply_idempotency: true, push: false }
    }

    fn changes(&self, since: Option<&Cursor>) -> Result<Changes, ConnectorError> {
        let mut query = vec![("limit", PAGE.to_string())];
        if let Some(c) = since {
            query.push(("since", c.0.clone()));
        }
        let listing: Listing = parse("conversation listing", self.wire.get("conversations", &query)?)?;
        Ok(Changes {
            conversations: listing.conversations.into_iter().map(Conversation::from).collect(),
            cursor: Cursor(listing.next_cursor),
            more: listing.has_more,
        })
    }

    fn thread(&self, conversation_id: &str) -> Result<Thread, ConnectorError> {
        let read: Read = parse("conversation", self.wire.get(&conversation_path(conversation_id)?, &[])?)?;
        Ok(Thread {
            conversation: read.summary.into(),
            messages: read.messages.into_iter().map(ThreadMessage::try_from).collect::<Result<_, _>>()?,
        })
    }

    fn post(&self, conversation_id: &str, post: Post<'_>, idempotency_key: &str) -> Result<Posted, ConnectorError> {
        let kind = match post.visibility {
            Visibility::Public => "reply",
            Visibility::Internal => "note",
        };
        let body = json!({ "text": post.text, "kind": kind, "author_name": post.author });
        let path = format!("{}/messages", conversation_path(conversation_id)?);
        let answer: PostAnswer =
            parse("posted message", self.wire.write(reqwest::Method::POST, &path, &body, Some(idempotency_key))?)?;
        Ok(Posted { message_id: answer.message.id, at: answer.message.created_at })
    }

    fn set_state(&self, conversation_id: &str, state: ConversationState) -> Result<Conversation, ConnectorError> {
        let body = json!({ "status": state.as_str() });
        let key = change_key(conversation_id);
        let path = conversation_path(conversation_id)?;
        let summary: Summary =
            parse("conversation", self.wire.write(reqwest::Method::PATCH, &path, &body, Some(&key))?)?;
        Ok(summary.into())
    }

    fn assign(&self, conversation_id: &str, assignee: Option<&str>) -> Result<Conversation, ConnectorError> {
        let body = json!({ "assignee": assignee });
        let key = change_key(conversation_id);
        let path = conversation_path(conversation_id)?;
        let summary: Summary =
            parse("conversation", self.wire.write(reqwest::Method::PATCH, &path, &body, Some(&key))?)?;
        Ok(summary.into())
    }
}
