//! The allow/deny core of the demo permission map, written as Cedar policies.
//!
//! Mapping: principal = `Operator` (attribute `role`); action = `Action::"<name>"`
//! with the demo policy's action names; resource = the `Order` (attributes
//! `owner`, `status`, `paid` and `refunded` in cents as `Long`), the `Customer`
//! acted on, or the store `Catalog` for lookups; context = `channel`, `customer`
//! (the case's customer, when identified), `identity_verified`, `amount` and
//! `case_total` in cents.
//!
//! "Allow" here means what countersign calls executable (`auto`, `confirm` or
//! `supervisor`); "deny" means `recommend` or `forbid`. The tiers (who must
//! countersign, money thresholds, escalation) have no Cedar equivalent: Cedar
//! answers allow or deny and the ids of the policies that determined it.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request, Response,
    RestrictedExpression,
};
use countersign_core::model::Step;
use countersign_core::{Money, Policy};
use rust_decimal::Decimal;

use crate::world::World;

/// The Cedar policies. Anything not permitted is denied (Cedar's default deny),
/// which covers actions the permission map does not name.
pub const POLICIES: &str = r#"
// Lookups and catalog reads: no customer data at stake.
@id("read.catalog")
permit(
  principal is Operator,
  action in [Action::"find_customer_by_email", Action::"find_customer_by_name_zip",
             Action::"get_product_details", Action::"list_product_types"],
  resource is Catalog
);

// Reads of the case's own customer and own orders only.
@id("read.own-customer")
permit(principal is Operator, action == Action::"get_customer_details", resource is Customer)
when { context has customer && resource == context.customer };

@id("read.own-order")
permit(principal is Operator, action == Action::"get_order_details", resource is Order)
when { context has customer && resource.owner == context.customer };

// Changes to a pending order: own order, still pending.
@id("order.pending-changes")
permit(
  principal is Operator,
  action in [Action::"cancel_pending_order", Action::"modify_pending_order_address",
             Action::"modify_pending_order_items", Action::"modify_pending_order_payment"],
  resource is Order
)
when { context has customer && resource.owner == context.customer && resource.status == "pending" };

// Returns and exchanges: own order, delivered.
@id("order.delivered-returns")
permit(
  principal is Operator,
  action in [Action::"return_delivered_order_items", Action::"exchange_delivered_order_items"],
  resource is Order
)
when { context has customer && resource.owner == context.customer && resource.status == "delivered" };

// Partial refunds: own delivered order, and no more than is still refundable.
@id("money.refund")
permit(principal is Operator, action == Action::"refund_partial", resource is Order)
when {
  context has customer && resource.owner == context.customer &&
  resource.status == "delivered" &&
  context.amount > 0 && context.amount <= resource.paid - resource.refunded
};

// Customer-level changes and goodwill: the case's own customer.
@id("customer.own-changes")
permit(
  principal is Operator,
  action in [Action::"modify_customer_address", Action::"create_goodwill_coupon"],
  resource is Customer
)
when { context has customer && resource == context.customer && context.amount >= 0 };

// Account operations: own customer ...
@id("account.ops")
permit(
  principal is Operator,
  action in [Action::"change_account_email", Action::"send_password_reset"],
  resource is Customer
)
when { context has customer && resource == context.customer };

// ... never from Instagram or TikTok DMs ...
@id("account.no-social-dm")
forbid(
  principal,
  action in [Action::"change_account_email", Action::"send_password_reset"],
  resource
)
when { context.channel == "instagram_dm" || context.channel == "tiktok_dm" };

// ... and only for a verified customer.
@id("account.verified-identity")
forbid(
  principal,
  action in [Action::"change_account_email", Action::"send_password_reset"],
  resource
)
unless { context.identity_verified };
"#;

/// What a Cedar request is built from, for one step: the plain values a caller
/// would hand over (prepared outside the timed section, like countersign's
/// `Step`).
#[derive(Debug, Clone)]
pub struct CedarStep {
    pub action: String,
    pub resource: Resource,
    /// This step's amount in cents (0 when it moves no money).
    pub amount_cents: i64,
    /// Money on this case, earlier steps of the plan and this one, in cents.
    pub case_total_cents: i64,
}

/// The resource a step acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    Order(String),
    Customer(String),
    Catalog,
}

fn cents(m: &Money) -> i64 {
    decimal_cents(m.amount)
}

fn decimal_cents(mut d: Decimal) -> i64 {
    d.rescale(2);
    i64::try_from(d.mantissa()).expect("amount fits in cents")
}

fn step_money(step: &Step) -> Option<Money> {
    step.params.get("amount").and_then(|p| Money::from_json(&p.value).ok())
}

impl CedarStep {
    /// The Cedar view of `step`, `earlier` being the plan's steps before it.
    pub fn from_step(world: &World, earlier: &[Step], step: &Step) -> CedarStep {
        let param = |name: &str| step.params.get(name).and_then(|p| p.value.as_str()).map(str::to_string);
        let resource = match (param("order_id"), param("customer_id")) {
            (Some(o), _) => Resource::Order(o),
            (None, Some(c)) => Resource::Customer(c),
            (None, None) => Resource::Catalog,
        };
        let amount_cents = step_money(step).as_ref().map_or(0, cents);
        let history: i64 =
            world.facts.history.iter().filter(|h| h.case_id == world.case.id).map(|h| cents(&h.amount)).sum();
        let in_plan: i64 = earlier.iter().filter_map(step_money).map(|m| cents(&m)).sum();
        CedarStep {
            action: step.action.clone(),
            resource,
            amount_cents,
            case_total_cents: history + in_plan + amount_cents,
        }
    }
}

/// Everything Cedar needs that does not change per request, built once.
#[derive(Debug)]
pub struct CedarEngine {
    pub authorizer: Authorizer,
    pub policies: PolicySet,
    pub entities: Entities,
    operator: EntityTypeName,
    action: EntityTypeName,
    order: EntityTypeName,
    customer: EntityTypeName,
    catalog: EntityTypeName,
}

fn type_name(s: &str) -> EntityTypeName {
    EntityTypeName::from_str(s).expect("valid Cedar type name")
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

impl CedarEngine {
    /// Parse the policies and load the world's operator, customers and orders.
    pub fn new(world: &World) -> Result<CedarEngine, String> {
        let policies = PolicySet::from_str(POLICIES).map_err(|e| format!("Cedar policies: {e:?}"))?;
        let operator = type_name("Operator");
        let customer = type_name("Customer");
        let order = type_name("Order");
        let mut entities = Vec::new();
        let op = &world.facts.operator;
        entities.push(
            Entity::new(
                uid(&operator, &op.id),
                HashMap::from([("role".to_string(), RestrictedExpression::new_string(op.role.clone()))]),
                HashSet::new(),
            )
            .map_err(|e| e.to_string())?,
        );
        let mut customers = HashSet::new();
        for o in world.facts.orders.values() {
            customers.insert(o.customer_id.clone());
            let paid = decimal_cents(o.paid);
            let refunded = decimal_cents(o.refunded);
            entities.push(
                Entity::new(
                    uid(&order, &o.order_id),
                    HashMap::from([
                        ("owner".to_string(), RestrictedExpression::new_entity_uid(uid(&customer, &o.customer_id))),
                        ("status".to_string(), RestrictedExpression::new_string(o.status.clone())),
                        ("paid".to_string(), RestrictedExpression::new_long(paid)),
                        ("refunded".to_string(), RestrictedExpression::new_long(refunded)),
                    ]),
                    HashSet::new(),
                )
                .map_err(|e| e.to_string())?,
            );
        }
        if let Some(c) = &world.case.customer {
            customers.insert(c.id.clone());
        }
        for c in customers {
            entities.push(Entity::new_no_attrs(uid(&customer, &c), HashSet::new()));
        }
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        Ok(CedarEngine {
            authorizer: Authorizer::new(),
            policies,
            entities,
            operator,
            action: type_name("Action"),
            order,
            customer,
            catalog: type_name("Catalog"),
        })
    }

    /// Build the request for `step` in `world` (the part timed with the
    /// evaluation, as `decide` builds its own inputs too).
    pub fn request(&self, world: &World, step: &CedarStep) -> Result<Request, String> {
        let case = &world.case;
        let principal = uid(&self.operator, &world.facts.operator.id);
        let action = uid(&self.action, &step.action);
        let resource = match &step.resource {
            Resource::Order(id) => uid(&self.order, id),
            Resource::Customer(id) => uid(&self.customer, id),
            Resource::Catalog => uid(&self.catalog, "store"),
        };
        let mut pairs = Vec::with_capacity(5);
        pairs.push(("channel".to_string(), RestrictedExpression::new_string(case.channel.as_str().to_string())));
        let verified = match &case.customer {
            Some(c) => {
                pairs.push(("customer".to_string(), RestrictedExpression::new_entity_uid(uid(&self.customer, &c.id))));
                // The verification from evidence, as countersign decides on it.
                world.facts.identity.customer_id.as_deref() == Some(c.id.as_str())
                    && world.facts.identity.level == countersign_core::model::IdentityLevel::Strong
            }
            None => false,
        };
        pairs.push(("identity_verified".to_string(), RestrictedExpression::new_bool(verified)));
        pairs.push(("amount".to_string(), RestrictedExpression::new_long(step.amount_cents)));
        pairs.push(("case_total".to_string(), RestrictedExpression::new_long(step.case_total_cents)));
        let context = Context::from_pairs(pairs).map_err(|e| e.to_string())?;
        Request::new(principal, action, resource, context, None).map_err(|e| e.to_string())
    }

    /// Build the request and evaluate it.
    pub fn authorize(&self, world: &World, step: &CedarStep) -> Result<Response, String> {
        let req = self.request(world, step)?;
        Ok(self.authorizer.is_authorized(&req, &self.policies, &self.entities))
    }
}

/// Convenience for callers that only hold the countersign policy: nothing in
/// the Cedar translation is derived from it at run time, so this only checks
/// that every action the Cedar policies name exists in the countersign policy.
pub fn check_names(policy: &Policy) -> Result<(), String> {
    let mut missing = Vec::new();
    for part in POLICIES.split("Action::\"").skip(1) {
        let name = part.split('"').next().unwrap_or_default();
        if !policy.actions.contains_key(name) {
            missing.push(name.to_string());
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("Cedar policies name actions the permission map does not: {missing:?}"))
    }
}
