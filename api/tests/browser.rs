//! The web page in a real browser (headless Chromium over WebDriver) against the real
//! `api` binary, `agent-rs` and the scripted model: sign in, submit, follow live, cancel,
//! field errors, and markup shown as text. Screenshots of the list, a running task and a
//! finished diff (wide and phone-sized) land in `target/browser-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod browser_support;
mod demo_support;
mod e2e_support;

use browser_support::{Browser, ENTER, TAB};
use demo_support::DemoApi;
use e2e_support::*;
use serde_json::json;

/// Writes `bytes` to a temp file named `name` the browser's file input can take.
fn temp_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zip_task_submitted_from_the_page_is_followed_live_to_its_diff() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Pauses between turns, so the timeline is seen growing while the task runs.
    let model = scripted_model(json!([
        {"type": "tool_calls", "content": "Let me read the file.",
         "calls": [{"name": "read_file_content", "arguments": {"file_path": "calc.py"}}]},
        {"type": "delay", "ms": 2500, "then": fix_add_steps()[0]},
        {"type": "delay", "ms": 1000, "then": fix_add_steps()[1]},
    ]))
    .await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let files = tempfile::tempdir().unwrap();
    let zip = temp_file(&files, "calc.zip", &zip_of(&[("calc.py", CALC_PY)]));

    // A wrong token is refused next to its field; the right one opens the list.
    browser.goto(&api.url("/")).await;
    browser.fill("#token", "not-a-token").await;
    browser.click("form button[type=submit]").await;
    browser
        .wait_for_text("#token-error", "does not know this token")
        .await;
    browser.sign_in(&api.base, TOKEN).await;
    browser.wait_for_text("#task-list", "No tasks yet").await;

    browser.click("a[href='#/new']").await;
    browser.click("label[for=source-zip]").await;
    browser
        .find("#f-zip_file")
        .await
        .send_keys(&zip)
        .await
        .unwrap();
    browser.fill("#f-description", "fix add").await;
    browser.click("#submit-form button[type=submit]").await;

    // The task page follows the run live: no navigation happens after this marker.
    browser.find("#timeline").await;
    browser
        .eval("window.__sameDocument = true; return null;")
        .await;
    browser
        .wait_until(
            "document.querySelector('#timeline .tl-tool')",
            "a tool call in the timeline",
        )
        .await;
    let running = browser
        .eval("return document.querySelectorAll('#timeline > li').length;")
        .await
        .as_u64()
        .unwrap();
    let status = browser.visible_text("#task-status").await.unwrap();
    assert_ne!(
        status, "Completed",
        "the task finished before it was seen running"
    );
    browser.screenshot("task-running").await;

    browser.wait_for_text("#task-status", "Completed").await;
    browser
        .wait_until("window.__sameDocument === true", "no reload")
        .await;
    let finished = browser
        .eval("return document.querySelectorAll('#timeline > li').length;")
        .await
        .as_u64()
        .unwrap();
    assert!(
        finished > running,
        "the timeline grew: {running} -> {finished}"
    );
    let timeline = browser.visible_text("#timeline").await.unwrap();
    assert!(timeline.contains("read_file_content"), "{timeline}");
    assert!(timeline.contains("edit_file_content"), "{timeline}");
    assert!(timeline.contains("Agent finished"), "{timeline}");

    // The diff: the added line, coloured as added, under its file.
    browser
        .wait_for_text("#diff .line.add", "return a + b")
        .await;
    browser
        .wait_for_text("#diff .line.del", "return a - b")
        .await;
    browser.wait_for_text("#diff .file-path", "calc.py").await;
    browser.wait_for_text("#final-message", "Fixed add.").await;
    browser
        .eval("document.getElementById('diff').scrollIntoView(); return null;")
        .await;
    browser.screenshot("task-finished-diff").await;

    browser.click("a[href='#/tasks']").await;
    browser.wait_for_text("#task-list", "fix add").await;
    browser
        .wait_for_text("#task-list .badge", "Completed")
        .await;
    browser.screenshot("task-list").await;

    // A phone-sized window: the same pages, narrow.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.screenshot("task-list-narrow").await;
    browser.click("#task-list a.task-title").await;
    browser
        .wait_for_text("#diff .line.add", "return a + b")
        .await;
    browser.screenshot("task-finished-narrow").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_task_is_cancelled_from_its_page() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let model = scripted_model(json!([
        shell_step("sleep 120"),
        {"type": "message", "content": "never reached"},
    ]))
    .await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let zip = zip_of(&[("calc.py", CALC_PY)]);
    let id = api
        .created_id(api.submit_zip(zip, "wait a while").await)
        .await;

    browser.sign_in(&api.base, TOKEN).await;
    browser.goto(&api.url(&format!("/#/tasks/{id}"))).await;
    browser
        .wait_for_text("#timeline", "run_shell_command")
        .await;
    browser.wait_for_text("#task-status", "Agent running").await;
    browser.click("#cancel").await;
    browser.click("#cancel-confirm").await;

    browser.wait_for_text("#task-status", "Cancelled").await;
    assert!(
        browser.visible_text("#cancel").await.is_none(),
        "cancel still offered"
    );
    let task = api.wait_for_status(&id, |s| s == "CANCELLED").await;
    assert_eq!(task["status"], "CANCELLED");
    assert_eq!(
        model.steps_consumed(),
        1,
        "the agent went on after the cancel"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_field_is_shown_next_to_it_and_nothing_is_created() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let model = scripted_model(json!([])).await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;

    browser.sign_in(&api.base, TOKEN).await;
    // Keyboard only: Tab to "New task", Enter; type; Enter in a field submits.
    let mut reached = false;
    for _ in 0..12 {
        browser.press(TAB).await;
        let focused = browser
            .eval("return document.activeElement.getAttribute('href');")
            .await;
        if focused == json!("#/new") {
            reached = true;
            break;
        }
    }
    assert!(reached, "Tab never reached the New task link");
    browser.press(ENTER).await;
    browser.find("#submit-form").await;
    browser
        .fill("#f-git_url", "https://127.0.0.1/org/repo.git")
        .await;
    browser.fill("#f-description", "fix it").await;
    browser
        .find("#f-git_ref")
        .await
        .send_keys(ENTER)
        .await
        .unwrap();
    let error = browser.wait_for_text("#f-git_url-error", "git_url").await;
    assert!(error.contains("127.0.0.1"), "{error}");
    let invalid = browser.find("#f-git_url").await.attr("aria-invalid").await;
    assert_eq!(invalid.unwrap().as_deref(), Some("true"));
    assert!(browser.visible_text("#f-description-error").await.is_none());
    assert!(browser.visible_text("#form-error").await.is_none());
    browser.screenshot("submit-field-error").await;

    // Fixing that field and breaking another moves the error there.
    browser
        .fill("#f-git_url", "https://140.82.112.3/org/repo.git")
        .await;
    browser.fill("#f-description", "   ").await;
    browser.click("#submit-form button[type=submit]").await;
    browser
        .wait_for_text("#f-description-error", "description is blank")
        .await;
    assert!(browser.visible_text("#f-git_url-error").await.is_none());

    let list = api.get_json("/api/v1/tasks").await;
    assert_eq!(list["tasks"], json!([]), "a rejected submit created a task");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn markup_written_by_the_user_or_the_agent_is_shown_as_text() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let injected = "<script>window.__pwned = 1</script><img src=x onerror=\"window.__pwned = 2\">";
    let model = scripted_model(json!([
        {"type": "tool_calls", "content": format!("<b>bold?</b>{injected}"),
         "calls": [{"name": "edit_file_content", "arguments": {"file_path": "calc.py",
            "old_text": "return a - b", "new_text": format!("return a + b  # {injected}")}}]},
        {"type": "message", "content": format!("Done. {injected}")},
    ]))
    .await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let zip = zip_of(&[("calc.py", CALC_PY)]);
    let description = format!("{injected} fix add");
    let id = api
        .created_id(api.submit_zip(zip, &description).await)
        .await;
    api.wait_for_status(&id, |s| s == "COMPLETED").await;

    browser.sign_in(&api.base, TOKEN).await;
    browser.wait_for_text("#task-list", "<script>").await;
    browser.goto(&api.url(&format!("/#/tasks/{id}"))).await;
    browser
        .wait_for_text("#diff .line.add", "<img src=x onerror=")
        .await;
    browser
        .wait_for_text("#final-message", "<script>window.__pwned")
        .await;
    browser.wait_for_text("#timeline", "<b>bold?</b>").await;
    let heading = browser.visible_text("#task-h").await.unwrap();
    assert!(heading.starts_with("<script>"), "{heading}");
    let executed = browser
        .eval(
            "return [window.__pwned ?? null,
                     document.querySelectorAll('main script, main img, main b').length];",
        )
        .await;
    assert_eq!(executed, json!([null, 0]), "markup became elements");
    browser.screenshot("markup-as-text").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn in_demo_mode_a_zip_task_from_the_page_completes_with_its_diff() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let agent = tokio::task::spawn_blocking(agent_binary).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let api = DemoApi::start(&agent, &home.path().join("data")).await;
    let files = tempfile::tempdir().unwrap();
    let zip = temp_file(&files, "calc.zip", &zip_of(&[("calc.py", CALC_PY)]));

    // The token the banner printed is all a newcomer needs.
    browser.sign_in(&api.base, &api.token).await;
    browser.wait_for_text("#task-list", "No tasks yet").await;
    browser.click("a[href='#/new']").await;
    browser.click("label[for=source-zip]").await;
    browser
        .find("#f-zip_file")
        .await
        .send_keys(&zip)
        .await
        .unwrap();
    browser.fill("#f-description", "show me the demo").await;
    browser.click("#submit-form button[type=submit]").await;

    browser.find("#timeline").await;
    browser.wait_for_text("#timeline", "list_directory").await;
    browser.screenshot("demo-running").await;
    browser.wait_for_text("#task-status", "Completed").await;
    let timeline = browser.visible_text("#timeline").await.unwrap();
    for tool in ["list_directory", "read_file_content", "edit_file_content"] {
        assert!(timeline.contains(tool), "{tool} missing:\n{timeline}");
    }
    browser
        .wait_for_text("#diff .line.add", "# Note added by the agent-rs demo model")
        .await;
    browser.wait_for_text("#diff .file-path", "calc.py").await;
    browser
        .wait_for_text("#final-message", "built-in demo model")
        .await;
    browser
        .eval("document.getElementById('diff').scrollIntoView(); return null;")
        .await;
    browser.screenshot("demo-finished-diff").await;

    // Every artifact is offered; a click fetches it with the token and saves it.
    for name in ["diff.patch", "trajectory.jsonl", "result.json", "agent.log"] {
        browser
            .find(&format!("a.artifact[data-artifact='{name}']"))
            .await;
    }
    browser
        .eval(
            "window.__saved = []; const original = URL.createObjectURL;
             URL.createObjectURL = (blob) => { window.__saved.push(blob.size); return original(blob); };
             return null;",
        )
        .await;
    browser
        .click("a.artifact[data-artifact='diff.patch']")
        .await;
    browser
        .wait_until(
            "window.__saved.length === 1 && window.__saved[0] > 0",
            "diff.patch saved",
        )
        .await;

    // The list filters by status.
    browser.goto(&api.url("/#/tasks?status=COMPLETED")).await;
    browser
        .wait_for_text("#task-list", "show me the demo")
        .await;
    browser.goto(&api.url("/#/tasks?status=FAILED")).await;
    browser.wait_for_text("#task-list", "No failed tasks").await;
    browser.close().await;
    api.stop().await;
}
