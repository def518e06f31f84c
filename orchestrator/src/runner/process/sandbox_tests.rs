//! The agent's view from inside the embedded runner's sandbox: its own run only.
//!
//! The fake agent tries each escape and reports what worked as one JSON event. These
//! need bubblewrap (`scripts/test` installs it): without it they fail under `CI=true`
//! and are skipped, saying so, elsewhere.

use std::path::Path;

use super::tests::{collect, fake_agent, spec};
use super::*;

/// An agent that tries to read the data folder, another run's folder and the server's
/// environment, and to write outside `/tmp`, then prints what succeeded.
const ESCAPES: &str = r#"
try() { if eval "$1" >/dev/null 2>&1; then echo true; else echo false; fi; }
printf '{"data":%s,"other_run":%s,"server_environ":%s,"write_outside":%s,"tmp":%s,"pid":%s}\n' \
  "$(try 'cat "$DATA/tasks.db"')" \
  "$(try 'cat "$RUNS/agent-other-1/secret"')" \
  "$(try 'cat /proc/$SERVER_PID/environ')" \
  "$(try 'echo x > "$OUTSIDE/escaped"')" \
  "$(try 'echo x > /tmp/inside')" \
  "$$"
"#;

struct Layout {
    root: tempfile::TempDir,
}

impl Layout {
    fn new() -> Self {
        // Outside /tmp, which is private inside the sandbox (a write there proves nothing).
        let parent = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tmp");
        std::fs::create_dir_all(&parent).unwrap();
        let root = tempfile::tempdir_in(parent).unwrap();
        let path = root.path();
        std::fs::create_dir_all(path.join("data/runs/agent-other-1")).unwrap();
        std::fs::create_dir_all(path.join("outside")).unwrap();
        std::fs::write(path.join("data/tasks.db"), "rows").unwrap();
        std::fs::write(path.join("data/runs/agent-other-1/secret"), "theirs").unwrap();
        Self { root }
    }

    fn path(&self) -> &Path {
        self.root.path()
    }

    fn runner(&self, sandbox: RunSandbox) -> ProcessRunner {
        let agent = fake_agent(self.path(), ESCAPES);
        ProcessRunner::new(
            agent,
            self.path().join("data/runs"),
            Duration::from_millis(300),
        )
        .with_sandbox(sandbox)
    }

    fn env(&self) -> Vec<(String, String)> {
        let p = |rel: &str| self.path().join(rel).display().to_string();
        vec![
            ("DATA".into(), p("data")),
            ("RUNS".into(), p("data/runs")),
            ("OUTSIDE".into(), p("outside")),
            ("SERVER_PID".into(), std::process::id().to_string()),
        ]
    }

    /// Launches the escaping agent and returns what it reported.
    async fn report(&self, sandbox: RunSandbox) -> serde_json::Value {
        let runner = self.runner(sandbox);
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let handle = runner.launch(spec(TaskId::new(), &env)).await.unwrap();
        let events = collect(runner.watch(&handle, 0).await.unwrap()).await;
        match &events[..] {
            [
                RunnerEvent::AgentEvent(report),
                RunnerEvent::Exited { code: Some(0), .. },
            ] => report.clone(),
            other => panic!("unexpected events: {other:?}"),
        }
    }
}

fn bwrap_or_skip(layout: &Layout) -> Option<RunSandbox> {
    let path = std::env::var_os("PATH");
    let sandbox = RunSandbox::resolve(
        &RunSandboxConfig {
            mode: RunSandboxMode::Auto,
            ..RunSandboxConfig::default()
        },
        vec![layout.path().join("data")],
        None,
        path.as_deref(),
    );
    if sandbox.mode() == "bwrap" {
        return Some(sandbox);
    }
    let reason = sandbox.agent_argv(Path::new("x"), None).err();
    assert_ne!(
        std::env::var("CI").as_deref(),
        Ok("true"),
        "the runner's sandbox must work in CI: {reason:?}"
    );
    eprintln!("skipping: {reason:?}");
    None
}

#[tokio::test]
async fn a_sandboxed_agent_sees_neither_the_data_folder_nor_other_runs_nor_the_server() {
    let layout = Layout::new();
    let Some(sandbox) = bwrap_or_skip(&layout) else {
        return;
    };
    let report = layout.report(sandbox).await;
    assert_eq!(report["data"], false, "{report}");
    assert_eq!(report["other_run"], false, "{report}");
    assert_eq!(report["server_environ"], false, "{report}");
    assert_eq!(report["write_outside"], false, "{report}");
    assert_eq!(report["tmp"], true, "{report}");
    // Its own PID namespace: the agent is one of the first processes there.
    assert!(report["pid"].as_i64().unwrap() < 10, "{report}");
    assert!(!layout.path().join("outside/escaped").exists());
    // Its own run's folder is written by the supervisor outside the sandbox as before.
    let runs = std::fs::read_dir(layout.path().join("data/runs"))
        .unwrap()
        .count();
    assert!(runs >= 2, "the run's folder is missing");
}

#[tokio::test]
async fn without_the_sandbox_the_same_agent_reaches_everything() {
    let layout = Layout::new();
    let report = layout.report(RunSandbox::off()).await;
    assert_eq!(report["data"], true, "{report}");
    assert_eq!(report["other_run"], true, "{report}");
    assert_eq!(report["server_environ"], true, "{report}");
    assert_eq!(report["write_outside"], true, "{report}");
}

#[tokio::test]
async fn a_sandboxed_run_is_found_and_cancelled_by_a_restarted_server() {
    let layout = Layout::new();
    let Some(sandbox) = bwrap_or_skip(&layout) else {
        return;
    };
    let agent = fake_agent(layout.path(), "echo '{\"type\":\"started\"}'; sleep 300");
    let runner = ProcessRunner::new(
        agent,
        layout.path().join("data/runs"),
        Duration::from_millis(300),
    )
    .with_sandbox(sandbox);
    let handle = runner.launch(spec(TaskId::new(), &[])).await.unwrap();
    let restarted = ProcessRunner::new(
        PathBuf::from("/nonexistent"),
        layout.path().join("data/runs"),
        Duration::from_millis(300),
    );
    let mut events = restarted.watch(&handle, 0).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(30), events.next())
        .await
        .unwrap();
    assert!(
        matches!(first, Some(RunnerEvent::AgentEvent(_))),
        "{first:?}"
    );
    assert_eq!(restarted.status(&handle).await.unwrap(), RunStatus::Running);
    restarted.cancel(&handle).await.unwrap();
    assert_eq!(
        restarted.status(&handle).await.unwrap(),
        RunStatus::NotFound
    );
}
