//! `countersign-team serve` as the admin runs it: with a database URL it projects beside
//! the lease, and never prints the database's password; without one it runs as before.
//! Real parts: the team's `nats-server` and a throwaway PostgreSQL cluster.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use countersign_test_support::nats::TeamPlane;
use countersign_test_support::postgres::Postgres;

/// The service, its stderr going to a file in the team folder.
fn serve(plane: &TeamPlane, env: &[(&str, &str)], args: &[&str]) -> (Child, std::path::PathBuf) {
    let log = plane.dir.path().join(format!("serve-{}.log", countersign_test_support::nats::free_port()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_countersign-team"));
    command
        .args(["serve", "--every-ms", "200", "--url", &plane.url(), "--dir"])
        .arg(plane.dir.path())
        .args(args)
        .env_remove("COUNTERSIGN_TEAM_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    (command.spawn().expect("the team service"), log)
}

/// SIGTERM, then its exit status (up to 10 s).
fn terminate(mut child: Child) -> std::process::ExitStatus {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the service did not stop on SIGTERM within 10 s");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Has the service made its schema? (The migrations table, read with sqlx.)
fn migrated(db: &Postgres) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let Ok(mut c) = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url()).await else { return false };
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut c)
            .await
            .is_ok_and(|n| n >= 1)
    })
}

#[test]
fn serve_projects_beside_the_lease_given_a_database_and_never_prints_its_password() {
    let plane = TeamPlane::start("acme", Duration::from_secs(5));
    let db = Postgres::start();

    // From the environment (the password stays out of the process list).
    let (child, log) = serve(&plane, &[("COUNTERSIGN_TEAM_DATABASE_URL", &db.url())], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !migrated(&db) {
        assert!(Instant::now() < deadline, "no schema within 20 s: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !plane.consumer_exists(countersign_team::project::CONSUMER) {
        assert!(Instant::now() < deadline, "no consumer within 20 s: {}", std::fs::read_to_string(&log).unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(terminate(child).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!(
            "projecting the team's evidence into postgres://countersign@127.0.0.1:{}/postgres",
            db.port
        )),
        "{text}"
    );
    assert!(!text.contains(db.password()), "the password was printed: {text}");

    // A URL that is not one: refused at start, without echoing it.
    let secret_url = format!("postgres//countersign:{}@nowhere", db.password());
    let (child, log) = serve(&plane, &[], &["--database-url", &secret_url]);
    let status = child.wait_with_output().unwrap().status;
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(2), "{text}");
    assert!(text.contains("not a PostgreSQL URL") && !text.contains(db.password()), "{text}");

    // Without one: the lease alone, as before.
    let (child, log) = serve(&plane, &[], &[]);
    // It says what it runs before it runs it: both lines, or the first alone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap().contains("publishing team") {
        assert!(Instant::now() < deadline, "the service did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(terminate(child).success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("publishing team") && !text.contains("projecting"), "{text}");
}

#[test]
fn the_team_database_is_reached_over_verified_tls_and_one_elsewhere_in_the_clear_is_refused() {
    use countersign_connectors::credentials::Secret;
    use countersign_team::project::{connect_options, open};
    let (db, ca) = Postgres::start_tls();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let url = |query: &str| Secret::new(format!("{}?{query}", db.url()));
    // The server's certificate checked against the team's CA: the pool opens and migrates.
    let verified = connect_options(&url(&format!("sslmode=verify-full&sslrootcert={}", ca.display()))).unwrap();
    rt.block_on(open(&verified)).expect("the database over verified TLS");
    assert!(migrated(&db), "the schema is in place");
    // In the clear: this server takes TLS only.
    let clear = connect_options(&url("sslmode=disable")).unwrap();
    assert!(rt.block_on(open(&clear)).is_err(), "a connection in the clear is refused by the server");
    // A certificate no root the service trusts vouches for: refused by the service.
    let unverified = connect_options(&url("sslmode=verify-full")).unwrap();
    let refused = rt.block_on(open(&unverified)).expect_err("an unknown issuer is refused");
    assert!(!refused.to_string().contains(db.password()), "{refused}");

    // A database on another machine is reached only over verified TLS: anything less is
    // refused before a connection is tried, without the password in the message.
    for query in ["", "?sslmode=disable", "?sslmode=prefer", "?sslmode=require", "?sslmode=verify-ca"] {
        let e = connect_options(&Secret::new(format!("postgres://team:s3cret@db.example.com:5432/team{query}")))
            .expect_err("refused");
        assert!(e.to_string().contains("not on this machine") && !e.to_string().contains("s3cret"), "{e}");
    }
    connect_options(&Secret::new("postgres://team:s3cret@db.example.com:5432/team?sslmode=verify-full"))
        .expect("verified TLS to another machine");
    connect_options(&Secret::new("postgres://team:s3cret@[::1]:5432/team")).expect("loopback needs no TLS");
}

#[test]
fn release_says_why_a_desk_cannot_be_released_and_never_prints_the_password() {
    let plane = TeamPlane::start("acme", Duration::from_secs(5));
    let db = Postgres::start();
    let release = |env: &[(&str, &str)], args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_countersign-team"));
        command.args(["release", "--dir"]).arg(plane.dir.path()).args(args).env_remove("COUNTERSIGN_TEAM_DATABASE_URL");
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let who = ["--device", "desk-9", "--by", "admin-1", "--reason", "looked at it"];
    let (code, text) = release(&[], &who);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no database"), "{text}");
    let url = db.url();
    // A database no service of this version has run on: refused, and left as it was.
    let (code, text) = release(&[("COUNTERSIGN_TEAM_DATABASE_URL", &url)], &who);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("upgrade the team service"), "{text}");
    assert!(!migrated(&db), "release migrated a database the service had not");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let options =
        countersign_team::project::connect_options(&countersign_connectors::credentials::Secret::new(url.clone()))
            .unwrap();
    drop(rt.block_on(countersign_team::project::open(&options)).unwrap());
    let (code, text) = release(&[("COUNTERSIGN_TEAM_DATABASE_URL", &url)], &who);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no evidence of a desk \"desk-9\""), "{text}");
    assert!(!text.contains(db.password()), "the password was printed: {text}");
    let (code, text) =
        release(&[("COUNTERSIGN_TEAM_DATABASE_URL", &url)], &["--device", "desk-9", "--by", " ", "--reason", "x"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("say who releases the desk and why"), "{text}");
}
