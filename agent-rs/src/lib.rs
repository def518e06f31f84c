//! The agent: configuration, the tool-calling loop and its command-line entry points.
//!
//! The binary (`main.rs`) is a thin shell over this library: `run_command` wires a local
//! run together (workspace, output folder, model client, tools, loop, diff), `run` holds
//! the loop itself, `events` the typed record every front end shares, and `job` runs a
//! task for the orchestrator (workspace and outputs over presigned URLs).

pub mod check;
pub mod config;
pub mod events;
pub mod exit;
pub mod git_hazards;
pub mod install;
pub mod job;
pub mod logging;
pub mod mcp;
pub mod model;
pub mod orphans;
pub mod output_dir;
pub mod output_text;
pub mod process_usage;
pub mod progress;
pub mod prompt;
pub mod result;
pub mod resume;
pub mod run;
pub mod run_command;
pub mod sandbox_server;
pub mod setup;
pub mod sink;
pub mod tool_cli;
pub mod workspace_diff;

/// The Tokio runtime the binary runs on: one thread. The loop is one conversation that
/// mostly waits (on the model, on a command); its concurrency (reads run together, a
/// command's output drained while it runs) is that of async tasks, and the file tools'
/// blocking work goes to Tokio's blocking pool anyway. Worker threads would only add
/// cross-thread wake-ups to every turn, and each a malloc arena and a stack to the
/// process's memory (one per core by default: dozens on a large host).
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// Runs `work` on `runtime` as a spawned task, not as the future `block_on` drives, and
/// waits for it.
///
/// On a one-thread runtime a task woken by another task (the HTTP connection handing the
/// loop a chunk of the model's stream, the sandbox server's answers reaching a command)
/// runs next from the queue; the `block_on` future, woken the same way, is polled only
/// after the scheduler has checked the I/O driver once more: an `epoll_wait` each time,
/// about ten a turn. A panic in `work` is resumed here, as `block_on` would have let it
/// through.
pub fn block_on_task<F>(runtime: &tokio::runtime::Runtime, work: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    match runtime.block_on(runtime.spawn(work)) {
        Ok(output) => output,
        // Cancelled instead (only a runtime shutting down does that, and this one is
        // ours): reported the same way.
        Err(err) => std::panic::resume_unwind(
            err.try_into_panic()
                .unwrap_or_else(|err| Box::new(err.to_string())),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_task_run_to_its_end_gives_its_output_and_its_panic() {
        let runtime = super::runtime().unwrap();
        let answer = super::block_on_task(&runtime, async {
            // The task's own spawns run on the same runtime.
            tokio::spawn(async { 41 }).await.unwrap() + 1
        });
        assert_eq!(answer, 42);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            super::block_on_task(&runtime, async { panic!("the run broke") })
        }))
        .unwrap_err();
        assert_eq!(panicked.downcast_ref::<&str>(), Some(&"the run broke"));
    }
}
