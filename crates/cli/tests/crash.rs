//! Crash safety of the executor, for real: the `countersign` process is killed with
//! SIGKILL at random moments of `run` (before, during and after the platform call),
//! then restarted, against the real demo store on loopback, with the real keyring.
//!
//! After every trial the restart must have left each write applied at most once (checked
//! over the demo store's own HTTP API), no approved step lost (every one ends `succeeded`
//! or, when the platform shows it was never applied, `not_applied`), every unfinished
//! step recorded `unknown` and then reconciled by a read, and a replay of the recorded
//! request with its idempotency key a no-op. The chain verifies throughout.
//!
//! Beside the random kills: the process aborted at named boundaries (`COUNTERSIGN_FAULT_AT`),
//! also inside the browser connector's submit (real Chromium on the seller center's
//! pages); and writes sent through a proxy that delays, drops and resets them
//! (`FaultProxy`). `docs/faults.md` has the suites and their figures.
//!
//! Its own test binary: it spawns and kills processes for about a minute, and can be run
//! alone: `cargo test -p countersign --test crash`. `COUNTERSIGN_CRASH_SEED` replays a
//! failing run (each random test prints its seed); `COUNTERSIGN_CRASH_TRIALS`,
//! `COUNTERSIGN_FAULT_ROUNDS`, `COUNTERSIGN_NET_TRIALS` and `COUNTERSIGN_BROWSER_ROUNDS`
//! change the counts (the long run in `docs/faults.md`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use countersign_test_support::demo::{self, seed_orders};
use countersign_test_support::loopback::{Fault, FaultProxy, HoldingProxy};
use countersign_test_support::rng::Rng;
use countersign_test_support::sign_in;
use jiff::Timestamp;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_countersign");
const TOKEN: &str = "crash-test-token-41d7";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One seller center for every trial, a workspace pointing at it, one evidence store.
struct Harness {
    server: countersign_demo_store::BackgroundServer,
    dir: tempfile::TempDir,
    service: String,
    http: reqwest::blocking::Client,
}

impl Harness {
    fn start() -> Harness {
        Harness::start_with(|_| String::new())
    }

    /// A harness whose workspace also has `extra(store_url)` appended.
    fn start_with(extra: impl FnOnce(&str) -> String) -> Harness {
        let catalog = repo().join("assets/demo/catalog.toml");
        Harness::build(|_, store_url| http_workspace(&catalog, store_url) + &extra(store_url))
    }

    /// A harness whose workspace file is `workspace(folder, store_url)`: one seller
    /// center, one evidence store, the store's token in the keyring.
    fn build(workspace: impl FnOnce(&Path, &str) -> String) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let server = demo::start_in(dir.path(), TOKEN);
        let workspace = workspace(dir.path(), &server.url());
        std::fs::write(dir.path().join("workspace.toml"), workspace).unwrap();
        std::fs::create_dir(dir.path().join("cases")).unwrap();
        let h = Harness {
            server,
            dir,
            // One keyring namespace per harness: the tests of this binary run side by side,
            // and each deletes its credential when it ends.
            service: {
                static HARNESSES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
                let n = HARNESSES.fetch_add(1, Ordering::SeqCst);
                format!("countersign-crash-test-{}-{n}", std::process::id())
            },
            http: countersign_http::blocking_client_builder().no_proxy().build().unwrap(),
        };
        let set = h.run_with_stdin(&["credentials", "set", "demo_seller_center/demo"], TOKEN);
        assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
        h
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env("COUNTERSIGN_KEYRING_SERVICE", &self.service)
            .arg("--workspace")
            .arg(self.dir.path().join("workspace.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child =
            self.command(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("{input}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `run --case FILE`, killed with SIGKILL after `delay`.
    fn killed_run(&self, case: &Path, delay: Duration) {
        let mut child = self
            .command(&["--json", "run", "--case", case.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        // `Child::kill` is SIGKILL on Unix. It may already have finished: that is a trial too.
        let _ = child.kill();
        let _ = child.wait();
    }

    /// `run --case FILE` records the trial's plan, whose step waits (a plan file's values
    /// are untrusted, so a person checks every write), then the agent countersigns it:
    /// an approved step that must not be lost.
    fn queue_and_approve(&self, t: &Trial, ctx: &str) {
        let queued = self.json(&["--json", "run", "--case", t.file.to_str().unwrap()]);
        assert_eq!(queued["steps"][0]["state"], "waiting", "{ctx}: {queued}");
        let approved = self.json(&["--json", "review", "approve", &t.plan_id, "s1", "--reason", "customer confirmed"]);
        assert_eq!(approved["state"], "approved", "{ctx}");
    }

    /// `run --case` of trial `t`, aborted at the fault point `point`.
    fn aborted_run(&self, t: &Trial, point: &str, ctx: &str) {
        assert!(countersign_engine::execute::FAULT_POINTS.contains(&point), "{point} is a fault point");
        let out = self
            .command(&["--json", "run", "--case", t.file.to_str().unwrap()])
            .env("COUNTERSIGN_FAULT_AT", point)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{ctx}: the process was aborted at {point}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("fault point {point}")), "{ctx}");
    }

    /// A plain `run` after the kills settles trial `t`: succeeded, applied once (the order
    /// was `before` the trial), started once (settled under its own key, never started again).
    fn settles_once(&self, kind: Kind, t: &Trial, before: &Value, ctx: &str) {
        let out = self.json(&["--json", "run", "--case", t.file.to_str().unwrap()]);
        assert_eq!(step_s1(&out)["state"], "succeeded", "{ctx}: settled after the restart: {out}");
        applied_at_most_once(self, kind, t, before, true, ctx);
        let events = self.json(&["--json", "log", "list", "--kind", "step_started"]);
        let started = of_plan(events.as_array().unwrap(), "step_started", &t.plan_id).len();
        assert_eq!(started, 1, "{ctx}: started once; settled under its own key, never started again");
    }

    fn order(&self, id: &str) -> Value {
        let url = format!("{}/orders/{}", self.server.url(), id.replace('#', "%23"));
        let r = self.http.get(url).bearer_auth(TOKEN).send().unwrap();
        assert!(r.status().is_success(), "reading {id}: {}", r.status());
        r.json().unwrap()
    }

    /// Send a recorded write again, with its recorded idempotency key.
    fn replay(&self, request: &Value, key: &str) -> reqwest::blocking::Response {
        let body = serde_json::to_vec(&request["body"]).unwrap();
        self.http
            .post(request["url"].as_str().unwrap())
            .bearer_auth(TOKEN)
            .header("idempotency-key", key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap()
    }
}

/// The crash trials' workspace: the HTTP connector on `catalog`, at `base_url`.
fn http_workspace(catalog: &Path, base_url: &str) -> String {
    let demo = repo().join("assets/demo");
    format!(
        "[workspace]\nid = \"crash\"\nname = \"crash trials\"\npolicy = {:?}\nknowledge = {:?}\ncases = {:?}\n\n\
         [connector]\nkind = \"http\"\ncatalog = {catalog:?}\nbase_url = {base_url:?}\n\n\
         [operator]\nid = \"agent-crash\"\nrole = \"agent\"\n",
        demo.join("policy.toml"),
        repo().join("assets/knowledge"),
        demo.join("cases"),
    )
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.run(&["credentials", "delete", "demo_seller_center/demo"]);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A partial refund of a delivered order: countersigned first (its amount comes from a
    /// plan file, which vouches for nothing), then run.
    Refund,
    /// A cancel of a pending order: countersigned first, then run.
    Cancel,
}

/// The seed's orders a trial may act on, each used once: delivered ones to refund,
/// pending ones to cancel.
struct Orders {
    delivered: std::vec::IntoIter<(String, String)>,
    pending: std::vec::IntoIter<(String, String)>,
}

impl Orders {
    fn seeded() -> Orders {
        Orders { delivered: seed_orders("delivered").into_iter(), pending: seed_orders("pending").into_iter() }
    }

    /// The next unused order for `kind`, and its customer.
    fn next(&mut self, kind: Kind) -> (String, String) {
        match kind {
            Kind::Refund => self.delivered.next(),
            Kind::Cancel => self.pending.next(),
        }
        .expect("the seed has an order left for the trial")
    }
}

struct Trial {
    order: String,
    amount: String,
    plan_id: String,
    file: PathBuf,
}

fn write_trial(h: &Harness, n: usize, kind: Kind, order: &str, customer: &str, amount: String) -> Trial {
    let case_id = format!("crash-{n:03}");
    let plan_id = format!("{case_id}-plan");
    let (intent, step) = match kind {
        Kind::Refund => (
            "refund",
            json!({"id": "s1", "action": "refund_partial", "params": {
                "order_id": {"value": order, "source": "connector"},
                "amount": {"value": {"amount": amount, "currency": "USD"}, "source": "policy"},
                "reason": {"value": format!("crash trial {n}"), "source": "connector"},
            }}),
        ),
        Kind::Cancel => (
            "cancel_order",
            json!({"id": "s1", "action": "cancel_pending_order", "params": {
                "order_id": {"value": order, "source": "connector"},
                "reason": {"value": "ordered by mistake", "source": "customer_message"},
            }}),
        ),
    };
    let file = json!({
        "case": {
            "id": case_id, "tenant": "acme", "store": "acme-us", "platform": "demo_seller_center",
            "channel": "email", "customer": {"id": customer, "identity": "verified"},
            "messages": [{"from": "customer", "text": "Please sort out my order.", "at": "2026-11-20T15:10:00Z"}],
            "order_ids": [order],
        },
        "plan": {"id": plan_id, "case_id": case_id, "planner": "scripted", "intent": intent, "steps": [step]},
    });
    let path = h.dir.path().join("cases").join(format!("{case_id}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&file).unwrap()).unwrap();
    // An agent verified the customer (a one-time code): the file's own claim counts for nothing.
    h.json(&["--json", "verify-identity", &case_id, "--customer", customer, "--how", "a one-time code"]);
    Trial { order: order.to_string(), amount, plan_id, file: path }
}

/// A trial after its restart, checked against the evidence at the end.
struct Settled {
    t: Trial,
    kind: Kind,
    ctx: String,
    applied: bool,
    recovered: bool,
    restart_at: Timestamp,
    after: Value,
}

/// Where the kill landed, as the evidence tells it afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Landed {
    /// The step had not started: the restart ran it.
    BeforeStart,
    /// It had started and not finished: the restart found it `running` or `unknown`.
    DuringCall,
    /// It had finished: the restart had nothing to do for it.
    AfterFinish,
}

/// `COUNTERSIGN_CRASH_SEED`, or one from the clock (each test prints its seed).
fn seed() -> u64 {
    std::env::var("COUNTERSIGN_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        u64::try_from(Timestamp::now().as_nanosecond().unsigned_abs() % u128::from(u64::MAX)).unwrap()
    })
}

/// A trial count from the environment variable `var`, `default` without it; at least 1.
fn count_from_env(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|s| s.parse().ok()).unwrap_or(default).max(1)
}

/// The trial's step `s1` as `run --json` reports it.
fn step_s1(out: &Value) -> Value {
    out["steps"].as_array().unwrap().iter().find(|s| s["step_id"] == "s1").unwrap().clone()
}

/// The events of `kind` about plan `plan_id`, in the chain's order.
fn of_plan<'a>(events: &'a [Value], kind: &str, plan_id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind && e["payload"]["plan_id"] == plan_id).collect()
}

fn refunds_of(order: &Value) -> Vec<&Value> {
    order["payment_history"].as_array().unwrap().iter().filter(|t| t["transaction_type"] == "refund").collect()
}

/// The platform's own account of trial `t`, read over the store's API: the change applied
/// once if `applied`, not at all otherwise (a cancel refunds each payment method once,
/// never a second round). Returns the order as it stands.
fn applied_at_most_once(h: &Harness, kind: Kind, t: &Trial, before: &Value, applied: bool, ctx: &str) -> Value {
    let after = h.order(&t.order);
    match kind {
        Kind::Refund => {
            let refunds = refunds_of(&after);
            assert_eq!(refunds.len(), usize::from(applied), "{ctx}: refunds on the order: {refunds:?}");
            let expected = if applied { t.amount.as_str() } else { "0.00" };
            assert_eq!(after["totals"]["refunded"], expected, "{ctx}");
        }
        Kind::Cancel => {
            let expected = if applied { "cancelled" } else { "pending" };
            assert_eq!(after["status"], expected, "{ctx}");
            let methods: std::collections::BTreeSet<&str> = before["payment_history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["payment_method_id"].as_str().unwrap())
                .collect();
            let refunds = refunds_of(&after);
            assert_eq!(refunds.len(), if applied { methods.len() } else { 0 }, "{ctx}: {refunds:?}");
        }
    }
    after
}

#[test]
fn sigkill_at_random_points_never_applies_a_write_twice_nor_loses_an_approved_step() {
    let seed = seed();
    let trials = count_from_env("COUNTERSIGN_CRASH_TRIALS", 50);
    eprintln!("crash trials: {trials}, seed {seed} (replay with COUNTERSIGN_CRASH_SEED={seed})");
    let started_at = Instant::now();
    let mut rng = Rng(seed);
    // The writes go through a proxy that holds each one `CALL` before passing it on: on
    // loopback a call takes a few milliseconds of a run's second, and a random kill would
    // rarely land inside it. Held, it is a fixed share of the run on any machine.
    const CALL: Duration = Duration::from_millis(300);
    let mut proxy = None;
    let h = Harness::build(|_, store_url| {
        let p = FaultProxy::start(store_url);
        let workspace = http_workspace(&repo().join("assets/demo/catalog.toml"), &p.url);
        proxy = Some(p);
        workspace
    });
    let proxy = proxy.unwrap();
    let mut orders = Orders::seeded();

    // Calibration, unkilled: creates the evidence store, and times one whole `run`.
    let (order, customer) = orders.next(Kind::Refund);
    let warmup = write_trial(&h, 999, Kind::Refund, &order, &customer, "5.00".into());
    h.queue_and_approve(&warmup, "warm-up");
    h.json(&["--json", "run", "--case", warmup.file.to_str().unwrap()]);
    let (order, customer) = orders.next(Kind::Refund);
    let timed = write_trial(&h, 998, Kind::Refund, &order, &customer, "5.00".into());
    h.queue_and_approve(&timed, "timed");
    proxy.schedule([Fault::DelayRequest(CALL)]);
    let clock = Instant::now();
    let out = h.json(&["--json", "run", "--case", timed.file.to_str().unwrap()]);
    assert_eq!(out["steps"][0]["state"], "succeeded", "seed {seed}: {out}");
    let full = u64::try_from(clock.elapsed().as_micros()).unwrap();
    eprintln!("one unkilled run takes {} ms; kills land in 0..{} ms", full / 1000, full * 6 / 5 / 1000);

    let mut settled = Vec::new();
    for n in 0..trials {
        let kind = if n % 4 == 3 { Kind::Cancel } else { Kind::Refund };
        let (order, customer) = orders.next(kind);
        let amount = format!("{}.{:02}", 1 + rng.below(20), rng.below(100));
        let t = write_trial(&h, n, kind, &order, &customer, amount);
        let before = h.order(&t.order);
        let ctx = format!("seed {seed}, trial {n} ({kind:?} {} on {})", t.amount, t.order);

        h.queue_and_approve(&t, &ctx);
        // Kill once; one trial in four, kill the restart as well (a crash during recovery).
        // A write held in the proxy when the process died lands before the next start (a
        // write still in flight at a restart is the network suites' subject, below).
        let killed_run = |delay: u64| {
            proxy.schedule([Fault::DelayRequest(CALL)]);
            h.killed_run(&t.file, Duration::from_micros(delay));
            // The proxy reads what a killed process had sent a moment after it: wait that
            // moment, then for the held write.
            std::thread::sleep(Duration::from_millis(200));
            assert!(proxy.quiet(Duration::from_secs(10)), "{ctx}: a held write was let go");
            proxy.take_unplayed();
        };
        killed_run(rng.below(full * 6 / 5));
        if rng.below(4) == 0 {
            killed_run(rng.below(full * 6 / 5));
        }
        let restart_at = Timestamp::now();
        let out = h.json(&["--json", "run", "--case", t.file.to_str().unwrap()]);

        let step = step_s1(&out);
        let state = step["state"].as_str().unwrap();
        assert!(
            state == "succeeded" || state == "not_applied",
            "{ctx}: after the restart the step is settled, not {state}: {out}"
        );
        let recovered = out["recovered"].as_array().unwrap().iter().any(|r| r["plan_id"] == t.plan_id.as_str());

        let applied = state == "succeeded";
        let after = applied_at_most_once(&h, kind, &t, &before, applied, &ctx);

        settled.push(Settled { t, kind, ctx, applied, recovered, restart_at, after });
    }

    // The evidence of every trial, read once: started once; finished, or `unknown` and
    // then reconciled by a read, in agreement with the platform.
    let events = h.json(&["--json", "log", "list"]);
    let events = events.as_array().unwrap();
    let mut landed: BTreeMap<(Kind, Landed), usize> = BTreeMap::new();
    let mut ends: BTreeMap<&'static str, usize> = BTreeMap::new();
    for Settled { t, kind, ctx, applied, recovered, restart_at, after } in &settled {
        let started = of_plan(events, "step_started", &t.plan_id);
        let finished = of_plan(events, "step_finished", &t.plan_id);
        assert_eq!(started.len(), 1, "{ctx}: the write was started exactly once");
        let outcomes: Vec<&str> = finished.iter().map(|e| e["payload"]["outcome"].as_str().unwrap()).collect();
        match outcomes.as_slice() {
            ["succeeded"] => assert!(applied, "{ctx}"),
            ["unknown", last] => {
                assert_eq!(finished[1]["payload"]["response"]["reconciled"], true, "{ctx}: reconciled by a read");
                assert_eq!(*last == "succeeded", *applied, "{ctx}: the reconciliation agrees with the platform");
            }
            other => panic!("{ctx}: unexpected step_finished outcomes {other:?}"),
        }
        // What the final run recovered was left unfinished (a killed restart may have recovered it earlier).
        assert!(!recovered || outcomes[0] == "unknown", "{ctx}: recovered a step that had finished");
        let at: Timestamp = started[0]["at"].as_str().unwrap().parse().unwrap();
        let place = if outcomes[0] == "unknown" {
            Landed::DuringCall
        } else if at < *restart_at {
            Landed::AfterFinish
        } else {
            Landed::BeforeStart
        };
        *landed.entry((*kind, place)).or_default() += 1;
        *ends.entry(if *applied { "succeeded" } else { "not_applied" }).or_default() += 1;

        // The idempotency key makes a repeat of the recorded request a no-op.
        if *applied {
            let key = started[0]["payload"]["idempotency_key"].as_str().unwrap();
            let replay = h.replay(&started[0]["payload"]["request"], key);
            assert!(replay.status().is_success(), "{ctx}: replay answered {}", replay.status());
            assert_eq!(
                replay.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()),
                Some("true"),
                "{ctx}: the store recognised the key"
            );
            assert_eq!(&h.order(&t.order), after, "{ctx}: a replay changes nothing");
        }
    }

    let report = h.json(&["--json", "log", "verify"]);
    assert_eq!(report["ok"], true, "seed {seed}: the chain verifies after {trials} crashes: {report}");
    let steps = h.json(&["--json", "review", "list"]);
    assert_eq!(steps.as_array().unwrap().len(), 0, "seed {seed}: nothing left waiting");
    eprintln!(
        "{} trials in {:.1} s, seed {seed}: kills landed {landed:?}; steps ended {ends:?}",
        settled.len(),
        started_at.elapsed().as_secs_f32()
    );
    let during = landed.iter().filter(|((_, l), _)| *l == Landed::DuringCall).map(|(_, n)| n).sum::<usize>();
    let before = landed.iter().filter(|((_, l), _)| *l == Landed::BeforeStart).map(|(_, n)| n).sum::<usize>();
    assert!(
        trials < 30 || (during > 0 && before > 0),
        "seed {seed}: with {trials} trials some kills must land before the start and some during the call: {landed:?}"
    );
}

/// The seller messages with `text` in a conversation, read from the seller center itself.
fn seller_messages(h: &Harness, conversation: &str, text: &str) -> Vec<Value> {
    let url = format!("{}/conversations/{conversation}", h.server.url());
    let thread: Value = h.http.get(url).bearer_auth(TOKEN).send().unwrap().json().unwrap();
    thread["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["author"] == "seller" && m["text"] == text)
        .cloned()
        .collect()
}

#[test]
fn a_reply_whose_answer_is_lost_and_whose_sender_is_killed_lands_once() {
    let mut proxy = None;
    let h = Harness::start_with(|store_url| {
        let p = HoldingProxy::start(store_url);
        let source = format!(
            "\n[[sources]]\nname = \"demo-messages\"\nkind = \"demo_seller_center\"\nbase_url = {:?}\n\
             credential = \"demo_seller_center/demo\"\ntenant = \"acme\"\nstore = \"acme-us\"\n\
             platform = \"demo_seller_center\"\nchannel = \"chat\"\n",
            p.url
        );
        proxy = Some(p);
        source
    });
    let proxy = proxy.unwrap();
    let synced = h.json(&["--json", "sources", "sync"]);
    assert!(synced[0]["new_cases"].as_u64().unwrap() > 0, "{synced}");
    let case = "demo-messages:C-0001";
    let opened = h.json(&["--json", "open", case]);
    let plan = opened["plan_id"].as_str().unwrap().to_owned();
    let text = "Hi Sofia, I have prepared the cancellation of #W5918442; it needs one click from me.";

    let mut sender = h
        .command(&["--json", "reply", "send", case, "--plan", &plan, "--text", text])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    proxy.posted.recv_timeout(Duration::from_secs(60)).expect("the reply post reached the seller center");
    sender.kill().unwrap(); // SIGKILL: the answer never arrives, nothing after the post is recorded
    let status = sender.wait().unwrap();
    assert!(!status.success(), "the sender was killed, not finished");
    proxy.release.send(()).unwrap();

    let landed = seller_messages(&h, "C-0001", text);
    assert_eq!(landed.len(), 1, "the post landed before the kill");
    let kinds: Vec<String> = h
        .json(&["--json", "log", "list", "--case", case])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(kinds.contains(&"reply_sent".to_owned()), "{kinds:?}");
    assert!(!kinds.iter().any(|k| k.starts_with("reply_delivered")), "the kill came before the result: {kinds:?}");

    // The restart settles it with the same key: the seller center answers with the
    // message it posted, and the customer still has the reply once.
    let settled = h.json(&["--json", "reply", "deliver", case]);
    let sent = &settled["reply"]["sent"];
    assert_eq!(sent["delivery"], "delivered", "{settled}");
    assert_eq!(sent["message_id"], landed[0]["id"], "the message the first attempt posted");
    assert_eq!(seller_messages(&h, "C-0001", text).len(), 1, "never twice");
    let again = h.json(&["--json", "reply", "deliver", case]);
    assert_eq!(again["reply"]["sent"]["message_id"], landed[0]["id"]);
    assert_eq!(seller_messages(&h, "C-0001", text).len(), 1);
    assert_eq!(h.json(&["--json", "log", "verify"])["ok"], true);
}

/// The process killed at named durable boundaries of a step's run (`COUNTERSIGN_FAULT_AT`,
/// `countersign_engine::execute::FAULT_POINTS`), deterministically, not by a timer: after
/// `step_started` is durable (the call never went out), after the call returned (the write
/// landed, nothing recorded of it), after `step_finished`, and during recovery, right
/// after the settling send under the step's own key (a write that never went out, sent
/// by the recovery, killed again). Each trial is one refund; after
/// the kills, a plain `run` recovers. Goal: applied exactly once, started once, settled.
#[test]
fn deterministic_kill_points_at_every_durable_boundary_apply_each_write_once() {
    // (A write that landed is settled by the read that shows it, so the settling send, and
    // its kill point, only come after a kill before the call.)
    let schedules: [&[&str]; 4] = [
        &["after-step-started"],
        &["after-call"],
        &["after-step-finished"],
        &["after-step-started", "after-settling-send"],
    ];
    let rounds = count_from_env("COUNTERSIGN_FAULT_ROUNDS", 3);
    let h = Harness::start();
    let mut orders = Orders::seeded();
    let mut trials = 0;
    for round in 0..rounds {
        for (i, points) in schedules.iter().enumerate() {
            let n = 600 + round * schedules.len() + i;
            let (order, customer) = orders.next(Kind::Refund);
            let t = write_trial(&h, n, Kind::Refund, &order, &customer, format!("{}.{:02}", 2 + i, round));
            let ctx = format!("trial {n}: killed at {points:?}");
            let before = h.order(&t.order);
            h.queue_and_approve(&t, &ctx);
            for point in *points {
                h.aborted_run(&t, point, &ctx);
            }
            h.settles_once(Kind::Refund, &t, &before, &ctx);
            trials += 1;
        }
    }
    let verify = h.json(&["--json", "log", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    eprintln!("fault points: {trials} trials, each write applied once");
}

/// Writes through a faulty network (`FaultProxy` between the `countersign` process and the
/// seller center): each refund or cancel meets a seeded schedule of faults, the first of a
/// mode each trial takes in turn (the request delayed; dropped before it reached the
/// platform; forwarded, then the connection reset before the answer; its answer held past
/// the client's 1 s timeout), then up to three failing ones at random, so the connector's
/// own retries and the engine's settling send meet faults too; one trial in twelve a
/// storm of drops outlasts the run (left `unknown`, settled by the restart). Afterwards: the write applied
/// at most once, read over the store's API; the step settled in agreement with it
/// (succeeded iff applied; `unknown` only until a restart settles it); started exactly
/// once; the chain verifies. `COUNTERSIGN_NET_TRIALS` changes the count (12),
/// `COUNTERSIGN_CRASH_SEED` replays a run.
#[test]
fn writes_through_a_faulty_network_apply_at_most_once_and_settle_with_the_platform() {
    let seed = seed();
    let trials = count_from_env("COUNTERSIGN_NET_TRIALS", 12);
    eprintln!("network fault trials: {trials}, seed {seed} (replay with COUNTERSIGN_CRASH_SEED={seed})");
    let started_at = Instant::now();
    let mut rng = Rng(seed);
    let mut proxy = None;
    let h = Harness::build(|dir, store_url| {
        let p = FaultProxy::start(store_url);
        // The demo catalog with a 1 s timeout, so an answer held past it costs little.
        let source = std::fs::read_to_string(repo().join("assets/demo/catalog.toml")).unwrap();
        let catalog = dir.join("catalog.toml");
        std::fs::write(&catalog, source.replace("timeout_ms = 20000", "timeout_ms = 1000")).unwrap();
        let workspace = http_workspace(&catalog, &p.url);
        proxy = Some(p);
        workspace
    });
    let proxy = proxy.unwrap();
    let mut orders = Orders::seeded();
    let modes: [fn(&mut Rng) -> Fault; 4] = [
        |_| Fault::DropRequest,
        |_| Fault::ResetAfterForward,
        |r| Fault::DelayAnswer(Duration::from_millis(1100 + r.below(400))),
        |r| Fault::DelayRequest(Duration::from_millis(100 + r.below(1400))),
    ];

    let mut played: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut ends: BTreeMap<String, usize> = BTreeMap::new();
    let mut trials_done = Vec::new();
    for n in 0..trials {
        let kind = if n % 4 == 3 { Kind::Cancel } else { Kind::Refund };
        let (order, customer) = orders.next(kind);
        let amount = format!("{}.{:02}", 1 + rng.below(20), rng.below(100));
        let t = write_trial(&h, 300 + n, kind, &order, &customer, amount);
        let before = h.order(&t.order);
        h.queue_and_approve(&t, &format!("seed {seed}, trial {n}"));

        // Each mode first in turn, with 0, 1, 2, 3 failing faults after it in turn (every
        // fourth trial one more), so from trial 8 on the connector's three attempts all
        // fail and the engine's settling send meets what is left.
        let mut faults = vec![modes[n % modes.len()](&mut rng)];
        for _ in 0..(n / modes.len()) % 4 {
            let mode = usize::try_from(rng.below(3)).unwrap();
            faults.push(modes[mode](&mut rng));
        }
        // One trial in twelve (a drop first), a storm: the seller center unreachable for
        // every send the run makes (the call's three attempts, and each settling try's),
        // nothing landed.
        let storm = n % 12 == 4;
        if storm {
            faults = vec![Fault::DropRequest; 16];
        }
        let ctx = format!("seed {seed}, trial {n} ({kind:?} {} on {}, faults {faults:?})", t.amount, t.order);
        proxy.schedule(faults.iter().copied());
        let forwarded = proxy.forwarded();

        // The run meets the faults; a step left unknown is settled by the next start.
        let mut states = Vec::new();
        let state = loop {
            let out = h.json(&["--json", "run", "--case", t.file.to_str().unwrap()]);
            assert!(proxy.quiet(Duration::from_secs(10)), "{ctx}: a held write was let go");
            let state = step_s1(&out)["state"].as_str().unwrap().to_owned();
            states.push(state.clone());
            if !["running", "unknown"].contains(&state.as_str()) || states.len() == 3 {
                break state;
            }
        };
        let runs = states.len();
        assert!(
            !storm || states[0] == "unknown",
            "{ctx}: through the storm the write's fate is unknown, and so is the step at the end of the run \
             (never settled as not applied while the write may have landed): {states:?}"
        );
        let unplayed = proxy.take_unplayed().len();
        assert!(unplayed < faults.len(), "{ctx}: the write met its first fault");
        for f in &faults[..faults.len() - unplayed] {
            *played.entry(f.mode()).or_default() += 1;
        }
        assert!(
            ["succeeded", "not_applied", "failed"].contains(&state.as_str()),
            "{ctx}: settled once the faults are past (after {runs} runs), not {state}"
        );
        let applied = state == "succeeded";
        applied_at_most_once(&h, kind, &t, &before, applied, &ctx);
        assert!(!applied || proxy.forwarded() > forwarded, "{ctx}: an applied write went through the proxy");
        *ends.entry(format!("{state} after {runs} run(s)")).or_default() += 1;
        trials_done.push((t, ctx, applied));
    }

    let events = h.json(&["--json", "log", "list"]);
    let events = events.as_array().unwrap();
    let mut through_unknown = 0;
    for (t, ctx, applied) in &trials_done {
        let started = of_plan(events, "step_started", &t.plan_id);
        assert_eq!(started.len(), 1, "{ctx}: started exactly once (one attempt; settled under its own key)");
        let finished = of_plan(events, "step_finished", &t.plan_id);
        let outcomes: Vec<&str> = finished.iter().map(|e| e["payload"]["outcome"].as_str().unwrap()).collect();
        let (last, earlier) = outcomes.split_last().unwrap_or_else(|| panic!("{ctx}: the step finished"));
        assert!(earlier.iter().all(|o| *o == "unknown"), "{ctx}: only unknown before the end: {outcomes:?}");
        assert_eq!(*last == "succeeded", *applied, "{ctx}: the evidence agrees with the platform: {outcomes:?}");
        through_unknown += usize::from(!earlier.is_empty());
    }
    assert!(trials < 12 || through_unknown > 0, "seed {seed}: some writes were left unknown and settled");
    let report = h.json(&["--json", "log", "verify"]);
    assert_eq!(report["ok"], true, "seed {seed}: the chain verifies after {trials} trials: {report}");
    eprintln!(
        "{trials} network fault trials in {:.1} s, seed {seed}: faults played {played:?}; {through_unknown} went \
         through unknown; steps ended {ends:?}",
        started_at.elapsed().as_secs_f32()
    );
}

/// The browser connector's own point of no return under the kill-point suite: a
/// workspace acting on the seller center's pages in Chromium (the agent signed in by
/// hand), the process aborted right after the submit click, before the page's answer is
/// read (`after-submit-click`), with its browser killed at once too (a crash of the
/// session: the form's post may or may not have gone out). Also after `step_started`, the
/// recovery's settling send through the page then killed after its own click. A plain
/// `run` then settles each: read back, or sent again under the form's token. Refunds and
/// a cancel; applied once, started once, the chain verifies. `COUNTERSIGN_BROWSER_ROUNDS`
/// plays the schedules more times (1).
#[test]
fn browser_steps_killed_after_the_submit_click_apply_each_write_once() {
    let schedules: [(Kind, &[&str]); 3] = [
        (Kind::Refund, &["after-submit-click"]),
        (Kind::Cancel, &["after-submit-click"]),
        (Kind::Refund, &["after-step-started", "after-submit-click"]),
    ];
    let rounds = count_from_env("COUNTERSIGN_BROWSER_ROUNDS", 1);
    let started_at = Instant::now();
    let h = Harness::build(|dir, store_url| {
        std::fs::read_to_string(sign_in::browser_workspace(&repo(), dir, store_url)).unwrap()
    });
    let profile = h.dir.path().join("data/demo-browser/browser-profiles/demo_seller_center/demo");
    sign_in::sign_in_by_hand(&profile, &h.server.url(), TOKEN);
    let mut orders = Orders::seeded();
    let (mut landed_at_kill, mut tied, mut trials) = (0, 0, 0);
    for round in 0..rounds {
        for (i, (kind, points)) in schedules.iter().enumerate() {
            let n = 700 + round * schedules.len() + i;
            let (order, customer) = orders.next(*kind);
            let t = write_trial(&h, n, *kind, &order, &customer, format!("{}.{:02}", 3 + i, round));
            let ctx = format!("trial {n}: {kind:?} in the browser, killed at {points:?}");
            let before = h.order(&t.order);
            h.queue_and_approve(&t, &ctx);
            for point in *points {
                h.aborted_run(&t, point, &ctx);
                tied += usize::from(browser_ended_with_its_process(&profile, &ctx));
            }
            landed_at_kill += usize::from(h.order(&t.order) != before);
            h.settles_once(*kind, &t, &before, &ctx);
            trials += 1;
        }
    }
    let verify = h.json(&["--json", "log", "verify"]);
    assert_eq!(verify["ok"], true, "{verify}");
    eprintln!(
        "browser fault points: {trials} trials in {:.1} s, each write applied once ({landed_at_kill} had landed \
         at the kill; {tied} browsers running at the abort, each ended with its process)",
        started_at.elapsed().as_secs_f32()
    );
}

/// The Chromium an aborted `countersign` had running on `profile` (the process named in
/// the profile's `SingletonLock`, `HOST-PID`) ends with it: the product ties its browser
/// to the process that started it, so nothing holds the profile at the restart. The test
/// never closes it (a leftover would be the product's to close at the next start).
/// Whether a browser was running at the abort.
fn browser_ended_with_its_process(profile: &Path, ctx: &str) -> bool {
    let Ok(lock) = std::fs::read_link(profile.join("SingletonLock")) else { return false };
    let pid = lock.to_string_lossy().rsplit('-').next().unwrap_or_default().to_owned();
    assert!(pid.parse::<u32>().is_ok(), "{ctx}: the profile's lock names a process: {lock:?}");
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
    };
    // The kernel sent it SIGKILL as its parent exited; dying takes a moment. The bound
    // only keeps a broken build from hanging the suite.
    let until = Instant::now() + Duration::from_secs(30);
    while !gone() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone(), "{ctx}: the browser {pid} did not end with the process that started it");
    true
}
