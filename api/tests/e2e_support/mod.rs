//! The whole service as a user runs it, from the shared test-support crate: the `api`
//! binary of this crate's build in its own process over a temp data folder, the real
//! `agent-rs` beside it, and the scripted model server in this process playing the
//! model. Everything goes over real HTTP.

#![allow(dead_code, unused_imports)]

use std::ops::{Deref, DerefMut};
use std::path::Path;

use scripted_model::ScriptedServer;
pub use test_support::{
    CALC_PY, Home, SseEvent, SseReader, TOKEN, WAIT, agent_binary, assert_no_process_left,
    eventually, fix_add_steps, git_repo, processes_of_task, scripted_model, shell_step, zip_of,
};

const API_BIN: &str = env!("CARGO_BIN_EXE_api");

/// A running `api` process of this crate's build (the shared [`test_support::Api`]).
pub struct Api(test_support::Api);

impl Api {
    /// Starts `api` on `home` (its data dir and config file), listening on `listen`
    /// (`127.0.0.1:0` for any free port), with the model at `model`. Returns once the
    /// server logged its bound address.
    pub async fn start(home: &Home, listen: &str, model: &ScriptedServer) -> Self {
        Self::start_with(home, listen, model, &[]).await
    }

    /// As [`Api::start`], with `extra` arguments (`--role worker`...).
    pub async fn start_with(
        home: &Home,
        listen: &str,
        model: &ScriptedServer,
        extra: &[&str],
    ) -> Self {
        Self::start_env(home, listen, model, extra, &[]).await
    }

    /// As [`Api::start_with`], with `env` added to the process's environment.
    pub async fn start_env(
        home: &Home,
        listen: &str,
        model: &ScriptedServer,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Self {
        Self(test_support::Api::launch(Path::new(API_BIN), home, listen, model, extra, env).await)
    }
}

impl Deref for Api {
    type Target = test_support::Api;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl DerefMut for Api {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
