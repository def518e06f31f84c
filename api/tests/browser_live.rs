//! The page keeping itself current in a real browser (headless Chromium over WebDriver)
//! against the real `api` binary, `agent-rs` and the scripted model: the task list shows
//! a task submitted elsewhere and its status moves without a reload or polling, a
//! follow-up sent from a finished task's page runs as its next run, on the same page, a
//! pull request that failed shows why and is retried from the page to its link, and a
//! best-of-N task submitted from the page is followed attempt by attempt to its
//! attempts side by side.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod browser_support;
mod e2e_support;
mod pr_support;

use browser_support::Browser;
use e2e_support::*;
use pr_support::{FakeGitHub, bare_repo};
use serde_json::json;

/// Counts the page's calls to the list route from now on (`window.__listCalls`).
const COUNT_LIST_CALLS: &str = "window.__listCalls = 0; window.__sameDocument = true;
    const original = window.fetch;
    window.fetch = (url, options) => {
      if (String(url).startsWith('/api/v1/tasks?')) window.__listCalls += 1;
      return original(url, options);
    };
    return null;";

#[tokio::test(flavor = "multi_thread")]
async fn the_list_shows_a_new_task_and_its_status_changes_without_a_reload() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Slow enough that the running status is seen before the end.
    let model = scripted_model(json!([
        {"type": "delay", "ms": 3000, "then": fix_add_steps()[0]},
        fix_add_steps()[1],
    ]))
    .await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;

    browser.sign_in(&api.base, TOKEN).await;
    browser.wait_for_text("#task-list", "No tasks yet").await;
    browser.wait_for_text("#list-live", "live").await;
    browser.eval(COUNT_LIST_CALLS).await;

    // Submitted by another client: the page hears of it from the updates stream.
    let id = api
        .created_id(
            api.submit_zip(zip_of(&[("calc.py", CALC_PY)]), "fix add elsewhere")
                .await,
        )
        .await;
    let row = format!("#task-list li[data-id='{id}']");
    browser.wait_for_text(&row, "fix add elsewhere").await;
    browser
        .wait_until(
            &format!("document.querySelector(\"{row}\").dataset.status === 'RUNNING_AGENT'"),
            "the row shows the agent running",
        )
        .await;
    browser
        .wait_for_text(&format!("{row} .badge"), "Agent running")
        .await;
    browser.screenshot("task-list-live").await;
    browser
        .wait_for_text(&format!("{row} .badge"), "Completed")
        .await;
    browser
        .wait_for_text(&format!("{row} .task-duration"), "took")
        .await;
    assert!(
        browser.visible_text("#task-list .empty").await.is_none(),
        "the empty notice stayed"
    );
    browser
        .wait_until("window.__sameDocument === true", "no reload")
        .await;
    let calls = browser.eval("return window.__listCalls;").await;
    assert_eq!(calls, json!(0), "the list polled the API");

    // A filtered list takes a task in when it reaches the status, from the same stream.
    browser.goto(&api.url("/#/tasks?status=COMPLETED")).await;
    browser.wait_for_text(&row, "fix add elsewhere").await;
    browser.goto(&api.url("/#/tasks?status=QUEUED")).await;
    browser.wait_for_text("#task-list", "No queued tasks").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follow_up_sent_from_the_page_runs_as_the_tasks_next_run() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let mut steps = fix_add_steps().to_vec();
    steps.push(
        json!({"type": "tool_calls", "calls": [{"name": "edit_file_content",
        "arguments": {"file_path": "README.md", "old_text": "calculator",
                      "new_text": "calculator: add works"}}]}),
    );
    steps.push(json!({"type": "message", "content": "Documented it."}));
    let model = scripted_model(json!(steps)).await;
    let home = Home::new("");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let zip = zip_of(&[("calc.py", CALC_PY), ("README.md", "calculator\n")]);
    let id = api.created_id(api.submit_zip(zip, "fix add").await).await;
    api.wait_for_status(&id, |s| s == "COMPLETED").await;

    browser.sign_in(&api.base, TOKEN).await;
    browser.goto(&api.url(&format!("/#/tasks/{id}"))).await;
    browser
        .wait_for_text("#diff .line.add", "return a + b")
        .await;
    assert!(
        browser.visible_text("#runs").await.is_none(),
        "a one-run task lists no runs"
    );
    browser
        .eval("window.__sameDocument = true; return null;")
        .await;

    // A blank message is refused next to the box, and nothing is sent.
    browser.click("#follow-up-send").await;
    browser
        .wait_for_text("#follow-up-message-error", "what the agent should do next")
        .await;
    browser
        .fill("#follow-up-message", "now document it in the README")
        .await;
    browser.click("#follow-up-send").await;

    // The page follows run 2 live, to its end, and shows both runs' changes.
    browser.wait_for_text("#run-number", "2").await;
    browser
        .wait_for_text("#task-follow-up", "now document it in the README")
        .await;
    browser.wait_for_text("#task-status", "Completed").await;
    browser
        .wait_for_text("#diff .line.add", "calculator: add works")
        .await;
    browser.wait_for_text("#diff", "return a + b").await;
    browser
        .wait_for_text("#final-message", "Documented it.")
        .await;
    browser.find("a.artifact[data-artifact='step.patch']").await;
    browser
        .wait_until("window.__sameDocument === true", "no reload")
        .await;

    // The runs in order; run 1's own timeline and artifacts on demand.
    browser
        .wait_until(
            "document.querySelectorAll('#runs-list > li.run').length === 2",
            "two runs listed",
        )
        .await;
    let runs = browser.visible_text("#runs-list").await.unwrap();
    let first = runs.find("Run 1").unwrap();
    let second = runs.find("Run 2").unwrap();
    assert!(first < second, "{runs}");
    assert!(runs.contains("now document it in the README"), "{runs}");
    browser
        .click("#runs-list li[data-run='1'] details > summary")
        .await;
    browser
        .wait_for_text("#runs-list li[data-run='1'] .timeline", "edit_file_content")
        .await;
    browser
        .find("#runs-list li[data-run='1'] a.artifact[data-artifact='diff.patch'][data-run='1']")
        .await;
    let task = api.task(&id).await;
    assert_eq!(task["run_number"], 2);
    browser.screenshot("task-follow-up").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_pull_request_shows_why_and_is_retried_from_the_page() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    const GOOD: &str = "ghp_browserGoodToken012345";
    const BAD: &str = "ghp_browserRevokedToken98765";
    let github = FakeGitHub::start(GOOD).await;
    github.know("acme/widgets");
    let repos = tempfile::tempdir().unwrap();
    let (_, url) = bare_repo(repos.path(), "acme", "widgets", &[("calc.py", CALC_PY)]);
    let model = scripted_model(json!(fix_add_steps())).await;
    let home = Home::new(&format!(
        "[api]\nallow_file_git_urls = true\n\n\
         [orchestrator.workspace]\nallow_file_git_urls = true\n\n\
         [orchestrator.pull_requests]\napi_base = \"{}\"\n",
        github.base
    ));
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let id = api
        .created_id(
            api.submit_json(&json!({"git_url": url, "description": "fix add",
                "pull_request": {"github_token": BAD}}))
                .await,
        )
        .await;

    browser.sign_in(&api.base, TOKEN).await;
    browser.goto(&api.url(&format!("/#/tasks/{id}"))).await;
    let error = browser.wait_for_text("#pr-error", "401").await;
    assert!(error.contains("refused the token"), "{error}");
    browser.fill("#pr-token", GOOD).await;
    browser.click("#pr-retry").await;
    let link = browser
        .wait_for_text("#pr-link", "acme/widgets/pull/")
        .await;
    assert!(
        link.starts_with("https://github.example.invalid/"),
        "{link}"
    );
    let href = browser.find("#pr-link").await.attr("href").await.unwrap();
    assert_eq!(href.as_deref(), Some(link.as_str()));
    assert!(
        browser.visible_text("#pr-error").await.is_none(),
        "the error stayed"
    );
    let page = browser.page_text().await;
    assert!(
        !page.contains(GOOD) && !page.contains(BAD),
        "a token on the page"
    );
    browser.screenshot("task-pull-request").await;
    browser.close().await;
}

/// Passes only when `add` really adds.
const CHECK: &str = "test \"$(sed -n 2p calc.py)\" = '    return a + b'";

fn edit_add(new_text: &str) -> serde_json::Value {
    json!({"type": "tool_calls", "calls": [{"name": "edit_file_content",
        "arguments": {"file_path": "calc.py", "old_text": "return a - b", "new_text": new_text}}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_best_of_three_task_from_the_page_shows_its_attempts_side_by_side() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Attempt 1 breaks add another way, attempt 2 (slow, so it is seen running) fixes
    // it, attempt 3 changes nothing; the check passes attempt 2 only.
    let model = scripted_model(json!([
        edit_add("return a * b"),
        {"type": "message", "content": "Made it multiply."},
        {"type": "delay", "ms": 4000, "then": edit_add("return a + b")},
        {"type": "message", "content": "Fixed add."},
        {"type": "message", "content": "Nothing to change."},
    ]))
    .await;
    let home = Home::new("[orchestrator]\nmax_attempts_per_task = 3\n");
    let api = Api::start(&home, "127.0.0.1:0", &model).await;
    let files = tempfile::tempdir().unwrap();
    let zip = files.path().join("calc.zip");
    std::fs::write(&zip, zip_of(&[("calc.py", CALC_PY)])).unwrap();

    browser.sign_in(&api.base, TOKEN).await;
    browser.click("a[href='#/new']").await;
    browser.click("label[for=source-zip]").await;
    browser
        .find("#f-zip_file")
        .await
        .send_keys(zip.to_str().unwrap())
        .await
        .unwrap();
    browser.fill("#f-description", "fix add").await;
    browser.click("#best-of > summary").await;
    // Over the server's bound: refused next to the field, nothing created.
    browser.fill("#f-attempts", "4").await;
    browser.fill("#f-check", CHECK).await;
    browser.click("#submit-form button[type=submit]").await;
    browser
        .wait_for_text("#f-attempts-error", "between 1 and 3")
        .await;
    let list = api.get_json("/api/v1/tasks").await;
    assert_eq!(list["tasks"], json!([]), "a refused submit created a task");
    browser.fill("#f-attempts", "3").await;
    browser.click("#submit-form button[type=submit]").await;

    // Followed live, attempt after attempt, on one page.
    browser.find("#timeline").await;
    browser
        .eval("window.__sameDocument = true; return null;")
        .await;
    browser
        .wait_until(
            "document.querySelector('#attempt-number')?.textContent === '2 of 3'",
            "attempt 2 followed live",
        )
        .await;
    browser
        .wait_for_text(
            "#attempts-list li[data-attempt='1']",
            "Check failed (exit code 1)",
        )
        .await;
    let running = browser.visible_text("#task-status").await.unwrap();
    assert_ne!(
        running, "Completed",
        "the task ended before attempt 2 was seen"
    );
    browser.screenshot("task-attempts-running").await;
    browser.wait_for_text("#task-status", "Completed").await;
    browser
        .wait_until("window.__sameDocument === true", "no reload")
        .await;

    // Side by side: each attempt's status and check, the kept one marked.
    let summary = browser
        .wait_for_text("#attempts-summary", "Attempt 2 kept")
        .await;
    assert!(summary.contains("1 of 3 passed the check"), "{summary}");
    assert!(summary.contains("pass@1 33%"), "{summary}");
    assert!(summary.contains("pass@3 100%"), "{summary}");
    let states = browser
        .eval(
            "return [...document.querySelectorAll('#attempts-list > li.attempt')]
               .map((li) => [li.dataset.attempt, li.dataset.status, li.dataset.passed, li.dataset.chosen]);",
        )
        .await;
    assert_eq!(
        states,
        json!([
            ["1", "COMPLETED", "false", "false"],
            ["2", "COMPLETED", "true", "true"],
            ["3", "COMPLETED", "false", "false"],
        ])
    );
    browser
        .wait_for_text("#attempts-list li[data-attempt='2'] .kept", "Kept")
        .await;
    browser
        .wait_for_text("#attempts-list li[data-attempt='2'] .check", "Check passed")
        .await;
    browser
        .wait_for_text("#attempts-list li[data-attempt='3']", "0 files changed")
        .await;
    browser
        .wait_for_text("#attempt-number", "2 of 3 kept")
        .await;

    // The task's diff is the kept attempt's; each attempt's own diff opens in place.
    browser.wait_for_text("#diff-h", "attempt 2, kept").await;
    browser
        .wait_for_text("#diff .line.add", "return a + b")
        .await;
    browser
        .click("#attempts-list li[data-attempt='1'] details.attempt-diff > summary")
        .await;
    browser
        .wait_for_text(
            "#attempts-list li[data-attempt='1'] .line.add",
            "return a * b",
        )
        .await;
    browser
        .click("#attempts-list li[data-attempt='3'] details.attempt-diff > summary")
        .await;
    browser
        .wait_for_text(
            "#attempts-list li[data-attempt='3']",
            "This attempt changed nothing.",
        )
        .await;
    browser
        .find("#attempts-list li[data-attempt='1'] a.artifact[data-artifact='check.log'][data-run='1']")
        .await;
    // Attempts are not a conversation: no follow-up box, no runs list.
    assert!(browser.visible_text("#follow-up").await.is_none());
    assert!(browser.visible_text("#runs").await.is_none());
    browser
        .eval("document.getElementById('attempts').scrollIntoView(); return null;")
        .await;
    browser.screenshot("task-attempts").await;
    browser.close().await;
}
