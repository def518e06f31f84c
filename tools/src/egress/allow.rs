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

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

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
}

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
        })
    }

    fn refuse(&self, host: &str, port: u16) -> Option<String> {
        let key = host_key(host);
        (!self.allow.allows(&key, Some(port))).then(|| {
            format!(
                "the sandbox lets commands reach only the hosts this run allows ({}); \
                 {host}:{port} is not one of them",
                self.listed.join(", ")
            )
        })
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

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        let never = "the sandbox's proxy never connects to loopback, private, link-local or \
                     metadata addresses";
        let name = match host_key(host) {
            HostKey::Ip(ip) => {
                return match classify(ip) {
                    Some(range) => Err(format!("{host} is {range}; {never}")),
                    None => Ok(vec![SocketAddr::new(ip, port)]),
                };
            }
            HostKey::Name(name) => name,
        };
        if let Some(ip) = self.pinned.get(&name) {
            return Ok(vec![SocketAddr::new(*ip, port)]);
        }
        if is_metadata_name(&name) {
            return Err(format!("{name} is a cloud metadata service name; {never}"));
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
            .await
            .map_err(|err| format!("cannot resolve {name}: {err}"))?
            .collect();
        if let Some((ip, range)) = addresses
            .iter()
            .find_map(|addr| classify(addr.ip()).map(|range| (addr.ip(), range)))
        {
            return Err(format!("{name} resolves to {ip}, {range}; {never}"));
        }
        if addresses.is_empty() {
            return Err(format!("cannot resolve {name}: the name has no addresses"));
        }
        Ok(addresses)
    }
}
