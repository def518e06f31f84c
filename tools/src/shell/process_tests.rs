use std::time::Duration;

use super::*;

fn invocation(program: &str, script: &str) -> ShellInvocation {
    ShellInvocation {
        program: program.into(),
        script: script.to_string(),
        working_dir: std::env::temp_dir(),
        env: std::env::vars_os().collect(),
        timeout: Duration::from_secs(30),
        output_cap_bytes: 1_000,
        sandbox: crate::sandbox::Sandbox::off(),
        workspace: std::env::temp_dir(),
    }
}

#[tokio::test]
async fn missing_shell_program_is_rejected_with_the_reason() {
    let err = run(invocation("no-such-shell-for-agent-rs", "true"))
        .await
        .unwrap_err();
    let ToolError::Rejected(message) = err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert!(
        message.contains("`no-such-shell-for-agent-rs` was not found on PATH"),
        "{message}"
    );
}

#[tokio::test]
async fn killed_by_signal_has_no_exit_code_but_names_the_signal() {
    let outcome = run(invocation("bash", "kill -SEGV $$")).await.unwrap();
    assert!(!outcome.timed_out);
    assert_eq!(outcome.exit_code(), None);
    assert_eq!(outcome.signal_name().as_deref(), Some("SIGSEGV"));
}
