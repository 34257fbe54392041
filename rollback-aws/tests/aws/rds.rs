//! Database rollback through the real SDK against the emulator: runbook 001's "Option 2:
//! Restore from Snapshot" as one transaction, its failure path, the connection handover in
//! both secret forms, and point-in-time validation.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rollback_aws::ecs::EcsDesiredCount;
use rollback_aws::{Aws, ConnectionHandover, EcsService, RdsInstance};
use rollback_core::conformance::{assert_conformance, Fixture};
use rollback_core::verify::{HttpCheck, Policy};
use rollback_core::{
    Check, ErrorKind, FileLocks, Outcome, Progress, RollbackTarget, Selector, Step, StepStatus,
    Transaction, TransactionBuilder,
};
use rollback_testkit::AwsEmulator;
use serde_json::{json, Value};

const DB: &str = "agentauri-production";
const SECRET: &str = "agentauri/production/database-url";
const CLUSTER: &str = "agentauri-production";
const SERVICES: [&str; 3] = ["api-gateway-v2", "event-processor", "action-workers"];
/// A value that must never leave the secret.
const CANARY: &str = "canary-pass-5f1e";

struct Env {
    emu: AwsEmulator,
    aws: Aws,
    dir: tempfile::TempDir,
}

/// The seeded database, its snapshots, the services that use it and the secret pointing at
/// it (`json_secret`: the JSON form instead of a URL).
async fn env(json_secret: bool) -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    emu.set_ecs_convergence(Duration::from_millis(300))
        .await
        .unwrap();
    emu.control("POST", "rds/config", Some(json!({"delay_ms": 600})))
        .await
        .unwrap();
    let ecs: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            json!({"cluster": CLUSTER, "service": s, "family": format!("fam-{s}"), "desired_count": 2,
                   "revisions": [{"image": format!("repo/{s}:1.9.0")}], "current": 1})
        })
        .collect();
    emu.seed(json!({
        "rds": [{"db_instance_id": DB, "engine": "postgres", "class": "db.t3.micro",
                 "subnet_group": "agentauri-production", "security_groups": ["sg-0abc"],
                 "parameter_group": "default.postgres15", "port": 5432, "multi_az": false,
                 "snapshots": [
                     {"id": "rds:agentauri-production-2025-12-28-03-00", "type": "automated", "created": "2025-12-28T03:00:00Z"},
                     {"id": "pre-migration-20251228-143000", "type": "manual", "created": "2025-12-28T14:30:00Z"}
                 ]}],
        "ecs": ecs
    }))
    .await
    .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let host = RdsInstance::new(&aws, DB)
        .unwrap()
        .client()
        .await
        .unwrap()
        .describe_db_instances()
        .db_instance_identifier(DB)
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .endpoint()
        .unwrap()
        .address()
        .unwrap()
        .to_string();
    let value = if json_secret {
        json!({"engine": "postgres", "username": "app", "password": CANARY, "host": host, "port": 5432, "dbname": "agentauri_backend"}).to_string()
    } else {
        format!("postgres://app:{CANARY}@{host}:5432/agentauri_backend?sslmode=require")
    };
    emu.seed(json!({"secrets": [{"name": SECRET, "values": [value]}]}))
        .await
        .unwrap();
    Env {
        emu,
        aws,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn rds(&self) -> RdsInstance {
        RdsInstance::new(&self.aws, DB)
            .unwrap()
            .restore_as("agentauri-production-rollback")
            .unwrap()
    }

    fn tx(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("migration 20251228000001 broke queries")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
    }

    /// Runbook 001's Option 2: stop the services (temporary: restarted once the stages are
    /// done), restore the pre-migration snapshot, hand the endpoint over, verify.
    fn option_2(&self, name: &str, snapshot: &str) -> TransactionBuilder {
        let rds = self.rds();
        let handover =
            ConnectionHandover::new(&self.aws, SECRET, rds.restore_identifier()).unwrap();
        let mut b = self.tx(name);
        for s in SERVICES {
            let count = EcsDesiredCount::new(&self.aws, CLUSTER, s).unwrap();
            b = b.step(
                Step::new(Arc::new(count), Selector::exact("0"))
                    .temporary()
                    .timeout(Duration::from_secs(60)),
            );
        }
        let revision = handover.revision_id();
        b.stage()
            .step(
                Step::new(Arc::new(rds), Selector::exact(snapshot))
                    .timeout(Duration::from_secs(60)),
            )
            .stage()
            .step(
                Step::new(Arc::new(handover), Selector::exact(revision))
                    .timeout(Duration::from_secs(60)),
            )
    }

    async fn secret_value(&self) -> String {
        aws_sdk_secretsmanager::Client::new(self.aws.sdk_config().await)
            .get_secret_value()
            .secret_id(SECRET)
            .send()
            .await
            .unwrap()
            .secret_string()
            .unwrap()
            .to_string()
    }

    async fn desired(&self, service: &str) -> i32 {
        EcsService::new(&self.aws, CLUSTER, service)
            .unwrap()
            .describe()
            .await
            .unwrap()
            .desired_count()
    }
}

#[tokio::test]
async fn targets_conform_read_only() {
    // A restore never changes the original (its current revision stays `live`), a handover
    // goes to a version that does not exist yet, and a desired count has no history: the
    // suite's read-only checks apply; the mutations are tested in the scenarios below.
    let e = env(false).await;
    let read_only = Fixture {
        may_mutate: false,
        secret_canary: Some(CANARY.into()),
        ..Default::default()
    };
    assert_conformance(&e.rds(), &read_only).await;
    assert_conformance(
        &ConnectionHandover::new(&e.aws, SECRET, "agentauri-production-rollback").unwrap(),
        &read_only,
    )
    .await;
    assert_conformance(
        &EcsDesiredCount::new(&e.aws, CLUSTER, "api-gateway-v2").unwrap(),
        &read_only,
    )
    .await;
}

#[tokio::test]
async fn history_is_live_then_snapshots_newest_first() {
    let e = env(false).await;
    let h: Vec<String> = e
        .rds()
        .history()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        h,
        [
            "live",
            "pre-migration-20251228-143000",
            "rds:agentauri-production-2025-12-28-03-00"
        ]
    );
    let prev = e.rds().resolve(&Selector::Previous).await.unwrap();
    assert_eq!(prev.id, "pre-migration-20251228-143000");
    assert_eq!(prev.facts["type"], "manual");
}

#[tokio::test]
async fn pre_migration_snapshot_waits_until_available() {
    let e = env(false).await;
    let snap = e
        .rds()
        .snapshot(None, Duration::from_secs(60), &Progress::none())
        .await
        .unwrap();
    assert!(snap.id.starts_with("pre-migration-"), "{}", snap.id);
    assert_eq!(snap.facts["status"], "available");
    let newest = e.rds().resolve(&Selector::Previous).await.unwrap();
    assert_eq!(newest.id, snap.id);
}

#[tokio::test]
async fn option_2_restores_hands_over_and_restarts_in_one_transaction() {
    let e = env(false).await;
    e.emu
        .mark_bad("secret-endpoint", SECRET, "agentauri-production-rollback")
        .await
        .unwrap();
    let (b, mut events) = e
        .option_2("option-2", "pre-migration-20251228-143000")
        .verify(
            Check::new(HttpCheck::new(e.emu.health_url())).policy(
                Policy::default()
                    .attempts(20)
                    .interval(Duration::from_millis(200)),
            ),
        )
        .events();
    let report = b.build().unwrap().run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");

    // The restored instance exists, available, with the original's settings; the original
    // is untouched.
    let rds = e.rds();
    let out = rds
        .client()
        .await
        .unwrap()
        .describe_db_instances()
        .db_instance_identifier("agentauri-production-rollback")
        .send()
        .await
        .unwrap();
    let restored = &out.db_instances()[0];
    assert_eq!(restored.db_instance_status(), Some("available"));
    assert_eq!(restored.db_instance_class(), Some("db.t3.micro"));
    let host = restored.endpoint().unwrap().address().unwrap().to_string();
    let original = rds
        .client()
        .await
        .unwrap()
        .describe_db_instances()
        .db_instance_identifier(DB)
        .send()
        .await
        .unwrap();
    assert_eq!(
        original.db_instances()[0].db_instance_status(),
        Some("available")
    );

    // The secret points at it, everything else kept.
    let value = e.secret_value().await;
    assert_eq!(
        value,
        format!("postgres://app:{CANARY}@{host}:5432/agentauri_backend?sslmode=require")
    );
    // The services are running again.
    for s in SERVICES {
        assert_eq!(e.desired(s).await, 2, "{s}");
    }
    assert!(
        report.steps[..3]
            .iter()
            .all(|s| s.status == StepStatus::Reverted),
        "{report}"
    );
    assert!(e.emu.healthy().await.unwrap());

    // The value never leaves the secret: not in the journal, the report or the events.
    let journal = std::fs::read_to_string(&report.journal_path).unwrap();
    assert!(!journal.contains(CANARY));
    assert!(!format!("{report:?}{report}").contains(CANARY));
    while let Ok(ev) = events.try_recv() {
        assert!(!ev.message.contains(CANARY), "{ev}");
    }
}

#[tokio::test]
async fn a_failed_restore_compensates_the_handover_and_the_service_stop() {
    let e = env(true).await;
    e.emu
        .control(
            "POST",
            "rds/fail",
            Some(json!({"snapshot": "pre-migration-20251228-143000", "status": "incompatible-restore"})),
        )
        .await
        .unwrap();
    let before = e.secret_value().await;
    let report = e
        .option_2("fails", "pre-migration-20251228-143000")
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let err = report.error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::RolloutFailed);
    assert!(
        err.message.contains("incompatible-restore"),
        "{}",
        err.message
    );
    // The services were started again and the secret was never changed.
    for s in SERVICES {
        assert_eq!(e.desired(s).await, 2, "{s}");
    }
    assert_eq!(e.secret_value().await, before);
    assert_eq!(report.steps[4].status, StepStatus::NotStarted);
    // The failed instance is reported for a person; nothing was deleted.
    let notes: Vec<String> = report
        .needs_attention
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("agentauri-production-rollback") && n.contains("never deletes")),
        "{notes:?}"
    );
    assert!(!format!("{report:?}").contains(CANARY));
}

#[tokio::test]
async fn a_failing_check_after_the_handover_puts_the_secret_back() {
    let e = env(true).await;
    let before = e.secret_value().await;
    let report = e
        .option_2("check-fails", "pre-migration-20251228-143000")
        .verify(
            Check::new(rollback_core::verify::check_bool(
                "queries work",
                || async { false },
            ))
            .policy(Policy::once()),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(
        e.secret_value().await,
        before,
        "AWSCURRENT back on the old value"
    );
    let after: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(after["password"], CANARY);
    let journal = std::fs::read_to_string(&report.journal_path).unwrap();
    assert!(!journal.contains(CANARY));
}

#[tokio::test]
async fn handover_rewrites_the_json_form_keeping_other_keys() {
    let e = env(true).await;
    let report = e
        .option_2("json", "rds:agentauri-production-2025-12-28-03-00")
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let v: Value = serde_json::from_str(&e.secret_value().await).unwrap();
    assert!(
        v["host"]
            .as_str()
            .unwrap()
            .starts_with("agentauri-production-rollback"),
        "{v}"
    );
    assert_eq!(v["port"], 5432);
    assert_eq!(v["password"], CANARY);
    assert_eq!(v["dbname"], "agentauri_backend");
}

#[tokio::test]
async fn point_in_time_outside_the_window_is_refused_before_anything_changes() {
    let e = env(false).await;
    let before = e.emu.calls().await.unwrap();
    let err = e
        .option_2("pitr", "2001-01-01T00:00:00Z")
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string()
            .contains("rds-instance/agentauri-production"),
        "{err}"
    );
    assert!(
        err.to_string().contains("outside the restorable window"),
        "{err}"
    );
    let after = e.emu.calls().await.unwrap();
    assert_eq!(
        rollback_testkit::mutations_in(&after),
        rollback_testkit::mutations_in(&before),
        "nothing changed"
    );
    for s in SERVICES {
        assert_eq!(e.desired(s).await, 2);
    }
    // The latest restorable time is inside the window: accepted in preflight (a dry run).
    let plan = e
        .option_2("pitr-ok", "latest")
        .build()
        .unwrap()
        .dry_run()
        .await
        .unwrap();
    assert_eq!(
        plan.steps[3].to.as_ref().unwrap().facts["type"],
        "point-in-time"
    );
}
