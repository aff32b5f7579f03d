//! Zendesk Support tickets as a case source, over Zendesk's published REST API
//! (`https://{subdomain}.zendesk.com/api/v2/…`).
//!
//! **Endpoints**
//! - Listing changes: the cursor-based incremental ticket export,
//!   `GET /api/v2/incremental/tickets/cursor.json`, with `start_time=<unix>` on the first
//!   call (0, or the start set with [`Zendesk::with_start_time`]) and `cursor=<after_cursor>`
//!   after that. Our [`Cursor`] holds the export's `after_cursor` (`c:<after_cursor>`) or,
//!   before the first page, the start time (`t:<unix>`); `more` is `!end_of_stream`. At the
//!   end of the stream the last `after_cursor` is kept: listing from it later returns what
//!   changed since (Zendesk's documented way to poll the export). Needs an admin's token.
//! - Reading a thread: `GET /api/v2/tickets/{id}.json`, then
//!   `GET /api/v2/tickets/{id}/comments.json?page[size]=100`, following `links.next` (through
//!   [`Wire::get_url`], which keeps it on the account's origin) while `meta.has_more`.
//! - Posting, state and assignee: `PUT /api/v2/tickets/{id}.json` with
//!   `{"ticket": {"comment": {"body", "public"}}}`, `{"ticket": {"status"}}` or
//!   `{"ticket": {"assignee_id"}}`.
//!
//! **Fields.** A ticket becomes a [`Conversation`]: `id`; the customer is `requester_id`
//! with `authenticated: false`, because a Zendesk requester is whoever wrote from an
//! address or a web form, which Zendesk does not sign in (a name is not read: users are
//! not sideloaded); `subject`; `order_ids` from one custom field when configured
//! ([`Zendesk::with_order_field`]: a text value is one order id, a list value one per
//! entry); `status` new/open/hold → open, pending → waiting, solved/closed → resolved
//! (the incremental export also lists deleted tickets, with status `deleted`: resolved,
//! nothing more can be done in them; any other status is a malformed answer); `assignee_id`;
//! `updated_at`. A comment becomes a [`ThreadMessage`]: `public` true → public, otherwise
//! internal; `author_id` the ticket's requester or someone CC'd on it (`collaborator_ids`,
//! `email_cc_ids`) → the customer side, anyone else (an
//! agent, a trigger) → an agent; `plain_body`, else `body`; `created_at`.
//!
//! **Writes and idempotency.** Zendesk documents an `Idempotency-Key` for creating
//! tickets only, not for updating them, so [`Capabilities::reply_idempotency`] is `false`
//! and no key is sent: a post whose answer is lost is settled by reading the thread back,
//! never by posting again. The posted message's id is the `Comment` event's id in the
//! update's `audit.events`; an update answer without one is a malformed answer (the
//! comment may exist: read the thread). The comment's author is the credential's user
//! ([`Post::author`] is not sent as `author_id`). State and assignee changes set the same
//! value again harmlessly. Zendesk pushes changes by webhook ([`Capabilities::push`]); the
//! intake for them is not built here, the export is polled.
//!
//! **Errors.** 429 with `Retry-After` is [`ConnectorError::RateLimited`]; Zendesk's error
//! bodies (`{"error": "RecordNotFound", "description": …}`, `{"error": "…"}` or
//! `{"errors": [{"code", "title", "detail"}]}`) become [`ConnectorError::Rejected`]'s code
//! and message, named by the ticket, with the credential scrubbed out.
//!
//! **Auth.** API token: the stored credential is the whole `{email}/token:{api_token}`
//! text, sent as `Basic` ([`ZendeskAuth::ApiToken`]); or an OAuth access token, sent as
//! `Bearer` ([`ZendeskAuth::OAuth`]).
//!
//! **Not covered:** webhook intake, sideloaded user names, attachments, side
//! conversations, custom ticket statuses (`custom_status_id`: the status category is
//! what is read and set), ticket creation, merging, tags and fields other than the order
//! field.

use std::sync::Arc;

use countersign_core::model::Sender;
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{Auth, Wire, malformed, parse};
use super::{
    Capabilities, CaseSource, Changes, ChannelIdentity, Conversation, ConversationState, Cursor, Post, Posted, Thread,
    ThreadMessage, Visibility,
};
use crate::ConnectorError;
use crate::credentials::{CredentialName, CredentialStore};
use crate::redact::scrub_text;

/// Comments per page (Zendesk's maximum for cursor pagination).
const COMMENT_PAGE: u32 = 100;
/// At most this many comment pages are followed for one thread (10 000 comments): a
/// platform that keeps saying `has_more` is answering wrongly, not endlessly.
const MAX_COMMENT_PAGES: usize = 100;

/// How the stored credential authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZendeskAuth {
    /// An API token: the credential is the whole `{email}/token:{api_token}` text (HTTP
    /// Basic).
    ApiToken,
    /// An OAuth access token (Bearer).
    OAuth,
}

/// A Zendesk Support account as a case source.
#[derive(Debug)]
pub struct Zendesk {
    name: String,
    wire: Wire,
    credentials: Arc<dyn CredentialStore>,
    credential: CredentialName,
    start_time: u64,
    order_field: Option<u64>,
}

impl Zendesk {
    /// The source named `name` at `base_url` (`https://{subdomain}.zendesk.com`, see
    /// [`Zendesk::base_url`]), its credential under `credential` in `credentials`.
    pub fn new(
        name: &str,
        base_url: &str,
        credentials: Arc<dyn CredentialStore>,
        credential: CredentialName,
        auth: ZendeskAuth,
    ) -> Result<Zendesk, ConnectorError> {
        let wire_auth = match auth {
            ZendeskAuth::ApiToken => Auth::Basic,
            ZendeskAuth::OAuth => Auth::Bearer,
        };
        let wire = Wire::new(base_url, Arc::clone(&credentials), credential.clone(), wire_auth)?;
        Ok(Zendesk { name: name.to_owned(), wire, credentials, credential, start_time: 0, order_field: None })
    }

    /// `https://{subdomain}.zendesk.com` for an account's subdomain.
    pub fn base_url(subdomain: &str) -> Result<String, ConnectorError> {
        let ok = !subdomain.is_empty()
            && subdomain.len() <= 63
            && subdomain.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !subdomain.starts_with('-')
            && !subdomain.ends_with('-');
        if !ok {
            return Err(ConnectorError::Config { detail: format!("{subdomain:?} is not a Zendesk subdomain") });
        }
        Ok(format!("https://{subdomain}.zendesk.com"))
    }

    /// The first listing exports tickets changed since `unix` seconds (default 0: all).
    #[must_use]
    pub fn with_start_time(mut self, unix: u64) -> Zendesk {
        self.start_time = unix;
        self
    }

    /// Read the conversation's order ids from the ticket custom field `field_id`.
    #[must_use]
    pub fn with_order_field(mut self, field_id: u64) -> Zendesk {
        self.order_field = Some(field_id);
        self
    }

    /// Zendesk's error body as the rejection's code and message, named by `what`, with
    /// every form of the credential scrubbed out.
    fn explain(&self, what: &str, error: ConnectorError) -> ConnectorError {
        let ConnectorError::Rejected { status, code, message } = error else { return error };
        let (code, message) = zendesk_error(status, &message).unwrap_or((code, message));
        let hint = match status {
            401 => " (check the credential: an API token is stored as `{email}/token:{api_token}`)",
            403 => " (the credential's user may not do this: the ticket export needs an admin)",
            _ => "",
        };
        let mut message = format!("{what}: {message}{hint}");
        let mut code = code;
        if let Ok(secret) = self.credentials.get(&self.credential) {
            for form in secret_forms(secret.expose()) {
                message = scrub_text(&message, &form);
                code = scrub_text(&code, &form);
            }
        }
        ConnectorError::Rejected { status, code, message }
    }

    fn get(&self, what: &str, path: &str, query: &[(&str, String)]) -> Result<Value, ConnectorError> {
        self.wire.get(path, query).map_err(|e| self.explain(what, e))
    }

    fn update(&self, ticket_id: u64, ticket: Value) -> Result<UpdateAnswer, ConnectorError> {
        let what = format!("updating ticket {ticket_id}");
        let path = format!("api/v2/tickets/{ticket_id}.json");
        let answer = self
            .wire
            .write(reqwest::Method::PUT, &path, &json!({ "ticket": ticket }), None)
            .map_err(|e| self.explain(&what, e))?;
        parse(&what, answer)
    }

    fn conversation(
        &self,
        ticket: Ticket,
        fallback_updated_at: Option<String>,
    ) -> Result<Conversation, ConnectorError> {
        let id = ticket.id.ok_or_else(|| malformed("a ticket without an id".into()))?;
        let state = match ticket.status.as_deref() {
            Some("new" | "open" | "hold") => ConversationState::Open,
            Some("pending") => ConversationState::Waiting,
            Some("solved" | "closed" | "deleted") => ConversationState::Resolved,
            Some(other) => return Err(malformed(format!("ticket {id} has status {other:?}"))),
            None => return Err(malformed(format!("ticket {id} has no status"))),
        };
        let updated_at = ticket
            .updated_at
            .or(fallback_updated_at)
            .ok_or_else(|| malformed(format!("ticket {id} has no updated_at")))?;
        let order_ids = match self.order_field {
            Some(field) => {
                ticket.custom_fields.iter().filter(|f| f.id == Some(field)).flat_map(|f| order_ids(&f.value)).collect()
            }
            None => Vec::new(),
        };
        Ok(Conversation {
            id: id.to_string(),
            customer: ChannelIdentity { user_id: ticket.requester_id.to_string(), name: None, authenticated: false },
            subject: ticket.subject,
            order_ids,
            state,
            assignee: ticket.assignee_id.map(|a| a.to_string()),
            updated_at,
        })
    }
}

/// The credential as it may appear in an answer: whole, its API token alone, and as the
/// Basic header's base64.
fn secret_forms(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    let mut forms = vec![secret.to_owned(), base64::engine::general_purpose::STANDARD.encode(secret)];
    if let Some((_, token)) = secret.split_once("/token:") {
        forms.push(token.to_owned());
    }
    forms
}

/// `(code, message)` from a Zendesk error body, if the text is one.
fn zendesk_error(status: u16, body: &str) -> Option<(String, String)> {
    let value: Value = serde_json::from_str(body).ok()?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    if let Some(first) = value.get("errors").and_then(Value::as_array).and_then(|a| a.first()) {
        let code = text(first.get("code")).unwrap_or_else(|| format!("http_{status}"));
        let message = match (text(first.get("title")), text(first.get("detail"))) {
            (Some(t), Some(d)) => format!("{t}: {d}"),
            (t, d) => t.or(d).unwrap_or_else(|| body.to_owned()),
        };
        return Some((code, message));
    }
    let error = text(value.get("error"))?;
    let description = text(value.get("description"));
    let is_code = !error.is_empty() && error.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    Some(if is_code {
        (error.clone(), description.unwrap_or(error))
    } else {
        (format!("http_{status}"), description.map_or(error.clone(), |d| format!("{error}: {d}")))
    })
}

fn order_ids(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(items) => items.iter().flat_map(order_ids).collect(),
        _ => Vec::new(),
    }
}

#[derive(Deserialize)]
struct CustomField {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
struct Ticket {
    #[serde(default)]
    id: Option<u64>,
    requester_id: u64,
    /// CC'd people (end users copied on the ticket, sometimes agents).
    #[serde(default)]
    collaborator_ids: Vec<u64>,
    #[serde(default)]
    email_cc_ids: Vec<u64>,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    assignee_id: Option<u64>,
    #[serde(default)]
    updated_at: Option<String>,
    #[serde(default)]
    custom_fields: Vec<CustomField>,
}

#[derive(Deserialize)]
struct Export {
    tickets: Vec<Ticket>,
    #[serde(default)]
    after_cursor: Option<String>,
    end_of_stream: bool,
}

#[derive(Deserialize)]
struct TicketAnswer {
    ticket: Ticket,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    author_id: Option<i64>,
    #[serde(default)]
    public: Option<bool>,
    #[serde(default)]
    plain_body: Option<String>,
    #[serde(default)]
    body: Option<String>,
    created_at: String,
}

#[derive(Deserialize, Default)]
struct Links {
    #[serde(default)]
    next: Option<String>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
struct CommentPage {
    comments: Vec<Comment>,
    #[serde(default)]
    links: Links,
    #[serde(default)]
    meta: Meta,
}

#[derive(Deserialize)]
struct AuditEvent {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Audit {
    #[serde(default)]
    events: Vec<AuditEvent>,
    #[serde(default)]
    created_at: Option<String>,
}

#[derive(Deserialize)]
struct UpdateAnswer {
    #[serde(default)]
    audit: Option<Audit>,
    ticket: Ticket,
}

/// A ticket id: Zendesk's are numbers.
fn ticket_id(id: &str) -> Result<u64, ConnectorError> {
    id.parse::<u64>().map_err(|_| ConnectorError::InvalidParams {
        errors: vec![format!("Zendesk ticket ids are numbers, not {id:?}")],
    })
}

fn encode_cursor(after_cursor: &str) -> Cursor {
    Cursor(format!("c:{after_cursor}"))
}

impl CaseSource for Zendesk {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { reply_idempotency: false, push: true }
    }

    fn changes(&self, since: Option<&Cursor>) -> Result<Changes, ConnectorError> {
        let query = match since.map(|c| c.0.as_str()) {
            None => vec![("start_time", self.start_time.to_string())],
            Some(c) => match (c.strip_prefix("c:"), c.strip_prefix("t:")) {
                (Some(after), _) if !after.is_empty() => vec![("cursor", after.to_owned())],
                (_, Some(t)) if t.parse::<u64>().is_ok() => vec![("start_time", t.to_owned())],
                _ => {
                    return Err(ConnectorError::InvalidParams {
                        errors: vec![format!("{c:?} is not a cursor this Zendesk source handed out")],
                    });
                }
            },
        };
        let what = "the incremental ticket export";
        let export: Export = parse(what, self.get(what, "api/v2/incremental/tickets/cursor.json", &query)?)?;
        // No after_cursor (nothing exported yet): list from where this listing started.
        let cursor = match export.after_cursor.as_deref() {
            Some(after) if !after.is_empty() => encode_cursor(after),
            _ => since.cloned().unwrap_or_else(|| Cursor(format!("t:{}", self.start_time))),
        };
        Ok(Changes {
            conversations: export.tickets.into_iter().map(|t| self.conversation(t, None)).collect::<Result<_, _>>()?,
            cursor,
            more: !export.end_of_stream,
        })
    }

    fn thread(&self, conversation_id: &str) -> Result<Thread, ConnectorError> {
        let id = ticket_id(conversation_id)?;
        let what = format!("ticket {id}");
        let answer: TicketAnswer = parse(&what, self.get(&what, &format!("api/v2/tickets/{id}.json"), &[])?)?;
        // The customer side: the requester and whoever is CC'd on the ticket. A CC'd agent
        // counted here has their words read for escalation signals too, which errs on the
        // safe side; an end user counted as an agent would have theirs ignored.
        let t = &answer.ticket;
        let customer_side: Vec<i64> = std::iter::once(t.requester_id)
            .chain(t.collaborator_ids.iter().copied())
            .chain(t.email_cc_ids.iter().copied())
            .filter_map(|id| i64::try_from(id).ok())
            .collect();
        let conversation = self.conversation(answer.ticket, None)?;

        let what = format!("the comments of ticket {id}");
        let mut page: CommentPage = parse(
            &what,
            self.get(
                &what,
                &format!("api/v2/tickets/{id}/comments.json"),
                &[("page[size]", COMMENT_PAGE.to_string())],
            )?,
        )?;
        let mut comments = Vec::new();
        let mut seen = Vec::new();
        loop {
            comments.append(&mut page.comments);
            if !page.meta.has_more {
                break;
            }
            let next =
                page.links.next.take().ok_or_else(|| malformed(format!("{what}: has_more without links.next")))?;
            if seen.contains(&next) || seen.len() >= MAX_COMMENT_PAGES {
                return Err(malformed(format!("{what}: the pages do not end (at {next})")));
            }
            page = parse(&what, self.wire.get_url(&next).map_err(|e| self.explain(&what, e))?)?;
            seen.push(next);
        }
        let messages = comments
            .into_iter()
            .map(|c| ThreadMessage {
                id: c.id.to_string(),
                from: match c.author_id {
                    Some(a) if customer_side.contains(&a) => Sender::Customer,
                    _ => Sender::Agent,
                },
                visibility: if c.public == Some(true) { Visibility::Public } else { Visibility::Internal },
                author: c.author_id.map(|a| a.to_string()),
                text: c.plain_body.or(c.body).unwrap_or_default(),
                at: c.created_at,
            })
            .collect();
        Ok(Thread { conversation, messages })
    }

    /// Zendesk takes no idempotency key on a ticket update: `_idempotency_key` is not
    /// sent (see the module doc for how an uncertain post is settled).
    fn post(&self, conversation_id: &str, post: Post<'_>, _idempotency_key: &str) -> Result<Posted, ConnectorError> {
        let id = ticket_id(conversation_id)?;
        let public = post.visibility == Visibility::Public;
        let answer = self.update(id, json!({ "comment": { "body": post.text, "public": public } }))?;
        let audit = answer
            .audit
            .ok_or_else(|| malformed(format!("the update of ticket {id} has no audit: the comment may exist")))?;
        let comment =
            audit.events.iter().find(|e| e.kind.as_deref() == Some("Comment")).and_then(|e| e.id).ok_or_else(|| {
                malformed(format!("the update of ticket {id} has no Comment event: the comment may exist"))
            })?;
        let at = audit
            .created_at
            .or(answer.ticket.updated_at)
            .ok_or_else(|| malformed(format!("the update of ticket {id} says no time")))?;
        Ok(Posted { message_id: comment.to_string(), at })
    }

    fn set_state(&self, conversation_id: &str, state: ConversationState) -> Result<Conversation, ConnectorError> {
        let id = ticket_id(conversation_id)?;
        let status = match state {
            ConversationState::Open => "open",
            ConversationState::Waiting => "pending",
            ConversationState::Resolved => "solved",
        };
        let answer = self.update(id, json!({ "status": status }))?;
        self.conversation(answer.ticket, answer.audit.and_then(|a| a.created_at))
    }

    fn assign(&self, conversation_id: &str, assignee: Option<&str>) -> Result<Conversation, ConnectorError> {
        let id = ticket_id(conversation_id)?;
        let agent = match assignee {
            None => None,
            Some(a) => Some(a.parse::<u64>().map_err(|_| ConnectorError::InvalidParams {
                errors: vec![format!("Zendesk assigns tickets to an agent's numeric user id, not {a:?}")],
            })?),
        };
        let answer = self.update(id, json!({ "assignee_id": agent }))?;
        self.conversation(answer.ticket, answer.audit.and_then(|a| a.created_at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zendesk_error_bodies_become_code_and_message() {
        let cases = [
            (404, r#"{"error":"RecordNotFound","description":"Not found"}"#, Some(("RecordNotFound", "Not found"))),
            (401, r#"{"error":"Couldn't authenticate you"}"#, Some(("http_401", "Couldn't authenticate you"))),
            (
                422,
                r#"{"errors":[{"code":"InvalidValue","title":"Invalid value","detail":"status"}]}"#,
                Some(("InvalidValue", "Invalid value: status")),
            ),
            (400, "not json", None),
        ];
        for (status, body, want) in cases {
            let got = zendesk_error(status, body);
            assert_eq!(
                got.as_ref().map(|(c, m)| (c.as_str(), m.as_str())),
                want,
                "the error body {body} should read as {want:?}"
            );
        }
    }

    #[test]
    fn order_ids_read_text_numbers_and_lists() {
        assert_eq!(order_ids(&json!(" #W123 ")), vec!["#W123"]);
        assert_eq!(order_ids(&json!(42)), vec!["42"]);
        assert_eq!(order_ids(&json!(["a", "", null, "b"])), vec!["a", "b"]);
        assert!(order_ids(&Value::Null).is_empty(), "an empty field links no order");
    }

    #[test]
    fn subdomains_are_checked() {
        assert_eq!(Zendesk::base_url("acme").ok().as_deref(), Some("https://acme.zendesk.com"));
        for bad in ["", "a.b", "evil.com/x", "-a", "a b"] {
            assert!(Zendesk::base_url(bad).is_err(), "{bad:?} must not make a base URL");
        }
    }
}
