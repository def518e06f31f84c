//! How the fake answers a request: the path parsed into a route (resource, verb, name),
//! the call recorded, injected faults served first, then the object store in memory
//! read or changed as the real API server would (watches fed, a Job's deletion
//! collecting its pods and Secrets).

use std::collections::BTreeMap;
use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{Body, Call, FakeApiServer, Filter, Kind, NAMESPACE, State, Watch, watch_line};

impl FakeApiServer {
    pub(super) async fn handle<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: std::fmt::Debug,
    {
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await.expect("request body").to_bytes();
        let body: Option<Value> = (!bytes.is_empty())
            .then(|| serde_json::from_slice(&bytes).expect("request body is JSON"));
        let query: BTreeMap<String, String> = parts
            .uri
            .query()
            .map(|query| {
                url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let path = parts.uri.path().to_string();
        let route = Route::parse(&parts.method, &path, &query);
        let call = Call {
            method: parts.method.clone(),
            path: path.clone(),
            query: query.clone(),
            verb: route
                .as_ref()
                .map_or("unknown".to_string(), |r| r.verb.clone()),
            resource: route.as_ref().map_or(path.clone(), |r| r.resource.clone()),
            body: body.clone(),
        };
        let response = {
            let mut state = self.state();
            state.calls.push(call.clone());
            self.answer(&mut state, route, &call, &query, body)
        };
        self.changed.notify_waiters();
        response
    }

    fn answer(
        &self,
        state: &mut State,
        route: Option<Route>,
        call: &Call,
        query: &BTreeMap<String, String>,
        body: Option<Value>,
    ) -> Response<Body> {
        let Some(route) = route else {
            return status(404, "NotFound", "no such path in the fake API server");
        };
        if route.namespace != NAMESPACE {
            return status(403, "Forbidden", "outside the agents' namespace");
        }
        if let Some(at) = state
            .faults
            .iter()
            .position(|(verb, resource, _)| *verb == call.verb && *resource == call.resource)
        {
            let (_, _, code) = state.faults.remove(at);
            return status(code, "InternalError", "injected fault");
        }
        let kind = route.kind;
        match (call.verb.as_str(), route.name) {
            ("create", None) => {
                let mut object = body.expect("create has a body");
                let name = object["metadata"]["name"]
                    .as_str()
                    .expect("named")
                    .to_string();
                if state.objects.contains_key(&(kind, name.clone())) {
                    return status(409, "AlreadyExists", &format!("{name} already exists"));
                }
                object["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                object["metadata"]["namespace"] = json!(NAMESPACE);
                object["metadata"]["creationTimestamp"] = json!(now_rfc3339());
                state.change(kind, "ADDED", object);
                let stored = state.objects[&(kind, name)].clone();
                json_response(201, &stored)
            }
            ("get", Some(name)) if call.resource == "pods/log" => {
                if !state.objects.contains_key(&(Kind::Pod, name.clone())) {
                    return status(404, "NotFound", &format!("pod {name} not found"));
                }
                let log = state.logs.entry(name).or_default();
                let text: String = log.lines.iter().map(|line| format!("{line}\n")).collect();
                if query.get("follow").map(String::as_str) != Some("true") || log.closed {
                    return text_response(text);
                }
                let (sender, receiver) = mpsc::unbounded_channel();
                let _ = sender.send(Bytes::from(text));
                log.followers.push(sender);
                streaming(receiver)
            }
            ("get", Some(name)) => match state.objects.get(&(kind, name.clone())) {
                Some(object) => json_response(200, object),
                None => status(404, "NotFound", &format!("{name} not found")),
            },
            ("list", None) => {
                let filter = Filter::from_query(query);
                let items: Vec<Value> = state
                    .objects
                    .iter()
                    .filter(|((k, _), object)| *k == kind && filter.matches(object))
                    .map(|(_, object)| object.clone())
                    .collect();
                json_response(
                    200,
                    &json!({
                        "apiVersion": kind.api_version(),
                        "kind": kind.list_kind(),
                        "metadata": {"resourceVersion": state.version.to_string()},
                        "items": items,
                    }),
                )
            }
            ("watch", None) => {
                let filter = Filter::from_query(query);
                let since: u64 = query
                    .get("resourceVersion")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let (sender, receiver) = mpsc::unbounded_channel();
                for (version, k, change, object) in &state.history {
                    if *version > since && *k == kind && filter.matches(object) {
                        let _ = sender.send(watch_line(change, object));
                    }
                }
                state.watches.push(Watch {
                    kind,
                    filter,
                    sender,
                });
                streaming(receiver)
            }
            ("delete", Some(name)) => {
                let Some(object) = state.objects.get(&(kind, name.clone())).cloned() else {
                    return status(404, "NotFound", &format!("{name} not found"));
                };
                state.change(kind, "DELETED", object.clone());
                let policy = body
                    .as_ref()
                    .and_then(|body| body["propagationPolicy"].as_str())
                    .unwrap_or("Orphan");
                if kind == Kind::Job && policy != "Orphan" {
                    collect_garbage(state, &name, &object["metadata"]["uid"]);
                }
                json_response(
                    200,
                    &json!({"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 200}),
                )
            }
            _ => status(405, "MethodNotAllowed", "not served by the fake"),
        }
    }
}

/// What the garbage collector does after a Job is deleted with propagation: its pods
/// (by the run label) and what it owns go too.
fn collect_garbage(state: &mut State, job: &str, uid: &Value) {
    let doomed: Vec<(Kind, Value)> = state
        .objects
        .iter()
        .filter(|((kind, _), object)| match kind {
            Kind::Pod => object["metadata"]["labels"]["agent-rs/run"] == job,
            _ => object["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|owners| owners.iter().any(|owner| owner["uid"] == *uid)),
        })
        .map(|((kind, _), object)| (*kind, object.clone()))
        .collect();
    for (kind, object) in doomed {
        if kind == Kind::Pod
            && let Some(log) = state
                .logs
                .get_mut(object["metadata"]["name"].as_str().unwrap_or(""))
        {
            log.closed = true;
            log.followers.clear();
        }
        state.change(kind, "DELETED", object);
    }
}

struct Route {
    kind: Kind,
    namespace: String,
    name: Option<String>,
    verb: String,
    resource: String,
}

impl Route {
    fn parse(method: &Method, path: &str, query: &BTreeMap<String, String>) -> Option<Self> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (kind, namespace, name, sub) = match segments.as_slice() {
            ["apis", "batch", "v1", "namespaces", ns, "jobs", rest @ ..] => (Kind::Job, *ns, rest),
            ["api", "v1", "namespaces", ns, "pods", rest @ ..] => (Kind::Pod, *ns, rest),
            ["api", "v1", "namespaces", ns, "secrets", rest @ ..] => (Kind::Secret, *ns, rest),
            _ => return None,
        }
        .pipe(|(kind, ns, rest)| match rest {
            [] => Some((kind, ns, None, None)),
            [name] => Some((kind, ns, Some(*name), None)),
            [name, sub] => Some((kind, ns, Some(*name), Some(*sub))),
            _ => None,
        })?;
        let resource = match (kind, sub) {
            (Kind::Job, None) => "jobs".to_string(),
            (Kind::Pod, None) => "pods".to_string(),
            (Kind::Secret, None) => "secrets".to_string(),
            (Kind::Pod, Some("log")) => "pods/log".to_string(),
            _ => return None,
        };
        let watching = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        let verb = match (method.as_str(), name.is_some()) {
            ("POST", false) => "create",
            ("GET", true) => "get",
            ("GET", false) if watching => "watch",
            ("GET", false) => "list",
            ("PUT", true) => "update",
            ("PATCH", true) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => return None,
        };
        Some(Self {
            kind,
            namespace: namespace.to_string(),
            name: name.map(str::to_string),
            verb: verb.to_string(),
            resource,
        })
    }
}

trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(value).expect("serializable");
    Response::builder()
        .status(StatusCode::from_u16(code).expect("valid status"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(bytes)).boxed_unsync())
        .expect("valid response")
}

fn text_response(text: String) -> Response<Body> {
    Response::builder()
        .status(200)
        .body(Full::new(Bytes::from(text)).boxed_unsync())
        .expect("valid response")
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        code,
        &json!({
            "apiVersion": "v1", "kind": "Status", "status": "Failure",
            "reason": reason, "message": message, "code": code,
        }),
    )
}

fn streaming(receiver: mpsc::UnboundedReceiver<Bytes>) -> Response<Body> {
    let frames = futures_util::stream::unfold(receiver, |mut receiver| async move {
        let bytes = receiver.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(bytes)), receiver))
    });
    Response::builder()
        .status(200)
        .body(StreamBody::new(frames).boxed_unsync())
        .expect("valid response")
}
