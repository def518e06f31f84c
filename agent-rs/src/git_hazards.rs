//! Git settings that run commands, disarmed at the end of a run.
//!
//! The sandbox keeps the workspace's `.git` (and its submodules') config and hooks
//! read-only, but it cannot protect a repository that does not exist yet: a command can
//! `git init` a folder, set `core.fsmonitor` (or a hook, `core.pager`, a filter driver...)
//! in its config and `git add` it to the outer repository as a gitlink. The user's next
//! `git status` in the outer repository then recurses into it and runs that command
//! outside any sandbox. So once the run ends, every repository in the workspace whose
//! config or hooks changed during the run is looked at, and what could run a command is
//! taken out of it: such config entries are removed (the file as it was is kept beside
//! it as `config.disarmed`, which git never reads) and hooks are renamed `*.disarmed`.
//! Settings that only describe the repository (format, remotes, branches, identity) stay.
//!
//! A repository that existed when the run began is the user's: what its config and hooks
//! held then ([`Baseline`]) is theirs and stays, whatever it runs (a git-lfs filter, an
//! alias, their own `core.hooksPath`). Only command-running entries and hooks that are new
//! or changed since then are taken out; a repository made during the run has no baseline,
//! so every command-running entry and hook in it goes.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::workspace_diff::LeftOut;

/// Config keys that run nothing: kept. Any other key changed during the run is removed.
const SAFE_KEYS: &[&str] = &[
    "core.repositoryformatversion",
    "core.filemode",
    "core.bare",
    "core.logallrefupdates",
    "core.ignorecase",
    "core.precomposeunicode",
    "core.symlinks",
    "core.autocrlf",
    "core.eol",
    "core.safecrlf",
    "core.quotepath",
    "core.abbrev",
    "core.compression",
    "core.checkstat",
    "core.trustctime",
    "core.untrackedcache",
    "core.sparsecheckout",
    "core.sparsecheckoutcone",
    "init.defaultbranch",
    "extensions.objectformat",
    "extensions.partialclone",
    "extensions.worktreeconfig",
    "pull.rebase",
    "pull.ff",
    "push.default",
    "fetch.prune",
    "commit.gpgsign",
];

/// Sections with no key that runs a command.
const SAFE_SECTIONS: &[&str] = &["user", "author", "committer", "advice", "color", "i18n"];

/// Keys of `section.<name>.key` entries that run nothing.
const SAFE_SUBSECTION_KEYS: &[(&str, &[&str])] = &[
    (
        "remote",
        &[
            "url",
            "pushurl",
            "fetch",
            "push",
            "tagopt",
            "prune",
            "mirror",
            "promisor",
            "partialclonefilter",
        ],
    ),
    ("branch", &["remote", "merge", "rebase", "pushremote"]),
    ("submodule", &["url", "active", "branch", "shallow"]),
];

/// Slack for the filesystem's clock granularity around the run's start.
const CLOCK_SLACK: Duration = Duration::from_secs(2);

/// Hooks larger than this are not recorded: one changed during the run is disarmed.
const MAX_HOOK_BYTES: u64 = 1 << 20;

/// A config file's entries: key (as git2 names it) and value (`None`: no `=`).
type Entries = Vec<(String, Option<Vec<u8>>)>;

/// What the repositories under the workspace held when the run began, keyed by git dir.
#[derive(Debug, Default)]
pub struct Baseline {
    repos: HashMap<PathBuf, RepoBaseline>,
}

#[derive(Debug, Default)]
struct RepoBaseline {
    /// Per config file name (`config`, `config.worktree`).
    configs: HashMap<String, Entries>,
    /// Per hook name: its content (a link's target for a link).
    hooks: HashMap<String, Vec<u8>>,
}

impl Baseline {
    /// Records the config entries and hooks of every repository under `root`.
    pub fn capture(root: &Path) -> Self {
        let mut repos = HashMap::new();
        for dot_git in find_dot_gits(root) {
            for git_dir in git_dirs(&dot_git) {
                if let std::collections::hash_map::Entry::Vacant(slot) = repos.entry(git_dir) {
                    let repo = RepoBaseline::capture(slot.key());
                    slot.insert(repo);
                }
            }
        }
        Self { repos }
    }
}

impl RepoBaseline {
    fn capture(git_dir: &Path) -> Self {
        let mut repo = Self::default();
        for name in ["config", "config.worktree"] {
            let path = git_dir.join(name);
            if path.is_file()
                && let Ok(entries) = config_entries(&path)
            {
                repo.configs.insert(name.to_string(), entries);
            }
        }
        if let Ok(listing) = fs::read_dir(git_dir.join("hooks")) {
            for entry in listing.filter_map(Result::ok) {
                let path = entry.path();
                if let Some(content) = hook_content(&path) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    repo.hooks.insert(name, content);
                }
            }
        }
        repo
    }
}

/// A hook as compared with the baseline: a link's target, or a file's bytes.
fn hook_content(path: &Path) -> Option<Vec<u8>> {
    let meta = fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).ok()?;
        let mut content = b"link:".to_vec();
        content.extend_from_slice(target.as_os_str().as_encoded_bytes());
        return Some(content);
    }
    if !meta.is_file() || meta.len() > MAX_HOOK_BYTES {
        return None;
    }
    let mut content = b"file:".to_vec();
    content.extend(fs::read(path).ok()?);
    Some(content)
}

/// Looks at every repository under `root` (the root's own included) and disarms what
/// changed since `since` and is not as `baseline` recorded it; returns one entry per
/// repository disarmed, for `result.json`.
pub fn disarm(root: &Path, since: SystemTime, baseline: &Baseline) -> Vec<LeftOut> {
    let since = since.checked_sub(CLOCK_SLACK).unwrap_or(UNIX_EPOCH);
    let mut disarmed = Vec::new();
    for dot_git in find_dot_gits(root) {
        let shown = dot_git
            .parent()
            .and_then(|dir| dir.strip_prefix(root).ok())
            .map(|dir| dir.to_string_lossy().into_owned())
            .filter(|dir| !dir.is_empty())
            .unwrap_or_else(|| ".".to_string());
        let mut removed = Vec::new();
        for git_dir in git_dirs(&dot_git) {
            let repo = baseline.repos.get(&git_dir);
            if let Err(error) = disarm_git_dir(&git_dir, since, repo, &mut removed) {
                tracing::warn!(git_dir = %git_dir.display(), %error,
                    "could not disarm a repository's config or hooks");
                removed.push(format!("(could not finish: {error})"));
            }
        }
        if !removed.is_empty() {
            disarmed.push(LeftOut::new(
                &shown,
                &format!(
                    "a repository whose config or hooks were set during the run to run \
                     commands outside the sandbox; disarmed (kept beside them as \
                     config.disarmed and hooks/*.disarmed): {}",
                    removed.join(", ")
                ),
            ));
        }
    }
    disarmed
}

/// Every `.git` entry (folder, file or link) under `root`, `.git` folders not walked.
fn find_dot_gits(root: &Path) -> Vec<PathBuf> {
    let walk = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    walk.filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_some_and(|kind| kind.is_dir()))
        .map(|entry| entry.path().join(".git"))
        .filter(|dot_git| fs::symlink_metadata(dot_git).is_ok())
        .collect()
}

/// The git directories a `.git` entry stands for: itself, or where its `gitdir:` line
/// points, and the common directory a `commondir` file names.
fn git_dirs(dot_git: &Path) -> Vec<PathBuf> {
    let base = dot_git.parent().unwrap_or(Path::new("."));
    let git_dir = if dot_git.is_dir() {
        dot_git.to_path_buf()
    } else {
        match fs::read_to_string(dot_git) {
            Ok(text) => match text.trim().strip_prefix("gitdir:") {
                Some(target) => base.join(target.trim()),
                None => return Vec::new(),
            },
            Err(_) => return Vec::new(),
        }
    };
    let mut dirs = vec![git_dir.clone()];
    if let Ok(common) = fs::read_to_string(git_dir.join("commondir")) {
        dirs.push(git_dir.join(common.trim()));
    }
    dirs
}

fn changed_since(path: &Path, since: SystemTime) -> bool {
    fs::symlink_metadata(path).is_ok_and(|meta| {
        let changed = UNIX_EPOCH
            + Duration::from_secs(u64::try_from(meta.ctime()).unwrap_or(0))
            + Duration::from_nanos(u64::try_from(meta.ctime_nsec()).unwrap_or(0));
        changed >= since
    })
}

fn disarm_git_dir(
    git_dir: &Path,
    since: SystemTime,
    baseline: Option<&RepoBaseline>,
    removed: &mut Vec<String>,
) -> io::Result<()> {
    for name in ["config", "config.worktree"] {
        let path = git_dir.join(name);
        if path.is_file() && changed_since(&path, since) {
            let before = baseline
                .and_then(|repo| repo.configs.get(name))
                .map_or(&[][..], Vec::as_slice);
            disarm_config(&path, before, removed)?;
        }
    }
    let hooks = git_dir.join("hooks");
    let Ok(meta) = fs::symlink_metadata(&hooks) else {
        return Ok(());
    };
    if !meta.is_dir() {
        if changed_since(&hooks, since) {
            fs::rename(&hooks, git_dir.join("hooks.disarmed"))?;
            removed.push("hooks (not a folder)".into());
        }
        return Ok(());
    }
    for entry in fs::read_dir(&hooks)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.ends_with(".sample") || name.ends_with(".disarmed") {
            continue;
        }
        let unchanged = baseline
            .and_then(|repo| repo.hooks.get(&name))
            .is_some_and(|before| hook_content(&path).as_ref() == Some(before));
        if changed_since(&path, since) && !unchanged {
            let mut target = path.clone().into_os_string();
            target.push(".disarmed");
            fs::rename(&path, target)?;
            removed.push(format!("hook {name}"));
        }
    }
    Ok(())
}

/// Every entry of the config file at `path`, in order.
fn config_entries(path: &Path) -> Result<Entries, git2::Error> {
    let config = git2::Config::open(path)?;
    let mut entries = config.entries(None)?;
    let mut all = Vec::new();
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if let Ok(name) = entry.name() {
            let value = entry.has_value().then(|| entry.value_bytes().to_vec());
            all.push((name.to_string(), value));
        }
    }
    Ok(all)
}

/// Removes every entry of the config file at `path` that could run a command and is not
/// among the entries it held when the run began (`before`).
fn disarm_config(
    path: &Path,
    before: &[(String, Option<Vec<u8>>)],
    removed: &mut Vec<String>,
) -> io::Result<()> {
    let now = config_entries(path).map_err(io::Error::other)?;
    let hazards: Vec<_> = now
        .into_iter()
        .filter(|entry| !is_safe(&entry.0) && !before.contains(entry))
        .collect();
    if hazards.is_empty() {
        return Ok(());
    }
    fs::copy(
        path,
        path.with_file_name(format!(
            "{}.disarmed",
            path.file_name()
                .map(|name| name.to_string_lossy())
                .unwrap_or_default()
        )),
    )?;
    let mut config = git2::Config::open(path).map_err(io::Error::other)?;
    let mut gone: Vec<&str> = Vec::new();
    for (name, value) in &hazards {
        if gone.contains(&name.as_str()) {
            continue;
        }
        // Only the new value goes when the key held others before the run; anything
        // that cannot be matched exactly takes the whole key with it.
        let kept_before = before.iter().any(|(old, _)| old == name);
        let exact = value
            .as_deref()
            .and_then(|value| std::str::from_utf8(value).ok())
            .filter(|value| kept_before && !value.contains('\n'))
            .map(|value| format!("^{}$", escape_regex(value)));
        let exact_done =
            exact.is_some_and(|pattern| config.remove_multivar(name, &pattern).is_ok());
        if !exact_done {
            config
                .remove_multivar(name, ".*")
                .map_err(io::Error::other)?;
            gone.push(name);
        }
        if !removed.contains(name) {
            removed.push(name.clone());
        }
    }
    Ok(())
}

/// `value` as a POSIX extended regular expression matching just itself.
fn escape_regex(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if "\\.[]{}()*+?^$|".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Whether a config key (as git2 names it: section and key lowercased) runs nothing.
fn is_safe(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    if SAFE_KEYS.contains(&lower.as_str()) {
        return true;
    }
    let Some((section, rest)) = lower.split_once('.') else {
        return false;
    };
    if SAFE_SECTIONS.contains(&section) {
        return true;
    }
    let key = rest.rsplit_once('.').map(|(_, key)| key);
    SAFE_SUBSECTION_KEYS.iter().any(|(safe_section, keys)| {
        *safe_section == section && key.is_some_and(|key| keys.contains(&key))
    })
}

#[cfg(test)]
mod tests {
    use super::{config_entries, disarm_config, is_safe};

    /// A value the run added to a key the user already had goes; the user's stays, and
    /// so does a key whose only value the run replaced not.
    #[test]
    fn only_new_values_of_a_users_key_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "[include]\n\tpath = mine.inc\n[core]\n\thooksPath = my-hooks\n[alias]\n\tst = status\n",
        )
        .unwrap();
        let before = config_entries(&path).unwrap();
        std::fs::write(
            &path,
            "[include]\n\tpath = mine.inc\n\tpath = (x).inc\n[core]\n\thooksPath = /tmp/evil\n[alias]\n\tst = status\n",
        )
        .unwrap();
        let mut removed = Vec::new();
        disarm_config(&path, &before, &mut removed).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("mine.inc") && text.contains("st = status"),
            "{text}"
        );
        assert!(
            !text.contains("(x).inc") && !text.contains("evil"),
            "{text}"
        );
        assert_eq!(removed, ["include.path", "core.hookspath"]);
        assert!(dir.path().join("config.disarmed").exists());
    }

    #[test]
    fn only_descriptive_keys_are_safe() {
        for safe in [
            "core.bare",
            "remote.origin.url",
            "branch.main.merge",
            "user.name",
        ] {
            assert!(is_safe(safe), "{safe}");
        }
        for hazard in [
            "core.fsmonitor",
            "core.hookspath",
            "core.sshcommand",
            "core.pager",
            "diff.external",
            "filter.x.smudge",
            "remote.origin.uploadpack",
            "include.path",
            "alias.st",
            "core",
        ] {
            assert!(!is_safe(hazard), "{hazard}");
        }
    }
}
