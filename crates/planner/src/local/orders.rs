//! The playbooks for orders: status, cancellation, returns, item changes and exchanges,
//! address and payment changes, refunds. Each decides from the orders read which branch
//! applies; what it says and quotes is in the playbooks file.

use countersign_core::model::Provenance;
use countersign_core::normalize::normalize;
use serde_json::{Map, Value, json};

use super::builder::{Builder, param};
use super::intents::Intent;
use super::records::{Item, Order, address, names, options};
use crate::PlannerError;

impl Builder<'_> {
    pub(super) fn order_status(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.order_status;
        // With a refund asked about too, the status question is about the other order.
        // Asked beside another request about another order, the status question is
        // usually the second one.
        let order = if self.orders.len() > 1 { self.orders.last().cloned() } else { self.orders.first().cloned() };
        let Some(order) = order else {
            self.draft.say(p.no_order_say.text());
            return Ok(());
        };
        let order_status = [("order", order.id.as_str()), ("status", order.status.as_str())];
        if self.says(&p.stuck) {
            self.cite(&p.stuck_cite)?;
            return Ok(());
        }
        if self.says(&p.says_delivered) {
            self.draft.say(p.says_delivered_say.fill(&order_status));
            self.cite(&p.says_delivered_cite)?;
            return Ok(());
        }
        self.draft.say(p.status_say.fill(&order_status));
        if self.says(&p.by_a_date) {
            self.cite(&p.by_a_date_cite)?;
            return Ok(());
        }
        match order.status.as_str() {
            // Asked for tracking, the answer is when tracking appears; otherwise, what
            // pending means.
            s if s.starts_with("pending") => {
                if self.says(&p.tracking) {
                    self.cite(&p.pending_tracking_cite)?;
                } else if !self.says(&p.asks_when) {
                    self.cite(&p.pending_cite)?;
                }
            }
            "processed" => {
                if !order.tracking.is_empty() {
                    self.draft.say(p.tracking_say.fill(&[("tracking", &order.tracking.join(", "))]));
                }
                self.cite(&p.processed_cite)?;
            }
            "cancelled" => self.cite(&p.cancelled_cite)?,
            _ => self.cite(&p.other_cite)?,
        }
        // Asked when something will happen: a date we cannot promise.
        if self.says(&p.asks_when) {
            self.cite(&p.asks_when_cite)?;
        }
        Ok(())
    }

    pub(super) fn cancel(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.cancel_order;
        let pending: Vec<Order> = self.orders.iter().filter(|o| o.pending()).cloned().collect();
        let reason = if self.says(&p.by_mistake) {
            Some(p.by_mistake_reason.as_str())
        } else if self.says(&p.not_needed) {
            Some(p.not_needed_reason.as_str())
        } else {
            None
        };
        if self.says(&p.undo) {
            self.draft.say(p.undo_say.text());
            self.cite(&p.undo_cite)?;
            return Ok(());
        }
        if pending.is_empty() {
            if let Some(o) = self.orders.first() {
                self.draft.say(p.too_late_say.fill(&[("order", &o.id), ("status", &o.status)]));
            }
            self.cite(&p.too_late_cite)?;
            if self.orders.iter().any(|o| o.status == "delivered") {
                self.cite(&p.delivered_cite)?;
            }
            return Ok(());
        }
        match reason {
            Some(reason) => {
                for o in &pending {
                    self.propose(
                        "cancel_pending_order",
                        vec![
                            ("order_id", param(json!(o.id), Provenance::Connector)),
                            ("reason", param(json!(reason), Provenance::CustomerMessage)),
                        ],
                        &p.why,
                    );
                }
                let ids: Vec<&str> = pending.iter().map(|o| o.id.as_str()).collect();
                self.draft.say(p.prepared_say.fill(&[("orders", &ids.join(" and "))]));
                self.cite(if pending.len() > 1 { &p.several_cite } else { &p.one_cite })?;
                let only_request = self
                    .reading
                    .intents
                    .iter()
                    .all(|i| matches!(i, Intent::CancelOrder | Intent::Escalation | Intent::IdentifyCustomer));
                if only_request {
                    self.cite(&p.refund_cite)?;
                    if self.says(&p.gift_card) {
                        self.cite(&p.gift_card_cite)?;
                    }
                }
            }
            None => {
                self.cite(&p.ask_reason_first_cite)?;
                self.draft.say(p.ask_reason_say.text());
                self.cite(&p.ask_reason_cite)?;
            }
        }
        Ok(())
    }

    pub(super) fn return_items(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.return_items;
        if self.orders.is_empty() && self.says(&p.not_theirs) {
            self.draft.say(p.not_theirs_say.text());
            self.cite(&p.not_theirs_cite)?;
            return Ok(());
        }
        let Some(order) = self.order_for(|o| o.status == "delivered") else {
            if let Some(o) = self.orders.first() {
                self.draft.say(p.not_delivered_say.fill(&[("order", &o.id), ("status", &o.status)]));
                self.cite(&p.not_delivered_cite)?;
            } else {
                self.draft.say(p.no_order_say.text());
                self.cite(&p.no_order_cite)?;
            }
            return Ok(());
        };
        let named: Vec<&Item> = order.items.iter().filter(|i| names(&self.text, &i.name)).collect();
        let whole = self.says(&p.whole_order) || order.items.len() == 1;
        let items: Vec<&Item> = if named.is_empty() && whole { order.items.iter().collect() } else { named };
        if items.is_empty() {
            self.draft.say(p.which_item_say.fill(&[("order", &order.id)]));
            self.cite(&p.which_item_cite)?;
            return Ok(());
        }
        let Some(method) = order.payment_method.clone() else {
            self.unseen.push(p.no_payment_unseen.fill(&[("order", &order.id)]));
            return Ok(());
        };
        self.propose(
            "return_delivered_order_items",
            vec![
                ("order_id", param(json!(order.id), Provenance::Connector)),
                ("item_ids", param(json!(items.iter().map(|i| &i.item_id).collect::<Vec<_>>()), Provenance::Connector)),
                ("payment_method_id", param(json!(method), Provenance::Connector)),
            ],
            &p.why,
        );
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        self.draft.say(p.prepared_say.fill(&[("items", &names.join(", ")), ("order", &order.id)]));
        if self.says(&p.faulty) {
            self.cite(&p.faulty_cite)?;
        } else {
            self.cite(&p.steps_cite)?;
        }
        if self.says(&p.how_long) {
            self.cite(&p.how_long_cite)?;
        } else if self.says(&p.refund_to) {
            self.cite(&p.refund_to_cite)?;
        } else if self.orders.iter().filter(|o| o.status == "delivered").count() > 1 {
            self.cite(&p.several_delivered_cite)?;
        }
        Ok(())
    }

    pub(super) fn change_items(&mut self, intent: Intent) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.change_items;
        let delivered = self.orders.iter().any(|o| o.status == "delivered");
        // The order's status decides which it is.
        if intent == Intent::ModifyItems && delivered && !self.orders.iter().any(Order::pending) {
            return Ok(());
        }
        if intent == Intent::Exchange && self.has(Intent::ModifyItems) && !delivered {
            return Ok(());
        }
        let pending_order = intent == Intent::ModifyItems || (!delivered && self.orders.iter().any(Order::pending));
        let order =
            if pending_order { self.order_for(Order::pending) } else { self.order_for(|o| o.status == "delivered") };
        let Some(order) = order else {
            if let Some(o) = self.orders.first() {
                self.draft.say(p.not_changeable_say.fill(&[("order", &o.id), ("status", &o.status)]));
            }
            self.cite(if pending_order { &p.pending_overview_cite } else { &p.exchange_cite })?;
            return Ok(());
        };
        let Some(item) = order
            .items
            .iter()
            .find(|i| names(&self.text, &i.name))
            .or(if order.items.len() == 1 { order.items.first() } else { None })
            .cloned()
        else {
            self.draft.say(p.which_item_say.fill(&[("order", &order.id)]));
            self.cite(if pending_order { &p.pending_cite } else { &p.exchange_cite })?;
            return Ok(());
        };
        if self.says(&p.add_or_remove) {
            self.draft.say(p.same_product_say.fill(&[("order", &order.id)]));
            self.cite(&p.pending_overview_cite)?;
            return Ok(());
        }
        self.propose(
            "get_product_details",
            vec![("product_id", param(json!(item.product_id), Provenance::Connector))],
            &p.variants_why,
        );
        let mut q = Map::new();
        q.insert("product_id".into(), json!(item.product_id));
        let product = self.read("get_product_details", q)?;
        let candidates = product.as_ref().map(|v| self.variants_asked_for(&item, v)).unwrap_or_default();
        let (action, cites) = if pending_order {
            ("modify_pending_order_items", &p.pending_cite)
        } else {
            ("exchange_delivered_order_items", &p.exchange_cite)
        };
        match candidates.as_slice() {
            [new_item] if order.payment_method.is_some() => {
                self.propose(
                    action,
                    vec![
                        ("order_id", param(json!(order.id), Provenance::Connector)),
                        ("item_ids", param(json!([item.item_id]), Provenance::Connector)),
                        ("new_item_ids", param(json!([new_item]), Provenance::Connector)),
                        ("payment_method_id", param(json!(order.payment_method), Provenance::Connector)),
                    ],
                    &p.why,
                );
                self.draft.say(p.prepared_say.fill(&[("item", &item.name), ("order", &order.id)]));
                self.cite(cites)?;
            }
            [] if product.is_some() => {
                self.draft.say(p.unavailable_say.fill(&[("item", &item.name)]));
                self.cite(if pending_order { &p.pending_overview_cite } else { &p.exchange_unavailable_cite })?;
            }
            _ => {
                self.draft.say(p.which_option_say.fill(&[("item", &item.name)]));
                self.cite(cites)?;
            }
        }
        Ok(())
    }

    /// Available variants that differ from `item` only in option values the customer named.
    fn variants_asked_for(&self, item: &Item, product: &Value) -> Vec<String> {
        let words = |s: &str| format!(" {} ", normalize(s).trim());
        product
            .get("variants")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| v.get("available").and_then(Value::as_bool).unwrap_or(false))
            .filter_map(|v| {
                let id = v.get("item_id")?.as_str()?.to_string();
                let opts = options(v.get("options"));
                if id == item.item_id {
                    return None;
                }
                let mut changed = 0;
                for (k, new) in &opts {
                    match item.options.get(k) {
                        Some(old) if old == new => {}
                        _ if self.text.contains(&words(new)) => changed += 1,
                        _ => return None,
                    }
                }
                (changed > 0).then_some(id)
            })
            .collect()
    }

    pub(super) fn change_address(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.modify_address;
        let new = address(&self.raw);
        let on_file = self.says(&p.on_file);
        if let (Some(addr), true, Some(cid)) = (new.clone(), on_file, self.customer_id().map(str::to_string)) {
            self.propose(
                "modify_customer_address",
                vec![
                    ("customer_id", param(json!(cid), Provenance::Connector)),
                    ("address", param(addr, Provenance::CustomerMessage)),
                ],
                &p.account_why,
            );
        }
        let order = self.order_for(Order::pending);
        match (order, new) {
            (Some(o), Some(addr)) => {
                self.propose(
                    "modify_pending_order_address",
                    vec![
                        ("order_id", param(json!(o.id), Provenance::Connector)),
                        ("address", param(addr, Provenance::CustomerMessage)),
                    ],
                    &p.order_why,
                );
                self.draft.say(p.prepared_say.fill(&[("order", &o.id)]));
                self.cite(&p.eligible_cite)?;
            }
            (Some(o), None) => {
                self.draft.say(p.ask_say.fill(&[("order", &o.id)]));
                self.cite(&p.ask_cite)?;
            }
            (None, _) => {
                if let Some(o) = self.orders.first() {
                    self.draft.say(p.too_late_say.fill(&[("order", &o.id), ("status", &o.status)]));
                } else if self.case.customer.is_some() {
                    self.draft.say(p.which_order_say.text());
                }
                self.cite(&p.eligible_cite)?;
            }
        }
        Ok(())
    }

    pub(super) fn change_payment(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.modify_payment;
        if self.says(&p.card_details) {
            self.draft.say(p.card_details_say.text());
            self.cite(&p.card_details_cite)?;
            return Ok(());
        }
        let Some(order) = self.order_for(Order::pending) else {
            if let Some(o) = self.orders.first() {
                self.draft.say(p.too_late_say.fill(&[("order", &o.id), ("status", &o.status)]));
            }
            self.cite(&p.eligible_cite)?;
            return Ok(());
        };
        // The platform's names of payment sources.
        let wanted = if self.says(&p.paypal) {
            Some("paypal")
        } else if self.says(&p.gift_card) {
            Some("gift_card")
        } else {
            None
        };
        let methods: Vec<(String, String)> = self
            .customer
            .as_ref()
            .and_then(|c| c.get("payment_methods"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| {
                Some((m.get("id")?.as_str()?.to_string(), m.get("source")?.as_str().unwrap_or_default().to_string()))
            })
            .collect();
        let choice = wanted.and_then(|w| {
            let found: Vec<&(String, String)> = methods
                .iter()
                .filter(|(id, source)| source == w && Some(id) != order.payment_method.as_ref())
                .collect();
            (found.len() == 1).then(|| found[0].0.clone())
        });
        match choice {
            Some(method) => {
                self.propose(
                    "modify_pending_order_payment",
                    vec![
                        ("order_id", param(json!(order.id), Provenance::Connector)),
                        ("payment_method_id", param(json!(method), Provenance::Connector)),
                    ],
                    &p.why,
                );
                self.draft.say(p.prepared_say.fill(&[("order", &order.id)]));
                self.cite(&p.eligible_cite)?;
                if wanted == Some("gift_card") {
                    self.cite(&p.gift_card_cite)?;
                }
            }
            None => {
                self.draft.say(p.which_method_say.text());
                self.cite(&p.eligible_cite)?;
            }
        }
        Ok(())
    }

    pub(super) fn refund(&mut self) -> Result<(), PlannerError> {
        let pb = self.pb;
        let p = &pb.books.refund;
        if self.says(&p.price_drop) {
            self.cite(&p.price_drop_cite)?;
            return Ok(());
        }
        if self.escalated() {
            return Ok(());
        }
        if let Some(o) = self.orders.iter().find(|o| o.status == "cancelled").cloned() {
            if pb.source(&p.cancelled_unless_cited).is_some_and(|s| self.draft.cites(&s.article)) {
                return Ok(());
            }
            self.draft.say(p.cancelled_say.fill(&[("order", &o.id)]));
            if self.says(&p.long_wait) {
                self.cite(&p.long_wait_cite)?;
            } else {
                self.cite(&p.timing_cite)?;
                if self.says(&p.cancel) {
                    self.cite(&p.cancel_timing_cite)?;
                }
            }
            return Ok(());
        }
        let damaged = self.says(&p.damaged);
        let Some(order) = self.order_for(|o| o.status == "delivered") else {
            if let Some(o) = self.orders.first() {
                self.draft.say(p.not_delivered_say.fill(&[("order", &o.id), ("status", &o.status)]));
            }
            self.cite(if damaged { &p.partial_cite } else { &p.timing_cite })?;
            return Ok(());
        };
        if !damaged {
            self.cite(&p.timing_cite)?;
            return Ok(());
        }
        let item = order
            .items
            .iter()
            .find(|i| names(&self.text, &i.name))
            .or(if order.items.len() == 1 { order.items.first() } else { None })
            .cloned();
        let Some(price) = item.as_ref().and_then(|i| i.price) else {
            self.draft.say(p.which_item_say.fill(&[("order", &order.id)]));
            self.cite(&p.partial_cite)?;
            return Ok(());
        };
        // A share of the item's price: a playbook figure, for a person to confirm.
        let amount = (price * p.share.0).round_dp(2);
        let name = item.map(|i| i.name).unwrap_or_default();
        self.propose(
            "refund_partial",
            vec![
                ("order_id", param(json!(order.id), Provenance::Connector)),
                ("amount", param(json!({"amount": amount.to_string(), "currency": p.currency}), Provenance::Policy)),
                ("reason", param(json!(p.reason.fill(&[("item", &name)])), Provenance::CustomerMessage)),
            ],
            &p.why,
        );
        self.draft.say(p.prepared_say.fill(&[("item", &name), ("order", &order.id)]));
        self.cite(&p.partial_cite)?;
        Ok(())
    }
}
