//! Shallow clone of a repository at a branch, tag or commit, with libgit2 (no `git`
//! binary on the worker).
//!
//! The ref is resolved against the remote's advertised refs first (`refs/heads/R`, then
//! `refs/tags/R`), so a missing branch fails before anything is downloaded, and only that
//! one ref is fetched at depth 1. A commit SHA is fetched by id at depth 1 when the
//! server allows it (GitHub and GitLab do); otherwise, or for an abbreviated SHA, every
//! branch and tag is fetched in full and the SHA looked up: slower, same result. The
//! `file://` transport of libgit2 cannot fetch shallow, so `file://` clones (tests and
//! local development only) are full.
//!
//! The clone keeps its `.git` (the agent's diff works best in a repository), with
//! `origin` set to the URL as given: the tarball goes to the agent.
//!
//! The URL is checked by [`GitUrlPolicy`] (the API's rules, again) and its host resolved
//! and checked once; libgit2 then reaches the network only through a relay
//! ([`super::git_relay`]) that connects to those addresses alone, refuses a redirect to
//! another host, and cuts a connection that stalls or a clone past its time limit.

use std::cell::Cell;
use std::path::Path;
use std::time::{Duration, Instant};

use git2::build::CheckoutBuilder;
use git2::{
    AutotagOption, Direction, FetchOptions, ObjectType, Oid, ProxyOptions, Reference,
    RemoteCallbacks, RemoteRedirect, Repository, TreeWalkMode, TreeWalkResult,
};
use url::Url;

use super::git_relay::{Relay, RelayFailure, RelayMode, RelaySettings};
use super::git_url::{GitTransport, GitUrl, GitUrlPolicy};
use super::{WorkspaceError, display_name, publish, staging_beside};

/// Caps and policy for [`clone_git`].
#[derive(Debug, Clone)]
pub struct CloneOptions {
    /// Which URLs and hosts may be cloned.
    pub policy: GitUrlPolicy,
    /// Largest checkout (sum of file sizes) and largest download.
    pub max_bytes: u64,
    /// Most files in the checkout.
    pub max_files: u64,
    /// The whole clone's time limit: every connection is cut once it passes.
    pub max_duration: Duration,
    /// A connection on which nothing moved for this long is cut (a stalled server).
    pub idle_timeout: Duration,
}

impl Default for CloneOptions {
    fn default() -> Self {
        Self {
            policy: GitUrlPolicy::default(),
            max_bytes: 1 << 30,
            max_files: 100_000,
            max_duration: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What the clone should end up on.
enum Target {
    /// A branch: fetched to `refs/remotes/origin/{name}`, checked out as local `{name}`.
    Branch { name: String },
    /// A tag or other full ref name, checked out detached.
    Ref { refname: String },
    /// A (possibly abbreviated) commit id, checked out detached.
    Commit { sha: String },
}

/// Clones `url` at `git_ref` (a branch, tag or commit SHA; the remote's default branch
/// when `None`) into `dest`, which must be absent or empty. On error `dest` is untouched.
pub fn clone_git(
    url: &str,
    git_ref: Option<&str>,
    dest: &Path,
    opts: &CloneOptions,
) -> Result<(), WorkspaceError> {
    let checked = opts.policy.parse(url)?;
    if let Some(r) = git_ref {
        check_ref_syntax(r)?;
    }
    let now = Instant::now();
    // A duration too large to add means no deadline worth checking.
    let deadline = now
        .checked_add(opts.max_duration)
        .unwrap_or(now + Duration::from_secs(1 << 40));
    let shown_url = redact_url(url);
    let relay = match checked.transport() {
        GitTransport::File => None,
        GitTransport::Https | GitTransport::Git => {
            let targets = opts.policy.resolve_for_clone(&checked)?;
            Some(start_relay(&checked, targets, opts, deadline)?)
        }
    };
    let fetch_url = match (&relay, checked.transport()) {
        (Some(relay), GitTransport::Git) => {
            format!("git://{}{}", relay.addr(), checked.path_and_query())
        }
        _ => checked.as_str().to_string(),
    };
    let staging = staging_beside(dest)?;
    let repo =
        Repository::init(staging.path()).map_err(|e| git_error(&shown_url, &fetch_url, &e))?;
    let cloner = Cloner {
        repo: &repo,
        url: &fetch_url,
        origin: checked.as_str(),
        shown_url: &shown_url,
        opts,
        shallow: checked.transport() != GitTransport::File,
        proxy: match (&relay, checked.transport()) {
            (Some(relay), GitTransport::Https) => Some(format!("http://{}", relay.addr())),
            _ => None,
        },
        relay: relay.as_ref(),
        deadline,
    };
    cloner.run(git_ref)?;
    drop(repo);
    drop(relay);
    let finished = staging.path().to_path_buf();
    publish(staging, &finished, dest)
}

pub(super) fn start_relay(
    url: &GitUrl,
    targets: Vec<std::net::SocketAddr>,
    opts: &CloneOptions,
    deadline: Instant,
) -> Result<Relay, WorkspaceError> {
    let mode = match url.transport() {
        GitTransport::Https => RelayMode::Connect {
            host: url.host(),
            port: url.port(),
        },
        _ => RelayMode::Forward,
    };
    Relay::start(RelaySettings {
        mode,
        targets,
        idle: opts.idle_timeout,
        total: opts.max_duration,
        deadline,
    })
    .map_err(|e| WorkspaceError::io(Path::new("git relay"), e))
}

/// One clone in progress, in a fresh repository inside the staging folder.
struct Cloner<'a> {
    repo: &'a Repository,
    /// What libgit2 fetches: the checked URL, or for `git://` the relay's address.
    url: &'a str,
    /// The checked URL, recorded as `origin` for the agent.
    origin: &'a str,
    shown_url: &'a str,
    opts: &'a CloneOptions,
    /// False for `file://`, whose transport cannot fetch shallow.
    shallow: bool,
    /// The relay as libgit2's HTTP proxy (`https`).
    proxy: Option<String>,
    relay: Option<&'a Relay>,
    deadline: Instant,
}

/// Set by the transfer callback when it stops a fetch, to tell why.
#[derive(Default)]
struct AbortReason {
    too_large: Cell<bool>,
    timed_out: Cell<bool>,
}

impl Cloner<'_> {
    fn run(&self, git_ref: Option<&str>) -> Result<(), WorkspaceError> {
        let target = self.resolve(git_ref)?;
        let shown_ref = display_name(git_ref.unwrap_or("HEAD"));
        let commit_id = match &target {
            Target::Branch { name } => {
                let local = format!("refs/remotes/origin/{name}");
                self.fetch(&[format!("+refs/heads/{name}:{local}")], self.shallow)?;
                self.peel(&local, &shown_ref)?
            }
            Target::Ref { refname } => {
                self.fetch(&[format!("+{refname}:{refname}")], self.shallow)?;
                self.peel(refname, &shown_ref)?
            }
            Target::Commit { sha } => self.fetch_commit(sha, &shown_ref)?,
        };
        let commit = self
            .repo
            .find_commit(commit_id)
            .map_err(|e| self.error(&e))?;
        self.check_size(&commit)?;

        match &target {
            Target::Branch { name } => {
                self.repo
                    .branch(name, &commit, true)
                    .map_err(|e| self.error(&e))?;
                self.repo
                    .set_head(&format!("refs/heads/{name}"))
                    .map_err(|e| self.error(&e))?;
            }
            Target::Ref { .. } | Target::Commit { .. } => {
                self.repo
                    .set_head_detached(commit_id)
                    .map_err(|e| self.error(&e))?;
            }
        }
        self.repo
            .checkout_head(Some(CheckoutBuilder::new().force()))
            .map_err(|e| self.error(&e))?;
        self.repo
            .remote("origin", self.origin)
            .map_err(|e| self.error(&e))?;
        Ok(())
    }

    /// Asks the remote for its refs and decides what to fetch.
    fn resolve(&self, git_ref: Option<&str>) -> Result<Target, WorkspaceError> {
        let mut remote = self
            .repo
            .remote_anonymous(self.url)
            .map_err(|e| self.error(&e))?;
        let abort = AbortReason::default();
        let conn = remote
            .connect_auth(
                Direction::Fetch,
                Some(self.callbacks(&abort)),
                Some(self.proxy_options()),
            )
            .map_err(|e| self.error(&e))?;
        let heads: Vec<String> = conn
            .list()
            .map_err(|e| self.error(&e))?
            .iter()
            .map(|h| h.name().to_string())
            .collect();
        let has = |name: &str| heads.iter().any(|h| h == name);
        let Some(r) = git_ref else {
            let default = conn.default_branch().ok();
            let default = default.as_ref().and_then(|b| b.as_str().ok());
            return match default {
                Some(refname) if has(refname) => Ok(target_for(refname)),
                _ => Err(WorkspaceError::NoDefaultBranch {
                    url: self.shown_url.to_string(),
                }),
            };
        };
        let heads_ref = format!("refs/heads/{r}");
        let tags_ref = format!("refs/tags/{r}");
        if r.starts_with("refs/") && has(r) {
            Ok(target_for(r))
        } else if has(&heads_ref) {
            Ok(target_for(&heads_ref))
        } else if has(&tags_ref) {
            Ok(target_for(&tags_ref))
        } else if (4..=40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Target::Commit {
                sha: r.to_ascii_lowercase(),
            })
        } else {
            Err(self.ref_not_found(&display_name(r)))
        }
    }

    fn fetch(&self, refspecs: &[String], shallow: bool) -> Result<(), WorkspaceError> {
        let mut remote = self
            .repo
            .remote_anonymous(self.url)
            .map_err(|e| self.error(&e))?;
        let abort = AbortReason::default();
        let mut fetch_opts = FetchOptions::new();
        fetch_opts
            .remote_callbacks(self.callbacks(&abort))
            .proxy_options(self.proxy_options())
            .follow_redirects(RemoteRedirect::None)
            .download_tags(AutotagOption::None)
            .update_fetchhead(false);
        if shallow {
            fetch_opts.depth(1);
        }
        let fetched = remote.fetch(refspecs, Some(&mut fetch_opts), None);
        drop(fetch_opts);
        fetched.map_err(|e| {
            if abort.too_large.get() {
                WorkspaceError::RepoTooLarge {
                    limit: self.opts.max_bytes,
                }
            } else if abort.timed_out.get() {
                WorkspaceError::Clone {
                    url: self.shown_url.to_string(),
                    message: RelayFailure::Deadline(self.opts.max_duration).to_string(),
                }
            } else {
                self.error(&e)
            }
        })
    }

    /// A SHA by id at depth 1 if the server allows it, else everything and a lookup.
    fn fetch_commit(&self, sha: &str, shown_ref: &str) -> Result<Oid, WorkspaceError> {
        if sha.len() == 40 {
            match self.fetch(&[sha.to_string()], self.shallow) {
                Ok(()) => {
                    if let Ok(commit) = self.repo.find_commit_by_prefix(sha) {
                        return Ok(commit.id());
                    }
                }
                Err(WorkspaceError::Clone { message, .. }) => {
                    tracing::debug!(%message, "fetch by commit id refused; fetching all refs");
                }
                Err(other) => return Err(other),
            }
        }
        self.fetch(
            &[
                "+refs/heads/*:refs/remotes/origin/*".to_string(),
                "+refs/tags/*:refs/tags/*".to_string(),
            ],
            false,
        )?;
        self.repo
            .find_object_by_prefix(sha, None)
            .and_then(|object| object.peel_to_commit())
            .map(|commit| commit.id())
            .map_err(|_| self.ref_not_found(shown_ref))
    }

    fn peel(&self, refname: &str, shown_ref: &str) -> Result<Oid, WorkspaceError> {
        self.repo
            .find_reference(refname)
            .and_then(|r| r.peel_to_commit())
            .map(|c| c.id())
            .map_err(|_| self.ref_not_found(shown_ref))
    }

    /// Sums the blob sizes of the tree from the object headers, before a single file is
    /// written: a small pack can hold a huge, highly compressible checkout.
    fn check_size(&self, commit: &git2::Commit<'_>) -> Result<(), WorkspaceError> {
        let tree = commit.tree().map_err(|e| self.error(&e))?;
        let odb = self.repo.odb().map_err(|e| self.error(&e))?;
        let (max_bytes, max_files) = (self.opts.max_bytes, self.opts.max_files);
        let (mut bytes, mut files) = (0u64, 0u64);
        let mut failure: Option<WorkspaceError> = None;
        let walked = tree.walk(TreeWalkMode::PreOrder, |_, entry| {
            if entry.kind() != Some(ObjectType::Blob) {
                return TreeWalkResult::Ok;
            }
            files += 1;
            match odb.read_header(entry.id()) {
                Ok((size, _)) => bytes += size as u64,
                Err(e) => {
                    failure = Some(self.error(&e));
                    return TreeWalkResult::Abort;
                }
            }
            if files > max_files {
                failure = Some(WorkspaceError::RepoTooManyFiles { limit: max_files });
                TreeWalkResult::Abort
            } else if bytes > max_bytes {
                failure = Some(WorkspaceError::RepoTooLarge { limit: max_bytes });
                TreeWalkResult::Abort
            } else {
                TreeWalkResult::Ok
            }
        });
        if let Some(failure) = failure {
            return Err(failure);
        }
        walked.map_err(|e| self.error(&e))
    }

    /// Stops a transfer past the byte cap or the deadline.
    fn callbacks<'cb>(&self, abort: &'cb AbortReason) -> RemoteCallbacks<'cb> {
        let max_bytes = self.opts.max_bytes;
        let deadline = self.deadline;
        let mut callbacks = RemoteCallbacks::new();
        callbacks.transfer_progress(move |progress| {
            if progress.received_bytes() as u64 > max_bytes {
                abort.too_large.set(true);
                return false;
            }
            if Instant::now() > deadline {
                abort.timed_out.set(true);
                return false;
            }
            true
        });
        callbacks
    }

    /// libgit2's HTTP proxy: the relay for `https`, none otherwise (never the
    /// environment's `http_proxy`, which would bypass the relay).
    fn proxy_options(&self) -> ProxyOptions<'static> {
        let mut options = ProxyOptions::new();
        if let Some(proxy) = &self.proxy {
            options.url(proxy);
        }
        options
    }

    fn ref_not_found(&self, shown_ref: &str) -> WorkspaceError {
        WorkspaceError::RefNotFound {
            url: self.shown_url.to_string(),
            git_ref: shown_ref.to_string(),
        }
    }

    /// libgit2's error, or the relay's reason when the relay cut the clone off (libgit2
    /// then only saw a connection end).
    fn error(&self, e: &git2::Error) -> WorkspaceError {
        if let Some(failure) = self.relay.and_then(Relay::failure) {
            return WorkspaceError::Clone {
                url: self.shown_url.to_string(),
                message: failure.to_string(),
            };
        }
        git_error(self.shown_url, self.url, e)
    }
}

fn target_for(refname: &str) -> Target {
    match refname.strip_prefix("refs/heads/") {
        Some(name) => Target::Branch {
            name: name.to_string(),
        },
        None => Target::Ref {
            refname: refname.to_string(),
        },
    }
}

/// Refuses refs that are not valid names (which also keeps refspec syntax such as `:`,
/// `*` or a leading `+` out of the fetch).
fn check_ref_syntax(git_ref: &str) -> Result<(), WorkspaceError> {
    let full = if git_ref.starts_with("refs/") {
        git_ref.to_string()
    } else {
        format!("refs/heads/{git_ref}")
    };
    if git_ref.len() > 255 || git_ref.starts_with(['-', '+']) || !Reference::is_valid_name(&full) {
        return Err(WorkspaceError::InvalidRef {
            git_ref: display_name(git_ref),
        });
    }
    Ok(())
}

/// libgit2's message, with the URL's credentials (if any) masked and the usual causes
/// named.
fn git_error(shown_url: &str, raw_url: &str, e: &git2::Error) -> WorkspaceError {
    let message = match e.code() {
        git2::ErrorCode::Auth => {
            "the repository asks for credentials; only public repositories can be cloned"
                .to_string()
        }
        git2::ErrorCode::Certificate => {
            format!(
                "the server's TLS certificate was not accepted ({})",
                e.message()
            )
        }
        _ => e.message().to_string(),
    };
    WorkspaceError::Clone {
        url: shown_url.to_string(),
        message: message.replace(raw_url, shown_url),
    }
}

/// The URL as it may be shown and stored: without password, and without the user name
/// of http(s) URLs (where it is usually a token). ssh user names (`git@`) stay.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        return url.to_string();
    };
    if parsed.password().is_none() && parsed.username().is_empty() {
        return url.to_string();
    }
    let _ = parsed.set_password(None);
    if matches!(parsed.scheme(), "http" | "https") {
        let _ = parsed.set_username("");
    }
    parsed.into()
}
