//! Retention: the team keeps each tenant's cases for the days the signed pack's
//! `[team.retention]` sets, counted from a case's last event on a desk. Past that, the
//! case's events leave the team's store, its steps and its case row with them; what stays
//! of each event is its place in its desk's chain (a tombstone: seq, hash and the hash
//! before it), so the chain and every witnessed checkpoint still verify what remains
//! ([`verify_desk`]). Each deletion is itself recorded (`deletions`: tenant, desk, case,
//! how many events, the retention and the pack that set it). Events outside any case
//! (policy loads, pauses, checkpoints) carry no customer's words and stay.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use countersign_core::policy::TeamPolicy;
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

/// A tenant's retention in days and the (desk, case) pairs past it.
type Due = (String, u32, Vec<(String, String)>);

/// Delete, as of `now`, every case past its tenant's retention under `team` (`pack`: the
/// pack that set it, as recorded). One transaction per case.
pub async fn apply(pool: &PgPool, team: &TeamPolicy, pack: &str, now: Timestamp) -> Result<Vec<Deleted>, ProjectError> {
    let tenants: Vec<(String,)> =
        sqlx::query_as("SELECT DISTINCT tenant FROM cases").fetch_all(pool).await.map_err(db)?;
    // (tenant, days, the cases past them). Events that name a case this desk never opened
    // (a verification recorded against a case id) have no tenant: `"*"` covers them.
    let mut due: Vec<Due> = Vec::new();
    for (tenant,) in tenants {
        let Some(days) = team.retention_of(&tenant) else { continue };
        let cutoff = now - SignedDuration::from_hours(24 * i64::from(days));
        let doomed: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.device, c.case_id FROM cases c WHERE c.tenant = $1
               AND NOT EXISTS (SELECT 1 FROM events e
                               WHERE e.device = c.device AND e.case_id = c.case_id AND e.at >= $2::timestamptz)",
        )
        .bind(&tenant)
        .bind(cutoff.to_string())
        .fetch_all(pool)
        .await
        .map_err(db)?;
        due.push((tenant, days, doomed));
    }
    if let Some(days) = team.retention.get("*").copied() {
        let cutoff = now - SignedDuration::from_hours(24 * i64::from(days));
        let doomed: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.device, e.case_id FROM events e
             WHERE e.case_id IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.device = e.device AND c.case_id = e.case_id)
             GROUP BY e.device, e.case_id HAVING max(e.at) < $1::timestamptz",
        )
        .bind(cutoff.to_string())
        .fetch_all(pool)
        .await
        .map_err(db)?;
        due.push((UNKNOWN_TENANT.to_string(), days, doomed));
    }
    let mut deleted = Vec::new();
    for (tenant, days, doomed) in due {
        for (device, case_id) in doomed {
            let mut tx = pool.begin().await.map_err(db)?;
            let (id, events): (i64, i64) = sqlx::query_as(
                "INSERT INTO deletions (tenant, device, case_id, events, days, pack)
                 VALUES ($1, $2, $3, (SELECT count(*) FROM events WHERE device = $2 AND case_id = $3), $4, $5)
                 RETURNING id, events",
            )
            .bind(&tenant)
            .bind(&device)
            .bind(&case_id)
            .bind(i32::try_from(days).unwrap_or(i32::MAX))
            .bind(pack)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?;
            sqlx::query(
                "INSERT INTO tombstones (device, seq, hash, prev_hash, deletion)
                 SELECT device, seq, hash, prev_hash, $3 FROM events WHERE device = $1 AND case_id = $2",
            )
            .bind(&device)
            .bind(&case_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
            for table in ["events", "steps", "cases"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE device = $1 AND case_id = $2")))
                    .bind(&device)
                    .bind(&case_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            tracing::info!(tenant, device, case_id, events, days, "a case past its retention left the team's store");
            deleted.push(Deleted { tenant: tenant.clone(), device, case_id, events: events.unsigned_abs() });
        }
    }
    Ok(deleted)
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
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = &mut until => return Ok(()),
        }
    }
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
