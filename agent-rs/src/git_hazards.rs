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

/// Looks at every repository under `root` (the root's own included) and disarms what
/// changed since `since`; returns one entry per repository disarmed, for `result.json`.
pub fn disarm(root: &Path, since: SystemTime) -> Vec<LeftOut> {
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
            if let Err(error) = disarm_git_dir(&git_dir, since, &mut removed) {
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

fn disarm_git_dir(git_dir: &Path, since: SystemTime, removed: &mut Vec<String>) -> io::Result<()> {
    for name in ["config", "config.worktree"] {
        let path = git_dir.join(name);
        if path.is_file() && changed_since(&path, since) {
            disarm_config(&path, removed)?;
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
        if changed_since(&path, since) {
            let mut target = path.clone().into_os_string();
            target.push(".disarmed");
            fs::rename(&path, target)?;
            removed.push(format!("hook {name}"));
        }
    }
    Ok(())
}

/// Removes every entry of the config file at `path` that could run a command.
fn disarm_config(path: &Path, removed: &mut Vec<String>) -> io::Result<()> {
    let mut config = git2::Config::open(path).map_err(io::Error::other)?;
    let mut unsafe_names = Vec::new();
    {
        let entries = config.entries(None).map_err(io::Error::other)?;
        let mut entries = entries;
        while let Some(entry) = entries.next() {
            let entry = entry.map_err(io::Error::other)?;
            if let Ok(name) = entry.name()
                && !is_safe(name)
                && !unsafe_names.iter().any(|seen| seen == name)
            {
                unsafe_names.push(name.to_string());
            }
        }
    }
    if unsafe_names.is_empty() {
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
    for name in &unsafe_names {
        config
            .remove_multivar(name, ".*")
            .map_err(io::Error::other)?;
        removed.push(name.clone());
    }
    Ok(())
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
    use super::is_safe;

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
