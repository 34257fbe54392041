#![allow(clippy::unwrap_used)]
//! `SecretVersion` through the real AWS SDK against the AWS emulator.
//!
//! Runbook 001's "Configuration Rollback / Secrets Manager" and runbook 002's "Secret
//! Rotation Rollback" as tests: AWSCURRENT moves back, AWSPREVIOUS follows, and no secret
//! value appears in any output, error or journal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rollback_aws::{Aws, SecretVersion};
use rollback_core::conformance::{assert_conformance, Fixture};
use rollback_core::{
    ApplyOutcome, Change, ErrorKind, FileLocks, Outcome, Revision, RollbackTarget, Selector,
    Stability, Step, Transaction, TransactionBuilder,
};
use rollback_testkit::{count_in, AwsEmulator};
use serde_json::{json, Value};

const SECRET: &str = "agentauri/production/jwt-secret";
/// Values distinctive enough that finding one anywhere is a leak.
const V1: &str = "jwt-v1-Zq8Kx2mW7pLr4Tn";
const V2: &str = "jwt-v2-Hc5Vb9Ns3Qd6Yf1";
const V3: &str = "jwt-v3-Rt2Gm8Lp5Wz7Kc4";

/// One emulator per test: each `#[tokio::test]` has its own runtime.
struct Env {
    emu: AwsEmulator,
    /// The emulator's call counts right after seeding.
    baseline: Value,
    aws: Aws,
    target: SecretVersion,
    /// Version ids in the order the values were written (oldest first).
    versions: Vec<String>,
}

async fn env(values: &[&str]) -> Env {
    let emu = AwsEmulator::start().await.unwrap();
    let seeded = emu
        .seed(json!({ "secrets": [{ "name": SECRET, "values": values }] }))
        .await
        .unwrap();
    let s = &seeded["secrets"][0];
    let versions: Vec<String> = s["version_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("no version_ids in {seeded}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions.len(), values.len(), "{seeded}");
    assert_eq!(s["current"], json!(versions.last().unwrap()), "{seeded}");
    let baseline = emu.calls().await.unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let target = SecretVersion::new(&aws, SECRET).unwrap();
    Env {
        emu,
        baseline,
        aws,
        target,
        versions,
    }
}

/// Version id -> staging labels, as the emulator has them (DescribeSecret, a different
/// call from the one the target uses).
async fn stages(t: &SecretVersion) -> HashMap<String, Vec<String>> {
    let out = t
        .client()
        .await
        .unwrap()
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    out.version_ids_to_stages()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

fn holder(stages: &HashMap<String, Vec<String>>, stage: &str) -> Option<String> {
    stages
        .iter()
        .find(|(_, s)| s.iter().any(|x| x == stage))
        .map(|(v, _)| v.clone())
}

/// The value consumers get now (what an ECS task reads at start-up).
async fn value(t: &SecretVersion) -> String {
    t.client()
        .await
        .unwrap()
        .get_secret_value()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap()
        .secret_string()
        .unwrap()
        .to_string()
}

impl Env {
    /// How many times `op` was called since seeding.
    async fn calls(&self, op: &str) -> u64 {
        count_in(&self.emu.calls().await.unwrap(), op) - count_in(&self.baseline, op)
    }
}

fn transaction(dir: &Path, name: &str) -> TransactionBuilder {
    Transaction::builder(name)
        .reason("integration test")
        .journal(dir.join(format!("{name}.jsonl")))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
}

fn step(t: &SecretVersion, selector: Selector) -> Step {
    Step::new(Arc::new(t.clone()) as Arc<dyn RollbackTarget>, selector)
        .timeout(Duration::from_secs(30))
}

fn assert_no_value(what: &str, text: &str) {
    for v in [V1, V2, V3] {
        assert!(
            !text.contains(v),
            "a secret value appears in {what}: {text}"
        );
    }
}

#[tokio::test]
async fn conforms_to_the_rollback_target_contract() {
    let e = env(&[V1, V2]).await;
    let fixture = Fixture {
        unknown_revision: "999".into(),
        secret_canary: Some(V2.into()),
        ..Fixture::default()
    };
    assert_conformance(&e.target, &fixture).await;
    assert_eq!(
        holder(&stages(&e.target).await, "AWSCURRENT"),
        Some(e.versions[1].clone())
    );
    assert_eq!(value(&e.target).await, V2);
}

#[tokio::test]
async fn history_is_the_labelled_versions_newest_first() {
    let e = env(&[V1, V2, V3]).await;
    let history = e.target.history().await.unwrap();
    let ids: Vec<&str> = history.iter().map(|r| r.id.as_str()).collect();
    // V1 lost its labels when V3 was written: deprecated versions are not revisions.
    assert_eq!(
        ids,
        [e.versions[2].as_str(), e.versions[1].as_str()],
        "{history:?}"
    );
    assert_eq!(history[0].facts["stages"], "AWSCURRENT");
    assert_eq!(history[1].facts["stages"], "AWSPREVIOUS");
    assert!(
        history.iter().all(|r| r.created_at.is_some()),
        "{history:?}"
    );
    assert_eq!(e.target.current().await.unwrap().id, e.versions[2]);
    assert_no_value("history()", &format!("{history:?}"));

    // The spec is data, rebuilt by the registry (journal resume) with the same identity.
    let spec = e.target.spec();
    assert_eq!(spec.params["secret_id"], json!(SECRET));
    let rebuilt = rollback_aws::registry()
        .build(&e.target.id(), &spec)
        .await
        .unwrap();
    assert_eq!(rebuilt.id(), e.target.id());
    assert_eq!(rebuilt.spec(), spec);
}

/// Runbook 001: AWSCURRENT goes back to the AWSPREVIOUS version, AWSPREVIOUS moves to the
/// version it left; consumers read the old value. No value in any output or the journal.
#[tokio::test]
async fn runbook_001_awscurrent_back_to_awsprevious() {
    let e = env(&[V1, V2]).await;
    let (v1, v2) = (e.versions[0].clone(), e.versions[1].clone());
    let previous = e.target.resolve(&Selector::Previous).await.unwrap();
    assert_eq!(previous.id, v1);

    let dir = tempfile::tempdir().unwrap();
    let report = transaction(dir.path(), "runbook-001")
        .reason("JWT secret rotation broke logins")
        .step(step(&e.target, Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let now = stages(&e.target).await;
    assert_eq!(holder(&now, "AWSCURRENT"), Some(v1.clone()), "{now:?}");
    assert_eq!(holder(&now, "AWSPREVIOUS"), Some(v2.clone()), "{now:?}");
    assert_eq!(value(&e.target).await, V1);
    assert_eq!(e.calls("UpdateSecretVersionStage").await, 1);
    assert_eq!(
        e.calls("GetSecretValue").await,
        1,
        "only the test's own read"
    );

    // Previous is AWSPREVIOUS again: a second rollback undoes the first.
    assert_eq!(e.target.resolve(&Selector::Previous).await.unwrap().id, v2);

    let journal = std::fs::read_to_string(&report.journal_path).unwrap();
    assert!(journal.contains(&v1) && journal.contains(&v2), "{journal}");
    assert_no_value("the journal", &journal);
    assert_no_value("the report", &format!("{report}\n{report:?}"));
    assert_no_value(
        "the report as JSON",
        &serde_json::to_string(&report).unwrap(),
    );
    assert_no_value("the target's Debug", &format!("{:?}", e.target));
}

#[tokio::test]
async fn apply_is_idempotent_and_waits_for_awscurrent() {
    let e = env(&[V1, V2]).await;
    let (v1, v2) = (e.versions[0].clone(), e.versions[1].clone());
    let change = e.target.plan(&Revision::new(v1.clone())).await.unwrap();
    assert_eq!(change.from.id, v2);
    assert!(change.to.facts.contains_key("stages"), "{change:?}");
    let text = change.to_string();
    assert!(
        text.contains(&format!("~ fact AWSCURRENT: {v2} -> {v1}")),
        "{text}"
    );
    // Moving the label is atomic: AWSCURRENT elsewhere is never "on its way" (after an
    // apply it means someone else moved it), so it fails rather than waits.
    assert_eq!(
        e.target.check_stable(&change.to).await.unwrap(),
        Stability::Failed(format!(
            "AWSCURRENT is on {v2}, not {v1}; someone else changed it"
        ))
    );
    assert_eq!(
        e.target.apply(&change).await.unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(
        e.target.check_stable(&change.to).await.unwrap(),
        Stability::Stable
    );
    assert_eq!(
        e.target.apply(&change).await.unwrap(),
        ApplyOutcome::AlreadyCurrent
    );
    // The reverse change (compensation) puts it back.
    assert_eq!(
        e.target.apply(&change.reverse()).await.unwrap(),
        ApplyOutcome::Applied
    );
    assert_eq!(value(&e.target).await, V2);
    assert_eq!(e.calls("UpdateSecretVersionStage").await, 2);
}

/// Someone moves AWSCURRENT after the plan: apply refuses and leaves their change alone.
#[tokio::test]
async fn a_label_move_after_the_plan_is_a_conflict() {
    let e = env(&[V1, V2, V3]).await;
    let (v1, v2, v3) = (
        e.versions[0].clone(),
        e.versions[1].clone(),
        e.versions[2].clone(),
    );
    let previous = e.target.resolve(&Selector::Previous).await.unwrap();
    assert_eq!(previous.id, v2);
    let change = e.target.plan(&previous).await.unwrap();
    e.target
        .client()
        .await
        .unwrap()
        .update_secret_version_stage()
        .secret_id(SECRET)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&v1)
        .remove_from_version_id(&v3)
        .send()
        .await
        .unwrap();
    let err = e.target.apply(&change).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(err.to_string().contains(SECRET), "{err}");
    assert!(err.to_string().contains(&v1), "{err}");
    assert_no_value("a conflict error", &format!("{err}\n{err:?}"));
    assert_eq!(holder(&stages(&e.target).await, "AWSCURRENT"), Some(v1));
    assert_eq!(
        e.calls("UpdateSecretVersionStage").await,
        1,
        "only the other party's move"
    );
}

/// Bad input fails before anything changes, with typed errors that name the target.
#[tokio::test]
async fn bad_input_is_refused_before_anything_changes() {
    let e = env(&[V1, V2]).await;
    let v2 = e.versions[1].clone();
    let dir = tempfile::tempdir().unwrap();

    let unknown = SecretVersion::new(&e.aws, "agentauri/production/no-such-secret").unwrap();
    let err = unknown.current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no-such-secret"), "{err}");
    let err = transaction(dir.path(), "unknown-secret")
        .step(step(&unknown, Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no-such-secret"), "{err}");

    let err = e.target.resolve(&Selector::exact("42")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(SECRET), "{err}");
    let err = transaction(dir.path(), "unknown-version")
        .step(step(&e.target, Selector::exact("42")))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = e.target.plan(&Revision::new("42")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // A hand-made change to an unknown version is refused before anything is sent.
    let change = Change::new(
        e.target.id(),
        Revision::new(v2.clone()),
        Revision::new("42"),
    );
    let err = e.target.apply(&change).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(SECRET), "{err}");

    // Already at the version: nothing to roll back.
    let err = transaction(dir.path(), "already-there")
        .step(step(&e.target, Selector::exact(v2.clone())))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    for id in ["", "   "] {
        let err = SecretVersion::new(&e.aws, id).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().starts_with("secret-version/"), "{err}");
        assert!(err.to_string().contains("secret name is empty"), "{err}");
    }

    let now = stages(&e.target).await;
    assert_eq!(holder(&now, "AWSCURRENT"), Some(v2), "{now:?}");
    for op in [
        "UpdateSecretVersionStage",
        "PutSecretValue",
        "UpdateSecret",
        "GetSecretValue",
    ] {
        assert_eq!(e.calls(op).await, 0, "{op}");
    }
}
