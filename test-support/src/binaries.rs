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
    // What cargo set for the running test (`CARGO_PKG_NAME`...) must not reach the build:
    // build scripts that read such names (ring's) would count as changed and rebuild,
    // and the next build from a shell would rebuild them back.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_the_test = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || name.starts_with("NEXTEST")
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref());
        if set_for_the_test {
            build.env_remove(name.as_ref());
        }
    }
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
