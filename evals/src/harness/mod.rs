//! The eval harness: runs the `agent-rs` program on a suite of tasks and measures how
//! many it solves.
//!
//! # Suites
//!
//! A suite is a folder with `suite.toml` (`name`, `description`, `expected_pass_rate`)
//! and one sub-folder per task. A task folder holds `task.toml` (`id`, `instruction`,
//! `target_file`, `setup`, `check`, `tags`, `expected`, `[limits]` with `max_turns`,
//! `max_tokens`, `timeout_secs`, `check_timeout_secs`, and optionally `[repo]` with
//! `git_url` and `commit`), the starting repository `repo/` (unless `[repo]` names a git
//! one), hidden check files `check/`, and the scripted model's answers `script.json`.
//! Unknown fields are errors naming the file ([`task`]).
//!
//! # An attempt
//!
//! A fresh copy of `repo/` (or a clone at `commit`) in a temporary folder; then
//! `agent-rs run` with the instruction, target file, limits and `setup` (`--setup`: the
//! agent runs it before the model, in the sandbox of its commands but with the network,
//! its output in `setup.log`; a failed setup fails the attempt without the model), its
//! outputs in `OUT/tasks/<id>[-<attempt>]/`; then `check/` is
//! copied over the workspace and `check` runs (`bash -c`, killed at
//! `check_timeout_secs`). The attempt passes when the check exits 0, whatever the agent's
//! own exit code. The agent is killed, with everything it started, at `timeout_secs` plus
//! a grace period; the attempt then fails without a check. See [`attempt`].
//!
//! # Which model
//!
//! - `--scripted`: each attempt gets its own in-process
//!   [`ScriptedServer`](crate::scripted::ScriptedServer) playing the task's
//!   `script.json`; no API key is passed on. This is the deterministic, offline mode CI
//!   uses to check the harness, the agent and the suites themselves (`--check-expected`
//!   compares outcomes with each task's `expected` and the suite's
//!   `expected_pass_rate`).
//! - Otherwise the real eval: `OPENAI_BASE_URL` and `OPENAI_API_KEY` pass through from
//!   the environment, and `--model` becomes `AGENT_MODEL`. Setup and check commands never
//!   see the API key.
//!
//! # Reports
//!
//! `report.json` ([`report`]), `report.md` and `junit.xml` ([`render`]) in the output
//! folder; `evals compare` diffs two `report.json` files ([`compare`]); [`swebench`]
//! converts SWE-bench instances into a suite and a report into SWE-bench predictions.

pub mod attempt;
pub mod compare;
pub mod process;
pub mod render;
pub mod report;
pub mod runner;
pub mod swebench;
pub mod task;
pub mod workspace;

pub use attempt::ModelSource;
pub use compare::Comparison;
pub use report::{AttemptRecord, Report, Totals};
pub use runner::{RunError, RunOptions, run_suite};
pub use task::{Suite, SuiteError, Task};
