//! `DynamoDbKnownGood` through the real aws-sdk-rust against the emulator: a run in one
//! process records what it verified; the next incident, in another process, picks it with
//! `Selector::LastKnownGood` and its plan names where the choice came from.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rollback_aws::{Aws, DynamoDbKnownGood};
use rollback_core::verify::check_bool;
use rollback_core::{
    ErrorKind, FakeTarget, FileLocks, KnownGoodStore, Outcome, Revision, RollbackTarget as _,
    Selector, Step, Transaction,
};
use rollback_testkit::AwsEmulator;

const TABLE: &str = "rollback-known-good";
const ENDPOINT_VAR: &str = "ROLLBACK_TEST_KNOWN_GOOD_ENDPOINT";
const STATE_VAR: &str = "ROLLBACK_TEST_KNOWN_GOOD_STATE";

/// The fake target, kept in a state file so that two processes see the same one.
fn api(state: &Path) -> FakeTarget {
    if state.exists() {
        return FakeTarget::open(state).unwrap();
    }
    FakeTarget::builder("api")
        .revision(Revision::new("14"))
        .revision(Revision::new("15"))
        .state_file(state)
        .build()
        .unwrap()
}

async fn store(endpoint: &str) -> DynamoDbKnownGood {
    let emu = AwsEmulator::connect(endpoint).await.unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    DynamoDbKnownGood::create_table(&aws, TABLE).await.unwrap()
}

/// Incident 1, in a child process: 15 -> 14, checked; prints its transaction id.
#[tokio::test]
#[ignore = "run as a child process by the test of this file"]
async fn first_incident_child() {
    let (Ok(endpoint), Ok(state)) = (std::env::var(ENDPOINT_VAR), std::env::var(STATE_VAR)) else {
        return;
    };
    let state = Path::new(&state);
    let dir = tempfile::tempdir().unwrap();
    let tx = Transaction::builder("first incident")
        .reason("release 15 is bad")
        .journal(dir.path().join("j.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .known_good(Arc::new(store(&endpoint).await))
        .step(
            Step::new(Arc::new(api(state)), Selector::Previous)
                .verify(check_bool("health", || async { true })),
        )
        .build()
        .unwrap();
    let report = tx.run().await.unwrap();
    println!("TX {} {}", tx.id(), report.outcome);
}

#[tokio::test]
async fn the_next_incident_in_another_process_picks_the_verified_revision() {
    let emu = AwsEmulator::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("api.json");
    let t = api(&state);
    let store = store(emu.endpoint()).await;
    // No record yet: the selector says so, in the dry run as in the run.
    let b = || {
        Transaction::builder("second incident")
            .reason("release 16 is bad")
            .journal(dir.path().join("second.jsonl"))
            .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
            .known_good(Arc::new(store.clone()))
            .step(Step::new(Arc::new(t.clone()), Selector::LastKnownGood))
            .build()
            .unwrap()
    };
    let e = b().dry_run().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(TABLE), "{e}");

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "first_incident_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(ENDPOINT_VAR, emu.endpoint())
        .env(STATE_VAR, &state)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let line = BufReader::new(&out.stdout[..])
        .lines()
        .map(Result::unwrap)
        .find(|l| l.starts_with("TX "))
        .expect("the child's transaction");
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts[2], "succeeded", "{line}");
    let first_tx = parts[1];
    let good = store.latest(&t.id()).await.unwrap().expect("the record");
    assert_eq!(
        (good.revision.as_str(), good.transaction.as_str()),
        ("14", first_tx)
    );

    // Release 16 goes out and is bad; the last known good is 14, not the previous 15.
    let t = api(&state);
    t.deploy(Revision::new("16")).unwrap();
    assert_eq!(t.current_id(), "16");
    let plan = b().dry_run().await.unwrap();
    assert_eq!(plan.steps[0].to.as_ref().unwrap().id, "14");
    let origin = plan.steps[0].origin.as_deref().unwrap();
    assert!(
        origin.contains(first_tx) && origin.contains("health"),
        "{origin}"
    );
    let report = b().run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(api(&state).current_id(), "14");
    // That run had no checks: it verified nothing, so the record is still the first's.
    let kept = store.latest(&t.id()).await.unwrap().unwrap();
    assert_eq!(kept.transaction, first_tx);
}
