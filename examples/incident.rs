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
use rollback_examples::{init_logging, k8s_deployment, progress_printer};
use rollback_k8s::{K8s, PodsReady};
use rollback_testkit::k8s::K8sSimulator;
use rollback_testkit::AwsEmulator;
use serde_json::json;

const CLUSTER: &str = "agentauri-production";
const FUNCTION: &str = "agentauri-mcp-s3-tools-prod";
const SECRET: &str = "agentauri/production/jwt-secret";
const SERVICES: [(&str, &str); 3] = [
    ("api-gateway-v2", "agentauri-production-api-gateway"),
    ("event-processor", "agentauri-production-event-processor"),
    ("action-workers", "agentauri-production-action-workers"),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    println!("== starting the emulated AWS (moto + scheduler) ...");
    let emu = AwsEmulator::start().await?;
    emu.set_ecs_convergence(Duration::from_millis(1500)).await?;
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let ecs: Vec<_> = SERVICES
        .iter()
        .map(|(service, family)| {
            let repo = service.trim_end_matches("-v2");
            json!({
                "cluster": CLUSTER, "service": service, "family": family, "desired_count": 2,
                "revisions": [
                    {"image": format!("{ecr}/{repo}:1.8.0"), "environment": {"LOG_LEVEL": "info", "FEATURE_X": "off"}},
                    {"image": format!("{ecr}/{repo}:1.9.0"), "environment": {"LOG_LEVEL": "info", "FEATURE_X": "on"}}
                ],
                "current": 2
            })
        })
        .collect();
    let seeded = emu
        .seed(json!({
            "lambda": [{"function": FUNCTION, "alias": "live", "versions": ["release 1.8.0", "release 1.9.0"], "alias_version": "2"}],
            "ecs": ecs,
            "secrets": [{"name": SECRET, "values": ["jwt-signing-key-2026-10", "jwt-signing-key-2026-11"]}]
        }))
        .await?;
    // Release 1.9.0 is bad everywhere it went.
    emu.mark_bad("lambda", &format!("{FUNCTION}:live"), "2")
        .await?;
    for (service, family) in SERVICES {
        emu.mark_bad(
            "ecs",
            &format!("{CLUSTER}/{service}"),
            &format!("{family}:2"),
        )
        .await?;
    }
    let rotated = seeded["secrets"][0]["current"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    emu.mark_bad("secret", SECRET, &rotated).await?;

    println!("== starting the Kubernetes API simulator ...");
    let sim = K8sSimulator::start()?;
    let bad_frontend = "registry.example.com/agentauri/frontend:1.9.0";
    sim.fail_image(bad_frontend).await?;
    let k8s = K8s::from_url(sim.url())?;
    let frontend = k8s_deployment(
        &k8s,
        "production",
        "frontend",
        3,
        &[
            "registry.example.com/agentauri/frontend:1.8.0",
            bad_frontend,
        ],
    )
    .await?;
    let frontend_status = match frontend.rollout_status().await? {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    };
    println!(
        "== incident: release 1.9.0 is live; {} answers {}; frontend: {}",
        emu.health_url(),
        if emu.healthy().await? { "200" } else { "503" },
        frontend_status
    );

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
