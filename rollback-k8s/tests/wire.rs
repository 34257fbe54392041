#![allow(clippy::unwrap_used)]
//! Wire-level tests: the real kube-rs client on `tower_test`'s mock service, so each test
//! sees the exact requests a target sends (method, path, query, content type, body) and
//! decides the API server's answers, including the ones a simulator rarely gives (a 409 at
//! the worst moment, 429, 500, 403).

use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use rollback_core::{ApplyOutcome, ErrorKind, RollbackTarget, Selector};
use rollback_k8s::{Deployment, K8s, StatefulSet};
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

type Handler = Box<dyn FnMut(&Call) -> (u16, Value) + Send>;

/// A client whose requests are answered by `handler`; the calls are recorded.
fn fake(
    handler: impl FnMut(&Call) -> (u16, Value) + Send + 'static,
) -> (K8s, Arc<Mutex<Vec<Call>>>) {
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
            let (status, answer) = handler(&call);
            seen.lock().unwrap().push(call);
            let response = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
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
        (403, "Forbidden", ErrorKind::Backend, false),
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
