//! The running server: binding, routing, and a handle that tests and the `evals`
//! binary hold to read what happened and to stop it.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::demo::{DEMO_MODEL, DemoSession};
use super::handlers::{self, ServerState};
use super::recorder::RecordedRequest;
use super::script::Script;

/// Agent conversations grow with every tool result; real providers accept requests far
/// larger than axum's 2 MiB default, so the scripted one must too.
const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

/// Why the server could not start or did not stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("scripted server failed while serving: {0}")]
    Serve(#[source] std::io::Error),
    #[error("scripted server task ended abnormally: {0}")]
    Task(#[source] tokio::task::JoinError),
}

/// A scripted OpenAI-compatible model server running on a local port.
///
/// Dropping the handle stops accepting connections at once and leaves open ones to wind
/// down in the background; [`shutdown`](Self::shutdown) waits for them to finish.
#[derive(Debug)]
pub struct ScriptedServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ScriptedServer {
    /// Starts serving `script` on a free port of 127.0.0.1.
    pub async fn start(script: Script) -> Result<Self, ServerError> {
        Self::bind(script, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    /// Starts serving `script` on `addr` (port 0 picks a free port).
    pub async fn bind(script: Script, addr: SocketAddr) -> Result<Self, ServerError> {
        Self::serve(ServerState::new(script), addr).await
    }

    /// Starts the demo model on a free port of 127.0.0.1: every conversation gets its own
    /// [`DemoSession`] (list, read, edit, finish), so any number of tasks can use it at
    /// once and for as long as the server runs. Requests are counted, not kept.
    pub async fn start_demo(session: DemoSession) -> Result<Self, ServerError> {
        let mut state = ServerState::new(Script {
            model: DEMO_MODEL.to_owned(),
            steps: Vec::new(),
        });
        state.demo = Some(session);
        Self::serve(state, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await
    }

    async fn serve(state: ServerState, addr: SocketAddr) -> Result<Self, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let state = Arc::new(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let serving =
            axum::serve(listener, router(Arc::clone(&state))).with_graceful_shutdown(async move {
                // A dropped sender means the handle is gone: stop as well.
                let _ = stopped.await;
            });
        let task = tokio::spawn(async move { serving.await });
        tracing::debug!(%addr, "scripted model server listening");
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The OpenAI base URL clients are configured with: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorder.snapshot()
    }

    /// How many script steps requests have consumed.
    pub fn steps_consumed(&self) -> usize {
        self.state.recorder.steps_consumed()
    }

    /// The script being replayed.
    pub fn script(&self) -> &Script {
        &self.state.script
    }

    /// Stops accepting connections, lets in-flight responses finish, and waits for the
    /// server task to end.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(ServerError::Task)?
                .map_err(ServerError::Serve),
            None => Ok(()),
        }
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn router(state: Arc<ServerState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/models", get(handlers::models))
        .route("/_scripted/requests", get(handlers::recorded_requests))
        .route("/_scripted/status", get(handlers::status))
        .fallback(handlers::unknown_path)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(state)
}
