//! Money: a decimal amount and an ISO 4217 currency. Never a float.
//!
//! Amounts are written as strings everywhere (`"45.00"` in JSON, `"45.00 USD"` in
//! policies) so no value ever passes through binary floating point.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The largest amount Countersign accepts in a single value (a sanity bound
/// against overflow and typos, far above any support-desk operation).
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// A three-letter upper-case ISO 4217 code.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

impl Currency {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Minor units (decimal places) allowed in amounts of this currency.
    pub fn minor_units(&self) -> u32 {
        match self.0.as_str() {
            "JPY" | "KRW" | "VND" | "CLP" | "ISK" => 0,
            "BHD" | "KWD" | "OMR" | "JOD" | "TND" => 3,
            _ => 2,
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Self, MoneyError> {
        if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Currency(s))
        } else {
            Err(MoneyError::BadCurrency(s))
        }
    }
}

impl From<Currency> for String {
    fn from(c: Currency) -> String {
        c.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a value is not acceptable money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("currency must be a three-letter upper-case ISO 4217 code, got {0:?}")]
    BadCurrency(String),
    #[error("amount must be a decimal string such as \"45.00\", got {0}")]
    NotAString(String),
    #[error("amount {0:?} is not a decimal number")]
    NotDecimal(String),
    #[error("amount {0} must be greater than zero")]
    NotPositive(String),
    #[error("amount {0} is above the maximum accepted ({MAX_AMOUNT})")]
    TooLarge(String),
    #[error("amount {amount} has more decimal places than {currency} allows ({allowed})")]
    TooPrecise { amount: String, currency: String, allowed: u32 },
    #[error("money must be an object {{\"amount\": \"45.00\", \"currency\": \"USD\"}} or a string \"45.00 USD\"")]
    BadShape,
}

/// A positive amount of a currency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Money {
    /// Decimal string, e.g. `"45.00"`.
    #[schemars(with = "String")]
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub amount: Decimal,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    pub currency: Currency,
}

impl Money {
    /// Build and check a positive, bounded amount with the currency's precision.
    pub fn new(amount: Decimal, currency: Currency) -> Result<Money, MoneyError> {
        if amount <= Decimal::ZERO {
            return Err(MoneyError::NotPositive(amount.to_string()));
        }
        if amount > MAX_AMOUNT {
            return Err(MoneyError::TooLarge(amount.to_string()));
        }
        if amount.normalize().scale() > currency.minor_units() {
            return Err(MoneyError::TooPrecise {
                amount: amount.to_string(),
                currency: currency.0.clone(),
                allowed: currency.minor_units(),
            });
        }
        Ok(Money { amount, currency })
    }

    /// Parse untrusted JSON: `{"amount": "45.00", "currency": "USD"}` or `"45.00 USD"`.
    /// JSON numbers are refused: they would have passed through a float.
    pub fn from_json(v: &serde_json::Value) -> Result<Money, MoneyError> {
        match v {
            serde_json::Value::String(s) => s.parse(),
            serde_json::Value::Object(map) => {
                if map.len() != 2 {
                    return Err(MoneyError::BadShape);
                }
                let amount = match map.get("amount") {
                    Some(serde_json::Value::String(s)) => parse_amount(s)?,
                    Some(other) => return Err(MoneyError::NotAString(other.to_string())),
                    None => return Err(MoneyError::BadShape),
                };
                let currency = match map.get("currency") {
                    Some(serde_json::Value::String(s)) => Currency::try_from(s.clone())?,
                    Some(other) => return Err(MoneyError::BadCurrency(other.to_string())),
                    None => return Err(MoneyError::BadShape),
                };
                Money::new(amount, currency)
            }
            serde_json::Value::Number(n) => Err(MoneyError::NotAString(n.to_string())),
            _ => Err(MoneyError::BadShape),
        }
    }
}

fn parse_amount(s: &str) -> Result<Decimal, MoneyError> {
    let t = s.trim();
    // Only plain decimal notation: digits, one optional dot, optional leading minus
    // (so that negatives get the precise "must be greater than zero" error).
    let body = t.strip_prefix('-').unwrap_or(t);
    let valid = !body.is_empty()
        && body.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && body.bytes().filter(|b| *b == b'.').count() <= 1
        && body.bytes().any(|b| b.is_ascii_digit())
        && body.len() <= 32;
    if !valid {
        return Err(MoneyError::NotDecimal(s.to_string()));
    }
    Decimal::from_str(t).map_err(|_| MoneyError::NotDecimal(s.to_string()))
}

impl FromStr for Money {
    type Err = MoneyError;
    /// `"45.00 USD"`.
    fn from_str(s: &str) -> Result<Money, MoneyError> {
        let mut parts = s.split_whitespace();
        let (Some(amount), Some(currency), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(MoneyError::BadShape);
        };
        Money::new(parse_amount(amount)?, Currency::try_from(currency.to_string())?)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!(Money::from_str("45.00 USD").map(|m| m.to_string()), Ok("45.00 USD".into()));
        assert!(matches!("-5 USD".parse::<Money>(), Err(MoneyError::NotPositive(_))));
        assert!(matches!("NaN USD".parse::<Money>(), Err(MoneyError::NotDecimal(_))));
        assert!(matches!("1e3 USD".parse::<Money>(), Err(MoneyError::NotDecimal(_))));
        assert!(matches!("5.001 USD".parse::<Money>(), Err(MoneyError::TooPrecise { .. })));
        assert!(matches!("5 usd".parse::<Money>(), Err(MoneyError::BadCurrency(_))));
        assert!(matches!(
            Money::from_json(&serde_json::json!({"amount": 45.0, "currency": "USD"})),
            Err(MoneyError::NotAString(_))
        ));
        assert!(matches!(Money::from_json(&serde_json::json!("99999999999999 USD")), Err(MoneyError::TooLarge(_))));
    }
}
