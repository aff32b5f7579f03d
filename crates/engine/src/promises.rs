//! Promises made in sent replies, and whether they were kept: each promise a reply rule
//! finds in a reply as sent is recorded with its due day and owner beside the reply, and
//! once that day has passed a platform read of the case's orders settles it, recorded as
//! evidence ([`countersign_core::promise`] judges it).

use countersign_core::decide::{OrderFacts, ReplyDecision};
use countersign_core::evidence::Event;
use countersign_core::model::Case;
use countersign_core::promise::{due_on, judge, sentence_of};
use countersign_store::{EventFilter, NewEvent};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Serialize;

use crate::{Engine, EngineError};

/// Who records a promise's check (no person: the engine, on the due day).
const CHECKER: &str = "promise-check";

/// A promise a sent reply made, and where it stands.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PromiseStatus {
    pub case_id: String,
    pub plan_id: String,
    /// The reply rule that found it, and its kind (`delivery_date`, `refund`, …).
    pub promise_id: String,
    pub category: String,
    pub sentence: String,
    /// The day it falls due (YYYY-MM-DD, UTC).
    pub due: String,
    pub owner: String,
    pub made_at: String,
    /// `not_due`, `due` (its day has passed; not checked yet), `kept`, `broken` or
    /// `not_checkable`.
    pub state: String,
    /// What the check read, when it ran.
    pub reason: Option<String>,
    pub checked_at: Option<String>,
}

/// What one check of the due promises did.
#[derive(Debug, Clone, Default, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct PromiseSweep {
    /// The promises checked now, as they stand after it.
    pub checked: Vec<PromiseStatus>,
    /// Due promises whose orders could not be read now (tried again next time), with why.
    pub unreadable: Vec<String>,
}

impl Engine {
    /// The `promise_made` events of a reply as sent: one per promise the policy found in
    /// `text`, due on the day it states (else a week on), with the case's orders as the
    /// last facts read showed them.
    pub(crate) fn promises_of(
        &self,
        case: &Case,
        plan_id: &str,
        text: &str,
        decision: &ReplyDecision,
        at: Timestamp,
    ) -> Result<Vec<NewEvent>, EngineError> {
        let running = self.running();
        if decision.promises.is_empty() {
            return Ok(Vec::new());
        }
        let orders: Vec<OrderFacts> = match self.case_events(&case.id, "context_read")?.pop().map(|e| e.event) {
            Some(Event::ContextRead { orders, .. }) => orders,
            _ => Vec::new(),
        };
        let sent_on = at.to_zoned(TimeZone::UTC).date();
        let mut out = Vec::new();
        for hit in &decision.promises {
            let Some(rule) = running.policy.reply.promises.iter().find(|r| r.id == hit.id) else { continue };
            let sentence = sentence_of(rule, text);
            let event = Event::PromiseMade {
                plan_id: plan_id.to_string(),
                promise_id: hit.id.clone(),
                category: hit.category,
                due: due_on(&sentence, sent_on),
                sentence,
                owner: decision.owner.clone(),
                orders: orders.clone(),
            };
            out.push(NewEvent {
                case_id: Some(case.id.clone()),
                kind: event.kind().to_string(),
                actor: self.operator.id.clone(),
                at,
                payload: event.payload(),
            });
        }
        Ok(out)
    }

    /// Every promise made in this desk's sent replies, oldest first, and where it stands.
    pub fn promises(&self) -> Result<Vec<PromiseStatus>, EngineError> {
        let today = self.clock.now().to_zoned(TimeZone::UTC).date();
        let mut views: Vec<PromiseStatus> = Vec::new();
        for kind in ["promise_made", "promise_checked"] {
            for e in self.events(&EventFilter { kind: Some(kind.to_string()), ..EventFilter::default() })? {
                let case_id = e.case_id.clone().unwrap_or_default();
                match e.event {
                    Event::PromiseMade { plan_id, promise_id, category, sentence, due, owner, .. } => {
                        views.push(PromiseStatus {
                            case_id,
                            plan_id,
                            promise_id,
                            category: crate::views::snake(&category),
                            sentence,
                            due: due.to_string(),
                            owner,
                            made_at: e.at.to_string(),
                            state: if today > due { "due" } else { "not_due" }.to_string(),
                            reason: None,
                            checked_at: None,
                        });
                    }
                    Event::PromiseChecked { plan_id, promise_id, outcome, reason, .. } => {
                        if let Some(v) = views
                            .iter_mut()
                            .find(|v| v.case_id == case_id && v.plan_id == plan_id && v.promise_id == promise_id)
                        {
                            v.state = outcome.as_str().to_string();
                            v.reason = Some(reason);
                            v.checked_at = Some(e.at.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        Ok(views)
    }

    /// Check every promise whose due day has passed and that no check settled yet: read the
    /// case's orders from the platform now, judge the promise on them, record the check.
    /// An order that cannot be read now leaves its promise due (tried again next time).
    pub fn check_promises(&self) -> Result<PromiseSweep, EngineError> {
        let running = self.running();
        // One check at a time, across processes (the app's hourly one, its button, the
        // command line): what is due is read under the lock, so nothing is checked twice.
        let dir = self.store.path().parent().unwrap_or(std::path::Path::new("."));
        let path = dir.join("promises.lock");
        let _one_at_a_time = crate::lock_file(&path)?;
        _one_at_a_time.lock().map_err(|e| EngineError::io(&path, e))?;
        let mut sweep = PromiseSweep::default();
        let made: Vec<_> = self.events(&EventFilter { kind: Some("promise_made".into()), ..EventFilter::default() })?;
        let due: Vec<PromiseStatus> = self.promises()?.into_iter().filter(|v| v.state == "due").collect();
        for view in due {
            let Some(Event::PromiseMade { category, orders, .. }) = made
                .iter()
                .find(|e| {
                    e.case_id.as_deref() == Some(view.case_id.as_str())
                        && matches!(&e.event, Event::PromiseMade { plan_id, promise_id, .. }
                            if *plan_id == view.plan_id && *promise_id == view.promise_id)
                })
                .map(|e| &e.event)
            else {
                continue;
            };
            let mut read = Vec::new();
            let mut failed = None;
            for o in orders {
                match running.connector.order_facts(&o.order_id) {
                    Ok(f) => read.push((o.order_id.clone(), f)),
                    Err(e) => {
                        failed = Some(format!("case {} order {}: {e}", view.case_id, o.order_id));
                        break;
                    }
                }
            }
            if let Some(why) = failed {
                tracing::warn!(case = %view.case_id, promise = %view.promise_id, error = %why, "a due promise's orders could not be read");
                sweep.unreadable.push(why);
                continue;
            }
            let (outcome, reason) = judge(*category, orders, &read);
            let event = Event::PromiseChecked {
                plan_id: view.plan_id.clone(),
                promise_id: view.promise_id.clone(),
                outcome,
                orders: read,
                reason: reason.clone(),
            };
            let at = self.clock.now();
            self.store.append(NewEvent {
                case_id: Some(view.case_id.clone()),
                kind: event.kind().to_string(),
                actor: CHECKER.to_string(),
                at,
                payload: event.payload(),
            })?;
            sweep.checked.push(PromiseStatus {
                state: outcome.as_str().to_string(),
                reason: Some(reason),
                checked_at: Some(at.to_string()),
                ..view
            });
        }
        Ok(sweep)
    }
}
