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

/// The evidence stream as the team service makes it.
pub fn evidence_stream() -> async_nats::jetstream::stream::Config {
    async_nats::jetstream::stream::Config {
        name: EVIDENCE_STREAM.to_string(),
        description: Some("Countersign: every desk's evidence, one subject per desk".into()),
        subjects: vec![evidence_subject("*")],
        storage: async_nats::jetstream::stream::StorageType::File,
        allow_direct: true,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}

impl TeamLink {
    /// The last event of `device` the team holds: (its event seq, its stream sequence),
    /// or `None` when the team has none of it.
    pub fn evidence_head(&self, device: &str) -> Result<Option<(u64, u64)>, String> {
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
                    Ok(Some((seq, m.sequence)))
                }
                Err(e) if e.kind() == async_nats::jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    /// Publish `events` (in order) to `device`'s subject; the first must follow the
    /// stream message `after_stream_seq` (0: the first of this desk). Pipelined; the
    /// acknowledgements are taken in order and the first failure stops the count.
    pub fn publish_evidence(&self, device: &str, after_stream_seq: u64, events: Vec<Outgoing>) -> Published {
        let subject = evidence_subject(device);
        let result = self.call(Duration::from_secs(30), move |client| async move {
            // The acknowledgements of a whole batch may take longer than the client's
            // default 5 s: the server writes each message to disk before it answers, and
            // every desk's batch is in flight at once after an outage. Bounded by the
            // call's 30 s instead.
            let js = async_nats::jetstream::ContextBuilder::new().timeout(Duration::from_secs(30)).build(client);
            let mut acks = Vec::with_capacity(events.len());
            for (i, e) in events.iter().enumerate() {
                let mut publish = PublishMessage::build().payload(e.message.clone().into()).message_id(&e.hash);
                if i == 0 {
                    publish = publish.expected_last_subject_sequence(after_stream_seq);
                }
                match js.send_publish(subject.clone(), publish).await {
                    Ok(ack) => acks.push((e.seq, ack)),
                    Err(err) => return Ok(Published { last: None, error: Some(err.to_string()) }),
                }
            }
            let mut out = Published::default();
            for (seq, ack) in acks {
                match ack.await {
                    Ok(a) => out.last = Some((seq, a.sequence)),
                    Err(err) => {
                        out.error = Some(err.to_string());
                        break;
                    }
                }
            }
            Ok(out)
        });
        result.unwrap_or_else(|e| Published { last: None, error: Some(e) })
    }
}
