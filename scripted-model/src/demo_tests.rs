use serde_json::{Value, json};

use super::*;

/// A conversation: the opening messages, then each (tool name, arguments, result).
fn conversation(turns: &[(&str, Value, &str)]) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You are a coding agent."}),
        json!({"role": "user", "content": "fix add"}),
    ];
    for (i, (name, arguments, result)) in turns.iter().enumerate() {
        let id = format!("call_{i}");
        messages.push(
            json!({"role": "assistant", "tool_calls": [{"id": id, "type": "function",
            "function": {"name": name, "arguments": arguments.to_string()}}]}),
        );
        messages.push(json!({"role": "tool", "tool_call_id": id, "content": result}));
    }
    json!({"model": "demo", "messages": messages, "stream": true})
}

fn the_call(step: &Step) -> (&str, &Value) {
    match step {
        Step::ToolCalls { calls, .. } => {
            assert_eq!(calls.len(), 1, "{step:?}");
            (calls[0].name.as_str(), &calls[0].arguments)
        }
        other => panic!("expected a tool call, got {other:?}"),
    }
}

const LISTING: &str = "./\nREADME.md\ndata.json\nsrc/\n  calc.py\n  util/\n    deep.rs";
const CALC_VIEW: &str = "`src/calc.py` (4 lines):\n 1\tdef add(a, b):\n 2\t    return a - b\n 3\t\n 4\t    return a - b\n";

#[test]
fn the_session_lists_reads_edits_and_finishes() {
    let demo = DemoSession::default();
    let first = demo.next_step(&conversation(&[]));
    assert_eq!(the_call(&first).0, "list_directory");

    let list_args = json!({"path": ".", "depth": 2});
    let second = demo.next_step(&conversation(&[(
        "list_directory",
        list_args.clone(),
        LISTING,
    )]));
    let (name, args) = the_call(&second);
    assert_eq!(name, "read_file_content");
    assert_eq!(
        args["file_path"], "src/calc.py",
        "a known language wins over README.md"
    );

    let read = ("read_file_content", args.clone(), CALC_VIEW);
    let third = demo.next_step(&conversation(&[
        ("list_directory", list_args.clone(), LISTING),
        read.clone(),
    ]));
    let (name, args) = the_call(&third);
    assert_eq!(name, "edit_file_content");
    assert_eq!(args["file_path"], "src/calc.py");
    assert_eq!(
        args["old_text"], "def add(a, b):",
        "the first line that occurs once"
    );
    assert_eq!(args["new_text"], format!("def add(a, b):\n# {NOTE}"));

    let edited = ("edit_file_content", args.clone(), "Edited `src/calc.py`");
    let last = demo.next_step(&conversation(&[
        ("list_directory", list_args, LISTING),
        read,
        edited,
    ]));
    match last {
        Step::Message { content, .. } => {
            assert!(content.contains("edited `src/calc.py`"), "{content}");
            assert!(content.contains("demo model"), "{content}");
        }
        other => panic!("expected the final message, got {other:?}"),
    }
}

#[test]
fn a_repeated_first_line_is_not_an_anchor() {
    let view = "`a.rs` (3 lines):\n 1\tfn a() {}\n 2\tfn a() {}\n 3\tfn b() {}\n";
    assert_eq!(unique_line(view).as_deref(), Some("fn b() {}"));
    assert_eq!(unique_line("`a.rs` (2 lines):\n 1\tx\n 2\tx\n"), None);
}

#[test]
fn an_empty_workspace_or_a_failed_edit_gets_a_new_note_file() {
    let demo = DemoSession::default();
    let empty = "./\n(empty, or every entry is ignored by .gitignore/.ignore)";
    let step = demo.next_step(&conversation(&[("list_directory", json!({}), empty)]));
    let (name, args) = the_call(&step);
    assert_eq!(name, "edit_file_content");
    assert_eq!(args["file_path"], DEMO_NOTE_FILE);
    assert_eq!(args["old_text"], "");

    let failed_edit = (
        "edit_file_content",
        json!({"file_path": "x.py"}),
        "error: old_text not found",
    );
    let step = demo.next_step(&conversation(std::slice::from_ref(&failed_edit)));
    assert_eq!(the_call(&step).1["file_path"], DEMO_NOTE_FILE);

    // The note itself failing ends the session instead of looping.
    let failed_note = (
        "edit_file_content",
        json!({"file_path": DEMO_NOTE_FILE}),
        "error: read-only",
    );
    let step = demo.next_step(&conversation(&[failed_edit, failed_note]));
    assert!(matches!(step, Step::Message { .. }), "{step:?}");
}

#[test]
fn only_files_a_line_can_be_added_to_are_picked() {
    assert_eq!(pick_file("./\ndata.json\nlogo.png\nCargo.lock"), None);
    assert_eq!(
        pick_file("./\nnotes.txt\nsrc/\n  main.rs").as_deref(),
        Some("src/main.rs")
    );
    assert_eq!(pick_file("./\nnotes.txt").as_deref(), Some("notes.txt"));
    assert_eq!(
        pick_file("./\nlink.py -> (symlink)\na/\n  b/\n    c.go").as_deref(),
        Some("a/b/c.go")
    );
}

#[test]
fn a_pause_wraps_each_answer_in_a_delay() {
    let demo = DemoSession { pause_ms: 250 };
    match demo.next_step(&conversation(&[])) {
        Step::Delay { ms, then } => {
            assert_eq!(ms, 250);
            assert_eq!(the_call(&then).0, "list_directory");
        }
        other => panic!("expected a delay, got {other:?}"),
    }
}

#[test]
fn comments_follow_the_file_type() {
    let note = |path: &str| comment_style(path).map(|style| style.comment("n"));
    assert_eq!(note("a/b.py").as_deref(), Some("# n"));
    assert_eq!(note("lib.rs").as_deref(), Some("// n"));
    assert_eq!(note("README.md").as_deref(), Some("<!-- n -->"));
    assert_eq!(note("Makefile").as_deref(), Some("# n"));
    assert_eq!(note("q.sql").as_deref(), Some("-- n"));
    assert_eq!(note("a.json"), None);
    assert_eq!(note("LICENSE"), None);
}
