//! The contract every [`BlobStore`] keeps, as one suite run against each implementation
//! (the local folder here, the S3 store against a real S3-compatible server).
//!
//! A test file for an implementation includes this module and invokes
//! `blob_contract_tests!(make_fixture)`, where `make_fixture` is an `async fn() ->
//! BlobFixture`. Keys are unique per check (a fresh prefix), so the suite also runs
//! against a shared bucket. The store's signed URLs must be reachable over HTTP from the
//! test (the local store's through a small server that checks them like the API does).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod reads;
mod signed;
mod writes;

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use orchestrator::blob::{BoxError, ByteStream};
use orchestrator::{BlobStore, TaskId};

pub use reads::*;
pub use signed::*;
pub use writes::*;

/// A store under test and whatever must live as long as it (a folder, a server).
pub struct BlobFixture {
    pub blobs: Arc<dyn BlobStore>,
    pub _keep: Box<dyn Any + Send>,
}

/// Generates one `#[tokio::test]` per contract check, each on a fresh fixture.
macro_rules! blob_contract_tests {
    ($make:path) => {
        blob_contract_tests!(@each $make;
            put_bytes_then_get_bytes_round_trips,
            a_put_replaces_the_previous_blob,
            put_file_then_get_file_round_trips,
            put_stream_stores_a_body_of_many_chunks_and_returns_its_size,
            put_stream_over_the_cap_stores_nothing_and_keeps_the_old_blob,
            put_stream_with_a_broken_body_stores_nothing,
            get_bytes_over_the_cap_is_too_large_and_at_the_cap_is_whole,
            missing_blobs_are_not_found,
            delete_prefix_removes_the_subtree_but_not_string_prefix_siblings,
            invalid_keys_are_refused_by_every_operation,
            a_signed_get_url_serves_the_blob_over_http,
            a_signed_put_url_stores_a_body_over_http,
            a_signed_url_works_only_for_its_method,
            signed_urls_live_at_most_seven_days,
        );
    };
    (@each $make:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                blob_contract::$name($make().await).await;
            }
        )*
    };
}
pub(crate) use blob_contract_tests;

/// A key prefix no other check (or test run) uses.
pub fn unique_prefix() -> String {
    format!("contract/{}", TaskId::new())
}

/// `total` bytes of a pattern that makes misplaced chunks show.
pub fn pattern(total: usize) -> Vec<u8> {
    (0..total).map(|i| (i % 251) as u8).collect()
}

/// `data` as a body of `chunk`-byte pieces.
pub fn body_of(data: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, BoxError>> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks).boxed()
}

/// A generous cap for reads in checks that are not about caps.
pub const ANY_SIZE: u64 = 1 << 30;
