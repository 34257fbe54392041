//! Journal paths that are not regular files, and files that are not journals: every one is
//! an `Error::Journal` at once, for `run`, `dry_run`, `resume` and `report_from_journal`,
//! without reading without bound or blocking on a named pipe.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rollback_core::journal::{read_journal, MAX_JOURNAL_BYTES, MAX_LINE_BYTES};
use rollback_core::{
    ErrorKind, FakeTarget, FileLocks, Outcome, Revision, Selector, Step, Transaction,
};

fn target(name: &str) -> FakeTarget {
    FakeTarget::builder(name)
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .convergence(Duration::from_millis(1))
        .build()
        .unwrap()
}

fn tx(dir: &Path, journal: &Path, t: &FakeTarget) -> Transaction {
    Transaction::builder("paths")
        .reason("journal path test")
        .journal(journal)
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(Arc::new(t.clone()), Selector::Previous))
        .build()
        .unwrap()
}

fn fifo(dir: &Path) -> PathBuf {
    let p = dir.join("pipe");
    let st = Command::new("mkfifo").arg(&p).status().unwrap();
    assert!(st.success(), "mkfifo failed");
    p
}

/// Paths that are not regular files: each must be refused before anything is read or sent.
fn special_paths(dir: &Path) -> Vec<PathBuf> {
    let d = dir.join("a-directory");
    std::fs::create_dir(&d).unwrap();
    vec![
        PathBuf::from("/dev/zero"),
        PathBuf::from("/dev/full"),
        fifo(dir),
        d,
    ]
}

#[tokio::test]
async fn special_files_are_refused_by_run_and_dry_run_with_nothing_applied() {
    let dir = tempfile::tempdir().unwrap();
    for path in special_paths(dir.path()) {
        let t = target("api");
        let tx = tx(dir.path(), &path, &t);
        for dry in [true, false] {
            let r = if dry {
                tx.dry_run().await
            } else {
                tx.run().await
            };
            let e = r.expect_err(&format!("{} (dry run {dry}) was accepted", path.display()));
            assert_eq!(e.kind(), ErrorKind::Journal, "{}: {e}", path.display());
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            assert!(msg.contains("regular file"), "{msg}");
        }
        assert_eq!(t.apply_count(), 0, "{}", path.display());
        assert!(t.calls().is_empty(), "{}: {:?}", path.display(), t.calls());
    }
}

#[tokio::test]
async fn special_files_are_refused_by_resume_and_report() {
    let dir = tempfile::tempdir().unwrap();
    for path in special_paths(dir.path()) {
        for e in [
            rollback_core::resume(&path).await.unwrap_err(),
            rollback_core::report_from_journal(&path).unwrap_err(),
            read_journal(&path).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Journal, "{}: {e}", path.display());
            assert!(e.to_string().contains("regular file"), "{e}");
        }
    }
}

/// A real journal, then files that are not journals (or no longer whole ones).
#[tokio::test]
async fn resume_of_files_that_are_not_journals_is_a_clear_journal_error() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    let t = target("api");
    let report = tx(dir.path(), &good, &t).run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let text = std::fs::read_to_string(&good).unwrap();
    let first = text.lines().next().unwrap().to_string();
    let second = text.lines().nth(1).unwrap().to_string();

    let long_line = format!("{first}\n{}\n", "x".repeat(MAX_LINE_BYTES + 1));
    let cases: Vec<(&str, Vec<u8>, &str)> =
        vec![
        ("empty", Vec::new(), "no complete journal record"),
        ("blank lines", b"\n\n  \n".to_vec(), "no complete journal record"),
        (
            "truncated first record",
            first.as_bytes()[..first.len() / 2].to_vec(),
            "no complete journal record",
        ),
        (
            "corrupt line in the middle",
            format!("{first}\nnot json at all\n{second}\n").into_bytes(),
            "line 2",
        ),
        (
            "pretty-printed JSON file",
            b"{\n  \"name\": \"config\",\n  \"items\": [1, 2]\n}\n".to_vec(),
            "line 1",
        ),
        (
            "one JSON object",
            br#"{"name":"config","items":[1,2]}"#.to_vec(),
            "line 1",
        ),
        (
            "someone else's JSON lines",
            b"{\"level\":\"info\",\"msg\":\"started\"}\n{\"level\":\"info\",\"msg\":\"done\"}\n"
                .to_vec(),
            "line 1",
        ),
        (
            "a binary",
            vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0xff, 0xfe, 0x00, 0x01],
            "line 1",
        ),
        (
            "a binary with newlines",
            vec![0xff, 0xfe, b'\n', 0x00, 0x80, b'\n', 0x01, 0x02],
            "line 1",
        ),
        ("a line over the cap", long_line.into_bytes(), "line 2"),
        (
            "not starting with begin",
            format!("{second}\n").into_bytes(),
            "begin record",
        ),
    ];
    for (name, bytes, says) in cases {
        let path = dir.path().join(format!("{}.jsonl", name.replace(' ', "-")));
        std::fs::write(&path, &bytes).unwrap();
        for e in [
            rollback_core::resume(&path).await.unwrap_err(),
            rollback_core::report_from_journal(&path).unwrap_err(),
        ] {
            assert_eq!(e.kind(), ErrorKind::Journal, "{name}: {e}");
            let msg = e.to_string();
            assert!(msg.contains(&path.display().to_string()), "{name}: {msg}");
            assert!(msg.contains(says), "{name}: {msg:?} does not say {says:?}");
            assert!(msg.len() < 400, "{name}: message too long: {msg}");
        }
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{name}: file changed");
    }
    assert_eq!(t.apply_count(), 1, "only the good run applied");
}

#[tokio::test]
async fn a_journal_over_the_size_cap_is_refused_without_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.jsonl");
    // Sparse: no disk is used, but the length is over the cap.
    std::fs::File::create(&path)
        .unwrap()
        .set_len(MAX_JOURNAL_BYTES + 1)
        .unwrap();
    for e in [
        rollback_core::resume(&path).await.unwrap_err(),
        rollback_core::report_from_journal(&path).unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Journal, "{e}");
        assert!(e.to_string().contains("larger than"), "{e}");
    }
    // A run refuses to append to it too.
    let t = target("api");
    let e = tx(dir.path(), &path, &t).run().await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Journal | ErrorKind::InvalidInput),
        "{e}"
    );
    assert_eq!(t.apply_count(), 0);
}
