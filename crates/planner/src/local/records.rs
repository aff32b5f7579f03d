//! What the planner reads: platform records (orders, items) as the reads return them,
//! and the values a customer types (emails, name and zip, addresses).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use countersign_core::normalize::normalize;
use regex::Regex;
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// An order as the platform's order read shows it (only the fields the policy lets the
/// planner see).
#[derive(Debug, Clone)]
pub(super) struct Order {
    pub id: String,
    pub status: String,
    pub items: Vec<Item>,
    pub tracking: Vec<String>,
    pub payment_method: Option<String>,
}

#[derive(Debug, Clone)]
pub(super) struct Item {
    pub item_id: String,
    pub product_id: String,
    pub name: String,
    pub price: Option<Decimal>,
    pub options: BTreeMap<String, String>,
}

impl Order {
    pub(super) fn parse(value: Value) -> Option<Order> {
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

    /// Exactly `pending`: the only status in which an order may be cancelled or modified.
    /// An order in `pending (item modified)` is not (its one modification closed it).
    pub(super) fn pending(&self) -> bool {
        self.status == "pending"
    }
}

impl Item {
    pub(super) fn parse(v: &Value) -> Option<Item> {
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

pub(super) fn options(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

/// Does the customer's (normalised) text name this item? All the words of its name, or
/// its last word (the noun: "boots", "thermostat").
pub(super) fn names(text: &str, name: &str) -> bool {
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

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+").expect("email pattern")
});
pub(super) static NAME_ZIP: LazyLock<Regex> = LazyLock::new(|| {
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

pub(super) fn emails(text: &str) -> Vec<String> {
    EMAIL.find_iter(text).map(|m| m.as_str().trim_end_matches('.').to_string()).collect()
}

pub(super) fn address(text: &str) -> Option<Value> {
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
    fn only_a_pending_order_is_pending() {
        let order = |status: &str| Order::parse(serde_json::json!({"order_id": "#W1", "status": status})).unwrap();
        assert!(order("pending").pending());
        assert!(
            !order("pending (item modified)").pending(),
            "an order whose items were modified can no longer be cancelled or modified"
        );
        assert!(!order("processed").pending());
    }

    #[test]
    fn items_are_named_by_their_noun() {
        let text = normalize("boots are a size too small, need a 8 instead of 7");
        assert!(names(&text, "Hiking Boots"));
        assert!(!names(&text, "Water Bottle"));
    }
}
