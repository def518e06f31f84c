//! The runner's folder of one run on the host: what it holds and who may read it (see
//! the module docs of [`super`] and of [`super::spec`]).

use std::path::{Path, PathBuf};

use super::spec;
use crate::runner::RunnerError;
use crate::runner::process::egress;

/// The runner's folder of one run on the host.
#[derive(Debug, Clone)]
pub struct RunFiles {
    pub(super) name: String,
    pub(super) dir: PathBuf,
}

impl RunFiles {
    /// Refuses names that are not run names (a name from a row is data: it must not walk
    /// out of the state folder or name someone else's container).
    pub(super) fn new(state_dir: &Path, name: &str) -> Result<Self, RunnerError> {
        crate::runner::check_run_name(name)?;
        Ok(Self {
            name: name.to_string(),
            dir: state_dir.join(name),
        })
    }

    /// The folder mounted at [`spec::SECRETS_DIR`].
    pub(super) fn secrets_dir(&self) -> PathBuf {
        self.dir.join("secrets")
    }

    pub(super) fn secrets_file(&self) -> PathBuf {
        self.secrets_dir().join(spec::SECRETS_FILE)
    }

    /// The folder, readable by its owner only (whatever the umask, and if it was there
    /// before): the container sees the files mounted into it, nobody else on the host
    /// sees them. Every mode below is set explicitly for the same reason: a umask would
    /// take away the bits the container's user needs.
    pub(super) fn create(&self) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent)?;
        }
        match std::fs::DirBuilder::new().mode(0o700).create(&self.dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
    }

    /// The secrets file, in a folder of its own: written whole under a temporary name
    /// while the folder is closed, then readable by the container's user ("other":
    /// `r--`) and deletable by it (the folder: `-wx` for "other", no sticky bit, no
    /// listing). The run's folder keeps everyone else on the host out all along.
    pub(super) fn write_secrets(&self, text: &str) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
        let dir = self.secrets_dir();
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let tmp = dir.join(format!("{}.tmp", spec::SECRETS_FILE));
        let _ = std::fs::remove_file(&tmp);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.set_permissions(std::fs::Permissions::from_mode(0o444))?;
        file.sync_all()?;
        std::fs::rename(tmp, self.secrets_file())?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o703))
    }

    /// Once the wrapper has deleted the secrets file, the folder has done its job: its
    /// write bit goes, so the agent's commands cannot fill the host's disk through it.
    /// Nothing while the file is still there (the wrapper has not run yet).
    pub(super) fn seal_secrets(&self) {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.secrets_dir();
        if dir.is_dir()
            && !self.secrets_file().exists()
            && let Err(err) = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        {
            tracing::warn!(run = %self.name, error = %err, "cannot close the run's secrets folder");
        }
    }

    /// The egress socket, open to the container's (other) user.
    pub(super) fn open_egress_socket(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.dir.join(egress::EGRESS_DIR);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(
            dir.join(egress::SOCKET),
            std::fs::Permissions::from_mode(0o666),
        )
    }

    /// The run is over: its secrets (if the wrapper never ran) are no longer needed, and its egress proxy stops
    /// (it ends when the `exit` mark appears).
    pub(super) fn run_over(&self) {
        if !self.dir.is_dir() {
            return;
        }
        let _ = std::fs::remove_dir_all(self.secrets_dir());
        let _ = std::fs::write(self.dir.join("exit"), b"over\n");
    }

    pub(super) fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()))
            .permissions()
            .mode()
            & 0o7777
    }

    /// The run's folder is its owner's; inside it, the secrets file is readable by
    /// "other" (the container's user) and the folder lets "other" delete it, without
    /// listing it; once it is gone the folder closes. Whatever folder was there before.
    #[test]
    fn the_secrets_file_is_readable_and_deletable_by_the_container_only_until_it_is_gone() {
        let state = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let files =
            RunFiles::new(state.path(), "agent-abc-1").unwrap_or_else(|err| panic!("{err}"));
        std::fs::create_dir(&files.dir).unwrap_or_else(|err| panic!("{err}"));
        std::fs::set_permissions(&files.dir, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|err| panic!("{err}"));
        files.create().unwrap_or_else(|err| panic!("{err}"));
        files
            .write_secrets("A='1'\n")
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(mode(&files.dir), 0o700);
        assert_eq!(mode(&files.secrets_dir()), 0o703);
        assert_eq!(mode(&files.secrets_file()), 0o444);
        assert_eq!(
            std::fs::read_to_string(files.secrets_file()).unwrap_or_default(),
            "A='1'\n"
        );
        // Not read yet: the folder stays open.
        files.seal_secrets();
        assert_eq!(mode(&files.secrets_dir()), 0o703);
        // Written again (a launch retried before its container existed): the same.
        files
            .write_secrets("A='2'\n")
            .unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(mode(&files.secrets_dir()), 0o703);
        assert_eq!(
            std::fs::read_dir(files.secrets_dir())
                .map(Iterator::count)
                .unwrap_or_default(),
            1
        );
        std::fs::remove_file(files.secrets_file()).unwrap_or_else(|err| panic!("{err}"));
        files.seal_secrets();
        assert_eq!(mode(&files.secrets_dir()), 0o700);
        files.run_over();
        assert!(!files.secrets_dir().exists());
    }
}
