use super::*;

fn policy() -> GitUrlPolicy {
    GitUrlPolicy::default()
}

fn reason<T: std::fmt::Debug>(result: Result<T, WorkspaceError>) -> String {
    match result {
        Err(WorkspaceError::UrlRefused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn public_https_and_git_urls_pass() {
    for url in [
        "https://140.82.112.3/org/repo.git",
        "git://140.82.112.3/org/repo.git",
        "https://[2606:4700::1111]/org/repo.git",
    ] {
        policy().check(url).await.unwrap();
    }
}

#[test]
fn ports_default_per_transport() {
    let parse = |url| policy().parse(url).unwrap();
    assert_eq!(parse("https://example.test/r.git").port(), 443);
    assert_eq!(parse("git://example.test/r.git").port(), 9418);
    assert_eq!(parse("https://example.test:8443/r.git").port(), 8443);
    assert_eq!(
        parse("https://[2606:4700::1111]/r.git").host(),
        "2606:4700::1111"
    );
    assert_eq!(parse("https://Example.TEST./r.git").host(), "example.test");
    assert_eq!(parse("git://127.0.0.1:1/r.git").host(), "127.0.0.1");
}

#[test]
fn ssh_and_scp_like_urls_are_refused_with_a_pointer_to_https() {
    for url in [
        "ssh://git@140.82.112.3/org/repo.git",
        "git@140.82.112.3:org/repo.git",
        "github.com:org/repo.git",
    ] {
        let why = reason(policy().parse(url));
        assert!(why.contains("https"), "{url}: {why}");
        assert!(why.contains("ssh"), "{url}: {why}");
    }
}

#[test]
fn other_schemes_are_refused_by_name() {
    for (url, scheme) in [
        ("file:///etc/repo", "file"),
        ("http://140.82.112.3/r.git", "http"),
        ("ftp://140.82.112.3/r.git", "ftp"),
    ] {
        let why = reason(policy().parse(url));
        assert!(why.contains(&format!("`{scheme}`")), "{url}: {why}");
    }
}

#[test]
fn file_urls_pass_only_when_the_test_setting_allows_them() {
    let allowing = GitUrlPolicy::new(&[], true).unwrap();
    let url = allowing.parse("file:///srv/repo.git").unwrap();
    assert_eq!(url.transport(), GitTransport::File);
    assert!(policy().parse("file:///srv/repo.git").is_err());
}

#[test]
fn credentials_in_the_url_are_refused_and_not_repeated() {
    for url in [
        "https://user:s3cr3t@example.test/o/r.git",
        "https://s3cr3t@example.test/o/r.git",
        "git://user:s3cr3t@example.test/o/r.git",
    ] {
        let err = policy().parse(url).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("credentials"), "{url}: {shown}");
        assert!(!shown.contains("s3cr3t"), "{url}: {shown}");
    }
}

#[tokio::test]
async fn loopback_private_link_local_and_metadata_hosts_are_refused() {
    for (url, why) in [
        ("https://127.0.0.1/r.git", "loopback"),
        ("https://[::1]/r.git", "loopback"),
        ("https://10.1.2.3/r.git", "private"),
        ("git://192.168.1.1/r.git", "private"),
        ("https://169.254.169.254/r.git", "metadata"),
        ("https://169.254.10.10/r.git", "link-local"),
        ("https://metadata.google.internal/r.git", "metadata"),
        ("https://localhost/r.git", "resolves to"),
    ] {
        let err = reason(policy().check(url).await);
        assert!(err.contains(why), "{url}: {err}");
        assert!(err.contains(ALLOW_SETTING), "{url}: {err}");
    }
}

#[test]
fn the_clone_resolves_and_checks_the_same_way() {
    let err =
        reason(policy().resolve_for_clone(&policy().parse("https://localhost/r.git").unwrap()));
    assert!(err.contains("loopback"), "{err}");
    let allowing = GitUrlPolicy::new(&["localhost".into()], false).unwrap();
    let addrs = allowing
        .resolve_for_clone(&allowing.parse("https://localhost:8443/r.git").unwrap())
        .unwrap();
    assert!(!addrs.is_empty());
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8443),
        "{addrs:?}"
    );
}

#[tokio::test]
async fn allow_listed_hosts_skip_the_address_checks() {
    let policy = GitUrlPolicy::new(&["10.1.2.3".into(), "127.0.0.1:8443".into()], false).unwrap();
    policy.check("https://10.1.2.3/r.git").await.unwrap();
    policy.check("https://127.0.0.1:8443/r.git").await.unwrap();
    let other_port = reason(policy.check("https://127.0.0.1/r.git").await);
    assert!(other_port.contains("loopback"), "{other_port}");
}

#[test]
fn a_bad_allow_entry_names_the_setting() {
    let err = GitUrlPolicy::new(&["not a host!".into()], false).unwrap_err();
    assert!(err.to_string().contains(ALLOW_SETTING), "{err}");
}

#[test]
fn local_paths_option_injection_and_ext_transport_are_not_urls() {
    for url in [
        "/srv/repo.git",
        "dir/sub:file",
        "ext::sh -c touch% /tmp/x",
        "ext::sh",
        "-uhttps://140.82.112.3/r.git",
        "https://140.82.112.3/r.git x",
        "https:///no-host",
        "r.git",
        "",
        "   ",
    ] {
        assert!(policy().parse(url).is_err(), "{url:?}");
    }
}
