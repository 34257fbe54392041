//! What people read, as snapshots (`tests/snapshots/`): the human output of `plan`, the
//! progress of `apply --yes` into a pipe (stderr), `history` and `report --format
//! markdown`, through the binary against the AWS emulator on runbook 000's file. What
//! changes from run to run (times, ids, durations, ports, paths, accounts, who) is
//! redacted, so a snapshot changes only when the output does.
//!
//! After a deliberate change of the output: `INSTA_UPDATE=always cargo test -p
//! rollback-cli --test snapshots`, then review the `.snap` files' diff.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{command, example, text};
use rollback_testkit::AwsEmulator;
use serde_json::json;

const FUNCTION: &str = "agentcore-mcp-s3-tools-prod";

/// Runbook 000's incident: versions 1 to 3 of the function, `live` on 3, which is bad.
async fn incident() -> AwsEmulator {
    let emu = AwsEmulator::start()
        .await
        .unwrap_or_else(|e| panic!("the AWS emulator must run for these tests: {e}"));
    emu.seed(json!({"lambda": [{
        "function": FUNCTION,
        "alias": "live",
        "versions": ["release 1", "release 2", "release 3"],
        "alias_version": "3",
    }]}))
    .await
    .unwrap();
    emu.mark_bad("lambda", &format!("{FUNCTION}:live"), "3")
        .await
        .unwrap();
    emu
}

/// A regex matching `s` literally.
fn literal(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '/' || c == '_' || c == '-' {
                c.to_string()
            } else {
                format!("\\{c}")
            }
        })
        .collect()
}

/// What changes from run to run, in the order it is replaced (the longest first).
fn filters(dir: &Path) -> Vec<(String, String)> {
    let mut f = vec![
        // Paths: the run's temporary directory, and the repository's checkout.
        (literal(&dir.display().to_string()), "[TMP]".into()),
        (
            literal(&common::repo().display().to_string()),
            "[REPO]".into(),
        ),
        (
            literal(&common::repo().canonicalize().unwrap().display().to_string()),
            "[REPO]".into(),
        ),
    ];
    f.extend(
        [
            // Transaction ids, whole or their first 8 characters (in a journal's name,
            // after its start time).
            (
                r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
                "[ID]",
            ),
            (r"\b\d{8}T\d{6}Z-[0-9a-f]{8}\b", "[STAMP]-[ID]"),
            // Who: the user is set, the machine and the process are not.
            (
                r"\boncall@[^\s|)]+ \(pid \d+\)",
                "oncall@[HOST] (pid [PID])",
            ),
            // Dates and times: RFC 3339 ones whole; the others as placeholders of their
            // own width, so that the tables keep their columns.
            (
                r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?",
                "[DATETIME]",
            ),
            (r"\b\d{4}-\d{2}-\d{2}\b", "YYYY-MM-DD"),
            (r"\b\d{2}:\d{2}:\d{2}\.\d{3}\b", "hh:mm:ss.mmm"),
            (r"\b\d{2}:\d{2}:\d{2}\b", "hh:mm:ss"),
            // Durations: `1.2s`, `340ms`, `1m 5s`, `12.5µs`.
            (
                r"\b\d+(\.\d+)?(ns|µs|us|ms|s|m|h)( \d+(\.\d+)?(ms|s))?\b",
                "[DURATION]",
            ),
            // The code's SHA-256 (base64), which the emulator's zip changes each run.
            (r"[A-Za-z0-9+/]{43}=", "[SHA256]"),
            // The emulator's ports, account ids in ARNs.
            (r"(127\.0\.0\.1|localhost):\d+", "$1:[PORT]"),
            (r"\b\d{12}\b", "[ACCOUNT]"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string())),
    );
    f
}

/// Runs `rollback args...` for the snapshot: exit code, stdout and stderr.
fn run(emu: &AwsEmulator, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = command(Some(emu), dir, args)
        // Who runs it, as the journal and the report say.
        .env("USER", "oncall")
        .output()
        .unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// `args` of runbook 000's file with its variables.
fn with_file(emu: &AwsEmulator, cmd: &[&str]) -> Vec<String> {
    let file = example("000-lambda-alias.yaml");
    cmd.iter()
        .map(|s| s.to_string())
        .chain([file.display().to_string()])
        .chain(["--var".into(), "ENV=prod".into()])
        .chain(["--var".into(), format!("HEALTH_URL={}", emu.health_url())])
        .collect()
}

/// Filters as insta takes them.
fn as_strs(f: &[(String, String)]) -> Vec<(&str, &str)> {
    f.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// The plan and the history of the alias, before anything changes.
#[tokio::test]
async fn plan_and_history() {
    let emu = incident().await;
    let dir = tempfile::tempdir().unwrap();
    let (code, plan, err) = run(&emu, dir.path(), &strs(&with_file(&emu, &["plan"])));
    assert_eq!(code, Some(2), "changes planned: {err}");
    let alias = format!("{FUNCTION}:live");
    let (code, history, err) = run(&emu, dir.path(), &["history", "lambda-alias", &alias]);
    assert_eq!(code, Some(0), "{err}");
    let filters = filters(dir.path());
    insta::with_settings!({filters => as_strs(&filters)}, {
        insta::assert_snapshot!("plan", plan);
        insta::assert_snapshot!("history", history);
    });
}

/// `apply --yes` into a pipe: the plan and report on stdout, the progress lines on
/// stderr; then the incident report of the run.
#[tokio::test]
async fn apply_progress_and_report() {
    let emu = incident().await;
    let dir = tempfile::tempdir().unwrap();
    let args = with_file(&emu, &["apply", "--yes", "--reason", "bug in release 3"]);
    let (code, out, progress) = run(&emu, dir.path(), &strs(&args));
    assert_eq!(code, Some(0), "{out}{progress}");
    let journal = dir
        .path()
        .join("journal")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let journal = journal.to_str().unwrap();
    let (code, report, err) = run(
        &emu,
        dir.path(),
        &["report", journal, "--format", "markdown"],
    );
    assert_eq!(code, Some(0), "{err}");
    let filters = filters(dir.path());
    insta::with_settings!({filters => as_strs(&filters)}, {
        insta::assert_snapshot!("apply_stdout", out);
        insta::assert_snapshot!("apply_progress", progress);
        insta::assert_snapshot!("report", report);
    });
}
