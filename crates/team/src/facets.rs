//! What the lead's team view filters on, derived from each verified event: the cases a
//! desk opened (with their tenant), the steps it decided, and how each went. Pure: the
//! projection ([`crate::project`]) writes what this derives in the batch's transaction.

use std::collections::BTreeMap;

use countersign_core::evidence::{Event, StepOutcome, Verdict};
use jiff::Timestamp;

/// Text as the team's store keeps it (see `project::pg_text`).
fn clean(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

/// A case a desk opened or received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseFacet {
    pub device: String,
    pub case_id: String,
    pub tenant: String,
    pub channel: String,
    pub at: Timestamp,
}

/// A step a desk decided, under the pack it then ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFacet {
    pub device: String,
    pub plan_id: String,
    pub step_id: String,
    pub case_id: Option<String>,
    pub action: String,
    pub decision: String,
    pub agent: String,
    pub pack: Option<(String, u64)>,
    /// An agent edited it (a step of a revision the agent made, with a value they typed).
    pub edited: bool,
    pub at: Timestamp,
    /// The rules that fired on it, and those that set its outcome, space-separated.
    pub fired: String,
    pub rules: String,
}

/// A promise a desk's sent reply made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseFacet {
    pub category: String,
    /// Who sent the reply.
    pub agent: String,
    pub owner: String,
    pub due: jiff::civil::Date,
    pub at: Timestamp,
}

/// A lead's verdict on an escalated case, as recorded at their desk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictFacet {
    pub team: String,
    pub by: String,
    /// The key that signed it (lower-case hex).
    pub key: String,
    pub right: bool,
    pub at: Timestamp,
}

/// What the projection carries along each desk's chain for its steps' rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeskFacts {
    /// The pack it decides under: its last `policy_loaded` (`None`: unsigned).
    pub pack: Option<(String, u64)>,
    /// Who sat at the desk when it last gathered a case's facts (the actor of its last
    /// `context_read`; a `decided` event's own actor is the policy).
    pub agent: Option<String>,
    /// The desk's last plan revision an agent made by editing, and the steps of it with a
    /// value the agent typed: (plan, steps).
    pub edited: Option<(String, Vec<String>)>,
}

/// The kinds [`Facets::take`] derives from or carries along (the projection reads no other
/// event into its type for the view). Kept beside `take`'s arms.
const DERIVED_FROM: [&str; 14] = [
    "case_opened",
    "case_received",
    "decided",
    "review_decided",
    "step_finished",
    "step_settled",
    "step_retried",
    "promise_made",
    "promise_checked",
    "escalation_judged",
    "context_read",
    "plan_proposed",
    "step_invalidated",
    "policy_loaded",
];

/// Does [`Facets::take`] use an event of `kind`?
pub fn derives_from(kind: &str) -> bool {
    DERIVED_FROM.contains(&kind)
}

/// Rule ids as one space-separated text, each once (a space in a desk's id would split it).
fn rule_list<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for id in ids {
        let id = clean(id).replace(char::is_whitespace, "_");
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    seen.join(" ")
}

/// An event of a kind [`derives_from`] names, typed from its payload text as far as the
/// view needs it: a decision without its recorded inputs (the facts and passages a
/// simulation replays, which the view never reads), skipped unread.
pub fn read(kind: &str, payload: &str) -> Result<Event, serde_json::Error> {
    if kind == "decided" {
        #[derive(serde::Deserialize)]
        struct Decision {
            decision: countersign_core::PlanDecision,
        }
        let d: Decision = serde_json::from_str(payload)?;
        return Ok(Event::Decided { decision: d.decision, inputs: None });
    }
    Event::from_text(kind, payload)
}

/// What one batch derives, in event order; each key's last change wins.
#[derive(Debug, Default)]
pub struct Facets {
    pub cases: BTreeMap<(String, String), CaseFacet>,
    pub steps: BTreeMap<(String, String, String), StepFacet>,
    /// (device, plan, step) → (when, the last review) and (when, the last end).
    pub reviews: BTreeMap<(String, String, String), (Timestamp, &'static str, String)>,
    pub ends: BTreeMap<(String, String, String), (Timestamp, Option<String>)>,
    /// Cases an escalation signal handed to a human: (device, case).
    pub escalated: std::collections::BTreeSet<(String, String)>,
    /// (device, case, plan, promise) → the promise, and → (when, how) its check went.
    pub promises: BTreeMap<(String, String, String, String), PromiseFacet>,
    pub promise_checks: BTreeMap<(String, String, String, String), (Timestamp, &'static str)>,
    /// (the case's desk, case, the recording desk) → the verdict.
    pub verdicts: BTreeMap<(String, String, String), VerdictFacet>,
}

impl Facets {
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
            && self.steps.is_empty()
            && self.reviews.is_empty()
            && self.ends.is_empty()
            && self.escalated.is_empty()
            && self.promises.is_empty()
            && self.promise_checks.is_empty()
            && self.verdicts.is_empty()
    }

    /// Take in one verified event of `device`, whose chain stood at `desk` before it
    /// (updated by it).
    pub fn take(
        &mut self,
        device: &str,
        at: Timestamp,
        case_id: Option<&str>,
        actor: &str,
        event: &Event,
        desk: &mut DeskFacts,
    ) {
        // Keys as PostgreSQL will store them (NUL becomes U+FFFD there), so two ids that
        // differ only there are one row here too, and one statement never meets a key twice.
        let key = |plan: &str, step: &str| (device.to_string(), clean(plan), clean(step));
        match event {
            Event::CaseOpened { case } | Event::CaseReceived { case, .. } => {
                let channel = serde_json::to_value(case.channel)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                self.cases.entry((device.to_string(), clean(&case.id))).or_insert_with(|| CaseFacet {
                    device: device.to_string(),
                    case_id: clean(&case.id),
                    tenant: case.tenant.clone(),
                    channel,
                    at,
                });
            }
            Event::Decided { decision, .. } => {
                if decision.handoff {
                    self.escalated.insert((device.to_string(), clean(&decision.case_id)));
                }
                for s in &decision.steps {
                    let k = key(&decision.plan_id, &s.step_id);
                    // Decided again (under a new policy): how it went before no longer holds.
                    self.reviews.remove(&k);
                    self.ends.remove(&k);
                    self.steps.insert(
                        k,
                        StepFacet {
                            device: device.to_string(),
                            plan_id: clean(&decision.plan_id),
                            step_id: clean(&s.step_id),
                            case_id: case_id.map(str::to_string).or_else(|| Some(decision.case_id.clone())),
                            action: s.action.clone(),
                            decision: s.decision.as_str().to_string(),
                            agent: desk.agent.clone().unwrap_or_else(|| actor.to_string()),
                            pack: desk.pack.clone(),
                            edited: desk
                                .edited
                                .as_ref()
                                .is_some_and(|(plan, steps)| *plan == decision.plan_id && steps.contains(&s.step_id)),
                            at,
                            fired: rule_list(s.rule_ids.iter()),
                            rules: rule_list(s.reasons.iter().filter(|r| r.decision == s.decision).map(|r| &r.rule)),
                        },
                    );
                }
            }
            // The engine ended the review (an approval expired, or the step was decided
            // again): no person's answer, so an approval given before stays the verdict,
            // and the step ends without running.
            Event::ReviewDecided { plan_id, step_id, reason, by_engine: true, .. } => {
                let end =
                    if reason == countersign_engine::execute::APPROVAL_EXPIRED { "expired" } else { "superseded" };
                self.ends.insert(key(plan_id, step_id), (at, Some(end.to_string())));
            }
            Event::ReviewDecided { plan_id, step_id, verdict, by, .. } => {
                let verdict = match verdict {
                    Verdict::Approved => "approved",
                    Verdict::Rejected => "rejected",
                };
                self.reviews.insert(key(plan_id, step_id), (at, verdict, by.id.clone()));
            }
            Event::StepFinished { plan_id, step_id, outcome, .. } => {
                let outcome = match outcome {
                    StepOutcome::Succeeded => "succeeded",
                    StepOutcome::Failed => "failed",
                    StepOutcome::Unknown => "unknown",
                    StepOutcome::NeedsHuman => "needs_human",
                };
                self.ends.insert(key(plan_id, step_id), (at, Some(outcome.to_string())));
            }
            Event::StepSettled { plan_id, step_id, applied, .. } => {
                let outcome = if *applied { "settled_applied" } else { "settled_not_applied" };
                self.ends.insert(key(plan_id, step_id), (at, Some(outcome.to_string())));
            }
            Event::StepRetried { plan_id, step_id, .. } => {
                self.ends.insert(key(plan_id, step_id), (at, None));
            }
            Event::PromiseMade { plan_id, promise_id, category, due, owner, .. } => {
                let case = clean(case_id.unwrap_or_default());
                self.promises.insert(
                    (device.to_string(), case, clean(plan_id), clean(promise_id)),
                    PromiseFacet {
                        category: countersign_engine::views::snake(category),
                        agent: clean(actor),
                        owner: clean(owner),
                        due: *due,
                        at,
                    },
                );
            }
            Event::PromiseChecked { plan_id, promise_id, outcome, .. } => {
                let case = clean(case_id.unwrap_or_default());
                self.promise_checks
                    .insert((device.to_string(), case, clean(plan_id), clean(promise_id)), (at, outcome.as_str()));
            }
            // Counted by the key that signed it, once the signature holds for this very verdict.
            Event::EscalationJudged { verdict, signed } => {
                let key = countersign_trust::keys::PublicKey::from_hex(&signed.key, "").ok();
                let holds = key.is_some_and(|k| {
                    countersign_trust::team::open::<countersign_core::team::EscalationVerdict>(
                        countersign_trust::team::VERDICT_DOMAIN,
                        signed,
                        std::slice::from_ref(&k),
                    )
                    .is_ok_and(|(_, body)| body == *verdict)
                });
                if holds {
                    self.verdicts.insert(
                        (clean(&verdict.desk), clean(&verdict.case_id), device.to_string()),
                        VerdictFacet {
                            team: clean(&verdict.team),
                            by: clean(&verdict.by),
                            key: signed.key.to_ascii_lowercase(),
                            right: verdict.right,
                            at: verdict.at,
                        },
                    );
                }
            }
            Event::ContextRead { .. } => desk.agent = Some(actor.to_string()),
            Event::PlanProposed { plan } => {
                desk.edited = (plan.planner == countersign_engine::cases::AGENT_EDIT).then(|| {
                    let typed = |st: &countersign_core::model::Step| {
                        st.params.values().any(|p| p.source == countersign_core::model::Provenance::Agent)
                    };
                    (plan.id.clone(), plan.steps.iter().filter(|st| typed(st)).map(|st| st.id.clone()).collect())
                });
            }
            // Decided again under another plan or policy: it will not run as it was.
            Event::StepInvalidated { plan_id, step_id, .. } => {
                self.ends.insert(key(plan_id, step_id), (at, Some("superseded".to_string())));
            }
            Event::PolicyLoaded { pack: loaded, policy_id, version, signed, .. } => {
                desk.pack = match loaded {
                    Some(p) => Some((p.id.clone(), p.version)),
                    None if !signed => None,
                    None => Some((policy_id.clone(), *version)),
                };
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use countersign_core::evidence::PackRef;
    use countersign_core::model::Operator;

    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn a_step_carries_the_pack_its_desk_ran_then_and_its_last_review_and_end() {
        let mut f = Facets::default();
        let mut desk = DeskFacts::default();
        let loaded = Event::PolicyLoaded {
            policy_id: "p".into(),
            version: 3,
            hash: "h".into(),
            signed: true,
            pack: Some(PackRef {
                id: "retail".into(),
                version: 7,
                key_id: "k".into(),
                digest: "d".into(),
                simulation: None,
            }),
        };
        f.take("desk-1", t("2026-12-03T10:00:00Z"), None, "system", &loaded, &mut desk);
        assert_eq!(desk.pack, Some(("retail".into(), 7)));
        let read = Event::ContextRead { orders: vec![], fields: vec![], customers: vec![], identity: None };
        f.take("desk-1", t("2026-12-03T10:00:30Z"), Some("c-1"), "agent-1", &read, &mut desk);
        let decided: Event = serde_json::from_value(serde_json::json!({
            "kind": "decided",
            "payload": {"decision": {
                "plan_id": "plan-1", "case_id": "c-1", "policy_id": "p", "policy_version": 3,
                "policy_hash": "h", "handoff": false, "signals": [],
                "steps": [{"step_id": "s1", "action": "refund_partial", "decision": "supervisor",
                           "reasons": [], "rule_ids": [], "step_digest": "x",
                           "approver_roles": [], "may_read": []}]
            }}
        }))
        .unwrap_or_else(|e| panic!("a decided event: {e}"));
        f.take("desk-1", t("2026-12-03T10:01:00Z"), Some("c-1"), "policy", &decided, &mut desk);
        let reviewed = Event::ReviewDecided {
            plan_id: "plan-1".into(),
            step_id: "s1".into(),
            step_digest: "x".into(),
            policy_hash: "h".into(),
            verdict: Verdict::Rejected,
            by: Operator { id: "lead-1".into(), role: "team_lead".into() },
            reason: "no".into(),
            grant: None,
            by_engine: false,
        };
        f.take("desk-1", t("2026-12-03T10:02:00Z"), Some("c-1"), "lead-1", &reviewed, &mut desk);
        let k = ("desk-1".to_string(), "plan-1".to_string(), "s1".to_string());
        let step = &f.steps[&k];
        assert_eq!(
            (step.action.as_str(), step.decision.as_str(), step.agent.as_str(), step.pack.clone()),
            ("refund_partial", "supervisor", "agent-1", Some(("retail".to_string(), 7)))
        );
        assert_eq!(f.reviews[&k].1, "rejected");
        // The engine ending the review later is no person's answer: the verdict stays.
        let review = |verdict: Verdict, by_engine: bool, reason: &str| Event::ReviewDecided {
            plan_id: "plan-1".into(),
            step_id: "s1".into(),
            step_digest: "x".into(),
            policy_hash: "h".into(),
            verdict,
            by: Operator { id: "lead-1".into(), role: "team_lead".into() },
            reason: reason.into(),
            grant: None,
            by_engine,
        };
        let ended = |reason: &str| review(Verdict::Rejected, true, reason);
        let approved = review(Verdict::Approved, false, "fine");
        f.take("desk-1", t("2026-12-03T10:02:10Z"), Some("c-1"), "lead-1", &approved, &mut desk);
        f.take(
            "desk-1",
            t("2026-12-03T10:02:20Z"),
            Some("c-1"),
            "agent-1",
            &ended(countersign_engine::execute::APPROVAL_EXPIRED),
            &mut desk,
        );
        assert_eq!((f.reviews[&k].1, f.ends[&k].1.as_deref()), ("approved", Some("expired")));
        f.take(
            "desk-1",
            t("2026-12-03T10:02:30Z"),
            Some("c-1"),
            "agent-1",
            &ended("decided under another policy version"),
            &mut desk,
        );
        assert_eq!((f.reviews[&k].1, f.ends[&k].1.as_deref()), ("approved", Some("superseded")));
        // Decided again: the earlier review no longer holds.
        f.take("desk-1", t("2026-12-03T10:03:00Z"), Some("c-1"), "policy", &decided, &mut desk);
        assert!(f.reviews.is_empty());
        assert!(!f.steps[&k].edited, "the planner's plan, not an edit");
    }

    #[test]
    fn a_verdict_counts_by_the_key_that_signed_it_and_only_as_signed() {
        let key = countersign_trust::keys::SecretKey::generate().unwrap_or_else(|e| panic!("{e}"));
        let verdict = countersign_core::team::EscalationVerdict {
            team: "acme".into(),
            desk: "agent-desk".into(),
            case_id: "c-1".into(),
            right: false,
            reason: "no threat".into(),
            by: "lead-1".into(),
            at: t("2026-12-03T10:00:00Z"),
        };
        let signed = countersign_trust::team::sign(countersign_trust::team::VERDICT_DOMAIN, &verdict, &key)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut f = Facets::default();
        let mut desk = DeskFacts::default();
        // The event says "right" where the signed body says not.
        let altered = countersign_core::team::EscalationVerdict { right: true, ..verdict.clone() };
        let event = Event::EscalationJudged { verdict: altered, signed: signed.clone() };
        f.take("lead-desk", verdict.at, Some("c-1"), "lead-1", &event, &mut desk);
        assert!(f.verdicts.is_empty(), "an altered verdict counts for nothing");
        let event = Event::EscalationJudged { verdict: verdict.clone(), signed };
        f.take("lead-desk", verdict.at, Some("c-1"), "lead-1", &event, &mut desk);
        let k = ("agent-desk".to_string(), "c-1".to_string(), "lead-desk".to_string());
        assert_eq!((f.verdicts[&k].right, f.verdicts[&k].key.clone()), (false, key.public("").to_hex()));
    }

    #[test]
    fn a_decision_is_read_without_its_recorded_inputs_and_other_kinds_whole() {
        let decision = serde_json::json!({
            "plan_id": "plan-1", "case_id": "c-1", "policy_id": "p", "policy_version": 3,
            "policy_hash": "h", "handoff": true, "signals": [], "steps": []
        });
        let with_inputs = serde_json::json!({"decision": decision, "inputs": {"facts": {"now": "x"}, "digest": "d"}});
        let Ok(Event::Decided { decision: got, inputs }) = read("decided", &with_inputs.to_string()) else {
            panic!("a decision with inputs reads")
        };
        assert!(got.handoff && inputs.is_none());
        let judged = read("escalation_judged", "{}");
        assert!(judged.is_err(), "other kinds are read whole, and checked");
    }

    #[test]
    fn the_kinds_it_derives_from_are_kinds_of_event() {
        let schema = include_str!("../../../docs/schemas/evidence-event.schema.json");
        for kind in DERIVED_FROM {
            assert!(schema.contains(&format!("\"{kind}\"")), "{kind} is no kind of event");
        }
        assert!(!derives_from("identity_checked") && !derives_from("step_started"));
    }
}
