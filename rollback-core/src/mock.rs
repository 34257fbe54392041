//! [mockall] mocks of [`RollbackTarget`] and [`Verifier`] (feature `mock`).
//!
//! Every method is mocked, the provided ones (`resolve`, `plan`, `wait_stable`, and the
//! verifier's `spec`) too, so a test states exactly what the code under test may call.
//! Async methods are mocked with their output type: `returning` takes a closure that
//! returns the `Result`, not a future. When a fake with real behaviour suits the test
//! better, use `FakeTarget` (feature `testing`).
//!
//! The module exists with the `mock` feature only
//! (`rollback-core = { version = "...", features = ["mock"] }`, usually in
//! `[dev-dependencies]`):
//!
//! ```
//! use std::sync::Arc;
//! use rollback_core::mock::{MockRollbackTarget, MockVerifier};
//! use rollback_core::{CheckOutcome, Revision, RollbackTarget, TargetId, Verifier};
//!
//! let mut target = MockRollbackTarget::new();
//! target.expect_id().return_const(TargetId::new("lambda-alias", "api:live"));
//! target.expect_current().returning(|| Ok(Revision::new("7")));
//! target.expect_apply().never();
//! let target: Arc<dyn RollbackTarget> = Arc::new(target);
//!
//! let mut check = MockVerifier::new();
//! check.expect_name().return_const("smoke".to_string());
//! check
//!     .expect_check()
//!     .times(1)
//!     .returning(|| Ok(CheckOutcome::pass("200 OK")));
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! assert_eq!(target.id().to_string(), "lambda-alias/api:live");
//! rt.block_on(async {
//!     assert_eq!(target.current().await.unwrap().id, "7");
//!     assert!(check.check().await.unwrap().passed);
//! });
//! ```

use std::time::Duration;

use async_trait::async_trait;
use mockall::mock;

use crate::error::Result;
use crate::revision::{Change, Revision};
use crate::selector::Selector;
use crate::target::{ApplyOutcome, Progress, RollbackTarget, Stability, TargetId, TargetSpec};
use crate::verify::{CheckOutcome, Verifier, VerifierSpec};

mock! {
    /// A mock [`RollbackTarget`]: `MockRollbackTarget::new()`, then `expect_*` for each
    /// method the code under test calls.
    #[derive(Debug)]
    pub RollbackTarget {}

    #[async_trait]
    impl RollbackTarget for RollbackTarget {
        fn id(&self) -> TargetId;
        fn spec(&self) -> TargetSpec;
        async fn current(&self) -> Result<Revision>;
        async fn history(&self) -> Result<Vec<Revision>>;
        async fn resolve(&self, selector: &Selector) -> Result<Revision>;
        async fn plan(&self, to: &Revision) -> Result<Change>;
        async fn apply(&self, change: &Change) -> Result<ApplyOutcome>;
        async fn check_stable(&self, revision: &Revision) -> Result<Stability>;
        async fn wait_stable(
            &self,
            revision: &Revision,
            timeout: Duration,
            progress: &Progress,
        ) -> Result<()>;
    }
}

mock! {
    /// A mock [`Verifier`]: `MockVerifier::new()`, then `expect_name` and `expect_check`.
    #[derive(Debug)]
    pub Verifier {}

    #[async_trait]
    impl Verifier for Verifier {
        fn name(&self) -> String;
        async fn check(&self) -> Result<CheckOutcome>;
        fn spec(&self) -> VerifierSpec;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use mockall::predicate::eq;

    use super::*;
    use crate::error::{Error, ErrorKind};
    use crate::verify::Policy;

    #[tokio::test]
    async fn mocks_work_through_trait_objects() {
        let id = TargetId::new("ecs-service", "prod/api");
        let mut t = MockRollbackTarget::new();
        t.expect_id().return_const(id.clone());
        t.expect_current()
            .times(1)
            .returning(|| Ok(Revision::new("api:14")));
        t.expect_resolve()
            .with(eq(Selector::Previous))
            .returning(|_| Ok(Revision::new("api:13")));
        let plan_id = id.clone();
        t.expect_plan().returning(move |to| {
            Ok(Change::new(
                plan_id.clone(),
                Revision::new("api:14"),
                to.clone(),
            ))
        });
        t.expect_apply()
            .withf(|c| c.to.id == "api:13")
            .times(1)
            .returning(|_| Ok(ApplyOutcome::Applied));
        t.expect_wait_stable().returning(|r, _, progress| {
            progress.report(&format!("{} is stable", r.id));
            Ok(())
        });
        t.expect_check_stable().never();
        let t: Arc<dyn RollbackTarget> = Arc::new(t);

        assert_eq!(format!("{t:?}"), "MockRollbackTarget");
        assert_eq!(t.id(), id);
        assert_eq!(t.current().await.unwrap().id, "api:14");
        let to = t.resolve(&Selector::Previous).await.unwrap();
        let change = t.plan(&to).await.unwrap();
        assert_eq!(t.apply(&change).await.unwrap(), ApplyOutcome::Applied);
        let seen = Arc::new(std::sync::Mutex::new(String::new()));
        let s2 = seen.clone();
        t.wait_stable(
            &to,
            Duration::from_secs(1),
            &Progress::new(move |m| *s2.lock().unwrap() = m.to_string()),
        )
        .await
        .unwrap();
        assert_eq!(*seen.lock().unwrap(), "api:13 is stable");

        let mut v = MockVerifier::new();
        v.expect_name().return_const("smoke".to_string());
        let mut n = 0;
        v.expect_check().times(2).returning(move || {
            n += 1;
            if n == 1 {
                Err(Error::backend("verifier", "connection reset", true))
            } else {
                Ok(CheckOutcome::pass("200 OK"))
            }
        });
        let v: &dyn Verifier = &v;
        assert_eq!(v.name(), "smoke");
        let verdict = Policy::default()
            .attempts(2)
            .interval(Duration::ZERO)
            .run(v, |_, _| {})
            .await;
        assert!(verdict.passed, "{verdict:?}");
        assert_eq!(verdict.attempts, 2);
        assert_eq!(format!("{v:?}"), "MockVerifier");
    }

    #[tokio::test]
    async fn returned_errors_reach_the_caller() {
        let mut t = MockRollbackTarget::new();
        t.expect_apply().returning(|c| {
            Err(Error::conflict(
                c.target.to_string(),
                c.from.id.clone(),
                "someone-else",
            ))
        });
        let t: Arc<dyn RollbackTarget> = Arc::new(t);
        let c = Change::new(
            TargetId::new("memory", "x"),
            Revision::new("2"),
            Revision::new("1"),
        );
        assert_eq!(t.apply(&c).await.unwrap_err().kind(), ErrorKind::Conflict);
    }
}
