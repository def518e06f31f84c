//! The sandbox server as a program of its own, for the tools' tests, which have no
//! `agent-rs` to start (a run's server is `agent-rs sandbox-server`, the same code).

use std::process::ExitCode;

#[allow(clippy::print_stderr)]
fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match tools::sandbox::run_sandbox_server(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tools-sandbox-server: {err}");
            ExitCode::FAILURE
        }
    }
}
