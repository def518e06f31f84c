//! Where a command runs: the target directory, and every refusal of one outside the
//! workspace (checked before bash starts).

use serde_json::json;
use tools::ToolError;

use crate::support::Workspace;

#[tokio::test]
async fn commands_run_in_the_workspace_root_by_default() {
    let ws = Workspace::new();
    std::fs::write(ws.path("at-root.txt"), "root file").unwrap();
    let output = ws.run("cat at-root.txt").await;
    assert!(output.content.contains("root file"), "{}", output.content);
}

#[tokio::test]
async fn commands_run_in_the_target_directory() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.path("sub/dir")).unwrap();
    std::fs::write(ws.path("sub/dir/inner.txt"), "inner file").unwrap();
    let output = ws
        .call(json!({"command_string": "cat inner.txt; pwd", "target_directory": "sub/dir"}))
        .await
        .unwrap();
    assert!(output.success, "{}", output.content);
    let expected_pwd = ws.ctx.jail.root().join("sub/dir");
    assert!(output.content.contains("inner file"));
    assert!(
        output
            .content
            .contains(&format!("{}\n", expected_pwd.display())),
        "{}",
        output.content
    );
}

#[tokio::test]
async fn target_directory_through_a_symlink_inside_the_workspace_is_allowed() {
    let ws = Workspace::new();
    std::fs::create_dir(ws.path("real")).unwrap();
    std::fs::write(ws.path("real/here.txt"), "via link").unwrap();
    std::os::unix::fs::symlink(ws.path("real"), ws.path("link")).unwrap();
    let output = ws
        .call(json!({"command_string": "cat here.txt", "target_directory": "link"}))
        .await
        .unwrap();
    assert!(output.content.contains("via link"), "{}", output.content);
}

#[tokio::test]
async fn missing_target_directory_is_rejected_clearly() {
    let ws = Workspace::new();
    let err = ws
        .call(json!({"command_string": "touch made", "target_directory": "nope"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Rejected(_)), "{err:?}");
    assert!(err.to_string().contains("`nope` does not exist"), "{err}");
    assert!(!ws.path("nope").exists());
}

#[tokio::test]
async fn file_as_target_directory_is_rejected_clearly() {
    let ws = Workspace::new();
    std::fs::write(ws.path("file.txt"), "").unwrap();
    let err = ws
        .call(json!({"command_string": "true", "target_directory": "file.txt"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Rejected(_)), "{err:?}");
    assert!(
        err.to_string().contains("is a file, not a directory"),
        "{err}"
    );
}

/// Every way out of the workspace is refused before bash starts: the command would
/// create a marker file at an absolute path, and that file never appears.
#[tokio::test]
async fn target_directory_escaping_the_workspace_is_refused_and_nothing_runs() {
    let ws = Workspace::new();
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("marker");
    std::os::unix::fs::symlink(outside.path(), ws.path("escape-link")).unwrap();
    let command = format!("touch '{}'", marker.display());

    for target in [
        "..".to_string(),
        "../..".to_string(),
        "sub/../../x".to_string(),
        outside.path().display().to_string(),
        "/".to_string(),
        "escape-link".to_string(),
    ] {
        let err = ws
            .call(json!({"command_string": command, "target_directory": target}))
            .await
            .unwrap_err();
        assert!(matches!(err, ToolError::Jail(_)), "{target}: {err:?}");
        assert!(!marker.exists(), "the command ran for `{target}`");
    }
}
