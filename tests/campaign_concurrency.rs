//! Concurrency campaign, through the real SDK against the AWS emulator:
//! - two processes on one target: the one holding the lease proceeds, the other is refused
//!   `Locked` naming the holder, and sends nothing;
//! - someone else changes a target between our plan and our apply: a conflict, their change
//!   kept, nothing sent by us, no waiting;
//! - someone else changes it right after our apply: the step fails at once (counted in
//!   polls, not seconds) and their change is kept (compensation does not clobber it).
#![allow(clippy::unwrap_used)]

#[path = "campaign/mod.rs"]
mod campaign;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use campaign::{mutations_by_op, pause, Hook, Hooked, Paused, Reader, Trio};
use rollback_aws::{Aws, EcsService, LambdaAlias, SecretVersion};
use rollback_core::{ErrorKind, FileLocks, Outcome, RollbackTarget, Selector, Step, Transaction};
use rollback_testkit::{count_in, mutations_in, AwsEmulator};
use serde_json::{json, Value};

const ENDPOINT: &str = "CAMPAIGN_CONC_ENDPOINT";
const TAG: &str = "CAMPAIGN_CONC_TAG";
const HOLDER: &str = "CAMPAIGN_CONC_HOLDER";
const PAUSING: &str = "CAMPAIGN_CONC_PAUSING";
const JOURNAL: &str = "CAMPAIGN_CONC_JOURNAL";

#[tokio::test]
#[ignore = "child process of two_processes_on_one_target_one_proceeds_the_other_is_locked"]
async fn lock_child() {
    let (Ok(endpoint), Ok(tag), Ok(holder), Ok(journal)) = (
        std::env::var(ENDPOINT),
        std::env::var(TAG),
        std::env::var(HOLDER),
        std::env::var(JOURNAL),
    ) else {
        eprintln!("lock_child only runs as the child of the concurrency campaign");
        return;
    };
    let aws = Aws::from_sdk_config(&rollback_testkit::emulator_sdk_config(&endpoint).await);
    let t = Trio::names(&tag);
    let alias = LambdaAlias::new(&aws, &t.function, "live").unwrap();
    let mut b = Transaction::builder("concurrency")
        .reason("concurrency campaign")
        .holder(&holder)
        .journal(&journal)
        // $ROLLBACK_LOCK_DIR, shared by both children.
        .step(Step::new(Arc::new(alias), Selector::Previous));
    if std::env::var(PAUSING).is_ok() {
        b = b.on_event(|e| pause(&e.kind.to_string()));
    }
    let result = match b.build().unwrap().run().await {
        Ok(r) => json!({"outcome": r.outcome.to_string()}),
        Err(e) => json!({"kind": format!("{:?}", e.kind()), "message": e.to_string()}),
    };
    println!("RESULT {result}");
}

fn result_of(said: &[String]) -> Value {
    campaign::result_line(said)
        .map(|r| serde_json::from_str(r).unwrap())
        .unwrap_or_else(|| panic!("the child said {said:?}"))
}

/// Each check that did not hold, as a line naming the kind, the check, the report and the
/// calls made after their change.
fn failed_checks(
    failures: &mut Vec<String>,
    kind: Kind,
    checks: &[(bool, &str)],
    report: &rollback_core::Report,
    ours: &Value,
) {
    for (ok, what) in checks {
        if !ok {
            failures.push(format!(
                "{kind:?}: {what}: {report}\n  calls after their change: {ours}"
            ));
        }
    }
}

/// No write after someone else's change, except for Lambda the one apply that carries the
/// RevisionId read in preflight: Lambda refuses it (412), so it changes nothing, and
/// "their change is kept" proves that.
fn no_unconditional_write(kind: Kind, mutations: &BTreeMap<String, u64>) -> bool {
    match kind {
        Kind::Lambda => mutations
            .iter()
            .all(|(op, n)| op == "UpdateAlias" && *n <= 1),
        _ => mutations.is_empty(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_target_one_proceeds_the_other_is_locked() {
    let emu = campaign::emulator().await;
    let mut trios = [Trio::names("locks")];
    campaign::seed(&emu, &mut trios).await;
    let [t] = trios;
    let dir = tempfile::tempdir().unwrap();
    let env = |holder: &str, pausing: bool| {
        let mut env = vec![
            (ENDPOINT, emu.endpoint().to_string()),
            (TAG, "locks".to_string()),
            (HOLDER, holder.to_string()),
            (
                JOURNAL,
                dir.path()
                    .join(format!("{holder}.jsonl"))
                    .display()
                    .to_string(),
            ),
            (
                "ROLLBACK_LOCK_DIR",
                dir.path().join("locks").display().to_string(),
            ),
        ];
        if pausing {
            env.push((PAUSING, "1".to_string()));
        }
        env
    };
    // The first process stops right after it took the lease.
    let mut first = Paused::spawn("lock_child", &env("campaign-first", true));
    let first_journal = dir.path().join("campaign-first.jsonl");
    loop {
        first
            .next_pause()
            .expect("the first process ended before locking");
        if campaign::kinds(&first_journal).last().map(String::as_str) == Some("locked") {
            break;
        }
        first.go();
    }
    emu.reset_calls().await.unwrap();
    let second = Paused::spawn("lock_child", &env("campaign-second", false)).finish();
    let second = result_of(&second);
    let during_second = emu.calls().await.unwrap();
    first.go(); // it is still paused right after `locked`
    let first = result_of(&first.finish());
    println!(
        "concurrency campaign: first process {first}; second {second}; the second sent {} mutating call(s) of {} call(s)",
        mutations_in(&during_second),
        during_second["total"]
    );
    assert_eq!(second["kind"], "Locked", "{second}");
    let message = second["message"].as_str().unwrap();
    assert!(
        message.contains("campaign-first"),
        "the holder is named: {message}"
    );
    assert!(
        message.contains(&format!("{}:live", t.function)),
        "the target is named: {message}"
    );
    assert_eq!(mutations_in(&during_second), 0, "{during_second}");
    assert_eq!(first["outcome"], "succeeded", "{first}");
    let reader = Reader::new(emu.endpoint()).await;
    assert_eq!(reader.alias_version(&t.function).await, "2");
}

/// The three kinds of target of a trio.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Lambda,
    Ecs,
    Secret,
}

const KINDS: [Kind; 3] = [Kind::Lambda, Kind::Ecs, Kind::Secret];

fn target(aws: &Aws, t: &Trio, kind: Kind) -> Arc<dyn RollbackTarget> {
    match kind {
        Kind::Lambda => Arc::new(LambdaAlias::new(aws, &t.function, "live").unwrap()),
        Kind::Ecs => Arc::new(EcsService::new(aws, campaign::CLUSTER, &t.service).unwrap()),
        Kind::Secret => Arc::new(SecretVersion::new(aws, &t.secret).unwrap()),
    }
}

/// Someone else moves the target to its first revision, once, with their own client; then
/// the call counts are reset, so what follows is ours only.
fn their_change(emu: Arc<AwsEmulator>, reader: Arc<Reader>, t: &Trio, kind: Kind) -> Hook {
    let fired = Arc::new(AtomicBool::new(false));
    let t = t.clone();
    Arc::new(move || {
        let (emu, reader, t, fired) = (emu.clone(), reader.clone(), t.clone(), fired.clone());
        Box::pin(async move {
            if fired.swap(true, Ordering::SeqCst) {
                return;
            }
            match kind {
                Kind::Lambda => {
                    reader
                        .lambda()
                        .update_alias()
                        .function_name(&t.function)
                        .name("live")
                        .function_version("1")
                        .send()
                        .await
                        .unwrap();
                }
                Kind::Ecs => {
                    reader
                        .ecs()
                        .update_service()
                        .cluster(campaign::CLUSTER)
                        .service(&t.service)
                        .task_definition(t.td(1))
                        .send()
                        .await
                        .unwrap();
                }
                Kind::Secret => {
                    let now = reader.secret_current(&t.secret).await;
                    reader
                        .secrets()
                        .update_secret_version_stage()
                        .secret_id(&t.secret)
                        .version_stage("AWSCURRENT")
                        .move_to_version_id(&t.secret_versions[0])
                        .remove_from_version_id(now)
                        .send()
                        .await
                        .unwrap();
                }
            }
            emu.reset_calls().await.unwrap();
        })
    })
}

async fn now_at(reader: &Reader, t: &Trio, kind: Kind) -> String {
    match kind {
        Kind::Lambda => reader.alias_version(&t.function).await,
        Kind::Ecs => reader.service_td(&t.service).await,
        Kind::Secret => reader.secret_current(&t.secret).await,
    }
}

fn first_revision(t: &Trio, kind: Kind) -> String {
    match kind {
        Kind::Lambda => "1".into(),
        Kind::Ecs => t.td(1),
        Kind::Secret => t.secret_versions[0].clone(),
    }
}

/// The read a target polls its state with.
fn poll_op(kind: Kind) -> &'static str {
    match kind {
        Kind::Lambda => "GetAlias",
        Kind::Ecs => "DescribeServices",
        Kind::Secret => "ListSecretVersionIds",
    }
}

/// A one-step transaction; `timeout` bounds the wait for stability (short: a wait that
/// does not notice their change fails the poll count, not the campaign's time).
fn transaction(
    dir: &Path,
    name: &str,
    target: Arc<dyn RollbackTarget>,
    timeout: Duration,
) -> Transaction {
    Transaction::builder(name)
        .reason("concurrency campaign")
        .journal(dir.join(format!("{name}.jsonl")))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(target, Selector::Previous).timeout(timeout))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_change_between_plan_and_apply_is_a_conflict_and_kept() {
    let emu = Arc::new(campaign::emulator().await);
    let mut trios: Vec<Trio> = KINDS
        .iter()
        .map(|k| Trio::names(&format!("before-{k:?}").to_lowercase()))
        .collect();
    campaign::seed(&emu, &mut trios).await;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let reader = Arc::new(Reader::new(emu.endpoint()).await);
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (kind, t) in KINDS.into_iter().zip(&trios) {
        let hooked = Hooked {
            inner: target(&aws, t, kind),
            before_apply: Some(their_change(emu.clone(), reader.clone(), t, kind)),
            after_apply: None,
        };
        let report = transaction(
            dir.path(),
            &format!("before-{kind:?}"),
            Arc::new(hooked),
            Duration::from_secs(60),
        )
        .run()
        .await
        .unwrap();
        let ours = emu.calls().await.unwrap();
        let now = now_at(&reader, t, kind).await;
        println!(
            "concurrency campaign: {kind:?} changed by someone else before our apply: {}, step {}, error {:?}; after their change we sent {:?} ({} calls)",
            report.outcome,
            report.steps[0].status,
            report.steps[0].error.as_ref().map(|e| e.kind),
            ours["operations"],
            ours["total"]
        );
        let checks = [
            (
                report.steps[0].error.as_ref().map(|e| e.kind) == Some(ErrorKind::Conflict),
                "the step fails with a conflict",
            ),
            (now == first_revision(t, kind), "their change is kept"),
            (
                no_unconditional_write(kind, &mutations_by_op(&ours)),
                "we send no mutation after their change (Lambda: at most the one UpdateAlias \
                 whose RevisionId precondition Lambda refuses)",
            ),
            (
                count_in(&ours, poll_op(kind)) <= 1,
                "no polling: one read at most",
            ),
            (
                report.outcome != Outcome::Succeeded,
                "the run does not report success",
            ),
        ];
        failed_checks(&mut failures, kind, &checks, &report, &ours);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_change_right_after_apply_fails_the_step_at_once_and_is_kept() {
    let emu = Arc::new(campaign::emulator().await);
    let mut trios: Vec<Trio> = KINDS
        .iter()
        .map(|k| Trio::names(&format!("after-{k:?}").to_lowercase()))
        .collect();
    campaign::seed(&emu, &mut trios).await;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let reader = Arc::new(Reader::new(emu.endpoint()).await);
    let dir = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for (kind, t) in KINDS.into_iter().zip(&trios) {
        let hooked = Hooked {
            inner: target(&aws, t, kind),
            before_apply: None,
            after_apply: Some(their_change(emu.clone(), reader.clone(), t, kind)),
        };
        let report = transaction(
            dir.path(),
            &format!("after-{kind:?}"),
            Arc::new(hooked),
            Duration::from_secs(8),
        )
        .run()
        .await
        .unwrap();
        let ours = emu.calls().await.unwrap();
        let now = now_at(&reader, t, kind).await;
        println!(
            "concurrency campaign: {kind:?} changed by someone else right after our apply: {}, step {}, error {:?}; after their change we sent {:?} ({} calls)",
            report.outcome,
            report.steps[0].status,
            report.steps[0].error.as_ref().map(|e| e.message.clone()),
            ours["operations"],
            ours["total"]
        );
        let checks = [
            (report.steps[0].error.is_some(), "the step fails"),
            (now == first_revision(t, kind), "their change is kept"),
            (
                mutations_by_op(&ours).is_empty(),
                "we send no mutation after their change (compensation does not clobber it)",
            ),
            (
                count_in(&ours, poll_op(kind)) <= 2,
                "the wait fails at once: two polls at most",
            ),
            (
                report.outcome != Outcome::Succeeded,
                "the run does not report success",
            ),
        ];
        failed_checks(&mut failures, kind, &checks, &report, &ours);
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
