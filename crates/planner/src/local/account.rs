//! The playbooks for the account and the catalogue: goodwill, account recovery, email
//! changes, product questions. What each says and quotes is in the playbooks file.

use countersign_core::model::Provenance;
use serde_json::{Map, Value, json};

use super::builder::{Builder, param};
use super::records::{emails, names};
use crate::PlannerError;

impl Builder<'_> {
    /// Does the customer report a service failure on our side (late, missed, ignored)?
    pub(super) fn service_failure(&self) -> bool {
        self.says(&self.pb.books.goodwill.service_failure)
    }

    pub(super) fn goodwill(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.goodwill;
        let failure = self.service_failure();
        if self.says(&p.for_a_review) || !failure {
            self.cite(&p.not_a_right_cite)?;
            return Ok(());
        }
        if self.escalated() {
            // Say what a coupon can be only to someone who asked for one.
            if self.says(&p.asked_for) {
                self.cite(&p.limits_cite)?;
            }
            return Ok(());
        }
        let Some(cid) = self.customer_id().map(str::to_string) else { return Ok(()) };
        self.propose(
            "create_goodwill_coupon",
            vec![
                ("customer_id", param(json!(cid), Provenance::Connector)),
                (
                    "amount",
                    param(json!({"amount": p.amount.0.to_string(), "currency": p.currency}), Provenance::Policy),
                ),
                ("reason", param(json!(p.reason), Provenance::CustomerMessage)),
            ],
            &p.why,
        );
        self.draft.say(p.prepared_say.text());
        self.cite(&p.when_cite)?;
        Ok(())
    }

    pub(super) fn account_recovery(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.account_recovery;
        if self.says(&p.no_email_access) {
            self.cite(&p.no_email_access_cite)?;
            return Ok(());
        }
        if self.dm() || !self.verified() {
            self.draft.say(p.not_here_say.text());
            self.cite(if self.dm() { &p.dm_cite } else { &p.not_verified_cite })?;
            self.cite(&p.self_service_cite)?;
            return Ok(());
        }
        if let Some(cid) = self.customer_id().map(str::to_string) {
            self.propose(
                "send_password_reset",
                vec![("customer_id", param(json!(cid), Provenance::Connector))],
                &p.why,
            );
        }
        self.draft.say(p.prepared_say.text());
        self.cite(if self.says(&p.never_arrives) { &p.never_arrives_cite } else { &p.self_service_cite })?;
        Ok(())
    }

    pub(super) fn email_change(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.email_change;
        let new = emails(&self.raw).into_iter().next();
        if self.dm() || !self.verified() || new.is_none() || self.escalated() {
            // In a DM the rule that matters is that account changes do not happen there.
            self.cite(if self.dm() { &p.dm_cite } else { &p.requirements_cite })?;
            if new.is_none() && !self.escalated() {
                self.draft.say(p.which_email_say.text());
            }
            return Ok(());
        }
        if let (Some(cid), Some(email)) = (self.customer_id().map(str::to_string), new) {
            self.propose(
                "change_account_email",
                vec![
                    ("customer_id", param(json!(cid), Provenance::Connector)),
                    ("new_email", param(json!(email), Provenance::CustomerMessage)),
                ],
                &p.why,
            );
        }
        self.draft.say(p.prepared_say.text());
        self.cite(&p.requirements_cite)?;
        Ok(())
    }

    pub(super) fn products(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.product_question;
        if self.says(&p.place_order) {
            self.cite(&p.place_order_cite)?;
            self.draft.say(p.place_order_say.text());
            return Ok(());
        }
        self.propose("list_product_types", vec![], &p.list_why);
        let list = self.read("list_product_types", Map::new())?;
        let products: Vec<(String, String)> = list
            .as_ref()
            .and_then(|l| l.get("product_types"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p.get("product_id")?.as_str()?.to_string(), p.get("name")?.as_str()?.to_string())))
            .collect();
        let named: Vec<(String, String)> =
            products.into_iter().filter(|(_, name)| names(&self.text, name)).take(2).collect();
        if named.is_empty() {
            if list.is_some() {
                self.draft.say(p.not_found_say.text());
            }
            self.cite(&p.catalog_cite)?;
            return Ok(());
        }
        for (id, name) in named {
            self.propose(
                "get_product_details",
                vec![("product_id", param(json!(id), Provenance::Connector))],
                &p.details_why,
            );
            let mut q = Map::new();
            q.insert("product_id".into(), json!(id));
            if let Some(product) = self.read("get_product_details", q)? {
                let variants = product.get("variants").and_then(Value::as_array).cloned().unwrap_or_default();
                let available = variants.iter().filter(|v| v.get("available") == Some(&Value::Bool(true))).count();
                self.draft.say(p.variants_say.fill(&[
                    ("product", &name),
                    ("variants", &variants.len().to_string()),
                    ("available", &available.to_string()),
                ]));
            }
        }
        self.cite(if self.says(&p.about_variants) { &p.variants_cite } else { &p.questions_cite })?;
        Ok(())
    }
}
