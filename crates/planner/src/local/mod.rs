//! The local planner: offline, deterministic playbooks.
//!
//! 1. **Read** the case: intents (main one first) and escalation triggers from the
//!    customer's normalised text ([`intents`]).
//! 2. **Identify**: the customer comes from the case's structured fields. An unidentified
//!    customer is looked up by the email, or name and zip, they typed (a proposed step — a
//!    value from the conversation never runs a read on its own), or asked to identify.
//! 3. **Look**: linked orders, the account, products — through the context's governed
//!    reads. A read the policy refuses is still proposed as a step for a person.
//! 4. **Build** steps with parameters taken from what the reads returned (`connector`
//!    provenance), from the customer's text (`customer_message`), or from the playbook
//!    (`policy`, which the engine downgrades to `model` when no read backs it, so the
//!    policy's provenance rule applies to amounts a playbook chose).
//! 5. **Draft** a reply: facts from the reads in our own words, each rule quoted from a
//!    passage the knowledge search returned, with a numbered citation; a clarifying
//!    question when something needed is missing; and honesty about what it could not see.
//!
//! Escalated cases keep their reads (for the team lead) and get no write; threats,
//! self-harm and requests about other people get no step at all.

mod compose;
pub mod intents;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use countersign_core::model::{Case, Channel, IdentityStatus, Param, Plan, Provenance, ReplyDraft, Step};
use countersign_core::normalize::normalize;
use regex::Regex;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::context::{ContextError, PlanningContext};
use crate::{Planner, PlannerError};
pub use compose::Source;
use compose::{Draft, src};
pub use intents::{Escalation, Intent, Reading};

/// The offline playbook planner.
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalPlanner;

impl LocalPlanner {
    pub fn new() -> LocalPlanner {
        LocalPlanner
    }

    /// The intents and escalation the planner reads in a case (for evaluation and display).
    pub fn read(case: &Case) -> Reading {
        let texts: Vec<String> = case.customer_text().map(normalize).collect();
        intents::read(&texts, case.customer.is_some())
    }
}

impl Planner for LocalPlanner {
    fn name(&self) -> &str {
        "local"
    }

    fn plan(&self, case: &Case, ctx: &dyn PlanningContext) -> Result<Plan, PlannerError> {
        let reading = LocalPlanner::read(case);
        let mut b = Builder::new(case, ctx, reading.clone());
        b.run()?;
        let (steps, reply) = b.finish();
        let mut plan = Plan {
            id: String::new(),
            case_id: case.id.clone(),
            planner: "local".into(),
            intent: reading.main().as_str().to_string(),
            steps,
            reply: Some(reply),
        };
        plan.id = plan_id(&plan);
        Ok(plan)
    }
}

/// The same case and the same platform data give the same plan, and the same id.
fn plan_id(plan: &Plan) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(plan).unwrap_or_default());
    format!("local-{}", &hex::encode(h.finalize())[..16])
}

// ------------------------------------------------------------------------ sources

const CANCEL_WHO: Source = src("cancel-eligibility", "who-can-cancel", "cancel pending order eligibility", "pending");
const CANCEL_LATE: Source =
    src("cancel-eligibility", "when-it-is-too-late", "cancel too late processed order", "processed");
const CANCEL_REASONS: Source = src("cancel-eligibility", "accepted-reasons", "cancel accepted reasons", "reason");
const CANCEL_REFUND: Source =
    src("cancel-refunds", "where-the-money-goes", "cancelled order refund where money goes", "refund");
const CANCEL_TIMING: Source = src("cancel-refunds", "timing", "cancelled order refund timing", "business days");
const CANCEL_NOT_RECEIVED: Source =
    src("cancel-refunds", "refund-not-received", "refund not received cancelled order", "team lead");
const FAULTY: Source = src("warranty-defects", "faulty-on-arrival", "faulty on arrival does not work return", "");
const NOT_YOUR_ORDER: Source =
    src("returns-non-returnable", "someone-elses-order", "return someone else's order gift", "");
const CANCEL_SEVERAL: Source = src("cancel-how-to", "several-orders", "cancel several orders", "");
const DO_NOT_PROMISE: Source = src("agent-do-not-promise", "delivery", "do not promise delivery date", "");
const PAYMENT_ACCEPTED: Source =
    src("payment-methods-accepted", "saved-methods", "saved payment methods on the account", "");
const GIFT_CARD_PAY: Source = src("gift-cards", "paying-with-a-gift-card", "paying with a gift card balance", "");
const GIFT_CARD_TIMING: Source = src("gift-card-refunds", "timing", "gift card refund timing", "gift card");
const STATUS_PENDING: Source = src("order-status-meanings", "pending", "order status pending meaning", "pending");
const STATUS_PROCESSED: Source =
    src("order-status-meanings", "processed", "order status processed meaning shipped", "processed");
const STATUS_CANCELLED: Source =
    src("order-status-meanings", "cancelled", "order status cancelled meaning", "cancelled");
const TRACKING_WHEN: Source =
    src("tracking-orders", "when-tracking-appears", "when tracking number appears", "tracking");
const NO_DATES: Source = src("shipping-times", "no-guaranteed-dates", "no guaranteed delivery dates", "date");
const DELIVERED_NOT_RECEIVED: Source = src(
    "lost-delayed-packages",
    "marked-delivered-but-not-received",
    "package marked delivered but not received",
    "delivered",
);
const POSSIBLY_LOST: Source =
    src("lost-delayed-packages", "treat-as-possibly-lost", "parcel no scan possibly lost", "team lead");
const RETURN_WINDOW: Source = src("returns-window", "the-30-day-window", "return window 30 days", "30");
const RETURN_NOT_DELIVERED: Source =
    src("returns-non-returnable", "order-not-delivered", "return order not delivered yet", "delivered");
const RETURN_STEPS: Source =
    src("returns-how-to", "collect-the-details", "ask the customer for every item they want to return", "item");
const RETURN_REFUND: Source =
    src("returns-refunds", "two-destinations", "return refund original payment or gift card", "gift card");
const EXCHANGE_WHAT: Source = src("exchanges", "what-an-exchange-is", "exchange delivered item variant", "variant");
const EXCHANGE_UNAVAILABLE: Source =
    src("exchanges", "unavailable-variant", "exchange variant unavailable", "available");
const MODIFY_ITEMS: Source = src("modify-items", "once-per-order", "modify items pending order once", "once");
const MODIFY_OVERVIEW: Source =
    src("modify-pending-overview", "the-rule", "only pending orders can be changed", "pending");
const ADDRESS_ELIGIBLE: Source =
    src("modify-shipping-address", "eligibility", "change shipping address pending order", "pending");
const ADDRESS_COLLECT: Source =
    src("modify-shipping-address", "collect-the-full-address", "collect full shipping address", "address");
const PAYMENT_ELIGIBLE: Source =
    src("modify-payment-method", "eligibility", "change payment method pending order", "pending");
const PAYMENT_NO_CARDS: Source =
    src("modify-payment-method", "never-take-card-details-in-chat", "never take card details in chat", "card");
const PARTIAL_WHEN: Source =
    src("partial-refunds-damaged-missing", "when-to-use-one", "partial refund damaged missing part", "partial refund");
const REFUND_TIMING: Source =
    src("refund-timing", "credit-cards-and-paypal", "refund timing credit card paypal", "business days");
const PRICE_DROP: Source =
    src("price-differences", "price-drops-and-price-matching", "price drop price matching", "price");
const GOODWILL_WHEN: Source = src("goodwill-coupons", "when-it-fits", "goodwill coupon when it fits", "");
const GOODWILL_LIMITS: Source = src("goodwill-coupons", "limits", "goodwill coupon limits team lead", "25");
const GOODWILL_NOT_RIGHT: Source = src("goodwill-coupons", "never-a-right", "goodwill coupon never a right", "");
const PASSWORD_SELF: Source = src("password-reset", "self-service-first", "password reset self service", "");
const PASSWORD_NOT_ARRIVING: Source =
    src("password-reset", "link-not-arriving", "password reset link not arriving spam", "");
const PASSWORD_NO_EMAIL: Source =
    src("password-reset", "no-access-to-the-email", "no access to account email password", "team lead");
const NOT_IN_DMS: Source = src(
    "social-media-dm-support",
    "never-in-instagram-or-tiktok-dms",
    "account changes never in instagram tiktok dms",
    "",
);
const EMAIL_REQUIREMENTS: Source = src("email-change", "requirements", "change account email requirements", "");
const IDENTIFY: Source = src("identity-verification", "identify-first", "identify the customer first", "");
const ACCOUNT_SECURITY: Source = src(
    "account-security",
    "what-to-do",
    "do not make any change to the account passing the case to a specialist",
    "team lead",
);
const PRODUCT_VARIANTS: Source =
    src("product-variants-availability", "availability", "product variant availability", "available");
const PRODUCT_QUESTIONS: Source =
    src("product-questions", "use-the-seller-center", "product questions seller center", "");
const CATALOG: Source = src("product-catalog-overview", "about-the-catalog", "what the store sells catalog", "");
const COMPLAINT_ACK: Source = src("complaints-handling", "acknowledge", "complaint acknowledge apologise", "");
const ESCALATE_HOW: Source = src("escalation-team-lead", "always-escalate", "always escalate team lead", "");
const PRIVACY_RULE: Source = src("privacy-third-party", "the-rule", "privacy other person's order details", "");
const PRIVACY_LEGAL: Source =
    src("privacy-third-party", "law-enforcement-and-legal-requests", "law enforcement legal requests privacy", "");
const CHARGEBACK: Source = src("chargebacks-disputes", "always-a-team-lead", "chargeback dispute team lead", "");
const SELF_HARM: Source = src("sensitive-situations", "self-harm-statements", "self harm statement support", "");
const HARASSMENT: Source = src("sensitive-situations", "harassment", "harassment abusive customer", "");
const THREATS: Source = src("sensitive-situations", "threats-to-others", "threats against staff", "");

/// Every knowledge section a playbook may quote (a test checks each is found by its query).
pub const SOURCES: &[Source] = &[
    CANCEL_WHO,
    CANCEL_LATE,
    CANCEL_REASONS,
    CANCEL_REFUND,
    CANCEL_TIMING,
    CANCEL_NOT_RECEIVED,
    CANCEL_SEVERAL,
    DO_NOT_PROMISE,
    PAYMENT_ACCEPTED,
    GIFT_CARD_PAY,
    GIFT_CARD_TIMING,
    STATUS_PENDING,
    STATUS_PROCESSED,
    STATUS_CANCELLED,
    TRACKING_WHEN,
    NO_DATES,
    DELIVERED_NOT_RECEIVED,
    POSSIBLY_LOST,
    RETURN_WINDOW,
    RETURN_NOT_DELIVERED,
    RETURN_STEPS,
    RETURN_REFUND,
    EXCHANGE_WHAT,
    EXCHANGE_UNAVAILABLE,
    MODIFY_ITEMS,
    MODIFY_OVERVIEW,
    ADDRESS_ELIGIBLE,
    ADDRESS_COLLECT,
    PAYMENT_ELIGIBLE,
    PAYMENT_NO_CARDS,
    PARTIAL_WHEN,
    REFUND_TIMING,
    PRICE_DROP,
    GOODWILL_WHEN,
    GOODWILL_LIMITS,
    GOODWILL_NOT_RIGHT,
    PASSWORD_SELF,
    PASSWORD_NOT_ARRIVING,
    PASSWORD_NO_EMAIL,
    NOT_IN_DMS,
    EMAIL_REQUIREMENTS,
    IDENTIFY,
    ACCOUNT_SECURITY,
    PRODUCT_VARIANTS,
    PRODUCT_QUESTIONS,
    CATALOG,
    COMPLAINT_ACK,
    ESCALATE_HOW,
    PRIVACY_RULE,
    PRIVACY_LEGAL,
    CHARGEBACK,
    SELF_HARM,
    HARASSMENT,
    THREATS,
];

// ----------------------------------------------------------------- platform records

/// An order as the platform's order read shows it (only the fields the policy lets the
/// planner see).
#[derive(Debug, Clone)]
struct Order {
    id: String,
    status: String,
    items: Vec<Item>,
    tracking: Vec<String>,
    payment_method: Option<String>,
}

#[derive(Debug, Clone)]
struct Item {
    item_id: String,
    product_id: String,
    name: String,
    price: Option<Decimal>,
    options: BTreeMap<String, String>,
}

impl Order {
    fn parse(value: Value) -> Option<Order> {
        let id = value.get("order_id")?.as_str()?.to_string();
        let status = value.get("status").and_then(Value::as_str).unwrap_or("unknown").to_string();
        let items = value
            .get("items")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Item::parse).collect())
            .unwrap_or_default();
        let tracking = value
            .get("fulfillments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|f| f.get("tracking_ids").and_then(Value::as_array).cloned().unwrap_or_default())
            .filter_map(|t| t.as_str().map(str::to_string))
            .collect();
        let payment_method = value
            .get("payment_history")
            .and_then(Value::as_array)
            .and_then(|h| h.iter().find(|t| t.get("transaction_type").and_then(Value::as_str) == Some("payment")))
            .and_then(|t| t.get("payment_method_id"))
            .and_then(Value::as_str)
            .map(str::to_string);
        Some(Order { id, status, items, tracking, payment_method })
    }

    fn pending(&self) -> bool {
        self.status.starts_with("pending")
    }
}

impl Item {
    fn parse(v: &Value) -> Option<Item> {
        Some(Item {
            item_id: v.get("item_id")?.as_str()?.to_string(),
            product_id: v.get("product_id")?.as_str()?.to_string(),
            name: v.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            price: v.get("price").and_then(decimal),
            options: options(v.get("options")),
        })
    }
}

fn decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn options(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// Does the customer's (normalised) text name this item? All the words of its name, or
/// its last word (the noun: "boots", "thermostat").
fn names(text: &str, name: &str) -> bool {
    let norm = normalize(name);
    let words: Vec<&str> = norm.split_whitespace().collect();
    if words.is_empty() {
        return false;
    }
    if text.contains(&format!(" {} ", words.join(" "))) {
        return true;
    }
    let last = words[words.len() - 1];
    let stem = last.trim_end_matches('s');
    text.contains(&format!(" {last} ")) || (stem.len() > 3 && text.contains(&format!(" {stem}")))
}

// ------------------------------------------------------------------ text extraction

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+").expect("email pattern")
});
static NAME_ZIP: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"(?:(?:I'm|I am|Name:|name is)\s+([A-Z][a-z]+)\s+([A-Z][a-z]+)|([A-Z][a-z]+) ([A-Z][a-z]+) here)[^0-9]{0,40}?\b(\d{5})\b")
        .expect("name zip pattern")
});
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(
        r"(\d{1,6} [A-Z][A-Za-z]*(?: [A-Z][A-Za-z]*)*(?: (?:St|Street|Ave|Avenue|Rd|Road|Ln|Lane|Dr|Drive|Ct|Court|Pkwy|Row|Terrace|Blvd|Way))?\.?)(?:,? ((?:Apt|Unit|Suite) [A-Za-z0-9]+))?, ([A-Z][A-Za-z]+(?: [A-Z][A-Za-z]+)*),? ([A-Z]{2}) (\d{5})",
    )
    .expect("address pattern")
});

fn emails(text: &str) -> Vec<String> {
    EMAIL.find_iter(text).map(|m| m.as_str().trim_end_matches('.').to_string()).collect()
}

fn address(text: &str) -> Option<Value> {
    let c = ADDRESS.captures(text)?;
    Some(json!({
        "address1": c.get(1)?.as_str().trim(),
        "address2": c.get(2).map_or("", |m| m.as_str()),
        "city": c.get(3)?.as_str(),
        "state": c.get(4)?.as_str(),
        "zip": c.get(5)?.as_str(),
        "country": "USA",
    }))
}

// ------------------------------------------------------------------------ builder

struct Builder<'a> {
    case: &'a Case,
    ctx: &'a dyn PlanningContext,
    reading: Reading,
    /// Normalised customer text.
    text: String,
    /// The customer's text as written (emails, addresses keep their case).
    raw: String,
    steps: Vec<Step>,
    draft: Draft,
    orders: Vec<Order>,
    customer: Option<Value>,
    /// Things the planner could not see, said in the note to the agent.
    unseen: Vec<String>,
}

fn param(value: Value, source: Provenance) -> Param {
    Param { value, source }
}

impl<'a> Builder<'a> {
    fn new(case: &'a Case, ctx: &'a dyn PlanningContext, reading: Reading) -> Builder<'a> {
        let raw: Vec<&str> = case.customer_text().collect();
        let text = normalize(&raw.join(" \n "));
        Builder {
            case,
            ctx,
            reading,
            text,
            raw: raw.join("\n"),
            steps: Vec::new(),
            draft: Draft::new(None),
            orders: Vec::new(),
            customer: None,
            unseen: Vec::new(),
        }
    }

    fn says(&self, pattern: &str) -> bool {
        Regex::new(pattern).is_ok_and(|r| r.is_match(&self.text))
    }

    fn customer_id(&self) -> Option<&str> {
        self.case.customer.as_ref().map(|c| c.id.as_str())
    }

    fn verified(&self) -> bool {
        self.case.customer.as_ref().is_some_and(|c| c.identity == IdentityStatus::Verified)
    }

    fn dm(&self) -> bool {
        matches!(self.case.channel, Channel::InstagramDm | Channel::TiktokDm)
    }

    fn has(&self, i: Intent) -> bool {
        self.reading.has(i)
    }

    fn escalated(&self) -> bool {
        self.reading.escalation.is_some()
    }

    fn propose(&mut self, action: &str, params: Vec<(&str, Param)>, why: &str) {
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
    fn read(&mut self, action: &str, params: Map<String, Value>) -> Result<Option<Value>, PlannerError> {
        match self.ctx.read(action, &params) {
            Ok(v) => Ok(v),
            Err(ContextError::Refused { .. }) => {
                self.unseen.push(format!("{action} needs a person's go-ahead, so I did not run it"));
                Ok(None)
            }
            Err(ContextError::Read { message, .. }) => {
                self.unseen.push(format!("{action} failed: {message}"));
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn cite(&mut self, source: Source) -> Result<bool, PlannerError> {
        Ok(self.draft.cite(self.ctx, source)?)
    }

    fn run(&mut self) -> Result<(), PlannerError> {
        let esc = self.reading.escalation;
        // No order talk at all: a person takes over.
        match esc {
            Some(Escalation::SelfHarm) => {
                self.draft.say("I'm really sorry you're going through this. You matter, and I want to make sure you get support right now.");
                self.cite(SELF_HARM)?;
                return Ok(());
            }
            Some(Escalation::Threat) => {
                self.cite(THREATS)?;
                self.draft.say("I'm passing this conversation to a team lead.");
                return Ok(());
            }
            Some(Escalation::Abuse) => {
                self.cite(HARASSMENT)?;
                self.cite(ESCALATE_HOW)?;
                self.draft.say("I'm passing this conversation to a team lead.");
                return Ok(());
            }
            Some(Escalation::InformationRequest) => {
                if self.says(r" officer | police| attorney") {
                    self.cite(PRIVACY_LEGAL)?;
                } else if self.says(r" delete| close my account") {
                    self.cite(PRIVACY_RULE)?;
                    self.cite(ESCALATE_HOW)?;
                } else {
                    self.cite(PRIVACY_RULE)?;
                    self.cite(ACCOUNT_SECURITY)?;
                }
                self.draft.say("A team lead will follow up on this request.");
                return Ok(());
            }
            Some(Escalation::ThirdParty) => {
                self.cite(PRIVACY_RULE)?;
                self.draft.say("The account holder needs to contact us themselves, from their own account.");
                return Ok(());
            }
            _ => {}
        }
        if self.case.customer.is_none() {
            return self.identify();
        }
        self.look()?;
        self.draft = Draft::new(self.first_name().as_deref());
        if matches!(esc, Some(Escalation::Manipulation | Escalation::Takeover)) {
            self.cite(ACCOUNT_SECURITY)?;
            self.draft.say("I've passed your message to a team lead, who will review it before anything changes on your account or orders.");
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
                Some(Escalation::Legal) if self.says(" chargeback") => self.cite(CHARGEBACK)?,
                // The password article already says who takes it over.
                Some(Escalation::Rule) if self.says(r" access to my (old )?email") => false,
                _ => self.cite(ESCALATE_HOW)?,
            };
            self.draft.say("I've asked a team lead to look at this with me; we'll get back to you shortly.");
        }
        Ok(())
    }

    fn first_name(&self) -> Option<String> {
        self.customer
            .as_ref()
            .and_then(|c| c.get("name"))
            .and_then(|n| n.get("first_name"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    /// Unidentified: propose a lookup with what the customer typed, or ask.
    fn identify(&mut self) -> Result<(), PlannerError> {
        let product_only = self.reading.intents.iter().all(|i| *i == Intent::ProductQuestion);
        if product_only {
            return self.products();
        }
        if self.reading.main() == Intent::OutOfScope {
            self.draft.say("I'm sorry, that is not something our store can help with. If you have a question about an order, a product or your account, I'm happy to help.");
            return Ok(());
        }
        if let Some(email) = emails(&self.raw).into_iter().next() {
            self.propose(
                "find_customer_by_email",
                vec![("email", param(json!(email), Provenance::CustomerMessage))],
                "the customer gave the email on the account",
            );
            self.draft.say("Thanks, I'm looking up your account with the email you gave.");
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
                "the customer gave their name and zip code",
            );
            self.draft.say("Thanks, I'm looking up your account with your name and zip code.");
        } else {
            self.draft.say("Before I can look at your order or account, I need to find your account: could you send me the email address on it, or your full name and zip code?");
        }
        self.cite(IDENTIFY)?;
        if let Some(intent) = self.reading.intents.first().copied() {
            match intent {
                Intent::CancelOrder => self.cite(CANCEL_WHO)?,
                Intent::Return => self.cite(RETURN_STEPS)?,
                Intent::Exchange => self.cite(EXCHANGE_WHAT)?,
                Intent::ModifyAddress => self.cite(ADDRESS_ELIGIBLE)?,
                Intent::AccountRecovery => self.cite(PASSWORD_SELF)?,
                _ => false,
            };
        }
        Ok(())
    }

    /// Read the linked orders and, when the request needs it, the account.
    fn look(&mut self) -> Result<(), PlannerError> {
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
            {
                self.propose(
                    "get_customer_details",
                    vec![("customer_id", param(json!(cid), Provenance::Connector))],
                    "the request needs the account (orders, addresses, saved payment methods)",
                );
            }
            let mut p = Map::new();
            p.insert("customer_id".into(), json!(cid));
            self.customer = self.read("get_customer_details", p)?;
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
                "read the order the case is about",
            );
            let mut p = Map::new();
            p.insert("order_id".into(), json!(id));
            if let Some(v) = self.read("get_order_details", p)?.and_then(Order::parse) {
                self.orders.push(v);
            } else {
                self.unseen.push(format!("I could not see order {id}"));
            }
        }
        Ok(())
    }

    /// The order the request is about: the one whose items the customer names, else the first.
    fn order_for(&self, status: impl Fn(&Order) -> bool) -> Option<Order> {
        let candidates: Vec<&Order> = self.orders.iter().filter(|o| status(o)).collect();
        candidates
            .iter()
            .find(|o| o.items.iter().any(|i| names(&self.text, &i.name)))
            .or(candidates.first())
            .map(|o| (*o).clone())
    }

    fn answer(&mut self, intent: Intent) -> Result<(), PlannerError> {
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
                self.draft.say("I'm sorry about this experience, and thank you for telling us.");
                self.cite(COMPLAINT_ACK).map(|_| ())
            }
            Intent::OutOfScope => {
                self.draft.say(
                    "That is outside what I can help with here; for orders, products or your account I'm glad to help.",
                );
                Ok(())
            }
            Intent::IdentifyCustomer | Intent::Escalation => Ok(()),
        }
    }

    fn order_status(&mut self) -> Result<(), PlannerError> {
        // With a refund asked about too, the status question is about the other order.
        // Asked beside another request about another order, the status question is
        // usually the second one.
        let order = if self.orders.len() > 1 { self.orders.last().cloned() } else { self.orders.first().cloned() };
        let Some(order) = order else {
            self.draft.say(
                "I could not see the order, so I can't tell you its status yet; could you send me the order number?",
            );
            return Ok(());
        };
        if self.says(" stuck| hasn t moved") {
            self.cite(POSSIBLY_LOST)?;
            return Ok(());
        }
        if self.says(r" (says|shows|marked) delivered| never got it") {
            self.draft.say(format!("Order {} shows as {} on our side.", order.id, order.status));
            self.cite(DELIVERED_NOT_RECEIVED)?;
            return Ok(());
        }
        self.draft.say(format!("Order {} is {}.", order.id, order.status));
        if self.says(r" before \w+day| by \w+day| in time| get here| bday| birthday") {
            self.cite(NO_DATES)?;
            self.cite(DO_NOT_PROMISE)?;
            return Ok(());
        }
        match order.status.as_str() {
            // Asked for tracking, the answer is when tracking appears; otherwise, what
            // pending means.
            s if s.starts_with("pending") => {
                if self.says(" tracking") {
                    self.cite(TRACKING_WHEN)?;
                } else if !self.asks_when() {
                    self.cite(STATUS_PENDING)?;
                }
            }
            "processed" => {
                if !order.tracking.is_empty() {
                    self.draft.say(format!("Its tracking number is {}.", order.tracking.join(", ")));
                }
                self.cite(TRACKING_WHEN)?;
            }
            "cancelled" => {
                self.cite(STATUS_CANCELLED)?;
                self.cite(CANCEL_REFUND)?;
            }
            _ => {
                self.cite(STATUS_PROCESSED)?;
            }
        }
        if self.asks_when() {
            self.cite(NO_DATES)?;
        }
        Ok(())
    }

    /// Does the customer ask when something will happen (a date we cannot promise)?
    fn asks_when(&self) -> bool {
        self.says(r" when will (it|my order|the order|my package)| when it ships| heard a thing")
    }

    fn cancel(&mut self) -> Result<(), PlannerError> {
        let pending: Vec<Order> = self.orders.iter().filter(|o| o.pending()).cloned().collect();
        let reason = if self.says(r" mistake| accident| twice| by mistake| same order| kid was playing") {
            Some("ordered by mistake")
        } else if self.says(r" don t need| no longer need| dont need") {
            Some("no longer needed")
        } else {
            None
        };
        if self.says(" undo") {
            self.draft.say("A cancelled order cannot be reopened, but you are welcome to place it again.");
            self.cite(STATUS_CANCELLED)?;
            return Ok(());
        }
        if pending.is_empty() {
            if let Some(o) = self.orders.first() {
                self.draft.say(format!("Order {} is already {}, so it can no longer be cancelled.", o.id, o.status));
            }
            self.cite(CANCEL_LATE)?;
            if self.orders.iter().any(|o| o.status == "delivered") {
                self.cite(RETURN_WINDOW)?;
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
                        "the customer asked to cancel a pending order and gave the reason",
                    );
                }
                let ids: Vec<&str> = pending.iter().map(|o| o.id.as_str()).collect();
                self.draft.say(format!("I've prepared the cancellation of {} for you.", ids.join(" and ")));
                self.cite(if pending.len() > 1 { CANCEL_SEVERAL } else { CANCEL_WHO })?;
                let only_request = self
                    .reading
                    .intents
                    .iter()
                    .all(|i| matches!(i, Intent::CancelOrder | Intent::Escalation | Intent::IdentifyCustomer));
                if only_request {
                    self.cite(CANCEL_REFUND)?;
                    if self.says(" gift card") {
                        self.cite(GIFT_CARD_TIMING)?;
                    }
                }
            }
            None => {
                self.cite(CANCEL_WHO)?;
                self.draft.say("So that I can cancel it, could you tell me why: is it no longer needed, or was it ordered by mistake?");
                self.cite(CANCEL_REASONS)?;
            }
        }
        Ok(())
    }

    fn return_items(&mut self) -> Result<(), PlannerError> {
        if self.orders.is_empty() && self.says(r" gift| friend bought| bought it for me") {
            self.draft.say("A return has to be requested by the person who placed the order, from their account.");
            self.cite(NOT_YOUR_ORDER)?;
            return Ok(());
        }
        let Some(order) = self.order_for(|o| o.status == "delivered") else {
            if let Some(o) = self.orders.first() {
                self.draft.say(format!("Order {} is {}, so it cannot be returned yet.", o.id, o.status));
                self.cite(RETURN_NOT_DELIVERED)?;
            } else {
                self.draft.say("Which order is the item from? I can't see it on your account yet.");
                self.cite(RETURN_STEPS)?;
            }
            return Ok(());
        };
        let named: Vec<&Item> = order.items.iter().filter(|i| names(&self.text, &i.name)).collect();
        let whole = self.says(" everything| whole order| all of it| my order") || order.items.len() == 1;
        let items: Vec<&Item> = if named.is_empty() && whole { order.items.iter().collect() } else { named };
        if items.is_empty() {
            self.draft.say(format!("Which item from order {} would you like to return?", order.id));
            self.cite(RETURN_STEPS)?;
            return Ok(());
        }
        let Some(method) = order.payment_method.clone() else {
            self.unseen.push(format!("the payment method of {}", order.id));
            return Ok(());
        };
        self.propose(
            "return_delivered_order_items",
            vec![
                ("order_id", param(json!(order.id), Provenance::Connector)),
                ("item_ids", param(json!(items.iter().map(|i| &i.item_id).collect::<Vec<_>>()), Provenance::Connector)),
                ("payment_method_id", param(json!(method), Provenance::Connector)),
            ],
            "the customer asked to return delivered items",
        );
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        self.draft.say(format!("I've prepared a return of the {} from order {}.", names.join(", "), order.id));
        if self.says(r" (won t|wont|doesn t|does not) (turn on|work)") {
            self.cite(FAULTY)?;
        } else {
            self.cite(RETURN_STEPS)?;
        }
        if self.says(r" how long") {
            self.cite(REFUND_TIMING)?;
        } else if self.says(r" gift card| store credit| original payment| refund to") {
            self.cite(RETURN_REFUND)?;
        } else if self.orders.iter().filter(|o| o.status == "delivered").count() > 1 {
            self.cite(RETURN_WINDOW)?;
        }
        Ok(())
    }

    fn change_items(&mut self, intent: Intent) -> Result<(), PlannerError> {
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
                self.draft.say(format!("Order {} is {}, so its items cannot be changed now.", o.id, o.status));
            }
            self.cite(if pending_order { MODIFY_OVERVIEW } else { EXCHANGE_WHAT })?;
            return Ok(());
        };
        let Some(item) = order
            .items
            .iter()
            .find(|i| names(&self.text, &i.name))
            .or(if order.items.len() == 1 { order.items.first() } else { None })
            .cloned()
        else {
            self.draft.say(format!("Which item of order {} would you like to change, and to what?", order.id));
            self.cite(if pending_order { MODIFY_ITEMS } else { EXCHANGE_WHAT })?;
            return Ok(());
        };
        if self.says(r" add a| remove the| for a [a-z]+ kettle") {
            self.draft
                .say(format!("Order {} can only have items swapped for other options of the same product.", order.id));
            self.cite(MODIFY_OVERVIEW)?;
            return Ok(());
        }
        self.propose(
            "get_product_details",
            vec![("product_id", param(json!(item.product_id), Provenance::Connector))],
            "see the variants the item can be changed to",
        );
        let mut p = Map::new();
        p.insert("product_id".into(), json!(item.product_id));
        let product = self.read("get_product_details", p)?;
        let candidates = product.as_ref().map(|p| self.variants_asked_for(&item, p)).unwrap_or_default();
        let (action, source) = if pending_order {
            ("modify_pending_order_items", MODIFY_ITEMS)
        } else {
            ("exchange_delivered_order_items", EXCHANGE_WHAT)
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
                    "the variant the customer asked for is available",
                );
                self.draft.say(format!("I've prepared the change of your {} on order {}.", item.name, order.id));
                self.cite(source)?;
            }
            [] if product.is_some() => {
                self.draft.say(format!(
                    "I couldn't find an available {} matching what you asked for; which option would you like instead?",
                    item.name
                ));
                self.cite(if pending_order { MODIFY_OVERVIEW } else { EXCHANGE_UNAVAILABLE })?;
            }
            _ => {
                self.draft.say(format!("Which exact option would you like for the {}?", item.name));
                self.cite(source)?;
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

    fn change_address(&mut self) -> Result<(), PlannerError> {
        let new = address(&self.raw);
        let on_file = self.says(" on file| i moved| my address on");
        if let (Some(addr), true, Some(cid)) = (new.clone(), on_file, self.customer_id().map(str::to_string)) {
            self.propose(
                "modify_customer_address",
                vec![
                    ("customer_id", param(json!(cid), Provenance::Connector)),
                    ("address", param(addr, Provenance::CustomerMessage)),
                ],
                "the customer gave their new address for the account",
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
                    "the customer gave a complete new address for a pending order",
                );
                self.draft.say(format!("I've prepared the address change on order {}.", o.id));
                self.cite(ADDRESS_ELIGIBLE)?;
            }
            (Some(o), None) => {
                self.draft.say(format!("Happy to change the address on order {}: could you send me the full new address (street, apartment, city, state and zip code)?", o.id));
                self.cite(ADDRESS_COLLECT)?;
            }
            (None, _) => {
                if let Some(o) = self.orders.first() {
                    self.draft.say(format!("Order {} is {}, so its address can no longer be changed.", o.id, o.status));
                } else if self.customer.is_some() {
                    self.draft.say("Which order should the new address go on?");
                }
                self.cite(ADDRESS_ELIGIBLE)?;
            }
        }
        Ok(())
    }

    fn change_payment(&mut self) -> Result<(), PlannerError> {
        if self.says(r" \d{4} \d{4} \d{4}| cvv| exp ") || self.says(" new amex| haven t added") {
            self.draft.say("For your security, please never send card details in a message; a new card has to be added to your account first.");
            self.cite(PAYMENT_NO_CARDS)?;
            self.cite(PAYMENT_ACCEPTED)?;
            return Ok(());
        }
        let Some(order) = self.order_for(Order::pending) else {
            if let Some(o) = self.orders.first() {
                self.draft
                    .say(format!("Order {} is {}, so its payment method can no longer be changed.", o.id, o.status));
            }
            self.cite(PAYMENT_ELIGIBLE)?;
            return Ok(());
        };
        let wanted = if self.says(" paypal") {
            Some("paypal")
        } else if self.says(" gift card") {
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
                    "the customer asked to pay with a saved method",
                );
                self.draft.say(format!("I've prepared the payment change on order {}.", order.id));
                self.cite(PAYMENT_ELIGIBLE)?;
                if wanted == Some("gift_card") {
                    self.cite(GIFT_CARD_PAY)?;
                }
            }
            None => {
                self.draft.say("Which of the payment methods saved on your account would you like to use instead?");
                self.cite(PAYMENT_ELIGIBLE)?;
            }
        }
        Ok(())
    }

    fn refund(&mut self) -> Result<(), PlannerError> {
        if self.says(" cheaper| the difference| price drop") {
            self.cite(PRICE_DROP)?;
            return Ok(());
        }
        if self.escalated() {
            return Ok(());
        }
        if let Some(o) = self.orders.iter().find(|o| o.status == "cancelled").cloned() {
            if self.draft.cites("cancel-refunds") {
                return Ok(());
            }
            self.draft
                .say(format!("Order {} was cancelled, and its payment is refunded to the method you paid with.", o.id));
            if self.says(" two weeks| still don t see") {
                self.cite(CANCEL_NOT_RECEIVED)?;
            } else {
                self.cite(REFUND_TIMING)?;
                if self.says(" cancel") {
                    self.cite(CANCEL_TIMING)?;
                }
            }
            return Ok(());
        }
        let damaged = self.says(r" scratch| dent| crack| scuff| missing| broken| chipped| knob");
        let Some(order) = self.order_for(|o| o.status == "delivered") else {
            if let Some(o) = self.orders.first() {
                self.draft.say(format!("Order {} is {}.", o.id, o.status));
            }
            self.cite(if damaged { PARTIAL_WHEN } else { REFUND_TIMING })?;
            return Ok(());
        };
        if !damaged {
            self.cite(REFUND_TIMING)?;
            return Ok(());
        }
        let item = order
            .items
            .iter()
            .find(|i| names(&self.text, &i.name))
            .or(if order.items.len() == 1 { order.items.first() } else { None })
            .cloned();
        let Some(price) = item.as_ref().and_then(|i| i.price) else {
            self.draft.say(format!("Which item of order {} is affected?", order.id));
            self.cite(PARTIAL_WHEN)?;
            return Ok(());
        };
        // A modest share of the item's price: a playbook figure, for a person to confirm.
        let amount = (price * Decimal::new(10, 2)).round_dp(2);
        let name = item.map(|i| i.name).unwrap_or_default();
        self.propose(
            "refund_partial",
            vec![
                ("order_id", param(json!(order.id), Provenance::Connector)),
                ("amount", param(json!({"amount": amount.to_string(), "currency": "USD"}), Provenance::Policy)),
                ("reason", param(json!(format!("damaged or incomplete {name}")), Provenance::CustomerMessage)),
            ],
            "a partial refund for a damaged or incomplete item the customer keeps (10% of its price; adjust to the problem)",
        );
        self.draft.say(format!(
            "I'm sorry about the {name}; I've prepared a partial refund on order {} for the problem.",
            order.id
        ));
        self.cite(PARTIAL_WHEN)?;
        Ok(())
    }

    fn service_failure(&self) -> bool {
        self.says(r" late| arrived| never (came|did)| missed| told me| weeks")
    }

    fn goodwill(&mut self) -> Result<(), PlannerError> {
        let failure = self.service_failure();
        if self.says(r" 5 stars| review") || !failure {
            self.cite(GOODWILL_NOT_RIGHT)?;
            return Ok(());
        }
        if self.escalated() {
            // Say what a coupon can be only to someone who asked for one.
            if self.says(r" coupon| credit| compensation| discount") {
                self.cite(GOODWILL_LIMITS)?;
            }
            return Ok(());
        }
        let Some(cid) = self.customer_id().map(str::to_string) else { return Ok(()) };
        self.propose(
            "create_goodwill_coupon",
            vec![
                ("customer_id", param(json!(cid), Provenance::Connector)),
                ("amount", param(json!({"amount": "10.00", "currency": "USD"}), Provenance::Policy)),
                ("reason", param(json!("service failure reported by the customer"), Provenance::CustomerMessage)),
            ],
            "a goodwill gesture for a service failure on our side (playbook amount)",
        );
        self.draft.say("As an apology, I've prepared a coupon for your next order.");
        self.cite(GOODWILL_WHEN)?;
        Ok(())
    }

    fn account_recovery(&mut self) -> Result<(), PlannerError> {
        if self.says(r" don t have access to my (old )?email| no access") {
            self.cite(PASSWORD_NO_EMAIL)?;
            return Ok(());
        }
        if self.dm() || !self.verified() {
            self.draft.say("For your security we can't reset a password from here.");
            self.cite(if self.dm() { NOT_IN_DMS } else { PASSWORD_SELF })?;
            self.cite(PASSWORD_SELF)?;
            return Ok(());
        }
        if let Some(cid) = self.customer_id().map(str::to_string) {
            self.propose(
                "send_password_reset",
                vec![("customer_id", param(json!(cid), Provenance::Connector))],
                "the verified customer cannot sign in",
            );
        }
        self.draft.say("I've asked for a new password reset link to be sent to the email address on your account.");
        self.cite(if self.says(" never arrives| never comes| never shows") {
            PASSWORD_NOT_ARRIVING
        } else {
            PASSWORD_SELF
        })?;
        Ok(())
    }

    fn email_change(&mut self) -> Result<(), PlannerError> {
        let new = emails(&self.raw).into_iter().next();
        if self.dm() || !self.verified() || new.is_none() || self.escalated() {
            // In a DM the rule that matters is that account changes do not happen there.
            self.cite(if self.dm() { NOT_IN_DMS } else { EMAIL_REQUIREMENTS })?;
            if new.is_none() && !self.escalated() {
                self.draft.say("Which email address should the account use?");
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
                "the verified customer asked to change the account email",
            );
        }
        self.draft.say("I've prepared the email change; a team lead confirms it before it takes effect.");
        self.cite(EMAIL_REQUIREMENTS)?;
        Ok(())
    }

    fn products(&mut self) -> Result<(), PlannerError> {
        if self.says(" place the order for me") {
            self.cite(PRODUCT_QUESTIONS)?;
            self.draft.say("I can't place orders for you, but I can answer questions about products.");
            return Ok(());
        }
        self.propose("list_product_types", vec![], "find the product the customer asks about");
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
                self.draft.say("I couldn't find that product in our catalog.");
            }
            self.cite(CATALOG)?;
            return Ok(());
        }
        for (id, name) in named {
            self.propose(
                "get_product_details",
                vec![("product_id", param(json!(id), Provenance::Connector))],
                "read the product's variants and availability",
            );
            let mut p = Map::new();
            p.insert("product_id".into(), json!(id));
            if let Some(product) = self.read("get_product_details", p)? {
                let variants = product.get("variants").and_then(Value::as_array).cloned().unwrap_or_default();
                let available = variants.iter().filter(|v| v.get("available") == Some(&Value::Bool(true))).count();
                self.draft.say(format!(
                    "The {name} comes in {} variants, {available} of them available right now.",
                    variants.len()
                ));
            }
        }
        let about_variants = self.says(r" come in | comes in | colou?r | in stock| do you sell| pink | grey | white | wood | green | black | red | blue | gold ");
        self.cite(if about_variants { PRODUCT_VARIANTS } else { PRODUCT_QUESTIONS })?;
        Ok(())
    }

    fn finish(self) -> (Vec<Step>, ReplyDraft) {
        let mut draft = self.draft;
        if draft.is_empty() {
            draft.say("Thanks for your message; an agent will look at it with you.");
        }
        let mut notes: Vec<String> = self.unseen;
        notes.extend(
            draft.missing.iter().map(|m| format!("the knowledge search did not return {m}, so I did not quote it")),
        );
        let mut reply = draft.finish();
        if !notes.is_empty() {
            reply.text.push_str(&format!("\n\n[Note to the agent, not for the customer: {}.]", notes.join("; ")));
        }
        (self.steps, reply)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_are_read_whole() {
        let a = address("New one: 77 Harbor View Rd, Unit 12, Charlotte, NC 28293").unwrap();
        assert_eq!(a["address1"], "77 Harbor View Rd");
        assert_eq!(a["address2"], "Unit 12");
        assert_eq!(a["city"], "Charlotte");
        assert_eq!(a["zip"], "28293");
        assert!(address("it's 55 Grand Ave. Nobody's home").is_none(), "no city, state or zip: ask");
    }

    #[test]
    fn items_are_named_by_their_noun() {
        let text = normalize("boots are a size too small, need a 8 instead of 7");
        assert!(names(&text, "Hiking Boots"));
        assert!(!names(&text, "Water Bottle"));
    }
}
