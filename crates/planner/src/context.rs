//! What a planner may look at while planning: the engine implements [`PlanningContext`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A knowledge passage retrieval returned: the only text a plan may cite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    pub article_id: String,
    pub version: String,
    pub title: String,
    /// The section's anchor (slug of its heading).
    pub anchor: String,
    pub heading: String,
    /// The whole section text (Markdown).
    pub text: String,
    /// Relevance within one search, higher is better.
    pub score: f64,
}

/// Whether an action only reads or changes platform state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Read,
    Write,
}

/// An action a plan may propose, described from the policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionInfo {
    pub name: String,
    pub summary: String,
    pub kind: ActionKind,
    /// A JSON Schema (`type: object`) of the action's parameters.
    pub params_schema: Value,
}

/// Why the context could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("knowledge search failed: {0}")]
    Search(String),
    #[error("{action} is not a read action; a planner may only read while planning")]
    NotARead { action: String },
    #[error("the policy does not let a planner run {action} now (`{decision}`): {reason}")]
    Refused { action: String, decision: String, reason: String },
    #[error("reading {action} failed: {message}")]
    Read { action: String, message: String },
}

/// The engine's side of planning. Everything it returns is data, never instructions.
pub trait PlanningContext {
    /// The actions the policy knows, reads and writes.
    fn actions(&self) -> &[ActionInfo];

    /// Knowledge passages for `query`, best first (at most `limit`).
    fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>, ContextError>;

    /// Run a read action through the connector. `Ok(None)` when the platform has no such
    /// record. Writes are refused ([`ContextError::NotARead`]).
    fn read(&self, action: &str, params: &Map<String, Value>) -> Result<Option<Value>, ContextError>;
}
