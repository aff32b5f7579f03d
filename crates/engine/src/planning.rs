//! Planning: a planner proposes a plan for a case through a [`PlanningContext`] the
//! engine implements, and the engine checks what came back before the policy decides.
//!
//! The context is governed like everything else:
//! - **reads** while planning are steps too: each one is decided by the policy (as a
//!   one-step plan on this case, so ownership preconditions, identity rules, provenance and
//!   pauses apply) and runs only when the policy says `auto`; anything else is refused to
//!   the planner, which may still *propose* the read as a step for a person to confirm.
//!   The response is cut down to the fields the policy lets that action read, and every
//!   read — run or refused — is evidence (`planning_read`) before the planner sees it;
//! - **knowledge search** results are remembered: a citation in the draft must point at a
//!   passage the search returned (article, version, section) and quote its text.
//!
//! After planning, parameter provenance is checked against what the reads returned: a
//! parameter that claims to come from the connector (or the agent, or the policy) but
//! whose value no read returned and the case does not carry is downgraded to `model`
//! provenance, so the policy's provenance rule sees it for what it is. (A plan from
//! outside the engine is not checked but re-derived: see [`crate::provenance`].)

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use countersign_core::decide::CitationFact;
use countersign_core::evidence::Event;
use countersign_core::model::{Case, Citation, Param, Plan, Provenance, Step};
use countersign_core::policy::{Kind, Policy};
use countersign_core::{Outcome, decide_scanned};
use countersign_planner::{ActionInfo, ActionKind, ContextError, Passage, Planner, PlanningContext};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::knowledge::normalize_quote;
use crate::{Engine, EngineError};

/// How many passages one search may return at most.
pub const MAX_SEARCH_RESULTS: usize = 20;

/// A plan together with what the planner saw while making it.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedCase {
    pub plan: Plan,
    /// Every passage a search returned, keyed `article#anchor`.
    pub passages: Vec<Passage>,
    /// Every read the planner asked for, in order.
    pub reads: Vec<PlanningRead>,
    /// Parameters whose claimed provenance no read backed, downgraded to `model`:
    /// `step_id.param`.
    pub downgraded: Vec<String>,
}

/// One read a planner asked for while planning.
#[derive(Debug, Clone, Serialize)]
pub struct PlanningRead {
    pub action: String,
    pub params: Map<String, Value>,
    /// `read`, `not_found`, `refused` or `failed`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The fields the policy let the planner see (`None` unless the read ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
}

/// The actions a plan may propose, described from the policy.
pub fn action_infos(policy: &Policy) -> Vec<ActionInfo> {
    policy
        .actions
        .values()
        .map(|def| ActionInfo {
            name: def.name.clone(),
            summary: def.summary.clone(),
            kind: match def.kind {
                Kind::Read => ActionKind::Read,
                _ => ActionKind::Write,
            },
            params_schema: countersign_core::policy::params_json_schema(def),
        })
        .collect()
}

struct Recorder<'a> {
    engine: &'a Engine,
    case: &'a Case,
    actions: Vec<ActionInfo>,
    passages: Mutex<BTreeMap<(String, String), Passage>>,
    reads: Mutex<Vec<PlanningRead>>,
}

impl Recorder<'_> {
    fn record(&self, read: PlanningRead) -> Result<(), ContextError> {
        let event = Event::PlanningRead {
            action: read.action.clone(),
            params: Value::Object(read.params.clone()),
            outcome: read.outcome.clone(),
            detail: read.detail.clone(),
            response: read.response.clone(),
        };
        self.engine
            .append(Some(&self.case.id), &self.engine.operator.id, event)
            .map_err(|e| ContextError::Read { action: read.action.clone(), message: e.to_string() })?;
        if let Ok(mut reads) = self.reads.lock() {
            reads.push(read);
        }
        Ok(())
    }

    /// The provenance of a read parameter: structured when the case carries the value or
    /// an earlier read returned it, otherwise text lifted from the conversation.
    fn provenance(&self, value: &Value) -> Provenance {
        let structured = match self.reads.lock() {
            Ok(reads) => carried(value, &reads, self.case),
            Err(_) => carried(value, &[], self.case),
        };
        if structured { Provenance::Connector } else { Provenance::CustomerMessage }
    }
}

impl PlanningContext for Recorder<'_> {
    fn actions(&self) -> &[ActionInfo] {
        &self.actions
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>, ContextError> {
        let hits = self
            .engine
            .kb_search(query, limit.min(MAX_SEARCH_RESULTS))
            .map_err(|e| ContextError::Search(e.to_string()))?;
        let found: Vec<Passage> = hits
            .into_iter()
            .map(|h| Passage {
                article_id: h.article_id,
                version: h.version.to_string(),
                title: h.title,
                anchor: h.anchor,
                heading: h.heading,
                text: h.text,
                score: h.score,
            })
            .collect();
        if let Ok(mut seen) = self.passages.lock() {
            for p in &found {
                seen.insert((p.article_id.clone(), p.anchor.clone()), p.clone());
            }
        }
        Ok(found)
    }

    fn read(&self, action: &str, params: &Map<String, Value>) -> Result<Option<Value>, ContextError> {
        let policy = self.engine.policy();
        let Some(def) = policy.actions.get(action).filter(|d| d.kind == Kind::Read) else {
            return Err(ContextError::NotARead { action: action.to_string() });
        };
        let step = Step {
            id: "planning-read".into(),
            action: action.to_string(),
            params: params
                .iter()
                .map(|(k, v)| (k.clone(), Param { value: v.clone(), source: self.provenance(v) }))
                .collect(),
            rationale: None,
            planner_risk: None,
        };
        let probe = Plan {
            id: "planning".into(),
            case_id: self.case.id.clone(),
            planner: "planning".into(),
            intent: "planning".into(),
            steps: vec![step],
            signals: Vec::new(),
            reply: None,
        };
        let mut read = PlanningRead {
            action: action.to_string(),
            params: params.clone(),
            outcome: String::new(),
            detail: None,
            response: None,
        };
        let decision = self.engine.gather_facts(self.case, &probe).and_then(|facts| {
            Ok(decide_scanned(&policy, self.case, &probe, &facts, &self.engine.case_scan(self.case))?)
        });
        let decision = match decision {
            Ok(d) => d,
            Err(e) => {
                read.outcome = "failed".into();
                read.detail = Some(e.to_string());
                let message = e.to_string();
                self.record(read)?;
                return Err(ContextError::Read { action: action.to_string(), message });
            }
        };
        let Some(step) = decision.steps.first() else {
            return Err(ContextError::Read { action: action.to_string(), message: "no decision".into() });
        };
        if step.decision != Outcome::Auto {
            let why = step.reasons.first().map(|r| r.text.clone()).unwrap_or_default();
            read.outcome = "refused".into();
            read.detail = Some(format!("the policy says `{}`: {why}", step.decision));
            self.record(read)?;
            return Err(ContextError::Refused {
                action: action.to_string(),
                decision: step.decision.to_string(),
                reason: why,
            });
        }
        match self.engine.running().connector.call(action, params, None) {
            Ok(call) => {
                let visible = visible_fields(&call.response, &def.reads);
                read.outcome = "read".into();
                read.response = Some(visible.clone());
                self.record(read)?;
                Ok(Some(visible))
            }
            Err(countersign_connectors::ConnectorError::Rejected { status: 404, message, .. }) => {
                read.outcome = "not_found".into();
                read.detail = Some(message);
                self.record(read)?;
                Ok(None)
            }
            Err(e) => {
                read.outcome = "failed".into();
                read.detail = Some(e.to_string());
                let message = e.to_string();
                self.record(read)?;
                Err(ContextError::Read { action: action.to_string(), message })
            }
        }
    }
}

/// The part of a read's response the policy lets the action read: top-level fields
/// named in its `reads` list (`order.status` → `status`), plus identifiers (`*_id`,
/// `*_ids`). A response that is a list, or a list of records under another name, is
/// filtered record by record.
pub fn visible_fields(response: &Value, reads: &[String]) -> Value {
    let allowed: BTreeSet<&str> = reads.iter().filter_map(|r| r.split_once('.').map(|(_, f)| f)).collect();
    let keep = |k: &str| {
        allowed.contains(k)
            || k == "id"
            || k.ends_with("_id")
            || k.ends_with("_ids")
            || allowed.iter().any(|a| k.starts_with(&format!("{a}_")) || k.ends_with(&format!("_{a}")))
    };
    match response {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter_map(|(k, v)| match v {
                    _ if keep(k) => Some((k.clone(), v.clone())),
                    // A list of records under another name (`product_types`): the records
                    // are kept, each cut down to the allowed fields.
                    Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_object) => {
                        Some((k.clone(), visible_fields(v, reads)))
                    }
                    _ => None,
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| visible_fields(v, reads)).collect()),
        other => other.clone(),
    }
}

/// Does `value` (a parameter value) come from something a read returned, or from the
/// case's structured fields? The one test of [`crate::provenance::backed`].
fn backed(value: &Value, reads: &[PlanningRead], case: &Case) -> bool {
    crate::provenance::backed(value, &|v| carried(v, reads, case))
}

/// Is `value` carried by the case's structured fields (its orders, its customer) or by
/// something a read returned?
fn carried(value: &Value, reads: &[PlanningRead], case: &Case) -> bool {
    let in_case = value
        .as_str()
        .is_some_and(|s| case.order_ids.iter().any(|o| o == s) || case.customer.as_ref().is_some_and(|c| c.id == s));
    in_case
        || reads.iter().filter_map(|r| r.response.as_ref()).any(|resp| crate::provenance::contains_value(resp, value))
}

/// Each citation of the planned draft checked against the passages its searches returned.
fn planned_citations(planned: &PlannedCase) -> Vec<CitationFact> {
    let passages: BTreeMap<(String, String), Passage> =
        planned.passages.iter().map(|p| ((p.article_id.clone(), p.anchor.clone()), p.clone())).collect();
    planned.plan.reply.iter().flat_map(|r| r.citations.iter()).map(|c| check_citation(c, &passages)).collect()
}

/// Check a citation against the passages retrieval returned.
pub fn check_citation(citation: &Citation, passages: &BTreeMap<(String, String), Passage>) -> CitationFact {
    let label = match &citation.anchor {
        Some(a) => format!("{}#{a}", citation.article_id),
        None => citation.article_id.clone(),
    };
    let candidates: Vec<&Passage> = passages
        .values()
        .filter(|p| p.article_id == citation.article_id)
        .filter(|p| citation.anchor.as_ref().is_none_or(|a| &p.anchor == a))
        .collect();
    let unresolved = |detail: String| CitationFact { label: label.clone(), resolved: false, detail, passage: None };
    if candidates.is_empty() {
        return unresolved(format!("{label} is not a passage the knowledge search returned for this case"));
    }
    if let Some(v) = &citation.version
        && candidates.iter().all(|p| p.version != v.trim())
    {
        return unresolved(format!("{label} was returned at version {}, the citation says {v}", candidates[0].version));
    }
    let quote = normalize_quote(&citation.quote);
    if quote.is_empty() {
        return unresolved(format!("{label}: the citation quotes nothing, so nothing shows what it relies on"));
    }
    // The passage's text is what the search returned from the index: the claims of the
    // draft are checked against it, never against the quote.
    if let Some(p) = candidates.iter().find(|p| normalize_quote(&p.text).contains(&quote)) {
        CitationFact { label, resolved: true, detail: String::new(), passage: Some(p.text.clone()) }
    } else {
        unresolved(format!("the quoted text is not in {label}"))
    }
}

impl Engine {
    /// Ask `planner` for a plan for `case`, through a context that governs its reads and
    /// remembers what it retrieved; then check the plan's provenance claims. Nothing is
    /// decided yet: pass the result to [`Engine::process_planned`].
    pub fn plan_case(&self, case: &Case, planner: &dyn Planner) -> Result<PlannedCase, EngineError> {
        let running = self.running();
        let recorder = Recorder {
            engine: self,
            case,
            actions: action_infos(&running.policy),
            passages: Mutex::new(BTreeMap::new()),
            reads: Mutex::new(Vec::new()),
        };
        let mut plan = planner
            .plan(case, &recorder)
            .map_err(|e| EngineError::Planner { planner: planner.name().to_string(), message: e.to_string() })?;
        plan.planner = planner.name().to_string();
        // A model may answer null for a value it left empty.
        let mut plan = countersign_core::validate::without_nulls(&running.policy, &plan);
        let reads = recorder.reads.into_inner().unwrap_or_default();
        let passages = recorder.passages.into_inner().unwrap_or_default();
        let mut downgraded = Vec::new();
        for step in &mut plan.steps {
            for (name, param) in &mut step.params {
                if param.source.is_trusted() && !backed(&param.value, &reads, case) {
                    param.source = Provenance::Model;
                    downgraded.push(format!("{}.{name}", step.id));
                }
            }
        }
        Ok(PlannedCase { plan, passages: passages.into_values().collect(), reads, downgraded })
    }

    /// Decide and record a planned case: like [`Engine::process`], with the draft's
    /// citations checked against the passages the planner's searches returned.
    pub fn process_planned(
        &self,
        case: &Case,
        planned: &PlannedCase,
    ) -> Result<countersign_core::decide::PlanDecision, EngineError> {
        self.process_with(case, &planned.plan, Some(planned_citations(planned)), crate::provenance::Origin::Engine)
    }

    /// The policy's decision on a planned case. Records nothing.
    pub fn decide_planned(
        &self,
        case: &Case,
        planned: &PlannedCase,
    ) -> Result<countersign_core::decide::PlanDecision, EngineError> {
        let running = self.running();
        let mut facts = self.gather_facts(case, &planned.plan)?;
        facts.citations = planned_citations(planned);
        Ok(decide_scanned(&running.policy, case, &planned.plan, &facts, &self.case_scan(case))?)
    }

    /// Citation facts for a plan that came without a planning run (a plan file, a recorded
    /// plan, a reply the agent edited): each citation is resolved against the knowledge
    /// index, and one that resolves carries its passage's text from the index (the whole
    /// article when it names no section and quotes nothing).
    pub(crate) fn index_citations(&self, plan: &Plan) -> Result<Vec<CitationFact>, EngineError> {
        let mut out = Vec::new();
        for c in plan.reply.iter().flat_map(|r| r.citations.iter()) {
            let article = self.store.kb_article(&c.article_id)?;
            let r = crate::knowledge::resolve_citation(c, article.as_ref());
            let passage = match (&r, &article) {
                (crate::knowledge::CitationResolution::Resolved { anchor, .. }, Some(a)) => Some(
                    a.passages
                        .iter()
                        .filter(|p| anchor.as_ref().is_none_or(|anchor| &p.anchor == anchor))
                        .map(|p| p.text.as_str())
                        .collect::<Vec<_>>()
                        .join("\n\n"),
                ),
                _ => None,
            };
            out.push(CitationFact {
                label: match &c.anchor {
                    Some(a) => format!("{}#{a}", c.article_id),
                    None => c.article_id.clone(),
                },
                resolved: r.is_resolved(),
                detail: if r.is_resolved() { String::new() } else { r.describe() },
                passage,
            });
        }
        Ok(out)
    }
}
