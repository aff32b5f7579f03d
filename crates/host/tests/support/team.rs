//! What the team tests share: a team on a real `nats-server`, desks joined through the
//! host (`join.rs`), the team service's projection into a real PostgreSQL, and readings
//! of the team's database. Included by `team.rs` and `team_view.rs` (`#[path]`).

#![allow(dead_code, reason = "each test file uses part of it")]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign_connectors::credentials::KeyringStore;
use countersign_core::policy::Outcome;
use countersign_engine::team::EntryOutcome;
use countersign_engine::{Clock, Engine};
use countersign_plane::link::TeamLink;
use countersign_plane::subjects::Role;
use countersign_test_support::nats::{TeamPlane, keyring};
use jiff::Timestamp;

use crate::join;

#[derive(Debug)]
pub struct Movable(pub Mutex<Timestamp>);

impl Movable {
    pub fn advance(&self, secs: i64) {
        let mut t = self.0.lock().unwrap();
        *t = t.checked_add(jiff::SignedDuration::from_secs(secs)).unwrap();
    }
}

impl Clock for Movable {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

pub fn demo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../assets/demo"))
}

/// The demo snapshot workspace (absolute paths) whose roster lists `lead-1` with
/// `lead_key`, the lead desk's device key.
pub fn workspace(dir: &Path, lead_key: &str) -> PathBuf {
    let text = countersign_test_support::demo::demo_workspace("workspace-snapshot.toml", &[])
        .replace("id = \"lead-demo\"", &format!("id = \"lead-1\"\nkey = {lead_key:?}"))
        .replace("id = \"demo-snapshot\"", "id = \"team-test\"")
        .replace("id = \"agent-demo\"", "id = \"agent-1\"");
    let path = dir.join("workspace.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Desk {
    pub engine: Engine,
    pub link: Arc<TeamLink>,
    pub _data: tempfile::TempDir,
}

impl Desk {
    /// Hand the engine what the link has seen until `done` holds (up to 15 s).
    pub fn pump_until(&self, what: &str, done: impl Fn(&Engine) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !done(&self.engine) {
            assert!(Instant::now() < deadline, "{what}: not within 15 s");
            if let Some(u) = self.link.next(Duration::from_millis(50)).unwrap() {
                countersign_host::team::take_in(&self.engine, &self.link, &u);
            }
        }
    }

    pub fn current(&self) -> bool {
        current(&self.engine)
    }

    /// Take in what arrives until `n` more leases came: anything put on the plane before
    /// them (the same bucket, in order) has arrived by then. Returns what came.
    pub fn pump_leases(&self, n: usize) -> Vec<EntryOutcome> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut seen = Vec::new();
        while seen.iter().filter(|o| matches!(o, EntryOutcome::Lease { .. })).count() < n {
            assert!(Instant::now() < deadline, "{n} leases not within 15 s");
            if let Some(u) = self.link.next(Duration::from_millis(50)).unwrap() {
                seen.extend(countersign_host::team::take_in(&self.engine, &self.link, &u));
            }
        }
        seen
    }
}

pub fn current(engine: &Engine) -> bool {
    engine.team_status().is_some_and(|s| s.current)
}

pub struct Team {
    pub plane: TeamPlane,
    pub workspace: PathBuf,
    pub _ws_dir: tempfile::TempDir,
    pub lead_keyring: KeyringStore,
}

pub fn team() -> Team {
    let plane = TeamPlane::start("acme", Duration::from_millis(250));
    let lead_keyring = keyring("lead");
    let lead_key = countersign_engine::device::device_key(&lead_keyring).unwrap().public("").to_hex();
    let ws_dir = tempfile::tempdir().unwrap();
    let workspace = workspace(ws_dir.path(), &lead_key);
    Team { plane, workspace, _ws_dir: ws_dir, lead_keyring }
}

/// [`team`] whose policy names the team (`[team]`, from the team's `team.toml`).
pub fn named_team() -> Team {
    let team = team();
    let f = &team.plane.authority.file;
    let policy = std::fs::read_to_string(demo().join("policy.toml")).unwrap()
        + &format!("\n[team]\nname = {:?}\nsigner = {:?}\nservice_key = {:?}\n", f.name, f.signer, f.service_key);
    let dir = team.workspace.parent().unwrap();
    std::fs::write(dir.join("policy.toml"), policy).unwrap();
    let text = std::fs::read_to_string(&team.workspace).unwrap();
    let to = format!("policy = {:?}", dir.join("policy.toml").display().to_string());
    let lines: Vec<String> =
        text.lines().map(|l| if l.starts_with("policy = ") { to.clone() } else { l.to_string() }).collect();
    assert!(lines.contains(&to), "the workspace names its policy: {text}");
    std::fs::write(&team.workspace, lines.join("\n")).unwrap();
    team
}

/// A desk enrolled as `role`, its engine opened with `operator` (the role the seat
/// claims; the enrolment's wins) and joined through the host.
pub fn desk(team: &mut Team, device: &str, role: Role, operator: (&str, &str), clock: Arc<dyn Clock>) -> Desk {
    let keys = if role == Role::Lead { team.lead_keyring.clone() } else { keyring(device) };
    let workspace = team.workspace.clone();
    let join::Joined { engine, link, data } =
        join::join(&mut team.plane, &workspace, &keys, device, role, operator, clock);
    // The agent called the customers of the demo's refund and password cases back.
    engine.record_identity_check("demo-02", "ava_moore_2033", "called back on the number on file").unwrap();
    engine.record_identity_check("demo-25", "harper_ahmed_5055", "called back on the number on file").unwrap();
    Desk { engine, link, _data: data }
}

pub fn system() -> Arc<dyn Clock> {
    Arc::new(countersign_engine::SystemClock)
}

/// The decision on the refund step (`s2`) of the demo's damaged-item case.
pub fn refund_decision(engine: &Engine) -> (Outcome, Vec<String>) {
    let (case, plan) =
        countersign_engine::cases::read_case(&demo().join("cases/02-damaged-item-small-refund.json"), None).unwrap();
    let decision = engine.decide(&case, &plan.unwrap()).unwrap();
    let step = decision.steps.iter().find(|s| s.step_id == "s2").unwrap();
    (step.decision, step.rule_ids.clone())
}

/// The agent runs the demo's password-reset case: its step waits for a lead.
pub fn supervisor_step(agent: &Desk) -> (String, String) {
    let (case, plan) =
        countersign_engine::cases::read_case(&demo().join("cases/25-password-reset-chat.json"), None).unwrap();
    agent.engine.run_case(&case, plan.as_ref()).unwrap();
    let waiting = agent.engine.review_queue().unwrap();
    let step = waiting.iter().find(|s| s.decision == "supervisor").expect("a supervisor step waits");
    (step.plan_id.clone(), step.step_id.clone())
}

pub fn state_of(desk: &Desk, plan: &str, step: &str) -> String {
    let steps = desk.engine.all_steps().unwrap();
    steps.iter().find(|s| s.plan_id == plan && s.step_id == step).unwrap().state.as_str().to_string()
}

/// `replicate` until it succeeds (the service makes the stream as it starts), up to 15 s.
pub fn replicate_until_ok(desk: &Desk) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match countersign_host::team::replicate(&desk.engine, &desk.link, true) {
            Ok(n) => return n,
            Err(e) => assert!(Instant::now() < deadline, "replication never succeeded: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The team holds exactly this desk's log: every event once, in order, same hashes.
pub fn team_holds_the_log(team: &Team, desk: &Desk, device: &str) {
    let local = desk.engine.log_list(&countersign_engine::LogFilter::default()).unwrap();
    let held = team.plane.evidence_of(device);
    let held: Vec<(u64, String)> =
        held.iter().map(|m| (m["seq"].as_u64().unwrap(), m["hash"].as_str().unwrap().to_string())).collect();
    let want: Vec<(u64, String)> = local.iter().map(|e| (e.seq, e.hash.clone())).collect();
    assert_eq!(held, want, "the team's copy of {device}'s log");
}

/// A part of the team service on a thread of its own, with the service's own
/// connection; stopped on drop.
pub struct ServiceThread {
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

/// The team service's projection (`countersign_team::project`).
pub type Projection = ServiceThread;

fn database(db: &countersign_test_support::postgres::Postgres) -> countersign_team::project::PgConnectOptions {
    countersign_team::project::connect_options(&countersign_engine::Secret::new(db.url())).expect("the URL")
}

impl ServiceThread {
    /// Run `work` with the service's connection and what resolves when it is stopped.
    pub fn spawn<F, Fut>(team: &Team, work: F) -> ServiceThread
    where
        F: FnOnce(async_nats::Client, futures::future::BoxFuture<'static, ()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let identity = countersign_plane::lease::ServiceIdentity::load(team.plane.dir.path(), Some(&team.plane.url()))
            .expect("the service's identity");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let client = identity.connect().await.map_err(|e| e.to_string())?;
                let until: futures::future::BoxFuture<'static, ()> = Box::pin(async {
                    let _ = stopped.await;
                });
                work(client, until).await
            })
        });
        ServiceThread { stop: Some(stop), thread: Some(thread) }
    }

    /// The projection into `db`, reading with the durable consumer `consumer`.
    pub fn start(team: &Team, db: &countersign_test_support::postgres::Postgres, consumer: &str) -> ServiceThread {
        let database = database(db);
        let witness = countersign_team::project::Witness::load(team.plane.dir.path(), "acme").expect("the service key");
        let options = countersign_team::project::Options {
            consumer: consumer.into(),
            batch: 100,
            witness: Some(std::sync::Arc::new(witness)),
            team_dir: Some(team.plane.dir.path().to_path_buf()),
        };
        ServiceThread::spawn(team, move |client, until| async move {
            countersign_team::project::run(client, database, options, until).await.map_err(|e| e.to_string())
        })
    }

    /// The leads' team view from `db` (`countersign_team::view`), trusting `trusted` for
    /// the team's packs.
    pub fn view(
        team: &Team,
        db: &countersign_test_support::postgres::Postgres,
        trusted: countersign_engine::keys::TrustedKeys,
    ) -> ServiceThread {
        let database = database(db);
        let options = countersign_team::view::ViewOptions { team: "acme".into(), trusted };
        ServiceThread::spawn(team, move |client, until| async move {
            countersign_team::view::run(client, database, options, until).await.map_err(|e| e.to_string())
        })
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("the service's thread").expect("the service stopped cleanly");
        }
    }
}

impl Drop for ServiceThread {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The test's own reading of the team's database.
pub struct TeamDb {
    pub rt: tokio::runtime::Runtime,
    pub pool: countersign_team::project::PgPool,
}

impl TeamDb {
    pub fn open(db: &countersign_test_support::postgres::Postgres) -> TeamDb {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let options =
            countersign_team::project::connect_options(&countersign_engine::Secret::new(db.url())).expect("the URL");
        let pool = rt.block_on(countersign_team::project::open(&options)).expect("the team database");
        TeamDb { rt, pool }
    }
}

impl TeamDb {
    pub fn events_of(&self, device: &str) -> Vec<(u64, String)> {
        self.rt.block_on(countersign_team::project::events_of(&self.pool, device)).unwrap()
    }

    pub fn alerts(&self) -> Vec<countersign_team::project::Alert> {
        self.rt.block_on(countersign_team::project::alerts(&self.pool)).unwrap()
    }

    pub fn count(&self) -> u64 {
        self.rt.block_on(countersign_team::project::event_count(&self.pool)).unwrap()
    }

    pub fn witnessed_of(&self, device: &str) -> Option<String> {
        self.rt.block_on(countersign_team::project::witnessed_of(&self.pool, device)).unwrap()
    }

    pub fn held_at(&self, device: &str) -> Option<u64> {
        self.rt.block_on(countersign_team::project::held_at(&self.pool, device)).unwrap()
    }

    pub fn raised_and_released(&self, device: &str, seq: u64) -> (Option<String>, u64) {
        self.rt.block_on(countersign_team::project::raised_and_released(&self.pool, device, seq)).unwrap()
    }

    /// Release `device` as `countersign-team release` does, its key on file `enrolled`.
    pub fn release(&self, device: &str, enrolled: Option<&str>) -> countersign_team::project::release::Released {
        let release = countersign_team::project::release::release(
            &self.pool,
            device,
            "admin-1",
            "looked at the alert",
            enrolled,
            false,
        );
        self.rt.block_on(release).unwrap()
    }

    pub fn checkpoints_of(&self, device: &str) -> Vec<(u64, u64, String)> {
        self.rt.block_on(countersign_team::project::checkpoints_of(&self.pool, device)).unwrap()
    }
}

/// Poll `done` until it holds, up to 20 s.
pub fn wait_for(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A desk's local log as (seq, hash).
pub fn local_log(desk: &Desk) -> Vec<(u64, String)> {
    let events = desk.engine.log_list(&countersign_engine::LogFilter::default()).unwrap();
    events.iter().map(|e| (e.seq, e.hash.clone())).collect()
}

/// The canonical body (the store's own) of an event `seq` of `kind` with `payload`.
pub fn body(seq: u64, kind: &str, payload: serde_json::Value) -> String {
    let event = countersign_store::NewEvent {
        case_id: Some("demo-02".into()),
        kind: kind.into(),
        actor: "agent-1".into(),
        at: Timestamp::now(),
        payload,
    };
    countersign_store::canonical_body(seq, &event).unwrap()
}

/// An evidence message as a desk sends it, carrying `body` and claiming `hash`.
pub fn message(
    device: &str,
    seq: u64,
    hash: &countersign_store::Hash,
    body: &str,
) -> countersign_plane::evidence::Outgoing {
    let m = serde_json::json!({
        "device": device, "seq": seq, "at": Timestamp::now(), "case_id": "demo-02", "kind": "note",
        "actor": "agent-1", "hash": hash.to_hex(), "body": body,
    });
    countersign_plane::evidence::Outgoing { seq, hash: hash.to_hex(), message: serde_json::to_vec(&m).unwrap() }
}

/// Publish `events` on `desk`'s own subject with its own credentials (a desk, or whoever
/// holds its credentials, rewriting what it reports), after what the team holds.
pub fn publish_raw(desk: &Desk, device: &str, events: Vec<countersign_plane::evidence::Outgoing>) {
    let (_, stream_seq, _) = desk.link.evidence_head(device).unwrap().expect("the desk has published before");
    let published = desk.link.publish_evidence(device, stream_seq, events);
    assert!(published.error.is_none(), "{published:?}");
}

pub fn hash(hex: &str) -> countersign_store::Hash {
    countersign_store::Hash::from_hex(hex).unwrap()
}

/// A `[[roster]]` entry for a lead `id` with device key `key`, granted the team view of
/// `desks` and every tenant.
pub fn roster_entry(id: &str, key: &str, desks: &[&str]) -> String {
    let hash =
        countersign_engine::roster::hash_passphrase(&countersign_engine::Secret::new(format!("{id} passphrase")))
            .unwrap();
    format!(
        "[[roster]]\nid = {id:?}\nrole = \"team_lead\"\npassphrase = {hash:?}\nkey = {key:?}\nview_desks = {desks:?}\n\
         view_tenants = [\"*\"]\n\n"
    )
}

/// The team's own pack (one version past the demo's: the demo's policy and catalog, and
/// `roster`), signed with `admin` into `dir/pack`.
pub fn team_pack(dir: &Path, admin: &countersign_engine::keys::SecretKey, roster: &str) -> PathBuf {
    team_pack_with(dir, admin, roster, |p| p)
}

/// [`team_pack`] whose policy is the demo's edited by `policy`.
pub fn team_pack_with(
    dir: &Path,
    admin: &countersign_engine::keys::SecretKey,
    roster: &str,
    policy: impl Fn(String) -> String,
) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::copy(demo().join("catalog.toml"), src.join("catalog.toml")).unwrap();
    std::fs::write(src.join("policy.toml"), policy(std::fs::read_to_string(demo().join("policy.toml")).unwrap()))
        .unwrap();
    std::fs::write(src.join("roster.toml"), roster).unwrap();
    // One version past the demo pack's, whatever the demo is at.
    let version = countersign_test_support::packs::demo_pack_version() + 1;
    std::fs::write(src.join("pack-source.toml"), countersign_test_support::packs::demo_source_at(version)).unwrap();
    let out = dir.join("pack");
    countersign_engine::pack::sign_pack(&src.join("pack-source.toml"), &out, admin).unwrap();
    out
}

/// [`team_pack`] signed with `admin_key` into `dir` and published on the plane from the
/// admin's desk `admin`: what the desks and the team service then read.
pub fn publish_team_pack(
    admin: &Desk,
    dir: &Path,
    admin_key: &countersign_engine::keys::SecretKey,
    roster: &str,
) -> countersign_engine::PackInfo {
    publish_team_pack_with(admin, dir, admin_key, roster, |p| p)
}

/// [`publish_team_pack`] whose policy is the demo's edited by `policy`.
pub fn publish_team_pack_with(
    admin: &Desk,
    dir: &Path,
    admin_key: &countersign_engine::keys::SecretKey,
    roster: &str,
    policy: impl Fn(String) -> String,
) -> countersign_engine::PackInfo {
    let pack = team_pack_with(dir, admin_key, roster, policy);
    let trusted = countersign_engine::keys::TrustedKeys::new(vec![admin_key.public("admin")]);
    let info = countersign_engine::pack::verify_pack(&pack, &trusted).unwrap().info;
    admin.link.publish_pack(&pack, info.version, &info.digest, "admin-1").unwrap();
    info
}
