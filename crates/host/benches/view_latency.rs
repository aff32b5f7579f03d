//! An event recorded on a desktop, visible in the lead's view (issue "Team oversight",
//! "Benchmarks": within 1 s, p99). Real parts: the team's `nats-server` (operator mode,
//! JetStream with `sync_interval: always`), a throwaway PostgreSQL 15 cluster with
//! `fsync` on, the team service's projection (its default options: batches of up to
//! 1,000 that linger 10 ms) and its view on threads of their own, each with the
//! service's own connection; desks joined through the host as the faces join them.
//!
//! `cargo bench -p countersign-host --bench view_latency` inside a D-Bus session with an
//! unlocked gnome-keyring (the desks' keys).
//!
//! An admin's desk publishes a signed pack whose roster grants `lead-1` every desk and
//! tenant; the service trusts its key. Then, `VIEW_LATENCY_RUNS` (200) times in each of
//! two ways, the agent's desk (a real engine on its own SQLite log) runs a copy of the
//! demo's cancel case (`01-cancel-pending`, its own case and plan id each time: a read
//! run at once, a cancel decided `confirm`), and the lead's desk asks the team service
//! for its newest decided steps of that desk (`Engine::team_steps`: a signed ask over
//! NATS, checked against the pack's roster, answered from PostgreSQL and recorded in
//! `views`), every 2 ms, until the plan's steps are in the answer. Timed from `run_case`
//! returning. Each run starts 0–249 ms after the one before showed (spread evenly), so
//! the cases come at any moment of the pump's tick.
//!
//! - **direct:** the bench calls `countersign_host::team::replicate` as soon as
//!   `run_case` returns (the desk's thread only takes in what the link sees).
//! - **app:** the app's pump runs on the agent's desk (`countersign_host::team::pump`):
//!   its sending thread replicates on its 250 ms tick, as in the app.
//!
//! Components (direct way): `replicate` returning (every event acknowledged stored by the
//! team's stream); the step's row committed in PostgreSQL (another connection reading its
//! primary key every 2 ms); the lead's answer showing it. The lead's asks themselves are
//! timed too: the view's own round trip, and with it the figure's resolution.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::float_arithmetic)]

#[path = "../tests/support/join.rs"]
mod join;
#[path = "../tests/support/team.rs"]
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use countersign_core::teamview::StepFilter;
use countersign_engine::keys::{SecretKey, TrustedKeys};
use countersign_plane::subjects::Role;
use countersign_test_support::bench::percentile;
use countersign_test_support::bench::{env_usize as env, ms};
use countersign_test_support::postgres::Postgres;
use support::{Desk, ServiceThread, demo, desk, publish_team_pack, roster_entry, system, team};

/// p50 / p95 / p99 / max of `times`, in ms.
fn summary(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    format!(
        "{:.1} / {:.1} / {:.1} / {:.1} ms (n = {})",
        ms(percentile(&sorted, 50)),
        ms(percentile(&sorted, 95)),
        ms(percentile(&sorted, 99)),
        ms(*sorted.last().unwrap()),
        sorted.len()
    )
}

/// Hand a desk's engine what its link sees until `stop` (what the app's pump does,
/// without its sending).
fn take_in_until(d: &Desk, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        if let Ok(Some(u)) = d.link.next(Duration::from_millis(50)) {
            countersign_host::team::take_in(&d.engine, &d.link, &u);
        }
    }
}

/// The lead asks for the agent desk's newest steps until `plan` is among them, every
/// 2 ms: when it showed, and each ask's round trip.
fn until_shown(lead: &Desk, device: &str, plan: &str, asks: &mut Vec<Duration>) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(30);
    let filter = StepFilter { desk: Some(device.to_string()), limit: Some(10), ..StepFilter::default() };
    loop {
        let asked = Instant::now();
        let page = lead.engine.team_steps(filter.clone()).unwrap();
        let now = Instant::now();
        asks.push(now - asked);
        if page.rows.iter().any(|r| r.plan_id == plan) {
            return now;
        }
        assert!(now < deadline, "plan {plan} not in the lead's view within 30 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Another connection watching `steps` for a plan's rows (every 2 ms): when each plan
/// the bench sends showed, sent back.
fn watch_projection(db: &Postgres, plans: mpsc::Receiver<String>, seen: mpsc::Sender<Instant>) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options =
        countersign_team::project::connect_options(&countersign_engine::Secret::new(db.url())).expect("the URL");
    let pool = rt.block_on(sqlx_pool(options));
    while let Ok(plan) = plans.recv() {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let steps = rt.block_on(countersign_team::project::steps_of(&pool, "agent-desk-1", &plan)).unwrap();
            if !steps.is_empty() {
                let _ = seen.send(Instant::now());
                break;
            }
            assert!(Instant::now() < deadline, "plan {plan} not projected within 30 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

async fn sqlx_pool(options: countersign_team::project::PgConnectOptions) -> countersign_team::project::PgPool {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match countersign_team::project::open(&options).await {
            Ok(p) => return p,
            Err(e) => assert!(Instant::now() < deadline, "the team database: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A pause of 0–249 ms before run `i`, spread evenly: the cases come at any moment of
/// the pump's tick, not in step with it (the loop would otherwise start each run just
/// after the tick that carried the one before).
fn spread(i: usize) -> Duration {
    Duration::from_millis((i as u64 * 97) % 250)
}

/// A copy of the demo's cancel case under its own ids.
fn fresh_case(i: usize, way: &str) -> (countersign_core::model::Case, countersign_core::model::Plan) {
    let (mut case, plan) =
        countersign_engine::cases::read_case(&demo().join("cases/01-cancel-pending.json"), None).unwrap();
    let mut plan = plan.unwrap();
    case.id = format!("{}-{way}{i}", case.id);
    plan.id = format!("{}-{way}{i}", plan.id);
    plan.case_id = case.id.clone();
    (case, plan)
}

fn main() {
    let runs = env("VIEW_LATENCY_RUNS", 200).max(1);
    println!("== an event recorded on a desk → in the lead's view: {runs} runs each way ==");
    let mut team = team();
    let db = Postgres::start_with(true);
    let witness = countersign_team::project::Witness::load(team.plane.dir.path(), "acme").expect("the service key");
    let database =
        countersign_team::project::connect_options(&countersign_engine::Secret::new(db.url())).expect("the URL");
    let mut projection = ServiceThread::spawn(&team, move |client, until| async move {
        let options = countersign_team::project::Options {
            witness: Some(std::sync::Arc::new(witness)),
            ..countersign_team::project::Options::default()
        };
        countersign_team::project::run(client, database, options, until).await.map_err(|e| e.to_string())
    });
    let admin_key = SecretKey::generate().unwrap();
    let mut view = ServiceThread::view(&team, &db, TrustedKeys::new(vec![admin_key.public("bench admin")]));

    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let admin = desk(&mut team, "admin-desk", Role::Admin, ("admin-1", "team_lead"), system());
    let agent = desk(&mut team, "agent-desk-1", Role::Agent, ("agent-1", "agent"), system());
    let lead_key = countersign_engine::device::device_key(&team.lead_keyring).unwrap().public("").to_hex();
    let packs = tempfile::tempdir().unwrap();
    publish_team_pack(&admin, packs.path(), &admin_key, &roster_entry("lead-1", &lead_key, &["*"]));
    support::replicate_until_ok(&agent);
    // The service reads the pack's roster: the lead's asks are answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = lead.engine.team_steps(StepFilter::default()) {
        assert!(Instant::now() < deadline, "the lead's view never answered: {e}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let (plans_tx, plans_rx) = mpsc::channel::<String>();
    let (seen_tx, seen_rx) = mpsc::channel::<Instant>();
    let (mut replicated, mut projected, mut shown, mut app_shown) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut asks, mut app_asks, mut recorded) = (Vec::new(), Vec::new(), Vec::new());
    let device = "agent-desk-1";
    std::thread::scope(|s| {
        let db = &db;
        s.spawn(move || watch_projection(db, plans_rx, seen_tx));
        let stop = AtomicBool::new(false);
        std::thread::scope(|t| {
            t.spawn(|| take_in_until(&agent, &stop));
            t.spawn(|| take_in_until(&lead, &stop));
            for i in 0..runs {
                std::thread::sleep(spread(i));
                let (case, plan) = fresh_case(i, "d");
                let called = Instant::now();
                agent.engine.run_case(&case, Some(&plan)).unwrap();
                let done = Instant::now();
                recorded.push(done - called);
                plans_tx.send(plan.id.clone()).unwrap();
                countersign_host::team::replicate(&agent.engine, &agent.link, false).unwrap();
                replicated.push(done.elapsed());
                let at = until_shown(&lead, device, &plan.id, &mut asks);
                shown.push(at - done);
                let at = seen_rx.recv_timeout(Duration::from_secs(30)).expect("projected");
                projected.push(at.saturating_duration_since(done));
            }
            stop.store(true, Ordering::SeqCst);
        });
        println!("direct: recorded (run_case) {}", summary(&recorded));
        println!("direct: → replicated {}", summary(&replicated));
        println!("direct: → projected {}", summary(&projected));
        println!("direct: → in the lead's view {}", summary(&shown));
        println!("direct: the lead's asks {}", summary(&asks));

        let stop = AtomicBool::new(false);
        std::thread::scope(|t| {
            t.spawn(|| countersign_host::team::pump(&agent.engine, &agent.link, &stop, &|_| {}));
            t.spawn(|| take_in_until(&lead, &stop));
            for i in 0..runs {
                std::thread::sleep(spread(i));
                let (case, plan) = fresh_case(i, "a");
                agent.engine.run_case(&case, Some(&plan)).unwrap();
                let done = Instant::now();
                let at = until_shown(&lead, device, &plan.id, &mut app_asks);
                app_shown.push(at - done);
            }
            stop.store(true, Ordering::SeqCst);
        });
        drop(plans_tx);
        println!("app: → in the lead's view {}", summary(&app_shown));
        println!("app: the lead's asks {}", summary(&app_asks));
    });

    let held = support::TeamDb::open(&db);
    assert!(held.alerts().is_empty(), "the desk's chain verified: {:?}", held.alerts());
    let local = agent.engine.log_list(&countersign_engine::LogFilter::default()).unwrap().len();
    println!("the team holds {} events of {device}'s {local}; {} views recorded", held.events_of(device).len(), {
        let views = held.rt.block_on(countersign_team::view::views(&held.pool)).unwrap();
        views.len()
    });
    println!(
        "\n| from `run_case` returning (p50 / p95 / p99 / max) | direct: `replicate` at once | app: the pump's 250 ms tick |"
    );
    println!("|---|---|---|");
    println!("| `replicate` returned: the team's stream holds every event | {} | |", summary(&replicated));
    println!("| the step's row committed by the projection | {} | |", summary(&projected));
    println!(
        "| **in the lead's view** (`team_steps` shows the plan) | **{}** | **{}** |",
        summary(&shown),
        summary(&app_shown)
    );
    println!("| the lead's ask itself (one `team_steps` round trip) | {} | {} |", summary(&asks), summary(&app_asks));
    println!("| (before: `run_case` itself, recorded on the desk) | {} | |", summary(&recorded));
    view.stop();
    projection.stop();
}
