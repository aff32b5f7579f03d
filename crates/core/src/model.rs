//! Cases, plans, steps and citations: the data that flows through Countersign.
//!
//! A [`Case`] comes from the support platform (trusted structure, untrusted text).
//! A [`Plan`] comes from a planner and is **untrusted input**: every field is
//! validated (see [`crate::validate`]) and the policy decides on every step.
//! Unknown fields are rejected at deserialisation, so a planner cannot smuggle in
//! a field that some later layer might honour.

use std::collections::BTreeMap;

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a customer case arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Chat,
    Email,
    InstagramDm,
    TiktokDm,
    FacebookMessenger,
    Whatsapp,
    Phone,
    WebForm,
}

impl Channel {
    /// Every channel, in declaration order.
    pub const ALL: [Channel; 8] = [
        Channel::Chat,
        Channel::Email,
        Channel::InstagramDm,
        Channel::TiktokDm,
        Channel::FacebookMessenger,
        Channel::Whatsapp,
        Channel::Phone,
        Channel::WebForm,
    ];

    /// The wire name (`instagram_dm`), as written in policies and pauses.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Chat => "chat",
            Channel::Email => "email",
            Channel::InstagramDm => "instagram_dm",
            Channel::TiktokDm => "tiktok_dm",
            Channel::FacebookMessenger => "facebook_messenger",
            Channel::Whatsapp => "whatsapp",
            Channel::Phone => "phone",
            Channel::WebForm => "web_form",
        }
    }

    /// Parse a wire name.
    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a case says about its customer's identity. A **claim** only: a case file or a
/// source may write anything here, so no decision reads it. How strongly the customer
/// was verified is [`IdentityLevel`], derived by the engine from evidence (the channel's
/// authenticated account, identity look-ups, an agent's recorded check).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityStatus {
    Verified,
    Unverified,
}

/// How strongly the person writing has been shown to be the account holder, weakest
/// first. Derived from evidence only, never from a field a case declares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityLevel {
    /// Nothing shows who is writing.
    #[default]
    None,
    /// An identity look-up (by e-mail, or by name and zip code) with values the customer
    /// gave answered this customer's account. Anyone who knows those values passes it.
    Matched,
    /// The channel signed the customer in to this account, or an agent recorded a
    /// one-time check (a code sent to the account's contact).
    Strong,
}

impl IdentityLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityLevel::None => "none",
            IdentityLevel::Matched => "matched",
            IdentityLevel::Strong => "strong",
        }
    }
}

impl std::fmt::Display for IdentityLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The customer a case is about, once identified from structured data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerRef {
    /// The platform's customer id (e.g. `james_li_5688`).
    pub id: String,
    pub identity: IdentityStatus,
}

/// Who wrote a message in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    Customer,
    Agent,
    System,
}

/// One message of the conversation. Its text is untrusted data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub from: Sender,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

/// A customer case as the platform delivers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub id: String,
    pub tenant: String,
    pub store: String,
    pub platform: String,
    pub channel: Channel,
    /// `None` until the customer has been identified from structured fields.
    #[serde(default)]
    pub customer: Option<CustomerRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub messages: Vec<Message>,
    /// Orders the platform linked to the case (not ones the customer merely mentioned).
    #[serde(default)]
    pub order_ids: Vec<String>,
}

impl Case {
    /// Everything the customer wrote, subject included: the text escalation signals look at.
    pub fn customer_text(&self) -> impl Iterator<Item = &str> {
        self.subject
            .as_deref()
            .into_iter()
            .chain(self.messages.iter().filter(|m| m.from == Sender::Customer).map(|m| m.text.as_str()))
    }
}

/// Where a parameter value came from. Only structured sources are trusted: a value
/// lifted from free text cannot raise autonomy, whatever it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Read from the platform through a connector (structured data).
    Connector,
    /// Typed or chosen by the human agent in the app.
    Agent,
    /// A constant of the policy or playbook.
    Policy,
    /// Lifted from the customer's message.
    CustomerMessage,
    /// Lifted from a note on an order.
    OrderNote,
    /// Lifted from a knowledge article.
    Article,
    /// Produced by the model with no other source.
    Model,
}

impl Provenance {
    /// Trusted sources are structured; everything lifted from prose or invented is not.
    pub fn is_trusted(self) -> bool {
        matches!(self, Provenance::Connector | Provenance::Agent | Provenance::Policy)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provenance::Connector => "connector",
            Provenance::Agent => "agent",
            Provenance::Policy => "policy",
            Provenance::CustomerMessage => "customer_message",
            Provenance::OrderNote => "order_note",
            Provenance::Article => "article",
            Provenance::Model => "model",
        }
    }
}

/// A step parameter: the value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Param {
    pub value: serde_json::Value,
    pub source: Provenance,
}

/// One step the planner proposes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub action: String,
    #[serde(default)]
    pub params: BTreeMap<String, Param>,
    /// Why the planner wants this step; shown to the agent, never decided on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// The planner's own opinion of the step's risk. Recorded for audit and
    /// **ignored by the policy**: the model never authorises itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planner_risk: Option<String>,
}

/// A reference from a reply sentence to a knowledge passage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Citation {
    pub article_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Section anchor inside the article.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// The quoted span the reply relies on.
    #[serde(default)]
    pub quote: String,
}

impl Citation {
    /// A citation of `article_id` (at `version`, section `anchor` when given) quoting `quote`.
    pub fn new(
        article_id: impl Into<String>,
        version: Option<&str>,
        anchor: Option<&str>,
        quote: impl Into<String>,
    ) -> Citation {
        Citation {
            article_id: article_id.into(),
            version: version.map(Into::into),
            anchor: anchor.map(Into::into),
            quote: quote.into(),
        }
    }
}

/// The reply the planner drafts for the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyDraft {
    pub text: String,
    #[serde(default)]
    pub citations: Vec<Citation>,
}

/// What a planner proposes for a case. Untrusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub case_id: String,
    /// Which planner produced it (`local`, `llm:openai`, `file`...).
    pub planner: String,
    /// The workflow the plan belongs to (`cancel_order`, `refund`...); pauses can target it.
    pub intent: String,
    pub steps: Vec<Step>,
    /// Escalation signals the planner flags in the case. They can only add to what the
    /// policy's own detector finds (a handoff, every step and the reply at least the
    /// policy's escalation for the category), never remove a signal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<FlaggedSignal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<ReplyDraft>,
}

/// An escalation signal a planner flags (an LLM that reads a threat the patterns missed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlaggedSignal {
    pub category: crate::policy::SignalCategory,
    /// Why, in the planner's words (shown; never read by the policy).
    #[serde(default)]
    pub reason: String,
}

/// The person operating the app: who would countersign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Operator {
    pub id: String,
    /// A role name the policy knows (`agent`, `team_lead`...).
    pub role: String,
}

/// What a pause switch targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum PauseScope {
    Tenant,
    Channel,
    Store,
    /// A plan intent such as `refund`.
    Workflow,
    Action,
}

impl PauseScope {
    pub const ALL: [PauseScope; 5] =
        [PauseScope::Tenant, PauseScope::Channel, PauseScope::Store, PauseScope::Workflow, PauseScope::Action];

    pub fn as_str(self) -> &'static str {
        match self {
            PauseScope::Tenant => "tenant",
            PauseScope::Channel => "channel",
            PauseScope::Store => "store",
            PauseScope::Workflow => "workflow",
            PauseScope::Action => "action",
        }
    }

    pub fn parse(s: &str) -> Option<PauseScope> {
        PauseScope::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// An active pause switch: automation in its scope stops until it is cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pause {
    pub id: String,
    pub scope: PauseScope,
    /// The tenant, channel, store, intent or action name it targets.
    pub value: String,
    pub reason: String,
    pub set_by: String,
    pub set_at: Timestamp,
    /// The team whose plane the pause came from (signed by a lead and seen by this
    /// desktop); `None` for a pause set on this desktop alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

impl Pause {
    /// Does this pause cover a step of `action` in `case`? `workflows` are the plan's
    /// intent and the workflow the policy files the action under (a planner names its
    /// intent freely, so a workflow pause must not depend on that name alone).
    pub fn covers(&self, case: &Case, workflows: &[&str], action: &str) -> bool {
        match self.scope {
            PauseScope::Tenant => self.value == case.tenant,
            PauseScope::Channel => self.value == case.channel.as_str(),
            PauseScope::Store => self.value == case.store,
            PauseScope::Workflow => workflows.contains(&self.value.as_str()),
            PauseScope::Action => self.value == action,
        }
    }
}
