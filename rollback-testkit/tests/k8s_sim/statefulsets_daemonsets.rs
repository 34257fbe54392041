//! The StatefulSet and DaemonSet controllers: ControllerRevisions, partitions, OnDelete,
//! one pod per node, rollback by a revision's data.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch};
use kube::ResourceExt;
use rollback_testkit::k8s::SimConfig;
use serde_json::json;

use crate::common::{
    daemonset, labelled, patch, set_template_image, statefulset, wait_for, Cluster,
};

fn sts_done(s: &StatefulSet) -> bool {
    let want = s.spec.as_ref().unwrap().replicas.unwrap_or(1);
    s.status.as_ref().is_some_and(|st| {
        st.observed_generation == s.metadata.generation
            && st.ready_replicas == Some(want)
            && st.updated_replicas == Some(want)
            && st.current_revision == st.update_revision
    })
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
async fn statefulset_revisions_partition_and_rollback() {
    let c = Cluster::with(SimConfig::new().step(Duration::from_millis(30))).await;
    let (api, pods) = (c.api::<StatefulSet>(), c.api::<Pod>());
    c.create(&statefulset(
        "db",
        "db:1",
        json!({"replicas": 3, "serviceName": "db"}),
    ))
    .await;
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
    let revs = c.revisions_of(&uid, "db").await;
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
    let p = pods.get("db-2").await.unwrap();
    assert_eq!(p.labels()["controller-revision-hash"], first.name_any());

    // Partition 2: only db-2 moves to the new revision.
    patch(
        &api,
        "db",
        &Patch::Strategic(json!({"spec": {
            "updateStrategy": {"rollingUpdate": {"partition": 2}},
            "template": {"spec": {"containers": [{"name": "app", "image": "db:2"}]}}
        }})),
    )
    .await;
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
    patch(
        &api,
        "db",
        &Patch::Merge(json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}})),
    )
    .await;
    let s = wait_for(&api, "db", sts_done).await;
    assert_eq!(s.status.unwrap().current_revision.unwrap(), update_rev);
    let revs = c.revisions_of(&uid, "db").await;
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);

    // `kubectl rollout undo`: the old revision's data as a strategic merge patch.
    patch(&api, "db", &Patch::Strategic(data)).await;
    let s = wait_for(&api, "db", sts_done).await;
    let revs = c.revisions_of(&uid, "db").await;
    assert_eq!(revs.len(), 2, "the equal revision is reused");
    let reused = revs
        .iter()
        .find(|r| r.name_any() == first.name_any())
        .unwrap();
    assert_eq!(reused.revision, 3);
    assert_eq!(s.status.unwrap().update_revision.unwrap(), first.name_any());
    let c0 = &s.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(c0.image.as_deref(), Some("db:1"));
}

#[tokio::test]
async fn statefulset_on_delete_does_not_roll() {
    let c = Cluster::paused().await;
    let (sim, api, pods) = (&c.sim, c.api::<StatefulSet>(), c.api::<Pod>());
    c.create(&statefulset(
        "od",
        "od:1",
        json!({"replicas": 2, "updateStrategy": {"type": "OnDelete"}}),
    ))
    .await;
    sim.step(6).await.unwrap();
    set_template_image(&api, "od", "od:2").await;
    sim.step(6).await.unwrap();
    let st = api.get("od").await.unwrap().status.unwrap();
    assert_eq!(
        (st.replicas, st.ready_replicas, st.updated_replicas),
        (2, Some(2), None)
    );
    // A deleted pod comes back at the update revision.
    pods.delete("od-1", &DeleteParams::default()).await.unwrap();
    sim.step(3).await.unwrap();
    let st = api.get("od").await.unwrap().status.unwrap();
    assert_eq!(st.updated_replicas, Some(1));
    assert_eq!(
        pods.get("od-1").await.unwrap().labels()["controller-revision-hash"],
        st.update_revision.unwrap()
    );
}

#[tokio::test]
async fn daemonset_revisions_and_rollback() {
    let c = Cluster::with(SimConfig::new().step(Duration::from_millis(30)).nodes(4)).await;
    let (api, pods) = (c.api::<DaemonSet>(), c.api::<Pod>());
    c.create(&daemonset("agent", "agent:1")).await;
    let d = wait_for(&api, "agent", ds_done).await;
    let uid = d.uid().unwrap();
    let spec = d.spec.as_ref().unwrap();
    assert_eq!(
        spec.update_strategy.as_ref().unwrap().type_.as_deref(),
        Some("RollingUpdate")
    );
    assert_eq!(spec.revision_history_limit, Some(10));
    let list = labelled(&pods, "app=agent").await;
    let mut nodes: Vec<String> = list
        .iter()
        .map(|p| p.spec.clone().unwrap().node_name.unwrap())
        .collect();
    nodes.sort();
    nodes.dedup();
    assert_eq!(nodes.len(), 4, "one pod per node");
    let first = c.revisions_of(&uid, "agent").await.remove(0);
    let hash = first.labels()["controller-revision-hash"].clone();
    assert_eq!(first.name_any(), format!("agent-{hash}"));
    assert!(list
        .iter()
        .all(|p| p.labels()["controller-revision-hash"] == hash));

    set_template_image(&api, "agent", "agent:2").await;
    wait_for(&api, "agent", ds_done).await;
    let revs = c.revisions_of(&uid, "agent").await;
    assert_eq!(revs.iter().map(|r| r.revision).collect::<Vec<_>>(), [1, 2]);

    patch(
        &api,
        "agent",
        &Patch::Strategic(first.data.clone().unwrap().0),
    )
    .await;
    let d = wait_for(&api, "agent", ds_done).await;
    let revs = c.revisions_of(&uid, "agent").await;
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
    assert!(labelled(&pods, "app=agent").await.is_empty());
    assert!(c.revisions_of(&uid, "agent").await.is_empty());
}
