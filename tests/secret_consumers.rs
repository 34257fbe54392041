//! A secret rolled back with the Kubernetes workloads that read it (runbook 001 "Secrets
//! Manager", runbook 002 "Secret Rotation Rollback"; the ask of kubernetes#22368): the real
//! aws-sdk-rust against the AWS emulator and the real kube client against the Kubernetes
//! API simulator, read back with the real kubectl. Once `AWSCURRENT` has moved the
//! Deployment gets kubectl's `rollout restart` and is waited for; when the restart fails,
//! the secret is put back and the Deployment restarted again so that no pod keeps the
//! rolled-back value; a run stopped after the apply resumes without restarting twice; the
//! consumer comes from a runbook file through the registry of both crates; bad consumers
//! are refused before anything changes.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1 as apps;
use kube::api::{Api, PostParams};
use rollback_aws::{Aws, SecretVersion};
use rollback_core::runbook::{Runbook, Vars};
use rollback_core::{
    ErrorKind, EventKind, FileLocks, Interrupt, Outcome, Progress, Registry, ResumeOptions,
    RollbackTarget, Selector, Step, StepStatus, Transaction, TransactionBuilder,
};
use rollback_k8s::{Deployment, K8s};
use rollback_testkit::k8s::{kubectl, K8sSimulator};
use rollback_testkit::{mutations_in, AwsEmulator};
use serde_json::json;

const SECRET: &str = "agentauri/production/jwt-secret";
const NS: &str = "production";
const IMAGE: &str = "registry.k8s.io/pause:3.9";

struct Env {
    emu: AwsEmulator,
    aws: Aws,
    sim: K8sSimulator,
    k8s: K8s,
    /// The secret's versions, oldest first (the newest is AWSCURRENT: the bad rotation).
    versions: Vec<String>,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

/// A secret with three values and the Deployment `production/api` (2 replicas) that reads
/// it, its rollout done.
async fn env() -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    let seeded = emu
        .seed(json!({"secrets": [{"name": SECRET, "values": ["jwt-v1-Zq8Kx2mW7p", "jwt-v2-Hc5Vb9Ns3Q", "jwt-v3-Rt2Gm8Lp5W"]}]}))
        .await
        .unwrap();
    let versions: Vec<String> = seeded["secrets"][0]["version_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{seeded}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let sim = K8sSimulator::start()
        .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
    let k8s = K8s::from_url(sim.url()).unwrap();
    let api: Api<apps::Deployment> = Api::namespaced(k8s.client().clone(), NS);
    let object = serde_json::from_value(json!({
        "metadata": {"name": "api"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {"containers": [{"name": "app", "image": IMAGE}]}
            }
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let dep = Deployment::new(&k8s, NS, "api").unwrap();
    rollback_core::wait::poll_until(
        "api",
        "its first rollout",
        Duration::from_secs(60),
        rollback_core::wait::PollSchedule::stability(),
        &Progress::none(),
        || async {
            let now = dep.current().await?;
            dep.check_stable(&now).await
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    Env {
        emu,
        aws,
        sim,
        k8s,
        versions,
        dir,
        kubeconfig,
    }
}

impl Env {
    /// A registry of both crates' kinds, as another process would make it.
    fn registry(&self) -> Registry {
        let mut registry = Registry::new();
        rollback_aws::register_with(&mut registry, self.aws.clone());
        rollback_k8s::register_with(&mut registry, self.k8s.clone());
        registry
    }

    fn deployment(&self) -> Deployment {
        Deployment::new(&self.k8s, NS, "api").unwrap()
    }

    fn secret(&self) -> SecretVersion {
        SecretVersion::new(&self.aws, SECRET)
            .unwrap()
            .consumer(Arc::new(self.deployment().restart()))
            .unwrap()
    }

    /// The secret back to its previous version, as a step.
    fn step(&self) -> Step {
        Step::new(Arc::new(self.secret()), Selector::Previous).timeout(Duration::from_secs(60))
    }

    fn tx(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("the rotated JWT secret broke sign-in")
            .journal(self.journal(name))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
    }

    fn journal(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.jsonl"))
    }

    async fn current_version(&self) -> String {
        SecretVersion::new(&self.aws, SECRET)
            .unwrap()
            .current()
            .await
            .unwrap()
            .id
    }

    /// The Deployment's restart annotation as kubectl reads it ("" when unset).
    async fn restarted_at(&self) -> String {
        kubectl(
            &self.kubeconfig,
            &[
                "get",
                "deployment",
                "api",
                "-n",
                NS,
                "-o",
                r"jsonpath={.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}",
            ],
        )
        .await
    }

    /// The simulator's writes to the Deployment so far (PATCH calls on its path).
    async fn deployment_patches(&self) -> usize {
        let calls = self.sim.calls().await.unwrap();
        calls
            .as_array()
            .unwrap_or_else(|| panic!("{calls}"))
            .iter()
            .filter(|c| {
                c["method"] == "PATCH"
                    && c["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with("/deployments/api"))
            })
            .count()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_rolled_back_restarts_the_kubernetes_workloads_that_read_it() {
    let e = env().await;
    assert_eq!(e.restarted_at().await, "", "never restarted before the run");
    let plan = e
        .tx("plan")
        .step(Step::new(Arc::new(e.secret()), Selector::Previous))
        .build()
        .unwrap()
        .dry_run()
        .await
        .unwrap();
    let lines: Vec<String> = plan.steps[0]
        .diff
        .entries
        .iter()
        .map(|d| format!("{}: {:?}", d.key, d.to))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("consumer k8s-deployment-restart/production/api")),
        "{lines:?}"
    );
    assert_eq!(e.restarted_at().await, "", "the plan restarts nothing");

    let report = e
        .tx("rollback")
        .step(e.step())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(e.current_version().await, e.versions[1]);
    // kubectl sees the restart `kubectl rollout restart` would have made, rolled out.
    let at = e.restarted_at().await;
    assert!(chrono::DateTime::parse_from_rfc3339(&at).is_ok(), "{at:?}");
    assert_eq!(e.deployment_patches().await, 1);
    let status = kubectl(
        &e.kubeconfig,
        &[
            "rollout",
            "status",
            "deployment/api",
            "-n",
            NS,
            "--timeout=1s",
        ],
    )
    .await;
    assert!(status.contains("successfully rolled out"), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_fails_its_restart_puts_the_secret_back_and_restarts_again() {
    let e = env().await;
    let original = e.current_version().await;
    // The workload's pods crash from now on: the restart's rollout never completes.
    e.sim.fail_image(IMAGE).await.unwrap();
    let report = e
        .tx("failing")
        .step(e.step())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_ne!(report.outcome, Outcome::Succeeded, "{report}");
    let step = &report.steps[0];
    let error = step.error.as_ref().unwrap();
    assert_eq!(error.kind, ErrorKind::RolloutFailed, "{report}");
    assert!(error.message.contains("progress deadline"), "{report}");
    // The secret is back, and the Deployment was restarted a second time by the put-back.
    assert_eq!(e.current_version().await, original, "{report}");
    assert_eq!(e.deployment_patches().await, 2, "{report}");
    let journal = std::fs::read_to_string(e.journal("failing")).unwrap();
    assert!(!journal.contains("jwt-v"), "no secret value is journaled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_does_not_restart_the_workload_twice() {
    let e = env().await;
    let stop = Interrupt::new();
    let on_apply = stop.clone();
    let report = e
        .tx("stopped")
        .on_event(move |ev| {
            if ev.kind == EventKind::Applied {
                on_apply.interrupt();
            }
        })
        .interrupt(stop)
        .step(e.step())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted, "{report}");
    assert_eq!(e.deployment_patches().await, 1, "{report}");
    let first = e.restarted_at().await;

    // A fresh registry with both crates' kinds rebuilds the secret and its consumer.
    let resumed = rollback_core::resume_with(
        e.journal("stopped"),
        ResumeOptions {
            registry: e.registry(),
            locks: Some(Arc::new(FileLocks::new(e.dir.path().join("locks")))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(resumed.outcome, Outcome::Succeeded, "{resumed}");
    assert_eq!(resumed.steps[0].status, StepStatus::Succeeded);
    assert_eq!(e.deployment_patches().await, 1, "not restarted again");
    assert_eq!(e.restarted_at().await, first);
    assert_eq!(e.current_version().await, e.versions[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_names_kubernetes_consumers_and_bad_ones_change_nothing() {
    let e = env().await;
    let registry = e.registry();
    // The emulator's settings, as a runbook names an endpoint of its own.
    let aws = serde_json::to_string(e.aws.config()).unwrap();
    let runbook = |name: &str| {
        format!(
            "name: secret-with-k8s-consumers\nsteps:\n  - target:\n      kind: secret-version\n      secret_id: {SECRET}\n      aws: {aws}\n      consumers:\n        - {{kind: k8s-deployment-restart, namespace: {NS}, name: {name}}}\n    to: previous\n"
        )
    };
    let (aws_before, k8s_before) = (
        mutations_in(&e.emu.calls().await.unwrap()),
        e.sim.mutations().await.unwrap(),
    );
    let bad = Runbook::parse(
        "bad.yaml",
        e.dir.path(),
        &runbook("no-such-api"),
        &Vars::new(),
    )
    .unwrap()
    .build(&registry)
    .await;
    let refused = match bad {
        Err(e) => e,
        Ok(tx) => tx
            .journal(e.journal("bad"))
            .locks(Arc::new(FileLocks::new(e.dir.path().join("locks"))))
            .build()
            .unwrap()
            .dry_run()
            .await
            .expect_err("a consumer that does not exist is refused"),
    };
    assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");
    assert!(refused.to_string().contains("no-such-api"), "{refused}");
    assert_eq!(mutations_in(&e.emu.calls().await.unwrap()), aws_before);
    assert_eq!(e.sim.mutations().await.unwrap(), k8s_before);

    // A target that is not a restart cannot be a consumer.
    let wrong = SecretVersion::new(&e.aws, SECRET)
        .unwrap()
        .consumer(Arc::new(e.deployment()))
        .err()
        .unwrap();
    assert_eq!(wrong.kind(), ErrorKind::InvalidInput);
    assert!(
        wrong.to_string().contains("not a restart target"),
        "{wrong}"
    );

    let report = Runbook::parse("good.yaml", e.dir.path(), &runbook("api"), &Vars::new())
        .unwrap()
        .build(&registry)
        .await
        .unwrap()
        .reason("the rotated JWT secret broke sign-in")
        .journal(e.journal("runbook"))
        .locks(Arc::new(FileLocks::new(e.dir.path().join("locks"))))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(e.deployment_patches().await, 1);
    assert_eq!(e.current_version().await, e.versions[1]);
}
