//! The Anthropic Messages API. Streamed; the plan comes back as the input of a
//! `submit_plan` tool whose schema is the proposal's. While tool rounds remain the model
//! must call a tool (`tool_choice: any`: a read, a search or `submit_plan`); in the last
//! round `submit_plan` is forced.

use std::collections::BTreeMap;

use countersign_connectors::credentials::Secret;
use reqwest::Url;
use serde_json::{Value, json};

use super::openai::join;
use super::proposal::proposal_schema;
use super::tools::{SUBMIT_TOOL, Tools};
use super::transport::{Http, scrub, shorten};
use super::{Dialect, LlmConfig, ToolCall, ToolResult, Turn};
use crate::PlannerError;

/// The API version every request names.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The token limit when the configuration sets none (the API requires one).
const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A planner over the Anthropic Messages API.
#[derive(Debug)]
pub struct AnthropicPlanner {
    name: String,
    config: LlmConfig,
    url: Url,
    http: Http,
}

impl AnthropicPlanner {
    /// `POST {base_url}/v1/messages` (base `https://api.anthropic.com`), the key in
    /// `x-api-key`.
    pub fn new(config: LlmConfig) -> Result<AnthropicPlanner, PlannerError> {
        if config.model.trim().is_empty() {
            return Err(PlannerError::Config("anthropic: no model given".into()));
        }
        let url = join(&config.base_url, &["v1", "messages"])?;
        let http = Http::new("anthropic", &config)?;
        Ok(AnthropicPlanner { name: format!("llm:anthropic:{}", config.model), config, url, http })
    }
}

dialect_planner!(AnthropicPlanner);

#[derive(Debug, Default)]
struct Block {
    kind: String,
    text: String,
    id: String,
    name: String,
    /// `input_json_delta` fragments.
    json: String,
    /// The `input` of `content_block_start` (used when no fragment follows).
    start_input: Option<Value>,
}

impl Block {
    fn input_text(&self) -> String {
        if self.json.trim().is_empty() {
            self.start_input.as_ref().map(Value::to_string).unwrap_or_else(|| "{}".into())
        } else {
            self.json.clone()
        }
    }
}

impl Dialect for AnthropicPlanner {
    fn provider(&self) -> &str {
        "anthropic"
    }

    fn answer_instruction(&self) -> &'static str {
        "When you have what you need, call submit_plan with the plan proposal. Always answer by calling a tool."
    }

    fn turn(
        &self,
        key: Option<&Secret>,
        system: &str,
        messages: &mut Vec<Value>,
        tools: &Tools,
        tools_allowed: bool,
    ) -> Result<Turn, PlannerError> {
        let mut tool_defs: Vec<Value> = tools
            .specs
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.schema}))
            .collect();
        tool_defs.push(json!({
            "name": SUBMIT_TOOL,
            "description": "Hand in the plan proposal for this case. Call it exactly once, when you are done.",
            "input_schema": proposal_schema(),
        }));
        let tool_choice =
            if tools_allowed { json!({"type": "any"}) } else { json!({"type": "tool", "name": SUBMIT_TOOL}) };
        let body = json!({
            "model": self.config.model,
            "max_tokens": self.config.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            "system": system,
            "messages": messages,
            "tools": tool_defs,
            "tool_choice": tool_choice,
            "stream": true,
        });
        let auth = key.map(|k| ("x-api-key", "", k));
        let mut sse = self.http.post_stream(&self.url, auth, &[("anthropic-version", ANTHROPIC_VERSION)], &body)?;

        let mut blocks: BTreeMap<u64, Block> = BTreeMap::new();
        let mut stop_reason: Option<String> = None;
        let mut stopped = false;
        while let Some(event) = sse.next_event()? {
            if event.data.trim().is_empty() {
                continue;
            }
            let data: Value = serde_json::from_str(&event.data)
                .map_err(|e| PlannerError::Malformed(format!("a stream event is not JSON: {e}")))?;
            let kind = data.get("type").and_then(Value::as_str).unwrap_or(event.name.as_str());
            let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
            match kind {
                "content_block_start" => {
                    let cb = data.get("content_block").cloned().unwrap_or(Value::Null);
                    let s = |k: &str| cb.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    blocks.insert(
                        index,
                        Block {
                            kind: s("type"),
                            text: s("text"),
                            id: s("id"),
                            name: s("name"),
                            json: String::new(),
                            start_input: cb
                                .get("input")
                                .cloned()
                                .filter(|v| v.as_object().is_some_and(|m| !m.is_empty())),
                        },
                    );
                }
                "content_block_delta" => {
                    let delta = data.get("delta").cloned().unwrap_or(Value::Null);
                    let block = blocks.entry(index).or_default();
                    match delta.get("type").and_then(Value::as_str) {
                        Some("text_delta") => {
                            block.text.push_str(delta.get("text").and_then(Value::as_str).unwrap_or(""))
                        }
                        Some("input_json_delta") => {
                            block.json.push_str(delta.get("partial_json").and_then(Value::as_str).unwrap_or(""));
                        }
                        _ => {}
                    }
                }
                "message_delta" => {
                    if let Some(r) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                        stop_reason = Some(r.to_string());
                    }
                }
                "message_stop" => {
                    stopped = true;
                    break;
                }
                "error" => {
                    let kind = data.pointer("/error/type").and_then(Value::as_str).unwrap_or("error");
                    let message = data.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
                    return Err(PlannerError::Unavailable {
                        provider: "anthropic".into(),
                        message: scrub(&shorten(&format!("{kind}: {message}"), 300), key),
                    });
                }
                _ => {}
            }
        }
        if !stopped {
            return Err(PlannerError::Truncated("the stream ended without message_stop".into()));
        }
        let text: String = blocks.values().filter(|b| b.kind == "text").map(|b| b.text.as_str()).collect();
        match stop_reason.as_deref() {
            Some("max_tokens") => {
                return Err(PlannerError::Truncated("the answer hit the token limit (stop_reason: max_tokens)".into()));
            }
            Some("refusal") => {
                let why = if text.trim().is_empty() { "stop_reason: refusal".to_string() } else { shorten(&text, 300) };
                return Err(PlannerError::Refused(why));
            }
            _ => {}
        }
        if let Some(submit) = blocks.values().find(|b| b.kind == "tool_use" && b.name == SUBMIT_TOOL) {
            return Ok(Turn::Answer(submit.input_text()));
        }
        let uses: Vec<&Block> = blocks.values().filter(|b| b.kind == "tool_use").collect();
        if uses.is_empty() {
            // Prose where a tool call was required: the model declined to plan.
            return Err(PlannerError::Refused(if text.trim().is_empty() {
                "the model answered with neither a plan nor a tool call".into()
            } else {
                shorten(text.trim(), 300)
            }));
        }
        let mut content: Vec<Value> = Vec::new();
        if !text.trim().is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        let calls: Vec<ToolCall> = uses
            .iter()
            .map(|b| ToolCall { id: b.id.clone(), name: b.name.clone(), arguments: b.input_text() })
            .collect();
        for c in &calls {
            let input = serde_json::from_str::<Value>(&c.arguments).ok().filter(Value::is_object).unwrap_or(json!({}));
            content.push(json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}));
        }
        messages.push(json!({"role": "assistant", "content": content}));
        Ok(Turn::Calls(calls))
    }

    fn push_results(&self, messages: &mut Vec<Value>, calls: &[ToolCall], results: &[ToolResult]) {
        let content: Vec<Value> = calls
            .iter()
            .zip(results)
            .map(|(c, r)| {
                json!({"type": "tool_result", "tool_use_id": c.id, "content": r.content, "is_error": r.is_error})
            })
            .collect();
        messages.push(json!({"role": "user", "content": content}));
    }
}
