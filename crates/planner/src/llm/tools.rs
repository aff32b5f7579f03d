//! The tools a model may call while planning: knowledge search and the policy's read
//! actions, run through the [`PlanningContext`]. Write actions are never tools.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::prompt::{Fence, passage_block};
use super::{ToolCall, ToolResult};
use crate::{ActionInfo, ActionKind, ContextError, PlanningContext};

pub(crate) const SEARCH_TOOL: &str = "search_knowledge";
pub(crate) const SUBMIT_TOOL: &str = "submit_plan";

/// Passages one `search_knowledge` call may return at most.
const MAX_SEARCH: usize = 8;

/// A tool described to the model.
#[derive(Debug, Clone)]
pub(crate) struct ToolSpec {
    pub name: String,
    pub description: String,
    pub schema: Value,
}

/// The tools of one planning run.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub specs: Vec<ToolSpec>,
    reads: BTreeSet<String>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Tools {
    /// Knowledge search plus every read action whose name can be a tool name and is not
    /// one of ours.
    pub fn new(actions: &[ActionInfo]) -> Tools {
        let mut specs = vec![ToolSpec {
            name: SEARCH_TOOL.into(),
            description: "Search the knowledge base (store policies and procedures). Returns passages with \
                          their article_id, version and anchor, which citations must use."
                .into(),
            schema: json!({
                "type": "object",
                "properties": {"query": {"type": "string", "description": "keywords", "maxLength": 300}},
                "required": ["query"],
                "additionalProperties": false
            }),
        }];
        let mut reads = BTreeSet::new();
        for a in actions.iter().filter(|a| a.kind == ActionKind::Read) {
            if !valid_name(&a.name) || a.name == SEARCH_TOOL || a.name == SUBMIT_TOOL {
                tracing::warn!(action = %a.name, "read action not offered as a tool: its name is not usable");
                continue;
            }
            reads.insert(a.name.clone());
            specs.push(ToolSpec {
                name: a.name.clone(),
                description: a.summary.clone(),
                schema: a.params_schema.clone(),
            });
        }
        Tools { specs, reads }
    }

    pub fn names(&self) -> Vec<&str> {
        self.specs.iter().map(|s| s.name.as_str()).collect()
    }

    /// Run one call. Unknown tools (write actions included) are answered with an error and
    /// never reach the context.
    pub fn run(&self, call: &ToolCall, ctx: &dyn PlanningContext, fence: &Fence) -> ToolResult {
        let error = |content: String| ToolResult { content, is_error: true };
        let args: Map<String, Value> = match serde_json::from_str::<Value>(if call.arguments.trim().is_empty() {
            "{}"
        } else {
            &call.arguments
        }) {
            Ok(Value::Object(m)) => m,
            _ => return error(format!("the arguments of {} are not a JSON object", call.name)),
        };
        if call.name == SEARCH_TOOL {
            let Some(query) = args.get("query").and_then(Value::as_str) else {
                return error("search_knowledge needs a string `query`".into());
            };
            return match ctx.search(query, MAX_SEARCH) {
                Ok(passages) if passages.is_empty() => {
                    ToolResult { content: "no passages matched".into(), is_error: false }
                }
                Ok(passages) => ToolResult {
                    content: passages.iter().map(|p| passage_block(fence, p)).collect::<Vec<_>>().join("\n"),
                    is_error: false,
                },
                Err(e) => error(context_error(&e, fence)),
            };
        }
        if !self.reads.contains(&call.name) {
            tracing::info!(tool = %call.name, "model called a tool that does not exist");
            return error(format!(
                "there is no tool {:?}. Tools: {}. Write actions are never run while planning: propose them as \
                 plan steps.",
                call.name,
                self.names().join(", ")
            ));
        }
        match ctx.read(&call.name, &args) {
            Ok(Some(record)) => ToolResult {
                content: fence.wrap(
                    "record",
                    &[("action", &call.name)],
                    &serde_json::to_string_pretty(&record).unwrap_or_default(),
                ),
                is_error: false,
            },
            Ok(None) => ToolResult { content: "not found: the platform has no such record".into(), is_error: false },
            Err(e) => error(context_error(&e, fence)),
        }
    }
}

/// Refusals and failures go back to the model as text: it may propose the read as a step
/// for a person to confirm, or ask the customer. A failure can quote the platform's own
/// error text, so it is fenced like any other platform data.
fn context_error(e: &ContextError, fence: &Fence) -> String {
    fence.wrap("error", &[], &e.to_string())
}
