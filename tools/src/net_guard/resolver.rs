//! The DNS resolver the guarded HTTP client connects through.
//!
//! Checking addresses here, rather than resolving once up front, means the addresses
//! checked are exactly the ones the client connects to.

use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::HostPolicy;

/// Resolves with the system resolver, then refuses the name if any of its addresses is
/// forbidden and the allow list does not name it.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<HostPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<HostPolicy>) -> Self {
        Self { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addrs = policy.resolve_for_connect(&name).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
