//! The page's files, built into the binary: no file system lookups, no path handling,
//! the same bytes on every host. Each is served with a strong `ETag` (its SHA-256) and
//! `Cache-Control: no-cache`, so browsers revalidate cheaply and an upgraded server is
//! picked up at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// One embedded file.
pub struct Asset {
    /// Its path under `api/web/` and under `/assets/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:expr) => {
        Asset {
            path: $path,
            content_type: $content_type,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the page.
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("js/main.js", JS),
    asset!("js/api.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/format.js", JS),
    asset!("js/signin.js", JS),
    asset!("js/list.js", JS),
    asset!("js/submit.js", JS),
    asset!("js/task.js", JS),
    asset!("js/timeline.js", JS),
    asset!("js/live.js", JS),
    asset!("js/diff.js", JS),
    asset!("js/artifacts.js", JS),
    asset!("js/pullrequest.js", JS),
    asset!("js/runs.js", JS),
    asset!("js/attempts.js", JS),
];

/// Each asset's ETag, in the order of [`ASSETS`].
static ETAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| format!("\"{}\"", &hex::encode(Sha256::digest(asset.body))[..32]))
        .collect()
});

/// `GET /`: the page itself.
pub async fn index(headers: HeaderMap) -> Response {
    serve(0, &headers)
}

/// `GET /assets/{path}`: a script, style sheet or icon of the page.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().position(|asset| asset.path == path) {
        Some(index) if index > 0 => serve(index, &headers),
        _ => ApiError::NotFound(format!("no asset `{path}`")).into_response(),
    }
}

fn serve(index: usize, request: &HeaderMap) -> Response {
    let asset = &ASSETS[index];
    let etag = &ETAGS[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
