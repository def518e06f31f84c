//! Redaction that corrupts nothing: a weak value of a secret-named variable is ordinary
//! text; a real secret is shown to the model as a placeholder that edits can copy; and
//! `diff.patch` is never rewritten, a secret found in it is reported instead.

use serde_json::json;

use crate::{Case, calls, edit, shell};

const CONFIG: &str = "DATABASES = {'user': 'postgres', 'name': 'postgres'}\nDEBUG = True\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_weak_password_value_corrupts_neither_the_model_view_nor_the_patch() {
    let case = Case::new(|dir| std::fs::write(dir.join("settings.py"), CONFIG).unwrap());
    let run = case
        .run(
            vec![
                calls(vec![(
                    "read_file_content",
                    json!({"file_path": "settings.py"}),
                )]),
                edit(
                    "settings.py",
                    "'name': 'postgres'}\nDEBUG = True",
                    "'name': 'postgres'}\nDEBUG = False",
                ),
            ],
            &[("DB_PASSWORD", "postgres")],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let seen = case.requests()[1].to_string();
    assert!(
        seen.contains("'user': 'postgres'"),
        "the model saw the file as it is"
    );
    assert!(!seen.contains("REDACTED"), "{seen}");
    let events = std::fs::read_to_string(case.out.path().join("trajectory.jsonl")).unwrap();
    assert!(!events.contains("REDACTED"));
    assert!(
        run.events().iter().any(|e| e["type"] == "tool_result"
            && e["name"] == "edit_file_content"
            && e["success"] == true),
        "the edit copied from the output matched"
    );
    assert!(run.diff().contains("'postgres'"), "{}", run.diff());
    case.apply_and_compare(&run);
}

const SECRET: &str = "pg-Xk9mQ2vL7pR4tW";

#[tokio::test(flavor = "multi_thread")]
async fn a_real_secret_is_a_placeholder_for_the_model_and_reported_in_the_patch() {
    let case = Case::new(|dir| {
        std::fs::write(
            dir.join("settings.py"),
            format!("PASSWORD = '{SECRET}'\nDEBUG = True\n"),
        )
        .unwrap()
    });
    let run = case
        .run(
            vec![
                calls(vec![(
                    "read_file_content",
                    json!({"file_path": "settings.py"}),
                )]),
                // Copied from what the model was shown, placeholder included.
                edit(
                    "settings.py",
                    "PASSWORD = '[REDACTED:DB_PASSWORD]'\nDEBUG = True",
                    "PASSWORD = '[REDACTED:DB_PASSWORD]'\nDEBUG = False",
                ),
            ],
            &[("DB_PASSWORD", SECRET)],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for request in case.requests() {
        assert!(
            !request.to_string().contains(SECRET),
            "the model saw the secret"
        );
    }
    assert!(
        case.requests()[1]
            .to_string()
            .contains("[REDACTED:DB_PASSWORD]")
    );
    assert_eq!(
        std::fs::read_to_string(case.root().join("settings.py")).unwrap(),
        format!("PASSWORD = '{SECRET}'\nDEBUG = False\n"),
        "the edit kept the real secret"
    );
    // The patch is written as it is, so that it applies; the run says it holds a secret.
    assert!(run.diff().contains(SECRET));
    case.apply_and_compare(&run);
    assert_eq!(
        run.result()["diff_secrets"],
        json!(["[REDACTED:DB_PASSWORD]"])
    );
    assert!(
        run.stderr().contains("diff.patch holds secrets")
            && run.stderr().contains("[REDACTED:DB_PASSWORD]"),
        "{}",
        run.stderr()
    );
    assert!(!run.stderr().contains(SECRET));
    for name in ["trajectory.jsonl", "result.json", "agent.log", "prompt.txt"] {
        let text = std::fs::read_to_string(case.out.path().join(name)).unwrap();
        assert!(!text.contains(SECRET), "secret in {name}");
    }
}

/// A placeholder the model writes elsewhere (a new file, a command) never turns into the
/// secret: only a file that already holds the value gets it back.
#[tokio::test(flavor = "multi_thread")]
async fn a_placeholder_never_carries_the_secret_anywhere_new() {
    let case = Case::new(|dir| {
        std::fs::write(dir.join("settings.py"), format!("PASSWORD = '{SECRET}'\n")).unwrap()
    });
    let run = case
        .run(
            vec![
                calls(vec![(
                    "apply_patch",
                    json!({"input": "*** Begin Patch\n*** Add File: leak.txt\n+[REDACTED:DB_PASSWORD]\n*** End Patch"}),
                )]),
                edit(
                    "settings.py",
                    "PASSWORD = '[REDACTED:DB_PASSWORD]'",
                    "PASSWORD = '[REDACTED:DB_PASSWORD]'\nCOPY = '[REDACTED:DB_PASSWORD]'",
                ),
                shell("echo '[REDACTED:DB_PASSWORD]' > shell.txt; echo \"env:$DB_PASSWORD\""),
            ],
            &[("DB_PASSWORD", SECRET)],
        )
        .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let results: Vec<_> = run
        .events()
        .into_iter()
        .filter(|e| e["type"] == "tool_result")
        .collect();
    assert_eq!(results[0]["success"], false, "{}", results[0]);
    assert!(!case.root().join("leak.txt").exists());
    assert_eq!(results[1]["success"], true, "{}", results[1]);
    assert_eq!(
        std::fs::read_to_string(case.root().join("settings.py")).unwrap(),
        format!("PASSWORD = '{SECRET}'\nCOPY = '{SECRET}'\n"),
        "within the file that holds it, the value is put back"
    );
    assert_eq!(
        std::fs::read_to_string(case.root().join("shell.txt")).unwrap(),
        "[REDACTED:DB_PASSWORD]\n",
        "a command never gets the value"
    );
    assert!(results[2]["output"].as_str().unwrap().contains("env:\n"));
    for request in case.requests() {
        assert!(!request.to_string().contains(SECRET));
    }
}
