//! End to end, a pull request pushed over smart HTTP: the repository is served by
//! `git http-backend` behind a local HTTPS server (anonymous fetch, pushes only with the
//! token as HTTP basic auth, as a forge does), not `file://`. The task's clone and the
//! branch's push both go through the worker's git relay; the pushed branch holds exactly
//! the agent's diff, and the token travels only in the push's `Authorization` header:
//! not in the clone, the server's log, or any file the server keeps.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;
mod pr_support;

use e2e_support::*;
use pr_support::smart_http::SmartHttpGit;
use pr_support::*;
use serde_json::json;

const PR_TOKEN: &str = "ghp_e2eSmartHttpToken0123456";

#[tokio::test(flavor = "multi_thread")]
async fn the_branch_is_pushed_over_smart_https_with_the_token_as_basic_auth_only() {
    let github = FakeGitHub::start(PR_TOKEN).await;
    github.know("acme/widgets");
    let repos = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let (bare, _) = bare_repo(
        repos.path(),
        "acme",
        "widgets",
        &[("calc.py", CALC_PY), ("README.md", "calc\n")],
    );
    let server = SmartHttpGit::start(repos.path(), scratch.path(), PR_TOKEN).await;
    let url = format!("{}/acme/widgets.git", server.base);
    let model = scripted_model(json!(fix_add_steps())).await;
    let home = Home::new(&format!(
        "[api]\nallow_git_hosts = [\"127.0.0.1\"]\n\n\
         [orchestrator.workspace]\nallow_git_hosts = [\"127.0.0.1\"]\n\n\
         [orchestrator.pull_requests]\napi_base = \"{}\"\n",
        github.base
    ));
    let cert = server.cert_file.display().to_string();
    let api = Api::start_env(
        &home,
        "127.0.0.1:0",
        &model,
        &[],
        &[("SSL_CERT_FILE", cert)],
    )
    .await;

    let created = api
        .submit_json(&json!({
            "git_url": url,
            "description": "Fix add",
            "pull_request": {"github_token": PR_TOKEN},
        }))
        .await;
    let id = api.created_id(created).await;
    let task = eventually(WAIT, || async {
        let task = api.task(&id).await;
        let state = task["pull_request"]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let settled =
            task["status"] == "FAILED" || !matches!(state.as_str(), "" | "REQUESTED" | "OPENING");
        settled.then_some(task)
    })
    .await
    .unwrap_or_else(|| panic!("never settled:\n{}", api.log()));
    assert_eq!(task["status"], "COMPLETED", "{task}\n{}", api.log());
    assert_eq!(
        task["pull_request"]["state"],
        "OPENED",
        "{task}\n{}",
        api.log()
    );

    // The branch is main plus exactly the agent's diff.
    let branch = format!("agent/{id}");
    let changed = git(&bare, &["diff", "--name-status", "main", &branch]);
    assert_eq!(changed.trim(), "M\tcalc.py");
    let fixed = git(&bare, &["show", &format!("{branch}:calc.py")]);
    assert_eq!(fixed, "def add(a, b):\n    return a + b\n");
    assert_eq!(
        git(&bare, &["rev-parse", &format!("{branch}^")]),
        git(&bare, &["rev-parse", "main"])
    );

    // Smart HTTP both ways: the clone anonymous, the push refused without credentials
    // and then accepted with the token as basic auth.
    let seen = server.seen();
    let fetches: Vec<_> = seen
        .iter()
        .filter(|s| s.target.contains("git-upload-pack"))
        .collect();
    assert!(!fetches.is_empty(), "{seen:?}");
    assert!(
        fetches.iter().all(|s| s.authorization.is_none()),
        "{seen:?}"
    );
    let pushes: Vec<&pr_support::smart_http::Seen> = seen
        .iter()
        .filter(|s| s.target.contains("git-receive-pack"))
        .collect();
    assert_eq!(pushes.first().map(|s| s.status), Some(401), "{seen:?}");
    assert!(
        pushes
            .iter()
            .any(|s| s.method == "POST" && s.status == 200 && s.authorization.is_some()),
        "{seen:?}"
    );

    // The token is nowhere else.
    assert!(!api.log().contains(PR_TOKEN), "token in the server log");
    assert!(!task.to_string().contains(PR_TOKEN));
    for name in ["diff.patch", "trajectory.jsonl", "result.json", "agent.log"] {
        assert!(
            !api.artifact(&id, name).await.contains(PR_TOKEN),
            "token in {name}"
        );
    }
    assert_eq!(
        files_containing(home.dir.path(), PR_TOKEN),
        Vec::<std::path::PathBuf>::new()
    );
}
