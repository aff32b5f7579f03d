//! What one batch writes, all in one transaction: its events in one `COPY`, the rest
//! as idempotent multi-row statements.

use std::collections::HashMap;

use countersign_store::Hash;
use sqlx::{Postgres, Transaction};

use super::{Alert, ProjectError, db, i64_of};

/// What a batch writes, all in one transaction.
#[derive(Debug, Default)]
pub(super) struct Rows {
    pub(super) events: Vec<EventRow>,
    pub(super) checkpoints: Vec<CheckpointRow>,
    pub(super) alerts: Vec<Alert>,
    /// The projected hashes of this batch, by (device, seq): for redeliveries and
    /// checkpoints within it.
    pub(super) pending: HashMap<(String, u64), Hash>,
    /// The witness's co-signatures: (device, count, head, note).
    pub(super) witnessed: Vec<(String, i64, String, String)>,
    /// What the team view filters on, derived from the batch's events.
    pub(super) facets: crate::facets::Facets,
}

#[derive(Debug)]
pub(super) struct EventRow {
    pub(super) hash: String,
    pub(super) device: String,
    pub(super) seq: i64,
    pub(super) prev: String,
    pub(super) at: String,
    pub(super) case_id: Option<String>,
    pub(super) kind: String,
    pub(super) actor: String,
    pub(super) body: String,
    /// The body's payload as PostgreSQL's `jsonb` takes it ([`pg_json`]).
    pub(super) payload: String,
    pub(super) stream_seq: i64,
}

/// Text as PostgreSQL stores it: it refuses the NUL character (which a desk's own free
/// text may carry, escaped, inside a perfectly valid chain), so that one becomes U+FFFD.
/// Only the copies kept for queries are changed; the hashed body is kept exactly.
pub(crate) fn pg_text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// A field of PostgreSQL's text `COPY` format (backslash, tab and line ends escaped;
/// the text has no NUL, see [`pg_text`]).
pub fn copy_field(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// An event's payload as `jsonb` takes it, from its canonical `body` (keys in order:
/// actor, at, case_id, kind, payload, seq) and `payload`, the payload's text as the body's
/// parse found it: the text between the `,"payload":` key (the first: a quote inside an
/// earlier string is escaped) and the closing `,"seq":`, when that is the payload (one
/// value: a body with the key twice is not cut), escapes no NUL and no surrogate, and has
/// no number with an exponent or over 300 characters (what `jsonb` refuses, or might).
/// Otherwise the payload read as a value (which refuses numbers out of range) and
/// written again with NULs cleaned ([`pg_json`]); `Err` when it cannot be read so: the
/// event is not one the team can keep.
pub(super) fn payload_text(body: &str, payload: &str) -> Result<String, String> {
    const KEY: &str = ",\"payload\":";
    let refused = ["\\u0000", "\\ud", "\\uD"].iter().any(|e| body.contains(e));
    if !refused
        && let (Some(start), Some(end)) = (body.find(KEY), body.rfind(",\"seq\":"))
        && let Some(text) = body.get(start + KEY.len()..end)
        && text == payload
        && plain_numbers(text)
    {
        return Ok(text.to_string());
    }
    serde_json::from_str::<serde_json::Value>(payload).map(|v| pg_json(&v)).map_err(|e| e.to_string())
}

/// Does every number in `json` (text outside its strings) go without an exponent and in
/// at most 300 characters?
fn plain_numbers(json: &str) -> bool {
    let (mut in_string, mut escaped, mut number) = (false, false, 0usize);
    for b in json.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                number = 0;
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                number += 1;
                if number > 300 {
                    return false;
                }
            }
            // An exponent (the letters of `true`, `false` and `null` come after no digit).
            b'e' | b'E' if number > 0 => return false,
            _ => number = 0,
        }
    }
    true
}

/// A JSON value as `jsonb` takes it: no NUL in any string or key ([`pg_text`]).
pub(super) fn pg_json(value: &serde_json::Value) -> String {
    fn clean(v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) => Value::String(pg_text(s)),
            Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (pg_text(k), clean(v))).collect()),
            other => other.clone(),
        }
    }
    clean(value).to_string()
}

#[derive(Debug)]
pub(super) struct CheckpointRow {
    pub(super) device: String,
    pub(super) seq: i64,
    pub(super) count: i64,
    pub(super) head: String,
    pub(super) key: String,
    pub(super) signature: String,
}

/// The batch's rows, each table in one statement, each idempotent.
pub(super) async fn write_rows(tx: &mut Transaction<'_, Postgres>, rows: &Rows) -> Result<(), ProjectError> {
    if !rows.events.is_empty() {
        // One COPY: a batch's events are new by construction (each judged against the
        // desk's committed position, read in this transaction's order), so a row already
        // there is a fault that fails the batch, which then comes again from a fresh read.
        let mut text = String::with_capacity(rows.events.len() * 1024);
        for r in &rows.events {
            let fields = [
                copy_field(&r.hash),
                copy_field(&r.device),
                r.seq.to_string(),
                copy_field(&r.prev),
                copy_field(&r.at),
                r.case_id.as_deref().map_or_else(|| "\\N".to_string(), copy_field),
                copy_field(&r.kind),
                copy_field(&r.actor),
                copy_field(&r.body),
                copy_field(&r.payload),
                r.stream_seq.to_string(),
            ];
            text.push_str(&fields.join("\t"));
            text.push('\n');
        }
        let mut copy = (**tx)
            .copy_in_raw(
                "COPY events (hash, device, seq, prev_hash, at, case_id, kind, actor, body, payload, stream_seq) \
                 FROM STDIN",
            )
            .await
            .map_err(db)?;
        copy.send(text.into_bytes()).await.map_err(db)?;
        copy.finish().await.map_err(db)?;
    }
    if !rows.checkpoints.is_empty() {
        let c = &rows.checkpoints;
        sqlx::query(
            "INSERT INTO checkpoints (device, seq, count, head, device_key, signature)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(c.iter().map(|r| r.device.as_str()).collect::<Vec<_>>())
        .bind(c.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(c.iter().map(|r| r.count).collect::<Vec<_>>())
        .bind(c.iter().map(|r| r.head.as_str()).collect::<Vec<_>>())
        .bind(c.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
        .bind(c.iter().map(|r| r.signature.as_str()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    if !rows.witnessed.is_empty() {
        let w = &rows.witnessed;
        sqlx::query(
            "INSERT INTO witnessed (device, count, head, note)
             SELECT * FROM UNNEST($1::text[], $2::int8[], $3::text[], $4::text[])
             ON CONFLICT DO NOTHING",
        )
        .bind(w.iter().map(|r| r.0.as_str()).collect::<Vec<_>>())
        .bind(w.iter().map(|r| r.1).collect::<Vec<_>>())
        .bind(w.iter().map(|r| r.2.as_str()).collect::<Vec<_>>())
        .bind(w.iter().map(|r| r.3.as_str()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    write_facets(tx, &rows.facets).await?;
    for a in &rows.alerts {
        sqlx::query(
            // The same alert again: a redelivery changes nothing; after a release of the
            // desk held there, it is raised anew (the cause remained).
            "INSERT INTO alerts (device, seq, hash, kind, detail, stream_seq) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (device, seq, kind) DO UPDATE
               SET hash = EXCLUDED.hash, detail = EXCLUDED.detail, stream_seq = EXCLUDED.stream_seq, raised_at = now()
               WHERE EXISTS (SELECT 1 FROM releases r WHERE r.device = alerts.device AND r.held_at_seq = alerts.seq
                               AND r.released_at > alerts.raised_at)",
        )
        .bind(&a.device)
        .bind(i64_of(a.seq))
        .bind(&a.hash)
        .bind(a.kind.as_str())
        .bind(&a.detail)
        .bind(i64_of(a.stream_seq))
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

/// The batch's cases and steps for the team view: new cases, steps decided (again, with
/// their reviews and ends of the same batch), then the reviews and ends of steps decided
/// before (each key's last), each in one statement.
async fn write_facets(tx: &mut Transaction<'_, Postgres>, f: &crate::facets::Facets) -> Result<(), ProjectError> {
    let text = |s: &str| pg_text(s);
    let time = |t: &jiff::Timestamp| t.to_string();
    if !f.cases.is_empty() {
        let c: Vec<_> = f.cases.values().collect();
        sqlx::query(
            "INSERT INTO cases (device, case_id, tenant, channel, first_at)
             SELECT d, c, t, ch, a::timestamptz FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
               AS u(d, c, t, ch, a)
             ON CONFLICT DO NOTHING",
        )
        .bind(c.iter().map(|r| text(&r.device)).collect::<Vec<_>>())
        .bind(c.iter().map(|r| text(&r.case_id)).collect::<Vec<_>>())
        .bind(c.iter().map(|r| text(&r.tenant)).collect::<Vec<_>>())
        .bind(c.iter().map(|r| text(&r.channel)).collect::<Vec<_>>())
        .bind(c.iter().map(|r| time(&r.at)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    if !f.escalated.is_empty() {
        let (devices, cases): (Vec<String>, Vec<String>) = f.escalated.iter().map(|(d, c)| (text(d), text(c))).unzip();
        sqlx::query(
            "UPDATE cases SET escalated = true FROM UNNEST($1::text[], $2::text[]) AS u(d, c)
             WHERE cases.device = u.d AND cases.case_id = u.c",
        )
        .bind(devices)
        .bind(cases)
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    // A step decided in this batch goes in with its review and end of this batch (one row
    // version, not three); the updates below are for steps decided in an earlier batch.
    if !f.steps.is_empty() {
        let keys: Vec<_> = f.steps.keys().collect();
        let s: Vec<_> = f.steps.values().collect();
        let review = |k: &&(String, String, String)| f.reviews.get(*k);
        let end = |k: &&(String, String, String)| f.ends.get(*k);
        sqlx::query(
            "INSERT INTO steps (device, plan_id, step_id, case_id, tenant, action, decision, agent, pack_id,
                                pack_version, edited, decided_at, verdict, reviewed_by, reviewed_at, outcome, ended_at,
                                fired, rules)
             SELECT d, p, s, c, (SELECT tenant FROM cases k WHERE k.device = d AND k.case_id = c), a, dn, ag, pk, pv,
                    ed, t::timestamptz, v, vb, vt::timestamptz, o, CASE WHEN o IS NULL THEN NULL ELSE ot::timestamptz END,
                    fr, ru
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::int8[], $10::text[], $11::bool[], $12::text[], $13::text[], $14::text[],
                         $15::text[], $16::text[], $17::text[], $18::text[])
               AS u(d, p, s, c, a, dn, ag, pk, pv, t, ed, v, vb, vt, o, ot, fr, ru)
             ON CONFLICT (device, plan_id, step_id) DO UPDATE SET case_id = EXCLUDED.case_id,
               tenant = EXCLUDED.tenant, action = EXCLUDED.action, decision = EXCLUDED.decision,
               agent = EXCLUDED.agent, pack_id = EXCLUDED.pack_id, pack_version = EXCLUDED.pack_version,
               edited = EXCLUDED.edited, decided_at = EXCLUDED.decided_at, verdict = EXCLUDED.verdict,
               reviewed_by = EXCLUDED.reviewed_by, reviewed_at = EXCLUDED.reviewed_at, outcome = EXCLUDED.outcome,
               ended_at = EXCLUDED.ended_at, fired = EXCLUDED.fired, rules = EXCLUDED.rules",
        )
        .bind(s.iter().map(|r| text(&r.device)).collect::<Vec<_>>())
        .bind(s.iter().map(|r| text(&r.plan_id)).collect::<Vec<_>>())
        .bind(s.iter().map(|r| text(&r.step_id)).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.case_id.as_deref().map(text)).collect::<Vec<_>>())
        .bind(s.iter().map(|r| text(&r.action)).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.decision.clone()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| text(&r.agent)).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.pack.as_ref().map(|p| text(&p.0))).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.pack.as_ref().map(|p| i64_of(p.1))).collect::<Vec<_>>())
        .bind(s.iter().map(|r| time(&r.at)).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.edited).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| review(k).map(|v| v.1.to_string())).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| review(k).map(|v| text(&v.2))).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| review(k).map(|v| time(&v.0))).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| end(k).and_then(|v| v.1.clone())).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| end(k).map(|v| time(&v.0))).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.fired.clone()).collect::<Vec<_>>())
        .bind(s.iter().map(|r| r.rules.clone()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    let earlier = |k: &&(String, String, String)| !f.steps.contains_key(*k);
    let reviews: Vec<_> = f.reviews.iter().filter(|(k, _)| earlier(k)).collect();
    if !reviews.is_empty() {
        let keys: Vec<_> = reviews.iter().map(|(k, _)| *k).collect();
        let values: Vec<_> = reviews.iter().map(|(_, v)| *v).collect();
        sqlx::query(
            "UPDATE steps SET verdict = u.v, reviewed_by = u.b, reviewed_at = u.t::timestamptz
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS u(d, p, s, v, b, t)
             WHERE steps.device = u.d AND steps.plan_id = u.p AND steps.step_id = u.s",
        )
        .bind(keys.iter().map(|k| text(&k.0)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.1)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.2)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.1.to_string()).collect::<Vec<_>>())
        .bind(values.iter().map(|v| text(&v.2)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| time(&v.0)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    if !f.promises.is_empty() {
        let keys: Vec<_> = f.promises.keys().collect();
        let values: Vec<_> = f.promises.values().collect();
        sqlx::query(
            "INSERT INTO promises (device, case_id, plan_id, promise_id, category, agent, owner, due, made_at)
             SELECT d, c, p, i, k, a, o, du::date, t::timestamptz
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[]) AS u(d, c, p, i, k, a, o, du, t)
             ON CONFLICT DO NOTHING",
        )
        .bind(keys.iter().map(|k| text(&k.0)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.1)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.2)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.3)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| text(&v.category)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| text(&v.agent)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| text(&v.owner)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.due.to_string()).collect::<Vec<_>>())
        .bind(values.iter().map(|v| time(&v.at)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    if !f.promise_checks.is_empty() {
        let keys: Vec<_> = f.promise_checks.keys().collect();
        let values: Vec<_> = f.promise_checks.values().collect();
        sqlx::query(
            "UPDATE promises SET outcome = u.o, checked_at = u.t::timestamptz
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
               AS u(d, c, p, i, o, t)
             WHERE promises.device = u.d AND promises.case_id = u.c AND promises.plan_id = u.p
               AND promises.promise_id = u.i",
        )
        .bind(keys.iter().map(|k| text(&k.0)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.1)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.2)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.3)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.1.to_string()).collect::<Vec<_>>())
        .bind(values.iter().map(|v| time(&v.0)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    if !f.verdicts.is_empty() {
        let keys: Vec<_> = f.verdicts.keys().collect();
        let values: Vec<_> = f.verdicts.values().collect();
        sqlx::query(
            "INSERT INTO verdicts (desk, case_id, device, team, by, key, right_call, at)
             SELECT k, c, d, tm, b, y, r, t::timestamptz
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[],
                         $8::text[]) AS u(k, c, d, b, r, t, y, tm)
             ON CONFLICT (desk, case_id, device) DO UPDATE SET team = EXCLUDED.team, by = EXCLUDED.by,
               key = EXCLUDED.key, right_call = EXCLUDED.right_call, at = EXCLUDED.at",
        )
        .bind(keys.iter().map(|k| text(&k.0)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.1)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.2)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| text(&v.by)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.right).collect::<Vec<_>>())
        .bind(values.iter().map(|v| time(&v.at)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.key.clone()).collect::<Vec<_>>())
        .bind(values.iter().map(|v| text(&v.team)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    let ends: Vec<_> = f.ends.iter().filter(|(k, _)| earlier(k)).collect();
    if !ends.is_empty() {
        let keys: Vec<_> = ends.iter().map(|(k, _)| *k).collect();
        let values: Vec<_> = ends.iter().map(|(_, v)| *v).collect();
        sqlx::query(
            "UPDATE steps SET outcome = u.o, ended_at = CASE WHEN u.o IS NULL THEN NULL ELSE u.t::timestamptz END
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(d, p, s, o, t)
             WHERE steps.device = u.d AND steps.plan_id = u.p AND steps.step_id = u.s",
        )
        .bind(keys.iter().map(|k| text(&k.0)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.1)).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| text(&k.2)).collect::<Vec<_>>())
        .bind(values.iter().map(|v| v.1.clone()).collect::<Vec<_>>())
        .bind(values.iter().map(|v| time(&v.0)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await
        .map_err(db)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn body(payload: &str) -> String {
        format!(r#"{{"actor":"a","at":"2026-12-03T10:00:00Z","case_id":"c","kind":"k","payload":{payload},"seq":7}}"#)
    }

    fn parsed(text: &str) -> serde_json::Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_payload_is_cut_from_its_body_only_when_jsonb_takes_it_as_it_is() {
        let plain = r#"{"how":"called back, \"payload\":","n":1}"#;
        assert_eq!(payload_text(&body(plain), plain).unwrap(), plain);
        // A NUL escaped in the body: written again, cleaned.
        let nul = r#"{"how":"a\u0000b"}"#;
        assert_eq!(parsed(&payload_text(&body(nul), nul).unwrap()), serde_json::json!({"how": "a\u{FFFD}b"}));
        // A body with the key twice: the payload its parse found (the last) is written.
        let twice = r#"{"a":1},"payload":{"b":2}"#;
        assert_eq!(parsed(&payload_text(&body(twice), r#"{"b":2}"#).unwrap()), serde_json::json!({"b": 2}));
        // A number jsonb would refuse is never cut as it is: read, it is out of range.
        let huge = r#"{"amount":1e999999,"note":"e5 1e9"}"#;
        assert!(payload_text(&body(huge), huge).is_err());
        let fine = r#"{"amount":1.5e3,"big":12345678901234567890}"#;
        assert_eq!(parsed(&payload_text(&body(fine), fine).unwrap()), parsed(fine));
        let long = format!(r#"{{"n":{}}}"#, "9".repeat(400));
        assert!(payload_text(&body(&long), &long).is_err(), "not cut, and out of range read");
        assert!(plain_numbers(r#"{"a":[true,false,null,-1.25],"s":"1e99"}"#));
    }
}
