//! Shared fixtures: a started simulator with a kube client, workload objects, and the
//! waits and lookups the tests repeat.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, DeploymentCondition, ReplicaSet, StatefulSet,
};
use k8s_openapi::serde::de::DeserializeOwned;
use k8s_openapi::serde::Serialize;
use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Client, Resource, ResourceExt};
use rollback_testkit::k8s::{K8sSimulator, SimConfig};
use serde_json::{json, Value};

pub const NS: &str = "default";
pub const WAIT: Duration = Duration::from_secs(20);

/// A kube client for the simulator.
pub fn client(sim: &K8sSimulator) -> Client {
    Client::try_from(kube::Config::new(sim.url().parse().unwrap())).unwrap()
}

/// A started simulator and a kube client for it; objects live in [`NS`].
pub struct Cluster {
    pub sim: K8sSimulator,
    pub client: Client,
}

impl Cluster {
    /// The simulator with its default settings, its controller running.
    pub fn start() -> Cluster {
        let sim = K8sSimulator::start().unwrap();
        let client = client(&sim);
        Cluster { sim, client }
    }

    /// The simulator with `config` applied (`POST /_sim/config`).
    pub async fn with(config: SimConfig) -> Cluster {
        let cluster = Cluster::start();
        cluster.sim.configure(config).await.unwrap();
        cluster
    }

    /// The simulator with its controller paused: the test moves it with `sim.step(n)`.
    pub async fn paused() -> Cluster {
        let cluster = Cluster::start();
        cluster.sim.pause_controller(true).await.unwrap();
        cluster
    }

    /// The API of one resource in [`NS`].
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NS)
    }

    /// Creates `obj` in [`NS`]; returns what the API server stored.
    pub async fn create<K>(&self, obj: &K) -> K
    where
        K: Resource<Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned + Serialize,
        K::DynamicType: Default,
    {
        self.api::<K>()
            .create(&PostParams::default(), obj)
            .await
            .unwrap()
    }

    /// The ReplicaSets `d` controls, oldest revision first.
    pub async fn owned_rs(&self, d: &Deployment) -> Vec<ReplicaSet> {
        let uid = d.uid().unwrap();
        let mut v: Vec<ReplicaSet> = labelled(&self.api(), &format!("app={}", d.name_any()))
            .await
            .into_iter()
            .filter(|rs| controlled_by(rs, &uid))
            .collect();
        v.sort_by_key(|rs| revision(rs).parse::<i64>().unwrap_or(0));
        v
    }

    /// The ControllerRevisions of the object with `owner_uid` (label `app={app}`), oldest
    /// revision first.
    pub async fn revisions_of(&self, owner_uid: &str, app: &str) -> Vec<ControllerRevision> {
        let mut v: Vec<ControllerRevision> = labelled(&self.api(), &format!("app={app}"))
            .await
            .into_iter()
            .filter(|r| controlled_by(r, owner_uid))
            .collect();
        v.sort_by_key(|r| r.revision);
        v
    }
}

fn controlled_by(o: &impl ResourceExt, uid: &str) -> bool {
    o.owner_references()
        .iter()
        .any(|o| o.uid == uid && o.controller == Some(true))
}

/// The objects matching a label selector.
pub async fn labelled<K>(api: &Api<K>, selector: &str) -> Vec<K>
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    api.list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
}

/// Patches `name` with default parameters; returns the patched object.
pub async fn patch<K, P>(api: &Api<K>, name: &str, patch: &Patch<P>) -> K
where
    K: Resource + Clone + Debug + DeserializeOwned,
    P: Serialize + Debug,
{
    api.patch(name, &PatchParams::default(), patch)
        .await
        .unwrap()
}

/// A Deployment `name` of `replicas` pods running `image` (with one env var), labelled
/// `app={name}`, with a change-cause annotation.
pub fn deployment(name: &str, image: &str, replicas: i32) -> Deployment {
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

/// A StatefulSet `name` running `image`, with `extra_spec` added to its spec.
pub fn statefulset(name: &str, image: &str, extra_spec: Value) -> StatefulSet {
    serde_json::from_value(workload("StatefulSet", name, image, extra_spec)).unwrap()
}

/// A DaemonSet `name` running `image`.
pub fn daemonset(name: &str, image: &str) -> DaemonSet {
    serde_json::from_value(workload("DaemonSet", name, image, json!({}))).unwrap()
}

/// A rollout is done: observed, every replica updated and available (kubectl's rule).
pub fn rolled_out(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(s) = &d.status else { return false };
    s.observed_generation >= d.metadata.generation
        && s.updated_replicas.unwrap_or(0) == want
        && s.replicas.unwrap_or(0) == want
        && s.available_replicas.unwrap_or(0) == want
}

/// Waits (at most [`WAIT`]) until `name` exists and meets `cond`; returns it.
pub async fn wait_for<K, F>(api: &Api<K>, name: &str, cond: F) -> K
where
    K: Resource + Clone + Debug + DeserializeOwned + Send + 'static,
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

/// Waits until the Deployment `name` is [`rolled_out`].
pub async fn rollout(api: &Api<Deployment>, name: &str) -> Deployment {
    wait_for(api, name, rolled_out).await
}

/// A Deployment's or ReplicaSet's `deployment.kubernetes.io/revision`.
pub fn revision(o: &impl ResourceExt) -> String {
    o.annotations()
        .get("deployment.kubernetes.io/revision")
        .cloned()
        .unwrap_or_default()
}

/// The Deployment's `Progressing` condition.
pub fn progressing(d: &Deployment) -> DeploymentCondition {
    d.status
        .clone()
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .unwrap()
}

/// The image of a ReplicaSet's first container.
pub fn image_of(rs: &ReplicaSet) -> String {
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

/// Sets the image of the container `app` (strategic merge), with a change-cause.
pub async fn set_image(api: &Api<Deployment>, name: &str, image: &str) {
    let p = json!({
        "metadata": {"annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    });
    patch(api, name, &Patch::Strategic(p)).await;
}

/// Sets the image of the container `app` of any workload (strategic merge).
pub async fn set_template_image<K>(api: &Api<K>, name: &str, image: &str)
where
    K: Resource + Clone + Debug + DeserializeOwned,
{
    let p =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}});
    patch(api, name, &Patch::Strategic(p)).await;
}

/// The `Status` of an API error.
pub fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}
