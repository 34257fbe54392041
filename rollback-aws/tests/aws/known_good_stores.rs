//! `DynamoDbKnownGood` and `S3KnownGood` through the real aws-sdk-rust against the
//! emulator: a run in one process records what it verified; the next incident, in another
//! process, picks it with `Selector::LastKnownGood` and its plan names where the choice
//! came from; what each costs in calls.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use chrono::TimeZone as _;
use rollback_aws::{Aws, DynamoDbKnownGood, S3KnownGood};
use rollback_core::verify::check_bool;
use rollback_core::{
    ErrorKind, FakeTarget, FileLocks, KnownGood, KnownGoodStore, Outcome, Revision,
    RollbackTarget as _, Selector, Step, Transaction,
};
use rollback_testkit::{gained, AwsEmulator};

const TABLE: &str = "rollback-known-good";
const BUCKET: &str = "team-state";
const ENDPOINT_VAR: &str = "ROLLBACK_TEST_KNOWN_GOOD_ENDPOINT";
const STATE_VAR: &str = "ROLLBACK_TEST_KNOWN_GOOD_STATE";
const STORE_VAR: &str = "ROLLBACK_TEST_KNOWN_GOOD_STORE";

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

/// The store named `kind` (`dynamodb`: its table made; `s3`: in a bucket made by the test).
async fn store(endpoint: &str, kind: &str) -> Arc<dyn KnownGoodStore> {
    let emu = AwsEmulator::connect(endpoint).await.unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    match kind {
        "dynamodb" => Arc::new(DynamoDbKnownGood::create_table(&aws, TABLE).await.unwrap()),
        "s3" => Arc::new(
            S3KnownGood::create_bucket(&aws, BUCKET, "rollback/known-good")
                .await
                .unwrap(),
        ),
        other => panic!("no store {other:?}"),
    }
}

/// Incident 1, in a child process: 15 -> 14, checked; prints its transaction id.
#[tokio::test]
#[ignore = "run as a child process by the test of this file"]
async fn first_incident_child() {
    let (Ok(endpoint), Ok(state), Ok(kind)) = (
        std::env::var(ENDPOINT_VAR),
        std::env::var(STATE_VAR),
        std::env::var(STORE_VAR),
    ) else {
        return;
    };
    let state = Path::new(&state);
    let dir = tempfile::tempdir().unwrap();
    let tx = Transaction::builder("first incident")
        .reason("release 15 is bad")
        .journal(dir.path().join("j.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .known_good(store(&endpoint, &kind).await)
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
async fn on_dynamodb_the_next_incident_in_another_process_picks_the_verified_revision() {
    let emu = AwsEmulator::start().await.unwrap();
    next_incident_picks_the_verified_revision(&emu, "dynamodb", TABLE).await;
}

#[tokio::test]
async fn on_s3_the_next_incident_in_another_process_picks_the_verified_revision() {
    let emu = AwsEmulator::start().await.unwrap();
    next_incident_picks_the_verified_revision(&emu, "s3", BUCKET).await;
}

async fn next_incident_picks_the_verified_revision(emu: &AwsEmulator, kind: &str, named: &str) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("api.json");
    let t = api(&state);
    let store = store(emu.endpoint(), kind).await;
    // No record yet: the selector says so, in the dry run as in the run.
    let b = || {
        Transaction::builder("second incident")
            .reason("release 16 is bad")
            .journal(dir.path().join("second.jsonl"))
            .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
            .known_good(store.clone())
            .step(Step::new(Arc::new(t.clone()), Selector::LastKnownGood))
            .build()
            .unwrap()
    };
    let e = b().dry_run().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(named), "{e}");

    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "known_good_stores::first_incident_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(ENDPOINT_VAR, emu.endpoint())
        .env(STATE_VAR, &state)
        .env(STORE_VAR, kind)
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

fn good(target: &FakeTarget, revision: &str, at_ms: i64, tx: &str) -> KnownGood {
    KnownGood {
        target: target.id(),
        revision: revision.into(),
        verified_at: chrono::Utc.timestamp_millis_opt(at_ms).unwrap(),
        transaction: tx.into(),
        name: "incident".into(),
        checks: vec!["health".into()],
    }
}

/// S3 keeps every record and reads the newest, whatever order they were written in: one
/// write to record, a one-key listing and one read to find the newest.
#[tokio::test]
async fn s3_keeps_every_record_and_reads_the_newest_in_two_calls() {
    let emu = AwsEmulator::start().await.unwrap();
    let store = store(emu.endpoint(), "s3").await;
    let dir = tempfile::tempdir().unwrap();
    let t = api(&dir.path().join("api.json"));
    let other = FakeTarget::builder("api-2")
        .revision(Revision::new("1"))
        .build()
        .unwrap();
    assert_eq!(store.latest(&t.id()).await.unwrap(), None);

    let newer = good(&t, "14", 1_800_000_000_000, "tx-b");
    let older = good(&t, "12", 1_700_000_000_000, "tx-a");
    let before = emu.calls().await.unwrap();
    store.record(&newer).await.unwrap();
    // S3's PutObject is counted as CopyObject by the emulator (see its README).
    let got = gained(&before, &emu.calls().await.unwrap());
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        [("CopyObject".to_string(), 1)]
    );
    store.record(&older).await.unwrap();
    store
        .record(&good(&other, "1", 1_900_000_000_000, "tx-c"))
        .await
        .unwrap();

    let before = emu.calls().await.unwrap();
    assert_eq!(store.latest(&t.id()).await.unwrap(), Some(newer.clone()));
    let got = gained(&before, &emu.calls().await.unwrap());
    let want = [("GetObject", 1), ("ListObjectsV2", 1)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(got, want);
    // The same record twice is one record; both revisions are kept.
    store.record(&newer).await.unwrap();
    assert_eq!(store.latest(&t.id()).await.unwrap(), Some(newer));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&emu.sdk_config().await)
            .force_path_style(true)
            .build(),
    );
    let listed = s3
        .list_objects_v2()
        .bucket(BUCKET)
        .prefix("rollback/known-good/")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.contents().len(), 3, "{listed:?}");
}

#[tokio::test]
async fn a_bucket_name_s3_refuses_is_refused_before_any_call() {
    // Nothing listens there: a call would fail otherwise.
    let aws =
        Aws::from_sdk_config(&rollback_testkit::emulator_sdk_config("http://127.0.0.1:9").await);
    let e = S3KnownGood::new(&aws, "Team_State", "").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("Team_State"), "{e}");
}
