//! The object API: optimistic concurrency and errors, the three patch types, the status
//! and scale subresources, label and field selectors, paging.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;

use crate::common::{api_error, deployment, patch, Cluster};

#[tokio::test]
async fn stale_resource_version_in_a_patch_is_a_conflict_and_changes_nothing() {
    let c = Cluster::paused().await;
    let (sim, api) = (&c.sim, c.api::<Deployment>());
    let created = c.create(&deployment("db", "db:1", 1)).await;
    let stale = created.resource_version().unwrap();
    patch(
        &api,
        "db",
        &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
    )
    .await;
    let before = api.get("db").await.unwrap();
    assert_ne!(before.resource_version().unwrap(), stale);
    sim.reset_calls().await.unwrap();

    let p: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/metadata/resourceVersion", "value": stale},
        {"op": "replace", "path": "/spec/replicas", "value": 5},
    ]))
    .unwrap();
    let err = api_error(
        api.patch("db", &PatchParams::default(), &Patch::Json::<()>(p))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on deployments.apps \"db\": the object has been modified; please apply your changes to the latest version and try again"
    );
    // A failing `test` operation is 422, and the patch is atomic.
    let p: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/replicas", "value": 7},
        {"op": "test", "path": "/metadata/resourceVersion", "value": stale},
    ]))
    .unwrap();
    let err = api_error(
        api.patch("db", &PatchParams::default(), &Patch::Json::<()>(p))
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
    let ok = patch(
        &api,
        "db",
        &Patch::Merge(json!({"metadata": {"resourceVersion": after.resource_version()}, "spec": {"replicas": 2}})),
    )
    .await;
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
    let c = Cluster::paused().await;
    let api = c.api::<Deployment>();
    c.create(&deployment("m", "m:1", 1)).await;
    // RFC 7386: null deletes, lists are replaced.
    let d = patch(
        &api,
        "m",
        &Patch::Merge(json!({"metadata": {"labels": {"team": "x", "app": null}, "annotations": {"kubernetes.io/change-cause": null}}})),
    )
    .await;
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
    let d = patch(
        &api,
        "m",
        &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "m:2"}]}}}})),
    )
    .await;
    let c0 = &d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0];
    assert_eq!(c0.image.as_deref(), Some("m:2"));
    assert_eq!(c0.env.as_ref().unwrap()[0].name, "MODE");
    assert_eq!(d.metadata.generation, Some(2));
    // `$patch: replace` replaces the whole template, as a ControllerRevision's data does.
    let d = patch(
        &api,
        "m",
        &Patch::Strategic(json!({"spec": {"template": {
            "$patch": "replace",
            "metadata": {"labels": {"app": "m"}},
            "spec": {"containers": [{"name": "other", "image": "o:1"}]}
        }}})),
    )
    .await;
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
    let d = patch(
        &api,
        "m",
        &Patch::Merge(json!({"status": {"replicas": 42}})),
    )
    .await;
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
    let c = Cluster::paused().await;
    let api = c.api::<Deployment>();
    c.create(&deployment("s", "s:1", 2)).await;
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
    c.sim.step(2).await.unwrap();
    let rss = c.owned_rs(&api.get("s").await.unwrap()).await;
    assert_eq!(rss.len(), 1, "scaling does not create a ReplicaSet");
    assert_eq!(rss[0].status.as_ref().unwrap().ready_replicas, Some(4));
}

#[tokio::test]
async fn label_and_field_selectors_and_paging() {
    let c = Cluster::paused().await;
    let api = c.api::<Deployment>();
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
        c.create(&d).await;
    }
    let other: Api<Deployment> = Api::namespaced(c.client.clone(), "other");
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
    let all: Api<Deployment> = Api::all(c.client.clone());
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
