//! The team plane as an admin, a lead and an agent set it up from the command line: the
//! team made with `team init`, its real `nats-server` started from the config it wrote,
//! the team service's lease, each desk's keys in a keyring namespace of its own, enrolled
//! and joined; a lead's pause reaching the agent's desk, and a revoked desk cut off.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::{BIN, code, repo, stderr, stdout_json};

/// `countersign` as one desk: its keyring namespace, its workspace and data folder.
struct Desk<'a> {
    keyring: String,
    workspace: &'a Path,
    data: PathBuf,
}

impl Desk<'_> {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .env("COUNTERSIGN_KEYRING_SERVICE", &self.keyring)
            .arg("--workspace")
            .arg(self.workspace)
            .arg("--data-dir")
            .arg(&self.data)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> Value {
        let o = self.run(args);
        assert_eq!(code(&o), 0, "{args:?}: {}", stderr(&o));
        stdout_json(&o)
    }
}

fn unique(label: &str) -> String {
    format!("countersign-cli-team-{label}-{}-{}", std::process::id(), jiff::Timestamp::now().as_nanosecond())
}

/// The demo snapshot workspace (absolute paths), its roster listing `lead-1` with `key`.
fn workspace(dir: &Path, lead_key: &str) -> PathBuf {
    let text = countersign_test_support::demo::demo_workspace("workspace-snapshot.toml", &[])
        .replace("id = \"lead-demo\"", &format!("id = \"lead-1\"\nkey = {lead_key:?}"));
    let path = dir.join("workspace.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A team set up from the command line: `team init`, its real `nats-server` from the
/// config it wrote, the service's lease on a thread, and three desks (admin, lead,
/// agent), each with keys of its own, enrolled and joined. The lead's device key is on
/// the workspace's roster as `lead-1`.
struct Setup {
    root: tempfile::TempDir,
    team_dir: PathBuf,
    server: countersign_test_support::nats::NatsServer,
    ws: PathBuf,
    admin_keyring: String,
    lead_keyring: String,
    agent_keyring: String,
    /// The lead's device key (hex).
    lead_key: String,
}

impl Setup {
    fn desk(&self, keyring: &str, name: &str) -> Desk<'_> {
        Desk { keyring: keyring.to_string(), workspace: &self.ws, data: self.root.path().join(name) }
    }

    fn admin(&self) -> Desk<'_> {
        self.desk(&self.admin_keyring, "admin")
    }

    fn lead(&self) -> Desk<'_> {
        self.desk(&self.lead_keyring, "lead")
    }

    fn agent(&self) -> Desk<'_> {
        self.desk(&self.agent_keyring, "agent")
    }
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let team_dir = root.path().join("team");
    let port = countersign_test_support::nats::free_port().to_string();
    let placeholder = root.path().join("none.toml");
    let admin_keyring = unique("admin");
    let admin = Desk { keyring: admin_keyring.clone(), workspace: &placeholder, data: root.path().join("admin") };
    let init =
        admin.ok(&["--json", "team", "init", "--dir", team_dir.to_str().unwrap(), "--name", "acme", "--port", &port]);
    assert_eq!(init["name"], "acme");
    let server =
        countersign_test_support::nats::NatsServer::start_on(&team_dir.join("nats-server.conf"), port.parse().unwrap());
    let identity = countersign_plane::lease::ServiceIdentity::load(&team_dir, None).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(countersign_plane::lease::run(identity, Duration::from_millis(300), std::future::pending()))
            .unwrap();
    });

    // Each desk's own keys; the lead's device key goes on the roster.
    let (lead_keyring, agent_keyring) = (unique("lead"), unique("agent"));
    let key_of = |keyring: &str| {
        let d = Desk { keyring: keyring.to_string(), workspace: &placeholder, data: root.path().join("k") };
        d.ok(&["--json", "team", "key"])
    };
    let (admin_keys, lead_keys, agent_keys) = (key_of(&admin_keyring), key_of(&lead_keyring), key_of(&agent_keyring));
    let lead_key = lead_keys["device_key"].as_str().unwrap().to_string();
    let ws = workspace(root.path(), &lead_key);
    let setup = Setup { root, team_dir, server, ws, admin_keyring, lead_keyring, agent_keyring, lead_key };
    let (admin, lead, agent) = (setup.admin(), setup.lead(), setup.agent());
    for (desk, name, role, keys) in [
        (&admin, "admin-desk", "admin", &admin_keys),
        (&lead, "lead-desk", "lead", &lead_keys),
        (&agent, "agent-desk", "agent", &agent_keys),
    ] {
        let file = setup.root.path().join(format!("{name}.toml"));
        let key = keys["transport_key"].as_str().unwrap();
        let dir = setup.team_dir.to_str().unwrap();
        admin.ok(&[
            "--json",
            "team",
            "enroll",
            "--dir",
            dir,
            "--device",
            name,
            "--role",
            role,
            "--key",
            key,
            "--device-key",
            keys["device_key"].as_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ]);
        desk.ok(&["--json", "team", "join", file.to_str().unwrap()]);
    }
    // The admin's record holds each desk's evidence key, for the team service.
    let recorded = countersign_plane::authority::TeamFile::read(&setup.team_dir).unwrap();
    assert_eq!(recorded.device_key("lead-desk"), Some(setup.lead_key.as_str()));
    let fresh = agent_keys["transport_key"].as_str().unwrap();
    let bad = admin.run(&[
        "team",
        "enroll",
        "--dir",
        setup.team_dir.to_str().unwrap(),
        "--device",
        "desk-x",
        "--role",
        "agent",
        "--key",
        fresh,
        "--device-key",
        "not-hex",
    ]);
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("is not a device evidence key"), "{}", stderr(&bad));
    assert!(
        countersign_plane::authority::TeamFile::read(&setup.team_dir)
            .unwrap()
            .devices
            .iter()
            .all(|d| d.name != "desk-x"),
        "nothing enrolled"
    );
    drop((admin, lead, agent));
    setup
}

#[test]
fn an_admin_sets_up_a_team_a_leads_pause_reaches_the_agent_and_a_revoked_desk_is_cut_off() {
    let mut setup = setup();
    let (root, team_dir) = (setup.root.path().to_path_buf(), setup.team_dir.clone());
    let (admin, lead, agent) = (setup.admin(), setup.lead(), setup.agent());
    // Another desk's enrolment does not join this one.
    let stolen = desk_refuses(&agent, &root.join("lead-desk.toml"));
    assert!(stolen.contains("not this device's"), "{stolen}");

    let status = agent.ok(&["--json", "team", "status"]);
    assert_eq!(
        (status["team"].as_str(), status["role"].as_str(), status["current"].as_bool()),
        (Some("acme"), Some("agent"), Some(true)),
        "{status}"
    );

    let pause = lead.ok(&[
        "--json",
        "--operator",
        "lead-1",
        "pause",
        "set",
        "--scope",
        "action",
        "--value",
        "refund_partial",
        "--reason",
        "fraud wave",
    ]);
    assert_eq!(pause["team"], "acme", "{pause}");
    let id = pause["id"].as_str().unwrap();
    let seen = agent.ok(&["--json", "pause", "list"]);
    assert!(seen.as_array().unwrap().iter().any(|p| p["id"] == id), "the agent's desk has the lead's pause: {seen}");
    let refused = agent.run(&["pause", "clear", id, "--reason", "I decide"]);
    assert_eq!(code(&refused), 1, "an agent cannot clear the team's pause: {}", stderr(&refused));

    // A supervisor step on the agent's desk, countersigned from the lead's.
    let case = repo().join("assets/demo/cases/25-password-reset-chat.json");
    agent.ok(&["--json", "verify-identity", "demo-25", "--customer", "harper_ahmed_5055", "--how", "called back"]);
    agent.ok(&["--json", "run", "--case", case.to_str().unwrap()]);
    let queue = lead.ok(&["--json", "team", "queue"]);
    let request = queue
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "send_password_reset")
        .unwrap_or_else(|| panic!("{queue}"));
    let rid = request["request_id"].as_str().unwrap();
    lead.ok(&["--json", "--operator", "lead-1", "team", "answer", rid, "--approve", "--reason", "verified on a call"]);
    let again = lead.run(&["--operator", "lead-1", "team", "answer", rid, "--reject", "--reason", "late"]);
    assert_eq!(code(&again), 1, "the first answer wins: {}", stderr(&again));
    agent.ok(&["--json", "run", "--case", case.to_str().unwrap()]);
    let steps = agent.ok(&["--json", "review", "list"]);
    assert!(!steps.to_string().contains("send_password_reset"), "no longer waiting: {steps}");

    admin.ok(&["--json", "team", "revoke", "--dir", team_dir.to_str().unwrap(), "--device", "agent-desk"]);
    let status = agent.ok(&["--json", "team", "status"]);
    assert_eq!((status["connected"].as_bool(), status["current"].as_bool()), (Some(false), Some(false)), "{status}");
    drop((admin, lead, agent));
    setup.server.stop();
}

fn desk_refuses(desk: &Desk<'_>, enrolment: &Path) -> String {
    let o = desk.run(&["team", "join", enrolment.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    stderr(&o)
}

/// The team service's projection and view (`countersign-team`'s own) into `db`, on a
/// thread, trusting the admin keys in `trust` for the team's packs.
fn serve_team(team_dir: &Path, db: &countersign_test_support::postgres::Postgres, trust: &Path) {
    let identity = countersign_plane::lease::ServiceIdentity::load(team_dir, None).unwrap();
    let database =
        countersign_team::project::connect_options(&countersign_engine::Secret::new(db.url())).expect("the URL");
    let witness = countersign_team::project::Witness::load(team_dir, "acme").unwrap();
    let mut trusted = countersign_engine::keys::TrustedKeys::new(Vec::new());
    trusted.add_file(trust).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (projecting, viewing) = (identity.connect().await.unwrap(), identity.connect().await.unwrap());
            let options = countersign_team::project::Options {
                witness: Some(std::sync::Arc::new(witness)),
                ..countersign_team::project::Options::default()
            };
            let view = countersign_team::view::ViewOptions { team: "acme".into(), trusted };
            let (p, v) = tokio::join!(
                countersign_team::project::run(projecting, database.clone(), options, std::future::pending()),
                countersign_team::view::run(viewing, database, view, std::future::pending()),
            );
            p.unwrap();
            v.unwrap();
        });
    });
}

#[test]
fn a_lead_reads_the_teams_log_from_the_command_line_and_an_agent_may_not() {
    let setup = setup();
    let root = setup.root.path();
    let (admin, lead, agent) = (setup.admin(), setup.lead(), setup.agent());
    // The admin's signing key, and a pack whose roster grants lead-1 the team's view.
    let public = root.join("admin.pub");
    admin.ok(&["--json", "admin", "keygen", "--name", "team-admin", "--pub", public.to_str().unwrap()]);
    let src = root.join("pack-src");
    std::fs::create_dir(&src).unwrap();
    for f in ["policy.toml", "catalog.toml"] {
        std::fs::copy(repo().join("assets/demo").join(f), src.join(f)).unwrap();
    }
    let hash =
        countersign_engine::roster::hash_passphrase(&countersign_engine::Secret::new("lead-1 passphrase")).unwrap();
    let roster = format!(
        "[[roster]]\nid = \"lead-1\"\nrole = \"team_lead\"\npassphrase = {hash:?}\nkey = {:?}\n\
         view_desks = [\"*\"]\nview_tenants = [\"acme\"]\n",
        setup.lead_key
    );
    std::fs::write(src.join("roster.toml"), roster).unwrap();
    // One version past the demo pack's, whatever the demo is at.
    let version = countersign_test_support::packs::demo_pack_version() + 1;
    std::fs::write(src.join("pack-source.toml"), countersign_test_support::packs::demo_source_at(version)).unwrap();
    let pack = root.join("pack");
    let source = src.join("pack-source.toml");
    admin.ok(&[
        "--json",
        "policy",
        "sign",
        source.to_str().unwrap(),
        "--out",
        pack.to_str().unwrap(),
        "--key-name",
        "team-admin",
    ]);

    let db = countersign_test_support::postgres::Postgres::start();
    serve_team(&setup.team_dir, &db, &public);
    admin.ok(&["--json", "team", "publish-pack", pack.to_str().unwrap(), "--trust", public.to_str().unwrap()]);

    // The agent works a case; its evidence reaches the team as the command ends.
    let case = repo().join("assets/demo/cases/02-damaged-item-small-refund.json");
    agent.ok(&["--json", "run", "--case", case.to_str().unwrap()]);

    let steps = |args: &[&str]| {
        let mut all = vec!["--json", "--operator", "lead-1", "team", "log", "steps"];
        all.extend_from_slice(args);
        lead.run(&all)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let o = steps(&[]);
        if code(&o) == 0 {
            let page = stdout_json(&o);
            let rows = page["rows"].as_array().unwrap().clone();
            if rows.iter().any(|r| r["action"] == "refund_partial") {
                break rows;
            }
        }
        assert!(std::time::Instant::now() < deadline, "the agent's steps never showed: {}", stderr(&o));
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(rows.iter().all(|r| r["desk"] == "agent-desk" && r["agent"] == "agent-demo" && r["tenant"] == "acme"));
    let narrowed = stdout_json(&steps(&["--action", "refund_partial"]));
    assert_eq!(narrowed["rows"].as_array().unwrap().len(), 1, "{narrowed}");
    let bad = steps(&["--since", "yesterday"]);
    assert_eq!(code(&bad), 1);
    assert!(stderr(&bad).contains("not an RFC 3339 time"), "{}", stderr(&bad));

    let timeline = lead.ok(&["--json", "--operator", "lead-1", "team", "log", "case", "demo-02"]);
    let events = timeline["events"].as_array().unwrap();
    assert!(events.iter().any(|e| e["event"]["kind"] == "decided"), "{timeline}");
    let text = lead.run(&["--operator", "lead-1", "team", "log", "case", "demo-02"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("agent-desk"), "{}", stderr(&text));
    let file = root.join("demo-02.team.json");
    let exported = lead.ok(&[
        "--json",
        "--operator",
        "lead-1",
        "team",
        "log",
        "export",
        "demo-02",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(exported["events"].as_u64(), Some(events.len() as u64));
    assert!(std::fs::read_to_string(&file).unwrap().contains("\"witnessed\""));
    let metrics = lead.ok(&["--json", "--operator", "lead-1", "team", "log", "metrics"]);
    assert_eq!((metrics["cases"].as_u64(), metrics["per_agent"][0]["label"].as_str()), (Some(1), Some("agent-demo")));
    let alerts = lead.ok(&["--json", "--operator", "lead-1", "team", "log", "alerts"]);
    assert_eq!(alerts, serde_json::json!([]));

    // An agent's desk sees nothing of the team.
    let refused = agent.run(&["team", "log", "steps"]);
    assert_eq!(code(&refused), 1);
    assert!(stderr(&refused).contains("may not see the team's evidence"), "{}", stderr(&refused));
}

#[test]
fn a_desks_share_of_the_teams_disk_is_checked_at_team_init_and_only_grows_after() {
    let root = tempfile::tempdir().unwrap();
    let placeholder = root.path().join("none.toml");
    let admin = Desk { keyring: unique("quota"), workspace: &placeholder, data: root.path().join("admin") };
    let init = |dir: &str, extra: &[&str]| {
        let team_dir = root.path().join(dir);
        let mut args = vec!["team", "init", "--dir", team_dir.to_str().unwrap(), "--name", "acme"];
        args.extend_from_slice(extra);
        (admin.run(&args), team_dir)
    };
    let (over, dir) = init("over", &["--max-disk-gib", "1", "--desk-disk-mib", "300"]);
    assert_eq!(code(&over), 1, "{}", stderr(&over));
    assert!(stderr(&over).contains("at most a quarter"), "{}", stderr(&over));
    assert!(!dir.join("team.toml").exists(), "nothing was set up");
    let (alone, _) = init("alone", &["--desk-disk-mib", "8"]);
    assert_eq!(code(&alone), 2, "a share needs the team's quota: {}", stderr(&alone));
    assert!(stderr(&alone).contains("--max-disk-gib"), "{}", stderr(&alone));
    let (ok, dir) = init("ok", &["--max-disk-gib", "1", "--desk-disk-mib", "16"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    let file = countersign_plane::authority::TeamFile::read(&dir).unwrap();
    let quota = file.quota().unwrap();
    assert_eq!((quota.team, quota.desk_blobs, quota.desks()), (1 << 30, 16 << 20, 36));

    // Grown later: team.toml at once, the server's limits once it is reached (it is
    // not running here, so the command says so and fails).
    let dir_arg = dir.to_str().unwrap();
    let grown = admin.run(&["team", "quota", "--dir", dir_arg, "--max-disk-gib", "2", "--desk-disk-mib", "32"]);
    assert_eq!(code(&grown), 1, "{}", stderr(&grown));
    assert!(stderr(&grown).contains("did not reach the server"), "{}", stderr(&grown));
    let quota = countersign_plane::authority::TeamFile::read(&dir).unwrap().quota().unwrap();
    assert_eq!((quota.team, quota.desk_blobs), (2 << 30, 32 << 20));
    // Never smaller.
    for smaller in [&["--max-disk-gib", "1"][..], &["--max-disk-gib", "2", "--desk-disk-mib", "16"]] {
        let mut args = vec!["team", "quota", "--dir", dir_arg];
        args.extend_from_slice(smaller);
        let refused = admin.run(&args);
        assert_eq!(code(&refused), 1, "{}", stderr(&refused));
        assert!(stderr(&refused).contains("only grows"), "{}", stderr(&refused));
    }
    let quota = countersign_plane::authority::TeamFile::read(&dir).unwrap().quota().unwrap();
    assert_eq!((quota.team, quota.desk_blobs), (2 << 30, 32 << 20), "unchanged by a refusal");
    // A team set up without a quota has none to grow.
    let (plain, plain_dir) = init("plain", &[]);
    assert_eq!(code(&plain), 0, "{}", stderr(&plain));
    let none = admin.run(&["team", "quota", "--dir", plain_dir.to_str().unwrap(), "--max-disk-gib", "1"]);
    assert_eq!(code(&none), 1, "{}", stderr(&none));
    assert!(stderr(&none).contains("without a quota"), "{}", stderr(&none));
}
