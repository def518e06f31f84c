//! Streams recorded from real servers (see `tests/fixtures/openai-streams/SOURCE.md`),
//! replayed byte for byte: each must give the calls the server meant, and a stream the
//! server declared failed must be retried or reported, never taken for a finished answer.

use std::path::PathBuf;

use agent_rs::model::{ModelClient, ModelError, ModelSettings};

use super::server::{Reply, TestServer, text_answer};
use super::{complete, retries};

fn recorded(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openai-streams")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What each recording means: its text, and each call's (id or `None` when the server
/// sent none, name, arguments).
struct Expected {
    file: &'static str,
    content: Option<&'static str>,
    calls: &'static [(Option<&'static str>, &'static str, &'static str)],
    /// Prompt and completion tokens, when the server reported them.
    usage: Option<(u64, u64)>,
}

const ADD_AND_MULTIPLY: &str = r#"{"a":2,"b":3}"#;
const ADD_AND_MULTIPLY_SPACED: &str = r#"{"a": 2, "b": 3}"#;

const EXPECTED: &[Expected] = &[
    Expected {
        file: "openai-gpt4o-parallel-baseline.sse",
        content: None,
        calls: &[
            (
                Some("call_ehIWdjL1abZk1h8FWGLQ0Hie"),
                "add",
                ADD_AND_MULTIPLY_SPACED,
            ),
            (
                Some("call_fBSgA47J5VeONggizTIvl7AH"),
                "multiply",
                ADD_AND_MULTIPLY_SPACED,
            ),
        ],
        usage: Some((106, 50)),
    },
    Expected {
        file: "azure-openai-gpt5mini-prompt-filter-first-chunk.sse",
        content: None,
        calls: &[(
            Some("call_tWA8BJziGlCyhQEXhEHn6eXK"),
            "weather",
            r#"{"location":"Florence, Italy"}"#,
        )],
        usage: Some((145, 154)),
    },
    Expected {
        file: "gemini-openai-compat-2.0flash-noindex-emptyid-stop.sse",
        content: None,
        calls: &[(None, "return_list_of_int", r#"{"value":[1,2,3,4,5]}"#)],
        usage: Some((25, 8)),
    },
    Expected {
        file: "ollama-llama3.1-noindex-stop.sse",
        content: None,
        calls: &[(
            Some("call_28sm5ma0"),
            "return_list_of_int",
            r#"{"value":"[1, 2, 3, 4, 5]"}"#,
        )],
        usage: None,
    },
    Expected {
        file: "mistral-large-parallel-one-chunk-noindex.sse",
        content: None,
        calls: &[
            (Some("nqjf8Hqe1"), "plus", r#"{"a": 1, "b": 2}"#),
            (Some("ATcpCKul3"), "minus", r#"{"a": 2, "b": 1}"#),
        ],
        usage: Some((187, 45)),
    },
    Expected {
        file: "mistral-api-glm-incremental-delta-index.sse",
        content: None,
        calls: &[(
            Some("chatcmpl-tool-9f149c74c42f265b"),
            "webSearchTool",
            r#"{"query": "current Berlin weather"}"#,
        )],
        usage: Some((171, 14)),
    },
    Expected {
        file: "deepseek-reasoner-reasoning-toolcall.sse",
        content: None,
        calls: &[(
            Some("call_00_ioIn7yN9p1ZOMNpDLwd4MgAF"),
            "weather",
            r#"{"location": "San Francisco"}"#,
        )],
        usage: Some((339, 83)),
    },
    Expected {
        file: "dashscope-qwen3max-empty-id-extra-chunk.sse",
        content: None,
        calls: &[(
            Some("call_eee11723464a4b9eb8cee71d"),
            "weather",
            r#"{"location": "San Francisco"}"#,
        )],
        usage: Some((295, 22)),
    },
    Expected {
        file: "groq-kimi-k2-parallel-usage-twice.sse",
        content: Some(
            "I'll perform both addition and multiplication on the numbers 2 and 3 for you.",
        ),
        calls: &[
            (Some("functions.add:0"), "add", ADD_AND_MULTIPLY),
            (Some("functions.multiply:1"), "multiply", ADD_AND_MULTIPLY),
        ],
        usage: Some((201, 58)),
    },
    Expected {
        file: "xai-grok4fast-parallel-no-finish-key.sse",
        content: None,
        calls: &[
            (Some("call_55070233"), "add", ADD_AND_MULTIPLY),
            (Some("call_12016531"), "multiply", ADD_AND_MULTIPLY),
        ],
        usage: Some((432, 68)),
    },
    Expected {
        file: "llamacpp-b7010-gptoss-reasoning-toolcall.sse",
        content: None,
        calls: &[(
            Some("g2KOIWzn722hzEaZQmNVP4roUPEiYafL"),
            "weather",
            r#"{"location":"Florence, Italy"}"#,
        )],
        usage: Some((139, 41)),
    },
    Expected {
        file: "zai-glm46-no-object-parallel.sse",
        content: Some("\n\nI'll add and multiply the numbers 2 and 3 for you.\n"),
        calls: &[
            (
                Some("call_d2055286bad9485ba28360a1"),
                "add",
                ADD_AND_MULTIPLY,
            ),
            (
                Some("call_4999202723814b24a92398ab"),
                "multiply",
                ADD_AND_MULTIPLY,
            ),
        ],
        usage: Some((282, 142)),
    },
    Expected {
        file: "cerebras-qwen3coder-parallel-one-chunk-no-done.sse",
        content: None,
        calls: &[
            (Some("ab8048658"), "add", ADD_AND_MULTIPLY_SPACED),
            (Some("b249e0b3f"), "multiply", ADD_AND_MULTIPLY_SPACED),
        ],
        usage: Some((408, 59)),
    },
    Expected {
        file: "cerebras-glm47-text-plus-stray-toolcall.sse",
        content: Some(r#"{"result": "2026"}"#),
        calls: &[(Some("e0ecf32e0"), "nonUsefulTool", "{}")],
        usage: Some((433, 122)),
    },
    Expected {
        file: "openrouter-gemini-keepalive-reasoning-details-parallel.sse",
        content: None,
        calls: &[
            (
                Some("tool_add_kZJN6iFNozVOBiXBMA2Y"),
                "add",
                ADD_AND_MULTIPLY,
            ),
            (
                Some("tool_multiply_7Pq02EcannPbKks8kXlA"),
                "multiply",
                ADD_AND_MULTIPLY,
            ),
        ],
        usage: Some((157, 32)),
    },
    Expected {
        file: "openrouter-gpt5-index1-usage-after-finish.sse",
        content: None,
        calls: &[(
            Some("call_53F5Wfhdi4paefTbQc5dftUM"),
            "weather",
            r#"{"location":"Florence, Italy"}"#,
        )],
        usage: Some((63, 86)),
    },
    Expected {
        file: "vllm-llama31-continuous-usage-trailing-empty-args.sse",
        content: None,
        calls: &[(
            Some("chatcmpl-tool-b3b307239370432d9910d4b79b4dbbaa"),
            "searchGoogle",
            r#"{"query": "latest news on ai"}"#,
        )],
        usage: Some((226, 20)),
    },
    Expected {
        file: "tgi-2.2.1-toolcalls-object-no-name.sse",
        content: None,
        calls: &[(
            None,
            "get_current_weather",
            r#"{"format":"celsius","location":"Paris, France"}"#,
        )],
        usage: None,
    },
];

/// Streams the server itself declared failed, and what it said.
const FAILED: &[(&str, &str)] = &[
    (
        "groq-gptoss120b-tool-use-failed-error-event.sse",
        "Tool call validation failed",
    ),
    (
        "openrouter-minimax-midstream-error.sse",
        "Token limit reached",
    ),
];

#[test]
fn every_recording_is_covered() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/openai-streams");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(".sse"))
        .collect();
    files.sort();
    let mut covered: Vec<&str> = EXPECTED
        .iter()
        .map(|e| e.file)
        .chain(FAILED.iter().map(|f| f.0))
        .collect();
    covered.sort_unstable();
    assert_eq!(files, covered);
}

#[tokio::test]
async fn every_recorded_stream_gives_the_calls_the_server_meant() {
    for expected in EXPECTED {
        // Whole, and cut into 3-byte pieces so every line and UTF-8 character splits.
        for piece in [usize::MAX, 3] {
            let server = TestServer::start(vec![Reply::Raw {
                body: recorded(expected.file),
                piece,
            }])
            .await;
            let (result, events) = complete(&server.client()).await;
            let file = expected.file;
            let response = result.unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(response.attempts, 1, "{file}: {events:?}");
            assert_eq!(response.content.as_deref(), expected.content, "{file}");
            let calls: Vec<(&str, &str)> = response
                .tool_calls
                .iter()
                .map(|c| (c.name.as_str(), c.arguments.as_str()))
                .collect();
            let wanted: Vec<(&str, &str)> = expected.calls.iter().map(|c| (c.1, c.2)).collect();
            assert_eq!(calls, wanted, "{file}");
            for (call, (id, ..)) in response.tool_calls.iter().zip(expected.calls) {
                match id {
                    Some(id) => assert_eq!(&call.id, id, "{file}"),
                    None => assert!(
                        call.id.starts_with("call_"),
                        "{file}: made-up id {}",
                        call.id
                    ),
                }
            }
            match expected.usage {
                Some((prompt, completion)) => {
                    assert!(!response.usage_estimated, "{file}");
                    assert_eq!(
                        (
                            response.usage.prompt_tokens,
                            response.usage.completion_tokens
                        ),
                        (prompt, completion),
                        "{file}"
                    );
                }
                None => assert!(response.usage_estimated, "{file}"),
            }
        }
    }
}

#[tokio::test]
async fn a_stream_the_server_declared_failed_is_retried() {
    for (file, said) in FAILED {
        let server = TestServer::start(vec![
            Reply::Raw {
                body: recorded(file),
                piece: 64,
            },
            text_answer("second answer"),
        ])
        .await;
        let (result, events) = complete(&server.client()).await;
        let response = result.unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(response.content.as_deref(), Some("second answer"), "{file}");
        assert_eq!(response.attempts, 2, "{file}");
        let retries = retries(&events);
        assert!(retries[0].1.contains(said), "{file}: {retries:?}");
    }
}

#[tokio::test]
async fn a_stream_the_server_declared_failed_is_reported_when_retries_run_out() {
    for (file, said) in FAILED {
        let server = TestServer::start(vec![Reply::Raw {
            body: recorded(file),
            piece: 64,
        }])
        .await;
        let client = ModelClient::new(ModelSettings {
            max_retries: 0,
            ..server.settings()
        })
        .unwrap();
        let error = complete(&client).await.0.unwrap_err();
        assert!(
            matches!(&error, ModelError::RetriesExhausted { last_error, .. } if last_error.contains(said)),
            "{file}: {error:?}"
        );
    }
}
