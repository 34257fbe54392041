//! Verification from CloudWatch (alarms, metric thresholds, runbook 004's decision) and the
//! pipeline freeze of runbook 003, through the real SDK against the emulator.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rollback_aws::{AlarmCheck, Aws, CloudWatchSource, EcsService, PipelineTransition};
use rollback_core::conformance::{assert_conformance, Fixture};
use rollback_core::metrics::{
    decide_from, Comparison, DecisionPolicy, DecisionQueries, Recommendation, ThresholdCheck,
};
use rollback_core::verify::{check_bool, Policy, Verifier};
use rollback_core::{
    Check, ErrorKind, FileLocks, Outcome, RollbackTarget, Selector, Step, StepStatus, Transaction,
    TransactionBuilder,
};
use rollback_testkit::AwsEmulator;
use serde_json::{json, Value};

const CLUSTER: &str = "apgms";

struct Env {
    emu: AwsEmulator,
    aws: Aws,
    dir: tempfile::TempDir,
}

/// Error rate over the last 8 minutes, one point a minute: `f(minutes_ago)`.
fn points(f: impl Fn(i64) -> f64) -> Value {
    let now = Utc::now().timestamp() / 60 * 60;
    Value::Array((0..8).rev().map(|m| json!([now - m * 60, f(m)])).collect())
}

async fn env() -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    emu.set_ecs_convergence(Duration::from_millis(300))
        .await
        .unwrap();
    emu.seed(json!({
        "cloudwatch": {
            "alarms": [
                {"name": "agentauri-api-5xx", "state": "ALARM", "metric": "HTTPCode_Target_5XX_Count", "namespace": "AWS/ApplicationELB"},
                {"name": "agentauri-db-cpu", "state": "OK", "metric": "CPUUtilization", "namespace": "AWS/RDS"},
                {"name": "billing-estimate", "state": "ALARM", "metric": "EstimatedCharges", "namespace": "AWS/Billing"}
            ],
            "metrics": [
                {"namespace": "AgentAuri", "name": "ErrorRate", "dimensions": {"Service": "api"}, "points": points(|_| 0.07)},
                {"namespace": "AgentAuri", "name": "ErrorRate", "dimensions": {"Service": "worker"}, "points": points(|m| if m == 0 { 0.09 } else { 0.01 })},
                {"namespace": "AgentAuri", "name": "LatencyP95", "dimensions": {"Service": "api"}, "points": points(|_| 0.4)}
            ]
        },
        "codepipeline": [{"name": "Apgms", "stages": ["Source", "Build", "Deploy"]}],
        "ecs": [{"cluster": CLUSTER, "service": "api", "family": "apgms-api", "desired_count": 1,
                 "revisions": [{"image": "repo/api:good"}, {"image": "repo/api:bad"}], "current": 2}]
    }))
    .await
    .unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    Env {
        emu,
        aws,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Env {
    fn tx(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("runbook 003 rollback")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
    }

    fn api(&self) -> Arc<dyn RollbackTarget> {
        Arc::new(EcsService::new(&self.aws, CLUSTER, "api").unwrap())
    }
}

#[tokio::test]
async fn alarms_in_alarm_fail_the_check_and_ok_passes() {
    let e = env().await;
    let check = AlarmCheck::prefix(&e.aws, "agentauri");
    let o = check.check().await.unwrap();
    assert!(!o.passed);
    assert!(o.evidence.contains("agentauri-api-5xx"), "{}", o.evidence);
    assert!(
        !o.evidence.contains("billing"),
        "only the prefix: {}",
        o.evidence
    );
    e.emu.set_alarm("agentauri-api-5xx", "OK").await.unwrap();
    let o = check.check().await.unwrap();
    assert!(o.passed, "{}", o.evidence);
    let named = AlarmCheck::names(&e.aws, ["billing-estimate"]).unwrap();
    assert!(!named.check().await.unwrap().passed);
    assert_eq!(
        AlarmCheck::names(&e.aws, Vec::<String>::new())
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn an_alarm_still_firing_after_the_rollback_compensates_it() {
    let e = env().await;
    let report = e
        .tx("alarm")
        .step(Step::new(e.api(), Selector::Previous))
        .verify(
            Check::new(AlarmCheck::prefix(&e.aws, "agentauri")).policy(
                Policy::default()
                    .attempts(2)
                    .interval(Duration::from_millis(100)),
            ),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert!(report.error.unwrap().message.contains("agentauri-api-5xx"));
    let svc = EcsService::new(&e.aws, CLUSTER, "api")
        .unwrap()
        .describe()
        .await
        .unwrap();
    assert!(svc.task_definition().unwrap().ends_with("apgms-api:2"));
}

#[tokio::test]
async fn cloudwatch_metrics_drive_the_threshold_check_and_the_decision() {
    let e = env().await;
    let source = Arc::new(CloudWatchSource::new(&e.aws));
    // api: 7 % for 8 minutes; worker: one 9 % spike just now.
    let api = ThresholdCheck::new(
        source.clone(),
        "AgentAuri ErrorRate Average Service=api",
        Comparison::Above(0.05),
        Duration::from_secs(300),
    )
    .step(Duration::from_secs(60));
    let o = api.check().await.unwrap();
    assert!(!o.passed, "sustained 7 % must fail: {}", o.evidence);
    let worker = ThresholdCheck::new(
        source.clone(),
        "AgentAuri ErrorRate Average Service=worker",
        Comparison::Above(0.05),
        Duration::from_secs(300),
    )
    .step(Duration::from_secs(60));
    assert!(
        worker.check().await.unwrap().passed,
        "a spike is not sustained"
    );

    let queries = DecisionQueries::new(
        "AgentAuri ErrorRate Average Service=api",
        "AgentAuri LatencyP95 Average Service=api",
    )
    .step(Duration::from_secs(60));
    let d = decide_from(
        source.as_ref(),
        &queries,
        false,
        &DecisionPolicy::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(d.action, Recommendation::RollbackNow, "{d}");
    assert!(d.reasons[0].contains("error rate"), "{d}");
    let calm = DecisionQueries::new(
        "AgentAuri ErrorRate Average Service=worker",
        "AgentAuri LatencyP95 Average Service=api",
    )
    .step(Duration::from_secs(60));
    let d = decide_from(
        source.as_ref(),
        &calm,
        false,
        &DecisionPolicy::default(),
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(d.action, Recommendation::Monitor, "{d}");
}

#[tokio::test]
async fn the_pipeline_is_frozen_during_the_rollback_and_open_after() {
    let e = env().await;
    let freeze = PipelineTransition::new(&e.aws, "Apgms", "Deploy").unwrap();
    assert_conformance(
        &freeze,
        &Fixture {
            may_mutate: false,
            ..Default::default()
        },
    )
    .await;
    let probe = freeze.clone();
    let frozen_while_applying = check_bool("Deploy transition is frozen", move || {
        let p = probe.clone();
        async move {
            p.current()
                .await
                .map(|r| r.id == "disabled")
                .unwrap_or(false)
        }
    });
    let report = e
        .tx("freeze")
        .step(Step::new(Arc::new(freeze.clone()), Selector::exact("disabled")).temporary())
        .stage()
        .step(
            Step::new(e.api(), Selector::Previous)
                .verify(Check::new(frozen_while_applying).policy(Policy::once())),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(report.steps[0].status, StepStatus::Reverted);
    assert_eq!(freeze.current().await.unwrap().id, "enabled");

    // Unknown stage: refused in preflight, nothing changed.
    let bad = PipelineTransition::new(&e.aws, "Apgms", "Nope").unwrap();
    let err = e
        .tx("bad-stage")
        .step(Step::new(Arc::new(bad), Selector::exact("disabled")).temporary())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("Source, Build, Deploy"), "{err}");
}

#[tokio::test]
async fn cloudwatch_checks_that_cannot_run_are_refused_before_any_call() {
    let e = env().await;
    let metric = |query: &str| {
        Check::new(ThresholdCheck::new(
            Arc::new(CloudWatchSource::new(&e.aws)),
            query,
            Comparison::Above(0.05),
            Duration::from_secs(300),
        ))
    };
    let too_many: Vec<String> = (0..101).map(|i| format!("alarm-{i}")).collect();
    let cases = [
        (
            metric("AgentAuri ErrorRate Avg Service=api"),
            "not a CloudWatch statistic",
        ),
        (metric("AgentAuri ErrorRate"), "Namespace MetricName Stat"),
        (metric("AgentAuri ErrorRate Average Service"), "Name=Value"),
        (
            Check::new(AlarmCheck::names(&e.aws, too_many).unwrap()),
            "at most 100",
        ),
        (
            Check::new(AlarmCheck::prefix(&e.aws, "a".repeat(256))),
            "longer than 255",
        ),
    ];
    let before = e.emu.calls().await.unwrap();
    for (i, (check, want)) in cases.into_iter().enumerate() {
        let name = check.verifier.name();
        let tx = e
            .tx(&format!("bad-{i}"))
            .step(Step::new(e.api(), Selector::Previous).verify(check))
            .build()
            .unwrap();
        for err in [tx.run().await.unwrap_err(), tx.dry_run().await.unwrap_err()] {
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
            assert_eq!(err.target(), "ecs-service/apgms/api", "{err}");
            assert!(err.to_string().contains(want), "{want}: {err}");
            assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        }
    }
    // Not a read, let alone a change: the service was never even described.
    let after = e.emu.calls().await.unwrap();
    assert_eq!(after["total"], before["total"], "{before} -> {after}");
    assert_eq!(rollback_testkit::mutations_in(&after), 0, "{after}");
}
