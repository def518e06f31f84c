#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The workspace tarball: what goes in, read back with `tar`.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use flate2::read::GzDecoder;
use orchestrator::WorkspaceError;
use orchestrator::workspace::{PackStats, pack_tarball};
use tar::{Archive, EntryType};

#[derive(Debug, PartialEq, Eq)]
enum Item {
    Dir(u32),
    File(u32, Vec<u8>),
    Link(String),
}

fn read_back(tarball: &Path) -> BTreeMap<String, Item> {
    let mut archive = Archive::new(GzDecoder::new(std::fs::File::open(tarball).unwrap()));
    let mut items = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let header = entry.header();
        let mode = header.mode().unwrap();
        let item = match header.entry_type() {
            EntryType::Directory => Item::Dir(mode),
            EntryType::Regular => {
                let mut body = Vec::new();
                entry.read_to_end(&mut body).unwrap();
                Item::File(mode, body)
            }
            EntryType::Symlink => {
                Item::Link(entry.link_name().unwrap().unwrap().display().to_string())
            }
            other => panic!("unexpected entry type {other:?} for {path}"),
        };
        assert!(items.insert(path, item).is_none());
    }
    items
}

/// A workspace with nested folders, an executable, and symlinks inside and out.
fn workspace(root: &Path) {
    std::fs::create_dir_all(root.join("src/nested/deeper")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::write(root.join("README.md"), b"readme").unwrap();
    std::fs::write(root.join("src/nested/deeper/mod.rs"), b"deep").unwrap();
    std::fs::write(root.join(".git/HEAD"), b"ref: refs/heads/main\n").unwrap();
    std::fs::write(root.join("run.sh"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::set_permissions(
        root.join("README.md"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    symlink("README.md", root.join("readme-link")).unwrap();
    symlink("/etc/hostname", root.join("outside-link")).unwrap();
    symlink("/etc", root.join("outside-dir-link")).unwrap();
}

#[test]
fn a_tarball_holds_the_tree_with_modes_and_symlinks_as_links() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    workspace(&ws);
    let out = tmp.path().join("out/workspace.tar.gz");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let stats = pack_tarball(&ws, &out).unwrap();
    assert_eq!(
        stats,
        PackStats {
            files: 4,
            dirs: 4,
            symlinks: 3,
            content_bytes: 6 + 4 + 21 + 10,
        }
    );
    let items = read_back(&out);
    let expected: BTreeMap<String, Item> = [
        (".git", Item::Dir(0o755)),
        (
            ".git/HEAD",
            Item::File(0o644, b"ref: refs/heads/main\n".to_vec()),
        ),
        ("README.md", Item::File(0o644, b"readme".to_vec())),
        ("outside-dir-link", Item::Link("/etc".into())),
        ("outside-link", Item::Link("/etc/hostname".into())),
        ("readme-link", Item::Link("README.md".into())),
        ("run.sh", Item::File(0o755, b"#!/bin/sh\n".to_vec())),
        ("src", Item::Dir(0o755)),
        ("src/nested", Item::Dir(0o755)),
        ("src/nested/deeper", Item::Dir(0o755)),
        (
            "src/nested/deeper/mod.rs",
            Item::File(0o644, b"deep".to_vec()),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(items, expected);
}

#[test]
fn a_tarball_unpacks_to_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    workspace(&ws);
    let out = tmp.path().join("workspace.tar.gz");
    pack_tarball(&ws, &out).unwrap();
    let back = tmp.path().join("back");
    Archive::new(GzDecoder::new(std::fs::File::open(&out).unwrap()))
        .unpack(&back)
        .unwrap();
    assert_eq!(
        std::fs::read(back.join("src/nested/deeper/mod.rs")).unwrap(),
        b"deep"
    );
    let exec = std::fs::metadata(back.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(exec & 0o100, 0o100, "{exec:o}");
    assert_eq!(
        std::fs::read_link(back.join("readme-link")).unwrap(),
        Path::new("README.md")
    );
    assert!(
        std::fs::symlink_metadata(back.join("outside-dir-link"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn packing_the_same_tree_twice_gives_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    workspace(&ws);
    let (a, b) = (tmp.path().join("a.tar.gz"), tmp.path().join("b.tar.gz"));
    pack_tarball(&ws, &a).unwrap();
    // Touch a file: mtimes are not part of the archive.
    std::fs::write(ws.join("README.md"), b"readme").unwrap();
    pack_tarball(&ws, &b).unwrap();
    assert_eq!(std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
}

#[test]
fn an_empty_workspace_packs_to_an_empty_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    let out = tmp.path().join("w.tar.gz");
    assert_eq!(pack_tarball(&ws, &out).unwrap(), PackStats::default());
    assert!(read_back(&out).is_empty());
}

#[test]
fn a_missing_workspace_leaves_no_tarball_and_no_temp_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let err = pack_tarball(&tmp.path().join("missing"), &out_dir.join("w.tar.gz")).unwrap_err();
    assert!(matches!(err, WorkspaceError::Io { .. }), "{err:?}");
    assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 0);
}

#[test]
fn a_successful_pack_leaves_only_the_tarball() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    workspace(&ws);
    let out_dir = tmp.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    pack_tarball(&ws, &out_dir.join("w.tar.gz")).unwrap();
    let names: Vec<_> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["w.tar.gz"]);
}
