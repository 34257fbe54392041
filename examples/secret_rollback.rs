//! Runbooks 001 "Secrets Manager" and 002 "Secret Rotation Rollback": a bad rotation of the
//! JWT secret rolled back, with everything that reads it restarted.
//!
//! The secret `agentauri/production/jwt-secret` has three versions; the newest (AWSCURRENT)
//! is the bad rotation. Two ECS services (`api-gateway-v2`, `event-processor`) and one
//! Kubernetes Deployment (`production/worker`) read it when they start. One step:
//!
//! - the plan lists the version that goes, the one that comes back, and each consumer;
//! - AWSCURRENT moves back to the AWSPREVIOUS version (no secret value is read or printed);
//! - each ECS service gets a new deployment (`--force-new-deployment`), the Deployment
//!   kubectl's `rollout restart`, and all are waited for;
//! - had one failed, the secret would be put back and they would be restarted again.
//!
//! Run: `cargo run -p rollback-examples --example secret_rollback`

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_aws::{Aws, SecretVersion};
use rollback_core::{Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_examples::{
    expect_outcome, init_logging, journal_path, k8s_deployment, locks, progress_printer,
};
use rollback_k8s::K8s;
use rollback_testkit::k8s::K8sSimulator;
use rollback_testkit::AwsEmulator;
use serde_json::json;

const SECRET: &str = "agentauri/production/jwt-secret";
const CLUSTER: &str = "agentauri-production";
const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    println!("== starting the emulated AWS and the Kubernetes simulator ...");
    let emu = AwsEmulator::start().await?;
    let service = |name: &str| {
        json!({"cluster": CLUSTER, "service": name, "family": name, "desired_count": 2,
               "revisions": [{"image": format!("{ECR}/{name}:1.9.0")}], "current": 1})
    };
    emu.seed(json!({
        "secrets": [{"name": SECRET, "values": ["jwt-v1-Zq8Kx2mW7p", "jwt-v2-Hc5Vb9Ns3Q", "jwt-v3-Rt2Gm8Lp5W"]}],
        "ecs": [service("api-gateway-v2"), service("event-processor")]
    }))
    .await?;
    emu.set_ecs_convergence(Duration::from_millis(800)).await?;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let sim = K8sSimulator::start()?;
    let k8s = K8s::from_url(sim.url())?;
    let worker = k8s_deployment(
        &k8s,
        "production",
        "worker",
        2,
        &["registry.k8s.io/pause:3.9"],
    )
    .await?;

    let secret = SecretVersion::new(&aws, SECRET)?
        .consumers([(CLUSTER, "api-gateway-v2"), (CLUSTER, "event-processor")])?
        .consumer(Arc::new(worker.restart()))?;
    let bad = secret.current().await?;
    println!("== AWSCURRENT is {} (the bad rotation)", bad.id);

    let tx = || {
        Transaction::builder("jwt-secret rollback")
            .reason("the rotated JWT secret broke sign-in")
            .journal(journal_path("secret-rollback"))
            .locks(locks())
            .step(
                Step::new(Arc::new(secret.clone()), Selector::Previous)
                    .timeout(Duration::from_secs(120)),
            )
    };
    println!("== the plan (nothing changes):");
    println!("{}", tx().build()?.dry_run().await?);

    let start = Instant::now();
    let report = tx()
        .on_event(progress_printer(start))
        .build()?
        .run()
        .await?;
    println!("{report}");
    println!(
        "== AWSCURRENT is now {}; the worker restarted at {}",
        secret.current().await?.id,
        worker.restart().current().await?.id
    );
    expect_outcome(&report, Outcome::Succeeded)
}
