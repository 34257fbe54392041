//! Journals written by an earlier version of this crate (v0.1, before the engine recorded
//! transitions through one type) still read, report and resume the same way: the fixtures
//! in `tests/fixtures/v0-*.jsonl` were written by that version, and the `*.expected.json`
//! next to them hold what that version's `report_from_journal` and `resume_with` made of
//! them (regenerate with `ROLLBACK_REGENERATE_FIXTURES=1` only on purpose).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rollback_core::journal::read_journal;
use rollback_core::{
    report_from_journal, resume_with, FakeTarget, FileLocks, Registry, Report, ResumeOptions,
    Revision,
};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// What a report says, without what depends on the clock or the machine.
fn summary(r: &Report, journal: &Path) -> Value {
    json!({
        "transaction": r.transaction,
        "name": r.name,
        "outcome": r.outcome,
        "steps": r.steps.iter().map(|s| json!({
            "step": s.step,
            "stage": s.stage,
            "target": s.target.to_string(),
            "from": s.from.as_ref().map(|r| r.id.clone()),
            "to": s.to.as_ref().map(|r| r.id.clone()),
            "diff": s.diff.to_string(),
            "status": s.status,
            "error": s.error.as_ref().map(|e| e.message.clone()),
            "verdicts": s.verdicts.iter().map(|v| (v.name.clone(), v.passed)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "checks": r.checks.iter().map(|v| (v.name.clone(), v.passed)).collect::<Vec<_>>(),
        "actions": r.actions,
        "needs_attention": r.needs_attention,
        "error": r.error.as_ref().map(|e| e.message.clone()),
        "records": read_journal(journal).unwrap().iter().map(|r| r.entry.name()).collect::<Vec<_>>(),
    })
}

fn compare(expected: &str, got: Value) {
    let path = fixture(expected);
    if std::env::var_os("ROLLBACK_REGENERATE_FIXTURES").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&got).unwrap() + "\n").unwrap();
    }
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(got, want, "{expected}");
}

fn target(name: &str, at: &str) -> FakeTarget {
    FakeTarget::builder(name)
        .revision(Revision::new("1").image(format!("registry/{name}:v1")))
        .revision(Revision::new("2").image(format!("registry/{name}:v2")))
        .revision(Revision::new("3").image(format!("registry/{name}:v3")))
        .current(at)
        .build()
        .unwrap()
}

/// Resumes a copy of an interrupted fixture with live targets at the given revisions.
async fn resume_copy(name: &str, targets: &[(&str, &str)]) -> (Value, Vec<FakeTarget>) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join(name);
    std::fs::copy(fixture(name), &journal).unwrap();
    let mut registry = Registry::with_builtins();
    let live: Vec<FakeTarget> = targets.iter().map(|(n, at)| target(n, at)).collect();
    for t in &live {
        registry.insert(Arc::new(t.clone()));
    }
    let opts = ResumeOptions {
        registry,
        ..ResumeOptions::default()
    }
    .locks(Arc::new(FileLocks::new(dir.path().join("locks"))));
    let report = resume_with(&journal, opts).await.unwrap();
    (summary(&report, &journal), live)
}

#[test]
fn finished_old_journals_report_as_before() {
    for name in ["v0-succeeded", "v0-compensated"] {
        let path = fixture(&format!("{name}.jsonl"));
        let report = report_from_journal(&path).unwrap();
        compare(&format!("{name}.expected.json"), summary(&report, &path));
    }
}

#[tokio::test]
async fn an_old_journal_interrupted_after_apply_resumes_as_before() {
    let (got, live) = resume_copy(
        "v0-interrupted-applied.jsonl",
        &[("maint", "2"), ("api", "2"), ("same", "1")],
    )
    .await;
    compare("v0-interrupted-applied.expected.json", got);
    let at: Vec<String> = live.iter().map(FakeTarget::current_id).collect();
    assert_eq!(at, ["3", "2", "1"], "the temporary step is put back");
}

#[tokio::test]
async fn an_old_journal_interrupted_while_compensating_resumes_as_before() {
    let (got, live) = resume_copy(
        "v0-interrupted-compensating.jsonl",
        &[("web", "2"), ("db", "2")],
    )
    .await;
    compare("v0-interrupted-compensating.expected.json", got);
    let at: Vec<String> = live.iter().map(FakeTarget::current_id).collect();
    assert_eq!(at, ["3", "3"], "both are put back");
}

/// A journal from a newer major format is refused with a clear error (by every reader:
/// reports and resumes read through `read_journal`), not misread; an old one without a
/// format reads as 1.0.
#[tokio::test]
async fn a_journal_of_a_newer_major_format_is_refused_not_misread() {
    let old = fixture("v0-succeeded.jsonl");
    let text = std::fs::read_to_string(&old).unwrap();
    assert!(
        !text.contains("\"format\""),
        "the v0 fixture predates formats"
    );
    let records = read_journal(&old).unwrap();
    assert!(matches!(
        &records[0].entry,
        rollback_core::journal::Entry::Begin { format, .. } if format == "1.0"
    ));

    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.jsonl");
    let first = text.lines().next().unwrap();
    let mut begin: Value = serde_json::from_str(first).unwrap();
    begin["format"] = json!("2.0");
    // A newer major may change what records hold; this one's steps are gone.
    begin["steps"] = json!("moved elsewhere in format 2");
    let rest: Vec<&str> = text.lines().skip(1).collect();
    std::fs::write(&newer, format!("{begin}\n{}\n", rest.join("\n"))).unwrap();
    for e in [
        read_journal(&newer).unwrap_err(),
        report_from_journal(&newer).unwrap_err(),
        resume_with(&newer, ResumeOptions::default())
            .await
            .unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(
            msg.contains("format 2.0") && msg.contains("newer rollback"),
            "{msg}"
        );
    }
    // A newer minor version reads.
    begin["format"] = json!("1.7");
    begin["steps"] = serde_json::from_str::<Value>(first).unwrap()["steps"].clone();
    begin["added_in_1_7"] = json!(true);
    std::fs::write(&newer, format!("{begin}\n{}\n", rest.join("\n"))).unwrap();
    assert_eq!(read_journal(&newer).unwrap().len(), records.len());
}
