#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Zip extraction: what is accepted, and entries refused for their path or file type (a refusal leaves nothing).

#[path = "support/zip_case.rs"]
mod zip_case;

use std::path::Path;

use orchestrator::WorkspaceError;
use orchestrator::workspace::{ExtractOptions, ExtractStats};
use zip_case::{Case, Entry, default_opts, mode, refused};

#[test]
fn a_normal_zip_is_extracted_with_contents_and_executable_bits() {
    let case = Case::new(&[
        Entry::File("README.md", b"# hi\n"),
        Entry::Dir("src/"),
        Entry::File("src/lib.rs", b"pub fn f() {}\n"),
        Entry::Exec("scripts/run.sh", b"#!/bin/sh\necho hi\n"),
        Entry::Dir("empty/"),
    ]);
    let stats = case.extract(&default_opts()).unwrap();
    let dest = case.dest();
    assert_eq!(std::fs::read(dest.join("README.md")).unwrap(), b"# hi\n");
    assert_eq!(
        std::fs::read(dest.join("src/lib.rs")).unwrap(),
        b"pub fn f() {}\n"
    );
    assert_eq!(mode(&dest.join("scripts/run.sh")), 0o755);
    assert_eq!(mode(&dest.join("src/lib.rs")), 0o644);
    assert!(dest.join("empty").is_dir());
    assert_eq!(
        stats,
        ExtractStats {
            files: 3,
            dirs: 2,
            bytes: 5 + 14 + 18,
            unwrapped_root: None,
        }
    );
    // Only the workspace remains next to the upload: the staging folder became it.
    assert_eq!(
        std::fs::read_dir(case.tmp.path().join("out"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_single_top_level_folder_is_unwrapped() {
    let case = Case::new(&[
        Entry::Dir("repo-main/"),
        Entry::File("repo-main/README.md", b"x"),
        Entry::File("repo-main/src/main.rs", b"fn main() {}"),
    ]);
    let stats = case.extract(&default_opts()).unwrap();
    assert_eq!(stats.unwrapped_root.as_deref(), Some("repo-main"));
    assert!(case.dest().join("README.md").is_file());
    assert!(case.dest().join("src/main.rs").is_file());
    assert!(!case.dest().join("repo-main").exists());
    assert_eq!(
        std::fs::read_dir(case.tmp.path().join("out"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_single_top_level_folder_is_kept_when_unwrapping_is_off() {
    let case = Case::new(&[Entry::File("repo-main/README.md", b"x")]);
    let opts = ExtractOptions {
        unwrap_single_root: false,
        ..default_opts()
    };
    let stats = case.extract(&opts).unwrap();
    assert_eq!(stats.unwrapped_root, None);
    assert!(case.dest().join("repo-main/README.md").is_file());
}

#[test]
fn a_single_top_level_file_is_not_unwrapped() {
    let case = Case::new(&[Entry::File("main.py", b"print(1)")]);
    let stats = case.extract(&default_opts()).unwrap();
    assert_eq!(stats.unwrapped_root, None);
    assert_eq!(
        std::fs::read(case.dest().join("main.py")).unwrap(),
        b"print(1)"
    );
}

#[test]
fn macos_resource_fork_entries_are_skipped() {
    let case = Case::new(&[
        Entry::File("app/main.py", b"x"),
        Entry::File("__MACOSX/app/._main.py", b"junk"),
    ]);
    let stats = case.extract(&default_opts()).unwrap();
    assert_eq!(stats.unwrapped_root.as_deref(), Some("app"));
    assert!(case.dest().join("main.py").is_file());
    assert!(!case.dest().join("__MACOSX").exists());
}

#[test]
fn an_empty_existing_destination_is_filled() {
    let case = Case::new(&[Entry::File("a.txt", b"a")]);
    std::fs::create_dir_all(case.dest()).unwrap();
    case.extract(&default_opts()).unwrap();
    assert!(case.dest().join("a.txt").is_file());
}

#[test]
fn a_non_empty_destination_is_refused_and_untouched() {
    let case = Case::new(&[Entry::File("a.txt", b"a")]);
    std::fs::create_dir_all(case.dest()).unwrap();
    std::fs::write(case.dest().join("keep.txt"), b"mine").unwrap();
    let err = case.extract(&default_opts()).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::DestinationNotEmpty { .. }),
        "{err:?}"
    );
    assert!(!err.is_input_error());
    assert_eq!(
        std::fs::read(case.dest().join("keep.txt")).unwrap(),
        b"mine"
    );
    assert!(!case.dest().join("a.txt").exists());
}

#[test]
fn entries_escaping_through_dot_dot_are_refused() {
    for name in ["../evil", "a/../../evil", "a/b/../../../evil", ".."] {
        let case = Case::new(&[Entry::File("ok.txt", b"ok"), Entry::File(name, b"evil")]);
        let err = refused(&case, &default_opts());
        assert!(
            matches!(err, WorkspaceError::ZipEntryEscapes { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("relative paths"), "{err}");
        assert!(!case.tmp.path().join("evil").exists());
        assert!(!case.tmp.path().join("out/evil").exists());
    }
}

#[test]
fn absolute_entries_are_refused() {
    let case = Case::new(&[Entry::File("/tmp/abs-evil", b"evil")]);
    let err = refused(&case, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipEntryEscapes { .. }),
        "{err:?}"
    );
    assert!(!Path::new("/tmp/abs-evil").exists());
}

#[test]
fn windows_drive_and_backslash_entries_are_refused() {
    for name in ["C:/Windows/evil", "c:evil", "C:\\evil", "a\\..\\..\\evil"] {
        let case = Case::new(&[Entry::File(name, b"evil")]);
        let err = refused(&case, &default_opts());
        assert!(
            matches!(err, WorkspaceError::ZipEntryEscapes { .. }),
            "{name}: {err:?}"
        );
    }
}

#[test]
fn names_with_nul_bytes_are_refused() {
    let case = Case::new(&[Entry::File("a\0b", b"x")]);
    let err = refused(&case, &default_opts());
    assert!(
        matches!(err, WorkspaceError::ZipEntryEscapes { .. }),
        "{err:?}"
    );
}

#[test]
fn symlink_entries_are_refused() {
    for target in ["/etc/passwd", "inside.txt"] {
        let case = Case::new(&[
            Entry::File("inside.txt", b"x"),
            Entry::Symlink("link", target),
        ]);
        let err = refused(&case, &default_opts());
        assert!(
            matches!(err, WorkspaceError::ZipSymlink { ref entry } if entry == "link"),
            "{err:?}"
        );
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}

#[test]
fn device_fifo_and_socket_entries_are_refused() {
    for file_type in [0o020_000, 0o060_000, 0o010_000, 0o140_000] {
        let case = Case::new(&[Entry::Typed("dev", file_type | 0o644)]);
        let err = refused(&case, &default_opts());
        assert!(
            matches!(err, WorkspaceError::ZipSpecialFile { .. }),
            "{file_type:o}: {err:?}"
        );
    }
}

#[test]
fn entry_names_in_messages_are_escaped() {
    let case = Case::new(&[Entry::Symlink("bad\nname\u{1b}[31m", "x")]);
    let err = refused(&case, &default_opts());
    let message = err.to_string();
    assert!(
        !message.contains('\n') && !message.contains('\u{1b}'),
        "{message:?}"
    );
    assert!(message.contains("bad\\nname"), "{message}");
}
