//! Faults on the cluster profile. Each test runs its own stack (an API process and
//! worker processes), puts the service it breaks on a private instance where it must
//! stop and start (a MariaDB server, a Redis server, a tansu broker behind a proxy, a
//! proxy in front of the S3 server), and checks the same things: every submitted task
//! reaches a terminal state (none is lost), none runs its agent twice (the scripted
//! model's conversation openings are counted per task), and no API request answers 5xx
//! for longer than the fault lasts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use e2e::fault::{
    Probe, QUICK_RECOVERY, Window, all_terminal, assert_no_5xx_beyond, runs_of, slow_answers,
    submit,
};
use e2e::{Profile, Stack};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::json;
use test_support::cluster::Overrides;
use test_support::private::{PrivateBroker, PrivateMariaDb, PrivateRedis};
use test_support::proxy::FaultProxy;
use test_support::services::s3_endpoint;
use test_support::{
    CALC_PY, WAIT, agent_runs, apply_to_original, eventually, fix_add_steps, processes_of_task,
    shell_step,
};

/// How long each fault lasts.
const FAULT: Duration = Duration::from_secs(5);
/// How long the tasks get to finish after a fault.
const SETTLE: Duration = Duration::from_secs(90);
/// Tasks submitted before the fault, during it and after it.
const BEFORE: usize = 2;
const TASKS: usize = BEFORE + 2;

/// A stack on `overrides` with one API process and one worker process, whose model
/// answers each of [`TASKS`] runs after a delay.
async fn stack_on(overrides: Overrides) -> Stack {
    let steps = slow_answers(TASKS, 1500);
    let mut stack = Stack::configured(Profile::Cluster, steps, QUICK_RECOVERY, overrides).await;
    let api = stack.launch(&["--role", "api"]).await;
    stack.apis.push(api);
    let worker = stack.launch(&["--role", "worker"]).await;
    stack.workers.push(worker);
    stack
}

/// Submits [`BEFORE`] tasks and waits until one of them runs; returns their ids.
async fn load_before(stack: &Stack) -> Vec<String> {
    let api = stack.api();
    let mut ids = Vec::new();
    for n in 0..BEFORE {
        ids.push(api.created_id(submit(api, n).await).await);
    }
    let running = eventually(WAIT, || async {
        for id in &ids {
            let status = api.task(id).await["status"].as_str().unwrap().to_string();
            if status == "RUNNING_AGENT" {
                return Some(());
            }
        }
        None
    })
    .await;
    assert!(
        running.is_some(),
        "no task started\n{}",
        stack.workers[0].log()
    );
    ids
}

/// The checks every fault test ends with.
async fn settle(stack: &Stack, ids: &[String], probe: Probe, window: Window) {
    let api = stack.api();
    let tasks = all_terminal(api, ids, SETTLE, || logs(stack)).await;
    for (n, task) in tasks.iter().enumerate() {
        let runs = runs_of(&stack.model, n);
        assert!(runs <= 1, "task {n} ran its agent {runs} times: {task}");
        if task["status"] == "COMPLETED" {
            assert_eq!(runs, 1, "task {n} completed without a run: {task}");
        }
    }
    assert_no_5xx_beyond(&probe.finish().await, window);
}

/// The processes' logs, for failure messages.
fn logs(stack: &Stack) -> String {
    let processes = stack.apis.iter().chain(&stack.workers);
    processes
        .map(|process| process.log())
        .collect::<Vec<_>>()
        .join("\n-----\n")
}

fn probe_paths(ids: &[String]) -> Vec<String> {
    vec![
        format!("/api/v1/tasks/{}", ids[0]),
        "/api/v1/tasks".to_string(),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_unreachable_mid_run_loses_nothing_and_a_submit_meanwhile_answers_201() {
    let broker = PrivateBroker::start().await;
    let overrides = Overrides {
        brokers: Some(broker.brokers()),
        ..Overrides::default()
    };
    let stack = stack_on(overrides).await;
    let mut ids = load_before(&stack).await;
    let api = stack.api();
    let probe = Probe::start(api, probe_paths(&ids));

    let start = Instant::now();
    broker.proxy.down();
    // The decision: a submit while the broker is down is stored (and its outbox entry
    // relayed later), not refused.
    ids.push(api.created_id(submit(api, BEFORE).await).await);
    tokio::time::sleep(FAULT.saturating_sub(start.elapsed())).await;
    broker.proxy.up();
    let window = Window {
        start,
        end: Instant::now(),
    };
    ids.push(api.created_id(submit(api, BEFORE + 1).await).await);

    settle(&stack, &ids, probe, window).await;
    for id in &ids {
        assert_eq!(api.task(id).await["status"], "COMPLETED", "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_restarted_mid_run_loses_nothing() {
    let mut mariadb = PrivateMariaDb::start().await;
    let overrides = Overrides {
        mysql_admin_url: Some(mariadb.url()),
        ..Overrides::default()
    };
    let stack = stack_on(overrides).await;
    let mut ids = load_before(&stack).await;
    let api = stack.api();
    let probe = Probe::start(api, probe_paths(&ids));

    let start = Instant::now();
    mariadb.down().await;
    tokio::time::sleep(FAULT).await;
    mariadb.up().await;
    let window = Window {
        start,
        end: Instant::now(),
    };
    // Submits work again once the database is back (within the grace).
    for n in BEFORE..TASKS {
        let answered = eventually(WAIT, || async {
            let response = submit(api, n).await;
            (response.status() == 201).then_some(response)
        })
        .await
        .expect("submits never worked again after the restart");
        ids.push(api.created_id(answered).await);
    }
    settle(&stack, &ids, probe, window).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_for_a_while_slows_the_service_down_and_loses_nothing() {
    let mut redis = PrivateRedis::start().await;
    let overrides = Overrides {
        redis_url: Some(redis.url()),
        ..Overrides::default()
    };
    let stack = stack_on(overrides).await;
    let mut ids = load_before(&stack).await;
    let api = stack.api();
    let probe = Probe::start(api, probe_paths(&ids));

    let start = Instant::now();
    redis.down().await;
    // The cache is not the truth: submitting and reading go on without it.
    ids.push(api.created_id(submit(api, BEFORE).await).await);
    tokio::time::sleep(FAULT.saturating_sub(start.elapsed())).await;
    redis.up().await;
    let window = Window {
        start,
        end: Instant::now(),
    };
    ids.push(api.created_id(submit(api, BEFORE + 1).await).await);

    settle(&stack, &ids, probe, window).await;
    for id in &ids {
        assert_eq!(api.task(id).await["status"], "COMPLETED", "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_store_failing_for_a_while_loses_nothing() {
    let endpoint = url_addr(&s3_endpoint());
    let proxy = FaultProxy::to(endpoint);
    proxy.up();
    let overrides = Overrides {
        s3_endpoint: Some(format!("http://{}", proxy.addr())),
        ..Overrides::default()
    };
    let stack = stack_on(overrides).await;
    let mut ids = load_before(&stack).await;
    let api = stack.api();
    let probe = Probe::start(api, probe_paths(&ids));

    let start = Instant::now();
    proxy.down();
    tokio::time::sleep(FAULT).await;
    proxy.up();
    let window = Window {
        start,
        end: Instant::now(),
    };
    for n in BEFORE..TASKS {
        ids.push(api.created_id(submit(api, n).await).await);
    }
    settle(&stack, &ids, probe, window).await;
}

/// The socket address of an `http://host:port` endpoint.
fn url_addr(endpoint: &str) -> std::net::SocketAddr {
    let host_port = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    host_port.parse().unwrap()
}

/// The command the agent blocks in until the test lets it go.
const HOLD: &str = "sleep 3517";

/// Processes of the task running [`HOLD`].
fn holding(task_id: &str) -> Vec<i32> {
    processes_of_task(task_id)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains("3517"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_task_leaves_its_run_to_the_other_which_completes_it_once() {
    let [fix, done] = fix_add_steps();
    let steps = json!([shell_step(HOLD), fix, done]);
    let mut stack = Stack::configured(
        Profile::Cluster,
        steps,
        QUICK_RECOVERY,
        Overrides::default(),
    )
    .await;
    let api = stack.launch(&["--role", "api"]).await;
    stack.apis.push(api);
    // Two workers on one host: a local run is found again through the host's disk (as a
    // Kubernetes Job is through the cluster).
    for _ in 0..2 {
        let worker = stack.launch_shared(&["--role", "worker"]).await;
        stack.workers.push(worker);
    }
    // The group settled first (one partition of the two each).
    let settled = eventually(WAIT, || async {
        stack
            .workers
            .iter()
            .all(|worker| {
                let log = worker.log();
                let last = log.lines().rfind(|line| line.contains("kafka partitions "));
                last.is_some_and(|line| line.contains("assigned partitions=1"))
            })
            .then_some(())
    });
    assert!(settled.await.is_some(), "{}", logs(&stack));
    let files = [("calc.py", CALC_PY)];
    let id = {
        let api = stack.api();
        let id = api
            .created_id(
                api.submit_zip(test_support::zip_of(&files), "fix add")
                    .await,
            )
            .await;
        api.wait_for_status(&id, |s| s == "RUNNING_AGENT").await;
        let held = eventually(WAIT, || async { (!holding(&id).is_empty()).then_some(()) });
        assert!(held.await.is_some(), "the agent never reached its shell");
        id
    };
    let probe = Probe::start(stack.api(), probe_paths(std::slice::from_ref(&id)));
    let claimed = |log: String| {
        log.lines()
            .any(|line| line.contains("task claimed") && line.contains(&id))
    };
    let holder = stack
        .workers
        .iter()
        .position(|worker| claimed(worker.log()))
        .expect("no worker claimed the task");

    let start = Instant::now();
    let revokes = |log: String| log.matches("kafka partitions revoked").count();
    let revoked_before = revokes(stack.workers[1 - holder].log());
    stack.workers[holder].stop_with(Signal::SIGKILL).await;
    // Once the broker dropped the dead member (its session over, the survivor's
    // partitions revoked), a replacement starts, as a Deployment restarts a killed pod.
    // Its join is what hands the dead member's partition on: tansu 0.6 re-forms a group
    // that lost a member under the same generation and the old assignment, so without
    // a join the partition stays with the dead member.
    let survivor = &stack.workers[1 - holder];
    let revoked = eventually(WAIT, || async {
        (revokes(survivor.log()) > revoked_before).then_some(())
    });
    assert!(revoked.await.is_some(), "{}", survivor.log());
    let replacement = stack.launch_shared(&["--role", "worker"]).await;
    stack.workers.push(replacement);
    let live = |stack: &Stack| {
        (0..stack.workers.len())
            .filter(|n| *n != holder)
            .map(|n| stack.workers[n].log())
            .collect::<Vec<_>>()
            .join("\n-----\n")
    };
    let taken_over = eventually(WAIT, || async { claimed(live(&stack)).then_some(()) }).await;
    assert!(
        taken_over.is_some(),
        "the run was not taken over\n{}",
        live(&stack)
    );
    let window = Window {
        start,
        end: Instant::now(),
    };
    for pid in holding(&id) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }

    let api = stack.api();
    let task = api.wait_for_status(&id, e2e::fault::is_terminal).await;
    assert_eq!(task["status"], "COMPLETED", "{task}\n{}", live(&stack));
    let diff = api.artifact(&id, "diff.patch").await;
    assert_eq!(
        apply_to_original(&files, &diff),
        "def add(a, b):\n    return a + b\n"
    );
    assert_eq!(agent_runs(&stack.model), 1, "the agent started again");
    assert_no_5xx_beyond(&probe.finish().await, window);
}
