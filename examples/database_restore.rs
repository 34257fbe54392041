//! Runbook 001, "Database Migration Rollback / Option 2: Restore from Snapshot", as one
//! transaction on the emulated AWS.
//!
//! Before the migration a snapshot is taken ("Before Running Migrations"). The migration
//! breaks queries, and the rollback is:
//!
//! - stage 0: runbook 001's three services stopped (desired count 0) as *temporary* steps,
//!   so nothing writes meanwhile; they are started again (desired count 2, a new deployment
//!   that reads the secret anew) once the stages are done, or by compensation;
//! - stage 1: the pre-migration snapshot restored to a NEW instance,
//!   `agentauri-production-rollback` (the original is never touched), with the original's
//!   class, subnet group and security groups;
//! - stage 2: the connection handover: the restored endpoint written into the secret
//!   `agentauri/production/database-url` as a new version, keeping user, password and options;
//! - then the health check, which the emulator fails until the secret names the restored
//!   instance's endpoint.
//!
//! The secret holds a password. It is never printed: the example checks that it appears in
//! none of the plan, the events, the report and the journal, and fails if it does.
//!
//! Part 2 replays the incident on a fresh emulator whose pre-migration snapshot cannot be
//! restored (`incompatible-restore`): the transaction compensates, the services run again,
//! the secret is untouched and the failed instance is left for a person (a rollback never
//! deletes data).
//!
//! Run: `cargo run -p rollback-examples --example database_restore`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rollback_aws::{
    Aws, ConnectionHandover, EcsDesiredCount, EcsService, RdsInstance, SecretVersion,
};
use rollback_core::{Outcome, Progress, RollbackTarget, Selector, Step, Transaction};
use rollback_examples::{
    expect_outcome, health, health_check, init_logging, journal_path, locks, progress_printer,
    runbook_001_services, CLUSTER, SERVICES,
};
use rollback_testkit::AwsEmulator;
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const DB: &str = "agentauri-production";
const RESTORED: &str = "agentauri-production-rollback";
const SECRET: &str = "agentauri/production/database-url";
/// The database password inside the connection secret. Never printed.
const PASSWORD: &str = "pw-9c4f1e7a2b";

/// The database (with last night's automated snapshot), runbook 001's services, and the
/// connection secret: a URL naming the database's endpoint, user and password.
async fn seed(emu: &AwsEmulator) -> Result<()> {
    emu.set_ecs_convergence(Duration::from_millis(800)).await?;
    emu.set_rds_delay(Duration::from_millis(1500)).await?;
    let seeded = emu
        .seed(json!({
            "rds": [{"db_instance_id": DB, "engine": "postgres", "class": "db.t3.micro",
                     "subnet_group": "agentauri-production", "security_groups": ["sg-0abc"], "port": 5432,
                     "snapshots": [{"id": "rds:agentauri-production-2025-12-28-03-00", "type": "automated",
                                    "created": "2025-12-28T03:00:00Z"}]}],
            "ecs": runbook_001_services(&[("1.9.0", json!({"LOG_LEVEL": "info"}))])
        }))
        .await?;
    let host = seeded["rds"][0]["endpoint"]["address"]
        .as_str()
        .unwrap_or_default();
    let url = format!("postgres://app:{PASSWORD}@{host}:5432/agentauri_backend?sslmode=require");
    emu.seed(json!({"secrets": [{"name": SECRET, "values": [url]}]}))
        .await?;
    Ok(())
}

/// Runbook 001's "Before Running Migrations": a snapshot, waited for until available.
async fn pre_migration_snapshot(aws: &Aws) -> Result<String> {
    let snapshot = RdsInstance::new(aws, DB)?
        .snapshot(
            None,
            Duration::from_secs(120),
            &Progress::new(|m| println!("   {m}")),
        )
        .await?;
    println!("== pre-migration snapshot {} is available", snapshot.id);
    Ok(snapshot.id)
}

/// Option 2 as one transaction: services stopped while the snapshot is restored and the
/// connection handed over, then started again; the health check at the end.
fn option_2(
    aws: &Aws,
    emu: &AwsEmulator,
    name: &str,
    snapshot: &str,
) -> Result<rollback_core::TransactionBuilder> {
    let rds = RdsInstance::new(aws, DB)?.restore_as(RESTORED)?;
    let handover = ConnectionHandover::new(aws, SECRET, rds.restore_identifier())?;
    let handover_revision = handover.revision_id();
    let mut tx = Transaction::builder(format!("restore {DB} from {snapshot}"))
        .reason("INC-2093: migration 20251228000001 broke queries")
        .journal(journal_path(name))
        .locks(locks());
    for (service, _) in SERVICES {
        tx = tx.step(
            Step::new(
                Arc::new(EcsDesiredCount::new(aws, CLUSTER, service)?),
                Selector::exact("0"),
            )
            .temporary()
            .timeout(Duration::from_secs(60)),
        );
    }
    Ok(tx
        .stage()
        .step(Step::new(Arc::new(rds), Selector::exact(snapshot)).timeout(Duration::from_secs(120)))
        .stage()
        .step(
            Step::new(Arc::new(handover), Selector::exact(handover_revision))
                .timeout(Duration::from_secs(60)),
        )
        .verify(health_check(emu)))
}

/// Whether the password is in any of `texts`.
fn leaks(texts: &[&str]) -> bool {
    texts.iter().any(|t| t.contains(PASSWORD))
}

#[tokio::main]
async fn main() -> Result<()> {
    init_logging();
    println!("== starting the emulated AWS (moto + RDS and ECS schedulers) ...");
    let emu = AwsEmulator::start().await?;
    seed(&emu).await?;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let start = Instant::now();

    println!("\n== part 1: restore the pre-migration snapshot");
    let snapshot = pre_migration_snapshot(&aws).await?;
    // The migration runs and breaks queries: the application is healthy again only once the
    // secret points at a database restored from before it.
    emu.mark_bad("secret-endpoint", SECRET, RESTORED).await?;
    println!(
        "== the migration broke queries; health answers {}",
        health(&emu).await?
    );

    let events = Arc::new(Mutex::new(String::new()));
    let seen = events.clone();
    let tx = option_2(&aws, &emu, "database-restore", &snapshot)?
        .on_event(progress_printer(start))
        .on_event(move |e| {
            if let Ok(mut s) = seen.lock() {
                s.push_str(&format!("{e}\n{e:?}\n"));
            }
        })
        .build()?;
    println!("\n== the plan (dry run: nothing changes)");
    let plan = tx.dry_run().await?.to_string();
    println!("{plan}");
    println!("\n== rolling back");
    let report = tx.run().await?;
    println!("\n{report}");

    let (host, port) = RdsInstance::new(&aws, DB)?
        .restore_as(RESTORED)?
        .restored_endpoint()
        .await?
        .ok_or("the restored instance has no endpoint")?;
    // The handover's revision names the secret version it wrote (a fact, not the value).
    let written = report
        .steps
        .iter()
        .find(|s| s.target.kind == rollback_aws::handover::KIND)
        .and_then(|s| s.to.as_ref()?.facts.get("version"));
    println!(
        "\n== restored endpoint: {host}:{port} | secret AWSCURRENT: version {} (written by the handover) | health: {}",
        written.map_or("?", String::as_str),
        health(&emu).await?
    );
    let journal = std::fs::read_to_string(&report.journal_path)?;
    let events = events.lock().map(|s| s.clone()).unwrap_or_default();
    let shown = format!("{report}{report:?}");
    if leaks(&[&plan, &events, &shown, &journal]) {
        return Err("the database password appeared in the output".into());
    }
    println!(
        "== the database password is in none of: the plan, {} events, the report, the journal ({} bytes)",
        events.lines().count() / 2,
        journal.len()
    );
    expect_outcome(&report, Outcome::Succeeded)?;

    println!("\n== part 2: the same on a fresh emulator, with a snapshot that cannot be restored");
    emu.control("POST", "reset", None).await?;
    seed(&emu).await?;
    let snapshot = pre_migration_snapshot(&aws).await?;
    emu.fail_restore(&snapshot, "incompatible-restore").await?;
    emu.mark_bad("secret-endpoint", SECRET, RESTORED).await?;
    let secret = SecretVersion::new(&aws, SECRET)?;
    let secret_before = secret.current().await?.id;
    let report = option_2(&aws, &emu, "database-restore-failed", &snapshot)?
        .on_event(progress_printer(start))
        .build()?
        .run()
        .await?;
    println!("\n{report}");

    let mut desired = Vec::new();
    for (service, _) in SERVICES {
        let svc = EcsService::new(&aws, CLUSTER, service)?.describe().await?;
        desired.push(format!("{service} {}", svc.desired_count()));
    }
    let secret_untouched = secret.current().await?.id == secret_before;
    let reported = report
        .needs_attention
        .iter()
        .any(|a| a.message.contains(RESTORED));
    println!(
        "\n== outcome: {} | desired counts: {} | secret untouched: {secret_untouched} | {RESTORED} in needs_attention: {reported}",
        report.outcome,
        desired.join(", ")
    );
    expect_outcome(&report, Outcome::Compensated)?;
    if !secret_untouched || !reported || desired.iter().any(|d| !d.ends_with(" 2")) {
        return Err("the compensation did not leave things as expected".into());
    }
    Ok(())
}
