//! Pull requests: once a task's run completed with changes, its diff becomes a branch on
//! the repository it came from and a pull request (`octocrab`) that links back to the
//! task.
//!
//! - **Asking.** A task asks at submission (the API's `pull_request` field, the legacy
//!   form's `github_token`), or later through the retry route ([`PullRequests::ask`],
//!   [`TaskStore::ask_pull_request`](crate::store::TaskStore::ask_pull_request)). Zip
//!   tasks have nothing to push to and are refused at once.
//! - **Tokens.** A token configured on the server for the task's owner is preferred
//!   (`[orchestrator.pull_requests] owner_token_env` / `owner_token_file`): it is never
//!   stored. A token sent with the task is sealed with the server's key ([`seal`]) before
//!   it is stored, opened only by the worker that pushes, and dropped from the row once
//!   the pull request is open (or skipped). Neither ever reaches the agent (the worker
//!   pushes after the run is over, from its own process), a log line, an event or an
//!   error message.
//! - **Opening** ([`open_for_task`]): the worker that finished the run (or the retry
//!   route) claims the record (`REQUESTED -> OPENING`, so one opener at a time), applies
//!   the diff to the commit the task started from and pushes it as
//!   `{branch_prefix}{task id}` ([`git`]), then opens the pull request with the title and
//!   body from the task and the agent's final message. The outcome is stored: `OPENED`
//!   with the URL (also the task's `pr_url`), `FAILED` with a `pr_error` that says what
//!   to fix, or `SKIPPED` (the run did not complete, or changed nothing). The task itself
//!   stays `COMPLETED` with its diff whatever happens here.

mod config;
mod git;
mod github;
mod open;
mod record;
pub mod seal;

use secrecy::SecretString;

pub use config::PullRequestConfig;
pub use github::{RepoRef, repo_of};
pub use open::{after_run, open_for_task};
pub use record::{PrOutcome, PrState, PullRequestAsk, PullRequestRecord, SealedToken};
pub use seal::{SealError, TokenSealer};

use crate::config::OrchestratorConfig;
use crate::task::InputSource;

/// Why a pull request cannot be asked for (the API answers 422 with it).
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error(
        "a pull request needs a git repository to push to; a task made from a zip upload has none"
    )]
    NoRemote,
    #[error("the git URL names no owner/repository to open a pull request on")]
    NoRepository,
    #[error(
        "no token to open the pull request with: none is configured on the server for this owner; send `github_token`"
    )]
    NoToken,
    #[error(
        "this server takes no tokens with tasks; ask its operator to configure one for this owner"
    )]
    TaskTokensRefused,
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// The pull request settings with the key that seals tokens.
#[derive(Debug, Clone)]
pub struct PullRequests {
    pub config: PullRequestConfig,
    sealer: TokenSealer,
}

impl PullRequests {
    /// From the orchestrator's settings; reads (or creates) the sealing key.
    pub fn from_config(config: &OrchestratorConfig) -> Result<Self, SealError> {
        let settings = config.pull_requests.clone();
        let key_file = settings
            .key_file
            .clone()
            .unwrap_or_else(|| config.data_dir.join("pr-token.key"));
        Ok(Self {
            sealer: TokenSealer::from_key_file(&key_file)?,
            config: settings,
        })
    }

    /// A request for a pull request of `owner`'s task on `input`, its token sealed (or
    /// none when the owner has one configured, which is preferred).
    pub fn ask(
        &self,
        owner: &str,
        input: &InputSource,
        base: Option<String>,
        title: Option<String>,
        token: Option<SecretString>,
    ) -> Result<PullRequestAsk, AskError> {
        let InputSource::Git { git_url, .. } = input else {
            return Err(AskError::NoRemote);
        };
        if repo_of(git_url).is_none() {
            return Err(AskError::NoRepository);
        }
        let sealed_token = if self.config.has_owner_token(owner) {
            None
        } else {
            match token {
                Some(_) if !self.config.accept_task_tokens => {
                    return Err(AskError::TaskTokensRefused);
                }
                Some(token) => Some(self.sealer.seal(owner, &token)?),
                None => return Err(AskError::NoToken),
            }
        };
        Ok(PullRequestAsk {
            base,
            title,
            sealed_token,
        })
    }

    /// The token to push and open with: the owner's configured one, else the one sealed
    /// in the record.
    fn token(&self, owner: &str, record: &PullRequestRecord) -> Result<SecretString, String> {
        if let Some(token) = self.config.owner_token(owner) {
            return Ok(token);
        }
        match &record.ask.sealed_token {
            Some(sealed) => self.sealer.open(owner, sealed).map_err(|err| {
                format!("{err}; ask again with a new token")
            }),
            None => Err(
                "no token to open the pull request with: none is configured on the server for this owner any more; retry with `github_token`"
                    .into(),
            ),
        }
    }
}
