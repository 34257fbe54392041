//! Fencing: a run that loses a lease (taken over, or not renewed before it lapsed) makes no
#![allow(clippy::unwrap_used)]
//! further change, journals why, and leaves what it had changed to a person.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rollback_core::journal::{read_journal, Entry};
use rollback_core::verify::{check_fn, CheckOutcome};
use rollback_core::{
    action_fn, ErrorKind, FakeTarget, FileLocks, Holder, Lease, LockManager, Outcome, Result,
    Revision, RollbackTarget as _, Selector, Step, StepStatus, TargetId, Transaction,
};

fn target(name: &str) -> FakeTarget {
    FakeTarget::builder(name)
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .build()
        .unwrap()
}

/// A transaction of two stages: `a` verified by `check`, then `b`; leases from `locks`.
fn two_stages(
    dir: &std::path::Path,
    locks: Arc<dyn LockManager>,
    a: &FakeTarget,
    check: impl Into<rollback_core::Check>,
    b: &FakeTarget,
) -> rollback_core::TransactionBuilder {
    Transaction::builder("fencing")
        .reason("fencing test")
        .journal(dir.join("j.jsonl"))
        .locks(locks)
        .step(Step::new(Arc::new(a.clone()), Selector::Previous).verify(check))
        .stage()
        .step(Step::new(Arc::new(b.clone()), Selector::Previous))
}

/// Puts another holder's lease on `t` in `locks`, as when the run's lease expired in the
/// store and someone else took it: the run's copy still looks valid to the run.
async fn take_over(locks: &FileLocks, t: &TargetId) -> Lease {
    let mut theirs = locks.current(t).await.unwrap().expect("the run's lease");
    theirs.expires_at = chrono::Utc::now() - chrono::Duration::seconds(1);
    std::fs::write(locks.path_for(t), serde_json::to_string(&theirs).unwrap()).unwrap();
    let bob = Holder {
        name: "bob@laptop".into(),
        transaction: "bobs-run".into(),
        journal: None,
    };
    let lease = locks
        .acquire(t, &bob, Duration::from_secs(300))
        .await
        .unwrap();
    assert!(lease.token > theirs.token, "the takeover's token grows");
    lease
}

#[tokio::test]
async fn a_lease_taken_over_mid_run_stops_the_run_before_its_next_change() {
    let dir = tempfile::tempdir().unwrap();
    let locks = FileLocks::new(dir.path().join("locks"));
    let (a, b) = (target("a"), target("b"));
    let (a_id, b_id) = (a.id(), b.id());
    let (store, bid) = (locks.clone(), b_id.clone());
    // Stage 1's target is taken over while stage 0's check runs.
    let thief = check_fn("take b's lease", move || {
        let (store, bid) = (store.clone(), bid.clone());
        async move {
            take_over(&store, &bid).await;
            Ok(CheckOutcome::pass("b's lease is bob's now"))
        }
    });
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = ran.clone();
    let report = two_stages(dir.path(), Arc::new(locks.clone()), &a, thief, &b)
        .on_failure(action_fn("maintenance page", move || {
            let r2 = r2.clone();
            async move {
                r2.store(true, Ordering::SeqCst);
                Ok("on".to_string())
            }
        }))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();

    assert_eq!(report.outcome, Outcome::Failed, "{report}");
    assert_eq!(b.apply_count(), 0, "b was not changed: {report}");
    assert_eq!(b.current_id(), "2");
    // a was changed before the loss and is not put back: someone else owns the run's
    // targets now. A person is told.
    assert_eq!(a.apply_count(), 1, "a was not put back: {report}");
    assert_eq!(a.current_id(), "1");
    let err = report.error.as_ref().expect("the run's error");
    assert_eq!(err.kind, ErrorKind::LeaseLost, "{report}");
    assert!(err.message.contains("bob@laptop"), "{}", err.message);
    let about_a: Vec<_> = report
        .needs_attention
        .iter()
        .filter(|n| n.target.as_ref() == Some(&a_id))
        .collect();
    assert_eq!(about_a.len(), 1, "{report}");
    assert!(
        about_a[0].message.contains("lost its lease"),
        "{}",
        about_a[0]
    );
    let statuses: Vec<StepStatus> = report.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [StepStatus::CompensationFailed, StepStatus::Failed],
        "{report}"
    );
    // The on-failure action changes things too: not run, and reported.
    assert!(!ran.load(Ordering::SeqCst));
    assert!(!report.actions[0].ok && report.actions[0].message.contains("not run"));
    // The journal says why, on the step it stopped.
    let records = read_journal(dir.path().join("j.jsonl")).unwrap();
    let failed = records
        .iter()
        .find_map(|r| match &r.entry {
            Entry::StepFailed {
                target,
                error,
                maybe_applied,
                ..
            } if target == &b_id => Some((error.clone(), *maybe_applied)),
            _ => None,
        })
        .expect("b's step_failed record");
    assert_eq!(failed.0.kind, ErrorKind::LeaseLost);
    assert!(!failed.1, "b was not maybe-applied");
    assert!(
        !records
            .iter()
            .any(|r| matches!(&r.entry, Entry::Intent { target, .. } if target == &b_id)),
        "no intent for b: nothing was about to change it"
    );
    // Bob's lease is untouched by the run's release.
    let held = locks.current(&b_id).await.unwrap().unwrap();
    assert_eq!(held.holder.transaction, "bobs-run");
}

/// File leases whose renewals fail (the store unreachable) while `down` is set, or for the
/// next `blips` renewals.
#[derive(Debug)]
struct Unreachable {
    inner: FileLocks,
    down: AtomicBool,
    blips: AtomicU32,
    renewals: AtomicU32,
}

#[async_trait]
impl LockManager for Unreachable {
    async fn acquire(&self, t: &TargetId, h: &Holder, ttl: Duration) -> Result<Lease> {
        self.inner.acquire(t, h, ttl).await
    }
    async fn renew(&self, lease: &Lease, ttl: Duration) -> Result<Lease> {
        self.renewals.fetch_add(1, Ordering::SeqCst);
        let blip = self
            .blips
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if blip || self.down.load(Ordering::SeqCst) {
            return Err(rollback_core::Error::backend(
                lease.target.to_string(),
                "connection refused",
                true,
            ));
        }
        self.inner.renew(lease, ttl).await
    }
    async fn current(&self, t: &TargetId) -> Result<Option<Lease>> {
        self.inner.current(t).await
    }
    async fn release(&self, lease: &Lease) -> Result<()> {
        self.inner.release(lease).await
    }
}

fn unreachable(dir: &std::path::Path) -> Arc<Unreachable> {
    Arc::new(Unreachable {
        inner: FileLocks::new(dir.join("locks")),
        down: AtomicBool::new(false),
        blips: AtomicU32::new(0),
        renewals: AtomicU32::new(0),
    })
}

#[tokio::test]
async fn a_lock_store_down_past_the_ttl_stops_the_run_before_its_next_change() {
    let dir = tempfile::tempdir().unwrap();
    let locks = unreachable(dir.path());
    let (a, b) = (target("a"), target("b"));
    let (l2, bid) = (locks.clone(), b.id());
    // While stage 0 verifies, the store goes down until b's lease has lapsed by the
    // store's own record.
    let outage = check_fn("store outage", move || {
        let (locks, bid) = (l2.clone(), bid.clone());
        async move {
            locks.down.store(true, Ordering::SeqCst);
            let lapses = locks
                .inner
                .current(&bid)
                .await?
                .expect("b's lease")
                .expires_at;
            let left = (lapses - chrono::Utc::now()).to_std().unwrap_or_default();
            // Waiting out a TTL is what is under test: time is the condition here.
            tokio::time::sleep(left + Duration::from_millis(50)).await;
            Ok(CheckOutcome::pass("b's lease has lapsed"))
        }
    });
    let report = two_stages(dir.path(), locks.clone(), &a, outage, &b)
        .lease_ttl(Duration::from_secs(1))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{report}");
    assert_eq!(b.apply_count(), 0, "b was not changed");
    assert_eq!(a.current_id(), "1", "a was not put back");
    let err = report.error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::LeaseLost, "{report}");
    assert!(
        err.message.contains("not renewed before it lapsed")
            && err.message.contains("connection refused"),
        "{}",
        err.message
    );
    assert!(
        locks.renewals.load(Ordering::SeqCst) >= 2,
        "the renewal was tried again while the store was down"
    );
}

#[tokio::test]
async fn a_lock_store_blip_within_the_ttl_does_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let locks = unreachable(dir.path());
    let (a, b) = (target("a"), target("b"));
    let l2 = locks.clone();
    let blip = check_fn("store blip", move || {
        let locks = l2.clone();
        async move {
            locks.blips.store(1, Ordering::SeqCst);
            Ok(CheckOutcome::pass("the next renewal fails"))
        }
    });
    let report = two_stages(dir.path(), locks.clone(), &a, blip, &b)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!((a.current_id(), b.current_id()), ("1".into(), "1".into()));
    assert_eq!(locks.blips.load(Ordering::SeqCst), 0, "the blip was met");
}
