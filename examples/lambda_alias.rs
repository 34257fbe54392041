//! Runbook 000, "Lambda MCP Server Rollback", then runbook 002's "canary to 0".
//!
//! 1. Release 1.5.0 of the MCP server went to version 2 of `agentcore-mcp-s3-tools-prod`
//!    and its `live` alias, and the tools fail. The alias goes back to the previous version
//!    (runbook 000's list-versions / update-alias / get-alias), and the step is verified by
//!    the application's health check (served by the emulator).
//! 2. `claude-proxy-api-prod` is in canary mode: its `live` alias serves version 1 and sends
//!    10 % of the traffic to version 2, which is bad. "Canary to 0" is the alias moved to its
//!    own primary version with the routing weights cleared: a real change although the
//!    primary version stays the same.
//!
//! Run: `cargo run -p rollback-examples --example lambda_alias`

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_aws::{Aws, LambdaAlias};
use rollback_core::{Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_examples::{
    expect_outcome, health, health_check, init_logging, journal_path, locks, progress_printer,
};
use rollback_testkit::AwsEmulator;
use serde_json::json;

const MCP: &str = "agentcore-mcp-s3-tools-prod";
const CANARY: &str = "claude-proxy-api-prod";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    println!("== starting the emulated AWS (moto + scheduler) ...");
    let emu = AwsEmulator::start().await?;
    emu.seed(json!({"lambda": [
        {"function": MCP, "alias": "live", "versions": ["release 1.4.0", "release 1.5.0"], "alias_version": "2"},
        {"function": CANARY, "alias": "live", "versions": ["release 2.2.0", "release 2.3.0"],
         "alias_version": "1", "routing": {"2": 0.1}}
    ]}))
    .await?;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let start = Instant::now();

    // Part 1: runbook 000.
    emu.mark_bad("lambda", &format!("{MCP}:live"), "2").await?;
    println!(
        "\n== runbook 000: release 1.5.0 is live; health answers {}",
        health(&emu).await?
    );
    let live = LambdaAlias::new(&aws, MCP, "live")?;
    println!("1. the function's versions, newest first:");
    for v in live.history().await? {
        println!("   {} {}", v.id, v.description.unwrap_or_default());
    }
    println!("2. the alias back to the previous version, verified by the health check");
    let report = Transaction::builder("roll back the MCP server's live alias")
        .reason("INC-3107: MCP tool bug in release 1.5.0")
        .journal(journal_path("lambda-alias"))
        .locks(locks())
        .step(
            Step::new(Arc::new(live.clone()), Selector::Previous)
                .verify(health_check(&emu))
                .timeout(Duration::from_secs(60)),
        )
        .on_event(progress_printer(start))
        .build()?
        .run()
        .await?;
    println!("\n{report}");
    println!("3. the alias now: version {}", live.current().await?.id);
    expect_outcome(&report, Outcome::Succeeded)?;

    // Part 2: runbook 002, "canary to 0".
    emu.mark_bad("lambda", &format!("{CANARY}:live"), "2")
        .await?;
    let canary = LambdaAlias::new(&aws, CANARY, "live")?;
    let primary = canary.current().await?;
    println!(
        "\n== runbook 002: {CANARY}:live serves version {} with canary {}; health answers {}",
        primary.id,
        primary.facts.get("canary").map_or("none", String::as_str),
        health(&emu).await?
    );
    let tx = Transaction::builder("canary to 0")
        .reason("INC-3108: 5xx from the canary of release 2.3.0")
        .journal(journal_path("lambda-canary"))
        .locks(locks())
        .step(
            Step::new(
                Arc::new(canary.clone()),
                Selector::exact(primary.id.clone()),
            )
            .verify(health_check(&emu))
            .timeout(Duration::from_secs(60)),
        )
        .on_event(progress_printer(start))
        .build()?;
    println!("\n== the plan (dry run: nothing changes); the canary weights go");
    println!("{}", tx.dry_run().await?);
    println!("\n== canary to 0");
    let report = tx.run().await?;
    println!("\n{report}");
    let after = canary.current().await?;
    println!(
        "\n== outcome: {} | alias at version {}, canary {} | health: {}",
        report.outcome,
        after.id,
        after.facts.get("canary").map_or("none", String::as_str),
        health(&emu).await?
    );
    expect_outcome(&report, Outcome::Succeeded)?;
    if after.facts.contains_key("canary") {
        return Err("the canary weights are still there".into());
    }
    Ok(())
}
