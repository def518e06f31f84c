//! Workspaces that are plain folders (no git repository anywhere above them).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use agent_rs::workspace_diff::{SnapshotKind, SnapshotLimits};

use crate::support::{Scenario, set_executable, write};

/// A folder with a few text files and a `.gitignore`, not a repository.
fn plain_folder(dir: &Path) {
    write(
        dir,
        "src/lib.rs",
        "fn one() {}\nfn two() {}\nfn three() {}\n",
    );
    write(dir, "README.md", "# Project\n\nSome words.\n");
    write(dir, "notes.txt", "keep me\n");
    write(dir, ".gitignore", "target/\n*.log\n");
    write(dir, ".hidden/config", "secret = false\n");
}

fn start() -> Scenario {
    let scenario = Scenario::start(plain_folder, "");
    assert_eq!(scenario.kind(), SnapshotKind::PlainFolder);
    scenario
}

#[test]
fn modified_file_round_trips() {
    let scenario = start();
    write(
        &scenario.root,
        "src/lib.rs",
        "fn one() {}\nfn deux() {}\nfn three() {}\n",
    );
    write(&scenario.root, ".hidden/config", "secret = true\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(
        diff.patch
            .starts_with("diff --git a/.hidden/config b/.hidden/config\n")
    );
    assert_eq!(
        (diff.files_changed, diff.insertions, diff.deletions),
        (2, 2, 2)
    );
}

#[test]
fn new_files_in_nested_new_directories_are_added() {
    let scenario = start();
    write(&scenario.root, "a/b/c/new.rs", "pub fn new() {}\n");
    write(&scenario.root, "a/empty.txt", "");
    let diff = scenario.diff_and_apply(&[]);
    assert!(
        diff.patch
            .contains("--- /dev/null\n+++ b/a/b/c/new.rs\n@@ -0,0 +1 @@\n")
    );
    assert_eq!((diff.files_changed, diff.insertions), (2, 1));
}

#[test]
fn deleted_files_are_removed() {
    let scenario = start();
    fs::remove_file(scenario.root.join("notes.txt")).unwrap();
    fs::remove_dir_all(scenario.root.join("src")).unwrap();
    let diff = scenario.diff_and_apply(&[]);
    assert_eq!(diff.patch.matches("deleted file mode 100644\n").count(), 2);
    assert_eq!(diff.deletions, 4);
}

#[test]
fn rename_is_a_delete_plus_an_add() {
    let scenario = start();
    fs::rename(
        scenario.root.join("notes.txt"),
        scenario.root.join("kept.txt"),
    )
    .unwrap();
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("deleted file mode"));
    assert!(diff.patch.contains("new file mode"));
    assert_eq!(diff.files_changed, 2);
}

#[test]
fn final_newline_removed_and_added_round_trip() {
    let scenario = Scenario::start(
        |dir| {
            plain_folder(dir);
            write(dir, "no_eol.txt", "first\nlast");
        },
        "",
    );
    write(&scenario.root, "notes.txt", "keep me\nno newline");
    write(&scenario.root, "no_eol.txt", "first\nlast\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(
        diff.patch
            .contains("+no newline\n\\ No newline at end of file\n")
    );
    assert!(
        diff.patch
            .contains("-last\n\\ No newline at end of file\n+last\n")
    );
}

#[test]
fn binary_files_added_changed_and_deleted_round_trip() {
    let scenario = Scenario::start(
        |dir| {
            plain_folder(dir);
            write(dir, "logo.bin", [0u8, 1, 2, 3, 255, 0, 7]);
            write(dir, "old.bin", [0u8; 64]);
        },
        "",
    );
    write(&scenario.root, "logo.bin", [0u8, 9, 9, 9, 255, 0, 7, 8]);
    write(
        &scenario.root,
        "new.bin",
        (0..=255u8).cycle().take(5000).collect::<Vec<_>>(),
    );
    fs::remove_file(scenario.root.join("old.bin")).unwrap();
    let diff = scenario.diff_and_apply(&[]);
    assert_eq!(diff.patch.matches("GIT binary patch").count(), 3);
    assert_eq!(diff.files_changed, 3);
    assert!(diff.left_out.is_empty());
}

#[test]
fn text_file_turned_binary_round_trips() {
    let scenario = start();
    write(&scenario.root, "notes.txt", b"now\0binary");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("GIT binary patch"));
}

#[test]
fn ignored_files_are_not_in_the_diff() {
    let scenario = Scenario::start(
        |dir| {
            plain_folder(dir);
            write(dir, "target/old.o", "old build\n");
        },
        "",
    );
    write(&scenario.root, "target/debug/app", "build output\n");
    write(&scenario.root, "target/old.o", "rebuilt\n");
    write(&scenario.root, "run.log", "log line\n");
    assert_eq!(scenario.snapshot.diff().unwrap(), Default::default());
}

#[test]
fn nothing_changed_gives_an_empty_diff() {
    let scenario = start();
    assert_eq!(scenario.snapshot.diff().unwrap(), Default::default());
}

#[test]
fn nested_git_folders_are_not_part_of_the_workspace() {
    let scenario = start();
    write(
        &scenario.root,
        "vendor/lib/.git/HEAD",
        "ref: refs/heads/main\n",
    );
    assert_eq!(scenario.snapshot.diff().unwrap(), Default::default());
}

#[test]
fn file_hidden_by_a_new_gitignore_is_not_deleted() {
    let scenario = start();
    write(&scenario.root, ".gitignore", "target/\n*.log\nnotes.txt\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(!diff.patch.contains("a/notes.txt"), "{}", diff.patch);
    assert_eq!(diff.files_changed, 1);
}

#[test]
fn crlf_lines_round_trip() {
    let scenario = Scenario::start(|dir| write(dir, "win.txt", "one\r\ntwo\r\nthree\r\n"), "");
    write(&scenario.root, "win.txt", "one\r\n2\r\nthree\r\nfour");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("-two\r\n+2\r\n"));
}

#[test]
fn lone_carriage_returns_round_trip() {
    let scenario = Scenario::start(
        |dir| write(dir, "progress.txt", "10%\r50%\r100%\ndone\n"),
        "",
    );
    write(&scenario.root, "progress.txt", "10%\r60%\r100%\ndone\r");
    scenario.diff_and_apply(&[]);
}

#[test]
fn paths_with_spaces_quotes_and_unicode_apply() {
    let scenario = start();
    write(&scenario.root, "my docs/réponse été.txt", "bonjour\n");
    write(&scenario.root, "tab\there \"q\".txt", "odd name\n");
    write(&scenario.root, "back\\slash.txt", "odd name\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(
        diff.patch
            .contains(r#""b/my docs/r\303\251ponse \303\251t\303\251.txt""#)
    );
    assert_eq!(diff.files_changed, 3);
}

#[test]
fn executable_bit_changes_round_trip() {
    let scenario = Scenario::start(
        |dir| {
            write(dir, "run.sh", "#!/bin/sh\necho hi\n");
            write(dir, "tool.sh", "#!/bin/sh\necho tool\n");
        },
        "",
    );
    set_executable(&scenario.root, "run.sh", true);
    write(&scenario.root, "tool.sh", "#!/bin/sh\necho changed\n");
    set_executable(&scenario.root, "tool.sh", true);
    write(&scenario.root, "new.sh", "#!/bin/sh\n");
    set_executable(&scenario.root, "new.sh", true);
    let diff = scenario.diff_and_apply(&[]);
    assert_eq!(
        diff.patch
            .matches("old mode 100644\nnew mode 100755\n")
            .count(),
        2
    );
    assert!(diff.patch.contains("new file mode 100755\n"));
}

#[test]
fn symlinks_are_recorded_as_symlinks_not_followed() {
    let scenario = Scenario::start(
        |dir| {
            plain_folder(dir);
            symlink("notes.txt", dir.join("old_link")).unwrap();
            symlink("src", dir.join("dir_link")).unwrap();
        },
        "",
    );
    fs::remove_file(scenario.root.join("old_link")).unwrap();
    symlink("README.md", scenario.root.join("old_link")).unwrap();
    symlink("/outside/the/workspace", scenario.root.join("new_link")).unwrap();
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("new file mode 120000\n"));
    assert!(
        diff.patch
            .contains("-notes.txt\n\\ No newline at end of file\n+README.md\n")
    );
    assert!(!diff.patch.contains("dir_link/"));
}

#[test]
fn symlink_replaced_by_a_file_round_trips() {
    let scenario = Scenario::start(
        |dir| {
            plain_folder(dir);
            symlink("notes.txt", dir.join("link")).unwrap();
        },
        "",
    );
    fs::remove_file(scenario.root.join("link")).unwrap();
    write(&scenario.root, "link", "a real file now\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("deleted file mode 120000\n"));
    assert!(diff.patch.contains("new file mode 100644\n"));
}

fn small_limits() -> SnapshotLimits {
    SnapshotLimits {
        max_file_bytes: 64,
        max_total_bytes: 1 << 20,
        ..SnapshotLimits::default()
    }
}

fn with_big_files(dir: &Path) {
    plain_folder(dir);
    write(dir, "big.bin", vec![7u8; 1000]);
    write(dir, "big_to_delete.bin", vec![8u8; 1000]);
    write(dir, "big_untouched.bin", vec![9u8; 1000]);
    let text: String = (0..200).map(|n| format!("line {n}\n")).collect();
    write(dir, "big.txt", text);
}

#[test]
fn files_kept_on_disk_get_real_patches() {
    let scenario = Scenario::start_with_limits(with_big_files, "", small_limits());
    write(&scenario.root, "big.bin", b"small now\0");
    fs::remove_file(scenario.root.join("big_to_delete.bin")).unwrap();
    let text = fs::read_to_string(scenario.root.join("big.txt")).unwrap();
    write(
        &scenario.root,
        "big.txt",
        text.replace("line 100\n", "LINE 100\n"),
    );
    let diff = scenario.diff_and_apply(&[]);
    assert_eq!(diff.files_changed, 3);
    assert!(
        diff.patch.contains("-line 100\n+LINE 100\n"),
        "{}",
        diff.patch
    );
    assert!(diff.left_out.is_empty(), "{:?}", diff.left_out);
}

#[test]
fn a_large_binary_file_is_carried_whole_without_its_old_bytes() {
    let scenario = Scenario::start_with_limits(
        |dir| {
            plain_folder(dir);
            let mut bytes = vec![0u8; 4000];
            bytes[100] = 42;
            write(dir, "model.bin", bytes);
        },
        "",
        small_limits(),
    );
    let mut bytes = vec![1u8; 5000];
    bytes[0] = 0;
    write(&scenario.root, "model.bin", bytes);
    let diff = scenario.diff_and_apply(&[]);
    assert!(
        diff.patch.contains("GIT binary patch\nliteral 5000\n"),
        "{}",
        diff.patch
    );
    assert!(diff.left_out.is_empty(), "{:?}", diff.left_out);
}

#[test]
fn a_file_too_large_for_the_patch_is_left_out_and_the_rest_applies() {
    let limits = SnapshotLimits {
        max_patch_file_bytes: 1500,
        ..small_limits()
    };
    let scenario = Scenario::start_with_limits(with_big_files, "", limits);
    write(&scenario.root, "big.bin", vec![6u8; 2000]);
    write(&scenario.root, "notes.txt", "changed\n");
    let diff = scenario.snapshot.diff().unwrap();
    assert!(!diff.patch.contains("big.bin"), "{}", diff.patch);
    assert_eq!(diff.files_changed, 1);
    assert_eq!(diff.left_out.len(), 1);
    assert_eq!(diff.left_out[0].path, "big.bin", "{:?}", diff.left_out);
    assert!(diff.left_out[0].reason.contains("too large"));
    scenario.apply(&diff);
    assert_eq!(
        fs::read_to_string(scenario.untouched.join("notes.txt")).unwrap(),
        "changed\n"
    );
}

#[test]
fn files_beyond_every_memory_and_disk_bound_are_still_diffed_by_id() {
    let limits = SnapshotLimits {
        max_file_bytes: 1 << 20,
        max_total_bytes: 10,
        max_spill_bytes: 0,
        ..SnapshotLimits::default()
    };
    let scenario = Scenario::start_with_limits(plain_folder, "", limits);
    write(&scenario.root, "notes.txt", "changed\n");
    write(&scenario.root, "README.md", "# Changed\n");
    let diff = scenario.diff_and_apply(&[]);
    assert_eq!(diff.files_changed, 2);
}

#[test]
fn a_file_the_tools_changed_while_ignored_is_in_the_patch() {
    let scenario = Scenario::start(
        |dir| {
            plain_folder(dir);
            write(dir, "app.log", "first\n");
        },
        "",
    );
    scenario
        .snapshot
        .record_original(&scenario.root.join("app.log"));
    write(&scenario.root, "app.log", "second\n");
    let diff = scenario.diff_and_apply(&[]);
    assert!(diff.patch.contains("-first\n+second\n"), "{}", diff.patch);
}
