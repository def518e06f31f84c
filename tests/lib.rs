//! The end-to-end suite's stacks and cases. A case is written once, against a [`Stack`],
//! and run by `embedded.rs` on the embedded profile (SQLite, in-process queue, local
//! blobs, memory cache, one `api` process) and by `cluster.rs` on the cluster profile
//! (MariaDB, Redis, a Kafka broker and an S3 server from `scripts/services`, each test on
//! a database, key prefix, topics, consumer group and model of its own). Agents run as
//! local processes on both.
//!
//! Every stack has a scripted model of its own: a script's steps are used up by the
//! tasks that talk to it, so two tests (or two tasks) sharing one would steal each
//! other's steps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cases;
pub mod fault;

use scripted_model::ScriptedServer;
use serde_json::Value;
use test_support::cluster::{ClusterHome, Overrides, Profile as Backends};
use test_support::services::MySqlDatabase;
use test_support::{Api, Home, scripted_model};

/// Which backends a stack runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Embedded,
    Cluster,
}

/// Where a stack keeps its configuration: a home of its own, or one on the cluster
/// services (which holds the database it uses).
enum Place {
    Embedded(Home),
    Cluster {
        home: Box<ClusterHome>,
        _database: MySqlDatabase,
    },
}

/// One profile's service: its processes, its model and its configuration.
pub struct Stack {
    /// The processes, stopped first when the stack is dropped (fields drop in order).
    pub apis: Vec<Api>,
    pub workers: Vec<Api>,
    pub model: ScriptedServer,
    pub profile: Profile,
    /// The data folders of the cluster profile's processes, dropped after them.
    folders: Vec<ClusterHome>,
    place: Place,
}

impl Stack {
    /// One `all` process (API, worker and reconciler) with `extra` TOML in its config,
    /// and a model playing `steps`.
    pub async fn start(profile: Profile, steps: Value, extra: &str) -> Self {
        let mut stack = Self::configured(profile, steps, extra, Overrides::default()).await;
        let all = stack.launch(&[]).await;
        stack.apis.push(all);
        stack
    }

    /// The stack's configuration and model, no process started yet. `overrides` put some
    /// cluster services elsewhere (private ones a fault test stops and starts).
    pub async fn configured(
        profile: Profile,
        steps: Value,
        extra: &str,
        mut overrides: Overrides,
    ) -> Self {
        let model = scripted_model(steps).await;
        let place = match profile {
            Profile::Embedded => Place::Embedded(Home::new(extra)),
            Profile::Cluster => {
                let database = match &overrides.mysql_admin_url {
                    Some(url) => MySqlDatabase::create_on(url).await,
                    None => MySqlDatabase::create().await,
                };
                overrides.extra.push_str(extra);
                Place::Cluster {
                    home: Box::new(ClusterHome::with(&database, Backends::Full, overrides)),
                    _database: database,
                }
            }
        };
        Self {
            apis: Vec::new(),
            workers: Vec::new(),
            model,
            profile,
            folders: Vec::new(),
            place,
        }
    }

    /// A process with `args` (`--role api`...) on this stack's configuration. On the
    /// cluster profile each process has a data folder of its own (another machine).
    pub async fn launch(&mut self, args: &[&str]) -> Api {
        match &self.place {
            Place::Embedded(home) => Api::start_with(home, "127.0.0.1:0", &self.model, args).await,
            Place::Cluster { home, .. } => {
                let folder = home.sharing();
                let api = folder.start_role(&self.model, args).await;
                self.folders.push(folder);
                api
            }
        }
    }

    /// A process on the stack's own data folder: one host's disk, shared by every
    /// process started this way (a local run is found again through it after its worker
    /// died).
    pub async fn launch_shared(&self, args: &[&str]) -> Api {
        match &self.place {
            Place::Embedded(home) => Api::start_with(home, "127.0.0.1:0", &self.model, args).await,
            Place::Cluster { home, .. } => home.start_role(&self.model, args).await,
        }
    }

    /// The first API process.
    pub fn api(&self) -> &Api {
        &self.apis[0]
    }

    pub fn home(&self) -> &Home {
        match &self.place {
            Place::Embedded(home) => home,
            Place::Cluster { home, .. } => &home.home,
        }
    }

    pub fn cluster(&self) -> Option<&ClusterHome> {
        match &self.place {
            Place::Embedded(_) => None,
            Place::Cluster { home, .. } => Some(home),
        }
    }
}
