//! CodePipeline executions through the real aws-sdk-codepipeline against the emulator
//! (runbook 003 steps 1 and 3): a pipeline re-run pinned to the commit before the bad one,
//! its compensation when that execution fails, bad input refused in preflight, the freeze
//! stopping the execution in flight, and a resumed apply that does not start twice.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rollback_aws::{Aws, PipelineExecution, PipelineTransition, StopInFlight};
use rollback_core::{
    ApplyOutcome, ErrorKind, FileLocks, Outcome, RollbackTarget, Selector, Step, Transaction,
};
use rollback_testkit::{count_in, gained, AwsEmulator};
use serde_json::{json, Value};

const PIPELINE: &str = "Apgms";
const GOOD: &str = "1111111111111111111111111111111111111111";
const OLDER: &str = "2222222222222222222222222222222222222222";
const BAD: &str = "3333333333333333333333333333333333333333";

struct Env {
    emu: AwsEmulator,
    aws: Aws,
    seeded: Value,
    dir: tempfile::TempDir,
}

/// Apgms (GitHub source) with successful executions of OLDER, GOOD and BAD (newest), and
/// `extra` executions after them; executions take 300 ms.
async fn env(extra: Value) -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    let mut executions = vec![
        json!({"commit": OLDER, "summary": "release 1.7"}),
        json!({"commit": GOOD, "summary": "release 1.8"}),
        json!({"commit": BAD, "summary": "release 1.9"}),
    ];
    executions.extend(extra.as_array().cloned().unwrap_or_default());
    let seeded = emu
        .seed(json!({"codepipeline": [{
            "name": PIPELINE, "stages": ["Source", "Build", "Deploy"], "source": "github",
            "executions": executions
        }]}))
        .await
        .unwrap();
    emu.set_pipeline_delay(Duration::from_millis(300))
        .await
        .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    Env {
        emu,
        aws,
        seeded,
        dir: tempfile::tempdir().unwrap(),
    }
}

fn ops(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(op, n)| (op.to_string(), *n)).collect()
}

impl Env {
    fn target(&self) -> PipelineExecution {
        PipelineExecution::new(&self.aws, PIPELINE).unwrap()
    }

    fn tx(&self, name: &str, steps: Vec<Step>) -> Transaction {
        let mut b = Transaction::builder(name)
            .reason("INC-0412: 5xx after pipeline execution of 1.9")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))));
        for s in steps {
            b = b.step(s.timeout(Duration::from_secs(30)));
        }
        b.build().unwrap()
    }

    /// The newest executions' (commit, status, trigger type), newest first.
    async fn executions(&self) -> Vec<(String, String, String)> {
        let c = aws_sdk_codepipeline::Client::new(&self.emu.sdk_config().await);
        let out = c
            .list_pipeline_executions()
            .pipeline_name(PIPELINE)
            .send()
            .await
            .unwrap();
        out.pipeline_execution_summaries()
            .iter()
            .map(|e| {
                (
                    e.source_revisions()[0]
                        .revision_id()
                        .unwrap_or_default()
                        .to_string(),
                    e.status().unwrap().as_str().to_string(),
                    e.trigger()
                        .and_then(|t| t.trigger_type())
                        .map(|t| t.as_str().to_string())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn previous_re_runs_the_commit_before_the_bad_one() {
    let env = env(json!([])).await;
    let t = env.target();
    let history = t.history().await.unwrap();
    let ids: Vec<&str> = history.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [BAD, GOOD, OLDER]);
    assert!(history[1]
        .description
        .as_deref()
        .unwrap()
        .contains("release 1.8"));
    let before = env.emu.calls().await.unwrap();
    let tx = env.tx("rerun", vec![Step::new(Arc::new(t), Selector::Previous)]);
    let plan = tx.dry_run().await.unwrap();
    assert_eq!(plan.steps[0].from.as_ref().unwrap().id, BAD);
    assert_eq!(plan.steps[0].to.as_ref().unwrap().id, GOOD);
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let got = gained(&before, &env.emu.calls().await.unwrap());
    // Dry run and run: GetPipeline + ListPipelineExecutions each; apply: one page and the
    // start; then one GetPipelineExecution per look until Succeeded (at least two: 300 ms).
    let looks = got.get("GetPipelineExecution").copied().unwrap_or(0);
    assert!((2..=6).contains(&looks), "{got:?}");
    assert_eq!(
        got,
        ops(&[
            ("GetPipeline", 2),
            ("GetPipelineExecution", looks),
            ("ListPipelineExecutions", 3),
            ("StartPipelineExecution", 1),
        ])
    );
    let newest = &env.executions().await[0];
    assert_eq!(
        newest,
        &(
            GOOD.to_string(),
            "Succeeded".to_string(),
            "StartPipelineExecution".to_string()
        )
    );
    assert_eq!(env.target().current().await.unwrap().id, GOOD);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_execution_is_compensated_by_re_running_the_original_commit() {
    let env = env(json!([])).await;
    env.emu.fail_pipeline_commit(GOOD).await.unwrap();
    let tx = env.tx(
        "rerun-fails",
        vec![Step::new(Arc::new(env.target()), Selector::exact(GOOD))],
    );
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let text = report.to_string();
    assert!(
        text.contains("ended Failed: Deploy action failed"),
        "{text}"
    );
    let ex = env.executions().await;
    // Newest first: the original commit re-run by compensation, then the failed execution.
    assert_eq!(ex[0].0, BAD);
    assert_eq!(ex[0].1, "Succeeded");
    assert_eq!(ex[0].2, "StartPipelineExecution");
    assert_eq!((ex[1].0.as_str(), ex[1].1.as_str()), (GOOD, "Failed"));
    assert_eq!(
        env.emu.call_count("StartPipelineExecution").await.unwrap(),
        2
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_in_preflight_and_nothing_starts() {
    let env =
        env(json!([{"commit": "4444444444444444444444444444444444444444", "status": "Failed"}]))
            .await;
    let unknown = PipelineExecution::new(&env.aws, "Nope").unwrap();
    let e = env
        .tx(
            "unknown",
            vec![Step::new(Arc::new(unknown), Selector::Previous)],
        )
        .run()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("pipeline-execution/Nope"), "{e}");

    // A commit whose only execution failed is not among the successful ones.
    let e = env
        .tx(
            "failed-commit",
            vec![Step::new(
                Arc::new(env.target()),
                Selector::exact("4444444444444444444444444444444444444444"),
            )],
        )
        .run()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    let msg = e.to_string();
    assert!(msg.contains("among the successful executions"), "{msg}");
    assert!(
        msg.contains(GOOD) && msg.contains(OLDER),
        "names what exists: {msg}"
    );

    // A short prefix is fine when it is unique.
    let to = env
        .target()
        .resolve(&Selector::exact(&OLDER[..8]))
        .await
        .unwrap();
    assert_eq!(to.id, OLDER);

    // A source action of another name, and a source that takes no override.
    let named = env.target().source_action("Checkout").unwrap();
    let e = named.prepare(&Selector::Previous).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(
        e.to_string().contains("Source (CodeStarSourceConnection)"),
        "{e}"
    );
    env.emu
        .seed(json!({"codepipeline": [{"name": "Legacy", "stages": ["Source", "Deploy"], "source": "github-v1",
            "executions": [{"commit": OLDER}, {"commit": GOOD}]}]}))
        .await
        .unwrap();
    let legacy = PipelineExecution::new(&env.aws, "Legacy").unwrap();
    let e = env
        .tx(
            "legacy",
            vec![Step::new(Arc::new(legacy), Selector::Previous)],
        )
        .dry_run()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.to_string().contains("takes no sourceRevisions override"),
        "{e}"
    );
    assert!(PipelineExecution::new(&env.aws, " ").is_err());
    assert_eq!(
        env.emu.call_count("StartPipelineExecution").await.unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_freeze_stops_the_execution_in_flight_and_opening_restarts_nothing() {
    let env = env(
        json!([{"commit": "5555555555555555555555555555555555555555", "status": "InProgress"}]),
    )
    .await;
    let in_flight = env.seeded["codepipeline"][0]["executions"][3]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let freeze = PipelineTransition::new(&env.aws, PIPELINE, "Deploy")
        .unwrap()
        .stop_in_flight(StopInFlight::Finish);
    assert_eq!(freeze.spec().params["stop_in_flight"], "finish");
    let tx = env.tx(
        "freeze",
        vec![Step::new(Arc::new(freeze), Selector::exact("disabled")).temporary()],
    );
    let plan = tx.dry_run().await.unwrap();
    let to = plan.steps[0].to.as_ref().unwrap();
    assert_eq!(to.facts["stops"], in_flight);
    assert_eq!(to.facts["stop_in_flight"], "finish");
    assert!(plan.to_string().contains(&in_flight), "{plan}");
    let before = env.emu.calls().await.unwrap();
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let got = gained(&before, &env.emu.calls().await.unwrap());
    assert_eq!(
        count_in(&env.emu.calls().await.unwrap(), "StopPipelineExecution"),
        1
    );
    assert_eq!(got["DisableStageTransition"], 1);
    assert_eq!(got["EnableStageTransition"], 1);
    assert!(!got.contains_key("StartPipelineExecution"), "{got:?}");
    let ex = env.executions().await;
    assert_eq!(ex[0].1, "Stopped", "{ex:?}");
    // The journal has the planned stop.
    let journal = std::fs::read_to_string(env.dir.path().join("freeze.jsonl")).unwrap();
    assert!(journal.contains(&in_flight));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resumed_apply_does_not_start_a_second_execution_nor_stop_twice() {
    let env = env(
        json!([{"commit": "5555555555555555555555555555555555555555", "status": "InProgress"}]),
    )
    .await;
    env.emu
        .set_pipeline_delay(Duration::from_secs(60))
        .await
        .unwrap();
    let intent = chrono::Utc::now() - chrono::Duration::seconds(1);
    let mut change = env.target().prepare(&Selector::Previous).await.unwrap();
    change.since = Some(intent);
    assert_eq!(
        env.target().apply(&change).await.unwrap(),
        ApplyOutcome::Applied
    );
    // The process died; a new one resumes the same change.
    let resumed = env.target();
    assert_eq!(
        resumed.apply(&change).await.unwrap(),
        ApplyOutcome::AlreadyCurrent
    );
    assert_eq!(
        env.emu.call_count("StartPipelineExecution").await.unwrap(),
        1
    );
    let waiting = resumed.check_stable(&change.to).await.unwrap();
    assert!(
        matches!(&waiting, rollback_core::Stability::Waiting(m) if m.contains("InProgress")),
        "{waiting:?}"
    );
    // The freeze: the stop is not sent again once the execution is stopping.
    let freeze = PipelineTransition::new(&env.aws, PIPELINE, "Deploy")
        .unwrap()
        .stop_in_flight(StopInFlight::Abandon);
    let change = freeze.prepare(&Selector::exact("disabled")).await.unwrap();
    // The seeded execution in flight and the one just started.
    let stops = change.to.facts["stops"].split(',').count() as u64;
    assert_eq!(stops, 2, "{change:?}");
    assert_eq!(freeze.apply(&change).await.unwrap(), ApplyOutcome::Applied);
    assert_eq!(
        freeze.apply(&change).await.unwrap(),
        ApplyOutcome::AlreadyCurrent
    );
    assert_eq!(
        env.emu.call_count("StopPipelineExecution").await.unwrap(),
        stops
    );
    assert_eq!(
        freeze.check_stable(&change.to).await.unwrap(),
        rollback_core::Stability::Stable
    );
}
