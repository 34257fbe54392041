//! Lifecycle tests of the transaction engine: each path of ARCHITECTURE.md's lifecycle.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollback_core::fake::FailureKind;
use rollback_core::journal::{read_journal, Entry};
use rollback_core::verify::{check_bool, Policy};
use rollback_core::wait::{Backoff, CompensationRetry, PollSchedule, RetryPolicy};
use rollback_core::{
    action_fn, ErrorKind, Event, EventKind, FailurePolicy, FakeTarget, FileLocks, Holder,
    LockManager, Outcome, Revision, RollbackTarget, Selector, Step, StepStatus, Transaction,
    TransactionBuilder,
};

struct World {
    dir: tempfile::TempDir,
    events: Arc<Mutex<Vec<Event>>>,
}

impl World {
    fn new() -> Self {
        World {
            dir: tempfile::tempdir().unwrap(),
            events: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn target(&self, name: &str) -> FakeTarget {
        FakeTarget::builder(name)
            .revision(Revision::new("1").image(format!("registry/{name}:v1")))
            .revision(Revision::new("2").image(format!("registry/{name}:v2")))
            .revision(Revision::new("3").image(format!("registry/{name}:v3")))
            .convergence(Duration::from_millis(30))
            .build()
            .unwrap()
    }

    fn locks(&self) -> FileLocks {
        FileLocks::new(self.dir.path().join("locks"))
    }

    fn tx(&self, name: &str) -> TransactionBuilder {
        let events = self.events.clone();
        Transaction::builder(name)
            .reason("5xx after deploy")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(self.locks()))
            .retry(fast_retry())
            .on_event(move |e| events.lock().unwrap().push(e.clone()))
    }

    fn kinds(&self) -> Vec<EventKind> {
        self.events.lock().unwrap().iter().map(|e| e.kind).collect()
    }

    fn count(&self, kind: EventKind) -> usize {
        self.kinds().iter().filter(|k| **k == kind).count()
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        backoff: Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            factor: 2.0,
        },
    }
}

fn arc(t: &FakeTarget) -> Arc<dyn RollbackTarget> {
    Arc::new(t.clone())
}

fn record_kinds(path: &std::path::Path) -> Vec<String> {
    read_journal(path)
        .unwrap()
        .iter()
        .map(|r| r.entry.name())
        .collect()
}

#[tokio::test]
async fn success_moves_every_target_and_journals_each_transition() {
    let w = World::new();
    let (a, b) = (w.target("a"), w.target("b"));
    let report = w
        .tx("ok")
        .step(Step::new(arc(&a), Selector::Previous).verify(Check::new(a.health_check())))
        .stage()
        .step(Step::new(arc(&b), Selector::exact("1")).verify(Check::new(b.health_check())))
        .verify(Check::new(check_bool("all good", || async { true })).policy(Policy::once()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(a.current_id(), "2");
    assert_eq!(b.current_id(), "1");
    assert_eq!((a.apply_count(), b.apply_count()), (1, 1));
    assert!(report
        .steps
        .iter()
        .all(|s| s.status == StepStatus::Succeeded));
    assert_eq!(report.steps[0].from.as_ref().unwrap().id, "3");
    assert_eq!(report.steps[1].stage, 1);
    assert!(report.needs_attention.is_empty());
    assert_eq!(report.checks.len(), 1);

    // The journal, line by line, is what happened.
    let kinds = record_kinds(&report.journal_path);
    assert_eq!(
        kinds,
        [
            "begin",
            "planned",
            "locked",
            "intent",
            "applied",
            "stable",
            "checked",
            "step_verified",
            "intent",
            "applied",
            "stable",
            "checked",
            "step_verified",
            "checked",
            "end",
            "released"
        ]
    );
    let records = read_journal(&report.journal_path).unwrap();
    assert!(records.windows(2).all(|p| p[1].seq == p[0].seq + 1));
    assert!(records.iter().all(|r| r.transaction == report.transaction));
    match &records[3].entry {
        Entry::Intent {
            from, to, target, ..
        } => {
            assert_eq!((from.as_str(), to.as_str()), ("3", "2"));
            assert_eq!(target.to_string(), "memory/a");
        }
        other => panic!("expected intent, got {other:?}"),
    }
    match &records[records.len() - 2].entry {
        Entry::End { outcome, .. } => assert_eq!(*outcome, Outcome::Succeeded),
        other => panic!("expected end, got {other:?}"),
    }
    match &records.last().unwrap().entry {
        Entry::Released { targets } => assert_eq!(targets, &[a.id(), b.id()]),
        other => panic!("expected released, got {other:?}"),
    }
    match &records[0].entry {
        Entry::Begin { reason, locks, .. } => {
            assert_eq!(reason.as_deref(), Some("5xx after deploy"));
            // The lock folder, so that a resume elsewhere locks in the same place.
            let locks = locks.as_ref().expect("the lock manager is journaled");
            assert_eq!(locks.kind, "file");
            assert_eq!(
                locks.params["dir"].as_str(),
                w.locks().dir().to_str(),
                "{locks:?}"
            );
        }
        other => panic!("expected begin, got {other:?}"),
    }

    // Events: started first, finished last, each step started, applied, stable, verified.
    let kinds = w.kinds();
    assert_eq!(kinds.first(), Some(&EventKind::Started));
    assert_eq!(kinds.last(), Some(&EventKind::Finished));
    for k in [
        EventKind::StepStarted,
        EventKind::Applied,
        EventKind::Stable,
    ] {
        assert_eq!(w.count(k), 2, "{k}: {kinds:?}");
    }
    assert!(w.count(EventKind::Waiting) >= 2);
    // The leases are given back.
    let other = Holder {
        name: "someone".into(),
        transaction: "other".into(),
        journal: None,
    };
    w.locks()
        .acquire(&a.id(), &other, Duration::from_secs(5))
        .await
        .unwrap();
}

use rollback_core::Check;

#[tokio::test]
async fn failing_verifier_compensates_every_applied_target_in_reverse_order() {
    let w = World::new();
    let (a, b) = (w.target("a"), w.target("b"));
    b.set_healthy("1", false);
    let report = w
        .tx("compensate")
        .step(Step::new(arc(&a), Selector::Previous))
        .stage()
        .step(
            Step::new(arc(&b), Selector::exact("1"))
                .verify(Check::new(b.health_check()).policy(Policy::once())),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(a.current_id(), "3", "a is back on its captured revision");
    assert_eq!(b.current_id(), "3", "b is back on its captured revision");
    assert_eq!(report.steps[0].status, StepStatus::Compensated);
    assert_eq!(report.steps[1].status, StepStatus::Compensated);
    let err = report.error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::VerificationFailed);
    assert!(err.message.contains("memory/b"), "{}", err.message);
    assert!(report.needs_attention.is_empty());
    // b (the later stage) was put back before a.
    let a_back = a.applied();
    let b_back = b.applied();
    assert_eq!(
        a_back,
        [("3".to_string(), "2".to_string()), ("2".into(), "3".into())]
    );
    assert_eq!(
        b_back,
        [("3".to_string(), "1".to_string()), ("1".into(), "3".into())]
    );
    let comp: Vec<_> = read_journal(&report.journal_path)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::Compensated { target, .. } => Some(target.name),
            _ => None,
        })
        .collect();
    assert_eq!(comp, ["b", "a"]);
    assert_eq!(w.count(EventKind::Compensated), 2);
}

#[tokio::test]
async fn failing_transaction_check_compensates() {
    let w = World::new();
    let a = w.target("a");
    let report = w
        .tx("tx-check")
        .step(Step::new(arc(&a), Selector::Previous))
        .verify(
            Check::new(check_bool("error rate < 5%", || async { false })).policy(Policy::once()),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated);
    assert_eq!(a.current_id(), "3");
    assert_eq!(
        report.error.as_ref().unwrap().kind,
        ErrorKind::VerificationFailed
    );
    assert!(!report.checks[0].passed);
}

#[tokio::test]
async fn halt_leaves_targets_and_lists_them_and_runs_on_failure_actions() {
    let w = World::new();
    let (a, b) = (w.target("a"), w.target("b"));
    b.fail_rollout("1", "circuit breaker tripped");
    let ran = Arc::new(Mutex::new(0));
    let ran2 = ran.clone();
    let report = w
        .tx("halt")
        .policy(FailurePolicy::Halt)
        .step(Step::new(arc(&a), Selector::Previous))
        .stage()
        .step(Step::new(arc(&b), Selector::exact("1")))
        .on_failure(action_fn("maintenance mode", move || {
            let ran = ran2.clone();
            async move {
                *ran.lock().unwrap() += 1;
                Ok("maintenance page on".to_string())
            }
        }))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(a.current_id(), "2", "halt leaves a where it is");
    assert_eq!(b.current_id(), "1");
    assert_eq!(
        report.error.as_ref().unwrap().kind,
        ErrorKind::RolloutFailed
    );
    assert_eq!(report.steps[0].status, StepStatus::Succeeded);
    assert_eq!(report.steps[1].status, StepStatus::Failed);
    let attention: Vec<String> = report
        .needs_attention
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(attention.len(), 2, "{attention:?}");
    assert!(
        attention[0].starts_with("memory/a: left at 2 (was 3)"),
        "{attention:?}"
    );
    assert_eq!(*ran.lock().unwrap(), 1);
    assert!(report.actions[0].ok);
}

#[tokio::test]
async fn dry_run_changes_nothing_and_returns_the_plan() {
    let w = World::new();
    let a = w.target("a");
    let report = Transaction::builder("dry")
        .journal(w.dir.path().join("dry.jsonl"))
        .locks(Arc::new(w.locks()))
        .step(Step::new(arc(&a), Selector::image_tag("v1")))
        .build()
        .unwrap()
        .dry_run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Planned);
    assert_eq!(report.steps[0].status, StepStatus::Planned);
    assert_eq!(report.steps[0].to.as_ref().unwrap().id, "1");
    assert!(report.steps[0]
        .diff
        .to_string()
        .contains("registry/a:v3 -> registry/a:v1"));
    assert_eq!(a.current_id(), "3");
    assert_eq!(a.apply_count(), 0);
    assert!(!a.calls().iter().any(|c| c == "apply"), "{:?}", a.calls());
    assert!(!report.journal_path.exists(), "a dry run writes no journal");
}

#[tokio::test]
async fn preflight_failure_changes_nothing() {
    let w = World::new();
    let (a, b) = (w.target("a"), w.target("b"));
    let err = w
        .tx("bad-input")
        .step(Step::new(arc(&a), Selector::Previous))
        .step(Step::new(arc(&b), Selector::exact("42")))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("memory/b"), "{err}");
    assert!(err.to_string().contains("\"42\""), "{err}");
    assert_eq!((a.apply_count(), b.apply_count()), (0, 0));
    assert!(!a.calls().iter().any(|c| c == "apply"));
    let kinds = record_kinds(&w.dir.path().join("bad-input.jsonl"));
    assert_eq!(kinds, ["begin", "end"]);

    // Already at the chosen revision: refused unless allowed.
    let err = w
        .tx("already")
        .step(Step::new(arc(&a), Selector::exact("3")))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("allow_current"), "{err}");
    let report = w
        .tx("already-ok")
        .step(Step::new(arc(&a), Selector::exact("3")).allow_current())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(report.steps[0].status, StepStatus::Skipped);
    assert_eq!(a.apply_count(), 0);

    // A reason is required, and a target may appear only once.
    let err = Transaction::builder("no-reason")
        .journal(w.dir.path().join("no-reason.jsonl"))
        .step(Step::new(arc(&a), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("reason"), "{err}");
    let err = w
        .tx("twice")
        .step(Step::new(arc(&a), Selector::Previous))
        .step(Step::new(arc(&a), Selector::exact("1")))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(a.apply_count(), 0);
}

#[tokio::test]
async fn conflict_when_a_target_changes_between_preflight_and_apply() {
    let w = World::new();
    let (a, b) = (w.target("a"), w.target("b"));
    // While stage 0 is verified, someone else moves b.
    let b2 = b.clone();
    let sneaky = check_bool("someone deploys b", move || {
        let b = b2.clone();
        async move {
            b.set_current("2").unwrap();
            true
        }
    });
    let report = w
        .tx("conflict")
        .step(
            Step::new(arc(&a), Selector::Previous)
                .verify(Check::new(sneaky).policy(Policy::once())),
        )
        .stage()
        .step(Step::new(arc(&b), Selector::exact("1")))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(report.error.as_ref().unwrap().kind, ErrorKind::Conflict);
    assert_eq!(
        b.current_id(),
        "2",
        "someone else's change is not clobbered"
    );
    assert_eq!(b.apply_count(), 0);
    assert_eq!(report.steps[1].status, StepStatus::Failed);
    assert_eq!(a.current_id(), "3", "a is put back");
}

#[tokio::test]
async fn locked_target_fails_at_once_naming_the_holder_and_expired_lease_is_taken_over() {
    let w = World::new();
    let a = w.target("a");
    let bob = Holder {
        name: "bob@bastion".into(),
        transaction: "tx-bob".into(),
        journal: None,
    };
    let lease = w
        .locks()
        .acquire(&a.id(), &bob, Duration::from_secs(600))
        .await
        .unwrap();
    let err = w
        .tx("locked")
        .step(Step::new(arc(&a), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Locked);
    assert!(err.to_string().contains("bob@bastion"), "{err}");
    assert!(err.to_string().contains("memory/a"), "{err}");
    assert_eq!(a.apply_count(), 0);
    w.locks().release(&lease).await.unwrap();

    // An expired lease (its holder died) is taken over.
    w.locks()
        .acquire(&a.id(), &bob, Duration::ZERO)
        .await
        .unwrap();
    let report = w
        .tx("takeover")
        .step(Step::new(arc(&a), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
}

#[tokio::test]
async fn retryable_errors_are_retried_and_others_are_not() {
    let w = World::new();
    let a = w.target("a");
    a.fail_next_applies(2, FailureKind::Throttled);
    let report = w
        .tx("retry")
        .step(Step::new(arc(&a), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert_eq!(a.apply_count(), 1);
    assert_eq!(w.count(EventKind::Retrying), 2);
    assert_eq!(a.calls().iter().filter(|c| *c == "apply").count(), 3);

    let w = World::new();
    let b = w.target("b");
    b.fail_next_applies(1, FailureKind::Permanent);
    let report = w
        .tx("no-retry")
        .step(Step::new(arc(&b), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(w.count(EventKind::Retrying), 0);
    assert_eq!(report.error.as_ref().unwrap().kind, ErrorKind::Backend);
    assert_eq!(b.current_id(), "3");
    assert_eq!(b.apply_count(), 0);
    // A backend error leaves it unknown whether the change went through, so the target is
    // compensated (the apply contract makes that a no-op here).
    assert_eq!(report.outcome, Outcome::Compensated);
}

/// A fake target whose applies and looks take a little while, counting how many are in
/// flight at once across every target sharing the counters.
#[derive(Debug, Clone)]
struct Counted {
    inner: FakeTarget,
    calls: Arc<InFlight>,
}

#[derive(Debug, Default)]
struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl InFlight {
    async fn during<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let out = f.await;
        self.now.fetch_sub(1, SeqCst);
        out
    }
}

#[async_trait::async_trait]
impl RollbackTarget for Counted {
    fn id(&self) -> rollback_core::TargetId {
        self.inner.id()
    }
    fn spec(&self) -> rollback_core::TargetSpec {
        self.inner.spec()
    }
    async fn current(&self) -> rollback_core::Result<Revision> {
        self.inner.current().await
    }
    async fn history(&self) -> rollback_core::Result<Vec<Revision>> {
        self.inner.history().await
    }
    async fn apply(
        &self,
        change: &rollback_core::Change,
    ) -> rollback_core::Result<rollback_core::ApplyOutcome> {
        self.calls.during(self.inner.apply(change)).await
    }
    async fn check_stable(
        &self,
        revision: &Revision,
    ) -> rollback_core::Result<rollback_core::Stability> {
        self.calls.during(self.inner.check_stable(revision)).await
    }
}

#[tokio::test]
async fn concurrency_bounds_calls_in_flight_not_targets_converging() {
    let w = World::new();
    let calls = Arc::new(InFlight::default());
    let targets: Vec<Counted> = (0..6)
        .map(|i| Counted {
            inner: FakeTarget::builder(format!("t{i}"))
                .revision(Revision::new("1"))
                .revision(Revision::new("2"))
                .convergence(Duration::from_millis(400))
                .build()
                .unwrap(),
            calls: calls.clone(),
        })
        .collect();
    let mut b = w.tx("bounded").concurrency(2);
    for t in &targets {
        b = b.step(Step::new(Arc::new(t.clone()), Selector::Previous));
    }
    let report = b.build().unwrap().run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    // Applies and looks: never more than two at once, and two did overlap.
    assert_eq!(calls.most.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Steps: all six converged together (a step waiting holds no place), where holding a
    // place through the wait would have allowed two at a time.
    let mut in_flight = 0i32;
    let mut max = 0;
    for e in w.events.lock().unwrap().iter() {
        match e.kind {
            EventKind::StepStarted => in_flight += 1,
            EventKind::Verified if e.step.is_some() && e.message.contains("verified at") => {
                in_flight -= 1
            }
            _ => {}
        }
        max = max.max(in_flight);
    }
    assert_eq!(max, 6, "every step converging at once");
}

#[tokio::test]
async fn resume_finishes_after_intent_without_applying_twice() {
    // A run that died after writing its intent: cut a finished journal back to that point.
    let w = World::new();
    let a = w.target("a");
    let report = w
        .tx("cut")
        .step(Step::new(arc(&a), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(a.apply_count(), 1);
    let path = report.journal_path.clone();
    let text = std::fs::read_to_string(&path).unwrap();
    let cut: String = text
        .lines()
        .take_while(|l| !l.contains("\"record\":\"applied\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, cut).unwrap();

    let mut registry = rollback_core::Registry::new();
    registry.insert(arc(&a));
    let opts = || rollback_core::ResumeOptions {
        registry: registry.clone(),
        locks: Some(Arc::new(w.locks())),
        ..Default::default()
    };
    // The apply did go through before the crash: resume sends nothing.
    let resumed = rollback_core::resume_with(&path, opts()).await.unwrap();
    assert_eq!(resumed.outcome, Outcome::Succeeded, "{resumed}");
    assert_eq!(a.apply_count(), 1, "not applied twice");
    assert_eq!(a.current_id(), "2");
    // Resuming a finished run does nothing and returns its report.
    let again = rollback_core::resume_with(&path, opts()).await.unwrap();
    assert_eq!(again.outcome, Outcome::Succeeded);
    assert_eq!(again.transaction, report.transaction);
    assert_eq!(a.apply_count(), 1);
}

/// A lock manager of a kind a backend would register (issue 13: DynamoDB, Kubernetes
/// Leases), here file leases under another name.
#[derive(Debug)]
struct OtherKindLocks(FileLocks);

#[async_trait::async_trait]
impl LockManager for OtherKindLocks {
    fn spec(&self) -> Option<rollback_core::lock::LockSpec> {
        Some(rollback_core::lock::LockSpec {
            kind: "other-kind".into(),
            params: self.0.spec()?.params,
        })
    }
    async fn acquire(
        &self,
        target: &rollback_core::TargetId,
        holder: &Holder,
        ttl: Duration,
    ) -> rollback_core::Result<rollback_core::Lease> {
        self.0.acquire(target, holder, ttl).await
    }
    async fn renew(
        &self,
        lease: &rollback_core::Lease,
        ttl: Duration,
    ) -> rollback_core::Result<rollback_core::Lease> {
        self.0.renew(lease, ttl).await
    }
    async fn current(
        &self,
        target: &rollback_core::TargetId,
    ) -> rollback_core::Result<Option<rollback_core::Lease>> {
        self.0.current(target).await
    }
    async fn release(&self, lease: &rollback_core::Lease) -> rollback_core::Result<()> {
        self.0.release(lease).await
    }
}

#[tokio::test]
async fn resume_rebuilds_the_journaled_lock_kind_through_the_registry() {
    let w = World::new();
    let a = w.target("a");
    let report = w
        .tx("kinds")
        .locks(Arc::new(OtherKindLocks(w.locks())))
        .step(Step::new(arc(&a), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let path = report.journal_path.clone();
    let text = std::fs::read_to_string(&path).unwrap();
    let cut: String = text
        .lines()
        .take_while(|l| !l.contains("\"record\":\"stable\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, cut).unwrap();

    // A registry that does not know the kind refuses, naming it, before anything is sent.
    let mut registry = rollback_core::Registry::new();
    registry.insert(arc(&a));
    let calls = a.calls().len();
    let e = rollback_core::resume_with(
        &path,
        rollback_core::ResumeOptions {
            registry: registry.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("\"other-kind\""), "{e}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert_eq!(a.calls().len(), calls, "nothing was asked of the target");

    // Registered, it is built from the journaled parameters and used.
    let built = Arc::new(Mutex::new(Vec::new()));
    let seen = built.clone();
    registry.register_locks("other-kind", move |spec| {
        seen.lock().unwrap().push(spec.params.clone());
        let locks = FileLocks::new(spec.params["dir"].as_str().unwrap_or_default());
        async move { Ok(Arc::new(OtherKindLocks(locks)) as Arc<dyn LockManager>) }
    });
    let resumed = rollback_core::resume_with(
        &path,
        rollback_core::ResumeOptions {
            registry,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(resumed.outcome, Outcome::Succeeded, "{resumed}");
    let built = built.lock().unwrap().clone();
    assert_eq!(built.len(), 1);
    assert_eq!(built[0]["dir"].as_str(), w.locks().dir().to_str());
    assert_eq!(
        record_kinds(&path).last().map(String::as_str),
        Some("released")
    );
    assert_eq!(a.apply_count(), 1, "not applied twice");
}

/// Runbook 001's "Option 2": stop the services, restore, restart. A temporary step is put
/// back once the stages are done, before the transaction's checks, or by compensation.
#[tokio::test]
async fn temporary_steps_are_put_back_before_the_checks_or_by_compensation() {
    let scaled = |name: &str| {
        FakeTarget::builder(name)
            .revision(Revision::new("0").description("stopped"))
            .revision(Revision::new("2").description("2 tasks"))
            .build()
            .unwrap()
    };
    let w = World::new();
    let (workers, db) = (scaled("workers"), w.target("db"));
    let w2 = workers.clone();
    let report = w
        .tx("option-2")
        .step(Step::new(arc(&workers), Selector::exact("0")).temporary())
        .stage()
        .step(Step::new(arc(&db), Selector::Previous))
        .verify(
            Check::new(check_bool("workers running again", move || {
                let w = w2.clone();
                async move { w.current_id() == "2" }
            }))
            .policy(Policy::once()),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(workers.current_id(), "2");
    assert_eq!(
        workers.applied(),
        [("2".to_string(), "0".to_string()), ("0".into(), "2".into())]
    );
    assert_eq!(db.current_id(), "2");
    assert_eq!(report.steps[0].status, StepStatus::Reverted);
    assert_eq!(report.steps[1].status, StepStatus::Succeeded);
    let kinds = record_kinds(&report.journal_path);
    let revert = kinds.iter().position(|k| k == "reverted").unwrap();
    let check = kinds.iter().rposition(|k| k == "checked").unwrap();
    assert!(
        revert < check,
        "reverted before the transaction's check: {kinds:?}"
    );

    // When a later stage fails, compensation puts the temporary step back too.
    let w = World::new();
    let (workers, db) = (scaled("workers"), w.target("db"));
    db.fail_rollout("2", "incompatible-restore");
    let report = w
        .tx("option-2-fails")
        .step(Step::new(arc(&workers), Selector::exact("0")).temporary())
        .stage()
        .step(Step::new(arc(&db), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(workers.current_id(), "2");
    assert_eq!(db.current_id(), "3");
    assert_eq!(report.steps[0].status, StepStatus::Compensated);
}

/// A run whose future is dropped (Ctrl-C, a cancelled task, a timeout) stops renewing its
/// leases: they lapse after their TTL and another transaction can take the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_run_stops_renewing_its_leases() {
    let w = World::new();
    let slow = FakeTarget::builder("slow")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .convergence(Duration::from_secs(3600))
        .build()
        .unwrap();
    let tx = w
        .tx("dropped")
        .lease_ttl(Duration::from_secs(1))
        .step(Step::new(arc(&slow), Selector::Previous).timeout(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let journal = tx.journal_path().to_path_buf();
    // Cancel the run once it has applied (it then waits an hour for convergence).
    let mut run = Box::pin(tx.run());
    let quiet = rollback_core::Progress::none();
    let applied = rollback_core::wait::poll_until(
        "slow",
        "the apply",
        Duration::from_secs(30),
        PollSchedule::stability(),
        &quiet,
        || async {
            Ok(if slow.apply_count() == 1 {
                rollback_core::Stability::Stable
            } else {
                rollback_core::Stability::Waiting("not yet".into())
            })
        },
    );
    tokio::select! {
        r = &mut run => panic!("the run ended: {r:?}"),
        r = applied => r.unwrap(),
    }
    drop(run);
    assert!(
        journal.exists(),
        "the journal named before the run is the one written"
    );
    // Renewals run every third of the TTL; with them stopped, the lease lapses within ~1 s.
    let other = Holder {
        name: "carol@bastion".into(),
        transaction: "tx-carol".into(),
        journal: None,
    };
    let locks = w.locks();
    let taken = rollback_core::wait::poll_until(
        "slow",
        "the lease to lapse",
        Duration::from_secs(10),
        PollSchedule::stability(),
        &rollback_core::Progress::none(),
        || async {
            Ok(
                match locks
                    .acquire(&slow.id(), &other, Duration::from_secs(60))
                    .await
                {
                    Ok(_) => rollback_core::Stability::Stable,
                    Err(e) => rollback_core::Stability::Waiting(e.to_string()),
                },
            )
        },
    )
    .await;
    taken.unwrap();
}

/// Fast backoff, a deadline far beyond what the test needs.
fn patient_retry() -> CompensationRetry {
    CompensationRetry {
        deadline: Duration::from_secs(60),
        backoff: Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
            factor: 2.0,
        },
    }
}

/// A later stage fails (b's apply is refused) after `a` was applied; `after_a_applied` then
/// injects faults into `a` so that they hit its compensation.
fn compensating_tx(
    w: &World,
    name: &str,
    retry: CompensationRetry,
    a: Arc<dyn RollbackTarget>,
    b: &FakeTarget,
    after_a_applied: impl Fn() + Send + Sync + 'static,
) -> Transaction {
    b.fail_next_applies(1, FailureKind::Permanent);
    let a_id = a.id();
    w.tx(name)
        .compensation_retry(retry)
        .on_event(move |e| {
            if e.kind == EventKind::Applied && e.target.as_ref() == Some(&a_id) {
                after_a_applied();
            }
        })
        .step(Step::new(a, Selector::Previous))
        .stage()
        .step(Step::new(arc(b), Selector::Previous))
        .build()
        .unwrap()
}

fn retries_of(w: &World, target: &str) -> usize {
    w.events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| {
            e.kind == EventKind::Retrying && e.target.as_ref().is_some_and(|t| t.name == target)
        })
        .count()
}

#[tokio::test]
async fn compensation_outlasts_a_run_of_throttles() {
    let w = World::new();
    let (a, b) = (w.target("a"), w.target("b"));
    let a2 = a.clone();
    // 12 throttles in a row: far more than the ordinary retry budget (4 attempts here).
    let tx = compensating_tx(&w, "patient", patient_retry(), arc(&a), &b, move || {
        a2.fail_next_applies(12, FailureKind::Throttled)
    });
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(a.current_id(), "3", "a is back on its captured revision");
    assert_eq!(report.steps[0].status, StepStatus::Compensated);
    assert!(report.needs_attention.is_empty(), "{report}");
    assert_eq!(
        retries_of(&w, "a"),
        12,
        "every throttle was retried, visibly"
    );
    assert_eq!(
        a.applied(),
        [("3".to_string(), "2".to_string()), ("2".into(), "3".into())]
    );
}

#[tokio::test]
async fn compensation_gives_up_at_its_deadline_and_asks_for_a_person() {
    let w = World::new();
    let (a, b) = (w.target("a"), w.target("b"));
    let a2 = a.clone();
    let short = CompensationRetry {
        deadline: Duration::from_millis(50),
        ..patient_retry()
    };
    let tx = compensating_tx(&w, "bounded", short, arc(&a), &b, move || {
        a2.fail_next_applies(u32::MAX, FailureKind::Transient)
    });
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{report}");
    assert_eq!(report.steps[0].status, StepStatus::CompensationFailed);
    assert_eq!(a.current_id(), "2", "a is left where the run moved it");
    assert!(
        report
            .needs_attention
            .iter()
            .any(|n| n.message.contains("by hand")),
        "{report}"
    );
    assert!(
        retries_of(&w, "a") > 4,
        "retried beyond the ordinary budget"
    );
}

/// A fake target whose wait for its captured revision fails with a retryable error
/// a few times, as a watch or describe call under throttling would.
#[derive(Debug)]
struct FlakyWait {
    inner: FakeTarget,
    revision: String,
    failures: std::sync::atomic::AtomicU32,
}

#[async_trait::async_trait]
impl RollbackTarget for FlakyWait {
    fn id(&self) -> rollback_core::TargetId {
        self.inner.id()
    }
    fn spec(&self) -> rollback_core::TargetSpec {
        self.inner.spec()
    }
    async fn current(&self) -> rollback_core::Result<Revision> {
        self.inner.current().await
    }
    async fn history(&self) -> rollback_core::Result<Vec<Revision>> {
        self.inner.history().await
    }
    async fn apply(
        &self,
        change: &rollback_core::Change,
    ) -> rollback_core::Result<rollback_core::ApplyOutcome> {
        self.inner.apply(change).await
    }
    async fn check_stable(
        &self,
        revision: &Revision,
    ) -> rollback_core::Result<rollback_core::Stability> {
        self.inner.check_stable(revision).await
    }
    async fn wait_stable(
        &self,
        revision: &Revision,
        timeout: Duration,
        progress: &rollback_core::Progress,
    ) -> rollback_core::Result<()> {
        use std::sync::atomic::Ordering;
        if revision.id == self.revision
            && self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(rollback_core::Error::backend(
                self.id().to_string(),
                "503 Service Unavailable (injected) while waiting",
                true,
            ));
        }
        self.inner.wait_stable(revision, timeout, progress).await
    }
}

#[tokio::test]
async fn transient_errors_of_the_compensations_wait_are_retried() {
    let w = World::new();
    let b = w.target("b");
    let a = Arc::new(FlakyWait {
        inner: w.target("a"),
        revision: "3".into(),
        failures: 6.into(),
    });
    let tx = compensating_tx(&w, "flaky-wait", patient_retry(), a.clone(), &b, || {});
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(a.inner.current_id(), "3");
    assert_eq!(a.failures.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(retries_of(&w, "a"), 6);
    // The wait's retries do not apply again.
    assert_eq!(a.inner.apply_count(), 2);
}
