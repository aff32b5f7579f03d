//! OpenAI-compatible chat completions: OpenAI, Azure OpenAI, Ollama, vLLM, the llama.cpp
//! server. Streamed; the plan comes back as content under `response_format: json_schema`.

use std::collections::BTreeMap;

use countersign_connectors::credentials::Secret;
use reqwest::Url;
use serde_json::{Value, json};

use super::proposal::proposal_schema;
use super::tools::Tools;
use super::transport::{Http, error_message, scrub};
use super::{Dialect, LlmConfig, ToolCall, ToolResult, Turn};
use crate::PlannerError;

/// A planner over an OpenAI-compatible chat completions API.
#[derive(Debug)]
pub struct OpenAiPlanner {
    name: String,
    config: LlmConfig,
    url: Url,
    azure: bool,
    http: Http,
}

impl OpenAiPlanner {
    /// OpenAI, Ollama, vLLM, llama.cpp: `POST {base_url}/chat/completions`, the key (if
    /// any) as `Authorization: Bearer`.
    pub fn new(config: LlmConfig) -> Result<OpenAiPlanner, PlannerError> {
        let url = join(&config.base_url, &["chat", "completions"])?;
        OpenAiPlanner::build(config, url, false)
    }

    /// Azure OpenAI: `POST {base_url}/openai/deployments/{model}/chat/completions?api-version=…`
    /// (the model is the deployment name), the key in `api-key`.
    pub fn azure(config: LlmConfig, api_version: &str) -> Result<OpenAiPlanner, PlannerError> {
        let mut url = join(&config.base_url, &["openai", "deployments", &config.model, "chat", "completions"])?;
        url.query_pairs_mut().append_pair("api-version", api_version);
        OpenAiPlanner::build(config, url, true)
    }

    fn build(config: LlmConfig, url: Url, azure: bool) -> Result<OpenAiPlanner, PlannerError> {
        let provider = if azure { "azure" } else { "openai" };
        if config.model.trim().is_empty() {
            return Err(PlannerError::Config(format!("{provider}: no model given")));
        }
        let http = Http::new(provider, &config)?;
        Ok(OpenAiPlanner { name: format!("llm:{provider}:{}", config.model), config, url, azure, http })
    }
}

/// `base` with `segments` appended to its path.
pub(crate) fn join(base: &str, segments: &[&str]) -> Result<Url, PlannerError> {
    let mut url = Url::parse(base.trim()).map_err(|e| PlannerError::Config(format!("base URL {base:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PlannerError::Config(format!("base URL {base:?} must be http or https")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(PlannerError::Config("the base URL must not carry credentials; use the keyring".into()));
    }
    url.path_segments_mut()
        .map_err(|()| PlannerError::Config(format!("base URL {base:?} cannot have a path")))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

dialect_planner!(OpenAiPlanner);

#[derive(Debug, Default)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
}

impl Dialect for OpenAiPlanner {
    fn provider(&self) -> &str {
        if self.azure { "azure" } else { "openai" }
    }

    fn answer_instruction(&self) -> &'static str {
        "When you have what you need, answer with the plan proposal as one JSON object matching the response \
         schema, and nothing else."
    }

    fn turn(
        &self,
        key: Option<&Secret>,
        system: &str,
        messages: &mut Vec<Value>,
        tools: &Tools,
        tools_allowed: bool,
    ) -> Result<Turn, PlannerError> {
        let mut all = vec![json!({"role": "system", "content": system})];
        all.extend(messages.iter().cloned());
        let tool_defs: Vec<Value> = tools
            .specs
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.schema
                }})
            })
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "messages": all,
            "stream": true,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "plan_proposal", "strict": true, "schema": proposal_schema()}
            },
            "tools": tool_defs,
            "tool_choice": if tools_allowed { "auto" } else { "none" },
        });
        if let Some(n) = self.config.max_tokens {
            body["max_tokens"] = json!(n);
        }
        let auth = key.map(|k| if self.azure { ("api-key", "", k) } else { ("authorization", "Bearer ", k) });
        let mut sse = self.http.post_stream(&self.url, auth, &[], &body)?;

        let mut content = String::new();
        let mut refusal = String::new();
        let mut calls: BTreeMap<u64, PendingCall> = BTreeMap::new();
        let mut finish: Option<String> = None;
        let mut done = false;
        while let Some(event) = sse.next_event()? {
            let data = event.data.trim();
            if data == "[DONE]" {
                done = true;
                break;
            }
            if data.is_empty() {
                continue;
            }
            let chunk: Value = serde_json::from_str(data)
                .map_err(|e| PlannerError::Malformed(format!("a stream chunk is not JSON: {e}")))?;
            if chunk.get("error").is_some() {
                return Err(PlannerError::Unavailable {
                    provider: self.provider().to_string(),
                    message: scrub(&error_message(data), key),
                });
            }
            let Some(choices) = chunk.get("choices").and_then(Value::as_array) else { continue };
            // One completion was asked for; a chunk of another index is not ours.
            for choice in choices.iter().filter(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0) {
                if let Some(delta) = choice.get("delta") {
                    if let Some(t) = delta.get("content").and_then(Value::as_str) {
                        content.push_str(t);
                    }
                    if let Some(t) = delta.get("refusal").and_then(Value::as_str) {
                        refusal.push_str(t);
                    }
                    for (pos, tc) in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate()
                    {
                        let index = tc.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
                        let call = calls.entry(index).or_default();
                        if let Some(id) = tc.get("id").and_then(Value::as_str) {
                            call.id = id.to_string();
                        }
                        if let Some(f) = tc.get("function") {
                            if let Some(n) = f.get("name").and_then(Value::as_str) {
                                call.name.push_str(n);
                            }
                            if let Some(a) = f.get("arguments").and_then(Value::as_str) {
                                call.arguments.push_str(a);
                            }
                        }
                    }
                }
                if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
                    finish = Some(r.to_string());
                }
            }
        }
        if !done {
            return Err(PlannerError::Truncated("the stream ended without [DONE]".into()));
        }
        if !refusal.trim().is_empty() {
            return Err(PlannerError::Refused(refusal));
        }
        match finish.as_deref() {
            Some("length") => {
                return Err(PlannerError::Truncated("the answer hit the token limit (finish_reason: length)".into()));
            }
            Some("content_filter") => {
                return Err(PlannerError::Refused("the provider's content filter stopped the answer".into()));
            }
            _ => {}
        }
        if calls.is_empty() {
            return Ok(Turn::Answer(content));
        }
        let round = messages.len();
        let calls: Vec<ToolCall> = calls
            .into_values()
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: if c.id.is_empty() { format!("call_{round}_{i}") } else { c.id },
                name: c.name,
                arguments: c.arguments,
            })
            .collect();
        messages.push(json!({
            "role": "assistant",
            "content": if content.is_empty() { Value::Null } else { Value::String(content) },
            "tool_calls": calls.iter().map(|c| json!({
                "id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}
            })).collect::<Vec<_>>(),
        }));
        Ok(Turn::Calls(calls))
    }

    fn push_results(&self, messages: &mut Vec<Value>, calls: &[ToolCall], results: &[ToolResult]) {
        for (call, result) in calls.iter().zip(results) {
            let content = if result.is_error { format!("error: {}", result.content) } else { result.content.clone() };
            messages.push(json!({"role": "tool", "tool_call_id": call.id, "content": content}));
        }
    }
}
