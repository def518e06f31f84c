//! `[sandbox] allow_hosts` and `host_addresses`, checked when the server starts.
//!
//! The list reaches each agent as `AGENT_NETWORK=allow=HOST,...`, and the agent parses
//! it before anything else: an entry it cannot read makes every launch exit 2 (bad
//! input), and a pinned name no entry allows is silently never used. Checking the two
//! once, with the entry named, turns a fleet of failed tasks into one refused start.

use tools::net_guard::allow_list::{AllowList, normalize_name};
use url::Host;

use super::sandbox::RunSandboxConfig;

/// An entry of `[sandbox] allow_hosts` or `[sandbox] host_addresses` that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[sandbox] {setting} entry `{entry}`: {reason}")]
pub struct InvalidSandboxHost {
    /// `allow_hosts` or `host_addresses`.
    pub setting: &'static str,
    pub entry: String,
    pub reason: String,
}

impl RunSandboxConfig {
    /// Refuses an allow-list entry the agents could not parse, and a pinned address
    /// for a name that is not a host name or that no entry allows.
    pub fn validate_hosts(&self) -> Result<(), InvalidSandboxHost> {
        let allow_hosts = |entry: &str, reason: String| InvalidSandboxHost {
            setting: "allow_hosts",
            entry: entry.to_string(),
            reason,
        };
        for entry in &self.allow_hosts {
            // The entries travel joined with commas (`allow=a,b`).
            if entry.contains(',') || entry.trim().is_empty() {
                return Err(allow_hosts(
                    entry,
                    "an entry is one host name, IP address or host:port (no commas, not empty)"
                        .to_string(),
                ));
            }
            AllowList::parse(std::slice::from_ref(entry))
                .map_err(|err| allow_hosts(entry, err.reason))?;
        }
        let allowed = AllowList::parse(&self.allow_hosts)
            .map_err(|err| allow_hosts(&err.entry, err.reason))?;
        for name in self.host_addresses.keys() {
            let pinned = |reason: String| InvalidSandboxHost {
                setting: "host_addresses",
                entry: name.clone(),
                reason,
            };
            match Host::parse(name.trim()) {
                Ok(Host::Domain(_)) if !name.contains(':') => {}
                _ => {
                    return Err(pinned(
                        "a pinned address is for a host name (no port, not an IP address)"
                            .to_string(),
                    ));
                }
            }
            if !allowed.names_host(&normalize_name(name.trim())) {
                return Err(pinned(
                    "no allow_hosts entry names this host, so the pin would never be used"
                        .to_string(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> RunSandboxConfig {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn hosts_ports_addresses_and_their_pins_pass() {
        let config = config(
            "allow_hosts = [\"registry.npmjs.org\", \"mirror.internal:8080\", \"10.0.0.5\", \"[::1]:9000\"]\n\
             [host_addresses]\n\"Mirror.Internal.\" = \"10.0.0.7\"\n",
        );
        assert_eq!(config.validate_hosts(), Ok(()));
        assert_eq!(RunSandboxConfig::default().validate_hosts(), Ok(()));
    }

    #[test]
    fn an_allow_hosts_entry_the_agent_cannot_parse_is_named() {
        for bad in [
            "mirror:http",
            "a.example,b.example",
            "has space.example",
            " ",
            "[::1",
        ] {
            let config = RunSandboxConfig {
                allow_hosts: vec!["fine.example".to_string(), bad.to_string()],
                ..RunSandboxConfig::default()
            };
            let err = config.validate_hosts().unwrap_err();
            assert_eq!(err.setting, "allow_hosts");
            assert_eq!(err.entry, bad);
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn a_pin_for_an_address_a_port_or_an_unlisted_name_is_named() {
        for (bad, why) in [
            ("10.0.0.5", "host name"),
            ("mirror.internal:8080", "host name"),
            ("other.internal", "no allow_hosts entry"),
        ] {
            let config = config(&format!(
                "allow_hosts = [\"mirror.internal:8080\", \"10.0.0.5\"]\n\
                 [host_addresses]\n\"{bad}\" = \"10.0.0.7\"\n"
            ));
            let err = config.validate_hosts().unwrap_err();
            assert_eq!(err.setting, "host_addresses", "{err}");
            assert_eq!(err.entry, bad);
            assert!(err.reason.contains(why), "{err}");
        }
    }
}
