//! Fault campaign: transactions over a Lambda alias, an ECS service and a secret, through
//! the real SDK against the AWS emulator while 20 % of all AWS calls are throttled, answered
//! 503 or dropped with a TCP reset (seeded). Every run must end `succeeded` or
//! `compensated`, or fail before changing anything; afterwards the emulator's state, read
//! with a client of its own and no faults, is what the report says, every time.
#![allow(clippy::unwrap_used)]

#[path = "campaign/mod.rs"]
mod campaign;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use campaign::{Reader, Trio};
use rollback_aws::{Aws, EcsService, LambdaAlias, SecretVersion};
use rollback_core::verify::check_bool;
use rollback_core::{
    FileLocks, Outcome, Policy, Report, RollbackTarget, Selector, Step, StepStatus, Transaction,
};
use rollback_testkit::{injected_in, mutations_in, AwsEmulator};

const SEEDS: [u64; 3] = [7, 11, 23];
const PER_SEED: usize = 8;
const RATE: f64 = 0.2;
const KINDS: [&str; 3] = ["throttle", "5xx", "reset"];

/// How one transaction ended, as the campaign counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum End {
    Succeeded,
    Compensated,
    RefusedBeforeChange,
    /// Not allowed: something was changed and not put back.
    Failed,
}

/// What the emulator holds for a trio: alias version, task definition, AWSCURRENT version.
type State = (String, String, String);

async fn state(r: &Reader, t: &Trio) -> State {
    (
        r.alias_version(&t.function).await,
        r.service_td(&t.service).await,
        r.secret_current(&t.secret).await,
    )
}

fn at(t: &Trio, n: u32) -> State {
    (
        n.to_string(),
        t.td(n),
        t.secret_versions[n as usize - 1].clone(),
    )
}

/// The state the report says the targets are in: a step that succeeded (or was applied
/// and could not be put back) at its `to`, any other at its `from`.
fn reported(report: &Report) -> State {
    let pick = |i: usize| {
        let s = &report.steps[i];
        let moved = matches!(
            s.status,
            StepStatus::Succeeded | StepStatus::Applied | StepStatus::CompensationFailed
        );
        let r = if moved {
            s.to.as_ref()
        } else {
            s.from.as_ref()
        };
        r.unwrap().id.clone()
    };
    (pick(0), pick(1), pick(2))
}

/// One transaction: all three targets back to their previous revision in one stage; when
/// `fail` a step check fails, so the run compensates (odd runs).
async fn transaction(aws: &Aws, dir: &std::path::Path, t: &Trio, fail: bool) -> Transaction {
    let alias: Arc<dyn RollbackTarget> =
        Arc::new(LambdaAlias::new(aws, &t.function, "live").unwrap());
    let svc: Arc<dyn RollbackTarget> =
        Arc::new(EcsService::new(aws, campaign::CLUSTER, &t.service).unwrap());
    let secret: Arc<dyn RollbackTarget> = Arc::new(SecretVersion::new(aws, &t.secret).unwrap());
    let mut secret_step = Step::new(secret, Selector::Previous).timeout(Duration::from_secs(60));
    if fail {
        secret_step = secret_step.verify(
            rollback_core::Check::new(check_bool("smoke test", || async { false }))
                .policy(Policy::once()),
        );
    }
    Transaction::builder(format!("campaign {}", t.function))
        .reason("fault campaign")
        .journal(dir.join(format!("{}.jsonl", t.function)))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .step(Step::new(alias, Selector::Previous).timeout(Duration::from_secs(60)))
        .step(Step::new(svc, Selector::Previous).timeout(Duration::from_secs(60)))
        .step(secret_step)
        .build()
        .unwrap()
}

/// Runs one seed's transactions one after the other under the seeded faults.
async fn campaign(
    emu: &AwsEmulator,
    seed: u64,
    failures: &mut Vec<String>,
) -> (BTreeMap<End, usize>, serde_json::Value) {
    let mut trios: Vec<Trio> = (0..PER_SEED)
        .map(|i| Trio::names(&format!("s{seed}-{i}")))
        .collect();
    campaign::seed(emu, &mut trios).await;
    let aws = Aws::from_sdk_config(&emu.sdk_config().await);
    let reader = Reader::new(emu.endpoint()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut ends = BTreeMap::new();
    emu.reset_calls().await.unwrap();
    // Per transaction a seed of its own, so each run meets the same faults however the
    // others went.
    for (i, t) in trios.iter().enumerate() {
        let fail = i % 2 == 1;
        let tx = transaction(&aws, dir.path(), t, fail).await;
        let before = emu.calls().await.unwrap();
        emu.inject_rate(RATE, &KINDS, seed * 1000 + i as u64, None)
            .await
            .unwrap();
        let result = tx.run().await;
        emu.clear_faults().await.unwrap();
        let after = emu.calls().await.unwrap();
        let now = state(&reader, t).await;
        let mut wrong = |what: String| failures.push(format!("seed {seed} run {i}: {what}"));
        let end = match &result {
            Ok(report) => {
                // A run may compensate when a fault outlasts its retries; one whose check
                // fails never succeeds; no run may end `failed`.
                let allowed = match report.outcome {
                    Outcome::Succeeded => !fail,
                    Outcome::Compensated => true,
                    _ => false,
                };
                if !allowed {
                    wrong(format!("ended {}: {report}", report.outcome));
                }
                if now != reported(report) {
                    wrong(format!(
                        "the emulator holds {now:?}, the report says {:?}",
                        reported(report)
                    ));
                }
                let n = if report.outcome == Outcome::Succeeded {
                    2
                } else {
                    3
                };
                if now != at(t, n) {
                    wrong(format!(
                        "the emulator holds {now:?}, not revision {n} of each"
                    ));
                }
                match report.outcome {
                    Outcome::Succeeded => End::Succeeded,
                    Outcome::Compensated => End::Compensated,
                    _ => End::Failed,
                }
            }
            Err(e) => {
                let mutations = mutations_in(&after) - mutations_in(&before);
                if mutations != 0 {
                    wrong(format!("failed after {mutations} mutating call(s): {e}"));
                }
                if now != at(t, 3) {
                    wrong(format!("refused ({e}) but the emulator holds {now:?}"));
                }
                End::RefusedBeforeChange
            }
        };
        *ends.entry(end).or_insert(0) += 1;
    }
    (ends, emu.calls().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_under_seeded_faults_end_as_reported() {
    let emu = campaign::emulator().await;
    let started = Instant::now();
    let mut totals: BTreeMap<End, usize> = BTreeMap::new();
    let (mut injected, mut mutating_faulted, mut calls) = (0, 0, 0);
    let mut failures = Vec::new();
    for seed in SEEDS {
        let t0 = Instant::now();
        let (ends, c) = campaign(&emu, seed, &mut failures).await;
        let by_op = &c["faults_injected"]["by_operation"];
        let on_mutations =
            rollback_testkit::mutations_in(&serde_json::json!({ "operations": by_op }));
        println!(
            "fault campaign seed {seed}: {PER_SEED} runs in {:.1?}: {ends:?}; {} AWS calls ({} mutating), {} faults injected (throttle {}, 5xx {}, reset {}; {} on mutating calls)",
            t0.elapsed(),
            c["total"],
            mutations_in(&c),
            injected_in(&c, "total"),
            injected_in(&c, "throttle"),
            injected_in(&c, "5xx"),
            injected_in(&c, "reset"),
            on_mutations,
        );
        for (k, v) in ends {
            *totals.entry(k).or_insert(0) += v;
        }
        injected += injected_in(&c, "total");
        mutating_faulted += on_mutations;
        calls += c["total"].as_u64().unwrap_or(0);
    }
    println!(
        "fault campaign: {} runs over seeds {SEEDS:?} in {:.1?}: {totals:?}; {calls} calls, {injected} faults injected, {mutating_faulted} of them on mutating calls",
        SEEDS.len() * PER_SEED,
        started.elapsed()
    );
    // The faults really were there, on mutations too, at about the rate asked for.
    assert!(
        injected as f64 > calls as f64 * RATE / 2.0,
        "{injected} of {calls}"
    );
    assert!(mutating_faulted > 0);
    assert_eq!(totals.values().sum::<usize>(), SEEDS.len() * PER_SEED);
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
