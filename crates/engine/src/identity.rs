//! Who is writing: the verification of a case's customer, derived from evidence only.
//!
//! A case says which account it is about (`customer.id`) and may claim more
//! (`identity: verified`); the claim counts for nothing. What counts:
//!
//! - **The channel** (`strong`): the case arrived through a source that signed the buyer
//!   in (its `case_received` event, written by intake from the platform's own answer,
//!   carries the account the platform authenticated). A paste never does.
//! - **An agent's check** (`strong`): an `identity_checked` event the agent recorded (a
//!   one-time code sent to the account's contact, a call back), in their words.
//! - **Identity look-ups** (`matched`): the plan's `identity_lookup` reads (by e-mail, by
//!   name and zip code), run while the facts are gathered with the values the customer
//!   gave, answering the case's account. They are what verifies a customer, so their
//!   values come from the customer's text — and only from it: a look-up whose values the
//!   customer did not write is not run. A typed e-mail never reaches `strong`.
//!
//! Evidence naming another account than the case's is shown and lowers nothing else: it
//! simply verifies no one.

use countersign_connectors::ConnectorError;
use countersign_core::decide::IdentityFacts;
use countersign_core::evidence::Event;
use countersign_core::model::{Case, IdentityLevel, IdentityStatus, Plan};
use countersign_core::normalize::normalize;
use serde_json::{Map, Value};

use crate::{Engine, EngineError, LoggedEvent};

/// One piece of evidence: the account it shows, how strongly, in words.
struct Seen {
    customer_id: String,
    level: IdentityLevel,
    how: String,
}

impl Engine {
    /// How the case's customer was verified: the channel and the agents' checks from the
    /// evidence log, and the plan's identity look-ups run now through the connector.
    pub(crate) fn identity_facts(&self, case: &Case, plan: &Plan) -> Result<IdentityFacts, EngineError> {
        let running = self.running();
        let mut events = self.case_events(&case.id, "case_received")?;
        events.extend(self.case_events(&case.id, "identity_checked")?);
        let mut seen = channel_and_checks(&events);
        let mut notes = Vec::new();
        // What the customer wrote, normalised: a look-up verifies them only with what they
        // gave (a plan cannot look up whoever it likes and call that a match).
        let words = format!(" {} ", case.customer_text().map(normalize).collect::<Vec<_>>().join(" "));
        for step in &plan.steps {
            let Some(def) = running.policy.actions.get(&step.action).filter(|d| d.identity_lookup) else { continue };
            let params: Map<String, Value> = step.params.iter().map(|(k, p)| (k.clone(), p.value.clone())).collect();
            let theirs = params.values().all(|v| {
                v.as_str()
                    .is_some_and(|v| !v.trim().is_empty() && words.contains(&format!(" {} ", normalize(v).trim())))
            });
            if !theirs {
                notes.push(format!("{} was not run: its values are not what the customer wrote", def.name));
                continue;
            }
            match running.connector.identify(&def.name, &params) {
                Ok(Some(id)) => seen.push(Seen {
                    customer_id: id.clone(),
                    level: IdentityLevel::Matched,
                    how: format!("{} with what the customer gave answered {id}", def.name),
                }),
                Ok(None) => notes.push(format!("{} with what the customer gave found no account", def.name)),
                Err(ConnectorError::InvalidParams { errors }) => {
                    notes.push(format!("{} was not run: {}", def.name, errors.join("; ")));
                }
                Err(e @ ConnectorError::Unsupported { .. }) => notes.push(format!("{} was not run: {e}", def.name)),
                Err(e) => notes.push(format!("{} failed: {e}", def.name)),
            }
        }
        Ok(combine(case, seen, notes))
    }

    /// Record that the agent verified the case's customer themselves (a one-time code
    /// sent to the account's contact, a call back): `how` says what they did. It is a
    /// strong verification of that account from now on (an agent may verify before the
    /// case is planned); the case's waiting steps are not decided again by it (plan again
    /// to use it).
    pub fn record_identity_check(
        &self,
        case_id: &str,
        customer_id: &str,
        how: &str,
    ) -> Result<LoggedEvent, EngineError> {
        let (customer_id, how) = (customer_id.trim(), how.trim());
        if customer_id.is_empty() || how.is_empty() {
            return Err(EngineError::BadInput {
                message: "an identity check names the customer's account and says how they were verified".into(),
            });
        }
        let event = Event::IdentityChecked { customer_id: customer_id.to_owned(), how: how.to_owned() };
        let ev = self.new_event(Some(case_id), &self.operator.id, &event);
        self.store.writer().record(vec![ev], Vec::new())?;
        self.case_events(case_id, "identity_checked")?
            .pop()
            .ok_or_else(|| EngineError::NotFound { message: format!("the identity check of case {case_id}") })
    }
}

/// What the channel and the agents' checks among `events` show.
fn channel_and_checks(events: &[LoggedEvent]) -> Vec<Seen> {
    let mut seen = Vec::new();
    for e in events {
        match &e.event {
            Event::CaseReceived { source, case: received, .. } => {
                if let Some(c) = received.customer.as_ref().filter(|c| c.identity == IdentityStatus::Verified) {
                    // Written by intake from the platform's own answer: the account the
                    // source authenticated (a paste never is).
                    seen.push(Seen {
                        customer_id: c.id.clone(),
                        level: IdentityLevel::Strong,
                        how: format!("the {source} channel signed the customer in as {}", c.id),
                    });
                }
            }
            Event::IdentityChecked { customer_id, how } => seen.push(Seen {
                customer_id: customer_id.clone(),
                level: IdentityLevel::Strong,
                how: format!("{} checked {customer_id} themselves: {how}", e.actor),
            }),
            _ => {}
        }
    }
    seen
}

/// How the case's customer was verified as the evidence recorded it so far (the channel,
/// the agents' checks, the look-ups run when the case was last decided), without reading
/// the platform: what the app shows beside the customer.
pub fn recorded_identity(case: &Case, events: &[LoggedEvent]) -> IdentityFacts {
    let mut seen = channel_and_checks(events);
    let latest = events.iter().rev().find_map(|e| match &e.event {
        Event::ContextRead { identity: Some(identity), .. } => Some(identity.clone()),
        _ => None,
    });
    if let Some(IdentityFacts { customer_id: Some(id), level, how }) = latest
        && level == IdentityLevel::Matched
    {
        let how = how.into_iter().filter(|h| h.contains(&id)).collect::<Vec<_>>().join("; ");
        seen.push(Seen { customer_id: id, level, how });
    }
    let mut facts = combine(case, seen, Vec::new());
    facts.how.dedup();
    facts
}

/// The verification the evidence shows for the case's account: the account the case
/// names, or (when it names none) the one account all the evidence agrees on.
fn combine(case: &Case, seen: Vec<Seen>, mut notes: Vec<String>) -> IdentityFacts {
    let target = match &case.customer {
        Some(c) => Some(c.id.clone()),
        None => {
            let mut ids: Vec<&str> = seen.iter().map(|s| s.customer_id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            match ids.as_slice() {
                [one] => Some((*one).to_owned()),
                [] => None,
                more => {
                    notes.push(format!(
                        "the evidence names different accounts ({}), so none is verified",
                        more.join(", ")
                    ));
                    None
                }
            }
        }
    };
    let mut how = Vec::new();
    let mut level = IdentityLevel::None;
    for s in seen {
        match &target {
            Some(t) if *t == s.customer_id => {
                level = level.max(s.level);
                how.push(s.how);
            }
            Some(t) => how.push(format!("{}, not the case's customer {t}", s.how)),
            None => how.push(s.how),
        }
    }
    how.extend(notes);
    IdentityFacts { customer_id: target.filter(|_| level > IdentityLevel::None), level, how }
}
