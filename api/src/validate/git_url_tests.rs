use super::*;

fn policy() -> GitUrlPolicy {
    GitUrlPolicy::default()
}

#[tokio::test]
async fn public_https_ssh_git_and_scp_like_urls_pass() {
    for url in [
        "https://140.82.112.3/org/repo.git",
        "ssh://git@140.82.112.3/org/repo.git",
        "git://140.82.112.3/org/repo.git",
        "git@140.82.112.3:org/repo.git",
        "https://[2606:4700::1111]/org/repo.git",
    ] {
        assert_eq!(check_git_url(&policy(), url).await, Ok(()), "{url}");
    }
}

#[tokio::test]
async fn other_schemes_are_refused_by_name() {
    for (url, scheme) in [
        ("file:///etc/repo", "file"),
        ("http://140.82.112.3/r.git", "http"),
        ("ftp://140.82.112.3/r.git", "ftp"),
    ] {
        let err = check_git_url(&policy(), url).await.unwrap_err();
        assert!(err.contains(&format!("`{scheme}`")), "{url}: {err}");
    }
}

#[tokio::test]
async fn file_urls_pass_only_when_the_test_setting_allows_them() {
    let policy = GitUrlPolicy {
        allow_file: true,
        ..GitUrlPolicy::default()
    };
    assert_eq!(check_git_url(&policy, "file:///srv/repo.git").await, Ok(()));
}

#[tokio::test]
async fn loopback_private_link_local_and_metadata_hosts_are_refused() {
    for (url, why) in [
        ("https://127.0.0.1/r.git", "loopback"),
        ("https://[::1]/r.git", "loopback"),
        ("ssh://git@10.1.2.3/r.git", "private"),
        ("git@192.168.1.1:r.git", "private"),
        ("https://169.254.169.254/r.git", "metadata"),
        ("https://169.254.10.10/r.git", "link-local"),
        ("https://metadata.google.internal/r.git", "metadata"),
        ("https://localhost/r.git", "loopback"),
    ] {
        let err = check_git_url(&policy(), url).await.unwrap_err();
        assert!(err.contains(why), "{url}: {err}");
        assert!(err.contains("api.allow_git_hosts"), "{url}: {err}");
    }
}

#[tokio::test]
async fn allow_listed_hosts_skip_the_address_checks() {
    let policy = GitUrlPolicy {
        allow: AllowList::parse(&["10.1.2.3".into(), "git.internal".into()]).unwrap(),
        allow_file: false,
    };
    assert_eq!(
        check_git_url(&policy, "https://10.1.2.3/r.git").await,
        Ok(())
    );
    assert_eq!(
        check_git_url(&policy, "git@git.internal:org/r.git").await,
        Ok(())
    );
}

#[tokio::test]
async fn local_paths_option_injection_and_ext_transport_are_not_urls() {
    for url in [
        "/srv/repo.git",
        "dir/sub:file",
        "ext::sh -c touch% /tmp/x",
        "ext::sh",
        "-uhttps://140.82.112.3/r.git",
        "https://140.82.112.3/r.git x",
        "",
        "   ",
    ] {
        assert!(check_git_url(&policy(), url).await.is_err(), "{url:?}");
    }
}
