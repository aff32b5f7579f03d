//! The team service's lease: a signed [`Lease`] put in the control bucket every few
//! seconds. A desktop that keeps seeing fresh ones knows its watch of the bucket (and so
//! of the pauses) is alive; one that does not falls back to the policy's `[cut_off]`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use countersign_connectors::credentials::Secret;
use countersign_core::team::Lease;
use countersign_trust::keys::SecretKey;
use countersign_trust::team::{LEASE_DOMAIN, sign};
use jiff::Timestamp;

use crate::PlaneError;
use crate::authority::{TeamFile, parse_creds};
use crate::link::connect_options;
use crate::quota::{Quota, max_bytes};
use crate::subjects::CONTROL_BUCKET;
use crate::subjects::Role;

/// The key of the lease in the control bucket.
pub const LEASE_KEY: &str = "lease";
/// How often the service publishes one by default (a desktop's default freshness is 30 s).
pub const DEFAULT_EVERY: Duration = Duration::from_secs(5);

/// What the team service needs from its folder: the team's name and URL, its own
/// credentials and lease key.
#[derive(Debug)]
pub struct ServiceIdentity {
    pub team: String,
    pub url: String,
    /// The team folder: its `team.toml` lists the desks whose blob stores the service
    /// makes.
    pub dir: PathBuf,
    /// How the team's quota is shared out, if it has one.
    pub quota: Option<Quota>,
    creds: Secret,
    key: SecretKey,
}

impl ServiceIdentity {
    /// Read the service's identity from the team folder (`team.toml`, `service.creds`,
    /// `service.key`); `url` overrides the team's (a server moved to another port).
    pub fn load(dir: &Path, url: Option<&str>) -> Result<ServiceIdentity, PlaneError> {
        let path = dir.join("team.toml");
        let text = std::fs::read_to_string(&path).map_err(|e| PlaneError::file(&path, e))?;
        let file: TeamFile = toml::from_str(&text).map_err(|e| PlaneError::file(&path, e.to_string().trim_end()))?;
        let creds_path = dir.join("service.creds");
        let creds = Secret::new(std::fs::read_to_string(&creds_path).map_err(|e| PlaneError::file(&creds_path, e))?);
        let key = SecretKey::read_file(&dir.join("service.key")).map_err(|e| PlaneError::bad(e.to_string()))?;
        let quota = file.quota();
        Ok(ServiceIdentity {
            team: file.name,
            url: url.map_or(file.url, str::to_string),
            dir: dir.to_path_buf(),
            quota,
            creds,
            key,
        })
    }

    /// A connection with the service's credentials that waits for the server and
    /// reconnects for ever (the lease and the projection each hold one).
    pub async fn connect(&self) -> Result<async_nats::Client, PlaneError> {
        let (jwt, key) = parse_creds(&self.creds)?;
        connect_options(&jwt, key, "service")
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connect(self.url.as_str())
            .await
            .map_err(|e| PlaneError::Server { url: self.url.clone(), message: e.to_string() })
    }
}

/// Run the lease until `stop` resolves: connect (retrying), make sure the control bucket
/// exists, then put a signed lease every `every`. Errors are logged and retried: a
/// service that cannot publish makes desktops fall back, which is the safe side.
pub async fn run(
    identity: ServiceIdentity,
    every: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), PlaneError> {
    let client = identity.connect().await?;
    let js = async_nats::jetstream::new(client);
    // Read again whenever `team.toml` changes (`team quota` grows it while the service runs).
    let mut quota = identity.quota;
    // Requests an earlier version left in the control bucket, which every desk reads:
    // they carry customers' words, so they go.
    if let Err(e) = purge_old_requests(&js).await {
        tracing::warn!(error = %e, "old requests in the control bucket could not be purged");
    }
    // Made now, or tried again at every tick until they are (JetStream not ready yet).
    let mut streams_made = make_streams(&js, quota.as_ref()).await;
    let mut stores = DeskStores::default();
    tokio::pin!(stop);
    // Go on from the lease the bucket holds: a service restarted on a machine whose clock
    // is behind must still publish rising leases, or every desk would ignore them.
    let mut seq = match js.get_key_value(CONTROL_BUCKET).await {
        Ok(kv) => match kv.get(LEASE_KEY).await {
            Ok(Some(bytes)) => serde_json::from_slice::<countersign_core::team::SignedEntry>(&bytes)
                .ok()
                .and_then(|e| serde_json::from_str::<Lease>(&e.body).ok())
                .map_or(0, |l| l.seq),
            _ => 0,
        },
        Err(_) => 0,
    };
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(()),
            _ = tick.tick() => {}
        }
        if !streams_made {
            streams_made = make_streams(&js, quota.as_ref()).await;
        }
        let now = Timestamp::now();
        // Rising across restarts of the service: the clock's milliseconds, or one more.
        seq = seq.saturating_add(1).max(now.as_millisecond().unsigned_abs());
        let lease = Lease { team: identity.team.clone(), seq, issued_at: now };
        let entry = sign(LEASE_DOMAIN, &lease, &identity.key).map_err(|e| PlaneError::bad(e.to_string()))?;
        let bytes = serde_json::to_vec(&entry).map_err(|e| PlaneError::bad(e.to_string()))?;
        let put = async {
            let kv = match js.get_key_value(CONTROL_BUCKET).await {
                Ok(kv) => kv,
                Err(_) => js.create_key_value(control_bucket(quota.as_ref())).await.map_err(|e| e.to_string())?,
            };
            kv.put(LEASE_KEY, bytes.into()).await.map_err(|e| e.to_string())
        };
        if let Err(e) = put.await {
            tracing::warn!(error = %e, "the lease could not be published; trying again");
        }
        // After the lease, and bounded by its period: a slow JetStream never holds the
        // lease up (what is not made now is made at a later tick).
        let made = tokio::time::timeout(every, stores.make(&js, &identity.dir, &mut quota)).await;
        if made.is_ok_and(|quota_changed| quota_changed) {
            // Every stream given its new share from the next tick.
            streams_made = false;
        }
    }
}

/// Make the team's own streams where they are missing (the control bucket first: with a
/// quota, its share is reserved before any other), and give those a team made before it
/// had shares their share. `true` once every one is there.
async fn make_streams(js: &async_nats::jetstream::Context, quota: Option<&Quota>) -> bool {
    let mut made = true;
    let mut failed = |what: &str, e: &dyn std::fmt::Display| {
        made = false;
        tracing::warn!(error = %e, "the {what} could not be made; trying again");
    };
    if js.get_key_value(CONTROL_BUCKET).await.is_err()
        && let Err(e) = js.create_key_value(control_bucket(quota)).await
    {
        failed("control bucket", &e);
    }
    // The evidence stream: made once, kept as it is after (retention is the team's).
    if let Err(e) = js.get_or_create_stream(crate::evidence::evidence_stream(quota)).await {
        failed("evidence stream", &e);
    }
    if js.get_key_value(crate::subjects::REQUESTS_BUCKET).await.is_err()
        && let Err(e) = js.create_key_value(requests_bucket(quota)).await
    {
        failed("requests' bucket", &e);
    }
    if js.get_object_store(crate::subjects::PACKS_BUCKET).await.is_err()
        && let Err(e) = js.create_object_store(crate::packs::packs_bucket(quota)).await
    {
        failed("packs' object store", &e);
    }
    if let Some(q) = quota {
        for (stream, share) in [
            (crate::subjects::CONTROL_STREAM.to_string(), q.control),
            (crate::subjects::EVIDENCE_STREAM.to_string(), q.evidence),
            (crate::subjects::REQUESTS_STREAM.to_string(), q.requests),
            (format!("OBJ_{}", crate::subjects::PACKS_BUCKET), q.packs),
        ] {
            made &= fit(js, &stream, share).await;
        }
    }
    made
}

/// Give `stream` (made before the team had shares) its `share`, and make it refuse
/// rather than drop past it; left as it is when it already holds more (shrinking it
/// would drop what it holds).
/// `false` when it could not be read or updated (tried again at a later tick).
async fn fit(js: &async_nats::jetstream::Context, stream: &str, share: u64) -> bool {
    let Ok(mut s) = js.get_stream(stream).await else { return false };
    let Ok(info) = s.info().await else { return false };
    let want = max_bytes(Some(share));
    if info.config.max_bytes == want {
        return true;
    }
    if info.state.bytes > share {
        tracing::warn!(stream, holds = info.state.bytes, share, "a stream holds more than its share: left unsized");
        return true;
    }
    let mut config = info.config.clone();
    config.max_bytes = want;
    config.discard = async_nats::jetstream::stream::DiscardPolicy::New;
    match js.update_stream(config).await {
        Ok(_) => {
            tracing::info!(stream, share, "a stream given its share of the team's quota");
            true
        }
        Err(e) => {
            tracing::warn!(stream, error = %e, "a stream could not be given its share");
            false
        }
    }
}

/// The desks' blob stores the service has made (or found), so that each tick makes
/// only a new desk's.
#[derive(Debug, Default)]
struct DeskStores {
    made: std::collections::HashSet<String>,
    /// When `team.toml` was last read (a tick reads it only after it changed).
    read: Option<std::time::SystemTime>,
}

impl DeskStores {
    /// Make the blob store of every live desk in `dir`'s `team.toml` that has none,
    /// with its share; a failure is logged and tried again at the next tick. A quota
    /// that changed in `team.toml` replaces `quota`, every desk's store is given its new
    /// share, and `true` says so (the team's own streams are the caller's).
    async fn make(&mut self, js: &async_nats::jetstream::Context, dir: &Path, quota: &mut Option<Quota>) -> bool {
        let modified = std::fs::metadata(dir.join("team.toml")).and_then(|m| m.modified()).ok();
        if modified.is_some() && modified == self.read {
            return false;
        }
        let file = match TeamFile::read(dir) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "the team's desks could not be read");
                return false;
            }
        };
        let changed = file.quota() != *quota;
        if changed {
            tracing::info!(quota = ?file.quota(), "the team's quota changed: every stream and store gets its new share");
            *quota = file.quota();
            self.made.clear();
        }
        let quota = quota.as_ref();
        let mut all_made = true;
        for device in file.live_devices().filter(|d| d.role != Role::Service) {
            if self.made.contains(&device.name) {
                continue;
            }
            let bucket = crate::subjects::blobs_bucket_of(&device.name);
            let made: Result<(), String> = match js.get_object_store(&bucket).await {
                Ok(_) => match quota {
                    Some(q) if !fit(js, &format!("OBJ_{bucket}"), q.desk_blobs).await => {
                        Err("its store could not be given its share".into())
                    }
                    _ => Ok(()),
                },
                Err(_) => js
                    .create_object_store(crate::evidence::blobs_bucket(&device.name, quota))
                    .await
                    .map(drop)
                    .map_err(|e| e.to_string()),
            };
            match made {
                Ok(()) => {
                    self.made.insert(device.name.clone());
                }
                Err(e) => {
                    all_made = false;
                    tracing::warn!(device = %device.name, error = %e, "a desk's blob store could not be made");
                }
            }
        }
        if all_made {
            self.read = modified;
        }
        changed
    }
}

async fn purge_old_requests(js: &async_nats::jetstream::Context) -> Result<(), String> {
    use futures::TryStreamExt;
    let Ok(kv) = js.get_key_value(CONTROL_BUCKET).await else { return Ok(()) };
    let keys: Vec<String> =
        kv.keys().await.map_err(|e| e.to_string())?.try_collect().await.map_err(|e| e.to_string())?;
    for key in keys.iter().filter(|k| k.starts_with("request.")) {
        kv.purge(key).await.map_err(|e| e.to_string())?;
        tracing::info!(key = %key, "purged a request an earlier version left where every desk reads");
    }
    Ok(())
}

/// The requests' bucket: one value per key, on disk; only leads read it.
pub fn requests_bucket(quota: Option<&Quota>) -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: crate::subjects::REQUESTS_BUCKET.to_string(),
        description: "Countersign team: supervisor steps waiting on a lead (leads only)".into(),
        history: 1,
        max_value_size: 64 * 1024,
        max_bytes: max_bytes(quota.map(|q| q.requests)),
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    }
}

/// The control bucket: one value per key (the newest pause entry, the newest lease),
/// on disk; with a quota, its share is reserved first.
pub fn control_bucket(quota: Option<&Quota>) -> async_nats::jetstream::kv::Config {
    async_nats::jetstream::kv::Config {
        bucket: CONTROL_BUCKET.to_string(),
        description: "Countersign team control: pauses and the team service's lease".into(),
        history: 1,
        max_value_size: 64 * 1024,
        max_bytes: max_bytes(quota.map(|q| q.control)),
        storage: async_nats::jetstream::stream::StorageType::File,
        ..Default::default()
    }
}
