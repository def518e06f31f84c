#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `call_api` against local servers: requests and responses, the byte cap, timeouts,
//! and the SSRF guard on first requests and on redirects.

mod arguments;
mod exchange;
mod guard;
mod redirects;
mod support;
