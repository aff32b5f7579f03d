//! Earned autonomy over a real log: steps decided, countersigned by several people (one
//! too fast), edited, rejected and run against the demo store on loopback, one reversed
//! by a lead; the record read back from the evidence, the proposals it makes, and each
//! proposal's draft simulated over the same log and saved for signing.

use std::collections::BTreeMap;

use countersign_core::autonomy::Direction;
use countersign_engine::simulate::read_report;

use super::*;

/// The demo policy with a bar a test reaches: loosen at 5 decisions, 75 % unchanged, 2
/// people; tighten at one reversal.
fn low_bar(p: String) -> String {
    let p = p
        .replacen("min_decisions = 200", "min_decisions = 5", 1)
        .replacen("min_unchanged_pct = 98", "min_unchanged_pct = 75", 1)
        .replacen("min_approvers = 5 ", "min_approvers = 2 ", 1)
        .replacen("min_reversals = 3", "min_reversals = 1", 1);
    assert!(p.contains("min_reversals = 1"));
    p
}

/// Delivered orders of the demo store, one refund each (no order total in the way).
const ORDERS: [(&str, &str); 9] = [
    ("chen_silva_7485", "#W3069600"),
    ("chen_silva_7485", "#W2598834"),
    ("chen_silva_7485", "#W8171054"),
    ("chen_silva_7485", "#W9571698"),
    ("yara_ito_8499", "#W1304208"),
    ("yara_ito_8499", "#W8353027"),
    ("yara_ito_8499", "#W1809337"),
    ("aarav_anderson_8794", "#W4316152"),
    ("aarav_anderson_8794", "#W9311069"),
];

fn engine_on(ws: &Path, data: &Path, clock: Arc<dyn Clock>) -> (Engine, DemoServer) {
    use countersign_connectors::credentials::{CredentialName, CredentialStore, KeyringStore, Secret};
    let token = "autonomy-test-token-71c0";
    let server = DemoServer::start(token);
    let keyring = Arc::new(KeyringStore::new(format!("countersign-autonomy-test-{}", std::process::id())));
    keyring.set(&CredentialName::new("demo_seller_center", "demo").unwrap(), &Secret::new(token)).unwrap();
    let catalog = countersign_connectors::Catalog::load(&assets().join("demo/catalog.toml")).unwrap();
    let connector = HttpConnector::new(catalog, keyring).unwrap().with_base_url(&server.server.url()).unwrap();
    let options = EngineOptions {
        workspace: ws.to_path_buf(),
        data_dir: data.to_path_buf(),
        operator: None,
        connector: Some(Arc::new(connector)),
    };
    (Engine::open(options, clock).unwrap(), server)
}

#[test]
fn the_record_of_a_real_log_proposes_a_simulated_draft_per_band_that_passes_a_bar() {
    let ws = workspace_copy(low_bar, "");
    let dir = tempfile::tempdir().unwrap();
    let clock = Movable::at("2026-11-21T10:00:00Z");
    let (mut e, _server) = engine_on(&ws.path().join("workspace.toml"), dir.path(), clock.clone());
    let approve = |e: &mut Engine, who: &str, case: &str, after: i64| {
        clock.advance(jiff::SignedDuration::from_secs(after));
        as_role(e, who, "agent");
        let plan = format!("{case}-p");
        e.review(&plan, "s1", Verdict::Approved, "checked the photos").unwrap();
        e.run_approved(case).unwrap();
    };
    // Six $30 refunds on email, each approved a minute after its decision by one of two
    // agents; a seventh approved after 2 s (a rubber stamp, by a third agent).
    for (i, (customer, order)) in ORDERS.iter().enumerate() {
        let case = format!("c{i}");
        as_role(&mut e, "agent-1", "agent");
        let file = refund_case(&case, customer, order, "30.00");
        let d = e.process_verified(&file.case, &file.plan).unwrap();
        assert_eq!(d.steps[0].decision, Outcome::Confirm);
        match i {
            0..=5 => approve(&mut e, ["agent-1", "agent-2"][i % 2], &case, 60),
            6 => approve(&mut e, "agent-3", &case, 2),
            // The eighth: an agent lowers the amount before approving it.
            7 => {
                clock.advance(jiff::SignedDuration::from_secs(90));
                let changes = BTreeMap::from([("amount".to_string(), "28.00 USD".to_string())]);
                let opened =
                    e.edit_step(&file.case, &file.plan.id, "s1", &changes, "the photos show one item").unwrap();
                e.review(&opened.plan.id, "s1", Verdict::Approved, "as edited").unwrap();
            }
            // The ninth: rejected.
            _ => {
                clock.advance(jiff::SignedDuration::from_secs(45));
                as_role(&mut e, "agent-2", "agent");
                e.review(&file.plan.id, "s1", Verdict::Rejected, "already refunded by the marketplace").unwrap();
            }
        }
        clock.advance(jiff::SignedDuration::from_mins(10));
    }
    // An $8 refund runs on its own, and a lead records that the bank reversed it.
    let small = refund_case("a0", "emma_santos_9753", "#W3113816", "8.00");
    assert_eq!(e.process_verified(&small.case, &small.plan).unwrap().steps[0].decision, Outcome::Auto);
    e.run_approved("a0").unwrap();
    // A lead proves it with their passphrase (the demo roster's lead): a role claimed at
    // the seat is not proof.
    let proof = |pass: &str| countersign_engine::Proof {
        id: "lead-demo".into(),
        passphrase: countersign_engine::Secret::new(pass),
    };
    as_role(&mut e, "lead-1", "team_lead");
    let err = e.record_reversal("a0-p", "s1", "the bank reversed it", &proof("a guess")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotPermitted, "{err}");
    let lead = proof("demo-lead-passphrase");
    assert_eq!(e.record_reversal("c8-p", "s1", "x", &lead).unwrap_err().code(), ErrorCode::Conflict, "c8 never ran");
    e.record_reversal("a0-p", "s1", "the customer's bank reversed the refund", &lead).unwrap();
    assert_eq!(e.record_reversal("a0-p", "s1", "again", &lead).unwrap_err().code(), ErrorCode::Conflict);

    let a = e.autonomy(Scope::Desk).unwrap();
    let band = |label: &str, decision: Outcome| {
        a.records.iter().find(|r| r.band_label == label && r.decision == decision).unwrap_or_else(|| panic!("{a:?}"))
    };
    let thirty = band("over 25.00 USD up to 50.00 USD", Outcome::Confirm);
    assert_eq!(thirty.channel, countersign_core::model::Channel::Email);
    assert_eq!(
        (thirty.decisions, thirty.unchanged, thirty.edited, thirty.rejected, thirty.rubber_stamps, thirty.approvers),
        (8, 6, 1, 1, 1, 2),
        "{thirty:?}"
    );
    let eight = band("up to 10.00 USD", Outcome::Auto);
    assert_eq!((eight.ran, eight.reversals), (1, 1));
    assert!(eight.reversed[0].why.contains("lead-demo recorded"), "{:?}", eight.reversed);

    let kinds: Vec<(Direction, &str)> =
        a.proposals.iter().map(|p| (p.proposal.direction, p.proposal.record.band_label.as_str())).collect();
    assert_eq!(
        kinds,
        vec![(Direction::Tighten, "up to 10.00 USD"), (Direction::Loosen, "over 25.00 USD up to 50.00 USD")],
        "in band order"
    );
    // The loosening's draft, replayed over this log: exactly the band's steps on email
    // would have run on their own, the rejected one too (it would have run before anyone
    // saw it). Not the agent's edited $28: the $30 it replaced would have run, and the two
    // on one order are over the $50 order total the draft keeps.
    let loosen = &a.proposals[1];
    let sim = loosen.simulation.as_ref().unwrap();
    let moved: Vec<(String, Outcome, Outcome)> = sim
        .simulation
        .steps
        .iter()
        .filter(|s| s.before != s.after)
        .map(|s| (s.case_id.clone(), s.before, s.after))
        .collect();
    let want: Vec<(String, Outcome, Outcome)> =
        (0..9).map(|i| (format!("c{i}"), Outcome::Confirm, Outcome::Auto)).collect();
    assert_eq!(moved, want, "{:#?}", sim.report);
    // The tightening's: the $8 refund on email would have waited for a person.
    let tighten = a.proposals[0].simulation.as_ref().unwrap();
    let waits: Vec<_> = tighten.simulation.steps.iter().filter(|s| s.before != s.after).collect();
    assert_eq!(waits.len(), 1);
    assert_eq!((waits[0].case_id.as_str(), waits[0].after), ("a0", Outcome::Confirm));

    // Saved for signing: the draft loads, and the report is the one shown.
    let out = tempfile::tempdir().unwrap();
    let saved = e.save_proposal(&loosen.proposal.key, Scope::Desk, out.path()).unwrap();
    let draft = countersign_engine::simulate::read_draft(Path::new(&saved.draft_file)).unwrap();
    assert_eq!(draft.version, 2);
    let report = read_report(Path::new(&saved.report_file)).unwrap();
    assert_eq!(report.digest(), saved.report_digest);
    assert_eq!(report.draft.hash, draft.hash);
    assert_eq!(e.save_proposal("nothing/here", Scope::Desk, out.path()).unwrap_err().code(), ErrorCode::NotFound);
    // Nothing changed by proposing: the policy in force is the same.
    assert_eq!(e.autonomy(Scope::Desk).unwrap().policy_version, 1);
    assert!(e.log_verify().unwrap().ok);
}
