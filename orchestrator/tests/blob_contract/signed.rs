//! Signed URLs: usable over plain HTTP by whoever holds them, for their method only,
//! and never for longer than SigV4 allows.

use std::time::Duration;

use orchestrator::{BlobError, MAX_SIGNED_URL_TTL};

use super::{ANY_SIZE, BlobFixture, pattern, unique_prefix};

const TTL: Duration = Duration::from_secs(300);

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn a_signed_get_url_serves_the_blob_over_http(fx: BlobFixture) {
    let key = format!("{}/workspace.tar.gz", unique_prefix());
    let payload = pattern(70_000);
    fx.blobs.put_bytes(&key, payload.clone()).await.unwrap();
    let url = fx.blobs.signed_get_url(&key, TTL).await.unwrap();
    let response = client().get(&url).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.bytes().await.unwrap().as_ref(), payload.as_slice());
}

pub async fn a_signed_put_url_stores_a_body_over_http(fx: BlobFixture) {
    let key = format!("{}/outputs/result.json", unique_prefix());
    let url = fx.blobs.signed_put_url(&key, TTL).await.unwrap();
    let response = client()
        .put(&url)
        .body(r#"{"status":"completed"}"#)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        fx.blobs.get_bytes(&key, ANY_SIZE).await.unwrap(),
        br#"{"status":"completed"}"#
    );
}

pub async fn a_signed_url_works_only_for_its_method(fx: BlobFixture) {
    let prefix = unique_prefix();
    let key = format!("{prefix}/outputs/diff.patch");
    fx.blobs
        .put_bytes(&key, b"original".to_vec())
        .await
        .unwrap();
    let get_url = fx.blobs.signed_get_url(&key, TTL).await.unwrap();
    let put = client()
        .put(&get_url)
        .body("replaced")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_client_error(), "{}", put.status());
    let put_url = fx.blobs.signed_put_url(&key, TTL).await.unwrap();
    let get = client().get(&put_url).send().await.unwrap();
    assert!(get.status().is_client_error(), "{}", get.status());
    assert_eq!(
        fx.blobs.get_bytes(&key, ANY_SIZE).await.unwrap(),
        b"original"
    );
}

pub async fn signed_urls_live_at_most_seven_days(fx: BlobFixture) {
    let key = format!("{}/x", unique_prefix());
    assert_eq!(MAX_SIGNED_URL_TTL, Duration::from_secs(7 * 24 * 3600));
    fx.blobs
        .signed_get_url(&key, MAX_SIGNED_URL_TTL)
        .await
        .unwrap();
    let longer = MAX_SIGNED_URL_TTL + Duration::from_secs(1);
    for result in [
        fx.blobs.signed_get_url(&key, longer).await,
        fx.blobs.signed_put_url(&key, longer).await,
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, BlobError::TtlTooLong { requested, .. } if requested == longer),
            "{err:?}"
        );
    }
}
