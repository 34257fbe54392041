//! ECS services through the real AWS SDK against the emulator (moto + its ECS scheduler).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use rollback_aws::{Aws, EcsService};
use rollback_core::conformance::{assert_conformance, Fixture};
use rollback_core::verify::{HttpCheck, Policy};
use rollback_core::wait::{Backoff, RetryPolicy};
use rollback_core::{
    Check, ErrorKind, FileLocks, Outcome, RollbackTarget, Selector, Step, Transaction,
    TransactionBuilder,
};
use rollback_testkit::AwsEmulator;
use serde_json::{json, Value};

const CLUSTER: &str = "agentauri-production";
const ECR: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

/// Runbook 001's services, each with releases abc123 (known good), def456, bad999 (current).
fn services() -> Value {
    let svc = |service: &str, family: &str, repo: &str| {
        json!({
            "cluster": CLUSTER, "service": service, "family": family, "desired_count": 2,
            "revisions": [
                {"image": format!("{ECR}/{repo}:abc123"), "environment": {"LOG_LEVEL": "info", "DB_PASSWORD": "hunter2-old"}},
                {"image": format!("{ECR}/{repo}:def456"), "environment": {"LOG_LEVEL": "info", "DB_PASSWORD": "hunter2-old"}},
                {"image": format!("{ECR}/{repo}:bad999"), "environment": {"LOG_LEVEL": "debug", "DB_PASSWORD": "hunter2-new", "NEW_FLAG": "1"}}
            ],
            "current": 3
        })
    };
    json!([
        svc(
            "api-gateway-v2",
            "agentauri-production-api-gateway",
            "api-gateway"
        ),
        svc(
            "event-processor",
            "agentauri-production-event-processor",
            "event-processor"
        ),
        svc(
            "action-workers",
            "agentauri-production-action-workers",
            "action-workers"
        ),
    ])
}

struct Env {
    emu: AwsEmulator,
    aws: Aws,
    dir: tempfile::TempDir,
}

async fn env(ecs: Value) -> Env {
    let emu = AwsEmulator::start().await.unwrap_or_else(|e| panic!("{e}"));
    emu.seed(json!({ "ecs": ecs })).await.unwrap();
    emu.set_ecs_convergence(Duration::from_millis(300))
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
    fn service(&self, name: &str) -> EcsService {
        EcsService::new(&self.aws, CLUSTER, name).unwrap()
    }

    fn tx(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("5xx after deploying bad999")
            .journal(self.dir.path().join(format!("{name}.jsonl")))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
            .retry(RetryPolicy {
                max_attempts: 4,
                backoff: Backoff {
                    initial: Duration::from_millis(20),
                    max: Duration::from_millis(100),
                    factor: 2.0,
                },
            })
    }

    async fn update_calls(&self) -> u64 {
        self.emu.call_count("UpdateService").await.unwrap()
    }
}

fn arc(s: &EcsService) -> Arc<dyn RollbackTarget> {
    Arc::new(s.clone())
}

#[tokio::test]
async fn conformance() {
    let e = env(services()).await;
    let api = e.service("api-gateway-v2");
    assert_conformance(
        &api,
        &Fixture {
            unknown_revision: "agentauri-production-api-gateway:99".into(),
            secret_canary: Some("hunter2".into()),
            ..Default::default()
        },
    )
    .await;
}

#[tokio::test]
async fn history_is_the_active_revisions_of_the_family_only() {
    let mut seed = services();
    // A deregistered revision, and a family whose name the other's is a prefix of.
    seed[0]["revisions"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"image": format!("{ECR}/api-gateway:old000")}));
    seed[0]["current"] = json!(4);
    seed[0]["inactive"] = json!([1]);
    seed.as_array_mut().unwrap().push(json!({
        "cluster": CLUSTER, "service": "api", "family": "agentauri-production-api", "desired_count": 1,
        "revisions": [{"image": format!("{ECR}/api:x")}], "current": 1
    }));
    let e = env(seed).await;
    let api = e.service("api-gateway-v2");
    let ids: Vec<String> = api
        .history()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(
        ids,
        [
            "agentauri-production-api-gateway:4",
            "agentauri-production-api-gateway:3",
            "agentauri-production-api-gateway:2"
        ]
    );
    let current = api.current().await.unwrap();
    assert_eq!(current.id, "agentauri-production-api-gateway:4");
    assert_eq!(current.images, [format!("{ECR}/api-gateway:bad999")]);
    assert_eq!(current.env_keys, ["DB_PASSWORD", "LOG_LEVEL", "NEW_FLAG"]);
    assert!(current.created_at.is_some());
}

#[tokio::test]
async fn exact_accepts_number_family_revision_and_arn_and_plan_redacts_secrets() {
    let e = env(services()).await;
    let api = e.service("api-gateway-v2");
    for id in [
        "1",
        "agentauri-production-api-gateway:1",
        "arn:aws:ecs:us-east-1:123456789012:task-definition/agentauri-production-api-gateway:1",
    ] {
        let r = api.resolve(&Selector::exact(id)).await.unwrap();
        assert_eq!(r.id, "agentauri-production-api-gateway:1", "{id}");
    }
    let to = api.resolve(&Selector::Previous).await.unwrap();
    let plan = api.plan(&to).await.unwrap();
    let text = plan.diff.to_string();
    assert!(text.contains("api-gateway:bad999 -> "), "{text}");
    assert!(text.contains("LOG_LEVEL: debug -> info"), "{text}");
    assert!(
        text.contains("DB_PASSWORD: <redacted> -> <redacted>"),
        "{text}"
    );
    assert!(text.contains("- env NEW_FLAG"), "{text}");
    assert!(
        !format!("{plan:?}").contains("hunter2"),
        "secret value in the plan"
    );
    assert_eq!(e.update_calls().await, 0, "planning changes nothing");
}

#[tokio::test]
async fn runbook_001_one_service_to_the_previous_revision_verified() {
    let e = env(services()).await;
    e.emu
        .mark_bad(
            "ecs",
            &format!("{CLUSTER}/api-gateway-v2"),
            "agentauri-production-api-gateway:3",
        )
        .await
        .unwrap();
    assert!(!e.emu.healthy().await.unwrap());
    let api = e.service("api-gateway-v2");
    let report = e
        .tx("one")
        .step(Step::new(arc(&api), Selector::Previous))
        .verify(
            Check::new(HttpCheck::new(e.emu.health_url()))
                .policy(Policy::default().interval(Duration::from_millis(100))),
        )
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let svc = api.describe().await.unwrap();
    assert!(svc
        .task_definition()
        .unwrap()
        .ends_with("agentauri-production-api-gateway:2"));
    assert_eq!(svc.deployments().len(), 1);
    assert_eq!(svc.running_count(), svc.desired_count());
    assert!(e.emu.healthy().await.unwrap());
}

#[tokio::test]
async fn runbook_001_all_services_to_a_known_good_image_tag_in_one_stage() {
    let e = env(services()).await;
    let names = ["api-gateway-v2", "event-processor", "action-workers"];
    let mut b = e.tx("all");
    for n in names {
        b = b.step(Step::new(arc(&e.service(n)), Selector::image_tag("abc123")));
    }
    let report = b.build().unwrap().run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert!(report.steps.iter().all(|s| s.stage == 0));
    for n in names {
        let td = e
            .service(n)
            .describe()
            .await
            .unwrap()
            .task_definition()
            .unwrap()
            .to_string();
        assert!(td.ends_with(":1"), "{n} runs {td}");
    }
}

#[tokio::test]
async fn failed_rollout_is_detected_from_rollout_state_not_the_deadline() {
    let e = env(services()).await;
    e.emu
        .fail_task_definition("agentauri-production-api-gateway:2")
        .await
        .unwrap();
    let api = e.service("api-gateway-v2");
    let report = e
        .tx("circuit-breaker")
        .step(Step::new(arc(&api), Selector::Previous).timeout(Duration::from_secs(300)))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    let err = report.error.clone().unwrap();
    // RolloutFailed, not Timeout: the wait ended on the FAILED rollout state.
    assert_eq!(err.kind, ErrorKind::RolloutFailed, "{report}");
    assert!(err.message.contains("circuit breaker"), "{}", err.message);
    // Compensated: the service is back on its captured revision.
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let svc = api.describe().await.unwrap();
    assert!(svc.task_definition().unwrap().ends_with(":3"));
}

#[tokio::test]
async fn throttling_and_5xx_are_retried_to_success() {
    let e = env(services()).await;
    e.emu
        .inject("UpdateService", "throttle", 2, 0)
        .await
        .unwrap();
    e.emu.inject("DescribeServices", "5xx", 1, 0).await.unwrap();
    let api = e.service("api-gateway-v2");
    let (b, mut events) = e
        .tx("retry")
        .step(Step::new(arc(&api), Selector::Previous))
        .events();
    let report = b.build().unwrap().run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let mut retries = 0;
    while let Ok(ev) = events.try_recv() {
        if ev.kind == rollback_core::EventKind::Retrying {
            retries += 1;
        }
    }
    assert_eq!(retries, 3, "two throttles and one 503, each retried once");
    assert_eq!(
        e.update_calls().await,
        3,
        "two throttled UpdateService calls, then the one that worked"
    );
}

#[tokio::test]
async fn a_service_changed_between_preflight_and_apply_is_a_conflict() {
    let e = env(services()).await;
    let api = e.service("api-gateway-v2");
    let to = api.resolve(&Selector::Previous).await.unwrap();
    let plan = api.plan(&to).await.unwrap();
    // Someone else deploys revision 1 meanwhile.
    api.client()
        .update_service()
        .cluster(CLUSTER)
        .service("api-gateway-v2")
        .task_definition("agentauri-production-api-gateway:1")
        .send()
        .await
        .unwrap();
    let err = api.apply(&plan).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(
        err.to_string()
            .contains("ecs-service/agentauri-production/api-gateway-v2"),
        "{err}"
    );
    let svc = api.describe().await.unwrap();
    assert!(
        svc.task_definition().unwrap().ends_with(":1"),
        "their change stands"
    );
    assert_eq!(e.update_calls().await, 1, "only their update");
}

#[tokio::test]
async fn bad_input_is_a_typed_error_naming_the_target_and_changes_nothing() {
    let mut seed = services();
    seed.as_array_mut().unwrap().push(json!({
        "cluster": CLUSTER, "service": "lonely", "family": "lonely", "desired_count": 1,
        "revisions": [{"image": format!("{ECR}/lonely:v1")}], "current": 1
    }));
    let e = env(seed).await;
    let run = |t: EcsService, sel: Selector, name: &'static str| {
        let b = e.tx(name).step(Step::new(Arc::new(t), sel));
        async move { b.build().unwrap().run().await.unwrap_err() }
    };
    let err = run(
        EcsService::new(&e.aws, "no-such-cluster", "api-gateway-v2").unwrap(),
        Selector::Previous,
        "cluster",
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no-such-cluster"), "{err}");
    let err = run(e.service("no-such-service"), Selector::Previous, "service").await;
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("no-such-service"), "{err}");
    let err = run(
        e.service("api-gateway-v2"),
        Selector::exact("99"),
        "revision",
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .contains("agentauri-production-api-gateway:99"),
        "{err}"
    );
    let err = run(
        e.service("api-gateway-v2"),
        Selector::StepsBack(3),
        "too-far",
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = run(
        e.service("api-gateway-v2"),
        Selector::image_tag("nope"),
        "tag",
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = run(e.service("lonely"), Selector::Previous, "no-previous").await;
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string()
            .contains("ecs-service/agentauri-production/lonely"),
        "{err}"
    );
    let err = EcsService::new(&e.aws, "", "api-gateway-v2").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("ecs-service/"), "{err}");
    assert_eq!(e.update_calls().await, 0, "nothing changed");
}
