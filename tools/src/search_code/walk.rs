//! The walk and the scan: which files are searched, and how each one is read.
//!
//! The rules follow ripgrep's defaults: `.gitignore`, `.ignore` and git's exclude files
//! are honoured, hidden entries are skipped, symlinks are not followed and `.git` is never
//! entered. `require_git(false)` makes `.gitignore` count in plain folders too (an
//! extracted zip, a fresh workspace without `git init`), where `ignore` would otherwise
//! only honour it inside a git repository.
//!
//! Only regular files are read. A symlink entry is never opened, so a link inside the
//! workspace that points outside cannot leak a file's contents through a search.
//!
//! When the result cap is reached the walk stops at once ([`WalkState::Quit`]): on a large
//! tree that is the difference between milliseconds and seconds. The price is that a
//! capped result holds the matches the parallel walk happened to reach first, not the
//! first ones in path order; the summary says so. An uncapped result is complete and
//! therefore deterministic once sorted.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use grep_matcher::Matcher;
use grep_regex::RegexMatcher;
use grep_searcher::{BinaryDetection, Searcher, SearcherBuilder, Sink, SinkMatch};
use ignore::{WalkBuilder, WalkState};

use super::format::shown_line;
use super::{FileMatches, Found, MatchedLine, SearchPlan};
use crate::jail_names::is_git_dir_name;

/// A walker over `start` with the workspace's ignore rules (see the module docs).
///
/// Global gitignore rules are looked up relative to the workspace root, not the
/// process's working directory.
pub(crate) fn workspace_walker(workspace_root: &Path, start: &Path) -> WalkBuilder {
    let mut builder = WalkBuilder::new(start);
    builder
        .standard_filters(true)
        .require_git(false)
        .follow_links(false)
        .current_dir(workspace_root)
        .filter_entry(|entry| !is_git_dir_name(entry.file_name()));
    builder
}

fn new_searcher() -> Searcher {
    SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(b'\0'))
        .line_number(true)
        .build()
}

/// Searches one file named by the caller (no ignore rules or glob apply to it).
pub(super) fn search_one_file(plan: &SearchPlan, path: &Path) -> Found {
    let mut sink = CollectSink::new(plan);
    let mut unreadable = 0;
    if new_searcher()
        .search_path(&plan.matcher, path, &mut sink)
        .is_err()
    {
        unreadable = 1;
    }
    let skipped_binary = sink.binary;
    let lines = sink.take();
    let capped = lines.len() > plan.max_results;
    let files = if lines.is_empty() {
        Vec::new()
    } else {
        vec![FileMatches {
            path: path.to_path_buf(),
            lines,
        }]
    };
    Found {
        files,
        capped,
        unreadable,
        skipped_binary,
    }
}

/// Searches every file under `start` that the ignore rules and the glob let through.
pub(super) fn search_tree(plan: &SearchPlan, workspace_root: &Path, start: &Path) -> Found {
    let mut builder = workspace_walker(workspace_root, start);
    builder
        .overrides(plan.overrides.clone())
        .threads(plan.threads);

    let matched_lines = AtomicUsize::new(0);
    let capped = AtomicBool::new(false);
    let unreadable = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel::<FileMatches>();

    builder.build_parallel().run(|| {
        // One searcher and one sink per walker thread; both reuse their buffers.
        let mut searcher = new_searcher();
        let mut sink = CollectSink::new(plan);
        let sender = sender.clone();
        let (matched_lines, capped, unreadable) = (&matched_lines, &capped, &unreadable);
        Box::new(move |entry| {
            if capped.load(Ordering::Relaxed) {
                return WalkState::Quit;
            }
            let entry = match entry {
                Ok(entry) => entry,
                Err(_) => {
                    unreadable.fetch_add(1, Ordering::Relaxed);
                    return WalkState::Continue;
                }
            };
            // Directories are walked, not read; symlinks and special files are skipped.
            if !entry.file_type().is_some_and(|kind| kind.is_file()) {
                return WalkState::Continue;
            }
            if searcher
                .search_path(&plan.matcher, entry.path(), &mut sink)
                .is_err()
            {
                unreadable.fetch_add(1, Ordering::Relaxed);
            }
            let lines = sink.take();
            if lines.is_empty() {
                return WalkState::Continue;
            }
            let count = lines.len();
            // The receiver outlives the walk, so sending cannot fail.
            let _ = sender.send(FileMatches {
                path: entry.into_path(),
                lines,
            });
            if matched_lines.fetch_add(count, Ordering::Relaxed) + count > plan.max_results {
                capped.store(true, Ordering::Relaxed);
                return WalkState::Quit;
            }
            WalkState::Continue
        })
    });
    drop(sender);

    Found {
        files: receiver.into_iter().collect(),
        capped: capped.into_inner(),
        unreadable: unreadable.into_inner(),
        skipped_binary: false,
    }
}

/// Collects the matching lines of one file; a file found to be binary yields none.
struct CollectSink<'a> {
    matcher: &'a RegexMatcher,
    lines: Vec<MatchedLine>,
    binary: bool,
    /// One more than the cap, so a capped search can be told from an exact fit.
    limit: usize,
    max_line_chars: usize,
}

impl<'a> CollectSink<'a> {
    fn new(plan: &'a SearchPlan) -> Self {
        Self {
            matcher: &plan.matcher,
            lines: Vec::new(),
            binary: false,
            limit: plan.max_results.saturating_add(1),
            max_line_chars: plan.max_line_chars,
        }
    }

    /// The lines of the file just searched; resets the sink for the next file.
    fn take(&mut self) -> Vec<MatchedLine> {
        let lines = std::mem::take(&mut self.lines);
        if std::mem::take(&mut self.binary) {
            return Vec::new();
        }
        lines
    }
}

impl Sink for CollectSink<'_> {
    type Error = io::Error;

    fn matched(&mut self, _searcher: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, io::Error> {
        // Where the match starts in its line, so a long line is shown around it.
        let line = mat.bytes();
        let start = match self.matcher.find(line) {
            Ok(Some(found)) => found.start(),
            _ => 0,
        };
        self.lines.push(MatchedLine {
            number: mat.line_number().unwrap_or(0),
            text: shown_line(line, start, self.max_line_chars),
        });
        Ok(self.lines.len() < self.limit)
    }

    fn binary_data(&mut self, _searcher: &Searcher, _offset: u64) -> Result<bool, io::Error> {
        self.binary = true;
        Ok(false)
    }
}
