//! A realistic world for the bench, shaped like the policy tests' `world()`: one
//! verified customer on chat with a handful of orders, a conversation whose
//! customer text (~300 characters, one non-ASCII character) matches no
//! escalation signal, a few active pauses that do not cover this case, and some
//! money history on other cases and orders.

use std::collections::BTreeMap;

use countersign_core::decide::{CustomerFacts, IdentityFacts, OrderFacts, PriorState, PriorStep};
use countersign_core::model::{
    Case, Channel, CustomerRef, IdentityStatus, Message, Operator, Param, Pause, PauseScope, Provenance, Sender, Step,
};
use countersign_core::{Facts, Money, Policy};
use serde_json::{Value, json};

/// The demo permission map, as shipped.
pub const DEMO_POLICY: &str = include_str!("../../../assets/demo/policy.toml");
/// The case's customer.
pub const ME: &str = "james_li_5688";
/// Another customer of the store.
pub const OTHER: &str = "noah_brown_6181";

/// The customer's message: ordinary, specific, ~300 characters, no signal in it.
pub const CUSTOMER_MESSAGE: &str = "Hi there, I ordered a desk lamp and a set of four mugs two weeks ago (order #W1) and one of the mugs arrived cracked, so I'd like a partial refund for it. I also placed order #W2 on Tuesday but I no longer need it, please cancel it before it ships. And can you update my account email? Thanks — James";

/// Parse the shipped demo policy.
pub fn demo_policy() -> Policy {
    Policy::parse("assets/demo/policy.toml", DEMO_POLICY).expect("the demo policy parses")
}

/// Case and facts a decision is made against.
#[derive(Debug, Clone)]
pub struct World {
    pub case: Case,
    pub facts: Facts,
}

fn usd_money(a: &str) -> Money {
    Money::from_json(&usd(a)).expect("valid money")
}

fn order(id: &str, owner: &str, status: &str, paid: &str, refunded: &str) -> OrderFacts {
    OrderFacts {
        order_id: id.into(),
        customer_id: owner.into(),
        status: status.into(),
        currency: usd_money("1.00").currency,
        paid: paid.parse().expect("decimal"),
        refunded: refunded.parse().expect("decimal"),
        item_ids: Some(vec!["6469567736".into(), "8426249116".into()]),
    }
}

fn pause(id: &str, scope: PauseScope, value: &str) -> Pause {
    Pause {
        id: id.into(),
        scope,
        value: value.into(),
        reason: "incident review".into(),
        set_by: "lead-1".into(),
        set_at: "2026-11-21T09:00:00Z".parse().expect("timestamp"),
        team: None,
    }
}

impl World {
    #[allow(clippy::new_without_default)]
    pub fn new() -> World {
        let case = Case {
            id: "case-1".into(),
            tenant: "acme".into(),
            store: "acme-us".into(),
            platform: "demo_seller_center".into(),
            channel: Channel::Chat,
            customer: Some(CustomerRef { id: ME.into(), identity: IdentityStatus::Verified }),
            subject: Some("Cracked mug, and an order to cancel".into()),
            messages: vec![
                Message { from: Sender::Customer, text: CUSTOMER_MESSAGE.into(), at: None },
                Message {
                    from: Sender::Agent,
                    text: "Hello James, sorry about the mug! Let me look at both orders.".into(),
                    at: None,
                },
            ],
            order_ids: vec!["#W1".into(), "#W2".into()],
        };
        let orders: BTreeMap<String, OrderFacts> = [
            order("#W1", ME, "delivered", "100.00", "0"),
            order("#W2", ME, "pending", "536.65", "0"),
            order("#W3", OTHER, "delivered", "80.00", "0"),
            order("#W4", ME, "delivered", "500.00", "0"),
            order("#W5", ME, "delivered", "100.00", "90.00"),
            order("#W6", OTHER, "pending", "42.00", "0"),
        ]
        .into_iter()
        .map(|o| (o.order_id.clone(), o))
        .collect();
        let history = vec![
            PriorStep {
                case_id: "case-0".into(),
                action: "refund_partial".into(),
                order_id: Some("#W5".into()),
                amount: usd_money("90.00"),
                state: PriorState::Executed,
                plan_id: None,
                step_id: None,
            },
            PriorStep {
                case_id: "case-0".into(),
                action: "create_goodwill_coupon".into(),
                order_id: None,
                amount: usd_money("5.00"),
                state: PriorState::Executed,
                plan_id: None,
                step_id: None,
            },
        ];
        let pauses = vec![
            pause("p-dm", PauseScope::Channel, "instagram_dm"),
            pause("p-outlet", PauseScope::Store, "acme-outlet"),
            pause("p-credit", PauseScope::Action, "issue_store_credit"),
            pause("p-bulk", PauseScope::Workflow, "bulk_refunds"),
        ];
        let facts = Facts {
            now: "2026-11-21T10:00:00Z".parse().expect("timestamp"),
            operator: Operator { id: "agent-7".into(), role: "agent".into() },
            orders,
            history,
            pauses,
            customers: BTreeMap::from([(
                ME.to_string(),
                CustomerFacts {
                    customer_id: ME.into(),
                    payment_method_ids: vec!["gift_card_1725971".into(), "credit_card_4466831".into()],
                },
            )]),
            // The chat channel signed the buyer in (what the engine derives from intake).
            identity: IdentityFacts {
                customer_id: Some(ME.into()),
                level: countersign_core::model::IdentityLevel::Strong,
                how: vec!["the chat channel signed the customer in".into()],
            },
            citations: Vec::new(),
            cut_off: None,
        };
        World { case, facts }
    }
}

fn c(v: Value) -> Param {
    Param { value: v, source: Provenance::Connector }
}

fn usd(a: &str) -> Value {
    json!({"amount": a, "currency": "USD"})
}

/// A step whose parameters were all read from the platform (trusted).
pub fn step(id: &str, action: &str, params: Vec<(&str, Value)>) -> Step {
    Step {
        id: id.into(),
        action: action.into(),
        params: params.into_iter().map(|(k, v)| (k.to_string(), c(v))).collect(),
        rationale: None,
        planner_risk: None,
    }
}

pub fn get_order(id: &str, order: &str) -> Step {
    step(id, "get_order_details", vec![("order_id", json!(order))])
}

pub fn get_customer(id: &str, customer: &str) -> Step {
    step(id, "get_customer_details", vec![("customer_id", json!(customer))])
}

pub fn cancel(id: &str, order: &str) -> Step {
    step(id, "cancel_pending_order", vec![("order_id", json!(order)), ("reason", json!("no longer needed"))])
}

pub fn refund(id: &str, order: &str, amount: &str) -> Step {
    step(
        id,
        "refund_partial",
        vec![("order_id", json!(order)), ("amount", usd(amount)), ("reason", json!("one mug arrived cracked"))],
    )
}

pub fn change_email(id: &str, customer: &str, email: &str) -> Step {
    step(id, "change_account_email", vec![("customer_id", json!(customer)), ("new_email", json!(email))])
}
