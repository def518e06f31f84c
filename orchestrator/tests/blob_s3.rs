#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The S3 blob store on a real S3-compatible server (s3s-fs on loopback, which checks
//! request signatures, so presigned URLs are really verified): the shared blob
//! contract, and what only S3 shows: two buckets, presigned URL shape, tampering and
//! expiry, addressing styles, bad credentials, a store that is down.

mod blob_contract;
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/services.rs"]
mod services;

use std::sync::Arc;
use std::time::Duration;

use blob_contract::{BlobFixture, blob_contract_tests};
use loopback::{s3_config, unreachable};
use orchestrator::blob::s3::{Addressing, S3BlobStore, S3Config, S3ConfigError};
use orchestrator::{BlobError, BlobStore, TaskId};
use secrecy::SecretString;

async fn connect(config: &S3Config) -> S3BlobStore {
    S3BlobStore::connect(config)
        .await
        .unwrap_or_else(|err| unreachable("the S3 server", err))
}

async fn fixture() -> BlobFixture {
    BlobFixture {
        blobs: Arc::new(connect(&s3_config()).await),
        _keep: Box::new(()),
    }
}

mod contract {
    use super::*;
    blob_contract_tests!(fixture);
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Keys in `bucket` under `prefix`, read with the SDK directly.
async fn keys_in(store: &S3BlobStore, bucket: &str, prefix: &str) -> Vec<String> {
    let listed = store
        .client()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .send()
        .await
        .unwrap();
    listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(String::from))
        .collect()
}

#[tokio::test]
async fn outputs_go_to_the_logs_bucket_and_code_to_the_code_bucket() {
    let config = s3_config();
    let store = connect(&config).await;
    let id = TaskId::new();
    let (code, output) = (
        format!("tasks/{id}/workspace.tar.gz"),
        format!("tasks/{id}/outputs/diff.patch"),
    );
    store.put_bytes(&code, b"tarball".to_vec()).await.unwrap();
    store.put_bytes(&output, b"diff".to_vec()).await.unwrap();
    let prefix = format!("tasks/{id}/");
    assert_eq!(keys_in(&store, &config.code_bucket, &prefix).await, [code]);
    assert_eq!(
        keys_in(&store, &config.logs_bucket, &prefix).await,
        vec![output.clone()]
    );
    // A signed URL for an output names the logs bucket (path style: its first segment).
    let url = store
        .signed_get_url(&output, Duration::from_secs(60))
        .await
        .unwrap();
    let path = url::Url::parse(&url).unwrap().path().to_string();
    assert!(
        path.starts_with(&format!("/{}/tasks/", config.logs_bucket)),
        "{path}"
    );
    store.delete_prefix(&format!("tasks/{id}")).await.unwrap();
    assert!(
        keys_in(&store, &config.code_bucket, &prefix)
            .await
            .is_empty()
    );
    assert!(
        keys_in(&store, &config.logs_bucket, &prefix)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_tampered_presigned_url_is_refused_and_the_blob_is_unchanged() {
    let store = connect(&s3_config()).await;
    let key = format!("tasks/{}/outputs/result.json", TaskId::new());
    store.put_bytes(&key, b"original".to_vec()).await.unwrap();
    let url = store
        .signed_put_url(&key, Duration::from_secs(60))
        .await
        .unwrap();
    let other_key = url.replace("result.json", "other.json");
    let response = client().put(&other_key).body("x").send().await.unwrap();
    assert_eq!(response.status(), 403, "a URL signed for another key");
    let mut parsed = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "X-Amz-Expires" {
                "604800".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    let response = client()
        .put(parsed.as_str())
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403, "a lifetime changed after signing");
    assert_eq!(store.get_bytes(&key, 1 << 20).await.unwrap(), b"original");
}

#[tokio::test]
async fn a_presigned_url_stops_working_when_it_expires() {
    let store = connect(&s3_config()).await;
    let key = format!("tasks/{}/workspace.tar.gz", TaskId::new());
    store.put_bytes(&key, b"tarball".to_vec()).await.unwrap();
    // SigV4 dates are whole seconds, so a URL lives between its lifetime less one second
    // and its lifetime: a 1 s URL could be dead before a loaded machine sends it.
    let url = store
        .signed_get_url(&key, Duration::from_secs(4))
        .await
        .unwrap();
    let fresh = client().get(&url).send().await.unwrap();
    assert!(fresh.status().is_success(), "{}", fresh.status());
    tokio::time::sleep(Duration::from_millis(5_200)).await;
    let expired = client().get(&url).send().await.unwrap();
    assert_eq!(expired.status(), 403);
}

#[tokio::test]
async fn presigned_urls_carry_no_checksum_and_no_key_secret() {
    let config = s3_config();
    let store = connect(&config).await;
    let url = store
        .signed_put_url("tasks/1/outputs/agent.log", Duration::from_secs(60))
        .await
        .unwrap();
    let lower = url.to_lowercase();
    assert!(!lower.contains("checksum"), "{url}");
    assert!(!url.contains("agent-dev-secret-only"), "{url}");
}

#[tokio::test]
async fn virtual_hosted_urls_put_the_bucket_in_the_host_for_cos() {
    let config = S3Config {
        endpoint: Some("https://cos.ap-guangzhou.myqcloud.com".to_string()),
        region: "ap-guangzhou".to_string(),
        addressing: Addressing::VirtualHosted,
        code_bucket: "code-1250000000".to_string(),
        logs_bucket: "logs-1250000000".to_string(),
        ..s3_config()
    };
    // Presigning needs no network.
    let store = S3BlobStore::new(&config).unwrap();
    let url = store
        .signed_get_url("tasks/1/outputs/diff.patch", Duration::from_secs(60))
        .await
        .unwrap();
    assert!(
        url.starts_with(
            "https://logs-1250000000.cos.ap-guangzhou.myqcloud.com/tasks/1/outputs/diff.patch?"
        ),
        "{url}"
    );
    assert!(url.contains("X-Amz-Signature="), "{url}");
}

#[tokio::test]
async fn wrong_credentials_fail_at_connect_and_are_not_transient() {
    let mut config = s3_config();
    config.credentials = Some(orchestrator::blob::s3::S3Credentials {
        access_key_id: SecretString::from("agent-dev"),
        secret_access_key: SecretString::from("not-the-secret"),
    });
    let err = S3BlobStore::connect(&config).await.unwrap_err();
    let S3ConfigError::Bucket { source, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(matches!(source, BlobError::Rejected { .. }), "{source:?}");
    assert!(!source.is_transient());
    assert!(!err.to_string().contains("not-the-secret"), "{err}");
}

#[tokio::test]
async fn missing_credentials_are_a_clear_error() {
    let config = S3Config {
        credentials: None,
        ..s3_config()
    };
    let err = S3BlobStore::new(&config).unwrap_err();
    assert!(matches!(err, S3ConfigError::NoCredentials), "{err:?}");
    assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
}

#[tokio::test]
async fn a_store_that_is_down_gives_transient_errors() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = S3Config {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        ..s3_config()
    };
    let store = S3BlobStore::new(&config).unwrap();
    let err = store
        .put_bytes("tasks/1/input.zip", b"zip".to_vec())
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let err = store.get_bytes("tasks/1/input.zip", 10).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn a_body_that_breaks_after_several_parts_stores_nothing() {
    use bytes::Bytes;
    use futures_util::StreamExt;
    let store = connect(&s3_config()).await;
    let key = format!("tasks/{}/input.zip", TaskId::new());
    store.put_bytes(&key, b"old".to_vec()).await.unwrap();
    let part = Bytes::from(vec![7u8; 1 << 20]);
    let chunks = (0..12)
        .map(move |_| Ok::<_, orchestrator::blob::BoxError>(part.clone()))
        .chain(std::iter::once(Err::<Bytes, orchestrator::blob::BoxError>(
            "the client went away".into(),
        )));
    let err = store
        .put_stream(&key, futures_util::stream::iter(chunks).boxed(), 1 << 30)
        .await
        .unwrap_err();
    assert!(matches!(err, BlobError::Body { .. }), "{err:?}");
    assert_eq!(store.get_bytes(&key, 1 << 20).await.unwrap(), b"old");
}
