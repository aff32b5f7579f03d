//! Policy simulation over a desk's log: `Engine::simulate` of a draft over N recorded steps,
//! read from the SQLite log, replayed and reported (what `countersign policy simulate` runs).
//!
//! `cargo bench -p countersign-engine --bench simulate` (`SIM_BENCH_STEPS`, default 100000)
//!
//! Set-up, not timed: a real engine on the demo snapshot workspace (the retail dataset on
//! disk) records plans of four steps — an order read, a partial refund, a goodwill coupon,
//! the order read again — on one case per dataset order (each customer verified once by an
//! agent's recorded check), round robin, so every case gathers a money history; the
//! operator switches between an agent and a team lead, and a pause on coupons is set and
//! cleared now and then. Then, timed, each three times: the policy in force (nothing
//! moves) and a draft with other refund limits (many steps move).
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_arithmetic)]

use std::sync::Arc;
use std::time::Instant;

use countersign_core::model::{Operator, PauseScope};
use countersign_engine::simulate::read_draft;
use countersign_engine::{CaseFile, Engine, EngineOptions, SystemClock};
use countersign_test_support::bench::env_usize;
use countersign_test_support::packs::assets;
use serde_json::{Value, json};

fn orders() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(assets().join("demo-store/orders.json")).unwrap();
    let all: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    all.into_iter().map(|(id, o)| (id, o["user_id"].as_str().unwrap().to_string())).collect()
}

fn money(amount: u64) -> Value {
    json!({"value": {"amount": format!("{amount}.00"), "currency": "USD"}, "source": "policy"})
}

fn plan(case_id: &str, n: usize, order: &str, customer: &str) -> CaseFile {
    let read = |id: &str| json!({"id": id, "action": "get_order_details", "params": {"order_id": {"value": order, "source": "connector"}}});
    serde_json::from_value(json!({
        "case": {
            "id": case_id, "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
            "channel": "email", "customer": {"id": customer, "identity": "verified"}, "order_ids": [order],
            "messages": [{"from": "customer", "text": "Two items arrived scratched.", "at": "2026-11-20T15:10:00Z"}],
        },
        "plan": {"id": format!("{case_id}-p{n}"), "case_id": case_id, "planner": "scripted", "intent": "refund", "steps": [
            read("s1"),
            {"id": "s2", "action": "refund_partial", "params": {
                "order_id": {"value": order, "source": "connector"},
                "amount": money(5 + (n as u64 * 7) % 40),
                "reason": {"value": "damaged item", "source": "connector"}}},
            {"id": "s3", "action": "create_goodwill_coupon", "params": {
                "customer_id": {"value": customer, "source": "connector"},
                "amount": money(3 + (n as u64 * 5) % 12),
                "reason": {"value": "late delivery", "source": "connector"}}},
            read("s4"),
        ]},
    }))
    .unwrap()
}

fn main() {
    let steps = env_usize("SIM_BENCH_STEPS", 100_000).max(40);
    let plans = steps / 4;
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::open(
        EngineOptions {
            workspace: assets().join("demo/workspace-snapshot.toml"),
            data_dir: dir.path().join("data"),
            operator: None,
            connector: None,
        },
        Arc::new(SystemClock),
    )
    .unwrap();
    let orders = orders();
    let cases = orders.len().min(plans);
    let started = Instant::now();
    let mut pause = None;
    for n in 0..plans {
        let (order, customer) = &orders[n % cases];
        let case_id = format!("c-{}", order.trim_start_matches('#'));
        if n < cases {
            engine.record_identity_check(&case_id, customer, "a one-time code sent to the account's phone").unwrap();
        }
        if n % 500 == 0 {
            let (id, role) = if (n / 500) % 2 == 0 { ("agent-1", "agent") } else { ("lead-1", "team_lead") };
            engine.set_operator(Operator { id: id.into(), role: role.into() }).unwrap();
        }
        if n % 1000 == 100 {
            pause = Some(engine.pause_set(PauseScope::Action, "create_goodwill_coupon", "coupon audit").unwrap().id);
        }
        if n % 1000 == 150
            && let Some(id) = pause.take()
        {
            engine.pause_clear(&id, "audit done").unwrap();
        }
        let file = plan(&case_id, n, order, customer);
        engine.process(&file.case, &file.plan).unwrap();
        if (n + 1) % 5000 == 0 {
            eprintln!("recorded {} plans ({} steps) in {:.0} s", n + 1, (n + 1) * 4, started.elapsed().as_secs_f64());
        }
    }
    let db = dir.path().join("data/evidence.sqlite");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "log: {plans} plans, {} steps, {cases} cases, recorded in {:.0} s; evidence.sqlite {:.0} MiB",
        plans * 4,
        started.elapsed().as_secs_f64(),
        size as f64 / (1024.0 * 1024.0)
    );

    let current = read_draft(&assets().join("demo/policy.toml")).unwrap();
    let text = std::fs::read_to_string(assets().join("demo/policy.toml")).unwrap();
    let draft_path = dir.path().join("draft.toml");
    std::fs::write(
        &draft_path,
        text.replace("amount_over = \"25.00 USD\"", "amount_over = \"15.00 USD\"")
            .replace("case_total_over = \"50.00 USD\"", "case_total_over = \"120.00 USD\""),
    )
    .unwrap();
    let draft = read_draft(&draft_path).unwrap();
    println!("{:<34} {:>9} {:>9} {:>9} {:>9}", "draft", "steps", "changed", "seconds", "steps/s");
    for (label, policy) in [("the policy in force", &current), ("other refund limits", &draft)] {
        for _ in 0..3 {
            let t = Instant::now();
            let s = engine.simulate(policy, None).unwrap();
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{label:<34} {:>9} {:>9} {:>9.2} {:>9.0}",
                s.report.steps,
                s.report.changed,
                secs,
                s.report.steps as f64 / secs
            );
        }
    }
}
