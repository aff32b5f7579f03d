//! Plan validation: a plan is untrusted input.
//!
//! Structure is checked by deserialisation (unknown fields are rejected). Here we
//! check what the types cannot: unique step ids, the plan belongs to the case, and
//! each step's parameters against its action's schema in the policy. A parameter
//! outside the schema is an error, never silently dropped.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::model::{Case, Plan, Step};
use crate::money::Money;
use crate::policy::{ActionDef, ParamSpec, ParamType, Policy};

/// A plan that cannot be decided at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plan {plan} is for case {plan_case}, not case {case}")]
    CaseMismatch { plan: String, plan_case: String, case: String },
    #[error("step id {0:?} appears more than once in the plan")]
    DuplicateStepId(String),
    #[error("plan has {0} steps; at most {MAX_STEPS} are accepted")]
    TooManySteps(usize),
    #[error("{field} must not be empty")]
    Empty { field: &'static str },
}

/// A plan may not propose more steps than this.
pub const MAX_STEPS: usize = 50;

/// Check the plan as a whole.
pub fn check_plan(case: &Case, plan: &Plan) -> Result<(), PlanError> {
    if plan.id.trim().is_empty() {
        return Err(PlanError::Empty { field: "plan id" });
    }
    if plan.intent.trim().is_empty() {
        return Err(PlanError::Empty { field: "plan intent" });
    }
    if plan.case_id != case.id {
        return Err(PlanError::CaseMismatch {
            plan: plan.id.clone(),
            plan_case: plan.case_id.clone(),
            case: case.id.clone(),
        });
    }
    if plan.steps.len() > MAX_STEPS {
        return Err(PlanError::TooManySteps(plan.steps.len()));
    }
    let mut seen = BTreeSet::new();
    for s in &plan.steps {
        if s.id.trim().is_empty() {
            return Err(PlanError::Empty { field: "step id" });
        }
        if !seen.insert(s.id.as_str()) {
            return Err(PlanError::DuplicateStepId(s.id.clone()));
        }
    }
    Ok(())
}

/// What is wrong with one step's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamIssue {
    Unknown(String),
    Missing(String),
    Invalid { name: String, problem: String },
}

impl ParamIssue {
    pub fn rule_id(&self) -> &'static str {
        match self {
            ParamIssue::Unknown(_) => "validate.unknown-param",
            ParamIssue::Missing(_) => "validate.missing-param",
            ParamIssue::Invalid { .. } => "validate.bad-param",
        }
    }
}

impl std::fmt::Display for ParamIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParamIssue::Unknown(n) => write!(f, "parameter {n:?} is not in the action's schema; rejected, not ignored"),
            ParamIssue::Missing(n) => write!(f, "required parameter {n:?} is missing"),
            ParamIssue::Invalid { name, problem } => write!(f, "parameter {name:?}: {problem}"),
        }
    }
}

/// Check a step's parameters against its action. Returns every issue found and,
/// when the action has a money parameter that is valid, its value.
pub fn check_params(policy: &Policy, def: &ActionDef, step: &Step) -> (Vec<ParamIssue>, Option<Money>) {
    let mut issues = Vec::new();
    let mut money = None;
    for name in step.params.keys() {
        if !def.params.contains_key(name) {
            issues.push(ParamIssue::Unknown(name.clone()));
        }
    }
    for (name, spec) in &def.params {
        match step.params.get(name) {
            None if spec.required => issues.push(ParamIssue::Missing(name.clone())),
            None => {}
            // Null is no value: an optional parameter left empty, a required one missing.
            Some(p) if p.value.is_null() && spec.required => issues.push(ParamIssue::Invalid {
                name: name.clone(),
                problem: "is null, but the action requires a value".into(),
            }),
            Some(p) if p.value.is_null() => {}
            Some(p) => match check_value(policy, spec, &p.value) {
                Ok(Some(m)) => money = Some(m),
                Ok(None) => {}
                Err(problem) => issues.push(ParamIssue::Invalid { name: name.clone(), problem }),
            },
        }
    }
    (issues, money)
}

fn check_value(policy: &Policy, spec: &ParamSpec, v: &Value) -> Result<Option<Money>, String> {
    let text = |v: &Value| -> Result<String, String> {
        let s = v.as_str().ok_or_else(|| format!("expected a string, got {}", kind_of(v)))?;
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        if s.chars().count() > spec.max_len {
            return Err(format!("longer than {} characters", spec.max_len));
        }
        if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err("contains control characters".into());
        }
        Ok(s.to_string())
    };
    let id = |v: &Value| -> Result<String, String> {
        let s = text(v)?;
        let ok =
            s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '#' | '_' | '-' | '.' | ':'));
        if ok { Ok(s) } else { Err(format!("{s:?} is not a valid identifier")) }
    };
    match spec.ty {
        ParamType::Text | ParamType::Name => text(v).map(|_| None),
        ParamType::Enum => {
            let s = text(v)?;
            if spec.values.contains(&s) { Ok(None) } else { Err(format!("{s:?} is not one of {:?}", spec.values)) }
        }
        ParamType::OrderId
        | ParamType::CustomerId
        | ParamType::ProductId
        | ParamType::ItemId
        | ParamType::PaymentMethodId => id(v).map(|_| None),
        ParamType::Zip => {
            let s = text(v)?;
            if s.len() <= 10 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ' ') {
                Ok(None)
            } else {
                Err(format!("{s:?} is not a postal code"))
            }
        }
        ParamType::ItemIds => {
            let list = v.as_array().ok_or_else(|| format!("expected a list of item ids, got {}", kind_of(v)))?;
            if list.is_empty() || list.len() > 50 {
                return Err("expects between 1 and 50 item ids".into());
            }
            for item in list {
                id(item)?;
            }
            Ok(None)
        }
        ParamType::Email => {
            let s = text(v)?;
            let ok = s.len() <= 254
                && !s.chars().any(char::is_whitespace)
                && s.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty()
                        && domain.contains('.')
                        && !domain.contains('@')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                });
            if ok { Ok(None) } else { Err(format!("{s:?} is not an email address")) }
        }
        ParamType::Address => {
            let obj = v.as_object().ok_or_else(|| format!("expected an address object, got {}", kind_of(v)))?;
            const FIELDS: [&str; 6] = ["address1", "address2", "city", "state", "zip", "country"];
            for k in obj.keys() {
                if !FIELDS.contains(&k.as_str()) {
                    return Err(format!("address field {k:?} is not one of {FIELDS:?}"));
                }
            }
            for k in FIELDS {
                match obj.get(k) {
                    Some(Value::String(s)) if s.chars().count() <= 128 && !s.chars().any(char::is_control) => {}
                    Some(Value::String(_)) => {
                        return Err(format!("address field {k:?} is too long or has control characters"));
                    }
                    // An optional field left out or null is empty.
                    None | Some(Value::Null) if k == OPTIONAL_ADDRESS_FIELD => {}
                    Some(Value::Null) => return Err(format!("address field {k:?} is null, but it is required")),
                    None => return Err(format!("address field {k:?} is missing")),
                    Some(other) => {
                        return Err(format!("address field {k:?} must be a string, got {}", kind_of(other)));
                    }
                }
            }
            Ok(None)
        }
        ParamType::Bool => {
            if v.is_boolean() {
                Ok(None)
            } else {
                Err(format!("expected true or false, got {}", kind_of(v)))
            }
        }
        ParamType::Money => {
            let m = Money::from_json(v).map_err(|e| e.to_string())?;
            if !policy.currencies.contains(&m.currency) {
                return Err(format!("currency {} is not accepted by this policy", m.currency));
            }
            Ok(Some(m))
        }
    }
}

/// The one address field that may be left empty.
const OPTIONAL_ADDRESS_FIELD: &str = "address2";

/// A plan with its null values made empty, as a platform must receive them: an optional
/// parameter whose value is null is left out, and so is an optional address field that is
/// null. A required parameter (or address field) that is null stays, for
/// [`check_params`] to refuse with a clear reason. Plans from outside the engine (a plan
/// file, a model's answer) go through this before they are decided.
pub fn without_nulls(policy: &Policy, plan: &Plan) -> Plan {
    let mut plan = plan.clone();
    for step in &mut plan.steps {
        let Some(def) = policy.actions.get(&step.action) else { continue };
        step.params.retain(|name, p| !(p.value.is_null() && def.params.get(name).is_some_and(|s| !s.required)));
        for (name, p) in &mut step.params {
            if def.params.get(name).is_some_and(|s| s.ty == ParamType::Address)
                && let Value::Object(fields) = &mut p.value
                && fields.get(OPTIONAL_ADDRESS_FIELD).is_some_and(Value::is_null)
            {
                fields.remove(OPTIONAL_ADDRESS_FIELD);
            }
        }
    }
    plan
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
