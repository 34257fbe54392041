//! Last known good: what a successful run records, what it does not, and the selector that
//! picks it on the next incident, with its origin in the plan.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use rollback_core::verify::check_bool;
use rollback_core::{
    ErrorKind, FakeTarget, FileKnownGood, FileLocks, KnownGoodStore, Outcome, Revision,
    RollbackTarget as _, Selector, Step, Transaction, TransactionBuilder,
};

fn api() -> FakeTarget {
    FakeTarget::builder("api")
        .revision(Revision::new("13").image("registry/api:v13"))
        .revision(Revision::new("14").image("registry/api:v14"))
        .revision(Revision::new("15").image("registry/api:v15"))
        .build()
        .unwrap()
}

async fn run(b: TransactionBuilder) -> rollback_core::Report {
    b.build().unwrap().run().await.unwrap()
}

fn tx(dir: &Path, name: &str, store: &FileKnownGood) -> TransactionBuilder {
    Transaction::builder(name)
        .reason("known good test")
        .journal(dir.join(format!("{name}.jsonl")))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .known_good(Arc::new(store.clone()))
}

#[tokio::test]
async fn a_verified_run_is_picked_by_the_next_incident_with_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKnownGood::new(dir.path().join("known-good"));
    let t = api();
    // Incident 1: 15 -> 14, verified healthy.
    let first = tx(dir.path(), "first", &store)
        .step(
            Step::new(Arc::new(t.clone()), Selector::Previous)
                .verify(check_bool("health", || async { true })),
        )
        .build()
        .unwrap();
    let report = first.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let good = store.latest(&t.id()).await.unwrap().expect("a record");
    assert_eq!(good.revision, "14");
    assert_eq!(good.transaction, first.id());
    assert_eq!(good.checks, ["health"]);

    // A new release goes out (16), and is bad. Incident 2 asks for the last known good,
    // through another store instance on the same folder (another process would read it
    // the same way).
    t.deploy(Revision::new("16").image("registry/api:v16"))
        .unwrap();
    let again = FileKnownGood::new(dir.path().join("known-good"));
    let second = tx(dir.path(), "second", &again)
        .step(Step::new(Arc::new(t.clone()), Selector::LastKnownGood))
        .build()
        .unwrap();
    let plan = second.dry_run().await.unwrap();
    let step = &plan.steps[0];
    assert_eq!(
        step.to.as_ref().unwrap().id,
        "14",
        "not 15, the previous one"
    );
    let origin = step.origin.as_deref().unwrap();
    assert!(
        origin.contains(first.id()) && origin.contains("health"),
        "{origin}"
    );
    assert!(plan.to_string().contains("last known good"), "{plan}");
    let report = second.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.current_id(), "14");
}

#[tokio::test]
async fn without_a_record_the_selector_is_an_error_in_the_dry_run_too() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKnownGood::new(dir.path().join("known-good"));
    let t = api();
    let b = tx(dir.path(), "none", &store)
        .step(Step::new(Arc::new(t.clone()), Selector::LastKnownGood));
    for e in [
        b.clone().build().unwrap().dry_run().await.unwrap_err(),
        b.build().unwrap().run().await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("verified healthy") && msg.contains("known-good"),
            "{msg}"
        );
    }
    assert_eq!(t.apply_count(), 0);
    assert_eq!(t.current_id(), "15");
}

#[tokio::test]
async fn failed_unchecked_and_temporary_steps_record_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileKnownGood::new(dir.path().join("known-good"));
    // A check that fails: compensated, nothing recorded.
    let t = api();
    let report = run(tx(dir.path(), "bad", &store).step(
        Step::new(Arc::new(t.clone()), Selector::Previous).verify(
            rollback_core::Check::new(check_bool("health", || async { false }))
                .policy(rollback_core::Policy::once()),
        ),
    ))
    .await;
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(store.latest(&t.id()).await.unwrap(), None);
    // No check at all: only stability was seen; nothing recorded.
    let report = run(tx(dir.path(), "unchecked", &store)
        .step(Step::new(Arc::new(t.clone()), Selector::Previous)))
    .await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(store.latest(&t.id()).await.unwrap(), None);
    // A temporary step was put back; the other step, checked by the transaction, is.
    let (gate, web) = (
        FakeTarget::builder("gate")
            .revision(Revision::new("1"))
            .revision(Revision::new("2"))
            .build()
            .unwrap(),
        api(),
    );
    let report = run(tx(dir.path(), "temporary", &store)
        .step(Step::new(Arc::new(gate.clone()), Selector::Previous).temporary())
        .stage()
        .step(Step::new(Arc::new(web.clone()), Selector::Previous))
        .verify(check_bool("smoke", || async { true })))
    .await;
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(store.latest(&gate.id()).await.unwrap(), None);
    let good = store.latest(&web.id()).await.unwrap().unwrap();
    assert_eq!(
        (good.revision.as_str(), good.checks.as_slice()),
        ("14", &["smoke".to_string()][..])
    );
}
