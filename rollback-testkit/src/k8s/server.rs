//! The HTTP server: the Kubernetes REST API, watches, discovery and the `/_sim/` control API.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::controller;
use super::errors::ApiError;
use super::hash::random_suffix;
use super::patch::{self, PatchType};
use super::resources::{apply_defaults, name_of, namespace_of, uid_of, validate, Kind};
use super::selector::{FieldSelector, Selector};
use super::state::{Config, PendingFault, Sim, State};
use super::store::{EventType, Store};

/// A response body: a whole document, or a stream of watch events.
pub(crate) enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

type Resp = Response<Body>;

fn respond(code: u16, content_type: &str, body: Bytes) -> Resp {
    let mut r = Response::new(Body::Full(Some(body)));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(code: u16, v: &Value) -> Resp {
    respond(code, "application/json", Bytes::from(v.to_string()))
}

fn error_response(e: &ApiError) -> Resp {
    let mut r = json_response(e.code, &e.status());
    if let Some(secs) = e.retry_after {
        if let Ok(v) = secs.to_string().parse() {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, v);
        }
    }
    r
}

/// A request, read whole.
struct Req {
    method: Method,
    path: String,
    raw_query: String,
    query: Vec<(String, String)>,
    content_type: String,
    body: Bytes,
    host: String,
}

impl Req {
    fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.param(key), Some("true" | "1"))
    }

    fn dry_run(&self) -> bool {
        self.param("dryRun").is_some_and(|v| !v.is_empty())
    }

    fn json_body(&self) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("the request body is empty"));
        }
        let v: Value = serde_json::from_slice(&self.body).map_err(|e| {
            ApiError::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        })?;
        if !v.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        Ok(v)
    }
}

/// `application/x-www-form-urlencoded` decoding.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// Serves until `shutdown` resolves (or its sender is dropped).
pub(crate) async fn serve(
    listener: TcpListener,
    sim: Arc<Sim>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let ctrl = tokio::spawn(controller::run(sim.clone()));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let sim = sim.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(sim.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    ctrl.abort();
}

async fn handle(sim: Arc<Sim>, req: Request<Incoming>) -> Result<Resp, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let req = Req {
        method: parts.method.clone(),
        path: parts.uri.path().to_string(),
        query: parse_query(&raw_query),
        raw_query,
        content_type: parts
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        host: parts
            .headers
            .get(hyper::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_string(),
        body,
    };
    if req.path == "/_sim" || req.path.starts_with("/_sim/") {
        return Ok(control(&sim, &req));
    }
    let route = parse_route(&req.path);
    let fault = take_fault(&sim, &req);
    if let Some(f) = &fault {
        if f.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        }
    }
    let resp = match fault.filter(|f| f.status != 0) {
        Some(PendingFault {
            status,
            body: Some(body),
            ..
        }) => respond(status, "text/html", Bytes::from(body)),
        Some(f) => {
            let target = match &route {
                Some(Route::Object { kind, name, .. }) => Some((*kind, name.as_str())),
                _ => None,
            };
            error_response(&ApiError::injected(f.status, target, f.retry_after))
        }
        None => match route {
            Some(route) => api(&sim, &req, route),
            None => error_response(&ApiError::no_route()),
        },
    };
    record(&sim, &req, resp.status().as_u16());
    Ok(resp)
}

fn take_fault(sim: &Sim, req: &Req) -> Option<PendingFault> {
    let mut st = sim.lock();
    let method = req.method.as_str();
    let f = st.faults.iter_mut().find(|f| {
        f.times > 0
            && (f.method.is_empty() || f.method == "*" || f.method.eq_ignore_ascii_case(method))
            && req.path.contains(&f.path_contains)
    })?;
    f.times -= 1;
    let out = f.clone();
    st.faults.retain(|f| f.times > 0);
    Some(out)
}

fn record(sim: &Sim, req: &Req, status: u16) {
    let mut call = json!({
        "method": req.method.as_str(),
        "path": req.path,
        "query": req.raw_query,
        "content_type": req.content_type,
        "status": status,
    });
    if matches!(req.method, Method::POST | Method::PUT | Method::PATCH) {
        call["body"] = serde_json::from_slice(&req.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&req.body).into_owned()));
    }
    sim.lock().calls.push(call);
}

// ---------------------------------------------------------------------------------------
// Routing

#[derive(Debug, Clone, Copy, PartialEq)]
enum Sub {
    Status,
    Scale,
}

#[derive(Debug)]
enum Route {
    Version,
    Health,
    ApiVersions,
    GroupList,
    Group,
    Resources(&'static str),
    Namespace(Option<String>),
    Collection {
        kind: Kind,
        ns: Option<String>,
        watch: bool,
    },
    Object {
        kind: Kind,
        ns: String,
        name: String,
        sub: Option<Sub>,
        watch: bool,
    },
}

fn parse_route(path: &str) -> Option<Route> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segs.as_slice() {
        ["version"] => return Some(Route::Version),
        ["healthz" | "readyz" | "livez", ..] => return Some(Route::Health),
        ["api"] => return Some(Route::ApiVersions),
        ["apis"] => return Some(Route::GroupList),
        ["apis", "apps"] => return Some(Route::Group),
        ["api", "v1"] => return Some(Route::Resources("")),
        ["apis", "apps", "v1"] => return Some(Route::Resources("apps")),
        ["api", "v1", "namespaces"] => return Some(Route::Namespace(None)),
        ["api", "v1", "namespaces", ns] => return Some(Route::Namespace(Some((*ns).to_string()))),
        _ => {}
    }
    let (group, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", "apps", "v1", rest @ ..] => ("apps", rest),
        _ => return None,
    };
    let (watch, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let kind = |plural: &str| Kind::from_path(group, plural);
    match rest {
        [plural] => Some(Route::Collection {
            kind: kind(plural)?,
            ns: None,
            watch,
        }),
        ["namespaces", ns, plural] => Some(Route::Collection {
            kind: kind(plural)?,
            ns: Some((*ns).to_string()),
            watch,
        }),
        ["namespaces", ns, plural, name] => Some(Route::Object {
            kind: kind(plural)?,
            ns: (*ns).to_string(),
            name: (*name).to_string(),
            sub: None,
            watch,
        }),
        ["namespaces", ns, plural, name, sub] if !watch => {
            let kind = kind(plural)?;
            let sub = match *sub {
                "status" if kind.has_status() => Sub::Status,
                "scale" if kind.has_scale() => Sub::Scale,
                _ => return None,
            };
            Some(Route::Object {
                kind,
                ns: (*ns).to_string(),
                name: (*name).to_string(),
                sub: Some(sub),
                watch,
            })
        }
        _ => None,
    }
}

fn api(sim: &Arc<Sim>, req: &Req, route: Route) -> Resp {
    let result = match route {
        Route::Version => Ok(json_response(200, &version())),
        Route::Health => Ok(respond(200, "text/plain", Bytes::from_static(b"ok"))),
        Route::ApiVersions => Ok(json_response(
            200,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": req.host}]}),
        )),
        Route::GroupList => Ok(json_response(
            200,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [apps_group()]}),
        )),
        Route::Group => Ok(json_response(200, &apps_group())),
        Route::Resources(group) => Ok(json_response(200, &resource_list(group))),
        Route::Namespace(ns) => namespaces(sim, req, ns),
        Route::Collection { kind, ns, watch } => {
            if watch || (req.method == Method::GET && req.flag("watch")) {
                if req.method != Method::GET {
                    Err(ApiError::method_not_allowed(req.method.as_str()))
                } else {
                    start_watch(sim, req, kind, ns, None)
                }
            } else {
                match (req.method.clone(), ns) {
                    (Method::GET, ns) => list(sim, req, kind, ns.as_deref()),
                    (Method::POST, Some(ns)) => create(sim, req, kind, &ns),
                    (Method::DELETE, Some(ns)) => delete_collection(sim, req, kind, &ns),
                    (m, _) => Err(ApiError::method_not_allowed(m.as_str())),
                }
            }
        }
        Route::Object {
            kind,
            ns,
            name,
            sub,
            watch,
        } => {
            if watch {
                if req.method != Method::GET {
                    Err(ApiError::method_not_allowed(req.method.as_str()))
                } else {
                    start_watch(sim, req, kind, Some(ns), Some(name))
                }
            } else {
                object(sim, req, kind, &ns, &name, sub)
            }
        }
    };
    result.unwrap_or_else(|e| error_response(&e))
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "gitVersion": "v1.33.0-rollback-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

fn apps_group() -> Value {
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "apps",
        "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
        "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"},
    })
}

fn resource_list(group: &str) -> Value {
    let verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    let mut resources = Vec::new();
    for k in Kind::ALL.into_iter().filter(|k| k.group() == group) {
        resources.push(json!({
            "name": k.plural(), "singularName": k.singular(), "namespaced": true,
            "kind": k.kind(), "verbs": verbs, "shortNames": k.short_names(),
            "storageVersionHash": "",
        }));
        if k.has_scale() {
            resources.push(json!({
                "name": format!("{}/scale", k.plural()), "singularName": "", "namespaced": true,
                "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
            }));
        }
        if k.has_status() {
            resources.push(json!({
                "name": format!("{}/status", k.plural()), "singularName": "", "namespaced": true,
                "kind": k.kind(), "verbs": ["get", "patch", "update"],
            }));
        }
    }
    let gv = if group.is_empty() {
        "v1".to_string()
    } else {
        format!("{group}/v1")
    };
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})
}

fn namespace_object(name: &str) -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

/// Namespaces are not stored: every name exists.
fn namespaces(sim: &Sim, req: &Req, ns: Option<String>) -> Result<Resp, ApiError> {
    if req.method != Method::GET {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let st = sim.lock();
    Ok(match ns {
        Some(ns) => json_response(200, &namespace_object(&ns)),
        None => {
            let mut names: Vec<String> =
                ["default", "kube-node-lease", "kube-public", "kube-system"]
                    .iter()
                    .map(|s| (*s).to_string())
                    .collect();
            names.extend(st.store.namespaces());
            names.sort();
            names.dedup();
            let items: Vec<Value> = names.iter().map(|n| namespace_object(n)).collect();
            json_response(
                200,
                &json!({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {"resourceVersion": st.store.rv().to_string()}, "items": items}),
            )
        }
    })
}

// ---------------------------------------------------------------------------------------
// Reads

fn selectors(req: &Req, kind: Kind) -> Result<(Selector, FieldSelector), ApiError> {
    let label = Selector::parse(req.param("labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
    let field = FieldSelector::parse(req.param("fieldSelector").unwrap_or(""), kind)
        .map_err(ApiError::bad_request)?;
    Ok((label, field))
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

fn list(sim: &Sim, req: &Req, kind: Kind, ns: Option<&str>) -> Result<Resp, ApiError> {
    let (label, field) = selectors(req, kind)?;
    let after = match req.param("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(unhex(token).ok_or_else(|| {
            ApiError::bad_request("continue key is not valid: illegal base64 data")
        })?),
        None => None,
    };
    let limit = req
        .param("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let st = sim.lock();
    let matching: Vec<&Value> = st
        .store
        .list(kind, ns)
        .filter(|o| label.matches_object(o) && field.matches(o))
        .filter(|o| {
            after
                .as_deref()
                .is_none_or(|a| format!("{}/{}", namespace_of(o), name_of(o)).as_str() > a)
        })
        .collect();
    let take = limit.unwrap_or(matching.len()).min(matching.len());
    let mut meta = json!({"resourceVersion": st.store.rv().to_string()});
    if take < matching.len() {
        let last = matching[take - 1];
        meta["continue"] = json!(hex(&format!("{}/{}", namespace_of(last), name_of(last))));
        meta["remainingItemCount"] = json!(matching.len() - take);
    }
    let items: Vec<Value> = matching[..take].iter().map(|o| (*o).clone()).collect();
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": kind.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}

fn get_stored(st: &State, kind: Kind, ns: &str, name: &str) -> Result<Value, ApiError> {
    st.store
        .get(kind, ns, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(kind, name))
}

fn scale_of(obj: &Value) -> Value {
    let selector = Selector::from_label_selector(&obj["spec"]["selector"])
        .map(|s| s.to_text())
        .unwrap_or_default();
    let m = &obj["metadata"];
    let mut scale = json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": {},
        "status": {"replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
    });
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(0);
    if replicas != 0 {
        scale["spec"]["replicas"] = json!(replicas);
    }
    scale
}

// ---------------------------------------------------------------------------------------
// Writes

fn rv_of(obj: &Value) -> &str {
    obj["metadata"]["resourceVersion"].as_str().unwrap_or("")
}

/// What a write stores: defaults applied, then validated.
fn prepare(kind: Kind, obj: &mut Value, old: Option<&Value>) -> Result<(), ApiError> {
    apply_defaults(kind, obj);
    validate(kind, obj, old)?;
    if let (Some(old), Kind::ControllerRevision) = (old, kind) {
        if old["data"] != obj["data"] {
            return Err(ApiError::invalid(
                kind,
                name_of(obj),
                "data: Invalid value: field is immutable",
                "data",
            ));
        }
    }
    Ok(())
}

fn check_identity(
    req_kind: Kind,
    obj: &Value,
    ns: &str,
    name: Option<&str>,
) -> Result<(), ApiError> {
    if let Some(k) = obj["kind"].as_str() {
        if k != req_kind.kind() {
            return Err(ApiError::bad_request(format!(
                "the kind in the body ({k}) does not match the resource {} on the URL",
                req_kind.plural()
            )));
        }
    }
    if let Some(v) = obj["apiVersion"].as_str() {
        if v != req_kind.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                req_kind.api_version()
            )));
        }
    }
    let body_ns = namespace_of(obj);
    if !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if let Some(name) = name {
        let body_name = name_of(obj);
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    Ok(())
}

fn create(sim: &Sim, req: &Req, kind: Kind, ns: &str) -> Result<Resp, ApiError> {
    let mut obj = req.json_body()?;
    check_identity(kind, &obj, ns, None)?;
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["namespace"] = json!(ns);
    if name_of(&obj).is_empty() {
        if let Some(prefix) = obj["metadata"]["generateName"].as_str() {
            obj["metadata"]["name"] = json!(format!("{prefix}{}", random_suffix(5)));
        }
    }
    if !rv_of(&obj).is_empty() {
        return Err(ApiError {
            code: 500,
            reason: "InternalError",
            message: "Internal error occurred: resourceVersion should not be set on objects to be created".into(),
            details: None,
            retry_after: None,
        });
    }
    if let Some(m) = obj["metadata"].as_object_mut() {
        m.remove("managedFields");
        m.remove("uid");
        m.remove("generation");
        m.remove("creationTimestamp");
    }
    match kind {
        Kind::Pod => obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
        Kind::ControllerRevision => {}
        _ => obj["status"] = json!({}),
    }
    prepare(kind, &mut obj, None)?;
    let mut st = sim.lock();
    if st.store.get(kind, ns, name_of(&obj)).is_some() {
        return Err(ApiError::already_exists(kind, name_of(&obj)));
    }
    if req.dry_run() {
        obj["kind"] = json!(kind.kind());
        obj["apiVersion"] = json!(kind.api_version());
        obj["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
        obj["metadata"]["creationTimestamp"] =
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        if kind.has_generation() {
            obj["metadata"]["generation"] = json!(1);
        }
        return Ok(json_response(201, &obj));
    }
    let stored = st.store.create(kind, obj);
    Ok(json_response(201, &stored))
}

/// Stores `new` in place of `stored` (a main-endpoint write: status kept) after the
/// optimistic-concurrency check on the resourceVersion `new` carries.
fn write_main(
    st: &mut State,
    req: &Req,
    kind: Kind,
    stored: &Value,
    mut new: Value,
) -> Result<Value, ApiError> {
    let name = name_of(stored).to_string();
    let rv = rv_of(&new);
    if !rv.is_empty() && rv != rv_of(stored) {
        return Err(ApiError::conflict(kind, &name));
    }
    let uid = new["metadata"]["uid"].as_str().unwrap_or("");
    if !uid.is_empty() && uid != uid_of(stored) {
        return Err(ApiError::conflict_message(
            kind,
            &name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                uid_of(stored)
            ),
        ));
    }
    if name_of(&new) != name || namespace_of(&new) != namespace_of(stored) {
        return Err(ApiError::invalid(
            kind,
            &name,
            "metadata.name: Invalid value: field is immutable",
            "metadata.name",
        ));
    }
    if kind.has_status() {
        match stored.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    if let Some(m) = new["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    prepare(kind, &mut new, Some(stored))?;
    if req.dry_run() {
        return Ok(new);
    }
    Ok(st.store.update(kind, new).unwrap_or_else(|| stored.clone()))
}

/// Stores `stored` with the status of `new` (a status-subresource write).
fn write_status(
    st: &mut State,
    req: &Req,
    kind: Kind,
    stored: &Value,
    new: &Value,
) -> Result<Value, ApiError> {
    let rv = rv_of(new);
    if !rv.is_empty() && rv != rv_of(stored) {
        return Err(ApiError::conflict(kind, name_of(stored)));
    }
    let mut obj = stored.clone();
    obj["status"] = new["status"].clone();
    if req.dry_run() {
        return Ok(obj);
    }
    Ok(st.store.update(kind, obj).unwrap_or_else(|| stored.clone()))
}

fn write_scale(
    st: &mut State,
    req: &Req,
    kind: Kind,
    stored: &Value,
    scale: &Value,
) -> Result<Value, ApiError> {
    let name = name_of(stored).to_string();
    let rv = rv_of(scale);
    if !rv.is_empty() && rv != rv_of(stored) {
        return Err(ApiError::conflict(kind, &name));
    }
    let replicas = match &scale["spec"]["replicas"] {
        Value::Null => 0,
        v => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!("spec.replicas must be an integer, not {v}"))
        })?,
    };
    if replicas < 0 {
        return Err(ApiError {
            code: 422,
            reason: "Invalid",
            message: format!(
                "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
            ),
            details: Some(json!({"name": name, "group": "autoscaling", "kind": "Scale"})),
            retry_after: None,
        });
    }
    let mut obj = stored.clone();
    obj["spec"]["replicas"] = json!(replicas);
    if req.dry_run() {
        return Ok(scale_of(&obj));
    }
    let stored = st.store.update(kind, obj).unwrap_or_else(|| stored.clone());
    Ok(scale_of(&stored))
}

fn object(
    sim: &Sim,
    req: &Req,
    kind: Kind,
    ns: &str,
    name: &str,
    sub: Option<Sub>,
) -> Result<Resp, ApiError> {
    let mut st = sim.lock();
    let st = &mut *st;
    match req.method {
        Method::GET => {
            let stored = get_stored(st, kind, ns, name)?;
            Ok(json_response(
                200,
                &match sub {
                    Some(Sub::Scale) => scale_of(&stored),
                    _ => stored,
                },
            ))
        }
        Method::PUT => {
            let body = req.json_body()?;
            let stored = get_stored(st, kind, ns, name)?;
            let out = match sub {
                None => {
                    check_identity(kind, &body, ns, Some(name))?;
                    write_main(st, req, kind, &stored, body)?
                }
                Some(Sub::Status) => {
                    check_identity(kind, &body, ns, Some(name))?;
                    write_status(st, req, kind, &stored, &body)?
                }
                Some(Sub::Scale) => write_scale(st, req, kind, &stored, &body)?,
            };
            Ok(json_response(200, &out))
        }
        Method::PATCH => {
            let pt = PatchType::from_content_type(&req.content_type)?;
            let stored = get_stored(st, kind, ns, name)?;
            let out = match sub {
                Some(Sub::Scale) => {
                    let mut scale = scale_of(&stored);
                    patch::apply(pt, &mut scale, &req.body)?;
                    write_scale(st, req, kind, &stored, &scale)?
                }
                Some(Sub::Status) => {
                    let mut doc = stored.clone();
                    patch::apply(pt, &mut doc, &req.body)?;
                    write_status(st, req, kind, &stored, &doc)?
                }
                None => {
                    let mut doc = stored.clone();
                    patch::apply(pt, &mut doc, &req.body)?;
                    if !doc.is_object() {
                        return Err(ApiError::bad_request("the patched object is not an object"));
                    }
                    write_main(st, req, kind, &stored, doc)?
                }
            };
            Ok(json_response(200, &out))
        }
        Method::DELETE if sub.is_none() => {
            let stored = get_stored(st, kind, ns, name)?;
            let opts: Value = if req.body.is_empty() {
                json!({})
            } else {
                serde_json::from_slice(&req.body)
                    .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
            };
            if let Some(rv) = opts["preconditions"]["resourceVersion"].as_str() {
                if rv != rv_of(&stored) {
                    return Err(ApiError::conflict_message(
                        kind,
                        name,
                        &format!(
                            "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                            rv_of(&stored)
                        ),
                    ));
                }
            }
            if let Some(uid) = opts["preconditions"]["uid"].as_str() {
                if uid != uid_of(&stored) {
                    return Err(ApiError::conflict_message(
                        kind,
                        name,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            uid_of(&stored)
                        ),
                    ));
                }
            }
            let policy = req
                .param("propagationPolicy")
                .or(opts["propagationPolicy"].as_str())
                .unwrap_or("Background");
            let orphan = policy == "Orphan" || opts["orphanDependents"] == json!(true);
            let dry = req.dry_run() || opts["dryRun"].as_array().is_some_and(|a| !a.is_empty());
            let deleted = if dry {
                stored
            } else {
                st.store
                    .remove_cascade(kind, ns, name, orphan)
                    .unwrap_or(stored)
            };
            Ok(json_response(200, &deleted_answer(kind, &deleted)))
        }
        ref m => Err(ApiError::method_not_allowed(m.as_str())),
    }
}

/// What DELETE answers: pods return the object, the apps resources a Success Status.
fn deleted_answer(kind: Kind, deleted: &Value) -> Value {
    if kind == Kind::Pod {
        return deleted.clone();
    }
    let mut details =
        json!({"name": name_of(deleted), "kind": kind.plural(), "uid": uid_of(deleted)});
    if !kind.group().is_empty() {
        details["group"] = json!(kind.group());
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

fn delete_collection(sim: &Sim, req: &Req, kind: Kind, ns: &str) -> Result<Resp, ApiError> {
    let (label, field) = selectors(req, kind)?;
    let mut st = sim.lock();
    let names: Vec<String> = st
        .store
        .list(kind, Some(ns))
        .filter(|o| label.matches_object(o) && field.matches(o))
        .map(|o| name_of(o).to_string())
        .collect();
    let orphan = req.param("propagationPolicy") == Some("Orphan");
    let mut items = Vec::new();
    for n in names {
        let removed = if req.dry_run() {
            st.store.get(kind, ns, &n).cloned()
        } else {
            st.store.remove_cascade(kind, ns, &n, orphan)
        };
        items.extend(removed);
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", kind.kind()),
            "apiVersion": kind.api_version(),
            "metadata": {"resourceVersion": st.store.rv().to_string()},
            "items": items,
        }),
    ))
}

// ---------------------------------------------------------------------------------------
// Watch

struct WatchSpec {
    kind: Kind,
    ns: Option<String>,
    label: Selector,
    field: FieldSelector,
}

impl WatchSpec {
    fn matches(&self, obj: &Value) -> bool {
        self.ns.as_deref().is_none_or(|ns| ns == namespace_of(obj))
            && self.label.matches_object(obj)
            && self.field.matches(obj)
    }
}

fn event_line(etype: &str, obj: &Value) -> Bytes {
    let mut s = json!({"type": etype, "object": obj}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(kind: Kind, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": kind.kind(), "apiVersion": kind.api_version(), "metadata": meta}),
    )
}

/// Starts a watch: the answer streams one JSON event per line.
fn start_watch(
    sim: &Arc<Sim>,
    req: &Req,
    kind: Kind,
    ns: Option<String>,
    name: Option<String>,
) -> Result<Resp, ApiError> {
    let (label, mut field) = selectors(req, kind)?;
    if let Some(name) = name {
        field = FieldSelector::name(&name);
    }
    let from = match req.param("resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(v.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "resourceVersion: Invalid value: \"{v}\": must be a non-negative integer"
            ))
        })?),
    }
    .filter(|rv| *rv != 0);
    let send_initial = req.flag("sendInitialEvents");
    let bookmarks = req.flag("allowWatchBookmarks");
    let timeout = req
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(1800);
    let spec = WatchSpec {
        kind,
        ns,
        label,
        field,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    tokio::spawn(run_watch(
        sim.clone(),
        spec,
        from,
        send_initial,
        bookmarks,
        Duration::from_secs(timeout),
        tx,
    ));
    let mut r = Response::new(Body::Stream(rx));
    if let Ok(v) = "application/json".parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(r)
}

/// The lines of the events after `cursor` that this watch sees; moves the cursor to the
/// store's current resourceVersion. `Err` when the events were compacted away.
fn drain(store: &Store, spec: &WatchSpec, cursor: &mut u64) -> Result<Vec<Bytes>, ApiError> {
    let events = store
        .events_after(*cursor)
        .map_err(|oldest| ApiError::gone(*cursor, oldest))?;
    let mut lines = Vec::new();
    for ev in events {
        if ev.kind != spec.kind {
            continue;
        }
        let now = spec.matches(&ev.object);
        let before = ev.prev.as_ref().is_some_and(|p| spec.matches(p));
        let etype = match (ev.etype, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Deleted, _, true) => "DELETED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, false) => "DELETED",
            _ => continue,
        };
        lines.push(event_line(etype, &ev.object));
    }
    *cursor = store.rv();
    Ok(lines)
}

async fn run_watch(
    sim: Arc<Sim>,
    spec: WatchSpec,
    from: Option<u64>,
    send_initial: bool,
    bookmarks: bool,
    timeout: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let (mut notify, mut cursor, initial, bookmark_every) = {
        let st = sim.lock();
        let notify = st.store.subscribe();
        let mut initial = Vec::new();
        let cursor = match from {
            Some(rv) if !send_initial => rv,
            _ => {
                // Synthetic ADDED events for the current state ("start at most recent").
                for o in st.store.list(spec.kind, spec.ns.as_deref()) {
                    if spec.matches(o) {
                        initial.push(event_line("ADDED", o));
                    }
                }
                if send_initial {
                    initial.push(bookmark(spec.kind, st.store.rv(), true));
                }
                st.store.rv()
            }
        };
        (notify, cursor, initial, st.config.bookmark_ms.max(10))
    };
    for line in initial {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let mut ticker = tokio::time::interval(Duration::from_millis(bookmark_every));
    ticker.tick().await;
    loop {
        let lines = {
            let st = sim.lock();
            drain(&st.store, &spec, &mut cursor)
        };
        match lines {
            Ok(lines) => {
                for line in lines {
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                let _ = tx.send(event_line("ERROR", &e.status())).await;
                return;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            changed = notify.changed() => if changed.is_err() { return },
            _ = ticker.tick(), if bookmarks => {
                if tx.send(bookmark(spec.kind, cursor, false)).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Control API

fn control(sim: &Sim, req: &Req) -> Resp {
    let path = req.path.trim_start_matches("/_sim").trim_matches('/');
    let body: Value = if req.body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => return json_response(400, &json!({"error": format!("invalid JSON: {e}")})),
        }
    };
    let mut st = sim.lock();
    let st = &mut *st;
    let out = match (req.method.as_str(), path) {
        ("GET", "config") => st.config.to_json(),
        ("POST", "config") => {
            let c = &mut st.config;
            let num = |k: &str| body[k].as_u64();
            if let Some(v) = num("step_ms") {
                c.step_ms = v.max(1);
            }
            if let Some(v) = num("deadline_ms") {
                c.deadline_ms = v;
            }
            if let Some(v) = num("nodes") {
                c.nodes = u32::try_from(v).unwrap_or(u32::MAX);
            }
            if let Some(v) = num("bookmark_ms") {
                c.bookmark_ms = v.max(10);
            }
            if let Some(v) = num("watch_cache") {
                c.watch_cache = usize::try_from(v).unwrap_or(usize::MAX).max(1);
                let cap = c.watch_cache;
                st.store.set_capacity(cap);
            }
            st.config.to_json()
        }
        ("GET", "fail-image") => json!({"images": st.failing_images}),
        ("POST", "fail-image") => {
            let Some(image) = body["image"].as_str() else {
                return json_response(
                    400,
                    &json!({"error": "fail-image needs {\"image\": \"...\"}"}),
                );
            };
            if body["fail"] == json!(false) {
                st.failing_images.remove(image);
            } else {
                st.failing_images.insert(image.to_string());
            }
            json!({"images": st.failing_images})
        }
        ("DELETE", "fail-image") => {
            st.failing_images.clear();
            json!({"images": []})
        }
        ("GET", "controller") => {
            json!({"running": st.running, "ticks": st.memory.ticks, "sim_ms": st.memory.sim_ms})
        }
        ("POST", "controller") => {
            if let Some(r) = body["running"].as_bool() {
                st.running = r;
            }
            json!({"running": st.running, "ticks": st.memory.ticks, "sim_ms": st.memory.sim_ms})
        }
        ("POST", "step") => {
            let n = body["steps"].as_u64().unwrap_or(1).min(100_000);
            for _ in 0..n {
                controller::tick(st);
            }
            json!({"running": st.running, "ticks": st.memory.ticks, "sim_ms": st.memory.sim_ms})
        }
        ("GET", "calls") => {
            let mutations = mutations(&st.calls);
            json!({"total": st.calls.len(), "mutations": mutations, "calls": st.calls})
        }
        ("DELETE", "calls") => {
            st.calls.clear();
            json!({"total": 0, "mutations": 0, "calls": []})
        }
        ("GET", "inject") => {
            json!({"faults": st.faults.iter().map(PendingFault::to_json).collect::<Vec<_>>()})
        }
        ("POST", "inject") => {
            let status = body["status"].as_u64().unwrap_or(500);
            let fault = PendingFault {
                method: body["method"].as_str().unwrap_or("").to_uppercase(),
                path_contains: body["path_contains"].as_str().unwrap_or("").to_string(),
                status: u16::try_from(status).unwrap_or(500),
                times: body["times"].as_u64().unwrap_or(1),
                retry_after: body["retry_after"]
                    .as_u64()
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(1),
                delay_ms: body["delay_ms"].as_u64().unwrap_or(0),
                body: body["body"].as_str().map(str::to_string),
            };
            if fault.status != 0 && !(400..=599).contains(&fault.status) {
                return json_response(
                    400,
                    &json!({"error": "status must be 0 (delay only) or 400..=599"}),
                );
            }
            st.faults.push(fault);
            json!({"faults": st.faults.iter().map(PendingFault::to_json).collect::<Vec<_>>()})
        }
        ("DELETE", "inject") => {
            st.faults.clear();
            json!({"faults": []})
        }
        ("POST", "compact") => {
            st.store.compact();
            json!({"compacted": st.store.compacted()})
        }
        ("POST", "reset") => {
            st.store.clear();
            st.store.compact();
            st.calls.clear();
            st.faults.clear();
            st.failing_images.clear();
            st.memory = Default::default();
            st.running = true;
            json!({"reset": true, "resourceVersion": st.store.rv().to_string()})
        }
        ("GET", "") => json!({
            "endpoints": ["GET|POST config", "GET|POST|DELETE fail-image", "GET|POST controller", "POST step",
                          "GET|DELETE calls", "GET|POST|DELETE inject", "POST compact", "POST reset"],
            "config": st.config.to_json(),
            "running": st.running,
            "resourceVersion": st.store.rv().to_string(),
        }),
        _ => {
            return json_response(
                404,
                &json!({"error": format!("no control endpoint {} /_sim/{path}", req.method)}),
            )
        }
    };
    json_response(200, &out)
}

/// Non-GET API calls in a call log.
pub(crate) fn mutations(calls: &[Value]) -> usize {
    calls
        .iter()
        .filter(|c| c["method"].as_str().is_some_and(|m| m != "GET"))
        .count()
}

/// Applies settings before serving (the binary's flags, `K8sSimulator::start_with`).
pub(crate) fn configure(sim: &Sim, config: &Config) {
    let mut st = sim.lock();
    st.store.set_capacity(config.watch_cache);
    st.config = config.clone();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q =
            parse_query("&watch=true&fieldSelector=metadata.name%3Dweb&labelSelector=a+in+(x%2Cy)");
        assert_eq!(q[0], ("watch".into(), "true".into()));
        assert_eq!(q[1].1, "metadata.name=web");
        assert_eq!(q[2].1, "a in (x,y)");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(unhex(&hex("ns/name")).as_deref(), Some("ns/name"));
    }

    #[test]
    fn routes() {
        assert!(matches!(
            parse_route("/apis/apps/v1/namespaces/ns/deployments/web/scale"),
            Some(Route::Object {
                kind: Kind::Deployment,
                sub: Some(Sub::Scale),
                ..
            })
        ));
        assert!(matches!(
            parse_route("/api/v1/pods"),
            Some(Route::Collection {
                kind: Kind::Pod,
                ns: None,
                ..
            })
        ));
        assert!(matches!(
            parse_route("/apis/apps/v1/watch/namespaces/ns/deployments/web"),
            Some(Route::Object { watch: true, .. })
        ));
        assert!(parse_route("/apis/apps/v1/namespaces/ns/daemonsets/x/scale").is_none());
        assert!(parse_route("/apis/batch/v1/jobs").is_none());
    }
}
