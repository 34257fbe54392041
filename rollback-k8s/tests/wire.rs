#![allow(clippy::unwrap_used)]
//! Wire-level tests: the real kube-rs client on `tower_test`'s mock service, so each test
//! sees the exact requests a target sends (method, path, query, content type, body) and
//! decides the API server's answers, including the ones a simulator rarely gives (a 409 at
//! the worst moment, 429, 500, 403).

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use rollback_core::{ApplyOutcome, ErrorKind, RollbackTarget, Selector};
use rollback_k8s::{DaemonSet, Deployment, K8s, K8sConfig, PodsReady, StatefulSet};
use serde_json::{json, Value};

/// One request the client sent.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

/// An answer: HTTP status, content type, body.
type Raw = (u16, &'static str, Vec<u8>);

type Handler = Box<dyn FnMut(&Call) -> Raw + Send>;

/// A client whose requests are answered by `handler` with JSON; the calls are recorded.
fn fake(
    mut handler: impl FnMut(&Call) -> (u16, Value) + Send + 'static,
) -> (K8s, Arc<Mutex<Vec<Call>>>) {
    fake_raw(move |c| {
        let (status, answer) = handler(c);
        (
            status,
            "application/json",
            serde_json::to_vec(&answer).unwrap(),
        )
    })
}

/// A client whose requests are answered by `handler` with any body (an HTML error page, a
/// broken JSON document); the calls are recorded.
fn fake_raw(handler: impl FnMut(&Call) -> Raw + Send + 'static) -> (K8s, Arc<Mutex<Vec<Call>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let mut handler: Handler = Box::new(handler);
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap();
            let call = Call {
                method: parts.method.to_string(),
                path: parts.uri.path().to_string(),
                query: parts.uri.query().unwrap_or("").to_string(),
                content_type: parts
                    .headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default(),
                body: if bytes.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(&bytes).unwrap()
                },
            };
            let (status, content_type, answer) = handler(&call);
            seen.lock().unwrap().push(call);
            let response = Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Body::from(answer))
                .unwrap();
            send.send_response(response);
        }
    });
    let client = kube::Client::new(service, "default");
    (K8s::from_client(client), calls)
}

fn status(code: u16, reason: &str, message: &str) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code}),
    )
}

const UID: &str = "6b2f6a5e-0000-4000-8000-000000000001";

fn template(image: &str, hash: Option<&str>) -> Value {
    let mut labels = json!({"app": "frontend"});
    if let Some(h) = hash {
        labels["pod-template-hash"] = json!(h);
    }
    json!({
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "web", "image": image,
                                 "env": [{"name": "API_URL", "value": "https://api"}]}]}
    })
}

fn deployment(image: &str, rv: &str, paused: bool) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "frontend", "namespace": "production", "uid": UID,
                     "resourceVersion": rv, "generation": 2,
                     "annotations": {"deployment.kubernetes.io/revision": "2",
                                     "team": "web"}},
        "spec": {"replicas": 3, "paused": paused,
                 "selector": {"matchLabels": {"app": "frontend"}},
                 "template": template(image, None)},
        "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                   "availableReplicas": 3, "readyReplicas": 3}
    })
}

fn replica_set(name: &str, revision: &str, image: &str, hash: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": "production",
                     "creationTimestamp": "2026-11-20T10:00:00Z",
                     "annotations": {"deployment.kubernetes.io/revision": revision,
                                     "kubernetes.io/change-cause": format!("deploy {image}")},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                                          "name": "frontend", "uid": UID, "controller": true}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "frontend", "pod-template-hash": hash}},
                 "template": template(image, Some(hash))}
    })
}

fn replica_sets() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {"resourceVersion": "50"},
           "items": [replica_set("frontend-aaa", "1", "web:1.0", "aaa"),
                     replica_set("frontend-bbb", "2", "web:2.0", "bbb")]})
}

const DEPLOYMENT: &str = "/apis/apps/v1/namespaces/production/deployments/frontend";
const REPLICA_SETS: &str = "/apis/apps/v1/namespaces/production/replicasets";

fn patches(calls: &Arc<Mutex<Vec<Call>>>) -> Vec<Call> {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.method != "GET")
        .cloned()
        .collect()
}

#[tokio::test]
async fn undo_sends_kubectls_json_patch_with_the_resource_version() {
    let (k8s, calls) = fake(|c| match (c.method.as_str(), c.path.as_str()) {
        ("GET", DEPLOYMENT) => (200, deployment("web:2.0", "42", false)),
        ("GET", REPLICA_SETS) => (200, replica_sets()),
        ("PATCH", DEPLOYMENT) => (200, deployment("web:1.0", "43", false)),
        _ => status(404, "NotFound", "unexpected"),
    });
    let frontend = Deployment::new(&k8s, "production", "frontend").unwrap();
    let to = frontend.resolve(&Selector::Previous).await.unwrap();
    assert_eq!(to.id, "1");
    assert_eq!(to.key.as_deref(), Some("frontend-aaa"));
    let change = frontend.plan(&to).await.unwrap();
    assert_eq!(change.from.id, "2");
    assert_eq!(
        frontend.apply(&change).await.unwrap(),
        ApplyOutcome::Applied
    );

    let sent = patches(&calls);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let patch = &sent[0];
    assert_eq!(patch.path, DEPLOYMENT);
    assert_eq!(patch.content_type, "application/json-patch+json");
    // kubectl's two operations (template without pod-template-hash; the ReplicaSet's
    // annotations with the Deployment's revision kept), then our precondition.
    let expected = json!([
        {"op": "replace", "path": "/spec/template", "value": template("web:1.0", None)},
        {"op": "replace", "path": "/metadata/annotations", "value": {
            "deployment.kubernetes.io/revision": "2",
            "kubernetes.io/change-cause": "deploy web:1.0"}},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": "42"}
    ]);
    assert_eq!(patch.body, expected);
    // History is listed by the Deployment's own selector, as kubectl does.
    let lists: Vec<Call> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.path == REPLICA_SETS)
        .cloned()
        .collect();
    assert!(
        lists
            .iter()
            .all(|c| c.query.contains("labelSelector=app%3Dfrontend")),
        "{lists:?}"
    );
}

#[tokio::test]
async fn a_409_from_a_status_write_is_read_again_and_sent_again() {
    let mut patched = 0;
    let mut rv = 42;
    let (k8s, calls) = fake(move |c| match (c.method.as_str(), c.path.as_str()) {
        ("GET", DEPLOYMENT) => (200, deployment("web:2.0", &rv.to_string(), false)),
        ("GET", REPLICA_SETS) => (200, replica_sets()),
        ("PATCH", DEPLOYMENT) => {
            patched += 1;
            if patched == 1 {
                // The controller wrote the status meanwhile: only the resourceVersion moved.
                rv += 1;
                status(409, "Conflict", "Operation cannot be fulfilled on deployments.apps \"frontend\": the object has been modified; please apply your changes to the latest version and try again")
            } else {
                (200, deployment("web:1.0", "99", false))
            }
        }
        _ => status(404, "NotFound", "unexpected"),
    });
    let frontend = Deployment::new(&k8s, "production", "frontend").unwrap();
    let to = frontend
        .resolve(&Selector::Exact("1".into()))
        .await
        .unwrap();
    let change = frontend.plan(&to).await.unwrap();
    assert_eq!(
        frontend.apply(&change).await.unwrap(),
        ApplyOutcome::Applied
    );
    let sent = patches(&calls);
    assert_eq!(sent.len(), 2);
    let rv_of = |c: &Call| c.body.as_array().unwrap().last().unwrap()["value"].clone();
    assert_eq!(rv_of(&sent[0]), json!("42"));
    assert_eq!(rv_of(&sent[1]), json!("43"));
}

#[tokio::test]
async fn a_409_from_a_template_change_is_a_conflict_and_nothing_more_is_sent() {
    let mut patched = false;
    let (k8s, calls) = fake(move |c| match (c.method.as_str(), c.path.as_str()) {
        // Someone deploys 3.0 between our read and our patch.
        ("GET", DEPLOYMENT) if patched => (200, deployment("web:3.0", "44", false)),
        ("GET", DEPLOYMENT) => (200, deployment("web:2.0", "42", false)),
        ("GET", REPLICA_SETS) => (200, replica_sets()),
        ("PATCH", DEPLOYMENT) => {
            patched = true;
            status(409, "Conflict", "the object has been modified")
        }
        _ => status(404, "NotFound", "unexpected"),
    });
    let frontend = Deployment::new(&k8s, "production", "frontend").unwrap();
    let to = frontend.resolve(&Selector::Previous).await.unwrap();
    let change = frontend.plan(&to).await.unwrap();
    let err = frontend.apply(&change).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(
        err.to_string()
            .contains("k8s-deployment/production/frontend"),
        "{err}"
    );
    assert_eq!(patches(&calls).len(), 1);
}

#[tokio::test]
async fn a_paused_deployment_is_refused_with_kubectls_advice_and_nothing_is_sent() {
    let (k8s, calls) = fake(|c| match (c.method.as_str(), c.path.as_str()) {
        ("GET", DEPLOYMENT) => (200, deployment("web:2.0", "42", true)),
        ("GET", REPLICA_SETS) => (200, replica_sets()),
        _ => status(500, "InternalError", "unexpected"),
    });
    let frontend = Deployment::new(&k8s, "production", "frontend").unwrap();
    let to = frontend.resolve(&Selector::Previous).await.unwrap();
    let err = frontend.plan(&to).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' and try again"),
        "{err}"
    );
    assert!(patches(&calls).is_empty());
}

#[tokio::test]
async fn api_errors_become_typed_errors_naming_the_target() {
    for (code, reason, kind, retryable) in [
        (404, "NotFound", ErrorKind::NotFound, false),
        (429, "TooManyRequests", ErrorKind::Throttled, true),
        (500, "InternalError", ErrorKind::Backend, true),
        (503, "ServiceUnavailable", ErrorKind::Backend, true),
        (403, "Forbidden", ErrorKind::PermissionDenied, false),
    ] {
        let (k8s, _) = fake(move |_| {
            status(
                code,
                reason,
                "deployments.apps \"frontend\" is not available",
            )
        });
        let frontend = Deployment::new(&k8s, "production", "frontend").unwrap();
        let err = frontend.current().await.unwrap_err();
        assert_eq!(err.kind(), kind, "{code}: {err}");
        assert_eq!(err.is_retryable(), retryable, "{code}: {err}");
        assert!(
            err.to_string()
                .contains("k8s-deployment/production/frontend"),
            "{err}"
        );
        if code == 403 {
            assert!(err.to_string().contains("RBAC"), "{err}");
        }
    }
}

#[tokio::test]
async fn unknown_revision_and_no_history_are_not_found_with_kubectls_words() {
    let (k8s, calls) = fake(|c| match (c.method.as_str(), c.path.as_str()) {
        ("GET", DEPLOYMENT) => (200, deployment("web:2.0", "42", false)),
        ("GET", REPLICA_SETS) => (
            200,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
                   "items": [replica_set("frontend-bbb", "2", "web:2.0", "bbb")]}),
        ),
        _ => status(500, "InternalError", "unexpected"),
    });
    let frontend = Deployment::new(&k8s, "production", "frontend").unwrap();
    let err = frontend
        .resolve(&Selector::Exact("7".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("unable to find specified revision 7 in history"),
        "{err}"
    );
    let err = frontend.resolve(&Selector::Previous).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("no rollout history found for deployment \"frontend\""),
        "{err}"
    );
    let err = frontend
        .resolve(&Selector::Exact("two".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(patches(&calls).is_empty());
}

#[tokio::test]
async fn bad_names_are_refused_before_any_request() {
    let (k8s, calls) = fake(|_| status(500, "InternalError", "unexpected"));
    for (ns, name) in [
        ("production", ""),
        ("Production", "frontend"),
        ("production", "front_end"),
    ] {
        let err = Deployment::new(&k8s, ns, name).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("k8s-deployment/"), "{err}");
    }
    assert!(calls.lock().unwrap().is_empty());
}

fn statefulset(image: &str, rv: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "data", "uid": UID, "resourceVersion": rv, "generation": 2},
        "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": image}]}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}},
        "status": {"observedGeneration": 2, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
                   "currentRevision": "db-2", "updateRevision": "db-2"}
    })
}

fn controller_revision(name: &str, revision: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": name, "namespace": "data",
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                          "name": "db", "uid": UID, "controller": true}]},
        "revision": revision,
        "data": {"spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "db"}},
                                       "spec": {"containers": [{"name": "db", "image": image}]}}}}
    })
}

#[tokio::test]
async fn statefulset_undo_sends_the_revisions_strategic_merge_patch() {
    const STS: &str = "/apis/apps/v1/namespaces/data/statefulsets/db";
    let (k8s, calls) = fake(|c| match (c.method.as_str(), c.path.as_str()) {
        ("GET", STS) => (200, statefulset("pg:16.2", "7")),
        ("GET", "/apis/apps/v1/namespaces/data/controllerrevisions") => (
            200,
            json!({"apiVersion": "apps/v1", "kind": "ControllerRevisionList", "metadata": {},
                   "items": [controller_revision("db-1", 1, "pg:16.1"), controller_revision("db-2", 2, "pg:16.2")]}),
        ),
        ("PATCH", STS) => (200, statefulset("pg:16.1", "8")),
        _ => status(404, "NotFound", "unexpected"),
    });
    let db = StatefulSet::new(&k8s, "data", "db").unwrap();
    assert_eq!(db.current().await.unwrap().id, "2");
    let to = db.resolve(&Selector::Previous).await.unwrap();
    assert_eq!(
        (to.id.as_str(), to.images.clone()),
        ("1", vec!["pg:16.1".to_string()])
    );
    let change = db.plan(&to).await.unwrap();
    assert_eq!(db.apply(&change).await.unwrap(), ApplyOutcome::Applied);
    let sent = patches(&calls);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].content_type,
        "application/strategic-merge-patch+json"
    );
    assert_eq!(
        sent[0].body,
        json!({"metadata": {"resourceVersion": "7"},
               "spec": {"template": {"$patch": "replace", "metadata": {"labels": {"app": "db"}},
                                     "spec": {"containers": [{"name": "db", "image": "pg:16.1"}]}}}})
    );
}

/// A token an API answer echoes back (a proxy quoting the request, a webhook's message).
const TOKEN: &str =
    "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2EifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg";

#[tokio::test]
async fn kube_errors_are_short_readable_and_free_of_secrets() {
    let html = format!(
        "<!DOCTYPE html><html><head><title>500 Internal Server Error</title><style>{}</style></head>\
         <body><h1>Internal Server Error</h1><p>The upstream API server did not answer.</p></body></html>",
        "body { font-family: sans-serif; } ".repeat(40)
    );
    let forbidden = serde_json::to_vec(&status(
        403,
        "Forbidden",
        "deployments.apps \"frontend\" is forbidden: User \"ci\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"production\"",
    ).1)
    .unwrap();
    let echo = format!(
        "bad gateway: upstream refused request GET {DEPLOYMENT} with headers Authorization: Bearer {TOKEN} and token={TOKEN}"
    );
    let echoed_status = serde_json::to_vec(
        &status(
            401,
            "Unauthorized",
            &format!("invalid bearer token {TOKEN}"),
        )
        .1,
    )
    .unwrap();
    type Case = (Raw, ErrorKind, bool, &'static [&'static str]);
    let cases: Vec<Case> = vec![
        (
            (500, "text/html", html.clone().into_bytes()),
            ErrorKind::Backend,
            true,
            &[
                "get deployment production/frontend",
                "HTTP 500",
                "Internal Server Error",
                "try again",
            ],
        ),
        (
            (403, "application/json", forbidden),
            ErrorKind::PermissionDenied,
            false,
            &[
                "get deployment production/frontend",
                "HTTP 403 (Forbidden)",
                "User \"ci\" cannot get resource",
                "RBAC",
                "kubectl auth can-i get deployments -n production",
            ],
        ),
        (
            (
                200,
                "application/json",
                b"{\"kind\": \"Deployment\", garbage".to_vec(),
            ),
            ErrorKind::Backend,
            false,
            &[
                "get deployment production/frontend",
                "not a Kubernetes deployment",
                "not a proxy or a login page",
            ],
        ),
        (
            (502, "text/plain", echo.into_bytes()),
            ErrorKind::Backend,
            true,
            &["HTTP 502", "bad gateway", "<redacted>"],
        ),
        (
            (401, "application/json", echoed_status),
            ErrorKind::Backend,
            false,
            &[
                "HTTP 401 (Unauthorized)",
                "invalid bearer token",
                "log in again",
            ],
        ),
    ];
    for ((code, content_type, body), kind, retryable, words) in cases {
        let (k8s, _) = fake_raw(move |_| (code, content_type, body.clone()));
        let frontend = Deployment::new(&k8s, "production", "frontend").unwrap();
        let err = frontend.current().await.unwrap_err();
        let text = err.to_string();
        println!("HTTP {code} -> {text}");
        assert_eq!(err.kind(), kind, "{code}: {text}");
        assert_eq!(err.is_retryable(), retryable, "{code}: {text}");
        assert!(
            text.starts_with("k8s-deployment/production/frontend: "),
            "{text}"
        );
        for w in words {
            assert!(text.contains(w), "{code}: {w:?} missing from {text}");
        }
        // One or two sentences: no Debug dump, no type names, no raw page, no secret.
        for bad in [
            "ApiError",
            "Status {",
            "SerdeError",
            "Error deserializing",
            "HyperError",
            "<html",
            "<title",
            "font-family",
            "Failed to parse error data",
            "Some(",
            "\\\"",
            TOKEN,
        ] {
            assert!(!text.contains(bad), "{code}: {bad:?} in {text}");
        }
        assert!(
            text.chars().count() <= 450,
            "{code}: {} chars: {text}",
            text.chars().count()
        );
        // The full kube error is kept as the source, for a person who wants the details.
        let source =
            std::error::Error::source(&err).unwrap_or_else(|| panic!("{code}: no source: {text}"));
        assert!(!source.to_string().is_empty());
    }
}

/// Bad input for every kind of target and check, each refused as `InvalidInput` naming
/// the target, before any request.
#[tokio::test]
async fn bad_input_is_refused_before_any_request() {
    let (k8s, calls) = fake(|_| status(500, "InternalError", "unexpected"));
    let long_label = "a".repeat(64);
    let long_name = format!("{}.b", "a".repeat(252));
    for (ns, name) in [
        ("production", ""),
        ("", "frontend"),
        ("Production", "frontend"),
        ("production", "Frontend"),
        ("production", "front_end"),
        (long_label.as_str(), "frontend"),
        ("production", long_name.as_str()),
        ("prod.eu", "frontend"),
        ("production", "front..end"),
        ("production", "-frontend"),
        ("production", "frontend.-v2"),
    ] {
        for err in [
            Deployment::new(&k8s, ns, name).unwrap_err(),
            DaemonSet::new(&k8s, ns, name).unwrap_err(),
        ] {
            assert_eq!(
                err.kind(),
                ErrorKind::InvalidInput,
                "{ns:?}/{name:?}: {err}"
            );
            assert!(err.to_string().contains("k8s-"), "{err}");
            assert!(err.to_string().contains("give at most"), "{err}");
        }
    }
    // A StatefulSet's name is a DNS label (its pods' host names are), not a subdomain.
    let err = StatefulSet::new(&k8s, "data", "db.v1").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string().contains("k8s-statefulset/data/db.v1"),
        "{err}"
    );
    assert!(Deployment::new(&k8s, "production", "frontend.v1").is_ok());

    let d = Deployment::new(&k8s, "production", "frontend").unwrap();
    let s = StatefulSet::new(&k8s, "data", "db").unwrap();
    let ds = DaemonSet::new(&k8s, "kube-system", "agent").unwrap();
    let workloads: Vec<Arc<dyn RollbackTarget>> =
        vec![Arc::new(d.clone()), Arc::new(s.clone()), Arc::new(ds)];
    for target in &workloads {
        for (selector, words) in [
            (Selector::Exact("0".into()), "revision 0 does not exist"),
            (Selector::Exact("-1".into()), "not a revision number"),
            (Selector::Exact("+2".into()), "not a revision number"),
            (Selector::Exact("1.5".into()), "not a revision number"),
            (Selector::Exact("".into()), "not a revision number"),
            (Selector::Exact("99999999999999999999".into()), "too large"),
            (Selector::StepsBack(0), "1 or more steps back"),
            (Selector::ImageTag(" ".into()), "image tag is empty"),
        ] {
            let err = target.resolve(&selector).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{selector}: {err}");
            assert!(err.to_string().contains(&target.id().to_string()), "{err}");
            assert!(err.to_string().contains(words), "{selector}: {err}");
        }
    }
    let recovery: Vec<(Arc<dyn RollbackTarget>, Selector, &str)> = vec![
        (
            Arc::new(d.replicas()),
            Selector::Exact("-1".into()),
            "cannot be negative",
        ),
        (
            Arc::new(s.replicas()),
            Selector::Exact("2147483648".into()),
            "over the API's limit",
        ),
        (
            Arc::new(d.replicas()),
            Selector::Exact("three".into()),
            "not a whole number",
        ),
        (
            Arc::new(d.replicas()),
            Selector::StepsBack(0),
            "1 or more steps back",
        ),
        (
            Arc::new(d.replicas().gradual([0, 2])),
            Selector::Exact("3".into()),
            "gradual scale-up count 0",
        ),
        (
            Arc::new(d.restart()),
            Selector::Exact("yesterday".into()),
            "not a restart time",
        ),
        (
            Arc::new(s.restart()),
            Selector::StepsBack(0),
            "1 or more steps back",
        ),
    ];
    for (target, selector, words) in recovery {
        let err = target.resolve(&selector).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{selector}: {err}");
        assert!(err.to_string().contains(&target.id().to_string()), "{err}");
        assert!(err.to_string().contains(words), "{selector}: {err}");
    }
    for (ns, selector, words) in [
        ("production", "", "give a label selector"),
        ("production", "app=Front End", "the value \"Front End\""),
        ("production", "app in (web", "without its ')'"),
        ("production", "app in ()", "lists no values"),
        ("production", "=web", "has no name"),
        ("production", "app=web,", "empty requirement"),
        ("production", "app=web,,tier=x", "empty requirement"),
        ("production", "app>two", "not a whole number"),
        ("production", "Example.com/app=web", "not a DNS subdomain"),
        ("Production", "app=web", "not a valid Kubernetes namespace"),
    ] {
        let err = PodsReady::new(&k8s, ns, selector).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{selector:?}: {err}");
        assert!(err.to_string().contains("k8s-pods/"), "{err}");
        assert!(err.to_string().contains(words), "{selector:?}: {err}");
    }
    for good in [
        "app=web",
        "app==web,tier!=canary",
        "app in (a, b),!legacy",
        "example.com/app",
        "n>1",
        "app notin (x)",
    ] {
        assert!(PodsReady::new(&k8s, "production", good).is_ok(), "{good}");
    }
    assert!(
        calls.lock().unwrap().is_empty(),
        "{:?}",
        calls.lock().unwrap()
    );
}

/// An unknown kubeconfig context, or a URL that is not an API server's, is refused naming
/// the contexts there are (and, for a target rebuilt from a journal, the target).
#[tokio::test]
async fn unknown_context_and_bad_urls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\n\
         users:\n- name: u\n  user: {token: not-shown-anywhere}\ncontexts:\n- name: staging\n  context: {cluster: c, user: u}\n\
         - name: production\n  context: {cluster: c, user: u}\ncurrent-context: staging\n",
    )
    .unwrap();
    let config = K8sConfig {
        kubeconfig: Some(path.clone()),
        context: Some("prod".into()),
        url: None,
    };
    let err = config.load().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    for w in [
        "\"prod\"",
        "production, staging",
        "kubectl config get-contexts",
    ] {
        assert!(text.contains(w), "{w:?} missing from {text}");
    }
    assert!(!text.contains("not-shown-anywhere"), "{text}");

    let (k8s, calls) = fake(|_| status(500, "InternalError", "unexpected"));
    let d = Deployment::new(&k8s, "production", "frontend").unwrap();
    let mut spec = d.spec();
    spec.params["k8s"] = serde_json::to_value(&config).unwrap();
    let err = rollback_k8s::registry()
        .build(&d.id(), &spec)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string()
            .starts_with("k8s-deployment/production/frontend: "),
        "{err}"
    );
    assert!(err.to_string().contains("\"prod\""), "{err}");
    assert!(calls.lock().unwrap().is_empty());

    for url in ["ftp://127.0.0.1:8001", "http://", "not a url", "/api"] {
        let err = K8s::from_url(url).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{url}: {err}");
        assert!(err.to_string().contains("not an API server URL"), "{err}");
    }
}

/// Credentials that may read a Deployment but not watch it fail the wait at once, with the
/// RBAC advice, instead of retrying the watch until the step times out.
#[tokio::test]
async fn a_forbidden_watch_fails_the_wait_at_once() {
    let (k8s, calls) = fake(|c| match (c.method.as_str(), c.path.as_str()) {
        ("GET", "/apis/apps/v1/namespaces/production/deployments") => status(
            403,
            "Forbidden",
            "deployments.apps is forbidden: User \"ci\" cannot watch resource \"deployments\"",
        ),
        ("GET", DEPLOYMENT) => (200, deployment("web:2.0", "42", false)),
        ("GET", REPLICA_SETS) => (200, replica_sets()),
        _ => status(404, "NotFound", "unexpected"),
    });
    let frontend = Deployment::new(&k8s, "production", "frontend").unwrap();
    let current = frontend.current().await.unwrap();
    let err = frontend
        .wait_stable(
            &current,
            std::time::Duration::from_secs(60),
            &rollback_core::Progress::none(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.to_string().contains("HTTP 403 (Forbidden)"), "{err}");
    assert!(
        err.to_string()
            .contains("kubectl auth can-i watch deployments -n production"),
        "{err}"
    );
    let watches = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.path.ends_with("/deployments"))
        .count();
    assert_eq!(watches, 1, "the forbidden watch was tried again");
}
