//! Helpers shared by the blob store tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use orchestrator::blob::LocalBlobStore;
use secrecy::SecretSlice;
use url::Url;

pub const BASE: &str = "http://127.0.0.1:8080";

pub fn key_bytes(fill: u8) -> SecretSlice<u8> {
    SecretSlice::from(vec![fill; 32])
}

pub fn store(root: &Path) -> LocalBlobStore {
    LocalBlobStore::new(root, BASE, key_bytes(7)).unwrap()
}

/// The `(method, expires, sig)` of a signed URL, and its path.
pub fn parts(url: &str) -> (String, String, i64, String) {
    let url = Url::parse(url).unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q.len(), 3, "query has exactly method, expires, sig: {url}");
    (
        url.path().to_string(),
        q["method"].clone(),
        q["expires"].parse().unwrap(),
        q["sig"].clone(),
    )
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Files in `dir`, recursively, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}
