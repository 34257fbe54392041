//! Runbook 003 (APGMS): freeze the pipeline, revert the service, check the alarms, open the
//! pipeline again.
//!
//! Revision 2 of the `apgms-api` service answers 5xx and the CloudWatch alarm
//! `apgms-api-5xx` is in ALARM. One transaction:
//!
//! - stage 0: the inbound transition of the `Apgms` pipeline's `Deploy` stage disabled, as a
//!   *temporary* step, so the pipeline cannot redeploy the bad release meanwhile (step 1);
//! - stage 1: the service back to its previous task definition (step 3), verified by "no
//!   CloudWatch alarm whose name starts with `apgms` is in ALARM" (`AlarmCheck`, runbook
//!   001's `describe-alarms --alarm-name-prefix ... --state-value ALARM`);
//! - then the transition enabled again (step 5), as the temporary step ends.
//!
//! The emulated CloudWatch does not evaluate alarms, so a small task here stands in for it:
//! the alarm goes back to OK a few seconds after the application's health endpoint passes
//! again; the alarm check retries until then.
//!
//! Run: `cargo run -p rollback-examples --example pipeline_freeze`

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_aws::{AlarmCheck, Aws, EcsService, PipelineTransition};
use rollback_core::verify::Policy;
use rollback_core::{Check, Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_examples::{
    expect_outcome, health, init_logging, journal_path, locks, progress_printer,
};
use rollback_testkit::AwsEmulator;
use serde_json::json;

const ALARM: &str = "apgms-api-5xx";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    println!("== starting the emulated AWS (moto + scheduler) ...");
    let emu = Arc::new(AwsEmulator::start().await?);
    emu.set_ecs_convergence(Duration::from_millis(1500)).await?;
    emu.seed(json!({
        "codepipeline": [{"name": "Apgms", "stages": ["Source", "Build", "Deploy"]}],
        "ecs": [{"cluster": "apgms", "service": "apgms-api", "family": "apgms-api", "desired_count": 2,
                 "revisions": [{"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/apgms-api:7d2c9e1"},
                               {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/apgms-api:e5a0b44"}]}],
        "cloudwatch": {"alarms": [
            {"name": ALARM, "state": "ALARM", "reason": "5xx above threshold"},
            {"name": "apgms-db-cpu", "state": "OK", "metric": "CPUUtilization", "namespace": "AWS/RDS"},
            // Not matching the prefix: it does not hold the rollback up.
            {"name": "billing-estimate", "state": "ALARM", "metric": "EstimatedCharges", "namespace": "AWS/Billing"}
        ]}
    }))
    .await?;
    emu.mark_bad("ecs", "apgms/apgms-api", "apgms-api:2")
        .await?;
    println!(
        "== incident: apgms-api:2 is live, health answers {}, {ALARM} is in ALARM",
        health(&emu).await?
    );
    let cloudwatch = emu.clone();
    tokio::spawn(async move {
        while !cloudwatch.healthy().await.unwrap_or(false) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // A few evaluation periods later (shortened here) the alarm is OK again.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = cloudwatch.set_alarm(ALARM, "OK").await;
    });

    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let freeze = PipelineTransition::new(&aws, "Apgms", "Deploy")?;
    let report = Transaction::builder("runbook 003: revert apgms-api with the pipeline frozen")
        .reason("INC-0412: 5xx from apgms-api after pipeline execution 3f9c; reverting to the last known-good revision")
        .journal(journal_path("pipeline-freeze"))
        .locks(locks())
        .step(Step::new(Arc::new(freeze.clone()), Selector::exact("disabled")).temporary())
        .stage()
        .step(
            Step::new(
                Arc::new(EcsService::new(&aws, "apgms", "apgms-api")?),
                Selector::Previous,
            )
            .verify(
                Check::new(AlarmCheck::prefix(&aws, "apgms")).policy(
                    Policy::default()
                        .attempts(40)
                        .interval(Duration::from_millis(500)),
                ),
            )
            .timeout(Duration::from_secs(120)),
        )
        .on_event(progress_printer(Instant::now()))
        .build()?
        .run()
        .await?;
    println!("\n{report}");
    let transition = freeze.current().await?;
    println!(
        "\n== outcome: {} | Deploy transition: {} | health: {}",
        report.outcome,
        transition.id,
        health(&emu).await?
    );
    expect_outcome(&report, Outcome::Succeeded)?;
    if transition.id != "enabled" {
        return Err("the Deploy transition was not enabled again".into());
    }
    Ok(())
}
