use std::path::Path;

use git2::{Repository, Signature};

use super::*;
use crate::workspace::{GitUrlPolicy, clone_git, pack_tarball};

const PATCH: &str = "diff --git a/hello.txt b/hello.txt
--- a/hello.txt
+++ b/hello.txt
@@ -1 +1 @@
-hello
+hello, world
diff --git a/new.txt b/new.txt
new file mode 100644
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+new
";

/// A bare "remote" with one commit on `main` holding `hello.txt` and `keep.txt`.
fn bare_origin(dir: &Path) -> (Repository, git2::Oid) {
    let repo = Repository::init_bare(dir).unwrap();
    let mut tree = repo.treebuilder(None).unwrap();
    for (name, text) in [("hello.txt", "hello\n"), ("keep.txt", "keep\n")] {
        let blob = repo.blob(text.as_bytes()).unwrap();
        tree.insert(name, blob, 0o100644).unwrap();
    }
    let tree_id = tree.write().unwrap();
    drop(tree);
    let commit = {
        let tree = repo.find_tree(tree_id).unwrap();
        let sig = Signature::now("t", "t@example.com").unwrap();
        repo.commit(Some("refs/heads/main"), &sig, &sig, "base", &tree, &[])
            .unwrap()
    };
    repo.set_head("refs/heads/main").unwrap();
    (repo, commit)
}

fn options() -> CloneOptions {
    CloneOptions {
        policy: GitUrlPolicy::new(&[], true).unwrap(),
        ..CloneOptions::default()
    }
}

/// The origin, and the task's workspace tarball cloned from it.
fn fixture(dir: &Path) -> (Repository, git2::Oid, String, std::path::PathBuf) {
    let (origin, base) = bare_origin(&dir.join("origin.git"));
    let url = format!("file://{}", dir.join("origin.git").display());
    clone_git(&url, None, &dir.join("ws"), &options()).unwrap();
    let tarball = dir.join("workspace.tar.gz");
    pack_tarball(&dir.join("ws"), &tarball).unwrap();
    (origin, base, url, tarball)
}

fn blob_text(repo: &Repository, tree: &git2::Tree<'_>, name: &str) -> String {
    let entry = tree.get_name(name).unwrap();
    let blob = repo.find_blob(entry.id()).unwrap();
    String::from_utf8(blob.content().to_vec()).unwrap()
}

#[test]
fn the_pushed_branch_holds_exactly_the_diff_on_the_starting_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, base, url, tarball) = fixture(dir.path());
    let spec = BranchSpec {
        branch: "agent/t1",
        message: "Fix the greeting",
        url: &url,
    };
    let commit = commit_and_push(
        &tarball,
        &dir.path().join("scratch"),
        PATCH.as_bytes(),
        &spec,
        None,
        &options(),
    )
    .unwrap();

    let pushed = origin
        .find_reference("refs/heads/agent/t1")
        .unwrap()
        .peel_to_commit()
        .unwrap();
    assert_eq!(pushed.id().to_string(), commit);
    assert_eq!(pushed.parent_ids().collect::<Vec<_>>(), vec![base]);
    assert_eq!(pushed.message().unwrap(), "Fix the greeting");
    let old = origin.find_commit(base).unwrap().tree().unwrap();
    let new = pushed.tree().unwrap();
    let diff = origin
        .diff_tree_to_tree(Some(&old), Some(&new), None)
        .unwrap();
    let changed: Vec<String> = diff
        .deltas()
        .map(|d| d.new_file().path().unwrap().display().to_string())
        .collect();
    assert_eq!(changed, vec!["hello.txt", "new.txt"]);
    assert_eq!(blob_text(&origin, &new, "hello.txt"), "hello, world\n");
    assert_eq!(blob_text(&origin, &new, "new.txt"), "new\n");
    assert_eq!(blob_text(&origin, &new, "keep.txt"), "keep\n");
    // `main` is untouched.
    let main = origin.find_reference("refs/heads/main").unwrap();
    assert_eq!(main.target(), Some(base));

    // A retry pushes the branch again over the first one.
    let again = commit_and_push(
        &tarball,
        &dir.path().join("scratch2"),
        PATCH.as_bytes(),
        &spec,
        None,
        &options(),
    )
    .unwrap();
    let tip = origin.find_reference("refs/heads/agent/t1").unwrap();
    assert_eq!(tip.target().unwrap().to_string(), again);
}

#[test]
fn patches_into_git_or_that_do_not_apply_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (origin, _, url, tarball) = fixture(dir.path());
    let spec = BranchSpec {
        branch: "agent/t2",
        message: "m",
        url: &url,
    };
    let into_git = "diff --git a/.git/hooks/pre-commit b/.git/hooks/pre-commit
new file mode 100755
--- /dev/null
+++ b/.git/hooks/pre-commit
@@ -0,0 +1 @@
+echo owned
";
    let stale = "diff --git a/hello.txt b/hello.txt
--- a/hello.txt
+++ b/hello.txt
@@ -1 +1 @@
-goodbye
+hello
";
    for (patch, expected) in [
        (into_git, "inside .git"),
        (stale, "does not apply"),
        ("not a patch at all", "not a patch git can read"),
    ] {
        let scratch = tempfile::tempdir_in(dir.path()).unwrap();
        let err = commit_and_push(
            &tarball,
            scratch.path(),
            patch.as_bytes(),
            &spec,
            None,
            &options(),
        )
        .unwrap_err();
        assert!(err.contains(expected), "{expected}: {err}");
    }
    assert!(origin.find_reference("refs/heads/agent/t2").is_err());
}
