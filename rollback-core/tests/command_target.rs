//! `CommandTarget` driving the real recipe scripts (`examples/recipes/terraform/rollback-terraform`,
//! `examples/recipes/alembic/rollback-alembic`) against stand-in `terraform` and `alembic`
//! programs (`tests/fixtures/command_target/bin/`, first on the target's `PATH`), which
//! record their calls and keep a simulated state: Terraform itself cannot be installed here.
//! The Terraform revisions are the commits of a real git repository in a temporary folder.
#![cfg(feature = "process")]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rollback_core::command_target::CommandTargetBuilder;
use rollback_core::journal::read_journal;
use rollback_core::runbook::{Runbook, Vars};
use rollback_core::verify::CommandCheck;
use rollback_core::{
    Change, CommandTarget, Error, ErrorKind, EventKind, FileKnownGood, FileLocks, Interrupt,
    Outcome, Registry, ResumeOptions, Revision, RollbackTarget, Selector, Step, StepStatus,
    Transaction, TransactionBuilder,
};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn standins() -> PathBuf {
    manifest().join("tests/fixtures/command_target/bin")
}

fn recipe(path: &str) -> String {
    manifest()
        .join("../examples/recipes")
        .join(path)
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The stand-ins first, then this process's `PATH` (sh, git, sed...).
fn path_with_standins() -> String {
    format!(
        "{}:{}",
        standins().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=Ann Ops",
            "-c",
            "user.email=ann@example.com",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A git repository whose `infra/` holds a stand-in Terraform configuration, one commit
/// per version (and an unrelated commit between each, which is no revision), the last
/// version applied.
struct TfRepo {
    dir: tempfile::TempDir,
    repo: PathBuf,
    /// The commits touching `infra/`, oldest first, as the recipe names them (12 characters).
    commits: Vec<String>,
}

impl TfRepo {
    /// `versions`: the version of each commit, oldest first, and whether its
    /// configuration's postcondition fails once applied.
    fn new(versions: &[(&str, bool)]) -> TfRepo {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join("infra")).unwrap();
        git(&repo, &["init", "-q"]);
        let mut commits = Vec::new();
        let mut last_full = String::new();
        for (i, (version, bad)) in versions.iter().enumerate() {
            let mut config = format!("version = \"{version}\"\n");
            if *bad {
                config.push_str("health = \"bad\"\n");
            }
            std::fs::write(repo.join("infra/main.tf"), config).unwrap();
            git(&repo, &["add", "-A"]);
            git(&repo, &["commit", "-q", "-m", &format!("infra {version}")]);
            last_full = git(&repo, &["rev-parse", "HEAD"]);
            commits.push(git(&repo, &["rev-parse", "--short=12", "HEAD"]));
            std::fs::write(repo.join("NOTES"), format!("note {i}\n")).unwrap();
            git(&repo, &["add", "-A"]);
            git(&repo, &["commit", "-q", "-m", "notes, not infra"]);
        }
        let r = TfRepo { dir, repo, commits };
        std::fs::write(r.applied(), format!("{last_full}\n")).unwrap();
        let (last, _) = versions.last().unwrap();
        std::fs::write(r.state(), format!("{last}\n")).unwrap();
        r
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("tf-state")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("tf-calls.log")
    }

    fn applied(&self) -> PathBuf {
        self.dir.path().join("applied-commit")
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    /// The simulated infrastructure's version.
    fn version(&self) -> String {
        read(&self.state()).trim().to_string()
    }

    /// The commit the recipe recorded as applied, as 12 characters.
    fn applied_commit(&self) -> String {
        read(&self.applied()).trim().chars().take(12).collect()
    }

    /// The stand-in terraform's `apply` calls, each with the version it applied.
    fn applies(&self) -> Vec<String> {
        read(&self.log())
            .lines()
            .filter(|l| l.starts_with("apply"))
            .map(String::from)
            .collect()
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PATH", path_with_standins()),
            ("ROLLBACK_TF_DIR", "infra".into()),
            ("ROLLBACK_TF_APPLIED", self.applied().display().to_string()),
            ("TF_STANDIN_LOG", self.log().display().to_string()),
            ("TF_STANDIN_STATE", self.state().display().to_string()),
            ("TMPDIR", self.dir.path().display().to_string()),
        ]
    }

    /// The Terraform recipe as a command target named `infra`.
    fn target(&self) -> CommandTargetBuilder {
        let script = recipe("terraform/rollback-terraform");
        let mut b = CommandTarget::builder("infra")
            .current([script.as_str(), "current"])
            .history([script.as_str(), "history"])
            .plan([script.as_str(), "plan"])
            .apply([script.as_str(), "apply"])
            .stable([script.as_str(), "stable"])
            .cwd(&self.repo)
            .timeout(Duration::from_secs(60));
        for (k, v) in self.env() {
            b = b.env(k, v);
        }
        b
    }

    /// A check that the simulated infrastructure runs `version`.
    fn runs(&self, version: &str) -> CommandCheck {
        CommandCheck::new([
            "grep".to_string(),
            "-qx".into(),
            version.into(),
            self.state().display().to_string(),
        ])
    }

    fn transaction(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("release broke the load balancer")
            .journal(self.journal())
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
            .known_good(Arc::new(FileKnownGood::new(
                self.dir.path().join("known-good"),
            )))
    }

    /// The repository's worktrees: the recipe removes the temporary ones it adds.
    fn worktrees(&self) -> usize {
        git(&self.repo, &["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count()
    }
}

#[tokio::test]
async fn terraform_recipe_rolls_back_to_the_previous_commit_and_it_is_verified() {
    let tf = TfRepo::new(&[("v1", false), ("v2", false)]);
    let (v1, v2) = (tf.commits[0].clone(), tf.commits[1].clone());
    let t = tf.target().build().unwrap();
    assert_eq!(t.current().await.unwrap().id, v2);
    let history: Vec<String> = t
        .history()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        history,
        [v2.clone(), v1.clone()],
        "commits touching infra/, newest first"
    );

    let step = || Step::new(Arc::new(t.clone()), Selector::Previous).verify(tf.runs("v1"));
    // The plan is `terraform plan` of the previous commit; it changes nothing.
    let planned = tf
        .transaction("plan")
        .journal(tf.dir.path().join("plan.jsonl"))
        .step(step())
        .build()
        .unwrap();
    let plan = planned.dry_run().await.unwrap();
    assert_eq!(plan.outcome, Outcome::Planned, "{plan}");
    let diff = plan.steps[0].diff.to_string();
    assert!(diff.contains(r#"version = "v2" -> "v1""#), "{diff}");
    assert!(diff.contains("infra v2 -> infra v1"), "{diff}");
    assert!(tf.applies().is_empty(), "a dry run applies nothing");
    assert_eq!(
        (tf.version(), tf.applied_commit()),
        ("v2".into(), v2.clone())
    );

    let tx = tf
        .transaction("terraform back")
        .step(step())
        .build()
        .unwrap();
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let s = &report.steps[0];
    assert_eq!(s.status, StepStatus::Succeeded, "{report}");
    assert_eq!(s.from.as_ref().unwrap().id, v2);
    assert_eq!(s.to.as_ref().unwrap().id, v1);
    assert!(s.verdicts.iter().all(|v| v.passed), "{report}");
    assert_eq!(tf.version(), "v1");
    assert_eq!(
        tf.applied_commit(),
        v1,
        "the recipe recorded the commit it applied"
    );
    assert_eq!(
        tf.applies(),
        ["apply -auto-approve -input=false -no-color @ v1"],
        "applied once, from a checkout of the previous commit"
    );
    let log = read(&tf.log());
    assert!(
        log.contains("plan -detailed-exitcode -input=false -no-color -lock=false @ v1"),
        "stable is a plan showing no changes: {log}"
    );
    assert_eq!(tf.worktrees(), 1, "temporary worktrees removed");
    assert_eq!(t.current().await.unwrap().id, v1);
}

#[tokio::test]
async fn a_stable_command_reporting_failed_is_compensated_by_applying_the_original_commit() {
    // The previous commit's configuration fails its postcondition once applied.
    let tf = TfRepo::new(&[("v1", true), ("v2", false)]);
    let (v1, v2) = (tf.commits[0].clone(), tf.commits[1].clone());
    let t = tf.target().build().unwrap();
    let report = tf
        .transaction("terraform back")
        .step(Step::new(Arc::new(t), Selector::Previous).timeout(Duration::from_secs(60)))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let error = report.steps[0].error.as_ref().expect("the step's error");
    assert_eq!(error.kind, ErrorKind::RolloutFailed, "{error:?}");
    assert!(error.message.starts_with("command/infra: "), "{error:?}");
    assert!(error.message.contains("postcondition failed"), "{error:?}");
    assert_eq!(
        tf.applies(),
        [
            "apply -auto-approve -input=false -no-color @ v1",
            "apply -auto-approve -input=false -no-color @ v2"
        ],
        "the rollback, then the compensation back to the original commit"
    );
    assert_eq!(tf.version(), "v2");
    assert_eq!(tf.applied_commit(), v2);
    assert_ne!(v1, v2);
    assert_eq!(tf.worktrees(), 1);
}

#[tokio::test]
async fn a_command_that_overruns_its_timeout_is_a_timeout_naming_the_target() {
    let t = CommandTarget::builder("slow")
        .current(["sh", "-c", "echo 'looking...' >&2; exec sleep 30"])
        .history(["sh", "-c", "echo '[]'"])
        .apply(["true"])
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = t.current().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "killed, not waited for"
    );
    assert!(
        matches!(&e, Error::Timeout { target, waited, .. }
            if target == "command/slow" && *waited == Duration::from_millis(300)),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("command/slow: timed out after 300ms"),
        "{text}"
    );
    assert!(text.contains("the current command `sh -c"), "{text}");
    assert!(text.contains("last seen: looking..."), "{text}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn a_failing_command_is_a_backend_error_whose_quoted_stderr_is_scrubbed_everywhere() {
    let tf = TfRepo::new(&[("v1", false), ("v2", false)]);
    let t = tf
        .target()
        .env("TF_STANDIN_FAIL_APPLY", "1")
        .secret_env("TF_TOKEN_app", "tok-9f8e7d6c5b")
        .build()
        .unwrap();
    let secrets = ["hunter2", "tok-9f8e7d6c5b"];

    // Directly: a typed error, the stderr excerpt quoted with the secrets taken out.
    let change = Change::new(
        t.id(),
        Revision::new(tf.commits[1].clone()),
        Revision::new(tf.commits[0].clone()),
    );
    let e = t.apply(&change).await.unwrap_err();
    assert!(
        matches!(&e, Error::Backend { target, retryable: false, .. } if target == "command/infra"),
        "{e:?}"
    );
    let shown = [
        e.to_string(),
        format!("{e:?}"),
        std::error::Error::source(&e).unwrap().to_string(),
        format!("{t:?}"),
        serde_json::to_string(&t.spec()).unwrap(),
    ];
    for text in &shown {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    let message = &shown[0];
    assert!(message.contains("the apply command"), "{message}");
    assert!(message.contains("failed (exit 1)"), "{message}");
    assert!(message.contains("password=<redacted>"), "{message}");
    assert!(message.contains("(token <redacted>)"), "{message}");
    assert!(
        message.contains(&format!("terraform apply failed at {}", tf.commits[0])),
        "{message}"
    );
    assert!(
        shown[4].contains("TF_TOKEN_app"),
        "the secret's name is kept"
    );

    // Through a transaction: the journal and the report hold the same scrubbed text.
    let report = tf
        .transaction("terraform back")
        .step(Step::new(Arc::new(t), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_ne!(report.outcome, Outcome::Succeeded, "{report}");
    let error = report.steps[0].error.as_ref().expect("the step's error");
    assert_eq!(error.kind, ErrorKind::Backend, "{error:?}");
    assert!(error.message.contains("password=<redacted>"), "{error:?}");
    let journal = read(&tf.journal());
    assert!(journal.contains("password=<redacted>"), "{journal}");
    let report_text = format!("{report}\n{report:?}");
    for secret in secrets {
        assert!(!journal.contains(secret), "{secret} in the journal");
        assert!(!report_text.contains(secret), "{secret} in the report");
    }
    assert_eq!(tf.version(), "v2", "nothing was applied");
}

/// A runbook running the Terraform recipe; `extra` goes into the target's parameters.
fn runbook_text(tf: &TfRepo, extra: &str, apply: &str) -> String {
    let script = recipe("terraform/rollback-terraform");
    let env: Vec<String> = tf
        .env()
        .iter()
        .map(|(k, v)| format!("{k}: {v:?}"))
        .collect();
    format!(
        r#"name: terraform back
reason: release broke the load balancer
journal: {journal:?}
locks: {{kind: file, dir: {locks:?}}}
steps:
  - target:
      kind: command
      name: infra
      current: [{script:?}, current]
      history: [{script:?}, history]
      plan: [{script:?}, plan]
      apply: {apply}
      stable: [{script:?}, stable]
      env: {{{env}}}
      cwd: {repo:?}
      timeout: 1m{extra}
    to: previous
    verify:
      - command: {{argv: [grep, -qx, v1, {state:?}]}}
"#,
        journal = tf.journal().display().to_string(),
        locks = tf.dir.path().join("locks").display().to_string(),
        env = env.join(", "),
        repo = tf.repo.display().to_string(),
        state = tf.state().display().to_string(),
        apply = apply.replace("SCRIPT", &format!("{script:?}")),
    )
}

async fn build_runbook(text: &str, dir: &Path) -> rollback_core::Result<TransactionBuilder> {
    let runbook = Runbook::parse("infra.yaml", dir, text, &Vars::new().without_environment())?;
    runbook.build(&Registry::with_builtins()).await
}

#[tokio::test]
async fn a_runbook_file_with_kind_command_builds_through_the_registry_and_runs() {
    let tf = TfRepo::new(&[("v1", false), ("v2", false)]);
    let text = runbook_text(&tf, "", "[SCRIPT, apply]");
    let b = build_runbook(&text, tf.dir.path()).await.unwrap();
    let tx = b
        .known_good(Arc::new(FileKnownGood::new(
            tf.dir.path().join("known-good"),
        )))
        .build()
        .unwrap();
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(report.steps[0].target.to_string(), "command/infra");
    assert_eq!(tf.version(), "v1");
    assert_eq!(tf.applied_commit(), tf.commits[0]);
    assert_eq!(tf.applies().len(), 1);
}

#[tokio::test]
async fn bad_input_is_refused_before_any_command_runs() {
    let tf = TfRepo::new(&[("v1", false), ("v2", false)]);
    let cases = [
        // A misspelt parameter, an empty apply, a zero timeout, a folder that is not there.
        (
            runbook_text(&tf, "\n      aply: [x]", "[SCRIPT, apply]"),
            "unknown field `aply`",
        ),
        (
            runbook_text(&tf, "", "[]"),
            "the apply command is missing or empty",
        ),
        (
            runbook_text(&tf, "", "[SCRIPT, apply]").replace("timeout: 1m", "timeout: 0s"),
            "the timeout is 0",
        ),
        (
            runbook_text(&tf, "", "[SCRIPT, apply]").replace(
                &format!("cwd: {:?}", tf.repo.display().to_string()),
                "cwd: no-such-dir",
            ),
            "is not a directory",
        ),
    ];
    for (text, want) in cases {
        let e = build_runbook(&text, tf.dir.path()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{want}");
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
    // In code: an empty argv.
    let e = tf.target().apply(Vec::<String>::new()).build().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(
        e.to_string()
            .contains("the apply command is missing or empty"),
        "{e}"
    );

    // An apply program that is not there builds (a runbook lints offline) and is refused in
    // preflight, before even `current` runs.
    let text = runbook_text(&tf, "", "[./no-such-apply-script]");
    let tx = build_runbook(&text, tf.dir.path())
        .await
        .unwrap()
        .known_good(Arc::new(FileKnownGood::new(
            tf.dir.path().join("known-good"),
        )))
        .build()
        .unwrap();
    let refused = match tx.run().await {
        Err(e) => e.to_string(),
        Ok(report) => {
            assert_eq!(report.outcome, Outcome::Failed, "{report}");
            report.error.map(|e| e.message).unwrap_or_default()
        }
    };
    assert!(refused.contains("no-such-apply-script"), "{refused}");
    assert!(refused.contains("command/infra"), "{refused}");
    assert!(
        !tf.log().exists(),
        "no terraform call at all: {}",
        read(&tf.log())
    );
    assert_eq!(tf.version(), "v2");
}

#[tokio::test]
async fn the_example_runbook_builds_with_its_variables() {
    let tf = TfRepo::new(&[("v1", false), ("v2", false)]);
    let file = manifest().join("../examples/recipes/terraform/runbook.yaml");
    let vars = Vars::new()
        .without_environment()
        .set("INFRA_REPO", tf.repo.display().to_string())
        .set("TF_DIR", "infra")
        .set("HEALTH_URL", "http://app.example.com/health");
    let runbook = Runbook::load(&file, &vars).unwrap();
    let b = runbook.build(&Registry::with_builtins()).await.unwrap();
    let steps: Vec<_> = b.stages().flatten().collect();
    assert_eq!(steps[0].target().id().to_string(), "command/infra-prod");
    let spec = steps[0].target().spec();
    assert_eq!(spec.params["env"]["ROLLBACK_TF_DIR"], "infra");
    assert_eq!(spec.params["timeout"], "15m");
}

#[tokio::test]
async fn a_resume_rebuilds_the_target_from_its_journal_through_the_registry() {
    let tf = TfRepo::new(&[("v1", false), ("v2", false)]);
    let t = tf.target().build().unwrap();
    let interrupt = Interrupt::new();
    let (b, mut events) = tf
        .transaction("terraform back")
        .step(Step::new(Arc::new(t), Selector::Previous).verify(tf.runs("v1")))
        .interrupt(interrupt.clone())
        .events();
    let tx = b.build().unwrap();
    let asker = tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if e.kind == EventKind::Applied {
                interrupt.interrupt();
            }
        }
    });
    let report = tx.run().await.unwrap();
    drop(tx);
    asker.await.unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted, "{report}");
    assert_eq!(tf.applies().len(), 1);
    let calls_before = read(&tf.log()).lines().count();

    // The journal names the target as data: kind `command` and its parameters.
    let records = read_journal(tf.journal()).unwrap();
    let journal = read(&tf.journal());
    assert!(journal.contains(r#""kind":"command""#), "{journal}");
    assert!(journal.contains("rollback-terraform"), "{journal}");
    assert!(!records.is_empty());

    // No instance is registered: the target is rebuilt from the journal's spec.
    let registry = Registry::with_builtins();
    assert!(registry.target_kinds().contains(&"command".to_string()));
    let opts = ResumeOptions {
        registry,
        known_good: Arc::new(FileKnownGood::new(tf.dir.path().join("known-good"))),
        ..Default::default()
    };
    let resumed = rollback_core::resume_with(tf.journal(), opts)
        .await
        .unwrap();
    assert_eq!(resumed.outcome, Outcome::Succeeded, "{resumed}");
    assert_eq!(tf.applies().len(), 1, "not applied twice");
    let log = read(&tf.log());
    let after: Vec<&str> = log.lines().skip(calls_before).collect();
    assert!(
        after
            .iter()
            .any(|l| l.starts_with("plan -detailed-exitcode")),
        "the rebuilt target waited for stable with the recipe: {after:?}"
    );
    assert_eq!(tf.version(), "v1");
}

#[tokio::test]
async fn alembic_recipe_downgrades_and_compensation_upgrades_again() {
    let dir = tempfile::tempdir().unwrap();
    let revisions = dir.path().join("revisions");
    let state = dir.path().join("db-state");
    let log = dir.path().join("alembic-calls.log");
    std::fs::write(
        &revisions,
        "1975ea83b712 create account table\n27c6a30d7c24 add a column\nae1027a6acf3 add \"audit\" index\n",
    )
    .unwrap();
    std::fs::write(&state, "ae1027a6acf3\n").unwrap();
    std::fs::write(dir.path().join("alembic.ini"), "[alembic]\n").unwrap();
    let script = recipe("alembic/rollback-alembic");
    let t = CommandTarget::builder("accounts-db")
        .current([script.as_str(), "current"])
        .history([script.as_str(), "history"])
        .apply([script.as_str(), "apply"])
        .env("PATH", path_with_standins())
        .env("ROLLBACK_ALEMBIC_CONFIG", "alembic.ini")
        .env("ALEMBIC_STANDIN_REVISIONS", revisions.display().to_string())
        .env("ALEMBIC_STANDIN_STATE", state.display().to_string())
        .env("ALEMBIC_STANDIN_LOG", log.display().to_string())
        .env("TMPDIR", dir.path().display().to_string())
        .secret_env("DATABASE_URL", "postgresql://app:s3cr3t-pw@db/accounts")
        .cwd(dir.path())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let ids: Vec<String> = t
        .history()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        ids,
        ["ae1027a6acf3", "27c6a30d7c24", "1975ea83b712", "base"]
    );
    let current = t.current().await.unwrap();
    assert_eq!(current.description.as_deref(), Some("add \"audit\" index"));

    let db_at = |rev: &str| {
        CommandCheck::new([
            "grep".to_string(),
            "-qx".into(),
            rev.into(),
            state.display().to_string(),
        ])
    };
    let tx = |check: CommandCheck| {
        Transaction::builder("down-migration")
            .reason("migration ae1027a6acf3 locks the accounts table")
            .journal(dir.path().join(format!("journal-{}.jsonl", uuid_like())))
            .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
            .known_good(Arc::new(FileKnownGood::new(dir.path().join("known-good"))))
            .step(Step::new(Arc::new(t.clone()), Selector::Previous).verify(check))
            .build()
            .unwrap()
    };
    // Down one migration, verified.
    let report = tx(db_at("27c6a30d7c24")).run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(read(&state).trim(), "27c6a30d7c24");
    // Down one more, but the check fails: compensation upgrades back.
    let report = tx(db_at("no-such-revision")).run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(read(&state).trim(), "27c6a30d7c24");
    let moves: Vec<String> = read(&log)
        .lines()
        .filter(|l| l.contains("grade"))
        .map(String::from)
        .collect();
    assert_eq!(
        moves,
        [
            "-c alembic.ini downgrade 27c6a30d7c24",
            "-c alembic.ini downgrade 1975ea83b712",
            "-c alembic.ini upgrade 27c6a30d7c24"
        ]
    );
}

/// A name no other journal in the folder has.
fn uuid_like() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

#[tokio::test]
async fn the_terraform_recipe_target_passes_the_conformance_suite() {
    use rollback_core::conformance::{assert_conformance, Fixture};
    let tf = TfRepo::new(&[("v1", false), ("v2", false), ("v3", false)]);
    let canary = "tok-canary-51f0e2";
    let t = tf
        .target()
        .secret_env("TF_TOKEN_app", canary)
        .build()
        .unwrap();
    let fixture = Fixture {
        unknown_revision: "0000deadbeef".into(),
        secret_canary: Some(canary.into()),
        stable_timeout: Duration::from_secs(60),
        may_mutate: true,
    };
    let report = rollback_core::conformance::run(&t, &fixture).await;
    assert!(report.is_ok(), "{report:#?}");
    for check in [
        "apply",
        "apply_again",
        "apply_stale_conflict",
        "restore",
        "no_secret_leaks",
    ] {
        assert!(
            report.passed.iter().any(|p| p == check),
            "{check} did not run: {report:#?}"
        );
    }
    assert_conformance(&t, &fixture).await;
    assert_eq!(tf.version(), "v3", "the suite put the target back");
    assert_eq!(tf.applied_commit(), tf.commits[2]);
    assert_eq!(tf.worktrees(), 1);
}

/// The recipe with the real `terraform` (not installable by the test scripts, so not on
/// every machine: run it with `cargo test -p rollback-core --test command_target --
/// --ignored` where one is on PATH; it fails, saying so, where none is): the built-in
/// `terraform_data` resource needs no provider download, and a local backend at an
/// absolute path stands for the remote backend the recipe needs.
#[tokio::test]
#[ignore = "needs the real terraform on PATH"]
async fn the_terraform_recipe_with_real_terraform() {
    let on_path = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("terraform").is_file());
    assert!(
        on_path,
        "no terraform on PATH: this test runs the recipe with the real binary (the stand-in tests cover the recipe without it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let state = dir.path().join("terraform.tfstate");
    std::fs::create_dir_all(repo.join("infra")).unwrap();
    git(&repo, &["init", "-q"]);
    let mut commits = Vec::new();
    for version in ["v1", "v2"] {
        let config = format!(
            "terraform {{\n  backend \"local\" {{\n    path = {:?}\n  }}\n}}\n\nresource \"terraform_data\" \"app\" {{\n  input = \"{version}\"\n}}\n",
            state.display().to_string()
        );
        std::fs::write(repo.join("infra/main.tf"), config).unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", &format!("infra {version}")]);
        commits.push(git(&repo, &["rev-parse", "--short=12", "HEAD"]));
    }
    let script = recipe("terraform/rollback-terraform");
    let applied = dir.path().join("applied");
    let t = CommandTarget::builder("infra")
        .current([script.as_str(), "current"])
        .history([script.as_str(), "history"])
        .plan([script.as_str(), "plan"])
        .apply([script.as_str(), "apply"])
        .stable([script.as_str(), "stable"])
        .cwd(&repo)
        .env("ROLLBACK_TF_DIR", "infra")
        .env("ROLLBACK_TF_APPLIED", applied.display().to_string())
        .env("TMPDIR", dir.path().display().to_string())
        .env("TF_IN_AUTOMATION", "1")
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    // The deploy of v2, made the usual way, then recorded.
    let deploy = |args: &[&str]| {
        let out = Command::new("terraform")
            .args(args)
            .current_dir(repo.join("infra"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    };
    deploy(&["init", "-input=false", "-no-color"]);
    deploy(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let out = Command::new(&script)
        .args(["record", "HEAD"])
        .current_dir(&repo)
        .env("ROLLBACK_TF_DIR", "infra")
        .env("ROLLBACK_TF_APPLIED", &applied)
        .status()
        .unwrap();
    assert!(out.success());

    let report = Transaction::builder("terraform back")
        .reason("v2 broke it")
        .journal(dir.path().join("journal.jsonl"))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .known_good(Arc::new(FileKnownGood::new(dir.path().join("known-good"))))
        .step(Step::new(Arc::new(t.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let diff = report.steps[0].diff.to_string();
    assert!(diff.contains(r#"~ input = "v2" -> "v1""#), "{diff}");
    let tfstate = read(&state);
    assert!(tfstate.contains(r#""value": "v1""#), "{tfstate}");
    assert_eq!(t.current().await.unwrap().id, commits[0]);
}
