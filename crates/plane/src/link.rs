//! A desktop's link to its team's server: it watches the control bucket (pauses and the
//! lease) and hands every entry to whoever pumps [`TeamLink::next`] (the host feeds them
//! to the engine), and it publishes what the engine signs ([`TeamLink::put`]).
//!
//! A key-value watch can stop without a word after a server restart (a known class of
//! client defects), so the watch is never trusted to stay alive: it is re-created, and
//! the bucket re-read, after every reconnect, after any error or end, with back-off,
//! and whenever nothing at all arrived for longer than the lease interval allows. If it
//! still dies, the engine sees no fresh lease and falls back (the lease travels on the
//! same bucket as the pauses).
//!
//! The link runs on a small runtime of its own; its blocking calls are safe from any
//! thread, including one that belongs to another runtime.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

use async_nats::jetstream::kv::Operation;
use async_nats::{ConnectOptions, Event};
use countersign_connectors::credentials::Secret;
use futures::StreamExt;
use nkeys::KeyPair;

use crate::PlaneError;
use crate::subjects::{CONTROL_BUCKET, REQUESTS_BUCKET, bucket_of_key, inbox_prefix};

/// An entry of the control bucket as the link saw it (`None`: the key was deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// What takes an entry in on the link's own thread as it arrives (a lead's pause, so
/// that it holds without waiting for the thread that pumps [`TeamLink::next`]): true when
/// it took the entry, which is then not queued for [`TeamLink::next`]. It runs on the
/// link's runtime: it must be quick and must not call the link.
pub type Intake = Arc<dyn Fn(&Update) -> bool + Send + Sync>;

/// The link's intake, if one is set; read for every entry, held while it runs.
#[derive(Default)]
struct IntakeSlot(std::sync::RwLock<Option<Intake>>);

impl std::fmt::Debug for IntakeSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.0.read().unwrap_or_else(|e| e.into_inner()).is_some();
        f.debug_struct("IntakeSlot").field("set", &set).finish()
    }
}

impl IntakeSlot {
    /// Did the intake (if any) take `update`? One that panics takes nothing (the entry is
    /// queued as without it): the watch goes on.
    fn take(&self, update: &Update) -> bool {
        let slot = self.0.read().unwrap_or_else(|e| e.into_inner());
        let Some(take) = slot.as_ref() else { return false };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| take(update))).unwrap_or_else(|_| {
            tracing::error!(key = %update.key, "the link's intake failed on an entry; it is queued instead");
            false
        })
    }
}

/// How a desktop reaches its team.
#[derive(Debug)]
pub struct LinkConfig {
    pub url: String,
    pub device: String,
    /// The device's user JWT (from its enrolment).
    pub jwt: String,
    /// The device's transport seed (from its keyring).
    pub seed: Secret,
    /// Re-create the watch when nothing arrived for this long (a few lease intervals).
    pub idle_restart: Duration,
    /// A lead's or admin's desk: watch the requests' bucket too (its queue; its entries
    /// come through [`TeamLink::next`] with the control bucket's), and every key of the
    /// control bucket (every desk's report, every answer, every witnessed checkpoint).
    /// Otherwise only the control keys that concern this desk ([`desk_keys`]): a team's
    /// agents do not each hear every other desk's reports.
    pub whole_team: bool,
}

/// The control bucket's keys an agent's desk watches: the lease, the pack, every pause,
/// and the answers to its own requests and its own witnessed checkpoints.
pub fn desk_keys(device: &str) -> Vec<String> {
    vec![
        crate::lease::LEASE_KEY.to_string(),
        crate::packs::PACK_KEY.to_string(),
        "pause.>".to_string(),
        format!("answer.{device}.>"),
        format!("{}{device}", crate::subjects::WITNESS_KEY_PREFIX),
    ]
}

/// NATS options for a user JWT signed in with `key`, its inbox under the device's
/// prefix (the only one its permissions allow). TLS is required unless the URL's host
/// is on loopback.
pub fn connect_options(jwt: &str, key: KeyPair, device: &str) -> ConnectOptions {
    let key = Arc::new(key);
    ConnectOptions::with_jwt(jwt.to_string(), move |nonce| {
        let key = key.clone();
        async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
    })
    .name(device)
    .custom_inbox_prefix(inbox_prefix(device))
    .connection_timeout(Duration::from_secs(3))
    .ping_interval(Duration::from_secs(5))
}

/// Is `url`'s host a loopback address (where plain TCP is allowed)?
pub fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.rsplit_once(':').map_or(rest, |(h, _)| h).trim_matches(['[', ']']);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Counts completed reads of the whole bucket; waiters can tell when one has finished.
#[derive(Debug, Default)]
struct Synced {
    rounds: Mutex<u64>,
    bumped: Condvar,
}

impl Synced {
    fn bump(&self) {
        *self.rounds.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.bumped.notify_all();
    }
}

/// A running link.
#[derive(Debug)]
pub struct TeamLink {
    runtime: tokio::runtime::Runtime,
    client: async_nats::Client,
    updates: Mutex<mpsc::Receiver<Update>>,
    connected: Arc<AtomicBool>,
    synced: Arc<Synced>,
    /// The server's complaints (`Permissions Violation for Publish to …`), so a refused
    /// put fails at once, with the server's words.
    refusals: tokio::sync::broadcast::Sender<String>,
    intake: Arc<IntakeSlot>,
    /// The buckets this link has written to: looked up once (a stream info request to the
    /// server), not at every put.
    buckets: Arc<Mutex<std::collections::HashMap<&'static str, async_nats::jetstream::kv::Store>>>,
    url: String,
}

impl TeamLink {
    /// Start the link. It does not wait for the server: one that is down now is tried
    /// again and again (the engine meanwhile decides as cut off).
    pub fn start(config: LinkConfig) -> Result<TeamLink, PlaneError> {
        let url = config.url.clone();
        let err = |message: String| PlaneError::Server { url: url.clone(), message };
        if !is_loopback(&config.url) && !config.url.starts_with("tls://") {
            return Err(err("a team server off this machine is reached over TLS only (tls://…)".into()));
        }
        let key = KeyPair::from_seed(config.seed.expose()).map_err(|e| err(format!("the transport key: {e}")))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("countersign-team-link")
            .enable_all()
            .build()
            .map_err(|e| err(e.to_string()))?;
        let connected = Arc::new(AtomicBool::new(false));
        let (reconnected_tx, reconnected_rx) = tokio::sync::watch::channel(0u64);
        let flag = connected.clone();
        let (refusals, _) = tokio::sync::broadcast::channel(16);
        let refused = refusals.clone();
        let options = connect_options(&config.jwt, key, &config.device)
            .require_tls(!is_loopback(&config.url))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempts| Duration::from_millis((100 * attempts as u64).min(2000)))
            .event_callback(move |event| {
                let flag = flag.clone();
                let reconnected = reconnected_tx.clone();
                let refused = refused.clone();
                async move {
                    match event {
                        Event::ServerError(e) => {
                            tracing::warn!(error = %e, "team link: the server refused");
                            let _ = refused.send(e.to_string());
                        }
                        Event::Connected => {
                            flag.store(true, Ordering::SeqCst);
                            reconnected.send_modify(|n| *n += 1);
                        }
                        Event::Disconnected | Event::Closed => flag.store(false, Ordering::SeqCst),
                        other => tracing::info!(event = %other, "team link"),
                    }
                }
            });
        let client = runtime
            .block_on(options.connect(config.url.as_str()))
            .map_err(|e| err(format!("could not start the link: {e}")))?;
        let (tx, rx) = mpsc::channel();
        let synced = Arc::new(Synced::default());
        let intake = Arc::new(IntakeSlot::default());
        if config.whole_team {
            // Requests are no safety signal (a missed one waits, and the passphrase at the
            // seat still works), and a quiet queue is normal: no idle restarts.
            let watch = Watch { bucket: REQUESTS_BUCKET, keys: None, synced: None, idle_restart: None, intake: None };
            runtime.spawn(watch_loop(client.clone(), tx.clone(), reconnected_rx.clone(), watch));
        }
        let watch = Watch {
            bucket: CONTROL_BUCKET,
            keys: (!config.whole_team).then(|| desk_keys(&config.device)),
            synced: Some(synced.clone()),
            idle_restart: Some(config.idle_restart),
            intake: Some(intake.clone()),
        };
        runtime.spawn(watch_loop(client.clone(), tx, reconnected_rx, watch));
        Ok(TeamLink {
            runtime,
            client,
            updates: Mutex::new(rx),
            connected,
            synced,
            refusals,
            intake,
            buckets: Arc::default(),
            url: config.url,
        })
    }

    /// Take the control bucket's entries in with `intake` on the link's own thread as they
    /// arrive, before queueing the rest for [`TeamLink::next`]; `None` stops it. Once this
    /// returns, an intake replaced is no longer running.
    pub fn set_intake(&self, intake: Option<Intake>) {
        *self.intake.0.write().unwrap_or_else(|e| e.into_inner()) = intake;
    }

    /// The next entry seen, waiting up to `timeout`. `Err` once the link has stopped.
    pub fn next(&self, timeout: Duration) -> Result<Option<Update>, PlaneError> {
        match self.updates.lock().unwrap_or_else(|e| e.into_inner()).recv_timeout(timeout) {
            Ok(u) => Ok(Some(u)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(PlaneError::Server { url: self.url.clone(), message: "the link stopped".into() })
            }
        }
    }

    /// Wait until the link has read the whole bucket at least `rounds` times since it
    /// started (1: the first read after connecting). False on timeout.
    pub fn wait_synced(&self, rounds: u64, timeout: Duration) -> bool {
        let guard = self.synced.rounds.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) =
            self.synced.bumped.wait_timeout_while(guard, timeout, |n| *n < rounds).unwrap_or_else(|e| e.into_inner());
        *guard >= rounds
    }

    /// How many whole reads of the bucket the link has made.
    pub fn synced_rounds(&self) -> u64 {
        *self.synced.rounds.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
    }

    /// Store `value` under `key` in its bucket (the control bucket, or the requests' for a
    /// `request.` key); `Ok` once the server has it
    /// (JetStream's acknowledgement after it stored the message).
    pub fn put(&self, key: &str, value: Vec<u8>) -> Result<u64, String> {
        self.write(key, value, false).and_then(|r| r.ok_or_else(|| "refused".to_string()))
    }

    /// Store `value` under `key` only if the key holds nothing yet: `Ok(None)` when it
    /// does.
    pub fn create(&self, key: &str, value: Vec<u8>) -> Result<Option<u64>, String> {
        self.write(key, value, true)
    }

    /// Ask the team service for this desk's team view (`body`: a lead's signed ask) and
    /// wait up to `timeout` for its answer. Refused by the server unless this desk is a
    /// lead's or the admin's.
    pub fn ask_view(&self, device: &str, body: Vec<u8>, timeout: Duration) -> Result<Vec<u8>, String> {
        let subject = crate::subjects::view_subject(device);
        self.call(timeout, move |client| async move {
            match client.request(subject, body.into()).await {
                Ok(m) => Ok(m.payload.to_vec()),
                Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                    Err("the team service is not answering team views (is it running with a database?)".into())
                }
                Err(e) => Err(format!("the team view: {e}")),
            }
        })
    }

    /// Run `work` on the link's runtime with its client, waiting up to `timeout` (safe
    /// from any thread).
    pub(crate) fn call<T, F, Fut>(&self, timeout: Duration, work: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: FnOnce(async_nats::Client) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
    {
        let client = self.client.clone();
        let (tx, rx) = mpsc::channel();
        self.runtime.spawn(async move {
            let _ = tx.send(tokio::time::timeout(timeout, work(client)).await);
        });
        match rx.recv_timeout(timeout + Duration::from_secs(1)) {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(format!("no answer from {} within {} s", self.url, timeout.as_secs())),
        }
    }

    /// An object of one of the team's object stores, at most `max` bytes of it.
    pub(crate) fn fetch_object(&self, bucket: &str, name: &str, max: u64) -> Result<Vec<u8>, String> {
        let (bucket, name) = (bucket.to_string(), name.to_string());
        self.call(Duration::from_secs(30), move |client| async move {
            use tokio::io::AsyncReadExt;
            let js = async_nats::jetstream::new(client);
            let store = js.get_object_store(bucket.as_str()).await.map_err(|e| e.to_string())?;
            let mut reader = store.get(name.as_str()).await.map_err(|e| e.to_string())?;
            let mut bytes = Vec::new();
            (&mut reader).take(max).read_to_end(&mut bytes).await.map_err(|e| e.to_string())?;
            Ok(bytes)
        })
    }

    fn write(&self, key: &str, value: Vec<u8>, only_new: bool) -> Result<Option<u64>, String> {
        let client = self.client.clone();
        let bucket = bucket_of_key(key);
        let subject = format!("$KV.{bucket}.{key}");
        let key = key.to_string();
        let mut refusals = self.refusals.subscribe();
        let buckets = self.buckets.clone();
        let (tx, rx) = mpsc::channel();
        self.runtime.spawn(async move {
            let write = async {
                let known = buckets.lock().unwrap_or_else(|e| e.into_inner()).get(bucket).cloned();
                let kv = match known {
                    Some(kv) => kv,
                    None => {
                        let js = async_nats::jetstream::new(client);
                        let kv = js.get_key_value(bucket).await.map_err(|e| e.to_string())?;
                        buckets.lock().unwrap_or_else(|e| e.into_inner()).insert(bucket, kv.clone());
                        kv
                    }
                };
                if only_new {
                    match kv.create(key, value.into()).await {
                        Ok(revision) => Ok(Some(revision)),
                        Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => Ok(None),
                        Err(e) => Err(e.to_string()),
                    }
                } else {
                    kv.put(key, value.into()).await.map(Some).map_err(|e| e.to_string())
                }
            };
            let refused = async {
                loop {
                    match refusals.recv().await {
                        Ok(e) if e.contains(&subject) => return format!("the server refused: {e}"),
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => std::future::pending().await,
                    }
                }
            };
            let result = tokio::select! {
                r = tokio::time::timeout(Duration::from_secs(5), write) => r,
                e = refused => Ok(Err(e)),
            };
            if !matches!(result, Ok(Ok(_))) {
                // Looked up again next time (a bucket made again, a server set up anew).
                buckets.lock().unwrap_or_else(|e| e.into_inner()).remove(bucket);
            }
            let _ = tx.send(result);
        });
        match rx.recv_timeout(Duration::from_secs(6)) {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) => Err(format!("no answer from {} within 5 s", self.url)),
        }
    }
}

/// What one watch loop watches.
struct Watch {
    bucket: &'static str,
    /// Only these keys (subject wildcards allowed); `None`: every key.
    keys: Option<Vec<String>>,
    /// Counts its whole reads (the control bucket's: what `wait_synced` waits on).
    synced: Option<Arc<Synced>>,
    /// Re-create it when nothing arrived for this long.
    idle_restart: Option<Duration>,
    /// What may take its entries in before they are queued.
    intake: Option<Arc<IntakeSlot>>,
}

/// How many messages the bucket holds under `keys` (a key's last value or its deletion
/// marker; `x.>` covers `x.` and below), from the stream's per-subject counts: a reply
/// about the matching subjects only, not a read of every key. Stops at the first key
/// that has any.
async fn matching_values(kv: &async_nats::jetstream::kv::Store, keys: &[String]) -> Result<u64, String> {
    for key in keys {
        let mut subjects =
            kv.stream.info_with_subjects(format!("{}{key}", kv.prefix)).await.map_err(|e| e.to_string())?;
        let mut n = 0u64;
        while let Some(subject) = subjects.next().await {
            let (_, count) = subject.map_err(|e| e.to_string())?;
            n += count as u64;
        }
        if n > 0 {
            return Ok(n);
        }
    }
    Ok(0)
}

/// Watch a bucket for as long as the link lives (see the module's notes).
async fn watch_loop(
    client: async_nats::Client,
    tx: mpsc::Sender<Update>,
    mut reconnected: tokio::sync::watch::Receiver<u64>,
    config: Watch,
) {
    let Watch { bucket, keys, synced, idle_restart, intake } = config;
    let bump = || {
        if let Some(s) = &synced {
            s.bump();
        }
    };
    let js = async_nats::jetstream::new(client);
    let mut backoff = Duration::from_millis(100);
    loop {
        reconnected.borrow_and_update();
        let watch = async {
            let kv = js.get_key_value(bucket).await.map_err(|e| e.to_string())?;
            let mut values = kv.status().await.map_err(|e| e.to_string())?.values();
            let watch = match &keys {
                None => kv.watch_with_history(">").await.map_err(|e| e.to_string())?,
                Some(keys) => {
                    let watch = kv.watch_many_with_history(keys).await.map_err(|e| e.to_string())?;
                    // The first read ends at the last entry the watch is sent: is there any?
                    if values > 0 {
                        values = matching_values(&kv, keys).await?;
                    }
                    watch
                }
            };
            Ok::<_, String>((watch, values))
        };
        let (mut watch, values) = match watch.await {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(bucket, error = %e, "team link: cannot watch the bucket; trying again");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    changed = reconnected.changed() => if changed.is_err() { return },
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        // The first read is done at the last entry it holds (`delta == 0`), or at once
        // on an empty bucket.
        let mut reading = values > 0;
        if !reading {
            bump();
        }
        loop {
            let next = async {
                match idle_restart {
                    Some(idle) => tokio::time::timeout(idle, watch.next()).await,
                    None => Ok(watch.next().await),
                }
            };
            tokio::select! {
                entry = next => match entry {
                    Ok(Some(Ok(e))) => {
                        let value = (e.operation == Operation::Put).then(|| e.value.to_vec());
                        let update = Update { key: e.key, value };
                        let taken = intake.as_ref().is_some_and(|i| i.take(&update));
                        if !taken && tx.send(update).is_err() {
                            return;
                        }
                        if reading && e.delta == 0 {
                            reading = false;
                            bump();
                        }
                    }
                    Ok(Some(Err(e))) => {
                        tracing::warn!(bucket, error = %e, "team link: the watch failed; re-reading the bucket");
                        break;
                    }
                    Ok(None) => {
                        tracing::warn!(bucket, "team link: the watch ended; re-reading the bucket");
                        break;
                    }
                    Err(_) => {
                        let secs = idle_restart.map_or(0, |d| d.as_secs());
                        tracing::warn!(bucket, secs, "team link: nothing arrived; re-reading the bucket");
                        break;
                    }
                },
                changed = reconnected.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tracing::info!(bucket, "team link: reconnected; re-reading the bucket");
                    break;
                }
            }
        }
    }
}
