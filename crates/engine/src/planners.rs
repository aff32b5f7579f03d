//! The planner a workspace configures (`[planner]` in `workspace.toml`), built once and
//! handed to [`Engine::plan_case`].
//!
//! LLM planners read their API key from the credential store at each plan, by the name
//! the configuration gives (`credential = "openai/default"`); the key itself is never in
//! the workspace file. Set it with `countersign credentials set openai/default`.

use std::sync::Arc;

use countersign_connectors::credentials::CredentialStore;
use countersign_planner::{AnthropicPlanner, ApiKey, LlmConfig, OpenAiPlanner, Planner};

use crate::workspace::{PlannerConfig, PlannerProvider};
use crate::{Engine, EngineError};

/// OpenAI's API root, when the configuration names none.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Anthropic's API root, when the configuration names none.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// The Azure OpenAI `api-version`, when the configuration names none.
pub const AZURE_API_VERSION: &str = "2024-10-21";

/// Build the planner `config` describes; LLM planners read their key from `credentials`.
pub fn build_planner(
    config: &PlannerConfig,
    credentials: Arc<dyn CredentialStore>,
) -> Result<Box<dyn Planner>, EngineError> {
    let provider = config.provider;
    let llm = || -> Result<LlmConfig, EngineError> {
        let mut llm = LlmConfig::new(endpoint(config), config.model.clone().unwrap_or_default());
        if let Some(name) = &config.credential {
            llm = llm.with_api_key(ApiKey::new(Arc::clone(&credentials), crate::credentials::parse_name(name)?));
        }
        llm.timeout = config.timeout;
        llm.headers.clone_from(&config.headers);
        if let Some(r) = config.max_tool_rounds {
            llm.max_tool_rounds = r;
        }
        llm.max_tokens = config.max_tokens;
        Ok(llm)
    };
    let planner_error = |e: countersign_planner::PlannerError| EngineError::Config { message: e.to_string() };
    Ok(match provider {
        PlannerProvider::Local => Box::new(match &config.playbooks {
            Some(file) => countersign_planner::LocalPlanner::load(file)
                .map_err(|e| EngineError::Config { message: e.to_string() })?,
            None => countersign_planner::LocalPlanner::new(),
        }),
        PlannerProvider::Openai => Box::new(OpenAiPlanner::new(llm()?).map_err(planner_error)?),
        PlannerProvider::Azure => {
            let version = config.api_version.as_deref().unwrap_or(AZURE_API_VERSION);
            Box::new(OpenAiPlanner::azure(llm()?, version).map_err(planner_error)?)
        }
        PlannerProvider::Anthropic => Box::new(AnthropicPlanner::new(llm()?).map_err(planner_error)?),
    })
}

/// The API root an LLM planner configuration calls.
fn endpoint(config: &PlannerConfig) -> String {
    config.base_url.clone().unwrap_or_else(|| {
        if config.provider == PlannerProvider::Anthropic { ANTHROPIC_BASE_URL } else { OPENAI_BASE_URL }.to_string()
    })
}

impl Engine {
    /// The workspace's planner, with keys from the OS keyring.
    ///
    /// Under a signed policy pack, an LLM planner may only call the endpoint the pack's
    /// managed settings name (`planner_endpoint`); with none named, only the local planner
    /// plans. Dev mode (an unsigned workspace policy) allows any.
    pub fn configured_planner(&self) -> Result<Box<dyn Planner>, EngineError> {
        let running = self.running();
        let config = &running.workspace.planner;
        if config.provider != PlannerProvider::Local && self.policy_is_signed() {
            let wanted = endpoint(config);
            let same = |allowed: &str| allowed.trim_end_matches('/') == wanted.trim_end_matches('/');
            match self.managed_settings().planner_endpoint.as_deref() {
                Some(allowed) if same(allowed) => {}
                Some(allowed) => {
                    return Err(EngineError::NotPermitted {
                        message: format!(
                            "the policy pack allows the planner endpoint {allowed} only; this workspace asks for {wanted}"
                        ),
                    });
                }
                None => {
                    return Err(EngineError::NotPermitted {
                        message: "the policy pack allows the local planner only (no `planner_endpoint` in its \
                                  managed settings)"
                            .into(),
                    });
                }
            }
        }
        build_planner(config, Arc::new(crate::credentials::keyring()))
    }
}
