//! An agent cannot plant a command in the user's git configuration or hooks through the
//! file tools; the run goes on with the refusal as the tool's answer.

use serde_json::json;

use crate::support::git;
use crate::{Case, calls, edit, shell};

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_of_git_config_is_refused_and_nothing_changes() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        git(dir, &["init", "-q"]);
    });
    let config_before = std::fs::read_to_string(case.root().join(".git/config")).unwrap();
    let run = case
        .run(
            vec![
                edit(".git/config", "[core]", "[core]\n\tfsmonitor = touch pwned"),
                calls(vec![(
                    "apply_patch",
                    json!({"input": "*** Begin Patch\n*** Add File: .git/hooks/pre-commit\n+#!/bin/sh\n+touch pwned\n*** End Patch"}),
                )]),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        std::fs::read_to_string(case.root().join(".git/config")).unwrap(),
        config_before
    );
    assert!(!case.root().join(".git/hooks/pre-commit").exists());
    let refusals: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "tool_result")
        .collect();
    assert_eq!(refusals.len(), 2);
    for refusal in refusals {
        assert_eq!(refusal["success"], false);
        assert!(
            refusal["output"].as_str().unwrap().contains(".git"),
            "{refusal}"
        );
    }
    assert!(run.diff().is_empty(), "{}", run.diff());
}

/// Every way into `.git` the model might try: `..` through a folder, `./`, a symlink a
/// command made, and the command itself (the sandbox keeps the config read-only).
#[tokio::test(flavor = "multi_thread")]
async fn other_ways_into_git_are_refused_too() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("sub/keep"), "").unwrap();
        git(dir, &["init", "-q"]);
    });
    let config_before = std::fs::read_to_string(case.root().join(".git/config")).unwrap();
    let fsmonitor = "[core]\n\tfsmonitor = touch pwned";
    let run = case
        .run(
            vec![
                edit("sub/../.git/config", "[core]", fsmonitor),
                edit("./.git/config", "[core]", fsmonitor),
                calls(vec![(
                    "apply_patch",
                    json!({"input": "*** Begin Patch\n*** Add File: sub/../.git/hooks/post-checkout\n+#!/bin/sh\n+touch pwned\n*** End Patch"}),
                )]),
                shell("ln -s .git g; printf '[core]\\n\\tfsmonitor = touch pwned\\n' >> .git/config"),
                edit("g/config", "[core]", fsmonitor),
            ],
            &[],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        std::fs::read_to_string(case.root().join(".git/config")).unwrap(),
        config_before
    );
    assert!(!case.root().join(".git/hooks/post-checkout").exists());
    let results: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "tool_result" && e["name"] != "run_shell_command")
        .collect();
    assert_eq!(results.len(), 4);
    for refusal in results {
        assert_eq!(refusal["success"], false, "{refusal}");
        assert!(
            refusal["output"]
                .as_str()
                .unwrap()
                .contains("inside a `.git` directory"),
            "{refusal}"
        );
    }
}

/// The sandbox cannot keep read-only a repository that does not exist yet: a command can
/// `git init` one, plant a command in its config and hooks and add it to the outer
/// repository, where the user's next `git status` would run it. The run disarms it.
#[tokio::test(flavor = "multi_thread")]
async fn commands_planted_in_a_repository_made_during_the_run_are_disarmed() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("app.py"), "print('app')\n").unwrap();
        git(dir, &["init", "-q"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-qm", "start"]);
    });
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("pwned");
    let plant = format!(
        "mkdir sub && cd sub && git init -q && echo x > notes.txt && git add notes.txt \
         && git -c user.name=a -c user.email=a@example.com commit -qm x \
         && git config core.fsmonitor 'touch {m}; false' \
         && git config filter.evil.clean 'touch {m}; cat' \
         && git config user.name planted \
         && printf '#!/bin/sh\\ntouch {m}\\n' > .git/hooks/post-checkout \
         && chmod +x .git/hooks/post-checkout && cd .. && git add sub",
        m = marker.display()
    );
    let run = case.run(vec![shell(&plant)], &[]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    // What the user does next runs nothing the agent planted; the repository still works.
    let sub = case.root().join("sub");
    git(case.root(), &["status"]);
    git(&sub, &["status"]);
    std::fs::write(sub.join("notes.txt"), "mine\n").unwrap();
    git(&sub, &["commit", "-qam", "mine"]);
    git(&sub, &["checkout", "-q", "-b", "other"]);
    assert!(!marker.exists(), "a planted command ran");
    let disarmed = run.result()["git_hazards_disarmed"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(disarmed.len(), 1, "{disarmed:?}\n{}", run.stderr());
    assert_eq!(disarmed[0]["path"], "sub");
    let reason = disarmed[0]["reason"].as_str().unwrap();
    for named in ["core.fsmonitor", "filter.evil.clean", "post-checkout"] {
        assert!(reason.contains(named), "{reason}");
    }
    assert!(!reason.contains("user.name"), "{reason}");
    assert!(
        run.stderr().contains("git settings disarmed in sub"),
        "{}",
        run.stderr()
    );
    assert!(sub.join(".git/hooks/post-checkout.disarmed").exists());
    let config = std::fs::read_to_string(sub.join(".git/config")).unwrap();
    assert!(config.contains("planted"), "{config}");
    assert!(!config.contains("fsmonitor"), "{config}");
}
