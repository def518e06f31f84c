//! The container one run is: built from a [`LaunchSpec`] as the engine's create body.
//!
//! The same injection and the same limits as a Kubernetes Job ([`crate::runner::kubernetes::manifest`]):
//! the task's environment image runs `agent-rs job` from the agent image's files (a
//! volume, mounted read-only at [`AGENT_DIR`]), as a non-root user, with a read-only root
//! file system, every capability dropped, `no-new-privileges`, CPU, memory and process
//! limits, and writable space only in two tmpfs (`/scratch`, `/tmp`). The container is
//! the sandbox, so the agent's own shell sandbox (bubblewrap, absent from most images) is
//! off.
//!
//! Secret values go, by default, into a file of the run's folder on the host, in a
//! folder of its own mounted at [`SECRETS_DIR`], which a `sh` wrapper ([`WRAPPER`]) reads
//! into the environment, deletes, and only then becomes the agent: the engine's
//! inspectable config (`podman inspect`, `docker inspect`) holds their names in the
//! wrapper, never their values, and once the agent runs the file is gone, so no command
//! it runs (the same user as the wrapper) can read it. The folder is writable by the
//! container's user for that deletion alone: the file is the host's, readable but not
//! writable by "other", and the folder gives "other" write and search but not listing
//! (no sticky bit, which would stop the deletion). The container's user is "other" to
//! the host's owner under every uid mapping: rootful (uid 65532 is nobody the host knows)
//! and rootless (the owner maps to root in the container, 65532 to a sub-uid). The runner
//! takes the folder's write bit back once the file is gone ([`super::RunFiles`]).
//!
//! The wrapper fails closed: a file it cannot read (a container started a second time,
//! by hand: the secrets are read once) or cannot delete ends the container with code 2
//! and says why on its stderr, before anything of the agent runs.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use secrecy::ExposeSecret;

use super::settings::ContainerSettings;
use crate::runner::LaunchSpec;
use crate::runner::kubernetes::manifest::{AGENT_DIR, LABEL_RUN, SCRATCH_DIR};
use crate::runner::process::egress;

/// Where the run's secrets folder appears in the container.
pub const SECRETS_DIR: &str = "/run/agent-rs-secrets";

/// The secrets file's name in its folder (on the host and in the container).
pub const SECRETS_FILE: &str = "env";

/// Reads the secrets file (`$0` is its folder) into the environment, deletes it, checks
/// it is gone, then becomes the agent; any failure exits with 2 before the agent starts.
/// Its own variables are not exported, so the agent does not inherit them.
pub const WRAPPER: &str = concat!(
    "f=\"$0/env\"; ",
    "fail() { echo \"agent-rs container: $1\" >&2; exit 2; }; ",
    "[ -f \"$f\" ] || fail \"the run's secrets ($f) are gone: they are read once, ",
    "when the container first starts, and a container started again does not get them; ",
    "launch the run anew\"; ",
    "set -a; . \"$f\" || fail \"cannot read the run's secrets ($f)\"; set +a; ",
    "rm -f \"$f\"; [ ! -e \"$f\" ] || fail \"cannot delete the run's secrets ($f) after ",
    "reading them; not starting the agent with them readable\"; ",
    "unset f; exec \"$@\"",
);

/// What the create call needs beyond the spec: the agent volume and the run's folder.
pub struct Mounts<'a> {
    /// The volume holding `agent-rs` and the CA bundle.
    pub agent_volume: &'a str,
    /// The run's secrets folder on the host, holding [`SECRETS_FILE`]
    /// (`SecretsMode::File` with secrets to pass).
    pub secrets_dir: Option<&'a std::path::Path>,
    /// The run's egress folder on the host (`network = "egress"`).
    pub egress_dir: Option<&'a std::path::Path>,
}

/// The launch's labels plus [`LABEL_RUN`].
pub fn labels(spec: &LaunchSpec) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_RUN.to_string(), spec.name.0.clone());
    labels
}

/// The create body of `spec`'s container.
pub fn container(
    spec: &LaunchSpec,
    settings: &ContainerSettings,
    mounts: &Mounts<'_>,
) -> ContainerCreateBody {
    let agent = format!("{AGENT_DIR}/agent-rs");
    let mut env = BTreeMap::from([
        ("HOME".to_string(), SCRATCH_DIR.to_string()),
        ("TMPDIR".to_string(), "/tmp".to_string()),
        (
            "AGENT_WORK_DIR".to_string(),
            format!("{SCRATCH_DIR}/workspace"),
        ),
        (
            "SSL_CERT_FILE".to_string(),
            format!("{AGENT_DIR}/ca-certificates.crt"),
        ),
        ("AGENT_SANDBOX".to_string(), "off".to_string()),
    ]);
    if mounts.egress_dir.is_some() {
        env.extend(egress::agent_env());
    }
    env.extend(spec.env.clone());
    let (entrypoint, cmd) = match mounts.secrets_dir {
        Some(_) => (
            vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                WRAPPER.to_string(),
                SECRETS_DIR.to_string(),
            ],
            vec![agent, "job".to_string()],
        ),
        None => {
            env.extend(
                spec.secret_env
                    .iter()
                    .map(|(name, value)| (name.clone(), value.expose_secret().to_string())),
            );
            (vec![agent], vec!["job".to_string()])
        }
    };
    let mut binds = vec![format!("{}:{AGENT_DIR}:ro", mounts.agent_volume)];
    if let Some(dir) = mounts.secrets_dir {
        // Writable, so the wrapper can delete the file (see the module docs).
        binds.push(format!("{}:{SECRETS_DIR}:rw", dir.display()));
    }
    if let Some(dir) = mounts.egress_dir {
        binds.push(format!("{}:{}", dir.display(), egress::SANDBOX_EGRESS_DIR));
    }
    let cpu_millis = spec
        .resources
        .cpu_millis
        .unwrap_or(settings.default_cpu_millis);
    let memory_bytes = spec
        .resources
        .memory_bytes
        .unwrap_or(settings.default_memory_mib.saturating_mul(1 << 20));
    let tmpfs_options = format!("rw,nosuid,nodev,size={}m,mode=1777", settings.scratch_mib);
    let network_mode = if settings.egress() {
        "none".to_string()
    } else {
        settings.network.clone()
    };
    let user = settings.run_as_user;
    ContainerCreateBody {
        image: Some(
            spec.image
                .clone()
                .unwrap_or_else(|| settings.environment_image.clone()),
        ),
        entrypoint: Some(entrypoint),
        cmd: Some(cmd),
        env: Some(
            env.into_iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect(),
        ),
        user: Some(format!("{user}:{user}")),
        working_dir: Some(SCRATCH_DIR.to_string()),
        labels: Some(labels(spec)),
        attach_stdin: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(HostConfig {
            binds: Some(binds),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".to_string()]),
            security_opt: Some(vec!["no-new-privileges".to_string()]),
            privileged: Some(false),
            network_mode: Some(network_mode),
            extra_hosts: (!settings.extra_hosts.is_empty()).then(|| settings.extra_hosts.clone()),
            memory: Some(i64::try_from(memory_bytes).unwrap_or(i64::MAX)),
            // No swap beyond the memory limit.
            memory_swap: Some(i64::try_from(memory_bytes).unwrap_or(i64::MAX)),
            nano_cpus: Some(i64::from(cpu_millis).saturating_mul(1_000_000)),
            pids_limit: Some(settings.pids_limit),
            tmpfs: Some(HashMap::from([
                (SCRATCH_DIR.to_string(), tmpfs_options.clone()),
                ("/tmp".to_string(), tmpfs_options),
            ])),
            // The engine must never run an agent twice on its own.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            auto_remove: Some(false),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    }
}

/// The secrets file's text: `NAME='value'` lines a POSIX `sh` reads back exactly.
pub fn secrets_file(spec: &LaunchSpec) -> String {
    spec.secret_env
        .iter()
        .map(|(name, value)| {
            let quoted = value.expose_secret().replace('\'', r"'\''");
            format!("{name}='{quoted}'\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::SecretString;

    use super::*;
    use crate::runner::{Resources, run_name};
    use crate::task::TaskId;

    fn spec() -> LaunchSpec {
        let task_id = TaskId::new();
        LaunchSpec {
            name: run_name(task_id, 2),
            task_id,
            attempt: 2,
            labels: BTreeMap::from([("agent-rs/task-id".to_string(), task_id.to_string())]),
            env: BTreeMap::from([
                ("AGENT_TASK".to_string(), "fix it".to_string()),
                ("AGENT_SANDBOX".to_string(), "bwrap".to_string()),
            ]),
            secret_env: BTreeMap::from([
                (
                    "OPENAI_API_KEY".to_string(),
                    SecretString::from("sk-it's $HOME `x` \"q\"\nline"),
                ),
                ("AGENT_UPLOAD_URLS".to_string(), SecretString::from("{}")),
            ]),
            resources: Resources {
                cpu_millis: None,
                memory_bytes: Some(300 << 20),
            },
            image: None,
            deadline: Duration::from_secs(60),
        }
    }

    fn env_of(body: &ContainerCreateBody) -> BTreeMap<String, String> {
        body.env
            .iter()
            .flatten()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn with_a_secrets_folder_no_secret_value_is_in_the_body() {
        let spec = spec();
        let settings = ContainerSettings::default();
        let dir = std::path::Path::new("/state/run/secrets");
        let body = container(
            &spec,
            &settings,
            &Mounts {
                agent_volume: "agent-rs-bin-1",
                secrets_dir: Some(dir),
                egress_dir: Some(std::path::Path::new("/state/run/egress")),
            },
        );
        let text = serde_json::to_string(&body).unwrap_or_default();
        assert!(!text.contains("sk-it"), "{text}");
        let env = env_of(&body);
        assert!(!env.contains_key("OPENAI_API_KEY"));
        // The task's own settings win over the runner's defaults.
        assert_eq!(env["AGENT_SANDBOX"], "bwrap");
        assert_eq!(env["AGENT_EGRESS_SOCKET"], "/run/agent-egress/proxy.sock");
        let host = body.host_config.unwrap_or_default();
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.memory, Some(300 << 20));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        let binds = host.binds.unwrap_or_default();
        assert!(
            binds.contains(&format!("agent-rs-bin-1:{AGENT_DIR}:ro")),
            "{binds:?}"
        );
        assert!(
            binds.contains(&format!("/state/run/secrets:{SECRETS_DIR}:rw")),
            "{binds:?}"
        );
        assert_eq!(
            body.entrypoint,
            Some(vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                WRAPPER.to_string(),
                SECRETS_DIR.to_string()
            ])
        );
        assert_eq!(
            body.cmd,
            Some(vec![format!("{AGENT_DIR}/agent-rs"), "job".to_string()])
        );
        assert_eq!(body.user.as_deref(), Some("65532:65532"));
        assert_eq!(
            body.labels.unwrap_or_default().get(LABEL_RUN),
            Some(&spec.name.0)
        );
    }

    #[test]
    fn without_a_secrets_folder_secrets_are_environment_variables() {
        let spec = spec();
        let settings = ContainerSettings {
            network: "host".to_string(),
            ..ContainerSettings::default()
        };
        let body = container(
            &spec,
            &settings,
            &Mounts {
                agent_volume: "v",
                secrets_dir: None,
                egress_dir: None,
            },
        );
        let env = env_of(&body);
        assert_eq!(env["AGENT_UPLOAD_URLS"], "{}");
        assert!(!env.contains_key("HTTP_PROXY"));
        assert_eq!(body.entrypoint, Some(vec![format!("{AGENT_DIR}/agent-rs")]));
        let host = body.host_config.unwrap_or_default();
        assert_eq!(host.network_mode.as_deref(), Some("host"));
    }

    /// Runs [`WRAPPER`] with `dir` as its folder and `path` as its `PATH`; the command
    /// prints `OPENAI_API_KEY` and whether the file is still there.
    fn wrap(dir: &std::path::Path, path: &std::ffi::OsStr) -> std::process::Output {
        std::process::Command::new("/bin/sh")
            .args(["-c", WRAPPER])
            .arg(dir)
            .args([
                "sh",
                "-c",
                "printf '%s' \"$OPENAI_API_KEY\"; [ -e \"$1\" ] && printf ' still there'; \
                 [ -z \"$f\" ] || printf ' wrapper variable leaked'",
                "sh",
            ])
            .arg(dir.join(SECRETS_FILE))
            .env_clear()
            .env("PATH", path)
            .output()
            .unwrap_or_else(|err| panic!("{err}"))
    }

    fn secrets_dir_with_file(spec: &LaunchSpec) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        std::fs::write(dir.path().join(SECRETS_FILE), secrets_file(spec))
            .unwrap_or_else(|err| panic!("{err}"));
        dir
    }

    /// What `sh` reads back from the file is exactly the secret, whatever it holds, and
    /// the file is gone before the command starts.
    #[test]
    fn the_wrapper_reads_the_secrets_exactly_and_deletes_them_first() {
        assert!(
            WRAPPER.contains(&format!("\"$0/{SECRETS_FILE}\"")),
            "{WRAPPER}"
        );
        let spec = spec();
        let dir = secrets_dir_with_file(&spec);
        let output = wrap(dir.path(), &std::env::var_os("PATH").unwrap_or_default());
        assert!(output.status.success(), "{output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "sk-it's $HOME `x` \"q\"\nline"
        );
        assert!(!dir.path().join(SECRETS_FILE).exists());
    }

    /// No file (a second start), or one the wrapper cannot delete (here an `rm` that
    /// deletes nothing): code 2, a reason, and the command never runs.
    #[test]
    fn the_wrapper_fails_closed_without_the_file_or_when_it_cannot_delete_it() {
        let spec = spec();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let empty = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let output = wrap(empty.path(), &path);
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("are gone"), "{stderr}");

        let dir = secrets_dir_with_file(&spec);
        let bin = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        std::os::unix::fs::symlink("/bin/sh", bin.path().join("sh"))
            .unwrap_or_else(|err| panic!("{err}"));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let mut rm = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o755)
                .open(bin.path().join("rm"))
                .unwrap_or_else(|err| panic!("{err}"));
            std::io::Write::write_all(&mut rm, b"#!/bin/sh\nexit 0\n")
                .unwrap_or_else(|err| panic!("{err}"));
        }
        let output = wrap(dir.path(), bin.path().as_os_str());
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(output.stdout.is_empty(), "{output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("cannot delete"), "{stderr}");
    }
}
