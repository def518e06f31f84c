//! The cluster profile for end-to-end tests: a config file that puts every backend on
//! the loopback services of `scripts/services` (MySQL, Redis, and with [`Profile::Full`]
//! Kafka and S3 too), each test on a database, a Redis key prefix, Kafka topics and a
//! consumer group of its own. Secrets go to a file beside the config or to the process's
//! environment, never into the config file.

use std::path::Path;

use crate::api::{Api, Home};
use crate::services::{self, MySqlDatabase, setting};

/// Which backends beyond MySQL and Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// MySQL and Redis; the queue and blobs stay embedded (one shared data folder).
    StoreAndCache,
    /// MySQL, Redis, Kafka and S3: nothing shared but the services.
    Full,
}

/// Where the test's Kafka topics and S3 buckets are, for tests that look at them.
#[derive(Debug, Clone)]
pub struct ClusterNames {
    pub brokers: String,
    pub tasks_topic: String,
    pub group_id: String,
    pub s3_endpoint: String,
    pub code_bucket: String,
    pub logs_bucket: String,
}

/// Where a test puts some services of its own (private ones it stops and starts), and
/// TOML tables to append.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The MySQL server (admin URL) the test's database is made on: a private one.
    pub mysql_admin_url: Option<String>,
    pub brokers: Option<String>,
    pub redis_url: Option<String>,
    pub s3_endpoint: Option<String>,
    pub extra: String,
}

/// A home (data folder and config file) on the cluster services, and the environment
/// its processes need.
pub struct ClusterHome {
    pub home: Home,
    pub names: ClusterNames,
    pub env: Vec<(&'static str, String)>,
}

impl ClusterHome {
    pub fn new(database: &MySqlDatabase, profile: Profile) -> Self {
        Self::with(database, profile, Overrides::default())
    }

    /// As [`ClusterHome::new`], with `extra` TOML appended (tables not written here).
    pub fn with_extra(database: &MySqlDatabase, profile: Profile, extra: &str) -> Self {
        let overrides = Overrides {
            extra: extra.to_string(),
            ..Overrides::default()
        };
        Self::with(database, profile, overrides)
    }

    pub fn with(database: &MySqlDatabase, profile: Profile, overrides: Overrides) -> Self {
        let mut url = url::Url::parse(&database.url).unwrap();
        let password = url.password().unwrap_or_default().to_string();
        url.set_password(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("mysql-password");
        std::fs::write(&password_file, password).unwrap();
        let run = uuid::Uuid::new_v4().simple().to_string();
        let bucket = setting("AGENT_TEST_S3_BUCKET", "codex-test");
        let names = ClusterNames {
            brokers: overrides
                .brokers
                .unwrap_or_else(|| setting("AGENT_TEST_KAFKA_BROKERS", "127.0.0.1:9092")),
            tasks_topic: format!("e2e-tasks-{run}"),
            group_id: format!("e2e-group-{run}"),
            s3_endpoint: overrides
                .s3_endpoint
                .unwrap_or_else(|| setting("AGENT_TEST_S3_ENDPOINT", "http://127.0.0.1:9100")),
            logs_bucket: format!("{bucket}-logs"),
            code_bucket: bucket,
        };
        let mut config = format!(
            "[orchestrator.store]\nbackend = \"mysql\"\n\
             [orchestrator.store.mysql]\nurl = \"{url}\"\npassword_file = \"{}\"\n\
             [orchestrator.cache]\nbackend = \"redis\"\n\
             [orchestrator.cache.redis]\nurl = \"{}\"\nkey_prefix = \"e2e-{run}\"\n",
            password_file.display(),
            overrides.redis_url.unwrap_or_else(services::redis_url),
        );
        let mut env = Vec::new();
        if profile == Profile::Full {
            config.push_str(&format!(
                "[orchestrator.queue]\nbackend = \"kafka\"\n\
                 [orchestrator.queue.kafka]\nbrokers = \"{}\"\ntasks_topic = \"{}\"\n\
                 results_topic = \"e2e-results-{run}\"\ndead_letter_topic = \"e2e-dead-{run}\"\n\
                 group_id = \"{}\"\npartitions = 2\nsession_timeout_ms = 6000\n\
                 publish_timeout_ms = 3000\n\
                 [orchestrator.blob]\nbackend = \"s3\"\n\
                 [orchestrator.blob.s3]\nendpoint = \"{}\"\naddressing = \"path\"\n\
                 code_bucket = \"{}\"\nlogs_bucket = \"{}\"\ncreate_buckets = true\n\
                 connect_timeout_ms = 1000\nread_timeout_ms = 10000\n",
                names.brokers,
                names.tasks_topic,
                names.group_id,
                names.s3_endpoint,
                names.code_bucket,
                names.logs_bucket,
            ));
            env.push((
                "AWS_ACCESS_KEY_ID",
                setting("AGENT_TEST_S3_ACCESS_KEY", "agent-dev"),
            ));
            env.push((
                "AWS_SECRET_ACCESS_KEY",
                setting("AGENT_TEST_S3_SECRET_KEY", "agent-dev-secret-only"),
            ));
        }
        config.push_str(&overrides.extra);
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        Self {
            home: Home { dir },
            names,
            env,
        }
    }

    /// Another home on the same services and names, with a data folder of its own (a
    /// process on another machine). `self` must outlive it (it holds the password file).
    pub fn sharing(&self) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = self.home.dir.path().join("config.toml");
        std::fs::copy(config, dir.path().join("config.toml")).unwrap();
        Self {
            home: Home { dir },
            names: self.names.clone(),
            env: self.env.clone(),
        }
    }

    /// An `all` process (API, worker and reconciler).
    pub async fn start(&self, model: &scripted_model::ScriptedServer) -> Api {
        self.start_role(model, &[]).await
    }

    /// A process with `args` (`--role api`...), with this profile's environment.
    pub async fn start_role(&self, model: &scripted_model::ScriptedServer, args: &[&str]) -> Api {
        Api::start_env(&self.home, "127.0.0.1:0", model, args, &self.env).await
    }

    /// As [`ClusterHome::start_role`], with the `api` binary at `bin`.
    pub async fn launch_role(
        &self,
        bin: &Path,
        model: &scripted_model::ScriptedServer,
        args: &[&str],
    ) -> Api {
        Api::launch(bin, &self.home, "127.0.0.1:0", model, args, &self.env).await
    }
}
