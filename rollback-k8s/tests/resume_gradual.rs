//! A gradual scale-up whose process dies after its first step is finished by `resume`, and
//! the resumed scale-up still runs the check between the steps: the journal records the
//! check with the target, and the registry rebuilds both. The transaction runs in a child
//! process (this test binary, re-run on an ignored `*_child` test) that the parent kills
//! with SIGKILL once the first step is written; the simulator's controller is paused
//! meanwhile, so the child cannot get to its check before it dies.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1 as apps;
use kube::api::Api;
use rollback_core::journal::read_journal;
use rollback_core::verify::{check_fn, CheckOutcome, CommandCheck};
use rollback_core::{
    ErrorKind, FileLocks, Outcome, Registry, ResumeOptions, Revision, RollbackTarget, Selector,
    Stability, Step, Transaction,
};
use rollback_k8s::{Deployment, K8s};
use rollback_testkit::k8s::K8sSimulator;
use serde_json::json;

const DIR_VAR: &str = "ROLLBACK_CRASH_DIR";
const URL_VAR: &str = "ROLLBACK_SIM_URL";

/// The check between the steps: appends a line to `checks.log` in `dir` each time it runs.
fn logging_check(dir: &Path) -> CommandCheck {
    CommandCheck::new([
        "sh",
        "-c",
        &format!("echo ran >> '{}'", dir.join("checks.log").display()),
    ])
}

/// The scale-up under test: 0 -> 1 (check) -> 3.
fn scale_up(k8s: &K8s, dir: &Path) -> rollback_k8s::Replicas<apps::Deployment> {
    Deployment::new(k8s, "production", "frontend")
        .unwrap()
        .replicas()
        .gradual([1])
        .between(logging_check(dir))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of a_resumed_gradual_scale_up_still_runs_its_check"]
async fn gradual_child() {
    let (Some(dir), Some(url)) = (std::env::var_os(DIR_VAR), std::env::var(URL_VAR).ok()) else {
        eprintln!("gradual_child only runs as the child of a_resumed_gradual_scale_up_still_runs_its_check");
        return;
    };
    let dir = Path::new(&dir);
    let k8s = K8s::from_url(url).unwrap();
    let tx = Transaction::builder("gradual")
        .reason("resume test")
        .journal(dir.join("journal.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(
            Arc::new(scale_up(&k8s, dir)),
            Selector::Exact("3".into()),
        ))
        .build()
        .unwrap();
    // The parent kills this process while the scale-up waits at 1 replica.
    let _ = tx.run().await;
}

/// A Deployment `frontend` at 0 replicas, its rollout done.
async fn deployment_at_zero(k8s: &K8s) -> Deployment {
    let d = common::create_frontend(k8s, 0).await;
    let replicas = d.replicas();
    let started = Instant::now();
    while replicas.check_stable(&Revision::new("0")).await.unwrap() != Stability::Stable {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never settled at 0"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d
}

/// `spec.replicas` of the Deployment.
async fn spec_replicas(k8s: &K8s) -> i32 {
    let api: Api<apps::Deployment> = Api::namespaced(k8s.client().clone(), "production");
    let d = api.get("frontend").await.unwrap();
    d.spec.and_then(|s| s.replicas).unwrap_or(1)
}

fn journal_kinds(journal: &Path) -> Vec<String> {
    read_journal(journal)
        .unwrap()
        .iter()
        .map(|r| r.entry.name())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_gradual_scale_up_still_runs_its_check() {
    let sim = K8sSimulator::start().unwrap();
    let k8s = K8s::from_url(sim.url()).unwrap();
    let d = deployment_at_zero(&k8s).await;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("checks.log");

    // The child scales to 1 and waits there for a rollout the paused controller never
    // makes; it is killed once the first step is written.
    sim.pause_controller(true).await.unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["gradual_child", "--exact", "--ignored", "--nocapture"])
        .env(DIR_VAR, dir.path())
        .env(URL_VAR, sim.url())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while spec_replicas(&k8s).await != 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the child never scaled to 1"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let journal = dir.path().join("journal.jsonl");
    assert_eq!(
        journal_kinds(&journal),
        ["begin", "planned", "locked", "intent"],
        "the child died during the apply"
    );
    assert!(!log.exists(), "the child got to its check before it died");

    // Resumed from the journal alone: the registry rebuilds the target and its check.
    sim.pause_controller(false).await.unwrap();
    let writes = sim.mutations().await.unwrap();
    let report = rollback_core::resume_with(
        &journal,
        ResumeOptions {
            registry: rollback_k8s::registry(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "ran\n",
        "the resumed scale-up ran its check once, at 1 replica"
    );
    assert_eq!(spec_replicas(&k8s).await, 3);
    assert_eq!(d.replicas().current().await.unwrap().id, "3");
    assert_eq!(
        sim.mutations().await.unwrap() - writes,
        1,
        "the resume went on from 1 (one write, to 3) instead of scaling from 0 again"
    );
}

/// A check that is code (a closure) cannot be rebuilt from the journal: a scale-up rebuilt
/// without it stops at its first step (and is put back) rather than go on unchecked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scale_up_rebuilt_without_its_check_stops_rather_than_go_on_unchecked() {
    let sim = K8sSimulator::start().unwrap();
    let k8s = K8s::from_url(sim.url()).unwrap();
    let d = deployment_at_zero(&k8s).await;
    let replicas = d
        .replicas()
        .gradual([1])
        .between(check_fn("health", || async {
            Ok(CheckOutcome::pass("ok"))
        }));
    let spec = replicas.spec();
    assert_eq!(
        spec.params["between"],
        json!({"check": {"type": "opaque", "name": "health"}})
    );
    let rebuilt = rollback_k8s::registry()
        .build(&replicas.id(), &spec)
        .await
        .unwrap();
    assert_eq!(rebuilt.spec(), spec);
    let dir = tempfile::tempdir().unwrap();
    let report = Transaction::builder("rebuilt")
        .reason("test")
        .journal(dir.path().join("journal.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .step(Step::new(rebuilt, Selector::Exact("3".into())))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let error = report.steps[0].error.as_ref().unwrap();
    assert_eq!(error.kind, ErrorKind::VerificationFailed);
    assert!(
        error.message.contains("cannot be rebuilt from the journal"),
        "{}",
        error.message
    );
    assert_eq!(spec_replicas(&k8s).await, 0);
}

/// A [`PodsReady`](rollback_k8s::PodsReady) between the steps is journaled as data and
/// rebuilt, by label selector or by workload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_ready_between_the_steps_is_rebuilt_from_the_journal() {
    let sim = K8sSimulator::start().unwrap();
    let k8s = K8s::from_url(sim.url()).unwrap();
    let d = deployment_at_zero(&k8s).await;
    let registry: Registry = rollback_k8s::registry();
    for check in [
        rollback_k8s::PodsReady::of(&d).min(0),
        rollback_k8s::PodsReady::new(&k8s, "production", "app=frontend")
            .unwrap()
            .min(0),
    ] {
        let replicas = d.replicas().gradual([1]).between(check);
        let spec = replicas.spec();
        assert!(
            spec.params["between"]["pods_ready"].is_object(),
            "{}",
            spec.params
        );
        let rebuilt = registry.build(&replicas.id(), &spec).await.unwrap();
        assert_eq!(rebuilt.spec(), spec);
        // The same check, by name, as the one given in code.
        assert_eq!(format!("{rebuilt:?}"), format!("{replicas:?}"));
    }
}
