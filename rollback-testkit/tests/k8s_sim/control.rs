//! The simulator's own surface: injected faults, the `/_sim/` control API (settings,
//! failing and healing images, the call log, reset), and the `rollback-k8s-sim` binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use rollback_testkit::k8s::{Fault, K8sSimulator, SimConfig};
use serde_json::{json, Value};

use crate::common::{
    api_error, client, deployment, labelled, rollout, wait_for, Cluster, NS, WAIT,
};

#[tokio::test]
async fn injected_faults_answer_real_statuses() {
    let c = Cluster::paused().await;
    let (sim, api) = (&c.sim, c.api::<Deployment>());
    c.create(&deployment("f", "f:1", 1)).await;
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
            let l = labelled(&pods, "app=heal").await;
            if let Some(p) = l.into_iter().find(|p| crashing(p)) {
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
