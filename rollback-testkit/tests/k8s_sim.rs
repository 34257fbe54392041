#![allow(clippy::unwrap_used)]
//! The Kubernetes API simulator, driven by the real kube-rs client.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet,
};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use rollback_testkit::k8s::{Fault, K8sSimulator, SimConfig};
use serde_json::{json, Value};

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(20);

fn client(sim: &K8sSimulator) -> Client {
    Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap()
}

fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}, "annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "env": [{"name": "MODE", "value": "a"}]}]}
            }
        }
    }))
    .unwrap()
}

fn workload(kind: &str, name: &str, image: &str, extra_spec: Value) -> Value {
    let mut spec = json!({
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]}
        }
    });
    for (k, v) in extra_spec.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec})
}

/// A rollout is done: observed, every replica updated and available (kubectl's rule).
fn rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = &d.status else { return false };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
}

async fn wait_for<K, F>(api: &Api<K>, name: &str, cond: F) -> K
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + k8s_openapi::serde::de::DeserializeOwned
        + Send
        + 'static,
    F: Fn(&K) -> bool,
{
    let found = tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&cond)),
    )
    .await
    .unwrap_or_else(|_| panic!("{name} did not reach the condition within {WAIT:?}"))
    .unwrap();
    found.unwrap()
}

async fn rollout(api: &Api<Deployment>, name: &str) -> Deployment {
    wait_for(api, name, rolled_out).await
}

fn revision(o: &impl ResourceExt) -> String {
    o.annotations()
        .get("deployment.kubernetes.io/revision")
        .cloned()
        .unwrap_or_default()
}

fn image_of(rs: &ReplicaSet) -> String {
    rs.spec
        .as_ref()
        .unwrap()
        .template
        .as_ref()
        .unwrap()
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone()
        .unwrap()
}

async fn owned_rs(client: &Client, d: &Deployment) -> Vec<ReplicaSet> {
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    let uid = d.uid().unwrap();
    let mut v: Vec<ReplicaSet> = rss
        .list(&ListParams::default().labels(&format!("app={}", d.name_any())))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|rs| {
            rs.owner_references()
                .iter()
                .any(|o| o.uid == uid && o.controller == Some(true))
        })
        .collect();
    v.sort_by_key(|rs| revision(rs).parse::<i64>().unwrap_or(0));
    v
}

async fn set_image(api: &Api<Deployment>, name: &str, image: &str) {
    let patch = json!({
        "metadata": {"annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    });
    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
}

fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn deployment_revisions_and_rollback_reuse_the_old_replicaset() {
    let sim = K8sSimulator::start().unwrap();
    sim.configure(SimConfig::new().step(Duration::from_millis(40)))
        .await
        .unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &deployment("web", "web:1", 2))
        .await
        .unwrap();
    let d = rollout(&api, "web").await;
    assert_eq!(revision(&d), "1");
    let rss = owned_rs(&client, &d).await;
    assert_eq!(rss.len(), 1);
    let first = rss[0].clone();
    let hash = first.labels()["pod-template-hash"].clone();
    assert_eq!(first.name_any(), format!("web-{hash}"));
    assert!(
        hash.len() >= 6
            && hash
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{hash}"
    );
    assert_eq!(revision(&first), "1");
    let annotations = first.annotations();
    assert_eq!(
        annotations["deployment.kubernetes.io/desired-replicas"],
        "2"
    );
    assert_eq!(annotations["deployment.kubernetes.io/max-replicas"], "3");
    assert_eq!(annotations["kubernetes.io/change-cause"], "deploy web:1");
    let owner = &first.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.block_owner_deletion),
        ("Deployment", Some(true))
    );
    let sel = first
        .spec
        .as_ref()
        .unwrap()
        .selector
        .match_labels
        .clone()
        .unwrap();
    assert_eq!(sel["pod-template-hash"], hash);

    set_image(&api, "web", "web:2").await;
    let d = rollout(&api, "web").await;
    assert_eq!(revision(&d), "2");
    let rss = owned_rs(&client, &d).await;
    assert_eq!(rss.iter().map(revision).collect::<Vec<_>>(), ["1", "2"]);
    assert_eq!(rss[0].spec.as_ref().unwrap().replicas, Some(0));
    assert_eq!(image_of(&rss[1]), "web:2");
    assert_eq!(
        rss[1].annotations()["kubernetes.io/change-cause"],
        "deploy web:2"
    );

    // What `kubectl rollout undo` sends: a JSON patch putting revision 1's template back.
    let mut template = serde_json::to_value(first.spec.unwrap().template.unwrap()).unwrap();
    template["metadata"]["labels"]
        .as_object_mut()
        .unwrap()
        .remove("pod-template-hash");
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": {"kubernetes.io/change-cause": "deploy web:1"}},
    ]))
    .unwrap();
    api.patch("web", &PatchParams::default(), &Patch::Json::<()>(patch))
        .await
        .unwrap();
    let d = rollout(&api, "web").await;
    assert_eq!(revision(&d), "3");
    let rss = owned_rs(&client, &d).await;
    assert_eq!(rss.len(), 2, "the old ReplicaSet is reused, no new one");
    let back = rss
        .iter()
        .find(|rs| rs.name_any() == format!("web-{hash}"))
        .unwrap();
    assert_eq!(revision(back), "3");
    assert_eq!(
        back.annotations()["deployment.kubernetes.io/revision-history"],
        "1"
    );
    assert_eq!(back.spec.as_ref().unwrap().replicas, Some(2));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pods = pods
        .list(&ListParams::default().labels(&format!("pod-template-hash={hash}")))
        .await
        .unwrap();
    assert_eq!(pods.items.len(), 2);
    assert!(pods
        .items
        .iter()
        .all(|p| p.name_any().starts_with(&format!("web-{hash}-"))));
}

#[tokio::test]
async fn rollout_passes_through_intermediate_states_then_completes() {
    let sim = K8sSimulator::start().unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    sim.pause_controller(true).await.unwrap();
    api.create(&PostParams::default(), &deployment("api", "api:1", 3))
        .await
        .unwrap();
    let d = api.get("api").await.unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(spec.revision_history_limit, Some(10));
    assert_eq!(spec.progress_deadline_seconds, Some(600));
    let ru = spec
        .strategy
        .as_ref()
        .unwrap()
        .rolling_update
        .as_ref()
        .unwrap();
    assert_eq!(serde_json::to_value(&ru.max_surge).unwrap(), json!("25%"));
    assert!(d
        .status
        .as_ref()
        .is_none_or(|s| s.observed_generation.is_none()));
    sim.step(1).await.unwrap();
    let d = api.get("api").await.unwrap();
    let s = d.status.clone().unwrap();
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(s.replicas, Some(3));
    assert_eq!(
        s.available_replicas, None,
        "pods are not ready in the step that creates them"
    );
    let progressing = s
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(progressing.reason.as_deref(), Some("NewReplicaSetCreated"));
    sim.step(1).await.unwrap();
    assert!(rolled_out(&api.get("api").await.unwrap()));

    // A template change, one step at a time: surge 1, unavailable 0.
    set_image(&api, "api", "api:2").await;
    sim.step(1).await.unwrap();
    let s = api.get("api").await.unwrap().status.unwrap();
    assert_eq!(
        (s.replicas, s.updated_replicas, s.available_replicas),
        (Some(4), Some(1), Some(3))
    );
    sim.step(1).await.unwrap();
    let s = api.get("api").await.unwrap().status.unwrap();
    assert_eq!(
        (s.replicas, s.updated_replicas, s.available_replicas),
        (Some(4), Some(2), Some(3))
    );
    assert_eq!(
        s.conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Progressing")
            .unwrap()
            .reason
            .as_deref(),
        Some("ReplicaSetUpdated")
    );
    sim.pause_controller(false).await.unwrap();
    let done = wait_for(&api, "api", |d: &Deployment| {
        rolled_out(d)
            && d.status
                .as_ref()
                .unwrap()
                .conditions
                .as_ref()
                .unwrap()
                .iter()
                .any(|c| {
                    c.type_ == "Progressing"
                        && c.reason.as_deref() == Some("NewReplicaSetAvailable")
                })
    })
    .await;
    let s = done.status.clone().unwrap();
    assert_eq!(s.observed_generation, done.metadata.generation);
    assert_eq!(
        (s.updated_replicas, s.available_replicas, s.ready_replicas),
        (Some(3), Some(3), Some(3))
    );
    assert_eq!(s.unavailable_replicas, None);
    let progressing = s
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    let new_rs = owned_rs(&client, &done).await.pop().unwrap();
    assert_eq!(
        progressing.message.unwrap(),
        format!(
            "ReplicaSet \"{}\" has successfully progressed.",
            new_rs.name_any()
        )
    );
    // The kube-runtime condition agrees.
    let completed = kube::runtime::wait::conditions::is_deployment_completed();
    assert!(kube::runtime::wait::Condition::matches_object(
        &completed,
        Some(&api.get("api").await.unwrap())
    ));
}

#[tokio::test]
async fn failing_image_exceeds_the_progress_deadline_and_keeps_old_pods() {
    let sim = K8sSimulator::start().unwrap();
    sim.configure(
        SimConfig::new()
            .step(Duration::from_millis(30))
            .deadline(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &deployment("pay", "pay:1", 2))
        .await
        .unwrap();
    rollout(&api, "pay").await;
    sim.fail_image("pay:broken").await.unwrap();
    set_image(&api, "pay", "pay:broken").await;
    let d = wait_for(&api, "pay", |d: &Deployment| {
        d.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.type_ == "Progressing"
                        && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
                })
            })
    })
    .await;
    let s = d.status.unwrap();
    let cond = s
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(cond.status, "False");
    let rss = owned_rs(&client, &api.get("pay").await.unwrap()).await;
    let new = rss.last().unwrap();
    assert_eq!(
        cond.message.unwrap(),
        format!(
            "ReplicaSet \"{}\" has timed out progressing.",
            new.name_any()
        )
    );
    assert_eq!(
        s.available_replicas,
        Some(2),
        "the old pods stay available (maxUnavailable 0)"
    );
    assert_eq!(s.updated_replicas, Some(1));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let hash = &new.labels()["pod-template-hash"];
    let bad = pods
        .list(&ListParams::default().labels(&format!("pod-template-hash={hash}")))
        .await
        .unwrap();
    let st = bad.items[0].status.clone().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let waiting = st.container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap();
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));

    // Rolling back to the good template completes and clears the condition.
    set_image(&api, "pay", "pay:1").await;
    let d = rollout(&api, "pay").await;
    assert_eq!(revision(&d), "3");
}

#[tokio::test]
async fn paused_deployment_does_not_roll_out() {
    let sim = K8sSimulator::start().unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    sim.pause_controller(true).await.unwrap();
    api.create(&PostParams::default(), &deployment("cart", "cart:1", 1))
        .await
        .unwrap();
    sim.step(3).await.unwrap();
    assert!(rolled_out(&api.get("cart").await.unwrap()));
    api.patch(
        "cart",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": true}})),
    )
    .await
    .unwrap();
    set_image(&api, "cart", "cart:2").await;
    sim.step(5).await.unwrap();
    let d = api.get("cart").await.unwrap();
    assert_eq!(
        d.status.as_ref().unwrap().observed_generation,
        d.metadata.generation
    );
    assert_eq!(
        owned_rs(&client, &d).await.len(),
        1,
        "no new ReplicaSet while paused"
    );
    assert_eq!(revision(&d), "1");
    let cond = d
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap();
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("Unknown", Some("DeploymentPaused"))
    );
    api.patch(
        "cart",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await
    .unwrap();
    sim.step(4).await.unwrap();
    let d = api.get("cart").await.unwrap();
    assert!(rolled_out(&d));
    assert_eq!(revision(&d), "2");
}

#[tokio::test]
async fn stale_resource_version_in_a_patch_is_a_conflict_and_changes_nothing() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let created = api
        .create(&PostParams::default(), &deployment("db", "db:1", 1))
        .await
        .unwrap();
    let stale = created.resource_version().unwrap();
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
    )
    .await
    .unwrap();
    let before = api.get("db").await.unwrap();
    assert_ne!(before.resource_version().unwrap(), stale);
    sim.reset_calls().await.unwrap();

    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
    ]))
    .unwrap();
    let err = api_error(
        api.patch("db", &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on deployments.apps \"db\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // A failing `test` operation is 422, and the patch is atomic.
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/replicas", "value": 7},
        {"op": "test", "path": "/metadata/resourceVersion", "value": stale},
    ]))
    .unwrap();
    let err = api_error(
        api.patch("db", &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    // An update with a stale resourceVersion too.
    let mut old = created.clone();
    old.spec.as_mut().unwrap().replicas = Some(9);
    let err = api_error(
        api.replace("db", &PostParams::default(), &old)
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    let after = api.get("db").await.unwrap();
    assert_eq!(after.resource_version(), before.resource_version());
    assert_eq!(after.spec.as_ref().unwrap().replicas, Some(1));
    let calls = sim.calls().await.unwrap();
    assert_eq!(
        calls
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["method"] == "PATCH")
            .count(),
        2
    );
    assert_eq!(calls[0]["content_type"], "application/json-patch+json");
    assert_eq!(calls[0]["status"], 409);
    assert_eq!(calls[0]["body"][1]["value"], 5);
    assert_eq!(sim.mutations().await.unwrap(), 3);
    // A patch carrying the current resourceVersion succeeds.
    let ok = api
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"resourceVersion": after.resource_version()}, "spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(ok.spec.unwrap().replicas, Some(2));
    assert_eq!(ok.metadata.generation, Some(2));
    // Server-side apply is not supported.
    let err = api_error(
        api.patch(
            "db",
            &PatchParams::apply("test"),
            &Patch::Apply(json!({"spec": {}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (err.code, err.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
    let err = api_error(api.get("nope").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "deployments.apps \"nope\" not found");
    let err = api_error(
        api.create(&PostParams::default(), &deployment("db", "db:1", 1))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
}

#[tokio::test]
async fn merge_and_strategic_merge_patches() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &deployment("m", "m:1", 1))
        .await
        .unwrap();
    // RFC 7386: null deletes, lists are replaced.
    let d = api
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "x", "app": null}, "annotations": {"kubernetes.io/change-cause": null}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        d.labels(),
        &BTreeMap::from([("team".to_string(), "x".to_string())])
    );
    assert!(!d.annotations().contains_key("kubernetes.io/change-cause"));
    assert_eq!(
        d.metadata.generation,
        Some(1),
        "metadata changes do not bump generation"
    );
    // Strategic merge: containers merge by name (env kept).
    let d = api
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "m:2"}]}}}})),
        )
        .await
        .unwrap();
    let c = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(c.image.as_deref(), Some("m:2"));
    assert_eq!(c.env.as_ref().unwrap()[0].name, "MODE");
    assert_eq!(d.metadata.generation, Some(2));
    // `$patch: replace` replaces the whole template, as a ControllerRevision's data does.
    let d = api
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {
                "$patch": "replace",
                "metadata": {"labels": {"app": "m"}},
                "spec": {"containers": [{"name": "other", "image": "o:1"}]}
            }}})),
        )
        .await
        .unwrap();
    let t = d.spec.as_ref().unwrap().template.clone();
    assert_eq!(t.spec.as_ref().unwrap().containers.len(), 1);
    assert_eq!(t.spec.as_ref().unwrap().containers[0].name, "other");
    assert!(t.spec.unwrap().containers[0].env.is_none());
    // A patch that breaks the selector is invalid.
    let err = api_error(
        api.patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"template": {"metadata": {"labels": {"app": "other"}}}}}),
            ),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    // The main endpoint ignores status; the status subresource changes only status.
    let d = api
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 42}})),
        )
        .await
        .unwrap();
    assert_ne!(d.status.and_then(|s| s.replicas), Some(42));
    let d = api
        .patch_status(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 42}, "spec": {"replicas": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().replicas, Some(42));
    assert_eq!(d.spec.unwrap().replicas, Some(1));
}

#[tokio::test]
async fn scale_subresource() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &deployment("s", "s:1", 2))
        .await
        .unwrap();
    let scale = api.get_scale("s").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=s"));
    let scale = api
        .patch_scale(
            "s",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(4));
    assert_eq!(api.get("s").await.unwrap().spec.unwrap().replicas, Some(4));
    sim.step(2).await.unwrap();
    let rss = owned_rs(&client, &api.get("s").await.unwrap()).await;
    assert_eq!(rss.len(), 1, "scaling does not create a ReplicaSet");
    assert_eq!(rss[0].status.as_ref().unwrap().ready_replicas, Some(4));
}

#[tokio::test]
async fn label_and_field_selectors_and_paging() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    for (name, tier, canary) in [
        ("a", "front", false),
        ("b", "back", false),
        ("c", "front", true),
    ] {
        let mut d = deployment(name, "x:1", 1);
        d.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("tier".into(), tier.into());
        if canary {
            d.metadata
                .labels
                .as_mut()
                .unwrap()
                .insert("canary".into(), "true".into());
        }
        api.create(&PostParams::default(), &d).await.unwrap();
    }
    let other: Api<Deployment> = Api::namespaced(client.clone(), "other");
    other
        .create(&PostParams::default(), &deployment("a", "x:1", 1))
        .await
        .unwrap();
    let names = |l: kube::core::ObjectList<Deployment>| {
        l.items.iter().map(|d| d.name_any()).collect::<Vec<_>>()
    };
    let q = |s: &str| ListParams::default().labels(s);
    assert_eq!(names(api.list(&q("tier=front")).await.unwrap()), ["a", "c"]);
    assert_eq!(
        names(api.list(&q("tier==front,!canary")).await.unwrap()),
        ["a"]
    );
    assert_eq!(names(api.list(&q("tier!=front")).await.unwrap()), ["b"]);
    assert_eq!(
        names(api.list(&q("app in (a,b)")).await.unwrap()),
        ["a", "b"]
    );
    assert_eq!(
        names(api.list(&q("app notin (a)")).await.unwrap()),
        ["b", "c"]
    );
    assert_eq!(names(api.list(&q("canary")).await.unwrap()), ["c"]);
    let f = |s: &str| ListParams::default().fields(s);
    assert_eq!(names(api.list(&f("metadata.name=b")).await.unwrap()), ["b"]);
    assert_eq!(
        names(api.list(&f("metadata.name!=b")).await.unwrap()),
        ["a", "c"]
    );
    let all: Api<Deployment> = Api::all(client.clone());
    let list = all.list(&f("metadata.namespace=other")).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].namespace().as_deref(), Some("other"));
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        4
    );
    let err = api_error(api.list(&f("spec.replicas=1")).await.unwrap_err());
    assert_eq!(err.code, 400);
    // Paging.
    let page = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(page.clone()), ["a", "b"]);
    let token = page.metadata.continue_.clone().unwrap();
    let rest = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(rest.clone()), ["c"]);
    assert!(rest.metadata.continue_.is_none_or(|c| c.is_empty()));
}

#[tokio::test]
async fn watch_from_a_resource_version_ends_after_its_timeout() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &deployment("w", "w:1", 1))
        .await
        .unwrap();
    api.create(&PostParams::default(), &deployment("other", "w:1", 1))
        .await
        .unwrap();
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    // Changes after `rv`: one to a watched object, one to another, a delete.
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    api.patch(
        "other",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let wp = WatchParams::default().labels("app=w").timeout(2);
    let mut stream = api.watch(&wp, &rv).await.unwrap().boxed();
    let mut seen = Vec::new();
    let mut deleted = false;
    while let Some(ev) = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match ev {
            WatchEvent::Modified(d) => seen.push(d.spec.unwrap().replicas.unwrap()),
            WatchEvent::Deleted(d) => {
                assert_eq!(d.name_any(), "w");
                deleted = true;
            }
            // kube asks for bookmarks by default.
            WatchEvent::Bookmark(b) => assert!(b.metadata.resource_version.parse::<u64>().is_ok()),
            other => panic!("unexpected {other:?}"),
        }
        if seen.len() == 1 && !deleted {
            api.delete("w", &DeleteParams::default()).await.unwrap();
        }
    }
    assert_eq!(seen, [3]);
    assert!(deleted);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(8),
        "{elapsed:?}"
    );
    // No resourceVersion: the current state as synthetic ADDED events.
    let mut stream = api
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Added(ref d) if d.name_any() == "other"),
        "{first:?}"
    );
}

#[tokio::test]
async fn expired_resource_version_is_gone() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let d = api
        .create(&PostParams::default(), &deployment("g", "g:1", 1))
        .await
        .unwrap();
    let old = d.resource_version().unwrap();
    api.patch(
        "g",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    sim.compact().await.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &old)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    // The current resourceVersion still works.
    let now = api.get("g").await.unwrap().resource_version().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(5), &now)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "g",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    assert!(matches!(
        stream.try_next().await.unwrap().unwrap(),
        WatchEvent::Modified(_)
    ));
}

#[tokio::test]
async fn kube_watcher_with_streaming_lists_and_bookmarks() {
    let sim = K8sSimulator::start().unwrap();
    sim.configure(SimConfig::new().bookmark_interval(Duration::from_millis(50)))
        .await
        .unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &deployment("one", "x:1", 1))
        .await
        .unwrap();
    let cfg = watcher::Config::default()
        .streaming_lists()
        .labels("app in (one,two)");
    let mut events = watcher(api.clone(), cfg).boxed();
    let mut init = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, events.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::Init => {}
            watcher::Event::InitApply(d) => init.push(d.name_any()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(init, ["one"]);
    api.create(&PostParams::default(), &deployment("two", "x:1", 1))
        .await
        .unwrap();
    let applied = tokio::time::timeout(WAIT, async {
        loop {
            if let watcher::Event::Apply(d) = events.try_next().await.unwrap().unwrap() {
                if d.name_any() == "two" {
                    return d;
                }
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(applied.name_any(), "two");
}

async fn revisions_of(client: &Client, owner_uid: &str, app: &str) -> Vec<ControllerRevision> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), NS);
    let mut v: Vec<ControllerRevision> = api
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|r| {
            r.owner_references()
                .iter()
                .any(|o| o.uid == owner_uid && o.controller == Some(true))
        })
        .collect();
    v.sort_by_key(|r| r.revision);
    v
}

fn sts_done(s: &StatefulSet) -> bool {
    let want = s.spec.as_ref().unwrap().replicas.unwrap_or(1);
    s.status.as_ref().is_some_and(|st| {
        st.observed_generation == s.metadata.generation
            && st.ready_replicas == Some(want)
            && st.updated_replicas == Some(want)
            && st.current_revision == st.update_revision
    })
}

#[tokio::test]
async fn statefulset_revisions_partition_and_rollback() {
    let sim = K8sSimulator::start().unwrap();
    sim.configure(SimConfig::new().step(Duration::from_millis(30)))
        .await
        .unwrap();
    let client = client(&sim);
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let sts: StatefulSet = serde_json::from_value(workload(
        "StatefulSet",
        "db",
        "db:1",
        json!({"replicas": 3, "serviceName": "db"}),
    ))
    .unwrap();
    api.create(&PostParams::default(), &sts).await.unwrap();
    let s = wait_for(&api, "db", sts_done).await;
    let spec = s.spec.as_ref().unwrap();
    assert_eq!(spec.pod_management_policy.as_deref(), Some("OrderedReady"));
    assert_eq!(
        spec.update_strategy
            .as_ref()
            .unwrap()
            .rolling_update
            .as_ref()
            .unwrap()
            .partition,
        Some(0)
    );
    let uid = s.uid().unwrap();
    let revs = revisions_of(&client, &uid, "db").await;
    assert_eq!(revs.len(), 1);
    let first = revs[0].clone();
    assert_eq!(first.revision, 1);
    assert_eq!(
        Some(first.name_any()),
        s.status.as_ref().unwrap().update_revision
    );
    assert!(first.labels().contains_key("controller-revision-hash"));
    let data = first.data.clone().unwrap().0;
    assert_eq!(data["spec"]["template"]["$patch"], "replace");
    assert_eq!(
        data["spec"]["template"]["spec"]["containers"][0]["image"],
        "db:1"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let p = pods.get("db-2").await.unwrap();
    assert_eq!(p.labels()["controller-revision-hash"], first.name_any());

    // Partition 2: only db-2 moves to the new revision.
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Strategic(json!({"spec": {
            "updateStrategy": {"rollingUpdate": {"partition": 2}},
            "template": {"spec": {"containers": [{"name": "app", "image": "db:2"}]}}
        }})),
    )
    .await
    .unwrap();
    let s = wait_for(&api, "db", |s: &StatefulSet| {
        s.status.as_ref().is_some_and(|st| {
            st.observed_generation == s.metadata.generation
                && st.updated_replicas == Some(1)
                && st.ready_replicas == Some(3)
        })
    })
    .await;
    let st = s.status.clone().unwrap();
    assert_ne!(st.current_revision, st.update_revision);
    assert_eq!(st.current_replicas, Some(2));
    let update_rev = st.update_revision.clone().unwrap();
    assert_eq!(
        pods.get("db-2").await.unwrap().labels()["controller-revision-hash"],
        update_rev
    );
    assert_eq!(
        pods.get("db-0").await.unwrap().labels()["controller-revision-hash"],
        first.name_any()
    );
    // Partition 0: the rest follows and the current revision becomes the update revision.
    api.patch(
        "db",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})),
    )
    .await
    .unwrap();
    let s = wait_for(&api, "db", sts_done).await;
    assert_eq!(s.status.unwrap().current_revision.unwrap(), update_rev);
    let revs = revisions_of(&client, &uid, "db").await;
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);

    // `kubectl rollout undo`: the old revision's data as a strategic merge patch.
    api.patch("db", &PatchParams::default(), &Patch::Strategic(data))
        .await
        .unwrap();
    let s = wait_for(&api, "db", sts_done).await;
    let revs = revisions_of(&client, &uid, "db").await;
    assert_eq!(revs.len(), 2, "the equal revision is reused");
    let reused = revs
        .iter()
        .find(|r| r.name_any() == first.name_any())
        .unwrap();
    assert_eq!(reused.revision, 3);
    assert_eq!(s.status.unwrap().update_revision.unwrap(), first.name_any());
    let c = &s.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(c.image.as_deref(), Some("db:1"));
}

#[tokio::test]
async fn statefulset_on_delete_does_not_roll() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let sts: StatefulSet = serde_json::from_value(workload(
        "StatefulSet",
        "od",
        "od:1",
        json!({"replicas": 2, "updateStrategy": {"type": "OnDelete"}}),
    ))
    .unwrap();
    api.create(&PostParams::default(), &sts).await.unwrap();
    sim.step(6).await.unwrap();
    set_sts_image(&api, "od", "od:2").await;
    sim.step(6).await.unwrap();
    let st = api.get("od").await.unwrap().status.unwrap();
    assert_eq!(
        (st.replicas, st.ready_replicas, st.updated_replicas),
        (2, Some(2), None)
    );
    // A deleted pod comes back at the update revision.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.delete("od-1", &DeleteParams::default()).await.unwrap();
    sim.step(3).await.unwrap();
    let st = api.get("od").await.unwrap().status.unwrap();
    assert_eq!(st.updated_replicas, Some(1));
    assert_eq!(
        pods.get("od-1").await.unwrap().labels()["controller-revision-hash"],
        st.update_revision.unwrap()
    );
}

async fn set_sts_image(api: &Api<StatefulSet>, name: &str, image: &str) {
    let p =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    api.patch(name, &PatchParams::default(), &Patch::Strategic(p))
        .await
        .unwrap();
}

fn ds_done(d: &DaemonSet) -> bool {
    d.status.as_ref().is_some_and(|s| {
        s.observed_generation == d.metadata.generation
            && s.desired_number_scheduled == 4
            && s.updated_number_scheduled == Some(4)
            && s.number_available == Some(4)
    })
}

#[tokio::test]
async fn daemonset_revisions_and_rollback() {
    let sim = K8sSimulator::start().unwrap();
    sim.configure(SimConfig::new().step(Duration::from_millis(30)).nodes(4))
        .await
        .unwrap();
    let client = client(&sim);
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), NS);
    let ds: DaemonSet =
        serde_json::from_value(workload("DaemonSet", "agent", "agent:1", json!({}))).unwrap();
    api.create(&PostParams::default(), &ds).await.unwrap();
    let d = wait_for(&api, "agent", ds_done).await;
    let uid = d.uid().unwrap();
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(
        spec.update_strategy.as_ref().unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    assert_eq!(spec.revision_history_limit, Some(10));
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let list = pods
        .list(&ListParams::default().labels("app=agent"))
        .await
        .unwrap();
    let mut nodes: Vec<String> = list
        .items
        .iter()
        .map(|p| p.spec.clone().unwrap().node_name.unwrap())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 4, "one pod per node");
    let first = revisions_of(&client, &uid, "agent").await.remove(0);
    let hash = first.labels()["controller-revision-hash"].clone();
    assert_eq!(first.name_any(), format!("agent-{hash}"));
    assert!(list
        .items
        .iter()
        .all(|p| p.labels()["controller-revision-hash"] == hash));

    let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "agent:2"}]}}}});
    api.patch("agent", &PatchParams::default(), &Patch::Strategic(p))
        .await
        .unwrap();
    wait_for(&api, "agent", ds_done).await;
    let revs = revisions_of(&client, &uid, "agent").await;
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);

    api.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Strategic(first.data.clone().unwrap().0),
    )
    .await
    .unwrap();
    let d = wait_for(&api, "agent", ds_done).await;
    let revs = revisions_of(&client, &uid, "agent").await;
    assert_eq!(revs.len(), 2);
    assert_eq!(revs.last().unwrap().name_any(), first.name_any());
    assert_eq!(revs.last().unwrap().revision, 3);
    assert_eq!(
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .as_deref(),
        Some("agent:1")
    );

    // Deleting the DaemonSet deletes its pods and revisions.
    api.delete("agent", &DeleteParams::default()).await.unwrap();
    assert!(pods
        .list(&ListParams::default().labels("app=agent"))
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(revisions_of(&client, &uid, "agent").await.is_empty());
}

#[tokio::test]
async fn injected_faults_answer_real_statuses() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &deployment("f", "f:1", 1))
        .await
        .unwrap();
    sim.inject(Fault::new(Some("patch"), "/deployments/f", 409))
        .await
        .unwrap();
    let p = Patch::Merge(json!({"spec": {"replicas": 2}}));
    let err = api_error(
        api.patch("f", &PatchParams::default(), &p)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(err.message.contains("deployments.apps \"f\""));
    assert_eq!(
        api.get("f").await.unwrap().spec.unwrap().replicas,
        Some(1),
        "the fault changed nothing"
    );
    api.patch("f", &PatchParams::default(), &p).await.unwrap();

    sim.inject(Fault::new(Some("GET"), "/deployments/f", 500).times(2))
        .await
        .unwrap();
    for _ in 0..2 {
        let err = api_error(api.get("f").await.unwrap_err());
        assert_eq!((err.code, err.reason.as_str()), (500, "InternalError"));
    }
    api.get("f").await.unwrap();

    sim.inject(Fault::new(None, "/deployments", 429).retry_after(3))
        .await
        .unwrap();
    let resp = reqwest::get(format!(
        "{}/apis/apps/v1/namespaces/default/deployments",
        sim.url()
    ))
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["reason"], "TooManyRequests");
    assert_eq!(body["details"]["retryAfterSeconds"], 3);
    let calls = sim.calls().await.unwrap();
    let statuses: Vec<u64> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_u64().unwrap())
        .collect();
    assert!(statuses.contains(&429) && statuses.contains(&500));
}

#[tokio::test]
async fn deleting_a_deployment_deletes_its_replicasets_and_pods() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    api.create(&PostParams::default(), &deployment("gone", "g:1", 2))
        .await
        .unwrap();
    sim.step(2).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    assert_eq!(
        pods.list(&ListParams::default().labels("app=gone"))
            .await
            .unwrap()
            .items
            .len(),
        2
    );
    let answer = api.delete("gone", &DeleteParams::default()).await.unwrap();
    let status = answer.right().expect("apps resources answer a Status");
    assert_eq!(status.details.unwrap().name, "gone");
    assert!(pods
        .list(&ListParams::default().labels("app=gone"))
        .await
        .unwrap()
        .items
        .is_empty());
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), NS);
    assert!(rss
        .list(&ListParams::default().labels("app=gone"))
        .await
        .unwrap()
        .items
        .is_empty());
    // Pods the ReplicaSet controller owns are replaced when deleted.
    api.create(&PostParams::default(), &deployment("back", "b:1", 1))
        .await
        .unwrap();
    sim.step(2).await.unwrap();
    let pod = pods
        .list(&ListParams::default().labels("app=back"))
        .await
        .unwrap()
        .items
        .remove(0);
    pods.delete(&pod.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    sim.step(2).await.unwrap();
    let now = pods
        .list(&ListParams::default().labels("app=back"))
        .await
        .unwrap()
        .items;
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].name_any(), pod.name_any());
}

#[tokio::test]
async fn revision_history_limit_cleans_up_old_replicasets() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let mut d = deployment("h", "h:1", 1);
    d.spec.as_mut().unwrap().revision_history_limit = Some(2);
    api.create(&PostParams::default(), &d).await.unwrap();
    sim.step(3).await.unwrap();
    for i in 2..=5 {
        set_image(&api, "h", &format!("h:{i}")).await;
        sim.step(4).await.unwrap();
    }
    let d = api.get("h").await.unwrap();
    assert!(rolled_out(&d));
    let revs: Vec<String> = owned_rs(&client, &d).await.iter().map(revision).collect();
    assert_eq!(
        revs,
        ["3", "4", "5"],
        "two old ReplicaSets kept besides the current one"
    );
}

#[tokio::test]
async fn the_binary_serves_and_writes_a_usable_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollback-k8s-sim"))
        .args([
            "--port",
            "0",
            "--step-ms",
            "20",
            "--exit-on-stdin-eof",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{line}");
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .unwrap();
    assert_eq!(config.default_namespace, "default");
    assert_eq!(config.cluster_url.to_string().trim_end_matches('/'), url);
    let client = Client::try_from(config).unwrap();
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.git_version, "v1.33.0-rollback-sim");
    let api: Api<Deployment> = Api::default_namespaced(client);
    api.create(&PostParams::default(), &deployment("bin", "b:1", 1))
        .await
        .unwrap();
    rollout(&api, "bin").await;
    drop(child.stdin.take());
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn control_api_config_reset_and_healing() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<K8sSimulator>();
    let sim = K8sSimulator::start_async().await.unwrap();
    let settings = sim
        .configure(SimConfig::new().step(Duration::from_millis(25)).nodes(2))
        .await
        .unwrap();
    assert_eq!(
        (settings["step_ms"].as_u64(), settings["nodes"].as_u64()),
        (Some(25), Some(2))
    );
    assert_eq!(settings["deadline_ms"], 1000, "settings not given stay");
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    sim.fail_image("h:1").await.unwrap();
    api.create(&PostParams::default(), &deployment("heal", "h:1", 1))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let crashing = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                cs[0]
                    .state
                    .as_ref()
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref())
                    == Some("CrashLoopBackOff")
            })
    };
    let pod = tokio::time::timeout(WAIT, async {
        loop {
            let l = pods
                .list(&ListParams::default().labels("app=heal"))
                .await
                .unwrap();
            if let Some(p) = l.items.into_iter().find(|p| crashing(p)) {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    sim.heal_image("h:1").await.unwrap();
    wait_for(&pods, &pod.name_any(), |p: &Pod| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") && !crashing(p)
    })
    .await;
    rollout(&api, "heal").await;
    assert_eq!(
        sim.control("GET", "controller", None).await.unwrap()["running"],
        true
    );
    sim.reset().await.unwrap();
    assert!(api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert!(pods
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
    assert_eq!(
        sim.calls().await.unwrap().as_array().unwrap().len(),
        2,
        "the two lists since the reset"
    );
    assert!(sim.control("POST", "nope", None).await.is_err());
}

#[tokio::test]
async fn recreate_strategy_stops_old_pods_before_starting_new_ones() {
    let sim = K8sSimulator::start().unwrap();
    sim.pause_controller(true).await.unwrap();
    let client = client(&sim);
    let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let mut d = deployment("rc", "rc:1", 2);
    d.spec.as_mut().unwrap().strategy =
        Some(serde_json::from_value(json!({"type": "Recreate"})).unwrap());
    api.create(&PostParams::default(), &d).await.unwrap();
    sim.step(2).await.unwrap();
    assert!(rolled_out(&api.get("rc").await.unwrap()));
    set_image(&api, "rc", "rc:2").await;
    sim.step(1).await.unwrap();
    let s = api.get("rc").await.unwrap().status.unwrap();
    assert_eq!(
        (s.replicas, s.updated_replicas),
        (None, None),
        "old pods gone, new not started"
    );
    sim.step(2).await.unwrap();
    let d = api.get("rc").await.unwrap();
    assert!(rolled_out(&d));
    assert_eq!(
        owned_rs(&client, &d)
            .await
            .iter()
            .map(image_of)
            .collect::<Vec<_>>(),
        ["rc:1", "rc:2"]
    );
}
