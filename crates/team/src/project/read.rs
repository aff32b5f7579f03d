//! Reading the projected evidence back (tests, the service's own checks).

use super::{Alert, AlertKind, PgPool, ProjectError, db};

/// An alert's row: device, seq, hash, kind, detail, stream seq.
type AlertRow = (String, i64, Option<String>, String, String, i64);

/// Every alert, oldest first.
pub async fn alerts(pool: &PgPool) -> Result<Vec<Alert>, ProjectError> {
    let rows: Vec<AlertRow> =
        sqlx::query_as("SELECT device, seq, hash, kind, detail, stream_seq FROM alerts ORDER BY id")
            .fetch_all(pool)
            .await
            .map_err(db)?;
    rows.into_iter()
        .map(|(device, seq, hash, kind, detail, stream_seq)| {
            let kind = AlertKind::parse(&kind).ok_or_else(|| ProjectError::Database {
                at: "the team database".into(),
                message: format!("an alert of unknown kind {kind:?}"),
            })?;
            Ok(Alert { device, seq: seq.unsigned_abs(), hash, kind, detail, stream_seq: stream_seq.unsigned_abs() })
        })
        .collect()
}

/// A desk's projected events as (seq, hash), in order.
pub async fn events_of(pool: &PgPool, device: &str) -> Result<Vec<(u64, String)>, ProjectError> {
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM events WHERE device = $1 ORDER BY seq")
        .bind(device)
        .fetch_all(pool)
        .await
        .map_err(db)?;
    Ok(rows.into_iter().map(|(s, h)| (s.unsigned_abs(), h)).collect())
}

/// A desk's verified checkpoints as (the checkpoint's seq, count, head), in order.
pub async fn checkpoints_of(pool: &PgPool, device: &str) -> Result<Vec<(u64, u64, String)>, ProjectError> {
    let rows: Vec<(i64, i64, String)> =
        sqlx::query_as("SELECT seq, count, head FROM checkpoints WHERE device = $1 ORDER BY seq")
            .bind(device)
            .fetch_all(pool)
            .await
            .map_err(db)?;
    Ok(rows.into_iter().map(|(s, c, h)| (s.unsigned_abs(), c.unsigned_abs(), h)).collect())
}

/// How many events the team holds, all desks.
pub async fn event_count(pool: &PgPool) -> Result<u64, ProjectError> {
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events").fetch_one(pool).await.map_err(db)?;
    Ok(n.unsigned_abs())
}

/// Where the team holds `device` (the seq of its first bad event), if it does.
pub async fn held_at(pool: &PgPool, device: &str) -> Result<Option<u64>, ProjectError> {
    let row: Option<(Option<i64>,)> = sqlx::query_as("SELECT held_at_seq FROM devices WHERE device = $1")
        .bind(device)
        .fetch_optional(pool)
        .await
        .map_err(db)?;
    Ok(row.and_then(|(h,)| h).map(i64::unsigned_abs))
}

/// When `device`'s alert at `seq` was last raised, and how many releases it has had.
pub async fn raised_and_released(pool: &PgPool, device: &str, seq: u64) -> Result<(Option<String>, u64), ProjectError> {
    let raised: Option<(String,)> = sqlx::query_as(
        "SELECT to_char(max(raised_at), 'YYYY-MM-DD HH24:MI:SS.US') FROM alerts WHERE device = $1 AND seq = $2
         HAVING count(*) > 0",
    )
    .bind(device)
    .bind(i64::try_from(seq).unwrap_or(i64::MAX))
    .fetch_optional(pool)
    .await
    .map_err(db)?;
    let (released,): (i64,) = sqlx::query_as("SELECT count(*) FROM releases WHERE device = $1")
        .bind(device)
        .fetch_one(pool)
        .await
        .map_err(db)?;
    Ok((raised.map(|(r,)| r), released.unsigned_abs()))
}

/// A desk's newest witnessed checkpoint: the signed note.
pub async fn witnessed_of(pool: &PgPool, device: &str) -> Result<Option<String>, ProjectError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT note FROM witnessed WHERE device = $1 ORDER BY count DESC LIMIT 1")
            .bind(device)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    Ok(row.map(|(n,)| n))
}

/// The steps of a desk's plan that are projected (their ids, in order).
pub async fn steps_of(pool: &PgPool, device: &str, plan_id: &str) -> Result<Vec<String>, ProjectError> {
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT step_id FROM steps WHERE device = $1 AND plan_id = $2 ORDER BY step_id")
            .bind(device)
            .bind(plan_id)
            .fetch_all(pool)
            .await
            .map_err(db)?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}
