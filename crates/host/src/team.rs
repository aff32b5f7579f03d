//! Joining a workspace's engine to its team, when its data folder holds an enrolment
//! (`team.toml`, written by `countersign team join`): the link to the team's server
//! (`countersign_plane::link`), the engine joined over it, and the pump that hands every
//! entry the link sees to the engine. Without that file nothing here runs: solo stays
//! exactly as it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use countersign_connectors::credentials::KeyringStore;
use countersign_engine::team::{DeskReport, EntryOutcome, OutboxCursor, TeamPort, TeamSettings};
use countersign_engine::{Engine, EngineError};
use countersign_plane::authority::{Enrollment, device_transport_key};
use countersign_plane::evidence::Outgoing;
use countersign_plane::link::{LinkConfig, TeamLink};
use countersign_plane::subjects::Role;
use countersign_trust::keys::PublicKey;

/// The enrolment in a workspace's data folder.
pub const ENROLLMENT_FILE: &str = "team.toml";

/// The link a joined engine publishes through, for the engine's [`TeamPort`].
#[derive(Debug)]
pub struct LinkPort(pub Arc<TeamLink>);

impl TeamPort for LinkPort {
    fn put(&self, key: &str, value: Vec<u8>) -> Result<(), String> {
        self.0.put(key, value).map(|_| ())
    }

    fn create(&self, key: &str, value: Vec<u8>) -> Result<bool, String> {
        self.0.create(key, value).map(|r| r.is_some())
    }

    fn connected(&self) -> bool {
        self.0.connected()
    }

    fn ask_view(&self, device: &str, body: Vec<u8>) -> Result<Vec<u8>, String> {
        self.0.ask_view(device, body, std::time::Duration::from_secs(20))
    }
}

fn config_error(path: &Path, message: impl std::fmt::Display) -> EngineError {
    EngineError::Config { message: format!("{}: {message}", path.display()) }
}

/// The enrolment kept in `data_dir`, if this workspace is in a team.
pub fn enrollment(data_dir: &Path) -> Result<Option<Enrollment>, EngineError> {
    let path = data_dir.join(ENROLLMENT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map(Some).map_err(|e| config_error(&path, e.to_string().trim_end())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(EngineError::io(&path, e)),
    }
}

/// Keep the enrolment file `from` (what the admin's `team enroll` wrote) in `data_dir`,
/// after checking that it was made for this device's transport key.
pub fn join(data_dir: &Path, from: &Path) -> Result<Enrollment, EngineError> {
    join_with(data_dir, from, &countersign_engine::credentials::keyring())
}

/// [`join`] with the device's keys in `keyring`.
pub fn join_with(data_dir: &Path, from: &Path, keyring: &KeyringStore) -> Result<Enrollment, EngineError> {
    let text = std::fs::read_to_string(from).map_err(|e| EngineError::io(from, e))?;
    let enrolled: Enrollment = toml::from_str(&text).map_err(|e| config_error(from, e.to_string().trim_end()))?;
    let mine = device_transport_key(keyring).map_err(|e| EngineError::Config { message: e.to_string() })?.public_key();
    let subject = jwt_subject(&enrolled.jwt).ok_or_else(|| config_error(from, "the enrolment's JWT is malformed"))?;
    if subject != mine {
        return Err(config_error(
            from,
            format!(
                "this enrolment is for transport key {subject}, not this device's ({mine}): enrol with the key \
                 `countersign team key` prints here"
            ),
        ));
    }
    PublicKey::from_hex(&enrolled.service_key, "service").map_err(|e| config_error(from, e))?;
    std::fs::create_dir_all(data_dir).map_err(|e| EngineError::io(data_dir, e))?;
    let path = data_dir.join(ENROLLMENT_FILE);
    std::fs::write(&path, text).map_err(|e| EngineError::io(&path, e))?;
    Ok(enrolled)
}

/// The `sub` of a JWT (the user's public key), unverified: the server checks it.
fn jwt_subject(jwt: &str) -> Option<String> {
    use base64::Engine as _;
    let body = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("sub")?.as_str().map(str::to_string)
}

/// When the engine's signed policy names a team (`[team]`), the enrolment must be that
/// team's, signed by its signer for this device's transport key (the role it names is
/// then the signed one). Without `[team]` the enrolment is taken as it is.
pub fn verify_enrollment(engine: &Engine, enrolled: &Enrollment, keyring: &KeyringStore) -> Result<(), EngineError> {
    let Some(t) = &engine.policy().team else { return Ok(()) };
    let mine = device_transport_key(keyring).map_err(|e| EngineError::Config { message: e.to_string() })?.public_key();
    enrolled
        .verify(&t.name, &t.signer, &t.service_key, &mine)
        .map_err(|e| EngineError::Config { message: e.to_string() })
}

/// Start the link of `enrolled` and join `engine` to the team. `url` overrides the
/// enrolment's (tests, a server moved). The enrolment is verified first
/// ([`verify_enrollment`]).
pub fn connect(engine: &mut Engine, enrolled: &Enrollment, url: Option<&str>) -> Result<Arc<TeamLink>, EngineError> {
    connect_with(engine, enrolled, url, &countersign_engine::credentials::keyring())
}

/// [`connect`] with the device's keys (transport and device key) in `keyring`.
pub fn connect_with(
    engine: &mut Engine,
    enrolled: &Enrollment,
    url: Option<&str>,
    keyring: &KeyringStore,
) -> Result<Arc<TeamLink>, EngineError> {
    verify_enrollment(engine, enrolled, keyring)?;
    let transport = device_transport_key(keyring).map_err(|e| EngineError::Config { message: e.to_string() })?;
    let seed = transport.seed().map_err(|e| EngineError::Config { message: e.to_string() })?;
    let signer = countersign_engine::device::device_key(keyring)?;
    let service_key = PublicKey::from_hex(&enrolled.service_key, "service")
        .map_err(|e| EngineError::Config { message: format!("the team's service key: {e}") })?;
    let link = TeamLink::start(LinkConfig {
        url: url.unwrap_or(&enrolled.url).to_string(),
        device: enrolled.device.clone(),
        jwt: enrolled.jwt.clone(),
        seed: countersign_connectors::credentials::Secret::new(seed),
        // Several lease intervals: a watch silent for longer is re-created.
        idle_restart: Duration::from_secs(15),
        // A lead's (or admin's) queue: the requests only they may read.
        whole_team: matches!(enrolled.role, Role::Lead | Role::Admin),
    })
    .map_err(|e| EngineError::TeamUnreachable { message: e.to_string() })?;
    let link = Arc::new(link);
    engine.join_team(
        TeamSettings {
            team: enrolled.team.clone(),
            device: enrolled.device.clone(),
            role: enrolled.role.policy_role().to_string(),
            service_key,
            signer,
        },
        Arc::new(LinkPort(link.clone())),
    )?;
    Ok(link)
}

/// Hand every entry the link has seen to the engine, waiting up to `wait` for the link's
/// first whole read of the team's bucket. Returns whether that read was complete (false:
/// the server was not reached in time; the engine then decides as cut off).
pub fn catch_up(engine: &Engine, link: &TeamLink, wait: Duration) -> bool {
    let synced = link.wait_synced(1, wait);
    // Everything of that read is queued by now; take it in.
    while let Ok(Some(update)) = link.next(Duration::from_millis(50)) {
        let _ = take_in(engine, link, &update);
    }
    synced
}

/// Feed the engine every entry the link sees, and put this desk's supervisor steps on
/// the plane for the leads, until `stop` is set (a thread of its own).
/// A lead's pause is taken in on the link's own thread the moment it arrives
/// ([`countersign_engine::team::PauseIntake`]): it holds at once, even while this thread
/// fetches a pack or writes. Every other entry is taken in here. `seen` hears what became
/// of each entry (of a pause taken in on the link, at this thread's next turn: within
/// [`POLL`] unless it is busy); the app notifies a lead of a new request. A team pause in
/// force is recorded in the desk's evidence once no other came for [`QUIET`], at most
/// [`RECORD_WITHIN`] after the first, by this thread or the sending thread, whichever is
/// free first (a decision or a gate that reads the pauses records it before); it goes to
/// the team with the sending thread's next batch ([`replicate`]).
pub fn pump(engine: &Engine, link: &TeamLink, stop: &AtomicBool, seen: &dyn Fn(&EntryOutcome)) {
    pump_observed(engine, link, stop, seen, None);
}

/// What hears, on the link's own thread, of each pause the intake put in force.
pub type IntakeObserver = Arc<dyn Fn(&EntryOutcome) + Send + Sync>;

/// [`pump`], with `on_intake` told on the link's own thread of each pause it put in
/// force, as it holds (the bench times pauses there).
pub fn pump_observed(
    engine: &Engine,
    link: &TeamLink,
    stop: &AtomicBool,
    seen: &dyn Fn(&EntryOutcome),
    on_intake: Option<IntakeObserver>,
) {
    // What the link's thread put in force, for `seen`; and when pauses not yet recorded
    // came, for whichever of the pump's threads records them first.
    let taken: Arc<std::sync::Mutex<Vec<EntryOutcome>>> = Arc::default();
    let unrecorded: Arc<Unrecorded> = Arc::default();
    let intake_guard = engine.pause_intake().map(|intake| {
        intake.warm();
        let (taken, unrecorded) = (taken.clone(), unrecorded.clone());
        link.set_intake(Some(Arc::new(move |update: &countersign_plane::link::Update| {
            let Some(outcome) = intake.take(&update.key, update.value.as_deref()) else { return false };
            if matches!(outcome, EntryOutcome::PauseSet { .. }) {
                if let Some(observe) = &on_intake {
                    observe(&outcome);
                }
                unrecorded.taken();
                taken.lock().unwrap_or_else(|e| e.into_inner()).push(outcome);
            }
            true
        })));
        // The intake stops with the pump (and before what it reads is dropped).
        IntakeGuard(link)
    });
    let heard = |outcomes: Vec<EntryOutcome>| outcomes.iter().for_each(seen);
    std::thread::scope(|scope| {
        // Sending (requests, evidence, the desk's report) on a thread of its own: a long
        // drain after an outage never holds up an entry arriving meanwhile.
        scope.spawn(|| send_loop(engine, link, stop, &unrecorded));
        while !stop.load(Ordering::SeqCst) {
            let wait = unrecorded.due_in().map_or(POLL, |due| due.clamp(Duration::from_millis(1), POLL));
            let outcome = match link.next(wait) {
                Ok(Some(update)) => take_entry(engine, link, &update),
                Ok(None) => None,
                Err(_) => break,
            };
            // What the link's thread took in, then this thread's own entry.
            heard(std::mem::take(&mut *taken.lock().unwrap_or_else(|e| e.into_inner())));
            if let Some(outcome) = outcome {
                if matches!(outcome, EntryOutcome::PauseSet { .. }) {
                    unrecorded.taken();
                }
                seen(&outcome);
            }
            unrecorded.record_if_due(engine);
        }
    });
    // Nothing is taken in after the last recording, and the face hears all it took.
    drop(intake_guard);
    heard(std::mem::take(&mut *taken.lock().unwrap_or_else(|e| e.into_inner())));
    record_seen(engine);
}

/// When the team pauses taken in and not yet recorded came: the first and the last.
#[derive(Debug, Default)]
struct Unrecorded(std::sync::Mutex<Option<(Instant, Instant)>>);

impl Unrecorded {
    fn taken(&self) {
        let now = Instant::now();
        let mut came = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *came = Some((came.map_or(now, |(first, _)| first), now));
    }

    /// How long until they are due to be recorded (`None`: nothing waits): once no other
    /// came for [`QUIET`], at most [`RECORD_WITHIN`] after the first.
    fn due_in(&self) -> Option<Duration> {
        let came = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        came.map(|(first, last)| {
            QUIET.saturating_sub(last.elapsed()).min(RECORD_WITHIN.saturating_sub(first.elapsed()))
        })
    }

    /// Record them if they are due (the pump's thread or its sending thread, whichever
    /// comes first; one at a time). One that cannot be written yet stays in force and is
    /// tried again after [`QUIET`].
    fn record_if_due(&self, engine: &Engine) {
        if self.due_in() != Some(Duration::ZERO) {
            return;
        }
        let before = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        let recorded = record_seen(engine);
        let mut came = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !recorded {
            let now = Instant::now();
            *came = Some((now, now));
        } else if *came == before {
            // One that came while the others were written waits for its own turn.
            *came = None;
        }
    }
}

/// Stops a link's intake when dropped.
struct IntakeGuard<'a>(&'a TeamLink);

impl Drop for IntakeGuard<'_> {
    fn drop(&mut self) {
        self.0.set_intake(None);
    }
}

/// How long the pump waits for an entry before it looks at what else is due.
const POLL: Duration = Duration::from_millis(100);

/// How long no other pause must arrive before those taken in are recorded.
const QUIET: Duration = Duration::from_millis(100);

/// How long a team pause taken in may wait to be recorded in the desk's evidence (it is
/// in force meanwhile, and every gate or decision records it first).
const RECORD_WITHIN: Duration = Duration::from_millis(250);

/// What a desk sends every 250 ms while the link is up: its supervisor steps' requests,
/// a batch of its evidence, and what it runs (at once when that changed, otherwise about
/// every minute: [`report_due`]). A round that found everything
/// sent is not read again until this process writes to the log or the link re-reads the
/// bucket (a reconnect); every [`RESEND_CHECK`] one read of the log's head tells whether
/// another process (the command line) wrote to it meanwhile. An idle desk's tick reads
/// nothing.
fn send_loop(engine: &Engine, link: &TeamLink, stop: &AtomicBool, unrecorded: &Unrecorded) {
    let mut last_report: Option<(Instant, DeskReport)> = None;
    // After a report that did not reach the team: not before then.
    let mut retry_at: Option<Instant> = None;
    let report_every = report_interval(&engine.team_status().map(|s| s.device).unwrap_or_default());
    let mut check_head = true;
    // The log's write count and the link's reads of the bucket when a round last sent
    // everything, when it was last checked, and how many events the log held then.
    let mut all_sent: Option<((u64, u64), std::time::Instant, u64)> = None;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(250));
        // Pauses taken in while the pump's thread is busy (a pack, a write) are recorded
        // here.
        unrecorded.record_if_due(engine);
        if !link.connected() {
            check_head = true;
            all_sent = None;
            continue;
        }
        if let Some(now) = engine.team_desk_report()
            && report_due(last_report.as_ref(), &now, report_every)
            && retry_at.is_none_or(|at| at <= Instant::now())
        {
            // Sent only once the team has it: one that failed (a pack's change among
            // them) goes again after REPORT_RETRY, not at the next interval.
            if put_report(link, &now) {
                last_report = Some((Instant::now(), now));
                retry_at = None;
            } else {
                retry_at = Some(Instant::now() + REPORT_RETRY);
            }
        }
        let writes = (engine.log_writes(), link.synced_rounds());
        if let Some((w, at, events)) = all_sent
            && w == writes
        {
            if at.elapsed() < RESEND_CHECK {
                continue;
            }
            if engine.log_count().is_ok_and(|n| n == events) {
                all_sent = Some((w, std::time::Instant::now(), events));
                continue;
            }
        }
        // Counted before the round: an event recorded during it is seen at the next check.
        let events = engine.log_count().ok();
        let mut done = true;
        if let Err(e) = engine.team_publish_requests() {
            tracing::warn!(error = %e, "supervisor steps could not be put on the team plane; trying again");
            done = false;
        }
        match replicate_some(engine, link, check_head, 1) {
            Ok(sent) => {
                check_head = false;
                // A full batch may have left more behind.
                done &= sent < BATCH as u64;
            }
            Err(e) => {
                tracing::warn!(error = %e, "evidence not sent to the team yet; trying again");
                check_head = true;
                done = false;
            }
        }
        all_sent = events.filter(|_| done).map(|n| (writes, std::time::Instant::now(), n));
    }
}

/// How often a desk with nothing new to send looks whether another process wrote to its
/// log.
const RESEND_CHECK: Duration = Duration::from_secs(5);

/// How often a desk tells the team what it runs when nothing changed, about: its last
/// contact, as a lead sees it. Every desk's report is a write to the team's control
/// bucket, the one every pause goes through: 500 desks every 15 s were 33 writes a
/// second there, and a lead's pause waited behind them (docs/benchmarks.md, runs AA–AC).
const REPORT_EVERY: Duration = Duration::from_secs(60);

/// How long a desk waits before it sends again a report that did not reach the team.
const REPORT_RETRY: Duration = Duration::from_secs(5);

/// Is a report due: none sent yet, what the desk runs changed since the last one (a pack
/// loaded, another role), or its interval has passed since?
fn report_due(last: Option<&(Instant, DeskReport)>, now: &DeskReport, every: Duration) -> bool {
    last.is_none_or(|(at, sent)| at.elapsed() >= every || DeskReport { at: now.at.clone(), ..sent.clone() } != *now)
}

/// A desk's own interval between reports: [`REPORT_EVERY`] give or take a quarter, fixed
/// by its name. Desks that started together (a team's server back after a restart, a
/// morning's shift) drift apart instead of all writing to the server in the same moment.
fn report_interval(device: &str) -> Duration {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(device.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let quarter = REPORT_EVERY / 4;
    let offset = u64::from_le_bytes(first) % (2 * quarter.as_millis() as u64 + 1);
    REPORT_EVERY - quarter + Duration::from_millis(offset)
}

/// Tell the team what this desk runs (its policy and pack), for the leads.
pub fn report(engine: &Engine, link: &TeamLink) {
    if let Some(r) = engine.team_desk_report() {
        put_report(link, &r);
    }
}

/// Put `r` on the plane; false when it did not reach the team (logged).
fn put_report(link: &TeamLink, r: &DeskReport) -> bool {
    let put = serde_json::to_vec(r).map_err(|e| e.to_string()).and_then(|v| link.put(&format!("desk.{}", r.device), v));
    if let Err(e) = &put {
        tracing::debug!(error = %e, "the desk report did not reach the team");
    }
    put.is_ok()
}

/// Hand one entry the link saw to the engine, and do what it asks of the face (fetch and
/// stage an announced pack). `None` when the engine could not take it in (logged).
/// A team pause it puts in force is recorded in the desk's evidence before it returns.
pub fn take_in(engine: &Engine, link: &TeamLink, update: &countersign_plane::link::Update) -> Option<EntryOutcome> {
    let outcome = take_entry(engine, link, update);
    record_seen(engine);
    outcome
}

/// Record the team pauses in force but not yet in the desk's evidence. One that cannot
/// be recorded yet stays in force (false: its caller tries again).
fn record_seen(engine: &Engine) -> bool {
    match engine.team_record_seen() {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "a team pause could not be recorded yet");
            false
        }
    }
}

fn take_entry(engine: &Engine, link: &TeamLink, update: &countersign_plane::link::Update) -> Option<EntryOutcome> {
    match engine.team_entry(&update.key, update.value.as_deref()) {
        Ok(EntryOutcome::PackAnnounced { version, object }) => {
            // Fetched and staged whole, then loaded at once: verified (signature, rising
            // version) as every pack is, and run from the next use case on.
            let staged = link
                .fetch_pack(&object)
                .and_then(|bytes| countersign_plane::packs::unbundle(&bytes, &engine.team_pack_dir()));
            match staged {
                Ok(()) => {
                    engine.team_pack_staged(version);
                    match load_staged_pack(engine) {
                        Some(Ok(info)) => tracing::info!(version = info.version, "running on the team's new pack"),
                        Some(Err(e)) => {
                            tracing::warn!(version, error = %e, "the team's new pack was refused");
                            engine.team_pack_refused(&object);
                        }
                        None => {}
                    }
                }
                Err(e) => tracing::warn!(version, error = %e, "the team's pack could not be fetched"),
            }
            Some(EntryOutcome::PackAnnounced { version, object })
        }
        Ok(outcome) => {
            tracing::debug!(key = %update.key, ?outcome, "team entry");
            Some(outcome)
        }
        Err(e) => {
            tracing::warn!(key = %update.key, error = %e, "a team entry could not be taken in");
            None
        }
    }
}

/// Where a workspace's enrolment would be.
pub fn enrollment_path(data_dir: &Path) -> PathBuf {
    data_dir.join(ENROLLMENT_FILE)
}

/// Events sent per publication.
const BATCH: usize = 256;

/// Send the team every event of this desk's log it does not have yet, oldest first,
/// moving the outbox on only as the team acknowledges them stored. With `check_head`
/// (at start, after a failure) the team's last event of this desk is read first: a desk
/// that crashed after the team stored a batch but before its outbox moved sends none of
/// it again. Returns how many events the team newly holds.
pub fn replicate(engine: &Engine, link: &TeamLink, check_head: bool) -> Result<u64, String> {
    replicate_some(engine, link, check_head, usize::MAX)
}

/// [`replicate`], at most `batches` batches of events.
fn replicate_some(engine: &Engine, link: &TeamLink, check_head: bool, batches: usize) -> Result<u64, String> {
    let device = engine.team_status().map(|s| s.device).ok_or("this desk is in no team")?;
    let text = |e: EngineError| e.to_string();
    let mut cursor = engine.outbox_cursor().map_err(text)?;
    if check_head {
        match link.evidence_head(&device)? {
            Some((seq, stream_seq, hash)) if seq >= cursor.sent_seq => {
                // Only this desk's own log moves the outbox: the team's last event must be
                // this log's event at that seq (a desk set up again under the same name
                // starts another log).
                let ours = engine.outbox_events(seq - 1, 1).map_err(text)?;
                if ours.first().is_none_or(|e| e.seq != seq || e.hash != hash) {
                    return Err(format!(
                        "the team's last event of this desk (#{seq}) is not this log's: another log ran under the \
                         name {device:?}; nothing is sent until an admin looks"
                    ));
                }
                cursor = OutboxCursor { sent_seq: seq, stream_seq };
                engine.outbox_advance(cursor).map_err(text)?;
            }
            held => {
                let held = held.map_or(0, |(seq, _, _)| seq);
                if held < cursor.sent_seq {
                    return Err(format!(
                        "the team holds this desk's evidence up to event {held}, but acknowledged up to {}: its store \
                         lost events (nothing is sent until someone looks)",
                        cursor.sent_seq
                    ));
                }
            }
        }
    }
    // The blobs first: an event that names one reaches the team after it. Only events
    // recorded before this round's blobs were listed go out in this round.
    let head = cursor.sent_seq + engine.outbox_pending().map_err(text)?;
    loop {
        let blobs = engine.blob_outbox(64).map_err(text)?;
        let Some((last, _)) = blobs.last() else { break };
        let last = *last;
        for (_, blob) in blobs {
            link.put_blob(&device, &blob.hash, &blob.media_type, blob.data)?;
        }
        engine.blob_outbox_advance(last).map_err(text)?;
    }
    let start = cursor.sent_seq;
    for _ in 0..batches {
        let mut batch = engine.outbox_events(cursor.sent_seq, BATCH).map_err(text)?;
        let full = batch.len() == BATCH;
        batch.retain(|e| e.seq <= head);
        if batch.is_empty() {
            return Ok(cursor.sent_seq - start);
        }
        let outgoing = batch.into_iter().map(|e| Outgoing { seq: e.seq, hash: e.hash, message: e.message }).collect();
        let published = link.publish_evidence(&device, cursor.stream_seq, outgoing);
        if let Some((sent_seq, stream_seq)) = published.last {
            cursor = OutboxCursor { sent_seq, stream_seq };
            engine.outbox_advance(cursor).map_err(text)?;
        }
        if let Some(e) = published.error {
            return Err(e);
        }
        if !full {
            break;
        }
    }
    Ok(cursor.sent_seq - start)
}

/// Load the pack the team published and this desk staged, if any: verified as every pack
/// is (its admin signature, a version above the one running), recorded as loaded or
/// refused; the staged copy goes either way. A pack staged by a run that stopped before
/// it loaded is loaded at the next start.
pub fn load_staged_pack(engine: &Engine) -> Option<Result<countersign_engine::PackInfo, EngineError>> {
    let dir = engine.team_pack_dir();
    if !dir.join("pack.toml").is_file() {
        return None;
    }
    let loaded = engine.load_pack(&dir);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => engine.team_pack_unstaged(),
        Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "the staged pack could not be removed"),
    }
    Some(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk_report(pack_version: Option<u64>, at: &str) -> DeskReport {
        DeskReport {
            device: "desk-1".into(),
            role: "agent".into(),
            operator: "agent-1".into(),
            policy_id: "demo-retail".into(),
            policy_version: 3,
            policy_hash: "abc".into(),
            pack_version,
            pack_digest: pack_version.map(|v| format!("digest-{v}")),
            at: at.into(),
            heard_at: None,
        }
    }

    #[test]
    fn a_desk_reports_at_once_when_what_it_runs_changes_and_otherwise_once_an_interval() {
        let every = Duration::from_secs(60);
        let sent = desk_report(Some(7), "2026-12-05T10:00:00Z");
        let now = desk_report(Some(7), "2026-12-05T10:00:20Z");
        assert!(report_due(None, &now, every), "the first report goes at once");
        let just_now = (Instant::now(), sent.clone());
        assert!(!report_due(Some(&just_now), &now, every), "the same, 20 s later: not yet");
        let loaded = desk_report(Some(8), "2026-12-05T10:00:20Z");
        assert!(report_due(Some(&just_now), &loaded, every), "a pack loaded: at once");
        let promoted = DeskReport { role: "lead".into(), ..now.clone() };
        assert!(report_due(Some(&just_now), &promoted, every), "another role: at once");
        let long_ago = (Instant::now() - Duration::from_secs(61), sent);
        assert!(report_due(Some(&long_ago), &now, every), "its interval passed");
    }

    #[test]
    fn desks_report_at_their_own_intervals_within_a_quarter_of_a_minute() {
        let intervals: Vec<Duration> = (0..500).map(|i| report_interval(&format!("desk-{i}"))).collect();
        let (low, high) = (REPORT_EVERY - REPORT_EVERY / 4, REPORT_EVERY + REPORT_EVERY / 4);
        assert!(intervals.iter().all(|d| (low..=high).contains(d)), "{intervals:?}");
        // Spread over the range, not bunched: each fifth of it holds some of the 500.
        let fifth = (high - low) / 5;
        for k in 0..5 {
            let (from, to) = (low + fifth * k, low + fifth * (k + 1));
            let n = intervals.iter().filter(|d| (from..to).contains(*d)).count();
            assert!(n >= 50, "{n} of 500 desks report every {from:?} to {to:?}");
        }
        // Fixed by the name: the same desk, the same interval.
        assert_eq!(report_interval("desk-7"), intervals[7]);
    }
}
