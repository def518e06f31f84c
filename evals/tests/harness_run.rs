//! `evals run --scripted` on small suites: outcomes and their reasons, the report files,
//! `--check-expected`, `--filter` and `--repeat`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness_support;

use serde_json::json;

use harness_support::*;

const GREETING: &[(&str, &str)] = &[("greeting.txt", "hello wrld\n")];

/// Five tasks, one per way an attempt ends; only `fix-greeting` passes.
fn mixed_suite(root: &std::path::Path) -> std::path::PathBuf {
    let suite = suite(root, "name = \"mixed\"\nexpected_pass_rate = 0.2\n");
    task(
        &suite,
        "fix-greeting",
        r#"
instruction = "Fix the typo in greeting.txt."
target_file = "greeting.txt"
check = "bash verify.sh"
expected = "pass"
"#,
        Some(json!({"model": "scripted-fixer", "steps": [
            edit_step("greeting.txt", "wrld", "world"), done_step()
        ]})),
        GREETING,
    );
    write(
        &suite.join("fix-greeting/check/verify.sh"),
        "grep -qx 'hello world' greeting.txt\n",
    );
    task(
        &suite,
        "wrong-fix",
        "instruction = \"Fix the typo.\"\ncheck = \"grep -qx 'hello world' greeting.txt\"\nexpected = \"fail\"\n",
        Some(json!({"steps": [edit_step("greeting.txt", "wrld", "word"), done_step()]})),
        GREETING,
    );
    task(
        &suite,
        "no-script",
        "instruction = \"Anything.\"\ncheck = \"true\"\nexpected = \"fail\"\n",
        None,
        GREETING,
    );
    task(
        &suite,
        "setup-breaks",
        "instruction = \"Anything.\"\nsetup = \"echo broken >&2; exit 7\"\ncheck = \"true\"\nexpected = \"fail\"\n",
        Some(json!({"steps": [done_step()]})),
        GREETING,
    );
    task(
        &suite,
        "turn-limit",
        "instruction = \"Loop.\"\ncheck = \"test -f never-created\"\nexpected = \"fail\"\n[limits]\nmax_turns = 1\n",
        Some(json!({"steps": [shell_step("true"), shell_step("true"), done_step()]})),
        GREETING,
    );
    suite
}

#[test]
fn scripted_run_reports_each_outcome_with_its_reason() {
    let root = tempfile::tempdir().unwrap();
    let suite = mixed_suite(root.path());
    let out = root.path().join("out");
    let run = run_suite(&suite, &out, &["--scripted", "--check-expected"]);
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));

    let report = read_json(&out.join("report.json"));
    assert_eq!(report["suite"], "mixed");
    assert_eq!(report["scripted"], true);
    let fixed = attempt_of(&report, "fix-greeting");
    assert_eq!(fixed["passed"], true, "{fixed:#}");
    assert_eq!(fixed["reason"], serde_json::Value::Null);
    assert_eq!(fixed["agent_exit_code"], 0);
    assert_eq!(fixed["status"], "completed");
    assert_eq!(fixed["turns"], 2);
    assert_eq!(fixed["tokens"]["total_tokens"], 275);
    assert_eq!(fixed["check_exit_code"], 0);
    assert_eq!(fixed["expected"], "pass");
    assert_eq!(fixed["output_dir"], "tasks/fix-greeting");

    let wrong = attempt_of(&report, "wrong-fix");
    assert_eq!(wrong["passed"], false);
    assert_eq!(wrong["reason"], "check failed (exit 1)");
    assert_eq!(attempt_of(&report, "no-script")["reason"], "no script");
    let setup = attempt_of(&report, "setup-breaks");
    assert_eq!(setup["reason"], "setup failed (exit 7; see setup.log)");
    // The setup runs inside the agent's run, before the model, which is never called.
    assert_eq!(setup["agent_exit_code"], 1);
    assert_eq!(setup["turns"], 0, "the model must not be called");
    let limited = attempt_of(&report, "turn-limit");
    assert_eq!(
        limited["reason"],
        "check failed (exit 1); agent exit 3 (limit_reached: max_turns)"
    );
    assert_eq!(limited["limit"], "max_turns");

    let totals = &report["totals"];
    assert_eq!(totals["tasks"], 5);
    assert_eq!(totals["attempts"], 5);
    assert_eq!(totals["passed"], 1);
    assert_eq!(totals["pass_rate"], 0.2);
    assert!(totals.get("pass_at_k").is_none());

    // The agent's outputs and the harness's logs sit in the attempt's folder; the hidden
    // check files arrive after the agent, so its diff never shows them.
    let task_out = out.join("tasks/fix-greeting");
    let diff = std::fs::read_to_string(task_out.join("diff.patch")).unwrap();
    assert!(diff.contains("+hello world"), "{diff}");
    assert!(!diff.contains("verify.sh"), "{diff}");
    let prompt = std::fs::read_to_string(task_out.join("prompt.txt")).unwrap();
    assert!(prompt.contains("Fix the typo in greeting.txt."));
    assert!(task_out.join("check.log").is_file());
    assert!(task_out.join("agent.stderr").is_file());
    let setup_log = std::fs::read_to_string(out.join("tasks/setup-breaks/setup.log")).unwrap();
    assert!(setup_log.contains("broken"));

    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| task | result | reason | turns | tokens | time |"),
        "{md}"
    );
    assert!(md.contains("| fix-greeting | ✅ |  | 2 | 275 |"), "{md}");
    assert!(
        md.contains("| wrong-fix | ❌ | check failed (exit 1) |"),
        "{md}"
    );
    assert!(md.contains("passed: 1/5 attempts (20.0%)"), "{md}");

    let xml = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 5, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 4, "{xml}");
    assert!(xml.contains("<failure message=\"no script\""), "{xml}");
    assert!(xml.contains("name=\"fix-greeting\""), "{xml}");

    let summary = stderr(&run);
    assert!(
        summary.contains("FAIL (as expected) wrong-fix: check failed (exit 1)"),
        "{summary}"
    );
    assert!(summary.contains("mixed: 1/5 passed (20.0%)"), "{summary}");
}

#[test]
fn check_expected_exits_1_listing_each_mismatch() {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "name = \"wrong\"\nexpected_pass_rate = 1.0\n");
    task(
        &suite,
        "hoped-to-pass",
        "instruction = \"x\"\ncheck = \"true\"\nexpected = \"pass\"\n",
        None,
        GREETING,
    );
    let out = root.path().join("out");
    let plain = run_suite(&suite, &out, &["--scripted"]);
    assert_eq!(
        code(&plain),
        0,
        "without --check-expected outcomes are not judged"
    );
    let checked = run_suite(&suite, &out, &["--scripted", "--check-expected"]);
    assert_eq!(code(&checked), 1, "stderr: {}", stderr(&checked));
    let text = stderr(&checked);
    assert!(
        text.contains("task hoped-to-pass attempt 1: expected pass, got fail (no script)"),
        "{text}"
    );
    assert!(
        text.contains("pass rate 0.0000 differs from suite.toml expected_pass_rate 1.0000"),
        "{text}"
    );
}

#[test]
fn filter_selects_tasks_by_glob_substring_or_tag() {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(
        root.path(),
        "name = \"filtered\"\nexpected_pass_rate = 1.0\n",
    );
    for name in ["fix-a", "fix-b"] {
        task(
            &suite,
            name,
            "instruction = \"x\"\ncheck = \"true\"\n",
            None,
            &[],
        );
    }
    task(
        &suite,
        "other",
        "instruction = \"x\"\ncheck = \"true\"\ntags = [\"special\"]\n",
        None,
        &[],
    );
    let ids = |filter: &str| {
        let out = root
            .path()
            .join(format!("out-{}", filter.replace('*', "star")));
        let run = run_suite(
            &suite,
            &out,
            &["--scripted", "--check-expected", "--filter", filter],
        );
        // The rate is not judged under a filter, and no task states `expected`.
        assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
        let report = read_json(&out.join("report.json"));
        assert_eq!(report["filter"], filter);
        report["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|task| task["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("fix-*"), ["fix-a", "fix-b"]);
    assert_eq!(ids("b"), ["fix-b"]);
    assert_eq!(ids("special"), ["other"]);

    let none = run_suite(
        &suite,
        &root.path().join("none"),
        &["--scripted", "--filter", "zzz"],
    );
    assert_eq!(code(&none), 2);
    assert!(
        stderr(&none).contains("--filter zzz matches no task"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn repeat_runs_every_attempt_in_its_own_folder_and_reports_pass_at_k() {
    let root = tempfile::tempdir().unwrap();
    let counter = root.path().join("check-count");
    let suite = suite(root.path(), "name = \"repeated\"\n");
    // Every second check fails: 2 of 3 attempts pass whatever their order.
    let flaky = format!(
        "instruction = \"x\"\ncheck = '''n=$(( $(cat {c} 2>/dev/null || echo 0) + 1 )); echo $n > {c}; [ $((n % 2)) -eq 1 ]'''\n",
        c = counter.display()
    );
    task(
        &suite,
        "flaky",
        &flaky,
        Some(json!({"steps": [done_step()]})),
        &[],
    );
    task(
        &suite,
        "broken",
        "instruction = \"x\"\ncheck = \"false\"\n",
        Some(json!({"steps": [done_step()]})),
        &[],
    );
    let out = root.path().join("out");
    let run = run_suite(
        &suite,
        &out,
        &["--scripted", "--repeat", "3", "--parallel", "1"],
    );
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
    let report = read_json(&out.join("report.json"));
    assert_eq!(report["repeat"], 3);
    assert_eq!(report["tasks"][0]["id"], "broken", "tasks in folder order");
    assert_eq!(report["tasks"][1]["passed"], 2);
    let numbers: Vec<u64> = report["tasks"][1]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    for attempt in 1..=3 {
        let folder = out.join(format!("tasks/flaky-{attempt}"));
        assert!(folder.join("result.json").is_file(), "{}", folder.display());
    }
    let pass_at_k = &report["totals"]["pass_at_k"];
    // flaky: n=3 c=2 gives pass@1 2/3, pass@2 1, pass@3 1; broken gives 0 throughout.
    let close = |key: &str, value: f64| {
        let got = pass_at_k[key].as_f64().unwrap();
        assert!(
            (got - value).abs() < 1e-9,
            "pass@{key} = {got}, want {value}"
        );
    };
    close("1", 1.0 / 3.0);
    close("2", 0.5);
    close("3", 0.5);
    // The attempt kept is the one the service's best-of-N would keep: a passing one.
    for task in report["tasks"].as_array().unwrap() {
        let best = task["best_attempt"].as_u64().unwrap();
        let kept = &task["attempts"][usize::try_from(best - 1).unwrap()];
        assert_eq!(kept["attempt"], best, "{task}");
        assert_eq!(kept["passed"], task["passed"].as_u64() > Some(0), "{task}");
    }
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("| flaky #2 |"), "{md}");
    let flaky_best = report["tasks"][1]["best_attempt"].as_u64().unwrap();
    assert!(
        md.contains(&format!("| flaky #{flaky_best} (kept) |")),
        "{md}"
    );
    assert_eq!(md.matches("(kept)").count(), 2, "{md}");
    assert!(
        md.contains("pass@1 0.333, pass@2 0.500, pass@3 0.500"),
        "{md}"
    );
}

/// The setup goes through the agent's setup phase: sandboxed as the agent's commands are
/// (nothing written outside the workspace), its output in setup.log, and what it makes
/// the starting state rather than part of the agent's diff.
#[test]
fn a_task_setup_runs_in_the_agents_sandbox_before_the_model() {
    let root = tempfile::tempdir().unwrap();
    let suite = suite(root.path(), "name = \"setup\"\nexpected_pass_rate = 1.0\n");
    // Outside `/tmp`, which is private inside the sandbox (a write there proves nothing).
    let outside = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let escape = outside.path().join("escaped-by-setup");
    task(
        &suite,
        "setup-sandboxed",
        &format!(
            "instruction = \"Fix the typo.\"\nsetup = \"echo built > built.txt; touch {} || echo write-refused\"\ncheck = \"grep -qx built built.txt && grep -qx 'hello world' greeting.txt\"\nexpected = \"pass\"\n",
            escape.display()
        ),
        Some(json!({"steps": [edit_step("greeting.txt", "wrld", "world"), done_step()]})),
        GREETING,
    );
    let out = root.path().join("out");
    let run = run_suite(&suite, &out, &["--scripted", "--check-expected"]);
    assert_eq!(code(&run), 0, "stderr: {}", stderr(&run));
    let report = read_json(&out.join("report.json"));
    let attempt = attempt_of(&report, "setup-sandboxed");
    assert_eq!(attempt["passed"], true, "{attempt:#}");
    assert!(!escape.exists(), "the setup wrote outside its workspace");
    let task_out = out.join("tasks/setup-sandboxed");
    let log = std::fs::read_to_string(task_out.join("setup.log")).unwrap();
    assert!(log.contains("write-refused"), "{log}");
    let result = read_json(&task_out.join("result.json"));
    assert_eq!(result["setup"]["success"], true, "{result:#}");
    assert_eq!(result["sandbox"]["mode"], "bwrap", "{result:#}");
    let diff = std::fs::read_to_string(task_out.join("diff.patch")).unwrap();
    assert!(
        diff.contains("+hello world") && !diff.contains("built.txt"),
        "{diff}"
    );
}
