//! The team plane's transport against a real `nats-server` (operator mode, JetStream on,
//! a random loopback port): enrolment, the permissions each role's JWT carries as the
//! server enforces them, the watch across a server restart, revocation at once.
//! The engine's part (which entries count) is tested in `crates/host/tests/team.rs`.

#![allow(clippy::expect_used)]

use std::time::{Duration, Instant};

use countersign_connectors::credentials::Secret;
use countersign_plane::link::{LinkConfig, TeamLink, Update};
use countersign_plane::subjects::Role;
use countersign_test_support::nats::TeamPlane;

fn team(lease_every: Duration) -> TeamPlane {
    TeamPlane::start("acme", lease_every)
}

fn link(team: &mut TeamPlane, device: &str, role: Role) -> TeamLink {
    let key = nkeys::KeyPair::new_user();
    let enrolled = team.authority.enroll(device, role, &key.public_key()).expect("enroll");
    TeamLink::start(LinkConfig {
        url: team.url(),
        device: device.into(),
        jwt: enrolled.jwt,
        seed: Secret::new(key.seed().expect("seed")),
        idle_restart: Duration::from_secs(20),
    })
    .expect("link")
}

/// Wait for an update of `key` (the newest value), up to `secs`.
fn seen(link: &TeamLink, key: &str, secs: u64) -> Option<Update> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Some(u) = link.next(Duration::from_millis(100)).expect("link alive")
            && u.key == key
        {
            return Some(u);
        }
    }
    None
}

/// Put `key` as soon as the link can (it may be reconnecting), within `secs`.
fn put_within(link: &TeamLink, key: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while let Err(e) = link.put(key, b"{}".to_vec()) {
        assert!(Instant::now() < deadline, "{key} could not be put within {secs} s: {e}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn each_role_may_write_only_its_own_keys_and_a_revoked_device_is_refused_at_once() {
    let mut team = team(Duration::from_millis(300));
    let lead = link(&mut team, "lead-1", Role::Lead);
    let agent = link(&mut team, "agent-1", Role::Agent);
    assert!(seen(&agent, "lease", 10).is_some(), "the agent hears the lease");

    lead.put("pause.p1", b"{}".to_vec()).expect("a lead writes a pause");
    let u = seen(&agent, "pause.p1", 10).expect("the agent hears the lead's pause");
    assert_eq!(u.value.as_deref(), Some(&b"{}"[..]));

    let refused = agent.put("pause.p2", b"{}".to_vec()).expect_err("an agent cannot write a pause");
    assert!(refused.contains("Permissions Violation"), "{refused}");
    for (who, link) in [("an agent", &agent), ("a lead", &lead)] {
        let e = link.put("lease", b"{}".to_vec()).expect_err("only the service writes the lease");
        assert!(e.contains("Permissions Violation"), "{who}: {e}");
    }

    team.authority.revoke("agent-1").expect("revoke");
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent.connected() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!agent.connected(), "the revoked device was dropped");
    assert!(agent.put("pause.p4", b"{}".to_vec()).is_err(), "and cannot publish");
    // And the lead keeps working.
    lead.put("pause.p3", b"{}".to_vec()).expect("the lead is unaffected");
}

#[test]
fn the_watch_comes_back_after_a_server_restart_and_pauses_set_afterwards_arrive() {
    let mut team = team(Duration::from_millis(300));
    let lead = link(&mut team, "lead-1", Role::Lead);
    let agents: Vec<TeamLink> = (0..3).map(|i| link(&mut team, &format!("agent-{i}"), Role::Agent)).collect();
    for a in &agents {
        assert!(seen(a, "lease", 10).is_some());
    }
    let rounds: Vec<u64> = agents.iter().map(TeamLink::synced_rounds).collect();
    team.server.stop();
    // Every link saw the server go.
    let deadline = Instant::now() + Duration::from_secs(15);
    while agents.iter().any(TeamLink::connected) {
        assert!(Instant::now() < deadline, "the links did not notice the server stopped");
        std::thread::sleep(Duration::from_millis(20));
    }
    team.server.restart();
    // Set after the restart: every agent must still hear it.
    put_within(&lead, "pause.after", 15);
    for (i, a) in agents.iter().enumerate() {
        assert!(seen(a, "pause.after", 15).is_some(), "agent {i} heard the pause set after the restart");
        // The old watch may deliver the pause before the new one has finished its read,
        // so the re-read is awaited (bounded), not sampled.
        assert!(
            a.wait_synced(rounds[i] + 1, Duration::from_secs(15)),
            "agent {i}'s link read the bucket again after reconnecting"
        );
    }
}

#[test]
fn a_rotated_desk_works_on_its_new_key_and_its_old_key_is_refused() {
    let mut team = team(Duration::from_millis(300));
    let old = link(&mut team, "lead-1", Role::Lead);
    old.put("pause.before", b"{}".to_vec()).expect("the old key works before the rotation");
    let fresh = nkeys::KeyPair::new_user();
    let (enrolled, not_pushed) = team.authority.rotate("lead-1", &fresh.public_key()).expect("rotate");
    assert!(not_pushed.is_none(), "the server heard of the revocation: {not_pushed:?}");
    assert_eq!(enrolled.role, Role::Lead, "the same role");
    let deadline = Instant::now() + Duration::from_secs(5);
    while old.connected() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!old.connected(), "the old key was dropped");
    let new = TeamLink::start(LinkConfig {
        url: team.url(),
        device: "lead-1".into(),
        jwt: enrolled.jwt,
        seed: Secret::new(fresh.seed().expect("seed")),
        idle_restart: Duration::from_secs(20),
    })
    .expect("link");
    put_within(&new, "pause.after", 10);
    // The same key cannot be enrolled twice, nor the old one brought back.
    assert!(team.authority.rotate("lead-1", &fresh.public_key()).is_err());
}

#[test]
fn a_server_off_this_machine_is_reached_over_tls_only() {
    let dir = tempfile::tempdir().expect("dir");
    let options = countersign_plane::authority::InitOptions {
        name: "acme".into(),
        host: "10.0.0.5".parse().expect("ip"),
        port: 4222,
        tls: None,
    };
    let keyring = countersign_test_support::nats::keyring("tls");
    let refused = countersign_plane::authority::Authority::init(dir.path(), &options, keyring).expect_err("no TLS");
    assert!(refused.to_string().contains("TLS"), "{refused}");
    assert!(!dir.path().join("team.toml").exists(), "nothing was set up");

    let key = nkeys::KeyPair::new_user();
    let plain = TeamLink::start(LinkConfig {
        url: "nats://10.0.0.5:4222".into(),
        device: "desk".into(),
        jwt: "x".into(),
        seed: Secret::new(key.seed().expect("seed")),
        idle_restart: Duration::from_secs(20),
    });
    assert!(plain.is_err_and(|e| e.to_string().contains("TLS")), "a plain connection off loopback is refused");
    assert!(countersign_plane::link::is_loopback("nats://127.0.0.1:4222"));
    assert!(countersign_plane::link::is_loopback("nats://[::1]:4222"));
    assert!(!countersign_plane::link::is_loopback("nats://team.example.com:4222"));
}
