//! Shared helpers of the examples: progress lines for events, logging set-up, the emulated
//! application's health check, runbook 001's three ECS services as emulator seed, and where
//! journals and leases go.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_core::verify::{HttpCheck, Policy};
use rollback_core::{Check, Event, FileLocks, Outcome, Report};
use rollback_testkit::{AwsEmulator, TestkitError};
use serde_json::{json, Value};

/// Runbook 001's ECS cluster.
pub const CLUSTER: &str = "agentauri-production";

/// Runbook 001's services, as (ECS service, task-definition family).
pub const SERVICES: [(&str, &str); 3] = [
    ("api-gateway-v2", "agentauri-production-api-gateway"),
    ("event-processor", "agentauri-production-event-processor"),
    ("action-workers", "agentauri-production-action-workers"),
];

/// Logs to stderr at `RUST_LOG` (default `error`: the events already tell the story).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// An event sink printing one progress line per event, with the time since `start`.
pub fn progress_printer(start: Instant) -> impl Fn(&Event) + Send + Sync + 'static {
    move |e: &Event| {
        println!("{:>7.2}s  {e}", start.elapsed().as_secs_f64());
    }
}

/// The emulator's seed for runbook 001's three services in [`CLUSTER`]: one task-definition
/// revision per `(image tag, environment)`, oldest first, each service running the last one
/// with 2 tasks. Images are `<ECR>/<service without -v2>:<tag>`.
pub fn runbook_001_services(revisions: &[(&str, Value)]) -> Value {
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    SERVICES
        .iter()
        .map(|(service, family)| {
            let repo = service.trim_end_matches("-v2");
            let revisions: Vec<Value> = revisions
                .iter()
                .map(|(tag, env)| json!({"image": format!("{ecr}/{repo}:{tag}"), "environment": env}))
                .collect();
            json!({
                "cluster": CLUSTER, "service": service, "family": family, "desired_count": 2,
                "revisions": revisions, "current": revisions.len()
            })
        })
        .collect()
}

/// The emulated application's health endpoint as a check: `/healthy` must be `true`,
/// retried every 500 ms for up to 30 s.
pub fn health_check(emu: &AwsEmulator) -> Check {
    Check::new(HttpCheck::new(emu.health_url()).json_value("/healthy", json!(true))).policy(
        Policy::default()
            .attempts(60)
            .interval(Duration::from_millis(500))
            .deadline(Duration::from_secs(30)),
    )
}

/// What the emulated application's health endpoint answers now: `200 OK` or `503`.
pub async fn health(emu: &AwsEmulator) -> Result<&'static str, TestkitError> {
    Ok(if emu.healthy().await? {
        "200 OK"
    } else {
        "503"
    })
}

/// A journal file under the temp dir for the transaction `name` of this process.
pub fn journal_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rollback-{name}-{}.jsonl", std::process::id()))
}

/// The examples' leases, under the temp dir.
pub fn locks() -> Arc<FileLocks> {
    Arc::new(FileLocks::new(
        std::env::temp_dir().join("rollback-examples-locks"),
    ))
}

/// `Err` unless the report's outcome is `want`: an example exits non-zero when its
/// rollback did not end as the example expects.
pub fn expect_outcome(report: &Report, want: Outcome) -> Result<(), Box<dyn std::error::Error>> {
    if report.outcome == want {
        Ok(())
    } else {
        Err(format!("expected the outcome {want}, got {}", report.outcome).into())
    }
}

/// Creates the Deployment `name` in `namespace` with `replicas` pods at `images[0]`, then
/// deploys each following image as `kubectl set image` would, waiting each time until the
/// controller has recorded it (revision 1, 2, ...). The last one is left rolling out (or
/// failing, if its image is broken).
pub async fn k8s_deployment(
    k8s: &rollback_k8s::K8s,
    namespace: &str,
    name: &str,
    replicas: i32,
    images: &[&str],
) -> Result<rollback_k8s::Deployment, Box<dyn std::error::Error>> {
    use k8s_openapi::api::apps::v1 as apps;
    use kube::api::{Api, Patch, PatchParams, PostParams};
    use rollback_core::RollbackTarget;

    let api: Api<apps::Deployment> = Api::namespaced(k8s.client().clone(), namespace);
    let template = |image: &str| {
        json!({"metadata": {"labels": {"app": name}},
               "spec": {"containers": [{"name": name, "image": image,
                                        "env": [{"name": "LOG_LEVEL", "value": "info"}]}]}})
    };
    let cause = |image: &str| json!({"kubernetes.io/change-cause": format!("deploy {image}")});
    let first = images.first().ok_or("give at least one image")?;
    let d: apps::Deployment = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": cause(first)},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": template(first)}
    }))?;
    api.create(&PostParams::default(), &d).await?;
    let target = rollback_k8s::Deployment::new(k8s, namespace, name)?;
    for (n, image) in images.iter().enumerate() {
        if n > 0 {
            let patch = json!({"metadata": {"annotations": cause(image)},
                               "spec": {"template": template(image)}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        let want = (n + 1).to_string();
        rollback_core::wait::poll_until(
            &target.id().to_string(),
            &format!("the controller to record {image} as revision {want}"),
            Duration::from_secs(30),
            rollback_core::wait::PollSchedule::stability(),
            &rollback_core::Progress::none(),
            || async {
                let now = target.current().await?;
                Ok(if now.id == want {
                    rollback_core::Stability::Stable
                } else {
                    rollback_core::Stability::Waiting(format!("at revision {}", now.id))
                })
            },
        )
        .await?;
        if n + 1 < images.len() {
            let current = target.current().await?;
            target
                .wait_stable(
                    &current,
                    Duration::from_secs(60),
                    &rollback_core::Progress::none(),
                )
                .await?;
        }
    }
    Ok(target)
}

/// The README's examples, compiled as doc tests so they stay true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// Runbook 000's function in the incident.
pub const INCIDENT_FUNCTION: &str = "agentauri-mcp-s3-tools-prod";

/// The JWT secret rotated in the incident.
pub const INCIDENT_SECRET: &str = "agentauri/production/jwt-secret";

/// The incident as it stands before anyone acts: the emulated AWS with release 1.9.0 live
/// (and bad) on the Lambda alias, the three ECS services and the secret; the Kubernetes
/// simulator with the crash-looping `production/frontend`.
pub struct Incident {
    /// The AWS emulator.
    pub emu: AwsEmulator,
    /// The Kubernetes API simulator.
    pub sim: rollback_testkit::k8s::K8sSimulator,
    /// The frontend Deployment, as a target.
    pub frontend: rollback_k8s::Deployment,
}

/// Starts both emulators and sets the incident up, printing what it does.
pub async fn start_incident() -> Result<Incident, Box<dyn std::error::Error>> {
    use rollback_k8s::K8s;
    use rollback_testkit::k8s::K8sSimulator;
    const FUNCTION: &str = INCIDENT_FUNCTION;
    const SECRET: &str = INCIDENT_SECRET;
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

    Ok(Incident { emu, sim, frontend })
}
