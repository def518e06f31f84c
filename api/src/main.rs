//! `api`: the whole service in one process (REST API, worker, reconciler, embedded
//! storage), and `api token create OWNER` to hand out API tokens.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use api::web::event_ticket::EventTickets;
use api::{ApiConfig, AppState};
use clap::{Parser, Subcommand};
use orchestrator::OrchestratorConfig;
use orchestrator::reconciler::Reconciler;
use orchestrator::worker::Worker;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "api",
    version,
    about = "The agent-rs service: REST API, worker and embedded storage in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "API_LISTEN")]
    listen: Option<String>,
    /// Where the database, blobs, run logs and signing key live [default: ./data].
    #[arg(long, env = "API_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The agent binary [default: `agent-rs` beside this binary, else on PATH].
    #[arg(long, env = "API_AGENT_BIN")]
    agent_bin: Option<PathBuf>,
    /// TOML config file with `[api]` and `[orchestrator]` tables; its
    /// `[orchestrator.store]` and `[orchestrator.cache]` choose the backends (embedded
    /// without one). `AGENT_STORE`, `AGENT_MYSQL_URL`, `AGENT_CACHE` and
    /// `AGENT_REDIS_URL` override them.
    #[arg(long, env = "API_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Run on the embedded backends (SQLite, in-process queue, local blobs, memory cache,
    /// local processes). The only mode so far, and the default.
    #[arg(long, default_value_t = true)]
    embedded: bool,
    /// Serve the API without the worker and reconciler: tasks are queued, never run
    /// (benchmarks of the API alone, or a separate worker process).
    #[arg(long)]
    no_worker: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
}

#[derive(Debug, Subcommand)]
enum TokenAction {
    /// Create a token for OWNER and print it (only its hash is stored).
    Create { owner: String },
}

/// The config file: one table per part.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    api: ApiConfig,
    orchestrator: OrchestratorConfig,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if std::env::var("API_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut file = load_config(cli.config.as_deref())?;
    file.orchestrator
        .apply_env(|name| std::env::var(name).ok())
        .context("in the environment's backend overrides")?;
    if let Some(data_dir) = &cli.data_dir {
        file.orchestrator.data_dir = data_dir.clone();
    }
    match cli.command {
        Some(Command::Token {
            action: TokenAction::Create { owner },
        }) => create_token(&file.orchestrator, &owner).await,
        None => {
            if let Some(listen) = &cli.listen {
                file.api.listen = listen.clone();
            }
            file.orchestrator.agent_bin = agent_bin(cli.agent_bin, file.orchestrator.agent_bin);
            file.orchestrator.model = file.orchestrator.model.or_from_env();
            serve(file, !cli.no_worker).await
        }
    }
}

fn load_config(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("in the config file {}", path.display()))
}

/// `--agent-bin`, else a configured path, else `agent-rs` beside this binary, else
/// `agent-rs` on PATH.
fn agent_bin(flag: Option<PathBuf>, configured: PathBuf) -> PathBuf {
    if let Some(path) = flag {
        return path;
    }
    if configured != Path::new("agent-rs") {
        return configured;
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("agent-rs")))
        .filter(|beside| beside.is_file())
        .unwrap_or(configured)
}

async fn create_token(config: &OrchestratorConfig, owner: &str) -> anyhow::Result<()> {
    let owner = owner.trim();
    anyhow::ensure!(!owner.is_empty(), "OWNER must not be blank");
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let store = orchestrator::services::open_store(config)
        .await
        .context("opening the task store")?;
    let token = api::auth::generate_token();
    api::auth::register_token(store.as_ref(), owner, &token)
        .await
        .context("storing the token")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{token}").context("printing the token")?;
    Ok(())
}

async fn serve(file: FileConfig, run_worker: bool) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&file.api.listen)
        .await
        .with_context(|| format!("listening on {}", file.api.listen))?;
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    let public_url = file
        .api
        .public_url
        .clone()
        .unwrap_or_else(|| public_url(addr));
    let mut file = file;
    if file
        .api
        .fold_deprecated_into(&mut file.orchestrator.workspace)
    {
        tracing::warn!(
            "[api] allow_git_hosts and allow_file_git_urls are deprecated; set them under \
             [orchestrator.workspace], where the worker reads them too"
        );
    }
    let workspace = file.orchestrator.workspace.clone();
    let data_dir = file.orchestrator.data_dir.clone();
    let embedded = api::embedded::build(file.orchestrator, &public_url).await?;

    if let Ok(token) = std::env::var("API_DEV_TOKEN")
        && !token.is_empty()
    {
        api::auth::register_token(embedded.api.store.as_ref(), "dev", &token)
            .await
            .context("registering API_DEV_TOKEN")?;
        tracing::info!("API_DEV_TOKEN registered for owner `dev`");
    }

    let shutdown = CancellationToken::new();
    let mut background = Vec::new();
    if run_worker {
        background.push(Worker::new(embedded.orchestrator.clone()).spawn(shutdown.clone()));
        background.push(Reconciler::new(embedded.orchestrator.clone()).spawn(shutdown.clone()));
    } else {
        tracing::warn!("--no-worker: tasks are queued but not run by this process");
    }

    let mut state =
        AppState::with_workspace(embedded.api, file.api, workspace, CancellationToken::new())
            .context("in the [orchestrator.workspace] config")?;
    // Event tickets outlive a restart: a browser's EventSource reconnects with its ticket.
    state.event_tickets = EventTickets::derived_from(&api::embedded::signing_key(&data_dir)?);
    tracing::info!(%addr, %public_url, "listening");
    let stop = shutdown.clone();
    let signal = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new requests or tasks; running tasks are handed back");
        stop.cancel();
    };
    api::serve(listener, Arc::new(state), signal)
        .await
        .context("serving HTTP")?;
    for handle in background {
        if let Err(err) = handle.await {
            tracing::error!(error = %err, "a background task panicked");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

fn public_url(addr: SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    match addr {
        SocketAddr::V6(_) if !addr.ip().is_unspecified() => {
            format!("http://[{host}]:{}", addr.port())
        }
        _ => format!("http://{host}:{}", addr.port()),
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; ctrl-c only");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
