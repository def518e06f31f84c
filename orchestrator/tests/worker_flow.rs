//! The worker over the real embedded parts (SQLite, in-process queue, local blobs, memory
//! cache, process runner) with a fake agent: a task from the queue to its terminal status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod worker_support;

use std::io::Read;

use orchestrator::worker::workspace_key;
use orchestrator::{InputSource, TaskLimits, TaskStatus};
use worker_support::*;

const COMPLETING_AGENT: &str = r#"[ "$1" = job ] || exit 9
printf '{"type":"task_started","task":"%s"}\n' "$AGENT_TASK"
result '{"status":"completed","turns":2}'
echo '{"type":"task_finished","status":"completed"}'
exit 0"#;

/// The text of one file in a `.tar.gz`.
fn tar_file(bytes: &[u8], name: &str) -> String {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().display().to_string() == name {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            return text;
        }
    }
    panic!("{name} not in the tarball")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_task_runs_to_completed_with_its_events_and_result() {
    let data = DataDir::new();
    data.write_agent(COMPLETING_AGENT);
    let harness = Harness::open(test_config(&data, |_| {})).await;
    let (_shutdown, _worker) = harness.start_worker();

    let task = harness
        .submit_zip(
            &[("calc.py", "def add(a, b):\n    return a - b\n")],
            TaskLimits::default(),
        )
        .await;
    let events = harness.events_until_closed(task.id).await;

    assert_eq!(
        statuses(&events),
        [
            "QUEUED",
            "PROCESSING",
            "DOWNLOADING_CODE",
            "RUNNING_AGENT",
            "UPLOADING_RESULTS",
            "COMPLETED"
        ]
    );
    let agent_events: Vec<_> = events.iter().filter(|e| e["type"] != "status").collect();
    assert_eq!(agent_events.len(), 2, "{events:?}");
    assert_eq!(agent_events[0]["task"], "fix the failing test");
    let running_at = events
        .iter()
        .position(|e| e["status"] == "RUNNING_AGENT")
        .unwrap();
    let started_at = events
        .iter()
        .position(|e| e["type"] == "task_started")
        .unwrap();
    assert!(running_at < started_at, "agent events follow RUNNING_AGENT");

    let done = harness.get(task.id).await;
    assert_eq!(done.status, TaskStatus::Completed);
    assert_eq!(
        done.message.as_deref(),
        Some("the agent finished in 2 turns")
    );
    assert_eq!(done.result.as_ref().unwrap()["status"], "completed");
    assert_eq!(done.attempt, 1);
    assert_eq!(
        done.runner_ref,
        Some(orchestrator::runner::run_name(task.id, 1).0),
        "the run is named after the task and the attempt"
    );
    assert_eq!(done.lease_holder, None, "a finished task is held by nobody");
    assert!(done.deadline_at.unwrap() > done.created_at);
    assert_eq!(
        harness.services.cache.status(task.id).await.unwrap(),
        Some(TaskStatus::Completed)
    );

    let tarball = harness
        .services
        .blobs
        .get_bytes(&workspace_key(task.id), 1 << 30)
        .await
        .unwrap();
    assert_eq!(
        tar_file(&tarball, "calc.py"),
        "def add(a, b):\n    return a - b\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_git_task_is_cloned_packed_and_run() {
    let data = DataDir::new();
    data.write_agent(COMPLETING_AGENT);
    let harness = Harness::open(test_config(&data, |_| {})).await;
    let (_shutdown, _worker) = harness.start_worker();

    let repo_dir = tempfile::tempdir().unwrap();
    let repo = git2::Repository::init(repo_dir.path()).unwrap();
    std::fs::write(repo_dir.path().join("README.md"), "hello\n").unwrap();
    let mut index = repo.index().unwrap();
    index.add_path(std::path::Path::new("README.md")).unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let who = git2::Signature::now("t", "t@example.com").unwrap();
    repo.commit(Some("HEAD"), &who, &who, "init", &tree, &[])
        .unwrap();

    let task = harness
        .submit(
            InputSource::Git {
                git_url: format!("file://{}", repo_dir.path().display()),
                git_ref: None,
            },
            TaskLimits::default(),
        )
        .await;
    harness.events_until_closed(task.id).await;

    assert_eq!(harness.get(task.id).await.status, TaskStatus::Completed);
    let tarball = harness
        .services
        .blobs
        .get_bytes(&workspace_key(task.id), 1 << 30)
        .await
        .unwrap();
    assert_eq!(tar_file(&tarball, "README.md"), "hello\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_git_ref_fails_the_task_before_any_agent_runs() {
    let data = DataDir::new();
    data.write_agent("touch \"$0.ran\"; exit 0");
    let harness = Harness::open(test_config(&data, |_| {})).await;
    let (_shutdown, _worker) = harness.start_worker();

    let repo_dir = tempfile::tempdir().unwrap();
    git2::Repository::init(repo_dir.path()).unwrap();
    let task = harness
        .submit(
            InputSource::Git {
                git_url: format!("file://{}", repo_dir.path().display()),
                git_ref: Some("no-such-branch".to_string()),
            },
            TaskLimits::default(),
        )
        .await;
    let events = harness.events_until_closed(task.id).await;

    let failed = harness.get(task.id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    let message = failed.message.unwrap();
    assert!(
        message.starts_with("cannot prepare the workspace: "),
        "{message}"
    );
    assert!(message.contains("no-such-branch"), "{message}");
    assert_eq!(
        statuses(&events),
        ["QUEUED", "PROCESSING", "DOWNLOADING_CODE", "FAILED"]
    );
    assert!(!data.path().join("fake-agent.ran").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_git_url_is_refused_unless_allowed() {
    let data = DataDir::new();
    data.write_agent(COMPLETING_AGENT);
    let config = test_config(&data, |c| c.workspace.allow_file_git_urls = false);
    let harness = Harness::open(config).await;
    let (_shutdown, _worker) = harness.start_worker();

    let repo_dir = tempfile::tempdir().unwrap();
    git2::Repository::init(repo_dir.path()).unwrap();
    let task = harness
        .submit(
            InputSource::Git {
                git_url: format!("file://{}", repo_dir.path().display()),
                git_ref: None,
            },
            TaskLimits::default(),
        )
        .await;
    harness.events_until_closed(task.id).await;

    let failed = harness.get(task.id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(
        failed
            .message
            .unwrap()
            .contains("`file` scheme is not allowed")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_zips_fail_the_task_with_the_reason() {
    let data = DataDir::new();
    data.write_agent("touch \"$0.ran\"; exit 0");
    let harness = Harness::open(test_config(&data, |_| {})).await;
    let (_shutdown, _worker) = harness.start_worker();

    let not_a_zip = {
        let key = "uploads/garbage.zip".to_string();
        harness
            .services
            .blobs
            .put_bytes(&key, b"this is not a zip".to_vec())
            .await
            .unwrap();
        let input = InputSource::Zip {
            zip_name: "garbage.zip".to_string(),
            zip_key: key,
        };
        harness.submit(input, TaskLimits::default()).await
    };
    let escaping = harness
        .submit_zip(&[("../evil.txt", "x")], TaskLimits::default())
        .await;
    let vanished = harness
        .submit(
            InputSource::Zip {
                zip_name: "gone.zip".to_string(),
                zip_key: "uploads/never-uploaded.zip".to_string(),
            },
            TaskLimits::default(),
        )
        .await;

    for (task, expected) in [
        (not_a_zip, "not a readable zip archive"),
        (escaping, "points outside the archive"),
        (vanished, "the uploaded zip could not be read back"),
    ] {
        harness.events_until_closed(task.id).await;
        let failed = harness.get(task.id).await;
        assert_eq!(failed.status, TaskStatus::Failed);
        let message = failed.message.unwrap();
        assert!(message.contains(expected), "{message}");
    }
    assert!(!data.path().join("fake-agent.ran").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_stopped_by_a_limit_fails_the_task_with_the_limit() {
    let data = DataDir::new();
    data.write_agent(
        r#"result '{"status":"limit_reached","limit":"max_turns","turns":3}'
exit 3"#,
    );
    let harness = Harness::open(test_config(&data, |_| {})).await;
    let (_shutdown, _worker) = harness.start_worker();

    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    let events = harness.events_until_closed(task.id).await;

    let failed = harness.get(task.id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(
        failed.message.as_deref(),
        Some("the agent stopped: max_turns limit reached")
    );
    assert_eq!(failed.result.unwrap()["limit"], "max_turns");
    assert_eq!(statuses(&events).last().unwrap(), "FAILED");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_that_cannot_start_fails_the_task() {
    let data = DataDir::new();
    // No agent written: the configured binary does not exist.
    let harness = Harness::open(test_config(&data, |_| {})).await;
    let (_shutdown, _worker) = harness.start_worker();

    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    harness.events_until_closed(task.id).await;

    let failed = harness.get(task.id).await;
    assert_eq!(failed.status, TaskStatus::Failed);
    assert!(failed.message.unwrap().contains("was not found"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_agent_gets_its_task_limits_and_model_endpoint() {
    let data = DataDir::new();
    data.write_agent(
        r#"printf '{"type":"env","turns":"%s","timeout":"%s","model":"%s","base":"%s","uploads":%s}\n' \
  "$AGENT_MAX_TURNS" "$AGENT_TIMEOUT_SECS" "$AGENT_MODEL" "$OPENAI_BASE_URL" "$AGENT_UPLOAD_URLS"
exit 0"#,
    );
    let config = test_config(&data, |c| {
        c.model.base_url = Some("http://127.0.0.1:1/v1".to_string());
        c.model.model = Some("configured-model".to_string());
    });
    let harness = Harness::open(config).await;
    let (_shutdown, _worker) = harness.start_worker();

    let limits = TaskLimits {
        max_turns: Some(5),
        max_tokens: None,
        timeout_secs: Some(77),
    };
    let task = harness.submit_zip(&[("a.txt", "a")], limits).await;
    let env = harness.first_event(task.id, "env").await;
    assert_eq!(env["turns"], "5");
    assert_eq!(env["timeout"], "77");
    assert_eq!(env["model"], "configured-model");
    assert_eq!(env["base"], "http://127.0.0.1:1/v1");
    let uploads = env["uploads"].as_object().unwrap();
    let mut names: Vec<_> = uploads.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "agent.log",
            "diff.patch",
            "prompt.txt",
            "result.json",
            "trajectory.jsonl"
        ]
    );
    let result_url = uploads["result.json"].as_str().unwrap();
    assert!(result_url.contains(&format!("/blobs/tasks/{}/outputs/result.json?", task.id)));
    assert!(result_url.contains("method=PUT"));
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_deliveries_run_the_task_once() {
    let data = DataDir::new();
    data.write_agent(&format!(
        "echo \"$AGENT_TASK_ID\" >> '{}'\nexit 0",
        data.path().join("runs.log").display()
    ));
    let harness = Harness::open(test_config(&data, |c| c.worker.concurrency = 1)).await;

    let first = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    harness.enqueue(first.id).await;
    harness.enqueue(first.id).await;
    let second = harness
        .submit_zip(&[("b.txt", "b")], TaskLimits::default())
        .await;
    let (_shutdown, _worker) = harness.start_worker();

    // One loop, first in first out: once the second task is done, every copy of the
    // first one's message has been handled.
    harness.events_until_closed(second.id).await;
    let runs = std::fs::read_to_string(data.path().join("runs.log")).unwrap();
    assert_eq!(runs, format!("{}\n{}\n", first.id, second.id));
    assert_eq!(harness.get(first.id).await.attempt, 1);
    assert!(harness.queue.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_task_kills_its_agent_and_frees_the_worker() {
    let data = DataDir::new();
    data.write_agent(
        r#"sleep 1000 &
echo "{\"type\":\"started\",\"child\":$!}"
wait"#,
    );
    let harness = Harness::open(test_config(&data, |c| c.worker.concurrency = 1)).await;
    let (_shutdown, _worker) = harness.start_worker();

    let task = harness
        .submit_zip(&[("a.txt", "a")], TaskLimits::default())
        .await;
    let started = harness.first_event(task.id, "started").await;
    let child = started["child"].as_i64().unwrap();
    // The API's cancel, from a process that cannot reach the run: the worker holding
    // the task must notice and stop it.
    let ops = orchestrator::TaskOps {
        runner: None,
        ..orchestrator::TaskOps::new(&harness.services)
    };
    ops.cancel(task.id, Some("alice")).await.unwrap();

    harness.events_until_closed(task.id).await;
    assert!(
        gone_eventually(child).await,
        "the agent's child outlived the cancel"
    );
    let cancelled = harness.get(task.id).await;
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    let handle = orchestrator::RunHandle(cancelled.runner_ref.unwrap());
    assert_eq!(
        harness.services.runner.status(&handle).await.unwrap(),
        orchestrator::RunStatus::NotFound
    );

    // The only worker loop is free again.
    data.write_agent("exit 0");
    let next = harness
        .submit_zip(&[("b.txt", "b")], TaskLimits::default())
        .await;
    harness.events_until_closed(next.id).await;
    assert_eq!(harness.get(next.id).await.status, TaskStatus::Completed);
}
