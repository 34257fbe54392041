//! The transaction engine against mockall mocks: exactly which backend calls each lifecycle
//! path makes, and how many times.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rollback_core::mock::{MockRollbackTarget, MockVerifier};
use rollback_core::verify::{Policy, VerifierSpec};
use rollback_core::wait::{Backoff, RetryPolicy};
use rollback_core::{
    ApplyOutcome, Change, Check, CheckOutcome, Error, ErrorKind, FileLocks, Outcome, Revision,
    RollbackTarget, Selector, Step, TargetId, TargetSpec, Transaction,
};
use tempfile::TempDir;

fn id() -> TargetId {
    TargetId::new("mock", "api")
}

/// A mock at revision "3" whose Previous is "2"; apply and wait expectations are the test's.
fn mock_at_3() -> MockRollbackTarget {
    let mut m = MockRollbackTarget::new();
    m.expect_id().return_const(id());
    m.expect_spec()
        .returning(|| TargetSpec::new("mock", serde_json::json!({"name": "api"})));
    m.expect_current().returning(|| Ok(Revision::new("3")));
    m.expect_resolve()
        .withf(|s| *s == Selector::Previous)
        .returning(|_| Ok(Revision::new("2")));
    m.expect_plan()
        .returning(|to| Ok(Change::new(id(), Revision::new("3"), to.clone())));
    m
}

fn tx(dir: &TempDir, name: &str, target: MockRollbackTarget) -> rollback_core::TransactionBuilder {
    Transaction::builder(name)
        .reason("mock test")
        .journal(dir.path().join(format!("{name}.jsonl")))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .retry(RetryPolicy {
            max_attempts: 3,
            backoff: Backoff {
                initial: Duration::from_millis(1),
                max: Duration::from_millis(2),
                factor: 2.0,
            },
        })
        .step(Step::new(
            Arc::new(target) as Arc<dyn RollbackTarget>,
            Selector::Previous,
        ))
}

#[tokio::test]
async fn throttled_apply_is_retried_then_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = mock_at_3();
    let mut calls = 0;
    m.expect_apply()
        .times(2)
        .withf(|c| c.from.id == "3" && c.to.id == "2")
        .returning(move |_| {
            calls += 1;
            if calls == 1 {
                Err(Error::throttled("mock/api", "Rate exceeded", None))
            } else {
                Ok(ApplyOutcome::Applied)
            }
        });
    m.expect_wait_stable().times(1).returning(|_, _, _| Ok(()));
    let report = tx(&dir, "throttled", m)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
}

#[tokio::test]
async fn non_retryable_apply_error_is_not_retried_and_is_compensated() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = mock_at_3();
    m.expect_apply()
        .times(1)
        .withf(|c| c.to.id == "2")
        .returning(|_| Err(Error::backend("mock/api", "400 ValidationException", false)));
    // Whether a failed call changed anything is unknown, so the target is put back; the
    // apply contract makes that a no-op when it had not moved.
    m.expect_apply()
        .times(1)
        .withf(|c| c.from.id == "2" && c.to.id == "3")
        .returning(|_| Ok(ApplyOutcome::AlreadyCurrent));
    m.expect_wait_stable()
        .times(1)
        .withf(|rev, _, _| rev.id == "3")
        .returning(|_, _, _| Ok(()));
    let report = tx(&dir, "permanent", m)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated);
    assert_eq!(report.error.unwrap().kind, ErrorKind::Backend);
}

#[tokio::test]
async fn failing_verifier_is_tried_per_policy_then_compensates() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = mock_at_3();
    m.expect_apply()
        .times(1)
        .withf(|c| c.to.id == "2")
        .returning(|_| Ok(ApplyOutcome::Applied));
    m.expect_apply()
        .times(1)
        .withf(|c| c.to.id == "3")
        .returning(|_| Ok(ApplyOutcome::Applied));
    m.expect_wait_stable().times(2).returning(|_, _, _| Ok(()));
    let mut v = MockVerifier::new();
    v.expect_name().return_const("smoke_test.sh".to_string());
    // The journal records every check as data.
    v.expect_spec().returning(|| VerifierSpec::Opaque {
        name: "smoke_test.sh".into(),
    });
    v.expect_check()
        .times(3)
        .returning(|| Ok(CheckOutcome::fail("HTTP 502")));
    let report = tx(&dir, "verify", m)
        .verify(
            Check::new(v).policy(
                Policy::default()
                    .attempts(3)
                    .interval(Duration::from_millis(1)),
            ),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated);
    assert_eq!(report.checks[0].attempts, 3);
    assert!(report.checks[0].evidence.contains("HTTP 502"));
}

#[tokio::test]
async fn dry_run_and_preflight_errors_never_apply() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = mock_at_3();
    m.expect_apply().never();
    m.expect_wait_stable().never();
    let plan = tx(&dir, "dry", m).build().unwrap().dry_run().await.unwrap();
    assert_eq!(plan.outcome, Outcome::Planned);
    assert_eq!(plan.steps[0].to.as_ref().unwrap().id, "2");

    let mut m = MockRollbackTarget::new();
    m.expect_id().return_const(id());
    m.expect_spec()
        .returning(|| TargetSpec::new("mock", serde_json::json!({})));
    m.expect_current().returning(|| {
        Err(Error::not_found(
            "mock/api",
            "function api",
            "check the name",
        ))
    });
    m.expect_resolve().never();
    m.expect_apply().never();
    let err = tx(&dir, "missing", m)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("mock/api"));
}
