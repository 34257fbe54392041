//! On-success actions (runbook 000 "Post-Rollback", 002 "Cache Invalidation"): run after a
//! run that succeeded and only then, each journaled before and after it runs, listed in the
//! report; one that fails needs a person and leaves the run succeeded; a resume never runs
//! again one whose outcome is journaled; a bad one is refused before anything changes.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use rollback_core::journal::{read_journal, Entry};
use rollback_core::transaction::{ActionRun, ActionWhen, AfterAction};
use rollback_core::verify::{check_bool, Policy};
use rollback_core::{
    action_fn, Check, Error, ErrorKind, FakeTarget, FileLocks, Interrupt, Outcome, Registry,
    Result, ResumeOptions, Revision, Selector, Step, Transaction, TransactionBuilder,
};

fn target(dir: &Path) -> FakeTarget {
    FakeTarget::builder("api")
        .revision(Revision::new("1").image("registry/api:v1"))
        .revision(Revision::new("2").image("registry/api:v2"))
        .state_file(dir.join("api.json"))
        .build()
        .unwrap()
}

fn tx(dir: &Path, t: &FakeTarget) -> TransactionBuilder {
    Transaction::builder("api back")
        .reason("5xx after 2")
        .journal(dir.join("j.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(Arc::new(t.clone()), Selector::Previous))
}

/// Runs the transaction; its report.
async fn run(b: TransactionBuilder) -> rollback_core::Report {
    b.build().unwrap().run().await.unwrap()
}

/// An action counting its runs, answering `ok` (or failing when `ok` is false).
fn counted(name: &str, ok: bool) -> (Arc<dyn AfterAction>, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let action = action_fn(name, move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            if ok {
                Ok("done".to_string())
            } else {
                Err(Error::invalid("cdn", "purge refused: 403 Forbidden"))
            }
        }
    });
    (action, runs)
}

/// The journal's action records: kind, name and (for outcomes) whether it went well.
fn action_records(journal: &Path) -> Vec<String> {
    read_journal(journal)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.entry {
            Entry::ActionIntent { name, when } => Some(format!("intent {when} {name}")),
            Entry::Action { name, ok, .. } => Some(format!("action {name} {ok}")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn on_success_actions_run_after_a_success_in_order_and_are_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let (purge, purged) = counted("purge cache", true);
    let (all_clear, cleared) = counted("all clear", true);
    let (failure, failed) = counted("maintenance page", true);
    let report = run(tx(dir.path(), &t)
        .on_success(purge)
        .on_success(all_clear)
        .on_failure(failure))
    .await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.current_id(), "1");
    assert_eq!(purged.load(Ordering::SeqCst), 1);
    assert_eq!(cleared.load(Ordering::SeqCst), 1);
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "no on-failure action after a success"
    );
    let names: Vec<(&str, bool)> = report
        .on_success
        .iter()
        .map(|a| (a.name.as_str(), a.ok))
        .collect();
    assert_eq!(names, [("purge cache", true), ("all clear", true)]);
    assert!(report.actions.is_empty(), "{report}");
    assert!(report.needs_attention.is_empty(), "{report}");
    assert!(
        report
            .to_string()
            .contains("on-success purge cache ok: done"),
        "{report}"
    );
    assert_eq!(
        action_records(&dir.path().join("j.jsonl")),
        [
            "intent on-success purge cache",
            "action purge cache true",
            "intent on-success all clear",
            "action all clear true",
        ]
    );
    // The journal names them at the start, and the report rebuilt from it lists them.
    let records = read_journal(dir.path().join("j.jsonl")).unwrap();
    let Entry::Begin { on_success, .. } = &records[0].entry else {
        panic!("{:?}", records[0].entry)
    };
    assert_eq!(on_success, &["purge cache", "all clear"]);
    let rebuilt = rollback_core::report_from_journal(dir.path().join("j.jsonl")).unwrap();
    assert_eq!(rebuilt.on_success, report.on_success);
    // The incident report says what was done after the rollback.
    let incident = rollback_core::incident::incident_report(dir.path().join("j.jsonl")).unwrap();
    let text = incident.markdown();
    assert!(
        text.contains(
            "## After the rollback\n\n- purge cache (done): done\n- all clear (done): done"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn on_success_actions_do_not_run_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let (purge, purged) = counted("purge cache", true);
    let (failure, failed) = counted("maintenance page", true);
    let report = run(tx(dir.path(), &t)
        .verify(Check::new(check_bool("error rate", || async { false })).policy(Policy::once()))
        .on_success(purge)
        .on_failure(failure))
    .await;
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(t.current_id(), "2", "put back");
    assert_eq!(purged.load(Ordering::SeqCst), 0);
    assert_eq!(failed.load(Ordering::SeqCst), 1);
    assert!(report.on_success.is_empty(), "{report}");
    assert_eq!(
        action_records(&dir.path().join("j.jsonl")),
        [
            "intent on-failure maintenance page",
            "action maintenance page true"
        ]
    );
}

#[tokio::test]
async fn a_failing_on_success_action_needs_a_person_and_the_run_stays_succeeded() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let (purge, purged) = counted("purge cache", false);
    let (all_clear, cleared) = counted("all clear", true);
    let report = run(tx(dir.path(), &t).on_success(purge).on_success(all_clear)).await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.current_id(), "1", "not put back");
    assert_eq!(purged.load(Ordering::SeqCst), 1);
    assert_eq!(cleared.load(Ordering::SeqCst), 1, "the next one still runs");
    assert!(!report.on_success[0].ok);
    assert!(report.on_success[0].message.contains("403 Forbidden"));
    assert_eq!(report.needs_attention.len(), 1, "{report}");
    let attention = report.needs_attention[0].to_string();
    assert!(
        attention.contains("on-success action \"purge cache\" failed")
            && attention.contains("do this step by hand"),
        "{attention}"
    );
    // The journal's end says so too.
    let rebuilt = rollback_core::report_from_journal(dir.path().join("j.jsonl")).unwrap();
    assert_eq!(rebuilt.outcome, Outcome::Succeeded);
    assert_eq!(rebuilt.needs_attention.len(), 1, "{rebuilt}");
}

/// The first action runs; the second stops the run (as a Ctrl-C would) and never ends.
async fn stopped_during_the_second(dir: &Path) -> (PathBuf, Arc<AtomicUsize>) {
    let t = target(dir);
    let (purge, purged) = counted("purge cache", true);
    let interrupt = Interrupt::new();
    let asker = interrupt.clone();
    let stuck = action_fn("all clear", move || {
        let asker = asker.clone();
        async move {
            asker.interrupt();
            std::future::pending::<()>().await;
            Ok("never".to_string())
        }
    });
    let tx = tx(dir, &t)
        .on_success(purge)
        .on_success(stuck)
        .interrupt(interrupt)
        .build()
        .unwrap();
    let journal = tx.journal_path().to_path_buf();
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted, "{report}");
    assert_eq!(t.current_id(), "1");
    (journal, purged)
}

#[tokio::test]
async fn a_resume_does_not_run_again_an_action_whose_outcome_is_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, purged) = stopped_during_the_second(dir.path()).await;
    assert_eq!(purged.load(Ordering::SeqCst), 1);
    assert_eq!(
        action_records(&journal),
        [
            "intent on-success purge cache",
            "action purge cache true",
            "intent on-success all clear",
        ],
        "the second's intent is journaled, its outcome is not"
    );

    let (purge_again, purged_again) = counted("purge cache", true);
    let (all_clear, cleared) = counted("all clear", true);
    let opts = ResumeOptions {
        registry: Registry::with_builtins(),
        on_success: vec![purge_again, all_clear],
        ..Default::default()
    };
    let report = rollback_core::resume_with(&journal, opts).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(
        purged_again.load(Ordering::SeqCst),
        0,
        "its outcome is journaled"
    );
    assert_eq!(cleared.load(Ordering::SeqCst), 1, "its outcome was not");
    let names: Vec<(&str, bool)> = report
        .on_success
        .iter()
        .map(|a| (a.name.as_str(), a.ok))
        .collect();
    assert_eq!(names, [("purge cache", true), ("all clear", true)]);
    assert!(report.needs_attention.is_empty(), "{report}");
    assert_eq!(
        action_records(&journal)[3..],
        ["intent on-success all clear", "action all clear true"]
    );
}

#[tokio::test]
async fn a_resume_not_given_a_journaled_on_success_action_says_a_person_must_do_it() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _) = stopped_during_the_second(dir.path()).await;
    let opts = ResumeOptions {
        registry: Registry::with_builtins(),
        ..Default::default()
    };
    let report = rollback_core::resume_with(&journal, opts).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let last = report.on_success.last().unwrap();
    assert_eq!((last.name.as_str(), last.ok), ("all clear", false));
    assert!(
        last.message.contains("ResumeOptions::on_success"),
        "{}",
        last.message
    );
    assert_eq!(report.needs_attention.len(), 1, "{report}");
}

/// An action whose preflight read finds what it needs missing.
#[derive(Debug)]
struct MissingDistribution(Arc<AtomicUsize>);

#[async_trait]
impl AfterAction for MissingDistribution {
    fn name(&self) -> String {
        "invalidate E123".into()
    }
    async fn run(&self) -> Result<String> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok("ran".into())
    }
    async fn run_in(&self, run: &ActionRun) -> Result<String> {
        assert_eq!(run.when, ActionWhen::OnSuccess);
        self.run().await
    }
    async fn preflight(&self) -> Result<()> {
        Err(Error::invalid(
            "cloudfront distribution E123",
            "no such distribution; check the id",
        ))
    }
}

#[tokio::test]
async fn bad_on_success_actions_are_refused_before_anything_changes() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let runs = Arc::new(AtomicUsize::new(0));
    for dry_run in [true, false] {
        let tx = tx(dir.path(), &t)
            .on_success(Arc::new(MissingDistribution(runs.clone())))
            .build()
            .unwrap();
        let err = if dry_run {
            tx.dry_run().await.unwrap_err()
        } else {
            tx.run().await.unwrap_err()
        };
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("on-success action \"invalidate E123\"")
                && text.contains("no such distribution"),
            "{text}"
        );
    }
    // A validate() refusal, and two actions of one name (the journal tells them apart by it).
    let (empty, _) = counted("", true);
    let err = tx(dir.path(), &t)
        .on_success(empty)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    let (a, _) = counted("purge", true);
    let (b, b_runs) = counted("purge", true);
    let err = tx(dir.path(), &t)
        .on_success(a)
        .on_success(b)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("given twice"), "{err}");
    assert_eq!(b_runs.load(Ordering::SeqCst), 0);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(
        (t.current_id(), t.apply_count()),
        ("2".into(), 0),
        "nothing changed"
    );
}

/// An action that describes itself (kind `stuck-once`): the first run of it stops the run
/// and never ends; a rebuilt one counts its runs in `REBUILT_RUNS`.
#[derive(Debug)]
struct Describes {
    interrupt: Option<Interrupt>,
}

static REBUILT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[async_trait]
impl AfterAction for Describes {
    fn name(&self) -> String {
        "page the team".into()
    }
    async fn run(&self) -> Result<String> {
        match &self.interrupt {
            Some(i) => {
                i.interrupt();
                std::future::pending::<()>().await;
                unreachable!()
            }
            None => {
                REBUILT_RUNS.fetch_add(1, Ordering::SeqCst);
                Ok("paged".into())
            }
        }
    }
    fn spec(&self) -> Option<rollback_core::TargetSpec> {
        Some(rollback_core::TargetSpec::new(
            "stuck-once",
            serde_json::json!({"channel": "#incidents"}),
        ))
    }
}

#[tokio::test]
async fn a_resume_rebuilds_an_action_the_journal_describes() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path());
    let interrupt = Interrupt::new();
    let tx = tx(dir.path(), &t)
        .on_success(Arc::new(Describes {
            interrupt: Some(interrupt.clone()),
        }))
        .interrupt(interrupt)
        .build()
        .unwrap();
    let journal = tx.journal_path().to_path_buf();
    assert_eq!(tx.run().await.unwrap().outcome, Outcome::Interrupted);
    let records = read_journal(&journal).unwrap();
    let Entry::Begin { action_specs, .. } = &records[0].entry else {
        panic!("{:?}", records[0].entry)
    };
    assert_eq!(action_specs.on_success["page the team"].kind, "stuck-once");

    let mut registry = Registry::with_builtins();
    registry.register_action("stuck-once", |params| async move {
        assert_eq!(params["channel"], "#incidents");
        Ok(Arc::new(Describes { interrupt: None }) as Arc<dyn AfterAction>)
    });
    let opts = ResumeOptions {
        registry,
        ..Default::default()
    };
    let report = rollback_core::resume_with(&journal, opts).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(REBUILT_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(report.on_success[0].message, "paged");
    assert!(report.needs_attention.is_empty(), "{report}");
}
