//! The shell sandbox's allow-list: commands reach the hosts the run names, and nothing
//! private.
//!
//! A run started with `--network allow=host1,host2` lets its commands reach those hosts
//! (any port, or the one an entry names: `host:port`) through the proxy, and refuses the
//! rest. The addresses are checked after resolution, by the proxy that connects: a name
//! that resolves to a loopback, private, link-local or metadata address is refused even
//! when listed (an allow-list of public names must not become a way into the machine's
//! own network). An operator who does want a listed name to reach a private service pins
//! its address in the configuration (`[tools.sandbox.host_addresses]`): a pinned name
//! connects to that address, without DNS.
//!
//! Where the run has no network of its own (`agent-rs job` in the embedded runner's
//! sandbox), an allowed connection goes on through the runner's proxy
//! ([`HostAllowList::through`]), which resolves the name and refuses private addresses
//! itself (with the pinning its own configuration holds); here only what needs no DNS is
//! refused (address literals, metadata names).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use url::{Host, Url};

use super::EgressCheck;
use crate::net_guard::{
    AllowList, HostKey, allow_list::normalize_name, classify, is_metadata_name,
};

/// The hosts a run's commands may reach.
#[derive(Debug, Clone)]
pub struct HostAllowList {
    allow: AllowList,
    /// The entries as given, for refusals.
    listed: Vec<String>,
    pinned: BTreeMap<String, IpAddr>,
    /// The proxy allowed connections go through, when the run has no network.
    upstream: Option<PathBuf>,
}

/// Why the proxy never connects to some addresses, said after each such refusal.
const NEVER: &str = "the sandbox's proxy never connects to loopback, private, link-local or \
                     metadata addresses";

impl HostAllowList {
    /// The list from its entries (`host` or `host:port`) and the pinned addresses; the
    /// error names the entry that is not a host.
    pub fn new(hosts: &[String], pinned: &BTreeMap<String, IpAddr>) -> Result<Self, String> {
        let allow = AllowList::parse(hosts).map_err(|err| {
            format!(
                "network allow-list entry `{}` is not a host name, IP address or host:port: {}",
                err.entry, err.reason
            )
        })?;
        Ok(Self {
            allow,
            listed: hosts.iter().map(|host| host.trim().to_string()).collect(),
            pinned: pinned
                .iter()
                .map(|(name, ip)| (normalize_name(name), *ip))
                .collect(),
            upstream: None,
        })
    }

    /// The same list, its allowed connections made through the proxy listening on
    /// `socket` (the run's runner's) instead of directly.
    pub fn through(mut self, socket: Option<PathBuf>) -> Self {
        self.upstream = socket;
        self
    }

    fn refuse(&self, host: &str, port: u16) -> Option<String> {
        let key = host_key(host);
        if !self.allow.allows(&key, Some(port)) {
            return Some(format!(
                "the sandbox lets commands reach only the hosts this run allows ({}); \
                 {host}:{port} is not one of them",
                self.listed.join(", ")
            ));
        }
        match key {
            // Through an upstream, nothing is resolved here: refuse what needs no DNS.
            HostKey::Ip(ip) if self.upstream.is_some() => {
                classify(ip).map(|range| format!("{host} is {range}; {NEVER}"))
            }
            HostKey::Name(name) if self.upstream.is_some() && is_metadata_name(&name) => {
                Some(format!("{name} is a cloud metadata service name; {NEVER}"))
            }
            _ => None,
        }
    }
}

fn host_key(host: &str) -> HostKey {
    let host = host.trim_matches(['[', ']']);
    match host.parse::<IpAddr>() {
        Ok(ip) => HostKey::Ip(ip),
        Err(_) => match Host::parse(host) {
            Ok(host) => HostKey::from_url_host(host),
            Err(_) => HostKey::Name(normalize_name(host)),
        },
    }
}

#[async_trait::async_trait]
impl EgressCheck for HostAllowList {
    fn refuse_tunnel(&self, host: &str, port: u16) -> Option<String> {
        self.refuse(host, port)
    }

    fn refuse_request(&self, url: &Url) -> Option<String> {
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return Some("the request names no host".to_string());
        };
        self.refuse(host, port)
    }

    fn upstream(&self) -> Option<&Path> {
        self.upstream.as_deref()
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let name = match host_key(host) {
            HostKey::Ip(ip) => {
                return match classify(ip) {
                    Some(range) => Err(format!("{host} is {range}; {NEVER}")),
                    None => Ok(vec![SocketAddr::new(ip, port)]),
                };
            }
            HostKey::Name(name) => name,
        };
        if let Some(ip) = self.pinned.get(&name) {
            return Ok(vec![SocketAddr::new(*ip, port)]);
        }
        if is_metadata_name(&name) {
            return Err(format!("{name} is a cloud metadata service name; {NEVER}"));
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|err| format!("cannot resolve {name}: {err}"))?
            .collect();
        if let Some((ip, range)) = addresses
            .iter()
            .find_map(|addr| classify(addr.ip()).map(|range| (addr.ip(), range)))
        {
            return Err(format!("{name} resolves to {ip}, {range}; {NEVER}"));
        }
        if addresses.is_empty() {
            return Err(format!("cannot resolve {name}: the name has no addresses"));
        }
        Ok(addresses)
    }
}
