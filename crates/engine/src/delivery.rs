//! Replies delivered where the customer wrote: a reply to a case from a source is posted
//! in its conversation through the source, once.
//!
//! `reply_sent` records the decision to send (the text, its citations, who) and, for a
//! case from a source, where it goes and the **idempotency key** of every attempt, before
//! the first attempt. Then the post: `reply_delivered` with the platform's message id, or
//! `reply_not_delivered` (`unknown` when it may have landed: a timeout, a lost answer;
//! `failed` when the platform refused it). A reply whose delivery is not recorded (the app
//! stopped mid-post) or is `unknown` is settled before anything else is posted:
//! - where the source honours idempotency keys (the demo seller center), by posting again
//!   with the same key: the platform answers with the message it posted, or posts once;
//! - where it does not (Zendesk ticket updates), by reading the thread back first: the
//!   reply is there (delivered, with its message id) or it is posted.
//!
//! A customer never gets the same reply twice. Delivery runs at send time, at every
//! start ([`Engine::recover`]), and on request (`countersign reply deliver`).

use countersign_connectors::ConnectorError;
use countersign_connectors::source::{Post, Source, Visibility};
use countersign_core::evidence::{Event, ReplyDelivery, StepOutcome};
use countersign_core::model::Sender;
use serde::Serialize;

use crate::{Engine, EngineError, LoggedEvent};

/// How far before `reply_sent` a message read back may be dated and still be the
/// reply's earlier attempt (platform clocks, whole-second timestamps).
const SKEW_SECS: i64 = 5;

/// The action a pause names to stop replies being posted to sources.
pub const SEND_REPLY: &str = "send_reply";

/// Where a case's reply stands at its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Delivery {
    /// The case is not from a source: the reply is recorded, not posted anywhere.
    Local,
    /// Recorded as sent; no attempt to post it has ended yet (or the app stopped mid-post).
    Pending,
    Delivered {
        message_id: String,
    },
    /// May have landed: settled before any new attempt.
    Unknown {
        error: String,
    },
    /// The platform refused it.
    Failed {
        error: String,
    },
}

/// The key of every attempt to post a case's reply: the same for the same case, plan and
/// text, so no retry mints a new one.
pub fn reply_key(case_id: &str, plan_id: &str, text: &str) -> String {
    let digest = countersign_core::digest::sha256_hex(format!("{case_id}\0{plan_id}\0{text}").as_bytes());
    let hex = digest.trim_start_matches("sha256:");
    format!("cs-reply-{}", &hex[..hex.len().min(40)])
}

/// The last `reply_sent` among a case's events: its plan, text, route and time.
struct Sent {
    plan_id: String,
    text: String,
    route: Option<ReplyDelivery>,
    at: jiff::Timestamp,
}

/// The case's last sent reply, and where its delivery stands.
fn delivery_state(events: &[LoggedEvent]) -> Option<(Sent, Delivery)> {
    let (i, sent) = events.iter().enumerate().rev().find(|(_, e)| matches!(e.event, Event::ReplySent { .. }))?;
    let Event::ReplySent { plan_id, text, delivery, .. } = &sent.event else { return None };
    let found = Sent { plan_id: plan_id.clone(), text: text.clone(), route: delivery.clone(), at: sent.at };
    if delivery.is_none() {
        return Some((found, Delivery::Local));
    }
    let state = events[i + 1..]
        .iter()
        .rev()
        .find_map(|e| match &e.event {
            Event::ReplyDelivered { message_id, .. } => Some(Delivery::Delivered { message_id: message_id.clone() }),
            Event::ReplyNotDelivered { outcome: StepOutcome::Failed, error, .. } => {
                Some(Delivery::Failed { error: error.clone() })
            }
            Event::ReplyNotDelivered { error, .. } => Some(Delivery::Unknown { error: error.clone() }),
            _ => None,
        })
        .unwrap_or(Delivery::Pending);
    Some((found, state))
}

/// A refusal by the platform (it will refuse again); anything else may have landed.
fn refused(e: &ConnectorError) -> bool {
    matches!(
        e,
        ConnectorError::Rejected { status: 400..=428 | 430..=499, .. }
            | ConnectorError::InvalidParams { .. }
            | ConnectorError::CredentialMissing { .. }
            | ConnectorError::CredentialUnavailable { .. }
            | ConnectorError::Unsupported { .. }
            | ConnectorError::Config { .. }
    )
}

impl Engine {
    /// The source and conversation a case came from, if it came from one.
    pub(crate) fn reply_route(&self, case_id: &str) -> Result<Option<(&Source, ReplyDelivery)>, EngineError> {
        let Some(revision) = self.store.received_case(case_id)? else { return Ok(None) };
        if revision.source == crate::intake::PASTE {
            // Nowhere to post: the agent copies the reply to the platform by hand.
            return Ok(None);
        }
        let source = self.source_named(&revision.source)?;
        let delivery = ReplyDelivery {
            source: revision.source.clone(),
            conversation_id: revision.conversation_id,
            idempotency_key: String::new(),
        };
        Ok(Some((source, delivery)))
    }

    fn source_named(&self, name: &str) -> Result<&Source, EngineError> {
        self.sources.iter().find(|s| s.settings.name == name).ok_or_else(|| EngineError::Config {
            message: format!("the case came from source {name:?}, which this workspace no longer names in [[sources]]"),
        })
    }

    /// Where the case's sent reply stands (`None`: no reply sent).
    pub fn reply_delivery(&self, case_id: &str) -> Result<Option<Delivery>, EngineError> {
        Ok(delivery_state(&self.log_case(case_id)?).map(|(_, state)| state))
    }

    /// Post the case's sent reply if it is not delivered yet (see the module doc): the
    /// same key as every earlier attempt; an earlier attempt that may have landed is
    /// settled first. A reply recorded as sent with no outcome after it counts as such an
    /// attempt: the app may have stopped mid-post.
    pub fn deliver_reply(&self, case_id: &str) -> Result<Delivery, EngineError> {
        self.deliver(case_id, false)
    }

    /// `first`: called right after `reply_sent` was recorded, so nothing was posted yet.
    pub(crate) fn deliver(&self, case_id: &str, first: bool) -> Result<Delivery, EngineError> {
        let _only_one = self.reply_guard()?;
        self.deliver_guarded(case_id, first)
    }

    /// Held while a reply is checked, recorded or posted: one at a time across this
    /// process's threads and every other process on this data folder (an app and a CLI,
    /// a double click), so no two attempts at one reply can both find it undelivered.
    pub(crate) fn reply_guard(&self) -> Result<std::fs::File, EngineError> {
        let dir = self.store.path().parent().unwrap_or(std::path::Path::new("."));
        let path = dir.join("replies.lock");
        let file = crate::lock_file(&path)?;
        file.lock().map_err(|e| EngineError::io(&path, e))?;
        Ok(file)
    }

    /// [`Engine::deliver`] with the reply guard already held.
    pub(crate) fn deliver_guarded(&self, case_id: &str, first: bool) -> Result<Delivery, EngineError> {
        let events = self.log_case(case_id)?;
        let Some((sent, state)) = delivery_state(&events) else {
            return Err(EngineError::NotFound { message: format!("case {case_id} has no sent reply") });
        };
        let (Some(route), Delivery::Pending | Delivery::Unknown { .. } | Delivery::Failed { .. }) =
            (&sent.route, &state)
        else {
            return Ok(state);
        };
        let Sent { plan_id, text, at: sent_at, .. } = &sent;
        let source = self.source_named(&route.source)?;
        // A pause wins over a retry as over a first attempt: the reply stays pending.
        let case = self.case(case_id)?;
        let intent = self.case_plans(case_id)?.into_iter().find(|(p, _)| &p.id == plan_id).map(|(p, _)| p.intent);
        if let Some(paused) = self.paused(&case, intent.as_deref().unwrap_or_default(), SEND_REPLY, "reply")? {
            return Err(paused);
        }
        let conversation = route.conversation_id.as_str();
        let key = route.idempotency_key.as_str();
        if !first && !source.adapter.capabilities().reply_idempotency {
            // No key to lean on: the thread says whether the earlier attempt landed.
            let thread = source.adapter.thread(conversation)?;
            // Platforms keep whole seconds (Zendesk) and their own whitespace: a message
            // from up to SKEW before `reply_sent` with the same words is the earlier attempt.
            let since = *sent_at - jiff::SignedDuration::from_secs(SKEW_SECS);
            let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
            let landed = thread.messages.iter().find(|m| {
                m.from == Sender::Agent
                    && m.visibility == Visibility::Public
                    && words(&m.text) == words(text)
                    && m.at.parse::<jiff::Timestamp>().is_ok_and(|at| at >= since)
            });
            if let Some(m) = landed {
                return self.record_delivered(case_id, plan_id, route, &m.id);
            }
        }
        let post = Post { visibility: Visibility::Public, text, author: &self.operator.id };
        match source.adapter.post(conversation, post, key) {
            Ok(posted) => self.record_delivered(case_id, plan_id, route, &posted.message_id),
            Err(e) => {
                let outcome = if refused(&e) { StepOutcome::Failed } else { StepOutcome::Unknown };
                let error = e.to_string();
                self.append(
                    Some(case_id),
                    &self.operator.id,
                    Event::ReplyNotDelivered {
                        plan_id: plan_id.clone(),
                        source: route.source.clone(),
                        conversation_id: route.conversation_id.clone(),
                        idempotency_key: route.idempotency_key.clone(),
                        outcome,
                        error: error.clone(),
                    },
                )?;
                Ok(if outcome == StepOutcome::Failed {
                    Delivery::Failed { error }
                } else {
                    Delivery::Unknown { error }
                })
            }
        }
    }

    fn record_delivered(
        &self,
        case_id: &str,
        plan_id: &str,
        route: &ReplyDelivery,
        message_id: &str,
    ) -> Result<Delivery, EngineError> {
        self.append(
            Some(case_id),
            &self.operator.id,
            Event::ReplyDelivered {
                plan_id: plan_id.to_owned(),
                source: route.source.clone(),
                conversation_id: route.conversation_id.clone(),
                message_id: message_id.to_owned(),
                idempotency_key: route.idempotency_key.clone(),
            },
        )?;
        Ok(Delivery::Delivered { message_id: message_id.to_owned() })
    }

    /// Settle every reply whose delivery is pending or unknown (at start, after a crash).
    pub fn deliver_pending_replies(&self) -> Result<Vec<(String, Delivery)>, EngineError> {
        let mut out = Vec::new();
        let mut cases: Vec<String> = self
            .events(&countersign_store::EventFilter { kind: Some("reply_sent".into()), ..Default::default() })?
            .into_iter()
            .filter_map(|e| e.case_id)
            .collect();
        cases.sort_unstable();
        cases.dedup();
        for case_id in cases {
            if !matches!(self.reply_delivery(&case_id)?, Some(Delivery::Pending | Delivery::Unknown { .. })) {
                continue;
            }
            // One case that cannot be settled now (its source down, paused) does not keep
            // the others from being settled; it stays pending for the next start.
            match self.deliver_reply(&case_id) {
                Ok(state) => out.push((case_id, state)),
                Err(e) => tracing::warn!(case = %case_id, error = %e, "a pending reply could not be settled now"),
            }
        }
        Ok(out)
    }
}
