//! The plan being built for one case: what the planner has read, the steps proposed so
//! far and the reply draft; the order in which playbooks run (escalations, identification,
//! the reads every case starts with, then one playbook per intent). The playbooks for
//! orders are in `orders.rs`, those for accounts and products in `account.rs`; what each
//! says is in the playbooks file ([`super::playbooks`]).

use countersign_core::model::{Case, Channel, IdentityStatus, Param, Provenance, ReplyDraft, Step};
use countersign_core::normalize::normalize;
use serde_json::{Map, Value, json};

use super::compose::Draft;
use super::intents::{Escalation, Intent, Reading};
use super::playbooks::{Cite, Playbooks, When};
use super::records::{NAME_ZIP, Order, emails, names};
use crate::PlannerError;
use crate::context::{ContextError, PlanningContext};

pub(super) struct Builder<'a> {
    pub(super) case: &'a Case,
    ctx: &'a dyn PlanningContext,
    pub(super) pb: &'a Playbooks,
    pub(super) reading: Reading,
    /// Normalised customer text.
    pub(super) text: String,
    /// The customer's text as written (emails, addresses keep their case).
    pub(super) raw: String,
    pub(super) steps: Vec<Step>,
    pub(super) draft: Draft,
    pub(super) orders: Vec<Order>,
    pub(super) customer: Option<Value>,
    /// Things the planner could not see, said in the note to the agent.
    pub(super) unseen: Vec<String>,
}

pub(super) fn param(value: Value, source: Provenance) -> Param {
    Param { value, source }
}

impl<'a> Builder<'a> {
    pub(super) fn new(
        case: &'a Case,
        ctx: &'a dyn PlanningContext,
        pb: &'a Playbooks,
        reading: Reading,
    ) -> Builder<'a> {
        let raw: Vec<&str> = case.customer_text().collect();
        let text = normalize(&raw.join(" \n "));
        Builder {
            case,
            ctx,
            pb,
            reading,
            text,
            raw: raw.join("\n"),
            steps: Vec::new(),
            draft: Draft::new(pb.reply.greeting_unnamed.text()),
            orders: Vec::new(),
            customer: None,
            unseen: Vec::new(),
        }
    }

    /// Does the customer's text contain the phrase?
    pub(super) fn says(&self, phrase: &When) -> bool {
        phrase.is_match(&self.text)
    }

    pub(super) fn customer_id(&self) -> Option<&str> {
        self.case.customer.as_ref().map(|c| c.id.as_str())
    }

    pub(super) fn verified(&self) -> bool {
        self.case.customer.as_ref().is_some_and(|c| c.identity == IdentityStatus::Verified)
    }

    pub(super) fn dm(&self) -> bool {
        matches!(self.case.channel, Channel::InstagramDm | Channel::TiktokDm)
    }

    pub(super) fn has(&self, i: Intent) -> bool {
        self.reading.has(i)
    }

    pub(super) fn escalated(&self) -> bool {
        self.reading.escalation.is_some()
    }

    pub(super) fn propose(&mut self, action: &str, params: Vec<(&str, Param)>, why: &str) {
        let digest =
            serde_json::to_string(&params.iter().map(|(k, p)| (k, &p.value)).collect::<Vec<_>>()).unwrap_or_default();
        if self.steps.iter().any(|s| {
            s.action == action
                && serde_json::to_string(&s.params.iter().map(|(k, p)| (k, &p.value)).collect::<Vec<_>>())
                    .unwrap_or_default()
                    == digest
        }) {
            return;
        }
        self.steps.push(Step {
            id: format!("s{}", self.steps.len() + 1),
            action: action.to_string(),
            params: params.into_iter().map(|(k, p)| (k.to_string(), p)).collect(),
            rationale: Some(why.to_string()),
            planner_risk: None,
        });
    }

    /// Read through the context; a refused read is noted (and stays a proposed step).
    pub(super) fn read(&mut self, action: &str, params: Map<String, Value>) -> Result<Option<Value>, PlannerError> {
        let pb = self.pb;
        let reply = &pb.reply;
        match self.ctx.read(action, &params) {
            Ok(v) => Ok(v),
            Err(ContextError::Refused { .. }) => {
                self.unseen.push(reply.read_refused.fill(&[("action", action)]));
                Ok(None)
            }
            Err(ContextError::Read { message, .. }) => {
                self.unseen.push(reply.read_failed.fill(&[("action", action), ("message", &message)]));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Quote each source, in order.
    pub(super) fn cite(&mut self, cites: &[Cite]) -> Result<(), PlannerError> {
        for c in cites {
            let pb = self.pb;
            match pb.source(c) {
                Some(source) => {
                    self.draft.cite(self.ctx, source)?;
                }
                // The file's check makes this unreachable; never invent a quote.
                None => self.draft.missing.push(c.name().to_string()),
            }
        }
        Ok(())
    }

    pub(super) fn run(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.escalated;
        let esc = self.reading.escalation;
        // No order talk at all: a person takes over.
        match esc {
            Some(Escalation::SelfHarm) => {
                self.draft.say(p.self_harm_say.text());
                self.cite(&p.self_harm_cite)?;
                return Ok(());
            }
            Some(Escalation::Threat) => {
                self.cite(&p.threat_cite)?;
                self.draft.say(p.passing_on_say.text());
                return Ok(());
            }
            Some(Escalation::Abuse) => {
                self.cite(&p.abuse_cite)?;
                self.draft.say(p.passing_on_say.text());
                return Ok(());
            }
            Some(Escalation::InformationRequest) => {
                if self.says(&p.legal_request) {
                    self.cite(&p.legal_request_cite)?;
                } else if self.says(&p.deletion_request) {
                    self.cite(&p.deletion_request_cite)?;
                } else {
                    self.cite(&p.information_request_cite)?;
                }
                self.draft.say(p.information_request_say.text());
                return Ok(());
            }
            Some(Escalation::ThirdParty) => {
                self.cite(&p.third_party_cite)?;
                self.draft.say(p.third_party_say.text());
                return Ok(());
            }
            _ => {}
        }
        if self.case.customer.is_none() {
            return self.identify();
        }
        self.look()?;
        self.draft = Draft::new(self.greeting());
        if matches!(esc, Some(Escalation::Manipulation | Escalation::Takeover)) {
            self.cite(&p.security_cite)?;
            self.draft.say(p.security_say.text());
            return Ok(());
        }
        let intents = self.reading.intents.clone();
        for intent in intents {
            self.answer(intent)?;
        }
        if self.escalated() {
            // Reads stay for the team lead; nothing is changed on the customer's behalf.
            self.steps.retain(|s| s.action.starts_with("get_") || s.action.starts_with("list_"));
            match esc {
                Some(Escalation::Legal) if self.says(&p.chargeback) => self.cite(&p.chargeback_cite)?,
                Some(Escalation::Rule) if self.says(&p.email_access) => {}
                _ => self.cite(&p.team_lead_cite)?,
            }
            self.draft.say(p.team_lead_say.text());
        }
        Ok(())
    }

    /// The reply's greeting, by the first name on the account when a read returned it.
    fn greeting(&self) -> String {
        let name = self
            .customer
            .as_ref()
            .and_then(|c| c.get("name"))
            .and_then(|n| n.get("first_name"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty());
        match name {
            Some(n) => self.pb.reply.greeting.fill(&[("name", n)]),
            None => self.pb.reply.greeting_unnamed.text(),
        }
    }

    /// Unidentified: propose a lookup with what the customer typed, or ask.
    fn identify(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.identify;
        let product_only = self.reading.intents.iter().all(|i| *i == Intent::ProductQuestion);
        if product_only {
            return self.products();
        }
        if self.reading.main() == Intent::OutOfScope {
            self.draft.say(p.out_of_scope_say.text());
            return Ok(());
        }
        if let Some(email) = emails(&self.raw).into_iter().next() {
            self.propose(
                "find_customer_by_email",
                vec![("email", param(json!(email), Provenance::CustomerMessage))],
                &p.by_email_why,
            );
            self.draft.say(p.by_email_say.text());
        } else if let Some(c) = NAME_ZIP.captures(&self.raw) {
            let part = |a: usize, b: usize| c.get(a).or(c.get(b)).map_or(String::new(), |m| m.as_str().to_string());
            let (first, last, zip) = (part(1, 3), part(2, 4), part(5, 5));
            self.propose(
                "find_customer_by_name_zip",
                vec![
                    ("first_name", param(json!(first), Provenance::CustomerMessage)),
                    ("last_name", param(json!(last), Provenance::CustomerMessage)),
                    ("zip", param(json!(zip), Provenance::CustomerMessage)),
                ],
                &p.by_name_zip_why,
            );
            self.draft.say(p.by_name_zip_say.text());
        } else {
            self.draft.say(p.ask_say.text());
        }
        self.cite(&p.cite)?;
        if let Some(next) = self.reading.intents.first().and_then(|i| p.first_intent_cite.get(i)) {
            self.cite(next)?;
        }
        Ok(())
    }

    /// Read the linked orders and, when the request needs it, the account.
    fn look(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.look;
        let cid = self.customer_id().map(str::to_string);
        let needs_account = self.case.order_ids.is_empty()
            && self
                .reading
                .intents
                .iter()
                .any(|i| matches!(i, Intent::OrderStatus | Intent::ModifyAddress | Intent::ModifyPayment))
            || self.has(Intent::ModifyPayment);
        let mut order_ids = self.case.order_ids.clone();
        if needs_account && let Some(cid) = &cid {
            self.propose(
                "get_customer_details",
                vec![("customer_id", param(json!(cid), Provenance::Connector))],
                &p.customer_why,
            );
            let mut q = Map::new();
            q.insert("customer_id".into(), json!(cid));
            self.customer = self.read("get_customer_details", q)?;
            if order_ids.is_empty()
                && self.has(Intent::OrderStatus)
                && let Some(last) = self
                    .customer
                    .as_ref()
                    .and_then(|c| c.get("order_ids"))
                    .and_then(Value::as_array)
                    .and_then(|a| a.last())
                    .and_then(Value::as_str)
            {
                order_ids.push(last.to_string());
            }
        }
        let relevant = !self.reading.intents.iter().all(|i| {
            matches!(
                i,
                Intent::ProductQuestion
                    | Intent::OutOfScope
                    | Intent::AccountRecovery
                    | Intent::EmailChange
                    | Intent::Goodwill
            )
        }) || self.has(Intent::OrderStatus)
            || self.has(Intent::Goodwill) && self.service_failure();
        if !relevant {
            return Ok(());
        }
        for id in order_ids {
            self.propose(
                "get_order_details",
                vec![("order_id", param(json!(id), Provenance::Connector))],
                &p.order_why,
            );
            let mut q = Map::new();
            q.insert("order_id".into(), json!(id));
            if let Some(v) = self.read("get_order_details", q)?.and_then(Order::parse) {
                self.orders.push(v);
            } else {
                self.unseen.push(p.order_unseen.fill(&[("order", &id)]));
            }
        }
        Ok(())
    }

    /// The order the request is about: the one whose items the customer names, else the first.
    pub(super) fn order_for(&self, status: impl Fn(&Order) -> bool) -> Option<Order> {
        let candidates: Vec<&Order> = self.orders.iter().filter(|o| status(o)).collect();
        candidates
            .iter()
            .find(|o| o.items.iter().any(|i| names(&self.text, &i.name)))
            .or(candidates.first())
            .map(|o| (*o).clone())
    }

    fn answer(&mut self, intent: Intent) -> Result<(), PlannerError> {
        let pb = self.pb;
        let books = &pb.books;
        match intent {
            Intent::OrderStatus => self.order_status(),
            Intent::CancelOrder => self.cancel(),
            Intent::Return => self.return_items(),
            Intent::Exchange | Intent::ModifyItems => self.change_items(intent),
            Intent::ModifyAddress => self.change_address(),
            Intent::ModifyPayment => self.change_payment(),
            Intent::Refund => self.refund(),
            Intent::Goodwill => self.goodwill(),
            Intent::AccountRecovery => self.account_recovery(),
            Intent::EmailChange => self.email_change(),
            Intent::ProductQuestion => self.products(),
            Intent::Complaint => {
                self.draft.say(books.complaint.say.text());
                self.cite(&books.complaint.cite)
            }
            Intent::OutOfScope => {
                self.draft.say(books.out_of_scope.say.text());
                Ok(())
            }
            Intent::IdentifyCustomer | Intent::Escalation => Ok(()),
        }
    }

    pub(super) fn finish(self) -> (Vec<Step>, ReplyDraft) {
        let pb = self.pb;
        let reply = &pb.reply;
        let mut draft = self.draft;
        if draft.is_empty() {
            draft.say(reply.fallback.text());
        }
        let mut notes: Vec<String> = self.unseen;
        notes.extend(draft.missing.iter().map(|m| reply.not_quoted.fill(&[("source", m)])));
        let mut text = draft.finish(&reply.sign_off.text());
        if !notes.is_empty() {
            text.text.push_str("\n\n");
            text.text.push_str(&reply.note.fill(&[("notes", &notes.join("; "))]));
        }
        (self.steps, text)
    }
}
