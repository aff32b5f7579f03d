//! Releasing a held desk, once someone has looked at its alert.
//!
//! A desk whose evidence does not verify is held at its first bad event (see the
//! module above). Some causes are the team's to mend: a reinstalled device signs with a
//! new key, or the key on file was given wrong at enrolment (`countersign team
//! device-key` sets the right one). A release, in one transaction: the desk is no longer
//! held, its evidence key becomes the one the team folder has on file for it (or is
//! forgotten, to be learnt from its next checkpoint, when asked), the projection is moved
//! back to the alert's place in the stream, and the release is recorded (`releases`). The
//! running projection sees the release within [`RELEASE_CHECK`] and reads the desk again
//! from there; other desks' events read again are found projected and dropped. A cause
//! that remains (a fork, a gap, a body changed) holds the desk again at the same event.

use std::time::Duration;

use sqlx::PgPool;

use super::{ProjectError, db};

/// How often the running projection looks for a release.
pub const RELEASE_CHECK: Duration = Duration::from_secs(1);

/// What a release did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Released {
    pub device: String,
    /// The event the desk was held at.
    pub held_at_seq: u64,
    /// The kind of the alert that held it, if one was recorded.
    pub alert_kind: Option<String>,
    /// The evidence key the team held the desk to before, and the one from now on
    /// (`None`: learnt from its next checkpoint).
    pub device_key_before: Option<String>,
    pub device_key_after: Option<String>,
    /// Where in the evidence stream the projection reads again from.
    pub from_stream_seq: u64,
}

/// Release `device`: `by` says who, `reason` why. `enrolled_key` is the evidence key the
/// team folder has on file for it (`team.toml`); without one, the key the team holds it
/// to stays, unless `forget_key`.
pub async fn release(
    pool: &PgPool,
    device: &str,
    by: &str,
    reason: &str,
    enrolled_key: Option<&str>,
    forget_key: bool,
) -> Result<Released, ProjectError> {
    if by.trim().is_empty() || reason.trim().is_empty() {
        return Err(ProjectError::Release("say who releases the desk and why".into()));
    }
    if forget_key && enrolled_key.is_some() {
        return Err(ProjectError::Release(format!(
            "desk {device:?} has an evidence key on file in the team folder: the team holds it to that one (change it \
             with `countersign team device-key`), so there is none to forget"
        )));
    }
    let mut tx = pool.begin().await.map_err(db)?;
    // One release at a time: a release's id is then also its place in commit order, which
    // is what the projection counts on (the newest id it applied covers every one before).
    sqlx::query("LOCK TABLE releases IN SHARE ROW EXCLUSIVE MODE").execute(&mut *tx).await.map_err(db)?;
    let row: Option<(Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT held_at_seq, device_key FROM devices WHERE device = $1 FOR UPDATE")
            .bind(device)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?;
    let Some((held, key_before)) = row else {
        return Err(ProjectError::Release(format!("the team has no evidence of a desk {device:?}")));
    };
    let Some(held) = held else {
        return Err(ProjectError::Release(format!("desk {device:?} is not held")));
    };
    let alert: Option<(String, i64)> = sqlx::query_as(
        "SELECT kind, stream_seq FROM alerts WHERE device = $1 AND seq = $2 ORDER BY raised_at DESC, id DESC LIMIT 1",
    )
    .bind(device)
    .bind(held)
    .fetch_optional(&mut *tx)
    .await
    .map_err(db)?;
    // Read again from the message that held it (the first of the desk's after its last
    // projected event, when no alert says where).
    let from: i64 = match &alert {
        Some((_, stream_seq)) => *stream_seq,
        None => {
            let first: Option<(i64,)> =
                sqlx::query_as("SELECT coalesce(max(stream_seq), 0) + 1 FROM events WHERE device = $1 AND seq < $2")
                    .bind(device)
                    .bind(held)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db)?;
            first.map_or(1, |(n,)| n)
        }
    };
    let key_after = match enrolled_key {
        Some(k) => Some(k.to_string()),
        None if forget_key => None,
        None => key_before.clone(),
    };
    sqlx::query("UPDATE devices SET held_at_seq = NULL, device_key = $2, updated_at = now() WHERE device = $1")
        .bind(device)
        .bind(&key_after)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
    sqlx::query(
        "INSERT INTO releases (device, held_at_seq, alert_kind, by_whom, reason, device_key_before, device_key_after,
                               from_stream_seq)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(device)
    .bind(held)
    .bind(alert.as_ref().map(|(k, _)| k))
    .bind(by)
    .bind(reason)
    .bind(&key_before)
    .bind(&key_after)
    .bind(from)
    .execute(&mut *tx)
    .await
    .map_err(db)?;
    tx.commit().await.map_err(db)?;
    tracing::info!(device, held_at = held, by, reason, "a held desk released");
    Ok(Released {
        device: device.to_string(),
        held_at_seq: held.unsigned_abs(),
        alert_kind: alert.map(|(k, _)| k),
        device_key_before: key_before,
        device_key_after: key_after,
        from_stream_seq: from.unsigned_abs(),
    })
}

/// Is the database's schema one this version releases into (the team service of this
/// version has run on it)? A release is refused otherwise: an older service would not
/// see it, and migrating its database from here would stop it at its next start.
pub async fn check_schema(pool: &PgPool) -> Result<(), ProjectError> {
    let (ready,): (bool,) = sqlx::query_as(
        "SELECT to_regclass('releases') IS NOT NULL
            AND EXISTS (SELECT 1 FROM information_schema.columns
                        WHERE table_name = 'projection' AND column_name = 'release_id')",
    )
    .fetch_one(pool)
    .await
    .map_err(db)?;
    if ready {
        Ok(())
    } else {
        Err(ProjectError::Release(
            "the team database has no record of releases yet: upgrade the team service to this version and start it \
             once, then release"
                .into(),
        ))
    }
}

/// The newest release's id (0: none yet): a projection that loaded before it must read
/// the desks again.
pub(super) async fn newest(pool: &PgPool) -> Result<i64, ProjectError> {
    let (id,): (i64,) =
        sqlx::query_as("SELECT coalesce(max(id), 0) FROM releases").fetch_one(pool).await.map_err(db)?;
    Ok(id)
}

/// Where `consumer` reads from, releases applied: the last stream sequence it committed,
/// or the place before the earliest release it has not applied yet; and the newest
/// release's id.
pub(super) async fn start(pool: &PgPool, consumer: &str) -> Result<(u64, i64), ProjectError> {
    let stored: Option<(i64, i64)> =
        sqlx::query_as("SELECT stream_seq, release_id FROM projection WHERE consumer = $1")
            .bind(consumer)
            .fetch_optional(pool)
            .await
            .map_err(db)?;
    let (committed, applied) = stored.unwrap_or((0, 0));
    let (earliest, newest): (Option<i64>, Option<i64>) =
        sqlx::query_as("SELECT min(from_stream_seq), max(id) FROM releases WHERE id > $1")
            .bind(applied)
            .fetch_one(pool)
            .await
            .map_err(db)?;
    let from = earliest.map_or(committed, |f| committed.min(f - 1)).max(0);
    Ok((from.unsigned_abs(), newest.unwrap_or(applied)))
}
