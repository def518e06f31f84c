//! Exit codes: a contract with scripts and the orchestrator.

/// The run finished: the model answered without asking for more tools.
pub const COMPLETED: u8 = 0;
/// Anything not covered below.
pub const OTHER_ERROR: u8 = 1;
/// Bad usage or bad input (arguments, configuration, workspace).
pub const BAD_INPUT: u8 = 2;
/// A limit ended the run (turns, tokens, wall time), or the model gave up going
/// anywhere (status `stuck`).
pub const LIMIT_REACHED: u8 = 3;
/// The model failed: unreachable, refused the credentials, or retries ran out.
pub const MODEL_FAILED: u8 = 4;
/// The job's inputs could not be fetched: the object store stayed unreachable (or kept
/// answering 5xx) through the download's retries. Nothing ran, and the input may be
/// fine: an infrastructure failure, which another try may get past.
pub const INFRASTRUCTURE: u8 = 5;
