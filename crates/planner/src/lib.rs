//! # countersign-planner
//!
//! Planners propose; the policy decides. A [`Planner`] turns a case into a
//! [`Plan`] — steps, a reply draft, citations — and nothing it returns is
//! trusted: the engine validates it and the policy decides every step.
//!
//! **Architecture invariants:**
//! - A planner never sees the policy's decision function and cannot mark anything as
//!   approved; its output type has no field that could carry an authorisation.
//! - A planner sees the platform and the knowledge base only through the
//!   [`PlanningContext`] the engine hands it: knowledge search, and the policy's *read*
//!   actions through the connector. The engine records what it returned; a citation must
//!   point at a passage the context returned, and a parameter that claims to come from the
//!   connector must carry a value a read returned (see `countersign_engine::planning`).
//!
//! Planners: [`RecordedPlanner`] replays plans recorded beside sample cases; the local
//! playbook planner and the LLM planners ([`llm`]: [`OpenAiPlanner`], [`AnthropicPlanner`])
//! implement the same trait.

mod context;
pub mod llm;
pub mod local;

use std::collections::BTreeMap;

use countersign_core::model::{Case, Plan};

pub use crate::context::{ActionInfo, ActionKind, ContextError, Passage, PlanningContext};
pub use crate::llm::{AnthropicPlanner, ApiKey, LlmConfig, OpenAiPlanner};
pub use crate::local::LocalPlanner;

/// Why a planner produced no plan.
#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    #[error("no plan for case {0}")]
    NoPlan(String),
    /// The planning context (knowledge search, a connector read) failed.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The planner is configured wrongly (a bad base URL, a header that is not one).
    #[error("planner configuration: {0}")]
    Config(String),
    /// The API key could not be read from the credential store.
    #[error("{provider}: {message}")]
    Credential { provider: String, message: String },
    /// The provider could not be reached, or its stream failed (after the retries a
    /// transient failure earns).
    #[error("{provider} is unavailable: {message}")]
    Unavailable { provider: String, message: String },
    /// The provider answered with an error status that retrying would not fix.
    #[error("{provider} answered HTTP {status}: {message}")]
    Http { provider: String, status: u16, message: String },
    /// No answer within the configured timeout.
    #[error("{provider} did not answer within {millis} ms")]
    Timeout { provider: String, millis: u64 },
    /// The answer is not JSON (or not a JSON object).
    #[error("the model's answer is not valid JSON: {0}")]
    Malformed(String),
    /// The answer is JSON but not a plan proposal.
    #[error("the model's answer does not match the plan proposal schema: {0}")]
    SchemaInvalid(String),
    /// The model declined to plan (a refusal field or stop reason, a content filter, or
    /// prose where a plan was asked for).
    #[error("the model refused to plan: {0}")]
    Refused(String),
    /// The answer was cut off: the stream ended early or hit the token limit.
    #[error("the model's answer was cut off: {0}")]
    Truncated(String),
    /// The model kept calling tools after the last round allowed them.
    #[error("the model was still calling tools after {rounds} rounds")]
    TooManyRounds { rounds: usize },
}

/// Proposes a plan for a case.
pub trait Planner: Send + Sync + std::fmt::Debug {
    /// A short name recorded with the plan (`recorded`, `local`, `llm:openai`…).
    fn name(&self) -> &str;
    fn plan(&self, case: &Case, ctx: &dyn PlanningContext) -> Result<Plan, PlannerError>;
}

/// Replays plans recorded for known cases (sample cases, regression fixtures).
#[derive(Debug, Default, Clone)]
pub struct RecordedPlanner {
    plans: BTreeMap<String, Plan>,
}

impl RecordedPlanner {
    pub fn new(plans: impl IntoIterator<Item = Plan>) -> RecordedPlanner {
        RecordedPlanner { plans: plans.into_iter().map(|p| (p.case_id.clone(), p)).collect() }
    }
}

impl Planner for RecordedPlanner {
    fn name(&self) -> &str {
        "recorded"
    }

    fn plan(&self, case: &Case, _ctx: &dyn PlanningContext) -> Result<Plan, PlannerError> {
        self.plans.get(&case.id).cloned().ok_or_else(|| PlannerError::NoPlan(case.id.clone()))
    }
}
