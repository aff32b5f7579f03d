//! Retention: the team keeps each tenant's cases for the days the signed pack's
//! `[team.retention]` sets, counted from a case's last event on a desk. Past that, the
//! case's events leave the team's store, its steps with them (its case row, which only
//! says which tenant the case is, stays for other desks' copies of it); what stays
//! of each event is its place in its desk's chain (a tombstone: seq, hash and the hash
//! before it), so the chain and every witnessed checkpoint still verify what remains
//! ([`verify_desk`]). Each deletion is itself recorded (`deletions`: tenant, desk, case,
//! how many events, the retention and the pack that set it). Events outside any case
//! (policy loads, pauses, checkpoints) carry no customer's words and stay.
//!
//! The evidence stream on the NATS server holds, per desk, only what the store does not
//! hold yet ([`trim_stream`], every pass): what came before the desk's last projected
//! event goes, but nothing of a held desk.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use countersign_core::policy::TeamPolicy;
use countersign_plane::subjects::{EVIDENCE_STREAM, evidence_subject};
use countersign_store::Hash;
use countersign_trust::keys::TrustedKeys;
use jiff::{SignedDuration, Timestamp};
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::pack::{Held, newest_pack};
use crate::project::ProjectError;

fn db(e: sqlx::Error) -> ProjectError {
    ProjectError::Database { at: "retention".into(), message: e.to_string() }
}

/// The tenant a deletion names for events of a case no desk opened (no tenant known).
pub const UNKNOWN_TENANT: &str = "(unknown)";

/// One case deleted for retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub tenant: String,
    pub device: String,
    pub case_id: String,
    pub events: u64,
}

/// Delete, as of `now`, every case past its tenant's retention under `team` (`pack`: the
/// pack that set it, as recorded). A case's tenant is the one its desk opened it under,
/// else the one another desk did (a desk may hold events of a case it never opened: a
/// review, a verification); a case no desk opened falls under `"*"`. One transaction per
/// case on a desk, holding that desk's row so the projection cannot add to its chain
/// meanwhile; the case is judged again inside it.
pub async fn apply(pool: &PgPool, team: &TeamPolicy, pack: &str, now: Timestamp) -> Result<Vec<Deleted>, ProjectError> {
    let groups: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT g.device, g.case_id,
                (SELECT tenant FROM cases c WHERE c.case_id = g.case_id ORDER BY (c.device = g.device) DESC, c.device
                 LIMIT 1),
                to_json(g.last)#>>'{}'
         FROM (SELECT device, case_id, max(at) AS last FROM events WHERE case_id IS NOT NULL
               GROUP BY device, case_id) g",
    )
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let mut deleted = Vec::new();
    for (device, case_id, tenant, last) in groups {
        let tenant = tenant.unwrap_or_else(|| UNKNOWN_TENANT.to_string());
        let days = if tenant == UNKNOWN_TENANT { team.retention.get("*").copied() } else { team.retention_of(&tenant) };
        let Some(days) = days else { continue };
        let cutoff = now - SignedDuration::from_hours(24 * i64::from(days));
        let last: Timestamp = last.parse().map_err(|e| db_text(format!("a case's last event time {last:?}: {e}")))?;
        if last >= cutoff {
            continue;
        }
        if let Some(events) = delete_case(pool, &device, &case_id, &tenant, days, pack, cutoff).await? {
            tracing::info!(tenant, device, case_id, events, days, "a case past its retention left the team's store");
            deleted.push(Deleted { tenant, device, case_id, events });
        }
    }
    Ok(deleted)
}

fn db_text(message: String) -> ProjectError {
    ProjectError::Database { at: "retention".into(), message }
}

/// Delete one case's events on one desk, if it is still past `cutoff` once the desk's row
/// is held: how many events went (`None`: it is not past it any more).
async fn delete_case(
    pool: &PgPool,
    device: &str,
    case_id: &str,
    tenant: &str,
    days: u32,
    pack: &str,
    cutoff: Timestamp,
) -> Result<Option<u64>, ProjectError> {
    let mut tx = pool.begin().await.map_err(db)?;
    // The projection writes a desk's events in the transaction that updates its row.
    sqlx::query("SELECT 1 FROM devices WHERE device = $1 FOR UPDATE")
        .bind(device)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    let (count, newer): (i64, bool) = sqlx::query_as(
        "SELECT count(*), coalesce(bool_or(at >= $3::timestamptz), false) FROM events
         WHERE device = $1 AND case_id = $2",
    )
    .bind(device)
    .bind(case_id)
    .bind(cutoff.to_string())
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    if newer || count == 0 {
        return Ok(None);
    }
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deletions (tenant, device, case_id, events, days, pack) VALUES ($1, $2, $3, $4, $5, $6)
         RETURNING id",
    )
    .bind(tenant)
    .bind(device)
    .bind(case_id)
    .bind(count)
    .bind(i32::try_from(days).unwrap_or(i32::MAX))
    .bind(pack)
    .fetch_one(&mut *tx)
    .await
    .map_err(db)?;
    // One statement: each deleted event leaves its tombstone.
    let bodies: Vec<(String,)> = sqlx::query_as(
        "WITH gone AS (DELETE FROM events WHERE device = $1 AND case_id = $2
                       RETURNING device, seq, hash, prev_hash, body),
              kept AS (INSERT INTO tombstones (device, seq, hash, prev_hash, deletion)
                       SELECT device, seq, hash, prev_hash, $3 FROM gone)
         SELECT body FROM gone",
    )
    .bind(device)
    .bind(case_id)
    .bind(id)
    .fetch_all(&mut *tx)
    .await
    .map_err(db)?;
    // The blobs they may name (any 64 hex digits: what is no blob is not in the store),
    // deleted from the desk's object store once committed ([`drop_blobs`]).
    let mut named: Vec<String> = bodies.iter().flat_map(|(b,)| hex_words(b)).collect();
    named.sort();
    named.dedup();
    sqlx::query(
        "INSERT INTO doomed_blobs (device, hash, deletion) SELECT $1, h, $3 FROM UNNEST($2::text[]) AS u(h)
         ON CONFLICT DO NOTHING",
    )
    .bind(device)
    .bind(&named)
    .bind(id)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    // The case's row stays: its tenant is what other desks' copies of the case are kept
    // by (it holds no customer's words).
    // What the projection derived from the deleted events goes with them: the steps, the
    // promises made, and a verdict this desk recorded on the case.
    for derived in [
        "DELETE FROM steps WHERE device = $1 AND case_id = $2",
        "DELETE FROM promises WHERE device = $1 AND case_id = $2",
        "DELETE FROM verdicts WHERE device = $1 AND case_id = $2",
    ] {
        sqlx::query(derived).bind(device).bind(case_id).execute(&mut *tx).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    Ok(Some(count.unsigned_abs()))
}

/// Apply the newest signed pack's retention to `database` every `every` until `until`
/// completes.
pub async fn run(
    client: async_nats::Client,
    database: sqlx::postgres::PgConnectOptions,
    trusted: TrustedKeys,
    every: Duration,
    until: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    let js = jetstream::new(client);
    let held = Arc::new(Mutex::new(Held::default()));
    let mut until = std::pin::pin!(until);
    let Some(pool) = crate::project::open_when_ready(&database, &mut until).await? else { return Ok(()) };
    loop {
        match newest_pack(&js, &held, &trusted).await {
            Ok(pack) => {
                if let Some(team) = pack.policy.team.as_ref().filter(|t| !t.retention.is_empty()) {
                    let name = format!("{} v{}", pack.info.id, pack.info.version);
                    if let Err(e) = apply(&pool, team, &name, Timestamp::now()).await {
                        tracing::warn!(error = %e, "applying the team's retention");
                    }
                }
            }
            Err((_, why)) => tracing::debug!(why, "no retention to apply"),
        }
        match drop_blobs(&js, &pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(blobs = n, "deleted the blobs that only deleted events named"),
            Err(e) => tracing::warn!(error = %e, "deleting the blobs of deleted events"),
        }
        match trim_stream(&js, &pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(messages = n, "trimmed the evidence stream to what the store does not hold yet"),
            Err(e) => tracing::warn!(error = %e, "trimming the evidence stream"),
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut until => return Ok(()),
        }
    }
}

/// The words of exactly 64 lower-case hex digits in `text` (a blob's name is its SHA-256).
fn hex_words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_digit() || ('a'..='f').contains(&c)))
        .filter(|w| w.len() == 64)
        .map(str::to_string)
        .collect()
}

/// Delete from each desk's object store the blobs that events deleted for retention named
/// (`doomed_blobs`), unless an event the team still holds of that desk names them too.
/// Returns how many went.
pub async fn drop_blobs(js: &jetstream::Context, pool: &PgPool) -> Result<u64, String> {
    let doomed: Vec<(String, String)> = sqlx::query_as("SELECT device, hash FROM doomed_blobs ORDER BY device, hash")
        .fetch_all(pool)
        .await
        .map_err(|e| format!("the blobs to delete: {e}"))?;
    let mut dropped = 0;
    for (device, hash) in doomed {
        let (named,): (bool,) =
            sqlx::query_as("SELECT EXISTS (SELECT 1 FROM events WHERE device = $1 AND strpos(body, $2) > 0)")
                .bind(&device)
                .bind(&hash)
                .fetch_one(pool)
                .await
                .map_err(|e| format!("whether blob {hash} of {device} is still named: {e}"))?;
        if !named && purge_blob(js, &device, &hash).await? {
            dropped += 1;
        }
        sqlx::query("DELETE FROM doomed_blobs WHERE device = $1 AND hash = $2")
            .bind(&device)
            .bind(&hash)
            .execute(pool)
            .await
            .map_err(|e| format!("blob {hash} of {device} done: {e}"))?;
    }
    Ok(dropped)
}

/// Purge blob `hash` from `device`'s object store, its chunks and its entry (nothing of it
/// stays, not even a deletion marker: the service's credentials may purge the stores'
/// streams, not write to them). `false`: there is no such blob (a hash of something
/// else, or purged already).
async fn purge_blob(js: &jetstream::Context, device: &str, hash: &str) -> Result<bool, String> {
    use base64::Engine as _;
    let bucket = countersign_plane::subjects::blobs_bucket_of(device);
    let store = match js.get_object_store(&bucket).await {
        Ok(store) => store,
        // The desk never sent a blob.
        Err(e) if e.kind() == jetstream::context::ObjectStoreErrorKind::GetStore => return Ok(false),
        Err(e) => return Err(format!("the blobs of {device}: {e}")),
    };
    let info = match store.info(hash).await {
        Ok(info) => info,
        Err(e) if e.kind() == jetstream::object_store::InfoErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("blob {hash} of {device}: {e}")),
    };
    let stream = js.get_stream(format!("OBJ_{bucket}")).await.map_err(|e| format!("the blobs of {device}: {e}"))?;
    let name = base64::engine::general_purpose::URL_SAFE.encode(hash);
    for subject in [format!("$O.{bucket}.C.{}", info.nuid), format!("$O.{bucket}.M.{name}")] {
        stream.purge().filter(&subject).await.map_err(|e| format!("purging blob {hash} of {device}: {e}"))?;
    }
    Ok(true)
}

/// Keep on the evidence stream only what the team's store holds already, and no more:
/// per desk, the messages before the one of its last projected event go, when every
/// consumer of the stream has acknowledged them too; that message and what follows stay
/// (the desk's outbox resumes after its last one). A held desk keeps all of its messages
/// (what came after the break is in no store), and so does a desk whose last projected
/// event is no longer in the store (retention took it: where it was on the stream is not
/// known). A stream no consumer reads (a team without a database) is left whole. Once
/// trimmed, the store is the only copy: back the database up. Returns how many messages
/// went.
pub async fn trim_stream(js: &jetstream::Context, pool: &PgPool) -> Result<u64, String> {
    use futures::TryStreamExt;
    let stream = js.get_stream(EVIDENCE_STREAM).await.map_err(|e| format!("the evidence stream: {e}"))?;
    let mut floor: Option<u64> = None;
    let mut consumers = stream.consumers();
    while let Some(c) = consumers.try_next().await.map_err(|e| format!("the stream's consumers: {e}"))? {
        let acked = c.ack_floor.stream_sequence;
        floor = Some(floor.map_or(acked, |f| f.min(acked)));
    }
    let Some(floor) = floor.filter(|f| *f > 0) else { return Ok(0) };
    let desks: Vec<(String, i64)> = sqlx::query_as(
        "SELECT d.device, e.stream_seq FROM devices d JOIN events e ON e.device = d.device AND e.seq = d.last_seq
         WHERE d.held_at_seq IS NULL ORDER BY d.device",
    )
    .fetch_all(pool)
    .await
    .map_err(|e| format!("the desks: {e}"))?;
    let mut purged = 0;
    for (device, last) in desks {
        let keep_from = last.unsigned_abs().min(floor);
        if keep_from <= 1 {
            continue;
        }
        let subject = evidence_subject(&device);
        let done = stream.purge().filter(&subject).sequence(keep_from).await;
        purged += done.map_err(|e| format!("trimming {subject}: {e}"))?.purged;
    }
    Ok(purged)
}

/// How a desk's chain stands on the team: its events and tombstones in order, each
/// linked to the one before, each live event hashing to its hash, and each witnessed
/// checkpoint's head where its count says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskCheck {
    pub events: u64,
    pub tombstones: u64,
    pub witnessed: u64,
    /// The first thing that does not hold.
    pub problem: Option<String>,
}

/// Verify what the team holds of `device` (after any retention).
pub async fn verify_desk(pool: &PgPool, device: &str) -> Result<DeskCheck, ProjectError> {
    let links: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
        "SELECT seq, hash, prev_hash, body FROM events WHERE device = $1
         UNION ALL SELECT seq, hash, prev_hash, NULL FROM tombstones WHERE device = $1 ORDER BY 1",
    )
    .bind(device)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let notes: Vec<(i64, String)> =
        sqlx::query_as("SELECT count, head FROM witnessed WHERE device = $1 ORDER BY count")
            .bind(device)
            .fetch_all(pool)
            .await
            .map_err(db)?;
    let mut check = DeskCheck { events: 0, tombstones: 0, witnessed: notes.len() as u64, problem: None };
    let mut last = Hash::genesis();
    let mut heads = std::collections::BTreeMap::new();
    for (i, (seq, hash, prev, body)) in links.iter().enumerate() {
        let seq = seq.unsigned_abs();
        let fail = |why: String| Some(format!("{device} at event {seq}: {why}"));
        let Some(h) = Hash::from_hex(hash) else {
            check.problem = fail("its hash is not 64 hex digits".into());
            break;
        };
        if seq != i as u64 + 1 {
            check.problem = fail(format!("event {} is missing", i + 1));
            break;
        }
        if Hash::from_hex(prev) != Some(last) {
            check.problem = fail("it does not follow the event before it".into());
            break;
        }
        match body {
            Some(body) => {
                if let Err(b) = countersign_store::check_event(&last, seq, body, &h) {
                    check.problem = fail(b.problem.to_string());
                    break;
                }
                check.events += 1;
            }
            None => check.tombstones += 1,
        }
        heads.insert(seq, h);
        last = h;
    }
    if check.problem.is_none() {
        for (count, head) in &notes {
            let at = heads.get(&count.unsigned_abs());
            if at.map(Hash::to_hex).as_deref() != Some(head.as_str()) {
                check.problem = Some(format!("{device}: the witnessed checkpoint at {count} names head {head}"));
                break;
            }
        }
    }
    Ok(check)
}

/// Every deletion recorded, oldest first: (tenant, desk, case, events).
pub async fn deletions(pool: &PgPool) -> Result<Vec<Deleted>, ProjectError> {
    let rows: Vec<(String, String, String, i64)> =
        sqlx::query_as("SELECT tenant, device, case_id, events FROM deletions ORDER BY id")
            .fetch_all(pool)
            .await
            .map_err(db)?;
    Ok(rows
        .into_iter()
        .map(|(tenant, device, case_id, events)| Deleted { tenant, device, case_id, events: events.unsigned_abs() })
        .collect())
}
