//! Evaluation support for the agent.
//!
//! Today this is the [`scripted`] model server: an OpenAI-compatible endpoint that
//! replays a script, which the agent's integration tests, benchmarks and CI evals use
//! instead of a hosted model so that they are deterministic, free and offline. The eval
//! harness (running suites, comparing against a baseline) grows here next.

pub mod scripted;
