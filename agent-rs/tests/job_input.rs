//! `agent-rs job` refusing bad input with exit code 2 before the model is called: missing
//! or malformed settings, a workspace that cannot be downloaded, hostile archives.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod job_support;
mod support;

use std::io::Read;

use flate2::Compression;
use flate2::write::GzEncoder;
use job_support::*;
use serde_json::json;
use support::*;

/// A model server that must not be called: it has no steps.
async fn idle_model() -> scripted_model::ScriptedServer {
    server(json!({"model": "scripted", "steps": [{"type": "message", "content": "unused"}]})).await
}

/// Runs a job expected to be refused; checks the exit code, that the model was never
/// asked, and that no signature was shown. Returns stderr.
async fn refused(env: &[(String, String)], model: &scripted_model::ScriptedServer) -> String {
    let job = run_job(env).await;
    assert_eq!(job.code(), 2, "stderr: {}", job.stderr());
    assert!(model.requests().is_empty(), "the model was called");
    assert_eq!(job.stdout(), "", "no events for a job that did not run");
    assert!(
        !job.everything_shown().contains(SIGNATURE),
        "{}",
        job.stderr()
    );
    job.stderr()
}

/// A store serving `archive`, an idle model, and the settings of a job against them.
async fn job_on(
    archive: Option<Vec<u8>>,
) -> (Store, scripted_model::ScriptedServer, Vec<(String, String)>) {
    let store = Store::start(archive).await;
    let model = idle_model().await;
    let env = job_env(&store, &model.base_url());
    (store, model, env)
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_task_exits_2_naming_the_variable() {
    let (store, model, mut env) = job_on(None).await;
    unset(&mut env, "AGENT_TASK");
    let stderr = refused(&env, &model).await;
    assert!(stderr.contains("AGENT_TASK is not set"), "{stderr}");
    assert!(
        store.put_log().is_empty(),
        "nothing to upload before the settings parse"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_urls_that_are_not_json_exit_2() {
    let (_store, model, mut env) = job_on(None).await;
    set(
        &mut env,
        "AGENT_UPLOAD_URLS",
        "diff.patch=http://x/?X-Signature=SECRETSIG",
    );
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("AGENT_UPLOAD_URLS must be a JSON object"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_urls_naming_an_unknown_file_exit_2() {
    let (store, model, mut env) = job_on(None).await;
    let urls = json!({"secrets.txt": store.upload_url("secrets.txt")}).to_string();
    set(&mut env, "AGENT_UPLOAD_URLS", &urls);
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("`secrets.txt`, which is not an output"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_that_is_not_a_number_exits_2_naming_the_variable() {
    let (_store, model, mut env) = job_on(None).await;
    set(&mut env, "AGENT_MAX_TURNS", "many");
    let stderr = refused(&env, &model).await;
    assert!(stderr.contains("AGENT_MAX_TURNS is `many`"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_work_dir_that_is_not_empty_exits_2() {
    let (_store, model, mut env) = job_on(None).await;
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("left-over.txt"), "x").unwrap();
    set(&mut env, "AGENT_WORK_DIR", work.path().to_str().unwrap());
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("AGENT_WORK_DIR") && stderr.contains("is not empty"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_that_is_not_found_exits_2_and_the_log_is_still_uploaded() {
    let (store, model, env) = job_on(None).await;
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("cannot download the workspace from http://")
            && stderr.contains("/ws.tar.gz?[redacted]: HTTP 404 Not Found"),
        "{stderr}"
    );
    // Only the log, which tells why.
    assert_eq!(store.uploaded_names(), ["agent.log"]);
    let log = store.upload_text("agent.log");
    assert!(log.contains("cannot download the workspace"), "{log}");
    assert!(!log.contains(SIGNATURE));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_larger_than_the_cap_is_not_downloaded() {
    let ws = tempfile::tempdir().unwrap();
    std::fs::write(ws.path().join("noise.bin"), noise(64 << 10)).unwrap();
    let (_store, model, mut env) = job_on(Some(tarball_of(ws.path()))).await;
    set(&mut env, "AGENT_MAX_WORKSPACE_BYTES", "4096");
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("the archive is larger than 4096 bytes"),
        "{stderr}"
    );
}

/// Bytes that do not compress.
fn noise(len: usize) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(7);
    (0..len).map(|_| rng.u8(..)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_climbing_out_with_dotdot_exits_2_and_writes_nothing_outside() {
    let archive = tarball_with_raw_entry(tar::EntryType::Regular, "../evil", None);
    let (_store, model, mut env) = job_on(Some(archive)).await;
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("work");
    set(&mut env, "AGENT_WORK_DIR", work.to_str().unwrap());
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("bad workspace archive: `../evil` contains `..`"),
        "{stderr}"
    );
    assert!(!scratch.path().join("evil").exists());
    assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_with_an_absolute_path_exits_2() {
    let scratch = tempfile::tempdir().unwrap();
    let target = scratch.path().join("evil");
    let archive = tarball_with_raw_entry(tar::EntryType::Regular, target.to_str().unwrap(), None);
    let (_store, model, env) = job_on(Some(archive)).await;
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("bad workspace archive: ") && stderr.contains("has an absolute path"),
        "{stderr}"
    );
    assert!(!target.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_symlink_to_etc_exits_2() {
    let archive = tarball_with_raw_entry(tar::EntryType::Symlink, "config", Some("/etc"));
    let (_store, model, env) = job_on(Some(archive)).await;
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("bad workspace archive: symlink `config` points to `/etc`"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_bomb_is_refused_without_filling_the_disk() {
    const BOMB_BYTES: u64 = 200 << 20;
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut header = tar::Header::new_gnu();
    header.set_size(BOMB_BYTES);
    header.set_mode(0o644);
    header.set_cksum();
    builder
        .append_data(
            &mut header,
            "zeros.bin",
            std::io::repeat(0).take(BOMB_BYTES),
        )
        .unwrap();
    let archive = builder.into_inner().unwrap().finish().unwrap();
    assert!(
        archive.len() < 1 << 20,
        "the bomb is small: {}",
        archive.len()
    );

    let (_store, model, mut env) = job_on(Some(archive)).await;
    let scratch = tempfile::tempdir().unwrap();
    let work = scratch.path().join("work");
    set(&mut env, "AGENT_WORK_DIR", work.to_str().unwrap());
    set(
        &mut env,
        "AGENT_MAX_WORKSPACE_BYTES",
        &(1u64 << 20).to_string(),
    );
    let stderr = refused(&env, &model).await;
    assert!(
        stderr.contains("bad workspace archive: it unpacks to more than 1048576 bytes"),
        "{stderr}"
    );
    assert!(!work.join("zeros.bin").exists());
}
