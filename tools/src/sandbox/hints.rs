//! Telling the model what the sandbox refused, in words it can act on.
//!
//! A blocked action fails fast inside the sandbox (a read-only file system, an
//! unreachable network, a refused fork), but the program's own message does not say
//! that a sandbox is why, and a model tends to retry or work around the symptom. So the
//! shell tool's result gets a note naming the rule, from what the command printed.

use super::{NetworkAccess, SandboxSummary};

/// What programs print when the network is missing (curl, wget, git, pip, cargo, npm,
/// Python, glibc's resolver).
const NETWORK_SIGNS: [&str; 9] = [
    "Could not resolve host",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Name or service not known",
    "Couldn't connect to server",
    "Could not resolve",
    "getaddrinfo",
    "No address associated with hostname",
    "network unreachable",
];

/// The notes for a command's output (`stderr` and `stdout` as text) under `sandbox`;
/// `process_cap_hit` when a fork was refused at the process cap.
pub(crate) fn blocked_action_notes(
    sandbox: &SandboxSummary,
    output: &str,
    process_cap_hit: bool,
) -> Vec<String> {
    let mut notes = Vec::new();
    if sandbox.mode == "off" {
        return notes;
    }
    if output.contains("Read-only file system") {
        notes.push(
            "the sandbox lets commands write only inside the workspace (its .git excepted) and \
             /tmp (private: no other run sees it); everything else is read-only, so write your \
             files in the workspace"
                .to_string(),
        );
    }
    if sandbox.mode == "landlock" && output.contains("Permission denied") {
        notes.push(
            "the sandbox (Landlock) lets commands write only inside the workspace and in \
             $TMPDIR (private: no other run sees it; /tmp itself is closed), and hides credential \
             folders and the service's data; a \"Permission denied\" outside those is the \
             sandbox, so work in the workspace"
                .to_string(),
        );
    }
    if sandbox.network == NetworkAccess::Off && NETWORK_SIGNS.iter().any(|s| output.contains(s)) {
        notes.push(
            "this run has no network: the sandbox refuses every connection (the run would \
             have to be started with `--network on`); work with what is in the workspace"
                .to_string(),
        );
    }
    if sandbox.network == NetworkAccess::Allow
        && (NETWORK_SIGNS.iter().any(|s| output.contains(s))
            || output.contains("CONNECT tunnel failed, response 403"))
    {
        notes.push(format!(
            "this run reaches only the hosts of its allow-list ({}), through the proxy named              in HTTP_PROXY/HTTPS_PROXY: a program that ignores those finds no network, and              the proxy refuses other hosts and private addresses (403, with the reason)",
            sandbox.allowed_hosts.join(", ")
        ));
    }
    if process_cap_hit {
        let cap = sandbox
            .max_processes
            .map_or_else(|| "its".to_string(), |max| format!("the {max}"));
        notes.push(format!(
            "the command reached {cap} process limit of the sandbox and a fork was refused; \
             everything it started was killed"
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bwrap(network: NetworkAccess) -> SandboxSummary {
        SandboxSummary {
            mode: "bwrap".into(),
            network,
            allowed_hosts: Vec::new(),
            max_processes: Some(64),
        }
    }

    #[test]
    fn a_read_only_write_is_explained() {
        let notes = blocked_action_notes(
            &bwrap(NetworkAccess::Off),
            "touch: cannot touch '/etc/x': Read-only file system",
            false,
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("only inside the workspace"), "{notes:?}");
    }

    #[test]
    fn a_refused_connection_is_explained_only_when_the_network_is_off() {
        let output = "curl: (6) Could not resolve host: example.com";
        let notes = blocked_action_notes(&bwrap(NetworkAccess::Off), output, false);
        assert!(notes.iter().any(|n| n.contains("no network")), "{notes:?}");
        assert!(blocked_action_notes(&bwrap(NetworkAccess::On), output, false).is_empty());
    }

    #[test]
    fn under_an_allow_list_a_refusal_names_the_hosts() {
        let summary = SandboxSummary {
            allowed_hosts: vec!["pypi.org".into()],
            ..bwrap(NetworkAccess::Allow)
        };
        let notes = blocked_action_notes(
            &summary,
            "curl: (56) CONNECT tunnel failed, response 403",
            false,
        );
        assert!(
            notes.iter().any(|n| n.contains("allow-list (pypi.org)")),
            "{notes:?}"
        );
    }

    #[test]
    fn the_process_cap_is_named() {
        let notes = blocked_action_notes(&bwrap(NetworkAccess::Off), "", true);
        assert!(notes[0].contains("64 process limit"), "{notes:?}");
    }

    #[test]
    fn no_sandbox_no_notes() {
        let off = SandboxSummary {
            mode: "off".into(),
            network: NetworkAccess::On,
            allowed_hosts: Vec::new(),
            max_processes: None,
        };
        assert!(blocked_action_notes(&off, "Read-only file system", true).is_empty());
    }
}
