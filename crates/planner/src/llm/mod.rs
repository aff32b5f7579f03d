//! LLM planners: a hosted or local language model proposes the plan.
//!
//! Two wire dialects: [`OpenAiPlanner`] speaks OpenAI-compatible chat completions
//! (OpenAI, Azure OpenAI, Ollama, vLLM, the llama.cpp server) and [`AnthropicPlanner`]
//! speaks the Anthropic Messages API. Both share one loop:
//!
//! 1. the first request carries a system prompt (the rules, the action catalog) and the
//!    case: structured fields as JSON, the customer's text and the knowledge passages an
//!    initial search returned **fenced as data** (see `llm/prompt.rs`);
//! 2. the model may call tools: `search_knowledge` and the policy's *read* actions, which
//!    the planner runs through the [`PlanningContext`] (so the engine governs and records
//!    them) and feeds back, fenced, for at most [`LlmConfig::max_tool_rounds`] rounds;
//!    write actions are never tools, only steps the model proposes;
//! 3. the answer is a plan proposal in a JSON Schema ([`proposal::proposal_schema`]):
//!    OpenAI's `response_format: json_schema`, Anthropic's forced `submit_plan` tool;
//! 4. the proposal is mapped into a [`Plan`]. Every failure on the way is a specific
//!    [`PlannerError`] (malformed JSON, schema mismatch, refusal, truncated stream,
//!    timeout, HTTP status), never a panic.
//!
//! What the model says stays untrusted: action names and parameters it invents are kept
//! in the plan as proposed, so the policy forbids them (deny by default) and the evidence
//! shows the attempt; citations and provenance claims are checked by the engine.
//!
//! Answers are streamed (server-sent events) and reassembled; a stream that ends without
//! its end marker (`[DONE]`, `message_stop`) or stops at the token limit is
//! [`PlannerError::Truncated`]. Requests are retried only on transient failures:
//! connection errors, 502/503/504/529, and 429 when it says (in `Retry-After`) how long to
//! wait. A 4xx, a timeout or a bad answer is never retried.
//!
//! The API key is read from the credential store (the OS keyring) at each plan, held in a
//! [`Secret`], and sent in one header marked sensitive; errors scrub it from any text a
//! provider echoes back, and no `Debug` output here prints it.

/// The [`crate::Planner`] of a planner over one dialect: its name, and the loop the
/// dialects share ([`run`]) over its configuration. The type has `name` and `config`.
macro_rules! dialect_planner {
    ($planner:ty) => {
        impl $crate::Planner for $planner {
            fn name(&self) -> &str {
                &self.name
            }

            fn plan(
                &self,
                case: &countersign_core::model::Case,
                ctx: &dyn $crate::PlanningContext,
            ) -> Result<countersign_core::model::Plan, $crate::PlannerError> {
                $crate::llm::run(self, &self.config, &self.name, case, ctx)
            }
        }
    };
}

mod anthropic;
mod openai;
mod prompt;
pub mod proposal;
mod sse;
mod tools;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use countersign_connectors::credentials::{CredentialName, CredentialStore, Secret};
use countersign_core::model::{Case, Plan};
use serde_json::Value;

use crate::{PlannerError, PlanningContext};

pub use anthropic::AnthropicPlanner;
pub use openai::OpenAiPlanner;
pub use transport::is_credential_header;

/// Where the API key comes from: a named credential in a [`CredentialStore`].
#[derive(Debug, Clone)]
pub struct ApiKey {
    store: Arc<dyn CredentialStore>,
    name: CredentialName,
}

impl ApiKey {
    pub fn new(store: Arc<dyn CredentialStore>, name: CredentialName) -> ApiKey {
        ApiKey { store, name }
    }

    pub fn name(&self) -> &CredentialName {
        &self.name
    }

    fn read(&self, provider: &str) -> Result<Secret, PlannerError> {
        self.store
            .get(&self.name)
            .map_err(|e| PlannerError::Credential { provider: provider.to_string(), message: e.to_string() })
    }
}

/// How to reach a model. Built with [`LlmConfig::new`], then adjusted field by field.
#[derive(Clone)]
pub struct LlmConfig {
    /// The API root: `https://api.openai.com/v1`, `http://localhost:11434/v1` (Ollama),
    /// `https://RESOURCE.openai.azure.com` (Azure), `https://api.anthropic.com`.
    pub base_url: String,
    /// The model name (for Azure: the deployment name).
    pub model: String,
    /// `None` for local servers that want no key.
    pub api_key: Option<ApiKey>,
    /// Extra headers sent with every request (an organisation id, a gateway's routing
    /// header). Not for secrets: their values may appear in configuration files, and the
    /// headers that carry credentials ([`is_credential_header`]) are refused.
    pub headers: Vec<(String, String)>,
    /// The whole request, from connecting to the last byte of the stream.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after a transient failure (so at most `1 + max_retries` attempts).
    pub max_retries: u32,
    /// The first wait between attempts; doubled after each.
    pub backoff: Duration,
    /// The longest `Retry-After` worth waiting for; a longer one fails at once.
    pub max_retry_after: Duration,
    /// Rounds in which the model may call tools before it must answer.
    pub max_tool_rounds: usize,
    /// The answer's token limit (Anthropic requires one; OpenAI-compatible servers get
    /// `max_tokens` only when this is set).
    pub max_tokens: Option<u32>,
    /// Knowledge passages searched for up front and shown with the case.
    pub initial_passages: usize,
}

impl LlmConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> LlmConfig {
        LlmConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            headers: Vec::new(),
            timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            max_retries: 2,
            backoff: Duration::from_millis(500),
            max_retry_after: Duration::from_secs(30),
            max_tool_rounds: 4,
            max_tokens: None,
            initial_passages: 5,
        }
    }

    pub fn with_api_key(mut self, key: ApiKey) -> LlmConfig {
        self.api_key = Some(key);
        self
    }
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values are left out: configuration is not the place for secrets, but a
        // header is where someone would put one anyway.
        let headers: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|k| k.name.to_string()))
            .field("headers", &headers)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("max_tool_rounds", &self.max_tool_rounds)
            .finish_non_exhaustive()
    }
}

/// A tool call the model made.
#[derive(Debug, Clone)]
pub(crate) struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as the model wrote them (JSON text, not yet checked).
    pub arguments: String,
}

/// What the planner sends back for one tool call.
#[derive(Debug, Clone)]
pub(crate) struct ToolResult {
    pub content: String,
    pub is_error: bool,
}

/// One model turn.
#[derive(Debug)]
pub(crate) enum Turn {
    /// The model called tools; the turn is already in the transcript.
    Calls(Vec<ToolCall>),
    /// The model's final answer: the proposal as JSON text.
    Answer(String),
}

/// The part of a planner that knows one wire format.
pub(crate) trait Dialect {
    fn provider(&self) -> &str;
    /// Send the conversation and read the answer. On [`Turn::Calls`] the model's turn is
    /// appended to `messages`. `tools_allowed` is false on the last round.
    fn turn(
        &self,
        key: Option<&Secret>,
        system: &str,
        messages: &mut Vec<Value>,
        tools: &tools::Tools,
        tools_allowed: bool,
    ) -> Result<Turn, PlannerError>;
    /// Append the results of the calls of the last turn.
    fn push_results(&self, messages: &mut Vec<Value>, calls: &[ToolCall], results: &[ToolResult]);
    /// How the system prompt tells the model to hand in its plan.
    fn answer_instruction(&self) -> &'static str;
}

/// More calls than this in one turn are answered with an error, not run.
const MAX_CALLS_PER_ROUND: usize = 8;

/// The loop both planners share: prompt, tool rounds, answer, plan.
pub(crate) fn run(
    dialect: &dyn Dialect,
    config: &LlmConfig,
    planner: &str,
    case: &Case,
    ctx: &dyn PlanningContext,
) -> Result<Plan, PlannerError> {
    let key = config.api_key.as_ref().map(|k| k.read(dialect.provider())).transpose()?;
    let tools = tools::Tools::new(ctx.actions());
    let fence = prompt::Fence::for_case(case);
    let passages = match prompt::initial_query(case) {
        Some(q) if config.initial_passages > 0 => ctx.search(&q, config.initial_passages)?,
        _ => Vec::new(),
    };
    let system = prompt::system_prompt(&fence, ctx.actions(), &tools, dialect.answer_instruction());
    let mut messages =
        vec![serde_json::json!({"role": "user", "content": prompt::case_message(&fence, case, &passages)})];
    for round in 0..=config.max_tool_rounds {
        let tools_allowed = round < config.max_tool_rounds;
        match dialect.turn(key.as_ref(), &system, &mut messages, &tools, tools_allowed)? {
            Turn::Answer(text) => {
                let proposal = proposal::parse_answer(&text)?;
                return Ok(proposal.into_plan(case, planner));
            }
            Turn::Calls(calls) => {
                if !tools_allowed {
                    return Err(PlannerError::TooManyRounds { rounds: config.max_tool_rounds });
                }
                tracing::debug!(provider = dialect.provider(), round, calls = calls.len(), "model called tools");
                let results: Vec<ToolResult> = calls
                    .iter()
                    .enumerate()
                    .map(|(i, call)| {
                        if i < MAX_CALLS_PER_ROUND {
                            tools.run(call, ctx, &fence)
                        } else {
                            ToolResult {
                                content: format!("not run: at most {MAX_CALLS_PER_ROUND} tool calls per turn"),
                                is_error: true,
                            }
                        }
                    })
                    .collect();
                dialect.push_results(&mut messages, &calls, &results);
            }
        }
    }
    Err(PlannerError::TooManyRounds { rounds: config.max_tool_rounds })
}
