//! The one place HTTP clients are made.
//!
//! reqwest is built without a bundled TLS crypto provider, so rustls needs a process-wide
//! default installed before any client exists; otherwise building a client panics. Every
//! tool that talks HTTP starts from [`http_client_builder`], which installs `ring` as that
//! default (once; later calls find it in place) and sets what all our clients share.

use std::time::Duration;

/// Sent with every request, so servers can tell the agent's traffic apart.
pub const USER_AGENT: &str = concat!("agent-rs-tools/", env!("CARGO_PKG_VERSION"));

/// How long opening a TCP connection (and TLS handshake) may take before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Installs `ring` as the process's rustls provider. Call it before building any reqwest
/// client that does not come from [`http_client_builder`] (the model client, say).
pub fn install_tls_provider() {
    // An error only means a default is already installed, by us or by the host program.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client builder with the TLS provider installed, a user agent, a connect timeout and
/// no proxy: an ambient `HTTP_PROXY` would move DNS resolution out of our hands, which
/// the address checks in [`crate::net_guard`] rely on.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(CONNECT_TIMEOUT)
        .no_proxy()
}
