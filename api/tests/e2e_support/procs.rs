//! The processes of a task, found the way the runner finds them: by `AGENT_TASK_ID` in
//! their environment (`/proc`).

use super::{WAIT, eventually};

/// Live (not zombie) processes whose environment says they run `task_id`: the agent and
/// anything it started (`AGENT_TASK_ID` is inherited).
pub fn processes_of_task(task_id: &str) -> Vec<i32> {
    let wanted = format!("AGENT_TASK_ID={task_id}");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let state = stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].trim_start().chars().next());
        if matches!(state, None | Some('Z' | 'X')) {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|b| *b == 0)
            .any(|var| var == wanted.as_bytes())
        {
            pids.push(pid);
        }
    }
    pids
}

/// Waits (bounded) until no process of `task_id` is left.
pub async fn assert_no_process_left(task_id: &str) {
    let gone = eventually(WAIT, || async {
        processes_of_task(task_id).is_empty().then_some(())
    });
    assert!(
        gone.await.is_some(),
        "processes of task {task_id} still alive: {:?}",
        processes_of_task(task_id)
    );
}
