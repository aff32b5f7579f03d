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
