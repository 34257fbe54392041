#![allow(clippy::unwrap_used)]
//! `LambdaAlias` through the real AWS SDK against the AWS emulator (moto plus the
//! project's harness: RevisionId enforcement, fault injection, a health endpoint).
//!
//! Runbook 000 ("Lambda MCP Server Rollback") and runbook 002's "canary to 0" as tests.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rollback_aws::{Aws, LambdaAlias};
use rollback_core::conformance::{assert_conformance, Fixture};
use rollback_core::verify::HttpCheck;
use rollback_core::{
    ApplyOutcome, Check, ErrorKind, Event, EventKind, FakeTarget, FileLocks, Outcome, Policy,
    Revision, RollbackTarget, Selector, Step, Transaction, TransactionBuilder,
};
use rollback_testkit::{count_in, gained, mutations_in, AwsEmulator};
use serde_json::{json, Value};

const FUNCTION: &str = "agentauri-mcp-s3-tools-prod";
const ALIAS: &str = "live";

/// One emulator per test: each `#[tokio::test]` has its own runtime, and the emulator's
/// child process and pipes belong to the runtime that started it.
struct Env {
    emu: AwsEmulator,
    /// The emulator's call counts right after seeding.
    baseline: Value,
    aws: Aws,
    target: LambdaAlias,
}

async fn env(routing: Option<Value>) -> Env {
    let emu = AwsEmulator::start().await.unwrap();
    let mut function = json!({
        "function": FUNCTION,
        "alias": ALIAS,
        "versions": ["release 1", "release 2", "release 3"],
        "alias_version": "3",
    });
    if let Some(r) = routing {
        function["routing"] = r;
    }
    let seeded = emu.seed(json!({ "lambda": [function] })).await.unwrap();
    assert_eq!(
        seeded["lambda"][0]["versions"],
        json!(["1", "2", "3"]),
        "{seeded}"
    );
    let baseline = emu.calls().await.unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let target = LambdaAlias::new(&aws, FUNCTION, ALIAS).unwrap();
    Env {
        emu,
        baseline,
        aws,
        target,
    }
}

/// The alias as the emulator has it: primary version, weights, RevisionId.
async fn read_alias(t: &LambdaAlias) -> (String, HashMap<String, f64>, String) {
    let out = t
        .client()
        .await
        .unwrap()
        .get_alias()
        .function_name(t.function())
        .name(t.alias())
        .send()
        .await
        .unwrap();
    let weights = out
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .cloned()
        .unwrap_or_default();
    (
        out.function_version().unwrap().to_string(),
        weights,
        out.revision_id().unwrap_or_default().to_string(),
    )
}

impl Env {
    /// How many times `op` was called since seeding.
    async fn calls(&self, op: &str) -> u64 {
        count_in(&self.emu.calls().await.unwrap(), op) - count_in(&self.baseline, op)
    }
}

fn transaction(dir: &Path, name: &str) -> TransactionBuilder {
    Transaction::builder(name)
        .reason("integration test")
        .journal(dir.join(format!("{name}.jsonl")))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
}

fn step(t: &LambdaAlias, selector: Selector) -> Step {
    Step::new(Arc::new(t.clone()) as Arc<dyn RollbackTarget>, selector)
        .timeout(Duration::from_secs(30))
}

#[tokio::test]
async fn conforms_to_the_rollback_target_contract() {
    let e = env(None).await;
    let fixture = Fixture {
        unknown_revision: "999".into(),
        ..Fixture::default()
    };
    assert_conformance(&e.target, &fixture).await;
    assert_eq!(read_alias(&e.target).await.0, "3");
}

#[tokio::test]
async fn history_is_every_published_version_newest_first() {
    let e = env(None).await;
    let history = e.target.history().await.unwrap();
    let ids: Vec<&str> = history.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["3", "2", "1"]);
    assert_eq!(history[1].description.as_deref(), Some("release 2"));
    assert!(
        history.iter().all(|r| r.created_at.is_some()),
        "{history:?}"
    );
    assert!(
        history.iter().all(|r| r.facts.contains_key("code_sha256")),
        "{history:?}"
    );
    let current = e.target.current().await.unwrap();
    assert_eq!(current.id, "3");
    assert!(!current.facts.contains_key("canary"), "{current:?}");
    assert_eq!(e.target.resolve(&Selector::Previous).await.unwrap().id, "2");
    assert_eq!(
        e.target.resolve(&Selector::StepsBack(2)).await.unwrap().id,
        "1"
    );
    // The spec is data, rebuilt by the registry (journal resume) with the same identity.
    let spec = e.target.spec();
    let json = serde_json::to_string(&spec).unwrap();
    assert!(
        json.contains(FUNCTION) && json.contains(e.emu.endpoint()),
        "{json}"
    );
    let rebuilt = rollback_aws::registry()
        .build(&e.target.id(), &spec)
        .await
        .unwrap();
    assert_eq!(rebuilt.id(), e.target.id());
    assert_eq!(rebuilt.spec(), spec);
    // With the Aws the run had (the emulator's own credentials, not the environment's),
    // every factory rebuilds with it: no resolution at all, and the target works.
    let mut registry = rollback_core::Registry::new();
    let cache = rollback_aws::AwsCache::with(e.aws.clone());
    rollback_aws::register_with(&mut registry, cache.clone());
    let rebuilt = registry.build(&e.target.id(), &spec).await.unwrap();
    assert_eq!(rebuilt.spec(), spec);
    assert_eq!(rebuilt.current().await.unwrap().id, "3");
    assert_eq!(cache.resolved(), 0);
}

/// Runbook 000: the alias goes back to the previous version, the health check proves it.
#[tokio::test]
async fn runbook_000_alias_back_to_the_previous_version() {
    let e = env(None).await;
    e.emu
        .mark_bad("lambda", &format!("{FUNCTION}:{ALIAS}"), "3")
        .await
        .unwrap();
    assert!(!e.emu.healthy().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let report = transaction(dir.path(), "runbook-000")
        .reason("MCP tool bug in release 3")
        .step(step(&e.target, Selector::Previous).verify(HttpCheck::new(e.emu.health_url())))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(report.steps[0].from.as_ref().unwrap().id, "3");
    assert_eq!(report.steps[0].to.as_ref().unwrap().id, "2");
    let (version, weights, _) = read_alias(&e.target).await;
    assert_eq!(version, "2");
    assert!(weights.is_empty(), "{weights:?}");
    assert!(e.emu.healthy().await.unwrap());
    assert_eq!(e.calls("UpdateAlias").await, 1);
}

/// Runbook 002's "canary to 0": a canary alias rolled back to its own primary version has
/// its weights cleared; that is a real change, and only then is it already current.
#[tokio::test]
async fn canary_alias_back_to_its_primary_clears_the_weights() {
    let e = env(Some(json!({"2": 0.1}))).await;
    let current = e.target.current().await.unwrap();
    assert_eq!(current.id, "3");
    assert_eq!(current.facts["canary"], "2=10%");

    let change = e.target.plan(&Revision::new("3")).await.unwrap();
    assert_eq!(change.from.id, "3");
    assert_eq!(change.to.id, "3");
    assert!(change.precondition.is_some());
    let text = change.to_string();
    assert!(text.contains("- fact canary: 2=10%"), "{text}");

    assert_eq!(
        e.target.apply(&change).await.unwrap(),
        ApplyOutcome::Applied
    );
    let (version, weights, _) = read_alias(&e.target).await;
    assert_eq!(version, "3");
    assert!(weights.is_empty(), "{weights:?}");
    assert!(!e
        .target
        .current()
        .await
        .unwrap()
        .facts
        .contains_key("canary"));
    assert_eq!(
        e.target.apply(&change).await.unwrap(),
        ApplyOutcome::AlreadyCurrent
    );
    // The second apply's UpdateAlias carries the spent RevisionId: Lambda refuses it (412)
    // and one read shows the alias already there.
    assert_eq!(e.calls("UpdateAlias").await, 2);
    assert_eq!(read_alias(&e.target).await.0, "3");
}

/// The same inside a transaction: the alias is "at" version 3 only by id, so the step is
/// not refused as already current; it applies and clears the weights.
#[tokio::test]
async fn canary_to_0_in_a_transaction() {
    let e = env(Some(json!({"2": 0.1}))).await;
    let dir = tempfile::tempdir().unwrap();
    let report = transaction(dir.path(), "canary-to-0")
        .step(step(&e.target, Selector::exact("3")))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let (version, weights, _) = read_alias(&e.target).await;
    assert_eq!(version, "3");
    assert!(weights.is_empty(), "{weights:?}");
    assert_eq!(e.calls("UpdateAlias").await, 1);
}

/// Rolling a canary alias back to the previous version sends it all traffic; the plan
/// shows the weights it clears.
#[tokio::test]
async fn canary_alias_to_previous_moves_all_traffic() {
    let e = env(Some(json!({"2": 0.1}))).await;
    let dir = tempfile::tempdir().unwrap();
    let tx = transaction(dir.path(), "canary-previous")
        .step(step(&e.target, Selector::Previous))
        .build()
        .unwrap();
    let plan = tx.dry_run().await.unwrap();
    assert_eq!(plan.outcome, Outcome::Planned);
    assert!(plan.to_string().contains("- fact canary: 2=10%"), "{plan}");
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let (version, weights, _) = read_alias(&e.target).await;
    assert_eq!(version, "2");
    assert!(weights.is_empty(), "{weights:?}");
}

/// A failed rollback of a canary alias is compensated: the alias goes back to its version
/// and its canary weights.
#[tokio::test]
async fn compensation_restores_the_canary_split() {
    let e = env(Some(json!({"2": 0.1}))).await;
    e.emu
        .mark_bad("lambda", &format!("{FUNCTION}:{ALIAS}"), "2")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let health = Check::from(HttpCheck::new(e.emu.health_url())).policy(
        Policy::once()
            .attempts(2)
            .interval(Duration::from_millis(100)),
    );
    let report = transaction(dir.path(), "canary-compensated")
        .step(step(&e.target, Selector::Previous).verify(health))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let (version, weights, _) = read_alias(&e.target).await;
    assert_eq!(version, "3");
    assert_eq!(weights.len(), 1, "{weights:?}");
    assert!((weights["2"] - 0.1).abs() < 1e-9, "{weights:?}");
}

/// Someone moves the alias after the plan: apply refuses and leaves their change alone.
#[tokio::test]
async fn a_version_change_after_the_plan_is_a_conflict() {
    let e = env(None).await;
    let previous = e.target.resolve(&Selector::Previous).await.unwrap();
    let change = e.target.plan(&previous).await.unwrap();
    e.target
        .client()
        .await
        .unwrap()
        .update_alias()
        .function_name(FUNCTION)
        .name(ALIAS)
        .function_version("1")
        .send()
        .await
        .unwrap();
    let before = e.emu.calls().await.unwrap();
    let err = e.target.apply(&change).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert!(
        err.to_string().contains(&format!("{FUNCTION}:{ALIAS}")),
        "{err}"
    );
    assert_eq!(read_alias(&e.target).await.0, "1");
    // One UpdateAlias with the planned RevisionId, refused by Lambda (412): the
    // precondition, not a read before it, finds the conflict, and nothing changed.
    let after = e.emu.calls().await.unwrap();
    assert_eq!(
        count_in(&after, "UpdateAlias"),
        count_in(&before, "UpdateAlias") + 1
    );
}

/// Someone changes the alias without moving its version (here its description): the
/// RevisionId read in preflight no longer matches, Lambda answers 412, a conflict.
#[tokio::test]
async fn a_revision_id_change_after_the_plan_is_a_conflict() {
    let e = env(None).await;
    let change = e.target.plan(&Revision::new("2")).await.unwrap();
    let (_, _, planned_revision) = read_alias(&e.target).await;
    assert_eq!(
        change.precondition.as_deref(),
        Some(planned_revision.as_str())
    );
    e.target
        .client()
        .await
        .unwrap()
        .update_alias()
        .function_name(FUNCTION)
        .name(ALIAS)
        .description("touched by someone else")
        .send()
        .await
        .unwrap();
    let (_, _, new_revision) = read_alias(&e.target).await;
    assert_ne!(
        new_revision, planned_revision,
        "the emulator must bump RevisionId"
    );
    let err = e.target.apply(&change).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(read_alias(&e.target).await.0, "3");
}

/// A transaction whose alias is moved by someone else between preflight and apply stops
/// with a conflict and does not overwrite their change. The change is made by the
/// verifier of an earlier stage's step (a fake target), after the preflight.
#[tokio::test]
async fn a_transaction_stops_on_a_concurrent_change() {
    let e = env(None).await;
    let client = e.target.client().await.unwrap().clone();
    let interloper = rollback_core::verify::check_bool("someone deploys", move || {
        let client = client.clone();
        async move {
            client
                .update_alias()
                .function_name(FUNCTION)
                .name(ALIAS)
                .function_version("1")
                .send()
                .await
                .is_ok()
        }
    });
    let other = FakeTarget::builder("config")
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = transaction(dir.path(), "concurrent")
        .step(
            Step::new(
                Arc::new(other.clone()) as Arc<dyn RollbackTarget>,
                Selector::Previous,
            )
            .verify(interloper),
        )
        .stage()
        .step(step(&e.target, Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_ne!(report.outcome, Outcome::Succeeded, "{report}");
    let lambda = &report.steps[1];
    assert_eq!(
        lambda.error.as_ref().unwrap().kind,
        ErrorKind::Conflict,
        "{report}"
    );
    assert_eq!(read_alias(&e.target).await.0, "1");
    // The interloper's, and ours refused by the RevisionId precondition (412).
    assert_eq!(e.calls("UpdateAlias").await, 2);
}

/// Throttled UpdateAlias calls are retried inside the transaction, with events saying so.
#[tokio::test]
async fn throttled_updates_are_retried_to_success() {
    let e = env(None).await;
    e.emu.inject("UpdateAlias", "throttle", 2, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let sink = events.clone();
    let report = transaction(dir.path(), "throttled")
        .on_event(move |ev| sink.lock().unwrap().push(ev.clone()))
        .step(step(&e.target, Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(read_alias(&e.target).await.0, "2");
    let retries = events
        .lock()
        .unwrap()
        .iter()
        .filter(|ev| ev.kind == EventKind::Retrying)
        .count();
    assert_eq!(retries, 2);
}

/// Bad input fails before anything changes, with typed errors that name the target.
#[tokio::test]
async fn bad_input_is_refused_before_anything_changes() {
    let e = env(None).await;
    let dir = tempfile::tempdir().unwrap();
    let before = mutations_in(&e.emu.calls().await.unwrap());

    // An unknown function and an unknown alias: NotFound, in preflight.
    for (function, alias) in [("no-such-function", ALIAS), (FUNCTION, "no-such-alias")] {
        let t = LambdaAlias::new(&e.aws, function, alias).unwrap();
        let err = t.current().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(
            err.to_string().contains(&format!("{function}:{alias}")),
            "{err}"
        );
        let err = transaction(dir.path(), &format!("bad-{function}-{alias}"))
            .step(step(&t, Selector::Previous))
            .build()
            .unwrap()
            .run()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert!(err.to_string().contains(function), "{err}");
    }

    // A version that is not in the history.
    let err = e.target.resolve(&Selector::exact("42")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&format!("{FUNCTION}:{ALIAS}")),
        "{err}"
    );
    assert!(err.to_string().contains("3, 2, 1"), "{err}");
    let err = transaction(dir.path(), "bad-42")
        .step(step(&e.target, Selector::exact("42")))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = e.target.plan(&Revision::new("42")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("\"42\""), "{err}");
    let err = e.target.plan(&Revision::new("$LATEST")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");

    // A hand-made change to an unknown version: refused before UpdateAlias is sent.
    let mut change = e.target.plan(&Revision::new("2")).await.unwrap();
    change.to = Revision::new("42");
    let err = e.target.apply(&change).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(
        err.to_string().contains(&format!("{FUNCTION}:{ALIAS}")),
        "{err}"
    );

    // Empty names never reach AWS.
    for (function, alias) in [("", ALIAS), (FUNCTION, ""), ("  ", ALIAS), (FUNCTION, " ")] {
        let err = LambdaAlias::new(&e.aws, function, alias).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().starts_with("lambda-alias/"), "{err}");
        assert!(err.to_string().contains("name is empty"), "{err}");
    }

    // Nothing changed, nothing was even sent.
    let (version, weights, _) = read_alias(&e.target).await;
    assert_eq!(version, "3");
    assert!(weights.is_empty());
    let calls = e.emu.calls().await.unwrap();
    assert_eq!(e.calls("UpdateAlias").await, 0, "{calls}");
    assert_eq!(mutations_in(&calls), before, "{calls}");
}

#[tokio::test]
async fn debug_output_names_the_target_only() {
    let e = env(None).await;
    let text = format!("{:?}", e.target);
    assert!(
        text.contains("lambda-alias") && text.contains(FUNCTION),
        "{text}"
    );
    assert!(text.contains("us-east-1"), "{text}");
    assert!(!text.contains("testing"), "no credentials: {text}");
}

/// Exact calls by operation of one rollback run through a transaction (preflight, apply
/// and the wait): the issue 12 budget is GetAlias, one listing page, the chosen version's
/// configuration and UpdateAlias (4), plus one. `Previous` asks for version N-1 directly,
/// so a function with 120 versions (three listing pages) costs what one with 3 does.
#[tokio::test]
async fn each_rollback_makes_the_fewest_calls_whatever_the_number_of_versions() {
    let emu = AwsEmulator::start().await.unwrap();
    let many: Vec<String> = (1..=120).map(|i| format!("release {i}")).collect();
    let lambda: Vec<Value> = [("few", 3usize), ("few-exact", 3), ("few-back", 3), ("many", 120)]
        .iter()
        .map(|(name, n)| {
            json!({"function": name, "alias": ALIAS, "versions": many[..*n], "alias_version": n.to_string()})
        })
        .collect();
    emu.seed(json!({ "lambda": lambda })).await.unwrap();
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let dir = tempfile::tempdir().unwrap();
    let ops = |pairs: &[(&str, u64)]| {
        pairs
            .iter()
            .map(|(op, n)| (op.to_string(), *n))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    // GetAlias twice: preflight's read and the wait's one look (the version was seen
    // Active in preflight, so the look reads the alias only).
    let previous = ops(&[
        ("GetAlias", 2),
        ("GetFunctionConfiguration", 2),
        ("UpdateAlias", 1),
    ]);
    let cases = [
        ("few", Selector::Previous, "2", previous.clone()),
        ("many", Selector::Previous, "119", previous.clone()),
        ("few-exact", Selector::exact("1"), "1", previous),
        // StepsBack reads the listing (one page here) and takes the current revision
        // from it: the chosen version alone is described.
        (
            "few-back",
            Selector::StepsBack(2),
            "1",
            ops(&[
                ("GetAlias", 2),
                ("GetFunctionConfiguration", 1),
                ("ListVersionsByFunction", 1),
                ("UpdateAlias", 1),
            ]),
        ),
    ];
    for (function, selector, to, want) in cases {
        let target = LambdaAlias::new(&aws, function, ALIAS).unwrap();
        let before = emu.calls().await.unwrap();
        let report = transaction(dir.path(), function)
            .step(step(&target, selector))
            .build()
            .unwrap()
            .run()
            .await
            .unwrap();
        assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
        assert_eq!(read_alias(&target).await.0, to, "{function}");
        let after = emu.calls().await.unwrap();
        // read_alias made one GetAlias after the run.
        let mut got = gained(&before, &after);
        *got.entry("GetAlias".into()).or_default() -= 1;
        assert_eq!(got, want, "{function}");
    }
}
