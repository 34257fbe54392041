//! `S3Journals` through the real aws-sdk-rust against the emulator (moto's S3 with
//! `If-None-Match`): a run killed with SIGKILL after its apply, on a "machine" whose files
//! are gone, finished from its S3 journal by another process without applying anything
//! twice, its leases in DynamoDB; transactions listed from the bucket.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use rollback_aws::{Aws, DynamoDbLocks, S3Journals};
use rollback_core::journal::{list_store, parse_records, Entry, JournalStore};
use rollback_core::{
    resume_from_store, EventKind, FakeTarget, Outcome, Registry, ResumeOptions, Revision, Selector,
    Step, Transaction,
};
use rollback_testkit::AwsEmulator;

const BUCKET: &str = "team-journals";
const ENDPOINT_VAR: &str = "ROLLBACK_TEST_S3_ENDPOINT";
const DIR_VAR: &str = "ROLLBACK_TEST_S3_DIR";

async fn aws(endpoint: &str) -> Aws {
    let emu = AwsEmulator::connect(endpoint).await.unwrap();
    Aws::from_sdk_config(&emu.sdk_config().await)
}

fn api(state: &Path) -> FakeTarget {
    if state.exists() {
        return FakeTarget::open(state).unwrap();
    }
    FakeTarget::builder("api")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .state_file(state)
        .build()
        .unwrap()
}

/// The run on the machine that dies: prints `TX <id>`, then `APPLIED` once its apply is
/// journaled, and waits to be killed (its target never converges).
#[tokio::test]
#[ignore = "run as a child process by the test of this file"]
async fn dying_runner_child() {
    let (Ok(endpoint), Ok(dir)) = (std::env::var(ENDPOINT_VAR), std::env::var(DIR_VAR)) else {
        return;
    };
    let aws = aws(&endpoint).await;
    let runner = tempfile::tempdir().unwrap();
    let t = api(&Path::new(&dir).join("api.json"));
    t.never_stable("1");
    let (b, mut events) = Transaction::builder("on a runner")
        .reason("release 2 is bad")
        .journal(runner.path().join("journal.jsonl"))
        .journal_store(Arc::new(
            S3Journals::new(&aws, BUCKET, "rollback/journals").unwrap(),
        ))
        .locks(Arc::new(
            DynamoDbLocks::new(&aws, "rollback-locks").unwrap(),
        ))
        .step(Step::new(Arc::new(t), Selector::Previous))
        .events();
    let tx = b.build().unwrap();
    println!("TX {}", tx.id());
    let run = tokio::spawn(async move { tx.run().await });
    while let Some(e) = events.recv().await {
        if e.kind == EventKind::Applied {
            println!("APPLIED");
        }
    }
    let _ = run.await;
}

#[tokio::test]
async fn a_run_killed_on_its_runner_is_finished_from_s3_by_another_process() {
    let emu = AwsEmulator::start().await.unwrap();
    let aws = aws(emu.endpoint()).await;
    S3Journals::create_bucket(&aws, BUCKET, "").await.unwrap();
    DynamoDbLocks::create_table(&aws, "rollback-locks")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("api.json");
    assert_eq!(api(&state).current_id(), "2");

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "s3_journals::dying_runner_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--quiet",
        ])
        .env(ENDPOINT_VAR, emu.endpoint())
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut tx = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("TX ") {
            tx = Some(id.to_string());
        }
        if line == "APPLIED" {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let tx = tx.expect("the child's transaction id");
    assert_eq!(api(&state).apply_count(), 1);

    let store: Arc<dyn JournalStore> =
        Arc::new(S3Journals::new(&aws, BUCKET, "rollback/journals").unwrap());
    let before = parse_records("s3", &store.read(&tx).await.unwrap()).unwrap();
    let names: Vec<String> = before.iter().map(|r| r.entry.name()).collect();
    assert_eq!(names, ["begin", "planned", "locked", "intent", "applied"]);
    let listed = list_store(&*store).await.unwrap();
    assert_eq!((listed.len(), listed[0].id.as_str()), (1, tx.as_str()));
    assert_eq!(listed[0].outcome, None, "the killed run never ended");

    // Another machine: a fresh folder, the same bucket and lock table. The target
    // converges now.
    let t = api(&state);
    t.clear_faults();
    let mut registry = Registry::with_builtins();
    rollback_aws::register_with(&mut registry, aws.clone());
    let laptop = tempfile::tempdir().unwrap();
    let report = resume_from_store(
        store.clone(),
        &tx,
        laptop.path().join("resumed.jsonl"),
        ResumeOptions {
            registry,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(api(&state).apply_count(), 1, "nothing applied twice");
    assert_eq!(api(&state).current_id(), "1");
    let after = parse_records("s3", &store.read(&tx).await.unwrap()).unwrap();
    assert!(after.len() > before.len());
    assert!(after
        .iter()
        .any(|r| matches!(r.entry, Entry::Resumed { .. })));
    let listed = list_store(&*store).await.unwrap();
    assert_eq!(listed[0].outcome, Some(Outcome::Succeeded));
}
