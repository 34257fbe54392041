//! One transaction over two clouds: an AWS Lambda alias and a Kubernetes Deployment, through
//! the real SDK clients against the AWS emulator and the Kubernetes API simulator. When the
//! Kubernetes step fails (its revision exceeds the progress deadline), the AWS step that
//! already succeeded is compensated too, in reverse order, and both read back as before.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1 as apps;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rollback_aws::{Aws, LambdaAlias};
use rollback_core::journal::{read_journal, Entry};
use rollback_core::{
    ErrorKind, FileLocks, Outcome, Progress, RollbackTarget, Selector, Step, StepStatus,
    Transaction,
};
use rollback_k8s::{Deployment, K8s};
use rollback_testkit::k8s::K8sSimulator;
use rollback_testkit::AwsEmulator;
use serde_json::json;

const FUNCTION: &str = "agentauri-mcp-s3-tools-prod";
const GOOD: &str = "ghcr.io/example/frontend:1.9.0";
const BAD: &str = "ghcr.io/example/frontend:1.8.0-broken";

async fn frontend(k8s: &K8s) -> Deployment {
    let api: Api<apps::Deployment> = Api::namespaced(k8s.client().clone(), "production");
    let template = |image: &str| {
        json!({"metadata": {"labels": {"app": "frontend"}},
                                         "spec": {"containers": [{"name": "web", "image": image}]}})
    };
    let d: apps::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "frontend"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "frontend"}}, "template": template(BAD)}
    }))
    .unwrap();
    api.create(&PostParams::default(), &d).await.unwrap();
    let target = Deployment::new(k8s, "production", "frontend").unwrap();
    at_revision(&target, "1").await;
    // Revision 1 is the broken image; revision 2 (current) is good.
    api.patch(
        "frontend",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": template(GOOD)}})),
    )
    .await
    .unwrap();
    at_revision(&target, "2").await;
    let current = target.current().await.unwrap();
    target
        .wait_stable(&current, Duration::from_secs(60), &Progress::none())
        .await
        .unwrap();
    target
}

/// Waits until the controller has recorded the template in use as revision `id`.
async fn at_revision(target: &Deployment, id: &str) {
    rollback_core::wait::poll_until(
        "frontend",
        &format!("revision {id}"),
        Duration::from_secs(30),
        rollback_core::wait::PollSchedule::stability(),
        &Progress::none(),
        || async {
            let now = target.current().await?;
            Ok(if now.id == id {
                rollback_core::Stability::Stable
            } else {
                rollback_core::Stability::Waiting(format!("at revision {}", now.id))
            })
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_kubernetes_step_compensates_the_aws_step_too() {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    emu.seed(json!({"lambda": [{"function": FUNCTION, "alias": "live",
                                 "versions": ["release 1.8.0", "release 1.9.0"], "alias_version": "2"}]}))
        .await
        .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let sim = K8sSimulator::start()
        .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
    sim.fail_image(BAD).await.unwrap();
    let k8s = K8s::from_url(sim.url()).unwrap();

    let alias = LambdaAlias::new(&aws, FUNCTION, "live").unwrap();
    let web = frontend(&k8s).await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("mixed.jsonl");
    let report = Transaction::builder("roll back 1.9.0 everywhere")
        .reason("test: the frontend's previous image is broken")
        .journal(&journal)
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .step(Step::new(Arc::new(alias.clone()), Selector::Previous))
        .stage()
        .step(
            Step::new(Arc::new(web.clone()), Selector::Previous).timeout(Duration::from_secs(120)),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();

    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let k8s_step = &report.steps[1];
    assert_eq!(
        k8s_step.error.as_ref().unwrap().kind,
        ErrorKind::RolloutFailed,
        "{report}"
    );
    assert!(
        k8s_step
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("exceeded its progress deadline"),
        "{report}"
    );
    assert_eq!(report.steps[0].status, StepStatus::Compensated, "{report}");
    // Both read back where they were.
    assert_eq!(alias.current().await.unwrap().id, "2");
    let now = web.current().await.unwrap();
    assert_eq!(now.images, [GOOD]);
    assert_eq!(now.key, report.steps[1].from.as_ref().unwrap().key);
    // Compensation ran in reverse order: the Deployment before the alias.
    let compensated: Vec<String> = read_journal(&journal)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::Compensated { target, .. } => Some(target.kind),
            _ => None,
        })
        .collect();
    assert_eq!(compensated, ["k8s-deployment", "lambda-alias"]);
}
