//! The orchestrator: what a task is, how it moves, and the outside systems it moves
//! through.
//!
//! The database is the source of truth. A task row changes status only by compare-and-set
//! ([`TaskStore::transition`]), and a claimed task only under its holder's lease
//! ([`TaskStore::advance`]), so a redelivered queue message, a second worker or a second
//! reconciler cannot run or finish a task twice; the queue carries task ids, not state.
//! Front ends create and cancel tasks through [`tasks`]. Every outside system sits
//! behind one trait with two implementations, chosen by configuration, never by `if` in
//! the worker or the API:
//!
//! | trait | embedded (one machine) | cluster |
//! | --- | --- | --- |
//! | [`TaskStore`] | SQLite | MySQL |
//! | [`Queue`] | in-process | Kafka |
//! | [`BlobStore`] | local folder + HMAC-signed URLs | S3 / COS presigned URLs |
//! | [`StatusCache`] | in memory | Redis |
//! | [`Runner`] | local `agent-rs job` process | Kubernetes Job |

pub mod blob;
pub mod cache;
pub mod config;
pub mod health;
pub mod metrics;
pub mod pr;
pub mod queue;
pub mod reconciler;
pub mod runner;
pub mod services;
pub mod store;
pub mod task;
pub mod tasks;
#[cfg(test)]
mod test_support;
pub mod worker;
pub mod workspace;

pub use blob::{
    BlobError, BlobStore, ByteStream, LocalBlobStore, MAX_SIGNED_URL_TTL, SignatureError,
};
pub use cache::{
    CacheError, EventStream, MemoryStatusCache, RedisStatusCache, RunEvent, StatusCache, TaskEvent,
    WindowHits,
};
pub use config::OrchestratorConfig;
pub use queue::{
    DeadLetter, Delivery, InProcessQueue, Queue, QueueError, QueueLimits, TaskMessage, TaskResult,
};
pub use runner::{
    LaunchSpec, ProcessRunner, RunHandle, RunStatus, Runner, RunnerError, RunnerEvent,
};
pub use services::Services;
pub use store::{
    Created, Lease, MySqlTaskStore, SqliteTaskStore, StoreError, TaskFilter, TaskPage, TaskStore,
    TokenInfo, TransitionError,
};
pub use task::{InputSource, NewTask, Task, TaskId, TaskLimits, TaskStatus, TaskUpdate, now_ms};
pub use tasks::TaskOps;
pub use workspace::WorkspaceError;
