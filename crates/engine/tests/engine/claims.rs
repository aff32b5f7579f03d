//! The say layer through the real engine: the demo knowledge base indexed in a SQLite
//! workspace, a reply's claims checked against the text of the passages it cites, as the
//! index holds them — from a plan file, from a planning run, and as the agent edits it.

use countersign_core::claims::ClaimStatus;
use countersign_core::model::{Case, Citation, Plan, ReplyDraft};
use countersign_planner::{Planner, PlannerError, PlanningContext};

use super::*;

const FAITHFUL: &str = "Hi Evelyn,\nYou can return the notebook within 30 days of delivery. [1]\nBest regards";
const DECOY: &str = "Hi Evelyn,\nYou can return the notebook within 30 minutes of delivery. [1]\nBest regards";
const DECOY_SENTENCE: &str = "You can return the notebook within 30 minutes of delivery. [1]";

fn window() -> Citation {
    Citation {
        article_id: "returns-window".into(),
        version: Some("3".into()),
        anchor: Some("the-30-day-window".into()),
        quote: "A return must be requested within **30 days of delivery**.".into(),
    }
}

/// The demo's return case with a plan that only replies.
fn reply_plan(id: &str, text: &str, citations: Vec<Citation>) -> (Case, Plan) {
    let file = demo_case("08-return-delivered");
    let plan = Plan {
        id: id.into(),
        case_id: file.case.id.clone(),
        planner: "scripted".into(),
        intent: "return".into(),
        steps: vec![],
        reply: Some(ReplyDraft { text: text.into(), citations }),
        signals: Vec::new(),
    };
    (file.case, plan)
}

#[test]
fn a_decoy_draft_goes_to_review_with_its_sentence_marked_and_a_faithful_one_stays_auto() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());

    let (case, faithful) = reply_plan("plan-faithful", FAITHFUL, vec![window()]);
    let d = e.process(&case, &faithful).unwrap();
    let reply = d.reply.unwrap();
    assert_eq!(reply.decision, Outcome::Auto, "a draft its cited passage backs goes out: {:?}", reply.reasons);
    assert_eq!(reply.claims.len(), 1, "{:?}", reply.claims);
    assert_eq!(reply.claims[0].status, ClaimStatus::Supported);
    assert_eq!(reply.claims[0].citation.as_deref(), Some("[1] returns-window#the-30-day-window"));

    // The same citation, with its true quote: the draft says 30 minutes, the passage 30 days.
    let (case, decoy) = reply_plan("plan-decoy", DECOY, vec![window()]);
    let d = e.process(&case, &decoy).unwrap();
    let reply = d.reply.unwrap();
    assert_eq!(reply.decision, Outcome::Confirm, "{:?}", reply.reasons);
    assert!(reply.unresolved_citations.is_empty(), "the citation itself resolves");
    let c = &reply.claims[0];
    assert_eq!((c.claim.as_str(), c.status), ("30 minutes", ClaimStatus::Unsupported), "{c:?}");
    assert_eq!(c.sentence, DECOY_SENTENCE);
    assert_eq!(&DECOY[c.start..c.end], DECOY_SENTENCE, "the span marks the sentence in the draft");
    assert!(reply.rule_ids.contains(&"reply.claim-unsupported".to_string()), "{:?}", reply.rule_ids);

    // The recorded decision carries the marked sentence: the case screen shows it.
    let decided = e.log_list(&LogFilter { kind: Some("decided".into()), ..LogFilter::default() }).unwrap();
    assert!(
        decided.iter().any(|ev| ev.body.contains("30 minutes") && ev.body.contains("\"claims\"")),
        "the evidence records the claim checks"
    );

    // The agent edits the faithful draft into a decoy: checked as typed, the sentence marked
    // in the editor's own (UTF-16) offsets, the reason shown.
    let typed = "Hi Évelyne,\nReturns are free, any time. [1]\nBest regards";
    let check = e.check_reply_view(&case.id, "plan-faithful", typed).unwrap();
    assert_eq!(check.decision, Outcome::Confirm, "{:?}", check.reasons);
    let flagged: Vec<(&str, &str)> = check.claims.iter().map(|c| (c.claim.as_str(), c.status.as_str())).collect();
    assert_eq!(flagged, [("free", "unsupported"), ("any time", "contradicted")], "{:?}", check.claims);
    let utf16: Vec<u16> = typed.encode_utf16().collect();
    let marked = String::from_utf16(&utf16[check.claims[0].start as usize..check.claims[0].end as usize]).unwrap();
    assert_eq!(marked, "Returns are free, any time. [1]");
    assert!(check.claims[1].reason.contains("[1] returns-window#the-30-day-window"), "{}", check.claims[1].reason);
    let back = e.check_reply_view(&case.id, "plan-faithful", FAITHFUL).unwrap();
    assert_eq!(back.decision, Outcome::Auto, "{:?}", back.reasons);

    // Sending the decoy as if it were auto is refused: the decision at send time counts.
    let err = e.send_reply(&case, "plan-faithful", typed, Outcome::Auto, None).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Conflict, "{err}");
}

#[test]
fn a_claim_only_the_drafts_own_quote_states_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    // The model quotes the status rules passage truthfully, and says 60 days in its text:
    // the quote is model output and supports nothing; the passage does not say 60 days.
    let status_rules = Citation {
        article_id: "returns-window".into(),
        version: Some("3".into()),
        anchor: Some("status-rules".into()),
        quote: "Only orders in **delivered** status can be returned.".into(),
    };
    let (case, plan) =
        reply_plan("plan-sixty", "Delivered orders can be returned for 60 days. [1]", vec![status_rules]);
    let reply = e.process(&case, &plan).unwrap().reply.unwrap();
    assert_eq!(reply.decision, Outcome::Confirm, "{:?}", reply.reasons);
    assert_eq!(reply.claims[0].status, ClaimStatus::Unsupported, "{:?}", reply.claims);
}

/// A planner that searches the knowledge base like the local one and drafts `text`,
/// citing the passage its search returned.
#[derive(Debug)]
struct Drafter {
    text: &'static str,
}

impl Planner for Drafter {
    fn name(&self) -> &str {
        "drafter"
    }

    fn plan(&self, case: &Case, ctx: &dyn PlanningContext) -> Result<Plan, PlannerError> {
        let hits = ctx.search("return window 30 days", 8)?;
        let p = hits.iter().find(|p| p.anchor == "the-30-day-window").expect("the search finds the window");
        let (_, mut plan) = reply_plan(&format!("plan-{}", self.text.len()), self.text, vec![]);
        plan.case_id = case.id.clone();
        plan.reply = Some(ReplyDraft {
            text: self.text.into(),
            citations: vec![Citation {
                article_id: p.article_id.clone(),
                version: Some(p.version.clone()),
                anchor: Some(p.anchor.clone()),
                quote: "A return must be requested within **30 days of delivery**.".into(),
            }],
        });
        Ok(plan)
    }
}

#[test]
fn a_planning_run_checks_claims_against_the_passages_its_search_returned() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let (case, _) = reply_plan("unused", "", vec![]);

    let planned = e.plan_case(&case, &Drafter { text: FAITHFUL }).unwrap();
    let reply = e.process_planned(&case, &planned).unwrap().reply.unwrap();
    assert_eq!(reply.decision, Outcome::Auto, "{:?}", reply.reasons);
    assert_eq!(reply.claims[0].status, ClaimStatus::Supported);

    let planned = e.plan_case(&case, &Drafter { text: DECOY }).unwrap();
    let reply = e.process_planned(&case, &planned).unwrap().reply.unwrap();
    assert_eq!(reply.decision, Outcome::Confirm, "{:?}", reply.reasons);
    assert_eq!(reply.claims[0].sentence, DECOY_SENTENCE);
    assert_eq!(reply.claims[0].status, ClaimStatus::Unsupported);
}
