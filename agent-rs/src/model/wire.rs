//! Turning a [`ChatRequest`] into async-openai's request type.
//!
//! Choices made for the widest server compatibility: `max_tokens` rather than OpenAI's
//! newer `max_completion_tokens` (vLLM, Ollama, DeepSeek and Qwen's endpoints all take
//! the former); `tools` and `tool_choice` are left out entirely when there are no tools
//! (OpenAI rejects `tool_choice` without tools, and an empty `tools` array); an
//! assistant message with neither text nor tool calls is sent with empty text, because
//! several servers reject a message without either.

use async_openai::types::chat::{
    ChatCompletionMessageToolCall, ChatCompletionMessageToolCalls,
    ChatCompletionRequestAssistantMessage, ChatCompletionRequestAssistantMessageContent,
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessage,
    ChatCompletionRequestToolMessage, ChatCompletionRequestUserMessage,
    ChatCompletionStreamOptions, ChatCompletionTool, ChatCompletionToolChoiceOption,
    ChatCompletionTools, CreateChatCompletionRequest, FunctionCall, FunctionObject,
    ToolChoiceOptions,
};

use super::ModelSettings;
use super::types::{ChatMessage, ChatRequest};

/// The streaming request for one turn.
pub(super) fn chat_completion_request(
    settings: &ModelSettings,
    request: &ChatRequest,
) -> CreateChatCompletionRequest {
    let tools: Vec<ChatCompletionTools> = request
        .tools
        .iter()
        .map(|spec| {
            ChatCompletionTools::Function(ChatCompletionTool {
                function: FunctionObject {
                    name: spec.name.clone(),
                    description: Some(spec.description.clone()),
                    parameters: Some(spec.parameters.clone()),
                    strict: None,
                },
            })
        })
        .collect();
    let has_tools = !tools.is_empty();
    #[allow(deprecated)] // `max_tokens`: see the module doc.
    CreateChatCompletionRequest {
        model: settings.model.clone(),
        messages: request.messages.iter().map(wire_message).collect(),
        stream: Some(true),
        stream_options: Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        }),
        tools: has_tools.then_some(tools),
        tool_choice: has_tools.then_some(ChatCompletionToolChoiceOption::Mode(
            ToolChoiceOptions::Auto,
        )),
        temperature: settings.temperature,
        max_tokens: settings.max_output_tokens,
        ..CreateChatCompletionRequest::default()
    }
}

fn wire_message(message: &ChatMessage) -> ChatCompletionRequestMessage {
    match message {
        ChatMessage::System { content } => {
            ChatCompletionRequestMessage::System(ChatCompletionRequestSystemMessage {
                content: content.clone().into(),
                name: None,
            })
        }
        ChatMessage::User { content } => {
            ChatCompletionRequestMessage::User(ChatCompletionRequestUserMessage {
                content: content.clone().into(),
                name: None,
            })
        }
        ChatMessage::Assistant {
            content,
            tool_calls,
        } => {
            let content = match content {
                Some(text) => Some(text.clone()),
                None if tool_calls.is_empty() => Some(String::new()),
                None => None,
            };
            let tool_calls = (!tool_calls.is_empty()).then(|| {
                tool_calls
                    .iter()
                    .map(|call| {
                        ChatCompletionMessageToolCalls::Function(ChatCompletionMessageToolCall {
                            id: call.id.clone(),
                            function: FunctionCall {
                                name: call.name.clone(),
                                arguments: call.arguments.clone(),
                            },
                        })
                    })
                    .collect()
            });
            #[allow(deprecated)] // `function_call`, left at its default.
            ChatCompletionRequestMessage::Assistant(ChatCompletionRequestAssistantMessage {
                content: content.map(ChatCompletionRequestAssistantMessageContent::Text),
                tool_calls,
                ..ChatCompletionRequestAssistantMessage::default()
            })
        }
        ChatMessage::Tool {
            tool_call_id,
            content,
        } => ChatCompletionRequestMessage::Tool(ChatCompletionRequestToolMessage {
            content: content.clone().into(),
            tool_call_id: tool_call_id.clone(),
        }),
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
