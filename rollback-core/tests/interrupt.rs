//! Stopping a run on request (what `rollback apply` does on the first Ctrl-C): the apply in
//! flight finishes and is journaled, nothing new starts, nothing is put back, the leases
//! are given back; the journal then says where it stopped, a resume finishes the run, and
//! a resume with `put_back` puts back what it changed instead.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rollback_core::journal::{read_journal, summarize};
use rollback_core::{
    EventKind, FakeTarget, FileLocks, Interrupt, LockManager, Outcome, Registry, ResumeOptions,
    Revision, RollbackTarget, Selector, Step, StepStatus, Transaction,
};

fn target(dir: &Path, name: &str) -> FakeTarget {
    FakeTarget::builder(name)
        .revision(Revision::new("1").image(format!("registry/{name}:v1")))
        .revision(Revision::new("2").image(format!("registry/{name}:v2")))
        .revision(Revision::new("3").image(format!("registry/{name}:v3")))
        .convergence(Duration::from_secs(2))
        .state_file(dir.join(format!("{name}.json")))
        .build()
        .unwrap()
}

fn kinds(journal: &Path) -> Vec<String> {
    read_journal(journal)
        .unwrap()
        .iter()
        .map(|r| r.entry.name())
        .collect()
}

/// Runs `api` (stage 1) then `web` (stage 2), asking the run to stop as soon as `api` is
/// applied: returns the report and the journal.
async fn interrupted_run(dir: &Path) -> (rollback_core::Report, std::path::PathBuf) {
    let (api, web) = (target(dir, "api"), target(dir, "web"));
    let interrupt = Interrupt::new();
    let (b, mut events) = Transaction::builder("two stages")
        .reason("interrupt test")
        .journal(dir.join("journal.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(Arc::new(api), Selector::Previous))
        .stage()
        .step(Step::new(Arc::new(web), Selector::Previous))
        .interrupt(interrupt.clone())
        .events();
    let tx = b.build().unwrap();
    let journal = tx.journal_path().to_path_buf();
    let asker = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(e) = events.recv().await {
            if e.kind == EventKind::Applied {
                interrupt.interrupt();
            }
            seen.push(e.kind);
        }
        seen
    });
    let report = tx.run().await.unwrap();
    drop(tx);
    let seen = asker.await.unwrap();
    assert!(seen.contains(&EventKind::Interrupted), "{seen:?}");
    assert!(!seen.contains(&EventKind::Compensating), "{seen:?}");
    (report, journal)
}

#[tokio::test]
async fn a_stopped_run_finishes_its_apply_starts_nothing_puts_nothing_back_and_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let (report, journal) = interrupted_run(dir.path()).await;
    let (api, web) = (target(dir.path(), "api"), target(dir.path(), "web"));

    assert_eq!(report.outcome, Outcome::Interrupted, "{report}");
    let statuses: Vec<StepStatus> = report.steps.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [StepStatus::Applied, StepStatus::NotStarted]);
    assert_eq!((api.current_id(), api.apply_count()), ("2".into(), 1));
    assert_eq!(web.apply_count(), 0, "the second stage did not start");
    assert!(
        report.needs_attention[0]
            .message
            .contains("nothing was put back"),
        "{report}"
    );
    // Journaled where it stopped, without an end; the leases given back.
    assert_eq!(
        kinds(&journal),
        [
            "begin",
            "planned",
            "locked",
            "intent",
            "applied",
            "interrupted",
            "released"
        ]
    );
    let locks = FileLocks::new(dir.path().join("locks"));
    assert_eq!(locks.current(&api.id()).await.unwrap(), None);
    // Its status and summary say so.
    let so_far = rollback_core::report_so_far(&journal).unwrap();
    assert_eq!(so_far.outcome, Outcome::Interrupted);
    assert_eq!(so_far.steps[0].status, StepStatus::Applied);
    assert!(so_far.needs_attention[0]
        .message
        .contains("stopped on request"));
    let summary = summarize(&read_journal(&journal).unwrap());
    assert_eq!(summary[0].outcome, Some(Outcome::Interrupted));
    assert!(rollback_core::report_from_journal(&journal).is_err());

    // A resume goes on from there: api is waited for (not applied again), web is applied.
    let opts = ResumeOptions {
        registry: Registry::with_builtins(),
        ..Default::default()
    };
    let report = rollback_core::resume_with(&journal, opts).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!((api.current_id(), api.apply_count()), ("2".into(), 1));
    assert_eq!((web.current_id(), web.apply_count()), ("2".into(), 1));
    let summary = summarize(&read_journal(&journal).unwrap());
    assert_eq!(summary[0].outcome, Some(Outcome::Succeeded));
}

#[tokio::test]
async fn a_stopped_run_is_put_back_on_request_and_an_ended_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, journal) = interrupted_run(dir.path()).await;
    let (api, web) = (target(dir.path(), "api"), target(dir.path(), "web"));
    let opts = || ResumeOptions {
        registry: Registry::with_builtins(),
        ..Default::default()
    };
    let report = rollback_core::resume_with(&journal, opts().put_back())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(api.current_id(), "3", "api is back where the run found it");
    assert_eq!(api.apply_count(), 2, "applied, then put back");
    assert_eq!(web.apply_count(), 0, "web was never touched");
    assert!(
        report
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("put back on request"),
        "{report}"
    );
    let k = kinds(&journal);
    assert!(
        k.ends_with(&[
            "resumed".into(),
            "compensate_intent".into(),
            "compensated".into(),
            "end".into(),
            "released".into()
        ]),
        "{k:?}"
    );
    // Once it ended there is nothing to put back: refused, nothing called.
    let err = rollback_core::resume_with(&journal, opts().put_back())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), rollback_core::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("already ended"), "{err}");
    assert_eq!(api.apply_count(), 2);
}

#[tokio::test]
async fn a_run_asked_to_stop_before_it_starts_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let api = target(dir.path(), "api");
    let interrupt = Interrupt::new();
    interrupt.interrupt();
    let tx = Transaction::builder("stopped early")
        .reason("interrupt test")
        .journal(dir.path().join("journal.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .step(Step::new(Arc::new(api.clone()), Selector::Previous))
        .interrupt(interrupt)
        .build()
        .unwrap();
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted);
    assert_eq!(report.steps[0].status, StepStatus::NotStarted);
    assert_eq!(api.apply_count(), 0);
    assert_eq!(
        kinds(tx.journal_path()),
        ["begin", "planned", "locked", "interrupted", "released"]
    );
}
