//! `countersign_core::decide_scanned` against the demo policy, next to Cedar's
//! `is_authorized` on the same allow/deny core, for the same steps. The case's text is
//! scanned for escalation signals once, outside the timing, as the engine does once per
//! case revision (`Engine::case_scan`); the scan is timed on its own (`case_scan`). With the
//! demo policy's encoder, the encoder's probabilities for a text are remembered
//! (`learned::encoder_probabilities`), so after the first pass `case_scan` times the
//! patterns, the model and that look-up; the encoder's own cost per text is
//! `cargo bench -p countersign-encoder`.
//!
//! Run: `cargo bench -p countersign-bench --bench decide` (about 80 s).
//!
//! Before any timing the bench checks that both engines agree (Cedar allow ⇔
//! countersign executable) on every step, and panics if not, so the figures
//! compare equivalent work. After the run it prints a table of medians per step
//! and the countersign / Cedar ratio, read back from criterion's estimates.
// A bench: unwrap on setup, a printed table and float ratios are the point.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::float_arithmetic)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use countersign_bench::world::demo_policy;
use countersign_bench::{CedarEngine, Scenario, World, cedar, check_agreement, scenarios};
use countersign_core::{CaseScan, decide_scanned};
use criterion::{Criterion, Throughput};

/// Criterion's id for the once-per-revision scan.
const SCAN_GROUP: &str = "case_scan";

/// Our target for one step's decision.
const TARGET_NS_PER_STEP: f64 = 5_000.0;

fn main() {
    let started = SystemTime::now();

    // Everything parsed and built once, outside the timing.
    let policy = demo_policy();
    let world = World::new();
    let cedar = CedarEngine::new(&world).unwrap_or_else(|e| panic!("Cedar setup failed: {e}"));
    cedar::check_names(&policy).unwrap_or_else(|e| panic!("{e}"));
    let scenarios = scenarios(&world);
    // Once per case revision in the engine; every decision on the revision reads it.
    let scan = CaseScan::new(&policy, &world.case);
    for s in &scenarios {
        if let Err(e) = check_agreement(&policy, &world, &cedar, s) {
            panic!("Cedar and countersign disagree, so timing them would not compare equivalent work: {e}");
        }
    }

    let out_dir = criterion_dir();
    let mut c = Criterion::default()
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .output_directory(&out_dir)
        .configure_from_args();

    for s in &scenarios {
        let mut g = c.benchmark_group(group_name(s));
        g.throughput(Throughput::Elements(s.steps() as u64));
        g.bench_function("countersign", |b| {
            b.iter(|| {
                decide_scanned(
                    black_box(&policy),
                    black_box(&world.case),
                    black_box(&s.plan),
                    black_box(&world.facts),
                    black_box(&scan),
                )
                .unwrap()
            });
        });
        g.bench_function("cedar", |b| {
            b.iter(|| {
                for step in &s.cedar {
                    let resp = cedar.authorize(black_box(&world), black_box(step)).unwrap();
                    black_box(resp);
                }
            });
        });
        // For reference: the evaluation alone, requests built beforehand.
        let requests: Vec<_> = s.cedar.iter().map(|step| cedar.request(&world, step).unwrap()).collect();
        g.bench_function("cedar_eval_only", |b| {
            b.iter(|| {
                for req in &requests {
                    black_box(cedar.authorizer.is_authorized(black_box(req), &cedar.policies, &cedar.entities));
                }
            });
        });
        g.finish();
    }
    // The scan itself: normalising and reading the case's words once per revision.
    c.bench_function(SCAN_GROUP, |b| b.iter(|| CaseScan::new(black_box(&policy), black_box(&world.case))));
    c.final_summary();

    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--list" || a == "--test");
    if benchmarking {
        report(&scenarios, &out_dir, started);
    }
}

fn group_name(s: &Scenario) -> String {
    format!("policy_{}", s.name)
}

/// Where criterion writes its estimates (set explicitly so we can read them back).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion")
}

/// The median (ns per iteration) criterion measured in this run, if it did.
fn median_ns(dir: &Path, group: &str, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(group).join(id).join("new/estimates.json");
    let fresh = std::fs::metadata(&path).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// The median of a benchmark outside any group (criterion writes it at `<id>/new`).
fn median_ns_flat(dir: &Path, id: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(id).join("new/estimates.json");
    let fresh = std::fs::metadata(&path).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn fmt_us(ns: f64) -> String {
    format!("{:.2} µs", ns / 1_000.0)
}

fn report(scenarios: &[Scenario], dir: &Path, since: SystemTime) {
    println!();
    println!("Policy decisions: median per step (criterion median of the whole call / steps)");
    println!();
    println!(
        "| scenario | steps | countersign decide | Cedar (request + is_authorized) | countersign / Cedar | Cedar is_authorized only | decide < 5 µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|:---:|");
    for s in scenarios {
        let g = group_name(s);
        let n = s.steps() as f64;
        let ours = median_ns(dir, &g, "countersign", since);
        let theirs = median_ns(dir, &g, "cedar", since);
        let eval = median_ns(dir, &g, "cedar_eval_only", since).map_or_else(|| "not run".into(), |e| fmt_us(e / n));
        match (ours, theirs) {
            (Some(o), Some(t)) => {
                let (o, t) = (o / n, t / n);
                println!(
                    "| {} | {} | {} | {} | {:.2}× | {} | {} |",
                    s.name,
                    s.steps(),
                    fmt_us(o),
                    fmt_us(t),
                    o / t,
                    eval,
                    if o < TARGET_NS_PER_STEP { "yes" } else { "NO" }
                );
            }
            _ => println!("| {} | {} | not run | not run | – | {eval} | – |", s.name, s.steps()),
        }
    }
    println!();
    match median_ns_flat(dir, SCAN_GROUP, since) {
        Some(ns) => {
            println!("Scanning the case for signals (once per case revision, not per decision): {}", fmt_us(ns))
        }
        None => println!("Scanning the case for signals: not run"),
    }
    println!();
    println!("Scenarios:");
    for s in scenarios {
        println!("- {}: {}", s.name, s.what);
    }
}
