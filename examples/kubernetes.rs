//! Runbook 004's Kubernetes procedures as library calls, on the Kubernetes API simulator
//! through the real kube-rs client:
//!
//! 1. `kubectl rollout history` / `kubectl rollout status` of `deployment/frontend -n production`;
//! 2. "Method 1": `kubectl rollout undo` with its verification (pods ready), as one reviewed,
//!    journaled transaction;
//! 3. `kubectl rollout undo --to-revision=N`, planned (dry run) and shown as a diff;
//! 4. "Failed Rollback Recovery": maintenance mode on (step 2: a maintenance page Deployment,
//!    the `frontend` Service sent to it, a flag ConfigMap, as one temporary `Manifest` step),
//!    scale to zero, re-deploy the last known good version, scale up gradually (1, verify
//!    health, then 3), maintenance off (what it created is deleted), as one transaction
//!    that puts everything back if a step fails.
//!
//! Run: `cargo run -p rollback-examples --example kubernetes` (needs nothing but Rust).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_core::verify::Policy;
use rollback_core::{Check, Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_examples::{
    expect_outcome, init_logging, journal_path, k8s_deployment, locks, progress_printer,
};
use rollback_k8s::manifest::APPLIED;
use rollback_k8s::{K8s, Manifest, PodsReady};
use rollback_testkit::k8s::K8sSimulator;
use serde_json::json;

const GOOD_OLD: &str = "registry.example.com/frontend:2.3.0";
const GOOD: &str = "registry.example.com/frontend:2.4.0";
const BAD: &str = "registry.example.com/frontend:2.4.1";

fn pods_ready(frontend: &rollback_k8s::Deployment, n: usize) -> Check {
    Check::new(PodsReady::of(frontend).min(n)).policy(
        Policy::default()
            .attempts(120)
            .interval(Duration::from_millis(250))
            .deadline(Duration::from_secs(60)),
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    println!("== starting the Kubernetes API simulator ...");
    let sim = K8sSimulator::start()?;
    sim.fail_image(BAD).await?;
    let k8s = K8s::from_url(sim.url())?;
    let frontend =
        k8s_deployment(&k8s, "production", "frontend", 3, &[GOOD_OLD, GOOD, BAD]).await?;

    println!("\n$ kubectl rollout history deployment/frontend -n production");
    for r in frontend.history().await? {
        println!(
            "  {:>3}  {}  {}",
            r.id,
            r.images.join(","),
            r.description.unwrap_or_default()
        );
    }
    println!("\n$ kubectl rollout status deployment/frontend -n production");
    match frontend.rollout_status().await? {
        Ok(status) => println!("  {status}"),
        Err(e) => println!("  error: {e}"),
    }

    println!("\n== Method 1: kubectl rollout undo deployment/frontend -n production, verified");
    let start = Instant::now();
    let report = Transaction::builder("frontend: undo 2.4.1")
        .reason("error rate 12% since 2.4.1; pods in CrashLoopBackOff")
        .journal(journal_path("k8s-undo"))
        .locks(locks())
        .on_event(progress_printer(start))
        .step(
            Step::new(Arc::new(frontend.clone()), Selector::Previous)
                .verify(pods_ready(&frontend, 3))
                .timeout(Duration::from_secs(120)),
        )
        .build()?
        .run()
        .await?;
    println!("\n{report}");
    expect_outcome(&report, Outcome::Succeeded)?;
    println!("\n$ kubectl rollout history deployment/frontend -n production   (2 came back as 4)");
    for r in frontend.history().await? {
        println!("  {:>3}  {}", r.id, r.images.join(","));
    }

    println!("\n== kubectl rollout undo --to-revision=1, as a plan to review (dry run)");
    let plan = Transaction::builder("frontend: to revision 1")
        .step(Step::new(
            Arc::new(frontend.clone()),
            Selector::Exact("1".into()),
        ))
        .build()?
        .dry_run()
        .await?;
    println!("{plan}");

    println!("\n== Failed Rollback Recovery: maintenance on, scale to 0, re-deploy the last known good, scale up 1 -> verify -> 3, maintenance off");
    let maintenance = Manifest::new(
        &k8s,
        "production",
        "maintenance",
        vec![
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "maintenance-mode"},
                   "data": {"enabled": "true", "message": "Back shortly."}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "maintenance-page", "labels": {"app": "maintenance"}},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "maintenance"}},
                            "template": {"metadata": {"labels": {"app": "maintenance"}},
                                         "spec": {"containers": [{"name": "page", "image": "registry.example.com/maintenance:1"}]}}}}),
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "frontend"},
                   "spec": {"selector": {"app": "maintenance"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
        ],
    )?;
    let replicas = frontend
        .replicas()
        .gradual([1])
        .between(PodsReady::of(&frontend).min(1));
    let start = Instant::now();
    let report = Transaction::builder("frontend: recovery to 2.3.0")
        .reason("2.4.0 misbehaves too; back to the last known good 2.3.0")
        .journal(journal_path("k8s-recovery"))
        .locks(locks())
        .on_event(progress_printer(start))
        .step(Step::new(Arc::new(maintenance.clone()), Selector::exact(APPLIED)).temporary())
        .stage()
        .step(Step::new(Arc::new(replicas.clone()), Selector::Exact("0".into())).temporary())
        .stage()
        .step(Step::new(
            Arc::new(frontend.clone()),
            Selector::ImageTag("2.3.0".into()),
        ))
        .verify(pods_ready(&frontend, 3))
        .build()?
        .run()
        .await?;
    println!("\n{report}");
    expect_outcome(&report, Outcome::Succeeded)?;
    let after = maintenance.current().await?;
    println!(
        "== maintenance: {} (what it created is gone again)",
        after.id
    );
    if after.id == APPLIED {
        return Err("maintenance mode was left on".into());
    }
    let now = frontend.current().await?;
    println!(
        "\n== frontend runs {} (revision {}) with {} replicas; API writes: {}",
        now.images.join(","),
        now.id,
        replicas.current().await?.id,
        sim.mutations().await?
    );
    Ok(())
}
