#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End-to-end scenarios for `apply_patch`: codex's conformance suite and our own.
//!
//! A scenario is a folder: `input/` (optional) is copied into a fresh workspace,
//! `patch.txt` is applied with the tool, and the workspace must then hold exactly the
//! files of `expected/`, byte for byte (empty directories do not count). When `expected/`
//! equals `input/` the scenario is a rejection: the call must fail. Both suites run with
//! the same runner, which reports every failing scenario by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tools::apply_patch::ApplyPatchTool;
use tools::{Tool, ToolContext, ToolsConfig, WorkspaceJail};

/// Relative path (`/`-separated) to contents, for every file under a directory.
type Tree = BTreeMap<String, Vec<u8>>;

fn conformance_dir() -> PathBuf {
    match std::env::var_os("APPLY_PATCH_CONFORMANCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("..")
            .join("shared")
            .join("conformance")
            .join("apply-patch"),
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join("apply-patch")
}

/// The files under `dir`, recursively; a missing directory is an empty tree.
fn read_tree(dir: &Path) -> Tree {
    fn walk(base: &Path, dir: &Path, tree: &mut Tree) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, tree);
            } else {
                let relative = path.strip_prefix(base).unwrap();
                let key = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                tree.insert(key, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut tree = Tree::new();
    if dir.is_dir() {
        walk(dir, dir, &mut tree);
    }
    tree
}

fn write_tree(dir: &Path, tree: &Tree) {
    for (relative, contents) in tree {
        let path = dir.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

/// Every sub-folder of `root`, sorted by name.
fn scenario_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Runs one scenario; `Err` says how the outcome differs from the expectation.
async fn run_scenario(dir: &Path) -> Result<(), String> {
    let patch = std::fs::read_to_string(dir.join("patch.txt"))
        .map_err(|err| format!("cannot read patch.txt: {err}"))?;
    let input = read_tree(&dir.join("input"));
    let expected = read_tree(&dir.join("expected"));
    let rejection = input == expected;

    let workspace = tempfile::tempdir().unwrap();
    write_tree(workspace.path(), &input);
    let ctx = ToolContext::new(
        WorkspaceJail::new(workspace.path()).unwrap(),
        Arc::new(ToolsConfig::default()),
    );
    let result = ApplyPatchTool
        .call(&ctx, serde_json::json!({ "input": patch }))
        .await;

    let mut problems = Vec::new();
    match &result {
        Ok(output) if rejection => problems.push(format!(
            "expected the patch to be rejected, but it succeeded: {}",
            output.content
        )),
        Ok(output) if !output.content.starts_with("Success.") => {
            problems.push(format!("unexpected summary: {}", output.content));
        }
        Err(err) if err.is_fatal() => problems.push(format!("fatal error: {err}")),
        _ => {}
    }
    let actual = read_tree(workspace.path());
    for (path, want) in &expected {
        match actual.get(path) {
            None => problems.push(format!("missing file `{path}`")),
            Some(got) if got != want => problems.push(format!(
                "`{path}` differs:\n  expected {:?}\n  got      {:?}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(got)
            )),
            Some(_) => {}
        }
    }
    for path in actual.keys().filter(|path| !expected.contains_key(*path)) {
        problems.push(format!("unexpected file `{path}`"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        if let Err(err) = &result {
            problems.push(format!("(the tool returned the error: {err})"));
        }
        Err(problems.join("\n"))
    }
}

/// Runs every scenario under `root`; panics listing all failures, returns the count run.
async fn run_suite(root: &Path) -> usize {
    let dirs = scenario_dirs(root);
    let mut failures = Vec::new();
    let mut ran = 0;
    for dir in &dirs {
        ran += 1;
        if let Err(problem) = run_scenario(dir).await {
            let name = dir.file_name().unwrap().to_string_lossy();
            failures.push(format!("--- {name}\n{problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} scenarios in {} failed:\n{}",
        failures.len(),
        root.display(),
        failures.join("\n")
    );
    assert_eq!(ran, dirs.len());
    assert!(ran > 0, "no scenario folders in {}", root.display());
    ran
}

#[tokio::test]
async fn codex_conformance_scenarios_all_pass() {
    let root = conformance_dir();
    if !root.is_dir() {
        let message = format!(
            "conformance data not found at {} (set APPLY_PATCH_CONFORMANCE_DIR)",
            root.display()
        );
        if std::env::var("CI").is_ok_and(|value| value == "true") {
            panic!("{message}");
        }
        eprintln!("skipped: {message}");
        return;
    }
    let ran = run_suite(&root).await;
    eprintln!("ran {ran} codex conformance scenarios");
}

#[tokio::test]
async fn own_scenarios_all_pass() {
    let ran = run_suite(&fixtures_dir()).await;
    eprintln!("ran {ran} own apply_patch scenarios");
}
