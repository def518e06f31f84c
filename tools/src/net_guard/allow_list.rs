//! The operator's exceptions to the address checks: `tools.call_api.allow_hosts`.
//!
//! An entry names a host as written in URLs (a DNS name or an IP literal), optionally
//! with a port: `localhost`, `localhost:8080`, `10.0.0.5`, `[::1]:9000`, `::1`. A request
//! matches when its host is the same and, if the entry has a port, its port too. Names
//! match names and addresses match addresses: allowing `127.0.0.1` does not allow
//! `localhost`.

use std::net::IpAddr;

use url::Host;

/// A URL host in the form the allow list compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    /// Lower case, without a trailing dot.
    Name(String),
    Ip(IpAddr),
}

impl HostKey {
    pub fn from_url_host<S: AsRef<str>>(host: Host<S>) -> Self {
        match host {
            Host::Domain(name) => HostKey::Name(normalize_name(name.as_ref())),
            Host::Ipv4(ip) => HostKey::Ip(IpAddr::V4(ip)),
            Host::Ipv6(ip) => HostKey::Ip(IpAddr::V6(ip)),
        }
    }
}

/// How names are compared: DNS is case-insensitive and `example.com.` is `example.com`.
pub fn normalize_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowEntry {
    host: HostKey,
    port: Option<u16>,
}

/// The parsed `allow_hosts` list.
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    entries: Vec<AllowEntry>,
}

/// An `allow_hosts` entry that is not a host or `host:port`.
#[derive(Debug, thiserror::Error)]
#[error(
    "tools.call_api.allow_hosts entry `{entry}` is not a host name, IP address or host:port: {reason}"
)]
pub struct InvalidAllowEntry {
    pub entry: String,
    pub reason: String,
}

impl AllowList {
    pub fn parse(entries: &[String]) -> Result<Self, InvalidAllowEntry> {
        let entries = entries
            .iter()
            .map(|entry| {
                parse_entry(entry.trim()).map_err(|reason| InvalidAllowEntry {
                    entry: entry.clone(),
                    reason,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { entries })
    }

    /// Whether a request to `host` on `port` is exempt from the address checks.
    pub fn allows(&self, host: &HostKey, port: Option<u16>) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.host == *host && (entry.port.is_none() || entry.port == port))
    }

    /// Whether any entry names `name`, whatever its port. The DNS resolver sees names
    /// without ports, so this is the most it can know.
    pub fn names_host(&self, name: &str) -> bool {
        self.entries
            .iter()
            .any(|entry| matches!(&entry.host, HostKey::Name(allowed) if allowed == name))
    }
}

fn parse_entry(text: &str) -> Result<AllowEntry, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(AllowEntry {
            host: HostKey::Ip(ip),
            port: None,
        });
    }
    let (host, port) = split_port(text)?;
    let host = Host::parse(host).map_err(|err| err.to_string())?;
    Ok(AllowEntry {
        host: HostKey::from_url_host(host),
        port,
    })
}

/// Splits `host:port` / `[v6]:port`; a bare host has no port.
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => {
                let rest = &text[end + 1..];
                match rest.strip_prefix(':') {
                    Some(port) => (&text[..=end], Some(port)),
                    None if rest.is_empty() => (&text[..=end], None),
                    None => return Err(format!("unexpected `{rest}` after the address")),
                }
            }
            None => return Err("`[` without a closing `]`".into()),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let port = port
        .map(|port| {
            port.parse::<u16>()
                .map_err(|_| format!("`{port}` is not a port number"))
        })
        .transpose()?;
    Ok((host, port))
}

#[cfg(test)]
#[path = "allow_list_tests.rs"]
mod tests;
