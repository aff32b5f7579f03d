//! The projection's figure (issue "Team oversight", "Benchmarks"): every desk's evidence
//! from the team's stream into PostgreSQL, verified as it goes, beside a bare `COPY` of
//! the same rows into the same table, measured in the same run on the same cluster.
//!
//! `cargo bench -p countersign-team --bench projection` inside a D-Bus session with an
//! unlocked gnome-keyring (the team's admin keys; the desks'
//! keys are made in memory). Real parts: the team's `nats-server` (operator mode,
//! JetStream with `sync_interval: always`) and a throwaway PostgreSQL 15 cluster with
//! `fsync` on, as a team would run it.
//!
//! - **Events:** `PROJ_BENCH_DESKS` (20) desks × `PROJ_BENCH_EVENTS` (5,000) events, each
//!   desk a valid hash chain built with the store's own canonical body and link
//!   (`canonical_body`, `Hash::link`): what a real engine records working the demo's
//!   sample cases, repeated with new case and plan ids each time (so the projection
//!   derives new cases and steps for the team view as it would from a live desk). They
//!   are published to each desk's subject with that desk's own credentials, before the
//!   clock starts.
//! - **Projection:** `countersign_team::project::run` on a fresh database, from its start
//!   (connecting, migrating, making the consumer) until the `events` table holds every
//!   event; polled every 20 ms.
//! - **Reference:** the same rows (every column the projection writes to `events`) in
//!   PostgreSQL's text `COPY` format, sent in one `COPY events … FROM STDIN` into another
//!   fresh database with the same schema (its `devices` rows made first, untimed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::float_arithmetic)]

use std::time::{Duration, Instant};

use countersign_plane::evidence::Outgoing;
use countersign_plane::subjects::Role;
use countersign_store::{Hash, NewEvent, canonical_body};
use countersign_test_support::bench::env_usize as env;
use countersign_test_support::nats::TeamPlane;
use countersign_test_support::postgres::Postgres;
use sqlx::Connection;

/// One event as the projection stores it.
struct Row {
    device: String,
    seq: u64,
    case_id: Option<String>,
    kind: String,
    actor: String,
    hash: String,
    prev: String,
    at: jiff::Timestamp,
    body: String,
}

/// An event of the template a desk's chain repeats: its kind, actor, case and payload (as
/// JSON text, so each repetition can give its cases new ids).
struct Template {
    kind: String,
    actor: String,
    case_id: Option<String>,
    payload: String,
}

/// What a desk records working the demo's sample cases (`assets/demo/cases`, each run
/// once by a real engine on the demo snapshot workspace): cases opened and received,
/// facts read, plans proposed and decided, reviews requested, steps started and finished,
/// identity checks. The mix a live desk sends, and what the team view derives its cases
/// and steps from.
fn desk_template() -> Vec<Template> {
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets");
    let data = tempfile::tempdir().unwrap();
    let engine = countersign_engine::Engine::open(
        countersign_engine::EngineOptions {
            workspace: assets.join("demo/workspace-snapshot.toml"),
            data_dir: data.path().to_path_buf(),
            operator: None,
            connector: None,
        },
        std::sync::Arc::new(countersign_engine::SystemClock),
    )
    .unwrap();
    let mut files: Vec<_> = std::fs::read_dir(assets.join("demo/cases")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for file in files {
        let (case, plan) = countersign_engine::cases::read_case(&file, None).unwrap();
        if let Some(customer) = &case.customer {
            let _ = engine.record_identity_check(&case.id, &customer.id, "called back on the number on file");
        }
        // A case the demo's policy refuses to run still leaves its evidence.
        let _ = engine.run_case(&case, plan.as_ref());
    }
    engine
        .log_list(&countersign_engine::LogFilter::default())
        .unwrap()
        .into_iter()
        .map(|e| Template {
            kind: e.event.kind().to_string(),
            actor: e.actor,
            case_id: e.case_id,
            payload: e.event.payload().to_string(),
        })
        .collect()
}

/// `n` events of `device`, chained from genesis: `template` over and over, each time
/// with its cases (and the plans named after them) under new ids.
fn chain(device: &str, n: usize, template: &[Template]) -> Vec<Row> {
    let mut prev = Hash::genesis();
    let mut rows = Vec::with_capacity(n);
    let start = jiff::Timestamp::now();
    let mut cases: Vec<&str> = template.iter().filter_map(|t| t.case_id.as_deref()).collect();
    cases.sort();
    cases.dedup();
    // Longest first, so an id that starts another is replaced whole.
    cases.sort_by_key(|c| std::cmp::Reverse(c.len()));
    for i in 0..n {
        let (round, t) = (i / template.len(), &template[i % template.len()]);
        let renamed = |text: &str| {
            let mut text = text.to_string();
            for c in &cases {
                text = text.replace(c, &format!("{c}.{device}.{round}"));
            }
            text
        };
        let seq = i as u64 + 1;
        let at = start.checked_add(jiff::SignedDuration::from_millis(i as i64)).unwrap();
        let case_id = t.case_id.as_deref().map(renamed);
        let event = NewEvent {
            case_id: case_id.clone(),
            kind: t.kind.clone(),
            actor: t.actor.clone(),
            at,
            payload: serde_json::from_str(&renamed(&t.payload)).unwrap(),
        };
        let body = canonical_body(seq, &event).unwrap();
        let hash = Hash::link(&prev, body.as_bytes());
        rows.push(Row {
            device: device.into(),
            seq,
            case_id,
            kind: t.kind.clone(),
            actor: t.actor.clone(),
            hash: hash.to_hex(),
            prev: prev.to_hex(),
            at,
            body,
        });
        prev = hash;
    }
    rows
}

fn message(r: &Row) -> Outgoing {
    let m = serde_json::json!({
        "device": r.device, "seq": r.seq, "at": r.at, "case_id": r.case_id, "kind": r.kind,
        "actor": r.actor, "hash": r.hash, "body": r.body,
    });
    Outgoing { seq: r.seq, hash: r.hash.clone(), message: serde_json::to_vec(&m).unwrap() }
}

async fn fresh_database(base: &str, name: &str) -> sqlx::postgres::PgConnectOptions {
    let mut admin = sqlx::PgConnection::connect(base).await.unwrap();
    // `name` is one of this bench's own constants.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    let url = format!("{}/{name}", base.rsplit_once('/').unwrap().0);
    url.parse().unwrap()
}

fn main() {
    let desks = env("PROJ_BENCH_DESKS", 20).max(1);
    let per_desk = env("PROJ_BENCH_EVENTS", 5_000).max(1);
    let total = (desks * per_desk) as u64;
    let batch = env("PROJ_BENCH_BATCH", countersign_team::project::Options::default().batch).max(1);
    println!("== projection: {desks} desks × {per_desk} events = {total}, batches of {batch} ==");
    let mut plane = TeamPlane::start("acme", Duration::from_secs(2));
    let db = Postgres::start_with(true);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    // The desks' chains, published with each desk's own credentials.
    let made = Instant::now();
    let template = desk_template();
    let mut kinds: Vec<&str> = template.iter().map(|t| t.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    println!("a desk's template: {} events of {} kinds ({})", template.len(), kinds.len(), kinds.join(", "));
    let chains: Vec<Vec<Row>> = (0..desks).map(|d| chain(&format!("desk-{d:03}"), per_desk, &template)).collect();
    let bytes: usize = chains.iter().flatten().map(|r| r.body.len()).sum();
    println!(
        "chains built in {:.1} s; bodies {} bytes on average",
        made.elapsed().as_secs_f64(),
        bytes / total.max(1) as usize
    );
    let published = Instant::now();
    for rows in &chains {
        let device = &rows[0].device;
        let key = nkeys::KeyPair::new_user();
        let enrolled = plane.authority.enroll(device, Role::Agent, &key.public_key()).unwrap();
        let link = countersign_plane::link::TeamLink::start(countersign_plane::link::LinkConfig {
            url: plane.url(),
            device: device.clone(),
            jwt: enrolled.jwt,
            seed: countersign_connectors::credentials::Secret::new(key.seed().unwrap()),
            idle_restart: Duration::from_secs(30),
            whole_team: false,
        })
        .unwrap();
        let mut after = 0;
        for batch in rows.chunks(500) {
            let out = link.publish_evidence(device, after, batch.iter().map(message).collect());
            assert!(out.error.is_none(), "{device}: {:?}", out.error);
            after = out.last.unwrap().1;
        }
    }
    println!("published to the stream in {:.1} s", published.elapsed().as_secs_f64());

    // The projection, from its start until every event is in the table.
    let projected_db = rt.block_on(fresh_database(&db.url(), "projected"));
    let identity = countersign_plane::lease::ServiceIdentity::load(plane.dir.path(), Some(&plane.url())).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let pool_options = projected_db.clone();
    let service = rt.spawn(async move {
        let client = identity.connect().await.unwrap();
        let options = countersign_team::project::Options { batch, ..Default::default() };
        countersign_team::project::run(client, pool_options, options, async {
            let _ = stopped.await;
        })
        .await
    });
    let pool = rt.block_on(async {
        loop {
            if let Ok(pool) = sqlx::PgPool::connect_with(projected_db.clone()).await {
                break pool;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let took = rt.block_on(async {
        loop {
            let n = countersign_team::project::event_count(&pool).await.unwrap_or(0);
            if n >= total {
                break started.elapsed();
            }
            assert!(started.elapsed() < Duration::from_secs(600), "{n} of {total} projected in 10 minutes");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let _ = stop.send(());
    rt.block_on(service).unwrap().unwrap();
    let alerts = rt.block_on(countersign_team::project::alerts(&pool)).unwrap();
    assert!(alerts.is_empty(), "a valid chain raised alerts: {alerts:?}");
    let ours = total as f64 / took.as_secs_f64();
    println!("projection with verification: {total} events in {:.2} s = {ours:.0} events/s", took.as_secs_f64());

    // The reference: the same rows, one bare COPY.
    let copied_db = rt.block_on(fresh_database(&db.url(), "copied"));
    let copy_took = rt.block_on(async {
        let pool = countersign_team::project::open(&copied_db).await.unwrap();
        let mut conn = pool.acquire().await.unwrap();
        for rows in &chains {
            sqlx::query("INSERT INTO devices (device, last_seq, last_hash) VALUES ($1, 0, $2)")
                .bind(&rows[0].device)
                .bind(Hash::genesis().to_hex())
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        let mut text = String::new();
        let mut stream_seq = 0u64;
        for rows in &chains {
            for r in rows {
                stream_seq += 1;
                let payload = serde_json::from_str::<serde_json::Value>(&r.body).unwrap();
                let payload = payload.get("payload").cloned().unwrap_or(serde_json::Value::Null);
                let field = countersign_team::project::copy_field;
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{stream_seq}\n",
                    r.hash,
                    r.device,
                    r.seq,
                    r.prev,
                    r.at,
                    r.case_id.as_deref().map_or_else(|| "\\N".to_string(), field),
                    field(&r.kind),
                    field(&r.actor),
                    field(&r.body),
                    field(&payload.to_string()),
                ));
            }
        }
        let started = Instant::now();
        let mut copy = conn
            .copy_in_raw(
                "COPY events (hash, device, seq, prev_hash, at, case_id, kind, actor, body, payload, stream_seq) \
                 FROM STDIN",
            )
            .await
            .unwrap();
        copy.send(text.into_bytes()).await.unwrap();
        let n = copy.finish().await.unwrap();
        assert_eq!(n, total, "every row copied");
        started.elapsed()
    });
    let raw = total as f64 / copy_took.as_secs_f64();
    println!("bare COPY of the same rows: {total} rows in {:.2} s = {raw:.0} rows/s", copy_took.as_secs_f64());
    println!("\n| measure | projection | bare COPY, same run | ratio | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| {total} events from {desks} desks, verified, into PostgreSQL | {ours:.0} events/s ({:.2} s) | {raw:.0} rows/s \
         ({:.2} s) | {:.2}× | ≥ 0.5× |",
        took.as_secs_f64(),
        copy_took.as_secs_f64(),
        ours / raw
    );
}
