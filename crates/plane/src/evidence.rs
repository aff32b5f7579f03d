//! A desk's evidence on its way to the team: each event published to the desk's own
//! subject of the evidence stream, its hash as the message id (the server drops a
//! duplicate), the first of a batch expecting the stream's last message of that subject
//! to be the one the desk last had acknowledged (so a desk that lost track, or a second
//! writer, is refused instead of forking the chain). The stream stores with
//! `sync_interval: always` (the team's server config), so an acknowledgement means the
//! event is on the team's disk: only then does the desk's outbox move on.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;

use crate::link::TeamLink;
use crate::quota::{Quota, max_bytes};
use crate::subjects::{EVIDENCE_STREAM, evidence_subject};

/// One event as it travels (see `countersign_engine::team::OutboxEvent`).
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub seq: u64,
    pub hash: String,
    pub message: Vec<u8>,
}

/// How far a publication got: the last event the team acknowledged (its seq, and its
/// sequence in the stream), and what stopped it, if anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    pub last: Option<(u64, u64)>,
    pub error: Option<String>,
}

/// The evidence stream as the team service makes it: its share of the team's quota, if
/// any, refusing (never dropping) an event past it.
pub fn evidence_stream(quota: Option<&Quota>) -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: EVIDENCE_STREAM.to_string(),
        description: Some("Countersign: every desk's evidence, one subject per desk".into()),
        subjects: vec![evidence_subject("*")],
        storage: async_nats::jetstream::stream::StorageType::File,
        allow_direct: true,
        duplicate_window: Duration::from_secs(120),
        max_bytes: max_bytes(quota.map(|q| q.evidence)),
        discard: async_nats::jetstream::stream::DiscardPolicy::New,
        ..Default::default()
    }
}

impl TeamLink {
    /// The last event of `device` the team holds: (its event seq, its stream sequence,
    /// its hash), or `None` when the team has none of it.
    pub fn evidence_head(&self, device: &str) -> Result<Option<(u64, u64, String)>, String> {
        let subject = evidence_subject(device);
        self.call(Duration::from_secs(5), move |client| async move {
            let js = async_nats::jetstream::new(client);
            let stream = js.get_stream_no_info(EVIDENCE_STREAM).await.map_err(|e| e.to_string())?;
            match stream.direct_get_last_for_subject(subject).await {
                Ok(m) => {
                    let body: serde_json::Value = serde_json::from_slice(&m.payload).map_err(|e| e.to_string())?;
                    let seq = body
                        .get("seq")
                        .and_then(serde_json::Value::as_u64)
                        .ok_or("an evidence message without a seq")?;
                    let hash = body
                        .get("hash")
                        .and_then(serde_json::Value::as_str)
                        .ok_or("an evidence message without a hash")?;
                    Ok(Some((seq, m.sequence, hash.to_string())))
                }
                Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    /// Publish `events` (in order) to `device`'s subject, each expecting the stream's
    /// last message of that subject to be the one before it (the first: the message
    /// `after_stream_seq`, 0 for a desk's first). One at a time, so no event can be
    /// skipped while a later one lands; the first failure stops the count.
    pub fn publish_evidence(&self, device: &str, after_stream_seq: u64, events: Vec<Outgoing>) -> Published {
        let subject = evidence_subject(device);
        let result = self.call(Duration::from_secs(30), move |client| async move {
            // An acknowledgement comes once the server wrote the message to disk; after an
            // outage every desk sends at once. Bounded by the call's 30 s, not the client's
            // default 5 s per answer.
            let js = async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_secs(30)).build(client);
            let mut out = Published::default();
            let mut expected = after_stream_seq;
            for e in events {
                let publish = PublishMessage::build()
                    .payload(e.message.into())
                    .message_id(&e.hash)
                    .expected_last_subject_sequence(expected);
                let acked = match js.send_publish(subject.clone(), publish).await {
                    Ok(ack) => ack.await.map_err(|err| err.to_string()),
                    Err(err) => Err(err.to_string()),
                };
                match acked {
                    Ok(a) => {
                        expected = a.sequence;
                        out.last = Some((e.seq, a.sequence));
                    }
                    Err(err) => {
                        out.error = Some(err);
                        break;
                    }
                }
            }
            Ok(out)
        });
        result.unwrap_or_else(|e| Published { last: None, error: Some(e) })
    }
}

/// The object store's chunk size (async-nats' default).
const CHUNK: u64 = 128 * 1024;

/// A desk's own blob store: each desk writes only its own (no desk can overwrite or
/// remove another's), and only the team service reads them. The team service makes it,
/// with the desk's share of the quota.
pub fn blobs_bucket(device: &str, quota: Option<&Quota>) -> async_nats::jetstream::object_store::Config {
    async_nats::jetstream::object_store::Config {
        bucket: crate::subjects::blobs_bucket_of(device),
        description: Some(format!("Countersign: screenshots and page snapshots desk {device}'s evidence names")),
        storage: async_nats::jetstream::stream::StorageType::File,
        max_bytes: max_bytes(quota.map(|q| q.desk_blobs)),
        ..Default::default()
    }
}

impl TeamLink {
    /// Put a blob in `device`'s own blob store under its hash (the team service makes
    /// the store). One already there is not sent again; one its share cannot hold is
    /// refused before any of it is written (a put the server refuses halfway leaves its
    /// first chunks behind, taking room no object holds).
    pub fn put_blob(&self, device: &str, hash: &str, media_type: &str, data: Vec<u8>) -> Result<(), String> {
        let (device, hash, media_type) = (device.to_string(), hash.to_string(), media_type.to_string());
        self.call(Duration::from_secs(30), move |client| async move {
            let js = async_nats::jetstream::new(client);
            let bucket = crate::subjects::blobs_bucket_of(&device);
            let store = match js.get_object_store(&bucket).await {
                Ok(store) => store,
                Err(e) if e.to_string().contains("not found") => {
                    return Err(format!(
                        "this desk's blob store is not there yet (the team service makes it, with the desk's share of \
                         the team's disk): {e}"
                    ));
                }
                Err(e) => return Err(e.to_string()),
            };
            if store.info(&hash).await.is_ok() {
                return Ok(());
            }
            let mut stream = js.get_stream(format!("OBJ_{bucket}")).await.map_err(|e| e.to_string())?;
            let info = stream.info().await.map_err(|e| e.to_string())?;
            if let Ok(share) = u64::try_from(info.config.max_bytes) {
                let len = data.len() as u64;
                // Each chunk's subject and headers, and the object's entry.
                let needs = len + (len / CHUNK + 1) * 256 + 1024;
                if needs > share {
                    return Err(format!(
                        "a blob of {len} bytes is larger than this desk's whole share of the team's disk ({share} \
                         bytes): its evidence waits in its outbox until an admin gives desks a larger share"
                    ));
                }
                if info.state.bytes + needs > share {
                    return Err(format!(
                        "this desk's share of the team's disk is full: its blob store holds {} of {share} bytes, and \
                         a blob of {len} bytes does not fit (its evidence waits in its outbox)",
                        info.state.bytes
                    ));
                }
            }
            let meta = async_nats::jetstream::object_store::ObjectMetadata {
                name: hash.clone(),
                description: Some(media_type),
                ..Default::default()
            };
            store.put(meta, &mut data.as_slice()).await.map(drop).map_err(|e| e.to_string())
        })
    }

    /// A blob of `device`'s the team holds, by hash (the team service's read).
    pub fn get_blob(&self, device: &str, hash: &str) -> Result<Vec<u8>, String> {
        self.fetch_object(&crate::subjects::blobs_bucket_of(device), hash, crate::MAX_OBJECT_BYTES)
    }
}
