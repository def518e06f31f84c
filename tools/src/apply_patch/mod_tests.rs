use std::os::unix::fs::symlink;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::config::ToolsConfig;

struct Workspace {
    dir: tempfile::TempDir,
    ctx: ToolContext,
}

impl Workspace {
    fn new() -> Self {
        Self::with_config(ToolsConfig::default())
    }

    fn with_config(config: ToolsConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ctx = ToolContext::new(WorkspaceJail::new(dir.path()).unwrap(), Arc::new(config));
        Self { dir, ctx }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, contents: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap()
    }

    async fn apply(&self, patch: &str) -> Result<ToolOutput, ToolError> {
        ApplyPatchTool
            .call(&self.ctx, json!({ "input": patch }))
            .await
    }
}

fn rejection(result: Result<ToolOutput, ToolError>) -> String {
    match result {
        Err(ToolError::Rejected(message)) => message,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn tool_presents_its_contract() {
    let tool = ApplyPatchTool;
    assert_eq!(tool.name(), "apply_patch");
    assert!(tool.mutates());
    let schema = tool.parameters();
    assert_eq!(schema["required"], json!(["input"]));
    assert_eq!(schema["properties"]["input"]["type"], "string");
    assert_eq!(schema["additionalProperties"], json!(false));
}

#[tokio::test]
async fn summary_lists_added_then_modified_then_deleted_like_codex() {
    let ws = Workspace::new();
    ws.write("gone.txt", "bye\n");
    ws.write("edit.txt", "a\n");
    ws.write("old/name.txt", "x\n");
    let output = ws
        .apply(
            "*** Begin Patch\n*** Delete File: gone.txt\n*** Update File: edit.txt\n@@\n-a\n+b\n\
             *** Add File: new/file.txt\n+hello\n*** Update File: old/name.txt\n\
             *** Move to: renamed.txt\n@@\n-x\n+y\n*** End Patch",
        )
        .await
        .unwrap();
    assert!(output.success);
    assert_eq!(
        output.content,
        "Success. Updated the following files:\nA new/file.txt\nM edit.txt\n\
         M renamed.txt (moved from old/name.txt)\nD gone.txt"
    );
    assert_eq!(
        output.details["changes"][3],
        json!({"kind": "update", "path": "renamed.txt", "moved_from": "old/name.txt",
               "added_lines": 1, "removed_lines": 1, "matching": "exact"})
    );
    assert_eq!(output.details["changes"][0]["kind"], "delete");
    assert_eq!(ws.read("new/file.txt"), "hello\n");
    assert_eq!(ws.read("renamed.txt"), "y\n");
    assert!(!ws.path("old/name.txt").exists());
    assert!(!ws.path("gone.txt").exists());
}

#[tokio::test]
async fn loose_match_is_reported_in_details() {
    let ws = Workspace::new();
    ws.write("f.txt", "x = 1   \n");
    let output = ws
        .apply("*** Begin Patch\n*** Update File: f.txt\n@@\n-x = 1\n+x = 2\n*** End Patch")
        .await
        .unwrap();
    assert_eq!(
        output.details["changes"][0]["matching"],
        "ignoring_trailing_whitespace"
    );
}

#[tokio::test]
async fn arguments_sent_as_a_json_string_are_accepted() {
    let ws = Workspace::new();
    let args = json!({"input": "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch"});
    ApplyPatchTool
        .call(&ws.ctx, json!(args.to_string()))
        .await
        .unwrap();
    assert_eq!(ws.read("a.txt"), "a\n");
}

#[tokio::test]
async fn wrong_argument_shapes_are_invalid_arguments() {
    let ws = Workspace::new();
    for args in [
        json!({}),
        json!({"input": 5}),
        json!({"patch": "*** Begin Patch"}),
        json!({"input": "*** Begin Patch\n*** End Patch", "extra": true}),
        json!(42),
        json!(null),
    ] {
        let result = ApplyPatchTool.call(&ws.ctx, args.clone()).await;
        assert!(
            matches!(
                result,
                Err(ToolError::InvalidArguments {
                    tool: "apply_patch",
                    ..
                })
            ),
            "{args}: {result:?}"
        );
    }
}

#[tokio::test]
async fn parse_error_changes_nothing_and_says_so() {
    let ws = Workspace::new();
    let message = rejection(
        ws.apply("*** Begin Patch\n*** Add File: a.txt\n+a\n*** Bogus\n*** End Patch")
            .await,
    );
    assert!(message.contains("line 4"), "{message}");
    assert!(message.ends_with("Nothing was changed."), "{message}");
    assert!(!ws.path("a.txt").exists());
}

#[tokio::test]
async fn escaping_path_is_refused_before_earlier_operations_run() {
    let ws = Workspace::new();
    let message = rejection(
        ws.apply("*** Begin Patch\n*** Add File: a.txt\n+a\n*** Delete File: ../x\n*** End Patch")
            .await,
    );
    assert!(
        message.contains("`*** Delete File: ../x` (patch line 4)"),
        "{message}"
    );
    assert!(message.contains("outside the workspace"), "{message}");
    assert!(!ws.path("a.txt").exists());
}

#[tokio::test]
async fn absolute_path_inside_the_workspace_is_accepted() {
    let ws = Workspace::new();
    let inside = ws.ctx.jail.root().join("abs.txt");
    let output = ws
        .apply(&format!(
            "*** Begin Patch\n*** Add File: {}\n+x\n*** End Patch",
            inside.display()
        ))
        .await
        .unwrap();
    assert_eq!(
        output.content,
        "Success. Updated the following files:\nA abs.txt"
    );
}

#[tokio::test]
async fn symlinked_file_leading_out_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret\n").unwrap();
    let ws = Workspace::new();
    symlink(outside.path().join("secret.txt"), ws.path("link.txt")).unwrap();
    let message = rejection(
        ws.apply(
            "*** Begin Patch\n*** Add File: a.txt\n+a\n*** Update File: link.txt\n@@\n-secret\n\
             +owned\n*** End Patch",
        )
        .await,
    );
    assert!(message.contains("symbolic link"), "{message}");
    assert_eq!(
        std::fs::read_to_string(outside.path().join("secret.txt")).unwrap(),
        "secret\n"
    );
    assert!(!ws.path("a.txt").exists());
}

#[tokio::test]
async fn symlinked_directory_leading_out_is_refused_for_add_delete_and_move() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep.txt"), "keep\n").unwrap();
    let ws = Workspace::new();
    ws.write("src.txt", "a\n");
    symlink(outside.path(), ws.path("out")).unwrap();
    for patch in [
        "*** Begin Patch\n*** Add File: out/new.txt\n+x\n*** End Patch",
        "*** Begin Patch\n*** Delete File: out/keep.txt\n*** End Patch",
        "*** Begin Patch\n*** Update File: src.txt\n*** Move to: out/src.txt\n@@\n-a\n+b\n*** End Patch",
    ] {
        let message = rejection(ws.apply(patch).await);
        assert!(message.contains("symbolic link"), "{message}");
    }
    let mut names: Vec<_> = std::fs::read_dir(outside.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, vec!["keep.txt"]);
    assert_eq!(ws.read("src.txt"), "a\n");
}

#[tokio::test]
async fn update_through_an_inside_symlink_edits_the_target_and_keeps_the_link() {
    let ws = Workspace::new();
    ws.write("real.txt", "a\n");
    symlink(ws.path("real.txt"), ws.path("link.txt")).unwrap();
    ws.apply("*** Begin Patch\n*** Update File: link.txt\n@@\n-a\n+b\n*** End Patch")
        .await
        .unwrap();
    assert_eq!(ws.read("real.txt"), "b\n");
    assert!(ws.path("link.txt").symlink_metadata().unwrap().is_symlink());
}

#[tokio::test]
async fn deleting_an_inside_symlink_removes_the_link_not_its_target() {
    let ws = Workspace::new();
    ws.write("real.txt", "a\n");
    symlink(ws.path("real.txt"), ws.path("link.txt")).unwrap();
    let output = ws
        .apply("*** Begin Patch\n*** Delete File: link.txt\n*** End Patch")
        .await
        .unwrap();
    assert_eq!(
        output.content,
        "Success. Updated the following files:\nD link.txt"
    );
    assert!(ws.path("link.txt").symlink_metadata().is_err());
    assert_eq!(ws.read("real.txt"), "a\n");
}

#[tokio::test]
async fn failure_after_success_lists_what_stays_applied() {
    let ws = Workspace::new();
    ws.write("f.txt", "a\n");
    let message = rejection(
        ws.apply(
            "*** Begin Patch\n*** Add File: created.txt\n+hi\n*** Update File: f.txt\n@@\n\
             -zzz\n+b\n*** Delete File: f.txt\n*** End Patch",
        )
        .await,
    );
    assert!(
        message.starts_with("Stopped at operation 2 of 3 (`*** Update File: f.txt`, patch line 4)"),
        "{message}"
    );
    assert!(message.contains("  | zzz"), "{message}");
    assert!(message.contains("\nA created.txt\n"), "{message}");
    assert!(
        message.ends_with("The operations after it were not applied."),
        "{message}"
    );
    assert_eq!(ws.read("created.txt"), "hi\n");
    assert_eq!(ws.read("f.txt"), "a\n");
}

#[tokio::test]
async fn update_of_a_missing_file_suggests_add_file() {
    let ws = Workspace::new();
    let message = rejection(
        ws.apply("*** Begin Patch\n*** Update File: nope.txt\n@@\n-a\n*** End Patch")
            .await,
    );
    assert!(message.contains("`*** Add File: nope.txt`"), "{message}");
    assert!(message.ends_with("Nothing was changed."), "{message}");
}

#[tokio::test]
async fn adding_over_a_directory_is_rejected() {
    let ws = Workspace::new();
    ws.write("dir/inner.txt", "x\n");
    let message = rejection(
        ws.apply("*** Begin Patch\n*** Add File: dir\n+x\n*** End Patch")
            .await,
    );
    assert!(message.contains("`dir` is a directory"), "{message}");
    assert_eq!(ws.read("dir/inner.txt"), "x\n");
}

#[tokio::test]
async fn binary_file_is_not_updated() {
    let ws = Workspace::new();
    std::fs::write(ws.path("bin.dat"), [0xff, 0xfe, b'\n']).unwrap();
    let message = rejection(
        ws.apply("*** Begin Patch\n*** Update File: bin.dat\n@@\n-x\n*** End Patch")
            .await,
    );
    assert!(message.contains("not UTF-8 text"), "{message}");
    assert_eq!(
        std::fs::read(ws.path("bin.dat")).unwrap(),
        [0xff, 0xfe, b'\n']
    );
}

#[tokio::test]
async fn file_over_the_size_limit_is_not_loaded() {
    let mut config = ToolsConfig::default();
    config.files.edit_max_file_bytes = 4;
    let ws = Workspace::with_config(config);
    ws.write("big.txt", "0123456789\n");
    let message = rejection(
        ws.apply("*** Begin Patch\n*** Update File: big.txt\n@@\n-0123456789\n*** End Patch")
            .await,
    );
    assert!(
        message.contains("11 bytes, more than the 4 bytes"),
        "{message}"
    );
}

#[tokio::test]
async fn move_onto_the_same_path_just_updates() {
    let ws = Workspace::new();
    ws.write("same.txt", "a\n");
    ws.apply("*** Begin Patch\n*** Update File: same.txt\n*** Move to: ./same.txt\n@@\n-a\n+b\n*** End Patch")
        .await
        .unwrap();
    assert_eq!(ws.read("same.txt"), "b\n");
}
