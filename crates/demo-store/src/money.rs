//! US-dollar amounts. Never a float: amounts are parsed from their exact decimal text and
//! written as strings with two decimals (`"47.84"`).

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, Neg, Sub};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// The only currency this store trades in.
pub const CURRENCY: &str = "USD";

/// The largest amount the store accepts in one request (a sanity bound against typos and
/// overflow, far above any order in the data).
const MAX_INPUT: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// An amount of US dollars with at most two decimals; may be negative (a price difference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Usd(Decimal);

/// Why a text is not an acceptable amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("`{0}` is not a decimal number")]
    NotDecimal(String),
    #[error("`{0}` has more than two decimals (cents are the smallest unit)")]
    TooPrecise(String),
    #[error("amount must be a decimal string such as \"12.50\"")]
    WrongType,
    #[error("amount must be greater than zero")]
    NotPositive,
    #[error("amount {0} is above the store's limit of {MAX_INPUT}")]
    TooLarge(String),
}

impl Usd {
    pub const ZERO: Usd = Usd(Decimal::ZERO);

    /// Parses `"47.84"`, `"51"` or `"-5.2"`; rejects exponents, blanks and sub-cent digits.
    pub fn parse(text: &str) -> Result<Usd, AmountError> {
        let trimmed = text.trim();
        let value = Decimal::from_str_exact(trimmed).map_err(|_| AmountError::NotDecimal(trimmed.to_owned()))?;
        if value.normalize().scale() > 2 {
            return Err(AmountError::TooPrecise(trimmed.to_owned()));
        }
        let mut value = value;
        value.rescale(2);
        Ok(Usd(value))
    }

    /// Reads an amount from its raw JSON form: a string (`"12.50"`) or a JSON number
    /// (`12.5`), taken digit for digit from the request text.
    pub fn from_json(raw: &RawValue) -> Result<Usd, AmountError> {
        let text = raw.get().trim();
        if let Some(inner) = text.strip_prefix('"') {
            let inner = inner.strip_suffix('"').ok_or(AmountError::WrongType)?;
            if inner.contains('\\') {
                return Err(AmountError::NotDecimal(inner.to_owned()));
            }
            return Usd::parse(inner);
        }
        if text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Usd::parse(text);
        }
        Err(AmountError::WrongType)
    }

    /// A request amount: positive and within the store's sanity bound.
    pub fn positive_input(raw: &RawValue) -> Result<Usd, AmountError> {
        let amount = Usd::from_json(raw)?;
        if amount.0 <= Decimal::ZERO {
            return Err(AmountError::NotPositive);
        }
        if amount.0 > MAX_INPUT {
            return Err(AmountError::TooLarge(amount.to_string()));
        }
        Ok(amount)
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    pub fn is_positive(self) -> bool {
        self.0 > Decimal::ZERO
    }

    pub fn abs(self) -> Usd {
        Usd(self.0.abs())
    }
}

impl fmt::Display for Usd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut value = self.0;
        value.rescale(2);
        write!(f, "{value}")
    }
}

impl FromStr for Usd {
    type Err = AmountError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Usd::parse(s)
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        Usd(self.0 + rhs.0)
    }
}

impl Sub for Usd {
    type Output = Usd;
    fn sub(self, rhs: Usd) -> Usd {
        Usd(self.0 - rhs.0)
    }
}

impl Neg for Usd {
    type Output = Usd;
    fn neg(self) -> Usd {
        Usd(-self.0)
    }
}

impl Sum for Usd {
    fn sum<I: Iterator<Item = Usd>>(iter: I) -> Usd {
        iter.fold(Usd::ZERO, Add::add)
    }
}

impl Serialize for Usd {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Stored documents and seed files: a string (`"47.84"`) or the raw text of a JSON number.
impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <Box<RawValue>>::deserialize(deserializer)?;
        Usd::from_json(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn amounts_keep_every_digit_and_print_two_decimals() {
        let cases = [
            ("47.84", "47.84"),
            ("\"47.84\"", "47.84"),
            ("51", "51.00"),
            ("\"-5.2\"", "-5.20"),
            ("0.1", "0.10"),
            ("\"12.500\"", "12.50"),
        ];
        for (input, shown) in cases {
            assert_eq!(Usd::from_json(&raw(input)).unwrap().to_string(), shown, "{input}");
        }
        let sum: Usd = ["0.1", "0.2"].iter().map(|t| Usd::parse(t).unwrap()).sum();
        assert_eq!(sum.to_string(), "0.30", "no binary-float drift");
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        let cases = [
            ("1e3", AmountError::NotDecimal("1e3".into())),
            ("\"12.345\"", AmountError::TooPrecise("12.345".into())),
            ("\"ten\"", AmountError::NotDecimal("ten".into())),
            ("true", AmountError::WrongType),
            ("null", AmountError::WrongType),
            ("\"0\"", AmountError::NotPositive),
            ("\"-3\"", AmountError::NotPositive),
            ("\"1000000.01\"", AmountError::TooLarge("1000000.01".into())),
        ];
        for (input, expected) in cases {
            assert_eq!(Usd::positive_input(&raw(input)), Err(expected), "{input}");
        }
    }
}
