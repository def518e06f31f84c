//! End to end, pull requests: the real `api` binary, the real `agent-rs job` and the
//! scripted model, a local stand-in for the GitHub REST API and bare repositories
//! receiving the pushes over `file://`.
//!
//! - A task sent with a token completes, its branch `agent/{id}` holds exactly the
//!   agent's diff on the commit the task started from, the pull request links back to the
//!   task, and the token is in no log line, event, artifact, stored file or agent output.
//! - Failures leave the task COMPLETED with a `pr_error` that names the cause (401, 404);
//!   the retry route opens it with a new token, and a 422 "already exists" ends on the
//!   pull request already open.
//! - A zip task cannot ask for a pull request (422), nor can a task still running be
//!   retried (409).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;
mod pr_support;

use e2e_support::*;
use pr_support::*;
use serde_json::{Value, json};

const GOOD_TOKEN: &str = "ghp_e2eGoodToken0123456789";
const BAD_TOKEN: &str = "ghp_e2eRevokedToken987654";

fn config(github: &FakeGitHub) -> String {
    format!(
        "[api]\nallow_file_git_urls = true\n\n\
         [orchestrator.workspace]\nallow_file_git_urls = true\n\n\
         [orchestrator.pull_requests]\napi_base = \"{}\"\n",
        github.base
    )
}

/// The task once its pull request left `REQUESTED`/`OPENING`.
async fn settled(api: &Api, id: &str) -> Value {
    let found = eventually(WAIT, || async {
        let task = api.task(id).await;
        let state = task["pull_request"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (!matches!(state.as_str(), "" | "REQUESTED" | "OPENING")).then_some(task)
    })
    .await;
    found.unwrap_or_else(|| panic!("pull request of {id} never settled:\n{}", api.log()))
}

async fn retry(api: &Api, id: &str, body: Option<Value>) -> reqwest::Response {
    let request = api
        .http
        .post(api.url(&format!("/api/v1/tasks/{id}/pull-request")))
        .bearer_auth(TOKEN);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_task_opens_a_pull_request_with_exactly_its_diff_and_the_token_stays_hidden() {
    let github = FakeGitHub::start(GOOD_TOKEN).await;
    github.know("acme/widgets");
    let repos = tempfile::tempdir().unwrap();
    let (bare, url) = bare_repo(
        repos.path(),
        "acme",
        "widgets",
        &[("calc.py", CALC_PY), ("README.md", "calc\n")],
    );
    // The agent also dumps its environment: the token must not be in it.
    let [fix, done] = fix_add_steps();
    let steps = json!([shell_step("env | sort"), fix, done]);
    let model = scripted_model(steps).await;
    let home = Home::new(&config(&github));
    let api = Api::start(&home, "127.0.0.1:0", &model).await;

    let created = api
        .submit_json(&json!({
            "git_url": url,
            "description": "Fix add\n\nIt subtracts.",
            "pull_request": {"github_token": GOOD_TOKEN},
        }))
        .await;
    let status = created.status();
    let body: Value = created.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["pull_request"]["state"], "REQUESTED", "{body}");
    assert!(!body.to_string().contains(GOOD_TOKEN));
    let id = body["id"].as_str().unwrap().to_string();
    let events = api.follow_events(&id).await;
    assert_eq!(events.last().unwrap().data["status"], "COMPLETED");

    let task = settled(&api, &id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(
        task["pull_request"]["state"],
        "OPENED",
        "{task}\n{}",
        api.log()
    );
    assert_eq!(
        task["pr_url"],
        "https://github.example.invalid/acme/widgets/pull/1"
    );
    assert!(task.get("pr_error").is_none(), "{task}");

    // The pull request: into the default branch, from the task's branch, titled from the
    // description, with the agent's final message and a link back.
    let created = github.created();
    assert_eq!(created.len(), 1, "{created:?}");
    let (repo, pr) = &created[0];
    assert_eq!(repo, "acme/widgets");
    let branch = format!("agent/{id}");
    assert_eq!(pr["head"], branch.as_str());
    assert_eq!(pr["base"], "main");
    assert_eq!(pr["title"], "Fix add");
    let pr_body = pr["body"].as_str().unwrap();
    assert!(pr_body.contains("Fixed add."), "{pr_body}");
    assert!(
        pr_body.contains(&format!("{}/api/v1/tasks/{id}", api.base)),
        "{pr_body}"
    );
    assert!(
        github
            .requests()
            .iter()
            .all(|(_, _, auth)| auth == &format!("Bearer {GOOD_TOKEN}")),
        "{:?}",
        github.requests()
    );

    // The branch is main plus exactly the agent's diff.
    let changed = git(&bare, &["diff", "--name-status", "main", &branch]);
    assert_eq!(changed.trim(), "M\tcalc.py");
    let fixed = git(&bare, &["show", &format!("{branch}:calc.py")]);
    assert_eq!(fixed, "def add(a, b):\n    return a + b\n");
    let parent = git(&bare, &["rev-parse", &format!("{branch}^")]);
    let main = git(&bare, &["rev-parse", "main"]);
    assert_eq!(parent, main);
    let pushed_diff = git(&bare, &["diff", "main", &branch]);
    let agent_diff = api.artifact(&id, "diff.patch").await;
    let changed_lines = |diff: &str| -> Vec<String> {
        diff.lines()
            .filter(|l| {
                (l.starts_with('+') || l.starts_with('-'))
                    && !l.starts_with("+++")
                    && !l.starts_with("---")
            })
            .map(str::to_string)
            .collect()
    };
    assert_eq!(changed_lines(&pushed_diff), changed_lines(&agent_diff));

    // The token is nowhere: not in the log, the events, the artifacts (the agent's `env`
    // output is in its trajectory), nor any file the server keeps (database, blobs, runs).
    assert!(!api.log().contains(GOOD_TOKEN), "token in the server log");
    for event in &events {
        assert!(
            !event.data.to_string().contains(GOOD_TOKEN),
            "token in an event"
        );
    }
    let trajectory = api.artifact(&id, "trajectory.jsonl").await;
    assert!(
        trajectory.contains("PATH="),
        "the env dump did not run: {trajectory}"
    );
    for name in ["diff.patch", "trajectory.jsonl", "result.json", "agent.log"] {
        let artifact = api.artifact(&id, name).await;
        assert!(!artifact.contains(GOOD_TOKEN), "token in {name}");
    }
    assert_eq!(
        files_containing(home.dir.path(), GOOD_TOKEN),
        Vec::<std::path::PathBuf>::new()
    );

    // Open already: asking again is a conflict.
    let again = retry(&api, &id, None).await;
    assert_eq!(again.status(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_leave_the_task_completed_with_a_clear_pr_error_and_the_retry_opens_it() {
    let github = FakeGitHub::start(GOOD_TOKEN).await;
    github.know("acme/widgets");
    let repos = tempfile::tempdir().unwrap();
    let (_, url) = bare_repo(repos.path(), "acme", "widgets", &[("calc.py", CALC_PY)]);
    let (_, unknown_url) = bare_repo(repos.path(), "acme", "hidden", &[("calc.py", CALC_PY)]);
    // Each chat request takes the next step: two tasks, two fixes.
    let [fix, done] = fix_add_steps();
    let model = scripted_model(json!([fix.clone(), done.clone(), fix, done])).await;
    let home = Home::new(&config(&github));
    let api = Api::start(&home, "127.0.0.1:0", &model).await;

    // 401: the host refuses the token.
    let id = api
        .created_id(
            api.submit_json(&json!({"git_url": url, "description": "fix add",
                "pull_request": {"github_token": BAD_TOKEN, "title": "Make add add"}}))
                .await,
        )
        .await;
    let task = settled(&api, &id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["pull_request"]["state"], "FAILED", "{task}");
    let error = task["pr_error"].as_str().unwrap();
    assert!(
        error.contains("401") && error.contains("refused the token"),
        "{error}"
    );
    assert!(task["pr_url"].is_null());
    // The diff is still there.
    assert!(
        api.artifact(&id, "diff.patch")
            .await
            .contains("return a + b")
    );

    // Retried with a good token, but a pull request is open for the branch already (422
    // "already exists"): the task ends on that one.
    github.with_open_pull_request(
        "acme/widgets",
        "https://github.example.invalid/acme/widgets/pull/7",
    );
    let retried = retry(&api, &id, Some(json!({"github_token": GOOD_TOKEN}))).await;
    assert_eq!(retried.status(), 202);
    let task = settled(&api, &id).await;
    assert_eq!(task["pull_request"]["state"], "OPENED", "{task}");
    assert_eq!(
        task["pr_url"],
        "https://github.example.invalid/acme/widgets/pull/7"
    );
    assert_eq!(task["pull_request"]["tries"], 2);
    assert_eq!(task["pull_request"]["title"], "Make add add");

    // 404: a repository the token cannot see.
    let id = api
        .created_id(
            api.submit_json(&json!({"git_url": unknown_url, "description": "fix add",
                "pull_request": {"github_token": GOOD_TOKEN}}))
                .await,
        )
        .await;
    let task = settled(&api, &id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    let error = task["pr_error"].as_str().unwrap();
    assert!(
        error.contains("404") && error.contains("acme/hidden"),
        "{error}"
    );
    // Retried once the host knows it (a token stored before is kept).
    github.know("acme/hidden");
    assert_eq!(retry(&api, &id, None).await.status(), 202);
    let task = settled(&api, &id).await;
    assert_eq!(task["pull_request"]["state"], "OPENED", "{task}");
    assert!(
        task["pr_url"]
            .as_str()
            .unwrap()
            .contains("acme/hidden/pull/"),
        "{task}"
    );

    for token in [GOOD_TOKEN, BAD_TOKEN] {
        assert!(!api.log().contains(token), "token in the server log");
        assert_eq!(
            files_containing(home.dir.path(), token),
            Vec::<std::path::PathBuf>::new()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn zip_tasks_cannot_ask_for_a_pull_request_and_unfinished_tasks_cannot_retry() {
    let github = FakeGitHub::start(GOOD_TOKEN).await;
    // A model that answers late keeps both tasks running.
    let slow =
        json!({"type": "delay", "ms": 20000, "then": {"type": "message", "content": "done"}});
    let model = scripted_model(json!([slow.clone(), slow])).await;
    let home = Home::new(&config(&github));
    let api = Api::start(&home, "127.0.0.1:0", &model).await;

    for (path, description) in [
        ("/api/v1/tasks", "description"),
        ("/api/task", "task_description"),
    ] {
        let form = reqwest::multipart::Form::new()
            .part(
                "zip_file",
                reqwest::multipart::Part::bytes(zip_of(&[("calc.py", CALC_PY)]))
                    .file_name("repo.zip"),
            )
            .text(description, "fix add")
            .text("github_token", GOOD_TOKEN);
        let response = api
            .http
            .post(api.url(path))
            .bearer_auth(TOKEN)
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 422, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("zip"), "{message}");
        assert!(!body.to_string().contains(GOOD_TOKEN));
    }
    assert!(
        home.blob_files().is_empty(),
        "a refused upload was kept: {:?}",
        home.blob_files()
    );

    // A zip task without one runs; a retry on it is refused (no remote), as on a task
    // that is still running.
    let zip_id = api
        .created_id(
            api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), "fix add")
                .await,
        )
        .await;
    let response = retry(&api, &zip_id, None).await;
    assert_eq!(response.status(), 422);
    let running = tempfile::tempdir().unwrap();
    let (_, url) = bare_repo(running.path(), "acme", "widgets", &[("calc.py", CALC_PY)]);
    let id = api
        .created_id(
            api.submit_json(&json!({"git_url": url, "description": "fix add"}))
                .await,
        )
        .await;
    let response = retry(&api, &id, Some(json!({"github_token": GOOD_TOKEN}))).await;
    assert_eq!(response.status(), 409);
    for id in [zip_id, id] {
        let cancelled = api
            .http
            .post(api.url(&format!("/api/v1/tasks/{id}/cancel")))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(cancelled.status(), 200);
    }
}
