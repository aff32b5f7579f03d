//! The team plane end to end with real parts: a real `nats-server` (operator mode,
//! JetStream) on a random loopback port, the team service's lease, and several desktops,
//! each a real engine on its own SQLite log with its own keys in the OS keyring (a
//! gnome-keyring in this test's D-Bus session), joined through the host as the faces
//! join them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/join.rs"]
mod join;
#[path = "support/team.rs"]
mod support;
use support::*;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use countersign_core::model::PauseScope;
use countersign_core::policy::Outcome;
use countersign_engine::team::EntryOutcome;
use countersign_engine::{Clock, Engine, EngineError, EngineOptions};
use countersign_plane::subjects::Role;
use jiff::Timestamp;

#[test]
fn a_leads_pause_reaches_every_desk_stops_the_step_there_and_only_a_lead_clears_it() {
    let mut team = team();
    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let agents: Vec<Desk> = (0..2)
        .map(|i| desk(&mut team, &format!("agent-desk-{i}"), Role::Agent, ("agent-1", "agent"), system()))
        .collect();
    for a in &agents {
        a.pump_until("a lease", current);
        let (outcome, _) = refund_decision(&a.engine);
        let (_, rules) = refund_decision(&a.engine);
        assert!(
            outcome < Outcome::Recommend,
            "before the pause the refund may run with a click: {outcome:?} {rules:?}"
        );
    }

    let pause = lead.engine.pause_set(PauseScope::Action, "refund_partial", "fraud wave on refunds").unwrap();
    assert_eq!(pause.team.as_deref(), Some("acme"), "a lead's pause in a team is the team's");

    for (i, a) in agents.iter().enumerate() {
        a.pump_until("the lead's pause", |e| e.pauses().unwrap().iter().any(|p| p.id == pause.id));
        let (outcome, rules) = refund_decision(&a.engine);
        assert_eq!(outcome, Outcome::Forbid, "agent {i}: the paused refund does not run");
        assert!(rules.contains(&format!("pause.{}", pause.id)), "{rules:?}");
        // Recorded in this desk's own evidence, with the lead's signed entry.
        let events = a.engine.log_list(&countersign_engine::LogFilter::default()).unwrap();
        let signed = events.iter().find_map(|e| match &e.event {
            countersign_core::evidence::Event::PauseChanged { signed: Some(s), pause: p, .. } if p.id == pause.id => {
                Some(s.clone())
            }
            _ => None,
        });
        let signed = signed.expect("the pause is evidence here, with the lead's signed entry");
        assert!(signed.body.contains("fraud wave"), "{}", signed.body);
        assert!(a.engine.log_verify().unwrap().ok, "the chain verifies");

        // An agent cannot clear the team's pause, not even by claiming a lead's role.
        let refused = a.engine.pause_clear(&pause.id, "I think it is over").unwrap_err();
        assert!(matches!(refused, EngineError::NotPermitted { .. }), "{refused}");
    }

    lead.engine.pause_clear(&pause.id, "fraud wave contained").unwrap();
    for a in &agents {
        a.pump_until("the clearing", |e| e.pauses().unwrap().is_empty());
        let (outcome, _) = refund_decision(&a.engine);
        assert!(outcome < Outcome::Recommend, "cleared: the refund may run again with a click");
    }
}

#[test]
fn a_team_pause_holds_from_the_moment_a_desk_takes_it_in_and_the_executor_refuses_the_approved_step() {
    let mut team = team();
    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    agent.pump_until("a lease", current);
    let (case, plan) =
        countersign_engine::cases::read_case(&demo().join("cases/02-damaged-item-small-refund.json"), None).unwrap();
    agent.engine.run_case(&case, plan.as_ref()).unwrap();
    let refund = agent.engine.review_queue().unwrap().into_iter().find(|s| s.action == "refund_partial").unwrap();
    agent
        .engine
        .review(&refund.plan_id, &refund.step_id, countersign_core::evidence::Verdict::Approved, "photo checked")
        .unwrap();
    assert_eq!(state_of(&agent, &refund.plan_id, &refund.step_id), "approved");

    // The lead's desk makes its intake ready before: its own pause, coming back to it
    // over the plane, is then no news to it.
    let lead_intake = lead.engine.pause_intake().unwrap();
    lead_intake.warm();
    let pause = lead.engine.pause_set(PauseScope::Action, "refund_partial", "fraud wave on refunds").unwrap();
    // Taken in by the engine itself (not the host's pump, whose sending thread records it
    // at its next tick).
    let deadline = Instant::now() + Duration::from_secs(15);
    let entry = loop {
        assert!(Instant::now() < deadline, "the pause did not arrive within 15 s");
        let Some(u) = agent.link.next(Duration::from_millis(50)).unwrap() else { continue };
        if let EntryOutcome::PauseSet { id } = agent.engine.team_entry(&u.key, u.value.as_deref()).unwrap() {
            assert_eq!(id, pause.id);
            break u;
        }
    };
    let recorded = |e: &Engine| e.pause_history().unwrap().iter().any(|r| r.pause.id == pause.id);
    assert!(agent.engine.pauses().unwrap().iter().any(|p| p.id == pause.id), "in force once taken in");
    assert!(!recorded(&agent.engine), "not yet in the desk's evidence");
    let runs = agent.engine.run_approved(&case.id).unwrap();
    let run = runs.iter().find(|r| r.step_id == refund.step_id).expect("the refund step was tried");
    assert_eq!(run.code, Some(countersign_engine::ErrorCode::Paused), "{run:?}");
    assert_ne!(state_of(&agent, &refund.plan_id, &refund.step_id), "executed");

    // The gate that refused recorded the pause first: a refusal never comes before the
    // pause it cites in the desk's log.
    assert!(recorded(&agent.engine), "recorded in the desk's own evidence by the gate");
    assert_eq!(agent.engine.team_record_seen().unwrap(), 0, "once");

    // The same entry again, as the plane delivers it after every reconnect: nothing new,
    // on the link's thread (whose intake reads the log's pauses the first time) as in the
    // engine, and on the lead's desk that set it.
    let again = |e: &Engine| e.pause_intake().unwrap().take(&entry.key, entry.value.as_deref());
    assert_eq!(again(&agent.engine), Some(EntryOutcome::Known));
    assert_eq!(agent.engine.team_entry(&entry.key, entry.value.as_deref()).unwrap(), EntryOutcome::Known);
    assert_eq!(lead_intake.take(&entry.key, entry.value.as_deref()), Some(EntryOutcome::Known));
    let sets = |e: &Engine| {
        let events = e.log_list(&countersign_engine::LogFilter::default()).unwrap();
        events
            .iter()
            .filter(|e| {
                matches!(&e.event, countersign_core::evidence::Event::PauseChanged { pause: p, .. } if p.id == pause.id)
            })
            .count()
    };
    assert_eq!((sets(&agent.engine), sets(&lead.engine)), (1, 1), "each desk's log records it once, set");
    assert!(agent.engine.log_verify().unwrap().ok);
}

#[test]
fn under_a_policy_that_names_the_team_a_desk_without_its_enrolment_is_cut_off_not_solo() {
    let mut team = named_team();
    // Enrolled and joined: current, as in any team.
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    agent.pump_until("a lease", current);
    let (outcome, rules) = refund_decision(&agent.engine);
    assert!(outcome < Outcome::Recommend && !rules.iter().any(|r| r == "builtin.cut_off"), "{outcome:?} {rules:?}");

    // The same workspace on a desk whose enrolment is gone: never solo.
    let root = tempfile::tempdir().unwrap();
    let options = countersign_host::Options {
        workspace: team.workspace.clone(),
        root: countersign_host::DataRoot::resolve(Some(root.path().to_path_buf())).unwrap(),
        operator_id: Some("agent-1".into()),
        role: Some("team_lead".into()),
    };
    let opened = countersign_host::open(options).unwrap();
    let status = opened.engine.team_status().expect("the policy's team shows");
    assert!(!status.current && status.team == "acme", "{status:?}");
    assert!(status.cut_off.as_deref().is_some_and(|c| c.contains("not in it")), "{status:?}");
    let (outcome, rules) = refund_decision(&opened.engine);
    assert!(outcome >= Outcome::Recommend, "money is at most `recommend` when cut off: {outcome:?}");
    assert!(rules.iter().any(|r| r == "builtin.cut_off"), "{rules:?}");
    // Its role is only what the seat claims, so no write rests on it: a lead's proof.
    assert_eq!(opened.engine.operator().role, "team_lead", "the claim stands, but counts for nothing");
    let (case, plan) =
        countersign_engine::cases::read_case(&demo().join("cases/02-damaged-item-small-refund.json"), None).unwrap();
    let decision = opened.engine.decide(&case, &plan.unwrap()).unwrap();
    let refund = decision.steps.iter().find(|s| s.step_id == "s2").unwrap();
    assert!(refund.reasons.iter().any(|r| r.text.contains("a write is at least `supervisor`")), "{:?}", refund.reasons);
    let status = opened.engine.team_status().unwrap();
    assert!(status.cut_off.as_deref().is_some_and(|c| c.contains("a write is at least `supervisor`")), "{status:?}");

    // An engine of this policy cannot be joined to another team.
    let mut other = Engine::open(
        EngineOptions {
            workspace: team.workspace.clone(),
            data_dir: root.path().join("other"),
            operator: None,
            connector: None,
        },
        system(),
    )
    .unwrap();
    let settings = countersign_engine::team::TeamSettings {
        team: "other-team".into(),
        device: "agent-desk".into(),
        role: "agent".into(),
        service_key: countersign_engine::keys::PublicKey::from_hex(&team.plane.authority.file.service_key, "service")
            .unwrap(),
        signer: countersign_engine::keys::SecretKey::generate().unwrap(),
    };
    let refused =
        other.join_team(settings, Arc::new(countersign_host::team::LinkPort(agent.link.clone()))).unwrap_err();
    assert!(refused.to_string().contains("holds this desktop to team \"acme\""), "{refused}");
}

#[test]
fn the_enrolled_role_is_the_seats_role_and_an_agents_pause_stays_on_its_desk() {
    let mut team = team();
    // The agent's seat claims to be a lead; the enrolment says agent.
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("lead-1", "team_lead"), system());
    let other = desk(&mut team, "other-desk", Role::Agent, ("agent-2", "agent"), system());
    assert_eq!(agent.engine.operator().role, "agent");
    let local = agent.engine.pause_set(PauseScope::Channel, "email", "my own desk only").unwrap();
    assert_eq!(local.team, None, "an agent's pause is this desk's alone");
    other.pump_leases(2);
    assert!(other.engine.pauses().unwrap().is_empty(), "nothing reached the other desk");
}

#[test]
fn a_pause_signed_by_a_key_the_roster_does_not_list_for_its_author_is_refused() {
    let mut team = team();
    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    // A pause made as lead-1 but signed with another key (a stolen lead credential,
    // without lead-1's device key), published with the lead's transport credentials.
    let forger = countersign_engine::keys::SecretKey::generate().unwrap();
    let pause = countersign_core::model::Pause {
        id: "pause-1-forged".into(),
        scope: PauseScope::Tenant,
        value: "acme".into(),
        reason: "stop everything".into(),
        set_by: "lead-1".into(),
        set_at: Timestamp::now(),
        team: Some("acme".into()),
    };
    let body = countersign_core::team::TeamPause {
        team: "acme".into(),
        state: countersign_core::team::TeamPauseState::Set,
        pause,
        cleared_by: None,
        cleared_at: None,
        clear_reason: None,
    };
    let entry =
        countersign_engine::team_signing::sign(countersign_engine::team_signing::PAUSE_DOMAIN, &body, &forger).unwrap();
    lead.link.put("pause.pause-1-forged", serde_json::to_vec(&entry).unwrap()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        assert!(Instant::now() < deadline, "the forged entry never arrived");
        if let Some(u) = agent.link.next(Duration::from_millis(50)).unwrap()
            && u.key == "pause.pause-1-forged"
        {
            break agent.engine.team_entry(&u.key, u.value.as_deref()).unwrap();
        }
    };
    assert!(
        matches!(&outcome, EntryOutcome::Refused { reason } if reason.contains("not one this desktop trusts")),
        "{outcome:?}"
    );
    assert!(agent.engine.pauses().unwrap().is_empty(), "nothing was recorded");
}

#[test]
fn a_desk_whose_server_is_stopped_falls_back_once_its_lease_is_stale_by_its_own_clock() {
    let mut team = team();
    let clock = Arc::new(Movable(Mutex::new(Timestamp::now())));
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), clock.clone());
    agent.pump_until("a lease", current);
    let (before, rules) = refund_decision(&agent.engine);
    assert!(before < Outcome::Recommend && !rules.iter().any(|r| r == "builtin.cut_off"), "{before:?} {rules:?}");

    // With the server up, leases keep coming: past 30 s of the engine's clock the next
    // one makes the desk current again.
    clock.advance(31);
    agent.pump_until("a lease after 31 s", current);

    team.plane.server.stop();
    // Whatever was on the way is taken in; nothing new arrives.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        if let Ok(Some(u)) = agent.link.next(Duration::from_millis(50)) {
            countersign_host::team::take_in(&agent.engine, &agent.link, &u);
        }
    }
    // Within the lease's 30 s the desk is still current (no sleeping: the engine's clock).
    clock.advance(29);
    assert!(agent.current(), "29 s after the last lease");
    clock.advance(2);
    let status = agent.engine.team_status().unwrap();
    assert!(!status.current && status.cut_off.as_deref().is_some_and(|c| c.contains("no lease")), "{status:?}");
    let (outcome, rules) = refund_decision(&agent.engine);
    assert_eq!(outcome, Outcome::Recommend, "money is at most recommend while cut off (was {before:?})");
    assert!(rules.iter().any(|r| r == "builtin.cut_off"), "{rules:?}");

    // The server back: a fresh lease makes the desk current again.
    team.plane.server.restart();
    agent.pump_until("a lease after the restart", current);
    let (after, rules) = refund_decision(&agent.engine);
    assert_eq!(after, before);
    assert!(!rules.iter().any(|r| r == "builtin.cut_off"));
}

#[test]
fn a_lead_countersigns_a_supervisor_step_from_their_own_desk_and_the_grant_is_used_once() {
    let mut team = team();
    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    let (plan, step) = supervisor_step(&agent);
    assert_eq!(agent.engine.team_publish_requests().unwrap(), 1);
    assert_eq!(agent.engine.team_publish_requests().unwrap(), 0, "each request goes out once");

    lead.pump_until("the request in the lead's queue", |e| !e.team_queue().is_empty());
    let request = lead.engine.team_queue().remove(0);
    assert_eq!(
        (request.plan_id.as_str(), request.step_id.as_str(), request.action.as_str()),
        (plan.as_str(), step.as_str(), "send_password_reset")
    );
    assert!(request.context.contains("chat") && !request.reasons.is_empty(), "{request:?}");

    // An agent's credentials cannot answer it.
    let forged = agent.link.create(&format!("answer.agent-desk.{}", request.request_id), b"{}".to_vec());
    assert!(forged.is_err_and(|e| e.contains("Permissions Violation")), "the server refuses an agent's answer");

    lead.engine
        .team_answer(&request.request_id, countersign_core::evidence::Verdict::Approved, "verified on a call")
        .unwrap();
    let again = lead.engine.team_answer(&request.request_id, countersign_core::evidence::Verdict::Rejected, "no");
    assert!(
        matches!(again, Err(EngineError::NotFound { .. } | EngineError::Conflict { .. })),
        "the first answer wins: {again:?}"
    );
    assert!(lead.engine.team_queue().is_empty(), "answered: out of the queue");

    agent.pump_until("the grant taken up", |_| state_of(&agent, &plan, &step) == "approved");
    let events = agent.engine.log_list(&countersign_engine::LogFilter::default()).unwrap();
    let decided = events.iter().find_map(|e| match &e.event {
        countersign_core::evidence::Event::ReviewDecided { by, grant: Some(g), .. } => Some((by.clone(), g.clone())),
        _ => None,
    });
    let (by, grant) = decided.expect("the countersignature is evidence, with the lead's grant");
    assert_eq!((by.id.as_str(), by.role.as_str()), ("lead-1", "team_lead"));

    // The same grant again (the plane delivers it again after every reconnect): used once,
    // and not a refusal either.
    let key = format!("answer.agent-desk.{}", request.request_id);
    let replay = agent.engine.team_entry(&key, Some(&serde_json::to_vec(&grant).unwrap())).unwrap();
    assert_eq!(replay, EntryOutcome::Known);
    // Replayed under another request's key: refused, with its reason.
    let elsewhere =
        agent.engine.team_entry("answer.agent-desk.0000", Some(&serde_json::to_vec(&grant).unwrap())).unwrap();
    assert!(
        matches!(&elsewhere, EntryOutcome::Refused { reason } if reason.contains("another team, desk or request")),
        "{elsewhere:?}"
    );
    let events = agent.engine.log_list(&countersign_engine::LogFilter::default()).unwrap();
    let decided = events
        .iter()
        .filter(|e| matches!(&e.event, countersign_core::evidence::Event::ReviewDecided { grant: Some(_), .. }))
        .count();
    assert_eq!(decided, 1, "the grant countersigned once");
}

/// A change to a grant before it is signed.
type Edit<'a> = dyn Fn(&mut countersign_core::team::Grant) + 'a;

#[test]
fn a_grant_for_another_digest_another_pack_or_past_its_expiry_is_refused_with_its_reason() {
    let mut team = team();
    let clock = Arc::new(Movable(Mutex::new(Timestamp::now())));
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), clock.clone());
    let (plan, step) = supervisor_step(&agent);
    let record = agent.engine.review_queue().unwrap().into_iter().find(|s| s.step_id == step).unwrap();
    let lead_key = countersign_engine::device::device_key(&team.lead_keyring).unwrap();
    let grant = |edit: &Edit<'_>| {
        let mut g = countersign_core::team::Grant {
            team: "acme".into(),
            device: "agent-desk".into(),
            request_id: "r1".into(),
            plan_id: plan.clone(),
            step_id: step.clone(),
            step_digest: record.step_digest.clone(),
            policy_hash: record.policy_hash.clone(),
            verdict: countersign_core::evidence::Verdict::Approved,
            reason: "ok".into(),
            by: "lead-1".into(),
            expires_at: clock.now() + jiff::SignedDuration::from_mins(15),
            nonce: countersign_engine::team_signing::nonce().unwrap(),
        };
        edit(&mut g);
        let entry =
            countersign_engine::team_signing::sign(countersign_engine::team_signing::GRANT_DOMAIN, &g, &lead_key)
                .unwrap();
        agent.engine.team_entry("answer.agent-desk.r1", Some(&serde_json::to_vec(&entry).unwrap())).unwrap()
    };
    let cases: [(&str, &Edit<'_>); 4] = [
        ("another step", &|g| g.step_digest = "0".repeat(64)),
        ("another policy pack", &|g| g.policy_hash = "sha256:other".into()),
        ("expired", &|g| g.expires_at = clock.now() - jiff::SignedDuration::from_secs(1)),
        ("made out by", &|g| g.by = "lead-2".into()),
    ];
    for (why, edit) in cases {
        let outcome = grant(edit);
        assert!(matches!(&outcome, EntryOutcome::Refused { reason } if reason.contains(why)), "{why}: {outcome:?}");
        assert_eq!(state_of(&agent, &plan, &step), "waiting", "{why}: nothing was countersigned");
    }
    let refusals = agent.engine.log_list(&countersign_engine::LogFilter::default()).unwrap();
    let recorded = refusals.iter().filter(|e| e.event.kind() == "review_refused").count();
    assert_eq!(recorded, 4, "each refusal is evidence");
    // A good one, taken up once the lead's clock and the desk's agree.
    assert!(matches!(grant(&|_| {}), EntryOutcome::Granted { .. }));
    assert_eq!(state_of(&agent, &plan, &step), "approved");
}

#[test]
fn every_desks_evidence_reaches_the_team_once_across_an_outage_and_a_lost_acknowledgement() {
    let mut team = team();
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    let check = |n: u32| {
        agent.engine.record_identity_check("demo-02", "ava_moore_2033", &format!("check {n}")).unwrap();
    };
    // A screenshot the desk's evidence names goes too, by its hash.
    let shot = agent.engine.blob_sink().put("image/png", b"\x89PNG a screenshot of the refund form").unwrap();
    let sent = replicate_until_ok(&agent);
    assert!(sent > 0);
    team_holds_the_log(&team, &agent, "agent-desk");
    let service = team.plane.service_link();
    assert_eq!(service.get_blob("agent-desk", &shot).unwrap(), b"\x89PNG a screenshot of the refund form");
    assert!(agent.link.get_blob("agent-desk", &shot).is_err(), "a desk cannot read the team's blobs");
    assert_eq!(agent.engine.outbox_pending().unwrap(), 0);

    // An outage: what is recorded meanwhile waits in the outbox, then goes, once.
    team.plane.server.stop();
    for n in 0..5 {
        check(n);
    }
    assert!(countersign_host::team::replicate(&agent.engine, &agent.link, false).is_err());
    assert_eq!(agent.engine.outbox_pending().unwrap(), 5, "nothing left the outbox");
    team.plane.server.restart();
    // (The client may have held the publications made during the outage and delivered
    // them on reconnecting: the head read then finds them there, and none goes twice.)
    replicate_until_ok(&agent);
    assert_eq!(agent.engine.outbox_pending().unwrap(), 0);
    team_holds_the_log(&team, &agent, "agent-desk");

    // The team stored a batch but the desk never heard (it crashed before its outbox
    // moved): the same events again are refused by the stream, and the head read moves
    // the outbox on without sending them twice.
    for n in 5..9 {
        check(n);
    }
    let cursor = agent.engine.outbox_cursor().unwrap();
    let pending = agent.engine.outbox_events(cursor.sent_seq, 100).unwrap();
    let as_sent: Vec<countersign_plane::evidence::Outgoing> = pending
        .iter()
        .map(|e| countersign_plane::evidence::Outgoing { seq: e.seq, hash: e.hash.clone(), message: e.message.clone() })
        .collect();
    let first = agent.link.publish_evidence("agent-desk", cursor.stream_seq, as_sent.clone());
    assert!(first.error.is_none() && first.last.is_some(), "{first:?}");
    // The desk, unaware, sends them again from its stale outbox: refused, not doubled.
    let again = agent.link.publish_evidence("agent-desk", cursor.stream_seq, as_sent);
    assert!(again.error.is_some() || again.last == first.last, "{again:?}");
    assert_eq!(countersign_host::team::replicate(&agent.engine, &agent.link, true).unwrap(), 0);
    assert_eq!(agent.engine.outbox_pending().unwrap(), 0);
    team_holds_the_log(&team, &agent, "agent-desk");

    // Another desk cannot write this desk's subject.
    let other = desk(&mut team, "other-desk", Role::Agent, ("agent-2", "agent"), system());
    let forged = other.link.publish_evidence(
        "agent-desk",
        0,
        vec![countersign_plane::evidence::Outgoing { seq: 999, hash: "x".into(), message: b"{}".to_vec() }],
    );
    assert!(forged.last.is_none() && forged.error.is_some(), "{forged:?}");
    team_holds_the_log(&team, &agent, "agent-desk");
    // Nor put anything in this desk's blob store.
    let overwrite = other.link.put_blob("agent-desk", &shot, "image/png", b"something else".to_vec());
    assert!(overwrite.is_err(), "another desk cannot write this desk's blobs");
    assert_eq!(
        team.plane.service_link().get_blob("agent-desk", &shot).unwrap(),
        b"\x89PNG a screenshot of the refund form"
    );
}

#[test]
fn a_signed_pack_the_admin_publishes_reaches_a_running_desk_and_runs_at_once_and_the_lead_sees_it() {
    let mut team = team();
    let admin = desk(&mut team, "admin-desk", Role::Admin, ("lead-1", "team_lead"), system());
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    let pack = demo().join("../demo-pack");
    let info = countersign_engine::pack::verify_pack(&pack, &countersign_engine::keys::TrustedKeys::bundled())
        .expect("the demo pack verifies against this build's keys")
        .info;
    // A step waits for a lead under the policy the desk runs before.
    let (plan, step) = supervisor_step(&agent);
    assert!(!agent.engine.policy_is_signed(), "the desk runs the workspace's own policy before");

    // An agent's desk cannot publish one.
    let refused = agent.link.publish_pack(&pack, info.version, &info.digest, "agent-1");
    assert!(refused.is_err(), "only the admin publishes packs");

    admin.link.publish_pack(&pack, info.version, &info.digest, "lead-1").expect("the admin publishes");
    // The running desk takes it in, verifies it and runs on it, with no restart.
    agent.pump_until("the pack loaded", |e| e.policy_is_signed());
    assert_eq!(agent.engine.policy().hash, info.policy_hash);
    assert_eq!(agent.engine.policy_status().pack.map(|p| p.version), Some(info.version));
    assert!(!agent.engine.team_pack_dir().exists(), "the staged copy is gone");
    assert_eq!(agent.engine.team_pack_waiting(), None, "nothing waits");
    let status = agent.engine.team_status().unwrap();
    assert_eq!(status.policy_hash, info.policy_hash, "the status line names the policy it runs now");
    // What was decided before the pack no longer waits (its roster or catalog may differ
    // even where the policy does not): it is decided again.
    assert_eq!(state_of(&agent, &plan, &step), "invalidated");
    let log = agent.engine.log_events(Default::default()).unwrap();
    let loaded: Vec<&serde_json::Value> =
        log.iter().filter(|e| e.kind == "policy_loaded").map(|e| &e.payload).collect();
    assert_eq!(loaded.last().and_then(|p| p["hash"].as_str()), Some(info.policy_hash.as_str()), "{loaded:?}");
    assert_eq!(loaded.len(), 2, "the policy it opened with, then the pack: {loaded:?}");

    // The desk says what it runs; a lead's desk sees it.
    countersign_host::team::report(&agent.engine, &agent.link);
    admin.pump_until("the agent desk's report", |e| {
        e.team_desks().iter().any(|d| d.device == "agent-desk" && d.pack_version == Some(info.version))
    });
    let seen = admin.engine.team_desks().into_iter().find(|d| d.device == "agent-desk").unwrap();
    assert_eq!((seen.pack_digest.as_deref(), seen.heard_at.is_some()), (Some(info.digest.as_str()), true));

    // The same version again is nothing new.
    admin.link.publish_pack(&pack, info.version, &info.digest, "lead-1").unwrap();
    let after = agent.pump_leases(2);
    assert!(!after.iter().any(|o| matches!(o, EntryOutcome::PackAnnounced { .. })), "{after:?}");
}

#[test]
fn every_desks_evidence_is_projected_into_postgres_once_and_a_broken_chain_holds_only_its_desk() {
    let mut team = team();
    let names = ["desk-ok", "desk-edited", "desk-forked", "desk-gap", "desk-badsig"];
    let desks: Vec<Desk> =
        names.iter().map(|n| desk(&mut team, n, Role::Agent, ("agent-1", "agent"), system())).collect();
    // An agent's own words may carry a NUL (which PostgreSQL's text and jsonb refuse):
    // the event is projected all the same, and holds up no other desk.
    desks[0].engine.record_identity_check("demo-02", "ava_moore_2033", "called back\u{0} on file").unwrap();
    // A signed checkpoint on two desks: the first pins the desk's key on the team.
    let signed = desks[0].engine.checkpoint().unwrap();
    desks[4].engine.checkpoint().unwrap();
    let db = countersign_test_support::postgres::Postgres::start();
    let mut service = Projection::start(&team, &db, "cs_projection");
    for d in &desks {
        replicate_until_ok(d);
    }
    let team_db = TeamDb::open(&db);
    for (d, name) in desks.iter().zip(names) {
        let want = local_log(d);
        wait_for(&format!("{name}'s log projected"), || team_db.events_of(name) == want);
    }
    assert_eq!(
        team_db.checkpoints_of("desk-ok"),
        vec![(signed.seq, signed.count, signed.head.clone())],
        "the desk's checkpoint verified and is recorded"
    );
    assert!(team_db.alerts().is_empty(), "{:?}", team_db.alerts());
    let total = team_db.count();

    // The service restarts and reads the whole stream again (a new consumer: every
    // message redelivered, as after acknowledgements lost in a crash): nothing doubles,
    // nothing is taken for a fork.
    service.stop();
    let mut again = Projection::start(&team, &db, "cs_projection_again");
    wait_for("the whole stream read again", || team.plane.consumer_done("cs_projection_again"));
    assert_eq!(team_db.count(), total, "a redelivered event is projected once");
    assert!(team_db.alerts().is_empty(), "a redelivery is not a fork: {:?}", team_db.alerts());
    again.stop();
    let mut service = Projection::start(&team, &db, "cs_projection");

    // Four desks break their chains on the team's side, each with its own credentials.
    let heads: Vec<(u64, String)> = desks.iter().map(|d| local_log(d).last().cloned().unwrap()).collect();
    // desk-edited: the next event, its body edited after it was hashed; then a good one
    // after it, which must not be projected past the break.
    let (n, head) = heads[1].clone();
    let original = body(n + 1, "note", serde_json::json!({"text": "refund 1200"}));
    let claimed = countersign_store::Hash::link(&hash(&head), original.as_bytes());
    let edited = original.replace("refund 1200", "refund 9900");
    let after = body(n + 2, "note", serde_json::json!({"text": "later"}));
    let after_hash = countersign_store::Hash::link(&claimed, after.as_bytes());
    publish_raw(
        &desks[1],
        "desk-edited",
        vec![message("desk-edited", n + 1, &claimed, &edited), message("desk-edited", n + 2, &after_hash, &after)],
    );
    // desk-forked: another event in the place of its last one, well chained.
    let (n, _) = heads[2].clone();
    let prev = local_log(&desks[2])[usize::try_from(n).unwrap() - 2].1.clone();
    let other = body(n, "note", serde_json::json!({"text": "what I had rather said"}));
    let fork_hash = countersign_store::Hash::link(&hash(&prev), other.as_bytes());
    publish_raw(&desks[2], "desk-forked", vec![message("desk-forked", n, &fork_hash, &other)]);
    // desk-gap: an event two further on.
    let (n, head) = heads[3].clone();
    let skipped = body(n + 2, "note", serde_json::json!({"text": "skipped one"}));
    let skipped_hash = countersign_store::Hash::link(&hash(&head), skipped.as_bytes());
    publish_raw(&desks[3], "desk-gap", vec![message("desk-gap", n + 2, &skipped_hash, &skipped)]);
    // desk-badsig: a checkpoint of its head under its own key's name, signed by another.
    let (n, head) = heads[4].clone();
    let device_key = desks[4].engine.device_public_key().unwrap().to_hex();
    let forger = countersign_engine::keys::SecretKey::generate().unwrap();
    let signature = countersign_engine::device::sign_checkpoint(&forger, n, &hash(&head).0);
    let payload = serde_json::json!({
        "count": n, "head": head, "device_key": device_key, "signature": hex::encode(signature),
    });
    let checkpoint = body(n + 1, "checkpoint", payload);
    let checkpoint_hash = countersign_store::Hash::link(&hash(&head), checkpoint.as_bytes());
    publish_raw(&desks[4], "desk-badsig", vec![message("desk-badsig", n + 1, &checkpoint_hash, &checkpoint)]);

    // desk-ok keeps going, after all of that in the stream.
    desks[0].engine.record_identity_check("demo-02", "ava_moore_2033", "called back again").unwrap();
    replicate_until_ok(&desks[0]);
    let want = local_log(&desks[0]);
    wait_for("desk-ok's later events projected", || team_db.events_of("desk-ok") == want);

    let alerts = team_db.alerts();
    let seen: Vec<(&str, u64, &str)> = alerts.iter().map(|a| (a.device.as_str(), a.seq, a.kind.as_str())).collect();
    assert_eq!(
        seen,
        vec![
            ("desk-edited", heads[1].0 + 1, "bad_hash"),
            ("desk-forked", heads[2].0, "fork"),
            ("desk-gap", heads[3].0 + 1, "gap"),
            ("desk-badsig", heads[4].0 + 1, "bad_signature"),
        ],
        "one alert per broken desk, naming its first bad event: {alerts:#?}"
    );
    assert_eq!(alerts[0].hash.as_deref(), Some(claimed.to_hex().as_str()), "the edited event's hash as it came");
    assert_eq!(alerts[1].hash.as_deref(), Some(fork_hash.to_hex().as_str()));
    assert!(alerts[2].detail.contains(&format!("event {} ", heads[3].0 + 2)), "{}", alerts[2].detail);
    assert!(alerts[3].detail.contains("does not verify"), "{}", alerts[3].detail);
    // Nothing of a broken desk past its break: exactly its own log as it was.
    for (i, name) in names.iter().enumerate().skip(1) {
        assert_eq!(team_db.events_of(name), local_log(&desks[i]), "{name} is held at its break");
    }

    // Restarted, the service raises nothing twice and projects nothing past a break.
    service.stop();
    let mut service = Projection::start(&team, &db, "cs_projection");
    desks[0].engine.record_identity_check("demo-02", "ava_moore_2033", "and once more").unwrap();
    replicate_until_ok(&desks[0]);
    let want = local_log(&desks[0]);
    wait_for("desk-ok's events after the restart", || team_db.events_of("desk-ok") == want);
    assert_eq!(team_db.alerts(), alerts, "no alert raised twice");
    service.stop();
}

#[test]
fn the_team_witnesses_a_desks_checkpoint_and_the_desk_checks_its_own_log_against_it() {
    let mut team = team();
    let desk = desk(&mut team, "desk-w", Role::Agent, ("agent-1", "agent"), system());
    let signed = desk.engine.checkpoint().unwrap();
    let db = countersign_test_support::postgres::Postgres::start();
    let mut service = Projection::start(&team, &db, "cs_projection");
    replicate_until_ok(&desk);
    let team_db = TeamDb::open(&db);
    wait_for("the checkpoint witnessed", || team_db.witnessed_of("desk-w").is_some());
    let note = team_db.witnessed_of("desk-w").unwrap();
    // A standard signed note: any C2SP verifier with the service's key opens it.
    let service_key =
        countersign_engine::keys::SecretKey::read_file(&team.plane.dir.path().join("service.key")).unwrap();
    let text = countersign_trust::note::open(&note, "countersign-team.acme", &service_key.public("")).unwrap();
    let head = hash(&signed.head);
    assert_eq!(text, countersign_trust::witness::text("acme", "desk-w", signed.count, &head.0));

    // It comes back to the desk over the plane, and the desk's log holds against it.
    desk.pump_until("the witnessed checkpoint", |e| e.team_witness_check().unwrap().is_some());
    let verified = desk.engine.verify().unwrap();
    let witnessed = verified.witnessed.clone().expect("checked against the team's witness");
    assert!(witnessed.ok && verified.ok(), "{witnessed:?}");
    assert_eq!((witnessed.count, witnessed.head.as_str()), (signed.count, signed.head.as_str()));

    // A witness of another head for that count (what a rewritten log would meet): it
    // does not hold, and the whole verification fails.
    let other = countersign_trust::witness::sign("acme", "desk-w", signed.count, &[7u8; 32], &service_key).unwrap();
    let taken = desk.engine.team_entry("witness.desk-w", Some(other.as_bytes())).unwrap();
    assert_eq!(taken, EntryOutcome::Known);
    let verified = desk.engine.verify().unwrap();
    let witnessed = verified.witnessed.clone().unwrap();
    assert!(!witnessed.ok && !verified.ok(), "{witnessed:?}");
    assert!(witnessed.problem.as_deref().is_some_and(|p| p.contains("rewritten")), "{witnessed:?}");
    // One not signed by the team service is refused.
    let forger = countersign_engine::keys::SecretKey::generate().unwrap();
    let forged = countersign_trust::witness::sign("acme", "desk-w", signed.count, &head.0, &forger).unwrap();
    let refused = desk.engine.team_entry("witness.desk-w", Some(forged.as_bytes())).unwrap();
    assert!(matches!(refused, EntryOutcome::Refused { .. }), "{refused:?}");
    service.stop();
}

#[test]
fn a_desk_is_held_to_the_evidence_key_it_was_enrolled_with_from_its_first_checkpoint() {
    let mut team = team();
    // Enrolled with its own key: its first checkpoint verifies and is witnessed.
    let own = desk(&mut team, "desk-own", Role::Agent, ("agent-1", "agent"), system());
    own.engine.checkpoint().unwrap();
    // Enrolled with another key (the admin's record of the device), while what sends
    // on its subject signs with this one: its very first checkpoint is refused, where
    // a key learnt from the first checkpoint would have taken it.
    let other = countersign_engine::keys::SecretKey::generate().unwrap().public("").to_hex();
    let keys = countersign_test_support::nats::keyring("desk-other");
    let workspace = team.workspace.clone();
    let joined = join::join_as(
        &mut team.plane,
        &workspace,
        &keys,
        ("desk-other", Role::Agent, &other),
        ("agent-1", "agent"),
        system(),
    );
    let impostor = Desk { engine: joined.engine, link: joined.link, _data: joined.data };
    impostor.engine.record_identity_check("demo-02", "ava_moore_2033", "called back").unwrap();
    let signed = impostor.engine.checkpoint().unwrap();
    let db = countersign_test_support::postgres::Postgres::start();
    let mut service = Projection::start(&team, &db, "cs_projection");
    replicate_until_ok(&own);
    replicate_until_ok(&impostor);
    let team_db = TeamDb::open(&db);
    wait_for("desk-own's checkpoint witnessed", || team_db.witnessed_of("desk-own").is_some());
    wait_for("desk-other's alert", || !team_db.alerts().is_empty());
    let alerts = team_db.alerts();
    let seen: Vec<(&str, u64, &str)> = alerts.iter().map(|a| (a.device.as_str(), a.seq, a.kind.as_str())).collect();
    assert_eq!(seen, vec![("desk-other", signed.seq, "bad_signature")], "{alerts:#?}");
    assert!(alerts[0].detail.contains(&format!("not the desk's key {other}")), "{}", alerts[0].detail);
    assert!(team_db.witnessed_of("desk-other").is_none(), "nothing witnessed for a key it was not enrolled with");

    // Released with the wrong key still on file: held again at the same checkpoint, its
    // alert raised anew.
    let (raised, _) = team_db.raised_and_released("desk-other", signed.seq);
    let own_checkpoints = team_db.checkpoints_of("desk-own");
    let first = team_db.release("desk-other", Some(&other));
    assert_eq!((first.held_at_seq, first.alert_kind.as_deref()), (signed.seq, Some("bad_signature")));
    assert_eq!(team_db.held_at("desk-other"), None, "not held once released");
    wait_for("held again, its alert raised anew", || {
        team_db.held_at("desk-other") == Some(signed.seq)
            && team_db.raised_and_released("desk-other", signed.seq).0 > raised
    });
    assert!(team_db.witnessed_of("desk-other").is_none());
    // The admin puts the desk's own key on file (`team device-key`), then releases it:
    // its checkpoint verifies, is witnessed, and its whole log is the team's.
    let own_key = impostor.engine.device_public_key().unwrap().to_hex();
    let was = team.plane.authority.set_device_key("desk-other", &own_key).unwrap();
    assert_eq!(was.as_deref(), Some(other.as_str()));
    let on_file = team.plane.authority.file.device_key("desk-other").map(str::to_string);
    let second = team_db.release("desk-other", on_file.as_deref());
    assert_eq!(second.device_key_after.as_deref(), Some(own_key.as_str()));
    let want = local_log(&impostor);
    wait_for("desk-other's log projected after its release", || team_db.events_of("desk-other") == want);
    wait_for("desk-other's checkpoint witnessed", || team_db.witnessed_of("desk-other").is_some());
    assert_eq!(team_db.held_at("desk-other"), None);
    assert_eq!(team_db.raised_and_released("desk-other", signed.seq).1, 2, "both releases recorded");
    // The other desk, read again from the alert's place: nothing of it raised, doubled
    // or witnessed again; the one alert is desk-other's, raised anew.
    assert_eq!(team_db.events_of("desk-own"), local_log(&own));
    assert_eq!(team_db.checkpoints_of("desk-own"), own_checkpoints);
    let alerts = team_db.alerts();
    let seen: Vec<(&str, u64, &str)> = alerts.iter().map(|a| (a.device.as_str(), a.seq, a.kind.as_str())).collect();
    assert_eq!(seen, vec![("desk-other", signed.seq, "bad_signature")], "{alerts:#?}");
    service.stop();
}

#[test]
fn a_database_outage_loses_and_doubles_nothing_and_raises_no_alert() {
    let mut team = team();
    let desk = desk(&mut team, "desk-o", Role::Agent, ("agent-1", "agent"), system());
    let mut db = countersign_test_support::postgres::Postgres::start();
    let mut service = Projection::start(&team, &db, "cs_projection");
    replicate_until_ok(&desk);
    let team_db = TeamDb::open(&db);
    let want = local_log(&desk);
    wait_for("the log projected", || team_db.events_of("desk-o") == want);
    drop(team_db);

    // The database goes away while the desk keeps recording and sending.
    db.stop();
    for n in 0..20 {
        desk.engine.record_identity_check("demo-02", "ava_moore_2033", &format!("check {n}")).unwrap();
        if n % 5 == 4 {
            replicate_until_ok(&desk);
        }
    }
    db.restart();
    let team_db = TeamDb::open(&db);
    let want = local_log(&desk);
    wait_for("the log projected after the outage", || team_db.events_of("desk-o") == want);
    assert!(team_db.alerts().is_empty(), "an outage is not a broken chain: {:?}", team_db.alerts());
    service.stop();
}

#[test]
fn the_apps_pump_takes_a_pause_in_records_it_on_its_own_and_sends_the_desks_evidence_to_the_team() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut team = team();
    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    let service = team.plane.service_link();
    let stop = AtomicBool::new(false);
    let heard = Mutex::new(Vec::<EntryOutcome>::new());
    /// Stops the pump however the test ends (a failed assertion must fail, not hang).
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    std::thread::scope(|s| {
        let pumping = s.spawn(|| {
            let seen = |o: &EntryOutcome| heard.lock().unwrap().push(o.clone());
            countersign_host::team::pump(&agent.engine, &agent.link, &stop, &seen);
        });
        let _stop = StopOnDrop(&stop);
        // The pump's sending thread puts the desk's log on the team's stream.
        let head = || service.evidence_head("agent-desk").unwrap().map(|(seq, _, hash)| (seq, hash));
        let last = || local_log(&agent).last().cloned();
        wait_for("the desk's log on the team's stream", || head().is_some() && head() == last());

        let pause = lead.engine.pause_set(PauseScope::Action, "refund_partial", "fraud wave").unwrap();
        wait_for("the pump heard the pause", || {
            heard.lock().unwrap().iter().any(|o| matches!(o, EntryOutcome::PauseSet { id } if *id == pause.id))
        });
        // Recorded by the pump itself, with no gate or decision asking first...
        wait_for("the pause recorded in the desk's evidence", || {
            agent.engine.pause_history().unwrap().iter().any(|r| r.pause.id == pause.id)
        });
        // ...and that record sent to the team like the rest of the log.
        wait_for("the record on the team's stream", || head() == last());
        let on_team = head().unwrap().0;
        let record = agent
            .engine
            .log_list(&countersign_engine::LogFilter::default())
            .unwrap()
            .into_iter()
            .find(|e| matches!(&e.event, countersign_core::evidence::Event::PauseChanged { pause: p, .. } if p.id == pause.id))
            .expect("the pause's event");
        assert!(record.seq <= on_team, "event {} not on the team's stream (it holds up to {on_team})", record.seq);

        stop.store(true, Ordering::SeqCst);
        let stopped = Instant::now();
        pumping.join().unwrap();
        assert!(stopped.elapsed() < Duration::from_secs(5), "the pump stopped in {:?}", stopped.elapsed());
    });
}

#[test]
fn a_leads_pause_holds_on_a_desk_whose_pump_is_busy_with_another_entry() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    let mut team = team();
    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    let stop = AtomicBool::new(false);
    let heard = Mutex::new(Vec::<EntryOutcome>::new());
    // The pump's thread is held inside `seen` on the first clearing it takes in (as it
    // would be fetching a pack or writing), until the test lets it go.
    let (busy_tx, busy) = mpsc::channel::<()>();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    struct StopOnDrop<'a>(&'a AtomicBool, mpsc::Sender<()>);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
            let _ = self.1.send(());
        }
    }
    std::thread::scope(|s| {
        let pumping = s.spawn(|| {
            let busy_tx = Mutex::new(busy_tx);
            let seen = |o: &EntryOutcome| {
                heard.lock().unwrap().push(o.clone());
                if matches!(o, EntryOutcome::PauseCleared { .. }) {
                    let _ = busy_tx.lock().unwrap().send(());
                    let _ = released.lock().unwrap().recv_timeout(Duration::from_secs(60));
                }
            };
            countersign_host::team::pump(&agent.engine, &agent.link, &stop, &seen);
        });
        let _stop = StopOnDrop(&stop, release.clone());
        let first = lead.engine.pause_set(PauseScope::Action, "refund_partial", "first").unwrap();
        wait_for("the first pause in force", || agent.engine.pauses().unwrap().iter().any(|p| p.id == first.id));
        lead.engine.pause_clear(&first.id, "over").unwrap();
        busy.recv_timeout(Duration::from_secs(20)).expect("the pump took the clearing in");

        // The pump's thread is busy: the next pause still holds on the desk, taken in on
        // the link's own thread, and the pump's sending thread records it meanwhile.
        let second = lead.engine.pause_set(PauseScope::Action, "refund_partial", "second").unwrap();
        wait_for("the second pause in force while the pump is busy", || {
            agent.engine.pauses().unwrap().iter().any(|p| p.id == second.id)
        });
        wait_for("the second pause recorded while the pump is busy", || {
            agent.engine.pause_history().unwrap().iter().any(|r| r.pause.id == second.id)
        });
        assert!(
            !heard.lock().unwrap().iter().any(|o| matches!(o, EntryOutcome::PauseSet { id } if *id == second.id)),
            "the pump's thread is still busy: it has not heard of it yet"
        );

        // Let go, the pump hears of it.
        release.send(()).unwrap();
        wait_for("the pump heard of the second pause", || {
            heard.lock().unwrap().iter().any(|o| matches!(o, EntryOutcome::PauseSet { id } if *id == second.id))
        });
        stop.store(true, Ordering::SeqCst);
        pumping.join().unwrap();
    });
}
