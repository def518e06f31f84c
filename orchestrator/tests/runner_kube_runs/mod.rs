//! A run's life on the Kubernetes runner, after its launch: events streamed then the
//! exit, a failed Job, the deadline, pods that never start, cancel, re-attaching after a
//! restart, and listing by labels. Each scenario returns its fake server, so the parent
//! can check the calls all of them made together.

use super::*;

/// Success: the pod runs, prints events (and a line that is not one), ends with 0; the
/// watch yields the events in order and `Exited(0)`.
pub async fn success_streams_events_then_exit() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    let pod = pod_name(run);
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Pending);
    let stream = runner.watch(&handle, 0).await.unwrap();
    server.put_pod(&kube_support::pod(
        run,
        ago(2),
        waiting("PodInitializing", ""),
    ));
    server.put_pod(&kube_support::pod(run, ago(2), running()));
    server.print(&pod, &event(1));
    server.print(&pod, "agent-rs: a diagnostic line, not an event");
    server.print(&pod, &event(2));
    let logs = server.wait_for_call("get", "pods/log", 1).await;
    assert_eq!(
        logs[0].path,
        format!("/api/v1/namespaces/{NAMESPACE}/pods/{pod}/log")
    );
    assert_eq!(
        logs[0].query.get("container").map(String::as_str),
        Some("agent")
    );
    assert_eq!(
        logs[0].query.get("follow").map(String::as_str),
        Some("true")
    );
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Running);
    server.print(&pod, &event(3));
    server.close_log(&pod);
    server.put_pod(&kube_support::pod(run, ago(2), terminated(0, "Completed")));
    server.set_job_condition(
        run,
        "Complete",
        "CompletionsReached",
        "Reached expected number of succeeded pods",
    );
    let mut expected = events(1..=3);
    expected.push(RunnerEvent::Exited {
        code: Some(0),
        reason: "completed".to_string(),
    });
    assert_eq!(collect(stream).await, expected);
    assert_eq!(
        runner.status(&handle).await.unwrap(),
        RunStatus::Exited {
            code: Some(0),
            reason: "completed".to_string()
        }
    );
    // Watched from the cluster: the Job by name, the pod by the run label.
    let job_watch = &server.calls_of("watch", "jobs")[0];
    assert_eq!(
        job_watch.query["fieldSelector"],
        format!("metadata.name={run}")
    );
    let pod_watch = &server.calls_of("watch", "pods")[0];
    assert_eq!(
        pod_watch.query["labelSelector"],
        format!("agent-rs/run={run}")
    );
    server
}

#[tokio::test]
async fn success_streams_events_then_exit_test() {
    success_streams_events_then_exit().await;
}

/// A failed Job ends the wait, with the agent's exit code and the Job's reason.
pub async fn failed_job_ends_the_wait() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    let pod = pod_name(run);
    server.put_pod(&kube_support::pod(run, ago(2), running()));
    let stream = runner.watch(&handle, 0).await.unwrap();
    server.print(&pod, &event(1));
    server.close_log(&pod);
    server.set_job_condition(
        run,
        "Failed",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );
    server.put_pod(&kube_support::pod(run, ago(2), terminated(4, "Error")));
    let got = collect(stream).await;
    assert_eq!(got[..1], events(1..=1)[..]);
    match &got[1..] {
        [
            RunnerEvent::Exited {
                code: Some(4),
                reason,
            },
        ] => {
            assert!(reason.contains("BackoffLimitExceeded"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    server
}

#[tokio::test]
async fn failed_job_ends_the_wait_test() {
    failed_job_ends_the_wait().await;
}

/// Past `activeDeadlineSeconds` the Job controller fails the Job and kills the pod: the
/// watch ends with the deadline as reason and no exit code.
pub async fn deadline_exceeded_ends_the_run() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    let pod = pod_name(run);
    server.put_pod(&kube_support::pod(run, ago(800), running()));
    let stream = runner.watch(&handle, 0).await.unwrap();
    server.print(&pod, &event(1));
    server.wait_for_call("get", "pods/log", 1).await;
    server.set_job_condition(
        run,
        "Failed",
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    );
    server.close_log(&pod);
    server.remove(Kind::Pod, &pod);
    let got = collect(stream).await;
    assert_eq!(got[..1], events(1..=1)[..]);
    match &got[1..] {
        [RunnerEvent::Exited { code: None, reason }] => {
            assert!(reason.contains("DeadlineExceeded"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    server
}

#[tokio::test]
async fn deadline_exceeded_ends_the_run_test() {
    deadline_exceeded_ends_the_run().await;
}

/// A pod that cannot pull its image fails the run once past the limit, with the
/// kubelet's reason; the Job is deleted (in the background) so nothing waits forever.
pub async fn image_pull_error_fails_the_run_past_the_limit() -> FakeApiServer {
    let server = FakeApiServer::new();
    // API times have whole seconds: a limit of 2 s is at least 1 s from "now".
    let settings = KubeSettings {
        stuck_after_secs: 2,
        ..settings()
    };
    let runner = KubeRunner::new(server.client(), settings);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    let stream = runner.watch(&handle, 0).await.unwrap();
    // Stuck since now: the limit has not passed yet.
    let message = "Back-off pulling image \"registry.example/env/python:3.12\"";
    server.put_pod(&kube_support::pod(
        run,
        ago(0),
        waiting("ImagePullBackOff", message),
    ));
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Pending);
    let started = std::time::Instant::now();
    let got = collect(stream).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    match got.as_slice() {
        [RunnerEvent::Exited { code: None, reason }] => {
            assert!(
                reason.contains("ImagePullBackOff") && reason.contains(message),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let deletes = server.calls_of("delete", "jobs");
    assert_eq!(deletes.len(), 1);
    assert_eq!(
        deletes[0].body.as_ref().unwrap()["propagationPolicy"],
        "Background"
    );
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::NotFound);
    assert!(
        server.names(Kind::Secret).is_empty(),
        "the Secret goes with its Job"
    );
    server
}

#[tokio::test]
async fn image_pull_error_fails_the_run_past_the_limit_test() {
    image_pull_error_fails_the_run_past_the_limit().await;
}

/// Every reason a pod never starts is read by `status` once past the limit.
#[tokio::test]
async fn stuck_pods_are_exited_with_their_reason() {
    let cases = [
        ("ErrImagePull", waiting("ErrImagePull", "manifest unknown")),
        (
            "CreateContainerConfigError",
            waiting("CreateContainerConfigError", "secret \"x\" not found"),
        ),
        (
            "InvalidImageName",
            waiting("InvalidImageName", "couldn't parse image name"),
        ),
    ];
    for (reason, state) in cases {
        let server = FakeApiServer::new();
        let runner = new_runner(&server);
        let handle = runner.launch(spec(TaskId::new())).await.unwrap();
        server.put_pod(&kube_support::pod(&handle.0, ago(30), state));
        match runner.status(&handle).await.unwrap() {
            RunStatus::Exited {
                code: None,
                reason: got,
            } => assert!(got.contains(reason), "{got}"),
            other => panic!("{reason}: {other:?}"),
        }
    }
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    server.put_pod(&unschedulable_pod(&handle.0, ago(30)));
    match runner.status(&handle).await.unwrap() {
        RunStatus::Exited { code: None, reason } => {
            assert!(
                reason.contains("Unschedulable") && reason.contains("Insufficient memory"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A pod still initializing is not stuck, however long it takes.
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    server.put_pod(&kube_support::pod(
        &handle.0,
        ago(30),
        waiting("ContainerCreating", ""),
    ));
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::Pending);
}

/// Cancel deletes the Job with background propagation (the pod and Secret go too), ends
/// the watch without `Exited`, and is idempotent.
pub async fn cancel_deletes_in_the_background() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let handle = runner.launch(spec(TaskId::new())).await.unwrap();
    let run = handle.0.as_str();
    server.put_pod(&kube_support::pod(run, ago(2), running()));
    let stream = runner.watch(&handle, 0).await.unwrap();
    server.print(&pod_name(run), &event(1));
    server.wait_for_call("get", "pods/log", 1).await;
    runner.cancel(&handle).await.unwrap();
    let got = collect(stream).await;
    assert!(
        !got.iter()
            .any(|event| matches!(event, RunnerEvent::Exited { .. })),
        "{got:?}"
    );
    let deletes = server.calls_of("delete", "jobs");
    assert_eq!(
        deletes[0].path,
        format!("/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{run}")
    );
    assert_eq!(
        deletes[0].body.as_ref().unwrap()["propagationPolicy"],
        "Background"
    );
    assert!(
        server.names(Kind::Pod).is_empty(),
        "the pod would keep running"
    );
    assert!(server.names(Kind::Secret).is_empty());
    assert_eq!(runner.status(&handle).await.unwrap(), RunStatus::NotFound);
    runner.cancel(&handle).await.unwrap();
    assert!(matches!(
        runner.watch(&handle, 0).await,
        Err(RunnerError::UnknownRun(_))
    ));
    server
}

#[tokio::test]
async fn cancel_deletes_in_the_background_test() {
    cancel_deletes_in_the_background().await;
}

/// A worker that restarts re-attaches: a new runner (new client, nothing in memory)
/// finds the running Job, and its watch replays from the log skipping what the caller
/// has; a broken log stream is resumed without repeating events.
pub async fn reattach_after_restart() -> FakeApiServer {
    let server = FakeApiServer::new();
    let task_id = TaskId::new();
    let handle = {
        let first = new_runner(&server);
        let handle = first.launch(spec(task_id)).await.unwrap();
        let run = handle.0.clone();
        server.put_pod(&kube_support::pod(&run, ago(5), running()));
        let mut stream = first.watch(&handle, 0).await.unwrap();
        server.print(&pod_name(&run), &event(1));
        server.print(&pod_name(&run), &event(2));
        assert_eq!(stream.next().await.unwrap(), events(1..=1)[0]);
        assert_eq!(stream.next().await.unwrap(), events(2..=2)[0]);
        first.detach(&handle).await.unwrap();
        assert_eq!(collect(stream).await, vec![], "detached: no Exited");
        handle
    };
    let run = handle.0.as_str();
    let pod = pod_name(run);
    let second = new_runner(&server);
    let selector = BTreeMap::from([(LABEL_MANAGED_BY.to_string(), MANAGED_BY.to_string())]);
    let listed = second.list(&selector).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, handle);
    assert_eq!(listed[0].status, RunStatus::Running);
    assert_eq!(listed[0].task_id(), Some(task_id));
    assert_eq!(second.status(&handle).await.unwrap(), RunStatus::Running);

    let mut stream = second.watch(&handle, 2).await.unwrap();
    server.print(&pod, &event(3));
    assert_eq!(stream.next().await.unwrap(), events(3..=3)[0]);
    let opened = server.calls_of("get", "pods/log").len();
    server.break_log(&pod);
    server.print(&pod, &event(4));
    server.wait_for_call("get", "pods/log", opened + 1).await;
    server.print(&pod, &event(5));
    server.close_log(&pod);
    server.put_pod(&kube_support::pod(run, ago(5), terminated(0, "Completed")));
    server.set_job_condition(run, "Complete", "CompletionsReached", "done");
    let mut expected = events(4..=5);
    expected.push(RunnerEvent::Exited {
        code: Some(0),
        reason: "completed".to_string(),
    });
    assert_eq!(collect(stream).await, expected);
    server
}

#[tokio::test]
async fn reattach_after_restart_test() {
    reattach_after_restart().await;
}

/// Runs are listed by label, with their status; runs of other selectors are not.
pub async fn list_by_labels() -> FakeApiServer {
    let server = FakeApiServer::new();
    let runner = new_runner(&server);
    let a = runner.launch(spec(TaskId::new())).await.unwrap();
    let b_spec = spec(TaskId::new());
    let b_task = b_spec.task_id;
    let b = runner.launch(b_spec).await.unwrap();
    server.put_pod(&kube_support::pod(&b.0, ago(1), terminated(3, "Error")));
    let all = runner
        .list(&BTreeMap::from([(
            LABEL_MANAGED_BY.to_string(),
            MANAGED_BY.to_string(),
        )]))
        .await
        .unwrap();
    let names: BTreeSet<RunHandle> = all.iter().map(|run| run.handle.clone()).collect();
    assert_eq!(names, BTreeSet::from([a.clone(), b.clone()]));
    let one = runner
        .list(&BTreeMap::from([(
            LABEL_TASK_ID.to_string(),
            b_task.to_string(),
        )]))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].handle, b);
    assert_eq!(
        one[0].status,
        RunStatus::Exited {
            code: Some(3),
            reason: "Error".to_string()
        }
    );
    let list = &server.calls_of("list", "jobs")[1];
    assert_eq!(
        list.query["labelSelector"],
        format!("{LABEL_TASK_ID}={b_task}")
    );
    server
}

#[tokio::test]
async fn list_by_labels_test() {
    list_by_labels().await;
}
