//! Intake: cases arrive from the workspace's sources (`[[sources]]`), not only from the
//! cases folder.
//!
//! A sync lists each source's changes from its stored cursor, reads each changed
//! conversation's thread and records a new **revision** of its case when the content
//! changed (`case_received`, committed with the revision row). The cursor moves on only
//! after a page's cases are recorded, so a crash re-reads a page and nothing is lost;
//! an unchanged conversation read again makes no revision, so nothing is doubled. A new
//! revision with new words from the customer, of a case that was already planned, is
//! planned again on it (waiting steps the new plan does not keep are superseded, as *Plan
//! again* does); a revision that only adds an agent's reply is not.
//!
//! The case's customer is the channel's identity of them: the account the source
//! authenticated is `verified`; an address anyone could write from is `unverified`.

use std::time::Duration;

use countersign_connectors::ConnectorError;
use countersign_connectors::source::{Changes, Cursor, Source, Thread, Visibility, next_poll};
use countersign_core::evidence::Event;
use countersign_core::model::{Case, CustomerRef, IdentityStatus, Message};
use countersign_store::{NewCaseRevision, content_hash};
use serde::Serialize;

use crate::{Engine, EngineError};

/// The most pages one sync reads from a source before yielding (the next sync goes on
/// from the stored cursor).
const MAX_PAGES: u32 = 100;

/// What one sync of one source did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SyncReport {
    pub source: String,
    pub pages: u32,
    /// Conversations seen for the first time.
    pub new_cases: u32,
    /// Conversations whose content changed (a new revision).
    pub updated: u32,
    /// Updated conversations in which the customer wrote again (the others changed by an
    /// agent's reply or the state at the source): what a person is told about.
    pub customer_wrote: u32,
    /// Conversations read again with nothing new.
    pub unchanged: u32,
    /// Updated cases that were planned before and were planned again.
    pub replanned: u32,
    /// More changes wait at the source (the page limit was reached).
    pub more: bool,
    /// Conversations listed but gone when read (deleted at the source).
    pub gone: u32,
    /// Why the sync of this source stopped (its cursor stays where it was).
    pub error: Option<String>,
}

/// The source name of pasted cases: content an agent pasted from a platform with no
/// connector yet. Untrusted, its customer unverified; its reply is recorded, and the agent
/// posts it there by hand.
pub const PASTE: &str = "paste";

/// A conversation an agent pasted, with the channel and customer they picked.
#[derive(Debug, Clone, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Pasted {
    pub channel: countersign_core::model::Channel,
    /// The platform's id of the customer, as the agent picked it (never verified).
    pub customer_id: Option<String>,
    pub tenant: String,
    pub store: String,
    pub platform: String,
    #[serde(default)]
    pub subject: Option<String>,
    /// What the customer wrote.
    pub text: String,
    /// Orders the agent names as the case's.
    #[serde(default)]
    pub order_ids: Vec<String>,
}

/// Who holds a case from a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Claim {
    /// This seat's operator.
    Mine,
    /// Another agent, at the source.
    HeldBy(String),
}

/// The longest wait between two syncs of a source that keeps failing (unless the
/// platform's `Retry-After` asks for longer).
pub const MAX_SYNC_WAIT: Duration = Duration::from_secs(300);

/// When to sync `source` again after a sync that ended with `error` (none: it went well),
/// the `failures`-th failure in a row: its `poll_seconds` after a success; after a failure,
/// the platform's `Retry-After` when it rate limited, else `poll_seconds` doubled for each
/// failure in a row, at most [`MAX_SYNC_WAIT`] (or `poll_seconds`, if that is longer).
pub fn next_sync(source: &Source, error: Option<&EngineError>, failures: u32) -> Duration {
    let idle = Duration::from_secs(source.settings.poll_seconds);
    let connector = match error {
        Some(EngineError::Connector(e)) => Some(e),
        _ => None,
    };
    let failures = if error.is_some() { failures } else { 0 };
    next_poll(connector, failures, idle, MAX_SYNC_WAIT.max(idle))
}

/// The case id of a conversation: `SOURCE:CONVERSATION`.
pub fn case_id(source: &str, conversation_id: &str) -> String {
    format!("{source}:{conversation_id}")
}

/// The case a thread stands for: public messages only (an internal note is not the
/// customer's, nor said to them), the customer as the channel authenticated them.
pub fn case_of(source: &Source, thread: &Thread) -> Case {
    let s = &source.settings;
    let c = &thread.conversation;
    Case {
        id: case_id(&s.name, &c.id),
        tenant: s.tenant.clone(),
        store: s.store.clone(),
        platform: s.platform.clone(),
        channel: s.channel,
        customer: Some(CustomerRef {
            id: c.customer.user_id.clone(),
            identity: if c.customer.authenticated { IdentityStatus::Verified } else { IdentityStatus::Unverified },
        }),
        subject: c.subject.clone(),
        messages: thread
            .messages
            .iter()
            .filter(|m| m.visibility == Visibility::Public)
            .map(|m| Message { from: m.from, text: m.text.clone(), at: m.at.parse().ok() })
            .collect(),
        order_ids: c.order_ids.clone(),
    }
}

impl Engine {
    /// Attach the case sources the host built for this workspace's `[[sources]]`.
    pub fn with_sources(mut self, sources: Vec<Source>) -> Engine {
        self.sources = sources;
        self
    }

    /// The sources attached.
    pub fn sources(&self) -> &[Source] {
        &self.sources
    }

    /// Sync every source (see the module doc). A source that fails is reported and the
    /// others are still synced; the first error is returned after all were tried.
    pub fn sync_sources(&self) -> Result<Vec<SyncReport>, EngineError> {
        Ok(self
            .sources
            .iter()
            .map(|source| {
                self.sync_source(source).unwrap_or_else(|e| {
                    tracing::warn!(source = %source.settings.name, error = %e, "source sync failed");
                    SyncReport {
                        source: source.settings.name.clone(),
                        error: Some(e.to_string()),
                        ..SyncReport::default()
                    }
                })
            })
            .collect())
    }

    /// Sync one source from its stored cursor, at most [`MAX_PAGES`] pages.
    pub fn sync_source(&self, source: &Source) -> Result<SyncReport, EngineError> {
        let name = &source.settings.name;
        let mut report = SyncReport { source: name.clone(), ..SyncReport::default() };
        let mut cursor = self.store.source_cursor(name)?.map(Cursor);
        loop {
            let Changes { conversations, cursor: next, more } = source.adapter.changes(cursor.as_ref())?;
            report.pages += 1;
            for conversation in conversations {
                let thread = match source.adapter.thread(&conversation.id) {
                    Ok(thread) => thread,
                    // Listed, then gone (a deleted ticket): nothing to read, nothing lost.
                    Err(ConnectorError::Rejected { status: 404 | 410, .. }) => {
                        tracing::info!(source = %name, conversation = %conversation.id, "listed but gone");
                        report.gone += 1;
                        continue;
                    }
                    // Anything else stops here, before the cursor moves: the next sync
                    // reads this page again.
                    Err(e) => return Err(e.into()),
                };
                self.receive(source, &thread, &mut report)?;
            }
            self.store.writer().set_source_cursor(name, &next.0, self.clock.now())?;
            cursor = Some(next);
            if !more {
                break;
            }
            if report.pages >= MAX_PAGES {
                report.more = true;
                break;
            }
        }
        Ok(report)
    }

    /// Record the thread as the case's next revision if its content changed; plan an
    /// already planned case again on it.
    fn receive(&self, source: &Source, thread: &Thread, report: &mut SyncReport) -> Result<(), EngineError> {
        let case = case_of(source, thread);
        let case_json = serde_json::to_string(&case)
            .map_err(|e| EngineError::BadInput { message: format!("encoding case {}: {e}", case.id) })?;
        let latest = self.store.received_case(&case.id)?;
        let state = thread.conversation.state.as_str().to_owned();
        // A revision for new content or a new state at the source (resolved, reopened):
        // both are evidence. Anything else (an assignee, a read) is no change of the case.
        if latest.as_ref().is_some_and(|l| l.content_hash == content_hash(&case_json) && l.state == state) {
            report.unchanged += 1;
            return Ok(());
        }
        let revision = latest.as_ref().map_or(1, |l| l.revision + 1);
        let event = Event::CaseReceived {
            source: source.settings.name.clone(),
            conversation_id: thread.conversation.id.clone(),
            revision,
            state: state.clone(),
            case: case.clone(),
        };
        self.store.writer().receive_case(NewCaseRevision {
            case_id: case.id.clone(),
            revision,
            source: source.settings.name.clone(),
            conversation_id: thread.conversation.id.clone(),
            state,
            case_json,
            event: self.new_event(Some(&case.id), "system", &event),
        })?;
        if revision == 1 {
            report.new_cases += 1;
        } else {
            report.updated += 1;
            // Only the customer's words make a case to plan again: an agent's reply (ours,
            // posted back) or a state change at the source is a revision, not a new ask.
            let before = latest.map(|l| parse_case(&l.case_id, &l.case_json)).transpose()?;
            let asked_anew = before.is_none_or(|b| b.customer_text().ne(case.customer_text()));
            if asked_anew {
                report.customer_wrote += 1;
                if !self.case_plans(&case.id)?.is_empty() {
                    // A planning failure (a planner or platform down) does not stop the
                    // sync: the case is planned again when it is next opened, as its plan
                    // no longer carries the customer's words (see `open_case`).
                    match self.plan_again(&case) {
                        Ok(_) => report.replanned += 1,
                        Err(e) => tracing::warn!(case = %case.id, error = %e, "planning the case again failed"),
                    }
                }
            }
        }
        Ok(())
    }

    /// Claim a case from a source for this seat when it is opened: the conversation's
    /// assignee at the source becomes this operator, so two agents do not answer one
    /// conversation. Held by someone else, it stays theirs (recorded as seen). `None` for
    /// a case not from a source. The source is asked each time: a claim is only as good as
    /// the source's word now.
    pub fn claim(&self, case_id: &str) -> Result<Option<Claim>, EngineError> {
        let Some((source, route)) = self.reply_route(case_id)? else { return Ok(None) };
        let me = match (&source.settings.agent_id, source.settings.kind) {
            (Some(agent), _) => agent.as_str(),
            // Zendesk's assignees are its numeric agent ids: no guessing ours.
            (None, countersign_connectors::source::SourceKind::Zendesk) => {
                tracing::debug!(source = %route.source, "no agent_id: conversations are not claimed there");
                return Ok(None);
            }
            (None, _) => self.operator.id.as_str(),
        };
        let thread = source.adapter.thread(&route.conversation_id)?;
        let claim = match thread.conversation.assignee.as_deref() {
            Some(holder) if holder == me => return Ok(Some(Claim::Mine)),
            Some(holder) => Claim::HeldBy(holder.to_owned()),
            None => {
                source.adapter.assign(&route.conversation_id, Some(me))?;
                Claim::Mine
            }
        };
        let recorded = self.log_case(case_id)?.iter().rev().find_map(|e| match &e.event {
            Event::CaseAssigned { assignee, .. } => Some(assignee.clone()),
            _ => None,
        });
        let assignee = match &claim {
            Claim::Mine => me.to_owned(),
            Claim::HeldBy(holder) => holder.clone(),
        };
        if recorded.as_deref() != Some(assignee.as_str()) {
            let event = Event::CaseAssigned {
                source: route.source.clone(),
                conversation_id: route.conversation_id.clone(),
                assignee,
                claimed: claim == Claim::Mine,
            };
            self.append(Some(case_id), &self.operator.id, event)?;
        }
        Ok(Some(claim))
    }

    /// Whether the last claim recorded for the case is this seat's.
    pub(crate) fn claimed_here(&self, case_id: &str) -> Result<bool, EngineError> {
        Ok(self.log_case(case_id)?.iter().rev().find_map(|e| match &e.event {
            Event::CaseAssigned { claimed, .. } => Some(*claimed),
            _ => None,
        }) == Some(true))
    }

    /// Record a pasted conversation as a case (`paste:P-…`): its `case_received` says it
    /// came from a paste, and its customer is `unverified` whatever the text claims.
    /// The same paste twice is one case.
    pub fn paste_case(&self, pasted: &Pasted) -> Result<Case, EngineError> {
        if pasted.text.trim().is_empty() {
            return Err(EngineError::BadInput { message: "the pasted conversation is empty".into() });
        }
        for (field, value) in [("tenant", &pasted.tenant), ("store", &pasted.store), ("platform", &pasted.platform)] {
            if value.trim().is_empty() {
                return Err(EngineError::BadInput { message: format!("a pasted case needs its {field}") });
            }
        }
        let digest = countersign_core::digest::sha256_hex(
            format!("{}\0{:?}\0{}\0{}", pasted.channel, pasted.customer_id, pasted.store, pasted.text).as_bytes(),
        );
        let conversation_id = format!("P-{}", &digest.trim_start_matches("sha256:")[..12]);
        let case = Case {
            id: case_id(PASTE, &conversation_id),
            tenant: pasted.tenant.clone(),
            store: pasted.store.clone(),
            platform: pasted.platform.clone(),
            channel: pasted.channel,
            customer: pasted
                .customer_id
                .as_ref()
                .filter(|c| !c.trim().is_empty())
                .map(|id| CustomerRef { id: id.trim().to_owned(), identity: IdentityStatus::Unverified }),
            subject: pasted.subject.clone(),
            messages: vec![Message {
                from: countersign_core::model::Sender::Customer,
                text: pasted.text.clone(),
                at: Some(self.clock.now()),
            }],
            order_ids: pasted.order_ids.clone(),
        };
        if let Some(existing) = self.received_case(&case.id)? {
            return Ok(existing);
        }
        let case_json = serde_json::to_string(&case)
            .map_err(|e| EngineError::BadInput { message: format!("encoding case {}: {e}", case.id) })?;
        let state = "open".to_owned();
        let event = Event::CaseReceived {
            source: PASTE.into(),
            conversation_id: conversation_id.clone(),
            revision: 1,
            state: state.clone(),
            case: case.clone(),
        };
        self.store.writer().receive_case(NewCaseRevision {
            case_id: case.id.clone(),
            revision: 1,
            source: PASTE.into(),
            conversation_id,
            state,
            case_json,
            event: self.new_event(Some(&case.id), &self.operator.id, &event),
        })?;
        Ok(case)
    }

    /// Every case received from a source, as its latest revision says.
    pub fn received_cases(&self) -> Result<Vec<Case>, EngineError> {
        self.store.received_cases()?.iter().map(|r| parse_case(&r.case_id, &r.case_json)).collect()
    }

    /// For a case from a source, the mark its plans carry: a hash of the customer's words
    /// they were made on (`None`: not from a source).
    pub(crate) fn words_mark(&self, case: &Case) -> Result<Option<String>, EngineError> {
        if self.store.received_case(&case.id)?.is_none() {
            return Ok(None);
        }
        let words: Vec<&str> = case.customer_text().collect();
        let digest = countersign_core::digest::sha256_hex(words.join("\0").as_bytes());
        Ok(Some(format!("-w{}", &digest.trim_start_matches("sha256:")[..10])))
    }

    /// One received case's latest revision, if there is one.
    pub(crate) fn received_case(&self, case_id: &str) -> Result<Option<Case>, EngineError> {
        self.store.received_case(case_id)?.map(|r| parse_case(&r.case_id, &r.case_json)).transpose()
    }
}

fn parse_case(id: &str, json: &str) -> Result<Case, EngineError> {
    serde_json::from_str(json).map_err(|e| EngineError::Unreadable { message: format!("received case {id}: {e}") })
}
