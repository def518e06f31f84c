//! Which parts of the service one process runs.
//!
//! The service is one binary with three run modes, so the API and the workers can scale
//! apart (the original design's N API servers and M workers on one store and queue):
//!
//! - `api`: the public routes (tasks, events, artifacts, the web page, the local blob
//!   store's signed URLs) and health. It never runs agents: no worker loops, no
//!   reconciler, no runner. A cancel moves the row; the worker holding the task notices.
//! - `worker`: the worker loops and the reconciler. It serves only `/healthz`, `/readyz`
//!   and `/metrics`.
//! - `all`: both in one process, the one-command default on the embedded backends.
//!
//! On the embedded backends the queue lives inside one process, so it cannot carry work
//! from an `api` process to a `worker` process. There the store's outbox is the queue
//! between them: an `api` process stores each task with its outbox entry and leaves it
//! there, and each `worker` process polls the outbox
//! ([`orchestrator::worker::OutboxFeed`]) and hands the tasks to its own loops. Claims
//! are compare-and-set on the row, so workers that both pick up an entry run the task
//! once.

use serde::Deserialize;

/// A process's run mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Public routes only; never runs agents.
    Api,
    /// Worker loops and reconciler; serves health and metrics only.
    Worker,
    /// Both (the default).
    #[default]
    All,
}

impl Role {
    /// Whether this process serves the task routes, the web page and the blob URLs.
    pub fn serves_public_routes(self) -> bool {
        matches!(self, Role::Api | Role::All)
    }

    /// Whether this process runs the worker loops and the reconciler.
    pub fn runs_agents(self) -> bool {
        matches!(self, Role::Worker | Role::All)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Worker => "worker",
            Role::All => "all",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_worker_role_hides_the_public_routes_and_only_api_runs_no_agents() {
        assert!(Role::Api.serves_public_routes() && !Role::Api.runs_agents());
        assert!(!Role::Worker.serves_public_routes() && Role::Worker.runs_agents());
        assert!(Role::All.serves_public_routes() && Role::All.runs_agents());
        assert_eq!(Role::default(), Role::All);
    }

    #[test]
    fn roles_read_from_lower_case_names() {
        #[derive(Deserialize)]
        struct File {
            role: Role,
        }
        let file: File = toml::from_str("role = \"worker\"").unwrap();
        assert_eq!(file.role, Role::Worker);
        assert!(toml::from_str::<File>("role = \"both\"").is_err());
    }
}
