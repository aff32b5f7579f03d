//! The team plane's figures (issue 18, "Benchmarks"), each beside its raw NATS reference
//! measured in the same run: a real `nats-server` with the team set up (operator mode,
//! JetStream with `sync_interval: always`) and, for the references, a second, plain
//! server of the same binary with the same JetStream settings and no accounts.
//!
//! `cargo bench -p countersign-host --bench team` inside a D-Bus session with an unlocked
//! gnome-keyring (every desk keeps its keys in a keyring namespace of its own).
//!
//! - **Pause propagation:** `TEAM_BENCH_DESKS` (default 500) desks, each a real engine on
//!   its own SQLite log with its own link (on its own small runtime), joined as
//!   `countersign_host::team::connect_with` joins one but with its keys made in memory
//!   (the lead's and the approval agent's desks keep theirs in the OS keyring), and pumped by its own thread with the app's pump
//!   (`countersign_host::team::pump_observed`, which also replicates the desk's evidence).
//!   Timed: from the lead's `Engine::pause_set` returning (and from the call) until each
//!   desk's pause intake has put it where the executor's pause gate and `decide` read
//!   (`Engine::pauses`, checked for every desk after each round), on the link's own
//!   thread; the pump records it in the desk's own evidence within 250 ms. After the
//!   first round every desk
//!   is checked to have recorded it, and its decision on the demo's refund step to be
//!   `forbid` by `pause.<id>` (untimed).
//!   Before the rounds, what taking in one pause costs a desk with nothing else to do. Reference: one put to the same bucket config, watched by as
//!   many plain connections (async-nats `watch`), from the put's acknowledgement until
//!   each watcher has the entry.
//! - **Remote approval, the machine's part:** an agent's desk and the lead's, each
//!   handing the link's entries to its engine on a thread of its own. (a) From the agent's
//!   `team_publish_requests` returning until the lead's `team_queue` lists the request;
//!   (b) from the lead's `team_answer` returning until the agent's step is `approved`.
//!   Reference: one put seen by one plain watcher.
//! - **Evidence replication:** `TEAM_BENCH_EVIDENCE_DESKS` (50) desks, each with
//!   `TEAM_BENCH_EVENTS` (400) events in its outbox, replicating at once
//!   (`countersign_host::team::replicate`, one thread each). Reference: the same messages
//!   (same bytes, same message ids) published asynchronously over as many plain
//!   connections to a stream of the same config. Then an outage: the server killed, each
//!   desk recording `TEAM_BENCH_OUTAGE_EVENTS` (300) events over
//!   `TEAM_BENCH_OUTAGE_SECS` (60) s with the app's pump running, the server restarted;
//!   timed until every outbox is empty; then every desk's log is compared with what the
//!   team's stream holds (0 lost, 0 duplicated).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::float_arithmetic)]

#[path = "../tests/support/join.rs"]
mod join;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use async_nats::jetstream::message::PublishMessage;
use countersign_connectors::credentials::KeyringStore;
use countersign_core::model::{Operator, PauseScope};
use countersign_core::policy::Outcome;
use countersign_engine::keys::{PublicKey, SecretKey};
use countersign_engine::team::{EntryOutcome, TeamSettings};
use countersign_engine::{Engine, EngineOptions, LogFilter, Secret, SystemClock};
use countersign_plane::evidence::Outgoing;
use countersign_plane::link::{LinkConfig, TeamLink};
use countersign_plane::subjects::{CONTROL_BUCKET, Role, evidence_subject};
use countersign_test_support::bench::percentile;
use countersign_test_support::bench::{env_usize as env, ms};
use countersign_test_support::nats::{NatsServer, TeamPlane, keyring};
use futures::StreamExt;

/// p50 / p99 / max of `times`, in ms.
fn summary(times: &[Duration]) -> String {
    let mut sorted = times.to_vec();
    sorted.sort();
    format!(
        "{:.1} / {:.1} / {:.1} ms (n = {})",
        ms(percentile(&sorted, 50)),
        ms(percentile(&sorted, 99)),
        ms(*sorted.last().unwrap()),
        sorted.len()
    )
}

fn demo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo"))
}

/// A copy of the demo snapshot workspace whose roster lists `lead-1` with `lead_key`.
fn workspace(dir: &Path, lead_key: &str) -> PathBuf {
    let demo = demo();
    let roster_hash =
        "$argon2id$v=19$m=19456,t=2,p=1$0irb8haFzyfD8BythGbQgQ$6dtE++e2fHJjvoC93LsPf4KQsVtakEnO56y/74Jq+CU";
    let text = format!(
        "[workspace]\nid = \"team-bench\"\nname = \"Team bench\"\npolicy = {policy:?}\nknowledge = {kb:?}\ncases = \
         {cases:?}\n\n[connector]\nkind = \"snapshot\"\ndataset = {data:?}\n\n[operator]\nid = \"agent-1\"\nrole = \
         \"agent\"\n\n[[roster]]\nid = \"lead-1\"\nrole = \"team_lead\"\npassphrase = {roster_hash:?}\nkey = \
         {lead_key:?}\n",
        policy = demo.join("policy.toml").display().to_string(),
        kb = demo.join("../knowledge").display().to_string(),
        cases = demo.join("cases").display().to_string(),
        data = demo.join("../demo-store").display().to_string(),
    );
    let path = dir.join("workspace.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct Desk {
    engine: Engine,
    link: Arc<TeamLink>,
    device: String,
    _data: tempfile::TempDir,
}

struct Team {
    plane: TeamPlane,
    workspace: PathBuf,
    _ws_dir: tempfile::TempDir,
    lead_keyring: KeyringStore,
}

impl Team {
    fn start() -> Team {
        let plane = TeamPlane::start("acme", countersign_plane::lease::DEFAULT_EVERY);
        let lead_keyring = keyring("lead");
        let lead_key = countersign_engine::device::device_key(&lead_keyring).unwrap().public("").to_hex();
        let ws_dir = tempfile::tempdir().unwrap();
        let workspace = workspace(ws_dir.path(), &lead_key);
        Team { plane, workspace, _ws_dir: ws_dir, lead_keyring }
    }

    /// A desk enrolled as `role`, joined through the host as the faces join it, having
    /// read the whole control bucket.
    fn desk(&mut self, device: &str, role: Role, operator: (&str, &str)) -> Desk {
        let keys = if role == Role::Lead { self.lead_keyring.clone() } else { keyring(device) };
        let workspace = self.workspace.clone();
        let clock = Arc::new(SystemClock);
        let join::Joined { engine, link, data } =
            join::join(&mut self.plane, &workspace, &keys, device, role, operator, clock);
        Desk { engine, link, device: device.to_string(), _data: data }
    }

    /// A desk joined exactly as [`Team::desk`] joins one (the same link, the same engine
    /// calls) but with its two keys made in memory instead of kept in the OS keyring:
    /// gnome-keyring's daemon crashed (a GLib trap) after about a hundred desks had stored
    /// theirs in one session.
    fn desk_in_memory(&mut self, device: &str) -> Desk {
        let transport = nkeys::KeyPair::new_user();
        let enrolled = self.plane.authority.enroll(device, Role::Agent, &transport.public_key()).unwrap();
        let data = tempfile::tempdir().unwrap();
        let mut engine = Engine::open(
            EngineOptions {
                workspace: self.workspace.clone(),
                data_dir: data.path().join("data"),
                operator: Some(Operator { id: "agent-1".into(), role: "agent".into() }),
                connector: None,
            },
            Arc::new(SystemClock),
        )
        .unwrap();
        let link = Arc::new(
            TeamLink::start(LinkConfig {
                url: self.plane.url(),
                device: device.to_string(),
                jwt: enrolled.jwt.clone(),
                seed: Secret::new(transport.seed().unwrap()),
                idle_restart: Duration::from_secs(15),
                whole_team: false,
            })
            .unwrap(),
        );
        engine
            .join_team(
                TeamSettings {
                    team: enrolled.team.clone(),
                    device: device.to_string(),
                    role: enrolled.role.policy_role().to_string(),
                    service_key: PublicKey::from_hex(&enrolled.service_key, "service").unwrap(),
                    signer: SecretKey::generate().unwrap(),
                },
                Arc::new(countersign_host::team::LinkPort(link.clone())),
            )
            .unwrap();
        assert!(countersign_host::team::catch_up(&engine, &link, Duration::from_secs(30)), "{device} read the bucket");
        Desk { engine, link, device: device.to_string(), _data: data }
    }

    fn agents(&mut self, prefix: &str, n: usize) -> Vec<Desk> {
        let started = Instant::now();
        let desks: Vec<Desk> = (0..n)
            .map(|i| {
                if i > 0 && i % 100 == 0 {
                    println!("  {i} desks joined ({:.0} s)", started.elapsed().as_secs_f64());
                }
                self.desk_in_memory(&format!("{prefix}-{i}"))
            })
            .collect();
        println!("{n} desks joined in {:.1} s; {}", started.elapsed().as_secs_f64(), memory());
        desks
    }
}

/// This process's resident memory and thread count (from /proc).
fn memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find(|l| l.starts_with(name)).map(|l| l[name.len()..].trim().to_string()).unwrap_or_default()
    };
    format!("bench process RSS {}, {} threads", field("VmRSS:"), field("Threads:"))
}

/// A plain `nats-server` (no accounts) with the team server's JetStream settings.
fn raw_server(dir: &Path) -> NatsServer {
    let conf = dir.join("raw.conf");
    let store = dir.join("raw-jetstream");
    std::fs::write(&conf, format!("jetstream: {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n", store.display()))
        .unwrap();
    NatsServer::start(&conf)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// The bare reference: `watchers` plain connections each watching the control bucket's
/// config on the plain server; `rounds` puts of `size` bytes, one at a time. Per watcher
/// and round: (from the put's acknowledgement, from the put's call).
fn raw_fanout(url: &str, watchers: usize, rounds: usize, size: usize) -> (Vec<Duration>, Vec<Duration>) {
    runtime().block_on(async {
        let admin = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(admin);
        let kv = match js.get_key_value(CONTROL_BUCKET).await {
            Ok(kv) => kv,
            Err(_) => js.create_key_value(countersign_plane::lease::control_bucket(None)).await.unwrap(),
        };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
        let mut tasks = Vec::new();
        for _ in 0..watchers {
            let client = async_nats::connect(url).await.unwrap();
            let kv = async_nats::jetstream::new(client).get_key_value(CONTROL_BUCKET).await.unwrap();
            let mut watch = kv.watch("pause.>").await.unwrap();
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                let _kv = kv;
                while let Some(Ok(e)) = watch.next().await {
                    if tx.send((e.key, Instant::now())).is_err() {
                        return;
                    }
                }
            }));
        }
        let (mut from_ack, mut from_call) = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let key = format!("pause.raw-{watchers}-{r}");
            let called = Instant::now();
            kv.put(&key, vec![b'x'; size].into()).await.unwrap();
            let acked = Instant::now();
            let mut got = 0;
            while got < watchers {
                let (k, at) = tokio::time::timeout(Duration::from_secs(60), rx.recv()).await.unwrap().unwrap();
                if k == key {
                    got += 1;
                    from_ack.push(at.saturating_duration_since(acked));
                    from_call.push(at - called);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for t in tasks {
            t.abort();
        }
        (from_ack, from_call)
    })
}

/// The decision on the refund step (`s2`) of the demo's damaged-item case.
fn refund_decision(engine: &Engine) -> (Outcome, Vec<String>) {
    let (case, plan) =
        countersign_engine::cases::read_case(&demo().join("cases/02-damaged-item-small-refund.json"), None).unwrap();
    let decision = engine.decide(&case, &plan.unwrap()).unwrap();
    let step = decision.steps.iter().find(|s| s.step_id == "s2").unwrap();
    (step.decision, step.rule_ids.clone())
}

/// Wait for `n` arrivals of `key` on `rx`; the times after `acked` and after `called`.
fn collect(
    rx: &mpsc::Receiver<(usize, String, Instant)>,
    key: &str,
    n: usize,
    acked: Instant,
    called: Instant,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut a, mut c) = (Vec::new(), Vec::new());
    let mut seen = vec![false; n];
    while a.len() < n {
        let (i, k, at) = rx.recv_timeout(Duration::from_secs(120)).expect("every desk within 120 s");
        if k == key && !seen[i] {
            seen[i] = true;
            a.push(at.saturating_duration_since(acked));
            c.push(at - called);
        }
    }
    (a, c)
}

struct Row {
    measure: String,
    ours: String,
    raw: String,
}

/// What taking in one team pause costs a desk with nothing else to do: the lead's signed
/// entries (each a new pause) handed to one desk's engine one after another, timed for
/// `team_entry` (parse, verify, hold in force), the gate's list (`Engine::pauses`) and
/// the durable record (`team_record_seen`), in µs.
fn take_in_cost(team: &Team, desk: &Desk, rows: &mut Vec<Row>) {
    use countersign_core::team::{TeamPause, TeamPauseState};
    let n = env("TEAM_BENCH_TAKE_IN", 200);
    if n == 0 {
        return;
    }
    let signer = countersign_engine::device::device_key(&team.lead_keyring).unwrap();
    let make = |prefix: &str| -> Vec<(String, Vec<u8>, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let id = format!("{prefix}-{i}");
                let pause = countersign_core::model::Pause {
                    id: id.clone(),
                    scope: PauseScope::Action,
                    value: format!("action_{i}"),
                    reason: "take-in cost".into(),
                    set_by: "lead-1".into(),
                    set_at: jiff::Timestamp::now(),
                    team: Some("acme".into()),
                };
                let set = TeamPause {
                    team: "acme".into(),
                    state: TeamPauseState::Set,
                    pause,
                    cleared_by: None,
                    cleared_at: None,
                    clear_reason: None,
                };
                let cleared = TeamPause {
                    state: TeamPauseState::Cleared,
                    cleared_by: Some("lead-1".into()),
                    cleared_at: Some(jiff::Timestamp::now()),
                    clear_reason: Some("measured".into()),
                    ..set.clone()
                };
                let signed = |body: &TeamPause| {
                    let entry =
                        countersign_trust::team::sign(countersign_trust::team::PAUSE_DOMAIN, body, &signer).unwrap();
                    serde_json::to_vec(&entry).unwrap()
                };
                (format!("pause.{id}"), signed(&set), signed(&cleared))
            })
            .collect()
    };
    let entries = make("cost");
    let (mut entry, mut list, mut record) = (Vec::new(), Vec::new(), Vec::new());
    for (key, value, cleared) in &entries {
        let t = Instant::now();
        let outcome = desk.engine.team_entry(key, Some(value)).unwrap();
        entry.push(t.elapsed());
        assert!(matches!(outcome, EntryOutcome::PauseSet { .. }), "{outcome:?}");
        let t = Instant::now();
        assert!(desk.engine.pauses().unwrap().iter().any(|p| key.ends_with(&p.id)));
        list.push(t.elapsed());
        let t = Instant::now();
        desk.engine.team_record_seen().unwrap();
        record.push(t.elapsed());
        // Cleared again (untimed): one pause in force at a time, as in the rounds.
        desk.engine.team_entry(key, Some(cleared)).unwrap();
    }
    assert!(desk.engine.pauses().unwrap().is_empty());
    // On the link's own thread, as a lead's pause arrives: the intake; and the part of
    // it no desk can skip, the signature's check (with the body read).
    let lead_key = [signer.public("lead-1")];
    let (mut intake_took, mut checked) = (Vec::new(), Vec::new());
    let intake = desk.engine.pause_intake().unwrap();
    intake.warm();
    for (key, value, cleared) in &make("intake") {
        let t = Instant::now();
        let outcome = intake.take(key, Some(value));
        intake_took.push(t.elapsed());
        assert!(matches!(outcome, Some(EntryOutcome::PauseSet { .. })), "{outcome:?}");
        let entry: countersign_core::team::SignedEntry = serde_json::from_slice(value).unwrap();
        let t = Instant::now();
        let _: (_, TeamPause) =
            countersign_trust::team::open(countersign_trust::team::PAUSE_DOMAIN, &entry, &lead_key).unwrap();
        checked.push(t.elapsed());
        desk.engine.team_record_seen().unwrap();
        desk.engine.team_entry(key, Some(cleared)).unwrap();
    }
    let us = |times: &[Duration]| {
        let mut sorted = times.to_vec();
        sorted.sort();
        format!(
            "{:.0} / {:.0} µs",
            percentile(&sorted, 50).as_secs_f64() * 1e6,
            percentile(&sorted, 99).as_secs_f64() * 1e6
        )
    };
    println!(
        "take-in on one idle desk ({n} pauses): entry {} · list {} · record {}",
        us(&entry),
        us(&list),
        us(&record)
    );
    println!(
        "take-in on the link's thread ({n} pauses): intake {} · of which the signature's check {}",
        us(&intake_took),
        us(&checked)
    );
    rows.push(Row {
        measure: format!(
            "one idle desk taking in a pause ({n}), p50 / p99: `team_entry` · `pauses` · record · the link's \
             intake · its signature check"
        ),
        ours: format!("{} · {} · {} · {} · {}", us(&entry), us(&list), us(&record), us(&intake_took), us(&checked)),
        raw: String::new(),
    });
}

fn pause_propagation(team: &mut Team, lead: &Desk, raw_url: &str, rows: &mut Vec<Row>) {
    let n = env("TEAM_BENCH_DESKS", 500).max(1);
    let rounds = env("TEAM_BENCH_ROUNDS", 5).max(1);
    println!("\n== pause propagation: {n} desks, {rounds} pauses ==");
    let (raw_ack, raw_call) = raw_fanout(raw_url, n, rounds, 1024);
    println!("raw watch fan-out to {n}: from ack {} · from call {}", summary(&raw_ack), summary(&raw_call));

    // On a desk of its own: the others' logs stay as they joined.
    let alone = team.desk_in_memory("cost-desk");
    take_in_cost(team, &alone, rows);
    drop(alone);
    let desks = team.agents("desk", n);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, String, Instant)>();
    let (mut from_ack, mut from_call, mut clear_ack) = (Vec::new(), Vec::new(), Vec::new());
    let mut set_took = Vec::new();
    std::thread::scope(|s| {
        for (i, d) in desks.iter().enumerate() {
            let tx = tx.clone();
            let stop = &stop;
            s.spawn(move || {
                let active = |id: &str| d.engine.pauses().unwrap().iter().any(|p| p.id == id);
                let seen = |o: &EntryOutcome| {
                    if let EntryOutcome::PauseCleared { id } = o
                        && !active(id)
                    {
                        let _ = tx.send((i, format!("cleared {id}"), Instant::now()));
                    }
                };
                // A pause is timed where it comes into force: on the link's thread, as
                // the intake puts it where the gates read (checked below, per round).
                let set = tx.clone();
                let on_intake: countersign_host::team::IntakeObserver = Arc::new(move |o| {
                    if let EntryOutcome::PauseSet { id } = o {
                        let _ = set.send((i, id.clone(), Instant::now()));
                    }
                });
                countersign_host::team::pump_observed(&d.engine, &d.link, stop, &seen, Some(on_intake));
            });
        }
        // Let the pumps settle: each desk's first replication of its log and its first
        // report of what it runs (500 desks' at once, each written to the server's disk
        // before it is acknowledged; the lead's desk hears every report), then
        // `TEAM_BENCH_SETTLE_SECS` (10) more: 500 desks' pumps starting in the same second
        // in one process on two cores is a start-up no team has, and the first pause
        // within a few seconds of it was slower in every run (docs/benchmarks.md, runs
        // P-X, with 1 s). `TEAM_BENCH_SETTLE=0`: the rounds start 3 s after the pumps.
        let started = Instant::now();
        if env("TEAM_BENCH_SETTLE", 1) == 1 {
            let reported = || {
                while let Ok(Some(u)) = lead.link.next(Duration::ZERO) {
                    countersign_host::team::take_in(&lead.engine, &lead.link, &u);
                }
                lead.engine.team_desks().iter().filter(|r| r.device.starts_with("desk-")).count() >= n
            };
            while started.elapsed() < Duration::from_secs(120)
                && (desks.iter().any(|d| d.engine.outbox_pending().map_or(true, |n| n > 0)) || !reported())
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            println!(
                "every desk's first replication done and its report heard in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            std::thread::sleep(Duration::from_secs(env("TEAM_BENCH_SETTLE_SECS", 10) as u64));
        } else {
            std::thread::sleep(Duration::from_secs(3));
        }
        println!("pumps running; {}", memory());
        for r in 0..rounds {
            // What the desks still have to send of the rounds before (their recordings of
            // the last pause and its clearing), replicated to the same server meanwhile.
            let pending: u64 = desks.iter().map(|d| d.engine.outbox_pending().unwrap_or(0)).sum();
            println!("round {r}: {pending} events waiting in the desks' outboxes at the call");
            let called = Instant::now();
            let called_at = jiff::Timestamp::now();
            let pause =
                lead.engine.pause_set(PauseScope::Action, "refund_partial", &format!("bench round {r}")).unwrap();
            let acked = Instant::now();
            set_took.push(acked - called);
            let (a, c) = collect(&rx, &pause.id, n, acked, called);
            // The team service's lease reaches every desk every 5 s (each checks its
            // signature): when the first desk last saw one, against the call.
            let lease = desks[0].engine.team_status().and_then(|s| s.last_lease?.parse::<jiff::Timestamp>().ok());
            let lease = lease
                .map_or("none".to_string(), |t| format!("{:+.0} ms", t.duration_since(called_at).as_secs_f64() * 1e3));
            println!(
                "round {r}: set took {:.1} ms; from return {} · from call {}; last lease {lease} from the call",
                ms(acked - called),
                summary(&a),
                summary(&c)
            );
            from_ack.extend(a);
            from_call.extend(c);
            for d in &desks {
                assert!(d.engine.pauses().unwrap().iter().any(|p| p.id == pause.id), "{}: in force", d.device);
            }
            if r == 0 {
                // Each desk's pump records it once its link is quiet.
                std::thread::sleep(Duration::from_millis(600));
                for d in &desks {
                    let history = d.engine.pause_history().unwrap();
                    assert!(history.iter().any(|r| r.pause.id == pause.id), "{}: recorded by its pump", d.device);
                }
                let checked = Instant::now();
                let rule = format!("pause.{}", pause.id);
                for d in &desks {
                    let (outcome, rules) = refund_decision(&d.engine);
                    assert!(outcome == Outcome::Forbid && rules.contains(&rule), "{}: {outcome:?} {rules:?}", d.device);
                }
                println!("every desk decides the refund `forbid` by {rule} ({:.1} s)", checked.elapsed().as_secs_f64());
            }
            let called = Instant::now();
            lead.engine.pause_clear(&pause.id, "bench").unwrap();
            let acked = Instant::now();
            let (a, _) = collect(&rx, &format!("cleared {}", pause.id), n, acked, called);
            println!("round {r}: cleared; from return {}", summary(&a));
            clear_ack.extend(a);
            std::thread::sleep(Duration::from_secs(2));
        }
        stop.store(true, Ordering::SeqCst);
    });
    // Where the time goes: the same propagation with each desk's thread taking entries
    // from its link as the pump does, timed when the link hands over the pause, when it
    // is in force, and when the desk has recorded it (durably, in its own log) once its
    // link was quiet.
    let split_rounds = env("TEAM_BENCH_SPLIT_ROUNDS", 2);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, String, Instant)>();
    let (mut handed, mut forced, mut recorded) = (Vec::new(), Vec::new(), Vec::new());
    std::thread::scope(|s| {
        for (i, d) in desks.iter().enumerate() {
            let tx = tx.clone();
            let stop = &stop;
            s.spawn(move || {
                // Taken in as it arrives, recorded once the link is quiet for 100 ms or
                // 250 ms after (the pump records on a thread of its own, at the same pace).
                let mut unrecorded: Option<(String, Instant)> = None;
                while !stop.load(Ordering::SeqCst) {
                    let quiet = match d.link.next(Duration::from_millis(100)).unwrap() {
                        Some(u) => {
                            let arrived = Instant::now();
                            if let Ok(EntryOutcome::PauseSet { id }) = d.engine.team_entry(&u.key, u.value.as_deref())
                                && d.engine.pauses().unwrap().iter().any(|p| p.id == id)
                            {
                                let in_force = Instant::now();
                                let _ = tx.send((i, format!("handed {id}"), arrived));
                                let _ = tx.send((i, format!("in force {id}"), in_force));
                                unrecorded = Some((id, arrived));
                            }
                            false
                        }
                        None => true,
                    };
                    if unrecorded.as_ref().is_some_and(|(_, t)| quiet || t.elapsed() >= Duration::from_millis(250)) {
                        d.engine.team_record_seen().unwrap();
                        let (id, _) = unrecorded.take().unwrap();
                        assert!(d.engine.pause_history().unwrap().iter().any(|r| r.pause.id == id), "recorded");
                        let _ = tx.send((i, id, Instant::now()));
                    }
                }
            });
        }
        for r in 0..split_rounds {
            let called = Instant::now();
            let pause =
                lead.engine.pause_set(PauseScope::Action, "refund_partial", &format!("split round {r}")).unwrap();
            let acked = Instant::now();
            let (mut h, mut f, mut a) = (Vec::new(), Vec::new(), Vec::new());
            let (mut hs, mut fs, mut as_) = (vec![false; n], vec![false; n], vec![false; n]);
            while a.len() < n || h.len() < n || f.len() < n {
                let (i, k, at) = rx.recv_timeout(Duration::from_secs(120)).expect("every desk within 120 s");
                if k == pause.id && !as_[i] {
                    as_[i] = true;
                    a.push(at - called);
                } else if k == format!("handed {}", pause.id) && !hs[i] {
                    hs[i] = true;
                    h.push(at - called);
                } else if k == format!("in force {}", pause.id) && !fs[i] {
                    fs[i] = true;
                    f.push(at - called);
                }
            }
            println!(
                "split round {r} (set took {:.1} ms), from the call: handed over by the link {} · in force {} · \
                 recorded by the engine {}",
                ms(acked - called),
                summary(&h),
                summary(&f),
                summary(&a)
            );
            handed.extend(h);
            forced.extend(f);
            recorded.extend(a);
            lead.engine.pause_clear(&pause.id, "bench").unwrap();
            std::thread::sleep(Duration::from_secs(3));
        }
        stop.store(true, Ordering::SeqCst);
    });
    if split_rounds > 0 {
        rows.push(Row {
            measure: format!("split, from the lead's call: the link hands the pause to the desk's thread ({n} desks)"),
            ours: summary(&handed),
            raw: String::new(),
        });
        rows.push(Row {
            measure: "split, from the lead's call: in force (the engine took it in; the gates refuse)".into(),
            ours: summary(&forced),
            raw: String::new(),
        });
        rows.push(Row {
            measure: "split, from the lead's call: recorded in the desk's own evidence (once the link is quiet: not comparable with run E's, recorded at once)".into(),
            ours: summary(&recorded),
            raw: String::new(),
        });
    }
    println!("pause: {} · raw {}", summary(&from_ack), summary(&raw_ack));
    rows.push(Row {
        measure: format!("pause set → active on each of {n} desks, from `pause_set` returning (p50 / p99 / max)"),
        ours: summary(&from_ack),
        raw: format!("{} (one put → {n} watchers, from its ack)", summary(&raw_ack)),
    });
    rows.push(Row {
        measure: "the same, from the lead's call".into(),
        ours: summary(&from_call),
        raw: format!("{} (from the put's call)", summary(&raw_call)),
    });
    rows.push(Row { measure: "lead's `pause_set` itself".into(), ours: summary(&set_took), raw: String::new() });
    rows.push(Row {
        measure: format!("pause cleared → gone on each of {n} desks, from `pause_clear` returning"),
        ours: summary(&clear_ack),
        raw: String::new(),
    });
}

fn approvals(team: &mut Team, lead: &Desk, raw_url: &str, rows: &mut Vec<Row>) {
    let k = env("TEAM_BENCH_APPROVALS", 100).max(1);
    println!("\n== remote approval: {k} supervisor steps ==");
    let (raw_ack, _) = raw_fanout(raw_url, 1, k, 1024);
    println!("raw put → one watcher: {}", summary(&raw_ack));
    let agent = team.desk("approvals-agent", Role::Agent, ("agent-1", "agent"));
    let (case, plan) =
        countersign_engine::cases::read_case(&demo().join("cases/25-password-reset-chat.json"), None).unwrap();
    let plan = plan.unwrap();
    let stop = AtomicBool::new(false);
    let (queued_tx, queued_rx) = mpsc::channel::<Instant>();
    let (granted_tx, granted_rx) = mpsc::channel::<Instant>();
    let (mut queued, mut granted) = (Vec::new(), Vec::new());
    std::thread::scope(|s| {
        let stop = &stop;
        let agent = &agent;
        s.spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some(u) = lead.link.next(Duration::from_millis(50)).unwrap()
                    && let Ok(EntryOutcome::Request) = lead.engine.team_entry(&u.key, u.value.as_deref())
                    && !lead.engine.team_queue().is_empty()
                {
                    let _ = queued_tx.send(Instant::now());
                }
            }
        });
        s.spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some(u) = agent.link.next(Duration::from_millis(50)).unwrap()
                    && let Ok(EntryOutcome::Granted { plan_id, step_id }) =
                        agent.engine.team_entry(&u.key, u.value.as_deref())
                {
                    let steps = agent.engine.all_steps().unwrap();
                    let step = steps.iter().find(|s| s.plan_id == plan_id && s.step_id == step_id).unwrap();
                    assert_eq!(step.state.as_str(), "approved");
                    let _ = granted_tx.send(Instant::now());
                }
            }
        });
        for i in 0..k {
            let mut case = case.clone();
            case.id = format!("{}-b{i}", case.id);
            let mut plan = plan.clone();
            plan.id = format!("{}-b{i}", plan.id);
            plan.case_id = case.id.clone();
            agent
                .engine
                .record_identity_check(&case.id, "harper_ahmed_5055", "called back on the number on file")
                .unwrap();
            agent.engine.run_case(&case, Some(&plan)).unwrap();
            assert_eq!(agent.engine.team_publish_requests().unwrap(), 1, "one supervisor step waits");
            let published = Instant::now();
            let at = queued_rx.recv_timeout(Duration::from_secs(30)).expect("in the lead's queue");
            queued.push(at.saturating_duration_since(published));
            let request = lead.engine.team_queue().remove(0);
            assert_eq!(request.plan_id, plan.id);
            lead.engine
                .team_answer(&request.request_id, countersign_core::evidence::Verdict::Approved, "bench")
                .unwrap();
            let answered = Instant::now();
            let at = granted_rx.recv_timeout(Duration::from_secs(30)).expect("approved on the agent's desk");
            granted.push(at.saturating_duration_since(answered));
        }
        stop.store(true, Ordering::SeqCst);
    });
    println!("request → queue {} · grant → approved {}", summary(&queued), summary(&granted));
    rows.push(Row {
        measure: "request published → in the lead's queue".into(),
        ours: summary(&queued),
        raw: format!("{} (one put → one watcher, from its ack)", summary(&raw_ack)),
    });
    rows.push(Row {
        measure: "grant published (`team_answer` returned) → the agent's step `approved`".into(),
        ours: summary(&granted),
        raw: "as above".into(),
    });
}

fn evidence(team: &mut Team, raw_url: &str, rows: &mut Vec<Row>) {
    let m = env("TEAM_BENCH_EVIDENCE_DESKS", 50).max(1);
    let k = env("TEAM_BENCH_EVENTS", 400).max(1);
    let outage_events = env("TEAM_BENCH_OUTAGE_EVENTS", 300);
    let outage_secs = env("TEAM_BENCH_OUTAGE_SECS", 60) as u64;
    println!("\n== evidence: {m} desks × {k} events ==");
    let desks = team.agents("evidence", m);
    let recorded = Instant::now();
    std::thread::scope(|s| {
        for d in &desks {
            s.spawn(move || {
                for j in 0..k {
                    d.engine.record_identity_check("demo-02", "ava_moore_2033", &format!("bench check {j}")).unwrap();
                }
            });
        }
    });
    println!("{} events recorded in {:.1} s", m * k, recorded.elapsed().as_secs_f64());
    // The same bytes, for the reference.
    let messages: Vec<(String, Vec<Outgoing>)> = desks
        .iter()
        .map(|d| {
            let pending = d.engine.outbox_events(0, 1_000_000).unwrap();
            let out = pending.into_iter().map(|e| Outgoing { seq: e.seq, hash: e.hash, message: e.message }).collect();
            (d.device.clone(), out)
        })
        .collect();
    let total: usize = messages.iter().map(|(_, v)| v.len()).sum();
    let bytes: usize = messages.iter().flat_map(|(_, v)| v.iter().map(|o| o.message.len())).sum();
    println!("{total} events pending, {:.0} bytes each on average", bytes as f64 / total as f64);

    let raw_wall = runtime().block_on(async {
        let admin = async_nats::connect(raw_url).await.unwrap();
        async_nats::jetstream::new(admin)
            .get_or_create_stream(countersign_plane::evidence::evidence_stream(None))
            .await
            .unwrap();
        let mut clients = Vec::new();
        for _ in 0..m {
            clients.push(async_nats::connect(raw_url).await.unwrap());
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (client, (device, events)) in clients.into_iter().zip(messages.clone()) {
            tasks.push(tokio::spawn(async move {
                // Every publication in flight at once: the acknowledgements of the last
                // ones come long after the default 5 s.
                let js = async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_secs(600)).build(client);
                let subject = evidence_subject(&format!("raw-{device}"));
                let mut acks = Vec::with_capacity(events.len());
                for e in events {
                    let publish = PublishMessage::build().payload(e.message.into()).message_id(&e.hash);
                    acks.push(js.send_publish(subject.clone(), publish).await.unwrap());
                }
                for ack in acks {
                    ack.await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        started.elapsed()
    });
    let raw_rate = total as f64 / raw_wall.as_secs_f64();
    println!(
        "raw: {total} async publishes with ids over {m} connections in {:.2} s: {raw_rate:.0} events/s",
        raw_wall.as_secs_f64()
    );

    let started = Instant::now();
    std::thread::scope(|s| {
        for d in &desks {
            s.spawn(move || {
                let mut check_head = true;
                while d.engine.outbox_pending().unwrap() > 0 {
                    match countersign_host::team::replicate(&d.engine, &d.link, check_head) {
                        Ok(_) => check_head = false,
                        Err(e) => {
                            println!("{}: {e}; again", d.device);
                            check_head = true;
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            });
        }
    });
    let wall = started.elapsed();
    let rate = total as f64 / wall.as_secs_f64();
    println!(
        "ours: {total} events from {m} desks in {:.2} s: {rate:.0} events/s ({:.2}× raw)",
        wall.as_secs_f64(),
        rate / raw_rate
    );
    rows.push(Row {
        measure: format!("evidence replication, {m} desks × {k} events at once"),
        ours: format!("{rate:.0} events/s ({total} in {:.2} s) = {:.2}× raw", wall.as_secs_f64(), rate / raw_rate),
        raw: format!("{raw_rate:.0} events/s ({total} in {:.2} s)", raw_wall.as_secs_f64()),
    });

    // The outage, with the app's pump on every desk.
    println!("\n== outage: {outage_secs} s, {outage_events} events per desk ==");
    let stop = AtomicBool::new(false);
    let (mut drained, mut reconnected) = (Duration::ZERO, Duration::ZERO);
    std::thread::scope(|s| {
        for d in &desks {
            let stop = &stop;
            s.spawn(move || countersign_host::team::pump(&d.engine, &d.link, stop, &|_| {}));
        }
        team.plane.server.stop();
        let outage = Instant::now();
        std::thread::scope(|w| {
            for d in &desks {
                w.spawn(move || {
                    for j in 0..outage_events {
                        let due =
                            outage + Duration::from_secs(outage_secs) * (j as u32) / (outage_events.max(1) as u32);
                        std::thread::sleep(due.saturating_duration_since(Instant::now()));
                        d.engine.record_identity_check("demo-02", "ava_moore_2033", &format!("outage {j}")).unwrap();
                    }
                });
            }
        });
        std::thread::sleep(Duration::from_secs(outage_secs).saturating_sub(outage.elapsed()));
        let pending: u64 = desks.iter().map(|d| d.engine.outbox_pending().unwrap()).sum();
        println!("outage of {:.1} s: {pending} events waiting in the outboxes", outage.elapsed().as_secs_f64());
        team.plane.server.restart();
        let restarted = Instant::now();
        let deadline = restarted + Duration::from_secs(600);
        let mut all_connected = None;
        loop {
            if all_connected.is_none() && desks.iter().all(|d| d.link.connected()) {
                all_connected = Some(restarted.elapsed());
            }
            if desks.iter().all(|d| d.engine.outbox_pending().unwrap() == 0) {
                break;
            }
            assert!(Instant::now() < deadline, "the outboxes did not drain within 600 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        drained = restarted.elapsed();
        reconnected = all_connected.unwrap_or(drained);
        println!(
            "drained {pending} events {:.2} s after the restart (every link up after {:.2} s)",
            drained.as_secs_f64(),
            reconnected.as_secs_f64()
        );
        stop.store(true, Ordering::SeqCst);
        rows.push(Row {
            measure: format!(
                "drain after a {outage_secs} s outage ({pending} events waiting on {m} desks), from the server's restart"
            ),
            ours: format!("{:.2} s (every link reconnected after {:.2} s)", drained.as_secs_f64(), reconnected.as_secs_f64()),
            raw: String::new(),
        });
    });

    let held = team.plane.evidence_all();
    let (mut lost, mut duplicated, mut out_of_order, mut events) = (0, 0, 0, 0);
    for d in &desks {
        let local: Vec<(u64, String)> =
            d.engine.log_list(&LogFilter::default()).unwrap().into_iter().map(|e| (e.seq, e.hash)).collect();
        let theirs: Vec<(u64, String)> = held
            .get(&evidence_subject(&d.device))
            .map(|v| v.iter().map(|m| (m["seq"].as_u64().unwrap(), m["hash"].as_str().unwrap().to_string())).collect())
            .unwrap_or_default();
        let unique: std::collections::BTreeSet<&(u64, String)> = theirs.iter().collect();
        duplicated += theirs.len() - unique.len();
        lost += local.iter().filter(|e| !unique.contains(e)).count();
        if theirs != local {
            out_of_order += 1;
        }
        events += local.len();
    }
    println!(
        "the team holds {events} events of {m} desks: {lost} lost, {duplicated} duplicated, {out_of_order} desks differing"
    );
    rows.push(Row {
        measure: "after the drain: every desk's log against the team's stream".into(),
        ours: format!("{events} events: {lost} lost, {duplicated} duplicated, {out_of_order} desks' copies differ"),
        raw: String::new(),
    });
}

fn main() {
    let which = std::env::var("TEAM_BENCH_ONLY").unwrap_or_default();
    let runs = |part: &str| which.is_empty() || which.split(',').any(|p| p == part);
    let scratch = tempfile::tempdir().unwrap();
    let raw = raw_server(scratch.path());
    let mut team = Team::start();
    let lead = team.desk("lead-desk", Role::Lead, ("lead-1", "team_lead"));
    let mut rows = Vec::new();
    if runs("pause") {
        pause_propagation(&mut team, &lead, &raw.url(), &mut rows);
    }
    if runs("approval") {
        approvals(&mut team, &lead, &raw.url(), &mut rows);
    }
    if runs("evidence") {
        evidence(&mut team, &raw.url(), &mut rows);
    }
    println!("\n| measure | team plane | raw NATS reference (same run) |\n|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} |", r.measure, r.ours, r.raw);
    }
}
