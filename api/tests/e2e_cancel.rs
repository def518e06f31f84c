//! End to end, cancel: a task whose agent is busy in a long shell command is cancelled
//! over HTTP; the answer is CANCELLED, the agent and everything it started are gone, and
//! the event stream ends on the CANCELLED status.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use e2e_support::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_running_task_kills_its_agent_and_ends_the_stream() {
    // One step: the agent runs a command that would outlive the test by far.
    let model = scripted_model(json!([shell_step("sleep 600")])).await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;

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

    let cancelled = api
        .http
        .post(api.url(&format!("/api/v1/tasks/{id}/cancel")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let body: serde_json::Value = cancelled.json().await.unwrap();
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

    // The worker saw its run die; the task stays cancelled and cannot be cancelled again.
    assert_eq!(api.task(&id).await["status"], "CANCELLED");
    let again = api
        .http
        .post(api.url(&format!("/api/v1/tasks/{id}/cancel")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    assert_eq!(model.steps_consumed(), 1, "the agent asked the model again");
}
