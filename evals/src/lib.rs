//! Evaluation support for the agent.
//!
//! - [`harness`]: runs the `agent-rs` program on suites of tasks, checks the results,
//!   writes reports and compares runs. It drives the agent as a program, never as a
//!   library (the agent's tests depend on this crate).
//! - [`scripted`]: an OpenAI-compatible model server that replays a script, which the
//!   agent's integration tests, benchmarks and CI evals use instead of a hosted model so
//!   that they are deterministic, free and offline.

pub mod harness;
pub mod scripted;
