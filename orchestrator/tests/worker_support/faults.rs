//! Wrappers around the real parts that fail on purpose, where and when a test says: a
//! store that blinks, a blob store that stalls or fails, a runner that panics.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use orchestrator::runner::{RunInfo, RunStatus};
use orchestrator::store::{Due, TaskFilter, TaskPage};
use orchestrator::{
    BlobError, BlobStore, ByteStream, Created, LaunchSpec, Lease, NewTask, RunHandle, Runner,
    RunnerError, RunnerEvent, StoreError, Task, TaskId, TaskStatus, TaskStore, TaskUpdate,
    TokenInfo, TransitionError,
};
use tokio::sync::Notify;

fn blink(doing: &str) -> StoreError {
    StoreError::unavailable(doing, std::io::Error::other("connection reset (injected)"))
}

/// A store whose next `advance` calls fail transiently, whose next reconciler calls
/// (`due`, `get`, `take_over`, `requeued`, `outbox_done`) blink, and whose reads of one
/// task fail.
pub struct FlakyStore {
    pub inner: Arc<dyn TaskStore>,
    /// How many of the next reconciler calls fail with a transient error.
    pub blinks: AtomicU32,
    /// How many of the next fenced writes fail with a transient error.
    pub failing_advances: AtomicU32,
    /// Reads of this task fail (a row the store cannot serve).
    pub unreadable: Mutex<Option<TaskId>>,
}

impl FlakyStore {
    pub fn new(inner: Arc<dyn TaskStore>) -> Self {
        Self {
            inner,
            blinks: AtomicU32::new(0),
            failing_advances: AtomicU32::new(0),
            unreadable: Mutex::new(None),
        }
    }
}

impl FlakyStore {
    /// Takes one injected blink, if any are left.
    fn blink(&self, doing: &str) -> Result<(), StoreError> {
        match self
            .blinks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        {
            Ok(_) => Err(blink(doing)),
            Err(_) => Ok(()),
        }
    }
}

#[async_trait]
impl TaskStore for FlakyStore {
    async fn create(&self, new: NewTask) -> Result<(Task, Created), StoreError> {
        self.inner.create(new).await
    }
    async fn follow_up(&self, id: TaskId, message: &str) -> Result<Task, TransitionError> {
        self.inner.follow_up(id, message).await
    }
    async fn past_runs(
        &self,
        id: TaskId,
    ) -> Result<Vec<orchestrator::task::RunRecord>, StoreError> {
        self.inner.past_runs(id).await
    }
    async fn end_attempt(
        &self,
        lease: &Lease,
        from: TaskStatus,
        ended: &orchestrator::store::EndedRun,
        next: orchestrator::store::AttemptNext,
    ) -> Result<Task, TransitionError> {
        self.inner.end_attempt(lease, from, ended, next).await
    }
    async fn get(&self, id: TaskId) -> Result<Option<Task>, StoreError> {
        if *self.unreadable.lock().unwrap() == Some(id) {
            return Err(blink("read a task"));
        }
        self.blink("read a task")?;
        self.inner.get(id).await
    }
    async fn list(&self, filter: TaskFilter) -> Result<TaskPage, StoreError> {
        self.inner.list(filter).await
    }
    async fn transition(
        &self,
        id: TaskId,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError> {
        self.inner.transition(id, from, to, update).await
    }
    async fn claim(
        &self,
        id: TaskId,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError> {
        self.inner.claim(id, holder, ttl).await
    }
    async fn take_over(
        &self,
        id: TaskId,
        status: TaskStatus,
        attempt: u32,
        holder: &str,
        ttl: Duration,
    ) -> Result<(Task, Lease), TransitionError> {
        self.blink("take a task over")?;
        self.inner.take_over(id, status, attempt, holder, ttl).await
    }
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease, TransitionError> {
        self.inner.renew(lease, ttl).await
    }
    async fn advance(
        &self,
        lease: &Lease,
        from: TaskStatus,
        to: TaskStatus,
        update: TaskUpdate,
    ) -> Result<Task, TransitionError> {
        let failing = self
            .failing_advances
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(blink("change a leased task").into());
        }
        self.inner.advance(lease, from, to, update).await
    }
    async fn release(&self, lease: &Lease, look_again_in: Duration) -> Result<(), TransitionError> {
        self.inner.release(lease, look_again_in).await
    }
    async fn due(&self, due: Due, limit: u32) -> Result<Vec<TaskId>, StoreError> {
        self.blink("find tasks to repair")?;
        self.inner.due(due, limit).await
    }
    async fn requeued(&self, id: TaskId) -> Result<bool, StoreError> {
        self.blink("record a re-sent task")?;
        self.inner.requeued(id).await
    }
    async fn outbox_done(&self, id: TaskId) -> Result<(), StoreError> {
        self.blink("remove an outbox entry")?;
        self.inner.outbox_done(id).await
    }
    async fn add_token(&self, owner: &str, token_hash: &str) -> Result<(), StoreError> {
        self.inner.add_token(owner, token_hash).await
    }
    async fn owner_of_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        self.inner.owner_of_token(token_hash).await
    }
    async fn list_tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        self.inner.list_tokens().await
    }
    async fn revoke_token(&self, id: &str) -> Result<Option<TokenInfo>, StoreError> {
        self.inner.revoke_token(id).await
    }
    async fn live_tasks(&self, owner: &str) -> Result<u64, StoreError> {
        self.inner.live_tasks(owner).await
    }
    async fn count_live(&self) -> Result<Vec<(TaskStatus, u64)>, StoreError> {
        self.inner.count_live().await
    }
    async fn mark_purged(&self, id: TaskId) -> Result<(), StoreError> {
        self.inner.mark_purged(id).await
    }
    async fn pull_request(
        &self,
        id: TaskId,
    ) -> Result<Option<orchestrator::pr::PullRequestRecord>, StoreError> {
        self.inner.pull_request(id).await
    }
    async fn ask_pull_request(
        &self,
        id: TaskId,
        ask: orchestrator::pr::PullRequestAsk,
        stale: Duration,
    ) -> Result<bool, StoreError> {
        self.inner.ask_pull_request(id, ask, stale).await
    }
    async fn start_pull_request(
        &self,
        id: TaskId,
        stale: Duration,
    ) -> Result<Option<orchestrator::pr::PullRequestRecord>, StoreError> {
        self.inner.start_pull_request(id, stale).await
    }
    async fn finish_pull_request(
        &self,
        id: TaskId,
        outcome: &orchestrator::pr::PrOutcome,
    ) -> Result<bool, StoreError> {
        self.inner.finish_pull_request(id, outcome).await
    }
}

/// A blob store whose downloads of uploads wait for a gate, whose reads of
/// `result.json` fail for a while, and which is down (every file read and write fails
/// as unreachable) until a given instant.
pub struct GatedBlobs {
    pub inner: Arc<dyn BlobStore>,
    /// When set, `get_file` waits until it is notified.
    pub download_gate: Mutex<Option<Arc<Notify>>>,
    /// How many of the next reads of a `result.json` fail with `Unavailable`.
    pub failing_result_reads: AtomicU32,
    /// Until then, `get_file` and `put_file` fail with `Unavailable`.
    pub down_until: Mutex<Option<Instant>>,
    /// How many `get_file` and `put_file` calls failed that way.
    pub refused: AtomicU32,
}

impl GatedBlobs {
    pub fn new(inner: Arc<dyn BlobStore>) -> Self {
        Self {
            inner,
            download_gate: Mutex::new(None),
            failing_result_reads: AtomicU32::new(0),
            down_until: Mutex::new(None),
            refused: AtomicU32::new(0),
        }
    }

    /// Fails with `Unavailable` while the store is down.
    fn reachable(&self) -> Result<(), BlobError> {
        let down = self
            .down_until
            .lock()
            .unwrap()
            .is_some_and(|until| Instant::now() < until);
        if down {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(BlobError::Unavailable {
                context: "injected outage".into(),
                source: "connection refused".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl BlobStore for GatedBlobs {
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        self.inner.put_bytes(key, bytes).await
    }
    async fn put_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        self.reachable()?;
        self.inner.put_file(key, path).await
    }
    async fn put_stream(
        &self,
        key: &str,
        body: ByteStream,
        max_bytes: u64,
    ) -> Result<u64, BlobError> {
        self.inner.put_stream(key, body, max_bytes).await
    }
    async fn get_bytes(&self, key: &str, max_bytes: u64) -> Result<Vec<u8>, BlobError> {
        let failing = key.ends_with("/result.json")
            && self
                .failing_result_reads
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if failing {
            return Err(BlobError::Unavailable {
                context: "injected outage".into(),
                source: "connection refused".into(),
            });
        }
        self.inner.get_bytes(key, max_bytes).await
    }
    async fn get_file(&self, key: &str, path: &Path) -> Result<(), BlobError> {
        let gate = self.download_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.notified().await;
        }
        self.reachable()?;
        self.inner.get_file(key, path).await
    }
    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        self.inner.exists(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<(), BlobError> {
        self.inner.delete_prefix(prefix).await
    }
    async fn signed_get_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        self.inner.signed_get_url(key, ttl).await
    }
    async fn signed_put_url(&self, key: &str, ttl: Duration) -> Result<String, BlobError> {
        self.inner.signed_put_url(key, ttl).await
    }
}

/// A runner that panics when asked to launch one task's run, that can keep its next
/// launcher waiting after the run started (a worker that dies, or stalls, between the
/// launch and recording it), and counts launches.
pub struct PanickyRunner {
    pub inner: Arc<dyn Runner>,
    pub panic_for: Mutex<Option<TaskId>>,
    /// When set, the next launch starts the run, then never returns.
    pub stall_next_launch: AtomicBool,
    pub launches: AtomicU32,
}

impl PanickyRunner {
    pub fn new(inner: Arc<dyn Runner>) -> Self {
        Self {
            inner,
            panic_for: Mutex::new(None),
            stall_next_launch: AtomicBool::new(false),
            launches: AtomicU32::new(0),
        }
    }
}

#[async_trait]
impl Runner for PanickyRunner {
    async fn launch(&self, spec: LaunchSpec) -> Result<RunHandle, RunnerError> {
        self.launches.fetch_add(1, Ordering::SeqCst);
        if *self.panic_for.lock().unwrap() == Some(spec.task_id) {
            panic!("injected panic while launching {}", spec.task_id);
        }
        let launched = self.inner.launch(spec).await;
        if self.stall_next_launch.swap(false, Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        launched
    }
    async fn status(&self, handle: &RunHandle) -> Result<RunStatus, RunnerError> {
        self.inner.status(handle).await
    }
    async fn watch(
        &self,
        handle: &RunHandle,
        skip: u64,
    ) -> Result<BoxStream<'static, RunnerEvent>, RunnerError> {
        self.inner.watch(handle, skip).await
    }
    async fn detach(&self, handle: &RunHandle) -> Result<(), RunnerError> {
        self.inner.detach(handle).await
    }
    async fn cancel(&self, handle: &RunHandle) -> Result<(), RunnerError> {
        self.inner.cancel(handle).await
    }
    async fn list(&self, selector: &BTreeMap<String, String>) -> Result<Vec<RunInfo>, RunnerError> {
        self.inner.list(selector).await
    }
}
