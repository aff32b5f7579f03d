//! Case sources: where customers write (a seller center's buyer messages, a helpdesk).
//!
//! The contract beside [`crate::Connector`]: a connector reads and changes *orders*; a case
//! source lists *conversations* that are new or changed since a cursor, reads a thread,
//! posts a public reply or an internal note, and marks a conversation's state and assignee.
//! Every source answers with the same types, so intake, the inbox and reply delivery never
//! know which platform a case came from.
//!
//! **Invariants**
//! - The customer of a conversation is the channel's own identity of them
//!   ([`ChannelIdentity`]): the account the platform authenticated, never a name or an
//!   e-mail address the message text claims. It is what identity verification may lean on.
//! - Message text is untrusted data, like every customer message.
//! - Cursors are opaque: a source hands one out with each page and takes it back; nothing
//!   else reads them. A page with `more` is followed at once; the last page's cursor is kept.
//! - A post carries an idempotency key. Where the platform honours it
//!   ([`Capabilities::reply_idempotency`]), sending the same post again with the same key
//!   is how an uncertain post is settled; where it does not, the thread is read back first.
//! - Errors are [`ConnectorError`]s (rate limits with their `Retry-After`, timeouts,
//!   rejections), so the engine maps them once for connectors and sources alike.
//!
//! **Extending:** a new platform is one adapter file here implementing [`CaseSource`]
//! (the demo seller center's is [`demo::DemoMessages`], Zendesk Support's [`zendesk::Zendesk`]; one that drives web
//! pages lives in `countersign-browser`, as `DemoMessagePages` does), a `kind` in the workspace's
//! `[[sources]]`, and a contract test against a loopback server answering as the
//! platform documents.

pub mod demo;
pub mod push;
pub mod wire;
pub mod zendesk;

use std::time::Duration;

use countersign_core::model::Sender;
use serde::{Deserialize, Serialize};

use crate::ConnectorError;
use crate::credentials::CredentialName;

/// Where a source's listing stands: handed out with each page, given back for the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cursor(pub String);

/// The customer as the channel knows them: the account it authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelIdentity {
    /// The platform's id of the customer's account (a buyer id, a helpdesk user id).
    pub user_id: String,
    /// The account's display name, as the platform shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The platform signed the customer in (a marketplace buyer account); `false` where
    /// anyone can write under any address (e-mail, web forms).
    pub authenticated: bool,
}

/// A conversation's state at the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    Open,
    /// Answered; waiting for the customer.
    Waiting,
    Resolved,
}

impl ConversationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Open => "open",
            ConversationState::Waiting => "waiting",
            ConversationState::Resolved => "resolved",
        }
    }
}

/// A conversation as a change listing shows it (no messages).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// The platform's id of the conversation (ticket, thread).
    pub id: String,
    pub customer: ChannelIdentity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Orders the platform links to the conversation.
    #[serde(default)]
    pub order_ids: Vec<String>,
    pub state: ConversationState,
    /// Who works on it at the source (an agent id), if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// RFC 3339, as the platform says.
    pub updated_at: String,
}

/// Public (the customer sees it) or internal (agents only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Internal,
}

/// One message of a thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadMessage {
    /// The platform's message id.
    pub id: String,
    pub from: Sender,
    pub visibility: Visibility,
    /// The author's name or agent id, as the platform shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Untrusted text.
    pub text: String,
    /// RFC 3339.
    pub at: String,
}

/// A conversation with its messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    pub conversation: Conversation,
    pub messages: Vec<ThreadMessage>,
}

/// One page of conversations new or changed since a cursor, oldest change first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub conversations: Vec<Conversation>,
    /// Where the next listing starts.
    pub cursor: Cursor,
    /// More changes are waiting: list again from `cursor` now.
    pub more: bool,
}

/// What a source's platform offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The platform honours an idempotency key on a post: a repeat with the same key
    /// returns the first result and posts nothing more.
    pub reply_idempotency: bool,
    /// The platform pushes changes (webhooks); otherwise it is polled.
    pub push: bool,
}

/// A reply or a note to post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Post<'a> {
    pub visibility: Visibility,
    pub text: &'a str,
    /// The agent posting it (shown at the source as the author).
    pub author: &'a str,
}

/// A post the platform accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The platform's id of the new message.
    pub message_id: String,
    pub at: String,
}

/// How Countersign reads conversations from a platform and answers in them.
///
/// Blocking, like [`crate::Connector`]: the engine calls it from its own threads.
pub trait CaseSource: Send + Sync {
    /// The source's name in the workspace (`[[sources]] name`).
    fn name(&self) -> &str;

    fn capabilities(&self) -> Capabilities;

    /// Conversations new or changed since `since` (`None`: from the start), one page.
    fn changes(&self, since: Option<&Cursor>) -> Result<Changes, ConnectorError>;

    /// A conversation and its messages.
    fn thread(&self, conversation_id: &str) -> Result<Thread, ConnectorError>;

    /// Post a reply or note. `idempotency_key` is the same for every attempt at one post.
    fn post(&self, conversation_id: &str, post: Post<'_>, idempotency_key: &str) -> Result<Posted, ConnectorError>;

    /// Mark the conversation's state at the source.
    fn set_state(&self, conversation_id: &str, state: ConversationState) -> Result<Conversation, ConnectorError>;

    /// Claim the conversation for `assignee` at the source (`None`: release it).
    fn assign(&self, conversation_id: &str, assignee: Option<&str>) -> Result<Conversation, ConnectorError>;
}

/// How long to wait before listing again: the platform's `Retry-After` when it rate
/// limits, else `idle` doubled after each empty or failed poll (`failures`), at most `max`.
pub fn next_poll(error: Option<&ConnectorError>, failures: u32, idle: Duration, max: Duration) -> Duration {
    if let Some(ConnectorError::RateLimited { retry_after: Some(d) }) = error {
        return *d;
    }
    let factor = 1u32.checked_shl(failures.min(16)).unwrap_or(u32::MAX);
    idle.saturating_mul(factor).min(max)
}

/// Which adapter a source uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The demo seller center's buyer messages ([`demo::DemoMessages`]).
    DemoSellerCenter,
    /// Zendesk Support tickets ([`zendesk::Zendesk`]), with an API token
    /// (`{email}/token:{api_token}` in the keyring); `base_url` and `credential` required.
    Zendesk,
    /// The demo seller center's buyer messages on its web pages, for platforms whose
    /// messages have no API (`countersign_browser::DemoMessagePages`): read and answered
    /// in the workspace's browser connector (`[connector] kind = "browser"`), whose
    /// `base_url`, `profile` and signed-in session it uses, so neither `base_url` nor
    /// `credential` is given here. (One Chromium per profile: the source and the connector
    /// share it.)
    DemoSellerCenterPages,
}

/// A workspace's `[[sources]]` entry: where cases come from, and what the cases are
/// (tenant, store, platform, channel) for the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// Unique in the workspace; a case from this source has the id `NAME:CONVERSATION`.
    pub name: String,
    pub kind: SourceKind,
    /// The platform's API root. For `demo_seller_center` without it: the demo seller
    /// center the app starts (`[connector] kind = "demo_store"`). Not for
    /// `demo_seller_center_pages` (the browser connector's `base_url`).
    #[serde(default)]
    pub base_url: Option<String>,
    /// The keyring credential (`PLATFORM/STORE`); not used for the demo seller center the
    /// app starts (its token lives in memory only).
    #[serde(default)]
    pub credential: Option<String>,
    pub tenant: String,
    pub store: String,
    pub platform: String,
    pub channel: countersign_core::model::Channel,
    /// How often to list changes when idle, in seconds (backing off on errors).
    #[serde(default = "default_poll_seconds")]
    pub poll_seconds: u64,
    /// This seat's own id at the source (what its assignee field holds), for claiming
    /// conversations; without it, the operator id. A Zendesk source claims only with one
    /// (Zendesk assigns numeric agent ids).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Where this source's webhooks arrive (a loopback address such as `127.0.0.1:8788`,
    /// behind a TLS tunnel or reverse proxy the platform can reach): a signed call syncs
    /// the source at once. Zendesk only.
    #[serde(default)]
    pub push_listen: Option<String>,
    /// The keyring credential (`PLATFORM/STORE`) holding the webhook's signing secret.
    #[serde(default)]
    pub push_secret: Option<String>,
}

fn default_poll_seconds() -> u64 {
    10
}

impl SourceSettings {
    /// A source as a workspace names it, with every optional setting left out (polled
    /// every 10 s; no base URL, credential, agent id or webhooks).
    pub fn new(
        name: &str,
        kind: SourceKind,
        (tenant, store, platform): (&str, &str, &str),
        channel: countersign_core::model::Channel,
    ) -> SourceSettings {
        SourceSettings {
            name: name.to_owned(),
            kind,
            base_url: None,
            credential: None,
            tenant: tenant.to_owned(),
            store: store.to_owned(),
            platform: platform.to_owned(),
            channel,
            poll_seconds: default_poll_seconds(),
            agent_id: None,
            push_listen: None,
            push_secret: None,
        }
    }

    /// What is wrong with the entry as written, if anything.
    pub fn check(&self) -> Result<(), String> {
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(format!("source name {:?} must be letters, digits, '-' or '_'", self.name));
        }
        for (field, value) in [("tenant", &self.tenant), ("store", &self.store), ("platform", &self.platform)] {
            if value.trim().is_empty() {
                return Err(format!("source {}: `{field}` must not be empty", self.name));
            }
        }
        if !(1..=3600).contains(&self.poll_seconds) {
            return Err(format!("source {}: `poll_seconds` must be 1 to 3600", self.name));
        }
        if let Some(url) = &self.base_url {
            crate::catalog::check_base_url(url).map_err(|e| format!("source {}: {e}", self.name))?;
        }
        if let Some(c) = &self.credential {
            CredentialName::parse(c).map_err(|e| format!("source {}: {e}", self.name))?;
        }
        if let Some(agent) = &self.agent_id
            && (agent.trim().is_empty() || (self.kind == SourceKind::Zendesk && agent.parse::<u64>().is_err()))
        {
            return Err(format!(
                "source {}: `agent_id` {agent:?} is not an agent id there (Zendesk's are numbers)",
                self.name
            ));
        }
        match (&self.push_listen, &self.push_secret) {
            (None, None) => {}
            (Some(listen), Some(secret)) => {
                if self.kind != SourceKind::Zendesk {
                    return Err(format!("source {}: only a zendesk source takes webhooks", self.name));
                }
                let addr: std::net::SocketAddr = listen
                    .parse()
                    .map_err(|_| format!("source {}: `push_listen` {listen:?} is not an address:port", self.name))?;
                if !addr.ip().is_loopback() {
                    return Err(format!(
                        "source {}: `push_listen` must be a loopback address; put a TLS tunnel or reverse proxy in \
                         front of it for the platform",
                        self.name
                    ));
                }
                CredentialName::parse(secret).map_err(|e| format!("source {}: `push_secret`: {e}", self.name))?;
            }
            _ => return Err(format!("source {}: `push_listen` and `push_secret` go together", self.name)),
        }
        if self.kind == SourceKind::DemoSellerCenterPages && (self.base_url.is_some() || self.credential.is_some()) {
            return Err(format!(
                "source {}: a demo_seller_center_pages source uses the pages, profile and signed-in session of the \
                 workspace's browser connector ([connector] kind = \"browser\"): give `base_url` and `profile` \
                 there, and no `credential` (the agent signs in by hand)",
                self.name
            ));
        }
        if self.kind == SourceKind::Zendesk && (self.base_url.is_none() || self.credential.is_none()) {
            return Err(format!(
                "source {}: a zendesk source needs `base_url` (https://SUBDOMAIN.zendesk.com) and `credential`",
                self.name
            ));
        }
        Ok(())
    }
}

/// A source the engine reads: its settings and its adapter.
#[derive(Clone)]
pub struct Source {
    pub settings: SourceSettings,
    pub adapter: std::sync::Arc<dyn CaseSource>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("settings", &self.settings).finish_non_exhaustive()
    }
}
