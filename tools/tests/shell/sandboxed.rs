//! The sandboxed workspace the sandbox tests run commands in, under both mechanisms.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;
use tools::shell::ShellTool;
use tools::{
    GitProtection, NetworkAccess, Sandbox, SandboxConfig, SandboxMode, Tool, ToolContext,
    ToolOutput, ToolsConfig, WorkspaceJail,
};

/// A workspace whose commands run in a bubblewrap sandbox, with a fake home folder
/// (holding an SSH key) and a "data folder" the sandbox hides, both outside `/tmp`
/// (which is private inside the sandbox, so a write there proves nothing).
pub(crate) struct Sandboxed {
    _root: tempfile::TempDir,
    pub(crate) workspace: PathBuf,
    pub(crate) home: PathBuf,
    pub(crate) data: PathBuf,
    pub(crate) outside: PathBuf,
    pub(crate) ctx: ToolContext,
}

/// The two mechanisms every escape attempt is tried against.
pub(crate) const MODES: [SandboxMode; 2] = [SandboxMode::Bwrap, SandboxMode::Landlock];

/// The run's sandbox server, as a program of the tools' own (a run's is `agent-rs
/// sandbox-server`).
pub(crate) fn server_program() -> Vec<std::ffi::OsString> {
    vec![env!("CARGO_BIN_EXE_tools-sandbox-server").into()]
}

/// What a refused file access says under `mode`: bubblewrap's read-only mounts and
/// empty folders, or Landlock's refusal.
pub(crate) fn refused_write(mode: SandboxMode) -> &'static str {
    match mode {
        SandboxMode::Landlock => "Permission denied",
        _ => "Read-only file system",
    }
}

pub(crate) fn refused_read(mode: SandboxMode) -> &'static str {
    match mode {
        SandboxMode::Landlock => "Permission denied",
        _ => "No such file or directory",
    }
}

pub(crate) fn mode_name(mode: SandboxMode) -> &'static str {
    match mode {
        SandboxMode::Landlock => "landlock",
        _ => "bwrap",
    }
}

impl Sandboxed {
    /// Commands started by the run's sandbox server, as in a run.
    pub(crate) fn new(
        mode: SandboxMode,
        network: NetworkAccess,
        max_processes: u32,
    ) -> Option<Self> {
        Self::with_git(mode, network, max_processes, GitProtection::HooksAndConfig)
    }

    /// Each command in a sandbox of its own, as where no server program is known.
    pub(crate) fn direct(mode: SandboxMode) -> Option<Self> {
        Self::build(
            mode,
            NetworkAccess::Off,
            0,
            GitProtection::HooksAndConfig,
            false,
        )
    }

    pub(crate) fn with_git(
        mode: SandboxMode,
        network: NetworkAccess,
        max_processes: u32,
        git: GitProtection,
    ) -> Option<Self> {
        Self::build(mode, network, max_processes, git, true)
    }

    fn build(
        mode: SandboxMode,
        network: NetworkAccess,
        max_processes: u32,
        git: GitProtection,
        served: bool,
    ) -> Option<Self> {
        let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let workspace = root.path().join("workspace");
        let home = root.path().join("home");
        let data = root.path().join("data");
        let outside = root.path().join("outside");
        for dir in [&workspace, &home.join(".ssh"), &data, &outside] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(home.join(".ssh/id_ed25519"), "PRIVATE-KEY-MATERIAL\n").unwrap();
        std::fs::write(data.join("tasks.db"), "DATABASE-ROWS\n").unwrap();
        std::fs::create_dir(workspace.join(".git")).unwrap();
        std::fs::write(workspace.join(".git/HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(workspace.join(".git/config"), "[core]\n").unwrap();
        let config = SandboxConfig {
            mode,
            network,
            max_processes,
            git,
            hidden_paths: vec![data.display().to_string()],
            ..SandboxConfig::default()
        };
        let path = std::env::var_os("PATH");
        let jail = WorkspaceJail::new(&workspace).unwrap();
        // Served as in a run: under bubblewrap the server the check starts serves the
        // first command.
        let resolved = if served {
            Sandbox::resolve_serving(
                &config,
                Some(&home),
                path.as_deref(),
                server_program(),
                jail.root(),
            )
        } else {
            Sandbox::resolve(&config, Some(&home), path.as_deref())
        };
        let sandbox = match resolved {
            Ok(sandbox) => sandbox,
            Err(err) if std::env::var("CI").as_deref() != Ok("true") => {
                skip(&err.to_string());
                return None;
            }
            Err(err) => panic!("the sandbox must work in CI: {err}"),
        };
        let ctx = ToolContext::new(jail, Arc::new(ToolsConfig::default())).with_sandbox(sandbox);
        Some(Self {
            _root: root,
            workspace,
            home,
            data,
            outside,
            ctx,
        })
    }

    pub(crate) async fn run(&self, command: &str) -> ToolOutput {
        self.run_for(command, 30).await
    }

    pub(crate) async fn run_for(&self, command: &str, timeout_seconds: u64) -> ToolOutput {
        ShellTool
            .call(
                &self.ctx,
                json!({"command_string": command, "timeout_seconds": timeout_seconds}),
            )
            .await
            .unwrap()
    }
}

/// Says why a test did not run (outside CI only).
#[allow(clippy::print_stderr)]
pub(crate) fn skip(reason: &str) {
    eprintln!("skipping: {reason}");
}

pub(crate) fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}
