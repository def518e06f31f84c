//! `api`: the service (REST API, worker, reconciler, embedded storage) in one process or
//! split by role (`--role api|worker|all`), and `api token ...` to manage API tokens.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use api::readiness::Readiness;
use api::state::PrOpener;
use api::web::event_ticket::EventTickets;
use api::{ApiConfig, AppState, Role};
use clap::{Parser, Subcommand};
use orchestrator::OrchestratorConfig;
use orchestrator::config::BlobBackend;
use orchestrator::health::Health;
use orchestrator::pr::PullRequests;
use orchestrator::reconciler::Reconciler;
use orchestrator::services::Runs;
use orchestrator::worker::{OutboxFeed, Worker};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "api",
    version,
    about = "The agent-rs service: REST API, worker and embedded storage, in one process or split by role"
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
    /// `[orchestrator.store]`, `.cache`, `.queue` and `.blob` choose the backends
    /// (embedded without one). `AGENT_STORE`, `AGENT_MYSQL_URL`, `AGENT_CACHE`,
    /// `AGENT_REDIS_URL`, `AGENT_QUEUE`, `AGENT_KAFKA_BROKERS`, `AGENT_BLOB` and
    /// `AGENT_S3_ENDPOINT` override them; the object store's keys come from
    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[arg(long, env = "API_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Run on the embedded backends (SQLite, in-process queue, local blobs, memory cache,
    /// local processes). The only mode so far, and the default.
    #[arg(long, default_value_t = true)]
    embedded: bool,
    /// What this process runs: `api` (public routes, never runs agents), `worker` (worker
    /// loops and reconciler; serves /healthz, /readyz and /metrics only) or `all` (both)
    /// [default: the config file's `role`, else all].
    #[arg(long, env = "API_ROLE", value_enum)]
    role: Option<Role>,
    /// How agents and clients reach the server that serves the blob URLs (`[api]
    /// public_url`); a worker process beside an api process must name the api process.
    #[arg(long, env = "API_PUBLIC_URL")]
    public_url: Option<String>,
    /// The same as `--role api` (kept for scripts that use it).
    #[arg(long, hide = true)]
    no_worker: bool,
    /// Run with the built-in demo model instead of a real one: every task plays a short
    /// real session (list, read, edit, finish). Prints the page's address and a token.
    /// Refuses a configured model endpoint or key; keeps its data in a temporary folder
    /// unless --data-dir is given.
    #[arg(long, conflicts_with = "no_worker")]
    demo: bool,
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
    /// List the tokens: id (a prefix of the token's hash), owner, created, revoked.
    List,
    /// Revoke the token with this id (from `token list`); processes serving the API
    /// refuse it within their `token_cache_secs`.
    Revoke { id: String },
}

/// The config file: the process's role, then one table per part.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    role: Option<Role>,
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
    file.orchestrator
        .setup_secrets
        .validate()
        .context("in the config file's [orchestrator.setup_secrets]")?;
    // Every agent would be refused this list at launch: refuse the server instead.
    file.orchestrator
        .sandbox
        .validate_hosts()
        .context("in the config file's [orchestrator.sandbox]")?;
    // Lives as long as the server: the demo's data folder when none was given.
    let mut demo_data = None;
    if let Some(data_dir) = &cli.data_dir {
        file.orchestrator.data_dir = data_dir.clone();
    } else if cli.demo && cli.command.is_none() {
        let dir = tempfile::Builder::new()
            .prefix("api-demo-")
            .tempdir()
            .context("creating the demo's data folder")?;
        file.orchestrator.data_dir = dir.path().to_path_buf();
        demo_data = Some(dir);
    }
    match cli.command {
        Some(Command::Token { action }) => token(&file.orchestrator, action).await,
        None => {
            if let Some(listen) = &cli.listen {
                file.api.listen = listen.clone();
            }
            if cli.public_url.is_some() {
                file.api.public_url = cli.public_url.clone();
            }
            let role = cli
                .role
                .or(cli.no_worker.then_some(Role::Api))
                .or(file.role)
                .unwrap_or_default();
            file.orchestrator.agent_bin = agent_bin(cli.agent_bin, file.orchestrator.agent_bin);
            if !cli.demo {
                file.orchestrator.model = file.orchestrator.model.or_from_env();
                return serve(file, role, None).await;
            }
            api::demo::refuse_configured_model(&file.orchestrator.model, |name| {
                std::env::var(name).ok()
            })?;
            let model = api::demo::DemoModel::start(api::demo::DEMO_PAUSE_MS).await?;
            file.orchestrator.model = model.endpoint();
            let served = serve(file, Role::All, Some(api::auth::generate_token())).await;
            drop(model);
            drop(demo_data);
            served
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

async fn token(config: &OrchestratorConfig, action: TokenAction) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating the data directory {}", config.data_dir.display()))?;
    let store = orchestrator::services::open_store(config)
        .await
        .context("opening the task store")?;
    let text = token_action(store.as_ref(), action).await?;
    let mut stdout = std::io::stdout().lock();
    write!(stdout, "{text}").context("printing the answer")?;
    Ok(())
}

/// Runs one `token` action; what to print.
async fn token_action(
    store: &dyn orchestrator::TaskStore,
    action: TokenAction,
) -> anyhow::Result<String> {
    match action {
        TokenAction::Create { owner } => {
            let owner = owner.trim();
            anyhow::ensure!(!owner.is_empty(), "OWNER must not be blank");
            let token = api::auth::generate_token();
            api::auth::register_token(store, owner, &token)
                .await
                .context("storing the token")?;
            Ok(format!("{token}\n"))
        }
        TokenAction::List => {
            let tokens = store.list_tokens().await.context("listing the tokens")?;
            Ok(api::auth::token_table(&tokens))
        }
        TokenAction::Revoke { id } => {
            match store
                .revoke_token(id.trim())
                .await
                .context("revoking the token")?
            {
                Some(info) => Ok(format!("revoked {} (owner {})\n", info.id, info.owner)),
                None => anyhow::bail!("no token has the id {}; see `api token list`", id.trim()),
            }
        }
    }
}

/// Serves until a signal. `demo_token`: registered for owner `demo` and printed with the
/// page's address once the server listens.
async fn serve(file: FileConfig, role: Role, demo_token: Option<String>) -> anyhow::Result<()> {
    // The embedded blob store's signed URLs are served by the public routes, which a
    // worker process does not serve: its agents must reach an api (or all) process.
    // An S3 store serves its own URLs.
    let local_blobs = file.orchestrator.blob.backend == BlobBackend::Local;
    anyhow::ensure!(
        role != Role::Worker || !local_blobs || file.api.public_url.is_some(),
        "a worker process signs blob URLs that an api process serves: set --public-url \
         (or [api] public_url) to that process's address"
    );
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
    let mut orchestrator_config = file.orchestrator;
    // A pull request links back to its task on this server unless told otherwise.
    orchestrator_config
        .pull_requests
        .task_link_base
        .get_or_insert_with(|| public_url.clone());
    let runs = if role.runs_agents() {
        Runs::Agents
    } else {
        Runs::Nothing
    };
    let embedded = api::embedded::build(orchestrator_config, &public_url, runs).await?;

    if let Ok(token) = std::env::var("API_DEV_TOKEN")
        && !token.is_empty()
        && role.serves_public_routes()
    {
        api::auth::register_token(embedded.api.store.as_ref(), "dev", &token)
            .await
            .context("registering API_DEV_TOKEN")?;
        tracing::info!("API_DEV_TOKEN registered for owner `dev`");
    }

    if let Some(token) = &demo_token {
        api::auth::register_token(embedded.api.store.as_ref(), "demo", token)
            .await
            .context("registering the demo token")?;
    }

    let shutdown = CancellationToken::new();
    let mut background = Vec::new();
    let health = Arc::new(Health::default());
    let reconcile_interval = embedded.orchestrator.config.reconciler.interval();
    let max_attempts = embedded.orchestrator.config.max_attempts_per_task;
    let queue = embedded.queue.clone();
    let queue_is_shared = embedded.queue_is_shared();
    let kafka = embedded.kafka.clone();
    let api_services = if role.runs_agents() {
        let services = &embedded.orchestrator;
        let worker = Worker::new(services.clone()).with_health(health.clone());
        background.push(worker.spawn(shutdown.clone()));
        let reconciler = Reconciler::new(services.clone()).with_health(health.clone());
        background.push(reconciler.spawn(shutdown.clone()));
        // Tasks created by api processes on the same data folder wait in the outbox
        // (a shared queue needs no feed: the api process publishes, the reconciler
        // relays what it could not).
        if !queue_is_shared {
            background.push(OutboxFeed::new(services.clone()).spawn(shutdown.clone()));
        }
        embedded.api
    } else if queue_is_shared {
        tracing::info!("role api: tasks go to the shared queue for the worker processes");
        embedded.api.leaving_runs_to_workers(true)
    } else {
        tracing::info!("role api: tasks wait in the store's outbox for worker processes");
        embedded.api.leaving_runs_to_workers(false)
    };

    let min_free_bytes = file.api.min_free_disk_mb.saturating_mul(1 << 20);
    let mut state =
        AppState::with_workspace(api_services, file.api, workspace, CancellationToken::new())
            .context("in the [orchestrator.workspace] config")?;
    state.draft_rules.max_attempts = max_attempts;
    state.readiness = Readiness {
        health: role.runs_agents().then_some(health),
        reconcile_interval,
        data_dir: Some(data_dir.clone()),
        min_free_bytes,
    };
    if role.runs_agents()
        && let Some(queue) = queue
    {
        state.queue_depth = Some(Arc::new(move || queue.len()));
    }
    state.pull_requests = match PullRequests::from_config(&embedded.orchestrator.config) {
        Ok(prs) => Some(PrOpener {
            prs: Arc::new(prs),
            services: embedded.orchestrator.clone(),
        }),
        Err(err) => {
            tracing::warn!(error = %err, "pull requests are off: their settings are unusable");
            None
        }
    };
    // Event tickets outlive a restart: a browser's EventSource reconnects with its ticket.
    state.event_tickets = EventTickets::derived_from(&api::embedded::signing_key(&data_dir)?);
    tracing::info!(%addr, %public_url, %role, "listening");
    if let Some(token) = &demo_token {
        print_demo_banner(&public_url, token)?;
    }
    let stop = shutdown.clone();
    let signal = async move {
        wait_for_signal().await;
        tracing::info!("shutting down: no new requests or tasks; running tasks are handed back");
        stop.cancel();
    };
    api::serve_role(role, listener, Arc::new(state), signal)
        .await
        .context("serving HTTP")?;
    for handle in background {
        if let Err(err) = handle.await {
            tracing::error!(error = %err, "a background task panicked");
        }
    }
    if let Some(kafka) = kafka {
        kafka.close();
    }
    tracing::info!("stopped");
    Ok(())
}

/// On stdout, apart from the logs: where to go and what to sign in with.
fn print_demo_banner(public_url: &str, token: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "Demo mode: a built-in model plays a short session (list, read, edit, finish) for \
         every task; no model key is used.\n  open      {public_url}/\n  token     {token}\n\
         Sign in with the token, then submit a zip or a git URL and follow it to its diff."
    )
    .and_then(|()| stdout.flush())
    .context("printing the demo's address")
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
