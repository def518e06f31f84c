use std::os::unix::fs::symlink;

use super::*;

fn setup() -> (tempfile::TempDir, tempfile::TempDir, WorkspaceJail) {
    let workspace = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::fs::create_dir(workspace.path().join("src")).unwrap();
    std::fs::write(workspace.path().join("src/lib.rs"), "fn x() {}").unwrap();
    let jail = WorkspaceJail::new(workspace.path()).unwrap();
    (workspace, outside, jail)
}

#[test]
fn relative_paths_resolve_inside_root() {
    let (_ws, _out, jail) = setup();
    let path = jail.resolve("src/lib.rs").unwrap();
    assert_eq!(path, jail.root().join("src/lib.rs"));
    assert_eq!(jail.display(&path), "src/lib.rs");
    assert_eq!(jail.display(&jail.resolve(".").unwrap()), ".");
}

#[test]
fn missing_paths_resolve_for_creation() {
    let (_ws, _out, jail) = setup();
    let path = jail.resolve("new/dir/file.txt").unwrap();
    assert_eq!(path, jail.root().join("new/dir/file.txt"));
}

#[test]
fn dot_dot_inside_root_is_folded() {
    let (_ws, _out, jail) = setup();
    assert_eq!(
        jail.resolve("src/../src/./lib.rs").unwrap(),
        jail.root().join("src/lib.rs")
    );
}

#[test]
fn dot_dot_escaping_root_is_rejected() {
    let (_ws, _out, jail) = setup();
    for path in ["..", "../x", "src/../../x", "../../../../../../etc/passwd"] {
        let err = jail.resolve(path).unwrap_err();
        assert!(matches!(err, JailError::Escapes { .. }), "{path}: {err}");
    }
}

#[test]
fn absolute_path_outside_root_is_rejected() {
    let (_ws, outside, jail) = setup();
    let target = outside.path().join("secret.txt");
    let err = jail.resolve(target.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, JailError::Escapes { .. }), "{err}");
    assert!(matches!(
        jail.resolve("/etc/passwd").unwrap_err(),
        JailError::Escapes { .. }
    ));
}

#[test]
fn absolute_path_inside_root_is_accepted() {
    let (_ws, _out, jail) = setup();
    let abs = jail.root().join("src/lib.rs");
    assert_eq!(jail.resolve(abs.to_str().unwrap()).unwrap(), abs);
}

#[test]
fn symlinked_file_leading_outside_is_rejected() {
    let (ws, outside, jail) = setup();
    symlink(
        outside.path().join("secret.txt"),
        ws.path().join("link.txt"),
    )
    .unwrap();
    let err = jail.resolve("link.txt").unwrap_err();
    assert!(matches!(err, JailError::SymlinkEscapes { .. }), "{err}");
    assert!(!err.to_string().contains(outside.path().to_str().unwrap()));
}

#[test]
fn symlinked_directory_leading_outside_is_rejected() {
    let (ws, outside, jail) = setup();
    symlink(outside.path(), ws.path().join("linkdir")).unwrap();
    for path in ["linkdir/secret.txt", "linkdir/new-file.txt", "linkdir"] {
        let err = jail.resolve(path).unwrap_err();
        assert!(
            matches!(err, JailError::SymlinkEscapes { .. }),
            "{path}: {err}"
        );
    }
}

#[test]
fn dangling_symlink_is_rejected() {
    let (ws, outside, jail) = setup();
    symlink(outside.path().join("not-yet"), ws.path().join("dangling")).unwrap();
    let err = jail.resolve("dangling").unwrap_err();
    assert!(matches!(err, JailError::DanglingSymlink { .. }), "{err}");
}

#[test]
fn symlink_inside_workspace_is_allowed() {
    let (ws, _out, jail) = setup();
    symlink(ws.path().join("src"), ws.path().join("alias")).unwrap();
    assert_eq!(
        jail.resolve("alias/lib.rs").unwrap(),
        jail.root().join("src/lib.rs")
    );
}

#[test]
fn root_reached_through_symlink_is_canonical() {
    let (ws, _out, _jail) = setup();
    let holder = tempfile::tempdir().unwrap();
    let link = holder.path().join("ws-link");
    symlink(ws.path(), &link).unwrap();
    let jail = WorkspaceJail::new(&link).unwrap();
    assert_eq!(
        jail.resolve("src/lib.rs").unwrap(),
        ws.path().canonicalize().unwrap().join("src/lib.rs")
    );
}

#[test]
fn empty_and_nul_paths_are_rejected() {
    let (_ws, _out, jail) = setup();
    assert!(matches!(
        jail.resolve("").unwrap_err(),
        JailError::EmptyPath
    ));
    assert!(matches!(
        jail.resolve("a\0b").unwrap_err(),
        JailError::NulByte
    ));
}

#[test]
fn missing_root_is_rejected() {
    let err = WorkspaceJail::new("/definitely/not/here").unwrap_err();
    assert!(matches!(err, JailError::BadRoot { .. }));
}
