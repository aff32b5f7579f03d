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

#[test]
fn an_admin_sets_up_a_team_a_leads_pause_reaches_the_agent_and_a_revoked_desk_is_cut_off() {
    let root = tempfile::tempdir().unwrap();
    let team_dir = root.path().join("team");
    let port = countersign_test_support::nats::free_port().to_string();
    let placeholder = root.path().join("none.toml");
    let admin = Desk { keyring: unique("admin"), workspace: &placeholder, data: root.path().join("admin") };
    let init =
        admin.ok(&["--json", "team", "init", "--dir", team_dir.to_str().unwrap(), "--name", "acme", "--port", &port]);
    assert_eq!(init["name"], "acme");
    let mut server =
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
    let (lead_keys, agent_keys) = (key_of(&lead_keyring), key_of(&agent_keyring));
    let ws = workspace(root.path(), lead_keys["device_key"].as_str().unwrap());
    let lead = Desk { keyring: lead_keyring, workspace: &ws, data: root.path().join("lead") };
    let agent = Desk { keyring: agent_keyring, workspace: &ws, data: root.path().join("agent") };

    for (desk, name, role, keys) in
        [(&lead, "lead-desk", "lead", &lead_keys), (&agent, "agent-desk", "agent", &agent_keys)]
    {
        let file = root.path().join(format!("{name}.toml"));
        let key = keys["transport_key"].as_str().unwrap();
        let dir = team_dir.to_str().unwrap();
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
            "--out",
            file.to_str().unwrap(),
        ]);
        desk.ok(&["--json", "team", "join", file.to_str().unwrap()]);
    }
    // Another desk's enrolment does not join this one.
    let stolen = desk_refuses(&agent, &root.path().join("lead-desk.toml"));
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
    server.stop();
}

fn desk_refuses(desk: &Desk<'_>, enrolment: &Path) -> String {
    let o = desk.run(&["team", "join", enrolment.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    stderr(&o)
}
