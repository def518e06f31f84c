use super::*;

#[test]
fn modes_and_network_settings_parse_from_their_words() {
    assert_eq!("auto".parse::<SandboxMode>(), Ok(SandboxMode::Auto));
    assert_eq!("bwrap".parse::<SandboxMode>(), Ok(SandboxMode::Bwrap));
    assert_eq!("off".parse::<SandboxMode>(), Ok(SandboxMode::Off));
    assert_eq!("landlock".parse::<SandboxMode>(), Ok(SandboxMode::Landlock));
    let err = "docker".parse::<SandboxMode>().unwrap_err();
    assert!(err.contains("auto, bwrap, landlock or off"), "{err}");
    assert_eq!("on".parse::<NetworkAccess>(), Ok(NetworkAccess::On));
    assert_eq!("off".parse::<NetworkAccess>(), Ok(NetworkAccess::Off));
    assert!("maybe".parse::<NetworkAccess>().is_err());
}

#[test]
fn off_is_reported_as_off_with_the_network_on() {
    let summary = Sandbox::off().summary();
    assert_eq!(summary.mode, "off");
    assert_eq!(summary.network, NetworkAccess::On);
    assert_eq!(summary.max_processes, None);
    let resolved = Sandbox::resolve(
        &SandboxConfig {
            mode: SandboxMode::Off,
            ..SandboxConfig::default()
        },
        None,
        None,
    )
    .unwrap();
    assert!(resolved.is_off());
}

#[test]
fn without_bubblewrap_the_run_is_refused_saying_what_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let err = Sandbox::resolve(
        &SandboxConfig {
            mode: SandboxMode::Bwrap,
            ..SandboxConfig::default()
        },
        None,
        Some(empty.path().as_os_str()),
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("bubblewrap (`bwrap`) is not installed"),
        "{message}"
    );
    assert!(message.contains("apt-get install bubblewrap"), "{message}");
    assert!(message.contains("--sandbox off"), "{message}");
}

#[test]
fn credential_stores_of_the_home_folder_and_configured_paths_are_hidden() {
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("home");
    std::fs::create_dir_all(home.join(".ssh")).unwrap();
    std::fs::write(home.join(".netrc"), "machine x").unwrap();
    std::fs::create_dir_all(home.join("projects")).unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let config = SandboxConfig {
        hidden_paths: vec![
            "~/projects".into(),
            data.display().to_string(),
            "relative/ignored".into(),
        ],
        ..SandboxConfig::default()
    };
    let hidden = hidden_paths(&config, Some(&home));
    let canonical = |p: PathBuf| std::fs::canonicalize(p).unwrap();
    let mut expected = vec![
        canonical(home.join(".ssh")),
        canonical(home.join(".netrc")),
        canonical(home.join("projects")),
        canonical(data),
    ];
    expected.sort();
    assert_eq!(hidden, expected);
}

#[test]
fn bubblewrap_binds_the_workspace_writable_and_its_git_read_only_last() {
    let workspace = tempfile::tempdir().unwrap();
    std::fs::create_dir(workspace.path().join(".git")).unwrap();
    let sandbox = Sandbox {
        kind: Kind::Bwrap {
            program: PathBuf::from("/usr/bin/bwrap"),
            disable_userns: true,
        },
        network: NetworkAccess::Off,
        git: GitProtection::ReadOnly,
        hidden: vec![PathBuf::from("/nonexistent-hidden")],
        pids: None,
        allow: None,
        server: None,
    };
    let argv = sandbox.wrap(
        workspace.path(),
        workspace.path(),
        vec!["bash".into(), "-c".into(), "true".into()],
        true,
    );
    let argv: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let position = |wanted: &[&str]| {
        argv.windows(wanted.len())
            .position(|w| w.iter().zip(wanted).all(|(a, b)| a == b))
            .unwrap_or_else(|| panic!("{wanted:?} not in {argv:?}"))
    };
    let ws = workspace.path().display().to_string();
    let git = format!("{ws}/.git");
    assert_eq!(argv[0], "/usr/bin/bwrap");
    let root = position(&["--ro-bind", "/", "/"]);
    let tmp = position(&["--tmpfs", "/tmp"]);
    let bind = position(&["--bind", &ws, &ws]);
    let git_ro = position(&["--ro-bind", &git, &git]);
    assert!(root < tmp && tmp < bind && bind < git_ro, "{argv:?}");
    for flag in [
        "--unshare-net",
        "--unshare-pid",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
    ] {
        assert!(argv.iter().any(|a| a == flag), "{flag} missing: {argv:?}");
    }
    position(&["--cap-drop", "ALL"]);
    position(&["--block-fd", "0"]);
    let separator = position(&["--", "bash", "-c", "true"]);
    assert_eq!(separator + 4, argv.len());
}

#[test]
fn with_the_network_on_the_network_namespace_is_shared() {
    let sandbox = Sandbox {
        kind: Kind::Bwrap {
            program: PathBuf::from("bwrap"),
            disable_userns: false,
        },
        network: NetworkAccess::On,
        git: GitProtection::HooksAndConfig,
        hidden: Vec::new(),
        pids: None,
        allow: None,
        server: None,
    };
    let argv = sandbox.wrap(
        Path::new("/ws"),
        Path::new("/ws"),
        vec!["true".into()],
        false,
    );
    assert!(!argv.iter().any(|a| a == "--unshare-net"), "{argv:?}");
    assert!(!argv.iter().any(|a| a == "--block-fd"), "{argv:?}");
    assert!(!argv.iter().any(|a| a == "--disable-userns"), "{argv:?}");
}

/// The bubblewrap command line of a default-protection sandbox over `workspace`, and the
/// paths under `.git` it binds read-only onto themselves.
fn git_read_only_binds(workspace: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let sandbox = Sandbox {
        kind: Kind::Bwrap {
            program: PathBuf::from("bwrap"),
            disable_userns: false,
        },
        network: NetworkAccess::Off,
        git: GitProtection::HooksAndConfig,
        hidden: Vec::new(),
        pids: None,
        allow: None,
        server: None,
    };
    let argv: Vec<String> = sandbox
        .wrap(workspace, workspace, vec!["true".into()], false)
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let ro = argv
        .windows(3)
        .filter(|w| w[0] == "--ro-bind" && w[1] == w[2] && w[1].contains(".git"))
        .map(|w| w[1].clone())
        .collect();
    (argv, ro)
}

#[test]
fn by_default_only_git_hooks_and_config_are_read_only() {
    let workspace = tempfile::tempdir().unwrap();
    let git = workspace.path().join(".git");
    std::fs::create_dir(&git).unwrap();
    std::fs::write(git.join("config"), "[core]\n").unwrap();
    let (argv, ro) = git_read_only_binds(workspace.path());
    let ro: Vec<&str> = ro.iter().map(String::as_str).collect();
    let hooks = git.join("hooks").display().to_string();
    let config = git.join("config").display().to_string();
    assert_eq!(ro, vec![hooks.as_str(), config.as_str()], "{argv:?}");
    assert!(git.join("hooks").is_dir(), "an absent hooks folder is made");
}

#[test]
fn a_submodules_hooks_and_config_are_read_only_too() {
    let workspace = tempfile::tempdir().unwrap();
    let git = workspace.path().join(".git");
    let module = git.join("modules/dep");
    std::fs::create_dir_all(&module).unwrap();
    std::fs::write(git.join("config"), "[core]\n").unwrap();
    std::fs::write(module.join("config"), "[core]\n").unwrap();
    std::fs::write(module.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    let (argv, ro) = git_read_only_binds(workspace.path());
    let ro: Vec<&str> = ro.iter().map(String::as_str).collect();
    for part in ["hooks", "config"] {
        let path = module.join(part).display().to_string();
        assert!(ro.contains(&path.as_str()), "{path} not in {argv:?}");
    }
    assert!(
        module.join("hooks").is_dir(),
        "an absent hooks folder is made"
    );
}

#[test]
fn without_bubblewrap_auto_falls_back_to_landlock() {
    let forced = SandboxConfig {
        mode: SandboxMode::Landlock,
        ..SandboxConfig::default()
    };
    if let Err(err) = Sandbox::resolve(&forced, None, None) {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "CI's kernel has Landlock: {err}"
        );
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::resolve(
        &SandboxConfig::default(),
        None,
        Some(empty.path().as_os_str()),
    )
    .unwrap();
    assert_eq!(sandbox.summary().mode, "landlock");
    assert_eq!(sandbox.summary().network, NetworkAccess::Off);
}

#[test]
fn landlock_reads_everything_but_the_hidden_paths() {
    // Outside /tmp, which Landlock closes as a whole.
    let root = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let home = root.path().join("home");
    for dir in ["home/.ssh", "home/.cargo/bin", "home/code"] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    std::fs::write(home.join(".cargo/credentials.toml"), "token").unwrap();
    let home = std::fs::canonicalize(home).unwrap();
    let hidden = vec![home.join(".ssh"), home.join(".cargo/credentials.toml")];
    let roots = landlock::readable_roots(&hidden);
    let readable = |path: &Path| roots.iter().any(|root| path.starts_with(root));
    assert!(readable(&home.join("code")), "{roots:?}");
    assert!(readable(&home.join(".cargo/bin")), "{roots:?}");
    assert!(readable(Path::new("/usr/bin")), "{roots:?}");
    assert!(!readable(&home.join(".ssh")), "{roots:?}");
    assert!(
        !readable(&home.join(".cargo/credentials.toml")),
        "{roots:?}"
    );
    assert!(!readable(Path::new("/tmp/x")), "{roots:?}");
}
