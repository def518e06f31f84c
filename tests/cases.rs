//! The cases both profiles run. Each starts a [`Stack`] of its own (own model, own
//! names) and asserts what a user sees over HTTP.

use reqwest::RequestBuilder;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use test_support::{
    CALC_PY, SseEvent, TOKEN, WAIT, agent_runs, apply_to_original, assert_no_process_left,
    eventually, fix_add_steps, git_repo, processes_of_task, shell_step, zip_of,
};

use crate::{Profile, Stack};

const FIXED: &str = "def add(a, b):\n    return a + b\n";

/// The agent's own events (not the server's status events), in stream order.
fn agent_events(events: &[SseEvent]) -> Vec<&SseEvent> {
    events.iter().filter(|e| e.kind() != "status").collect()
}

fn statuses(events: &[SseEvent]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.kind() == "status")
        .map(|e| e.data["status"].as_str().unwrap())
        .collect()
}

/// A zip uploaded as multipart runs to COMPLETED: its events stream once and in order,
/// end on the terminal status, replay from any `Last-Event-ID`, and its `diff.patch`
/// applies to the upload with `git apply`.
pub async fn zip_task_completes_and_its_events_replay(profile: Profile) {
    let stack = Stack::start(profile, json!(fix_add_steps()), "").await;
    let api = stack.api();
    let files = [("calc.py", CALC_PY), ("README.md", "calculator\n")];

    let id = api
        .created_id(api.submit_zip(zip_of(&files), "fix add").await)
        .await;
    let events = api.follow_events(&id).await;

    let ids: Vec<u64> = events.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(events.last().unwrap().data["status"], "COMPLETED");
    let statuses = statuses(&events);
    assert_eq!(statuses.first(), Some(&"QUEUED"), "{statuses:?}");
    assert!(statuses.contains(&"RUNNING_AGENT"), "{statuses:?}");
    let agent = agent_events(&events);
    let kinds: Vec<&str> = agent.iter().map(|e| e.kind()).collect();
    assert_eq!(kinds.first(), Some(&"task_started"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"task_finished"), "{kinds:?}");
    assert!(kinds.contains(&"tool_call"), "{kinds:?}");
    let seqs: Vec<u64> = agent
        .iter()
        .map(|e| e.data["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "agent events missing or out of order"
    );

    let task = api.task(&id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["result"]["final_message"], "Fixed add.");
    let diff = api.artifact(&id, "diff.patch").await;
    assert_eq!(apply_to_original(&files, &diff), FIXED);
    let result: Value = serde_json::from_str(&api.artifact(&id, "result.json").await).unwrap();
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["files_changed"], 1, "{result}");

    // A client that reconnects with Last-Event-ID gets exactly the rest.
    let middle = ids[ids.len() / 2];
    let replayed: Vec<u64> = api
        .events_after(&id, middle)
        .await
        .iter()
        .filter_map(|e| e.id)
        .collect();
    let expected: Vec<u64> = ids.iter().copied().filter(|n| *n > middle).collect();
    assert_eq!(replayed, expected);
    assert_eq!(agent_runs(&stack.model), 1, "the agent ran once");
}

/// A git URL sent as JSON is cloned by the worker and comes out COMPLETED with a diff
/// that applies to the repository's file.
pub async fn git_task_completes_with_a_diff(profile: Profile) {
    // file:// is refused unless both the API's check and the worker's clone allow it.
    let config = "[api]\nallow_file_git_urls = true\n\n\
                  [orchestrator.workspace]\nallow_file_git_urls = true\n";
    let stack = Stack::start(profile, json!(fix_add_steps()), config).await;
    let api = stack.api();
    let repo = tempfile::tempdir().unwrap();
    git_repo(repo.path());

    let url = format!("file://{}", repo.path().display());
    let body = json!({"git_url": url, "git_ref": "main", "description": "fix add"});
    let id = api.created_id(api.submit_json(&body).await).await;
    let events = api.follow_events(&id).await;
    assert_eq!(events.last().unwrap().data["status"], "COMPLETED");
    let task = api.task(&id).await;
    assert_eq!(task["status"], "COMPLETED", "{task}");
    assert_eq!(task["input"]["type"], "GIT");
    let diff = api.artifact(&id, "diff.patch").await;
    assert_eq!(apply_to_original(&[("calc.py", CALC_PY)], &diff), FIXED);
}

/// A task whose agent is busy in a long shell command is cancelled over HTTP: the answer
/// is CANCELLED, the agent and everything it started are gone, the event stream ends on
/// the CANCELLED status, and a second cancel is a conflict.
pub async fn cancelling_a_running_task_kills_its_agent(profile: Profile) {
    let stack = Stack::start(profile, json!([shell_step("sleep 600")]), "").await;
    let api = stack.api();
    let id = api
        .created_id(
            api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), "wait")
                .await,
        )
        .await;
    let mut events = api.open_events(&id).await;
    events.until(|e| e.kind() == "tool_call").await;
    // The agent and its shell (which inherits AGENT_TASK_ID) are both up.
    let running = eventually(WAIT, || async {
        let pids = processes_of_task(&id);
        (pids.len() >= 2).then_some(pids)
    })
    .await;
    assert!(running.is_some(), "the shell command never started");

    let cancel = || {
        api.http
            .post(api.url(&format!("/api/v1/tasks/{id}/cancel")))
            .bearer_auth(TOKEN)
            .send()
    };
    let cancelled = cancel().await.unwrap();
    assert_eq!(cancelled.status(), 200);
    let body: Value = cancelled.json().await.unwrap();
    assert_eq!(body["status"], "CANCELLED", "{body}");
    assert_no_process_left(&id).await;

    let last = events
        .until(|e| e.kind() == "status" && e.data["status"] != "RUNNING_AGENT")
        .await;
    assert_eq!(last.data["status"], "CANCELLED", "{last:?}");
    let rest = tokio::time::timeout(WAIT, events.next()).await;
    assert!(
        matches!(rest, Ok(None)),
        "the stream went on after CANCELLED: {rest:?}"
    );
    assert_eq!(api.task(&id).await["status"], "CANCELLED");
    assert_eq!(cancel().await.unwrap().status(), 409);
    assert_eq!(
        stack.model.steps_consumed(),
        1,
        "the agent asked the model again"
    );
}

/// Small enough that an oversized multipart body is cheap to send.
const MULTIPART_LIMIT: usize = 64 * 1024;
const PUBLIC_GIT: &str = "https://140.82.112.3/o/r.git";

fn zip_form(zip: Vec<u8>, description: Option<&str>) -> Form {
    let form = Form::new().part("zip_file", Part::bytes(zip).file_name("repo.zip"));
    match description {
        Some(text) => form.text("description", text.to_string()),
        None => form,
    }
}

/// Sends `request` and checks its status and that its error message mentions `reason`.
async fn expect_refused(name: &str, request: RequestBuilder, status: u16, reason: &str) {
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => panic!("{name}: no answer: {err}"),
    };
    assert_eq!(response.status(), status, "{name}");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(reason),
        "{name}: `{message}` does not mention `{reason}`"
    );
}

/// Every malformed or hostile create gets its 4xx with a message naming the problem, and
/// afterwards there is no task and no agent run (and, embedded, no blob: the cluster's
/// bucket is shared by every test, so its emptiness says nothing there).
pub async fn hostile_creates_are_refused_and_leave_nothing(profile: Profile) {
    let never = json!([{"type": "message", "content": "never asked"}]);
    let config = format!("[api]\nmultipart_body_limit = {MULTIPART_LIMIT}\n");
    let stack = Stack::start(profile, never, &config).await;
    let api = stack.api();
    let blobs_before = stack.home().blob_files();
    let create = || api.http.post(api.url("/api/v1/tasks")).bearer_auth(TOKEN);
    let good_zip = zip_of(&[("calc.py", CALC_PY)]);
    let git = |url: &str| json!({"git_url": url, "description": "x"});

    let cases: Vec<(&str, RequestBuilder, u16, &str)> = vec![
        (
            "JSON without a description",
            create().json(&json!({"git_url": PUBLIC_GIT})),
            422,
            "description",
        ),
        (
            "blank description",
            create().json(&json!({"git_url": PUBLIC_GIT, "description": "  "})),
            422,
            "description",
        ),
        (
            "zip without a description",
            create().multipart(zip_form(good_zip.clone(), None)),
            422,
            "description",
        ),
        (
            "file:// URL (not allowed by default)",
            create().json(&git("file:///etc")),
            422,
            "`file`",
        ),
        (
            "private git host",
            create().json(&git("https://10.1.2.3/o/r.git")),
            422,
            "private",
        ),
        (
            "loopback git host",
            create().json(&git("https://127.0.0.1/o/r.git")),
            422,
            "loopback",
        ),
        (
            "metadata git host",
            create().json(&git("https://169.254.169.254/r")),
            422,
            "metadata",
        ),
        (
            "upload that is not a zip",
            create().multipart(zip_form(b"just some text, no zip".repeat(4), Some("x"))),
            422,
            "not a zip",
        ),
        (
            "zip entry escaping the root",
            create().multipart(zip_form(
                zip_of(&[("ok.txt", "fine"), ("../../x", "escape")]),
                Some("x"),
            )),
            422,
            "../../x",
        ),
        (
            "unknown JSON field",
            create().json(&json!({"git_url": PUBLIC_GIT, "description": "x", "branch": "main"})),
            422,
            "`branch`",
        ),
        (
            "unknown multipart field",
            create().multipart(zip_form(good_zip.clone(), Some("x")).text("priority", "high")),
            422,
            "`priority`",
        ),
        (
            "malformed JSON",
            create()
                .header("content-type", "application/json")
                .body("{\"git_url\": "),
            400,
            "JSON",
        ),
        (
            "neither JSON nor multipart",
            create().header("content-type", "text/plain").body("fix it"),
            415,
            "text/plain",
        ),
        (
            "JSON body over the limit",
            create().json(&json!({"git_url": PUBLIC_GIT, "description": "x".repeat(1_100_000)})),
            413,
            "limit",
        ),
        (
            "multipart body over the limit",
            create().multipart(zip_form(vec![b'P'; 2 * MULTIPART_LIMIT], Some("x"))),
            413,
            "too large",
        ),
        (
            "no token",
            api.http
                .post(api.url("/api/v1/tasks"))
                .json(&git(PUBLIC_GIT)),
            401,
            "token",
        ),
        (
            "unknown token",
            api.http
                .post(api.url("/api/v1/tasks"))
                .bearer_auth("not-the-token")
                .json(&git(PUBLIC_GIT)),
            401,
            "token",
        ),
    ];
    for (name, request, status, reason) in cases {
        expect_refused(name, request, status, reason).await;
    }

    let listed = api.get_json("/api/v1/tasks").await;
    assert_eq!(listed["tasks"], json!([]), "a task was stored: {listed}");
    if profile == Profile::Embedded {
        assert_eq!(
            stack.home().blob_files(),
            blobs_before,
            "a blob was left behind"
        );
    }
    assert_eq!(stack.model.steps_consumed(), 0, "an agent ran");
}
