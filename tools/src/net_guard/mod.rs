//! The SSRF guard: which hosts a model-driven HTTP request may reach.
//!
//! `call_api` lets a model send HTTP requests from wherever the agent runs, often inside
//! a cluster, next to services that trust their network and a metadata endpoint that
//! hands out cloud credentials. The guard refuses loopback, private, link-local,
//! metadata and other special addresses (see [`ip_class`]) unless the operator listed
//! the host in `tools.call_api.allow_hosts` (see [`allow_list`]).
//!
//! Addresses are checked after DNS resolution, by the resolver the HTTP client connects
//! with ([`GuardedResolver`]), so a public name pointing at 127.0.0.1 is caught and the
//! addresses checked are the ones connected to (no second lookup an attacker's DNS could
//! answer differently). IP-literal URLs never reach a resolver; [`HostPolicy::check_url`]
//! checks them, and the scheme, before every request, redirects included.
//!
//! The resolver sees names without ports, so it trusts a name the allow list names with
//! any port; for a request to such a name on a port not listed, `check_url` resolves and
//! checks the name itself first. That leaves a re-resolution window only for names the
//! operator chose to trust.

pub mod allow_list;
pub mod ip_class;
mod resolver;

use std::net::{IpAddr, SocketAddr};

pub use allow_list::{AllowList, HostKey, InvalidAllowEntry};
pub use ip_class::{ForbiddenRange, classify, is_metadata_name};
pub use resolver::GuardedResolver;
use url::Url;

/// Where the operator lifts the guard; named in every refusal.
const ALLOW_SETTING: &str = "tools.call_api.allow_hosts";

/// Why a URL was refused. Messages name the host and the reason, never a header or body.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GuardError {
    #[error("refused: `{scheme}:` URLs are not allowed; only http and https URLs can be called")]
    Scheme { scheme: String },

    #[error("refused: the URL has no host; give an absolute URL such as https://example.com/path")]
    NoHost,

    #[error("refused: `{host}` is {range}; add it to {ALLOW_SETTING} to allow it")]
    Address { host: String, range: ForbiddenRange },

    #[error(
        "refused: `{host}` resolves to {ip}, {range}; add `{host}` to {ALLOW_SETTING} to allow it"
    )]
    ResolvedAddress {
        host: String,
        ip: IpAddr,
        range: ForbiddenRange,
    },

    #[error(
        "refused: `{host}` is a cloud metadata service name; add it to {ALLOW_SETTING} to allow it"
    )]
    MetadataName { host: String },

    #[error("could not resolve `{host}`: {message}; check the host name")]
    Resolve { host: String, message: String },
}

/// The allow list plus the address rules; shared by the pre-request check and the
/// resolver.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    allow: AllowList,
}

impl HostPolicy {
    pub fn new(allow_hosts: &[String]) -> Result<Self, InvalidAllowEntry> {
        Ok(Self {
            allow: AllowList::parse(allow_hosts)?,
        })
    }

    /// Checks a URL before a request (or a redirect) is sent to it: the scheme, an IP
    /// literal host, a metadata host name, and the addresses of a name the resolver would
    /// trust only because it is allowed on another port.
    pub async fn check_url(&self, url: &Url) -> Result<(), GuardError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(GuardError::Scheme {
                scheme: url.scheme().to_string(),
            });
        }
        let host = url.host().ok_or(GuardError::NoHost)?;
        let key = HostKey::from_url_host(host);
        if self.allow.allows(&key, url.port_or_known_default()) {
            return Ok(());
        }
        match key {
            HostKey::Ip(ip) => match classify(ip) {
                Some(range) => Err(GuardError::Address {
                    host: url.host_str().unwrap_or_default().to_string(),
                    range,
                }),
                None => Ok(()),
            },
            HostKey::Name(name) => {
                if is_metadata_name(&name) {
                    return Err(GuardError::MetadataName { host: name });
                }
                if self.allow.names_host(&name) {
                    self.resolve(&name, true).await?;
                }
                Ok(())
            }
        }
    }

    /// Resolves `name` for a connection. Unless the allow list names it, every address
    /// must be outside the forbidden ranges: one bad address refuses the name, since the
    /// client may connect to any of them.
    pub async fn resolve_for_connect(&self, name: &str) -> Result<Vec<SocketAddr>, GuardError> {
        let name = allow_list::normalize_name(name);
        let enforce = !self.allow.names_host(&name);
        if enforce && is_metadata_name(&name) {
            return Err(GuardError::MetadataName { host: name });
        }
        self.resolve(&name, enforce).await
    }

    async fn resolve(&self, name: &str, enforce: bool) -> Result<Vec<SocketAddr>, GuardError> {
        let resolve_error = |message: String| GuardError::Resolve {
            host: name.to_string(),
            message,
        };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, 0))
            .await
            .map_err(|err| resolve_error(err.to_string()))?
            .collect();
        if addrs.is_empty() {
            return Err(resolve_error("the name has no addresses".into()));
        }
        if enforce {
            for addr in &addrs {
                if let Some(range) = classify(addr.ip()) {
                    return Err(GuardError::ResolvedAddress {
                        host: name.to_string(),
                        ip: addr.ip(),
                        range,
                    });
                }
            }
        }
        Ok(addrs)
    }
}

/// The guard's refusal inside an HTTP client error, if that is what stopped it.
pub fn find_guard_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a GuardError> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<GuardError>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
