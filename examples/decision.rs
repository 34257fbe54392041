//! Runbook 004's "Rollback Decision Tree" over CloudWatch metrics, and the rollback it calls
//! for.
//!
//! The API's error rate (CloudWatch metric `AgentAuri ErrorRate`, a fraction) has been
//! between 6 % and 9 % for the last 8 minutes; its p95 latency (`AgentAuri LatencyP95`, in
//! seconds) is a calm 0.4 s. `decide_from` reads both from CloudWatch (GetMetricData through
//! the real SDK) over the last 5 minutes and walks the tree: error rate above 5 % for 5+
//! minutes, so "roll back immediately". The decision comes with its reasons and, per signal,
//! the evidence (worst series, worst and last value, samples breaching).
//!
//! On `RollbackNow` the example rolls the API's ECS service back to its previous task
//! definition, verified by the health check.
//!
//! Run: `cargo run -p rollback-examples --example decision`

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rollback_aws::{Aws, CloudWatchSource, EcsService};
use rollback_core::metrics::{
    decide_from, DecisionPolicy, DecisionQueries, Recommendation, Signal,
};
use rollback_core::{Outcome, Selector, Step, Transaction};
use rollback_examples::{
    expect_outcome, health, health_check, init_logging, journal_path, locks, progress_printer,
    CLUSTER,
};
use rollback_testkit::AwsEmulator;
use serde_json::{json, Value};

const SERVICE: &str = "api-gateway-v2";
const FAMILY: &str = "agentauri-production-api-gateway";

/// One point a minute over the last 8 minutes: `[unix seconds, f(minutes ago)]`.
fn last_8_minutes(f: impl Fn(i64) -> f64) -> Value {
    let now = Utc::now().timestamp() / 60 * 60;
    (0..8).rev().map(|m| json!([now - m * 60, f(m)])).collect()
}

/// A value of a signal for people: `7.5%`, `0.40s`.
fn value(signal: Signal, v: Option<f64>) -> String {
    match (signal, v) {
        (_, None) => "none".into(),
        (Signal::ErrorRate, Some(v)) => format!("{:.1}%", v * 100.0),
        (Signal::P95Latency, Some(v)) => format!("{v:.2}s"),
        (Signal::SloBurnRate, Some(v)) => format!("{v:.2}"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    println!("== starting the emulated AWS (moto + scheduler) ...");
    let emu = AwsEmulator::start().await?;
    emu.set_ecs_convergence(Duration::from_millis(1500)).await?;
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    emu.seed(json!({
        "ecs": [{"cluster": CLUSTER, "service": SERVICE, "family": FAMILY, "desired_count": 2,
                 "revisions": [{"image": format!("{ecr}/api-gateway:1.8.0")},
                               {"image": format!("{ecr}/api-gateway:1.9.0")}]}],
        "cloudwatch": {"metrics": [
            {"namespace": "AgentAuri", "name": "ErrorRate", "dimensions": {"Service": SERVICE},
             "points": last_8_minutes(|m| 0.06 + 0.005 * (m % 7) as f64)},
            {"namespace": "AgentAuri", "name": "LatencyP95", "dimensions": {"Service": SERVICE},
             "points": last_8_minutes(|_| 0.4)}
        ]}
    }))
    .await?;
    emu.mark_bad(
        "ecs",
        &format!("{CLUSTER}/{SERVICE}"),
        &format!("{FAMILY}:2"),
    )
    .await?;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);

    println!("\n== runbook 004's decision tree over CloudWatch");
    let queries = DecisionQueries::new(
        format!("AgentAuri ErrorRate Average Service={SERVICE}"),
        format!("AgentAuri LatencyP95 Average Service={SERVICE}"),
    )
    .step(Duration::from_secs(60));
    let decision = decide_from(
        &CloudWatchSource::new(&aws),
        &queries,
        false, // no critical feature reported broken
        &DecisionPolicy::default(),
        Utc::now(),
    )
    .await?;
    println!("decision: {}", decision.action);
    for reason in &decision.reasons {
        println!("  because {reason}");
    }
    for e in &decision.evidence {
        println!(
            "  evidence {}: worst {} last {} against {} over {} .. {}; {} of {} samples above; sustained: {}",
            e.signal,
            value(e.signal, e.worst),
            value(e.signal, e.last),
            value(e.signal, Some(e.threshold)),
            e.window_start.format("%H:%M:%S"),
            e.window_end.format("%H:%M:%S"),
            e.breaching_samples,
            e.samples,
            e.breached
        );
    }
    if decision.action != Recommendation::RollbackNow {
        return Err(format!("expected \"roll back immediately\", got: {decision}").into());
    }

    println!(
        "\n== rolling back {SERVICE} (health answers {})",
        health(&emu).await?
    );
    let report = Transaction::builder(format!("roll back {SERVICE}"))
        .reason(format!("runbook 004: {decision}"))
        .journal(journal_path("decision"))
        .locks(locks())
        .step(
            Step::new(
                Arc::new(EcsService::new(&aws, CLUSTER, SERVICE)?),
                Selector::Previous,
            )
            .verify(health_check(&emu))
            .timeout(Duration::from_secs(120)),
        )
        .on_event(progress_printer(Instant::now()))
        .build()?
        .run()
        .await?;
    println!("\n{report}");
    println!(
        "\n== outcome: {} | health: {}",
        report.outcome,
        health(&emu).await?
    );
    expect_outcome(&report, Outcome::Succeeded)
}
