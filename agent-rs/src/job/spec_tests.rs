use super::*;

fn valid() -> JobArgs {
    JobArgs {
        task_id: Some("t-1".into()),
        task: Some("fix the test".into()),
        workspace_url: Some("https://store.example/ws.tar.gz?X-Signature=SECRETSIG".into()),
        upload_urls: Some(
            r#"{"diff.patch": "https://store.example/up/diff.patch?X-Signature=SECRETSIG",
                "agent.log": "http://127.0.0.1:9000/up/agent.log"}"#
                .into(),
        ),
        ..JobArgs::default()
    }
}

/// A test case: the variable an error must name, and how to spoil the settings.
type Case = (&'static str, fn(&mut JobArgs));

fn error_of(args: &JobArgs) -> String {
    JobSpec::from_args(args).unwrap_err().to_string()
}

#[test]
fn complete_settings_are_accepted_with_defaults_for_the_rest() {
    let spec = JobSpec::from_args(&valid()).unwrap();
    assert_eq!(spec.task_id, "t-1");
    assert_eq!(spec.task, "fix the test");
    assert_eq!(spec.workspace_url.path(), "/ws.tar.gz");
    assert_eq!(
        spec.upload_urls.keys().collect::<Vec<_>>(),
        ["agent.log", "diff.patch"]
    );
    assert_eq!(spec.max_workspace_bytes, DEFAULT_MAX_WORKSPACE_BYTES);
    assert_eq!(spec.max_workspace_entries, DEFAULT_MAX_WORKSPACE_ENTRIES);
    assert_eq!(spec.max_turns, None);
    assert_eq!(spec.work_dir, None);
    assert_eq!(spec.urls().count(), 3);
}

#[test]
fn limits_are_read_as_numbers() {
    let args = JobArgs {
        max_turns: Some("7".into()),
        max_tokens: Some("1000".into()),
        timeout_secs: Some(" 60 ".into()),
        max_workspace_bytes: Some("4096".into()),
        max_workspace_entries: Some("10".into()),
        ..valid()
    };
    let spec = JobSpec::from_args(&args).unwrap();
    assert_eq!(spec.max_turns, Some(7));
    assert_eq!(spec.max_tokens, Some(1000));
    assert_eq!(spec.timeout_secs, Some(60));
    assert_eq!(spec.max_workspace_bytes, 4096);
    assert_eq!(spec.max_workspace_entries, 10);
}

#[test]
fn each_missing_required_variable_is_named() {
    let cases: [Case; 4] = [
        ("AGENT_TASK_ID", |a| a.task_id = None),
        ("AGENT_TASK", |a| a.task = None),
        ("AGENT_WORKSPACE_URL", |a| a.workspace_url = None),
        ("AGENT_UPLOAD_URLS", |a| a.upload_urls = None),
    ];
    for (name, clear) in cases {
        let mut args = valid();
        clear(&mut args);
        let err = error_of(&args);
        assert!(err.starts_with(&format!("{name} is not set")), "{err}");
    }
}

#[test]
fn a_blank_task_counts_as_missing() {
    let err = error_of(&JobArgs {
        task: Some("  \n".into()),
        ..valid()
    });
    assert!(err.starts_with("AGENT_TASK is not set"), "{err}");
}

#[test]
fn upload_urls_that_are_not_json_are_refused_without_echoing_them() {
    let err = error_of(&JobArgs {
        upload_urls: Some("diff.patch=https://x/?X-Signature=SECRETSIG".into()),
        ..valid()
    });
    assert!(
        err.contains("AGENT_UPLOAD_URLS must be a JSON object"),
        "{err}"
    );
    assert!(!err.contains("SECRETSIG"), "{err}");
}

#[test]
fn upload_urls_of_the_wrong_shape_are_refused_without_echoing_them() {
    for shape in [
        r#""https://x/diff.patch?X-Signature=SECRETSIG""#,
        r#"["https://x/diff.patch?X-Signature=SECRETSIG"]"#,
        r#"{"diff.patch": ["https://x/?X-Signature=SECRETSIG"]}"#,
        r#"{"diff.patch": 3}"#,
    ] {
        let err = error_of(&JobArgs {
            upload_urls: Some(shape.into()),
            ..valid()
        });
        assert!(
            err.contains("AGENT_UPLOAD_URLS must be a JSON object"),
            "{shape}: {err}"
        );
        assert!(!err.contains("SECRETSIG"), "{err}");
    }
}

#[test]
fn an_unknown_output_name_is_refused_and_the_outputs_listed() {
    let err = error_of(&JobArgs {
        upload_urls: Some(r#"{"notes.txt": "https://x/notes"}"#.into()),
        ..valid()
    });
    assert!(err.contains("`notes.txt`, which is not an output"), "{err}");
    assert!(err.contains("trajectory.jsonl"), "{err}");
}

#[test]
fn an_upload_url_that_is_not_http_is_refused_naming_its_file() {
    for url in [
        "ftp://x/diff.patch?sig=SECRETSIG",
        "not a url",
        "file:///tmp/x",
    ] {
        let err = error_of(&JobArgs {
            upload_urls: Some(format!(r#"{{"diff.patch": "{url}"}}"#)),
            ..valid()
        });
        assert!(err.contains(r#"AGENT_UPLOAD_URLS["diff.patch"]"#), "{err}");
        assert!(!err.contains("SECRETSIG"), "{err}");
    }
}

#[test]
fn a_workspace_url_that_is_not_http_is_refused_without_its_query() {
    let err = error_of(&JobArgs {
        workspace_url: Some("s3://bucket/ws.tar.gz?X-Signature=SECRETSIG".into()),
        ..valid()
    });
    assert!(
        err.starts_with("AGENT_WORKSPACE_URL must be an http(s) URL"),
        "{err}"
    );
    assert!(!err.contains("SECRETSIG"), "{err}");
}

#[test]
fn malformed_or_zero_limits_are_refused_naming_the_variable() {
    let cases: [Case; 5] = [
        ("AGENT_MAX_TURNS", |a| a.max_turns = Some("ten".into())),
        ("AGENT_MAX_TURNS", |a| a.max_turns = Some("0".into())),
        ("AGENT_MAX_TOKENS", |a| a.max_tokens = Some("-5".into())),
        ("AGENT_TIMEOUT_SECS", |a| {
            a.timeout_secs = Some("1.5".into())
        }),
        ("AGENT_MAX_WORKSPACE_BYTES", |a| {
            a.max_workspace_bytes = Some("1GiB".into())
        }),
    ];
    for (name, set) in cases {
        let mut args = valid();
        set(&mut args);
        let err = error_of(&args);
        assert!(
            err.starts_with(name) && err.contains("whole number of at least 1"),
            "{err}"
        );
    }
}

#[test]
fn a_model_endpoint_that_is_not_http_is_refused() {
    let err = error_of(&JobArgs {
        base_url: Some("localhost:8000/v1".into()),
        ..valid()
    });
    assert!(
        err.starts_with("OPENAI_BASE_URL is not an http(s) URL"),
        "{err}"
    );
}
