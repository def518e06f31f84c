use super::*;

fn conversation(outputs: usize, size: usize) -> Vec<ChatMessage> {
    let mut messages = vec![
        ChatMessage::System {
            content: "sys".into(),
        },
        ChatMessage::User {
            content: "task".into(),
        },
    ];
    for i in 0..outputs {
        messages.push(ChatMessage::Assistant {
            content: None,
            tool_calls: vec![],
        });
        messages.push(ChatMessage::Tool {
            tool_call_id: format!("call_{i}"),
            content: format!("{i}:{}", "x".repeat(size)),
        });
    }
    messages
}

#[test]
fn small_conversation_is_left_alone() {
    let mut messages = conversation(3, 100);
    let before = messages.clone();
    assert!(elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(10_000)).is_none());
    assert_eq!(format!("{before:?}"), format!("{messages:?}"));
}

#[test]
fn oldest_outputs_are_elided_and_recent_kept() {
    // 10 outputs of ~1000 tokens each against a 8000-token window.
    let mut messages = conversation(10, 4000);
    let elision = elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(8_000)).unwrap();
    // Under the high-water mark: the three most recent and the unseen one stay whole.
    assert!(elision.tokens_after <= 6_000, "{elision:?}");
    assert_eq!(elision.shortened_outputs, 0);
    assert!(elision.tokens_before > 6_000);
    let tool_contents: Vec<&str> = messages
        .iter()
        .filter_map(|m| match m {
            ChatMessage::Tool { content, .. } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    assert!(tool_contents[0].starts_with(ELIDED_PREFIX));
    for recent in &tool_contents[7..] {
        assert!(!recent.starts_with(ELIDED_PREFIX), "recent output elided");
    }
    assert_eq!(
        tool_contents
            .iter()
            .filter(|c| c.starts_with(ELIDED_PREFIX))
            .count(),
        elision.elided_outputs
    );
}

#[test]
fn results_not_seen_yet_are_never_elided() {
    // One reply asked for 50 calls: all their results come after it.
    let mut messages = conversation(0, 0);
    messages.push(ChatMessage::Assistant {
        content: None,
        tool_calls: vec![],
    });
    for i in 0..50 {
        messages.push(ChatMessage::Tool {
            tool_call_id: format!("call_{i}"),
            content: format!("result {i} {}", "y".repeat(40)),
        });
    }
    let before = format!("{messages:?}");
    assert!(elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(200)).is_none());
    assert_eq!(
        before,
        format!("{messages:?}"),
        "nothing can be cut below its share"
    );
}

#[test]
fn unseen_results_over_the_window_are_shortened_evenly() {
    let mut messages = conversation(0, 0);
    messages.push(ChatMessage::Assistant {
        content: None,
        tool_calls: vec![],
    });
    for i in 0..10 {
        messages.push(ChatMessage::Tool {
            tool_call_id: format!("call_{i}"),
            content: format!("start {i}\n{}\nend {i}", "z".repeat(20_000)),
        });
    }
    messages.push(ChatMessage::Tool {
        tool_call_id: "small".into(),
        content: "small result".into(),
    });
    let elision = elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(10_000)).unwrap();
    assert_eq!(elision.elided_outputs, 0);
    assert_eq!(elision.shortened_outputs, 10);
    assert!(elision.tokens_after <= 5_100, "{elision:?}");
    for message in &messages[3..13] {
        let ChatMessage::Tool { content, .. } = message else {
            panic!("not a tool message");
        };
        assert!(content.starts_with("start "), "{content}");
        assert!(content.contains("end "), "the tail is kept too");
        assert!(content.contains("cut to fit the context window"));
    }
    assert!(
        matches!(&messages[13], ChatMessage::Tool { content, .. } if content == "small result")
    );
}

/// One reply that asked for `count` calls, each answered with `size` bytes.
fn one_reply_of(count: usize, size: usize) -> Vec<ChatMessage> {
    let mut messages = conversation(0, 0);
    messages.push(ChatMessage::Assistant {
        content: None,
        tool_calls: vec![],
    });
    for i in 0..count {
        messages.push(ChatMessage::Tool {
            tool_call_id: format!("call_{i}"),
            content: format!("start {i}\n{}\nend {i}", "w".repeat(size)),
        });
    }
    messages
}

fn tool_contents(messages: &[ChatMessage]) -> Vec<&str> {
    messages.iter().filter_map(tool_content).collect()
}

#[test]
fn thousands_of_unseen_results_fit_with_the_overflow_left_out_and_counted() {
    let mut messages = one_reply_of(3_000, 1_000);
    let budget = ContextBudget::new(65_536);
    let elision = elide_old_tool_outputs(&mut messages, 0, budget).unwrap();
    assert!(
        elision.tokens_after <= 65_536 * 3 / 4,
        "the request still overflows: {elision:?}"
    );
    assert_eq!(estimate_conversation(&messages, 0), elision.tokens_after);
    let contents = tool_contents(&messages);
    assert_eq!(contents.len(), 3_000, "every call keeps its message");
    let shown = contents
        .iter()
        .take_while(|c| !c.starts_with(LEFT_OUT_PREFIX))
        .count();
    assert!(shown > 10, "the first results are shown: {shown}");
    for (i, content) in contents[..shown].iter().enumerate() {
        assert!(content.starts_with(&format!("start {i}\n")), "{content}");
    }
    let summary = contents[shown];
    let left_out = 3_000 - shown;
    assert!(summary.contains("asked for 3000 calls"), "{summary}");
    assert!(
        summary.contains(&format!("results of {left_out} ")),
        "{summary}"
    );
    assert!(contents[shown + 1..].iter().all(|c| *c == LEFT_OUT));

    // Told the request is still too long, the loop squeezes: fewer are shown, and
    // the note counts them again.
    let squeezed = elide_old_tool_outputs(&mut messages, 0, budget.emergency()).unwrap();
    assert!(squeezed.tokens_after < elision.tokens_after, "{squeezed:?}");
    let contents = tool_contents(&messages);
    let shown_now = contents
        .iter()
        .take_while(|c| !c.starts_with(LEFT_OUT_PREFIX))
        .count();
    assert!(shown_now < shown, "{shown_now} >= {shown}");
    let summaries = contents.iter().filter(|c| c.contains("asked for")).count();
    assert_eq!(summaries, 1);
    assert!(
        contents[shown_now].contains(&format!("results of {} ", 3_000 - shown_now)),
        "{}",
        contents[shown_now]
    );
}

#[test]
fn tiny_results_are_never_left_out() {
    let mut messages = one_reply_of(2_000, 1_000);
    for i in 0..20 {
        messages.push(ChatMessage::Tool {
            tool_call_id: format!("tiny_{i}"),
            content: format!("ok {i}"),
        });
    }
    elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(32_000)).unwrap();
    let contents = tool_contents(&messages);
    for (i, content) in contents[2_000..].iter().enumerate() {
        assert_eq!(*content, format!("ok {i}"));
    }
}

#[test]
fn emergency_budget_elides_even_below_high_water() {
    let mut messages = conversation(4, 400);
    let budget = ContextBudget::new(10_000);
    assert!(elide_old_tool_outputs(&mut messages, 0, budget).is_none());
    let elision = elide_old_tool_outputs(&mut messages, 0, ContextBudget::new(1_000).emergency());
    // Three were seen, one is kept as the most recent seen, the last is unseen.
    assert_eq!(elision.map(|e| e.elided_outputs), Some(2));
}
