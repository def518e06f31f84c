//! Workspaces inside a git work tree.

use std::fs;
use std::path::Path;

use agent_rs::workspace_diff::{SnapshotKind, WorkspaceSnapshot};

use crate::support::{Scenario, git, init_repo_with_commit, set_executable, write};

/// A committed repository with a few text files and a `.gitignore`.
fn committed_repo(dir: &Path) {
    write(
        dir,
        "src/lib.rs",
        "fn one() {}\nfn two() {}\nfn three() {}\n",
    );
    write(dir, "README.md", "# Project\n\nSome words.\n");
    write(dir, "notes.txt", "keep me\n");
    write(dir, ".gitignore", "target/\n*.log\n");
    init_repo_with_commit(dir);
}

#[test]
fn modified_tracked_file_round_trips() {
    let scenario = Scenario::start(committed_repo, "");
    assert_eq!(scenario.kind(), SnapshotKind::Git);
    write(
        &scenario.root,
        "src/lib.rs",
        "fn one() {}\nfn deux() {}\nfn three() {}\n",
    );
    let diff = scenario.diff_and_apply(&[]);
    assert!(
        diff.patch
            .starts_with("diff --git a/src/lib.rs b/src/lib.rs\n")
    );
    assert_eq!(
        (diff.files_changed, diff.insertions, diff.deletions),
        (1, 1, 1)
    );
    assert!(diff.left_out.is_empty());
}

#[test]
fn untracked_new_file_is_added_in_new_directories() {
    let scenario = Scenario::start(committed_repo, "");
    write(&scenario.root, "a/b/c/new.rs", "pub fn new() {}\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("new file mode 100644\n"));
    assert!(diff.patch.contains("--- /dev/null\n+++ b/a/b/c/new.rs\n"));
    assert_eq!(diff.insertions, 1);
}

#[test]
fn deleted_file_is_removed() {
    let scenario = Scenario::start(committed_repo, "");
    fs::remove_file(scenario.root.join("notes.txt")).unwrap();
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("deleted file mode 100644\n"));
    assert_eq!((diff.files_changed, diff.deletions), (1, 1));
}

#[test]
fn rename_is_a_delete_plus_an_add() {
    let scenario = Scenario::start(committed_repo, "");
    fs::rename(
        scenario.root.join("notes.txt"),
        scenario.root.join("kept.txt"),
    )
    .unwrap();
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("deleted file mode"));
    assert!(diff.patch.contains("new file mode"));
    assert!(!diff.patch.contains("rename from"));
    assert_eq!(diff.files_changed, 2);
}

#[test]
fn missing_final_newline_is_marked_and_applies() {
    let scenario = Scenario::start(committed_repo, "");
    write(&scenario.root, "notes.txt", "keep me\nno newline");
    let diff = scenario.diff_and_apply(&[]);
    assert!(
        diff.patch
            .contains("+no newline\n\\ No newline at end of file\n")
    );
}

#[test]
fn binary_files_added_and_changed_carry_their_content() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, "logo.bin", [0u8, 1, 2, 3, 255, 0, 7]);
            git(dir, &["add", "logo.bin"]);
            git(dir, &["commit", "-q", "-m", "binary"]);
        },
        "",
    );
    write(&scenario.root, "logo.bin", [0u8, 9, 9, 9, 255, 0, 7, 8]);
    write(
        &scenario.root,
        "new.bin",
        (0..=255u8).cycle().take(5000).collect::<Vec<_>>(),
    );
    let diff = scenario.diff_and_apply(&[]);
    assert_eq!(diff.patch.matches("GIT binary patch").count(), 2);
    assert!(diff.left_out.is_empty());
}

#[test]
fn uncommitted_change_made_before_capture_is_not_in_the_diff() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, "README.md", "# Project\n\nUser's uncommitted words.\n");
            write(dir, "scratch.txt", "user's untracked file\n");
        },
        "",
    );
    write(&scenario.root, "notes.txt", "agent was here\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(!diff.patch.contains("README.md"));
    assert!(!diff.patch.contains("scratch.txt"));
    assert_eq!(diff.files_changed, 1);
}

#[test]
fn further_edit_of_an_uncommitted_file_diffs_from_the_uncommitted_content() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, "notes.txt", "user edit\n");
        },
        "",
    );
    write(&scenario.root, "notes.txt", "agent edit\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("-user edit\n+agent edit\n"));
    assert!(!diff.patch.contains("keep me"));
}

#[test]
fn ignored_files_are_not_in_the_diff() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, "target/old.o", "old build\n");
        },
        "",
    );
    write(&scenario.root, "target/debug/app", "build output\n");
    write(&scenario.root, "target/old.o", "rebuilt\n");
    write(&scenario.root, "run.log", "log line\n");
    let diff = scenario.snapshot.diff().unwrap();
    assert_eq!(diff, Default::default());
}

#[test]
fn nothing_changed_gives_an_empty_diff() {
    let scenario = Scenario::start(committed_repo, "");
    let diff = scenario.snapshot.diff().unwrap();
    assert_eq!(diff.patch, "");
    assert_eq!(
        (diff.files_changed, diff.insertions, diff.deletions),
        (0, 0, 0)
    );
}

#[test]
fn users_index_and_head_are_untouched() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, "staged.txt", "staged\n");
            git(dir, &["add", "staged.txt"]);
        },
        "",
    );
    let index_path = scenario.root.join(".git/index");
    let index_before = fs::read(&index_path).unwrap();
    let head_before = git(&scenario.root, &["rev-parse", "HEAD"]);
    write(&scenario.root, "notes.txt", "changed\n");
    write(&scenario.root, "untracked.txt", "new\n");
    scenario.diff_and_apply(&[]);
    assert_eq!(fs::read(&index_path).unwrap(), index_before);
    assert_eq!(git(&scenario.root, &["rev-parse", "HEAD"]), head_before);
    let status = git(&scenario.root, &["status", "--porcelain"]);
    assert!(status.contains("A  staged.txt"), "{status}");
    assert!(status.contains("?? untracked.txt"), "{status}");
}

#[test]
fn subfolder_root_diffs_only_below_it_with_relative_paths() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, "service/api.rs", "fn api() {}\n");
            git(dir, &["add", "-A"]);
            git(dir, &["commit", "-q", "-m", "service"]);
        },
        "service",
    );
    assert_eq!(scenario.kind(), SnapshotKind::Git);
    write(&scenario.root, "api.rs", "fn api() { todo!() }\n");
    write(&scenario.root, "handlers/new.rs", "fn handle() {}\n");
    write(&scenario.workspace, "notes.txt", "outside the root\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("diff --git a/api.rs b/api.rs\n"));
    assert!(diff.patch.contains("+++ b/handlers/new.rs\n"));
    assert!(!diff.patch.contains("notes.txt"));
    assert_eq!(diff.files_changed, 2);
}

#[test]
fn new_subfolder_root_with_nothing_tracked_starts_empty() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            fs::create_dir_all(dir.join("fresh")).unwrap();
        },
        "fresh",
    );
    write(&scenario.root, "main.rs", "fn main() {}\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("new file mode"));
}

#[test]
fn ignored_subfolder_root_is_diffed_as_a_plain_folder() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, "target/generated.rs", "// generated\n");
        },
        "target",
    );
    assert_eq!(scenario.kind(), SnapshotKind::PlainFolder);
    write(&scenario.root, "generated.rs", "// regenerated\n");
    scenario.diff_and_apply(&[]);
}

#[test]
fn paths_with_spaces_quotes_and_unicode_apply() {
    let scenario = Scenario::start(committed_repo, "");
    write(&scenario.root, "my docs/réponse été.txt", "bonjour\n");
    write(&scenario.root, "tab\there \"q\".txt", "odd name\n");
    let diff = scenario.diff_and_apply(&[]);
    assert_eq!(diff.files_changed, 2);
}

#[test]
fn file_hidden_by_a_new_gitignore_is_not_deleted() {
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, "debug.out", "untracked output\n");
        },
        "",
    );
    write(&scenario.root, ".gitignore", "target/\n*.log\n*.out\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(!diff.patch.contains("debug.out"), "{}", diff.patch);
    assert_eq!(diff.files_changed, 1);
}

#[test]
fn crlf_lines_round_trip() {
    let scenario = Scenario::start(
        |dir| {
            write(dir, "win.txt", "one\r\ntwo\r\nthree\r\n");
            init_repo_with_commit(dir);
        },
        "",
    );
    write(&scenario.root, "win.txt", "one\r\n2\r\nthree\r\nfour");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("-two\r\n+2\r\n"));
}

#[test]
fn executable_bit_change_round_trips() {
    let scenario = Scenario::start(
        |dir| {
            write(dir, "run.sh", "#!/bin/sh\necho hi\n");
            init_repo_with_commit(dir);
        },
        "",
    );
    set_executable(&scenario.root, "run.sh", true);
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("old mode 100644\nnew mode 100755\n"));
}

#[test]
fn text_that_is_not_utf8_is_sent_as_binary() {
    let scenario = Scenario::start(
        |dir| {
            write(dir, "latin1.txt", b"caf\xe9\n");
            init_repo_with_commit(dir);
        },
        "",
    );
    write(&scenario.root, "latin1.txt", b"caf\xe9 cr\xe8me\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("GIT binary patch"));
}

#[test]
fn commits_made_by_the_agent_stay_in_the_diff() {
    let scenario = Scenario::start(committed_repo, "");
    write(&scenario.root, "notes.txt", "committed by the agent\n");
    git(&scenario.root, &["commit", "-q", "-am", "agent commit"]);
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("+committed by the agent\n"));
}

#[test]
fn symlink_is_diffed_as_a_symlink() {
    let scenario = Scenario::start(committed_repo, "");
    std::os::unix::fs::symlink("notes.txt", scenario.root.join("link")).unwrap();
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("new file mode 120000\n"));
}

#[test]
fn capture_of_a_missing_root_names_it() {
    let error = WorkspaceSnapshot::capture(Path::new("/nonexistent/workspace")).unwrap_err();
    assert!(
        error.to_string().contains("/nonexistent/workspace"),
        "{error}"
    );
}

#[test]
fn repository_without_commits_is_diffed() {
    let scenario = Scenario::start(
        |dir| {
            git(dir, &["init", "-q"]);
            write(dir, "draft.txt", "draft\n");
        },
        "",
    );
    assert_eq!(scenario.kind(), SnapshotKind::Git);
    write(&scenario.root, "draft.txt", "final\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("-draft\n+final\n"));
}

#[test]
fn repository_cloned_inside_the_workspace_does_not_break_the_diff() {
    let scenario = Scenario::start(committed_repo, "");
    let nested = scenario.root.join("vendor/dep");
    write(&nested, "lib.rs", "fn dep() {}\n");
    init_repo_with_commit(&nested);
    write(&scenario.root, "notes.txt", "changed\n");
    let diff = scenario.diff_and_apply(&["vendor"]);
    assert!(diff.patch.contains("+changed\n"), "{}", diff.patch);
    assert_eq!(diff.left_out.len(), 1);
    assert_eq!(diff.left_out[0].path, "vendor/dep", "{:?}", diff.left_out);
    assert!(diff.left_out[0].reason.contains("created during the run"));
}

/// A committed repository with an untracked repository of its own at `vendor/dep`.
fn repo_with_nested(dir: &Path) {
    committed_repo(dir);
    let nested = dir.join("vendor/dep");
    write(&nested, "lib.rs", "fn dep() {}\n");
    write(&nested, ".gitignore", "*.tmp\n");
    write(&nested, "cache.tmp", "ignored in the nested repository\n");
    init_repo_with_commit(&nested);
}

#[test]
fn changes_inside_a_nested_repository_are_in_the_patch_under_its_path() {
    let scenario = Scenario::start(repo_with_nested, "");
    write(&scenario.root, "vendor/dep/lib.rs", "fn dep() { 2 }\n");
    write(&scenario.root, "vendor/dep/src/new.rs", "fn new() {}\n");
    write(&scenario.root, "notes.txt", "changed\n");
    let diff = scenario.diff_and_apply(&["vendor/dep/cache.tmp"]);
    assert!(
        diff.patch
            .contains("diff --git a/vendor/dep/lib.rs b/vendor/dep/lib.rs"),
        "{}",
        diff.patch
    );
    assert!(diff.patch.contains("b/vendor/dep/src/new.rs"));
    assert_eq!(diff.files_changed, 3);
    assert!(diff.left_out.is_empty(), "{:?}", diff.left_out);
}

#[test]
fn a_commit_made_inside_a_submodule_stays_in_the_patch() {
    let scenario = Scenario::start(
        |dir| {
            let upstream = dir.join("../upstream");
            write(&upstream, "mod.rs", "fn sub() {}\n");
            init_repo_with_commit(&upstream);
            committed_repo(dir);
            git(
                dir,
                &[
                    "-c",
                    "protocol.file.allow=always",
                    "submodule",
                    "add",
                    "-q",
                    "../upstream",
                    "sub",
                ],
            );
            git(dir, &["commit", "-qm", "submodule"]);
        },
        "",
    );
    write(&scenario.root, "sub/mod.rs", "fn sub() { 1 }\n");
    git(&scenario.root.join("sub"), &["commit", "-qam", "agent"]);
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("b/sub/mod.rs"), "{}", diff.patch);
    assert!(!diff.patch.contains("Subproject commit"), "{}", diff.patch);
}

#[test]
fn a_file_the_tools_changed_in_an_ignored_folder_is_in_the_patch() {
    let scenario = Scenario::start(
        |dir| {
            repo_with_nested(dir);
            write(dir, ".gitignore", "build/\n");
            write(dir, "build/config.ini", "debug = false\n");
            git(dir, &["commit", "-qam", "ignore build"]);
        },
        "",
    );
    for path in ["build/config.ini", "build/new.ini", "vendor/dep/cache.tmp"] {
        scenario.snapshot.record_original(&scenario.root.join(path));
    }
    write(&scenario.root, "build/config.ini", "debug = true\n");
    write(&scenario.root, "build/new.ini", "created\n");
    write(&scenario.root, "vendor/dep/cache.tmp", "edited\n");
    // Changed by a command, not by the file tools: build output stays out.
    write(&scenario.root, "build/artifact.o", "object\n");
    let diff = scenario.diff_and_apply(&["build/artifact.o"]);
    for path in ["build/config.ini", "build/new.ini", "vendor/dep/cache.tmp"] {
        assert!(
            diff.patch.contains(&format!("b/{path}")),
            "{path}: {}",
            diff.patch
        );
    }
    assert!(!diff.patch.contains("artifact.o"));
}

#[test]
fn an_untracked_tree_deeper_than_git_can_walk_is_left_out_and_the_rest_applies() {
    let deep = vec!["d"; 110].join("/");
    let scenario = Scenario::start(
        |dir| {
            committed_repo(dir);
            write(dir, &format!("{deep}/leaf.txt"), "deep\n");
        },
        "",
    );
    write(&scenario.root, "notes.txt", "changed\n");
    let diff = scenario.diff_and_apply(&["d"]);
    assert!(diff.patch.contains("+changed\n"));
    assert_eq!(diff.left_out.len(), 1, "{:?}", diff.left_out);
    assert!(diff.left_out[0].path.starts_with("d/d/"));
    assert!(diff.left_out[0].reason.contains("deep"));
}
