//! `countersign policy simulate` over a real log: the recorded decisions replayed through
//! a draft equal processing the same cases afresh under that draft in a fresh data folder
//! (the snapshot connector answering both runs' reads alike), on cases where the money
//! history, the operator's role and a pause change the outcome.

use std::collections::BTreeMap;

use countersign_core::model::PauseScope;
use countersign_engine::simulate::read_draft;

use super::*;

/// The draft: the demo policy and two rules. Refunds over $40 are refused (a refused
/// refund leaves the money history, so a later one on the same order is alone there), and
/// an agent's refunds over $15 need a team lead (the operator's role decides).
const DRAFT_RULES: &str = r#"
[[rules]]
id = "refund.never-over-40"
reason = "No refund over $40"
actions = ["refund_partial"]
decision = "forbid"
amount_over = "40.00 USD"

[[rules]]
id = "refund.agents-over-15"
reason = "An agent's refunds over $15 need a team lead"
actions = ["refund_partial"]
decision = "supervisor"
roles = ["agent"]
amount_over = "15.00 USD"
"#;

enum Act {
    As(&'static str, &'static str),
    Pause,
    Clear,
    Process(Box<CaseFile>),
}

const EMMA: &str = "emma_santos_9753";

/// One desk's afternoon, as both runs work it.
fn script() -> Vec<Act> {
    vec![
        Act::As("agent-1", "agent"),
        // $45: the agent's click under the demo; refused under the draft.
        Act::Process(Box::new(refund_case("r1", EMMA, "#W3113816", "45.00"))),
        Act::As("lead-1", "team_lead"),
        // $20 on the same order: $65 on it under the demo (a click); alone under the draft.
        Act::Process(Box::new(refund_case("r2", EMMA, "#W3113816", "20.00"))),
        Act::As("agent-1", "agent"),
        // $20 on another order: runs on its own under the demo; an agent's over $15 under the draft.
        Act::Process(Box::new(refund_case("r3", EMMA, "#W1539823", "20.00"))),
        // Refunds paused: $10 is refused under both, though the draft alone would run it.
        Act::Pause,
        Act::Process(Box::new(refund_case("r4", EMMA, "#W1539823", "10.00"))),
        Act::Clear,
        Act::As("lead-1", "team_lead"),
        Act::Process(Box::new(refund_case("r5", EMMA, "#W1539823", "10.00"))),
    ]
}

type Outcomes = BTreeMap<(String, String, String), Outcome>;

fn work(e: &mut Engine) -> Outcomes {
    let mut out = Outcomes::new();
    let mut pause = None;
    for act in script() {
        match act {
            Act::As(id, role) => as_role(e, id, role),
            Act::Pause => pause = Some(e.pause_set(PauseScope::Action, "refund_partial", "audit").unwrap().id),
            Act::Clear => e.pause_clear(&pause.take().unwrap(), "audit done").unwrap(),
            Act::Process(file) => {
                let d = e.process_verified(&file.case, &file.plan).unwrap();
                for s in d.steps {
                    out.insert((d.case_id.clone(), d.plan_id.clone(), s.step_id), s.decision);
                }
            }
        }
    }
    out
}

fn outcome(o: &Outcomes, case: &str) -> Outcome {
    o[&(case.to_string(), format!("{case}-p"), "s1".to_string())]
}

#[test]
fn a_simulation_equals_processing_the_cases_afresh_under_the_draft() {
    let recorded_dir = tempfile::tempdir().unwrap();
    let mut recording = open(recorded_dir.path());
    let recorded = work(&mut recording);

    let draft_ws = workspace_copy(|p| format!("{p}\n{DRAFT_RULES}"), "");
    let fresh_dir = tempfile::tempdir().unwrap();
    let mut fresh = open_at(&draft_ws.path().join("workspace.toml"), fresh_dir.path());
    let afresh = work(&mut fresh);

    // The script does what it is for: each case shows one input at work.
    assert_eq!((outcome(&recorded, "r1"), outcome(&afresh, "r1")), (Outcome::Confirm, Outcome::Forbid));
    assert_eq!((outcome(&recorded, "r2"), outcome(&afresh, "r2")), (Outcome::Confirm, Outcome::Auto), "history");
    assert_eq!((outcome(&recorded, "r3"), outcome(&afresh, "r3")), (Outcome::Auto, Outcome::Supervisor), "role");
    assert_eq!((outcome(&recorded, "r4"), outcome(&afresh, "r4")), (Outcome::Forbid, Outcome::Forbid), "pause");
    assert_eq!(outcome(&afresh, "r5"), Outcome::Auto, "the draft runs $10 from a lead once the pause is cleared");

    let draft = read_draft(&draft_ws.path().join("policy.toml")).unwrap();
    let simulated = recording.simulate(&draft, None).unwrap();
    let replayed: BTreeMap<_, _> = simulated
        .simulation
        .steps
        .iter()
        .map(|s| ((s.case_id.clone(), s.plan_id.clone(), s.step_id.clone()), (s.before, s.after)))
        .collect();
    let expected: BTreeMap<_, _> = recorded.iter().map(|(k, before)| (k.clone(), (*before, afresh[k]))).collect();
    assert_eq!(replayed, expected);

    let r = &simulated.report;
    assert_eq!((r.decisions, r.steps, r.changed, r.without_inputs), (5, 5, 3, 0));
    assert!(r.unreplayable.is_empty(), "{:?}", r.unreplayable);
    assert_eq!(r.draft.hash, draft.hash);
    assert_eq!(
        r.money_without_a_human,
        vec![countersign_core::Money::from_json(&json!({"amount": "20.00", "currency": "USD"})).unwrap()]
    );
    let role = r.rules.iter().find(|x| x.rule == "rule.refund.agents-over-15").unwrap();
    assert_eq!(role.starts.len(), 1);
    assert_eq!(role.starts[0].samples[0].case_id, "r3");
    assert_eq!(simulated.digest, r.digest());
}

#[test]
fn replaying_the_policy_in_force_changes_nothing_and_a_case_file_edited_between_runs_is_replayed_as_decided() {
    let dir = tempfile::tempdir().unwrap();
    let mut e = open(dir.path());
    work(&mut e);
    // The same case id planned again after its file changed (another order): the
    // decision carries the case it decided on.
    let mut edited = refund_case("r1", EMMA, "#W1539823", "5.00");
    edited.plan.id = "r1-p2".into();
    edited.case.messages[0].text = "One more scratch, on the other order.".into();
    e.process_verified(&edited.case, &edited.plan).unwrap();

    let current = read_draft(&assets().join("demo/policy.toml")).unwrap();
    let r = e.simulate(&current, None).unwrap().report;
    assert_eq!((r.decisions, r.steps, r.changed), (6, 6, 0), "{r:#?}");
    assert!(r.unreplayable.is_empty(), "{:?}", r.unreplayable);
}
