use url::Url;

use super::{ForbiddenRange, GuardError, HostPolicy, find_guard_error};

fn policy(allow: &[&str]) -> HostPolicy {
    HostPolicy::new(&allow.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
}

async fn check(policy: &HostPolicy, url: &str) -> Result<(), GuardError> {
    policy.check_url(&Url::parse(url).unwrap()).await
}

#[tokio::test]
async fn non_http_schemes_are_refused() {
    let policy = policy(&[]);
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/",
        "gopher://example.com/",
    ] {
        let err = check(&policy, url).await.unwrap_err();
        assert!(matches!(err, GuardError::Scheme { .. }), "{url}: {err}");
        assert!(err.to_string().contains("only http and https"), "{err}");
    }
}

#[tokio::test]
async fn loopback_literal_refusal_names_host_reason_and_setting() {
    let err = check(&policy(&[]), "http://127.0.0.1:8080/x")
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "refused: `127.0.0.1` is a loopback address; add it to tools.call_api.allow_hosts to allow it"
    );
}

#[tokio::test]
async fn ip_literals_in_unusual_spellings_are_normalised_and_refused() {
    let policy = policy(&[]);
    for (url, range) in [
        ("http://2130706433/", ForbiddenRange::Loopback),
        ("http://0x7f.1/", ForbiddenRange::Loopback),
        ("http://[::ffff:127.0.0.1]/", ForbiddenRange::Loopback),
        ("http://[::1]/", ForbiddenRange::Loopback),
        ("http://0/", ForbiddenRange::Unspecified),
        (
            "http://169.254.169.254/latest/meta-data/",
            ForbiddenRange::CloudMetadata,
        ),
        ("https://10.0.0.1/", ForbiddenRange::Private),
    ] {
        match check(&policy, url).await {
            Err(GuardError::Address { range: got, .. }) => assert_eq!(got, range, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn public_ip_literal_passes() {
    check(&policy(&[]), "https://8.8.8.8/").await.unwrap();
}

#[tokio::test]
async fn allow_listed_literal_passes_only_on_its_port() {
    let policy = policy(&["127.0.0.1:8080"]);
    check(&policy, "http://127.0.0.1:8080/").await.unwrap();
    assert!(check(&policy, "http://127.0.0.1:8081/").await.is_err());
}

#[tokio::test]
async fn metadata_host_name_is_refused_without_resolving() {
    let err = check(
        &policy(&[]),
        "http://metadata.google.internal/computeMetadata/v1/",
    )
    .await
    .unwrap_err();
    assert!(matches!(err, GuardError::MetadataName { .. }), "{err}");
}

#[tokio::test]
async fn name_allowed_on_another_port_is_checked_by_address() {
    let policy = policy(&["localhost:8080"]);
    check(&policy, "http://localhost:8080/").await.unwrap();
    let err = check(&policy, "http://localhost:22/").await.unwrap_err();
    assert!(
        matches!(
            err,
            GuardError::ResolvedAddress {
                range: ForbiddenRange::Loopback,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn resolver_refuses_names_resolving_to_loopback() {
    let err = policy(&[])
        .resolve_for_connect("localhost")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("refused: `localhost` resolves to "),
        "{err}"
    );
    assert!(err.to_string().contains("loopback"), "{err}");
}

#[tokio::test]
async fn resolver_trusts_names_the_allow_list_names() {
    let addrs = policy(&["localhost:1234"])
        .resolve_for_connect("LOCALHOST.")
        .await
        .unwrap();
    assert!(addrs.iter().all(|a| a.ip().is_loopback()));
}

#[test]
fn guard_error_is_found_inside_a_wrapped_error() {
    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] GuardError);
    let outer = Outer(GuardError::NoHost);
    assert!(matches!(find_guard_error(&outer), Some(GuardError::NoHost)));
    assert!(find_guard_error(&std::io::Error::other("x")).is_none());
}
