//! Which git URLs a task may name.
//!
//! The worker clones the URL from inside our network, so a URL is as dangerous as an
//! HTTP request made on the client's behalf: `file://` would read the server's own disk,
//! and a loopback, private or metadata host would reach services that trust the network.
//! Only `https`, `ssh` and `git` URLs (and the scp-like `git@host:org/repo`) pass, and
//! their host must be public after DNS resolution, unless the operator allow-listed it
//! (`api.allow_git_hosts`). The address rules are the agent's SSRF guard's
//! ([`tools::net_guard`]), so both refuse the same ranges.
//!
//! Resolution here is a check at submission time: the clone resolves again later.
//! Closing that window (pinning the address) is the worker's business; refusing early
//! gives the client a clear 4xx instead of a failed task.

use tools::net_guard::{AllowList, HostKey, classify, is_metadata_name};
use url::{Host, Url};

const MAX_URL_LEN: usize = 2048;
const ALLOW_SETTING: &str = "api.allow_git_hosts";

/// The rules a git URL is checked against.
#[derive(Debug, Clone, Default)]
pub struct GitUrlPolicy {
    pub allow: AllowList,
    /// Test-only: accept `file://` URLs.
    pub allow_file: bool,
}

/// Checks `raw`; the error is the client-facing reason.
pub async fn check_git_url(policy: &GitUrlPolicy, raw: &str) -> Result<(), String> {
    if raw.trim().is_empty() {
        return Err("git_url is empty; give an https, ssh or git URL".into());
    }
    if raw.len() > MAX_URL_LEN {
        return Err(format!("git_url is longer than {MAX_URL_LEN} characters"));
    }
    if raw.starts_with('-') || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(
            "git_url must not start with `-` or contain spaces or control characters".into(),
        );
    }
    let (host, port) = match raw.split_once("://") {
        Some(_) => {
            let url =
                Url::parse(raw).map_err(|err| format!("git_url is not a valid URL: {err}"))?;
            match url.scheme() {
                "https" | "ssh" | "git" => {}
                "file" if policy.allow_file => return Ok(()),
                other => {
                    return Err(format!(
                        "git_url scheme `{other}` is not allowed; use https://, ssh:// or git:// \
                         (or git@host:org/repo)"
                    ));
                }
            }
            let host = url
                .host()
                .ok_or("git_url has no host; give e.g. https://github.com/org/repo.git")?
                .to_owned();
            (host, url.port_or_known_default())
        }
        None => (scp_like_host(raw)?, Some(22)),
    };
    check_host(policy, host, port).await
}

/// The host of `[user@]host:path`, git's scp-like syntax.
fn scp_like_host(raw: &str) -> Result<Host<String>, String> {
    let not_a_url = || {
        "git_url is not a URL; use https://host/org/repo.git, ssh://host/org/repo.git, \
         git://host/org/repo.git or git@host:org/repo.git"
            .to_string()
    };
    let (before, path) = raw.split_once(':').ok_or_else(not_a_url)?;
    if before.contains('/') || path.is_empty() || path.starts_with(':') {
        // `dir/x:y` is a local path to git, and `ext::cmd` runs a command.
        return Err(not_a_url());
    }
    let host = before.rsplit_once('@').map_or(before, |(_, host)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let valid = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if !valid {
        return Err(not_a_url());
    }
    Host::parse(host).map_err(|err| format!("git_url host `{host}` is invalid: {err}"))
}

async fn check_host(
    policy: &GitUrlPolicy,
    host: Host<String>,
    port: Option<u16>,
) -> Result<(), String> {
    let shown = host.to_string();
    let key = HostKey::from_url_host(host);
    if policy.allow.allows(&key, port) {
        return Ok(());
    }
    let refuse = |what: String| {
        format!("git_url host `{shown}` is {what}; ask the operator to add it to {ALLOW_SETTING}")
    };
    match key {
        HostKey::Ip(ip) => match classify(ip) {
            Some(range) => Err(refuse(range.to_string())),
            None => Ok(()),
        },
        HostKey::Name(name) => {
            if is_metadata_name(&name) {
                return Err(refuse("a cloud metadata service".into()));
            }
            let addrs = tokio::net::lookup_host((name.as_str(), port.unwrap_or(443)))
                .await
                .map_err(|err| format!("git_url host `{shown}` does not resolve: {err}"))?;
            for addr in addrs {
                if let Some(range) = classify(addr.ip()) {
                    return Err(refuse(format!("resolving to {}, {range}", addr.ip())));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
#[path = "git_url_tests.rs"]
mod tests;
