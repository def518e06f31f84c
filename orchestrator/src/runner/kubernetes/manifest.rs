//! The objects one run is made of: a Job and a Secret, built from a [`LaunchSpec`].
//!
//! The Job runs two containers in one pod. The init container is the slim agent image:
//! `agent-rs install` copies the static binary and its CA bundle into a shared `emptyDir`.
//! The main container is the task's environment image (whatever tools the repository
//! needs), running `agent-rs job` from that volume. Both run as a non-root user with a
//! read-only root file system, every capability dropped, no privilege escalation, the
//! runtime's default seccomp profile and no service-account token; writable space is two
//! `emptyDir`s (`/scratch` for the workspace and outputs, `/tmp`).
//!
//! `backoffLimit: 0` and `restartPolicy: Never`: Kubernetes must never run an agent a
//! second time on its own (the worker decides about retries). Secret values (model key,
//! signed URLs) live in the run's Secret, named like the Job and owned by it, so they go
//! when the Job goes; the Job only holds `secretKeyRef`s to it.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, LocalObjectReference,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, Secret,
    SecretKeySelector, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use secrecy::ExposeSecret;

use super::settings::KubeSettings;
use crate::runner::LaunchSpec;

/// Label naming the run (the Job) a pod or Secret belongs to.
pub const LABEL_RUN: &str = "agent-rs/run";
/// The main container, whose log is the run's event stream.
pub const AGENT_CONTAINER: &str = "agent";
/// The init container that copies `agent-rs` into the shared volume.
pub const INSTALL_CONTAINER: &str = "install-agent";
/// Where the agent image keeps its files, and where the main container finds them.
pub const AGENT_IMAGE_BINARY: &str = "/agent-rs";
pub const AGENT_IMAGE_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
pub const AGENT_DIR: &str = "/opt/agent-rs";
pub const SCRATCH_DIR: &str = "/scratch";

const AGENT_VOLUME: &str = "agent-bin";
const SCRATCH_VOLUME: &str = "scratch";
const TMP_VOLUME: &str = "tmp";

/// The Job for `spec`, in `settings.namespace`, running `image` (or the default
/// environment image).
pub fn job(spec: &LaunchSpec, settings: &KubeSettings) -> Job {
    let name = spec.name.0.clone();
    let labels = run_labels(spec);
    let deadline_secs = i64::try_from(spec.deadline.as_secs().max(1)).unwrap_or(i64::MAX);
    let image = spec
        .image
        .clone()
        .unwrap_or_else(|| settings.environment_image.clone());
    let pod = PodSpec {
        restart_policy: Some("Never".to_string()),
        automount_service_account_token: Some(false),
        // No `*_SERVICE_HOST` variables: the agent needs to know nothing of the cluster.
        enable_service_links: Some(false),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(settings.run_as_user),
            run_as_group: Some(settings.run_as_user),
            fs_group: Some(settings.run_as_user),
            seccomp_profile: Some(runtime_default_seccomp()),
            ..PodSecurityContext::default()
        }),
        init_containers: Some(vec![install_container(settings)]),
        containers: vec![agent_container(spec, settings, image)],
        volumes: Some(vec![
            empty_dir(AGENT_VOLUME, None),
            empty_dir(SCRATCH_VOLUME, Some(settings.scratch_mib)),
            empty_dir(TMP_VOLUME, None),
        ]),
        image_pull_secrets: (!settings.image_pull_secrets.is_empty()).then(|| {
            settings
                .image_pull_secrets
                .iter()
                .map(|name| LocalObjectReference { name: name.clone() })
                .collect()
        }),
        ..PodSpec::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(settings.namespace.clone()),
            labels: Some(labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(0),
            active_deadline_seconds: Some(deadline_secs),
            ttl_seconds_after_finished: Some(settings.ttl_after_finished_secs),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..JobSpec::default()
        }),
        status: None,
    }
}

/// The run's Secret: `spec.secret_env`, named like the Job and owned by the Job with
/// `job_uid`, so the garbage collector deletes it with the Job.
pub fn secret(spec: &LaunchSpec, settings: &KubeSettings, job_uid: &str) -> Secret {
    let data = spec
        .secret_env
        .iter()
        .map(|(key, value)| {
            (
                key.clone(),
                ByteString(value.expose_secret().as_bytes().to_vec()),
            )
        })
        .collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(spec.name.0.clone()),
            namespace: Some(settings.namespace.clone()),
            labels: Some(run_labels(spec)),
            owner_references: Some(vec![OwnerReference {
                api_version: "batch/v1".to_string(),
                kind: "Job".to_string(),
                name: spec.name.0.clone(),
                uid: job_uid.to_string(),
                controller: Some(true),
                block_owner_deletion: None,
            }]),
            ..ObjectMeta::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_string()),
        immutable: Some(true),
        ..Secret::default()
    }
}

/// The launch's labels plus [`LABEL_RUN`].
fn run_labels(spec: &LaunchSpec) -> BTreeMap<String, String> {
    let mut labels = spec.labels.clone();
    labels.insert(LABEL_RUN.to_string(), spec.name.0.clone());
    labels
}

fn install_container(settings: &KubeSettings) -> Container {
    Container {
        name: INSTALL_CONTAINER.to_string(),
        image: Some(settings.agent_image.clone()),
        image_pull_policy: settings.image_pull_policy.clone(),
        command: Some(
            [
                AGENT_IMAGE_BINARY,
                "install",
                AGENT_DIR,
                "--with",
                AGENT_IMAGE_CA_BUNDLE,
            ]
            .map(String::from)
            .to_vec(),
        ),
        volume_mounts: Some(vec![mount(AGENT_VOLUME, AGENT_DIR, false)]),
        security_context: Some(locked_down()),
        resources: Some(resources(100, 64 << 20)),
        ..Container::default()
    }
}

fn agent_container(spec: &LaunchSpec, settings: &KubeSettings, image: String) -> Container {
    let secret_name = spec.name.0.clone();
    let mut env: Vec<EnvVar> = [
        ("HOME", SCRATCH_DIR.to_string()),
        ("TMPDIR", "/tmp".to_string()),
        ("AGENT_WORK_DIR", format!("{SCRATCH_DIR}/workspace")),
        ("SSL_CERT_FILE", format!("{AGENT_DIR}/ca-certificates.crt")),
        // The pod is the sandbox; bubblewrap (the agent's default for its shell commands)
        // is in few images and could not make namespaces in a locked-down pod anyway.
        ("AGENT_SANDBOX", "off".to_string()),
    ]
    .into_iter()
    .filter(|(name, _)| !spec.env.contains_key(*name))
    .map(|(name, value)| plain_env(name, value))
    .collect();
    env.extend(
        spec.env
            .iter()
            .map(|(name, value)| plain_env(name, value.clone())),
    );
    env.extend(spec.secret_env.keys().map(|name| EnvVar {
        name: name.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret_name.clone(),
                key: name.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }));
    let cpu_millis = spec
        .resources
        .cpu_millis
        .unwrap_or(settings.default_cpu_millis);
    let memory_bytes = spec
        .resources
        .memory_bytes
        .unwrap_or(settings.default_memory_mib.saturating_mul(1 << 20));
    Container {
        name: AGENT_CONTAINER.to_string(),
        image: Some(image),
        image_pull_policy: settings.image_pull_policy.clone(),
        command: Some(vec![format!("{AGENT_DIR}/agent-rs"), "job".to_string()]),
        env: Some(env),
        working_dir: Some(SCRATCH_DIR.to_string()),
        volume_mounts: Some(vec![
            mount(AGENT_VOLUME, AGENT_DIR, true),
            mount(SCRATCH_VOLUME, SCRATCH_DIR, false),
            mount(TMP_VOLUME, "/tmp", false),
        ]),
        security_context: Some(locked_down()),
        resources: Some(resources(cpu_millis, memory_bytes)),
        ..Container::default()
    }
}

fn plain_env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: Some(value),
        value_from: None,
    }
}

/// Requests equal to limits: the scheduler reserves what the run may use.
fn resources(cpu_millis: u32, memory_bytes: u64) -> ResourceRequirements {
    let quantities = BTreeMap::from([
        ("cpu".to_string(), Quantity(format!("{cpu_millis}m"))),
        ("memory".to_string(), Quantity(memory_bytes.to_string())),
    ]);
    ResourceRequirements {
        requests: Some(quantities.clone()),
        limits: Some(quantities),
        ..ResourceRequirements::default()
    }
}

fn locked_down() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        privileged: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        }),
        seccomp_profile: Some(runtime_default_seccomp()),
        ..SecurityContext::default()
    }
}

fn runtime_default_seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        localhost_profile: None,
    }
}

fn empty_dir(name: &str, size_mib: Option<u64>) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: None,
            size_limit: size_mib.map(|mib| Quantity(format!("{mib}Mi"))),
        }),
        ..Volume::default()
    }
}

fn mount(volume: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: volume.to_string(),
        mount_path: path.to_string(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}
