//! Runbook 003 (APGMS) step 3, both ways: the CloudFormation stack back to the previous
//! template artifact with the pipeline frozen, or the pipeline re-run for the last good
//! commit.
//!
//! Release 1.9 changed the stack's template (the queue's visibility timeout went from 30 s to
//! 5 s) and a 2.0 execution is in flight. Two transactions:
//!
//! - **Option A**: stage 0 freezes the `Deploy` stage's inbound transition as a *temporary*
//!   step and abandons the execution in flight (steps 1 and 2, StopPipelineExecution). Stage 1
//!   runs UpdateStack to the previous version of `s3://apgms-templates/prod/template.json`
//!   (pinned by its S3 version id), waited for until UPDATE_COMPLETE (step 3). Then the
//!   transition is enabled again (step 5). The plan shows the template diff.
//! - **Option B**: a pipeline re-run pinned to the commit of the last successful execution
//!   before 1.9 (StartPipelineExecution with sourceRevisions), waited for until it
//!   Succeeded. Had it failed, compensation would re-run 1.9's commit.
//!
//! Run: `cargo run -p rollback-examples --example apgms_stack`

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_aws::{Aws, CloudFormationStack, PipelineExecution, PipelineTransition, StopInFlight};
use rollback_core::{Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_examples::{expect_outcome, init_logging, journal_path, locks, progress_printer};
use rollback_testkit::AwsEmulator;
use serde_json::{json, Value};

const STACK: &str = "apgms-prod";
const TEMPLATE: &str = "s3://apgms-templates/prod/template.json";
const GOOD: &str = "8f14e45fceea167a5a36dedd4bea2543a1b2c3d4";
const BAD: &str = "c9f0f895fb98ab9159f51fd0297e236d5e6f7a8b";
const IN_FLIGHT: &str = "45c48cce2e2d7fbdea1afc51c7c6ad26f1e2d3c4";

fn template(visibility: u32) -> Value {
    json!({
        "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
        "Resources": {"Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": visibility}}}
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    println!("== starting the emulated AWS (moto + scheduler) ...");
    let emu = AwsEmulator::start().await?;
    emu.seed(json!({
        "codepipeline": [{"name": "Apgms", "stages": ["Source", "Build", "Deploy"], "source": "github",
            "executions": [{"commit": GOOD, "summary": "release 1.8"},
                           {"commit": BAD, "summary": "release 1.9"},
                           {"commit": IN_FLIGHT, "summary": "release 2.0", "status": "InProgress"}]}],
        "cloudformation": [{"stack": STACK, "bucket": "apgms-templates", "key": "prod/template.json",
            "versioned": true, "templates": [template(30), template(5)], "parameters": {"Stage": "prod"}}]
    }))
    .await?;
    emu.set_pipeline_delay(Duration::from_millis(500)).await?;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);

    println!("== option A: the stack back to the previous template, the pipeline frozen meanwhile");
    let freeze =
        PipelineTransition::new(&aws, "Apgms", "Deploy")?.stop_in_flight(StopInFlight::Abandon);
    let stack = CloudFormationStack::new(&aws, STACK, TEMPLATE)?;
    let tx = Transaction::builder("runbook 003: previous template with the pipeline frozen")
        .reason(
            "INC-0412: jobs redelivered twice since release 1.9 shortened the visibility timeout",
        )
        .journal(journal_path("apgms-stack"))
        .locks(locks())
        .step(Step::new(Arc::new(freeze.clone()), Selector::exact("disabled")).temporary())
        .stage()
        .step(
            Step::new(Arc::new(stack.clone()), Selector::Previous)
                .timeout(Duration::from_secs(120)),
        )
        .on_event(progress_printer(Instant::now()))
        .build()?;
    println!("{}", tx.dry_run().await?);
    let report = tx.run().await?;
    println!("\n{report}");
    expect_outcome(&report, Outcome::Succeeded)?;
    let transition = freeze.current().await?;
    println!(
        "== stack at {} | Deploy transition {} | StopPipelineExecution calls: {}",
        stack.current().await?,
        transition.id,
        emu.call_count("StopPipelineExecution").await?
    );
    if transition.id != "enabled" {
        return Err("the Deploy transition was not enabled again".into());
    }

    println!("\n== option B: the pipeline re-run for the last good commit");
    let rerun = PipelineExecution::new(&aws, "Apgms")?;
    let report = Transaction::builder("runbook 003: re-run the last good commit")
        .reason("INC-0412: release 1.9 redelivers jobs; re-running 1.8")
        .journal(journal_path("apgms-rerun"))
        .locks(locks())
        .step(
            Step::new(Arc::new(rerun.clone()), Selector::Previous).timeout(Duration::from_secs(60)),
        )
        .on_event(progress_printer(Instant::now()))
        .build()?
        .run()
        .await?;
    println!("\n{report}");
    expect_outcome(&report, Outcome::Succeeded)?;
    let now = rerun.current().await?;
    println!(
        "== the pipeline's latest successful execution is of {} | StartPipelineExecution calls: {}",
        now.id,
        emu.call_count("StartPipelineExecution").await?
    );
    if now.id != GOOD {
        return Err(format!("the pipeline is at {}, not {GOOD}", now.id).into());
    }
    Ok(())
}
