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
use test_support::cluster::Overrides;
use test_support::private::{PrivateBroker, PrivateMariaDb, PrivateRedis};
use test_support::proxy::FaultProxy;
use test_support::services::s3_endpoint;
use test_support::{WAIT, eventually};

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
