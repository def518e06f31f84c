//! Evaluation support for the agent.
//!
//! - [`harness`]: runs the `agent-rs` program on suites of tasks, checks the results,
//!   writes reports and compares runs. It drives the agent as a program, never as a
//!   library (the agent's tests depend on this crate).
//! - [`scripted`]: the OpenAI-compatible model server that replays a script (the
//!   `scripted-model` crate, re-exported): `--scripted` runs and `evals scripted-server`
//!   use it. Tests of other crates depend on `scripted-model` directly, so they do not
//!   compile the harness.

pub mod harness;
pub use scripted_model as scripted;
