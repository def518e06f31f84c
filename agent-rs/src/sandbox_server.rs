//! `agent-rs sandbox-server` (hidden): the program a run starts once in its sandbox to
//! start its shell commands there (see `tools::sandbox`'s server module for why and
//! how). It is this binary itself, so a run needs nothing installed beside it.

use std::ffi::OsString;
use std::process::ExitCode;

/// The subcommand's name.
pub const SUBCOMMAND: &str = "sandbox-server";

/// How a run starts its sandbox server: this executable and the subcommand; empty
/// when the executable cannot be found (commands then get a sandbox each).
pub fn argv() -> Vec<OsString> {
    match std::env::current_exe() {
        Ok(exe) => vec![exe.into_os_string(), SUBCOMMAND.into()],
        Err(err) => {
            tracing::warn!(error = %err, "cannot find this executable; each command gets a sandbox of its own");
            Vec::new()
        }
    }
}

/// Serves until the agent closes its side; exit code 1 when serving failed.
#[allow(clippy::print_stderr)]
pub fn serve(args: &[OsString]) -> ExitCode {
    match tools::sandbox::run_sandbox_server(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The agent reads this when the server never got ready.
            eprintln!("agent-rs sandbox-server: {err}");
            ExitCode::FAILURE
        }
    }
}
