//! The newest signed pack the team published, as the team service reads it: its roster
//! says which lead sees what (the team view), its `[team.retention]` how long the team
//! keeps each tenant's cases. Fetched again only when the announcement changes; a pack
//! that does not verify against the admin keys the service trusts leaves the one held.

use std::sync::Arc;

use async_nats::jetstream;
use countersign_plane::subjects::{CONTROL_BUCKET, PACKS_BUCKET};
use countersign_trust::keys::TrustedKeys;
use countersign_trust::pack::Pack;
use tokio::sync::Mutex;

/// The newest signed pack the team published, as verified here.
#[derive(Debug, Default)]
pub struct Held {
    /// The `pack` key's revision it came from.
    revision: u64,
    pack: Option<Arc<Pack>>,
}

/// The newest pack the team published, verified against `trusted` (fetched again only
/// when the announcement changed; a pack that does not verify leaves the one held).
pub async fn newest_pack(
    js: &jetstream::Context,
    held: &Mutex<Held>,
    trusted: &TrustedKeys,
) -> Result<Arc<Pack>, (&'static str, String)> {
    let none = || ("no_pack", "the team service holds no signed pack it trusts: the admin publishes one".to_string());
    let kv = js.get_key_value(CONTROL_BUCKET).await.map_err(|e| ("unavailable", e.to_string()))?;
    let entry = kv.entry(countersign_plane::packs::PACK_KEY).await.map_err(|e| ("unavailable", e.to_string()))?;
    let mut held = held.lock().await;
    let Some(entry) = entry else { return held.pack.clone().ok_or_else(none) };
    if entry.revision == held.revision {
        return held.pack.clone().ok_or_else(none);
    }
    match fetch_pack(js, &entry.value, trusted).await {
        Ok(pack) => {
            held.revision = entry.revision;
            let newer = held.pack.as_ref().is_none_or(|p| p.info.version <= pack.info.version);
            if newer {
                tracing::info!(version = pack.info.version, "the team service reads pack {}", pack.info.id);
                held.pack = Some(Arc::new(pack));
            }
        }
        // Settled: this announcement will never verify; the pack held stays.
        Err(Fetch::Refused(e)) => {
            held.revision = entry.revision;
            tracing::warn!(error = %e, "the team's newest pack does not verify; the one held stays");
        }
        // Tried again at the next ask: the pack held (a revoked grant with it) must not
        // outlive a newer one for a passing fault.
        Err(Fetch::Failed(e)) => {
            tracing::warn!(error = %e, "fetching the team's newest pack; tried again at the next ask");
            return Err(("unavailable", format!("the team's newest pack could not be fetched: {e}")));
        }
    }
    held.pack.clone().ok_or_else(none)
}

/// Why a pack was not taken.
enum Fetch {
    /// It will never verify: its announcement, bundle or signature does not hold.
    Refused(String),
    /// It could not be read now.
    Failed(String),
}

async fn fetch_pack(js: &jetstream::Context, announcement: &[u8], trusted: &TrustedKeys) -> Result<Pack, Fetch> {
    use tokio::io::AsyncReadExt;
    let failed = |e: String| Fetch::Failed(e);
    let announced: countersign_plane::packs::PackAnnouncement =
        serde_json::from_slice(announcement).map_err(|e| Fetch::Refused(format!("the pack announcement: {e}")))?;
    let store = js.get_object_store(PACKS_BUCKET).await.map_err(|e| failed(e.to_string()))?;
    let mut reader = store.get(announced.object.as_str()).await.map_err(|e| failed(e.to_string()))?;
    let mut bytes = Vec::new();
    (&mut reader).take(32 << 20).read_to_end(&mut bytes).await.map_err(|e| failed(e.to_string()))?;
    let dir = tempfile::tempdir().map_err(|e| failed(e.to_string()))?;
    let to = dir.path().join("pack");
    countersign_plane::packs::unbundle(&bytes, &to).map_err(Fetch::Refused)?;
    countersign_trust::pack::verify_pack(&to, trusted).map_err(|r| Fetch::Refused(r.to_string()))
}
