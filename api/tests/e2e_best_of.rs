//! End to end, best-of-N: a zip task asks for 3 attempts with a check; the scripted
//! model makes them differ (a wrong fix, the right one, none at all), the check passes
//! only the second, and the task keeps attempt 2's diff. The attempts are listed side
//! by side with the check's verdicts and pass@k; each attempt's outputs stay its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use e2e_support::*;
use serde_json::{Value, json};

/// Passes only when `add` really adds.
const CHECK: &str = "test \"$(sed -n 2p calc.py)\" = '    return a + b'";

fn edit(new_text: &str) -> Value {
    json!({"type": "tool_calls", "calls": [{"name": "edit_file_content",
        "arguments": {"file_path": "calc.py", "old_text": "return a - b",
                      "new_text": new_text}}]})
}

fn message(content: &str) -> Value {
    json!({"type": "message", "content": content})
}

async fn submit_form(api: &Api, fields: &[(&str, &str)]) -> reqwest::Response {
    let mut form = reqwest::multipart::Form::new().part(
        "zip_file",
        reqwest::multipart::Part::bytes(zip_of(&[("calc.py", CALC_PY)])).file_name("repo.zip"),
    );
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    api.http
        .post(api.url("/api/v1/tasks"))
        .bearer_auth(TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn get_text(api: &Api, path: &str) -> (u16, String) {
    let response = api
        .http
        .get(api.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn three_attempts_keep_the_one_that_passes_the_check() {
    let model = scripted_model(json!([
        edit("return a * b"),
        message("Made it multiply."),
        edit("return a + b"),
        message("Fixed add."),
        message("Nothing to change."),
    ]))
    .await;
    let home = Home::new("[orchestrator]\nmax_attempts_per_task = 3\n");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;

    // Out of bounds, or a blank check: refused before anything is stored.
    for (attempts, check) in [("0", CHECK), ("4", CHECK), ("two", CHECK), ("2", "\u{7}")] {
        let response = submit_form(
            &api,
            &[
                ("description", "fix add"),
                ("attempts", attempts),
                ("check", check),
            ],
        )
        .await;
        assert_eq!(response.status().as_u16(), 422, "attempts {attempts}");
    }

    let response = submit_form(
        &api,
        &[
            ("description", "fix add"),
            ("attempts", "3"),
            ("check", CHECK),
        ],
    )
    .await;
    let id = api.created_id(response).await;
    let created = api.task(&id).await;
    assert_eq!(
        (created["attempts"].as_u64(), created["check"].as_str()),
        (Some(3), Some(CHECK))
    );
    let done = api
        .wait_for_status(&id, |s| {
            s == "COMPLETED" || s == "FAILED" || s == "CANCELLED"
        })
        .await;
    assert_eq!(done["status"], "COMPLETED", "{done}\n{}", api.log());
    assert_eq!(done["chosen_attempt"], 2, "{done}");
    assert_eq!(done["run_number"], 3, "{done}");
    assert_eq!(done["result"]["final_message"], "Fixed add.", "{done}");
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .contains("attempt 2 of 3 kept"),
        "{done}"
    );
    // Every attempt started from the same code: the model saw the task three times,
    // never a previous attempt's conversation.
    let fresh = model
        .requests()
        .iter()
        .filter(|r| {
            let messages = r.body["messages"].as_array().unwrap();
            !messages.iter().any(|m| m["role"] == "assistant")
        })
        .count();
    assert_eq!(fresh, 3, "three fresh conversations");

    // Side by side.
    let list = api.get_json(&format!("/api/v1/tasks/{id}/attempts")).await;
    let attempts = list["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{list}");
    let passed: Vec<&Value> = attempts.iter().map(|a| &a["passed"]).collect();
    assert_eq!(
        passed,
        [&json!(false), &json!(true), &json!(false)],
        "{list}"
    );
    let chosen: Vec<&Value> = attempts.iter().map(|a| &a["chosen"]).collect();
    assert_eq!(
        chosen,
        [&json!(false), &json!(true), &json!(false)],
        "{list}"
    );
    assert_eq!(attempts[0]["check"]["passed"], false, "{list}");
    assert_eq!(attempts[0]["check"]["exit_code"], 1, "{list}");
    assert_eq!(attempts[1]["check"]["exit_code"], 0, "{list}");
    assert_eq!(attempts[2]["files_changed"], 0, "{list}");
    assert_eq!(
        (list["chosen"].as_u64(), list["passed"].as_u64()),
        (Some(2), Some(1))
    );
    let pass_at_1 = list["pass_at_k"]["1"].as_f64().unwrap();
    assert!((pass_at_1 - 1.0 / 3.0).abs() < 1e-9, "{list}");
    assert_eq!(list["pass_at_k"]["3"], 1.0, "{list}");

    // The task's diff is attempt 2's; each attempt keeps its own.
    let diff = api.artifact(&id, "diff.patch").await;
    assert!(diff.contains("+    return a + b"), "{diff}");
    let (status, first) = get_text(
        &api,
        &format!("/api/v1/tasks/{id}/runs/1/artifacts/diff.patch"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(first.contains("+    return a * b"), "{first}");
    let (status, log) = get_text(
        &api,
        &format!("/api/v1/tasks/{id}/runs/1/artifacts/check.log"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(log.contains("exit code 1"), "{log}");

    // The runs are the attempts, each listed once.
    let runs = api.get_json(&format!("/api/v1/tasks/{id}/runs")).await;
    let numbers: Vec<u64> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| run["run_number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3], "{runs}");

    // Its runs are attempts, not a conversation: no follow-up.
    let response = api
        .http
        .post(api.url(&format!("/api/v1/tasks/{id}/messages")))
        .bearer_auth(TOKEN)
        .json(&json!({"message": "and more"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plain_task_is_unchanged_and_has_no_attempts_view() {
    let model = scripted_model(json!(fix_add_steps())).await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let id = api
        .created_id(
            api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), "fix add")
                .await,
        )
        .await;
    let done = api
        .wait_for_status(&id, |s| s == "COMPLETED" || s == "FAILED")
        .await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["attempts"], 1);
    assert!(done.get("chosen_attempt").is_none(), "{done}");
    assert!(done["result"].get("check").is_none(), "{done}");
    let (status, _) = get_text(&api, &format!("/api/v1/tasks/{id}/attempts")).await;
    assert_eq!(status, 404);
    let runs = api.get_json(&format!("/api/v1/tasks/{id}/runs")).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
}
