//! The lead's team view: the team service answers a lead's desk over the team plane
//! (request / reply on `cs.view.<device>`, which the server lets only that lead's or
//! admin's desk publish), from the projected evidence in PostgreSQL. Desks never hold
//! database credentials.
//!
//! Every ask is a [`ViewAsk`] signed with the lead's device key. It is answered only if
//! the signature is the key of a roster entry with a supervisor role in the newest signed
//! pack the team published (checked against the admin keys the service trusts), names
//! the desk that sent it, and is fresh. The answer holds only the desks and tenants that
//! roster entry grants (`view_desks`, `view_tenants`; none when absent). An answer that
//! shows customer data is recorded in `views` (who, which desk, what was asked, how many
//! rows and which cases) before it is sent; if it cannot be recorded it is not sent.

use std::sync::Arc;

use async_nats::jetstream;
use countersign_core::team::SignedEntry;
use countersign_core::teamview::{
    CaseBundle, DeletionRecord, EscalationVerdicts, MAX_ROWS, PromiseCounts, RuleCounts, StepFilter, StepRow,
    TeamAlert, TeamAnswer, TeamCounts, TeamEvent, TeamMetrics, TeamQuery, UnknownOutcomes, ViewAsk, ViewRecord,
};
use countersign_plane::subjects::{blobs_bucket_of, inbox_prefix, view_subject};
use countersign_trust::keys::{PublicKey, TrustedKeys};
use countersign_trust::pack::Pack;
use countersign_trust::roster::RosterEntry;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use sqlx::{PgPool, QueryBuilder};
use tokio::sync::Mutex;

use crate::pack::{Held, newest_pack};
use crate::project::ProjectError;

/// How old (or how far ahead of the service's clock) an ask may be.
const FRESH: SignedDuration = SignedDuration::from_mins(5);
/// The most events a case's timeline or export carries.
const MAX_EVENTS: i64 = 2000;
/// How many asks are answered at once.
const CONCURRENT: usize = 8;

/// What the view needs besides the database.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// The team's name (asks for another team are refused).
    pub team: String,
    /// The admin keys a pack must be signed by.
    pub trusted: TrustedKeys,
}

/// Why an ask is refused: `code` is what the asker's desk branches on (`bad_ask`,
/// `not_found`, `unavailable`…), `reason` what a person reads.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {reason}")]
pub struct Refusal {
    pub code: &'static str,
    pub reason: String,
}

pub(crate) fn refuse(code: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal { code, reason: reason.into() }
}

impl From<ProjectError> for Refusal {
    fn from(e: ProjectError) -> Refusal {
        tracing::warn!(error = %e, "answering a team view");
        refuse("unavailable", "the team's database could not answer; try again")
    }
}

pub(crate) fn db(e: sqlx::Error) -> Refusal {
    Refusal::from(ProjectError::Database { at: "the team view".into(), message: e.to_string() })
}

/// Open `database` (again and again, with back-off, while it cannot be reached) and
/// answer the leads' team views from it until `until` completes.
pub async fn run(
    client: async_nats::Client,
    database: sqlx::postgres::PgConnectOptions,
    options: ViewOptions,
    until: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    let mut until = std::pin::pin!(until);
    let Some(pool) = crate::project::open_when_ready(&database, &mut until).await? else { return Ok(()) };
    serve(client, pool, options, until).await
}

/// Answer the leads' team views from `pool` until `until` completes.
pub async fn serve(
    client: async_nats::Client,
    pool: PgPool,
    options: ViewOptions,
    until: impl std::future::Future<Output = ()>,
) -> Result<(), ProjectError> {
    let subscriber = client
        .subscribe(view_subject("*"))
        .await
        .map_err(|e| ProjectError::Server(format!("listening for team views: {e}")))?;
    let js = jetstream::new(client.clone());
    let held = Arc::new(Mutex::new(Held::default()));
    let seen = Arc::new(Mutex::new(Nonces::default()));
    let options = Arc::new(options);
    let answering = subscriber.for_each_concurrent(CONCURRENT, |m| {
        let (client, js, pool, held, seen, options) =
            (client.clone(), js.clone(), pool.clone(), held.clone(), seen.clone(), options.clone());
        async move {
            let device = m.subject.as_str().strip_prefix(&view_subject("")).unwrap_or_default().to_string();
            // The answer goes only to the asking desk's own inbox: the service may publish
            // once to any reply subject it is handed, and a reply subject of another's
            // (a desk's evidence subject, the lease) must never receive it.
            let Some(reply) = m.reply.clone().filter(|r| r.as_str().starts_with(&format!("{}.", inbox_prefix(&device))))
            else {
                return tracing::warn!(device, reply = ?m.reply, "a team-view ask without the desk's own inbox; dropped");
            };
            let bytes = match answer(&js, &pool, &held, &seen, &options, &device, &m.payload).await {
                Ok((answer, record)) => match sendable(&answer) {
                    Ok(bytes) => match &record {
                        Some(r) => match r.write(&pool).await {
                            Ok(()) => Ok(bytes),
                            Err(refusal) => Err(refusal),
                        },
                        None => Ok(bytes),
                    },
                    Err(refusal) => Err(refusal),
                },
                Err(refusal) => Err(refusal),
            };
            let bytes = bytes.unwrap_or_else(|r| {
                let refused = TeamAnswer::Refused { code: r.code.to_string(), reason: r.reason };
                serde_json::to_vec(&refused).unwrap_or_default()
            });
            if let Err(e) = client.publish(reply, bytes.into()).await {
                tracing::warn!(error = %e, device, "answering a team view");
            }
        }
    });
    tokio::select! {
        () = answering => Err(ProjectError::Server("the team views' subscription ended".into())),
        () = until => Ok(()),
    }
}

/// The most an answer may weigh (the team's server takes 8 MiB messages).
const MAX_ANSWER_BYTES: usize = 7 << 20;

/// An answer as it goes out, unless it is too large to.
fn sendable(answer: &TeamAnswer) -> Result<Vec<u8>, Refusal> {
    let bytes =
        serde_json::to_vec(answer).map_err(|e| refuse("unavailable", format!("serialising the answer: {e}")))?;
    if bytes.len() > MAX_ANSWER_BYTES {
        return Err(refuse(
            "too_large",
            format!(
                "the answer is {} bytes, past the {MAX_ANSWER_BYTES} a message carries: narrow the ask",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

/// The asks' nonces of the last [`FRESH`] window, each answered once.
#[derive(Debug, Default)]
struct Nonces(std::collections::HashMap<String, Timestamp>);

impl Nonces {
    /// `false` when `nonce` was seen within the window (a replay).
    fn first(&mut self, nonce: &str, now: Timestamp) -> bool {
        self.0.retain(|_, at| *at > now - FRESH - FRESH);
        self.0.insert(nonce.to_string(), now).is_none()
    }
}

/// What is recorded of an answer that shows customer data, once it can go out.
struct Record {
    device: String,
    by: String,
    query: TeamQuery,
    shown: usize,
    cases: Vec<String>,
}

impl Record {
    async fn write(&self, pool: &PgPool) -> Result<(), Refusal> {
        record(pool, &self.device, &self.by, &self.query, self.shown, &self.cases).await
    }
}

/// Check the ask and answer it; what to record before it goes out, when it shows
/// customer data.
async fn answer(
    js: &jetstream::Context,
    pool: &PgPool,
    held: &Mutex<Held>,
    seen: &Mutex<Nonces>,
    options: &ViewOptions,
    device: &str,
    payload: &[u8],
) -> Result<(TeamAnswer, Option<Record>), Refusal> {
    let entry: SignedEntry =
        serde_json::from_slice(payload).map_err(|e| refuse("bad_ask", format!("not a signed team-view ask: {e}")))?;
    let pack = newest_pack(js, held, &options.trusted).await.map_err(|(code, reason)| refuse(code, reason))?;
    let (lead, ask) = open_ask(&pack, &entry)?;
    if ask.team != options.team {
        return Err(refuse("bad_ask", format!("an ask for team {:?}; this is {:?}", ask.team, options.team)));
    }
    if ask.device != device {
        return Err(refuse("bad_ask", format!("signed for desk {:?} but sent by {device:?}", ask.device)));
    }
    let now = Timestamp::now();
    if ask.at < now - FRESH || ask.at > now + FRESH {
        return Err(refuse("stale", format!("signed at {}; the team's clock says {now}", ask.at)));
    }
    if !seen.lock().await.first(&format!("{device}/{}", ask.nonce), now) {
        return Err(refuse("stale", "this ask was answered already (a replay)"));
    }
    if lead.view_desks.is_empty() || lead.view_tenants.is_empty() {
        return Err(refuse(
            "not_granted",
            format!(
                "the signed pack grants {} no team view: its roster entry needs view_desks and view_tenants",
                lead.id
            ),
        ));
    }
    let grants = Grants::of(lead);
    let (answer, shown, cases) = match &ask.query {
        TeamQuery::Steps { filter } => {
            let (rows, next) = steps_page(pool, &grants, filter).await?;
            let mut cases: Vec<String> = rows.iter().filter_map(|r| r.case_id.clone()).collect();
            cases.sort();
            cases.dedup();
            let n = rows.len();
            (TeamAnswer::Steps { rows, next }, n, cases)
        }
        TeamQuery::Case { case_id } => {
            let events = case_events(pool, &grants, case_id, None).await?;
            let (n, cases) = (events.len(), vec![case_id.clone()]);
            (TeamAnswer::Case { case_id: case_id.clone(), events }, n, cases)
        }
        TeamQuery::Blob { device, case_id, hash } => {
            (blob(js, pool, &grants, device, case_id, hash).await?, 1, vec![case_id.clone()])
        }
        TeamQuery::Export { case_id } => {
            let events = case_events(pool, &grants, case_id, None).await?;
            let desks: Vec<String> = {
                let mut d: Vec<String> = events.iter().map(|e| e.desk.clone()).collect();
                d.dedup();
                d.sort();
                d.dedup();
                d
            };
            let witnessed: Vec<(String, String)> = sqlx::query_as(
                "SELECT DISTINCT ON (device) device, note FROM witnessed WHERE device = ANY($1)
                 ORDER BY device, count DESC",
            )
            .bind(&desks)
            .fetch_all(pool)
            .await
            .map_err(db)?;
            let n = events.len();
            let bundle = CaseBundle {
                team: options.team.clone(),
                case_id: case_id.clone(),
                exported_by: lead.id.clone(),
                exported_at: now,
                events,
                witnessed,
            };
            (TeamAnswer::Export { bundle }, n, vec![case_id.clone()])
        }
        TeamQuery::Alerts => (alerts(pool, &grants).await?, 0, Vec::new()),
        TeamQuery::Audit { limit } => {
            if grants.desks.is_some() || grants.tenants.is_some() {
                return Err(refuse(
                    "not_granted",
                    format!(
                        "the team's record of views and deletions is for a lead granted every desk and tenant; {} is \
                         granted some",
                        lead.id
                    ),
                ));
            }
            let (views, deletions) = audit(pool, limit.unwrap_or(100).clamp(1, MAX_ROWS)).await?;
            (TeamAnswer::Audit { views, deletions }, 0, Vec::new())
        }
        TeamQuery::Simulate { draft, since } => {
            let since = since.as_deref().map(|t| time_of(t, "since")).transpose()?;
            let (report, desks) = crate::autonomy::simulate_draft(pool, &grants, draft, since).await?;
            let cases = crate::autonomy::report_cases(&report);
            let n = report.steps;
            (TeamAnswer::Simulate { report, desks }, n, cases)
        }
        TeamQuery::Autonomy => {
            let autonomy = crate::autonomy::autonomy(pool, &grants, &pack).await?;
            let cases = crate::autonomy::autonomy_cases(&autonomy);
            let n = autonomy.records.len();
            (TeamAnswer::Autonomy { autonomy }, n, cases)
        }
        TeamQuery::Metrics { since, until } => {
            let since = since.as_deref().map(|t| time_of(t, "since")).transpose()?;
            let until = until.as_deref().map(|t| time_of(t, "until")).transpose()?;
            let leads = lead_keys(&pack);
            let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
            let rules = policy_rules(&pack.policy);
            let metrics = metrics(pool, &grants, (&options.team, &leads), &rules, today, since, until).await?;
            (TeamAnswer::Metrics { metrics }, 0, Vec::new())
        }
    };
    let record = ask.query.shows_customer_data().then(|| Record {
        device: device.to_string(),
        by: lead.id.clone(),
        query: ask.query.clone(),
        shown,
        cases,
    });
    Ok((answer, record))
}

/// The roster entry whose key signed the ask (a supervisor role of the pack's policy),
/// and the ask.
fn open_ask<'p>(pack: &'p Pack, entry: &SignedEntry) -> Result<(&'p RosterEntry, ViewAsk), Refusal> {
    let leads: Vec<(&RosterEntry, PublicKey)> = pack
        .roster
        .iter()
        .filter(|e| pack.policy.supervisor_roles.contains(&e.role))
        .filter_map(|e| Some((e, PublicKey::from_hex(e.key.as_deref()?, e.id.clone()).ok()?)))
        .collect();
    let keys: Vec<PublicKey> = leads.iter().map(|(_, k)| k.clone()).collect();
    let (signer, ask) = countersign_trust::team::open::<ViewAsk>(countersign_trust::team::VIEW_DOMAIN, entry, &keys)
        .map_err(|e| match e {
            countersign_trust::team::EntryProblem::UnknownKey { .. } => refuse(
                "not_a_lead",
                format!("{e}: only a lead on the roster of pack {} v{} sees the team", pack.info.id, pack.info.version),
            ),
            other => refuse("bad_ask", other.to_string()),
        })?;
    let lead = leads
        .iter()
        .find(|(_, k)| k.to_hex() == signer.to_hex())
        .map(|(e, _)| *e)
        .ok_or_else(|| refuse("not_a_lead", "the signing key is on no roster entry"))?;
    if ask.by != lead.id {
        return Err(refuse("bad_ask", format!("signed by {}'s key but says it is {}", lead.id, ask.by)));
    }
    Ok((lead, ask))
}

/// The keys (lower-case hex) of the roster's leads, with their roster ids: a verdict
/// counts when one of them signed it in the name it signs for.
fn lead_keys(pack: &Pack) -> Vec<(String, String)> {
    pack.roster
        .iter()
        .filter(|e| pack.policy.supervisor_roles.contains(&e.role))
        .filter_map(|e| e.key.as_deref().map(|k| (k.to_ascii_lowercase(), e.id.clone())))
        .collect()
}

/// What a lead may see: desks and tenants (`None`: every one).
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub desks: Option<Vec<String>>,
    pub tenants: Option<Vec<String>>,
}

impl Grants {
    fn of(lead: &RosterEntry) -> Grants {
        let all = |v: &[String]| v.iter().any(|x| x == "*");
        Grants {
            desks: (!all(&lead.view_desks)).then(|| lead.view_desks.clone()),
            tenants: (!all(&lead.view_tenants)).then(|| lead.view_tenants.clone()),
        }
    }
}

fn time_of(text: &str, what: &str) -> Result<Timestamp, Refusal> {
    text.parse().map_err(|e| refuse("bad_ask", format!("{what} {text:?} is not an RFC 3339 time: {e}")))
}

/// The `after` cursor: the last row's (decided_at, device, plan_id, step_id), as hex of
/// its JSON.
fn cursor_of(row: &StepRow) -> String {
    hex::encode(serde_json::json!([row.decided_at, row.desk, row.plan_id, row.step_id]).to_string())
}

fn read_cursor(text: &str) -> Result<(Timestamp, String, String, String), Refusal> {
    let bad = || refuse("bad_ask", "the page cursor (`after`) is not one this service gave");
    let bytes = hex::decode(text).map_err(|_| bad())?;
    let (at, desk, plan, step): (String, String, String, String) = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((at.parse().map_err(|_| bad())?, desk, plan, step))
}

/// One row of `steps` as read (times as RFC 3339 text).
type StepTuple = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The page of decided steps `f` picks within `grants` (what a lead's `steps` ask is
/// answered with; public for the filters' benchmark and tests): the rows and the next
/// page's cursor.
pub async fn steps_page(
    pool: &PgPool,
    grants: &Grants,
    f: &StepFilter,
) -> Result<(Vec<StepRow>, Option<String>), Refusal> {
    let limit = f.limit.unwrap_or(50).clamp(1, MAX_ROWS);
    let mut q = QueryBuilder::new(
        "SELECT device, case_id, tenant, plan_id, step_id, action, decision, agent, pack_id, pack_version,
                to_json(decided_at)#>>'{}', verdict, reviewed_by, outcome, to_json(ended_at)#>>'{}'
         FROM steps WHERE true",
    );
    if let Some(desks) = &grants.desks {
        q.push(" AND device = ANY(").push_bind(desks.clone()).push(")");
    }
    if let Some(tenants) = &grants.tenants {
        q.push(" AND tenant = ANY(").push_bind(tenants.clone()).push(")");
    }
    let eq = |q: &mut QueryBuilder<sqlx::Postgres>, column: &str, value: &Option<String>| {
        if let Some(v) = value {
            q.push(format!(" AND {column} = ")).push_bind(v.clone());
        }
    };
    eq(&mut q, "agent", &f.agent);
    eq(&mut q, "device", &f.desk);
    eq(&mut q, "action", &f.action);
    eq(&mut q, "decision", &f.decision);
    eq(&mut q, "tenant", &f.tenant);
    match f.outcome.as_deref() {
        None => {}
        Some("rejected") => {
            q.push(" AND verdict = 'rejected'");
        }
        Some("open") => {
            q.push(" AND outcome IS NULL AND verdict IS DISTINCT FROM 'rejected'");
        }
        Some(o) => {
            q.push(" AND outcome = ").push_bind(o.to_string());
        }
    }
    if let Some(v) = f.pack_version {
        let v = i64::try_from(v).map_err(|_| refuse("bad_ask", "a pack version past 2^63"))?;
        q.push(" AND pack_version = ").push_bind(v);
    }
    if let Some(s) = &f.since {
        q.push(" AND decided_at >= ").push_bind(time_of(s, "since")?.to_string()).push("::timestamptz");
    }
    if let Some(u) = &f.until {
        q.push(" AND decided_at < ").push_bind(time_of(u, "until")?.to_string()).push("::timestamptz");
    }
    if let Some(after) = &f.after {
        let (at, desk, plan, step) = read_cursor(after)?;
        q.push(" AND (decided_at, device, plan_id, step_id) < (")
            .push_bind(at.to_string())
            .push("::timestamptz, ")
            .push_bind(desk)
            .push(", ")
            .push_bind(plan)
            .push(", ")
            .push_bind(step)
            .push(")");
    }
    q.push(" ORDER BY decided_at DESC, device DESC, plan_id DESC, step_id DESC LIMIT ").push_bind(i64::from(limit) + 1);
    let tuples: Vec<StepTuple> = q.build_query_as().fetch_all(pool).await.map_err(db)?;
    let mut rows: Vec<StepRow> = tuples
        .into_iter()
        .map(|t| StepRow {
            desk: t.0,
            case_id: t.1,
            tenant: t.2,
            plan_id: t.3,
            step_id: t.4,
            action: t.5,
            decision: t.6,
            agent: t.7,
            pack_id: t.8,
            pack_version: t.9.map(i64::unsigned_abs),
            decided_at: t.10,
            verdict: t.11,
            reviewed_by: t.12,
            outcome: t.13,
            ended_at: t.14,
        })
        .collect();
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(cursor_of)
    } else {
        None
    };
    Ok((rows, next))
}

/// A case's events from the desks (and of the tenants) the lead may see, in time order;
/// only `device`'s when given. None is `not_found`, whether the case is elsewhere or
/// nowhere (a lead learns nothing of cases they may not see).
async fn case_events(
    pool: &PgPool,
    grants: &Grants,
    case_id: &str,
    device: Option<&str>,
) -> Result<Vec<TeamEvent>, Refusal> {
    let rows: Vec<(String, i64, String, String, String)> = sqlx::query_as(
        "SELECT e.device, e.seq, e.hash, e.prev_hash, e.body FROM events e
         LEFT JOIN cases c ON c.device = e.device AND c.case_id = e.case_id
         WHERE e.case_id = $1
           AND ($2::text[] IS NULL OR e.device = ANY($2))
           AND ($3::text[] IS NULL OR c.tenant = ANY($3))
           AND ($4::text IS NULL OR e.device = $4)
         ORDER BY e.at, e.device, e.seq LIMIT $5",
    )
    .bind(case_id)
    .bind(&grants.desks)
    .bind(&grants.tenants)
    .bind(device)
    .bind(MAX_EVENTS + 1)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    if rows.is_empty() {
        return Err(refuse("not_found", format!("no case {case_id:?} on any desk you may see")));
    }
    if rows.len() as i64 > MAX_EVENTS {
        return Err(refuse(
            "too_large",
            format!(
                "case {case_id:?} has more than {MAX_EVENTS} events on the desks you may see; the team view shows up to that"
            ),
        ));
    }
    Ok(rows
        .into_iter()
        .map(|(desk, seq, hash, prev_hash, body)| TeamEvent { desk, seq: seq.unsigned_abs(), hash, prev_hash, body })
        .collect())
}

/// A blob one of the case's events names, from its desk's store.
async fn blob(
    js: &jetstream::Context,
    pool: &PgPool,
    grants: &Grants,
    device: &str,
    case_id: &str,
    hash: &str,
) -> Result<TeamAnswer, Refusal> {
    use tokio::io::AsyncReadExt;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse("bad_ask", "a blob's hash is 64 hex digits"));
    }
    let events = case_events(pool, grants, case_id, Some(device)).await?;
    if !events.iter().any(|e| e.body.contains(hash)) {
        return Err(refuse("not_found", format!("no event of case {case_id:?} on {device} names blob {hash}")));
    }
    let store = js
        .get_object_store(blobs_bucket_of(device))
        .await
        .map_err(|e| refuse("not_found", format!("{device} has no blobs on the team: {e}")))?;
    let mut reader = store.get(hash).await.map_err(|e| refuse("not_found", format!("blob {hash} of {device}: {e}")))?;
    const MAX_BLOB: u64 = 3 << 20;
    let size = reader.info().size as u64;
    if size > MAX_BLOB {
        return Err(refuse(
            "too_large",
            format!("blob {hash} is {size} bytes; the team view carries up to {MAX_BLOB}"),
        ));
    }
    let content_type = reader.info().description.clone().unwrap_or_else(|| "application/octet-stream".into());
    let mut bytes = Vec::new();
    (&mut reader).take(MAX_BLOB).read_to_end(&mut bytes).await.map_err(|e| refuse("unavailable", e.to_string()))?;
    Ok(TeamAnswer::Blob { content_type, data: hex::encode(bytes) })
}

async fn alerts(pool: &PgPool, grants: &Grants) -> Result<TeamAnswer, Refusal> {
    let rows: Vec<(String, i64, String, String, String)> = sqlx::query_as(
        "SELECT device, seq, kind, detail, to_json(raised_at)#>>'{}' FROM alerts
         WHERE $1::text[] IS NULL OR device = ANY($1) ORDER BY id",
    )
    .bind(&grants.desks)
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let alerts = rows
        .into_iter()
        .map(|(desk, seq, kind, detail, raised_at)| TeamAlert {
            desk,
            seq: seq.unsigned_abs(),
            kind,
            detail,
            raised_at,
        })
        .collect();
    Ok(TeamAnswer::Alerts { alerts })
}

/// The steps a lead may see, decided within the window: the `WHERE` every metric shares
/// ($1 desks, $2 tenants, $3 since, $4 until; `NULL`: any).
const WINDOW: &str = "($1::text[] IS NULL OR device = ANY($1)) AND ($2::text[] IS NULL OR tenant = ANY($2))
     AND ($3::timestamptz IS NULL OR decided_at >= $3::timestamptz)
     AND ($4::timestamptz IS NULL OR decided_at < $4::timestamptz)";

/// One bar's counts, grouped by `label` (an SQL expression over `steps`).
fn counts_sql(label: &str) -> String {
    format!(
        "SELECT {label} AS label,
           count(*) FILTER (WHERE decision = 'auto'),
           count(*) FILTER (WHERE verdict = 'approved'),
           count(*) FILTER (WHERE verdict = 'rejected'),
           count(*) FILTER (WHERE decision = 'forbid'),
           count(*) FILTER (WHERE decision IN ('confirm', 'supervisor') AND verdict IS NULL AND outcome IS NULL),
           count(*) FILTER (WHERE decision = 'recommend'),
           count(*) FILTER (WHERE edited)
         FROM steps WHERE {WINDOW} GROUP BY 1 ORDER BY 1"
    )
}

type CountsRow = (Option<String>, i64, i64, i64, i64, i64, i64, i64);

/// The binds of [`WINDOW`].
struct Window<'a> {
    grants: &'a Grants,
    since: Option<String>,
    until: Option<String>,
}

impl<'a> Window<'a> {
    fn bind<O>(
        &'a self,
        q: sqlx::query::QueryAs<'a, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'a, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        q.bind(&self.grants.desks).bind(&self.grants.tenants).bind(&self.since).bind(&self.until)
    }
}

fn counts_of(r: CountsRow) -> TeamCounts {
    let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    TeamCounts {
        label: r.0.unwrap_or_default(),
        auto_run: n(r.1),
        confirmed: n(r.2),
        rejected: n(r.3),
        forbidden: n(r.4),
        waiting: n(r.5),
        recommended: n(r.6),
        edited: n(r.7),
    }
}

/// Promise counts grouped by `label` (an SQL expression over `promises p`), on the desks
/// and tenants a lead may see, made within the window ($1–$4 as [`WINDOW`]; $5 today).
fn promise_sql(label: &str) -> String {
    format!(
        "SELECT {label} AS label, count(*),
           count(*) FILTER (WHERE p.outcome = 'kept'),
           count(*) FILTER (WHERE p.outcome = 'broken'),
           count(*) FILTER (WHERE p.outcome = 'not_checkable'),
           count(*) FILTER (WHERE p.outcome IS NULL AND p.due < $5::date),
           count(*) FILTER (WHERE p.outcome IS NULL AND p.due >= $5::date)
         FROM promises p LEFT JOIN cases c ON c.device = p.device AND c.case_id = p.case_id
         WHERE ($1::text[] IS NULL OR p.device = ANY($1)) AND ($2::text[] IS NULL OR c.tenant = ANY($2))
           AND ($3::timestamptz IS NULL OR p.made_at >= $3::timestamptz)
           AND ($4::timestamptz IS NULL OR p.made_at < $4::timestamptz)
         GROUP BY 1 ORDER BY 1"
    )
}

type PromiseRow = (Option<String>, i64, i64, i64, i64, i64, i64);

fn promises_of(r: PromiseRow) -> PromiseCounts {
    let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    PromiseCounts {
        label: r.0.unwrap_or_default(),
        made: n(r.1),
        kept: n(r.2),
        broken: n(r.3),
        not_checkable: n(r.4),
        overdue: n(r.5),
        open: n(r.6),
    }
}

/// The team's metrics over a window, on what `grants` let a lead see; a verdict counts
/// when it is for this team and one of its leads (key, lower-case hex, and roster id)
/// signed it in their own name: `verdicts` is (team, leads).
pub async fn metrics(
    pool: &PgPool,
    grants: &Grants,
    verdicts: (&str, &[(String, String)]),
    policy_rules: &[String],
    today: jiff::civil::Date,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
) -> Result<TeamMetrics, Refusal> {
    let w = Window { grants, since: since.map(|t| t.to_string()), until: until.map(|t| t.to_string()) };
    let grouped = |label: &str| {
        let sql = counts_sql(label);
        let w = &w;
        async move {
            w.bind(sqlx::query_as::<_, CountsRow>(sqlx::AssertSqlSafe(sql)))
                .fetch_all(pool)
                .await
                .map_err(db)
                .map(|rows| rows.into_iter().map(counts_of).collect::<Vec<_>>())
        }
    };
    let per_action = grouped("action").await?;
    let per_agent = grouped("agent").await?;
    let per_week = grouped("to_char(date_trunc('week', decided_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')").await?;
    let totals = grouped("'all'::text").await?.into_iter().next().unwrap_or_default();
    let latency: Vec<(i64,)> = w
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT greatest(0, extract(epoch FROM reviewed_at - decided_at))::int8 FROM steps
             WHERE verdict = 'approved' AND {WINDOW} ORDER BY reviewed_at DESC LIMIT 5000"
        ))))
        .fetch_all(pool)
        .await
        .map_err(db)?;
    let (overrides, open, applied, not_applied): (i64, i64, i64, i64) = w
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FILTER (WHERE decision = 'confirm' AND verdict = 'rejected'),
                    count(*) FILTER (WHERE outcome = 'unknown'),
                    count(*) FILTER (WHERE outcome = 'settled_applied'),
                    count(*) FILTER (WHERE outcome = 'settled_not_applied')
             FROM steps WHERE {WINDOW}"
        ))))
        .fetch_one(pool)
        .await
        .map_err(db)?;
    // An escalation's verdict: the newest signed by a lead's key on the roster.
    let (cases, escalations, right, wrong): (i64, i64, i64, i64) = w
        .bind(sqlx::query_as(
            "WITH judged AS (
               SELECT DISTINCT ON (v.desk, v.case_id) v.desk, v.case_id, v.right_call
               FROM verdicts v
               WHERE v.team = $7 AND (v.key, v.by) IN (SELECT * FROM UNNEST($5::text[], $6::text[]))
               ORDER BY v.desk, v.case_id, v.at DESC
             )
             SELECT count(*), count(*) FILTER (WHERE c.escalated),
                    count(*) FILTER (WHERE c.escalated AND j.right_call),
                    count(*) FILTER (WHERE c.escalated AND NOT j.right_call)
             FROM cases c LEFT JOIN judged j ON j.desk = c.device AND j.case_id = c.case_id
             WHERE ($1::text[] IS NULL OR c.device = ANY($1)) AND ($2::text[] IS NULL OR c.tenant = ANY($2))
               AND ($3::timestamptz IS NULL OR c.first_at >= $3::timestamptz)
               AND ($4::timestamptz IS NULL OR c.first_at < $4::timestamptz)",
        ))
        .bind(verdicts.1.iter().map(|l| l.0.clone()).collect::<Vec<_>>())
        .bind(verdicts.1.iter().map(|l| l.1.clone()).collect::<Vec<_>>())
        .bind(verdicts.0)
        .fetch_one(pool)
        .await
        .map_err(db)?;
    let promised = |label: &str| {
        let sql = promise_sql(label);
        let w = &w;
        async move {
            w.bind(sqlx::query_as::<_, PromiseRow>(sqlx::AssertSqlSafe(sql)))
                .bind(today.to_string())
                .fetch_all(pool)
                .await
                .map_err(db)
                .map(|rows| rows.into_iter().map(promises_of).collect::<Vec<_>>())
        }
    };
    let promises = promised("'all'::text").await?.into_iter().next().unwrap_or_default();
    let promises_per_agent = promised("p.agent").await?;
    let promises_per_week = promised("to_char(date_trunc('week', p.made_at AT TIME ZONE 'UTC'), 'YYYY-MM-DD')").await?;
    // Per rule: the steps it fired on, those whose outcome it set, and of those the ones a
    // person rejected or an agent edited.
    let per_rule: Vec<(String, i64, i64, i64)> = w
        .bind(sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT r, count(*),
                    count(*) FILTER (WHERE r = ANY(string_to_array(rules, ' '))),
                    count(*) FILTER (WHERE r = ANY(string_to_array(rules, ' '))
                                     AND (verdict = 'rejected' OR edited))
             FROM steps CROSS JOIN LATERAL unnest(string_to_array(fired, ' ')) AS r
             WHERE fired <> '' AND {WINDOW}
             GROUP BY r ORDER BY count(*) DESC, r"
        ))))
        .fetch_all(pool)
        .await
        .map_err(db)?;
    let n = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    let rules_never_fired =
        policy_rules.iter().filter(|r| !per_rule.iter().any(|(fired, ..)| fired == *r)).cloned().collect();
    let rules = per_rule
        .into_iter()
        .map(|(rule, fired, decided, overridden)| RuleCounts {
            rule,
            fired: n(fired),
            decided: n(decided),
            overridden: n(overridden),
        })
        .collect();
    Ok(TeamMetrics {
        totals: TeamCounts { label: "all".into(), ..totals },
        per_action,
        per_agent,
        per_week,
        approval_latency_secs: latency.into_iter().map(|(s,)| n(s)).collect(),
        overrides: n(overrides),
        escalations: n(escalations),
        escalation_verdicts: EscalationVerdicts {
            right: n(right),
            wrong: n(wrong),
            unjudged: n(escalations - right - wrong),
        },
        cases: n(cases),
        unknown: UnknownOutcomes { open: n(open), settled_applied: n(applied), settled_not_applied: n(not_applied) },
        promises: PromiseCounts { label: "all".into(), ..promises },
        promises_per_agent,
        promises_per_week,
        rules,
        rules_never_fired,
    })
}

/// The ids a policy's own rules and signals fire under (`rule.<id>`, `signal.<id>`): what
/// the leads' per-rule view lists when they never fire.
pub fn policy_rules(policy: &countersign_core::Policy) -> Vec<String> {
    policy
        .rules
        .iter()
        .map(|r| format!("rule.{}", r.id))
        .chain(policy.signals.iter().map(|s| format!("signal.{}", s.id)))
        .collect()
}

/// The newest `limit` recorded views and deletions, newest first.
pub async fn audit(pool: &PgPool, limit: u32) -> Result<(Vec<ViewRecord>, Vec<DeletionRecord>), Refusal> {
    let views: Vec<(String, String, String, String, i64, Vec<String>)> = sqlx::query_as(
        "SELECT to_json(at)#>>'{}', device, by, kind, shown, cases FROM views ORDER BY id DESC LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    let deletions: Vec<(String, String, String, String, i64, i32, String)> = sqlx::query_as(
        "SELECT to_json(at)#>>'{}', tenant, device, case_id, events, days, pack FROM deletions
         ORDER BY id DESC LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await
    .map_err(db)?;
    Ok((
        views
            .into_iter()
            .map(|(at, desk, by, kind, shown, cases)| ViewRecord {
                at,
                desk,
                by,
                kind,
                shown: shown.unsigned_abs(),
                cases,
            })
            .collect(),
        deletions
            .into_iter()
            .map(|(at, tenant, desk, case_id, events, days, pack)| DeletionRecord {
                at,
                tenant,
                desk,
                case_id,
                events: events.unsigned_abs(),
                days: days.unsigned_abs(),
                pack,
            })
            .collect(),
    ))
}

/// Who saw what, when: recorded before the answer goes out.
async fn record(
    pool: &PgPool,
    device: &str,
    by: &str,
    query: &TeamQuery,
    shown: usize,
    cases: &[String],
) -> Result<(), Refusal> {
    let kind = match query {
        TeamQuery::Steps { .. } => "steps",
        TeamQuery::Case { .. } => "case",
        TeamQuery::Blob { .. } => "blob",
        TeamQuery::Export { .. } => "export",
        TeamQuery::Alerts => "alerts",
        TeamQuery::Metrics { .. } => "metrics",
        TeamQuery::Audit { .. } => "audit",
        TeamQuery::Autonomy => "autonomy",
        TeamQuery::Simulate { .. } => "simulate",
    };
    let query = serde_json::to_string(query).map_err(|e| refuse("unavailable", e.to_string()))?;
    sqlx::query("INSERT INTO views (device, by, kind, query, shown, cases) VALUES ($1, $2, $3, $4::jsonb, $5, $6)")
        .bind(device)
        .bind(by)
        .bind(kind)
        .bind(crate::project::pg_text(&query))
        .bind(i64::try_from(shown).unwrap_or(i64::MAX))
        .bind(cases)
        .execute(pool)
        .await
        .map_err(db)?;
    Ok(())
}

/// Every recorded view, oldest first: (desk, lead, kind, shown, cases).
pub async fn views(pool: &PgPool) -> Result<Vec<(String, String, String, u64, Vec<String>)>, ProjectError> {
    let rows: Vec<(String, String, String, i64, Vec<String>)> =
        sqlx::query_as("SELECT device, by, kind, shown, cases FROM views ORDER BY id")
            .fetch_all(pool)
            .await
            .map_err(|e| ProjectError::Database { at: "the team view".into(), message: e.to_string() })?;
    Ok(rows.into_iter().map(|(d, b, k, s, c)| (d, b, k, s.unsigned_abs(), c)).collect())
}
