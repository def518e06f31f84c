//! A local blob store whose signed URLs really work over HTTP: a small server that checks
//! each URL's signature for the method used, as the API's `/blobs` route does.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{Method, StatusCode};
use axum::routing::get;
use futures_util::{StreamExt, TryStreamExt};
use orchestrator::BlobStore;
use orchestrator::blob::{BoxError, LocalBlobStore, SignedQuery};
use secrecy::SecretSlice;

/// The store, and the server task (aborted on drop).
pub struct ServedBlobs {
    pub blobs: Arc<LocalBlobStore>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for ServedBlobs {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn serve(
    State(blobs): State<Arc<LocalBlobStore>>,
    method: Method,
    UrlPath(key): UrlPath<String>,
    Query(query): Query<SignedQuery>,
    body: Body,
) -> Result<Bytes, StatusCode> {
    blobs
        .verify(method.as_str(), &key, query.expires, &query.sig, now_secs())
        .map_err(|_| StatusCode::FORBIDDEN)?;
    if method == Method::PUT {
        let body = body.into_data_stream().map_err(BoxError::from).boxed();
        blobs
            .put_stream(&key, body, 1 << 30)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        return Ok(Bytes::new());
    }
    let bytes = blobs
        .get_bytes(&key, 1 << 30)
        .await
        .map_err(|_| StatusCode::NOT_FOUND)?;
    Ok(Bytes::from(bytes))
}

/// A local store under `root` whose signed URLs point at a server on an ephemeral port.
pub async fn served_store(root: &Path) -> ServedBlobs {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let blobs =
        Arc::new(LocalBlobStore::new(root, &base, SecretSlice::from(vec![9u8; 32])).unwrap());
    let app = Router::new()
        .route("/blobs/{*key}", get(serve).put(serve))
        .with_state(blobs.clone());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    ServedBlobs { blobs, server }
}
