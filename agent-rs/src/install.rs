//! `agent-rs install DIR`: copies this executable (and the given files) into `DIR`.
//!
//! The agent image is `FROM scratch`: it has no `cp`, only `agent-rs` and a CA bundle.
//! A Kubernetes init container (or the container runner's first step) runs this to
//! put both into a volume the task's environment image mounts, which then runs
//! `DIR/agent-rs job`. Each file is written under a temporary name and renamed, so a
//! reader never sees half a binary.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The name the executable gets in the target folder.
pub const BINARY_NAME: &str = "agent-rs";

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot find this executable: {0}")]
    CurrentExe(#[source] io::Error),
    #[error("`{path}` has no file name")]
    NoFileName { path: PathBuf },
    #[error("cannot copy `{from}` to `{to}`: {source}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Copies the running executable to `dir/agent-rs` (mode 755) and each of `with` to
/// `dir/<its file name>` (mode 644). Returns the paths written.
pub fn install(dir: &Path, with: &[PathBuf]) -> Result<Vec<PathBuf>, InstallError> {
    let exe = std::env::current_exe().map_err(InstallError::CurrentExe)?;
    let mut written = vec![copy(&exe, &dir.join(BINARY_NAME), 0o755)?];
    for file in with {
        let name = file
            .file_name()
            .ok_or_else(|| InstallError::NoFileName { path: file.clone() })?;
        written.push(copy(file, &dir.join(name), 0o644)?);
    }
    Ok(written)
}

fn copy(from: &Path, to: &Path, mode: u32) -> Result<PathBuf, InstallError> {
    let error = |source| InstallError::Copy {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    };
    let partial = to.with_extension("partial");
    fs::copy(from, &partial).map_err(error)?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(mode)).map_err(error)?;
    fs::rename(&partial, to).map_err(error)?;
    Ok(to.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_copies_the_executable_and_the_extra_files() {
        let source = tempfile::tempdir().unwrap();
        let bundle = source.path().join("ca-certificates.crt");
        fs::write(&bundle, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let target = tempfile::tempdir().unwrap();
        let written = install(target.path(), std::slice::from_ref(&bundle)).unwrap();
        assert_eq!(
            written,
            vec![
                target.path().join("agent-rs"),
                target.path().join("ca-certificates.crt")
            ]
        );
        let exe = std::env::current_exe().unwrap();
        assert_eq!(fs::read(&written[0]).unwrap(), fs::read(exe).unwrap());
        let mode = fs::metadata(&written[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        assert_eq!(
            fs::read_to_string(&written[1]).unwrap(),
            "-----BEGIN CERTIFICATE-----\n"
        );
        assert_eq!(
            fs::metadata(&written[1]).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn a_missing_extra_file_is_an_error_naming_it() {
        let target = tempfile::tempdir().unwrap();
        let err = install(target.path(), &[PathBuf::from("/no/such/bundle.crt")]).unwrap_err();
        assert!(err.to_string().contains("/no/such/bundle.crt"), "{err}");
    }
}
