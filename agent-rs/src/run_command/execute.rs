//! Running a prepared task: the setup, the workspace snapshot, the tools, the model
//! client and MCP servers, the opening messages and the loop; then the outputs
//! (`outputs.rs`), whatever the outcome.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tools::{SecretRedactor, ToolContext, ToolRegistry, WorkspaceJail};

use super::outputs::{Finished, write_outputs};
use super::{PreparedRun, ResumeInputs, RunArgs, egress_relay_argv};
use crate::config::AgentConfig;
use crate::events::AgentEvent;
use crate::mcp::{McpServers, ServerSpec, StartContext};
use crate::model::{ModelClient, ToolCalling, tool_instructions};
use crate::output_dir::{self, OutputDir};
use crate::progress::ProgressView;
use crate::prompt::{PromptInputs, read_agents_md};
use crate::result::RunResult;
use crate::resume::{Baselines, WorkspaceState, prepare_baselines};
use crate::run::{AgentLoop, Toolbox, render_first_request};
use crate::setup::SetupContext;
use crate::sink::EventSink;
use crate::workspace_diff::WorkspaceSnapshot;

/// Runs the task; returns the result written to `result.json`. Errors here are failures
/// of the run's own machinery (writing outputs), not of the task.
pub async fn execute(
    args: &RunArgs,
    config: &AgentConfig,
    prepared: PreparedRun,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
) -> anyhow::Result<RunResult> {
    let PreparedRun {
        jail,
        output,
        settings,
        limits,
        budget,
        target_file,
        redactor,
        mcp_servers,
        env_vars,
        sandbox,
        setup,
        resume,
        ..
    } = prepared;
    // The setup's variables never reach the agent's commands.
    let mut tools_config = config.tools.clone();
    if let Some(setup) = &setup {
        tools_config
            .shell
            .secret_env_vars
            .extend(setup.env_names.iter().cloned());
    }
    // Served until the run ends; the setup, with the whole network, does not use it.
    let _egress_proxy = sandbox.serve_egress_proxy(egress_relay_argv()?)?;
    // Before the snapshot: what the setup makes is the starting state, not the diff.
    let setup_report = match &setup {
        Some(spec) => Some(
            crate::setup::run(
                spec,
                &SetupContext {
                    workspace: jail.root(),
                    sandbox: &sandbox,
                    env_vars: &env_vars,
                    secret_env_vars: &config.tools.shell.secret_env_vars,
                    output: &output,
                    redactor: &redactor,
                },
            )
            .await,
        ),
        None => None,
    };
    let baselines = match &resume {
        Some(resume) => {
            let state = if args.resume_at_base {
                WorkspaceState::AtBase
            } else {
                WorkspaceState::AtEnd
            };
            prepare_baselines(jail.root(), &resume.previous_diff, state)?
        }
        None => {
            let snapshot = Arc::new(WorkspaceSnapshot::capture(jail.root())?);
            Baselines {
                base: snapshot.clone(),
                step: snapshot,
            }
        }
    };
    let registry = ToolRegistry::builtin(&config.tools)?.with_redactor(redactor.clone());
    let sandbox_summary = sandbox.summary();
    let check_sandbox = args.check.as_ref().map(|_| sandbox.clone());
    let check_secret_names = tools_config.shell.secret_env_vars.clone();
    let ctx = ToolContext::new(jail.clone(), Arc::new(tools_config))
        .with_write_observer(baselines.observer())
        .with_sandbox(sandbox);
    let model_name = settings.model.clone();
    let client = ModelClient::new(settings)?;
    let mcp = start_mcp_servers(mcp_servers, args, config, &env_vars, jail.root(), &registry).await;
    let toolbox = Toolbox::new(&registry, mcp.as_ref(), redactor.clone());

    let mut messages = opening_messages(
        args,
        resume.as_ref(),
        &registry,
        &ctx,
        &jail,
        target_file.clone(),
        mcp.as_ref(),
    )
    .await;
    if let Some(resume) = &resume {
        messages.truncate(1);
        messages.extend(resume.conversation.history.iter().cloned());
    }
    write_prompt(&output, &redactor, &messages, &toolbox, &client)?;

    let mut sink = open_sink(args.json, &output, &redactor, stdout, stderr)?;
    sink.emit(AgentEvent::TaskStarted {
        task: args.task.clone(),
        model: model_name.clone(),
        workspace: jail.root().display().to_string(),
        target_file,
        max_turns: limits.max_turns,
        max_tokens: limits.max_tokens,
        timeout_secs: limits.timeout.as_secs(),
        tools: toolbox.names(),
        sandbox: Some(sandbox_summary.clone()),
    });
    if let Some(resume) = &resume {
        sink.emit(AgentEvent::ConversationResumed {
            original_task: resume.conversation.original_task.clone(),
            summarized: resume.conversation.summarized,
            history: resume.conversation.history.clone(),
        });
    }
    for report in mcp.iter().flat_map(McpServers::reports) {
        sink.emit(AgentEvent::mcp_server(report));
    }

    if let Some(report) = &setup_report {
        sink.emit(AgentEvent::SetupFinished {
            success: report.success,
            exit_code: report.exit_code,
            timed_out: report.timed_out,
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
            log_tail: report.log_tail.clone(),
        });
    }

    tracing::info!(model = %model_name, workspace = %jail.root().display(), "run started");
    let setup_summary = setup_report
        .as_ref()
        .map(|report| crate::result::SetupSummary {
            success: report.success,
            exit_code: report.exit_code,
            timed_out: report.timed_out,
            duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        });
    let outcome = match setup_report.and_then(|report| report.error) {
        Some(error) => crate::setup::failed_outcome(error, &mut sink),
        None => {
            let agent = AgentLoop {
                client: &client,
                tools: &toolbox,
                ctx: &ctx,
                limits,
                budget,
            };
            agent.run(messages, &mut sink).await
        }
    };
    tracing::info!(status = ?outcome.status, turns = outcome.turns, "run finished");
    if let Some(mcp) = &mcp {
        mcp.shutdown().await;
    }

    let finished = Finished {
        outcome: &outcome,
        model_name: &model_name,
        sandbox_summary,
        setup_summary,
        baselines: &baselines,
        resumed: resume.is_some(),
    };
    let check = args
        .check
        .as_deref()
        .zip(check_sandbox.as_ref())
        .map(|(command, sandbox)| {
            let timeout = args
                .check_timeout
                .map(Duration::from_secs)
                .unwrap_or(crate::check::DEFAULT_CHECK_TIMEOUT);
            let ctx = crate::check::CheckContext {
                workspace: jail.root(),
                sandbox,
                env_vars: &env_vars,
                secret_env_vars: &check_secret_names,
                output: &output,
                redactor: &redactor,
            };
            (command, timeout, ctx)
        });
    let result = write_outputs(finished, check, &output, &redactor).await?;
    if let Some(err) = sink.take_write_error() {
        anyhow::bail!("could not write the trajectory: {err}");
    }
    Ok(result)
}

/// Starts the configured MCP servers (none: `None`).
async fn start_mcp_servers(
    specs: Vec<ServerSpec>,
    args: &RunArgs,
    config: &AgentConfig,
    env_vars: &[(String, String)],
    workspace: &Path,
    registry: &ToolRegistry,
) -> Option<McpServers> {
    if specs.is_empty() {
        return None;
    }
    let ctx = StartContext {
        workspace,
        env_vars,
        secret_env_vars: &config.tools.shell.secret_env_vars,
        job_mode: args.job_mode,
    };
    Some(McpServers::start(specs, &ctx, registry.names()).await)
}

/// The system and user messages: instructions, workspace layout, `AGENTS.md`, MCP
/// servers, the task (a resumed run's system prompt is written for its first task).
async fn opening_messages(
    args: &RunArgs,
    resume: Option<&ResumeInputs>,
    registry: &ToolRegistry,
    ctx: &ToolContext,
    jail: &WorkspaceJail,
    target_file: Option<String>,
    mcp: Option<&McpServers>,
) -> Vec<crate::model::ChatMessage> {
    let layout = registry
        .call(
            ctx,
            "list_directory",
            serde_json::json!({"path": ".", "depth": 2}),
        )
        .await
        .map(|out| out.content)
        .unwrap_or_else(|err| format!("(layout unavailable: {err})"));
    let inputs = PromptInputs {
        task: resume.map_or_else(
            || args.task.clone(),
            |resume| resume.conversation.original_task.clone(),
        ),
        target_file,
        workspace_layout: layout,
        agents_md: read_agents_md(jail.root()),
        mcp_servers: mcp.map(McpServers::reports).unwrap_or_default(),
    };
    AgentLoop::opening_messages(&inputs)
}

/// `prompt.txt`: the first request as the model gets it.
fn write_prompt(
    output: &OutputDir,
    redactor: &SecretRedactor,
    messages: &[crate::model::ChatMessage],
    toolbox: &Toolbox<'_>,
    client: &ModelClient,
) -> Result<(), output_dir::OutputDirError> {
    let specs = toolbox.specs();
    let mut text = render_first_request(messages, &specs);
    if client.settings().tool_calling == ToolCalling::Text {
        text.push_str("\n=== tool calling: text; the system message ends with ===");
        text.push_str(&tool_instructions(&specs));
    }
    output.write(output_dir::PROMPT_FILE, redactor.redact(&text).as_bytes())
}

/// The event sink: the trajectory file, and JSON lines on stdout (`--json`) or the
/// progress view on stderr.
fn open_sink(
    json: bool,
    output: &OutputDir,
    redactor: &SecretRedactor,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
) -> std::io::Result<EventSink> {
    let trajectory = std::fs::File::create(output.file(output_dir::TRAJECTORY_FILE))?;
    let sink = EventSink::new(
        Box::new(std::io::BufWriter::new(trajectory)),
        redactor.clone(),
    );
    Ok(if json {
        sink.with_json_stream(stdout)
    } else {
        sink.with_progress(ProgressView::new(stderr))
    })
}
