//! `agent-rs job` end to end: the workspace from a stand-in object store over HTTP, the
//! scripted model server, the outputs PUT back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod job_support;
mod support;

use std::time::Duration;

use job_support::*;
use serde_json::json;
use support::*;

fn fix_script() -> serde_json::Value {
    json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "edit_file_content", "arguments": {"file_path": "calc.py", "old_text": "return a - b", "new_text": "return a + b"}}
        ]},
        {"type": "message", "content": "Fixed `add`."}
    ]})
}

/// A store holding the buggy Python repo, and a pristine copy of that repo.
async fn store_with_buggy_repo() -> (Store, tempfile::TempDir) {
    let pristine = tempfile::tempdir().unwrap();
    buggy_python_repo(pristine.path());
    let store = Store::start(Some(tarball_of(pristine.path()))).await;
    (store, pristine)
}

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn full_job_uploads_a_diff_that_applies_to_the_original_tree() {
    let (store, pristine) = store_with_buggy_repo().await;
    let model = server(fix_script()).await;
    let job = run_job(&job_env(&store, &model.base_url())).await;
    assert_eq!(job.code(), 0, "stderr: {}", job.stderr());

    assert_eq!(store.uploaded_names(), {
        let mut all = OUTPUTS.map(String::from).to_vec();
        all.sort();
        all
    });
    // The presigned URLs were used as given, signature and all.
    for (name, query) in store.put_log() {
        assert_eq!(
            query.as_deref(),
            Some("X-Signature=SECRETSIG"),
            "PUT of {name}"
        );
    }

    git_apply(pristine.path(), &store.upload_text("diff.patch"));
    assert_eq!(
        std::fs::read_to_string(pristine.path().join("calc.py")).unwrap(),
        "def add(a, b):\n    return a + b\n"
    );

    let result: serde_json::Value =
        serde_json::from_str(&store.upload_text("result.json")).unwrap();
    assert_eq!(result["status"], "completed");
    assert_eq!(result["final_message"], "Fixed `add`.");
    assert_eq!(result["files_changed"], 1);

    let events = json_lines(&job.stdout());
    assert_eq!(events.first().unwrap()["type"], "task_started");
    assert_eq!(events.last().unwrap()["type"], "task_finished");
    assert_eq!(events.first().unwrap()["task"], "fix the failing test");
    // The stream on stdout is the uploaded trajectory, line for line.
    assert_eq!(json_lines(&store.upload_text("trajectory.jsonl")), events);

    assert!(
        store
            .upload_text("prompt.txt")
            .contains("fix the failing test")
    );
    let log = store.upload_text("agent.log");
    assert!(
        log.contains("task-42"),
        "task id missing from agent.log:\n{log}"
    );
    assert!(log.contains("workspace unpacked"), "{log}");
    assert!(
        job.stderr().contains("agent-rs job task-42: "),
        "{}",
        job.stderr()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_signatures_never_appear_in_output_or_uploads() {
    let (store, _pristine) = store_with_buggy_repo().await;
    // The model looks for the URLs in its environment and in the job's. Without the
    // sandbox (which hides the job's process, see below) the job's `/proc` files are
    // closed to a command without CAP_SYS_PTRACE (see below); a test user holding it
    // (root on a host) reads them, and the redactor is what keeps the signatures out.
    let model = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "run_shell_command", "arguments": {"command_string": "env; cat /proc/$PPID/environ | tr '\\0' '\\n'"}}
        ]},
        {"type": "message", "content": "looked around"}
    ]}))
    .await;
    let mut env = job_env(&store, &model.base_url());
    set(&mut env, "AGENT_SANDBOX", "off");
    let job = run_job(&env).await;
    assert_eq!(job.code(), 0, "stderr: {}", job.stderr());
    assert!(
        job.stderr().contains("/ws.tar.gz?[redacted]"),
        "{}",
        job.stderr()
    );
    assert!(!job.everything_shown().contains(SIGNATURE));
    for name in OUTPUTS {
        assert!(
            !store.upload_text(name).contains(SIGNATURE),
            "{name} holds the signature"
        );
    }
    // Nor did the model see it.
    let seen = model.requests()[1].body.to_string();
    assert!(
        seen.contains("AGENT_TASK_ID"),
        "the shell output reached the model"
    );
    assert!(!seen.contains(SIGNATURE));
}

/// rot13, as `tr 'A-Za-z' 'N-ZA-Mn-za-m'` writes it: text the redactor does not know.
fn rot13(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
            _ => c,
        })
        .collect()
}

/// Inside a container the runners turn the shell sandbox off: a command runs beside the
/// job, as its user, in its `/proc`. The job's own `environ` (model key, signed URLs)
/// and `mem` stay closed to it, for root without CAP_SYS_PTRACE and CAP_SYS_ADMIN (how
/// the containers run) as for a plain user, whether it names the job as its parent or
/// hunts for it.
#[tokio::test(flavor = "multi_thread")]
async fn unsandboxed_commands_cannot_read_the_jobs_environment_through_proc() {
    const KEY: &str = "sk-job-key-never-readable";
    let (store, _pristine) = store_with_buggy_repo().await;
    // Everything read goes through rot13, so the redactor cannot hide a leak.
    let hunt = "for f in /proc/$PPID/environ /proc/$PPID/mem /proc/$PPID/task/*/environ; do \
                  tr 'A-Za-z' 'N-ZA-Mn-za-m' < $f > /dev/null && echo \"READ $f\"; done; \
                for p in /proc/[0-9]*; do \
                  if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q 'agent-rs job $'; then echo \"agent at $p\"; \
                    tr 'A-Za-z' 'N-ZA-Mn-za-m' < $p/environ; fi; done; echo hunted";
    let model = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "run_shell_command", "arguments": {"command_string": hunt}}
        ]},
        {"type": "message", "content": "looked around"}
    ]}))
    .await;
    let mut env = job_env(&store, &model.base_url());
    set(&mut env, "AGENT_SANDBOX", "off");
    set(&mut env, "OPENAI_API_KEY", KEY);
    let job = run_job_without_ptrace(&env).await;
    assert_eq!(job.code(), 0, "stderr: {}", job.stderr());

    let seen = model.requests()[1].body.to_string();
    assert!(seen.contains("hunted"), "{seen}");
    assert!(
        seen.contains("agent at /proc/"),
        "the hunt found no job: {seen}"
    );
    assert!(seen.contains("Permission denied"), "{seen}");
    assert!(!seen.contains("READ /proc/"), "{seen}");
    let leaks = [
        KEY.to_string(),
        rot13(KEY),
        rot13(SIGNATURE),
        SIGNATURE.to_string(),
    ];
    let mut everywhere = vec![seen, job.everything_shown()];
    everywhere.extend(OUTPUTS.map(|name| store.upload_text(name)));
    for text in &everywhere {
        for leak in &leaks {
            assert!(!text.contains(leak.as_str()), "`{leak}` leaked:\n{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_the_sandbox_the_job_process_and_its_environment_are_out_of_reach() {
    let (store, _pristine) = store_with_buggy_repo().await;
    let model = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "run_shell_command", "arguments": {"command_string": "cat /proc/$PPID/environ; ls /proc | grep -c '^[0-9]'"}}
        ]},
        {"type": "message", "content": "looked around"}
    ]}))
    .await;
    let job = run_job(&job_env(&store, &model.base_url())).await;
    assert_eq!(job.code(), 0, "stderr: {}", job.stderr());
    let seen = model.requests()[1].body.to_string();
    // The command's parent is the sandbox's own first process, whose environment is the
    // command's (no credentials); the job is not in its PID namespace at all.
    assert!(!seen.contains("AGENT_UPLOAD_URLS"), "{seen}");
    assert!(!seen.contains("AGENT_WORKSPACE_URL"), "{seen}");
    assert!(!seen.contains(SIGNATURE));
    let result: serde_json::Value =
        serde_json::from_str(&store.upload_text("result.json")).unwrap();
    assert_eq!(result["sandbox"]["mode"], "bwrap", "{result}");
    assert_eq!(result["sandbox"]["network"], "off", "{result}");
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_that_fail_twice_are_retried_until_they_arrive() {
    let (store, _pristine) = store_with_buggy_repo().await;
    store.fail_uploads("diff.patch", 2);
    store.fail_uploads("result.json", 2);
    let model = server(fix_script()).await;
    let job = run_job(&job_env(&store, &model.base_url())).await;
    assert_eq!(job.code(), 0, "stderr: {}", job.stderr());
    let puts_of = |file: &str| {
        store
            .put_log()
            .iter()
            .filter(|(name, _)| name == file)
            .count()
    };
    assert_eq!(puts_of("diff.patch"), 3);
    assert_eq!(puts_of("result.json"), 3);
    assert_eq!(puts_of("prompt.txt"), 1);
    assert!(
        store
            .upload_text("diff.patch")
            .contains("+    return a + b")
    );
    let log = store.upload_text("agent.log");
    assert!(log.contains("retrying"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_that_always_fails_exits_1_naming_the_file() {
    let (store, _pristine) = store_with_buggy_repo().await;
    store.fail_uploads("result.json", u32::MAX);
    let model = server(fix_script()).await;
    let job = run_job(&job_env(&store, &model.base_url())).await;
    assert_eq!(job.code(), 1, "stderr: {}", job.stderr());
    let stderr = job.stderr();
    assert!(
        stderr.contains("cannot upload result.json to http://")
            && stderr.contains("HTTP 500 Internal Server Error (after 4 attempts in "),
        "{stderr}"
    );
    assert!(!job.everything_shown().contains(SIGNATURE));
    // The other outputs still arrived.
    assert!(store.upload("diff.patch").is_some());
    assert!(store.upload("agent.log").is_some());
    assert!(store.upload("result.json").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_requested_outputs_are_uploaded_and_limits_apply() {
    let (store, _pristine) = store_with_buggy_repo().await;
    let model = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [{"name": "list_directory", "arguments": {}}]},
        {"type": "tool_calls", "calls": [{"name": "list_directory", "arguments": {}}]},
        {"type": "message", "content": "never reached"}
    ]}))
    .await;
    let mut env = job_env(&store, &model.base_url());
    set(
        &mut env,
        "AGENT_UPLOAD_URLS",
        &store.upload_urls(&["result.json"]),
    );
    set(&mut env, "AGENT_MAX_TURNS", "1");
    let job = run_job(&env).await;
    assert_eq!(job.code(), 3, "stderr: {}", job.stderr());
    assert_eq!(store.uploaded_names(), ["result.json"]);
    let result: serde_json::Value =
        serde_json::from_str(&store.upload_text("result.json")).unwrap();
    assert_eq!(result["status"], "limit_reached");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_given_work_dir_receives_the_workspace_and_the_edits() {
    let (store, _pristine) = store_with_buggy_repo().await;
    let model = server(fix_script()).await;
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("work");
    let mut env = job_env(&store, &model.base_url());
    set(&mut env, "AGENT_WORK_DIR", work.to_str().unwrap());
    let job = run_job(&env).await;
    assert_eq!(job.code(), 0, "stderr: {}", job.stderr());
    assert_eq!(
        std::fs::read_to_string(work.join("calc.py")).unwrap(),
        "def add(a, b):\n    return a + b\n"
    );
    // Outputs went elsewhere: the work folder holds only the workspace.
    let mut names: Vec<String> = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["README.md", "calc.py", "test_calc.py"]);
}

/// Unsandboxed, a process that left its group and cleared its environment carries no
/// mark for the shell tool to find; the job still kills it before it exits.
#[tokio::test(flavor = "multi_thread")]
async fn an_unmarked_escaped_process_does_not_outlive_the_job() {
    let (store, _pristine) = store_with_buggy_repo().await;
    let scratch = tempfile::tempdir().unwrap();
    let pid_file = scratch.path().join("escaped.pid");
    // The command waits until the process is `sleep` (out of the group), or the group
    // kill at its end could catch it still in `env`.
    let command = format!(
        "env -i PATH=\"$PATH\" setsid sleep 1000 >/dev/null 2>&1 & echo $! > {}; \
         until [ \"$(cat /proc/$!/comm)\" = sleep ]; do sleep 0.01; done",
        pid_file.display()
    );
    let model = server(json!({"model": "scripted", "steps": [
        {"type": "tool_calls", "calls": [
            {"name": "run_shell_command", "arguments": {"command_string": command}}
        ]},
        {"type": "message", "content": "started something"}
    ]}))
    .await;
    let mut env = job_env(&store, &model.base_url());
    set(&mut env, "AGENT_SANDBOX", "off");
    let job = run_job(&env).await;
    assert_eq!(job.code(), 0, "stderr: {}", job.stderr());
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        gone_soon(pid),
        "the escaped process outlived `agent-rs job`"
    );
}

/// An object store down for five seconds (connections refused) while the job starts:
/// the download is retried with backoff until the store is back, and the run goes on.
#[tokio::test(flavor = "multi_thread")]
async fn a_download_waits_out_a_store_refusing_connections_for_five_seconds() {
    let pristine = tempfile::tempdir().unwrap();
    buggy_python_repo(pristine.path());
    let store = Store::start_after(Duration::from_secs(5), Some(tarball_of(pristine.path()))).await;
    let model = server(fix_script()).await;
    let started = std::time::Instant::now();
    let job = run_job(&job_env(&store, &model.base_url())).await;
    assert_eq!(job.code(), 0, "stderr: {}", job.stderr());
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert_eq!(store.downloads(), 1, "served once the store was back");
    let log = store.upload_text("agent.log");
    assert!(log.contains("transfer failed; retrying"), "{log}");
    let result: serde_json::Value =
        serde_json::from_str(&store.upload_text("result.json")).unwrap();
    assert_eq!(result["status"], "completed");
}

/// A store that keeps answering 503 past the retries' time (here 2 s) ends the job
/// with exit code 5, an infrastructure failure, not 2 (bad input).
#[tokio::test(flavor = "multi_thread")]
async fn a_store_down_past_the_retries_is_an_infrastructure_failure_not_bad_input() {
    let (store, _pristine) = store_with_buggy_repo().await;
    store.fail_downloads_for(Duration::from_secs(3600));
    let model = server(fix_script()).await;
    let mut env = job_env(&store, &model.base_url());
    set(&mut env, "AGENT_DOWNLOAD_RETRY_SECS", "2");
    let started = std::time::Instant::now();
    let job = run_job(&env).await;
    assert_eq!(job.code(), 5, "stderr: {}", job.stderr());
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert!(store.downloads() >= 3, "{} downloads", store.downloads());
    let stderr = job.stderr();
    assert!(stderr.contains("HTTP 503"), "{stderr}");
    assert!(stderr.contains("infrastructure failure"), "{stderr}");
    assert!(!stderr.contains(SIGNATURE), "{stderr}");
    assert!(model.requests().is_empty(), "nothing ran");
    // The story is still uploaded.
    assert!(
        store
            .upload_text("agent.log")
            .contains("transfer failed; retrying")
    );
}
