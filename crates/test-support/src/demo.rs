//! The demo seller center on loopback for tests and benchmarks, and what they read of
//! its seed data.

use std::path::{Path, PathBuf};

use countersign_demo_store::{ApiToken, BackgroundServer};
use serde_json::Value;

use crate::packs::assets;

/// The demo seller center on loopback (the tau-retail seed in a temp SQLite file), on its
/// own thread, answering to `token`. Stops when dropped.
#[derive(Debug)]
pub struct DemoServer {
    pub server: BackgroundServer,
    _dir: tempfile::TempDir,
}

impl DemoServer {
    pub fn start(token: &str) -> DemoServer {
        let dir = tempfile::tempdir().unwrap();
        let server = start_in(dir.path(), token);
        DemoServer { server, _dir: dir }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// The demo seller center with its database in `dir` (`demo-store.sqlite3`), for a caller
/// that keeps other files there too.
pub fn start_in(dir: &Path, token: &str) -> BackgroundServer {
    BackgroundServer::start(dir.join("demo-store.sqlite3"), assets().join("demo-store"), ApiToken::new(token).unwrap())
        .unwrap()
}

/// Seed orders in `status` with their customer, in id order, that have had no refund
/// and were paid at least 100 (so small refunds are always within what is refundable).
pub fn seed_orders(status: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(assets().join("demo-store/orders.json")).unwrap();
    let orders: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    orders
        .iter()
        .filter(|(_, o)| o["status"] == status)
        .filter(|(_, o)| {
            let history = o["payment_history"].as_array().unwrap();
            history.iter().all(|t| t["transaction_type"] == "payment")
                && history.iter().any(|t| t["amount"].as_f64().unwrap() >= 100.0)
        })
        .map(|(id, o)| (id.clone(), o["user_id"].as_str().unwrap().to_string()))
        .collect()
}

/// `assets/demo/<file>`, a workspace file, with the paths it names made absolute so that it
/// works from any folder, but for those in `keep` (`policy.toml`, `../knowledge`): the
/// caller puts its own files there, beside the workspace file it writes.
pub fn demo_workspace(file: &str, keep: &[&str]) -> String {
    let demo = assets().join("demo");
    let paths: [(&str, PathBuf); 7] = [
        ("policy.toml", demo.join("policy.toml")),
        ("../knowledge", assets().join("knowledge")),
        ("cases", demo.join("cases")),
        ("catalog.toml", demo.join("catalog.toml")),
        ("playbooks.toml", demo.join("playbooks.toml")),
        ("pages.toml", demo.join("pages.toml")),
        ("../demo-store", assets().join("demo-store")),
    ];
    let text = std::fs::read_to_string(demo.join(file)).unwrap();
    paths
        .iter()
        .filter(|(relative, _)| !keep.contains(relative))
        .fold(text, |text, (relative, absolute)| text.replace(&format!("{relative:?}"), &format!("{absolute:?}")))
}

/// A case file (JSON) of a customer writing by email about an item that arrived damaged,
/// planned as `<case_id>-p`: one refund (`s1`) of `amount` USD on `order`, its values
/// from the platform and the policy.
pub fn refund_case_file(case_id: &str, customer: &str, order: &str, amount: &str) -> Value {
    serde_json::json!({
        "case": {
            "id": case_id, "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
            "channel": "email", "customer": {"id": customer, "identity": "verified"},
            "messages": [{"from": "customer", "text": "The item arrived damaged.", "at": "2026-11-21T09:00:00Z"}],
        },
        "plan": {"id": format!("{case_id}-p"), "case_id": case_id, "planner": "scripted", "intent": "refund",
            "steps": [{"id": "s1", "action": "refund_partial", "params": {
                "order_id": {"value": order, "source": "connector"},
                "amount": {"value": {"amount": amount, "currency": "USD"}, "source": "policy"},
                "reason": {"value": "damaged item", "source": "connector"},
            }}]},
    })
}
