//! Pushes a branch back to the repository a workspace was cloned from, by the clone's
//! rules: the URL checked by [`GitUrlPolicy`](super::GitUrlPolicy) again, and the network
//! reached only through the relay ([`super::git_relay`]) that connects to the checked
//! addresses alone and cuts stalled or overdue connections.
//!
//! The token is given to libgit2 only when the server asks for credentials, as the
//! password of `x-access-token` (what GitHub and its Enterprise servers accept for
//! tokens); it never goes into a URL or a remote's config, so no error message can show
//! it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use git2::{
    Cred, CredentialType, ProxyOptions, PushOptions, RemoteCallbacks, RemoteRedirect, Repository,
};
use secrecy::{ExposeSecret, SecretString};

use super::CloneOptions;
use super::git::{redact_url, start_relay};
use super::git_relay::Relay;
use super::git_url::GitTransport;

/// Why a push failed; never holds the token.
#[derive(Debug, thiserror::Error)]
#[error("pushing to {url} failed: {message}")]
pub struct PushError {
    pub url: String,
    pub message: String,
}

/// Pushes the local `refname` to the same name on `url`, replacing what is there (the
/// branch is the task's own). `opts` gives the URL policy and the time limits.
pub fn push_branch(
    repo: &Repository,
    url: &str,
    refname: &str,
    token: Option<&SecretString>,
    opts: &CloneOptions,
) -> Result<(), PushError> {
    let shown_url = redact_url(url);
    let fail = |message: String| PushError {
        url: shown_url.clone(),
        message,
    };
    let checked = opts.policy.parse(url).map_err(|e| fail(e.to_string()))?;
    let now = Instant::now();
    let deadline = now
        .checked_add(opts.max_duration)
        .unwrap_or(now + Duration::from_secs(1 << 40));
    let relay: Option<Relay> = match checked.transport() {
        GitTransport::File => None,
        GitTransport::Https | GitTransport::Git => {
            let targets = opts
                .policy
                .resolve_for_clone(&checked)
                .map_err(|e| fail(e.to_string()))?;
            Some(start_relay(&checked, targets, opts, deadline).map_err(|e| fail(e.to_string()))?)
        }
    };
    let push_url = match (&relay, checked.transport()) {
        (Some(relay), GitTransport::Git) => {
            format!("git://{}{}", relay.addr(), checked.path_and_query())
        }
        _ => checked.as_str().to_string(),
    };
    let mut remote = repo
        .remote_anonymous(&push_url)
        .map_err(|e| fail(e.message().to_string()))?;
    let asked = Cell::new(0u32);
    let rejected: std::cell::RefCell<Option<String>> = std::cell::RefCell::new(None);
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(|_url, _user, allowed| {
        asked.set(asked.get() + 1);
        match token {
            // A second ask means the first answer was refused: stop instead of looping.
            Some(token)
                if asked.get() == 1 && allowed.contains(CredentialType::USER_PASS_PLAINTEXT) =>
            {
                Cred::userpass_plaintext("x-access-token", token.expose_secret())
            }
            _ => Err(git2::Error::from_str("no usable credentials")),
        }
    });
    callbacks.push_update_reference(|name, status| {
        if let Some(status) = status {
            *rejected.borrow_mut() = Some(format!("the server refused {name}: {status}"));
        }
        Ok(())
    });
    let mut proxy = ProxyOptions::new();
    if let (Some(relay), GitTransport::Https) = (&relay, checked.transport()) {
        proxy.url(&format!("http://{}", relay.addr()));
    }
    let mut push_opts = PushOptions::new();
    push_opts
        .remote_callbacks(callbacks)
        .proxy_options(proxy)
        .follow_redirects(RemoteRedirect::None);
    let pushed = remote.push(&[format!("+{refname}:{refname}")], Some(&mut push_opts));
    drop(push_opts);
    if let Err(e) = pushed {
        if let Some(failure) = relay.as_ref().and_then(Relay::failure) {
            return Err(fail(failure.to_string()));
        }
        let message = match e.code() {
            git2::ErrorCode::Auth => "the git server refused the credentials (does the token \
                                      allow pushing to this repository?)"
                .to_string(),
            _ if asked.get() > 1 => "the git server refused the credentials (does the token \
                                     allow pushing to this repository?)"
                .to_string(),
            _ => e.message().replace(&push_url, &shown_url),
        };
        return Err(fail(message));
    }
    if let Some(rejected) = rejected.into_inner() {
        return Err(fail(rejected));
    }
    Ok(())
}
