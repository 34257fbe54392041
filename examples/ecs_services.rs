//! Runbook 001, "ECS Service Rollback" and "Rollback All Services".
//!
//! Runbook 001's three services in cluster `agentauri-production` run image tag `def456`,
//! which answers 5xx. The last known-good commit is `abc123`, two task-definition revisions
//! back (`bd4e1f0` came between, so `Previous` would not do). One transaction moves all three
//! to the revision whose image carries tag `abc123`, in one stage: the runbook's
//! `rollback-all.sh`, except that the revision is found by its images (the script greps the
//! task-definition ARNs for the tag, which they never contain).
//!
//! First a dry run shows, per service, the image and environment diff the runbook's steps 1
//! and 2 compare by hand; `JWT_SECRET`, a secret-looking variable, is shown redacted. Then
//! the run waits for every service to be stable (`aws ecs wait services-stable`) and runs the
//! health check (step 4). The example fails if a `JWT_SECRET` value is in the plan or the
//! journal.
//!
//! Then runbook 003 step 2, "confirm the previous image still exists in ECR": the `reports`
//! service's previous revision runs an image deleted from ECR, so `Previous` is refused in
//! preflight, naming the image, before anything changes; two back is still there, and goes
//! out with `--force-new-deployment` (runbook 002 Option 1), its plan showing the digest.
//!
//! Run: `cargo run -p rollback-examples --example ecs_services`

use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_aws::{Aws, EcsService};
use rollback_core::{Outcome, Selector, Step, Transaction};
use rollback_examples::{
    expect_outcome, health, health_check, init_logging, journal_path, locks, progress_printer,
    runbook_001_services, CLUSTER, SERVICES,
};
use rollback_testkit::AwsEmulator;
use serde_json::json;

/// The known-good commit (`PREVIOUS_TAG` in the runbook).
const KNOWN_GOOD: &str = "abc123";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    init_logging();
    println!("== starting the emulated AWS (moto + scheduler) ...");
    let emu = AwsEmulator::start().await?;
    emu.set_ecs_convergence(Duration::from_millis(1500)).await?;
    let env = |feature: &str, jwt: &str| json!({"LOG_LEVEL": "info", "FEATURE_X": feature, "JWT_SECRET": jwt});
    emu.seed(json!({"ecs": runbook_001_services(&[
        (KNOWN_GOOD, env("off", "jwt-value-2025-11")),
        ("bd4e1f0", env("off", "jwt-value-2025-11")),
        ("def456", env("on", "jwt-value-2025-12")),
    ])}))
    .await?;
    for (service, family) in SERVICES {
        emu.mark_bad(
            "ecs",
            &format!("{CLUSTER}/{service}"),
            &format!("{family}:3"),
        )
        .await?;
    }
    println!(
        "== incident: def456 is live and health answers {}",
        health(&emu).await?
    );

    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let mut tx = Transaction::builder("roll back all services to abc123")
        .reason("INC-2077: 5xx from every service after deploying def456")
        .journal(journal_path("ecs-services"))
        .locks(locks())
        .verify(health_check(&emu));
    for (service, _) in SERVICES {
        tx = tx.step(
            Step::new(
                Arc::new(EcsService::new(&aws, CLUSTER, service)?),
                Selector::image_tag(KNOWN_GOOD),
            )
            .timeout(Duration::from_secs(120)),
        );
    }
    let tx = tx.on_event(progress_printer(Instant::now())).build()?;

    println!("\n== the plan (dry run: nothing changes)");
    let plan = tx.dry_run().await?.to_string();
    println!("{plan}");
    if plan.contains("jwt-value-") {
        return Err("a JWT_SECRET value is in the plan".into());
    }

    println!("\n== rolling back");
    let report = tx.run().await?;
    println!("\n{report}");
    println!(
        "\n== outcome: {} | health: {} | journal: {}",
        report.outcome,
        health(&emu).await?,
        report.journal_path.display()
    );
    if std::fs::read_to_string(&report.journal_path)?.contains("jwt-value-") {
        return Err("a JWT_SECRET value is in the journal".into());
    }
    expect_outcome(&report, Outcome::Succeeded)?;

    println!("\n== runbook 003 step 2: is the previous image still in ECR?");
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/reports";
    emu.seed(json!({"ecs": [{"cluster": CLUSTER, "service": "reports", "family": "reports", "desired_count": 1,
        "revisions": [{"image": format!("{ecr}:1.7.0")},
                      {"image": format!("{ecr}:1.8.0"), "image_missing": true},
                      {"image": format!("{ecr}:1.9.0")}]}]}))
    .await?;
    let before = emu.call_count("UpdateService").await?;
    let reports = EcsService::new(&aws, CLUSTER, "reports")?.force_new_deployment(true);
    let refused = Transaction::builder("reports: back one revision")
        .reason("INC-2078: reports 1.9.0 times out")
        .journal(journal_path("ecs-reports-refused"))
        .locks(locks())
        .step(Step::new(Arc::new(reports.clone()), Selector::Previous))
        .build()?
        .run()
        .await;
    match &refused {
        Err(e) => println!("refused before any change: {e}"),
        Ok(r) => return Err(format!("a revision without its image was not refused: {r}").into()),
    }
    let report = Transaction::builder("reports: back two revisions, forced new deployment")
        .reason("INC-2078: reports 1.9.0 times out; 1.8.0's image is gone")
        .journal(journal_path("ecs-reports"))
        .locks(locks())
        .step(
            Step::new(Arc::new(reports), Selector::StepsBack(2)).timeout(Duration::from_secs(120)),
        )
        .on_event(progress_printer(Instant::now()))
        .build()?
        .run()
        .await?;
    println!("\n{report}");
    let updates = emu.call_count("UpdateService").await? - before;
    println!("== UpdateService calls for reports: {updates} (none for the refused run)");
    if updates != 1 {
        return Err(format!("expected 1 UpdateService, saw {updates}").into());
    }
    expect_outcome(&report, Outcome::Succeeded)
}
