#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Cloning: local bare repositories made with the git CLI, reached over `file://` (full
//! clones) and over `git://` from a `git daemon` (shallow clones); servers that stall or
//! trickle, and hosts that resolve to loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use orchestrator::WorkspaceError;
use orchestrator::workspace::{CloneOptions, GitUrlPolicy, clone_git};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.test")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A bare repository `bare.git`: `main` (two commits; the first tagged `v1-light` and
/// `v1-annotated`) and `feature` (one more commit on top of main).
struct Fixture {
    tmp: tempfile::TempDir,
    first: String,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir(&src).unwrap();
        git(&src, &["init", "-q", "-b", "main"]);
        std::fs::write(src.join("README.md"), "v1\n").unwrap();
        git(&src, &["add", "."]);
        git(&src, &["commit", "-q", "-m", "one"]);
        let first = git(&src, &["rev-parse", "HEAD"]);
        git(&src, &["tag", "v1-light"]);
        git(&src, &["tag", "-a", "v1-annotated", "-m", "release one"]);
        std::fs::write(src.join("README.md"), "v2\n").unwrap();
        // Compresses to almost nothing in the pack, but is 200 KB on disk.
        std::fs::write(src.join("zeros.bin"), vec![0u8; 200_000]).unwrap();
        git(&src, &["add", "."]);
        git(&src, &["commit", "-q", "-m", "two"]);
        git(&src, &["checkout", "-q", "-b", "feature"]);
        std::fs::write(src.join("feature.txt"), "feature\n").unwrap();
        git(&src, &["add", "."]);
        git(&src, &["commit", "-q", "-m", "three"]);
        git(&src, &["checkout", "-q", "main"]);
        git(tmp.path(), &["clone", "-q", "--bare", "src", "bare.git"]);
        std::fs::create_dir(tmp.path().join("out")).unwrap();
        Self { tmp, first }
    }

    fn bare(&self) -> PathBuf {
        self.tmp.path().join("bare.git")
    }

    fn file_url(&self) -> String {
        format!("file://{}", self.bare().display())
    }

    fn dest(&self) -> PathBuf {
        self.tmp.path().join("out/ws")
    }

    fn clone(&self, git_ref: Option<&str>) -> Result<(), WorkspaceError> {
        clone_git(&self.file_url(), git_ref, &self.dest(), &dev_opts())
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dest().join(rel)).unwrap()
    }

    /// After a refusal: no destination, no staging folder.
    fn assert_nothing_left(&self) {
        assert!(!self.dest().exists());
        let left: Vec<_> = std::fs::read_dir(self.tmp.path().join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

fn dev_opts() -> CloneOptions {
    CloneOptions {
        policy: GitUrlPolicy::new(&[], true).unwrap(),
        ..CloneOptions::default()
    }
}

/// Loopback allow-listed, as an operator would for an internal forge.
fn loopback_opts() -> CloneOptions {
    CloneOptions {
        policy: GitUrlPolicy::new(&["127.0.0.1".into()], false).unwrap(),
        ..CloneOptions::default()
    }
}

fn head_of(dest: &Path) -> (bool, Option<String>, String) {
    let repo = git2::Repository::open(dest).unwrap();
    let head = repo.head().unwrap();
    let detached = repo.head_detached().unwrap();
    let name = (!detached).then(|| head.name().unwrap().to_string());
    let id = head.peel_to_commit().unwrap().id().to_string();
    (detached, name, id)
}

fn commit_count(dest: &Path) -> usize {
    let repo = git2::Repository::open(dest).unwrap();
    let mut walk = repo.revwalk().unwrap();
    walk.push_head().unwrap();
    walk.count()
}

#[test]
fn the_default_branch_is_cloned_as_a_local_branch_with_its_git_folder() {
    let fx = Fixture::new();
    fx.clone(None).unwrap();
    assert_eq!(fx.read("README.md"), "v2\n");
    assert!(!fx.dest().join("feature.txt").exists());
    let (detached, name, _) = head_of(&fx.dest());
    assert!(!detached);
    assert_eq!(name.as_deref(), Some("refs/heads/main"));
    let repo = git2::Repository::open(fx.dest()).unwrap();
    assert_eq!(
        repo.find_remote("origin").unwrap().url().unwrap(),
        fx.file_url()
    );
    // A clean work tree: the agent's diff starts from nothing.
    assert!(repo.statuses(None).unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(fx.tmp.path().join("out"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn a_branch_is_checked_out_by_name_or_full_ref() {
    for git_ref in ["feature", "refs/heads/feature"] {
        let fx = Fixture::new();
        fx.clone(Some(git_ref)).unwrap();
        assert_eq!(fx.read("feature.txt"), "feature\n");
        let (_, name, _) = head_of(&fx.dest());
        assert_eq!(name.as_deref(), Some("refs/heads/feature"), "{git_ref}");
    }
}

#[test]
fn lightweight_and_annotated_tags_are_checked_out_detached() {
    for tag in ["v1-light", "v1-annotated", "refs/tags/v1-annotated"] {
        let fx = Fixture::new();
        fx.clone(Some(tag)).unwrap();
        assert_eq!(fx.read("README.md"), "v1\n", "{tag}");
        assert!(!fx.dest().join("zeros.bin").exists());
        let (detached, _, id) = head_of(&fx.dest());
        assert!(detached, "{tag}");
        assert_eq!(id, fx.first, "{tag}");
    }
}

#[test]
fn a_commit_sha_full_or_abbreviated_is_checked_out_detached() {
    let fx = Fixture::new();
    for (i, sha) in [
        fx.first.clone(),
        fx.first[..8].to_string(),
        fx.first.to_uppercase(),
    ]
    .iter()
    .enumerate()
    {
        let dest = fx.tmp.path().join(format!("out/sha{i}"));
        clone_git(&fx.file_url(), Some(sha), &dest, &dev_opts()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("README.md")).unwrap(),
            "v1\n"
        );
        let (detached, _, id) = head_of(&dest);
        assert!(detached, "{sha}");
        assert_eq!(id, fx.first, "{sha}");
    }
}

#[test]
fn a_missing_ref_is_a_clear_error_and_leaves_nothing() {
    let fx = Fixture::new();
    let err = fx.clone(Some("no-such-branch")).unwrap_err();
    assert!(matches!(err, WorkspaceError::RefNotFound { .. }), "{err:?}");
    assert!(err.is_input_error());
    let message = err.to_string();
    assert!(
        message.contains("`no-such-branch` is not a branch, tag or commit of file://"),
        "{message}"
    );
    fx.assert_nothing_left();
}

#[test]
fn a_missing_commit_sha_is_a_clear_error_and_leaves_nothing() {
    let fx = Fixture::new();
    for sha in ["0123456789abcdef0123456789abcdef01234567", "deadbeef"] {
        let err = fx.clone(Some(sha)).unwrap_err();
        assert!(
            matches!(err, WorkspaceError::RefNotFound { .. }),
            "{sha}: {err:?}"
        );
        fx.assert_nothing_left();
    }
}

#[test]
fn refs_that_are_not_valid_names_are_refused_before_any_network() {
    let fx = Fixture::new();
    for bad in [
        "",
        "a:b",
        "+main",
        "-x",
        "has space",
        "refs/heads/*",
        "a..b",
        "x^{}",
        "a\nb",
    ] {
        let err = fx.clone(Some(bad)).unwrap_err();
        assert!(
            matches!(err, WorkspaceError::InvalidRef { .. }),
            "{bad:?}: {err:?}"
        );
        fx.assert_nothing_left();
    }
}

#[test]
fn file_urls_are_refused_without_the_dev_setting() {
    let fx = Fixture::new();
    let err = clone_git(&fx.file_url(), None, &fx.dest(), &CloneOptions::default()).unwrap_err();
    assert!(matches!(err, WorkspaceError::UrlRefused { .. }), "{err:?}");
    assert!(
        err.to_string().contains("`file` scheme is not allowed"),
        "{err}"
    );
    fx.assert_nothing_left();
}

#[test]
fn schemes_other_than_https_and_git_are_refused() {
    let policy = GitUrlPolicy::new(&[], true).unwrap();
    for url in [
        "http://example.test/r.git",
        "ftp://example.test/r.git",
        "ext::sh -c touch% /tmp/pwned",
        "/srv/repos/r.git",
        "r.git",
        "https:///no-host",
    ] {
        let result = policy.parse(url);
        assert!(
            matches!(result, Err(WorkspaceError::UrlRefused { .. })),
            "{url}: {result:?}"
        );
    }
    for url in ["https://example.test/o/r.git", "git://example.test/r.git"] {
        GitUrlPolicy::default().parse(url).unwrap();
    }
}

#[test]
fn ssh_urls_are_refused_with_a_pointer_to_https() {
    for url in ["ssh://git@example.test/o/r.git", "git@example.test:o/r.git"] {
        let tmp = tempfile::tempdir().unwrap();
        let err =
            clone_git(url, None, &tmp.path().join("ws"), &CloneOptions::default()).unwrap_err();
        assert!(matches!(err, WorkspaceError::UrlRefused { .. }), "{err:?}");
        assert!(
            err.to_string().contains("use the repository's https URL")
                || err.to_string().contains("use an https URL"),
            "{err}"
        );
    }
}

#[test]
fn credentials_in_a_url_appear_in_no_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("ws");
    let err = clone_git(
        "https://user:s3cr3t-token@127.0.0.1:1/o/r.git",
        None,
        &dest,
        &loopback_opts(),
    )
    .unwrap_err();
    assert!(matches!(err, WorkspaceError::UrlRefused { .. }), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("s3cr3t") && !shown.contains("user:"),
        "{shown}"
    );
    assert!(shown.contains("127.0.0.1"), "{shown}");
    assert!(!dest.exists());

    let err = GitUrlPolicy::default()
        .parse("ftp://user:s3cr3t-token@example.test/r.git")
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cr3t"));
}

#[test]
fn a_checkout_over_the_byte_cap_is_refused_before_it_is_written() {
    let fx = Fixture::new();
    // The pack is a few KB; the checkout is over 200 KB.
    let opts = CloneOptions {
        max_bytes: 100_000,
        ..dev_opts()
    };
    let err = clone_git(&fx.file_url(), None, &fx.dest(), &opts).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::RepoTooLarge { limit: 100_000 }),
        "{err:?}"
    );
    fx.assert_nothing_left();
}

#[test]
fn a_download_over_the_byte_cap_is_stopped() {
    let fx = Fixture::new();
    let opts = CloneOptions {
        max_bytes: 64,
        ..dev_opts()
    };
    let err = clone_git(&fx.file_url(), None, &fx.dest(), &opts).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::RepoTooLarge { limit: 64 }),
        "{err:?}"
    );
    fx.assert_nothing_left();
}

#[test]
fn a_checkout_over_the_file_cap_is_refused() {
    let fx = Fixture::new();
    let opts = CloneOptions {
        max_files: 1,
        ..dev_opts()
    };
    let err = clone_git(&fx.file_url(), None, &fx.dest(), &opts).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::RepoTooManyFiles { limit: 1 }),
        "{err:?}"
    );
    fx.assert_nothing_left();
}

#[test]
fn a_non_empty_destination_is_refused_and_untouched() {
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.dest()).unwrap();
    std::fs::write(fx.dest().join("mine.txt"), "mine").unwrap();
    let err = fx.clone(None).unwrap_err();
    assert!(
        matches!(err, WorkspaceError::DestinationNotEmpty { .. }),
        "{err:?}"
    );
    assert_eq!(fx.read("mine.txt"), "mine");
}

#[test]
fn a_missing_repository_is_a_clone_error() {
    let fx = Fixture::new();
    let url = format!("file://{}", fx.tmp.path().join("nope.git").display());
    let err = clone_git(&url, None, &fx.dest(), &dev_opts()).unwrap_err();
    assert!(matches!(err, WorkspaceError::Clone { .. }), "{err:?}");
    fx.assert_nothing_left();
}

/// `git daemon` serving the fixture's folder on a free loopback port; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("git")
            .args([
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                &format!("--port={port}"),
                &format!("--base-path={}", base.display()),
                &base.display().to_string(),
            ])
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut daemon = Self { child, port };
        // Ready once it accepts connections.
        for _ in 0..500 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return daemon;
            }
            assert!(
                daemon.child.try_wait().unwrap().is_none(),
                "git daemon exited"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("git daemon did not start listening on {port}");
    }

    fn url(&self) -> String {
        format!("git://127.0.0.1:{}/bare.git", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn clones_over_the_network_are_shallow() {
    let fx = Fixture::new();
    let daemon = Daemon::start(fx.tmp.path());
    clone_git(&daemon.url(), Some("feature"), &fx.dest(), &loopback_opts()).unwrap();
    assert_eq!(fx.read("feature.txt"), "feature\n");
    assert!(fx.dest().join(".git/shallow").is_file());
    assert_eq!(commit_count(&fx.dest()), 1);
    let repo = git2::Repository::open(fx.dest()).unwrap();
    assert_eq!(
        repo.find_remote("origin").unwrap().url().unwrap(),
        daemon.url()
    );
}

#[test]
fn a_commit_sha_is_fetched_shallow_when_the_server_allows_it() {
    let fx = Fixture::new();
    git(
        &fx.bare(),
        &["config", "uploadpack.allowReachableSHA1InWant", "true"],
    );
    let daemon = Daemon::start(fx.tmp.path());
    clone_git(&daemon.url(), Some(&fx.first), &fx.dest(), &loopback_opts()).unwrap();
    assert_eq!(fx.read("README.md"), "v1\n");
    assert_eq!(head_of(&fx.dest()).2, fx.first);
    // Only the wanted commit came over: not main's or feature's later commits.
    let repo = git2::Repository::open(fx.dest()).unwrap();
    assert!(repo.find_reference("refs/remotes/origin/main").is_err());
}

#[test]
fn a_commit_sha_falls_back_to_a_full_fetch_when_the_server_refuses_it() {
    let fx = Fixture::new();
    let daemon = Daemon::start(fx.tmp.path());
    clone_git(&daemon.url(), Some(&fx.first), &fx.dest(), &loopback_opts()).unwrap();
    assert_eq!(fx.read("README.md"), "v1\n");
    assert_eq!(head_of(&fx.dest()).2, fx.first);
    let repo = git2::Repository::open(fx.dest()).unwrap();
    assert!(repo.find_reference("refs/remotes/origin/feature").is_ok());
}

#[test]
fn a_git_host_reached_over_the_network_needs_the_allow_list_when_it_is_loopback() {
    let fx = Fixture::new();
    let daemon = Daemon::start(fx.tmp.path());
    let err = clone_git(&daemon.url(), None, &fx.dest(), &CloneOptions::default()).unwrap_err();
    assert!(matches!(err, WorkspaceError::UrlRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("loopback"), "{err}");
    fx.assert_nothing_left();
}

/// A TCP server on loopback that accepts and hands each connection to `behave`;
/// reports each accepted connection on the returned channel.
fn misbehaving_server(host: &str, behave: fn(TcpStream)) -> (u16, mpsc::Receiver<()>) {
    let listener = TcpListener::bind((host, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let _ = tx.send(());
            std::thread::spawn(move || behave(stream));
        }
    });
    (port, rx)
}

/// Holds the connection open and never answers.
fn stall(stream: TcpStream) {
    std::thread::sleep(Duration::from_secs(600));
    drop(stream);
}

/// Once the client spoke, the start of what it waits for (a TLS record of 16 KiB, or a
/// git pkt-line of 255 bytes), then one byte every 100 ms: never idle, never done.
fn trickle(mut stream: TcpStream) {
    let mut hello = [0u8; 512];
    let Ok(n) = stream.read(&mut hello) else {
        return;
    };
    let start: &[u8] = if hello[..n].first() == Some(&0x16) {
        &[0x16, 0x03, 0x03, 0x40, 0x00]
    } else {
        b"00ff"
    };
    let _ = stream.write_all(start);
    while stream.write_all(b"0").is_ok() {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the clone on its own thread; a clone still running after `limit` fails the test
/// (before the relay, these clones never ended).
fn clone_within(url: String, opts: CloneOptions, limit: Duration) -> (WorkspaceError, Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("ws");
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(clone_git(&url, None, &dest, &opts));
    });
    let result = rx
        .recv_timeout(limit)
        .unwrap_or_else(|_| panic!("the clone was still running after {limit:?}"));
    (result.unwrap_err(), started.elapsed())
}

#[test]
fn a_server_that_accepts_and_never_answers_fails_the_clone_after_the_idle_limit() {
    for scheme in ["https", "git"] {
        let (port, accepted) = misbehaving_server("127.0.0.1", stall);
        let opts = CloneOptions {
            idle_timeout: Duration::from_secs(1),
            ..loopback_opts()
        };
        let url = format!("{scheme}://127.0.0.1:{port}/o/r.git");
        let (err, took) = clone_within(url, opts, Duration::from_secs(30));
        assert!(
            matches!(err, WorkspaceError::Clone { .. }),
            "{scheme}: {err:?}"
        );
        assert!(
            err.to_string().contains("sent nothing for 1 s"),
            "{scheme}: {err}"
        );
        assert!(
            accepted.try_recv().is_ok(),
            "{scheme}: the server was never reached"
        );
        assert!(took < Duration::from_secs(20), "{scheme}: {took:?}");
    }
}

#[test]
fn a_server_that_trickles_fails_the_clone_at_its_time_limit() {
    for scheme in ["https", "git"] {
        let (port, _accepted) = misbehaving_server("127.0.0.1", trickle);
        let opts = CloneOptions {
            max_duration: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(1),
            ..loopback_opts()
        };
        let url = format!("{scheme}://127.0.0.1:{port}/o/r.git");
        let (err, took) = clone_within(url, opts, Duration::from_secs(30));
        assert!(
            matches!(err, WorkspaceError::Clone { .. }),
            "{scheme}: {err:?}"
        );
        assert!(
            err.to_string()
                .contains("did not finish within its 2 s limit"),
            "{scheme}: {err}"
        );
        assert!(took < Duration::from_secs(20), "{scheme}: {took:?}");
    }
}

#[test]
fn a_name_resolving_to_loopback_is_refused_before_any_connection() {
    let (port, accepted) = misbehaving_server("127.0.0.1", stall);
    let tmp = tempfile::tempdir().unwrap();
    // `localhost` is a name: only the clone's own lookup can tell where it points.
    let err = clone_git(
        &format!("https://localhost:{port}/o/r.git"),
        None,
        &tmp.path().join("ws"),
        &loopback_opts(),
    )
    .unwrap_err();
    assert!(matches!(err, WorkspaceError::UrlRefused { .. }), "{err:?}");
    assert!(err.to_string().contains("resolves to"), "{err}");
    assert!(err.to_string().contains("loopback"), "{err}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(accepted.try_recv().is_err(), "the clone connected anyway");
}
