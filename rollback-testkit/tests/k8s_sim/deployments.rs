//! The Deployment controller: revisions, rollouts step by step, the progress deadline,
//! pausing, the Recreate strategy, history cleanup, cascading deletes.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch};
use kube::ResourceExt;
use rollback_testkit::k8s::SimConfig;
use serde_json::json;

use crate::common::{
    deployment, image_of, labelled, patch, progressing, revision, rolled_out, rollout, set_image,
    wait_for, Cluster,
};

#[tokio::test]
async fn deployment_revisions_and_rollback_reuse_the_old_replicaset() {
    let c = Cluster::with(SimConfig::new().step(Duration::from_millis(40))).await;
    let api = c.api::<Deployment>();
    c.create(&deployment("web", "web:1", 2)).await;
    let d = rollout(&api, "web").await;
    assert_eq!(revision(&d), "1");
    let rss = c.owned_rs(&d).await;
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
    let rss = c.owned_rs(&d).await;
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
    let undo: json_patch::Patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": {"kubernetes.io/change-cause": "deploy web:1"}},
    ]))
    .unwrap();
    patch(&api, "web", &Patch::Json::<()>(undo)).await;
    let d = rollout(&api, "web").await;
    assert_eq!(revision(&d), "3");
    let rss = c.owned_rs(&d).await;
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
    let pods = labelled(&c.api::<Pod>(), &format!("pod-template-hash={hash}")).await;
    assert_eq!(pods.len(), 2);
    assert!(pods
        .iter()
        .all(|p| p.name_any().starts_with(&format!("web-{hash}-"))));
}

#[tokio::test]
async fn rollout_passes_through_intermediate_states_then_completes() {
    let c = Cluster::paused().await;
    let (sim, api) = (&c.sim, c.api::<Deployment>());
    c.create(&deployment("api", "api:1", 3)).await;
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
    assert_eq!(
        progressing(&d).reason.as_deref(),
        Some("NewReplicaSetCreated")
    );
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
    let d = api.get("api").await.unwrap();
    let s = d.status.clone().unwrap();
    assert_eq!(
        (s.replicas, s.updated_replicas, s.available_replicas),
        (Some(4), Some(2), Some(3))
    );
    assert_eq!(progressing(&d).reason.as_deref(), Some("ReplicaSetUpdated"));
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
    let new_rs = c.owned_rs(&done).await.pop().unwrap();
    assert_eq!(
        progressing(&done).message.unwrap(),
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
    let c = Cluster::with(
        SimConfig::new()
            .step(Duration::from_millis(30))
            .deadline(Duration::from_millis(300)),
    )
    .await;
    let api = c.api::<Deployment>();
    c.create(&deployment("pay", "pay:1", 2)).await;
    rollout(&api, "pay").await;
    c.sim.fail_image("pay:broken").await.unwrap();
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
    let cond = progressing(&d);
    let s = d.status.unwrap();
    assert_eq!(cond.status, "False");
    let rss = c.owned_rs(&api.get("pay").await.unwrap()).await;
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
    let hash = &new.labels()["pod-template-hash"];
    let bad = labelled(&c.api::<Pod>(), &format!("pod-template-hash={hash}")).await;
    let st = bad[0].status.clone().unwrap();
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
    let c = Cluster::paused().await;
    let (sim, api) = (&c.sim, c.api::<Deployment>());
    c.create(&deployment("cart", "cart:1", 1)).await;
    sim.step(3).await.unwrap();
    assert!(rolled_out(&api.get("cart").await.unwrap()));
    patch(
        &api,
        "cart",
        &Patch::Merge(json!({"spec": {"paused": true}})),
    )
    .await;
    set_image(&api, "cart", "cart:2").await;
    sim.step(5).await.unwrap();
    let d = api.get("cart").await.unwrap();
    assert_eq!(
        d.status.as_ref().unwrap().observed_generation,
        d.metadata.generation
    );
    assert_eq!(
        c.owned_rs(&d).await.len(),
        1,
        "no new ReplicaSet while paused"
    );
    assert_eq!(revision(&d), "1");
    let cond = progressing(&d);
    assert_eq!(
        (cond.status.as_str(), cond.reason.as_deref()),
        ("Unknown", Some("DeploymentPaused"))
    );
    patch(
        &api,
        "cart",
        &Patch::Merge(json!({"spec": {"paused": false}})),
    )
    .await;
    sim.step(4).await.unwrap();
    let d = api.get("cart").await.unwrap();
    assert!(rolled_out(&d));
    assert_eq!(revision(&d), "2");
}

#[tokio::test]
async fn deleting_a_deployment_deletes_its_replicasets_and_pods() {
    let c = Cluster::paused().await;
    let (sim, api, pods) = (&c.sim, c.api::<Deployment>(), c.api::<Pod>());
    c.create(&deployment("gone", "g:1", 2)).await;
    sim.step(2).await.unwrap();
    assert_eq!(labelled(&pods, "app=gone").await.len(), 2);
    let answer = api.delete("gone", &DeleteParams::default()).await.unwrap();
    let status = answer.right().expect("apps resources answer a Status");
    assert_eq!(status.details.unwrap().name, "gone");
    assert!(labelled(&pods, "app=gone").await.is_empty());
    assert!(labelled(&c.api::<ReplicaSet>(), "app=gone")
        .await
        .is_empty());
    // Pods the ReplicaSet controller owns are replaced when deleted.
    c.create(&deployment("back", "b:1", 1)).await;
    sim.step(2).await.unwrap();
    let pod = labelled(&pods, "app=back").await.remove(0);
    pods.delete(&pod.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    sim.step(2).await.unwrap();
    let now = labelled(&pods, "app=back").await;
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].name_any(), pod.name_any());
}

#[tokio::test]
async fn revision_history_limit_cleans_up_old_replicasets() {
    let c = Cluster::paused().await;
    let (sim, api) = (&c.sim, c.api::<Deployment>());
    let mut d = deployment("h", "h:1", 1);
    d.spec.as_mut().unwrap().revision_history_limit = Some(2);
    c.create(&d).await;
    sim.step(3).await.unwrap();
    for i in 2..=5 {
        set_image(&api, "h", &format!("h:{i}")).await;
        sim.step(4).await.unwrap();
    }
    let d = api.get("h").await.unwrap();
    assert!(rolled_out(&d));
    let revs: Vec<String> = c.owned_rs(&d).await.iter().map(revision).collect();
    assert_eq!(
        revs,
        ["3", "4", "5"],
        "two old ReplicaSets kept besides the current one"
    );
}

#[tokio::test]
async fn recreate_strategy_stops_old_pods_before_starting_new_ones() {
    let c = Cluster::paused().await;
    let (sim, api) = (&c.sim, c.api::<Deployment>());
    let mut d = deployment("rc", "rc:1", 2);
    d.spec.as_mut().unwrap().strategy =
        Some(serde_json::from_value(json!({"type": "Recreate"})).unwrap());
    c.create(&d).await;
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
        c.owned_rs(&d)
            .await
            .iter()
            .map(image_of)
            .collect::<Vec<_>>(),
        ["rc:1", "rc:2"]
    );
}
