//! The conformance suite against the fake target (plain and with a state file), and
//! against deliberately broken targets to show the suite catches them.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use rollback_core::conformance::{assert_conformance, run, Fixture};
use rollback_core::{
    ApplyOutcome, Change, Error, ErrorKind, FakeTarget, Result, Revision, RollbackTarget,
    Stability, TargetId, TargetSpec,
};

fn revisions() -> Vec<Revision> {
    (1..=4)
        .map(|i| {
            Revision::new(format!("api:{i}"))
                .image(format!("registry.example/api:v1.{i}"))
                .image("registry.example/sidecar:2.0")
                .created_at(Utc.with_ymd_and_hms(2025, 1, i, 12, 0, 0).unwrap())
                .description(format!("deploy {i}"))
        })
        .collect()
}

fn builder(name: &str) -> rollback_core::fake::FakeTargetBuilder {
    revisions()
        .into_iter()
        .fold(FakeTarget::builder(name), |b, r| b.revision(r))
}

fn fixture() -> Fixture {
    Fixture {
        unknown_revision: "api:999".into(),
        secret_canary: Some("s3cr3t-canary-value".into()),
        stable_timeout: Duration::from_secs(10),
        may_mutate: true,
    }
}

#[tokio::test]
async fn in_memory_target_conforms() {
    let t = builder("api")
        .convergence(Duration::from_millis(50))
        .build()
        .unwrap();
    assert_conformance(&t, &fixture()).await;
    assert_eq!(t.current_id(), "api:4", "left as found");
    assert_eq!(t.apply_count(), 2, "one rollback, one roll forward");
}

#[tokio::test]
async fn in_memory_target_after_a_rollback_conforms() {
    // Current is in the middle of the history: Previous is not "newest minus one".
    let t = builder("api").current("api:2").build().unwrap();
    let report = run(&t, &fixture()).await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(t.current_id(), "api:2");
    assert_eq!(
        t.applied(),
        [
            ("api:2".to_string(), "api:1".to_string()),
            ("api:1".to_string(), "api:2".to_string())
        ]
    );
}

#[tokio::test]
async fn in_memory_target_with_a_state_file_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("api.json");
    let t = builder("api").state_file(&path).build().unwrap();
    assert_conformance(&t, &fixture()).await;

    // Another instance on the same file (another process, say) sees the round trip.
    let other = FakeTarget::builder("api")
        .state_file(&path)
        .build()
        .unwrap();
    assert_eq!(other.current_id(), "api:4");
    assert_eq!(other.apply_count(), 2);
    // And the rebuilt one conforms too.
    assert_conformance(&other, &fixture()).await;
}

/// How a [`Broken`] target breaks the contract.
#[derive(Debug, Clone, Copy)]
enum Flaw {
    /// `history` oldest first.
    HistoryOldestFirst,
    /// `apply` ignores `change.from` and moves the target anyway.
    IgnoresConflicts,
    /// `apply` of the revision in use says `Applied` again.
    NeverAlreadyCurrent,
    /// Errors do not say which target they are about.
    AnonymousErrors,
    /// `Debug` shows the secret the target was configured with.
    LeaksSecret,
}

/// A fake target with one flaw.
#[derive(Debug)]
struct Broken {
    inner: FakeTarget,
    flaw: Flaw,
    #[allow(dead_code)] // shown by the derived Debug, which is the point
    password: String,
}

impl Broken {
    fn new(flaw: Flaw) -> Self {
        Broken {
            inner: builder("broken").build().unwrap(),
            flaw,
            password: match flaw {
                Flaw::LeaksSecret => "s3cr3t-canary-value".into(),
                _ => "<redacted>".into(),
            },
        }
    }

    /// The same kind of error, naming no target.
    fn anonymise(&self, e: Error) -> Error {
        if !matches!(self.flaw, Flaw::AnonymousErrors) {
            return e;
        }
        match e.kind() {
            ErrorKind::NotFound => Error::not_found("", "the revision", "try another"),
            ErrorKind::Conflict => Error::conflict(String::new(), "?", "?"),
            _ => Error::invalid("", "bad input"),
        }
    }
}

#[async_trait]
impl RollbackTarget for Broken {
    fn id(&self) -> TargetId {
        self.inner.id()
    }

    fn spec(&self) -> TargetSpec {
        self.inner.spec()
    }

    async fn current(&self) -> Result<Revision> {
        self.inner.current().await
    }

    async fn history(&self) -> Result<Vec<Revision>> {
        let mut h = self.inner.history().await?;
        if let Flaw::HistoryOldestFirst = self.flaw {
            h.reverse();
        }
        Ok(h)
    }

    async fn resolve(&self, selector: &rollback_core::Selector) -> Result<Revision> {
        let (history, current) = (self.history().await?, self.current().await?);
        selector
            .resolve(&self.id(), &history, &current.id)
            .map_err(|e| self.anonymise(e))
    }

    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        match self.flaw {
            Flaw::IgnoresConflicts => {
                let current = self.inner.current_id();
                if current == change.to.id {
                    return Ok(ApplyOutcome::AlreadyCurrent);
                }
                // Plans its own change from wherever the target is now.
                let fresh = self.inner.plan(&change.to).await?;
                self.inner.apply(&fresh).await
            }
            Flaw::NeverAlreadyCurrent => {
                self.inner.apply(change).await?;
                Ok(ApplyOutcome::Applied)
            }
            _ => self
                .inner
                .apply(change)
                .await
                .map_err(|e| self.anonymise(e)),
        }
    }

    async fn check_stable(&self, revision: &Revision) -> Result<Stability> {
        self.inner.check_stable(revision).await
    }
}

async fn failures_of(flaw: Flaw) -> (Vec<String>, Broken) {
    let t = Broken::new(flaw);
    let report = run(&t, &fixture()).await;
    assert!(!report.is_ok(), "{flaw:?} was not caught:\n{report}");
    (report.failures, t)
}

#[tokio::test]
async fn the_suite_catches_a_history_oldest_first() {
    let (failures, _) = failures_of(Flaw::HistoryOldestFirst).await;
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("history: not newest first")),
        "{failures:#?}"
    );
}

#[tokio::test]
async fn the_suite_catches_an_apply_that_ignores_conflicts() {
    let (failures, t) = failures_of(Flaw::IgnoresConflicts).await;
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("apply_stale_conflict: apply of a stale change"),
        "{failures:#?}"
    );
    assert!(
        failures[0].contains("expected a Conflict error"),
        "{failures:#?}"
    );
    assert!(failures[0].contains("moved the target"), "{failures:#?}");
    // Even so, the suite puts the target back where it found it.
    assert_eq!(t.inner.current_id(), "api:4");
}

#[tokio::test]
async fn the_suite_catches_an_apply_that_is_not_idempotent() {
    let (failures, t) = failures_of(Flaw::NeverAlreadyCurrent).await;
    assert!(
        failures
            .iter()
            .any(|f| f.starts_with("apply_again:") && f.contains("expected AlreadyCurrent")),
        "{failures:#?}"
    );
    assert_eq!(t.inner.current_id(), "api:4");
}

#[tokio::test]
async fn the_suite_catches_errors_that_do_not_name_the_target() {
    let (failures, _) = failures_of(Flaw::AnonymousErrors).await;
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("errors_name_target: NotFound error")
            && failures[0].contains("does not name memory/broken"),
        "{failures:#?}"
    );
}

#[tokio::test]
async fn the_suite_catches_a_leaked_secret() {
    let (failures, _) = failures_of(Flaw::LeaksSecret).await;
    assert_eq!(
        failures,
        ["no_secret_leaks: the secret canary appears in the target's Debug output"]
    );
}

#[tokio::test]
async fn a_read_only_run_of_a_broken_apply_passes_and_applies_nothing() {
    let t = Arc::new(Broken::new(Flaw::IgnoresConflicts));
    let report = run(
        &*t,
        &Fixture {
            may_mutate: false,
            ..fixture()
        },
    )
    .await;
    assert!(report.is_ok(), "{report}");
    assert_eq!(t.inner.apply_count(), 0);
    assert!(!t.inner.calls().iter().any(|c| c == "apply"));
}
