//! The projection: every desk's evidence, from the team's evidence stream into
//! PostgreSQL, verified as it goes.
//!
//! One durable pull consumer ([`CONSUMER`]) reads `CS_EVIDENCE` in stream order, which is
//! each desk's log order (a desk publishes one event at a time, each expecting the one
//! before it). For each desk the projection keeps the last event it projected (seq and
//! hash) and checks every new one against it, with the store's own chain check
//! ([`countersign_store::check_event`]):
//!
//! - the event after the last one must hash, after the last hash, to the hash it carries
//!   (otherwise `bad_hash`: an edited body, a forged hash, a moved event);
//! - an event further on means events are missing (`gap`), once the stream read again
//!   from the last commit shows the same (a message lost on the way in a reconnect must
//!   not hold a desk);
//! - an event at a seq already projected must be the same event (a redelivery, dropped);
//!   a different one is a `fork`: the desk rewrote what it had reported;
//! - a `checkpoint` event must verify with the desk's key (the one it was enrolled with,
//!   if the admin gave it; otherwise pinned by its first good
//!   checkpoint) over a head that is the projected event it counts (`bad_signature`),
//!   checked by the engine's own [`check_checkpoints`].
//!
//! A desk's first bad event raises one alert (device, seq, hash, kind, detail) and holds
//! the desk: nothing of it is projected past the break, while every other desk keeps
//! flowing. Its later messages are acknowledged and stay in the stream.
//!
//! Given the team service's key ([`Witness`]), each verified checkpoint is also
//! co-signed (`countersign_trust::witness`, a C2SP signed note over the desk's count and
//! head), kept in `witnessed` and published under `witness.<device>` in the control
//! bucket, where the desk checks its own log against it (`countersign log verify`).
//!
//! Each batch is one transaction (its events in one `COPY`, each judged new against the
//! desk's committed position; the rest as idempotent multi-row inserts), and its
//! messages are acknowledged only after the commit. A crash
//! between the two redelivers the batch: the events are then found projected and
//! dropped, so nothing is doubled. A failed commit acknowledges nothing (the batch comes
//! again) and the desks' state is re-read from the database.
//!
//! The next batch is read and verified while the one before is written (a task of its
//! own), so the database and the verification work at once; a batch is written only
//! after the one before it is committed, and verified against where the desks stand
//! after it (a redelivery of an event of the batch being written is found in that
//! batch's hashes, which the database does not show yet).

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::pull;
use countersign_connectors::credentials::Secret;
use countersign_engine::checkpoints::{FoundCheckpoint, check_checkpoints};
use countersign_store::Hash;
use countersign_trust::keys::SecretKey;
use futures::StreamExt;
use serde::Deserialize;
use sqlx::postgres::PgPoolOptions;
pub use sqlx::postgres::{PgConnectOptions, PgPool};
use std::sync::Arc;

use countersign_plane::subjects::evidence_subject;

/// How long a batch waits for more messages after its first.
const LINGER: Duration = Duration::from_millis(10);

/// The durable consumer the team service reads the evidence stream with.
pub const CONSUMER: &str = "cs_projection";

/// The schema, embedded in the binary (`crates/team/migrations`, append-only).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Why the projection cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The database URL is not one PostgreSQL's client understands.
    #[error("the database URL: {0}")]
    BadUrl(String),
    /// The database refused or failed a statement.
    #[error("the database at {at}: {message}")]
    Database { at: String, message: String },
    /// The schema could not be brought up to date.
    #[error("migrating the database at {at}: {message}")]
    Migration { at: String, message: String },
    /// The team server refused or failed.
    #[error("the team server: {0}")]
    Server(String),
    /// The service's own key could not be read.
    #[error("the team service's key: {0}")]
    Witness(String),
    /// A desk could not be released.
    #[error("{0}")]
    Release(String),
}

/// How the projection runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The durable consumer's name ([`CONSUMER`] unless a test wants a fresh one).
    pub consumer: String,
    /// The most messages in one transaction.
    pub batch: usize,
    /// Co-sign each verified checkpoint (none: project only).
    pub witness: Option<Arc<Witness>>,
    /// The team folder, whose `team.toml` holds the evidence key each desk was enrolled
    /// with (if the admin gave one): a desk's checkpoints are held to it from the first.
    pub team_dir: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options { consumer: CONSUMER.into(), batch: 1000, witness: None, team_dir: None }
    }
}

/// The team service's witness: its team and the key it signs leases with.
#[derive(Debug)]
pub struct Witness {
    pub team: String,
    pub key: SecretKey,
}

impl Witness {
    /// The witness of the team whose folder is `dir` (`team.toml`, `service.key`).
    pub fn load(dir: &std::path::Path, team: &str) -> Result<Witness, ProjectError> {
        let key = SecretKey::read_file(&dir.join("service.key")).map_err(|e| ProjectError::Witness(e.to_string()))?;
        Ok(Witness { team: team.to_string(), key })
    }
}

/// The database, named without its password (for logs and errors).
pub fn describe(options: &PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        options.get_username(),
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

/// Read a database URL (kept secret: it may carry a password). A database that is not on
/// this machine is reached over TLS with its certificate verified (`sslmode=verify-full`,
/// and `sslrootcert=FILE` for a private CA): a URL that would send the password and the
/// team's evidence in the clear, or to a server whose name is not checked, is refused.
pub fn connect_options(url: &Secret) -> Result<PgConnectOptions, ProjectError> {
    // sqlx's own message can quote the URL: say only what is wrong with it.
    let options = url.expose().parse::<PgConnectOptions>().map_err(|_| {
        ProjectError::BadUrl("not a PostgreSQL URL (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)".into())
    })?;
    let host = options.get_host();
    let local = options.get_socket().is_some()
        || host.starts_with('/')
        || host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !local && !matches!(options.get_ssl_mode(), sqlx::postgres::PgSslMode::VerifyFull) {
        return Err(ProjectError::BadUrl(format!(
            "the database at {} is not on this machine: reach it over TLS with its certificate checked \
             (add ?sslmode=verify-full, and &sslrootcert=CA.pem for a private CA)",
            describe(&options)
        )));
    }
    Ok(options)
}

/// Open a pool on the database and bring its schema up to date.
pub async fn open(options: &PgConnectOptions) -> Result<PgPool, ProjectError> {
    let at = describe(options);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await
        .map_err(|e| ProjectError::Database { at: at.clone(), message: e.to_string() })?;
    MIGRATOR.run(&pool).await.map_err(|e| ProjectError::Migration { at, message: e.to_string() })?;
    Ok(pool)
}

/// A pool on the database as it is (no migration): for a command beside the service.
pub async fn connect(options: &PgConnectOptions) -> Result<PgPool, ProjectError> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options.clone())
        .await
        .map_err(|e| ProjectError::Database { at: describe(options), message: e.to_string() })
}

/// Open `database` (again and again, with back-off, while it cannot be reached), unless
/// `until` completes first (`None`). A database that cannot be migrated is an error.
pub async fn open_when_ready(
    database: &PgConnectOptions,
    until: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> Result<Option<PgPool>, ProjectError> {
    let mut wait = Duration::from_millis(500);
    loop {
        match open(database).await {
            Ok(pool) => return Ok(Some(pool)),
            Err(e @ ProjectError::Migration { .. }) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "waiting for the team's database"),
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = until.as_mut() => return Ok(None),
        }
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// Project the evidence stream into `database` until `stop` resolves. Connection
/// failures (the database or the server away) are logged and retried with back-off; only
/// a database that cannot be migrated stops it.
pub async fn run(
    client: async_nats::Client,
    database: PgConnectOptions,
    options: Options,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    tokio::pin!(stop);
    let mut backoff = Backoff::default();
    let pool = loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            opened = open(&database) => match opened {
                Ok(p) => break p,
                Err(e @ ProjectError::Migration { .. }) => return Err(e),
                Err(e) => tracing::warn!(error = %e, "the team database is not reachable; trying again"),
            },
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = backoff.wait() => {}
        }
    };
    tracing::info!(database = %describe(&database), "projecting the team's evidence");
    let js = jetstream::new(client);
    let mut backoff = Backoff::default();
    // A gap seen once is read again from the last commit before it is believed (a
    // message lost on the way, in a reconnect, would look like one).
    let mut confirm_gap: Option<u64> = None;
    loop {
        let pass = async {
            let mut projector =
                Projector::load(pool.clone(), js.clone(), &options.consumer, options.witness.clone()).await?;
            projector.enrolled.dir.clone_from(&options.team_dir);
            projector.confirm_gap = confirm_gap;
            // The team's quota, if any: the stream is made with its share when the lease
            // has not made it yet.
            let quota = options
                .team_dir
                .as_deref()
                .and_then(|d| countersign_plane::authority::TeamFile::read(d).ok())
                .and_then(|f| f.quota());
            let consumer = consumer(&js, &options.consumer, projector.committed, quota.as_ref()).await?;
            projector.publish_witnessed(None).await;
            let mut messages = consumer
                .stream()
                .max_messages_per_batch(options.batch)
                .messages()
                .await
                .map_err(|e| ProjectError::Server(e.to_string()))?;
            // A batch is what arrives within `LINGER` of its first message, up to
            // `options.batch`: a backlog goes in large transactions (one commit each),
            // a quiet stream's single event without waiting. While one batch is written,
            // the next is read and verified: the database and the verification take
            // turns no more (a batch is written only once the one before is committed).
            let mut writing: Option<Writing> = None;
            // A desk released meanwhile: the desks are loaded again, and the stream read
            // again from where the release says.
            let mut recheck = tokio::time::interval(release::RELEASE_CHECK);
            recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let next = match writing.as_mut() {
                    Some(w) => tokio::select! {
                        next = messages.next() => next,
                        done = &mut w.task => {
                            let Some(w) = writing.take() else { continue };
                            projector.settle(&w.messages, done).await?;
                            continue;
                        }
                        _ = recheck.tick() => {
                            let newest = release::newest(&projector.pool).await;
                            if !matches!(newest, Ok(n) if n <= projector.release_id) {
                                // Released, or the database away: the batch being
                                // written is settled first, never left unwatched.
                                if let Some(w) = writing.take() {
                                    let done = w.task.await;
                                    projector.settle(&w.messages, done).await?;
                                }
                                newest?;
                                return Ok(Again::Released);
                            }
                            continue;
                        }
                    },
                    None => tokio::select! {
                        next = messages.next() => next,
                        _ = recheck.tick() => {
                            if release::newest(&projector.pool).await? > projector.release_id {
                                return Ok(Again::Released);
                            }
                            continue;
                        }
                    },
                };
                let Some(first) = next else { break };
                let mut chunk = vec![first];
                let linger = tokio::time::sleep(LINGER);
                tokio::pin!(linger);
                while chunk.len() < options.batch {
                    tokio::select! {
                        next = messages.next() => match next {
                            Some(m) => chunk.push(m),
                            None => break,
                        },
                        () = &mut linger => break,
                    }
                }
                let mut batch = Vec::with_capacity(chunk.len());
                for m in chunk {
                    match m {
                        Ok(m) => batch.push(m),
                        // A missed heartbeat or a reconnect: what was read still counts.
                        Err(e) => tracing::warn!(error = %e, "reading the evidence stream"),
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let checked = projector.verify(&batch).await;
                if let Some(w) = writing.take() {
                    let done = w.task.await;
                    projector.settle(&w.messages, done).await?;
                }
                match checked {
                    Ok(Checked::Batch(rows)) => {
                        projector.in_flight = rows.batch.pending.clone();
                        let task = tokio::spawn(persist(
                            projector.pool.clone(),
                            projector.consumer.clone(),
                            projector.release_id,
                            rows,
                        ));
                        writing = Some(Writing { messages: batch, task });
                    }
                    Ok(Checked::Reread(at)) => return Ok(Again::Gap(at)),
                    Err(e) => {
                        nak(&batch).await;
                        return Err(e);
                    }
                }
            }
            if let Some(w) = writing.take() {
                let done = w.task.await;
                projector.settle(&w.messages, done).await?;
            }
            Err::<Again, _>(ProjectError::Server("the evidence stream's consumer ended".into()))
        };
        let started = std::time::Instant::now();
        tokio::select! {
            () = &mut stop => return Ok(()),
            result = pass => match result {
                Ok(Again::Gap(at)) => {
                    tracing::info!(stream_seq = at, "a gap: reading the stream again from the last commit");
                    confirm_gap = Some(at);
                    continue;
                }
                Ok(Again::Released) => {
                    tracing::info!("a desk released: reading the desks and the stream again");
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "projecting the evidence stream; starting again"),
            },
        }
        // A pass that ran a while was healthy: the next failure starts the back-off over.
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Backoff::default();
        }
        tokio::select! {
            () = &mut stop => return Ok(()),
            () = backoff.wait() => {}
        }
    }
}

/// The durable consumer, made afresh from the first message the database does not
/// have (`after`, the stream sequence committed last): the database, not the consumer's
/// acknowledgements, says where the projection is. So after any failure the stream comes
/// again in order from there, and no message a failed batch held can be overtaken by a
/// later one (which would look like a gap). The stream is made too if the lease has not
/// made it yet.
async fn consumer(
    js: &jetstream::Context,
    name: &str,
    after: u64,
    quota: Option<&countersign_plane::quota::Quota>,
) -> Result<jetstream::consumer::PullConsumer, ProjectError> {
    let server = |e: &dyn std::fmt::Display| ProjectError::Server(e.to_string());
    let stream =
        js.get_or_create_stream(countersign_plane::evidence::evidence_stream(quota)).await.map_err(|e| server(&e))?;
    match stream.delete_consumer(name).await {
        Ok(_) => {}
        Err(e)
            if matches!(e.kind(), jetstream::stream::ConsumerErrorKind::JetStream(j)
                if j.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) => {}
        Err(e) => return Err(server(&e)),
    }
    let config = pull::Config {
        durable_name: Some(name.to_string()),
        description: Some("Countersign: the team service's projection into PostgreSQL".into()),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence { start_sequence: after + 1 },
        filter_subject: evidence_subject("*"),
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 20_000,
        ..Default::default()
    };
    stream.create_consumer(config).await.map_err(|e| server(&e))
}

/// 0.5 s doubling to 30 s (reset after a pass that ran for over a minute).
#[derive(Debug, Default)]
struct Backoff(u32);

impl Backoff {
    async fn wait(&mut self) {
        let ms = 500u64.saturating_mul(1 << self.0.min(6)).min(30_000);
        self.0 = self.0.saturating_add(1);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Where one desk's chain stands on the team.
#[derive(Debug, Clone)]
struct Desk {
    key: Option<String>,
    last_seq: u64,
    last_hash: Hash,
    held_at: Option<u64>,
    /// What its steps' rows take from earlier in its chain.
    facts: crate::facets::DeskFacts,
}

impl Desk {
    fn new() -> Desk {
        Desk {
            key: None,
            last_seq: 0,
            last_hash: Hash::genesis(),
            held_at: None,
            facts: crate::facets::DeskFacts::default(),
        }
    }
}

/// The evidence keys desks were enrolled with (`team.toml` of the team folder), read
/// when a desk without a pinned key is first met.
#[derive(Debug, Default)]
struct Enrolled {
    dir: Option<std::path::PathBuf>,
    keys: BTreeMap<String, Option<String>>,
}

impl Enrolled {
    /// The key `device` was last enrolled with (its events still in the stream after a
    /// revocation were signed under it), if the admin gave one. A team file that cannot
    /// be read is an error, not "no key": the batch comes again, rather than letting the
    /// desk's first checkpoint pin whatever key signed it.
    fn key_of(&mut self, device: &str) -> Result<Option<String>, ProjectError> {
        let Some(dir) = self.dir.as_ref() else { return Ok(None) };
        if !self.keys.contains_key(device) {
            let file = countersign_plane::authority::TeamFile::read(dir)
                .map_err(|e| ProjectError::Server(format!("the desks' enrolled evidence keys: {e}")))?;
            // Records in enrolment order: the newest of each device wins.
            for d in &file.devices {
                self.keys.insert(d.name.clone(), d.device_key.clone());
            }
        }
        Ok(self.keys.entry(device.to_string()).or_default().clone())
    }
}

/// One evidence message as a desk sends it (`countersign_engine::team::outbox_events`).
/// The projected columns come from the hashed body, never from these copies beside it.
#[derive(Debug, Deserialize)]
struct Envelope {
    device: String,
    seq: u64,
    hash: String,
    body: String,
}

/// An alert a lead sees: a desk's first bad event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub device: String,
    /// The first bad event (for a gap, the first missing one).
    pub seq: u64,
    /// Its hash as it arrived, if it had one.
    pub hash: Option<String>,
    pub kind: AlertKind,
    pub detail: String,
    pub stream_seq: u64,
}

/// Why a desk is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// Events are missing before the one that arrived.
    Gap,
    /// A different event for a seq already projected: the desk rewrote its history.
    Fork,
    /// The event does not hash to what it carries after the last one (edited, forged,
    /// moved, or not an event at all).
    BadHash,
    /// A checkpoint whose signature, key or head does not hold.
    BadSignature,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Gap => "gap",
            AlertKind::Fork => "fork",
            AlertKind::BadHash => "bad_hash",
            AlertKind::BadSignature => "bad_signature",
        }
    }

    fn parse(text: &str) -> Option<AlertKind> {
        [AlertKind::Gap, AlertKind::Fork, AlertKind::BadHash, AlertKind::BadSignature]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// What verifying one batch found.
enum Checked {
    /// What to write, in one transaction.
    Batch(Box<Verified>),
    /// Nothing to write: a gap at this stream sequence, to be confirmed by reading again.
    Reread(u64),
}

/// A verified batch: its rows, where its desks then stand, and the stream sequence the
/// projection stands at once it is committed.
struct Verified {
    batch: Rows,
    desks: Vec<(String, Desk)>,
    stream_seq: u64,
}

/// A batch being written, and its messages, acknowledged once it is committed.
struct Writing {
    messages: Vec<jetstream::Message>,
    task: tokio::task::JoinHandle<Result<Committed, ProjectError>>,
}

/// A committed batch: the stream sequence the projection now stands at, and the desks
/// whose checkpoints it witnessed.
struct Committed {
    stream_seq: u64,
    witnessed: Vec<String>,
}

/// Hand a batch back, to come again shortly.
async fn nak(batch: &[jetstream::Message]) {
    for m in batch {
        let _ = m.ack_with(jetstream::AckKind::Nak(Some(Duration::from_secs(1)))).await;
    }
}

/// What became of one message.
enum Verdict {
    Project(Box<EventRow>, Option<CheckpointRow>, Option<Box<Derived>>),
    Known,
    Held,
    Bad { seq: u64, hash: Option<String>, kind: AlertKind, detail: String },
}

/// The projection's state: the database, and where each desk's chain stands there.
#[derive(Debug)]
struct Projector {
    pool: PgPool,
    /// The consumer's name, and the last stream sequence its batches committed.
    consumer: String,
    committed: u64,
    /// The last stream sequence of the batches verified (committed or being written).
    verified: u64,
    /// The hashes of the batch being written, by (device, seq): until it is committed,
    /// the database does not show them.
    in_flight: std::collections::HashMap<(String, u64), Hash>,
    enrolled: Enrolled,
    /// The stream sequence of a gap already seen once: seen again there, it is real.
    confirm_gap: Option<u64>,
    js: jetstream::Context,
    witness: Option<Arc<Witness>>,
    desks: BTreeMap<String, Desk>,
    /// The newest release applied when the desks were loaded.
    release_id: i64,
}

fn db(e: sqlx::Error) -> ProjectError {
    ProjectError::Database { at: "the team database".into(), message: e.to_string() }
}

fn i64_of(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A desk's row: device, key, last seq, last hash, held at.
/// A desk's row: device, key, last seq and hash, where held, pack, agent, edited plan.
type DeskRow =
    (String, Option<String>, i64, String, Option<i64>, Option<String>, Option<i64>, Option<String>, Option<String>);

impl Projector {
    async fn load(
        pool: PgPool,
        js: jetstream::Context,
        consumer: &str,
        witness: Option<Arc<Witness>>,
    ) -> Result<Projector, ProjectError> {
        let (committed, release_id) = release::start(&pool, consumer).await?;
        let rows: Vec<DeskRow> = sqlx::query_as(
            "SELECT device, device_key, last_seq, last_hash, held_at_seq, pack_id, pack_version, agent,
                        edited_plan::text FROM devices",
        )
        .fetch_all(&pool)
        .await
        .map_err(db)?;
        let mut desks = BTreeMap::new();
        for (device, key, last_seq, last_hash, held_at, pack_id, pack_version, agent, edited) in rows {
            let last_hash = Hash::from_hex(&last_hash).ok_or_else(|| ProjectError::Database {
                at: "the team database".into(),
                message: format!("device {device}'s last hash {last_hash:?} is not 64 hex digits"),
            })?;
            let desk = Desk {
                key,
                last_seq: last_seq.unsigned_abs(),
                last_hash,
                held_at: held_at.map(i64::unsigned_abs),
                facts: crate::facets::DeskFacts {
                    pack: pack_id.zip(pack_version.map(i64::unsigned_abs)),
                    agent,
                    edited: edited.and_then(|e| serde_json::from_str(&e).ok()),
                },
            };
            desks.insert(device, desk);
        }
        Ok(Projector {
            pool,
            consumer: consumer.to_string(),
            committed,
            verified: committed,
            in_flight: std::collections::HashMap::new(),
            enrolled: Enrolled::default(),
            confirm_gap: None,
            js,
            witness,
            desks,
            release_id,
        })
    }

    /// Take in how a batch's writing went: committed, its messages are acknowledged and
    /// its witnessed checkpoints published; failed, they are handed back, to come again
    /// (and the pass starts over from the database).
    async fn settle(
        &mut self,
        messages: &[jetstream::Message],
        done: Result<Result<Committed, ProjectError>, tokio::task::JoinError>,
    ) -> Result<(), ProjectError> {
        self.in_flight.clear();
        let committed = match done {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                nak(messages).await;
                return Err(e);
            }
            Err(e) => {
                nak(messages).await;
                return Err(ProjectError::Server(format!("writing a batch: {e}")));
            }
        };
        self.committed = committed.stream_seq;
        // Only now, the batch committed: all at once (each is a publish to the server).
        for acked in futures::future::join_all(messages.iter().map(jetstream::Message::ack)).await {
            if let Err(e) = acked {
                // Redelivered later, and then found projected: nothing doubles.
                tracing::warn!(error = %e, "acknowledging an evidence message");
            }
        }
        if !committed.witnessed.is_empty() {
            self.publish_witnessed(Some(&committed.witnessed)).await;
        }
        Ok(())
    }

    /// Put the newest witnessed checkpoint of each desk (of `only` those desks, or of
    /// all) in the control bucket. Best effort: the database keeps them, and every start
    /// of a pass puts them all again.
    async fn publish_witnessed(&self, only: Option<&[String]>) {
        if self.witness.is_none() {
            return;
        }
        let newest: Result<Vec<(String, String)>, sqlx::Error> = sqlx::query_as(
            "SELECT DISTINCT ON (device) device, note FROM witnessed
             WHERE $1::text[] IS NULL OR device = ANY($1) ORDER BY device, count DESC",
        )
        .bind(only.map(<[String]>::to_vec))
        .fetch_all(&self.pool)
        .await;
        let newest = match newest {
            Ok(n) => n,
            Err(e) => return tracing::warn!(error = %e, "reading the witnessed checkpoints"),
        };
        if newest.is_empty() {
            return;
        }
        let kv = match self.js.get_key_value(countersign_plane::subjects::CONTROL_BUCKET).await {
            Ok(kv) => kv,
            Err(e) => return tracing::warn!(error = %e, "the control bucket, for the witnessed checkpoints"),
        };
        for (device, note) in newest {
            let key = format!("{}{device}", countersign_plane::subjects::WITNESS_KEY_PREFIX);
            if let Err(e) = kv.put(&key, note.into_bytes().into()).await {
                tracing::warn!(error = %e, device, "publishing a witnessed checkpoint");
            }
        }
    }

    /// Verify one batch against where the desks stand after the batches before it
    /// (committed, or being written). Nothing is written here; if the batch's writing
    /// fails, the pass starts over from the database, so where the desks stand in
    /// memory may run ahead of the commits.
    async fn verify(&mut self, batch: &[jetstream::Message]) -> Result<Checked, ProjectError> {
        let mut desks = self.desks.clone();
        let mut touched = std::collections::BTreeSet::new();
        let mut rows = Rows::default();
        for m in batch {
            let stream_seq = m.info().map(|i| i.stream_sequence).unwrap_or(0);
            let Some(device) = m.subject.as_str().strip_prefix(&evidence_subject("")) else {
                tracing::warn!(subject = %m.subject, "not an evidence subject; skipped");
                continue;
            };
            let desk = desks.entry(device.to_string()).or_insert_with(Desk::new);
            if desk.key.is_none() {
                desk.key = self.enrolled.key_of(device)?;
            }
            let known = Known { pool: &self.pool, batch: &rows.pending, in_flight: &self.in_flight };
            let verdict = judge(&known, device, desk, &m.payload, stream_seq).await?;
            match verdict {
                Verdict::Known | Verdict::Held => {}
                Verdict::Project(event, checkpoint, stored) => {
                    if let Some(d) = stored {
                        rows.facets.take(device, d.at, d.case_id.as_deref(), &d.actor, &d.event, &mut desk.facts);
                    }
                    desk.last_seq = event.seq.unsigned_abs();
                    if let Some(h) = Hash::from_hex(&event.hash) {
                        desk.last_hash = h;
                        rows.pending.insert((device.to_string(), desk.last_seq), h);
                    }
                    if let Some(c) = checkpoint {
                        desk.key.get_or_insert_with(|| c.key.clone());
                        if let Some(w) = &self.witness {
                            let head = Hash::from_hex(&c.head).map(|h| h.0).unwrap_or_default();
                            let count = c.count.unsigned_abs();
                            match countersign_trust::witness::sign(&w.team, device, count, &head, &w.key) {
                                Ok(note) => rows.witnessed.push((device.to_string(), c.count, c.head.clone(), note)),
                                Err(e) => tracing::warn!(error = %e, device, "co-signing a checkpoint"),
                            }
                        }
                        rows.checkpoints.push(c);
                    }
                    rows.events.push(*event);
                    touched.insert(device.to_string());
                }
                Verdict::Bad { kind: AlertKind::Gap, .. } if self.confirm_gap != Some(stream_seq) => {
                    // Nothing of this batch is written; it comes again, in order.
                    return Ok(Checked::Reread(stream_seq));
                }
                Verdict::Bad { seq, hash, kind, detail } => {
                    tracing::warn!(
                        device,
                        seq,
                        kind = kind.as_str(),
                        detail,
                        "a desk's evidence does not verify; held"
                    );
                    desk.held_at = Some(seq);
                    rows.alerts.push(Alert { device: device.to_string(), seq, hash, kind, detail, stream_seq });
                    touched.insert(device.to_string());
                }
            }
        }
        let last = batch.iter().filter_map(|m| m.info().ok().map(|i| i.stream_sequence)).max().unwrap_or(0);
        self.verified = self.verified.max(last);
        let touched = touched.into_iter().filter_map(|d| desks.get(&d).cloned().map(|desk| (d, desk))).collect();
        self.desks = desks;
        Ok(Checked::Batch(Box::new(Verified { batch: rows, desks: touched, stream_seq: self.verified })))
    }
}

/// Write one verified batch in one transaction: its rows, where its desks now stand,
/// and where the projection stands in the stream.
async fn persist(pool: PgPool, consumer: String, release_id: i64, v: Box<Verified>) -> Result<Committed, ProjectError> {
    let Verified { batch: rows, desks, stream_seq } = *v;
    let mut tx = pool.begin().await.map_err(db)?;
    for (device, d) in &desks {
        sqlx::query(
            "INSERT INTO devices (device, device_key, last_seq, last_hash, held_at_seq, pack_id, pack_version,
               agent, edited_plan, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, now())
             ON CONFLICT (device) DO UPDATE SET device_key = EXCLUDED.device_key,
               last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash,
               held_at_seq = EXCLUDED.held_at_seq, pack_id = EXCLUDED.pack_id,
               pack_version = EXCLUDED.pack_version, agent = EXCLUDED.agent,
               edited_plan = EXCLUDED.edited_plan, updated_at = now()",
        )
        .bind(device)
        .bind(&d.key)
        .bind(i64_of(d.last_seq))
        .bind(d.last_hash.to_hex())
        .bind(d.held_at.map(i64_of))
        .bind(d.facts.pack.as_ref().map(|p| p.0.as_str()))
        .bind(d.facts.pack.as_ref().map(|p| i64_of(p.1)))
        .bind(d.facts.agent.as_deref().map(pg_text))
        .bind(d.facts.edited.as_ref().map(|e| pg_json(&serde_json::json!(e))))
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    }
    write_rows(&mut tx, &rows).await?;
    sqlx::query(
        "INSERT INTO projection (consumer, stream_seq, release_id) VALUES ($1, $2, $3)
         ON CONFLICT (consumer) DO UPDATE SET stream_seq = EXCLUDED.stream_seq, release_id = EXCLUDED.release_id",
    )
    .bind(&consumer)
    .bind(i64_of(stream_seq))
    .bind(release_id)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    let mut witnessed: Vec<String> = rows.witnessed.into_iter().map(|(d, ..)| d).collect();
    witnessed.sort();
    witnessed.dedup();
    Ok(Committed { stream_seq, witnessed })
}

/// Where a projected event's hash is found: this batch, the batch being written, the
/// database.
struct Known<'a> {
    pool: &'a PgPool,
    batch: &'a std::collections::HashMap<(String, u64), Hash>,
    in_flight: &'a std::collections::HashMap<(String, u64), Hash>,
}

/// The hash of `device`'s event `seq` on the team: this batch's, the one's being
/// written, else the database's.
async fn hash_at(known: &Known<'_>, device: &str, seq: u64) -> Result<Option<Hash>, ProjectError> {
    if seq == 0 {
        return Ok(Some(Hash::genesis()));
    }
    let key = (device.to_string(), seq);
    if let Some(h) = known.batch.get(&key).or_else(|| known.in_flight.get(&key)) {
        return Ok(Some(*h));
    }
    // A deleted event (retention) keeps its place in the chain as a tombstone.
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT hash FROM events WHERE device = $1 AND seq = $2
         UNION ALL SELECT hash FROM tombstones WHERE device = $1 AND seq = $2 LIMIT 1",
    )
    .bind(device)
    .bind(i64_of(seq))
    .fetch_optional(known.pool)
    .await
    .map_err(db)?;
    Ok(found.and_then(|(h,)| Hash::from_hex(&h)))
}

/// Check one message of `device` against where its chain stands.
async fn judge(
    known: &Known<'_>,
    device: &str,
    desk: &Desk,
    payload: &[u8],
    stream_seq: u64,
) -> Result<Verdict, ProjectError> {
    if desk.held_at.is_some() {
        return Ok(Verdict::Held);
    }
    let next = desk.last_seq + 1;
    // What arrived is the sender's: kept short and as PostgreSQL can store it.
    let bad = |seq, hash: Option<&str>, kind, detail: String| Verdict::Bad {
        seq,
        hash: hash.map(|h| pg_text(&h.chars().take(128).collect::<String>())),
        kind,
        detail: pg_text(&detail),
    };
    let envelope: Envelope = match serde_json::from_slice(payload) {
        Ok(e) => e,
        Err(e) => {
            return Ok(bad(
                next,
                None,
                AlertKind::BadHash,
                format!("stream message {stream_seq} is not an event: {e}"),
            ));
        }
    };
    let seq = envelope.seq;
    let Some(hash) = Hash::from_hex(&envelope.hash) else {
        return Ok(bad(seq, Some(&envelope.hash), AlertKind::BadHash, "its hash is not 64 hex digits".into()));
    };
    let hash_text = Some(envelope.hash.as_str());
    if envelope.device != device {
        let detail = format!("it names device {:?} on {device}'s subject", envelope.device);
        return Ok(bad(seq, hash_text, AlertKind::BadHash, detail));
    }
    if seq == 0 {
        return Ok(bad(seq, hash_text, AlertKind::BadHash, "an event numbered 0".into()));
    }
    if seq < next {
        return Ok(match hash_at(known, device, seq).await? {
            Some(h) if h == hash => Verdict::Known,
            Some(h) => bad(
                seq,
                hash_text,
                AlertKind::Fork,
                format!("event {seq} is {h} on the team; this one is {hash}: the desk rewrote what it had reported"),
            ),
            None => bad(seq, hash_text, AlertKind::Fork, format!("event {seq} again, but the team has none at {seq}")),
        });
    }
    if seq > next {
        let detail = format!("events {next} to {} are missing: event {seq} ({hash}) came next", seq - 1);
        return Ok(bad(next, None, AlertKind::Gap, detail));
    }
    if let Err(broken) = countersign_store::check_link(&desk.last_hash, seq, &envelope.body, &hash) {
        return Ok(bad(seq, hash_text, AlertKind::BadHash, broken.problem.to_string()));
    }
    // The body's fields, its payload left as text: read into its type only for the kinds
    // the team view derives from, and for checkpoints.
    let event: Header<'_> = match serde_json::from_str(&envelope.body) {
        Ok(h) => h,
        Err(e) => return Ok(bad(seq, hash_text, AlertKind::BadHash, format!("the body is not an event: {e}"))),
    };
    if event.seq != seq {
        return Ok(bad(seq, hash_text, AlertKind::BadHash, format!("its body says seq {}", event.seq)));
    }
    let typed = |kind: &str| countersign_core::evidence::Event::from_text(kind, event.payload.get());
    let mut checkpoint = None;
    if event.kind == "checkpoint" {
        let read = typed(&event.kind).ok();
        let Some(countersign_core::evidence::Event::Checkpoint { count, head, device_key, signature }) = read.clone()
        else {
            return Ok(bad(seq, hash_text, AlertKind::BadSignature, "an unreadable checkpoint".into()));
        };
        if let Some(pinned) = &desk.key
            && !pinned.eq_ignore_ascii_case(&device_key)
        {
            let detail = format!("signed with key {device_key}, not the desk's key {pinned}");
            return Ok(bad(seq, hash_text, AlertKind::BadSignature, detail));
        }
        let head_on_team = if count < seq { hash_at(known, device, count).await? } else { None };
        let report =
            check_checkpoints(
                &[FoundCheckpoint { seq, event: read }],
                |n| {
                    if n == count { head_on_team } else { None }
                },
            );
        if !report.ok {
            let problem = report.checkpoints.into_iter().find_map(|c| c.problem).unwrap_or_default();
            return Ok(bad(seq, hash_text, AlertKind::BadSignature, problem));
        }
        checkpoint = Some(CheckpointRow {
            device: device.to_string(),
            seq: i64_of(seq),
            count: i64_of(count),
            head,
            key: device_key,
            signature,
        });
    }
    let derived = if crate::facets::derives_from(&event.kind) {
        crate::facets::read(&event.kind, event.payload.get()).ok().map(|typed| {
            Box::new(Derived { at: event.at, case_id: event.case_id.clone(), actor: event.actor.clone(), event: typed })
        })
    } else {
        None
    };
    let payload = match payload_text(&envelope.body, event.payload.get()) {
        Ok(p) => p,
        Err(e) => {
            let detail = format!("its payload is not one the team's store can keep: {e}");
            return Ok(bad(seq, hash_text, AlertKind::BadHash, detail));
        }
    };
    let row = EventRow {
        hash: envelope.hash.clone(),
        device: device.to_string(),
        seq: i64_of(seq),
        prev: desk.last_hash.to_hex(),
        at: event.at.to_string(),
        case_id: event.case_id.as_deref().map(pg_text),
        kind: pg_text(&event.kind),
        actor: pg_text(&event.actor),
        payload,
        body: envelope.body.clone(),
        stream_seq: i64_of(stream_seq),
    };
    Ok(Verdict::Project(Box::new(row), checkpoint, derived))
}

/// An event's canonical body (the store's fields, no other), its payload left as text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Header<'a> {
    actor: String,
    at: jiff::Timestamp,
    case_id: Option<String>,
    kind: String,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
    seq: u64,
}

/// What the team view derives from one verified event.
#[derive(Debug)]
pub(crate) struct Derived {
    at: jiff::Timestamp,
    case_id: Option<String>,
    actor: String,
    event: countersign_core::evidence::Event,
}

mod read;
pub mod release;
mod rows;

/// Why a pass of the projection ends to start again at once.
enum Again {
    /// A gap seen: read again from the last commit, to confirm it.
    Gap(u64),
    /// A desk released: its state and the stream read again.
    Released,
}
pub use read::*;
pub use rows::copy_field;
pub(crate) use rows::pg_text;
use rows::{CheckpointRow, EventRow, Rows, payload_text, pg_json, write_rows};
