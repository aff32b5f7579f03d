//! Case → plan → decisions with the local planner, over a generated knowledge base of
//! `PLAN_BENCH_ARTICLES` (default 10,000) articles plus the demo's 40 (the playbooks
//! quote those), with the demo seller center on loopback.
//!
//! `cargo bench -p countersign-engine --bench planning`
//!
//! Measures the index build when the workspace opens (`Engine::open`), then, for
//! `PLAN_BENCH_ROUNDS` (default 5) rounds over the 143 evaluation cases, the wall time of
//! `Engine::plan_case` (intents, knowledge searches, governed reads over HTTP, each read's
//! durable evidence) plus `Engine::decide_planned` (facts, policy), per case: p50, p90,
//! p99, max; the first round (searches not yet cached) is reported on its own. `PLAN_BENCH_DATA_DIR` puts the evidence store in another directory.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use countersign_planner::LocalPlanner;

mod kbgen;

fn assets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

/// `what: p50 …, p90 …, p99 …, max …` of `sorted`.
fn summary(what: &str, sorted: &[Duration]) {
    println!(
        "{what}: p50 {:.2?}, p90 {:.2?}, p99 {:.2?}, max {:.2?}",
        pct(sorted, 50),
        pct(sorted, 90),
        pct(sorted, 99),
        sorted[sorted.len() - 1]
    );
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it too: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let n = if quick { 100 } else { env_usize("PLAN_BENCH_ARTICLES", 10_000) };
    let rounds = if quick { 1 } else { env_usize("PLAN_BENCH_ROUNDS", 5).max(1) };

    let tmp = tempfile::TempDir::new().unwrap();
    let kb = tmp.path().join("knowledge");
    std::fs::create_dir(&kb).unwrap();
    kbgen::generate(&kb, n);
    for entry in std::fs::read_dir(assets().join("knowledge")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") && path.file_name().is_some_and(|f| f != "README.md") {
            std::fs::copy(&path, kb.join(path.file_name().unwrap())).unwrap();
        }
    }
    let demo = assets().join("demo");
    let workspace = tmp.path().join("workspace.toml");
    std::fs::write(
        &workspace,
        format!(
            "[workspace]\nid = \"bench\"\nname = \"bench\"\npolicy = {:?}\nknowledge = {:?}\ncases = {:?}\n\n\
             [connector]\nkind = \"demo_store\"\ncatalog = {:?}\nseed = {:?}\n\n\
             [operator]\nid = \"agent-bench\"\nrole = \"agent\"\n",
            demo.join("policy.toml"),
            kb,
            demo.join("cases"),
            demo.join("catalog.toml"),
            assets().join("demo-store"),
        ),
    )
    .unwrap();

    let t = Instant::now();
    // Opened as the faces open it: the host starts the demo seller center beside the engine.
    let root = countersign_host::DataRoot::named(tmp.path().join("data"));
    let options = countersign_host::Options { workspace, root, operator_id: None, role: None };
    let opened_workspace = countersign_host::open(options).unwrap();
    let engine = &opened_workspace.engine;
    let opened = t.elapsed();
    let report = engine.kb_open_report().clone();
    assert_eq!(report.failed, 0, "{:?}", report.errors.first());
    println!(
        "opened the workspace in {opened:.2?}: indexed {} articles in {} ms (demo store started, policy loaded)",
        report.articles, report.elapsed_ms
    );

    let cases = countersign_engine::eval::load_cases(&assets().join("eval/cases.jsonl")).unwrap();
    let planner = LocalPlanner::new();
    // The first round meets an empty search cache (every playbook query runs against the
    // index once); later rounds are the steady state.
    let mut cold = Vec::new();
    for c in &cases {
        let t = Instant::now();
        let planned = engine.plan_case(&c.case, &planner).unwrap();
        engine.decide_planned(&c.case, &planned).unwrap();
        cold.push(t.elapsed());
    }
    cold.sort();
    summary(&format!("first round (cold search cache), {} cases", cases.len()), &cold);
    let mut times = Vec::new();
    for _ in 0..rounds {
        for c in &cases {
            let t = Instant::now();
            let planned = engine.plan_case(&c.case, &planner).unwrap();
            let decision = engine.decide_planned(&c.case, &planned).unwrap();
            times.push(t.elapsed());
            assert_eq!(decision.steps.len(), planned.plan.steps.len());
        }
    }
    times.sort();
    summary(&format!("case → plan → decisions over {} cases × {rounds} rounds", cases.len()), &times);
}
