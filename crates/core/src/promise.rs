//! Promises a sent reply made, the day each falls due, and whether the platform shows it
//! kept when read on that day. Pure: the engine reads the orders and records the result.

use jiff::civil::Date;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::decide::OrderFacts;
use crate::normalize::normalize;
use crate::policy::{PromiseCategory, PromiseRule};

/// A promise that states no time falls due this many days after the reply was sent.
pub const DEFAULT_DUE_DAYS: i64 = 7;

/// How a promise went, read on the day it fell due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PromiseOutcome {
    /// The platform shows it kept.
    Kept,
    /// The platform shows it was not.
    Broken,
    /// No platform read can show it (a guarantee, a coupon, a case with no order): its
    /// owner checks it.
    NotCheckable,
}

impl PromiseOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            PromiseOutcome::Kept => "kept",
            PromiseOutcome::Broken => "broken",
            PromiseOutcome::NotCheckable => "not_checkable",
        }
    }
}

/// The reply's sentence in which `rule` finds its promise (the whole reply when no one
/// sentence holds it, as a phrase across a line break).
pub fn sentence_of(rule: &PromiseRule, reply: &str) -> String {
    crate::claims::sentences(reply)
        .into_iter()
        .map(|(s, e)| &reply[s..e])
        .find(|s| rule.patterns.find(&normalize(s)).is_some())
        .unwrap_or(reply)
        .to_string()
}

/// The day the promise in `sentence` falls due, made on `sent_on`: the date or time it
/// states, else [`DEFAULT_DUE_DAYS`] on.
pub fn due_on(sentence: &str, sent_on: Date) -> Date {
    use jiff::ToSpan;
    crate::claims::promised_by(sentence, sent_on)
        .or_else(|| sent_on.checked_add(DEFAULT_DUE_DAYS.days()).ok())
        .unwrap_or(sent_on)
}

/// Statuses that only come after delivery.
const DELIVERED: [&str; 3] = ["delivered", "return requested", "exchange requested"];

/// Was a promise of `category` kept? `then` are the case's orders as they were when the
/// promise was made, `now` as read on the day it fell due (`None`: not found).
pub fn judge(
    category: PromiseCategory,
    then: &[OrderFacts],
    now: &[(String, Option<OrderFacts>)],
) -> (PromiseOutcome, String) {
    if now.is_empty() {
        return (PromiseOutcome::NotCheckable, "the case names no order to read".into());
    }
    if let Some((id, _)) = now.iter().find(|(_, f)| f.is_none()) {
        return (PromiseOutcome::NotCheckable, format!("order {id} was not found on the platform"));
    }
    let now: Vec<&OrderFacts> = now.iter().filter_map(|(_, f)| f.as_ref()).collect();
    // Money that went back to the customer since the promise, per order.
    let refunded_since = || {
        now.iter()
            .filter_map(|o| {
                let before =
                    then.iter().find(|t| t.order_id == o.order_id).map_or(rust_decimal::Decimal::ZERO, |t| t.refunded);
                (o.refunded > before)
                    .then(|| format!("{} {} refunded on order {}", o.refunded - before, o.currency, o.order_id))
            })
            .collect::<Vec<_>>()
    };
    match category {
        PromiseCategory::DeliveryDate => {
            let late: Vec<String> = now
                .iter()
                .filter(|o| !DELIVERED.contains(&o.status.as_str()))
                .map(|o| format!("order {} is {}", o.order_id, o.status))
                .collect();
            if late.is_empty() {
                (PromiseOutcome::Kept, format!("delivered: {}", ids(&now)))
            } else {
                (PromiseOutcome::Broken, format!("not delivered by the promised day: {}", late.join(", ")))
            }
        }
        PromiseCategory::Refund => {
            let back = refunded_since();
            if back.is_empty() {
                (PromiseOutcome::Broken, format!("no refund since the promise on {}", ids(&now)))
            } else {
                (PromiseOutcome::Kept, back.join(", "))
            }
        }
        PromiseCategory::Compensation => {
            let back = refunded_since();
            if back.is_empty() {
                (
                    PromiseOutcome::NotCheckable,
                    "no money went back on the case's orders; a coupon or store credit does not show there: its \
                     owner checks it"
                        .into(),
                )
            } else {
                (PromiseOutcome::Kept, back.join(", "))
            }
        }
        PromiseCategory::Guarantee => {
            (PromiseOutcome::NotCheckable, "a guarantee shows in no platform read: its owner checks it".into())
        }
    }
}

fn ids(orders: &[&OrderFacts]) -> String {
    orders.iter().map(|o| o.order_id.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn order(id: &str, status: &str, refunded: &str) -> OrderFacts {
        serde_json::from_value(serde_json::json!({
            "order_id": id, "customer_id": "c", "status": status, "currency": "USD",
            "paid": "100.00", "refunded": refunded,
        }))
        .unwrap()
    }

    #[test]
    fn each_kind_of_promise_is_judged_on_what_the_read_shows() {
        let then = [order("#W1", "processed", "0")];
        let now = |status: &str, refunded: &str| vec![("#W1".to_string(), Some(order("#W1", status, refunded)))];
        use PromiseCategory::*;
        use PromiseOutcome::*;
        assert_eq!(judge(DeliveryDate, &then, &now("delivered", "0")).0, Kept);
        assert_eq!(judge(DeliveryDate, &then, &now("return requested", "0")).0, Kept);
        let (o, why) = judge(DeliveryDate, &then, &now("processed", "0"));
        assert_eq!((o, why.as_str()), (Broken, "not delivered by the promised day: order #W1 is processed"));
        assert_eq!(judge(Refund, &then, &now("processed", "25.00")).0, Kept);
        assert_eq!(judge(Refund, &then, &now("processed", "0")).0, Broken);
        // Refunded before the promise and not since: not this promise's refund.
        let earlier = [order("#W1", "processed", "25.00")];
        assert_eq!(judge(Refund, &earlier, &now("processed", "25.00")).0, Broken);
        assert_eq!(judge(Compensation, &then, &now("processed", "5.00")).0, Kept);
        assert_eq!(judge(Compensation, &then, &now("processed", "0")).0, NotCheckable);
        assert_eq!(judge(Guarantee, &then, &now("delivered", "0")).0, NotCheckable);
        assert_eq!(judge(Refund, &then, &[]).0, NotCheckable);
        assert_eq!(judge(Refund, &then, &[("#W9".into(), None)]).0, NotCheckable);
    }

    #[test]
    fn a_promise_without_a_time_falls_due_a_week_on() {
        let sent: Date = "2026-12-03".parse().unwrap();
        assert_eq!(due_on("We will refund you in full.", sent).to_string(), "2026-12-10");
        assert_eq!(due_on("It will arrive by Friday.", sent).to_string(), "2026-12-04");
    }
}
