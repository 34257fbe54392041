//! Restarts through the real AWS SDK against the emulator: a secret rolled back with the
//! ECS services that read it (runbook 001 "Secrets Manager", runbook 002 "Secret Rotation
//! Rollback"), a forced new deployment as a step of its own (`--force-new-deployment`),
//! and a rollback that forces one (runbook 002 Option 1).
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::types::Service;
use rollback_aws::{Aws, EcsRestart, EcsService, SecretVersion};
use rollback_core::verify::{check_bool, Policy};
use rollback_core::{
    ApplyOutcome, Check, ErrorKind, FileLocks, Outcome, Registry, RollbackTarget, Selector, Step,
    Transaction, TransactionBuilder,
};
use rollback_testkit::{count_in, gained, mutations_in, AwsEmulator};
use serde_json::{json, Value};

const SECRET: &str = "agentauri/production/jwt-secret";
const CLUSTER: &str = "agentauri-production";
const SERVICES: [&str; 2] = ["api-gateway-v2", "event-processor"];
const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

struct Env {
    emu: AwsEmulator,
    aws: Aws,
    versions: Vec<String>,
    dir: tempfile::TempDir,
}

/// A secret with three values (the newest, AWSCURRENT, is the bad rotation) and the two
/// services that read it, each at task definition 2 with 2 tasks, converging in 300 ms.
async fn env() -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    let svc = |service: &str| {
        json!({
            "cluster": CLUSTER, "service": service, "family": service, "desired_count": 2,
            "revisions": [{"image": format!("{ECR}/{service}:1.8.0")}, {"image": format!("{ECR}/{service}:1.9.0")}],
            "current": 2
        })
    };
    let seeded = emu
        .seed(json!({
            "secrets": [{"name": SECRET, "values": ["jwt-v1-Zq8Kx2mW7p", "jwt-v2-Hc5Vb9Ns3Q", "jwt-v3-Rt2Gm8Lp5W"]}],
            "ecs": [svc(SERVICES[0]), svc(SERVICES[1])]
        }))
        .await
        .unwrap();
    let versions: Vec<String> = seeded["secrets"][0]["version_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{seeded}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    emu.set_ecs_convergence(Duration::from_millis(300))
        .await
        .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    Env {
        emu,
        aws,
        versions,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn secret(&self) -> SecretVersion {
        SecretVersion::new(&self.aws, SECRET)
            .unwrap()
            .consumers(SERVICES.map(|s| (CLUSTER, s)))
            .unwrap()
    }

    fn service(&self, name: &str) -> EcsService {
        EcsService::new(&self.aws, CLUSTER, name).unwrap()
    }

    fn tx(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("the rotated JWT secret broke sign-in")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
    }

    async fn current_version(&self) -> String {
        self.secret().current().await.unwrap().id
    }

    async fn described(&self, name: &str) -> Service {
        self.service(name).describe().await.unwrap()
    }
}

/// The id of a described service's PRIMARY deployment.
fn primary(svc: &Service) -> String {
    svc.deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .and_then(|d| d.id())
        .unwrap_or_default()
        .to_string()
}

fn settled(svc: &Service) -> bool {
    svc.deployments().len() == 1 && svc.running_count() == svc.desired_count()
}

fn journal_text(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            all.push_str(&std::fs::read_to_string(p).unwrap());
        }
    }
    all
}

#[tokio::test]
async fn a_secret_rolled_back_restarts_its_consumers_and_waits_for_them() {
    let e = env().await;
    let before: Vec<String> = futures::future::join_all(SERVICES.map(|s| e.described(s)))
        .await
        .iter()
        .map(primary)
        .collect();
    let plan = e
        .tx("plan")
        .step(Step::new(Arc::new(e.secret()), Selector::Previous))
        .build()
        .unwrap()
        .dry_run()
        .await
        .unwrap();
    let keys: Vec<String> = plan.steps[0]
        .diff
        .entries
        .iter()
        .map(|d| d.key.clone())
        .collect();
    for s in SERVICES {
        assert!(
            keys.contains(&format!("consumer {CLUSTER}/{s}")),
            "the plan lists the consumer {s}: {keys:?}"
        );
    }
    let calls = e.emu.calls().await.unwrap();
    assert_eq!(mutations_in(&calls), 0, "the plan changed nothing: {calls}");

    let report = e
        .tx("rollback")
        .step(Step::new(Arc::new(e.secret()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(e.current_version().await, e.versions[1]);
    let after = e.emu.calls().await.unwrap();
    let cost = gained(&calls, &after);
    assert_eq!(cost.get("UpdateSecretVersionStage"), Some(&1), "{cost:?}");
    assert_eq!(
        cost.get("UpdateService"),
        Some(&2),
        "one per consumer: {cost:?}"
    );
    for (s, old) in SERVICES.iter().zip(&before) {
        let svc = e.described(s).await;
        assert_ne!(&primary(&svc), old, "{s} runs a new deployment");
        assert!(settled(&svc), "{s} was waited for: {svc:?}");
    }
    let journal = journal_text(e.dir.path());
    assert!(!journal.contains("jwt-v"), "no secret value in the journal");
    assert!(journal.contains("\"consumers\""), "the spec records them");
}

#[tokio::test]
async fn putting_the_secret_back_restarts_the_consumers_again() {
    let e = env().await;
    let calls = e.emu.calls().await.unwrap();
    let report = e
        .tx("compensated")
        .step(Step::new(Arc::new(e.secret()), Selector::Previous))
        .verify(Check::new(check_bool("sign-in works", || async { false })).policy(Policy::once()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(
        e.current_version().await,
        e.versions[2],
        "AWSCURRENT is back on the version it was on"
    );
    let cost = gained(&calls, &e.emu.calls().await.unwrap());
    assert_eq!(cost.get("UpdateSecretVersionStage"), Some(&2), "{cost:?}");
    assert_eq!(
        cost.get("UpdateService"),
        Some(&4),
        "each consumer restarted after the rollback and again after the put-back: {cost:?}"
    );
    for s in SERVICES {
        assert!(settled(&e.described(s).await), "{s} settled");
    }
}

/// What a resumed run does when the crashed run had moved the label and restarted one
/// consumer: the other one only is restarted, and a second apply restarts none.
#[tokio::test]
async fn a_consumer_restarted_since_the_intent_is_not_restarted_again() {
    let e = env().await;
    let secret = e.secret();
    let mut change = secret.prepare(&Selector::Previous).await.unwrap();
    let intent = chrono::Utc::now();
    change.since = Some(intent);
    // "The crashed run" restarted the first consumer after its intent.
    e.service(SERVICES[0])
        .restart()
        .apply(
            &e.service(SERVICES[0])
                .restart()
                .prepare(&Selector::Previous)
                .await
                .unwrap(),
        )
        .await
        .unwrap();
    let first = primary(&e.described(SERVICES[0]).await);
    let n0 = e.emu.call_count("UpdateService").await.unwrap();
    assert_eq!(secret.apply(&change).await.unwrap(), ApplyOutcome::Applied);
    assert_eq!(
        e.emu.call_count("UpdateService").await.unwrap() - n0,
        1,
        "only the consumer not restarted since the intent"
    );
    assert_eq!(primary(&e.described(SERVICES[0]).await), first);
    // Once more, as a second resume would: nothing is sent.
    let n1 = e.emu.call_count("UpdateService").await.unwrap();
    let stages = e.emu.call_count("UpdateSecretVersionStage").await.unwrap();
    assert_eq!(
        secret.apply(&change).await.unwrap(),
        ApplyOutcome::AlreadyCurrent
    );
    assert_eq!(e.emu.call_count("UpdateService").await.unwrap(), n1);
    assert_eq!(
        e.emu.call_count("UpdateSecretVersionStage").await.unwrap(),
        stages
    );
    secret
        .wait_stable(
            &change.to,
            Duration::from_secs(30),
            &rollback_core::Progress::none(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missing_or_repeated_consumer_is_refused_before_anything_changes() {
    let e = env().await;
    let twice = SecretVersion::new(&e.aws, SECRET)
        .unwrap()
        .consumers([(CLUSTER, SERVICES[0]), (CLUSTER, SERVICES[0])])
        .unwrap_err();
    assert_eq!(twice.kind(), ErrorKind::InvalidInput);
    assert!(twice.to_string().contains("named twice"), "{twice}");
    let empty = SecretVersion::new(&e.aws, SECRET)
        .unwrap()
        .consumers([(CLUSTER, "")])
        .unwrap_err();
    assert_eq!(empty.kind(), ErrorKind::InvalidInput, "{empty}");

    let missing = SecretVersion::new(&e.aws, SECRET)
        .unwrap()
        .consumers([(CLUSTER, SERVICES[0]), (CLUSTER, "no-such-service")])
        .unwrap();
    let before = e.emu.calls().await.unwrap();
    let err = e
        .tx("missing")
        .step(Step::new(Arc::new(missing), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no-such-service") && text.contains(SECRET),
        "names the consumer and the secret: {text}"
    );
    let after = e.emu.calls().await.unwrap();
    assert_eq!(
        mutations_in(&after),
        mutations_in(&before),
        "nothing changed"
    );
    assert_eq!(e.current_version().await, e.versions[2]);
}

#[tokio::test]
async fn a_restart_step_makes_one_new_deployment_and_is_not_made_twice() {
    let e = env().await;
    let restart = e.service(SERVICES[0]).restart();
    let old = primary(&e.described(SERVICES[0]).await);
    assert_eq!(restart.current().await.unwrap().id, old);
    let refused = restart
        .resolve(&Selector::Exact("ecs-svc/123".into()))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");

    let n0 = e.emu.call_count("UpdateService").await.unwrap();
    let report = e
        .tx("restart")
        .step(Step::new(Arc::new(restart.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(
        report.steps[0].to.as_ref().unwrap().id,
        format!("after:{old}")
    );
    assert_eq!(e.emu.call_count("UpdateService").await.unwrap() - n0, 1);
    let svc = e.described(SERVICES[0]).await;
    let new = primary(&svc);
    assert_ne!(new, old);
    assert!(settled(&svc));
    assert_eq!(
        svc.task_definition().unwrap_or_default().rsplit('/').next(),
        Some("api-gateway-v2:2"),
        "the same task definition"
    );

    // The change again, as a resume after the crash would send it: nothing sent.
    let mut change = rollback_core::Change::new(
        restart.id(),
        rollback_core::Revision::new(old.clone()),
        rollback_core::Revision::new(format!("after:{old}")),
    );
    change.since = Some(chrono::Utc::now() - chrono::Duration::seconds(30));
    assert_eq!(
        restart.apply(&change).await.unwrap(),
        ApplyOutcome::AlreadyCurrent
    );
    // Without a deployment since the intent, someone else deployed: a conflict.
    change.since = Some(chrono::Utc::now() + chrono::Duration::seconds(30));
    let conflict = restart.apply(&change).await.unwrap_err();
    assert_eq!(conflict.kind(), ErrorKind::Conflict, "{conflict}");
    assert_eq!(e.emu.call_count("UpdateService").await.unwrap() - n0, 1);
}

#[tokio::test]
async fn kinds_round_trip_through_the_registry() {
    let e = env().await;
    let mut registry = Registry::new();
    rollback_aws::register_with(&mut registry, e.aws.clone());
    let forced = e.service(SERVICES[0]).force_new_deployment(true);
    let spec = forced.spec();
    assert_eq!(spec.params["force_new_deployment"], json!(true), "{spec:?}");
    let rebuilt = registry.build(&forced.id(), &spec).await.unwrap();
    assert_eq!(rebuilt.spec(), spec);

    let secret = e.secret();
    let spec = secret.spec();
    assert_eq!(
        spec.params["consumers"],
        json!([{"cluster": CLUSTER, "service": SERVICES[0]}, {"cluster": CLUSTER, "service": SERVICES[1]}])
    );
    assert_eq!(
        registry.build(&secret.id(), &spec).await.unwrap().spec(),
        spec
    );

    let restart = EcsRestart::new(&e.aws, CLUSTER, SERVICES[1]).unwrap();
    assert_eq!(
        restart.id().to_string(),
        format!("ecs-restart/{CLUSTER}/{}", SERVICES[1])
    );
    let spec = restart.spec();
    assert_eq!(
        registry.build(&restart.id(), &spec).await.unwrap().spec(),
        spec
    );
    let _: Value = spec.params;
    assert_eq!(count_in(&e.emu.calls().await.unwrap(), "UpdateService"), 0);
}

/// Runbook 002 Option 1: the task definition back and a forced new deployment in one
/// UpdateService; a resumed apply of it sends nothing more.
#[tokio::test]
async fn a_rollback_with_a_forced_new_deployment() {
    let e = env().await;
    let svc = e.service(SERVICES[1]).force_new_deployment(true);
    let n0 = e.emu.call_count("UpdateService").await.unwrap();
    let report = e
        .tx("forced")
        .step(Step::new(Arc::new(svc.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(e.emu.call_count("UpdateService").await.unwrap() - n0, 1);
    let described = e.described(SERVICES[1]).await;
    assert!(described
        .task_definition()
        .unwrap_or_default()
        .ends_with("event-processor:1"));
    assert!(settled(&described));
}
