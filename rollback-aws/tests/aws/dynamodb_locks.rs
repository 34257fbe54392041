//! `DynamoDbLocks` through the real aws-sdk-rust against the emulator (moto's DynamoDB,
//! with its condition expressions): the lock contract, its calls, two processes with
//! nothing shared but the table, a holder killed with SIGKILL, and fencing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rollback_aws::{Aws, DynamoDbLocks};
use rollback_core::conformance::locks::assert_lock_conformance;
use rollback_core::conformance::processes::{contender, Contenders};
use rollback_core::verify::{check_fn, CheckOutcome};
use rollback_core::{
    ErrorKind, FakeTarget, Holder, LockManager, Outcome, Revision, RollbackTarget as _, Selector,
    Step, Transaction,
};
use rollback_testkit::{gained, AwsEmulator};

const TABLE: &str = "rollback-locks";
/// Set in the children this file starts: the emulator's endpoint.
const ENDPOINT_VAR: &str = "ROLLBACK_TEST_DYNAMODB_ENDPOINT";

async fn table(emu: &AwsEmulator) -> (Aws, DynamoDbLocks) {
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let locks = DynamoDbLocks::create_table(&aws, TABLE).await.unwrap();
    (aws, locks)
}

/// One run of `t` back to its previous revision, its leases in `locks`.
async fn run_one(
    name: &str,
    locks: impl LockManager + 'static,
    t: &FakeTarget,
) -> rollback_core::Result<rollback_core::Report> {
    let dir = tempfile::tempdir().unwrap();
    Transaction::builder(name)
        .reason("test")
        .journal(dir.path().join("j.jsonl"))
        .locks(Arc::new(locks))
        .step(Step::new(Arc::new(t.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
}

fn api() -> FakeTarget {
    FakeTarget::builder("api")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn dynamodb_locks_conform() {
    let emu = AwsEmulator::start().await.unwrap();
    let (aws, locks) = table(&emu).await;
    assert_lock_conformance(&locks).await;
    // The helper finds the table it made.
    DynamoDbLocks::create_table(&aws, TABLE).await.unwrap();
}

#[tokio::test]
async fn bad_tables_are_refused_before_anything_changes() {
    let emu = AwsEmulator::start().await.unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let e = DynamoDbLocks::new(&aws, "no spaces allowed").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // A table that does not exist: the run stops at locking, the target untouched.
    let missing = DynamoDbLocks::new(&aws, "never-created").unwrap();
    let t = api();
    let e = run_one("missing table", missing, &t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.to_string().contains("never-created")
            && e.to_string().contains("lock table")
            && e.to_string().contains("create_table"),
        "{e}"
    );
    assert_eq!(t.apply_count(), 0);
}

#[tokio::test]
async fn a_run_costs_four_lock_calls_per_target() {
    let emu = AwsEmulator::start().await.unwrap();
    let (_aws, locks) = table(&emu).await;
    let t = api();
    let before = emu.calls().await.unwrap();
    let report = run_one("counted", locks.clone(), &t).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    // Acquire: a consistent read and a conditional put. The fence before the apply: one
    // conditional update (it renews). Release: one conditional update.
    let got = gained(&before, &emu.calls().await.unwrap());
    let want = [("GetItem", 1), ("PutItem", 1), ("UpdateItem", 2)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    assert_eq!(got, want);
    assert_eq!(locks.current(&t.id()).await.unwrap(), None, "given back");
}

/// The child of the two-process tests (nothing shared with the other process but the lock
/// table): see `rollback_core::conformance::processes`.
#[tokio::test]
#[ignore = "run as a child process by the tests of this file"]
async fn contender_child() {
    let Ok(endpoint) = std::env::var(ENDPOINT_VAR) else {
        return;
    };
    let emu = AwsEmulator::connect(endpoint).await.unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    contender(Arc::new(DynamoDbLocks::new(&aws, TABLE).unwrap())).await;
}

fn contenders(emu: &AwsEmulator) -> Contenders {
    Contenders::new("dynamodb_locks::contender_child").env(ENDPOINT_VAR, emu.endpoint())
}

#[tokio::test]
async fn two_processes_on_one_target_exactly_one_proceeds_every_time() {
    let emu = AwsEmulator::start().await.unwrap();
    let (_aws, locks) = table(&emu).await;
    contenders(&emu)
        .assert_exactly_one_proceeds(50, &locks)
        .await;
}

#[tokio::test]
async fn a_holder_killed_with_sigkill_is_taken_over_after_its_ttl() {
    let emu = AwsEmulator::start().await.unwrap();
    let (_aws, locks) = table(&emu).await;
    contenders(&emu)
        .assert_killed_holder_is_taken_over(Duration::from_secs(2), Arc::new(locks))
        .await;
}

#[tokio::test]
async fn a_lease_taken_over_in_the_table_stops_the_run_before_its_next_change() {
    let emu = AwsEmulator::start().await.unwrap();
    let (_aws, locks) = table(&emu).await;
    let a = FakeTarget::builder("a")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .build()
        .unwrap();
    let b = FakeTarget::builder("b")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .build()
        .unwrap();
    let (store, bid) = (locks.clone(), b.id());
    // While stage 0 verifies, b's lease lapses in the table and bob takes it.
    let thief = check_fn("take b's lease", move || {
        let (store, bid) = (store.clone(), bid.clone());
        async move {
            // Renewed for no time, as if its holder had stopped renewing it.
            let theirs = store.current(&bid).await?.expect("the run's lease");
            store.renew(&theirs, Duration::ZERO).await?;
            let bob = Holder {
                name: "bob@laptop".into(),
                transaction: "bobs-run".into(),
                journal: None,
            };
            store.acquire(&bid, &bob, Duration::from_secs(300)).await?;
            Ok(CheckOutcome::pass("b's lease is bob's now"))
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let report = Transaction::builder("fenced")
        .reason("fencing test")
        .journal(dir.path().join("j.jsonl"))
        .locks(Arc::new(locks.clone()))
        .step(Step::new(Arc::new(a.clone()), Selector::Previous).verify(thief))
        .stage()
        .step(Step::new(Arc::new(b.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{report}");
    assert_eq!(b.apply_count(), 0, "b was not changed");
    assert_eq!(
        a.current_id(),
        "1",
        "a was not put back: someone else holds the run"
    );
    let err = report.error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::LeaseLost, "{report}");
    assert!(err.message.contains("bob@laptop"), "{}", err.message);
    let held = locks.current(&b.id()).await.unwrap().unwrap();
    assert_eq!(held.holder.transaction, "bobs-run", "bob's lease untouched");
}

#[tokio::test]
async fn a_throttled_lock_table_is_retried_and_the_run_goes_on() {
    let emu = AwsEmulator::start().await.unwrap();
    let (_aws, locks) = table(&emu).await;
    // Two throttled reads (the acquire's) and two throttled updates (the fence's renewal
    // before the apply, then the release): each is tried again, or, for the renewal,
    // trusted while the lease has time left.
    emu.inject("GetItem", "throttle", 2, 0).await.unwrap();
    emu.inject("UpdateItem", "throttle", 2, 0).await.unwrap();
    let t = api();
    let report = run_one("throttled", locks.clone(), &t).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.current_id(), "1");
    let calls = emu.calls().await.unwrap();
    assert_eq!(
        rollback_testkit::injected_in(&calls, "throttle"),
        4,
        "{calls}"
    );
    assert_eq!(
        locks.current(&t.id()).await.unwrap(),
        None,
        "given back in the end"
    );
}
