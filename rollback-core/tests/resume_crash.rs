//! A run whose process dies between apply and stable is finished by `resume`, which does
//! not apply anything twice. The transaction runs in a child process (this test binary,
//! re-run on the ignored `crash_child` test) that the parent kills once the apply is
//! journaled.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rollback_core::journal::read_journal;
use rollback_core::{
    EventKind, FileLocks, InMemoryTarget, Outcome, Registry, ResumeOptions, Revision, Selector,
    Step, Transaction,
};

const DIR_VAR: &str = "ROLLBACK_CRASH_DIR";

fn target(dir: &Path) -> InMemoryTarget {
    InMemoryTarget::builder("api")
        .revision(Revision::new("1").image("registry/api:v1"))
        .revision(Revision::new("2").image("registry/api:v2"))
        .revision(Revision::new("3").image("registry/api:v3"))
        // Long enough that the parent kills the child before the target converges.
        .convergence(Duration::from_secs(4))
        .state_file(dir.join("state.json"))
        .build()
        .expect("in-memory target")
}

#[tokio::test]
#[ignore = "child process of resume_after_a_crash_between_apply_and_stable"]
async fn crash_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        eprintln!(
            "crash_child only runs as the child of resume_after_a_crash_between_apply_and_stable"
        );
        return;
    };
    let dir = Path::new(&dir);
    let t = target(dir);
    let (b, mut events) = Transaction::builder("crash")
        .reason("resume test")
        .journal(dir.join("journal.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(Arc::new(t), Selector::Previous))
        .events();
    let tx = b.build().expect("transaction");
    let run = tokio::spawn(async move { tx.run().await });
    while let Some(e) = events.recv().await {
        if e.kind == EventKind::Applied {
            println!("APPLIED");
        }
    }
    let _ = run.await;
}

#[tokio::test]
async fn resume_after_a_crash_between_apply_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--ignored", "--nocapture"])
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if line.trim() == "APPLIED" {
            break;
        }
        seen.push(line);
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let journal = dir.path().join("journal.jsonl");
    let kinds: Vec<String> = read_journal(&journal)
        .unwrap_or_else(|e| panic!("no journal from the child ({e}); its output: {seen:?}"))
        .iter()
        .map(|r| r.entry.name())
        .collect();
    assert_eq!(
        kinds,
        ["begin", "planned", "locked", "intent", "applied"],
        "the child died between apply and stable"
    );

    let t = target(dir.path());
    assert_eq!(t.current_id(), "2");
    assert_eq!(t.apply_count(), 1);

    // The registry rebuilds the in-memory target from the spec in the journal (its state file).
    let report = rollback_core::resume_with(
        &journal,
        ResumeOptions {
            registry: Registry::with_builtins(),
            locks: Arc::new(FileLocks::new(dir.path().join("locks"))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(t.apply_count(), 1, "apply ran once");
    assert_eq!(t.current_id(), "2");
    let kinds: Vec<String> = read_journal(&journal)
        .unwrap()
        .iter()
        .map(|r| r.entry.name())
        .collect();
    assert_eq!(
        kinds,
        [
            "begin",
            "planned",
            "locked",
            "intent",
            "applied",
            "resumed",
            "stable",
            "step_verified",
            "end"
        ]
    );
    // The report of the finished run can be rebuilt for an incident report.
    let again = rollback_core::report_from_journal(&journal).unwrap();
    assert_eq!(again.outcome, Outcome::Succeeded);
    assert_eq!(again.steps[0].to.as_ref().unwrap().id, "2");
}
