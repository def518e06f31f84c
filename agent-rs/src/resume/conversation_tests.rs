use super::*;
use crate::events::{AgentEvent, EventRecord};

fn records(events: Vec<AgentEvent>) -> Vec<EventRecord> {
    events
        .into_iter()
        .enumerate()
        .map(|(seq, event)| EventRecord {
            seq: seq as u64,
            ts_ms: 0,
            event,
        })
        .collect()
}

fn started(task: &str) -> AgentEvent {
    AgentEvent::TaskStarted {
        task: task.into(),
        model: "m".into(),
        workspace: "/w".into(),
        target_file: None,
        max_turns: 5,
        max_tokens: None,
        timeout_secs: 5,
        tools: vec![],
        sandbox: None,
    }
}

fn call(turn: u32, id: &str) -> AgentEvent {
    AgentEvent::ToolCall {
        turn,
        call_id: id.into(),
        name: "read_file".into(),
        arguments: "{}".into(),
    }
}

fn result(turn: u32, id: &str, output: &str) -> AgentEvent {
    AgentEvent::ToolResult {
        turn,
        call_id: id.into(),
        name: "read_file".into(),
        success: true,
        output: output.into(),
        duration_ms: 1,
        details: serde_json::Value::Null,
    }
}

#[test]
fn turns_replay_with_every_call_answered() {
    let events = records(vec![
        started("fix it"),
        AgentEvent::Message {
            turn: 1,
            content: "looking".into(),
        },
        call(1, "a"),
        call(1, "b"),
        result(1, "a", "A"),
        AgentEvent::Nudge {
            turn: 1,
            reason: "repeated_failing_call".into(),
            message: "try something else".into(),
        },
        call(2, "c"),
    ]);
    let restored = restore_conversation(&events, "more", 100_000).unwrap();
    assert!(!restored.summarized);
    assert_eq!(restored.original_task, "fix it");
    let h = &restored.history;
    assert_eq!(h.len(), 8, "{h:#?}");
    assert_eq!(h[0], ChatMessage::user("Task:\nfix it\n"));
    assert!(
        matches!(&h[1], ChatMessage::Assistant { content: Some(c), tool_calls } if c == "looking" && tool_calls.len() == 2)
    );
    assert_eq!(h[2], ChatMessage::tool_result("a", "A"));
    assert_eq!(h[3], ChatMessage::tool_result("b", NO_RESULT));
    assert_eq!(h[4], ChatMessage::user("try something else"));
    assert!(
        matches!(&h[5], ChatMessage::Assistant { content: None, tool_calls } if tool_calls.len() == 1)
    );
    assert_eq!(h[6], ChatMessage::tool_result("c", NO_RESULT));
    assert_eq!(h[7], ChatMessage::user(follow_up_prompt("more")));
}

#[test]
fn a_resumed_run_carries_the_chain_before_it() {
    let earlier = vec![
        ChatMessage::user("Task:\nfirst\n"),
        ChatMessage::user(follow_up_prompt("second")),
    ];
    let events = records(vec![
        started("second"),
        AgentEvent::ConversationResumed {
            original_task: "first".into(),
            summarized: false,
            history: earlier.clone(),
        },
        AgentEvent::Message {
            turn: 1,
            content: "done".into(),
        },
    ]);
    let restored = restore_conversation(&events, "third", 100_000).unwrap();
    assert_eq!(restored.original_task, "first");
    assert_eq!(restored.history[..2], earlier[..]);
    assert_eq!(
        restored.history[2],
        ChatMessage::Assistant {
            content: Some("done".into()),
            tool_calls: vec![]
        }
    );
    assert_eq!(restored.history.len(), 4);
}

#[test]
fn a_trajectory_without_a_start_cannot_be_resumed() {
    let events = records(vec![AgentEvent::Message {
        turn: 1,
        content: "x".into(),
    }]);
    assert!(restore_conversation(&events, "more", 100_000).is_none());
}

#[test]
fn too_long_a_history_becomes_a_bounded_summary_keeping_the_latest() {
    let mut events = vec![started("big task")];
    for turn in 1..=200 {
        let id = format!("call-{turn}");
        events.push(call(turn, &id));
        events.push(result(
            turn,
            &id,
            &format!("output {turn}\n{}", "x".repeat(2_000)),
        ));
    }
    let restored = restore_conversation(&records(events), "go on", 8_000).unwrap();
    assert!(restored.summarized);
    assert_eq!(restored.history.len(), 2);
    let ChatMessage::User { content } = &restored.history[0] else {
        panic!("not a user message");
    };
    assert!(
        content.contains("big task") && content.contains("output 200"),
        "{content}"
    );
    assert!(!content.contains("output 1\n") && content.contains("earlier lines left out"));
    assert!(crate::output_text::estimate_tokens(content) <= 8_000 / 4 + 200);
}
