//! Real Podman for the container runner's tests: the images `scripts/images` builds, and
//! a `podman system service` of the test's own on a temporary socket, stopped with the
//! test. Podman is required: a machine without it fails these tests with what to run
//! (they never skip, in CI or not).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use orchestrator::runner::{ContainerRunner, ContainerSettings};

pub const AGENT_IMAGE: &str = "agent-rs/agent:latest";
pub const ENV_IMAGE: &str = "agent-rs/env-base:latest";

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The Podman settings file the scripts use (never /etc's).
pub fn containers_conf() -> PathBuf {
    std::env::var_os("CONTAINERS_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("images/containers.conf"))
}

pub fn podman() -> Command {
    let mut command = Command::new("podman");
    command.env("CONTAINERS_CONF", containers_conf());
    command
}

/// Builds the agent and environment images once per test binary if they are missing
/// (`scripts/images build`, which builds the static agent-rs).
pub fn ensure_images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        if Command::new("podman").arg("--version").output().is_err() {
            panic!(
                "podman is missing: the container runner's tests need it \
                 (scripts/images installs it on Debian, or apt-get install podman runc; CI={})",
                std::env::var("CI").unwrap_or_default()
            );
        }
        let present = [AGENT_IMAGE, ENV_IMAGE].iter().all(|image| {
            podman()
                .args(["image", "exists", image])
                .status()
                .is_ok_and(|status| status.success())
        });
        if !present {
            let status = Command::new(repo().join("scripts/images"))
                .args(["build", "agent", "env-base"])
                .env("CONTAINERS_CONF", containers_conf())
                .status()
                .unwrap();
            assert!(status.success(), "scripts/images build failed");
        }
    });
}

/// An environment image with a `bash`, which the agent's shell tool runs its commands
/// with: env-base plus a `/bin/bash` that is its `sh` (commands written for POSIX `sh`
/// run the same), as an environment image of a real project (python, node) has one.
pub const BASH_IMAGE: &str = "agent-rs/env-base-bash:test";

/// Builds [`BASH_IMAGE`] once per test binary if it is missing.
pub fn ensure_bash_image() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        ensure_images();
        if podman()
            .args(["image", "exists", BASH_IMAGE])
            .status()
            .is_ok_and(|status| status.success())
        {
            return;
        }
        let context = tempfile::tempdir().unwrap();
        std::fs::write(
            context.path().join("Containerfile"),
            // `WORKDIR /` while copying: a step after `WORKDIR /scratch` would create
            // it in the image, root's, and the run's tmpfs there would take its mode.
            format!(
                "FROM {ENV_IMAGE}\nWORKDIR /\nCOPY --chmod=0755 bash /bin/bash\nWORKDIR /scratch\n"
            ),
        )
        .unwrap();
        std::fs::write(context.path().join("bash"), "#!/bin/sh\nexec sh \"$@\"\n").unwrap();
        let built = podman()
            .args(["build", "-q", "-t", BASH_IMAGE])
            .arg(context.path())
            .output()
            .unwrap();
        assert!(built.status.success(), "{built:?}");
    });
}

/// A `podman system service` on a socket of its own.
pub struct Engine {
    child: Child,
    pub socket: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Engine {
    pub fn start() -> Self {
        ensure_images();
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("engine.sock");
        let child = podman()
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "podman system service did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, socket, dir }
    }

    /// Settings for a runner on this engine, its run files under `state`.
    pub fn settings(&self, state: &Path) -> ContainerSettings {
        ContainerSettings {
            socket: Some(format!("unix://{}", self.socket.display())),
            agent_image: AGENT_IMAGE.to_string(),
            environment_image: ENV_IMAGE.to_string(),
            state_dir: Some(state.to_path_buf()),
            default_memory_mib: 512,
            scratch_mib: 256,
            ..ContainerSettings::default()
        }
    }

    pub fn runner(&self, state: &Path) -> ContainerRunner {
        ContainerRunner::new(self.settings(state), state.to_path_buf()).unwrap()
    }

    /// `podman inspect` of a container, as JSON (what anyone on the host can read).
    pub fn inspect(&self, name: &str) -> Option<serde_json::Value> {
        let output = podman()
            .args(["container", "inspect", name])
            .output()
            .unwrap();
        if !output.status.success() {
            return None;
        }
        let mut value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        Some(value[0].take())
    }

    /// The names of the volumes whose names start with `prefix`.
    pub fn volumes(&self, prefix: &str) -> Vec<String> {
        let output = podman()
            .args(["volume", "ls", "--format", "{{.Name}}"])
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .filter(|name| name.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    /// Every container on the engine, one line each (id, name, status, mounts), for
    /// failure messages.
    pub fn containers(&self) -> String {
        let output = podman()
            .args([
                "ps",
                "--all",
                "--no-trunc",
                "--format",
                "{{.ID}} {{.Names}} {{.Status}} {{.Mounts}}",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub fn exists(&self, name: &str) -> bool {
        podman()
            .args(["container", "exists", name])
            .status()
            .is_ok_and(|status| status.success())
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks what a hunt for a run's secrets printed (the `HUNT` scripts of the container
/// tests): it ran to its end (`hunt-over`), found no file holding a secret (`LEAK:`) nor
/// any of `also_absent`, could not write to the secrets folder (`WROTE`), and its `find`
/// named the folder, empty and closed, and nothing in it.
pub fn assert_secrets_hunt_found_nothing(found: &str, also_absent: &[&str]) {
    assert!(found.contains("hunt-over"), "{found}");
    for absent in ["LEAK:", "WROTE"].iter().chain(also_absent) {
        assert!(!found.contains(absent), "`{absent}` in {found}");
    }
    assert!(
        found.lines().any(|line| line == "/run/agent-rs-secrets"),
        "{found}"
    );
    assert!(
        !found
            .lines()
            .any(|line| line.starts_with("/run/agent-rs-secrets/")),
        "a file in the secrets folder: {found}"
    );
}
