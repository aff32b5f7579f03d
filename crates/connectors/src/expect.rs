//! The connector contract: what a platform's state must show after a write, written once
//! and checked the same way by every connector that writes.
//!
//! A write's description (an HTTP catalog entry, a page action) names a state read and a
//! list of [`Expectation`]s on what that read returns after the write. The executor reads
//! the state before and after and asks the connector ([`crate::Connector::check_expectation`]);
//! each connector answers with [`check_write`] over its own expectations, so an HTTP write
//! and a page write that expect the same thing are held to the same test:
//!
//! - a value is addressed by a JSON Pointer (RFC 6901) into the state read's answer (a
//!   page's read fields are a flat object: field `status` is `/status`, see [`field_pointer`]);
//! - money is compared as decimals, never floats: amounts are decimal *strings*, a JSON
//!   number where an amount is expected is an unmet expectation, and a money parameter
//!   (`"10.50 USD"` or `{amount, currency}`) counts by its amount;
//! - an expectation about a parameter the call did not carry is unmet, never vacuously met.
//!
//! To add a kind of check: a variant of [`Check`], its arm in [`check_one`] and in
//! `Display`, the key in both files' parsers (catalog `raw.rs`, the browser's `config`),
//! the docs of both formats, and a row in the table test below.

use std::fmt;
use std::str::FromStr;

use countersign_core::money::Money;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

/// What one check of an expectation compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The after-value equals this JSON value.
    Equals(Value),
    /// The after-value equals the parameter's value.
    EqualsParam(String),
    /// The after-value is an object holding every field of the (object) parameter, equal.
    IncludesParam(String),
    /// after − before equals the parameter's amount (decimal strings, never floats).
    IncreasedByParam(String),
    /// The after-value differs from the before-value.
    Changed,
    /// A list that is this many elements longer after than before.
    GrewBy(u64),
}

/// A check on the state read after a write: `check` applies at `path`, a JSON Pointer
/// (RFC 6901) into the state read's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub path: String,
    pub check: Check,
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.check {
            Check::Equals(v) => write!(f, "{} equals {v}", self.path),
            Check::EqualsParam(p) => write!(f, "{} equals parameter {p}", self.path),
            Check::IncludesParam(p) => write!(f, "{} includes parameter {p}", self.path),
            Check::IncreasedByParam(p) => write!(f, "{} increased by parameter {p}", self.path),
            Check::Changed => write!(f, "{} changed", self.path),
            Check::GrewBy(n) => write!(f, "{} grew by {n}", self.path),
        }
    }
}

/// Why a write's after-state does not show what the connector's description expects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ExpectationError {
    #[error("{action:?} is not a write in the catalog")]
    NotAWrite { action: String },
    #[error("the object's state {when} the write is missing: it must be read before and after")]
    MissingState { when: String },
    #[error("expected {expected}, found {found}")]
    Unmet { expected: String, found: String },
    #[error("this connector cannot check expectations: {what}")]
    Unsupported { what: String },
}

/// The JSON Pointer of a top-level field (`status` → `/status`; `~` and `/` escaped).
pub fn field_pointer(field: &str) -> String {
    format!("/{}", field.replace('~', "~0").replace('/', "~1"))
}

/// Does the after-state of `action` show everything `expect` asks? `expect` is `None`
/// when the connector's description has no such write (unknown, or a read).
pub fn check_write(
    action: &str,
    expect: Option<&[Expectation]>,
    params: &Map<String, Value>,
    before: Option<&Value>,
    after: Option<&Value>,
) -> Result<(), ExpectationError> {
    let expect = expect.ok_or_else(|| ExpectationError::NotAWrite { action: action.to_string() })?;
    let after = after.ok_or_else(|| ExpectationError::MissingState { when: "after".into() })?;
    for e in expect {
        check_one(e, params, before, after)?;
    }
    Ok(())
}

fn describe(v: Option<&Value>) -> String {
    match v {
        None => "nothing (absent)".into(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 200 { format!("{}…", text.chars().take(200).collect::<String>()) } else { text }
        }
    }
}

fn decimal_at(v: Option<&Value>, what: &str) -> Result<Decimal, String> {
    match v {
        Some(Value::String(s)) => Decimal::from_str(s.trim()).map_err(|_| format!("{what} {s:?} is not a decimal")),
        Some(Value::Number(n)) => Err(format!("{what} is the JSON number {n}: amounts must be decimal strings")),
        other => Err(format!("{what} is {}", describe(other))),
    }
}

fn param_amount(v: &Value) -> Result<Decimal, String> {
    if let Ok(m) = Money::from_json(v) {
        return Ok(m.amount);
    }
    decimal_at(Some(v), "the parameter")
}

/// One expectation against the state before and after.
pub fn check_one(
    e: &Expectation,
    params: &Map<String, Value>,
    before: Option<&Value>,
    after: &Value,
) -> Result<(), ExpectationError> {
    let now = after.pointer(&e.path);
    let unmet = |found: String| Err(ExpectationError::Unmet { expected: e.to_string(), found });
    let param = |name: &String| {
        params
            .get(name)
            .ok_or_else(|| ExpectationError::Unmet { expected: e.to_string(), found: format!("no parameter {name}") })
    };
    let before_at =
        || before.map(|b| b.pointer(&e.path)).ok_or_else(|| ExpectationError::MissingState { when: "before".into() });
    match &e.check {
        Check::Equals(v) => {
            if now != Some(v) {
                return unmet(describe(now));
            }
        }
        Check::EqualsParam(name) => {
            if now != Some(param(name)?) {
                return unmet(describe(now));
            }
        }
        Check::IncludesParam(name) => {
            let wanted = param(name)?.as_object();
            let ok = match (wanted, now.and_then(Value::as_object)) {
                (Some(w), Some(have)) => w.iter().all(|(k, v)| have.get(k) == Some(v)),
                _ => false,
            };
            if !ok {
                return unmet(describe(now));
            }
        }
        Check::IncreasedByParam(name) => {
            let was = before_at()?;
            let by = param_amount(param(name)?)
                .map_err(|found| ExpectationError::Unmet { expected: e.to_string(), found })?;
            let delta = decimal_at(was, "before").and_then(|b| decimal_at(now, "after").map(|a| a - b));
            match delta {
                Ok(d) if d == by => {}
                Ok(d) => return unmet(format!("an increase of {d}")),
                Err(found) => return unmet(found),
            }
        }
        Check::Changed => {
            if before_at()? == now {
                return unmet(format!("unchanged: {}", describe(now)));
            }
        }
        Check::GrewBy(n) => {
            let len = |v: Option<&Value>| v.and_then(Value::as_array).map(Vec::len);
            match (len(before_at()?), len(now)) {
                (Some(b), Some(a)) if a.checked_sub(b) == usize::try_from(*n).ok() => {}
                (Some(b), Some(a)) => return unmet(format!("{b} elements before, {a} after")),
                _ => return unmet(format!("not a list: {}", describe(now))),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn at(path: &str, check: Check) -> Expectation {
        Expectation { path: path.into(), check }
    }

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    /// One row: an expectation, the call's parameters, the state before and after, and
    /// `Ok(())` or the `found` part of the unmet message.
    struct Row {
        why: &'static str,
        expect: Expectation,
        params: Value,
        before: Option<Value>,
        after: Value,
        want: Result<(), &'static str>,
    }

    #[test]
    fn each_check_is_met_unmet_or_refused_for_a_missing_or_mistyped_value() {
        let cancelled = json!({ "status": "cancelled" });
        let pending = json!({ "status": "pending" });
        let rows: Vec<Row> = [
            // equals
            (
                at("/status", Check::Equals(json!("cancelled"))),
                vec![
                    ("met", json!({}), None, cancelled.clone(), Ok(())),
                    ("not met", json!({}), None, pending.clone(), Err("\"pending\"")),
                    ("missing field", json!({}), None, json!({}), Err("nothing (absent)")),
                ],
            ),
            (
                at("/count", Check::Equals(json!("1"))),
                vec![(
                    "wrong type: the number 1 is not the text \"1\"",
                    json!({}),
                    None,
                    json!({ "count": 1 }),
                    Err("1"),
                )],
            ),
            (
                at("/order/status", Check::Equals(json!("cancelled"))),
                vec![("nested pointer", json!({}), None, json!({ "order": { "status": "cancelled" } }), Ok(()))],
            ),
            // equals_param
            (
                at("/reason", Check::EqualsParam("reason".into())),
                vec![
                    (
                        "met",
                        json!({ "reason": "no longer needed" }),
                        None,
                        json!({ "reason": "no longer needed" }),
                        Ok(()),
                    ),
                    (
                        "not met",
                        json!({ "reason": "ordered by mistake" }),
                        None,
                        json!({ "reason": "no longer needed" }),
                        Err("\"no longer needed\""),
                    ),
                    (
                        "a parameter the call did not carry is never vacuously met",
                        json!({}),
                        None,
                        json!({}),
                        Err("no parameter reason"),
                    ),
                ],
            ),
            // includes_param
            (
                at("/address", Check::IncludesParam("address".into())),
                vec![
                    (
                        "met: every field of the parameter, others allowed",
                        json!({ "address": { "city": "Austin", "zip": "78701" } }),
                        None,
                        json!({ "address": { "city": "Austin", "zip": "78701", "country": "USA" } }),
                        Ok(()),
                    ),
                    (
                        "not met",
                        json!({ "address": { "city": "Austin" } }),
                        None,
                        json!({ "address": { "city": "Dallas" } }),
                        Err("{\"city\":\"Dallas\"}"),
                    ),
                    (
                        "wrong type: text where an object is expected",
                        json!({ "address": { "city": "Austin" } }),
                        None,
                        json!({ "address": "Austin" }),
                        Err("\"Austin\""),
                    ),
                ],
            ),
            // increased_by_param: decimals, never floats
            (
                at("/refunded", Check::IncreasedByParam("amount".into())),
                vec![
                    (
                        "met, money as text",
                        json!({ "amount": "10.50 USD" }),
                        Some(json!({ "refunded": "0.00" })),
                        json!({ "refunded": "10.50" }),
                        Ok(()),
                    ),
                    (
                        "met, money as an object",
                        json!({ "amount": { "amount": "0.10", "currency": "USD" } }),
                        Some(json!({ "refunded": "0.20" })),
                        json!({ "refunded": "0.30" }),
                        Ok(()),
                    ),
                    (
                        "met, a plain decimal parameter",
                        json!({ "amount": "5" }),
                        Some(json!({ "refunded": "1.00" })),
                        json!({ "refunded": "6.00" }),
                        Ok(()),
                    ),
                    (
                        "not met",
                        json!({ "amount": "10.50 USD" }),
                        Some(json!({ "refunded": "10.50" })),
                        json!({ "refunded": "10.50" }),
                        Err("an increase of 0.00"),
                    ),
                    (
                        "missing field after",
                        json!({ "amount": "10.50 USD" }),
                        Some(json!({ "refunded": "0.00" })),
                        json!({}),
                        Err("after is nothing (absent)"),
                    ),
                    (
                        "wrong type: a JSON number is never an amount",
                        json!({ "amount": "10.50 USD" }),
                        Some(json!({ "refunded": "0.00" })),
                        json!({ "refunded": 10.5 }),
                        Err("after is the JSON number 10.5: amounts must be decimal strings"),
                    ),
                    (
                        "wrong type: a number parameter is no amount either",
                        json!({ "amount": 10.5 }),
                        Some(json!({ "refunded": "0.00" })),
                        json!({ "refunded": "10.50" }),
                        Err("the parameter is the JSON number 10.5: amounts must be decimal strings"),
                    ),
                    (
                        "not a decimal",
                        json!({ "amount": "10.50 USD" }),
                        Some(json!({ "refunded": "0.00" })),
                        json!({ "refunded": "ten" }),
                        Err("after \"ten\" is not a decimal"),
                    ),
                ],
            ),
            // changed
            (
                at("/status", Check::Changed),
                vec![
                    ("met", json!({}), Some(pending.clone()), cancelled.clone(), Ok(())),
                    ("not met", json!({}), Some(pending.clone()), pending.clone(), Err("unchanged: \"pending\"")),
                    (
                        "absent before and after is unchanged",
                        json!({}),
                        Some(json!({})),
                        json!({}),
                        Err("unchanged: nothing (absent)"),
                    ),
                ],
            ),
            // grew_by
            (
                at("/items", Check::GrewBy(1)),
                vec![
                    ("met", json!({}), Some(json!({ "items": [1] })), json!({ "items": [1, 2] }), Ok(())),
                    (
                        "not met",
                        json!({}),
                        Some(json!({ "items": [1] })),
                        json!({ "items": [1] }),
                        Err("1 elements before, 1 after"),
                    ),
                    (
                        "wrong type",
                        json!({}),
                        Some(json!({ "items": [1] })),
                        json!({ "items": "1, 2" }),
                        Err("not a list: \"1, 2\""),
                    ),
                ],
            ),
        ]
        .into_iter()
        .flat_map(|(expect, cases)| {
            cases.into_iter().map(move |(why, params, before, after, want)| Row {
                why,
                expect: expect.clone(),
                params,
                before,
                after,
                want,
            })
        })
        .collect();
        for r in rows {
            let got = check_one(&r.expect, &params(r.params), r.before.as_ref(), &r.after);
            match (got, r.want) {
                (Ok(()), Ok(())) => {}
                (Err(ExpectationError::Unmet { expected, found }), Err(want)) => {
                    assert_eq!(expected, r.expect.to_string(), "{}: the message names the expectation", r.why);
                    assert_eq!(found, want, "{} ({})", r.why, r.expect);
                }
                (got, want) => panic!("{} ({}): got {got:?}, wanted {want:?}", r.why, r.expect),
            }
        }
    }

    #[test]
    fn money_is_compared_as_decimals_not_floats() {
        // 0.1 + 0.2 != 0.3 in binary floating point; as decimals it is exact.
        let e = at("/refunded", Check::IncreasedByParam("amount".into()));
        let p = params(json!({ "amount": "0.2 USD" }));
        check_one(&e, &p, Some(&json!({ "refunded": "0.1" })), &json!({ "refunded": "0.3" })).unwrap();
        // Trailing zeros do not matter to a decimal.
        check_one(&e, &p, Some(&json!({ "refunded": "0.10" })), &json!({ "refunded": "0.300" })).unwrap();
    }

    #[test]
    fn checks_that_compare_with_before_need_the_before_state() {
        for check in [Check::Changed, Check::GrewBy(1), Check::IncreasedByParam("amount".into())] {
            let e = at("/x", check);
            let got = check_one(&e, &params(json!({ "amount": "1 USD" })), None, &json!({ "x": "1" }));
            assert_eq!(got, Err(ExpectationError::MissingState { when: "before".into() }), "{e}");
        }
    }

    #[test]
    fn a_write_is_checked_whole_and_only_a_write() {
        let expect = [
            at("/status", Check::Equals(json!("delivered"))),
            at("/refunded", Check::IncreasedByParam("amount".into())),
        ];
        let p = params(json!({ "amount": "5.00 USD" }));
        let before = json!({ "status": "delivered", "refunded": "0.00" });
        let after = json!({ "status": "delivered", "refunded": "5.00" });
        check_write("refund_partial", Some(&expect), &p, Some(&before), Some(&after)).unwrap();
        let second_unmet = check_write("refund_partial", Some(&expect), &p, Some(&before), Some(&before));
        assert!(matches!(second_unmet, Err(ExpectationError::Unmet { .. })), "{second_unmet:?}");
        assert_eq!(
            check_write("get_order", None, &p, Some(&before), Some(&after)),
            Err(ExpectationError::NotAWrite { action: "get_order".into() })
        );
        assert_eq!(
            check_write("refund_partial", Some(&expect), &p, Some(&before), None),
            Err(ExpectationError::MissingState { when: "after".into() })
        );
    }

    #[test]
    fn a_field_is_a_pointer_with_its_special_characters_escaped() {
        assert_eq!(field_pointer("status"), "/status");
        assert_eq!(field_pointer("a/b~c"), "/a~1b~0c");
        let e = at(&field_pointer("a/b"), Check::Equals(json!("x")));
        check_one(&e, &Map::new(), None, &json!({ "a/b": "x" })).unwrap();
    }
}
