//! Signed policy packs on the team plane: the admin puts a pack (its files, as one
//! object) in the team's object store and announces it under the control bucket's `pack`
//! key; every desk fetches it when it sees the announcement and stages it in its data
//! folder. Whether a pack counts (its admin signature, a version that only goes up) is the
//! engine's call when it loads the staged pack; this module only carries files.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::link::TeamLink;
use crate::subjects::{CONTROL_BUCKET, PACKS_BUCKET};

/// The control bucket's key of the newest pack.
pub const PACK_KEY: &str = "pack";

/// What the admin announces: which object holds the pack, and what it says it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackAnnouncement {
    pub version: u64,
    /// `sha256:<hex>` of the pack's manifest (what its signature covers).
    pub digest: String,
    pub object: String,
    pub published_by: String,
    pub published_at: Timestamp,
}

/// A pack's files as one object: file name → contents (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Bundle {
    files: BTreeMap<String, String>,
}

/// The most a pack's folder may hold (files, bytes): a pack is a few TOML files.
const MAX_FILES: usize = 32;
const MAX_BYTES: u64 = 8 * 1024 * 1024;

/// The packs' object store as the team service makes it (its share of the quota).
pub fn packs_bucket(quota: Option<&crate::quota::Quota>) -> async_nats::jetstream::object_store::Config {
    async_nats::jetstream::object_store::Config {
        bucket: PACKS_BUCKET.to_string(),
        description: Some("Countersign: signed policy packs".into()),
        storage: async_nats::jetstream::stream::StorageType::File,
        max_bytes: crate::quota::max_bytes(quota.map(|q| q.packs)),
        ..Default::default()
    }
}

fn bundle(dir: &Path) -> Result<Vec<u8>, String> {
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
        if !entry.file_type().map_err(|e| e.to_string())?.is_file() {
            return Err(format!("{}: a pack folder holds files only", entry.path().display()));
        }
        let bytes = std::fs::read(entry.path()).map_err(|e| format!("{}: {e}", entry.path().display()))?;
        total += bytes.len() as u64;
        files.insert(entry.file_name().to_string_lossy().into_owned(), hex::encode(bytes));
    }
    if files.len() > MAX_FILES || total > MAX_BYTES {
        return Err(format!("{}: not a pack folder ({} files, {total} bytes)", dir.display(), files.len()));
    }
    serde_json::to_vec(&Bundle { files }).map_err(|e| e.to_string())
}

/// Write a fetched bundle's files into the new folder `to` (its parent must exist); the
/// folder appears whole or not at all (written aside, then renamed).
pub fn unbundle(bytes: &[u8], to: &Path) -> Result<(), String> {
    let bundle: Bundle = serde_json::from_slice(bytes).map_err(|e| format!("not a pack bundle: {e}"))?;
    if bundle.files.len() > MAX_FILES {
        return Err("a pack bundle with too many files".into());
    }
    let aside = to.with_extension("partial");
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::create_dir_all(&aside).map_err(|e| format!("{}: {e}", aside.display()))?;
    for (name, hex_text) in &bundle.files {
        let plain = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !plain || name.starts_with('.') {
            return Err(format!("a pack bundle names a file {name:?}"));
        }
        let data = hex::decode(hex_text).map_err(|e| format!("{name}: {e}"))?;
        std::fs::write(aside.join(name), data).map_err(|e| format!("{name}: {e}"))?;
    }
    let _ = std::fs::remove_dir_all(to);
    std::fs::rename(&aside, to).map_err(|e| format!("{}: {e}", to.display()))
}

impl TeamLink {
    /// Put the pack folder `dir` (version and manifest digest as its signature check
    /// read them) in the team's object store and announce it (the admin's desk).
    pub fn publish_pack(&self, dir: &Path, version: u64, digest: &str, by: &str) -> Result<PackAnnouncement, String> {
        let data = bundle(dir)?;
        let object = format!("pack-v{version}-{}", digest.trim_start_matches("sha256:").get(..16).unwrap_or("x"));
        let announcement = PackAnnouncement {
            version,
            digest: digest.to_string(),
            object: object.clone(),
            published_by: by.to_string(),
            published_at: Timestamp::now(),
        };
        let body = serde_json::to_vec(&announcement).map_err(|e| e.to_string())?;
        self.call(Duration::from_secs(30), move |client| async move {
            let js = async_nats::jetstream::new(client);
            let store = js.get_object_store(crate::subjects::PACKS_BUCKET).await.map_err(|e| e.to_string())?;
            store.put(object.as_str(), &mut data.as_slice()).await.map_err(|e| e.to_string())?;
            let kv = js.get_key_value(CONTROL_BUCKET).await.map_err(|e| e.to_string())?;
            kv.put(PACK_KEY, body.into()).await.map_err(|e| e.to_string())?;
            Ok(())
        })?;
        Ok(announcement)
    }

    /// Fetch an announced pack's object.
    pub fn fetch_pack(&self, object: &str) -> Result<Vec<u8>, String> {
        self.fetch_object(crate::subjects::PACKS_BUCKET, object, MAX_BYTES * 3)
    }
}
