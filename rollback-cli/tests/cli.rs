//! The `rollback` binary itself against the AWS emulator (moto, through the real SDK in the
//! child process): `lint`, `plan` (terraform's exit codes, JSON) and `apply` on runbook
//! 000's file; bad input refused before anything is called.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

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
    // The incident report, from the journal.
    let id = report["transaction"].as_str().unwrap();
    let md = rollback(Some(&emu), dir.path(), &["report", &id[..8]]);
    let md = text(&md.stdout);
    for want in [
        "# Incident report: lambda-mcp-rollback-prod",
        "| Outcome | **succeeded** |",
        "bug in release 3",
        &format!("**lambda-alias/{FUNCTION}:live**: 3 -> 2 (succeeded)"),
        "check GET",
        "## Timeline (UTC, from the journal)",
        &format!("applied lambda-alias/{FUNCTION}:live"),
        "## Root cause",
        "## Action items",
    ] {
        assert!(md.contains(want), "want {want:?} in:\n{md}");
    }
    let json = rollback(Some(&emu), dir.path(), &["report", id, "--format", "json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    let whats: Vec<&str> = json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["what"].as_str())
        .collect();
    assert_eq!(whats.first(), Some(&"begin"), "{whats:?}");
    for want in ["intent", "applied", "stable", "checked", "end"] {
        assert!(whats.contains(&want), "{want} in {whats:?}");
    }
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

    // Someone moves the alias after the plan was saved: the saved plan is stale and
    // applying it changes nothing.
    let moved = rollback(
        Some(&emu),
        dir.path(),
        &[
            "apply",
            f,
            "--var",
            "VERSION=2",
            "--yes",
            "--reason",
            "someone else",
        ],
    );
    assert!(moved.status.success(), "{}", text(&moved.stderr));
    let before = emu.calls().await.unwrap();
    let stale = rollback(
        Some(&emu),
        dir.path(),
        &["apply", "plan.json", "--yes", "--reason", "r"],
    );
    assert_eq!(stale.status.code(), Some(1));
    let err = text(&stale.stderr);
    assert!(
        err.contains("stale") && err.contains("planned 3 -> 1, now 2 -> 1"),
        "{err}"
    );
    assert_eq!(
        alias_version(&before, &emu.calls().await.unwrap()),
        0,
        "nothing changed"
    );
    // A fresh plan applies: the alias goes where it said.
    let again = rollback(
        Some(&emu),
        dir.path(),
        &["plan", f, "--var", "VERSION=1", "--out", "plan.json"],
    );
    assert_eq!(again.status.code(), Some(2));
    let applied = rollback(
        Some(&emu),
        dir.path(),
        &["apply", "plan.json", "--yes", "--reason", "r", "-o", "json"],
    );
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let report: Value =
        serde_json::from_str(text(&applied.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(report["steps"][0]["to"]["id"], "1", "{report}");
    assert_eq!(alias_version(&before, &emu.calls().await.unwrap()), 1);
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

/// Ctrl-C during the wait stops the run where it is (nothing put back) and names the
/// command that finishes it; `list` and `status` show it unfinished; `resume` finishes it
/// without applying again.
#[tokio::test]
async fn an_interrupted_apply_is_listed_and_finished_by_resume() {
    use std::io::{BufRead, BufReader};
    let emu = AwsEmulator::start().await.unwrap();
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/api";
    emu.seed(json!({"ecs": [{
        "cluster": "prod", "service": "api", "family": "api", "desired_count": 1,
        "revisions": [{"image": format!("{ecr}:1.8.0")}, {"image": format!("{ecr}:1.9.0")}],
        "current": 2
    }]}))
    .await
    .unwrap();
    // The service converges 6 s after each deployment: the run is still waiting when
    // interrupted, and the resumed run waits for the real convergence.
    emu.set_ecs_convergence(std::time::Duration::from_secs(6))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.yaml");
    std::fs::write(
        &file,
        "name: api back\nsteps:\n  - target: {kind: ecs-service, cluster: prod, service: api}\n    timeout: 2m\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let before = emu.calls().await.unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollback"))
        .args(["apply", f, "--yes", "--reason", "1.9.0 is bad"])
        .current_dir(dir.path())
        .env("ROLLBACK_JOURNAL_DIR", dir.path().join("journal"))
        .env("ROLLBACK_LOCK_DIR", dir.path().join("locks"))
        .env("ROLLBACK_KNOWN_GOOD_DIR", dir.path().join("known-good"))
        .envs(emu.child_env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let waiting = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.contains("waiting up to"));
    assert!(waiting.is_some(), "the run reached its wait");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    let hint = rest
        .iter()
        .find(|l| l.contains("rollback resume"))
        .expect("the command to finish it");
    let id = hint.rsplit(' ').next().unwrap().to_string();
    assert_eq!(
        gained(&before, &emu.calls().await.unwrap())["UpdateService"],
        1
    );

    let listed = rollback(Some(&emu), dir.path(), &["list", "-o", "json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["outcome"], Value::Null, "not ended: {listed}");
    let short = &id[..8];
    let unfinished = rollback(Some(&emu), dir.path(), &["status", short]);
    assert_eq!(unfinished.status.code(), Some(1));
    assert!(
        text(&unfinished.stderr).contains("rollback resume"),
        "{}",
        text(&unfinished.stderr)
    );

    let resumed = rollback(Some(&emu), dir.path(), &["resume", short]);
    assert!(
        resumed.status.success(),
        "{}{}",
        text(&resumed.stdout),
        text(&resumed.stderr)
    );
    assert!(
        text(&resumed.stdout).contains("succeeded"),
        "{}",
        text(&resumed.stdout)
    );
    assert_eq!(
        gained(&before, &emu.calls().await.unwrap())["UpdateService"],
        1,
        "not applied twice"
    );
    let done = rollback(Some(&emu), dir.path(), &["status", short]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    let human = rollback(Some(&emu), dir.path(), &["list"]);
    assert!(
        text(&human.stdout).contains("succeeded"),
        "{}",
        text(&human.stdout)
    );
    let missing = rollback(Some(&emu), dir.path(), &["resume", "ffffffff"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("rollback list"),
        "{}",
        text(&missing.stderr)
    );
}

/// On a real terminal (a pseudo-terminal from `script`), `apply` draws a spinner line per
/// step and a bar per stage, and ends with the report.
#[tokio::test]
async fn apply_on_a_terminal_shows_live_step_lines_and_the_summary() {
    let emu = incident().await;
    let dir = tempfile::tempdir().unwrap();
    let file = example("000-lambda-alias.yaml");
    let cmd = format!(
        "{} apply {} --var ENV=prod --var HEALTH_URL={} --yes --reason 'bug in release 3'",
        env!("CARGO_BIN_EXE_rollback"),
        file.display(),
        emu.health_url()
    );
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .current_dir(dir.path())
        .env("ROLLBACK_JOURNAL_DIR", dir.path().join("journal"))
        .env("ROLLBACK_LOCK_DIR", dir.path().join("locks"))
        .env("ROLLBACK_KNOWN_GOOD_DIR", dir.path().join("known-good"))
        .env("TERM", "xterm")
        .envs(emu.child_env())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("util-linux's `script` gives the pseudo-terminal: {e}"));
    let screen = text(&out.stdout);
    assert!(out.status.success(), "{screen}");
    // The stage bar, the step's line finished with its last words, the report.
    assert!(screen.contains("stage 1 ["), "{screen}");
    assert!(screen.contains("1/1 step(s)"), "{screen}");
    assert!(
        !screen.contains("2/1 step(s)"),
        "a step counts once: {screen}"
    );
    assert!(
        screen.contains(&format!("lambda-alias/{FUNCTION}:live: ok: verified at 2")),
        "{screen}"
    );
    assert!(screen.contains(": succeeded in"), "{screen}");
    // A terminal, not a log: no timestamped event lines.
    assert!(!screen.contains(" applied      lambda-alias"), "{screen}");
}

/// `runbook.schema.json` and `RUNBOOK.md` beside the crate are what `rollback schema`
/// generates from the types now (regenerate: `rollback schema > rollback-cli/runbook.schema.json`
/// and `rollback schema --format markdown > rollback-cli/RUNBOOK.md`).
#[test]
fn the_shipped_schema_and_reference_are_the_generated_ones() {
    let dir = tempfile::tempdir().unwrap();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (args, file) in [
        (&["schema"][..], "runbook.schema.json"),
        (&["schema", "--format", "markdown"][..], "RUNBOOK.md"),
    ] {
        let out = rollback(None, dir.path(), args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let shipped = std::fs::read_to_string(crate_dir.join(file)).unwrap();
        assert!(
            text(&out.stdout) == shipped,
            "rollback-cli/{file} is out of date: regenerate it with `rollback {}`",
            args.join(" ")
        );
    }
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(crate_dir.join("runbook.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are refused"
    );
    assert_eq!(schema["required"], json!(["name"]));
    let kinds = schema["$defs"]["KindAndParams"]["properties"]["kind"]["description"]
        .as_str()
        .unwrap();
    assert!(
        kinds.contains("lambda-alias") && kinds.contains("k8s-pods-ready"),
        "{kinds}"
    );
}
