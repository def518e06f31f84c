use std::time::Duration;

use super::*;
use crate::shell::direct::on_child_path;
use nix::unistd::Pid;

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

/// A process that left the group and cleared its environment carries no mark: the call
/// cannot kill it, and must not say it did.
#[tokio::test]
async fn a_process_out_of_every_reach_is_reported_as_still_running() {
    let marker = tempfile::NamedTempFile::new().unwrap();
    let script = format!(
        "env -i setsid sh -c 'echo $$ > {}; exec sleep 30' &\nsleep 0.1",
        marker.path().display()
    );
    let outcome = run(invocation("bash", &script)).await.unwrap();
    let pid: i32 = std::fs::read_to_string(marker.path())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let alive = nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok();
    let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
    assert!(
        alive,
        "expected the process to outlive the call in this test"
    );
    assert!(outcome.background_killed);
    assert!(outcome.background_survived);
    let output = crate::shell::report::render(
        outcome,
        crate::shell::report::TimeoutChoice {
            secs: 30,
            clamped_from: None,
        },
        &crate::sandbox::Sandbox::off().summary(),
    );
    assert!(
        output
            .content
            .contains("keeps running until the agent exits"),
        "{}",
        output.content
    );
    assert!(
        !output.content.contains("it was killed"),
        "{}",
        output.content
    );
}

#[test]
fn the_shell_is_found_on_the_childs_path_as_a_full_path() {
    let env = |path: &str| vec![(OsString::from("PATH"), OsString::from(path))];
    let sh = OsString::from("sh");
    let found = on_child_path(&sh, &env("/nonexistent:/usr/bin:/bin"));
    assert!(
        std::path::Path::new(&found).is_absolute(),
        "{found:?} is not a full path"
    );
    assert!(std::path::Path::new(&found).ends_with("sh"));
    // Left to the child: a path, no PATH, a relative folder first, a name found nowhere.
    let given = OsString::from("./sh");
    assert_eq!(on_child_path(&given, &env("/usr/bin:/bin")), given);
    assert_eq!(on_child_path(&sh, &[]), sh);
    assert_eq!(on_child_path(&sh, &env("bin:/usr/bin:/bin")), sh);
    let missing = OsString::from("no-such-program-here");
    assert_eq!(on_child_path(&missing, &env("/usr/bin:/bin")), missing);
}

#[test]
fn a_program_found_once_is_looked_up_again_when_it_is_gone() {
    use std::os::unix::fs::PermissionsExt;
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let install = |dir: &std::path::Path| {
        let program = dir.join("agent-rs-lookup-probe");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        program
    };
    let path = std::env::join_paths([first.path(), second.path()]).unwrap();
    let env = vec![(OsString::from("PATH"), path)];
    let name = OsString::from("agent-rs-lookup-probe");
    let in_second = install(second.path());
    assert_eq!(on_child_path(&name, &env), in_second.as_os_str());
    // Still there: still the one found, even with another now earlier on PATH.
    let in_first = install(first.path());
    assert_eq!(on_child_path(&name, &env), in_second.as_os_str());
    // Gone: looked up again.
    std::fs::remove_file(&in_second).unwrap();
    assert_eq!(on_child_path(&name, &env), in_first.as_os_str());
    std::fs::remove_file(&in_first).unwrap();
    assert_eq!(on_child_path(&name, &env), name);
}
