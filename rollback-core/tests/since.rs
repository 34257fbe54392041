//! `Change::since`: the engine passes every apply the time its intent was journaled, the
//! same time again when a resumed run applies the change a crashed run had started, and the
//! time of the put-back's own intent when a change is compensated. (What lets a target
//! whose apply makes several calls tell those already made from those still to make.)
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rollback_core::journal::{read_journal, Entry};
use rollback_core::verify::{check_bool, Policy};
use rollback_core::{
    ApplyOutcome, Change, Check, FileLocks, Outcome, Registry, Result, ResumeOptions, Revision,
    RollbackTarget, Selector, Stability, Step, TargetId, TargetSpec, Transaction,
};

/// What each apply was given: (to, since).
type Seen = Arc<Mutex<Vec<(String, Option<DateTime<Utc>>)>>>;

/// A target at "2" with "1" before it; `hang` makes its first apply never return (the
/// process "dies" while it is in flight).
#[derive(Debug, Clone)]
struct Recorder {
    at: Arc<Mutex<String>>,
    seen: Seen,
    hang: bool,
}

#[async_trait]
impl RollbackTarget for Recorder {
    fn id(&self) -> TargetId {
        TargetId::new("recorder", "r")
    }
    fn spec(&self) -> TargetSpec {
        TargetSpec::new("recorder", serde_json::json!({}))
    }
    async fn current(&self) -> Result<Revision> {
        Ok(Revision::new(self.at.lock().unwrap().clone()))
    }
    async fn history(&self) -> Result<Vec<Revision>> {
        Ok(vec![Revision::new("2"), Revision::new("1")])
    }
    async fn apply(&self, change: &Change) -> Result<ApplyOutcome> {
        self.seen
            .lock()
            .unwrap()
            .push((change.to.id.clone(), change.since));
        if self.hang {
            futures::future::pending::<()>().await;
        }
        *self.at.lock().unwrap() = change.to.id.clone();
        Ok(ApplyOutcome::Applied)
    }
    async fn check_stable(&self, _: &Revision) -> Result<Stability> {
        Ok(Stability::Stable)
    }
}

fn intent_times(journal: &Path) -> Vec<(String, DateTime<Utc>)> {
    read_journal(journal)
        .unwrap()
        .into_iter()
        .filter(|r| {
            matches!(
                r.entry,
                Entry::Intent { .. } | Entry::CompensateIntent { .. }
            )
        })
        .map(|r| (r.entry.name(), r.at))
        .collect()
}

#[tokio::test]
async fn apply_gets_the_intent_time_and_a_resume_gets_the_same_one() {
    let dir = tempfile::tempdir().unwrap();
    let (at, seen): (Arc<Mutex<String>>, Seen) =
        (Arc::new(Mutex::new("2".into())), Seen::default());
    let first = Recorder {
        at: at.clone(),
        seen: seen.clone(),
        hang: true,
    };
    let tx = Transaction::builder("since")
        .reason("since test")
        .journal(dir.path().join("j.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .step(Step::new(Arc::new(first), Selector::Previous))
        .build()
        .unwrap();
    let journal = tx.journal_path().to_path_buf();
    let run = tokio::spawn(async move { tx.run().await });
    // The apply is in flight once it has been seen: "kill" the process there.
    while seen.lock().unwrap().is_empty() {
        assert!(
            !run.is_finished(),
            "the run ended before applying: {:?}",
            run.await
        );
        tokio::task::yield_now().await;
    }
    run.abort();
    let _ = run.await;
    let intents = intent_times(&journal);
    assert_eq!(intents.len(), 1, "{intents:?}");
    assert_eq!(seen.lock().unwrap()[0], ("1".into(), Some(intents[0].1)));

    let mut registry = Registry::new();
    let (at2, seen2) = (at.clone(), seen.clone());
    registry.register("recorder", move |_spec| {
        let t = Recorder {
            at: at2.clone(),
            seen: seen2.clone(),
            hang: false,
        };
        async move { Ok(Arc::new(t) as Arc<dyn RollbackTarget>) }
    });
    let opts = ResumeOptions {
        registry,
        locks: Some(Arc::new(FileLocks::new(dir.path().join("locks")))),
        ..ResumeOptions::default()
    };
    let report = rollback_core::resume_with(&journal, opts).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        seen[1],
        ("1".into(), Some(intents[0].1)),
        "the resumed apply is told when the crashed run meant to make it"
    );
    assert_eq!(intent_times(&journal).len(), 1, "no second intent");
}

#[tokio::test]
async fn a_put_back_gets_the_time_of_its_own_intent() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Seen::default();
    let target = Recorder {
        at: Arc::new(Mutex::new("2".into())),
        seen: seen.clone(),
        hang: false,
    };
    let report = Transaction::builder("since, put back")
        .reason("since test")
        .journal(dir.path().join("j.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .step(Step::new(Arc::new(target), Selector::Previous))
        .verify(Check::new(check_bool("never healthy", || async { false })).policy(Policy::once()))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let intents = intent_times(&dir.path().join("j.jsonl"));
    let names: Vec<&str> = intents.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["intent", "compensate_intent"]);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            ("1".to_string(), Some(intents[0].1)),
            ("2".to_string(), Some(intents[1].1))
        ]
    );
}
