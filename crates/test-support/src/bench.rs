//! What the benchmarks share: the step they time and how they summarise the times.

use std::time::Duration;

use serde_json::{Value, json};

/// A case file (JSON) for case `case_id` whose plan is one auto read step,
/// `get_order_details` of `order` for the order's owner `customer`.
pub fn one_read_step(case_id: &str, order: &str, customer: &str) -> Value {
    json!({
        "case": {
            "id": case_id, "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
            "channel": "email", "customer": {"id": customer, "identity": "verified"},
            "messages": [{"from": "customer", "text": "Where is my order?", "at": "2026-11-20T15:10:00Z"}],
        },
        "plan": {"id": format!("{case_id}-p"), "case_id": case_id, "planner": "scripted", "intent": "order_status",
                 "steps": [{"id": "s1", "action": "get_order_details",
                            "params": {"order_id": {"value": order, "source": "connector"}}}]},
    })
}

/// The `p`th percentile of `sorted` (ascending, not empty).
pub fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

/// A bench's setting from the environment variable `name`, or `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

/// A duration in milliseconds, for a bench's report.
#[allow(clippy::float_arithmetic, reason = "a figure for a report, never money")]
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
