//! The workspace's real programs, as the tests run them.
//!
//! A test of one crate cannot name another crate's binary (`CARGO_BIN_EXE_*` covers the
//! crate's own), so it is built here once per test process, into the target folder and
//! profile the running test was built in (`target/debug/deps/t-…` -> `target/debug/`).
//! When the workspace is already built this is cargo's quick freshness check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The profile folder of the running test binary (`target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    if deps.file_name().is_some_and(|name| name == "deps") {
        deps.parent().unwrap().to_path_buf()
    } else {
        deps.to_path_buf()
    }
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `bin` of `package`, built once per process beside the running test.
pub fn workspace_binary(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(path) = built.get(bin) {
        return path.clone();
    }
    let profile = profile_dir();
    let target = profile.parent().unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut build = std::process::Command::new(cargo);
    build
        .args(["build", "-q", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(workspace_root());
    if profile.file_name().is_some_and(|name| name == "release") {
        build.arg("--release");
    }
    let status = build.status().unwrap();
    assert!(status.success(), "building {bin} ({package}) failed");
    let binary = profile.join(bin);
    assert!(binary.is_file(), "{} missing", binary.display());
    built.insert(bin.to_string(), binary.clone());
    binary
}

/// The real `agent-rs`.
pub fn agent_binary() -> PathBuf {
    workspace_binary("agent-rs", "agent-rs")
}

/// The real `api` server.
pub fn api_binary() -> PathBuf {
    workspace_binary("api", "api")
}
