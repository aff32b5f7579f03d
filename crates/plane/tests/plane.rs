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
        whole_team: matches!(role, Role::Lead | Role::Admin),
    })
    .expect("link")
}

/// Read `key` of the requests' bucket over a plain connection with `device`'s
/// credentials: `Ok(found)`, or the server's refusal (an error or no answer in 3 s).
fn read_request(team: &mut TeamPlane, device: &str, role: Role, key: &str) -> Result<bool, String> {
    let seed = nkeys::KeyPair::new_user();
    let enrolled = team.authority.enroll(device, role, &seed.public_key()).expect("enroll");
    let url = team.url();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async move {
        let options = countersign_plane::link::connect_options(&enrolled.jwt, seed, device);
        let client = options.connect(url.as_str()).await.map_err(|e| e.to_string())?;
        let js = async_nats::jetstream::new(client);
        let read = async {
            let kv = js.get_key_value(countersign_plane::subjects::REQUESTS_BUCKET).await.map_err(|e| e.to_string())?;
            kv.get(key).await.map(|v| v.is_some()).map_err(|e| e.to_string())
        };
        tokio::time::timeout(Duration::from_secs(3), read).await.unwrap_or_else(|_| Err("no answer in 3 s".into()))
    })
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

    // A desk puts its own supervisor steps' requests, which carry the customer's words:
    // only leads read them.
    agent.put("request.agent-1.r1", b"{}".to_vec()).expect("an agent puts its own request");
    let e = agent.put("request.agent-9.r1", b"{}".to_vec()).expect_err("another desk's request key");
    assert!(e.contains("Permissions Violation"), "{e}");
    assert!(seen(&lead, "request.agent-1.r1", 10).is_some(), "the lead's link hears the request");
    assert_eq!(read_request(&mut team, "lead-2", Role::Lead, "request.agent-1.r1"), Ok(true), "a lead reads it");
    let peek = read_request(&mut team, "agent-2", Role::Agent, "request.agent-1.r1");
    assert!(peek.is_err(), "another agent cannot read it: {peek:?}");

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
fn an_agents_desk_hears_what_concerns_it_and_not_every_other_desks_reports() {
    let mut team = team(Duration::from_millis(300));
    let lead = link(&mut team, "lead-1", Role::Lead);
    // Another desk's report is in the bucket before this agent joins, and after.
    let other = link(&mut team, "agent-2", Role::Agent);
    put_within(&other, "desk.agent-2", 10);
    let agent = link(&mut team, "agent-1", Role::Agent);
    assert!(agent.wait_synced(1, Duration::from_secs(10)), "the agent's first read of its keys ends");
    put_within(&other, "desk.agent-2", 10);
    put_within(&agent, "desk.agent-1", 10);
    lead.put("pause.p1", b"{}".to_vec()).expect("a lead writes a pause");
    lead.put("answer.agent-1.r1", b"{}".to_vec()).expect("a lead answers agent-1");
    lead.put("answer.agent-2.r1", b"{}".to_vec()).expect("a lead answers agent-2");

    // Everything the agent hears, until the lead's last answer has surely reached it.
    let mut heard = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(u) = agent.next(Duration::from_millis(100)).expect("link alive") {
            heard.insert(u.key);
        }
    }
    for key in ["lease", "pause.p1", "answer.agent-1.r1"] {
        assert!(heard.contains(key), "the agent hears {key}: {heard:?}");
    }
    for key in ["desk.agent-2", "desk.agent-1", "answer.agent-2.r1"] {
        assert!(!heard.contains(key), "the agent does not hear {key}: {heard:?}");
    }
    // The lead hears every desk.
    assert!(seen(&lead, "desk.agent-2", 10).is_some(), "the lead hears another desk's report");
    assert!(seen(&lead, "answer.agent-2.r1", 10).is_some(), "and every answer");
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

/// Half a MiB of noise (xorshift): nothing on the way compresses it.
fn noise(seed: u64) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ (seed + 1);
    (0..1 << 19)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// Put a blob as soon as the desk's store is there (the team service makes it at its
/// next tick after the enrolment), within `secs`.
fn put_blob_within(link: &TeamLink, device: &str, name: &str, data: &[u8], secs: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        match link.put_blob(device, name, "application/octet-stream", data.to_vec()) {
            Err(e) if e.contains("not there yet") && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(100));
            }
            done => return done,
        }
    }
}

#[test]
fn a_desk_that_floods_the_team_is_held_to_its_share_and_pauses_are_still_written() {
    // 8 MiB for the team, each desk's blob store 1 MiB of it: room for four desks beside
    // the team's own streams (7/16 of the quota).
    let mut team = TeamPlane::start_with_disk("acme", Duration::from_millis(300), Some(8 << 20), Some(1 << 20));
    let key = nkeys::KeyPair::new_user();
    let enrolled = team.authority.enroll("agent-1", Role::Agent, &key.public_key()).expect("enroll");
    let agent = TeamLink::start(LinkConfig {
        url: team.url(),
        device: "agent-1".into(),
        jwt: enrolled.jwt.clone(),
        seed: Secret::new(key.seed().expect("seed")),
        idle_restart: Duration::from_secs(20),
        whole_team: false,
    })
    .expect("link");
    let other = link(&mut team, "agent-2", Role::Agent);
    let lead = link(&mut team, "lead-1", Role::Lead);
    let fourth = nkeys::KeyPair::new_user().public_key();
    team.authority.enroll("agent-3", Role::Agent, &fourth).expect("a fourth desk has room");
    let fifth = nkeys::KeyPair::new_user().public_key();
    let full = team.authority.enroll("agent-4", Role::Agent, &fifth).expect_err("no room for a fifth desk's store");
    assert!(full.to_string().contains("room for 4 desks' blob stores of 1 MiB"), "{full}");
    assert!(seen(&agent, "lease", 10).is_some(), "the agent hears the lease");
    // The app's own put: a first blob fits its share, the third cannot, and it says so
    // before writing any of it.
    put_blob_within(&agent, "agent-1", "blob-0", &noise(0), 10).expect("a first blob fits");
    put_blob_within(&agent, "agent-1", "blob-0", &noise(0), 10).expect("the same blob again is nothing to send");
    let full = match agent.put_blob("agent-1", "blob-1", "application/octet-stream", noise(1)) {
        Ok(()) => agent.put_blob("agent-1", "blob-2", "application/octet-stream", noise(2)),
        refused => refused,
    };
    let full = full.expect_err("a 1 MiB share holds at most two half-MiB blobs");
    assert!(full.contains("share of the team's disk is full"), "{full}");

    // A desk that floods on purpose, with its own client: the server holds it to its
    // share, and it may not make its store again with a size of its choosing.
    let url = team.url();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (flooded, grown) = runtime.block_on(async move {
        let options = countersign_plane::link::connect_options(&enrolled.jwt, key, "agent-1");
        let client = options.connect(url.as_str()).await.expect("the desk's own connection");
        let js = async_nats::jetstream::new(client);
        let store = js.get_object_store("cs_blobs_agent-1").await.expect("the store the service made");
        let put = |name: String, data: Vec<u8>| {
            let store = store.clone();
            async move {
                let mut bytes = data.as_slice();
                let put = store.put(name.as_str(), &mut bytes);
                tokio::time::timeout(Duration::from_secs(5), put)
                    .await
                    .map_err(|_| "no answer".to_string())?
                    .map_err(|e| e.to_string())
            }
        };
        // Half a MiB at a time, then a KiB at a time to the brim.
        let mut stored = 0u64;
        let mut refused = None;
        for n in 0..8u64 {
            match put(format!("flood-{n}"), noise(100 + n)).await {
                Ok(_) => stored += 1024 * 512,
                Err(e) => {
                    refused = Some(e);
                    break;
                }
            }
        }
        let mut small = 0;
        while small < 4096 && put(format!("small-{small}"), noise(small)[..1024].to_vec()).await.is_ok() {
            small += 1;
            stored += 1024;
        }
        let mut config = countersign_plane::evidence::blobs_bucket("agent-1", None);
        config.max_bytes = 3 << 20;
        let made = tokio::time::timeout(Duration::from_secs(3), js.create_object_store(config)).await;
        let grown = match made {
            Ok(made) => made.map(drop).map_err(|e| e.to_string()),
            Err(_) => Err("no answer in 3 s".to_string()),
        };
        ((stored, small, refused), grown)
    });
    let (stored, small, refused) = flooded;
    let refused = refused.expect("the flood was refused");
    assert!(refused.contains("maximum bytes") || refused.contains("resource"), "{refused}");
    assert!(small < 4096, "a KiB at a time, never refused");
    assert!(stored < 1 << 20, "{stored} bytes stored past a 1 MiB share");
    let grown = grown.expect_err("a desk remade its own blob store with a size of its choosing");
    assert!(!grown.contains("already in use"), "the server heard the request, so the desk may send it: {grown}");
    // The flood took only that desk's share: another desk stores its blob, the lead's
    // pauses are written and the service's lease still comes.
    put_blob_within(&other, "agent-2", "blob-0", &noise(99), 10).expect("another desk's blob fits in its own share");
    for i in 0..20 {
        lead.put(&format!("pause.flood-{i}"), vec![b'x'; 4096]).expect("a pause is written whatever the desks hold");
    }
    assert!(seen(&agent, "pause.flood-19", 10).is_some(), "the agent hears the last pause");
    assert!(seen(&agent, "lease", 10).is_some(), "the lease still comes");
}

#[test]
fn a_teams_quota_grows_while_it_runs_and_every_stream_and_store_gets_its_new_share() {
    use countersign_plane::subjects::{CONTROL_STREAM, EVIDENCE_STREAM, blobs_bucket_of};
    // 8 MiB, a desk's store 1 MiB: room for four desks, as the flood test has it.
    let mut team = TeamPlane::start_with_disk("acme", Duration::from_millis(300), Some(8 << 20), Some(1 << 20));
    let lead = link(&mut team, "lead-1", Role::Lead);
    for i in 1..=3 {
        let key = nkeys::KeyPair::new_user().public_key();
        team.authority.enroll(&format!("agent-{i}"), Role::Agent, &key).expect("room for four desks");
    }
    let fifth = nkeys::KeyPair::new_user().public_key();
    team.authority.enroll("agent-4", Role::Agent, &fifth).expect_err("no room for a fifth desk's store");
    let store = |device: &str| format!("OBJ_{}", blobs_bucket_of(device));
    let wait_for = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{what}: not within 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("the first shares", &|| {
        team.stream_max_bytes(EVIDENCE_STREAM) == Some(2 << 20)
            && team.stream_max_bytes(&store("agent-3")) == Some(1 << 20)
    });

    // Smaller is refused, and nothing changes.
    for (quota, desk) in [(4u64 << 20, None), (8 << 20, Some(512u64 << 10))] {
        let e = team.authority.grow_quota(quota, desk).expect_err("a smaller quota or share");
        assert!(e.to_string().contains("only grows"), "{e}");
    }
    let e = team.authority.grow_quota(16 << 20, Some(8 << 20)).expect_err("a share past a quarter");
    assert!(e.to_string().contains("at most a quarter"), "{e}");
    assert_eq!(team.authority.file.max_disk_bytes, Some(8 << 20));

    // 32 MiB, 2 MiB a desk: room for nine. The server has the account's new limits at
    // once; the running service gives every stream and store its new share.
    let (q, not_pushed) = team.authority.grow_quota(32 << 20, Some(2 << 20)).expect("a larger quota");
    assert!(not_pushed.is_none(), "{not_pushed:?}");
    assert_eq!(q.desks(), 9);
    wait_for("the new shares", &|| {
        team.stream_max_bytes(EVIDENCE_STREAM) == Some(8 << 20)
            && team.stream_max_bytes(CONTROL_STREAM) == Some(2 << 20)
            && ["lead-1", "agent-1", "agent-3"].iter().all(|d| team.stream_max_bytes(&store(d)) == Some(2 << 20))
    });
    team.authority.enroll("agent-4", Role::Agent, &fifth).expect("room for a fifth desk now");
    wait_for("the fifth desk's store, with its share", &|| team.stream_max_bytes(&store("agent-4")) == Some(2 << 20));
    // The server takes what the new shares allow: a blob past the old 1 MiB share.
    put_blob_within(&lead, "lead-1", "large", &[noise(1), noise(2), noise(3)].concat(), 10)
        .expect("a blob of 1.5 MiB in a 2 MiB share");
    put_within(&lead, "pause.after-growing", 10);
}

#[test]
fn an_enrolment_holds_only_as_far_as_the_teams_signature_carries_it() {
    let mut team = TeamPlane::start("acme", Duration::from_secs(5));
    let key = nkeys::KeyPair::new_user().public_key();
    let other = nkeys::KeyPair::new_user().public_key();
    let enrolled = team.authority.enroll("agent-1", Role::Agent, &key).expect("enroll");
    let f = team.authority.file.clone();
    let check = |e: &countersign_plane::authority::Enrollment, team: &str, service: &str, transport: &str| {
        e.verify(team, &f.signer, service, transport).map_err(|e| e.to_string())
    };
    assert_eq!(check(&enrolled, "acme", &f.service_key, &key), Ok(()));

    let mut promoted = enrolled.clone();
    promoted.role = Role::Lead;
    let e = check(&promoted, "acme", &f.service_key, &key).expect_err("a role edited in the file");
    assert!(e.contains("does not enrol it as lead"), "{e}");
    let e = check(&enrolled, "acme", &f.service_key, &other).expect_err("another desk's enrolment");
    assert!(e.contains("another desk's transport key"), "{e}");
    let e = check(&enrolled, "zenith", &f.service_key, &key).expect_err("another team");
    assert!(e.contains("names \"zenith\""), "{e}");
    let e = check(&enrolled, "acme", &"0".repeat(64), &key).expect_err("another service key");
    assert!(e.contains("service key"), "{e}");
    let mut forged = enrolled.clone();
    let mut parts: Vec<String> = forged.jwt.split('.').map(str::to_string).collect();
    parts[1] = parts[1].replacen('e', "f", 1);
    forged.jwt = parts.join(".");
    let e = check(&forged, "acme", &f.service_key, &key).expect_err("claims edited");
    assert!(e.contains("not signed by the team's signer") || e.contains("not JSON"), "{e}");
    // Signed by a signer of another team.
    let mut stranger = TeamPlane::start("acme", Duration::from_secs(5));
    let theirs = stranger.authority.enroll("agent-1", Role::Agent, &key).expect("enroll");
    let e = check(&theirs, "acme", &theirs.service_key, &key).expect_err("another team's signer");
    assert!(e.contains("not signed by the team's signer"), "{e}");
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
        whole_team: false,
    })
    .expect("link");
    put_within(&new, "pause.after", 10);
    // The same key cannot be enrolled twice, nor the old one brought back.
    assert!(team.authority.rotate("lead-1", &fresh.public_key()).is_err());
}

#[test]
fn credentials_issued_again_carry_todays_permissions_and_the_older_ones_are_refused() {
    let mut team = team(Duration::from_millis(300));
    let key = nkeys::KeyPair::new_user();
    let first = team.authority.enroll("agent-1", Role::Agent, &key.public_key()).expect("enroll");
    let url = team.url();
    let start = |jwt: String| {
        TeamLink::start(LinkConfig {
            url: url.clone(),
            device: "agent-1".into(),
            jwt,
            seed: Secret::new(key.seed().expect("seed")),
            idle_restart: Duration::from_secs(20),
            whole_team: false,
        })
        .expect("link")
    };
    let old = start(first.jwt.clone());
    assert!(seen(&old, "lease", 10).is_some(), "the first credentials work");
    // Within the second it was enrolled in, as a script would: a JWT carries its issue
    // time in seconds, and the older one must still be refused.
    let (again, not_pushed) = team.authority.reissue("agent-1").expect("reissue");
    assert!(not_pushed.is_none(), "the server heard of it: {not_pushed:?}");
    assert_eq!((again.role, again.device.as_str()), (Role::Agent, "agent-1"));
    assert_ne!(again.jwt, first.jwt, "new credentials");
    let deadline = Instant::now() + Duration::from_secs(5);
    while old.connected() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!old.connected(), "the older credentials were dropped");
    let new = start(again.jwt.clone());
    assert!(seen(&new, "lease", 10).is_some(), "the new credentials work, on the same key");
    // Again at once: the credentials of the first reissue are refused in turn.
    let (third, not_pushed) = team.authority.reissue("agent-1").expect("reissue again");
    assert!(not_pushed.is_none(), "{not_pushed:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while new.connected() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!new.connected(), "the first reissue's credentials were dropped");
    let newest = start(third.jwt);
    assert!(seen(&newest, "lease", 10).is_some(), "the newest credentials work");

    // The team service's own: a new service.creds for the same key; the old is refused.
    let before = std::fs::read_to_string(team.dir.path().join("service.creds")).expect("creds");
    let (service, not_pushed) = team.authority.reissue("service").expect("reissue the service");
    assert!(not_pushed.is_none(), "{not_pushed:?}");
    assert_eq!(service.role, Role::Service);
    let after = std::fs::read_to_string(team.dir.path().join("service.creds")).expect("creds");
    assert_ne!(before, after, "service.creds written anew");
    let connect = |creds: String| {
        let (jwt, seed) = countersign_plane::authority::parse_creds(&Secret::new(creds)).expect("creds");
        let url = url.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let client = countersign_plane::link::connect_options(&jwt, seed, "service")
                .connect(url.as_str())
                .await
                .map_err(|e| e.to_string())?;
            let info = async_nats::jetstream::new(client).query_account().await.map_err(|e| e.to_string());
            tokio::time::timeout(Duration::from_secs(3), async { info })
                .await
                .unwrap_or_else(|_| Err("no answer in 3 s".into()))
                .map(drop)
        })
    };
    assert!(connect(after).is_ok(), "the new service credentials work");
    assert!(connect(before).is_err(), "the older service credentials are refused");
    assert!(team.authority.reissue("nobody").is_err(), "only a live device");
}

#[test]
fn a_server_off_this_machine_is_reached_over_tls_only() {
    let dir = tempfile::tempdir().expect("dir");
    let options = countersign_plane::authority::InitOptions {
        name: "acme".into(),
        host: "10.0.0.5".parse().expect("ip"),
        port: 4222,
        tls: None,
        max_disk_bytes: None,
        desk_disk_bytes: None,
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
        whole_team: false,
    });
    assert!(plain.is_err_and(|e| e.to_string().contains("TLS")), "a plain connection off loopback is refused");
    assert!(countersign_plane::link::is_loopback("nats://127.0.0.1:4222"));
    assert!(countersign_plane::link::is_loopback("nats://[::1]:4222"));
    assert!(!countersign_plane::link::is_loopback("nats://team.example.com:4222"));
}
