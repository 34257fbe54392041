//! The `rollback` binary itself against the AWS emulator (moto, through the real SDK in the
//! child process): `lint`, `plan` (terraform's exit codes, JSON) and `apply` on runbook
//! 000's file; bad input refused before anything is called.
#![allow(clippy::unwrap_used)]

mod common;

use common::{example, rollback, text};
use rollback_testkit::{gained, AwsEmulator};
use serde_json::{json, Value};

const FUNCTION: &str = "agentcore-mcp-s3-tools-prod";

/// The emulator with runbook 000's function: versions 1 to 3, `live` on 3, which is bad.
async fn incident() -> AwsEmulator {
    let emu = AwsEmulator::start().await.unwrap();
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

fn alias_version(calls_before: &Value, calls_after: &Value) -> u64 {
    gained(calls_before, calls_after)
        .get("UpdateAlias")
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn runbook_000_is_linted_planned_and_applied_through_the_binary() {
    let emu = incident().await;
    let dir = tempfile::tempdir().unwrap();
    let file = example("000-lambda-alias.yaml");
    let file = file.to_str().unwrap();
    let health = format!("HEALTH_URL={}", emu.health_url());
    let vars = ["--var", "ENV=prod", "--var", &health];
    let with = |cmd: &[&str]| -> Vec<String> {
        cmd.iter()
            .copied()
            .chain([file])
            .chain(vars)
            .map(str::to_string)
            .collect()
    };
    let run = |cmd: &[&str]| {
        let args = with(cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        rollback(Some(&emu), dir.path(), &args)
    };

    let lint = run(&["lint"]);
    assert!(lint.status.success(), "{}", text(&lint.stderr));
    assert!(
        text(&lint.stdout).contains("1 step(s) in 1 stage(s)"),
        "{}",
        text(&lint.stdout)
    );

    let before = emu.calls().await.unwrap();
    let plan = run(&["plan", "--output", "json"]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "changes planned: {}",
        text(&plan.stderr)
    );
    let report: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(report["outcome"], "planned");
    assert_eq!(report["steps"][0]["from"]["id"], "3");
    assert_eq!(report["steps"][0]["to"]["id"], "2");
    let human = run(&["plan"]);
    let out = text(&human.stdout);
    assert!(
        out.contains(&format!("lambda-alias/{FUNCTION}:live: 3 -> 2"))
            && out.contains("then check: GET"),
        "{out}"
    );
    // No terminal and no --yes: refused, nothing changed.
    let refused = run(&["apply", "--reason", "bug in release 3"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("--yes"),
        "{}",
        text(&refused.stderr)
    );
    // No reason: refused too.
    let no_reason = run(&["apply", "--yes"]);
    assert_eq!(no_reason.status.code(), Some(1));
    assert!(
        text(&no_reason.stderr).contains("reason"),
        "{}",
        text(&no_reason.stderr)
    );
    assert_eq!(alias_version(&before, &emu.calls().await.unwrap()), 0);

    let applied = run(&[
        "apply",
        "--yes",
        "--reason",
        "bug in release 3",
        "--output",
        "json",
    ]);
    assert!(
        applied.status.success(),
        "{}{}",
        text(&applied.stdout),
        text(&applied.stderr)
    );
    let lines: Vec<Value> = text(&applied.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (report, events) = lines.split_last().unwrap();
    assert_eq!(report["outcome"], "succeeded", "{report}");
    assert_eq!(report["reason"], "bug in release 3");
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"applied") || kinds.iter().any(|k| k.contains("appl")),
        "{kinds:?}"
    );
    assert_eq!(
        alias_version(&before, &emu.calls().await.unwrap()),
        1,
        "one UpdateAlias"
    );
    assert!(emu.healthy().await.unwrap());
    // The journal is where the environment says.
    assert!(dir
        .path()
        .join("journal")
        .read_dir()
        .unwrap()
        .next()
        .is_some());
}

#[tokio::test]
async fn a_target_already_where_the_file_asks_plans_nothing_and_exits_0() {
    let emu = incident().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exact.yaml");
    std::fs::write(
        &file,
        format!(
            "name: pin\nsteps:\n  - target: {{kind: lambda-alias, function: {FUNCTION}, alias: live}}\n    to: {{exact: ${{VERSION}}}}\n    allow_current: true\n"
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let at = rollback(Some(&emu), dir.path(), &["plan", f, "--var", "VERSION=3"]);
    assert_eq!(
        at.status.code(),
        Some(0),
        "{}{}",
        text(&at.stdout),
        text(&at.stderr)
    );
    assert!(
        text(&at.stdout).contains("nothing to do"),
        "{}",
        text(&at.stdout)
    );
    let back = rollback(
        Some(&emu),
        dir.path(),
        &["plan", f, "--var", "VERSION=1", "--out", "plan.json"],
    );
    assert_eq!(back.status.code(), Some(2), "{}", text(&back.stderr));
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(saved["format"], "rollback-plan/1");
    assert_eq!(saved["plan"]["steps"][0]["to"]["id"], "1");
}

/// Broken files: each refused by `lint` (offline: no emulator, no credentials) with the
/// line and column of the problem.
#[test]
fn lint_rejects_broken_files_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let target = "  - target: {kind: lambda-alias, function: f, alias: live}\n";
    let table: &[(&str, String, &str)] = &[
        ("unknown key", format!("name: x\nsteps:\n{target}    verfy: []\n"), ":4:5: unknown field `verfy`"),
        (
            "unknown kind",
            "name: x\nsteps:\n  - target: {kind: lambda-alia, function: f}\n".into(),
            "unknown target kind \"lambda-alia\"",
        ),
        (
            "unknown target parameter",
            "name: x\nsteps:\n  - target: {kind: lambda-alias, function: f, alias: live, regin: x}\n".into(),
            "lambda-alias takes no regin",
        ),
        ("unset variable", format!("name: x-${{NOPE_UNSET}}\nsteps:\n{target}"), ":1:9: variable NOPE_UNSET is not set"),
        ("bad selector", format!("name: x\nsteps:\n{target}    to: latest\n"), ":4:9: \"latest\" is not a selector"),
        ("bad duration", format!("name: x\nsteps:\n{target}    timeout: 5 minutes\n"), ":4:14: \"5 minutes\" is not a duration"),
        (
            "bad check",
            format!("name: x\nsteps:\n{target}    verify:\n      - http: {{url: \"not a url\"}}\n"),
            ":5:",
        ),
        ("no steps", "name: x\n".into(), "no steps"),
        ("not yaml", "name: [x\n".into(), ":"),
    ];
    for (what, body, want) in table {
        let file = dir.path().join("broken.yaml");
        std::fs::write(&file, body).unwrap();
        let out = rollback(None, dir.path(), &["lint", file.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert!(err.contains(want), "{what}: want {want:?} in:\n{err}");
        assert!(err.contains("broken.yaml"), "{what}: names the file: {err}");
    }
}
