//! core/v1 ConfigMaps and Services: the verbs, optimistic concurrency and errors as a real
//! API server answers them, a Service's defaults and cluster IP, strategic merge patches
//! of a Service's selector and ports, and the discovery kubectl reads.

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::{json, Value};

use crate::common::{api_error, Cluster};

fn config_map(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "web"}}, "data": data}),
    )
    .unwrap()
}

fn service(name: &str, app: &str) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"selector": {"app": app}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
    .unwrap()
}

#[tokio::test]
async fn config_maps_get_list_replace_patch_and_delete_with_the_api_servers_answers() {
    let c = Cluster::start();
    let api = c.api::<ConfigMap>();
    let created = c
        .create(&config_map("flags", json!({"mode": "live"})))
        .await;
    assert_eq!(
        created.metadata.generation, None,
        "ConfigMaps have no generation"
    );
    assert!(created.uid().is_some() && created.resource_version().is_some());
    let raw: Value = serde_json::to_value(&created).unwrap();
    assert_eq!(
        (raw["kind"].as_str(), raw["apiVersion"].as_str()),
        (Some("ConfigMap"), Some("v1"))
    );
    assert!(raw.get("status").is_none(), "a ConfigMap has no status");

    // A second create of the name: 409 AlreadyExists.
    let err = api_error(
        api.create(&PostParams::default(), &config_map("flags", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(err.message, "configmaps \"flags\" already exists");

    // Replace with the stored resourceVersion works; with a stale one, 409 Conflict.
    let mut next = created.clone();
    next.data = Some([("mode".to_string(), "maintenance".to_string())].into());
    let replaced = api
        .replace("flags", &PostParams::default(), &next)
        .await
        .unwrap();
    assert_ne!(replaced.resource_version(), created.resource_version());
    let err = api_error(
        api.replace("flags", &PostParams::default(), &next)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on configmaps \"flags\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Merge and strategic merge patches of data.
    let patched = api
        .patch(
            "flags",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"banner": "back soon", "mode": null}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap(),
        [("banner".to_string(), "back soon".to_string())].into()
    );
    let patched = api
        .patch(
            "flags",
            &PatchParams::default(),
            &Patch::Strategic(json!({"data": {"mode": "live"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap().len(), 2);

    // Listed by label; a bad key is 422 Invalid.
    let listed = api
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let err = api_error(
        api.create(
            &PostParams::default(),
            &config_map("bad", json!({"a b": "x"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .starts_with("ConfigMap \"bad\" is invalid: data[a b]: Invalid value"),
        "{}",
        err.message
    );

    // An immutable ConfigMap keeps its data.
    let mut frozen = config_map("frozen", json!({"a": "1"}));
    frozen.immutable = Some(true);
    c.create(&frozen).await;
    let err = api_error(
        api.patch(
            "frozen",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"a": "2"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422, "{}", err.message);

    // DELETE answers a Success Status; then 404 NotFound.
    let deleted = api.delete("flags", &DeleteParams::default()).await.unwrap();
    assert!(deleted.is_right(), "a ConfigMap's delete answers a Status");
    let err = api_error(api.get("flags").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "configmaps \"flags\" not found");
}

#[tokio::test]
async fn services_get_defaults_and_a_cluster_ip_that_a_replace_keeps() {
    let c = Cluster::start();
    let api = c.api::<Service>();
    let web = c.create(&service("web", "web")).await;
    let other = c.create(&service("other", "other")).await;
    let spec = web.spec.clone().unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(spec.session_affinity.as_deref(), Some("None"));
    let ip = spec.cluster_ip.clone().unwrap();
    assert!(ip.starts_with("10.96."), "{ip}");
    assert_eq!(spec.cluster_ips, Some(vec![ip.clone()]));
    assert_ne!(
        other.spec.unwrap().cluster_ip,
        Some(ip.clone()),
        "one IP per Service"
    );
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert!(web.status.is_some(), "a Service has a status");

    // A replace without the cluster IP keeps it (the API server's patchAllocatedValues).
    let stored = api.get("web").await.unwrap();
    let mut next = service("web", "maintenance");
    next.metadata.resource_version = stored.resource_version();
    let replaced = api
        .replace("web", &PostParams::default(), &next)
        .await
        .unwrap();
    let spec = replaced.spec.unwrap();
    assert_eq!(spec.cluster_ip, Some(ip.clone()));
    assert_eq!(
        spec.selector.unwrap(),
        [("app".to_string(), "maintenance".to_string())].into()
    );
    // ... and changing it is 422.
    let err = api_error(
        api.patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterIP": "10.96.9.9"}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message.contains("may not change once set"),
        "{}",
        err.message
    );

    // A strategic merge patch merges ports by port and the selector as a map.
    let patched = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"selector": {"app": "web", "tier": "front"}, "ports": [{"port": 80, "targetPort": 9090}]}})),
        )
        .await
        .unwrap();
    let spec = patched.spec.unwrap();
    assert_eq!(spec.selector.unwrap().len(), 2);
    let ports = spec.ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].protocol.as_deref(), Some("TCP"));
    assert_eq!(
        serde_json::to_value(&ports[0].target_port).unwrap(),
        json!(9090)
    );

    // No ports: 422; DELETE answers the Service itself.
    let err = api_error(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "empty"}, "spec": {}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 422);
    assert_eq!(
        err.message,
        "Service \"empty\" is invalid: spec.ports: Required value"
    );
    let deleted = api.delete("web", &DeleteParams::default()).await.unwrap();
    let gone = deleted
        .left()
        .expect("a Service's delete answers the object");
    assert_eq!(gone.name_any(), "web");
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
}

#[tokio::test]
async fn discovery_lists_config_maps_and_services_in_the_core_group() {
    let c = Cluster::start();
    let v1: Value = reqwest_json(&format!("{}/api/v1", c.sim.url())).await;
    let names: Vec<&str> = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    for want in ["pods", "configmaps", "services", "services/status"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let svc = v1["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "services")
        .unwrap();
    assert_eq!(svc["shortNames"], json!(["svc"]));
    assert_eq!(svc["namespaced"], json!(true));
}

async fn reqwest_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}
