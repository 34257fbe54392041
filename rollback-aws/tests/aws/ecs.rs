//! ECS services through the real AWS SDK against the emulator (moto + its ECS scheduler).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollback_aws::{Aws, EcsService};
use rollback_core::conformance::{assert_conformance, Fixture};
use rollback_core::verify::{HttpCheck, Policy};
use rollback_core::wait::{Backoff, RetryPolicy};
use rollback_core::{
    Check, ErrorKind, FileLocks, Outcome, RollbackTarget, Selector, Step, Transaction,
    TransactionBuilder,
};
use rollback_testkit::{count_in, AwsEmulator};
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
        .await
        .unwrap()
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

// ---- Call counts ------------------------------------------------------------------------
//
// Counts are deterministic where time is not: each test resets the emulator's counts and
// asserts them exactly, by operation. Waiting is counted apart, from the poller's own debug
// events (one per DescribeServices call it makes: the tick it belongs to and how many
// services it names), which the emulator's count of DescribeServices then confirms.

/// The ECS poller's DescribeServices calls, from its debug events: for the waits, (tick in
/// ms from the poller's epoch, services named) per call; apart, the services named by each
/// call of `describe` (preflight's and apply's reads, shared by the services of a cluster
/// asking at once).
#[derive(Clone, Default)]
struct PollLog(Arc<Mutex<Vec<(u64, u64)>>>, Arc<Mutex<Vec<u64>>>);

impl PollLog {
    /// Runs `f` recording the poller's calls. The tests' runtime is current-thread, so every
    /// task (the engine's steps, the batches) runs on this thread, under this subscriber.
    async fn record<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let _guard = tracing::subscriber::set_default(self.clone());
        f.await
    }

    fn calls(&self) -> Vec<(u64, u64)> {
        self.0.lock().unwrap().clone()
    }

    fn reads(&self) -> Vec<u64> {
        self.1.lock().unwrap().clone()
    }
}

impl tracing::Subscriber for PollLog {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        m.is_event() && m.target().starts_with("rollback_aws::ecs")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        #[derive(Default)]
        struct Fields(Option<u64>, Option<u64>);
        impl tracing::field::Visit for Fields {
            fn record_u64(&mut self, f: &tracing::field::Field, v: u64) {
                match f.name() {
                    "tick_ms" => self.0 = Some(v),
                    "services" => self.1 = Some(v),
                    _ => {}
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        let mut f = Fields::default();
        event.record(&mut f);
        match (f.0, f.1) {
            (Some(tick), Some(services)) => self.0.lock().unwrap().push((tick, services)),
            (None, Some(services)) => self.1.lock().unwrap().push(services),
            _ => {}
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The calls since the last reset, by operation (those made at least once).
async fn ops(emu: &AwsEmulator) -> BTreeMap<String, u64> {
    let calls = emu.calls().await.unwrap();
    calls["operations"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(op, _)| (op.clone(), count_in(&calls, op)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(op, n)| (op.to_string(), *n))
        .collect()
}

/// A service of `n` revisions (images `repo:v1`..), running revision `current`.
fn family(cluster: &str, service: &str, n: usize, current: usize) -> Value {
    let revisions: Vec<Value> = (1..=n)
        .map(|i| json!({"image": format!("{ECR}/{service}:v{i}"), "environment": {"LOG_LEVEL": "info"}}))
        .collect();
    json!({"cluster": cluster, "service": service, "family": service, "desired_count": 1,
           "revisions": revisions, "current": current})
}

/// One `Previous` step run through a transaction: the calls by operation, and the poller's
/// DescribeServices calls while it waited.
async fn previous_rollback(
    e: &Env,
    cluster: &str,
    service: &str,
) -> (BTreeMap<String, u64>, Vec<(u64, u64)>) {
    let target = EcsService::new(&e.aws, cluster, service).unwrap();
    e.emu.reset_calls().await.unwrap();
    let log = PollLog::default();
    let report = log
        .record(
            e.tx(&format!("previous-{service}"))
                .step(Step::new(arc(&target), Selector::Previous))
                .build()
                .unwrap()
                .run(),
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    (ops(&e.emu).await, log.calls())
}

#[tokio::test]
async fn a_previous_rollback_costs_seven_calls_before_waiting_however_many_revisions_the_family_has(
) {
    let e = env(services()).await;
    e.emu
        .seed(json!({"ecs": [family(CLUSTER, "many", 120, 120)]}))
        .await
        .unwrap();
    for (service, revisions) in [("api-gateway-v2", 3), ("many", 120)] {
        let (ops, waits) = previous_rollback(&e, CLUSTER, service).await;
        // Preflight: DescribeServices, one ListTaskDefinitions page (DESC), the two task
        // definitions compared, the chosen one's ECR image confirmed. Apply: DescribeServices again (ECS has no precondition: the
        // re-read refuses a concurrent change), UpdateService. Then the wait's looks, one
        // service each here.
        let w = waits.len() as u64;
        assert_eq!(
            ops,
            counts(&[
                ("DescribeServices", 2 + w),
                ("ListTaskDefinitions", 1),
                ("DescribeTaskDefinition", 2),
                ("DescribeImages", 1),
                ("UpdateService", 1),
            ]),
            "{service} ({revisions} revisions); waits {waits:?}"
        );
        println!("{service} ({revisions} revisions): {ops:?}; looks (tick, services): {waits:?}");
        assert!(waits.iter().all(|(_, n)| *n == 1), "{waits:?}");
        // The deployment converges 0.3 s after UpdateService; the looks are on a 0.4 s grid,
        // the first at least 0.25 s after the apply: two looks, three if the emulator lags,
        // never one per 0.1 s.
        assert!((1..=4).contains(&w), "{service}: {w} looks: {waits:?}");
    }
}

#[tokio::test]
async fn twenty_five_services_converging_together_share_their_looks_ten_per_call() {
    const N: u64 = 25;
    let e = env(json!([])).await;
    let fleet: Vec<Value> = (0..N)
        .map(|i| family("fleet", &format!("svc-{i:02}"), 2, 2))
        .collect();
    e.emu.seed(json!({ "ecs": fleet })).await.unwrap();
    e.emu
        .set_ecs_convergence(Duration::from_millis(400))
        .await
        .unwrap();
    let mut b = e.tx("fleet");
    for i in 0..N {
        let t = EcsService::new(&e.aws, "fleet", format!("svc-{i:02}")).unwrap();
        b = b.step(Step::new(arc(&t), Selector::Previous));
    }
    let tx = b.build().unwrap();
    e.emu.reset_calls().await.unwrap();
    let log = PollLog::default();
    let report = log.record(tx.run()).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let waits = log.calls();
    let w = waits.len() as u64;
    // Before waiting, the calls per service of one, but DescribeServices: preflight's and
    // apply's reads of services asking at once share calls. Every service is read twice,
    // never more than ten to a call, in far fewer calls than one each (preflight starts
    // `concurrency` services at once; their applies take their places together).
    let reads = log.reads();
    let r = reads.len() as u64;
    println!("{N} services: the reads before waiting named {reads:?}");
    assert_eq!(reads.iter().sum::<u64>(), 2 * N, "{reads:?}");
    assert!(reads.iter().all(|n| (1..=10).contains(n)), "{reads:?}");
    assert_eq!(
        reads[0], 10,
        "preflight starts 16 services at once (the default concurrency), ten to a call: {reads:?}"
    );
    assert!(r <= N, "{r} reads for {N} services: {reads:?}");
    assert_eq!(
        ops(&e.emu).await,
        counts(&[
            ("DescribeServices", r + w),
            ("ListTaskDefinitions", N),
            ("DescribeTaskDefinition", 2 * N),
            ("DescribeImages", N),
            ("UpdateService", N),
        ]),
        "waits {waits:?}"
    );
    // The waits' calls, tick by tick (exact, whatever the timing): every tick is on the
    // shared 400 ms grid (no waiter looks on a time of its own), and each tick's waiters are
    // described in the fewest calls, ceil(waiting / 10), none naming more than 10.
    let mut ticks: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for (tick, services) in &waits {
        assert!(*services <= 10, "{waits:?}");
        assert_eq!(tick % 400, 0, "off the grid: {waits:?}");
        let t = ticks.entry(*tick).or_default();
        t.0 += 1;
        t.1 += services;
    }
    for (tick, (calls, services)) in &ticks {
        assert!(*services <= N, "a service twice at tick {tick}: {waits:?}");
        assert_eq!(*calls, services.div_ceil(10), "tick {tick}: {waits:?}");
    }
    println!(
        "{N} services: {w} DescribeServices while waiting; (calls, services) by tick: {ticks:?}"
    );
    // Hence at most ceil(25 / 10) = 3 DescribeServices per poll round, where looking on
    // their own the 25 waiters would have made one per service per round.
    assert!(w <= N.div_ceil(10) * ticks.len() as u64, "{waits:?}");
    let looks: u64 = ticks.values().map(|(_, s)| s).sum();
    assert!(looks >= N, "every service looked at: {waits:?}");
}

/// Calls by operation.
type Calls = [(&'static str, u64)];

/// What `prepare` costs for one selector, by operation, on a target with an empty cache.
async fn prepare_calls(
    e: &Env,
    service: &str,
    selector: Selector,
) -> (
    rollback_core::Result<rollback_core::Change>,
    BTreeMap<String, u64>,
) {
    let target = e.service(service);
    e.emu.reset_calls().await.unwrap();
    let change = target.prepare(&selector).await;
    (change, ops(&e.emu).await)
}

#[tokio::test]
async fn exact_describes_one_revision_and_image_tag_stops_at_the_first_match() {
    let e = env(services()).await;
    let api = "api-gateway-v2";
    let family = "agentauri-production-api-gateway";
    let cases: [(Selector, &str, &Calls); 6] = [
        // No listing: the revision named is described, with the one in use.
        (
            Selector::exact("1"),
            "1",
            &[
                ("DescribeServices", 1),
                ("DescribeTaskDefinition", 2),
                ("DescribeImages", 1),
            ],
        ),
        (
            Selector::exact(format!(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/{family}:2"
            )),
            "2",
            &[
                ("DescribeServices", 1),
                ("DescribeTaskDefinition", 2),
                ("DescribeImages", 1),
            ],
        ),
        // The one in use: nothing to describe but it.
        (
            Selector::exact("3"),
            "3",
            &[("DescribeServices", 1), ("DescribeTaskDefinition", 1)],
        ),
        // Newest first (3 in use, bad999; 2 def456; 1 abc123), stopping at the match.
        (
            Selector::image_tag("def456"),
            "2",
            &[
                ("DescribeServices", 1),
                ("ListTaskDefinitions", 1),
                ("DescribeTaskDefinition", 2),
                ("DescribeImages", 1),
            ],
        ),
        (
            Selector::image_tag("abc123"),
            "1",
            &[
                ("DescribeServices", 1),
                ("ListTaskDefinitions", 1),
                ("DescribeTaskDefinition", 3),
                ("DescribeImages", 1),
            ],
        ),
        (
            Selector::StepsBack(2),
            "1",
            &[
                ("DescribeServices", 1),
                ("ListTaskDefinitions", 1),
                ("DescribeTaskDefinition", 2),
                ("DescribeImages", 1),
            ],
        ),
    ];
    for (selector, to, want) in cases {
        let (change, calls) = prepare_calls(&e, api, selector.clone()).await;
        let change = change.unwrap_or_else(|err| panic!("{selector}: {err}"));
        assert_eq!(change.from.id, format!("{family}:3"), "{selector}");
        assert_eq!(change.to.id, format!("{family}:{to}"), "{selector}");
        assert_eq!(calls, counts(want), "{selector}");
    }
    // Not found: an Exact revision that does not exist is one describe; a tag nobody carries
    // walks the whole history.
    let (err, calls) = prepare_calls(&e, api, Selector::exact("99")).await;
    let err = err.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains(&format!("{family}:99")), "{err}");
    assert_eq!(
        calls,
        counts(&[("DescribeServices", 1), ("DescribeTaskDefinition", 2)])
    );
    let (err, calls) = prepare_calls(&e, api, Selector::image_tag("nope")).await;
    assert_eq!(err.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        calls,
        counts(&[
            ("DescribeServices", 1),
            ("ListTaskDefinitions", 1),
            ("DescribeTaskDefinition", 3)
        ])
    );
    assert_eq!(e.update_calls().await, 0);
}

#[tokio::test]
async fn prepare_is_current_resolve_and_plan_in_one_with_the_one_in_use_deregistered() {
    let e = env(services()).await;
    let api = e.service("api-gateway-v2");
    let family = "agentauri-production-api-gateway";
    let selectors = [
        Selector::Previous,
        Selector::StepsBack(2),
        Selector::exact("1"),
        Selector::image_tag("abc123"),
        Selector::image_tag("bad999"),
    ];
    for selector in &selectors {
        let separately = api
            .plan(&api.resolve(selector).await.unwrap())
            .await
            .unwrap();
        let prepared = api.prepare(selector).await.unwrap();
        if separately.to.id == separately.from.id {
            assert!(prepared.is_noop(), "{selector}: {prepared}");
            assert_eq!(prepared.from, separately.from);
        } else {
            assert_eq!(prepared, separately, "{selector}");
        }
    }
    // The revision in use deregistered: still the one in use, and Previous the next older
    // ACTIVE one; with that one deregistered too, the one before.
    for (deregistered, previous) in [(3, 2), (2, 1)] {
        api.client()
            .await
            .unwrap()
            .deregister_task_definition()
            .task_definition(format!("{family}:{deregistered}"))
            .send()
            .await
            .unwrap();
        let (change, calls) = prepare_calls(&e, "api-gateway-v2", Selector::Previous).await;
        let change = change.unwrap();
        assert_eq!(change.from.id, format!("{family}:3"));
        assert_eq!(
            change.from.facts.get("status").map(String::as_str),
            Some("INACTIVE")
        );
        assert_eq!(change.to.id, format!("{family}:{previous}"));
        assert_eq!(
            calls,
            counts(&[
                ("DescribeServices", 1),
                ("ListTaskDefinitions", 1),
                ("DescribeTaskDefinition", 2),
                ("DescribeImages", 1)
            ])
        );
        let fresh = e.service("api-gateway-v2");
        assert_eq!(
            fresh.resolve(&Selector::Previous).await.unwrap().id,
            change.to.id
        );
        let ids: Vec<String> = fresh
            .history()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids[0], format!("{family}:3"), "{ids:?}");
    }
    // A deregistered revision is not one to go to, named exactly (a fresh target: `api`
    // described revision 2 while it was ACTIVE, and keeps what it read).
    let err = e
        .service("api-gateway-v2")
        .prepare(&Selector::exact("2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("INACTIVE"), "{err}");
}

/// Runbook 003 step 2: a revision whose ECR image was deleted is refused in preflight,
/// naming the image, before anything changes; the plan of a good one shows the digest.
#[tokio::test]
async fn a_revision_whose_ecr_image_is_gone_is_refused_before_anything_changes() {
    let image = |tag: &str| format!("{ECR}/gone-api:{tag}");
    let e = env(json!([{
        "cluster": CLUSTER, "service": "gone-api", "family": "gone-api", "desired_count": 1,
        "revisions": [
            {"image": image("1.7.0")},
            {"image": image("1.8.0"), "image_missing": true},
            {"image": image("1.9.0")}
        ],
        "current": 3
    }]))
    .await;
    let svc = e.service("gone-api");
    let err = e
        .tx("gone")
        .step(Step::new(arc(&svc), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&image("1.8.0")) && text.contains("no longer in ECR"),
        "names the image: {text}"
    );
    assert!(text.contains("ecs-service/"), "names the target: {text}");
    assert_eq!(e.update_calls().await, 0, "nothing changed");

    // Two back is still there: planned with its digest.
    let change = svc.prepare(&Selector::StepsBack(2)).await.unwrap();
    let digest = change
        .diff
        .entries
        .iter()
        .find(|d| d.key == "digest")
        .and_then(|d| d.to.clone())
        .unwrap_or_else(|| panic!("no digest in {:?}", change.diff));
    assert!(digest.starts_with("sha256:"), "{digest}");

    // The check can be turned off (a role without ecr:DescribeImages): the plan goes on.
    let unchecked = e.service("gone-api").check_images(false);
    let change = unchecked.prepare(&Selector::Previous).await.unwrap();
    assert_eq!(change.to.id, "gone-api:2");
    assert_eq!(unchecked.spec().params["check_images"], json!(false));
}
