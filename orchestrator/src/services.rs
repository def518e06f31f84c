//! The outside systems, behind their traits, plus the configuration: what the worker, the
//! reconciler and the API share.
//!
//! Which implementations sit behind the trait objects (embedded or cluster) is decided
//! once, where `Services` is built; nothing that receives it branches on the profile.

use std::sync::Arc;

use crate::blob::BlobStore;
use crate::cache::StatusCache;
use crate::config::OrchestratorConfig;
use crate::queue::Queue;
use crate::runner::Runner;
use crate::store::TaskStore;

/// Cheap to clone: every field is shared.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn TaskStore>,
    pub queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn BlobStore>,
    pub cache: Arc<dyn StatusCache>,
    pub runner: Arc<dyn Runner>,
    pub config: Arc<OrchestratorConfig>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
