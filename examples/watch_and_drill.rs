//! Runbook 004 in Rust, in memory: a [`Watch`] replays an incident's metrics (error rate
//! 1 %, then 9 % for ten minutes, later 9 % again) through the decision tree and rolls back
//! once, the cooldown holding the second breach; then a [`Drill`] practises the same
//! rollback and measures it. Swap the `StaticSource` for a `PrometheusSource` (or
//! `rollback_aws::CloudWatchSource`) and the fake target for a real one to use it.
//!
//! ```sh
//! cargo run -p rollback-examples --example watch_and_drill
//! ```

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rollback_core::drill::{BreakTo, Drill};
use rollback_core::metrics::{Decision, DecisionQueries, Series, StaticSource};
use rollback_core::watch::{Responder, Watch, WatchState};
use rollback_core::{
    Check, FakeTarget, FileLocks, Policy, Report, Revision, Selector, Step, Transaction,
    TransactionBuilder,
};

fn minute(m: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_764_849_600 + m * 60, 0).expect("a valid time") // 2025-12-04 12:00
}

/// The recorded series: 9 % errors from minute 10 to 20 and from 40 to 50.
fn replay() -> StaticSource {
    let errors = Series::new("error_rate")
        .label("service", "api")
        .points((0..=60).map(|m| {
            (
                minute(m),
                if (10..=20).contains(&m) || (40..=50).contains(&m) {
                    0.09
                } else {
                    0.01
                },
            )
        }));
    let latency = Series::new("p95")
        .label("service", "api")
        .points((0..=60).map(|m| (minute(m), 0.3)));
    StaticSource::new("recorded incident")
        .with("error_rate", vec![errors])
        .with("p95", vec![latency])
}

/// The rollback: the api to its previous release, verified by its health check.
fn rollback(api: &FakeTarget, dir: &std::path::Path, journal: &str) -> TransactionBuilder {
    Transaction::builder("api-rollback")
        .journal(dir.join(journal))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(Arc::new(api.clone()), Selector::Previous))
        .verify(Check::new(api.health_check()).policy(Policy::once()))
}

/// What the watch acts with: a fresh transaction each time.
struct RollBack {
    api: FakeTarget,
    dir: std::path::PathBuf,
}

#[async_trait]
impl Responder for RollBack {
    async fn respond(&self, decision: &Decision) -> rollback_core::Result<Report> {
        println!("  acting on: {decision}");
        rollback(&self.api, &self.dir, "watch.jsonl")
            .reason(rollback_core::watch::reason_for(decision, None))
            .build()?
            .run()
            .await
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let api = FakeTarget::builder("api")
        .revision(Revision::new("41"))
        .revision(Revision::new("42"))
        .build()?;
    api.set_healthy("42", false);

    println!("== the watch over the recorded incident, one look every 5 minutes");
    let watch = Watch::new(
        Arc::new(replay()),
        DecisionQueries::new("error_rate", "p95").step(Duration::from_secs(60)),
    )
    .cooldown(Duration::from_secs(3600))
    .log(dir.path().join("decisions.jsonl"));
    let responder = RollBack {
        api: api.clone(),
        dir: dir.path().to_path_buf(),
    };
    let mut state = WatchState::default();
    for m in (5..60).step_by(5) {
        let record = watch.step(&mut state, &responder, minute(m)).await?;
        let verdict = serde_json::to_value(&record)?["verdict"].clone();
        println!("  {} {verdict}", minute(m).format("%H:%M"));
    }
    println!(
        "the api now runs {}; rollbacks made: {}",
        api.current_id(),
        api.apply_count()
    );

    println!("== the drill: 42 again, the check must notice, the rollback must recover");
    let report = Drill::new("staging", rollback(&api, dir.path(), "drill.jsonl"))
        .break_to(BreakTo::Selector(Selector::exact("42")))
        .probe_interval(Duration::from_millis(50))
        .run()
        .await?;
    let md = report.markdown(&[]);
    println!("{}", md.lines().next().unwrap_or_default());
    println!(
        "detected in {:?}, recovered in {:?}; left at {}",
        report.time_to_detect.unwrap_or_default(),
        report.time_to_recover.unwrap_or_default(),
        api.current_id()
    );
    if !report.passed {
        return Err("the drill did not pass".into());
    }
    Ok(())
}
