//! A call's parameters against an action's: text patterns and lengths, money as decimal
//! text (never a number), objects with known fields; no control characters anywhere.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{PageAction, ParamKind};

impl PageAction {
    /// Every problem with `params`, or none.
    pub fn check_params(&self, params: &Map<String, Value>) -> Vec<String> {
        let mut errors = Vec::new();
        for key in params.keys() {
            if !self.params.contains_key(key) {
                errors.push(format!("{}: unknown parameter {key:?}", self.name));
            }
        }
        for (name, spec) in &self.params {
            let Some(v) = params.get(name).filter(|v| !v.is_null()) else {
                if spec.required {
                    errors.push(format!("{}: missing parameter {name:?}", self.name));
                }
                continue;
            };
            if let Err(e) = check_param(name, &spec.kind, v) {
                errors.push(format!("{}: {e}", self.name));
            }
        }
        errors
    }
}

fn check_param(name: &str, kind: &ParamKind, v: &Value) -> Result<(), String> {
    match kind {
        ParamKind::Text { pattern, one_of, max_len } => {
            let s = v.as_str().ok_or_else(|| format!("{name} must be text"))?;
            if s.chars().any(char::is_control) {
                return Err(format!("{name} must not contain control characters"));
            }
            if let Some(p) = pattern
                && !p.is_match(s)
            {
                return Err(format!("{name} = {s:?} does not match {}", p.as_str()));
            }
            if let Some(list) = one_of
                && !list.iter().any(|x| x == s)
            {
                return Err(format!("{name} must be one of {list:?}"));
            }
            if let Some(max) = max_len
                && s.chars().count() > *max
            {
                return Err(format!("{name} is longer than {max} characters"));
            }
            Ok(())
        }
        ParamKind::Money { currency } => {
            let (amount, cur) = match v {
                Value::String(s) => s.split_once(' ').ok_or_else(|| format!("{name} must be \"AMOUNT CURRENCY\""))?,
                Value::Object(o) => (
                    o.get("amount").and_then(Value::as_str).ok_or_else(|| format!("{name}.amount must be a string"))?,
                    o.get("currency")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{name}.currency must be a string"))?,
                ),
                _ => return Err(format!("{name} is money: \"10.50 USD\" or {{amount, currency}}, never a number")),
            };
            let d = Decimal::from_str(amount).map_err(|_| format!("{name}: {amount:?} is not a decimal amount"))?;
            if d.is_sign_negative() || d.is_zero() || amount.contains(['e', 'E']) {
                return Err(format!("{name} must be a positive decimal"));
            }
            if let Some(c) = currency
                && c != cur
            {
                return Err(format!("{name} must be in {c}, not {cur}"));
            }
            Ok(())
        }
        ParamKind::Object { fields } => {
            let o = v.as_object().ok_or_else(|| format!("{name} must be an object"))?;
            for (k, x) in o {
                if !fields.contains(k) {
                    return Err(format!("{name} has no field {k:?}"));
                }
                let s = x.as_str().ok_or_else(|| format!("{name}.{k} must be text"))?;
                if s.chars().any(char::is_control) {
                    return Err(format!("{name}.{k} must not contain control characters"));
                }
            }
            Ok(())
        }
    }
}
