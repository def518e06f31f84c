//! A fake Kubernetes API server for the Job runner's tests. It keeps Jobs, pods and
//! Secrets in memory and answers as the real one does for the calls the runner makes
//! (create, get, list, watch with resource versions, delete with propagation, pod logs
//! with `follow`), either to a `kube::Client` over an in-process `tower` service
//! ([`FakeApiServer::client`]) or over real HTTP on loopback ([`FakeApiServer::serve`],
//! with a kubeconfig pointing at it), for a whole service process to use.
//!
//! There is no cluster on this machine: the tests play the cluster's part, by hand (a pod
//! appears, its container runs, prints, ends; the Job controller sets a condition) or
//! with [`FakeKubelet`], which runs each Job's containers as local processes, and check
//! every request the runner sent. Every call is recorded as (verb, resource), the words a
//! Role's rules use.

mod api;
mod kubelet;
mod objects;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::combinators::UnsyncBoxBody;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

pub use kubelet::{FakeKubelet, PodOutcome};
pub use objects::*;

/// The namespace the runner is configured with; any other is refused (403), as the
/// worker's Role would.
pub const NAMESPACE: &str = "agents";

type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One request the runner made.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: Method,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub verb: String,
    pub resource: String,
    pub body: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Job,
    Pod,
    Secret,
}

impl Kind {
    fn api_version(self) -> &'static str {
        match self {
            Kind::Job => "batch/v1",
            Kind::Pod | Kind::Secret => "v1",
        }
    }

    fn list_kind(self) -> &'static str {
        match self {
            Kind::Job => "JobList",
            Kind::Pod => "PodList",
            Kind::Secret => "SecretList",
        }
    }
}

struct Watch {
    kind: Kind,
    filter: Filter,
    sender: mpsc::UnboundedSender<Bytes>,
}

#[derive(Default, Clone)]
struct Filter {
    name: Option<String>,
    labels: BTreeMap<String, String>,
}

impl Filter {
    fn from_query(query: &BTreeMap<String, String>) -> Self {
        let pairs = |text: Option<&String>| -> BTreeMap<String, String> {
            text.map(|text| {
                text.split(',')
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once('=').expect("equality selectors only");
                        (key.to_string(), value.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
        };
        let mut fields = pairs(query.get("fieldSelector"));
        let name = fields.remove("metadata.name");
        assert!(fields.is_empty(), "unexpected field selector {fields:?}");
        Self {
            name,
            labels: pairs(query.get("labelSelector")),
        }
    }

    fn matches(&self, object: &Value) -> bool {
        let meta = &object["metadata"];
        self.name.as_deref().is_none_or(|name| meta["name"] == name)
            && self
                .labels
                .iter()
                .all(|(key, value)| meta["labels"][key] == value.as_str())
    }
}

#[derive(Default)]
struct Log {
    lines: Vec<String>,
    closed: bool,
    followers: Vec<mpsc::UnboundedSender<Bytes>>,
}

#[derive(Default)]
struct State {
    version: u64,
    objects: BTreeMap<(Kind, String), Value>,
    /// Every change, for watches that start from a resource version.
    history: Vec<(u64, Kind, &'static str, Value)>,
    watches: Vec<Watch>,
    logs: HashMap<String, Log>,
    calls: Vec<Call>,
    /// Answers to force: (verb, resource) -> HTTP status, used once each.
    faults: Vec<(String, String, u16)>,
}

impl State {
    fn bump(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Stores `object` (or removes it) and tells the watches.
    fn change(&mut self, kind: Kind, kind_of_change: &'static str, mut object: Value) {
        let version = self.bump();
        object["metadata"]["resourceVersion"] = json!(version.to_string());
        let name = object["metadata"]["name"]
            .as_str()
            .expect("named")
            .to_string();
        if kind_of_change == "DELETED" {
            self.objects.remove(&(kind, name));
        } else {
            self.objects.insert((kind, name), object.clone());
        }
        let line = watch_line(kind_of_change, &object);
        self.watches.retain(|watch| {
            watch.kind != kind
                || !watch.filter.matches(&object)
                || watch.sender.send(line.clone()).is_ok()
        });
        self.history.push((version, kind, kind_of_change, object));
    }
}

fn watch_line(kind_of_change: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind_of_change, "object": object}))
        .expect("serializable");
    line.push(b'\n');
    Bytes::from(line)
}

/// The fake server; clones share it.
#[derive(Clone, Default)]
pub struct FakeApiServer {
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
}

impl FakeApiServer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves this server over HTTP on a loopback port, until the test process ends;
    /// returns its base URL (`http://127.0.0.1:PORT`).
    pub async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = self.clone();
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let server = server.clone();
            async move { server.handle(request).await.map(axum::body::Body::new) }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        base
    }

    /// Writes a kubeconfig at `path` whose current context is the server at `base` (from
    /// [`FakeApiServer::serve`]) and the agents' namespace, with no credentials: what
    /// `KUBECONFIG` names for a process that finds its cluster the way `kubectl` does.
    pub fn write_kubeconfig(base: &str, path: &std::path::Path) {
        let config = format!(
            "apiVersion: v1\nkind: Config\n\
             clusters:\n- name: fake\n  cluster:\n    server: {base}\n\
             users:\n- name: fake\n  user: {{}}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: {NAMESPACE}\n\
             current-context: fake\n"
        );
        std::fs::write(path, config).unwrap();
    }

    /// A client whose every request this server answers.
    pub fn client(&self) -> kube::Client {
        let server = self.clone();
        let service = tower::service_fn(move |request: Request<kube::client::Body>| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(request).await) }
        });
        kube::Client::new(service, NAMESPACE)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// The calls with this verb on this resource.
    pub fn calls_of(&self, verb: &str, resource: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|call| call.verb == verb && call.resource == resource)
            .collect()
    }

    /// (verb, resource) of every call so far.
    pub fn verbs(&self) -> BTreeSet<(String, String)> {
        self.calls()
            .into_iter()
            .map(|call| (call.verb, call.resource))
            .collect()
    }

    /// The next call of `verb` on `resource` answers with `code`.
    pub fn fail_next(&self, verb: &str, resource: &str, code: u16) {
        self.state()
            .faults
            .push((verb.to_string(), resource.to_string(), code));
    }

    pub fn object(&self, kind: Kind, name: &str) -> Option<Value> {
        self.state().objects.get(&(kind, name.to_string())).cloned()
    }

    pub fn names(&self, kind: Kind) -> Vec<String> {
        self.state()
            .objects
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Creates or replaces an object as a controller would (no call recorded).
    pub fn put(&self, kind: Kind, mut object: Value) {
        let mut state = self.state();
        let name = object["metadata"]["name"]
            .as_str()
            .expect("named")
            .to_string();
        let existing = state.objects.get(&(kind, name)).cloned();
        let change = if existing.is_some() {
            "MODIFIED"
        } else {
            "ADDED"
        };
        object["apiVersion"] = json!(kind.api_version());
        object["kind"] = json!(format!("{kind:?}"));
        object["metadata"]["namespace"] = json!(NAMESPACE);
        if let Some(existing) = existing {
            object["metadata"]["uid"] = existing["metadata"]["uid"].clone();
        } else if object["metadata"]["uid"].is_null() {
            object["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        }
        state.change(kind, change, object);
        drop(state);
        self.changed.notify_waiters();
    }

    /// Deletes an object as a controller would (no call recorded).
    pub fn remove(&self, kind: Kind, name: &str) {
        let mut state = self.state();
        if let Some(object) = state.objects.get(&(kind, name.to_string())).cloned() {
            state.change(kind, "DELETED", object);
        }
        drop(state);
        self.changed.notify_waiters();
    }

    /// The agent container of `pod` prints `line`.
    pub fn print(&self, pod: &str, line: &str) {
        let mut state = self.state();
        let log = state.logs.entry(pod.to_string()).or_default();
        let bytes = Bytes::from(format!("{line}\n"));
        log.lines.push(line.to_string());
        log.followers
            .retain(|follower| follower.send(bytes.clone()).is_ok());
    }

    /// The agent container of `pod` ended: followers' streams end.
    pub fn close_log(&self, pod: &str) {
        let mut state = self.state();
        let log = state.logs.entry(pod.to_string()).or_default();
        log.closed = true;
        log.followers.clear();
    }

    /// Cuts the open log streams of `pod` (a network break); the container goes on.
    pub fn break_log(&self, pod: &str) {
        if let Some(log) = self.state().logs.get_mut(pod) {
            log.followers.clear();
        }
    }

    /// Waits (up to 10 s) until `check` finds what it looks for in the calls.
    pub async fn wait_for_call(&self, verb: &str, resource: &str, count: usize) -> Vec<Call> {
        let wait = self.wait_until(|server| {
            let calls = server.calls_of(verb, resource);
            (calls.len() >= count).then_some(calls)
        });
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("no {count} `{verb} {resource}` calls in 10 s"))
    }

    /// Waits, without a bound, until `check` returns something: it is asked again after
    /// every request and every change a test or the kubelet makes.
    pub async fn wait_until<T>(&self, mut check: impl FnMut(&Self) -> Option<T>) -> T {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(found) = check(self) {
                return found;
            }
            notified.await;
        }
    }
}
