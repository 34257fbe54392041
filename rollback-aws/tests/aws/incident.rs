//! One transaction over every AWS target kind, through the real SDK and the emulator:
//! the incident rolled back, and the same transaction compensated when the health check
//! keeps failing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rollback_aws::{Aws, EcsService, LambdaAlias, SecretVersion};
use rollback_core::verify::{HttpCheck, Policy};
use rollback_core::{
    Check, ErrorKind, FileLocks, Outcome, RollbackTarget, Selector, Step, StepStatus, Transaction,
};
use rollback_testkit::AwsEmulator;
use serde_json::json;

const CLUSTER: &str = "agentauri-production";
const FUNCTION: &str = "agentauri-mcp-s3-tools-prod";
const SECRET: &str = "agentauri/production/jwt-secret";
const SERVICES: [&str; 3] = ["api-gateway-v2", "event-processor", "action-workers"];

struct Incident {
    emu: AwsEmulator,
    targets: Vec<Arc<dyn RollbackTarget>>,
    secret_versions: Vec<String>,
    dir: tempfile::TempDir,
}

async fn incident() -> Incident {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    emu.set_ecs_convergence(Duration::from_millis(300))
        .await
        .unwrap();
    let ecs: Vec<_> = SERVICES
        .iter()
        .map(|s| {
            json!({"cluster": CLUSTER, "service": s, "family": format!("fam-{s}"), "desired_count": 2,
                   "revisions": [{"image": format!("repo/{s}:1.8.0")}, {"image": format!("repo/{s}:1.9.0")}], "current": 2})
        })
        .collect();
    let seeded = emu
        .seed(json!({
            "lambda": [{"function": FUNCTION, "alias": "live", "versions": ["1.8.0", "1.9.0"], "alias_version": "2"}],
            "ecs": ecs,
            "secrets": [{"name": SECRET, "values": ["canary-old-7f3a", "canary-new-9c2e"]}]
        }))
        .await
        .unwrap();
    let secret_versions: Vec<String> = seeded["secrets"][0]["version_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    emu.mark_bad("lambda", &format!("{FUNCTION}:live"), "2")
        .await
        .unwrap();
    for s in SERVICES {
        emu.mark_bad("ecs", &format!("{CLUSTER}/{s}"), &format!("fam-{s}:2"))
            .await
            .unwrap();
    }
    emu.mark_bad("secret", SECRET, &secret_versions[1])
        .await
        .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let mut targets: Vec<Arc<dyn RollbackTarget>> = vec![
        Arc::new(SecretVersion::new(&aws, SECRET).unwrap()),
        Arc::new(LambdaAlias::new(&aws, FUNCTION, "live").unwrap()),
    ];
    for s in SERVICES {
        targets.push(Arc::new(EcsService::new(&aws, CLUSTER, s).unwrap()));
    }
    Incident {
        emu,
        targets,
        secret_versions,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Incident {
    fn tx(&self, name: &str, check_attempts: u32) -> Transaction {
        let mut b = Transaction::builder(name)
            .reason("INC-2041")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
            .verify(
                Check::new(HttpCheck::new(self.emu.health_url())).policy(
                    Policy::default()
                        .attempts(check_attempts)
                        .interval(Duration::from_millis(100)),
                ),
            );
        for t in &self.targets {
            b = b.step(Step::new(t.clone(), Selector::Previous).timeout(Duration::from_secs(60)));
        }
        b.build().unwrap()
    }

    async fn currents(&self) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.targets {
            out.push(t.current().await.unwrap().id);
        }
        out
    }
}

#[tokio::test]
async fn the_whole_incident_rolls_back_in_one_transaction() {
    let i = incident().await;
    assert!(!i.emu.healthy().await.unwrap());
    let report = i.tx("rollback", 20).run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert!(i.emu.healthy().await.unwrap());
    let now = i.currents().await;
    assert_eq!(now[0], i.secret_versions[0]);
    assert_eq!(now[1], "1");
    for (n, s) in now[2..].iter().zip(SERVICES) {
        assert_eq!(n, &format!("fam-{s}:1"));
    }
    // No secret value in the journal.
    let journal = std::fs::read_to_string(&report.journal_path).unwrap();
    assert!(!journal.contains("canary-old") && !journal.contains("canary-new"));
}

#[tokio::test]
async fn a_failing_health_check_compensates_every_target() {
    let i = incident().await;
    // The previous release of one service is broken too: health never passes.
    i.emu
        .mark_bad(
            "ecs",
            &format!("{CLUSTER}/event-processor"),
            "fam-event-processor:1",
        )
        .await
        .unwrap();
    let before = i.currents().await;
    let report = i.tx("compensate", 3).run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(
        report.error.as_ref().unwrap().kind,
        ErrorKind::VerificationFailed
    );
    assert!(
        report
            .steps
            .iter()
            .all(|s| s.status == StepStatus::Compensated),
        "{report}"
    );
    // Read back from the emulator: every target is on its captured revision.
    assert_eq!(i.currents().await, before);
    let ecs = EcsService::new(
        &Aws::from_sdk_config(&i.emu.sdk_config().await),
        CLUSTER,
        "api-gateway-v2",
    )
    .unwrap();
    let svc = ecs.describe().await.unwrap();
    assert_eq!(svc.deployments().len(), 1, "the compensation converged");
}
