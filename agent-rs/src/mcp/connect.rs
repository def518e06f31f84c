//! Starting one MCP server: spawn it (stdio) or reach it (streamable HTTP), run the
//! `initialize` handshake and list its tools, all within the server's startup timeout.
//!
//! A stdio server runs in its own process group, with a clean environment (the agent's
//! minus every credential, plus what its configuration names) and its stderr read line by
//! line into `agent.log`. The group is killed when the run ends, so whatever the server
//! started (`npx` starts node, which may start more) goes with it. In `job` mode the
//! command must be the operator's, never a file of the task's workspace.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ProtocolVersion};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::{Instant, timeout_at};
use tools::is_secret_env_var;

use super::config::{ServerSpec, Transport};

/// A connected server.
pub(super) struct Connection {
    pub(super) running: RunningService<RoleClient, ClientConfig>,
    pub(super) process_group: ProcessGroup,
    pub(super) tools: Vec<rmcp::model::Tool>,
}

/// What starting a server may depend on besides its configuration.
pub struct StartContext<'a> {
    /// The workspace root: the default working directory, and where a job's commands
    /// may not come from.
    pub workspace: &'a Path,
    /// The agent's environment, to pass on without its credentials.
    pub env_vars: &'a [(String, String)],
    /// Variables configured as secret on top of the built-in rules.
    pub secret_env_vars: &'a [String],
    /// `agent-rs job`: servers come from the operator only.
    pub job_mode: bool,
}

/// The client's own description in `initialize`: the last protocol revision that still
/// has the handshake every server speaks.
fn client_info() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("agent-rs", env!("CARGO_PKG_VERSION")),
    )
    .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
}

/// Starts `spec`; the error says what failed, for the model and the trajectory.
pub(super) async fn connect(
    spec: &ServerSpec,
    ctx: &StartContext<'_>,
) -> Result<Connection, String> {
    let deadline = Instant::now() + spec.startup_timeout;
    let waited = |what: &str| {
        format!(
            "{what} did not finish within the startup timeout ({} s)",
            spec.startup_timeout.as_secs()
        )
    };
    let (running, process_group) = match &spec.transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let (transport, process_group) = spawn(spec, command, args, env, cwd.as_deref(), ctx)?;
            match timeout_at(deadline, client_info().serve(transport)).await {
                Ok(Ok(running)) => (running, process_group),
                Ok(Err(error)) => {
                    process_group.kill();
                    return Err(format!("the initialize handshake failed: {error}"));
                }
                Err(_) => {
                    process_group.kill();
                    return Err(waited("the initialize handshake"));
                }
            }
        }
        Transport::Http { url, headers } => {
            let transport = http_transport(url, headers, spec.startup_timeout)?;
            match timeout_at(deadline, client_info().serve(transport)).await {
                Ok(Ok(running)) => (running, ProcessGroup(None)),
                Ok(Err(error)) => return Err(format!("the initialize handshake failed: {error}")),
                Err(_) => return Err(waited("the initialize handshake")),
            }
        }
    };
    let tools = match timeout_at(deadline, running.peer().list_all_tools()).await {
        Ok(Ok(tools)) => tools,
        Ok(Err(error)) => {
            process_group.kill();
            return Err(format!("listing its tools failed: {error}"));
        }
        Err(_) => {
            process_group.kill();
            return Err(waited("listing its tools"));
        }
    };
    Ok(Connection {
        running,
        process_group,
        tools,
    })
}

fn spawn(
    spec: &ServerSpec,
    command: &str,
    args: &[String],
    env: &std::collections::BTreeMap<String, String>,
    cwd: Option<&str>,
    ctx: &StartContext<'_>,
) -> Result<(TokioChildProcess, ProcessGroup), String> {
    let program = resolve_command(command, ctx)?;
    let dir = match cwd {
        Some(dir) => ctx.workspace.join(dir),
        None => ctx.workspace.to_path_buf(),
    };
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(args)
        .env_clear()
        .envs(
            ctx.env_vars
                .iter()
                .filter(|(name, _)| !is_secret_env_var(name, ctx.secret_env_vars))
                .map(|(name, value)| (name, value)),
        )
        .envs(env)
        .current_dir(&dir)
        .process_group(0)
        .kill_on_drop(true);
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("cannot start `{}`: {error}", program.display()))?;
    let process_group = ProcessGroup(transport.id().and_then(|pid| i32::try_from(pid).ok()));
    if let Some(stderr) = stderr {
        let server = spec.name.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = tools::output_cap::truncate_middle(&line, 4_000);
                tracing::info!(target: "mcp", server = %server, "stderr: {line}");
            }
        });
    }
    Ok((transport, process_group))
}

/// The program to run. In `run` mode a relative path is the user's, from where they
/// started the agent. In `job` mode it must be an absolute path or a name found on
/// `PATH`, and must not lie in the workspace: a task's files cannot become a server.
fn resolve_command(command: &str, ctx: &StartContext<'_>) -> Result<PathBuf, String> {
    let path = Path::new(command);
    if !ctx.job_mode {
        if path.is_relative() && command.contains('/') {
            return std::env::current_dir()
                .map(|dir| dir.join(path))
                .map_err(|error| format!("cannot resolve `{command}`: {error}"));
        }
        return Ok(path.to_path_buf());
    }
    let found = if path.is_absolute() {
        path.to_path_buf()
    } else if command.contains('/') {
        return Err(format!(
            "`{command}` is a relative path, refused in job mode (give an absolute path or a \
             command on PATH)"
        ));
    } else {
        let search = ctx
            .env_vars
            .iter()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| value.as_str())
            .unwrap_or_default();
        std::env::split_paths(search)
            .filter(|dir| dir.is_absolute())
            .map(|dir| dir.join(command))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| format!("`{command}` is not on PATH"))?
    };
    let real = found
        .canonicalize()
        .map_err(|error| format!("cannot use `{}`: {error}", found.display()))?;
    let workspace = ctx
        .workspace
        .canonicalize()
        .unwrap_or_else(|_| ctx.workspace.to_path_buf());
    if real.starts_with(&workspace) {
        return Err(format!(
            "`{command}` lies in the task's workspace; in job mode only commands of the \
             operator's machine may run as MCP servers"
        ));
    }
    Ok(real)
}

fn http_transport(
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
    connect_timeout: Duration,
) -> Result<StreamableHttpClientTransport<reqwest::Client>, String> {
    tools::http_client::install_tls_provider();
    let http = reqwest::Client::builder()
        .connect_timeout(connect_timeout)
        .build()
        .map_err(|error| format!("cannot set up the HTTP client: {error}"))?;
    let mut custom = HashMap::new();
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not an HTTP header name"))?;
        let mut value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| format!("the value of header `{name}` cannot go in an HTTP header"))?;
        value.set_sensitive(true);
        custom.insert(name, value);
    }
    let config =
        StreamableHttpClientTransportConfig::with_uri(url.to_string()).custom_headers(custom);
    Ok(StreamableHttpClientTransport::with_client(http, config))
}

/// The process group of a stdio server (its leader's pid), killed with the run.
#[derive(Debug, Clone, Copy)]
pub(super) struct ProcessGroup(pub(super) Option<i32>);

impl ProcessGroup {
    /// Kills every process of the group at once.
    pub(super) fn kill(&self) {
        if let Some(pgid) = self.0 {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }

    /// Asks the group to stop, then kills what is left after `grace`.
    pub(super) async fn stop(&self, grace: Duration) {
        let Some(pgid) = self.0 else { return };
        let group = Pid::from_raw(pgid);
        if killpg(group, Signal::SIGTERM).is_err() {
            return;
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            // Signal 0 only checks that some process of the group is left.
            if killpg(group, None).is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = killpg(group, Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        workspace: &'a Path,
        env_vars: &'a [(String, String)],
        job_mode: bool,
    ) -> StartContext<'a> {
        StartContext {
            workspace,
            env_vars,
            secret_env_vars: &[],
            job_mode,
        }
    }

    #[test]
    fn in_job_mode_a_command_from_the_workspace_is_refused() {
        let workspace = tempfile::tempdir().unwrap();
        let script = workspace.path().join("evil.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let bin = workspace.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("sneaky"), "#!/bin/sh\n").unwrap();
        let env = vec![(
            "PATH".to_string(),
            format!("{}:/usr/bin:/bin", bin.display()),
        )];
        let ctx = context(workspace.path(), &env, true);

        let absolute = resolve_command(&script.display().to_string(), &ctx).unwrap_err();
        assert!(
            absolute.contains("lies in the task's workspace"),
            "{absolute}"
        );
        let relative = resolve_command("./evil.sh", &ctx).unwrap_err();
        assert!(relative.contains("refused in job mode"), "{relative}");
        let on_path = resolve_command("sneaky", &ctx).unwrap_err();
        assert!(
            on_path.contains("lies in the task's workspace"),
            "{on_path}"
        );
        // A command of the machine, found on PATH, is the operator's.
        assert!(resolve_command("sh", &ctx).unwrap().is_absolute());
    }

    #[test]
    fn in_job_mode_relative_path_entries_are_not_searched() {
        let workspace = tempfile::tempdir().unwrap();
        let env = vec![("PATH".to_string(), ".:bin".to_string())];
        let ctx = context(workspace.path(), &env, true);
        let error = resolve_command("sh", &ctx).unwrap_err();
        assert!(error.contains("not on PATH"), "{error}");
    }

    #[test]
    fn in_run_mode_the_command_is_the_users() {
        let workspace = tempfile::tempdir().unwrap();
        let ctx = context(workspace.path(), &[], false);
        assert_eq!(resolve_command("npx", &ctx).unwrap(), PathBuf::from("npx"));
        let relative = resolve_command("./tools/server", &ctx).unwrap();
        assert!(
            relative.is_absolute() && relative.ends_with("tools/server"),
            "{relative:?}"
        );
    }
}
