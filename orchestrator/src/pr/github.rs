//! The git host's REST API through `octocrab`: look the repository up, open the pull
//! request, and find the one already open for the branch when the host says it exists.
//!
//! Every failure becomes a sentence for the task's `pr_error` that says what to fix (the
//! token, the repository, the base branch); none holds the token.

use std::time::Duration;

use octocrab::Octocrab;
use octocrab::params::State;
use secrecy::SecretString;

/// A repository on the host, as its API names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
}

impl std::fmt::Display for RepoRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// The repository a git URL names: its last two path segments (`.git` dropped), which is
/// how GitHub and its Enterprise servers lay them out.
pub fn repo_of(git_url: &str) -> Option<RepoRef> {
    let url = url::Url::parse(git_url).ok()?;
    let mut segments: Vec<&str> = url
        .path_segments()?
        .filter(|segment| !segment.is_empty())
        .collect();
    let name = segments.pop()?;
    let owner = segments.pop()?;
    let name = name.strip_suffix(".git").unwrap_or(name);
    (!name.is_empty()).then(|| RepoRef {
        owner: owner.to_string(),
        name: name.to_string(),
    })
}

/// A client for `api_base` acting with `token`.
pub fn client(api_base: &str, token: &SecretString) -> Result<Octocrab, String> {
    Octocrab::builder()
        .base_uri(api_base)
        .map_err(|err| format!("the pull request API base `{api_base}` is not a URL: {err}"))?
        .personal_token(token.clone())
        .set_connect_timeout(Some(Duration::from_secs(10)))
        .set_read_timeout(Some(Duration::from_secs(60)))
        .build()
        .map_err(|err| format!("cannot set up the pull request API client: {err}"))
}

/// The repository's default branch (the lookup also tells a bad token or a missing
/// repository apart before anything is pushed).
pub async fn default_branch(client: &Octocrab, repo: &RepoRef) -> Result<String, String> {
    let found = client
        .repos(&repo.owner, &repo.name)
        .get()
        .await
        .map_err(|err| explain(&err, repo, "looking the repository up"))?;
    Ok(found.default_branch.unwrap_or_else(|| "main".to_string()))
}

/// Opens the pull request of `head` into `base`, or finds the one already open for
/// `head`; its web address.
pub async fn open(
    client: &Octocrab,
    repo: &RepoRef,
    head: &str,
    base: &str,
    title: &str,
    body: &str,
) -> Result<String, String> {
    let created = client
        .pulls(&repo.owner, &repo.name)
        .create(title, head, base)
        .body(body)
        .send()
        .await;
    match created {
        Ok(pr) => pr
            .html_url
            .map(|url| url.to_string())
            .ok_or_else(|| "the git host opened the pull request but gave no address".into()),
        Err(err) if already_exists(&err) => existing(client, repo, head)
            .await?
            .ok_or_else(|| explain(&err, repo, "opening the pull request")),
        Err(err) => Err(explain(&err, repo, "opening the pull request")),
    }
}

/// The open pull request for `head`, if any.
async fn existing(client: &Octocrab, repo: &RepoRef, head: &str) -> Result<Option<String>, String> {
    let page = client
        .pulls(&repo.owner, &repo.name)
        .list()
        .state(State::Open)
        .head(format!("{}:{head}", repo.owner))
        .send()
        .await
        .map_err(|err| explain(&err, repo, "looking for the open pull request"))?;
    Ok(page
        .items
        .into_iter()
        .find_map(|pr| pr.html_url.map(|url| url.to_string())))
}

fn already_exists(err: &octocrab::Error) -> bool {
    match err {
        octocrab::Error::GitHub { source, .. } => {
            source.status_code.as_u16() == 422
                && (source.message.contains("already exists")
                    || source
                        .errors
                        .iter()
                        .flatten()
                        .any(|e| e.to_string().contains("already exists")))
        }
        _ => false,
    }
}

/// A sentence for `pr_error`.
fn explain(err: &octocrab::Error, repo: &RepoRef, doing: &str) -> String {
    match err {
        octocrab::Error::GitHub { source, .. } => {
            let status = source.status_code.as_u16();
            let detail = source
                .errors
                .iter()
                .flatten()
                .filter_map(|e| e.get("message").and_then(|m| m.as_str()))
                .collect::<Vec<_>>()
                .join("; ");
            let message = if detail.is_empty() {
                source.message.clone()
            } else {
                format!("{}: {detail}", source.message)
            };
            match status {
                401 => format!("{doing}: the git host refused the token (401 {message})"),
                403 => format!("{doing}: the token may not do this on {repo} (403 {message})"),
                404 => format!(
                    "{doing}: repository {repo} not found, or the token cannot see it (404 {message})"
                ),
                _ => format!("{doing} on {repo}: the git host answered {status}: {message}"),
            }
        }
        other => format!("{doing} on {repo}: cannot reach the git host's API: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_is_the_urls_last_two_segments() {
        let repo = repo_of("https://github.com/acme/widgets.git").unwrap();
        assert_eq!(
            (repo.owner.as_str(), repo.name.as_str()),
            ("acme", "widgets")
        );
        let repo = repo_of("https://ghe.example.com/org/tools/").unwrap();
        assert_eq!(repo.to_string(), "org/tools");
        assert_eq!(repo_of("https://github.com/alone"), None);
        assert_eq!(repo_of("not a url"), None);
    }
}
