use super::*;

fn allow_config(mode: SandboxMode, hosts: &[&str]) -> SandboxConfig {
    SandboxConfig {
        mode,
        network: NetworkAccess::Allow,
        allow_hosts: hosts.iter().map(|host| host.to_string()).collect(),
        ..SandboxConfig::default()
    }
}

#[test]
fn the_flag_takes_off_on_or_an_allow_list() {
    let choice: NetworkChoice = "allow=pypi.org, files.pythonhosted.org:443"
        .parse()
        .unwrap();
    assert_eq!(choice.access, NetworkAccess::Allow);
    assert_eq!(
        choice.allow_hosts,
        ["pypi.org", "files.pythonhosted.org:443"]
    );
    let on: NetworkChoice = "on".parse().unwrap();
    assert_eq!(on.access, NetworkAccess::On);
    assert!(on.allow_hosts.is_empty());
    let err = "allow=".parse::<NetworkChoice>().unwrap_err();
    assert!(err.contains("at least one host"), "{err}");
    let err = "sometimes".parse::<NetworkChoice>().unwrap_err();
    assert!(err.contains("allow=HOST"), "{err}");
}

#[test]
fn an_allow_list_is_refused_where_it_cannot_be_kept() {
    let off = Sandbox::resolve(&allow_config(SandboxMode::Off, &["pypi.org"]), None, None)
        .unwrap_err()
        .to_string();
    assert!(off.contains("cannot be kept with `--sandbox off`"), "{off}");
    let landlock = Sandbox::resolve(
        &allow_config(SandboxMode::Landlock, &["pypi.org"]),
        None,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(landlock.contains("needs bubblewrap"), "{landlock}");
    let empty = Sandbox::resolve(&allow_config(SandboxMode::Auto, &[]), None, None)
        .unwrap_err()
        .to_string();
    assert!(empty.contains("needs hosts"), "{empty}");
    let bad = Sandbox::resolve(
        &allow_config(SandboxMode::Auto, &["exa mple.com"]),
        None,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(bad.contains("`exa mple.com`"), "{bad}");
}

#[test]
fn without_a_served_proxy_commands_get_no_network_and_no_proxy_variables() {
    let allow = allowed(&allow_config(SandboxMode::Bwrap, &["pypi.org"]))
        .unwrap()
        .unwrap();
    let sandbox = Sandbox {
        kind: super::super::Kind::Bwrap {
            program: "/usr/bin/bwrap".into(),
            disable_userns: false,
        },
        network: NetworkAccess::Allow,
        allow: Some(allow),
        ..Sandbox::off()
    };
    let argv = sandbox.wrap(
        Path::new("/ws"),
        Path::new("/ws"),
        vec!["true".into()],
        false,
    );
    assert!(argv.iter().any(|arg| arg == "--unshare-net"));
    assert!(!argv.iter().any(|arg| arg == SANDBOX_EGRESS_DIR));
    assert!(sandbox.command_env().is_empty());
    assert_eq!(sandbox.summary().allowed_hosts, ["pypi.org"]);
}

#[tokio::test]
async fn a_served_proxy_is_bound_in_and_commands_start_behind_the_relay() {
    let allow = allowed(&allow_config(SandboxMode::Bwrap, &["pypi.org"]))
        .unwrap()
        .unwrap();
    let sandbox = Sandbox {
        kind: super::super::Kind::Bwrap {
            program: "/usr/bin/bwrap".into(),
            disable_userns: false,
        },
        network: NetworkAccess::Allow,
        allow: Some(allow),
        ..Sandbox::off()
    };
    let _proxy = sandbox
        .serve_egress_proxy(vec!["/bin/agent".into(), "egress-relay".into()])
        .unwrap()
        .unwrap();
    let argv = sandbox.wrap(
        Path::new("/ws"),
        Path::new("/ws"),
        vec!["true".into()],
        false,
    );
    let text: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let after = text.iter().position(|a| a == "--").unwrap();
    assert_eq!(
        &text[after + 1..],
        [
            SANDBOX_RELAY_PROGRAM,
            "egress-relay",
            "--socket",
            "/run/agent-egress/proxy.sock",
            "--listen",
            SANDBOX_PROXY_LISTEN,
            "--",
            "true"
        ]
    );
    assert!(text.iter().any(|a| a == SANDBOX_EGRESS_DIR));
    let env = sandbox.command_env();
    assert!(env.iter().any(|(name, value)| name == "HTTPS_PROXY"
        && value.to_string_lossy() == format!("http://{SANDBOX_PROXY_LISTEN}")));
    // The setup phase's full network has no relay.
    let setup = sandbox.with_network(NetworkAccess::On);
    assert!(setup.command_env().is_empty());
    assert!(setup.summary().allowed_hosts.is_empty());
}

#[tokio::test]
async fn behind_an_upstream_proxy_landlock_keeps_an_allow_list_by_opening_sockets_only() {
    let config = SandboxConfig {
        upstream_proxy: Some("/run/agent-egress/proxy.sock".into()),
        ..allow_config(SandboxMode::Landlock, &["pypi.org"])
    };
    let sandbox = match Sandbox::resolve(&config, None, None) {
        Ok(sandbox) => sandbox,
        Err(err) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: {err}");
            return;
        }
        Err(err) => panic!("Landlock must work in CI: {err}"),
    };
    let summary = sandbox.summary();
    assert_eq!(summary.mode, "landlock");
    assert_eq!(summary.network, NetworkAccess::Allow);
    assert_eq!(summary.allowed_hosts, ["pypi.org"]);
    // No proxy of its own: commands use the run's (the inherited `HTTP_PROXY`).
    assert!(
        sandbox
            .serve_egress_proxy(vec!["/bin/agent".into()])
            .unwrap()
            .is_none()
    );
    assert!(sandbox.command_env().is_empty());
    // Without an upstream, Landlock still refuses the list.
    let err = Sandbox::resolve(
        &allow_config(SandboxMode::Landlock, &["pypi.org"]),
        None,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("needs bubblewrap"), "{err}");
}
