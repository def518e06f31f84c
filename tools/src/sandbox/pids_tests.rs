use super::*;

/// A pool, where a `pids` cgroup can be made (CI runs as root with one).
fn pool() -> Option<Arc<PidsPool>> {
    let pool = usable_pool(16);
    if pool.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI runs as root with a writable pids cgroup"
        );
    }
    pool
}

#[test]
fn an_emptied_cgroup_serves_the_next_command_and_goes_with_the_pool() {
    let Some(pool) = pool() else {
        return;
    };
    let first = pool.take().unwrap();
    let dir = first.dir.clone();
    assert!(dir.is_dir());
    assert!(!first.limit_was_hit());
    drop(first);
    let second = pool.take().unwrap();
    assert_eq!(second.dir, dir, "the emptied cgroup is reused");
    // Two commands at once get two cgroups.
    let third = pool.take().unwrap();
    assert_ne!(third.dir, dir);
    let third_dir = third.dir.clone();
    drop((second, third));
    drop(pool);
    assert!(
        !dir.exists() && !third_dir.exists(),
        "removed with the pool"
    );
}

#[test]
fn counters_read_through_the_kept_files_are_current_each_time() {
    let Some(pool) = pool() else {
        return;
    };
    let cgroup = pool.take().unwrap();
    let files = cgroup.files.as_ref().unwrap();
    assert_eq!(read_number(&files.current), Some(0));
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    cgroup.add(child.id()).unwrap();
    assert_eq!(read_number(&files.current), Some(1));
    assert_eq!(max_events(&files.events), Some(0));
    child.kill().unwrap();
    child.wait().unwrap();
    // Released a moment after the reap.
    for _ in 0..200 {
        if read_number(&files.current) == Some(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(read_number(&files.current), Some(0));
}

#[test]
fn a_process_left_in_a_command_cgroup_is_killed_before_it_is_reused() {
    let Some(pool) = pool() else {
        return;
    };
    let cgroup = pool.take().unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    cgroup.add(child.id()).unwrap();
    assert_eq!(cgroup.members(), [child.id() as i32]);
    let waiter = std::thread::spawn(move || child.wait().unwrap());
    drop(cgroup);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(waiter.join().unwrap().signal(), Some(9));
    let next = pool.take().unwrap();
    assert!(next.members().is_empty());
}
