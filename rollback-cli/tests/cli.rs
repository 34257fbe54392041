//! The `rollback` binary itself against the AWS emulator (moto, through the real SDK in the
//! child process): `lint`, `plan` (terraform's exit codes, JSON) and `apply` on runbook
//! 000's file; bad input refused before anything is called.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{command, example, has_escapes, plain, rollback, text};
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

/// Every example runbook passes `lint` on a machine with no cloud configuration at all:
/// no kubeconfig (the Kubernetes ones included), no AWS region, credentials or profile.
#[test]
fn lint_and_policy_need_no_kubeconfig_and_no_aws_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let vars = [
        "ENV=prod",
        "HEALTH_URL=http://app/health",
        "GOOD_TAG=1.8.0",
        "SNAPSHOT=snap",
        "SERVICE=api",
        "SECRET=db",
        "BASE_URL=http://app",
        "CLUSTER=prod",
        "PIPELINE=deploy",
        "NAMESPACE=production",
        "DISTRIBUTION=E2QWRUHAPOMQZL",
        "STACK=apgms-prod",
        "TEMPLATE=s3://apgms-templates/prod/template.json",
        "PROMETHEUS_URL=http://prometheus:9090",
    ];
    let mut files: Vec<_> = std::fs::read_dir(common::repo().join("examples/runbooks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    let offline = |cmd: &[&str], file: &Path| {
        let mut args = cmd.to_vec();
        args.push(file.to_str().unwrap());
        for v in &vars {
            args.extend(["--var", v]);
        }
        let mut c = common::command(None, dir.path(), &args);
        c.env("HOME", dir.path())
            .env_remove("AWS_EC2_METADATA_DISABLED");
        for (k, _) in std::env::vars() {
            if k.starts_with("AWS_") || k == "KUBECONFIG" {
                c.env_remove(k);
            }
        }
        c.output().unwrap()
    };
    let mut policies = std::collections::BTreeMap::new();
    for file in &files {
        let out = offline(&["lint"], file);
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(": ok: "),
            "{}",
            text(&out.stdout)
        );
        // The least privilege is generated offline too.
        let out = offline(&["policy", "--format", "both"], file);
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            text(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["iam"]["Version"], "2012-10-17", "{doc}");
        let name = file.file_stem().unwrap().to_str().unwrap().to_string();
        policies.insert(name, (doc, text(&out.stderr)));
    }
    // A Deployment undo: a Role in its namespace, get and patch narrowed to the object.
    let (undo, _) = &policies["004-kubernetes-undo"];
    let role = &undo["rbac"]["items"][0];
    assert_eq!(role["metadata"]["namespace"], "production", "{undo}");
    let named = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resources"][0] == "deployments" && r.get("resourceNames").is_some())
        .unwrap_or_else(|| panic!("{role}"));
    assert_eq!(named["verbs"], json!(["get", "patch"]));
    assert!(
        undo["iam"]["Statement"].as_array().unwrap().is_empty(),
        "{undo}"
    );
    // A part that does not declare its permissions (runbook 002's smoke test, a command
    // check) is named, and --strict refuses.
    let (canary, stderr) = &policies["002-ecs-canary"];
    assert!(
        canary["undeclared"].to_string().contains("smoke_test.sh"),
        "{canary}"
    );
    assert!(
        stderr.contains("does not declare its permissions"),
        "{stderr}"
    );
    // Runbook 004's maintenance objects: each by name (create cannot be narrowed).
    let (maintenance, _) = &policies["004-maintenance"];
    assert!(
        maintenance["undeclared"].as_array().unwrap().is_empty(),
        "{maintenance}"
    );
    assert!(
        maintenance["rbac"].to_string().contains("frontend-flags"),
        "{maintenance}"
    );
    let file = common::repo().join("examples/runbooks/002-ecs-canary.yaml");
    let strict = offline(&["policy", "--strict"], &file);
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict.stderr));
    let bad = offline(&["policy", "--account", "12"], &file);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("12 digits"),
        "{}",
        text(&bad.stderr)
    );
}

/// An ECS service `prod/api` at 1.9.0 (revision 2, bad) with 1.8.0 before it, converging 6 s
/// after each deployment (a run is still waiting when interrupted), and a runbook rolling it
/// back (`check` adds a step check).
async fn slow_service(dir: &Path, check: &str) -> (AwsEmulator, std::path::PathBuf) {
    let emu = AwsEmulator::start().await.unwrap();
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/api";
    emu.seed(json!({"ecs": [{
        "cluster": "prod", "service": "api", "family": "api", "desired_count": 1,
        "revisions": [{"image": format!("{ecr}:1.8.0")}, {"image": format!("{ecr}:1.9.0")}],
        "current": 2
    }]}))
    .await
    .unwrap();
    emu.set_ecs_convergence(std::time::Duration::from_secs(6))
        .await
        .unwrap();
    let file = dir.join("api.yaml");
    std::fs::write(
        &file,
        format!("name: api back\nsteps:\n  - target: {{kind: ecs-service, cluster: prod, service: api}}\n    timeout: 2m\n{check}"),
    )
    .unwrap();
    (emu, file)
}

/// `rollback apply FILE --yes` running in the background, its stderr read line by line.
struct Running {
    child: std::process::Child,
    lines: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
}

impl Running {
    fn apply(emu: &AwsEmulator, dir: &Path, file: &Path) -> Running {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_rollback"))
            .args([
                "apply",
                file.to_str().unwrap(),
                "--yes",
                "--reason",
                "1.9.0 is bad",
            ])
            .current_dir(dir)
            .env("ROLLBACK_JOURNAL_DIR", dir.join("journal"))
            .env("ROLLBACK_LOCK_DIR", dir.join("locks"))
            .env("ROLLBACK_KNOWN_GOOD_DIR", dir.join("known-good"))
            .envs(emu.child_env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        Running { child, lines }
    }

    /// Reads stderr until a line containing `what` (panics if the run ends first).
    fn until(&mut self, what: &str) -> String {
        let found = self
            .lines
            .by_ref()
            .map(Result::unwrap)
            .find(|l| l.contains(what));
        found.unwrap_or_else(|| panic!("the run ended before printing {what:?}"))
    }

    fn ctrl_c(&self) {
        let sent = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// The rest of stderr and the exit code.
    fn finish(mut self) -> (Vec<String>, Option<i32>) {
        let rest: Vec<String> = self.lines.by_ref().map(Result::unwrap).collect();
        (rest, self.child.wait().unwrap().code())
    }
}

/// The records of the one journal in `dir`/journal.
fn only_journal(dir: &Path) -> String {
    let mut files = std::fs::read_dir(dir.join("journal")).unwrap();
    let journal = files.next().unwrap().unwrap().path();
    assert!(files.next().is_none(), "one journal");
    std::fs::read_to_string(journal).unwrap()
}

/// The transaction id in the printed `rollback resume ID` line.
fn resume_id(lines: &[String]) -> String {
    let hint = lines
        .iter()
        .find(|l| l.contains("Finish it with:") && l.contains("rollback resume"))
        .unwrap_or_else(|| panic!("the command to finish it in {lines:?}"));
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rollback resume") && l.ends_with("--put-back")),
        "and the one to put back: {lines:?}"
    );
    hint.rsplit(' ').next().unwrap().to_string()
}

/// Ctrl-C during the wait stops the run where it is: the apply journaled, nothing put back,
/// exit 130 with the commands that finish it or put it back; `list` and `status` show it
/// interrupted; `resume` finishes it without applying again.
#[tokio::test]
async fn an_interrupted_apply_is_listed_and_finished_by_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, file) = slow_service(dir.path(), "").await;
    let before = emu.calls().await.unwrap();
    let mut run = Running::apply(&emu, dir.path(), &file);
    run.until("waiting up to");
    run.ctrl_c();
    let (rest, code) = run.finish();
    assert_eq!(code, Some(130), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("stopping:")), "{rest:?}");
    let id = resume_id(&rest);
    let calls = gained(&before, &emu.calls().await.unwrap());
    assert_eq!(calls["UpdateService"], 1, "{calls:?}");
    let records = only_journal(dir.path());
    assert!(records.contains(r#""record":"interrupted""#), "{records}");
    assert!(!records.contains(r#""record":"end""#), "{records}");
    assert!(
        !records.contains(r#""record":"compensate_intent""#),
        "nothing put back: {records}"
    );

    let listed = rollback(Some(&emu), dir.path(), &["list", "-o", "json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert!(
        listed[0]["id"].as_str().unwrap().starts_with(&id),
        "{listed}"
    );
    assert_eq!(listed[0]["outcome"], "interrupted", "{listed}");
    let short = id.as_str();
    let unfinished = rollback(Some(&emu), dir.path(), &["status", short]);
    assert_eq!(unfinished.status.code(), Some(1));
    let out = text(&unfinished.stdout);
    assert!(out.contains("interrupted"), "{out}");
    assert!(
        out.contains("ecs-service/prod/api: api:2 -> api:1: applied"),
        "step by step: {out}"
    );
    assert!(
        text(&unfinished.stderr).contains("--put-back"),
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
        .env_remove("NO_COLOR")
        .envs(emu.child_env())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("util-linux's `script` gives the pseudo-terminal: {e}"));
    let raw = text(&out.stdout);
    assert!(out.status.success(), "{raw}");
    // A terminal: the statuses are coloured (green "ok"); the words are read without it.
    assert!(raw.contains("\x1b[32mok\x1b[0m"), "{raw:?}");
    let screen = plain(&raw);
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

/// After Ctrl-C, `rollback resume ID --put-back` puts the service back where the run found
/// it; a second put-back of the ended run is refused, calling nothing.
#[tokio::test]
async fn an_interrupted_apply_is_put_back_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, file) = slow_service(dir.path(), "").await;
    let before = emu.calls().await.unwrap();
    let mut run = Running::apply(&emu, dir.path(), &file);
    run.until("waiting up to");
    run.ctrl_c();
    let (rest, code) = run.finish();
    assert_eq!(code, Some(130), "{rest:?}");
    let id = resume_id(&rest);
    let back = rollback(Some(&emu), dir.path(), &["resume", &id, "--put-back"]);
    let out = text(&back.stdout);
    assert_eq!(back.status.code(), Some(1), "{out}{}", text(&back.stderr));
    assert!(out.contains("compensated"), "{out}");
    assert!(out.contains("put back on request"), "{out}");
    let calls = gained(&before, &emu.calls().await.unwrap());
    assert_eq!(
        calls["UpdateService"], 2,
        "applied, then put back: {calls:?}"
    );
    let history = rollback(
        Some(&emu),
        dir.path(),
        &["history", "ecs-service", "prod/api", "-o", "json"],
    );
    let history: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(
        history["current"], "api:2",
        "back at 1.9.0's revision: {history}"
    );

    let again = rollback(Some(&emu), dir.path(), &["resume", &id, "--put-back"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again.stderr).contains("already ended"),
        "{}",
        text(&again.stderr)
    );
    let calls = gained(&before, &emu.calls().await.unwrap());
    assert_eq!(calls["UpdateService"], 2, "nothing more sent: {calls:?}");
}

/// The first Ctrl-C does not stop a compensation under way (it is the call a run must
/// finish); a second exits at once, printing how to finish, without an end record.
#[tokio::test]
async fn a_second_ctrl_c_exits_at_once_during_compensation() {
    let dir = tempfile::tempdir().unwrap();
    let check =
        "    verify:\n      - command: {argv: [\"false\"]}\n        policy: {attempts: 1}\n";
    let (emu, file) = slow_service(dir.path(), check).await;
    let mut run = Running::apply(&emu, dir.path(), &file);
    run.until("compensating");
    run.ctrl_c();
    run.until("stopping:");
    run.ctrl_c();
    let (rest, code) = run.finish();
    assert_eq!(code, Some(130), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.starts_with("stopped at once")),
        "{rest:?}"
    );
    resume_id(&rest);
    let records = only_journal(dir.path());
    assert!(
        records.contains(r#""record":"compensate_intent""#),
        "{records}"
    );
    assert!(!records.contains(r#""record":"end""#), "{records}");
}

/// `--color`: none into a pipe by default, and none with NO_COLOR set (to anything but
/// nothing); `--color always` colours the statuses whatever NO_COLOR says, and `never`
/// never. `-v` starts the library's logs on stderr, and RUST_LOG, when set, is their filter.
#[tokio::test]
async fn colour_and_logs_follow_the_flags_and_the_environment() {
    let emu = incident().await;
    let dir = tempfile::tempdir().unwrap();
    let file = example("000-lambda-alias.yaml");
    let health = format!("HEALTH_URL={}", emu.health_url());
    let plan = |flags: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["plan", file.to_str().unwrap(), "--var", "ENV=prod"];
        args.extend(["--var", &health]);
        args.extend(flags);
        let out = command(Some(&emu), dir.path(), &args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        (text(&out.stdout), text(&out.stderr))
    };
    let want = format!("lambda-alias/{FUNCTION}:live: 3 -> 2");

    let (piped, logs) = plan(&[], &[]);
    assert!(!has_escapes(&piped), "{piped:?}");
    assert!(piped.contains(&want), "{piped}");
    assert!(logs.is_empty(), "no logs without -v: {logs}");
    let (always, _) = plan(&["--color", "always"], &[]);
    assert!(has_escapes(&always), "{always:?}");
    assert!(
        always.contains("\x1b[33m3 -> 2\x1b[0m"),
        "the change in yellow: {always:?}"
    );
    assert_eq!(plain(&always), piped, "the same words");
    let (no_color, _) = plan(&[], &[("NO_COLOR", "1")]);
    assert!(!has_escapes(&no_color), "{no_color:?}");
    let (empty, _) = plan(&["--color", "always"], &[("NO_COLOR", "")]);
    assert!(has_escapes(&empty), "{empty:?}");
    let (forced, _) = plan(&["--color", "always"], &[("NO_COLOR", "1")]);
    assert!(has_escapes(&forced), "--color always wins: {forced:?}");
    let (never, _) = plan(&["--color", "never"], &[]);
    assert!(!has_escapes(&never), "{never:?}");

    let (out, logs) = plan(&["-v"], &[]);
    assert_eq!(out, piped, "logs go to stderr only");
    assert!(
        logs.lines()
            .any(|l| l.contains(" INFO ") && l.contains("rollback_core")),
        "{logs}"
    );
    assert!(!has_escapes(&logs), "no colour into a pipe: {logs:?}");
    let (_, logs) = plan(&["-v"], &[("RUST_LOG", "off")]);
    assert!(logs.is_empty(), "RUST_LOG wins over -v: {logs}");
    let (_, logs) = plan(&[], &[("RUST_LOG", "rollback_core=info")]);
    assert!(
        logs.contains(" INFO "),
        "RUST_LOG alone starts them: {logs}"
    );
    let (_, logs) = plan(&["-v"], &[("RUST_LOG", "rollback_core=nonsense")]);
    assert!(
        logs.starts_with("warning: RUST_LOG=") && logs.contains(" INFO "),
        "a bad RUST_LOG is named and -v used: {logs}"
    );
}

/// Shell completions and the man page, made from the command line's definition, offline.
#[test]
fn completions_and_the_man_page_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = rollback(None, dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("apply") && bash.contains("--yes"), "{bash}");
    assert!(
        bash.contains("complete -F"),
        "a bash completion script: {bash}"
    );
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = run(&["completions", shell]);
        assert!(script.contains("namespace"), "{shell}: {script}");
    }
    let bad = rollback(None, dir.path(), &["completions", "tcsh"]);
    assert_eq!(bad.status.code(), Some(2), "clap's usage error");
    assert!(text(&bad.stderr).contains("bash"), "{}", text(&bad.stderr));

    // The page starts with .TH, after clap_mangen's definition of the apostrophe.
    let first = |page: &str| -> String {
        page.lines()
            .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
            .unwrap_or_default()
            .to_string()
    };
    let man = run(&["man"]);
    assert!(first(&man).starts_with(".TH rollback 1"), "{man}");
    assert!(
        man.contains("apply") && man.contains("\\-\\-kubeconfig"),
        "{man}"
    );
    let apply = run(&["man", "apply"]);
    assert!(first(&apply).starts_with(".TH rollback-apply 1"), "{apply}");
    assert!(apply.contains("\\-\\-yes"), "{apply}");
    let missing = rollback(None, dir.path(), &["man", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("give one of: lint, plan, apply"),
        "{}",
        text(&missing.stderr)
    );
}

/// A runbook naming the team's stores keeps its journal in S3 (listed, reported and found
/// from another folder, as on another machine) and what it verified in DynamoDB; stores of
/// unknown kinds or without their parameters are lint errors with their place.
#[tokio::test]
async fn team_stores_named_in_the_runbook_hold_the_journal_and_the_known_good_revision() {
    use rollback_aws::{Aws, DynamoDbKnownGood, S3Journals};
    use rollback_core::KnownGoodStore;
    let emu = incident().await;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    S3Journals::create_bucket(&aws, "team-rollback", "journals")
        .await
        .unwrap();
    let known_good = DynamoDbKnownGood::create_table(&aws, "known-good")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("team.yaml");
    std::fs::write(
        &file,
        format!(
            "name: lambda back\nreason: release 3 is bad\n\
             journal_store: {{kind: s3, bucket: team-rollback, prefix: journals}}\n\
             known_good: {{kind: dynamodb, table: known-good}}\n\
             steps:\n  - target: {{kind: lambda-alias, function: {FUNCTION}, alias: live}}\n\
             \x20   verify:\n      - http: {{url: \"{}\"}}\n",
            emu.health_url()
        ),
    )
    .unwrap();
    let applied = rollback(
        Some(&emu),
        dir.path(),
        &["apply", file.to_str().unwrap(), "--yes"],
    );
    assert!(applied.status.success(), "{}", text(&applied.stderr));

    // Another machine: an empty folder, the store named.
    let elsewhere = tempfile::tempdir().unwrap();
    let store = ["--journal-store", "s3://team-rollback/journals"];
    let listed = rollback(
        Some(&emu),
        elsewhere.path(),
        &[&["list", "-o", "json"][..], &store].concat(),
    );
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["outcome"], "succeeded", "{listed}");
    assert!(listed[0]["duration_ms"].is_u64(), "{listed}");
    let id = listed[0]["id"].as_str().unwrap()[..8].to_string();
    let report = rollback(
        Some(&emu),
        elsewhere.path(),
        &[&["report", id.as_str()][..], &store].concat(),
    );
    assert!(report.status.success(), "{}", text(&report.stderr));
    assert!(
        text(&report.stdout).contains("release 3 is bad"),
        "{}",
        text(&report.stdout)
    );
    let missing = rollback(
        Some(&emu),
        elsewhere.path(),
        &[&["status", "ffffffff"][..], &store].concat(),
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("s3://team-rollback"),
        "{}",
        text(&missing.stderr)
    );

    let target = rollback_core::TargetId::new("lambda-alias", format!("{FUNCTION}:live"));
    let good = known_good.latest(&target).await.unwrap().expect("recorded");
    assert_eq!(good.revision, "2");

    // Bad stores: each named at its line, nothing called.
    for (store, want) in [
        (
            "journal_store: {kind: nfs, path: /x}",
            "no journal store kind \"nfs\" (known: s3)",
        ),
        ("known_good: {kind: s3}", "takes bucket"),
        ("known_good: {table: t}", "known-good stores need a kind"),
    ] {
        let bad = dir.path().join("bad.yaml");
        std::fs::write(
            &bad,
            format!("name: x\n{store}\nsteps:\n  - target: {{kind: lambda-alias, function: f, alias: live}}\n"),
        )
        .unwrap();
        let out = rollback(Some(&emu), dir.path(), &["lint", bad.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(want) && err.contains("bad.yaml:2:"),
            "{want}: {err}"
        );
    }
}

/// A run interrupted on one machine is finished on another from the team's journal store:
/// `rollback resume ID --journal-store s3://...` in an empty folder, applying nothing twice.
#[tokio::test]
async fn an_interrupted_run_is_resumed_from_the_journal_store_elsewhere() {
    use rollback_aws::{Aws, S3Journals};
    let dir = tempfile::tempdir().unwrap();
    let store = "journal_store: {kind: s3, bucket: team-rollback, prefix: journals}\n";
    let (emu, file) = slow_service(dir.path(), store).await;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    S3Journals::create_bucket(&aws, "team-rollback", "journals")
        .await
        .unwrap();
    let before = emu.calls().await.unwrap();
    let mut run = Running::apply(&emu, dir.path(), &file);
    run.until("waiting up to");
    run.ctrl_c();
    let (rest, code) = run.finish();
    assert_eq!(code, Some(130), "{rest:?}");
    let id = resume_id(&rest);

    let elsewhere = tempfile::tempdir().unwrap();
    let resumed = rollback(
        Some(&emu),
        elsewhere.path(),
        &[
            "resume",
            &id,
            "--journal-store",
            "s3://team-rollback/journals",
        ],
    );
    assert!(
        resumed.status.success(),
        "{}{}",
        text(&resumed.stdout),
        text(&resumed.stderr)
    );
    let calls = gained(&before, &emu.calls().await.unwrap());
    assert_eq!(calls["UpdateService"], 1, "not applied twice: {calls:?}");
    // The store has the whole run now: its end is there for everyone.
    let listed = rollback(
        Some(&emu),
        dir.path(),
        &[
            "list",
            "-o",
            "json",
            "--journal-store",
            "s3://team-rollback/journals",
        ],
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["outcome"], "succeeded", "{listed}");
}
