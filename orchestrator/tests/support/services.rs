//! The loopback services of `scripts/services` (from the shared test-support crate), and
//! the MySQL task store on a test's own database.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use orchestrator::store::{MySqlConfig, MySqlTaskStore};
pub use test_support::services::*;

/// The task store on a test database.
pub trait StoreOn {
    fn store(&self) -> impl Future<Output = MySqlTaskStore> + Send;
}

impl StoreOn for MySqlDatabase {
    fn store(&self) -> impl Future<Output = MySqlTaskStore> + Send {
        let url = self.url.clone();
        async move {
            MySqlTaskStore::connect(&MySqlConfig::from_url(url))
                .await
                .unwrap()
        }
    }
}
