//! The loop: ask the model, run the tools it asks for, feed the results back, until it
//! answers without tools or a limit stops it.
//!
//! A turn is one model response. Limits are checked where they can be honoured cleanly:
//! turns and tokens before each request, wall time around every await (a model request
//! or a tool step cut short by the deadline is dropped, and dropping a shell call kills
//! its process group). Whatever ends the run, the caller still writes the diff.

mod context;
mod tool_batch;

use std::time::{Duration, Instant};

use tokio::time::timeout_at;
use tools::{ToolContext, ToolRegistry};

pub use context::{ContextBudget, Elision, elide_old_tool_outputs, estimate_conversation};
pub use tool_batch::{ToolCallOutcome, plan_steps, run_step};

use crate::events::{AgentEvent, LimitKind, RunStatus, Timing};
use crate::model::{ChatMessage, ChatRequest, ModelClient, ModelError, ModelEvent, Usage};
use crate::output_text::estimate_tokens;
use crate::prompt::{PromptInputs, system_prompt, user_prompt};
use crate::sink::EventSink;

/// What bounds a run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    pub max_turns: u32,
    pub max_tokens: Option<u64>,
    pub timeout: Duration,
}

/// How a run ended, for `result.json` and the exit code.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub limit: Option<LimitKind>,
    pub turns: u32,
    pub usage: Usage,
    pub duration: Duration,
    pub timing: Timing,
    pub final_message: Option<String>,
    pub error: Option<String>,
}

/// Everything one run needs; borrowed, so the caller keeps ownership of the pieces.
pub struct AgentLoop<'a> {
    pub client: &'a ModelClient,
    pub registry: &'a ToolRegistry,
    pub ctx: &'a ToolContext,
    pub limits: RunLimits,
    pub budget: ContextBudget,
}

/// The first request rendered as text, for `prompt.txt`.
pub fn render_first_request(messages: &[ChatMessage], registry: &ToolRegistry) -> String {
    let mut text = String::new();
    for message in messages {
        match message {
            ChatMessage::System { content } => {
                text.push_str("=== system ===\n");
                text.push_str(content);
            }
            ChatMessage::User { content } => {
                text.push_str("\n=== user ===\n");
                text.push_str(content);
            }
            _ => {}
        }
    }
    text.push_str("\n=== tools ===\n");
    text.push_str(&serde_json::to_string_pretty(&registry.specs()).unwrap_or_default());
    text.push('\n');
    text
}

impl AgentLoop<'_> {
    /// The opening messages of a conversation.
    pub fn opening_messages(inputs: &PromptInputs) -> Vec<ChatMessage> {
        vec![
            ChatMessage::System {
                content: system_prompt(inputs),
            },
            ChatMessage::User {
                content: user_prompt(inputs),
            },
        ]
    }

    /// Runs the conversation to its end. Events go to `sink` as they happen.
    pub async fn run(&self, mut messages: Vec<ChatMessage>, sink: &mut EventSink) -> RunOutcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.limits.timeout;
        let tool_specs = self.registry.specs();
        let specs_overhead =
            estimate_tokens(&serde_json::to_string(&tool_specs).unwrap_or_default());
        let mut state = LoopState::default();

        let end = loop {
            if state.turns >= self.limits.max_turns {
                break End::Limit(LimitKind::MaxTurns);
            }
            if self
                .limits
                .max_tokens
                .is_some_and(|max| state.usage.total_tokens >= max)
            {
                break End::Limit(LimitKind::MaxTokens);
            }
            let turn = state.turns + 1;
            if let Some(elision) =
                elide_old_tool_outputs(&mut messages, specs_overhead, self.budget)
            {
                sink.emit(elided_event(turn, elision));
            }

            let requested = Instant::now();
            let response = self
                .request(
                    &mut messages,
                    &tool_specs,
                    specs_overhead,
                    turn,
                    sink,
                    deadline,
                )
                .await;
            state.model_time += requested.elapsed();
            let response = match response {
                Ok(response) => response,
                Err(end) => break end,
            };
            state.turns = turn;
            state.usage += response.usage;
            tracing::info!(
                turn,
                tool_calls = response.tool_calls.len(),
                tokens = response.usage.total_tokens,
                attempts = response.attempts,
                "model response"
            );
            sink.emit(AgentEvent::ModelResponse {
                turn,
                tool_calls: response.tool_calls.len(),
                usage: response.usage,
                total_usage: state.usage,
                duration_ms: requested.elapsed().as_millis() as u64,
                finish_reason: response.finish_reason.clone(),
            });
            let content = response.content.filter(|text| !text.trim().is_empty());
            if let Some(text) = &content {
                sink.emit(AgentEvent::Message {
                    turn,
                    content: text.clone(),
                });
                state.last_message = Some(text.clone());
            }
            messages.push(ChatMessage::Assistant {
                content: content.clone(),
                tool_calls: response.tool_calls.clone(),
            });
            if response.tool_calls.is_empty() {
                break End::Completed;
            }

            let tools_started = Instant::now();
            let outcomes =
                timeout_at(deadline, self.run_tools(turn, &response.tool_calls, sink)).await;
            state.tool_time += tools_started.elapsed();
            match outcomes {
                Err(_) => break End::Limit(LimitKind::Timeout),
                Ok(outcomes) => {
                    let fatal = outcomes.iter().find_map(|o| o.fatal.clone());
                    messages.extend(outcomes.into_iter().map(|o| ChatMessage::Tool {
                        tool_call_id: o.call.id,
                        content: o.content,
                    }));
                    if let Some(message) = fatal {
                        break End::Error(format!("a tool failed fatally: {message}"));
                    }
                }
            }
        };

        let (status, limit, error) = match end {
            End::Completed => (RunStatus::Completed, None, None),
            End::Limit(kind) => (RunStatus::LimitReached, Some(kind), None),
            End::Model(err) => (RunStatus::ModelError, None, Some(err)),
            End::Error(err) => (RunStatus::Error, None, Some(err)),
        };
        let outcome = RunOutcome {
            status,
            limit,
            turns: state.turns,
            usage: state.usage,
            duration: started.elapsed(),
            timing: Timing {
                total_ms: millis(started.elapsed()),
                model_ms: millis(state.model_time),
                tools_ms: millis(state.tool_time),
            },
            final_message: state.last_message,
            error,
        };
        sink.emit(AgentEvent::TaskFinished {
            status: outcome.status,
            limit: outcome.limit,
            turns: outcome.turns,
            usage: outcome.usage,
            duration_ms: outcome.duration.as_millis() as u64,
            final_message: outcome.final_message.clone(),
            error: outcome.error.clone(),
            timing: outcome.timing,
        });
        outcome
    }

    /// One model request, retried once with a squeezed conversation when the server says
    /// it is too long.
    async fn request(
        &self,
        messages: &mut [ChatMessage],
        tool_specs: &[tools::ToolSpec],
        specs_overhead: u64,
        turn: u32,
        sink: &mut EventSink,
        deadline: tokio::time::Instant,
    ) -> Result<crate::model::ModelResponse, End> {
        let mut squeezed = false;
        loop {
            sink.emit(AgentEvent::ModelRequest {
                turn,
                messages: messages.len(),
                estimated_prompt_tokens: estimate_conversation(messages, specs_overhead),
            });
            let request = ChatRequest {
                messages: messages.to_vec(),
                tools: tool_specs.to_vec(),
            };
            let mut on_event = |event: ModelEvent| {
                if let ModelEvent::Retrying {
                    attempt,
                    reason,
                    wait,
                } = event
                {
                    sink.emit(AgentEvent::ModelRetry {
                        turn,
                        attempt,
                        reason,
                        wait_ms: wait.as_millis() as u64,
                    });
                }
            };
            let result = timeout_at(deadline, self.client.complete(&request, &mut on_event)).await;
            match result {
                Err(_) => return Err(End::Limit(LimitKind::Timeout)),
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(ModelError::ContextLengthExceeded { .. })) if !squeezed => {
                    squeezed = true;
                    let budget = self.budget.emergency();
                    match elide_old_tool_outputs(messages, specs_overhead, budget) {
                        Some(elision) => sink.emit(elided_event(turn, elision)),
                        None => {
                            return Err(End::Model(
                                "the conversation exceeds the model's context window and nothing is left to elide"
                                    .into(),
                            ));
                        }
                    }
                }
                Ok(Err(err)) => return Err(End::Model(err.to_string())),
            }
        }
    }

    async fn run_tools(
        &self,
        turn: u32,
        calls: &[crate::model::ToolCall],
        sink: &mut EventSink,
    ) -> Vec<ToolCallOutcome> {
        let mut outcomes = Vec::with_capacity(calls.len());
        for step in plan_steps(self.registry, calls) {
            for call in step {
                sink.emit(AgentEvent::ToolCall {
                    turn,
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                });
            }
            for outcome in run_step(self.registry, self.ctx, step).await {
                tracing::info!(
                    turn,
                    tool = %outcome.call.name,
                    success = outcome.success,
                    duration_ms = outcome.duration.as_millis() as u64,
                    "tool call"
                );
                sink.emit(AgentEvent::ToolResult {
                    turn,
                    call_id: outcome.call.id.clone(),
                    name: outcome.call.name.clone(),
                    success: outcome.success,
                    output: outcome.content.clone(),
                    duration_ms: outcome.duration.as_millis() as u64,
                    details: outcome.details.clone(),
                });
                let fatal = outcome.fatal.is_some();
                outcomes.push(outcome);
                if fatal {
                    return outcomes;
                }
            }
        }
        outcomes
    }
}

#[derive(Debug, Default)]
struct LoopState {
    turns: u32,
    model_time: Duration,
    tool_time: Duration,
    usage: Usage,
    last_message: Option<String>,
}

enum End {
    Completed,
    Limit(LimitKind),
    Model(String),
    Error(String),
}

/// Milliseconds with microsecond precision.
fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

fn elided_event(turn: u32, elision: Elision) -> AgentEvent {
    AgentEvent::ContextElided {
        turn,
        elided_outputs: elision.elided_outputs,
        shortened_outputs: elision.shortened_outputs,
        estimated_tokens_before: elision.tokens_before,
        estimated_tokens_after: elision.tokens_after,
    }
}
