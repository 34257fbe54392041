//! Exact API calls by operation of one rollback per target kind, run through a
//! transaction on the emulator (preflight, apply, the wait, and a temporary step's revert):
//! calls are latency and rate-limit budget on real AWS, so a regression shows here. (ECS
//! and Lambda have their own, with the fleets and selectors that matter for them, in
//! `ecs.rs` and `lambda.rs`.)
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rollback_aws::{Aws, PipelineTransition, SecretVersion};
use rollback_core::{FileLocks, Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_testkit::{gained, AwsEmulator};
use serde_json::json;

fn ops(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(op, n)| (op.to_string(), *n)).collect()
}

async fn run_one(emu: &AwsEmulator, name: &str, step: Step) -> BTreeMap<String, u64> {
    let dir = tempfile::tempdir().unwrap();
    let before = emu.calls().await.unwrap();
    let report = Transaction::builder(name)
        .reason("call counts")
        .journal(dir.path().join("j.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .step(step.timeout(Duration::from_secs(30)))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    gained(&before, &emu.calls().await.unwrap())
}

#[tokio::test]
async fn each_kind_makes_the_calls_it_needs_and_no_more() {
    let emu = AwsEmulator::start().await.unwrap();
    emu.seed(json!({
        "secrets": [{"name": "prod/db", "values": ["one", "two", "three"]}],
        "codepipeline": [{"name": "Apgms", "stages": ["Source", "Build", "Deploy"]}],
    }))
    .await
    .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);

    // A secret back to AWSPREVIOUS: one listing in preflight, the apply's listing (the
    // label's holder, sent as RemoveFromVersionId) and its move, one look.
    let secret = SecretVersion::new(&aws, "prod/db").unwrap();
    let got = run_one(
        &emu,
        "secret",
        Step::new(
            Arc::new(secret) as Arc<dyn RollbackTarget>,
            Selector::Previous,
        ),
    )
    .await;
    assert_eq!(
        got,
        ops(&[("ListSecretVersionIds", 3), ("UpdateSecretVersionStage", 1)])
    );

    // A pipeline frozen for the run and opened after it (a temporary step): each way, one
    // read before the change and one look after it; preflight reads once.
    let freeze = PipelineTransition::new(&aws, "Apgms", "Deploy").unwrap();
    let got = run_one(
        &emu,
        "freeze",
        Step::new(Arc::new(freeze), Selector::exact("disabled")).temporary(),
    )
    .await;
    assert_eq!(
        got,
        ops(&[
            ("DisableStageTransition", 1),
            ("EnableStageTransition", 1),
            ("GetPipelineState", 5),
        ])
    );
}
