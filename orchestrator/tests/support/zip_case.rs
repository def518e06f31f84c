//! Zip archives built (and forged) for the extraction tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use orchestrator::WorkspaceError;
use orchestrator::workspace::{ExtractOptions, ExtractStats, extract_zip};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

pub enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Exec(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    /// A file entry whose unix mode claims another file type (devices, FIFOs).
    Typed(&'a str, u32),
}

/// Builds a zip in `<tmp>/in/upload.zip`; the destination is `<tmp>/out/ws`.
pub struct Case {
    pub tmp: tempfile::TempDir,
}

impl Case {
    pub fn new(entries: &[Entry<'_>]) -> Self {
        let case = Self::empty();
        let mut zip = ZipWriter::new(std::fs::File::create(case.zip()).unwrap());
        let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for entry in entries {
            match entry {
                Entry::File(name, body) => {
                    zip.start_file(*name, opts.unix_permissions(0o644)).unwrap();
                    zip.write_all(body).unwrap();
                }
                Entry::Exec(name, body) => {
                    zip.start_file(*name, opts.unix_permissions(0o755)).unwrap();
                    zip.write_all(body).unwrap();
                }
                Entry::Dir(name) => zip.add_directory(*name, opts).unwrap(),
                Entry::Symlink(name, target) => zip.add_symlink(*name, *target, opts).unwrap(),
                Entry::Typed(name, mode) => {
                    zip.start_file(*name, opts.external_attributes(mode << 16))
                        .unwrap();
                }
            }
        }
        zip.finish().unwrap();
        case
    }

    pub fn empty() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("in")).unwrap();
        Self { tmp }
    }

    pub fn zip(&self) -> PathBuf {
        self.tmp.path().join("in/upload.zip")
    }

    pub fn dest(&self) -> PathBuf {
        self.tmp.path().join("out/ws")
    }

    pub fn extract(&self, opts: &ExtractOptions) -> Result<ExtractStats, WorkspaceError> {
        extract_zip(&self.zip(), &self.dest(), opts)
    }

    /// Rewrites bytes of the archive (to forge what the writer will not produce).
    pub fn patch(&self, f: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = std::fs::read(self.zip()).unwrap();
        f(&mut bytes);
        std::fs::write(self.zip(), bytes).unwrap();
    }

    /// After a refusal: the destination does not exist and the only file anywhere under
    /// the temp root is the upload itself (no staging folder, nothing that escaped).
    pub fn assert_nothing_left(&self) {
        assert!(!self.dest().exists(), "destination was created");
        let files: Vec<PathBuf> = walkdir::WalkDir::new(self.tmp.path())
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| !e.file_type().is_dir())
            .map(|e| e.path().to_path_buf())
            .collect();
        assert_eq!(files, [self.zip()]);
        if let Ok(out) = std::fs::read_dir(self.tmp.path().join("out")) {
            assert_eq!(out.count(), 0, "staging left behind");
        }
    }
}

pub fn refused(case: &Case, opts: &ExtractOptions) -> WorkspaceError {
    let err = case.extract(opts).unwrap_err();
    assert!(err.is_input_error(), "{err:?}");
    case.assert_nothing_left();
    err
}

pub fn default_opts() -> ExtractOptions {
    ExtractOptions::default()
}

pub fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Offsets of every local (`PK\3\4`) and central (`PK\1\2`) header.
pub fn headers(bytes: &[u8]) -> (Vec<usize>, Vec<usize>) {
    let find = |sig: &[u8; 4]| -> Vec<usize> {
        bytes
            .windows(4)
            .enumerate()
            .filter(|(_, w)| w == sig)
            .map(|(i, _)| i)
            .collect()
    };
    (find(b"PK\x03\x04"), find(b"PK\x01\x02"))
}
