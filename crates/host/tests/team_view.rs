//! The lead's team view end to end with real parts: a real `nats-server`, the team
//! service's projection and view over a real PostgreSQL, a signed pack the admin
//! publishes on the plane (its roster says which lead sees which desks), and desks that
//! are real engines recording real cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/join.rs"]
mod join;
#[path = "support/team.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use countersign_core::evidence::Event;
use countersign_core::teamview::{StepFilter, TeamAnswer, TeamQuery, ViewAsk};
use countersign_engine::keys::{SecretKey, TrustedKeys};
use countersign_engine::{EngineError, LogFilter, Scope};
use countersign_plane::subjects::Role;
use countersign_test_support::nats::keyring;
use countersign_test_support::postgres::Postgres;
use support::*;

/// The decided steps in a desk's own log: (plan, step, action).
fn decided_steps(desk: &Desk) -> Vec<(String, String, String)> {
    let mut steps = Vec::new();
    for e in desk.engine.log_list(&LogFilter::default()).unwrap() {
        if let Event::Decided { decision, .. } = e.event {
            for s in decision.steps {
                steps.retain(|(p, st, _): &(String, String, String)| !(p == &decision.plan_id && st == &s.step_id));
                steps.push((decision.plan_id.clone(), s.step_id, s.action));
            }
        }
    }
    steps
}

fn run_demo_case(desk: &Desk, file: &str) -> String {
    let (case, plan) = countersign_engine::cases::read_case(&demo().join("cases").join(file), None).unwrap();
    desk.engine.run_case(&case, plan.as_ref()).unwrap();
    case.id
}

/// A team whose service projects into a fresh PostgreSQL and answers leads' views,
/// trusting `admin_key` for the packs it reads the roster from.
struct ViewTeam {
    team: Team,
    db: Postgres,
    _projection: Projection,
    admin_key: SecretKey,
    _view: ServiceThread,
}

fn view_team() -> ViewTeam {
    let team = team();
    let db = Postgres::start();
    let _projection = Projection::start(&team, &db, "cs_projection");
    let admin_key = SecretKey::generate().unwrap();
    let _view = ServiceThread::view(&team, &db, TrustedKeys::new(vec![admin_key.public("test admin")]));
    ViewTeam { team, db, _projection, admin_key, _view }
}

#[test]
fn a_lead_sees_the_teams_steps_and_timelines_only_as_far_as_the_signed_pack_grants_and_every_view_is_recorded() {
    let ViewTeam { mut team, db, _projection, admin_key, _view } = view_team();

    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let admin = desk(&mut team, "admin-desk", Role::Admin, ("admin-1", "team_lead"), system());
    let agent_1 = desk(&mut team, "agent-desk-1", Role::Agent, ("agent-1", "agent"), system());
    let agent_2 = desk(&mut team, "agent-desk-2", Role::Agent, ("agent-2", "agent"), system());

    // A second lead, at a desk of their own: the workspace's roster lists their key there.
    let lead_2_keys = keyring("lead-2");
    let lead_2_key = countersign_engine::device::device_key(&lead_2_keys).unwrap().public("").to_hex();
    let lead_1_key = countersign_engine::device::device_key(&team.lead_keyring).unwrap().public("").to_hex();
    let ws_2 = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(&team.workspace)
        .unwrap()
        .replace(&lead_1_key, &lead_2_key)
        .replace("id = \"lead-1\"", "id = \"lead-2\"");
    std::fs::write(ws_2.path().join("workspace.toml"), text).unwrap();
    let lead_2 = join::join(
        &mut team.plane,
        &ws_2.path().join("workspace.toml"),
        &lead_2_keys,
        "lead-desk-2",
        Role::Lead,
        ("lead-2", "team_lead"),
        system(),
    );

    // Before any pack: the service (once it listens) has no roster to read a lead from.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let refused = loop {
        let e = lead.engine.team_steps(StepFilter::default()).unwrap_err();
        if !e.to_string().contains("not answering") || std::time::Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(refused.to_string().contains("no signed pack"), "{refused}");

    // Agent desk 1 runs the demo's signed pack (version 3); then the admin publishes the
    // team's own (version 4), whose roster grants the view.
    let demo_pack = demo().join("../demo-pack");
    let demo_info = countersign_engine::pack::verify_pack(&demo_pack, &TrustedKeys::bundled()).unwrap().info;
    admin.link.publish_pack(&demo_pack, demo_info.version, &demo_info.digest, "admin-1").unwrap();
    agent_1
        .pump_until("the demo pack loaded", |e| e.policy_status().pack.is_some_and(|p| p.version == demo_info.version));
    let packs = tempfile::tempdir().unwrap();
    let roster = roster_entry("lead-1", &lead_1_key, &["*"]) + &roster_entry("lead-2", &lead_2_key, &["agent-desk-1"]);
    publish_team_pack(&admin, packs.path(), &admin_key, &roster);

    let case_1 = run_demo_case(&agent_1, "02-damaged-item-small-refund.json");
    // The agent edits the waiting refund before it is decided again: a revision.
    let (file_case, _) =
        countersign_engine::cases::read_case(&demo().join("cases/02-damaged-item-small-refund.json"), None).unwrap();
    let waiting = agent_1.engine.review_queue().unwrap().into_iter().find(|s| s.action == "refund_partial").unwrap();
    let changes = [("amount".to_string(), "10.00".to_string())].into();
    agent_1
        .engine
        .edit_step(&file_case, &waiting.plan_id, &waiting.step_id, &changes, "agreed to 10 on a call")
        .unwrap();
    // A screenshot the desk keeps, which an event of the case names.
    let shot = agent_1.engine.blob_sink().put("image/png", b"\x89PNG the refund form").unwrap();
    agent_1.engine.record_identity_check(&case_1, "ava_moore_2033", &format!("photo on file: {shot}")).unwrap();
    let case_2 = run_demo_case(&agent_2, "01-cancel-pending.json");
    // A legal threat: a signal hands the case to a human (an escalation).
    run_demo_case(&agent_2, "04-legal-threat-refund.json");
    for d in [&agent_1, &agent_2] {
        replicate_until_ok(d);
    }
    let held = TeamDb::open(&db);
    let local = |d: &Desk| d.engine.log_list(&LogFilter::default()).unwrap().len();
    wait_for("both desks projected", || {
        held.events_of("agent-desk-1").len() == local(&agent_1)
            && held.events_of("agent-desk-2").len() == local(&agent_2)
    });

    // Lead 1 sees every desk's decided steps, newest first.
    let all = lead.engine.team_steps(StepFilter::default()).unwrap();
    let mut expected: Vec<(String, String, String, String)> = Vec::new();
    for (desk, d) in [("agent-desk-1", &agent_1), ("agent-desk-2", &agent_2)] {
        for (p, s, a) in decided_steps(d) {
            expected.push((desk.to_string(), p, s, a));
        }
    }
    let mut seen: Vec<(String, String, String, String)> =
        all.rows.iter().map(|r| (r.desk.clone(), r.plan_id.clone(), r.step_id.clone(), r.action.clone())).collect();
    assert!(!expected.is_empty());
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected, "every decided step of every desk, once");
    assert!(all.rows.windows(2).all(|w| w[0].decided_at >= w[1].decided_at), "newest first");
    let refund =
        all.rows.iter().find(|r| r.action == "refund_partial" && r.desk == "agent-desk-1").expect("the refund");
    assert_eq!((refund.agent.as_str(), refund.tenant.as_deref()), ("agent-1", Some("acme")));
    assert_eq!(refund.pack_version, Some(demo_info.version), "decided under the demo pack");

    // Each filter narrows to what it names.
    let only = |f: StepFilter| lead.engine.team_steps(f).unwrap().rows;
    let rows = only(StepFilter { desk: Some("agent-desk-2".into()), ..Default::default() });
    assert!(!rows.is_empty() && rows.iter().all(|r| r.desk == "agent-desk-2"), "{rows:?}");
    let rows = only(StepFilter { agent: Some("agent-1".into()), ..Default::default() });
    assert!(!rows.is_empty() && rows.iter().all(|r| r.desk == "agent-desk-1"), "{rows:?}");
    let rows = only(StepFilter { action: Some("refund_partial".into()), ..Default::default() });
    let refunds = expected.iter().filter(|e| e.3 == "refund_partial").count();
    assert!(refunds > 0 && rows.len() == refunds && rows.iter().all(|r| r.action == "refund_partial"), "{rows:?}");
    let rows = only(StepFilter { decision: Some(refund.decision.clone()), ..Default::default() });
    assert!(rows.iter().any(|r| r.step_id == refund.step_id) && rows.iter().all(|r| r.decision == refund.decision));
    let rows = only(StepFilter { pack_version: Some(demo_info.version), ..Default::default() });
    assert!(!rows.is_empty() && rows.iter().all(|r| r.desk == "agent-desk-1"), "{rows:?}");
    let rows = only(StepFilter { outcome: Some("superseded".into()), ..Default::default() });
    assert_eq!(
        rows.iter().map(|r| (r.plan_id.as_str(), r.step_id.as_str())).collect::<Vec<_>>(),
        [(waiting.plan_id.as_str(), waiting.step_id.as_str())],
        "the edited step's first decision will not run as it was"
    );
    let rows = only(StepFilter { outcome: Some("open".into()), ..Default::default() });
    assert!(rows.iter().all(|r| r.outcome.is_none()), "{rows:?}");
    let rows = only(StepFilter { since: Some("2100-01-01T00:00:00Z".into()), ..Default::default() });
    assert!(rows.is_empty(), "nothing decided in the future");
    // Pages: one row at a time reaches every row once.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = lead.engine.team_steps(StepFilter { limit: Some(1), after: after.clone(), ..Default::default() });
        let page = page.unwrap();
        paged.extend(page.rows.iter().map(|r| (r.desk.clone(), r.plan_id.clone(), r.step_id.clone())));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let whole: Vec<_> = all.rows.iter().map(|r| (r.desk.clone(), r.plan_id.clone(), r.step_id.clone())).collect();
    assert_eq!(paged, whole, "the pages are the whole list, in order, once each");
    let bad = lead.engine.team_steps(StepFilter { since: Some("yesterday".into()), ..Default::default() });
    assert!(matches!(bad, Err(EngineError::BadInput { .. })), "{bad:?}");

    // A case's timeline: exactly its events on that desk, each checked against its hash.
    let timeline = lead.engine.team_case(&case_1).unwrap();
    let mine: Vec<String> = agent_1
        .engine
        .log_list(&LogFilter { case_id: Some(case_1.clone()), ..Default::default() })
        .unwrap()
        .into_iter()
        .map(|e| e.hash)
        .collect();
    let theirs: Vec<String> =
        timeline.events.iter().filter(|e| e.desk == "agent-desk-1").map(|e| e.event.hash.clone()).collect();
    assert_eq!(theirs, mine);
    // (Every desk recorded an identity check on this case; those that reported it show.)
    assert!(timeline.events.iter().all(|e| e.event.case_id.as_deref() == Some(case_1.as_str())));
    // Exported to a file: the same events, hashed bodies included.
    let out = tempfile::tempdir().unwrap();
    let exported = lead.engine.team_export(&case_1, out.path()).unwrap();
    assert_eq!(exported.events as usize, timeline.events.len());
    assert!(exported.desks.contains(&"agent-desk-1".to_string()), "{:?}", exported.desks);
    let bundle: countersign_core::teamview::CaseBundle =
        serde_json::from_str(&std::fs::read_to_string(&exported.path).unwrap()).unwrap();
    for e in &bundle.events {
        countersign_engine::teamview::checked(e).expect("each exported event holds");
    }
    assert!(lead.engine.team_export(&case_1, Path::new(&exported.path)).is_err(), "never over an earlier file");

    // A grant of another tenant shows nothing; of this one, everything.
    let tenant = |t: &str| {
        let grants = countersign_team::view::Grants { desks: None, tenants: Some(vec![t.to_string()]) };
        held.rt.block_on(countersign_team::view::steps_page(&held.pool, &grants, &StepFilter::default())).unwrap().0
    };
    assert!(tenant("globex").is_empty());
    assert_eq!(tenant("acme").len(), all.rows.len());

    // The screenshot, from the desk's store through the team, checked against its hash.
    let (media, bytes) = lead.engine.team_blob("agent-desk-1", &case_1, &shot).unwrap();
    assert_eq!((media.as_str(), bytes.as_slice()), ("image/png", b"\x89PNG the refund form".as_slice()));
    let unnamed = countersign_store::Hash::genesis().to_hex();
    let refused = lead.engine.team_blob("agent-desk-1", &case_1, &unnamed).unwrap_err();
    assert!(matches!(refused, EngineError::NotFound { .. }), "only a blob an event of the case names: {refused}");

    // Lead 2 is granted desk 1 only: desk 2's steps and cases do not exist for them.
    let theirs = lead_2.engine.team_steps(StepFilter::default()).unwrap();
    assert!(!theirs.rows.is_empty() && theirs.rows.iter().all(|r| r.desk == "agent-desk-1"), "{:?}", theirs.rows);
    let hidden = lead_2.engine.team_case(&case_2).unwrap_err();
    assert!(matches!(hidden, EngineError::NotFound { .. }), "{hidden}");

    // An agent's desk may not ask: its engine will not sign, and the server will not
    // carry an ask from it.
    let refused = agent_1.engine.team_steps(StepFilter::default()).unwrap_err();
    assert!(matches!(refused, EngineError::NotPermitted { .. }), "{refused}");
    assert!(agent_1.link.ask_view("agent-desk-1", b"{}".to_vec(), Duration::from_secs(2)).is_err());

    // A lead's desk that aims the answer at another subject (a desk's evidence) gets none
    // sent there: the service answers only the asking desk's own inbox.
    let before = team.plane.evidence_of("agent-desk-1").len();
    let lead_data = lead._data.path().join("data");
    let enrolled = countersign_host::team::enrollment(&lead_data).unwrap().unwrap();
    let transport = countersign_plane::authority::device_transport_key(&team.lead_keyring).unwrap();
    held.rt.block_on(async {
        let raw = countersign_plane::link::connect_options(&enrolled.jwt, transport, "lead-desk")
            .connect(team.plane.url())
            .await
            .unwrap();
        raw.publish_with_reply("cs.view.lead-desk", "cs.evidence.agent-desk-1", b"{}".to_vec().into()).await.unwrap();
        raw.flush().await.unwrap();
    });
    let answered = lead.engine.team_alerts().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(team.plane.evidence_of("agent-desk-1").len(), before, "nothing reached the desk's evidence subject");
    assert!(answered.is_empty() && held.alerts().is_empty(), "{:?}", held.alerts());

    // Lead 2's key cannot speak for lead 1, nor can an old ask be played again.
    let ask_as = |by: &str, at: jiff::Timestamp| {
        let ask = ViewAsk {
            team: "acme".into(),
            device: "lead-desk-2".into(),
            by: by.into(),
            query: TeamQuery::Case { case_id: case_2.clone() },
            at,
            nonce: "n".into(),
        };
        let key = countersign_engine::device::device_key(&lead_2_keys).unwrap();
        let entry =
            countersign_engine::team_signing::sign(countersign_engine::team_signing::VIEW_DOMAIN, &ask, &key).unwrap();
        let bytes = lead_2.link.ask_view("lead-desk-2", serde_json::to_vec(&entry).unwrap(), Duration::from_secs(10));
        serde_json::from_slice::<TeamAnswer>(&bytes.unwrap()).unwrap()
    };
    let code = |a: TeamAnswer| match a {
        TeamAnswer::Refused { code, .. } => code,
        other => panic!("not refused: {other:?}"),
    };
    assert_eq!(code(ask_as("lead-1", jiff::Timestamp::now())), "bad_ask");
    let old = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(10);
    assert_eq!(code(ask_as("lead-2", old)), "stale");

    // Who saw what: every answer that showed customer data, with its cases.
    let views = held.rt.block_on(countersign_team::view::views(&held.pool)).unwrap();
    let case_views: Vec<_> = views.iter().filter(|v| v.2 == "case").collect();
    assert_eq!(case_views.len(), 1, "lead 2's refused case is not a view: {views:?}");
    assert_eq!((case_views[0].0.as_str(), case_views[0].1.as_str()), ("lead-desk", "lead-1"));
    assert_eq!(case_views[0].4, vec![case_1.clone()]);
    let export = views.iter().find(|v| v.2 == "export").expect("the export is recorded");
    assert_eq!((export.1.as_str(), export.3 as usize), ("lead-1", timeline.events.len()));
    assert!(views.iter().any(|v| v.1 == "lead-2" && v.2 == "steps" && !v.4.contains(&case_2)));
    // Lead 1, granted every desk and tenant, reads that record from their desk; lead 2 may not.
    let audit = lead.engine.team_audit(Some(500)).unwrap();
    assert_eq!(audit.views.len(), views.len(), "every recorded view");
    let newest = views.last().unwrap();
    assert_eq!((audit.views[0].by.as_str(), audit.views[0].kind.as_str()), (newest.1.as_str(), newest.2.as_str()));
    let refused = lead_2.engine.team_audit(None).unwrap_err();
    assert!(matches!(refused, EngineError::NotPermitted { .. }), "{refused}");
    assert!(lead.engine.team_alerts().unwrap().is_empty(), "nothing failed to verify");

    // The team's metrics count what the desks' own logs say.
    let m = lead.engine.team_metrics(None, None).unwrap();
    let decided: Vec<(String, String)> = [&agent_1, &agent_2]
        .iter()
        .flat_map(|d| d.engine.log_list(&LogFilter { kind: Some("decided".into()), ..Default::default() }).unwrap())
        .flat_map(|e| match e.event {
            Event::Decided { decision, .. } => {
                decision.steps.into_iter().map(|s| (s.action, s.decision.as_str().to_string())).collect()
            }
            _ => Vec::new(),
        })
        .collect();
    let of = |d: &str| decided.iter().filter(|(_, x)| x == d).count() as u32;
    assert_eq!(
        (m.totals.auto_run, m.totals.forbidden, m.totals.recommended),
        (of("auto"), of("forbid"), of("recommend"))
    );
    let mut actions: Vec<String> = decided.iter().map(|(a, _)| a.clone()).collect();
    actions.sort();
    actions.dedup();
    assert_eq!(m.per_action.iter().map(|c| c.label.clone()).collect::<Vec<_>>(), actions);
    assert_eq!(m.per_agent.iter().map(|c| c.label.as_str()).collect::<Vec<_>>(), ["agent-1", "agent-2"]);
    assert_eq!((m.cases, m.escalations, m.totals.edited), (3, 1, 1), "{m:?}");
    let refunds = m.per_action.iter().find(|c| c.label == "refund_partial").unwrap();
    assert_eq!(refunds.edited, 1, "the edit counts for its action: {refunds:?}");
    assert_eq!(m.per_week.len(), 1, "all this week: {:?}", m.per_week);
    // Per rule: the steps each fired on and decided, as the desks' logs say; the pack's own
    // rules and signals that fired on none.
    let mut per_rule: std::collections::BTreeMap<String, (u32, u32)> = Default::default();
    for e in [&agent_1, &agent_2]
        .iter()
        .flat_map(|d| d.engine.log_list(&LogFilter { kind: Some("decided".into()), ..Default::default() }).unwrap())
    {
        let Event::Decided { decision, .. } = e.event else { continue };
        for s in decision.steps {
            let fired: std::collections::BTreeSet<String> = s.rule_ids.iter().cloned().collect();
            for r in fired {
                per_rule.entry(r).or_default().0 += 1;
            }
            let deciding: std::collections::BTreeSet<String> =
                s.reasons.iter().filter(|r| r.decision == s.decision).map(|r| r.rule.clone()).collect();
            for r in deciding {
                per_rule.entry(r).or_default().1 += 1;
            }
        }
    }
    let counted: std::collections::BTreeMap<String, (u32, u32)> =
        m.rules.iter().map(|r| (r.rule.clone(), (r.fired, r.decided))).collect();
    assert_eq!(counted, per_rule);
    assert!(m.rules.windows(2).all(|w| w[0].fired >= w[1].fired), "the rules that fire most first");
    assert!(m.rules_never_fired.iter().any(|r| r == "rule.account.no-social-dm"), "{:?}", m.rules_never_fired);
    assert!(
        m.rules_never_fired
            .iter()
            .all(|r| !per_rule.contains_key(r) && (r.starts_with("rule.") || r.starts_with("signal.")))
    );
    // Lead 2 counts desk 1 only: one case, no escalation.
    let theirs = lead_2.engine.team_metrics(None, None).unwrap();
    assert_eq!((theirs.cases, theirs.escalations), (1, 0), "{theirs:?}");
    let future = lead.engine.team_metrics(Some("2100-01-01T00:00:00Z".into()), None).unwrap();
    assert_eq!((future.totals.auto_run + future.totals.waiting, future.cases), (0, 0));
}

#[test]
fn a_tenants_cases_past_their_retention_leave_the_team_recorded_and_what_remains_still_verifies() {
    let mut team = team();
    let db = Postgres::start();
    let _projection = Projection::start(&team, &db, "cs_projection");
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), system());
    let case = run_demo_case(&agent, "02-damaged-item-small-refund.json");
    // A screenshot only this case names, and one it names beside a case no desk opened.
    let only = agent.engine.blob_sink().put("image/png", b"\x89PNG the refund form").unwrap();
    let shared = agent.engine.blob_sink().put("image/png", b"\x89PNG the account page").unwrap();
    agent.engine.record_identity_check(&case, "ava_moore_2033", &format!("photos {only} {shared}")).unwrap();
    agent.engine.record_identity_check("demo-25", "harper_ahmed_5055", &format!("photo {shared}")).unwrap();
    agent.engine.checkpoint().unwrap();
    replicate_until_ok(&agent);
    let held = TeamDb::open(&db);
    let local = agent.engine.log_list(&LogFilter::default()).unwrap();
    wait_for("the desk projected and its checkpoint witnessed", || {
        held.events_of("agent-desk").len() == local.len() && held.witnessed_of("agent-desk").is_some()
    });
    let in_case = |id: &str| local.iter().filter(|e| e.case_id.as_deref() == Some(id)).count() as u64;
    let of_case = in_case(&case);
    // The desk also recorded a verification against a case it never opened (no tenant).
    let stray = local.iter().filter(|e| e.case_id.is_some()).count() as u64 - of_case;
    assert!(stray > 0);
    let check =
        |held: &TeamDb| held.rt.block_on(countersign_team::retention::verify_desk(&held.pool, "agent-desk")).unwrap();
    assert_eq!(check(&held).problem, None);

    // A screenshot that only deleted events named leaves the desk's object store; one that
    // an event the team still holds names stays, until that event goes too.
    let service = || async {
        let identity =
            countersign_plane::lease::ServiceIdentity::load(team.plane.dir.path(), Some(&team.plane.url())).unwrap();
        async_nats::jetstream::new(identity.connect().await.unwrap())
    };
    let blobs = |held: &TeamDb| {
        held.rt.block_on(async {
            let js = service().await;
            let store = js.get_object_store(countersign_plane::subjects::blobs_bucket_of("agent-desk")).await.unwrap();
            let mut held_blobs = Vec::new();
            for h in [&only, &shared] {
                if store.info(h.as_str()).await.is_ok() {
                    held_blobs.push(h.clone());
                }
            }
            held_blobs
        })
    };
    let drop_blobs = |held: &TeamDb| {
        held.rt.block_on(async { countersign_team::retention::drop_blobs(&service().await, &held.pool).await.unwrap() })
    };
    assert_eq!(blobs(&held), [only.clone(), shared.clone()], "both were sent with the events");

    let f = &team.plane.authority.file;
    let policy = countersign_core::policy::TeamPolicy {
        name: f.name.clone(),
        signer: f.signer.clone(),
        service_key: f.service_key.clone(),
        retention: [("acme".to_string(), 30), ("*".to_string(), 60)].into(),
    };
    let apply = |now: jiff::Timestamp| {
        held.rt.block_on(countersign_team::retention::apply(&held.pool, &policy, "team-pack v4", now)).unwrap()
    };
    // Within the 30 days nothing goes; past them, every case of the tenant does.
    assert!(apply(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 29)).is_empty());
    let gone = apply(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 31));
    assert_eq!(gone.iter().map(|d| d.events).sum::<u64>(), of_case, "{gone:?}");
    assert!(gone.iter().any(|d| d.case_id == case && d.tenant == "acme"));
    let recorded = held.rt.block_on(countersign_team::retention::deletions(&held.pool)).unwrap();
    assert_eq!(recorded, gone, "each deletion is recorded");
    // The team's own record shows them, newest first.
    let (_, shown) = held.rt.block_on(countersign_team::view::audit(&held.pool, 100)).unwrap();
    let mut listed: Vec<_> =
        shown.iter().map(|d| (d.tenant.clone(), d.desk.clone(), d.case_id.clone(), d.events)).collect();
    listed.reverse();
    let expected: Vec<_> =
        gone.iter().map(|d| (d.tenant.clone(), d.device.clone(), d.case_id.clone(), d.events)).collect();
    assert_eq!(listed, expected);
    assert!(shown.iter().all(|d| d.days == 30 && d.pack == "team-pack v4"), "{shown:?}");
    assert_eq!(held.events_of("agent-desk").len() as u64, local.len() as u64 - of_case);
    assert_eq!(drop_blobs(&held), 1);
    assert_eq!(blobs(&held), std::slice::from_ref(&shared), "the shared one is still named");

    // Past 60 days, the events of the case no desk opened go too, under "*".
    let stray_gone = apply(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 61));
    assert_eq!(stray_gone.iter().map(|d| d.events).sum::<u64>(), stray);
    assert!(stray_gone.iter().all(|d| d.tenant == countersign_team::retention::UNKNOWN_TENANT));
    let of_case = of_case + stray;
    assert_eq!(drop_blobs(&held), 1);
    assert!(blobs(&held).is_empty());

    // The stream keeps of the desk only its last message: the rest is in the store.
    let on_stream = team.plane.evidence_of("agent-desk").len();
    assert!(on_stream > 1, "{on_stream}");
    let trimmed = held
        .rt
        .block_on(async { countersign_team::retention::trim_stream(&service().await, &held.pool).await.unwrap() });
    assert_eq!(trimmed as usize, on_stream - 1);
    assert_eq!(team.plane.evidence_of("agent-desk").len(), 1);

    // What remains still verifies, the witnessed checkpoint included; a later event of the
    // desk is sent after the trimmed stream's last message and projected after the
    // tombstones without an alert.
    let after = check(&held);
    assert_eq!((after.problem.as_deref(), after.tombstones, after.witnessed), (None, of_case, 1), "{after:?}");
    agent.engine.record_identity_check("demo-07", "yusuf_rossi_9620", "called back").unwrap();
    replicate_until_ok(&agent);
    let now = agent.engine.log_list(&LogFilter::default()).unwrap().len() as u64;
    wait_for("the new event projected", || held.events_of("agent-desk").len() as u64 == now - of_case);
    assert!(held.alerts().is_empty(), "{:?}", held.alerts());
    assert_eq!(check(&held).problem, None);

    // An edit to what remains does not verify.
    held.rt
        .block_on(
            sqlx::query("UPDATE events SET body = replace(body, 'called back', 'called BACK') WHERE device = $1")
                .bind("agent-desk")
                .execute(&held.pool),
        )
        .unwrap();
    assert!(check(&held).problem.is_some());
}

#[test]
fn the_leads_verdicts_on_escalations_and_the_desks_promises_reach_the_teams_metrics() {
    let ViewTeam { mut team, db, _projection, admin_key, _view } = view_team();
    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let admin = desk(&mut team, "admin-desk", Role::Admin, ("admin-1", "team_lead"), system());
    let clock = Arc::new(Movable(std::sync::Mutex::new(jiff::Timestamp::now())));
    let agent = desk(&mut team, "agent-desk", Role::Agent, ("agent-1", "agent"), clock.clone());
    let lead_key = countersign_engine::device::device_key(&team.lead_keyring).unwrap().public("").to_hex();
    let packs = tempfile::tempdir().unwrap();
    publish_team_pack(&admin, packs.path(), &admin_key, &roster_entry("lead-1", &lead_key, &["*"]));

    // An escalated case, and a case whose reply promises a delivery "by Friday" on an order
    // that is still pending.
    let escalated = run_demo_case(&agent, "04-legal-threat-refund.json");
    let pending = demo().join("cases/01-cancel-pending.json");
    let (case, plan) = countersign_engine::cases::read_case(&pending, None).unwrap();
    agent.engine.run_case(&case, plan.as_ref()).unwrap();
    let plan_id = plan.unwrap().id;
    let text = "Thanks Ana. Your order is on its way and will arrive by Friday.";
    agent.engine.send_reply(&case, &plan_id, text, countersign_core::Outcome::Confirm, None).unwrap();
    // Eight days on, the promise is checked on the platform (the order is still pending);
    // then a refund is promised that is not due yet.
    clock.advance(8 * 24 * 3600);
    let sweep = agent.engine.check_promises().unwrap();
    assert_eq!(sweep.checked.iter().map(|p| p.state.as_str()).collect::<Vec<_>>(), ["broken"], "{sweep:?}");
    let refund = demo().join("cases/02-damaged-item-small-refund.json");
    let (case_2, plan_2) = countersign_engine::cases::read_case(&refund, None).unwrap();
    agent.engine.run_case(&case_2, plan_2.as_ref()).unwrap();
    let promise = "We will refund you for the damage.";
    agent.engine.send_reply(&case_2, &plan_2.unwrap().id, promise, countersign_core::Outcome::Confirm, None).unwrap();

    // The lead judges the escalation from their own desk: only a case handed to a human,
    // with a reason; the newest verdict counts.
    let e = lead.engine.team_judge("agent-desk", &case.id, true, "needed").unwrap_err();
    assert!(matches!(e, EngineError::BadInput { .. }) || matches!(e, EngineError::NotFound { .. }), "{e}");
    replicate_until_ok(&agent);
    let held = TeamDb::open(&db);
    let local = agent.engine.log_list(&LogFilter::default()).unwrap().len();
    wait_for("the desk projected", || held.events_of("agent-desk").len() == local);
    let e = lead.engine.team_judge("agent-desk", &case.id, true, "needed").unwrap_err();
    assert!(e.to_string().contains("not handed to a human"), "{e}");
    assert!(matches!(lead.engine.team_judge("agent-desk", &escalated, true, " "), Err(EngineError::BadInput { .. })));
    let e = agent.engine.team_judge("agent-desk", &escalated, false, "mine").unwrap_err();
    assert!(matches!(e, EngineError::NotPermitted { .. }), "an agent judges nothing: {e}");
    lead.engine.team_judge("agent-desk", &escalated, false, "a question about a lawyer's fees, no threat").unwrap();
    lead.engine.team_judge("agent-desk", &escalated, true, "on second reading: a threat to sue").unwrap();
    replicate_until_ok(&lead);
    let lead_events = lead.engine.log_list(&LogFilter::default()).unwrap().len();
    wait_for("the lead's desk projected", || held.events_of("lead-desk").len() == lead_events);

    let m = lead.engine.team_metrics(None, None).unwrap();
    assert_eq!(m.escalations, 1, "{m:?}");
    let v = &m.escalation_verdicts;
    assert_eq!((v.right, v.wrong, v.unjudged), (1, 0, 0), "the newest verdict counts: {v:?}");
    let p = &m.promises;
    assert_eq!((p.made, p.kept, p.broken, p.not_checkable, p.overdue, p.open), (2, 0, 1, 0, 0, 1), "{p:?}");
    assert_eq!(
        m.promises_per_agent.iter().map(|c| (c.label.as_str(), c.made)).collect::<Vec<_>>(),
        [("agent-1", 2)],
        "{m:?}"
    );
    assert_eq!(m.promises_per_week.iter().map(|c| c.made).sum::<u32>(), 2, "{:?}", m.promises_per_week);
    // The verdicts show in the case's timeline, from the lead's desk.
    let timeline = lead.engine.team_case(&escalated).unwrap();
    let judged = timeline.events.iter().filter(|e| e.event.kind == "escalation_judged").collect::<Vec<_>>();
    assert_eq!(judged.len(), 2);
    assert!(judged.iter().all(|e| e.desk == "lead-desk"));

    // Verdicts count only from a lead's desk: with no lead's key on the roster, none does.
    let grants = countersign_team::view::Grants::default();
    let today = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let metrics_with = |leads: &[(String, String)], team: &str| {
        held.rt
            .block_on(countersign_team::view::metrics(&held.pool, &grants, (team, leads), &[], today, None, None))
            .unwrap()
    };
    let judged = |m: countersign_core::teamview::TeamMetrics| {
        (m.escalation_verdicts.right, m.escalation_verdicts.wrong, m.escalation_verdicts.unjudged)
    };
    let lead_1 = (lead_key.to_ascii_lowercase(), "lead-1".to_string());
    assert_eq!(judged(metrics_with(std::slice::from_ref(&lead_1), "acme")), (1, 0, 0));
    // Signed in another lead's name, or for another team, it counts for nothing.
    let other_name = (lead_key.to_ascii_lowercase(), "lead-2".to_string());
    assert_eq!(judged(metrics_with(&[other_name], "acme")), (0, 0, 1));
    assert_eq!(judged(metrics_with(&[lead_1], "globex")), (0, 0, 1));
    let none = metrics_with(&[], "acme");
    let v = &none.escalation_verdicts;
    assert_eq!((v.right, v.wrong, v.unjudged), (0, 0, 1), "{v:?}");
}

/// Two agents' desks each approve two $30 refunds on email. Neither desk alone has the
/// decisions or the people the pack's bar asks for; the team does, and the lead's desk
/// gets the proposal with its simulation over both desks. (The pack counts an approval
/// however soon it came: a desk's clock moved ahead would leave it cut off from the team.)
#[test]
fn earned_autonomy_counts_every_desk_the_lead_sees_and_simulates_over_them() {
    use countersign_core::autonomy::Direction;
    use countersign_core::evidence::Verdict;
    let ViewTeam { mut team, db, _projection, admin_key, _view } = view_team();
    let lead = desk(&mut team, "lead-desk", Role::Lead, ("lead-1", "team_lead"), system());
    let admin = desk(&mut team, "admin-desk", Role::Admin, ("admin-1", "team_lead"), system());
    let lead_key = countersign_engine::device::device_key(&team.lead_keyring).unwrap().public("").to_hex();
    let packs = tempfile::tempdir().unwrap();
    let low_bar = |p: String| {
        p.replacen("review_floor_secs = 10 ", "review_floor_secs = 0 ", 1)
            .replacen("min_decisions = 200", "min_decisions = 4", 1)
            .replacen("min_unchanged_pct = 98", "min_unchanged_pct = 75", 1)
            .replacen("min_approvers = 5 ", "min_approvers = 2 ", 1)
    };
    let info =
        publish_team_pack_with(&admin, packs.path(), &admin_key, &roster_entry("lead-1", &lead_key, &["*"]), low_bar);
    let held = TeamDb::open(&db);
    let orders = [
        [("chen_silva_7485", "#W3069600"), ("chen_silva_7485", "#W2598834")],
        [("yara_ito_8499", "#W1304208"), ("yara_ito_8499", "#W8353027")],
    ];
    for (n, pair) in orders.iter().enumerate() {
        let name = format!("agent-desk-{n}");
        let agent_id = format!("agent-{n}");
        let agent = desk(&mut team, &name, Role::Agent, (agent_id.as_str(), "agent"), system());
        for (i, (customer, order)) in pair.iter().enumerate() {
            let case_id = format!("earned-{n}-{i}");
            let file: countersign_engine::CaseFile = serde_json::from_value(
                countersign_test_support::demo::refund_case_file(&case_id, customer, order, "30.00"),
            )
            .unwrap();
            agent.engine.record_identity_check(&case_id, customer, "called back on the number on file").unwrap();
            let d = agent.engine.process(&file.case, &file.plan).unwrap();
            assert_eq!(d.steps[0].decision, countersign_core::Outcome::Confirm, "{d:?}");
            agent.engine.review(&file.plan.id, "s1", Verdict::Approved, "photos checked").unwrap();
        }
        replicate_until_ok(&agent);
        let events = agent.engine.log_list(&LogFilter::default()).unwrap().len();
        wait_for("the desk projected", || held.events_of(&name).len() == events);
    }

    let a = lead.engine.autonomy(Scope::Team).unwrap();
    assert_eq!((a.policy_id.as_str(), a.policy_version), (info.id.as_str(), info.version));
    assert!(a.scope.contains("agent-desk-0") && a.scope.contains("agent-desk-1"), "{}", a.scope);
    let band = a.records.iter().find(|r| r.band_label == "over 25.00 USD up to 50.00 USD").unwrap();
    assert_eq!((band.decisions, band.unchanged, band.approvers, band.rubber_stamps), (4, 4, 2, 0), "{band:?}");
    assert_eq!(a.proposals.len(), 1, "{a:?}");
    let p = &a.proposals[0];
    assert_eq!(p.proposal.direction, Direction::Loosen);
    let report = &p.simulation.as_ref().unwrap().report;
    assert_eq!((report.decisions, report.changed), (4, 4), "the four refunds would have run on their own: {report:?}");
    assert_eq!(report.draft.version, 2);
    // Saved from the team's answer: the draft and the report it was shown.
    let out = tempfile::tempdir().unwrap();
    let saved = lead.engine.save_proposal(&p.proposal.key, Scope::Team, out.path()).unwrap();
    let draft = countersign_engine::simulate::read_draft(Path::new(&saved.draft_file)).unwrap();
    assert_eq!(draft.hash, report.draft.hash);
    // `policy simulate --team` on that draft: the same replay, over the same desks.
    let simulated = lead.engine.simulate_draft(Path::new(&saved.draft_file), None, None, Scope::Team).unwrap();
    assert_eq!(&simulated.report, report);
    let broken = out.path().join("broken.toml");
    std::fs::write(&broken, "[policy]\nid = ").unwrap();
    let e = lead.engine.simulate_draft(&broken, None, None, Scope::Team).unwrap_err();
    assert!(e.to_string().contains("broken.toml:"), "a bad draft is named before anything is asked: {e}");
    // The ask is a view of customer cases: recorded, with the cases it named.
    let views = held.rt.block_on(countersign_team::view::views(&held.pool)).unwrap();
    assert!(views.iter().any(|v| v.2 == "autonomy" && v.4.iter().any(|c| c.starts_with("earned-"))), "{views:?}");
    // The admin's desk is no lead on the pack's roster: the team answers it nothing.
    let e = admin.engine.autonomy(Scope::Team).unwrap_err();
    assert!(matches!(e, EngineError::NotPermitted { .. }), "{e}");
}
