//! The demo seller center's buyer messages read and answered on its **web pages**, for
//! platforms whose buyer messages have no API: a [`CaseSource`] over the same Chromium,
//! profile and signed-in session as the workspace's [`BrowserConnector`].
//!
//! - `changes` reads the inbox (`/seller/messages`, newest change first, following its
//!   `a#older` link) and keeps the conversations whose change cursor (`data-cursor`, the
//!   API's `change_seq`) is after the one given, oldest change first: the same cursors
//!   as the HTTP adapter ([`countersign_connectors::source::demo::DemoMessages`]). All of
//!   them in one answer (`more` is false).
//! - `thread` reads a conversation's page (`dl.facts`, `ol#thread li`).
//! - `post` fills the reply or note form and submits it once, with the caller's
//!   idempotency key as the form's `form_token`. The seller center honours a form token
//!   like an `Idempotency-Key` (its own namespace, `form:KEY`, distinct from the API's
//!   keys), so a retry after an uncertain submit, with the same key, is answered with the
//!   first post (`data-replayed="true"`, the same message id) and posts nothing more.
//!   Every attempt at a reply to a conversation of this source goes through this adapter
//!   (the source is part of the case's id), so the one namespace it uses is enough.
//!   The message's author is the account signed in in the profile (the agent's own
//!   session), not [`Post::author`]: a page has no field for it.
//! - `set_state` and `assign` submit the status form (status and assignee together, the
//!   other kept as the page shows it), with the page's own one-time token: each is a new
//!   change.
//!
//! Everything is read from data attributes, never from the visible text. A login page or
//! a verification page is [`ConnectorError::NeedsHuman`] with a screenshot in the
//! evidence; a page that is not the expected one is [`ConnectorError::PageMismatch`]; a
//! submit whose page says neither done nor refused is [`ConnectorError::Unconfirmed`]
//! (settled by posting again with the same key). Nothing here ever signs in.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use countersign_connectors::ConnectorError;
use countersign_connectors::source::{
    Capabilities, CaseSource, Changes, ChannelIdentity, Conversation, ConversationState, Cursor, Post, Posted, Thread,
    ThreadMessage, Visibility,
};
use countersign_core::model::Sender;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::BrowserConnector;
use crate::chromium::{self, Chromium};
use crate::page::{Stop, Trail, encode_path};

/// How many inbox pages one listing follows at most (200 conversations each).
const MAX_INBOX_PAGES: usize = 1000;

/// The demo seller center's buyer messages on its pages (see the module docs).
#[derive(Debug, Clone)]
pub struct DemoMessagePages {
    name: String,
    browser: Arc<BrowserConnector>,
}

impl DemoMessagePages {
    /// The source named `name`, on the pages (base URL, profile, session checks, timeout)
    /// of `browser`, sharing its Chromium: a profile is open in one browser at a time,
    /// and one agent works in one tab.
    pub fn new(name: &str, browser: Arc<BrowserConnector>) -> DemoMessagePages {
        DemoMessagePages { name: name.to_owned(), browser }
    }

    /// Runs `f` on the browser; a stop becomes the connector's error, with a screenshot of
    /// the page for the person who takes over.
    fn run<T>(&self, f: impl AsyncFnOnce(&Chromium, &mut Trail) -> Result<T, Stop>) -> Result<T, ConnectorError> {
        self.browser.with_browser(async |c| {
            let mut trail = Trail::default();
            match f(c, &mut trail).await {
                Ok(v) => Ok(v),
                Err(stop) => {
                    if matches!(stop, Stop::NeedsHuman(_) | Stop::Mismatch(_)) {
                        let _ = self.browser.look(c, &mut trail, "stopped", true).await;
                    }
                    Err(BrowserConnector::stop_to_error(stop, &trail))
                }
            }
        })
    }

    /// Opens `path` and checks it shows `expect` (or a person is wanted, or the seller
    /// center refused: a 404, an error page).
    async fn open(&self, c: &Chromium, trail: &mut Trail, path: &str, expect: &str) -> Result<(), Stop> {
        let url = format!("{}{path}", self.browser.pages.base_url);
        let stale = c.take_dialogs();
        if !stale.is_empty() {
            tracing::info!(count = stale.len(), "JavaScript dialogs opened between calls were dismissed");
        }
        tokio::time::timeout(self.browser.timeout(), c.goto(&url)).await.map_err(|_| ConnectorError::Timeout)??;
        let seen = self.browser.look(c, trail, "opened", false).await?;
        let dialog = self.browser.dialogs_seen(c, trail, "opening the page");
        if let Some(stop) = self.browser.person_wanted(c).await? {
            return Err(stop);
        }
        if let Some(d) = dialog {
            return Err(Stop::Mismatch(format!("{}: the page opened {d}", seen.url)));
        }
        let page: PageCheck = eval(c, PAGE_CHECK, &json!({ "expect": expect })).await?;
        if page.expected {
            return Ok(());
        }
        match page.refused {
            Some(r) => Err(Stop::Error(ConnectorError::Rejected {
                status: seen.status,
                code: r.code.unwrap_or_else(|| "refused".into()),
                message: r.message.unwrap_or_else(|| format!("{path}: the seller center refused")),
            })),
            None => Err(Stop::Mismatch(format!(
                "{} (HTTP {}): expected element {expect} is missing",
                seen.url, seen.status
            ))),
        }
    }

    /// Fills the form `form` with `fields` (and `token` as its `form_token`, if given),
    /// submits it once and reads the page that answers.
    async fn submit(
        &self,
        c: &Chromium,
        trail: &mut Trail,
        form: &str,
        fields: BTreeMap<&str, &str>,
        token: Option<&str>,
    ) -> Result<Answer, Stop> {
        let fill = json!({ "form": form, "fields": fields, "token": token });
        trail.filled = vec![json!({ "form": form, "fields": fields, "form_token": token })];
        if let Some(problem) = c.call(FILL_FORM, &fill).await?.as_str() {
            return Err(Stop::Mismatch(format!("{form}: {problem}")));
        }
        if let Some(d) = self.browser.dialogs_seen(c, trail, "filling") {
            return Err(Stop::Mismatch(format!("{form}: while the form was filled, the page opened {d}")));
        }
        let marker = hex::encode(Sha256::digest(format!("{:?}{form}", Instant::now())));
        let submit = format!("{form} button[type=submit]");
        if let Some(problem) =
            c.call(chromium::SUBMIT, &json!({ "selector": submit, "marker": marker })).await?.as_str()
        {
            return Err(Stop::Mismatch(format!("{form}: {problem}")));
        }
        trail.submitted = true;
        let loaded = tokio::time::timeout(self.browser.timeout(), c.wait_loaded(Some(&marker))).await;
        let unclear = |what: String| Stop::Unconfirmed(format!("after submitting {form}: {what}"));
        match loaded {
            Err(_) => return Err(unclear("no answer within the page timeout".into())),
            Ok(Err(e)) => return Err(unclear(e.to_string())),
            Ok(Ok(())) => {}
        }
        let seen = self.browser.look(c, trail, "after submit", true).await.map_err(|e| unclear(e.to_string()))?;
        if let Some(d) = self.browser.dialogs_seen(c, trail, "after submit") {
            return Err(unclear(format!("the page opened {d}")));
        }
        let answer: Answer = eval(c, ANSWER, &Value::Null).await.map_err(|e| match e {
            Stop::Error(e) => unclear(e.to_string()),
            other => other,
        })?;
        if let Some(r) = answer.refused {
            return Err(Stop::Error(ConnectorError::PageRefused {
                status: seen.status,
                code: r.code.unwrap_or_else(|| "refused".into()),
                message: r.message.unwrap_or_else(|| "the seller center refused".into()),
                evidence: Box::new(trail.to_value("refused")),
            }));
        }
        if !answer.confirmed {
            let what = match self.browser.person_wanted(c).await.map_err(|e| unclear(e.to_string()))? {
                Some(Stop::NeedsHuman(m) | Stop::Mismatch(m)) => m,
                _ => format!("the page at {} shows neither a confirmation nor a refusal", seen.url),
            };
            return Err(unclear(what));
        }
        Ok(answer)
    }

    /// Opens a conversation's page, fills and submits its status form.
    fn update(&self, conversation_id: &str, fields: BTreeMap<&str, &str>) -> Result<Conversation, ConnectorError> {
        let path = conversation_path(conversation_id)?;
        self.run(async |c, trail| {
            self.open(c, trail, &path, "main#conversation #status-form").await?;
            let answer = self.submit(c, trail, "#status-form", fields, None).await?;
            let facts = answer
                .facts
                .ok_or_else(|| Stop::Mismatch("the confirmation shows no dl.facts".into()))?
                .into_conversation()
                .map_err(Stop::Mismatch)?;
            Ok(facts)
        })
    }
}

/// Runs a page script and reads its answer as `T`; `null` or another shape is a page
/// that is not the described one.
async fn eval<T: DeserializeOwned>(c: &Chromium, script: &str, arg: &Value) -> Result<T, Stop> {
    let v = c.call(script, arg).await?;
    serde_json::from_value(v.clone())
        .map_err(|e| Stop::Mismatch(format!("the page does not read as expected ({e}): {v}")))
}

fn conversation_path(id: &str) -> Result<String, ConnectorError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(ConnectorError::InvalidParams { errors: vec![format!("conversation id {id:?}")] });
    }
    Ok(format!("/seller/messages/{}", encode_path(id)))
}

fn cursor_number(text: &str, what: &str) -> Result<u64, String> {
    text.parse::<u64>().map_err(|_| format!("{what} {text:?} is not a change cursor"))
}

#[derive(Deserialize)]
struct Refusal {
    code: Option<String>,
    message: Option<String>,
}

#[derive(Deserialize)]
struct PageCheck {
    expected: bool,
    refused: Option<Refusal>,
}

/// A conversation's data attributes (a `tr` of the inbox, a `dl.facts`).
#[derive(Deserialize)]
struct Summary {
    id: Option<String>,
    cursor: Option<String>,
    buyer_id: Option<String>,
    buyer_name: Option<String>,
    order_id: Option<String>,
    status: Option<String>,
    assignee: Option<String>,
    updated_at: Option<String>,
}

impl Summary {
    fn cursor(&self) -> Result<u64, String> {
        let id = self.id.as_deref().unwrap_or("?");
        cursor_number(self.cursor.as_deref().ok_or_else(|| format!("conversation {id} has no data-cursor"))?, id)
    }

    fn into_conversation(self) -> Result<Conversation, String> {
        let missing = |what: &str| format!("a conversation on the page has no data-{what}");
        let id = self.id.filter(|i| !i.is_empty()).ok_or_else(|| missing("conversation-id"))?;
        let status = self.status.ok_or_else(|| missing("status"))?;
        let state: ConversationState = serde_json::from_value(Value::String(status.clone()))
            .map_err(|_| format!("conversation {id} has status {status:?}"))?;
        let user_id = self.buyer_id.filter(|b| !b.is_empty()).ok_or_else(|| missing("buyer-id"))?;
        Ok(Conversation {
            customer: ChannelIdentity {
                user_id,
                name: self.buyer_name.filter(|n| !n.is_empty()),
                // A buyer writes from a marketplace account the platform signed in.
                authenticated: true,
            },
            subject: None,
            order_ids: self.order_id.filter(|o| !o.is_empty()).into_iter().collect(),
            state,
            assignee: self.assignee.filter(|a| !a.is_empty()),
            updated_at: self.updated_at.ok_or_else(|| missing("updated-at"))?,
            id,
        })
    }
}

#[derive(Deserialize)]
struct Inbox {
    rows: Vec<Summary>,
    older: Option<String>,
}

#[derive(Deserialize)]
struct PageMessage {
    id: Option<String>,
    author: Option<String>,
    kind: Option<String>,
    author_name: Option<String>,
    created_at: Option<String>,
    text: Option<String>,
}

impl PageMessage {
    fn into_message(self) -> Result<ThreadMessage, String> {
        let id = self.id.filter(|i| !i.is_empty()).ok_or("a message on the page has no data-message-id")?;
        let from = match self.author.as_deref() {
            Some("buyer") => Sender::Customer,
            Some("seller") => Sender::Agent,
            other => return Err(format!("message {id} has author {other:?}")),
        };
        let visibility = match self.kind.as_deref() {
            Some("message") => Visibility::Public,
            Some("note") => Visibility::Internal,
            other => return Err(format!("message {id} has kind {other:?}")),
        };
        let at = self.created_at.ok_or_else(|| format!("message {id} has no data-created-at"))?;
        let text = self.text.ok_or_else(|| format!("message {id} has no p.text"))?;
        Ok(ThreadMessage { id, from, visibility, author: self.author_name.filter(|n| !n.is_empty()), text, at })
    }
}

#[derive(Deserialize)]
struct ThreadPage {
    facts: Summary,
    messages: Vec<PageMessage>,
}

#[derive(Deserialize)]
struct PostedPage {
    id: Option<String>,
    at: Option<String>,
}

/// The page after a submit.
#[derive(Deserialize)]
struct Answer {
    confirmed: bool,
    replayed: bool,
    posted: Option<PostedPage>,
    facts: Option<Summary>,
    refused: Option<Refusal>,
}

impl CaseSource for DemoMessagePages {
    fn name(&self) -> &str {
        &self.name
    }

    fn capabilities(&self) -> Capabilities {
        // The form token is the caller's key, and the seller center replays a token.
        Capabilities { reply_idempotency: true, push: false }
    }

    fn changes(&self, since: Option<&Cursor>) -> Result<Changes, ConnectorError> {
        let since = match since {
            None => 0,
            Some(c) => {
                cursor_number(&c.0, "the cursor").map_err(|e| ConnectorError::InvalidParams { errors: vec![e] })?
            }
        };
        let rows = self.run(async |c, trail| {
            let mut newer: Vec<(u64, Summary)> = Vec::new();
            let mut path = "/seller/messages".to_owned();
            for _ in 0..MAX_INBOX_PAGES {
                self.open(c, trail, &path, "main#messages table#conversations").await?;
                let inbox: Inbox = eval(c, INBOX, &Value::Null).await?;
                let mut reached = false;
                for row in inbox.rows {
                    let cursor = row.cursor().map_err(Stop::Mismatch)?;
                    if cursor > since {
                        newer.push((cursor, row));
                    } else {
                        reached = true;
                    }
                }
                match inbox.older {
                    Some(older) if !reached && older.starts_with("/seller/messages?") && older != path => path = older,
                    _ => return Ok(newer),
                }
            }
            Err(Stop::Mismatch(format!("the inbox has more than {MAX_INBOX_PAGES} pages")))
        })?;
        // Oldest change first, each conversation once (a change while the pages were read
        // moves it to the top; the next listing finds it there).
        let mut latest: BTreeMap<String, (u64, Summary)> = BTreeMap::new();
        for (cursor, row) in rows {
            let id = row.id.clone().unwrap_or_default();
            if latest.get(&id).is_none_or(|(seen, _)| *seen < cursor) {
                latest.insert(id, (cursor, row));
            }
        }
        let mut ordered: Vec<(u64, Summary)> = latest.into_values().collect();
        ordered.sort_by_key(|(cursor, _)| *cursor);
        let next = ordered.last().map_or(since, |(cursor, _)| *cursor);
        let conversations = ordered
            .into_iter()
            .map(|(_, row)| row.into_conversation())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|detail| ConnectorError::MalformedResponse { detail })?;
        Ok(Changes { conversations, cursor: Cursor(next.to_string()), more: false })
    }

    fn thread(&self, conversation_id: &str) -> Result<Thread, ConnectorError> {
        let path = conversation_path(conversation_id)?;
        self.run(async |c, trail| {
            self.open(c, trail, &path, "main#conversation dl.facts").await?;
            let page: ThreadPage = eval(c, THREAD, &Value::Null).await?;
            let conversation = page.facts.into_conversation().map_err(Stop::Mismatch)?;
            let messages = page
                .messages
                .into_iter()
                .map(PageMessage::into_message)
                .collect::<Result<Vec<_>, _>>()
                .map_err(Stop::Mismatch)?;
            Ok(Thread { conversation, messages })
        })
    }

    fn post(&self, conversation_id: &str, post: Post<'_>, idempotency_key: &str) -> Result<Posted, ConnectorError> {
        let path = conversation_path(conversation_id)?;
        let form = match post.visibility {
            Visibility::Public => "#reply-form",
            Visibility::Internal => "#note-form",
        };
        self.run(async |c, trail| {
            self.open(c, trail, &path, &format!("main#conversation {form}")).await?;
            let fields = BTreeMap::from([("text", post.text)]);
            let answer = self.submit(c, trail, form, fields, Some(idempotency_key)).await?;
            let posted = answer.posted.ok_or_else(|| {
                Stop::Unconfirmed(format!("after submitting {form}: the confirmation names no posted message"))
            })?;
            let (Some(message_id), Some(at)) = (posted.id, posted.at) else {
                return Err(Stop::Unconfirmed(format!("after submitting {form}: the posted message has no id")));
            };
            if answer.replayed {
                tracing::info!(conversation = conversation_id, %message_id, "the seller center answered a repeated post with the first one");
            }
            Ok(Posted { message_id, at })
        })
    }

    fn set_state(&self, conversation_id: &str, state: ConversationState) -> Result<Conversation, ConnectorError> {
        self.update(conversation_id, BTreeMap::from([("status", state.as_str())]))
    }

    fn assign(&self, conversation_id: &str, assignee: Option<&str>) -> Result<Conversation, ConnectorError> {
        self.update(conversation_id, BTreeMap::from([("assignee", assignee.unwrap_or(""))]))
    }
}

// ---------------------------------------------------------------- page scripts

/// A conversation's data attributes as a [`Summary`] (a function of one element).
macro_rules! summary_js {
    () => {
        "(el) => ({ id: el.dataset.conversationId, cursor: el.dataset.cursor, buyer_id: el.dataset.buyerId, buyer_name: el.dataset.buyerName, order_id: el.dataset.orderId, status: el.dataset.status, assignee: el.dataset.assignee, updated_at: el.dataset.updatedAt })"
    };
}

/// A refusal page's code and message, or null.
macro_rules! refused_js {
    () => {
        "(() => { const r = document.querySelector('main#refused'); if (!r) return null; const t = (s) => { const e = r.querySelector(s); return e ? e.textContent.trim() : null; }; return { code: t('#error-code'), message: t('#error-message') }; })()"
    };
}

/// `{expected, refused}`: does the page show `arg.expect`, or a refusal?
const PAGE_CHECK: &str = concat!(
    "function(arg) { return { expected: !!document.querySelector(arg.expect), refused: ",
    refused_js!(),
    " }; }"
);

/// The inbox: its rows' attributes and the link to older conversations.
const INBOX: &str = concat!(
    "function() { const summary = ",
    summary_js!(),
    "; const older = document.querySelector('main#messages a#older'); return { rows: [...document.querySelectorAll('table#conversations tr[data-conversation-id]')].map(summary), older: older ? older.getAttribute('href') : null }; }"
);

/// A conversation's page: its facts and its messages, oldest first.
const THREAD: &str = concat!(
    "function() { const summary = ",
    summary_js!(),
    "; const facts = document.querySelector('main#conversation dl.facts'); if (!facts) return null; return { facts: summary(facts), messages: [...document.querySelectorAll('ol#thread > li[data-message-id]')].map((li) => { const p = li.querySelector('p.text'); return { id: li.dataset.messageId, author: li.dataset.author, kind: li.dataset.kind, author_name: li.dataset.authorName, created_at: li.dataset.createdAt, text: p ? p.textContent : undefined }; }) }; }"
);

/// The page after a submit: confirmed (and replayed), the posted message, the facts, or
/// a refusal.
const ANSWER: &str = concat!(
    "function() { const summary = ",
    summary_js!(),
    "; const done = document.querySelector('main#confirmation'); const posted = document.querySelector('main#confirmation p#posted'); const facts = document.querySelector('main#confirmation dl.facts'); return { confirmed: !!done, replayed: !!done && done.dataset.replayed === 'true', posted: posted ? { id: posted.dataset.messageId, at: posted.dataset.createdAt } : null, facts: facts ? summary(facts) : null, refused: ",
    refused_js!(),
    " }; }"
);

/// Fills the form `arg.form`: each of `arg.fields` by name (a select must offer the
/// value), and `arg.token` as its `form_token` when given. Returns the first problem or
/// null; every control must hold its value afterwards.
const FILL_FORM: &str = r#"function(arg) {
  const form = document.querySelector(arg.form);
  if (!form || form.tagName !== 'FORM') return 'expected form ' + arg.form + ' is missing';
  const token = form.querySelector('input[name=form_token]');
  if (!token) return 'the form has no form_token';
  if (arg.token !== null) {
    token.value = arg.token;
    if (token.value !== arg.token) return 'the form_token did not take the key';
  }
  for (const [name, value] of Object.entries(arg.fields)) {
    const el = form.elements.namedItem(name);
    if (!el || !['INPUT', 'SELECT', 'TEXTAREA'].includes(el.tagName)) return 'the form has no field ' + name;
    if (el.disabled || el.readOnly) return 'field ' + name + ' cannot be filled (disabled or read-only)';
    if (el.tagName === 'SELECT' && ![...el.options].some((o) => o.value === value)) {
      return 'field ' + name + ' offers no option ' + JSON.stringify(value);
    }
    el.value = value;
    if (el.value !== value) return 'field ' + name + ' did not take the value ' + JSON.stringify(value);
  }
  return null;
}"#;
