//! The plan proposal: what the model is asked to return, its JSON Schema, and how it
//! becomes a [`Plan`].
//!
//! The proposal is smaller than a [`Plan`]: the model does not choose ids, the case or
//! its own name, and it is not asked for a risk opinion. The schema is written for
//! OpenAI's strict structured output (every property required, optional ones nullable,
//! no free-form objects), so a parameter list stands where a plan has a map, and a value
//! is a string, an integer, a boolean, a list of strings, money or an address. Nulls
//! inside a value (an absent `address2`) are dropped when it is mapped.
//!
//! Action names and parameter names are **not** checked against the catalog here: an
//! unknown action stays in the plan, the policy forbids it (deny by default), and the
//! evidence shows the attempt. What is rejected here is what cannot be a plan at all.

use std::collections::BTreeMap;

use countersign_core::model::{Case, Citation, FlaggedSignal, Param, Plan, Provenance, ReplyDraft, Step};
use countersign_core::policy::SignalCategory;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::transport::shorten;
use crate::PlannerError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    pub intent: String,
    pub steps: Vec<ProposedStep>,
    pub reply: Option<ProposedReply>,
    /// Escalations the model noticed. They can only add signals to the decision (a
    /// handoff), never remove one; an answer without them has none.
    #[serde(default)]
    pub signals: Vec<ProposedSignal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedSignal {
    /// A signal category; a name the policy does not know counts as `other` (still a handoff).
    pub category: String,
    #[serde(default)]
    pub reason: String,
}

impl ProposedSignal {
    fn flag(&self) -> FlaggedSignal {
        let category = SignalCategory::ALL
            .into_iter()
            .find(|c| c.as_str() == self.category.trim())
            .unwrap_or(SignalCategory::Other);
        FlaggedSignal { category, reason: shorten(self.reason.trim(), 300) }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedStep {
    pub action: String,
    pub params: Vec<ProposedParam>,
    #[serde(default)]
    pub rationale: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedParam {
    pub name: String,
    pub value: Value,
    pub source: Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedReply {
    pub text: String,
    pub citations: Vec<ProposedCitation>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposedCitation {
    pub article_id: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub anchor: Option<String>,
    pub quote: String,
}

/// The JSON Schema of a [`Proposal`], strict-mode compatible.
pub fn proposal_schema() -> Value {
    let money = json!({
        "type": "object",
        "properties": {"amount": {"type": "string"}, "currency": {"type": "string"}},
        "required": ["amount", "currency"],
        "additionalProperties": false
    });
    let field = json!({"type": "string"});
    let address = json!({
        "type": "object",
        "properties": {
            "address1": field, "address2": {"type": ["string", "null"]}, "city": field,
            "state": field, "zip": field, "country": field
        },
        "required": ["address1", "address2", "city", "state", "zip", "country"],
        "additionalProperties": false
    });
    let sources = ["connector", "agent", "policy", "customer_message", "order_note", "article", "model"];
    json!({
        "type": "object",
        "properties": {
            "intent": {"type": "string", "description": "the workflow, snake_case"},
            "steps": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "action": {"type": "string", "description": "an action name from the catalog"},
                        "params": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "name": {"type": "string"},
                                    "value": {"anyOf": [
                                        {"type": "string"},
                                        {"type": "integer"},
                                        {"type": "boolean"},
                                        {"type": "array", "items": {"type": "string"}},
                                        money,
                                        address
                                    ]},
                                    "source": {"type": "string", "enum": sources}
                                },
                                "required": ["name", "value", "source"],
                                "additionalProperties": false
                            }
                        },
                        "rationale": {"type": ["string", "null"]}
                    },
                    "required": ["action", "params", "rationale"],
                    "additionalProperties": false
                }
            },
            "reply": {
                "anyOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "properties": {
                            "text": {"type": "string"},
                            "citations": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "article_id": {"type": "string"},
                                        "version": {"type": ["string", "null"]},
                                        "anchor": {"type": ["string", "null"]},
                                        "quote": {"type": "string"}
                                    },
                                    "required": ["article_id", "version", "anchor", "quote"],
                                    "additionalProperties": false
                                }
                            }
                        },
                        "required": ["text", "citations"],
                        "additionalProperties": false
                    }
                ]
            },
            "signals": {
                "type": "array",
                "description": "escalations a person must handle, noticed in the customer's words; [] if none",
                "items": {
                    "type": "object",
                    "properties": {
                        "category": {"type": "string", "enum": SignalCategory::ALL.map(SignalCategory::as_str)},
                        "reason": {"type": "string"}
                    },
                    "required": ["category", "reason"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["intent", "steps", "reply", "signals"],
        "additionalProperties": false
    })
}

/// Steps beyond this many make a proposal schema-invalid (a plan is a handful of steps).
const MAX_STEPS: usize = 20;

/// Parse the model's answer text into a proposal.
///
/// - prose where JSON was asked for (the answer does not start like JSON) is a refusal;
/// - text that starts like JSON but does not parse is [`PlannerError::Malformed`];
/// - JSON that is not a proposal is [`PlannerError::SchemaInvalid`].
pub fn parse_answer(text: &str) -> Result<Proposal, PlannerError> {
    let body = strip_code_fence(text.trim());
    if body.is_empty() {
        return Err(PlannerError::Malformed("the answer is empty".into()));
    }
    if !body.starts_with('{') && !body.starts_with('[') {
        return Err(PlannerError::Refused(format!("the model answered in prose: {}", shorten(body, 300))));
    }
    let value: Value = serde_json::from_str(body).map_err(|e| PlannerError::Malformed(e.to_string()))?;
    if !value.is_object() {
        return Err(PlannerError::SchemaInvalid("the answer is not a JSON object".into()));
    }
    let proposal: Proposal = serde_json::from_value(value).map_err(|e| PlannerError::SchemaInvalid(e.to_string()))?;
    proposal.check()?;
    Ok(proposal)
}

/// A model without structured output may wrap its JSON in a Markdown code fence.
fn strip_code_fence(text: &str) -> &str {
    let Some(rest) = text.strip_prefix("```") else {
        return text;
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

impl Proposal {
    fn check(&self) -> Result<(), PlannerError> {
        let bad = |m: String| Err(PlannerError::SchemaInvalid(m));
        let intent = self.intent.trim();
        if intent.is_empty()
            || intent.len() > 64
            || !intent.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return bad(format!("intent {:?} is not a snake_case name", shorten(intent, 80)));
        }
        if self.steps.len() > MAX_STEPS {
            return bad(format!("{} steps; a plan has at most {MAX_STEPS}", self.steps.len()));
        }
        for (i, step) in self.steps.iter().enumerate() {
            if step.action.trim().is_empty() {
                return bad(format!("step {} names no action", i + 1));
            }
            let mut seen = std::collections::BTreeSet::new();
            for p in &step.params {
                if p.name.trim().is_empty() {
                    return bad(format!("step {} ({}) has a parameter without a name", i + 1, step.action));
                }
                // A map cannot hold both; keeping one would silently drop the other.
                if !seen.insert(p.name.as_str()) {
                    return bad(format!("step {} ({}) gives parameter {} twice", i + 1, step.action, p.name));
                }
            }
        }
        if let Some(reply) = &self.reply {
            if reply.text.trim().is_empty() {
                return bad("the reply draft is empty".into());
            }
            if let Some(c) = reply.citations.iter().find(|c| c.article_id.trim().is_empty()) {
                return bad(format!("a citation names no article (quote {:?})", shorten(&c.quote, 80)));
            }
        }
        Ok(())
    }

    /// The plan: steps numbered `s1`, `s2`…, parameters keyed by name with the source the
    /// model claimed (the engine checks it), and an id derived from the case and the content.
    pub fn into_plan(self, case: &Case, planner: &str) -> Plan {
        let steps: Vec<Step> = self
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, s)| Step {
                id: format!("s{}", i + 1),
                action: s.action,
                params: s
                    .params
                    .into_iter()
                    .map(|p| (p.name, Param { value: drop_nulls(p.value), source: p.source }))
                    .collect::<BTreeMap<_, _>>(),
                rationale: s.rationale.filter(|r| !r.trim().is_empty()),
                planner_risk: None,
            })
            .collect();
        let reply = self.reply.map(|r| ReplyDraft {
            text: r.text,
            citations: r
                .citations
                .into_iter()
                .map(|c| Citation {
                    article_id: c.article_id,
                    version: c.version.filter(|v| !v.trim().is_empty()),
                    anchor: c.anchor.filter(|a| !a.trim().is_empty()).map(|a| a.trim_start_matches('#').to_string()),
                    quote: c.quote,
                })
                .collect(),
        });
        let mut signals: Vec<FlaggedSignal> = Vec::new();
        for f in self.signals.iter().map(ProposedSignal::flag) {
            if !signals.iter().any(|s| s.category == f.category) {
                signals.push(f);
            }
        }
        let mut plan = Plan {
            id: String::new(),
            case_id: case.id.clone(),
            planner: planner.to_string(),
            intent: self.intent.trim().to_string(),
            steps,
            signals,
            reply,
        };
        // A plan's id covers its flags too (when it has any, so earlier ids stay): the same
        // steps with a flag are another plan, decided again, never the earlier decision.
        let content = if plan.signals.is_empty() {
            serde_json::to_vec(&(&plan.case_id, &plan.intent, &plan.steps, &plan.reply))
        } else {
            serde_json::to_vec(&(&plan.case_id, &plan.intent, &plan.steps, &plan.reply, &plan.signals))
        }
        .unwrap_or_default();
        plan.id = format!("{}-llm-{}", case.id, &hex::encode(Sha256::digest(&content))[..16]);
        plan
    }
}

/// Strict schemas make optional fields nullable; an absent field is what a null means.
fn drop_nulls(value: Value) -> Value {
    match value {
        Value::Object(m) => {
            Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k, drop_nulls(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(drop_nulls).collect()),
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_classified() {
        assert!(matches!(parse_answer("I'm sorry, I can't help with that."), Err(PlannerError::Refused(_))));
        assert!(matches!(parse_answer("{\"intent\": \"refund\", \"steps\": ["), Err(PlannerError::Malformed(_))));
        assert!(matches!(parse_answer("{\"intent\": \"refund\"}"), Err(PlannerError::SchemaInvalid(_))));
        assert!(matches!(parse_answer("   "), Err(PlannerError::Malformed(_))));
        let fenced = "```json\n{\"intent\": \"order_status\", \"steps\": [], \"reply\": null}\n```";
        assert!(parse_answer(fenced).is_ok(), "a code-fenced JSON answer is accepted");
    }

    #[test]
    fn duplicate_params_are_rejected_not_dropped() {
        let text = r##"{"intent":"refund","steps":[{"action":"refund_partial","rationale":null,"params":[
            {"name":"order_id","value":"#W1","source":"connector"},
            {"name":"order_id","value":"#W2","source":"customer_message"}]}],"reply":null}"##;
        assert!(matches!(parse_answer(text), Err(PlannerError::SchemaInvalid(m)) if m.contains("twice")));
    }

    #[test]
    fn flags_become_plan_signals_and_change_the_plan_id() {
        let case: Case = serde_json::from_value(json!({"id": "c1", "tenant": "t", "store": "s", "platform": "p",
            "channel": "chat", "customer": null, "messages": []}))
        .unwrap_or_else(|e| panic!("{e}"));
        let plain = r#"{"intent":"order_status","steps":[],"reply":null}"#;
        let flagged = r#"{"intent":"order_status","steps":[],"reply":null,"signals":[
            {"category":"self_harm","reason":"says they want to disappear"},
            {"category":"self_harm","reason":"twice"},
            {"category":"blackmail","reason":"not a category"}]}"#;
        let a = parse_answer(plain).unwrap_or_else(|e| panic!("{e}")).into_plan(&case, "llm:test");
        let b = parse_answer(flagged).unwrap_or_else(|e| panic!("{e}")).into_plan(&case, "llm:test");
        assert!(a.signals.is_empty(), "an answer without flags has none");
        let cats: Vec<SignalCategory> = b.signals.iter().map(|s| s.category).collect();
        assert_eq!(
            cats,
            [SignalCategory::SelfHarm, SignalCategory::Other],
            "one per category; unknown names are `other`"
        );
        assert_ne!(a.id, b.id, "the flags are part of what the plan id covers");
    }

    /// `docs/schemas/plan-proposal.schema.json` is what the models are sent; regenerate it
    /// with `UPDATE_SCHEMAS=1 cargo test -p countersign-planner --lib proposal`.
    #[test]
    fn the_documented_proposal_schema_is_the_one_sent() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/schemas/plan-proposal.schema.json");
        let mut schema = proposal_schema();
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        schema["title"] = json!("PlanProposal");
        let text = serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n";
        if std::env::var_os("UPDATE_SCHEMAS").is_some() {
            assert!(std::fs::write(&path, &text).is_ok(), "write {}", path.display());
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(on_disk == text, "{} is out of date: run with UPDATE_SCHEMAS=1", path.display());
    }

    proptest::proptest! {
        /// No answer text makes the parser panic: it is a proposal or a typed error.
        #[test]
        fn any_answer_is_a_proposal_or_an_error(text in "\\PC{0,200}") {
            let _ = parse_answer(&text);
        }

        /// JSON-shaped noise is classified, never a panic.
        #[test]
        fn json_shaped_answers_are_classified(text in r#"[{}\[\]",:a-z0-9 ]{0,120}"#) {
            let _ = parse_answer(&format!("{{{text}"));
        }
    }
}
