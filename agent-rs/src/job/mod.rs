//! `agent-rs job`: one task as the orchestrator runs it, as a local process or as the
//! container of a Kubernetes Job.
//!
//! The agent holds no standing credentials: everything arrives in the environment, the
//! workspace as a presigned GET URL and each output as a presigned PUT URL. The job
//! downloads and safely unpacks the workspace, runs exactly what `agent-rs run --json`
//! runs (the same `run_command::prepare` / `execute`), streams the events as JSON lines
//! on stdout for the orchestrator to read live, and uploads the outputs.
//!
//! Environment (each also accepted as the flag shown by `agent-rs job --help`):
//! - `AGENT_TASK_ID` (required): the task's id, in every log line.
//! - `AGENT_TASK` (required): the instruction.
//! - `AGENT_TARGET_FILE`: a file the task is about, relative to the workspace root.
//! - `AGENT_WORKSPACE_URL` (required): http(s) URL of the workspace as a `.tar.gz`.
//! - `AGENT_UPLOAD_URLS` (required): JSON object, output file name -> PUT URL, for any of
//!   `diff.patch`, `trajectory.jsonl`, `result.json`, `agent.log`, `prompt.txt`.
//! - `AGENT_RESUME_DIFF_URL`, `AGENT_RESUME_TRAJECTORY_URL`: a follow-up run: URLs of
//!   the previous run's `diff.patch` and `trajectory.jsonl`. The workspace archive is the
//!   task's base; the job applies the previous diff, continues the conversation with
//!   `AGENT_TASK` as the follow-up message, and writes a cumulative `diff.patch` beside
//!   `step.patch` (this run's changes), as `agent-rs run --resume` does.
//! - `AGENT_WORK_DIR`: where the workspace is unpacked (empty or absent; default a fresh
//!   temporary folder). Outputs always go to a separate temporary folder.
//! - `AGENT_MAX_TURNS`, `AGENT_MAX_TOKENS`, `AGENT_TIMEOUT_SECS`: the run's limits.
//! - `AGENT_MAX_WORKSPACE_BYTES` (default 1 GiB), `AGENT_MAX_WORKSPACE_ENTRIES` (default
//!   500000): caps on the archive, downloaded and unpacked.
//! - `AGENT_MODEL`, `OPENAI_BASE_URL`, `OPENAI_API_KEY`: the model, as for `run`.
//! - `AGENT_SANDBOX` (auto, bwrap, landlock, off), `AGENT_NETWORK` (off, on,
//!   allow=HOST,...): the shell commands' sandbox, as `--sandbox` / `--network` of `run`.
//!   Behind a runner's egress proxy, an allow-list's connections go through that proxy,
//!   which must allow the same hosts (the embedded runner's does: it reads
//!   `AGENT_NETWORK` too).
//! - `AGENT_EGRESS_SOCKET`, `AGENT_EGRESS_LISTEN`: set by a sandboxing runner whose job
//!   has no network of its own: the job relays `AGENT_EGRESS_LISTEN` (a loopback
//!   address) to the runner's proxy on that Unix socket, and sends its transfers there
//!   (the model client follows `HTTP_PROXY`, which the runner points at the same place).
//! - `AGENT_CHECK`, `AGENT_CHECK_TIMEOUT_SECS`: a check run in the workspace once the
//!   agent is done (`--check` of `run`): `check.log`, and `check` in `result.json`.
//! - `AGENT_SETUP`: a setup script run before the agent, with the network on;
//!   `AGENT_SETUP_ENV`: comma-separated names of variables given to it only.
//!
//! With the shell sandbox off (inside a container) the job's process is made
//! non-dumpable before anything runs ([`private_process`]): its commands cannot read its
//! `/proc/<pid>/environ`. (A sandbox hides the job's process from them already.)
//!
//! - `AGENT_DOWNLOAD_RETRY_SECS` (default 30): how long transient download failures
//!   (store unreachable, 5xx, timeouts) are retried, with backoff.
//!
//! Exit codes: those of `run` (0 completed, 3 limit, 4 model failed); 2 when a setting,
//! the download or the archive is bad (nothing ran); 5 when the object store stayed
//! unreachable for the download's retries (nothing ran; the input may be fine); 1 when
//! an output could not be uploaded, or the run's own machinery failed. Presigned URLs are only ever shown
//! without their query string, and their signatures join the secret redactor.

pub mod download;
pub mod egress;
pub mod extract;
pub mod http;
pub mod private_process;
mod report;
pub mod spec;
pub mod upload;
pub mod urls;
mod work_dir;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use tools::{SecretRedactor, WorkspaceJail};
use tracing::Instrument;

use crate::config::AgentConfig;
use crate::exit;
use crate::output_dir;
use crate::run_command::{self, RunArgs};

use report::{Refusal, Reporter};
pub use spec::{JobArgs, JobSpec};
use work_dir::WorkDir;

/// The long help of `agent-rs job`.
pub const LONG_ABOUT: &str = "\
Run one task for the orchestrator: settings come from the environment (each variable
below also has a flag), the workspace is downloaded from a presigned URL and unpacked,
the agent runs as `agent-rs run --json` does (events as JSON lines on stdout), and the
outputs are uploaded to presigned PUT URLs.

The model endpoint comes from OPENAI_BASE_URL and OPENAI_API_KEY (or the config file),
the model from AGENT_MODEL.

Exit codes: 0 completed, 3 a limit was reached, 4 the model failed (as for `run`);
2 a setting, the download or the archive was bad; 5 the object store stayed unreachable
through the download's retries (AGENT_DOWNLOAD_RETRY_SECS, default 30); 1 an upload
failed or the run could not write its outputs.";

/// Variables holding presigned URLs: kept out of tool processes and redacted whole.
const URL_VARIABLES: [&str; 4] = [
    "AGENT_WORKSPACE_URL",
    "AGENT_UPLOAD_URLS",
    "AGENT_RESUME_DIFF_URL",
    "AGENT_RESUME_TRAJECTORY_URL",
];

/// What the job takes from its process besides the settings.
pub struct JobIo {
    /// `OPENAI_API_KEY`.
    pub api_key: Option<String>,
    /// The process environment, for the secret redactor.
    pub env_vars: Vec<(String, String)>,
    /// Events, one JSON object per line.
    pub stdout: Box<dyn Write + Send>,
    /// What the job is doing and why it failed, for a person reading the Job's log.
    pub stderr: Box<dyn Write + Send>,
}

/// Runs the job; returns the process exit code.
pub fn run_job(args: &JobArgs, config: &AgentConfig, io: JobIo) -> u8 {
    let JobIo {
        api_key,
        env_vars,
        stdout,
        stderr,
    } = io;
    let mut config = config.clone();
    config
        .tools
        .shell
        .secret_env_vars
        .extend(URL_VARIABLES.map(String::from));
    let env_redactor =
        SecretRedactor::from_env_vars(env_vars.clone(), &config.tools.shell.secret_env_vars);
    let mut reporter = Reporter {
        out: stderr,
        redactor: env_redactor.clone(),
        task_id: args.task_id.clone().unwrap_or_default(),
    };
    let spec = match JobSpec::from_args(args) {
        Ok(spec) => spec,
        Err(err) => return reporter.fail(exit::BAD_INPUT, &err),
    };
    // Before the model or any command runs: the environment holds the key.
    if spec.sandbox.unwrap_or(config.tools.sandbox.mode) == tools::SandboxMode::Off
        && let Err(message) = private_process::hide_from_children()
    {
        return reporter.fail(exit::OTHER_ERROR, &message);
    }
    reporter.redactor = env_redactor.with_secrets(url_secrets(&spec));
    // With no network of its own, an allow-list's connections go on through the
    // runner's proxy (which checks them again).
    config.tools.sandbox.upstream_proxy = spec.egress.as_ref().map(|egress| egress.socket.clone());
    let work_dir = match WorkDir::prepare(spec.work_dir.as_deref()) {
        Ok(dir) => dir,
        Err(message) => return reporter.fail(exit::BAD_INPUT, &message),
    };
    let outputs = match tempfile::Builder::new()
        .prefix("agent-rs-job-out-")
        .tempdir()
    {
        Ok(dir) => dir,
        Err(err) => {
            return reporter.fail(
                exit::OTHER_ERROR,
                &format!("cannot create a temporary output folder: {err}"),
            );
        }
    };
    if let Err(err) = crate::logging::init_file_logging(
        &outputs.path().join(output_dir::LOG_FILE),
        reporter.redactor.clone(),
    ) {
        return reporter.fail(
            exit::OTHER_ERROR,
            &format!("cannot create agent.log: {err}"),
        );
    }
    let runtime = match crate::runtime() {
        Ok(runtime) => runtime,
        Err(err) => {
            return reporter.fail(
                exit::OTHER_ERROR,
                &format!("cannot start the async runtime: {err}"),
            );
        }
    };
    let span = tracing::info_span!("job", task_id = %spec.task_id);
    let proxy = match &spec.egress {
        Some(egress) => match runtime.block_on(egress::start_relay(egress)) {
            Ok(proxy) => Some(proxy),
            Err(err) => {
                return reporter.fail(
                    exit::OTHER_ERROR,
                    &format!("cannot start the egress relay: {err}"),
                );
            }
        },
        None => None,
    };
    // A spawned task, as `agent-rs run`'s (see `block_on_task`); the folders stay here.
    let (work_dir_path, outputs_path) =
        (work_dir.path().to_path_buf(), outputs.path().to_path_buf());
    crate::block_on_task(&runtime, async move {
        let job = Job {
            spec: &spec,
            config: &config,
            work_dir: &work_dir_path,
            outputs: &outputs_path,
            proxy,
        };
        job.run(api_key, env_vars, stdout, &mut reporter)
            .instrument(span)
            .await
    })
}

/// The steps after the settings were read.
struct Job<'a> {
    spec: &'a JobSpec,
    config: &'a AgentConfig,
    work_dir: &'a Path,
    outputs: &'a Path,
    /// The egress relay's proxy URL, when the job runs in a sandbox without network.
    proxy: Option<String>,
}

impl Job<'_> {
    async fn run(
        &self,
        api_key: Option<String>,
        env_vars: Vec<(String, String)>,
        stdout: Box<dyn Write + Send>,
        reporter: &mut Reporter,
    ) -> u8 {
        let spec = self.spec;
        tracing::info!(task_id = %spec.task_id, "job started");
        let run_args = RunArgs {
            task: spec.task.clone(),
            dir: self.work_dir.to_path_buf(),
            output: Some(self.outputs.to_path_buf()),
            model: spec.model.clone(),
            base_url: spec.base_url.clone(),
            max_turns: spec.max_turns,
            max_tokens: spec.max_tokens,
            timeout: spec.timeout_secs,
            target_file: spec.target_file.clone(),
            json: true,
            sandbox: spec.sandbox,
            network: spec.network.clone(),
            setup: spec.setup.clone(),
            setup_env: spec.setup_env.clone(),
            setup_timeout: None,
            resume: None,
            check: spec.check.clone(),
            check_timeout: spec.check_timeout_secs,
            job_mode: true,
            resume_at_base: true,
        };
        // Everything checkable without the workspace is checked before the download.
        if let Err(message) = self.check_target_file() {
            return self.fail_early(reporter, &message).await;
        }
        // A follow-up: the previous run's record, fetched before anything is checked
        // against it.
        let previous = match self.fetch_previous(reporter).await {
            Ok(previous) => previous,
            Err(refusal) => return self.refuse(reporter, refusal).await,
        };
        let run_args = RunArgs {
            resume: previous.as_ref().map(|dir| dir.path().to_path_buf()),
            ..run_args
        };
        let mut prepared = match run_command::prepare(&run_args, self.config, api_key, env_vars) {
            Ok(prepared) => prepared,
            Err(err) => return self.fail_early(reporter, &err).await,
        };
        prepared.redactor = prepared.redactor.with_secrets(url_secrets(spec));

        if let Err(refusal) = self.fetch_workspace(reporter).await {
            return self.refuse(reporter, refusal).await;
        }
        if let Err(message) = self.check_target_file() {
            return self.fail_early(reporter, &message).await;
        }

        reporter.say("running the agent");
        let run = run_command::execute(
            &run_args,
            self.config,
            prepared,
            stdout,
            Box::new(std::io::sink()),
        )
        .await;
        let mut code = match &run {
            Ok(result) => {
                reporter.say(&format!(
                    "run ended: {:?} (exit code {})",
                    result.status, result.exit_code
                ));
                for warning in result.diff_warnings() {
                    reporter.say(&warning);
                }
                result.exit_code
            }
            Err(err) if err.is::<crate::resume::ResumeError>() => {
                reporter.say(&format!("{err:#}"));
                exit::BAD_INPUT
            }
            Err(err) => {
                reporter.say(&format!("the run could not write its outputs: {err:#}"));
                exit::OTHER_ERROR
            }
        };
        if !self.upload(reporter, &spec.upload_urls).await {
            code = exit::OTHER_ERROR;
        }
        code
    }

    /// Downloads and unpacks the workspace; the error is for the operator.
    async fn fetch_workspace(&self, reporter: &mut Reporter) -> Result<(), Refusal> {
        let spec = self.spec;
        reporter.say(&format!(
            "downloading the workspace from {}",
            urls::redacted(&spec.workspace_url)
        ));
        let archive = download::download_workspace(
            &spec.workspace_url,
            spec.max_workspace_bytes,
            &self.download_policy(),
        )
        .await
        .map_err(Refusal::download)?;
        let limits = extract::ExtractLimits {
            max_bytes: spec.max_workspace_bytes,
            max_entries: spec.max_workspace_entries,
        };
        let root = self.work_dir.to_path_buf();
        let summary =
            tokio::task::spawn_blocking(move || extract::extract_workspace(archive, &root, limits))
                .await
                .map_err(|err| format!("unpacking the workspace stopped: {err}"))?
                .map_err(|err| err.to_string())?;
        tracing::info!(
            entries = summary.entries,
            bytes = summary.bytes,
            "workspace unpacked"
        );
        reporter.say(&format!(
            "workspace unpacked: {} entries, {} bytes",
            summary.entries, summary.bytes
        ));
        Ok(())
    }

    /// Downloads the previous run's `diff.patch` and `trajectory.jsonl` into a folder
    /// of their own, when this job continues a run.
    async fn fetch_previous(
        &self,
        reporter: &mut Reporter,
    ) -> Result<Option<tempfile::TempDir>, Refusal> {
        let Some(resume) = &self.spec.resume else {
            return Ok(None);
        };
        reporter.say("downloading the previous run's diff and trajectory");
        let folder = tempfile::Builder::new()
            .prefix("agent-rs-job-previous-")
            .tempdir()
            .map_err(|err| format!("cannot create a temporary folder: {err}"))?;
        let policy = self.download_policy();
        for (url, name) in [
            (&resume.diff, output_dir::DIFF_FILE),
            (&resume.trajectory, output_dir::TRAJECTORY_FILE),
        ] {
            let mut file =
                download::download_workspace(url, self.spec.max_workspace_bytes, &policy)
                    .await
                    .map_err(|err| Refusal {
                        message: format!("the previous run's {name}: {err}"),
                        code: Refusal::download(err).code,
                    })?;
            let mut target = std::fs::File::create(folder.path().join(name))
                .map_err(|err| format!("cannot store the previous run's {name}: {err}"))?;
            std::io::copy(&mut file, &mut target)
                .map_err(|err| format!("cannot store the previous run's {name}: {err}"))?;
        }
        Ok(Some(folder))
    }

    /// The target file must stay inside the workspace (checked again once unpacked,
    /// when symlinks exist).
    fn check_target_file(&self) -> Result<(), String> {
        let Some(target) = &self.spec.target_file else {
            return Ok(());
        };
        let jail = WorkspaceJail::new(self.work_dir)
            .map_err(|err| format!("cannot use the work folder: {err}"))?;
        jail.resolve(target)
            .map(|_| ())
            .map_err(|err| format!("AGENT_TARGET_FILE: {err}"))
    }

    /// How the inputs are downloaded: through the relay when there is one, transient
    /// failures retried for `AGENT_DOWNLOAD_RETRY_SECS`.
    fn download_policy(&self) -> http::TransferPolicy {
        http::TransferPolicy::download()
            .via(self.proxy.clone())
            .retrying_for(self.spec.download_retry)
    }

    /// A setting or input that is bad: exit code 2, as [`Self::refuse`] says.
    async fn fail_early(
        &self,
        reporter: &mut Reporter,
        err: &(dyn std::fmt::Display + Sync),
    ) -> u8 {
        let refusal = Refusal {
            message: err.to_string(),
            code: exit::BAD_INPUT,
        };
        self.refuse(reporter, refusal).await
    }

    /// A failure before the run: reported, `agent.log` uploaded when asked for (it
    /// holds the story), the refusal's exit code whatever that upload does.
    async fn refuse(&self, reporter: &mut Reporter, refusal: Refusal) -> u8 {
        reporter.say(&refusal.message);
        if refusal.code == exit::INFRASTRUCTURE {
            reporter.say(
                "the object store stayed unreachable: an infrastructure failure, not bad input",
            );
        }
        tracing::error!(error = %refusal.message, code = refusal.code, "job refused");
        let log_only: BTreeMap<String, url::Url> = self
            .spec
            .upload_urls
            .iter()
            .filter(|(name, _)| name.as_str() == output_dir::LOG_FILE)
            .map(|(name, url)| (name.clone(), url.clone()))
            .collect();
        self.upload(reporter, &log_only).await;
        refusal.code
    }

    /// Uploads `targets`; false when any failed (each failure is reported by name).
    async fn upload(&self, reporter: &mut Reporter, targets: &BTreeMap<String, url::Url>) -> bool {
        if targets.is_empty() {
            return true;
        }
        let failures = upload::upload_outputs(
            self.outputs,
            targets,
            &http::TransferPolicy::upload().via(self.proxy.clone()),
        )
        .await;
        for failure in &failures {
            reporter.say(&failure.to_string());
        }
        if failures.is_empty() {
            reporter.say(&format!(
                "uploaded {}",
                targets.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        failures.is_empty()
    }
}

fn url_secrets(spec: &JobSpec) -> Vec<String> {
    spec.urls().flat_map(urls::secret_parts).collect()
}
