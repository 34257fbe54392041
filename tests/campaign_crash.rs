//! Crash campaign: a transaction over an ECS service and a Lambda alias runs in a child
//! process (this test binary, re-run on the ignored `crash_child` test) that the parent
//! kills with SIGKILL right after each kind of journal record in turn, then finishes in the
//! parent with `resume_with` (the AWS registry rebuilds the targets from the journal).
//! After each: the final state is right, no mutation was sent twice (the emulator's
//! mutating calls by operation equal those of an uninterrupted run) and no lease is left
//! behind (a new transaction acquires every target at once).
//!
//! The child freezes after every record: its event sink and a hook before every `apply`
//! (the record just written is then an intent) print `PAUSE` and block until the parent
//! answers, on a current-thread runtime, so nothing else runs meanwhile. The parent reads
//! the journal at each pause and kills when its last record is the one wanted. The kinds
//! come from reference runs, so new record kinds are covered by construction.
#![allow(clippy::unwrap_used)]

#[path = "campaign/mod.rs"]
mod campaign;

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use campaign::{kinds, mutations_by_op, pause, pause_hook, Hooked, Paused, Reader, Trio};
use futures::FutureExt;
use rollback_aws::{Aws, EcsService, LambdaAlias};
use rollback_core::verify::HttpCheck;
use rollback_core::{
    Check, FileLocks, Holder, LockManager, Outcome, Policy, ResumeOptions, RollbackTarget,
    Selector, Step, TargetId, Transaction,
};
use rollback_testkit::AwsEmulator;

const DIR: &str = "CAMPAIGN_CRASH_DIR";
const ENDPOINT: &str = "CAMPAIGN_CRASH_ENDPOINT";
const TAG: &str = "CAMPAIGN_CRASH_TAG";

/// The transaction: stage 1 the ECS service, stage 2 the Lambda alias, each back to its
/// previous revision and checked against the emulated application's health (data, so the
/// journal holds the checks and a resumed run runs them).
fn transaction(aws: &Aws, dir: &Path, t: &Trio, health: &str, pausing: bool) -> Transaction {
    let wrap = |inner: Arc<dyn RollbackTarget>| -> Arc<dyn RollbackTarget> {
        if pausing {
            Arc::new(Hooked {
                inner,
                before_apply: Some(pause_hook("apply")),
                after_apply: None,
            })
        } else {
            inner
        }
    };
    let svc = wrap(Arc::new(
        EcsService::new(aws, campaign::CLUSTER, &t.service).unwrap(),
    ));
    let alias = wrap(Arc::new(
        LambdaAlias::new(aws, &t.function, "live").unwrap(),
    ));
    let check = || Check::new(HttpCheck::new(health)).policy(Policy::once());
    let mut b = Transaction::builder(format!("crash {}", t.function))
        .reason("crash campaign")
        .journal(dir.join("journal.jsonl"))
        // The locks of $ROLLBACK_LOCK_DIR (the builder's default), the parent's too.
        .concurrency(1)
        .step(
            Step::new(svc, Selector::Previous)
                .verify(check())
                .timeout(Duration::from_secs(60)),
        )
        .stage()
        .step(
            Step::new(alias, Selector::Previous)
                .verify(check())
                .timeout(Duration::from_secs(60)),
        );
    if pausing {
        b = b.on_event(|e| pause(&e.kind.to_string()));
    }
    b.build().unwrap()
}

#[tokio::test]
#[ignore = "child process of a_crash_after_any_journal_record_resumes_without_sending_anything_twice"]
async fn crash_child() {
    let (Some(dir), Some(endpoint), Some(tag)) = (
        std::env::var_os(DIR),
        std::env::var(ENDPOINT).ok(),
        std::env::var(TAG).ok(),
    ) else {
        eprintln!("crash_child only runs as the child of the crash campaign");
        return;
    };
    let aws = Aws::from_sdk_config(&rollback_testkit::emulator_sdk_config(&endpoint).await);
    let t = Trio::names(&tag);
    let health = format!("{endpoint}/_emulator/health");
    let report = transaction(&aws, Path::new(&dir), &t, &health, true)
        .run()
        .await;
    println!(
        "RESULT {}",
        match &report {
            Ok(r) => r.outcome.to_string(),
            Err(e) => format!("error {e}"),
        }
    );
    // Records written after `run` returned (none today) are reached here.
    pause("returned");
}

/// What a scenario does: whether its Lambda step's revision is marked bad (so that step's
/// health check fails and the run compensates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Succeeds,
    Compensates,
}

struct Case<'a> {
    emu: &'a AwsEmulator,
    tag: String,
    dir: tempfile::TempDir,
    trio: Trio,
}

impl<'a> Case<'a> {
    async fn new(emu: &'a AwsEmulator, scenario: Scenario, tag: String) -> Case<'a> {
        let mut trios = [Trio::names(&tag)];
        campaign::seed(emu, &mut trios).await;
        let [trio] = trios;
        emu.control("DELETE", "bad", None).await.unwrap();
        if scenario == Scenario::Compensates {
            emu.mark_bad("lambda", &format!("{}:live", trio.function), "2")
                .await
                .unwrap();
        }
        emu.reset_calls().await.unwrap();
        Case {
            emu,
            tag,
            dir: tempfile::tempdir().unwrap(),
            trio,
        }
    }

    fn journal(&self) -> std::path::PathBuf {
        self.dir.path().join("journal.jsonl")
    }

    fn child(&self) -> Paused {
        Paused::spawn(
            "crash_child",
            &[
                (DIR, self.dir.path().display().to_string()),
                (ENDPOINT, self.emu.endpoint().to_string()),
                (TAG, self.tag.clone()),
            ],
        )
    }

    /// The targets' ids, as the journal names them.
    fn ids(&self) -> Vec<TargetId> {
        vec![
            TargetId::new(
                "ecs-service",
                format!("{}/{}", campaign::CLUSTER, self.trio.service),
            ),
            TargetId::new("lambda-alias", format!("{}:live", self.trio.function)),
        ]
    }

    /// (task definition, alias version) now.
    async fn state(&self, r: &Reader) -> (String, String) {
        (
            r.service_td(&self.trio.service).await,
            r.alias_version(&self.trio.function).await,
        )
    }

    fn at(&self, n: u32) -> (String, String) {
        (self.trio.td(n), n.to_string())
    }
}

/// An uninterrupted run: its record kinds, outcome and mutating calls.
struct Reference {
    kinds: Vec<String>,
    outcome: String,
    mutations: BTreeMap<String, u64>,
}

async fn reference(emu: &AwsEmulator, scenario: Scenario, r: &Reader) -> Reference {
    let case = Case::new(emu, scenario, format!("ref-{scenario:?}").to_lowercase()).await;
    let said = case.child().finish();
    let outcome = campaign::result_line(&said)
        .unwrap_or_else(|| panic!("the child said {said:?}"))
        .to_string();
    let want = match scenario {
        Scenario::Succeeds => (Outcome::Succeeded, case.at(2)),
        Scenario::Compensates => (Outcome::Compensated, case.at(3)),
    };
    assert_eq!(outcome, want.0.to_string(), "{said:?}");
    assert_eq!(case.state(r).await, want.1);
    let mutations = mutations_by_op(&emu.calls().await.unwrap());
    Reference {
        kinds: kinds(&case.journal()),
        outcome,
        mutations,
    }
}

/// The kinds to kill after, in order of first appearance (from `from` on).
fn distinct_from(kinds: &[String], from: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in &kinds[from..] {
        if !out.contains(k) {
            out.push(k.clone());
        }
    }
    out
}

/// Kills the child right after the first `kind` record; resumes; checks. Returns the
/// records written before the kill.
async fn crash_after(
    emu: &AwsEmulator,
    scenario: Scenario,
    kind: &str,
    reference: &Reference,
    reader: &Reader,
) -> usize {
    let case = Case::new(
        emu,
        scenario,
        format!("{scenario:?}-{kind}")
            .to_lowercase()
            .replace('_', "-"),
    )
    .await;
    let journal = case.journal();
    let mut child = case.child();
    loop {
        let Some(_what) = child.next_pause() else {
            panic!(
                "{scenario:?}: the child ended without pausing right after a {kind:?} record; journal: {:?}",
                kinds(&journal)
            );
        };
        if kinds(&journal).last().map(String::as_str) == Some(kind) {
            break;
        }
        child.go();
    }
    child.kill();
    let before = kinds(&journal);
    assert_eq!(before.last().map(String::as_str), Some(kind));

    // The default lock manager is $ROLLBACK_LOCK_DIR's, as in the child.
    let locks = FileLocks::from_env();
    let report = rollback_core::resume_with(
        &journal,
        ResumeOptions {
            registry: rollback_aws::registry(),
            ..Default::default()
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{scenario:?}, killed after {kind}: resume failed: {e}"));

    let planned = before.iter().any(|k| k == "planned");
    let now = case.state(reader).await;
    let mutations = mutations_by_op(&emu.calls().await.unwrap());
    if planned {
        assert_eq!(
            report.outcome.to_string(),
            reference.outcome,
            "{scenario:?}, killed after {kind}: {report}"
        );
        assert_eq!(
            mutations, reference.mutations,
            "{scenario:?}, killed after {kind}: mutations sent (an uninterrupted run sends {:?})",
            reference.mutations
        );
    } else {
        // Killed in preflight: nothing was changed and resume changes nothing.
        assert_eq!(report.outcome, Outcome::Failed, "{report}");
        assert!(mutations.is_empty(), "{mutations:?}");
    }
    let want = if report.outcome == Outcome::Succeeded {
        case.at(2)
    } else {
        case.at(3)
    };
    assert_eq!(now, want, "{scenario:?}, killed after {kind}: {report}");
    // No lease left behind: another transaction takes every target at once.
    for id in case.ids() {
        let lease = locks
            .acquire(
                &id,
                &Holder::current("crash-campaign-probe"),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|e| {
                panic!("{scenario:?}, killed after {kind}: a lease was left behind: {e}")
            });
        locks.release(&lease).await.unwrap();
    }
    before.len()
}

#[test]
fn a_crash_after_any_journal_record_resumes_without_sending_anything_twice() {
    // The resumed run's targets are rebuilt from the journal (endpoint, region) with the
    // standard credential chain; the emulator takes any credentials.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    // Child and parent share one lock folder, the default one ($ROLLBACK_LOCK_DIR).
    let locks = tempfile::tempdir().unwrap();
    std::env::set_var("ROLLBACK_LOCK_DIR", locks.path());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(campaign_run());
}

async fn campaign_run() {
    let emu = campaign::emulator().await;
    let reader = Reader::new(emu.endpoint()).await;
    let started = Instant::now();
    let ok = reference(&emu, Scenario::Succeeds, &reader).await;
    let comp = reference(&emu, Scenario::Compensates, &reader).await;
    for r in [&ok, &comp] {
        println!(
            "crash campaign: reference run -> {}: records {:?}, mutating calls {:?}",
            r.outcome, r.kinds, r.mutations
        );
    }
    // Every kind of the run that succeeds; for the run that compensates, every kind from its
    // first failure on.
    let first_failure = comp
        .kinds
        .iter()
        .position(|k| k == "step_failed")
        .unwrap_or(comp.kinds.len());
    let mut cases: Vec<(Scenario, String)> = distinct_from(&ok.kinds, 0)
        .into_iter()
        .map(|k| (Scenario::Succeeds, k))
        .collect();
    cases.extend(
        distinct_from(&comp.kinds, first_failure)
            .into_iter()
            .map(|k| (Scenario::Compensates, k)),
    );
    let mut failures = Vec::new();
    for (scenario, kind) in &cases {
        let reference = if *scenario == Scenario::Succeeds {
            &ok
        } else {
            &comp
        };
        let t0 = Instant::now();
        let run = AssertUnwindSafe(crash_after(&emu, *scenario, kind, reference, &reader))
            .catch_unwind()
            .await;
        match run {
            Ok(n) => println!(
                "crash campaign: {scenario:?}, SIGKILL after record {n} ({kind}), resumed: right state, nothing sent twice, no lease left, in {:.1?}",
                t0.elapsed()
            ),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                println!("crash campaign: {scenario:?}, SIGKILL after {kind}: FAILED: {msg}");
                failures.push(format!("{scenario:?} after {kind}: {msg}"));
            }
        }
    }
    println!(
        "crash campaign: {} kills in {:.1?}, {} failed",
        cases.len(),
        started.elapsed(),
        failures.len()
    );
    // The kinds the issue names are among those covered.
    let named_ok = [
        "begin",
        "planned",
        "locked",
        "intent",
        "applied",
        "stable",
        "checked",
        "step_verified",
        "end",
        "released",
    ];
    for k in named_ok {
        if !ok.kinds.iter().any(|x| x == k) {
            failures.push(format!(
                "no {k:?} record in a run that succeeds: {:?}",
                ok.kinds
            ));
        }
    }
    for k in [
        "step_failed",
        "compensate_intent",
        "compensated",
        "end",
        "released",
    ] {
        if !comp.kinds[first_failure..].iter().any(|x| x == k) {
            failures.push(format!(
                "no {k:?} record after the failure of a run that compensates: {:?}",
                comp.kinds
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
