//! The main job: an emulated incident rolled back end to end, through the real AWS SDK.
//!
//! Release 1.9.0 went out everywhere at once: version 2 of the Lambda function behind the
//! `live` alias (runbook 000), task-definition revision 2 of runbook 001's three ECS
//! services in cluster `agentauri-production`, a rotated JWT secret, and runbook 004's
//! Kubernetes Deployment `frontend` in namespace `production`, whose new pods crash. The
//! application's health endpoint (served by the emulator) fails while any of the AWS parts
//! is live.
//!
//! One transaction puts all six targets back on their previous revisions at once, waits
//! for each to be stable by the backend's own rules (AWS's waiters, kubectl's rollout
//! status by watch), checks the frontend's pods are ready, then runs the health check until
//! it passes, and prints the outcome, the time to recover and the journal path.
//!
//! The AWS side is moto with the project's scheduler (`rollback-testkit`), the Kubernetes
//! side the project's API simulator, both started here on free loopback ports; the targets
//! use the official aws-sdk-rust clients and the kube-rs client against them.
//!
//! Run: `bash scripts/demo.sh` (installs the emulator's Python packages first), or
//! `cargo run -p rollback-examples --example incident` once `.venv` exists.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_aws::{Aws, EcsService, LambdaAlias, SecretVersion};
use rollback_core::verify::{HttpCheck, Policy};
use rollback_core::{Check, Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_examples::{
    init_logging, progress_printer, start_incident, Incident, CLUSTER,
    INCIDENT_FUNCTION as FUNCTION, INCIDENT_SECRET as SECRET, SERVICES,
};
use rollback_k8s::PodsReady;
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    let Incident { emu, sim, frontend } = start_incident().await?;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let mut targets: Vec<Arc<dyn RollbackTarget>> = vec![
        Arc::new(SecretVersion::new(&aws, SECRET)?),
        Arc::new(LambdaAlias::new(&aws, FUNCTION, "live")?),
    ];
    for (service, _) in SERVICES {
        targets.push(Arc::new(EcsService::new(&aws, CLUSTER, service)?));
    }
    let pods_ready = Check::new(PodsReady::of(&frontend).min(3)).policy(
        Policy::default()
            .attempts(120)
            .interval(Duration::from_millis(250))
            .deadline(Duration::from_secs(60)),
    );
    let journal =
        std::env::temp_dir().join(format!("rollback-incident-{}.jsonl", std::process::id()));
    let mut tx = Transaction::builder("INC-2041: roll back release 1.9.0")
        .reason("5xx from the API and the MCP tools, frontend pods crash-looping after release 1.9.0; rolling back Lambda, ECS, the rotated JWT secret and the frontend")
        .journal(&journal)
        .locks(Arc::new(rollback_core::FileLocks::new(std::env::temp_dir().join("rollback-incident-locks"))))
        .verify(
            Check::new(HttpCheck::new(emu.health_url()).json_value("/healthy", json!(true)))
                .policy(Policy::default().attempts(60).interval(Duration::from_millis(500)).deadline(Duration::from_secs(60))),
        );
    for t in targets {
        tx = tx.step(Step::new(t, Selector::Previous).timeout(Duration::from_secs(120)));
    }
    tx = tx.step(
        Step::new(Arc::new(frontend.clone()), Selector::Previous)
            .verify(pods_ready)
            .timeout(Duration::from_secs(120)),
    );
    let start = Instant::now();
    let tx = tx.on_event(progress_printer(start)).build()?;

    println!("\n== the plan (dry run: nothing changes)");
    let plan = tx.dry_run().await?;
    println!("{plan}");

    println!("\n== rolling back");
    let started = Instant::now();
    let report = tx.run().await?;
    let recovered_in = started.elapsed();
    println!("\n{report}");
    let calls = emu.calls().await?;
    println!(
        "\n== outcome: {} | time to recover: {:.1?} | health: {} | frontend: {} | AWS API calls: {} | Kubernetes API writes: {} | journal: {}",
        report.outcome,
        recovered_in,
        if emu.healthy().await? {
            "200 OK"
        } else {
            "503"
        },
        frontend.current().await?.images.join(","),
        calls["total"],
        sim.mutations().await?,
        report.journal_path.display()
    );
    if report.outcome != Outcome::Succeeded {
        return Err(format!("the rollback did not succeed: {}", report.outcome).into());
    }
    Ok(())
}
