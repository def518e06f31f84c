#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What the model is shown stays consistent with the files it edits. A weak value of a
//! secret-named variable (`DB_PASSWORD=postgres`) is not redacted at all; a real secret
//! is shown as `[REDACTED:NAME]`, and an edit whose text was copied from that output
//! works on the file as it really is, the secret kept. A placeholder never writes a
//! secret into a file that did not already hold it.

mod file_tools_support;

use file_tools_support::workspace;
use serde_json::json;
use tools::{SecretRedactor, ToolError, ToolRegistry, ToolsConfig};

const SECRET: &str = "pg-Xk9mQ2vL7pR4tW";
const CONFIG: &str =
    "[db]\nhost = \"postgres\"\nuser = \"postgres\"\npassword = \"pg-Xk9mQ2vL7pR4tW\"\n";

fn registry(db_password: &str) -> ToolRegistry {
    let redactor =
        SecretRedactor::from_env_vars([("DB_PASSWORD".to_string(), db_password.to_string())], &[]);
    ToolRegistry::builtin(&ToolsConfig::default())
        .unwrap()
        .with_redactor(redactor)
}

#[tokio::test]
async fn a_weak_password_value_leaves_ordinary_text_alone() {
    let ws = workspace();
    ws.write("db.toml", "host = \"postgres\"\nuser = \"postgres\"\n");
    let registry = registry("postgres");
    let read = registry
        .call(
            &ws.ctx,
            "read_file_content",
            json!({"file_path": "db.toml"}),
        )
        .await
        .unwrap();
    assert!(
        read.content.contains("host = \"postgres\""),
        "{}",
        read.content
    );
    assert!(!read.content.contains("REDACTED"), "{}", read.content);
    registry
        .call(
            &ws.ctx,
            "edit_file_content",
            json!({"file_path": "db.toml", "old_text": "user = \"postgres\"", "new_text": "user = \"app\""}),
        )
        .await
        .unwrap();
    assert_eq!(
        ws.contents("db.toml"),
        "host = \"postgres\"\nuser = \"app\"\n"
    );
}

#[tokio::test]
async fn an_edit_copied_from_redacted_output_keeps_the_secret_in_the_file() {
    let ws = workspace();
    ws.write("db.toml", CONFIG);
    let registry = registry(SECRET);
    let read = registry
        .call(
            &ws.ctx,
            "read_file_content",
            json!({"file_path": "db.toml"}),
        )
        .await
        .unwrap();
    assert!(
        read.content
            .contains("password = \"[REDACTED:DB_PASSWORD]\""),
        "{}",
        read.content
    );
    assert!(!read.content.contains(SECRET));
    let edited = registry
        .call(
            &ws.ctx,
            "edit_file_content",
            json!({
                "file_path": "db.toml",
                "old_text": "user = \"postgres\"\npassword = \"[REDACTED:DB_PASSWORD]\"",
                "new_text": "user = \"app\"\npassword = \"[REDACTED:DB_PASSWORD]\"\nport = 5432",
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        ws.contents("db.toml"),
        "[db]\nhost = \"postgres\"\nuser = \"app\"\npassword = \"pg-Xk9mQ2vL7pR4tW\"\nport = 5432\n"
    );
    assert!(!edited.content.contains(SECRET), "{}", edited.content);
    assert!(
        edited.content.contains("[REDACTED:DB_PASSWORD]"),
        "{}",
        edited.content
    );
}

#[tokio::test]
async fn apply_patch_context_copied_from_redacted_output_matches() {
    let ws = workspace();
    ws.write("db.toml", CONFIG);
    let registry = registry(SECRET);
    let patch = "*** Begin Patch\n*** Update File: db.toml\n@@\n user = \"postgres\"\n-password = \"[REDACTED:DB_PASSWORD]\"\n+password = \"[REDACTED:DB_PASSWORD]\"\n+timeout = 5\n*** End Patch";
    registry
        .call(&ws.ctx, "apply_patch", json!({"input": patch}))
        .await
        .unwrap();
    assert_eq!(ws.contents("db.toml"), format!("{CONFIG}timeout = 5\n"));
}

#[tokio::test]
async fn a_placeholder_never_carries_a_secret_to_a_new_place() {
    let ws = workspace();
    ws.write("db.toml", CONFIG);
    ws.write("notes.md", "# notes\n");
    let registry = registry(SECRET);
    let refusals = [
        (
            "edit_file_content",
            json!({"file_path": "leak.txt", "old_text": "", "new_text": "[REDACTED:DB_PASSWORD]"}),
        ),
        (
            "edit_file_content",
            json!({"file_path": "notes.md", "old_text": "# notes", "new_text": "# notes [REDACTED:DB_PASSWORD]"}),
        ),
        (
            "apply_patch",
            json!({"input": "*** Begin Patch\n*** Add File: leak.txt\n+[REDACTED:DB_PASSWORD]\n*** End Patch"}),
        ),
        (
            "apply_patch",
            json!({"input": "*** Begin Patch\n*** Update File: notes.md\n@@\n-# notes\n+# [REDACTED:DB_PASSWORD]\n*** End Patch"}),
        ),
    ];
    for (tool, args) in refusals {
        let err = registry.call(&ws.ctx, tool, args).await.unwrap_err();
        assert!(matches!(err, ToolError::Rejected(_)), "{err:?}");
        assert!(err.to_string().contains("[REDACTED:DB_PASSWORD]"), "{err}");
        assert!(err.to_string().contains("already holds"), "{err}");
    }
    assert!(!ws.path("leak.txt").exists());
    assert_eq!(ws.contents("notes.md"), "# notes\n");
}
