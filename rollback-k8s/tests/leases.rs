#![allow(clippy::unwrap_used)]
//! [`LeaseLocks`] through the real kube-rs client against the project's Kubernetes API
//! simulator: the lock conformance suite, a transaction locking on the cluster (seen with
//! the real kubectl), fencing of a run whose lease was taken over, two clients racing, the
//! API's errors, and the lock kind rebuilt from a journal's spec.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease as KubeLease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ListParams, PostParams};
use rollback_core::conformance::locks::assert_lock_conformance;
use rollback_core::conformance::processes::{contender, Contenders};
use rollback_core::verify::{check_fn, CheckOutcome};
use rollback_core::{
    ErrorKind, FakeTarget, FileLocks, Holder, LockManager, Outcome, Report, Revision,
    RollbackTarget as _, Selector, Step, TargetId, Transaction, TransactionBuilder,
};
use rollback_k8s::lease::{
    HOLDER_ANNOTATION, JOURNAL_ANNOTATION, MANAGED_BY_LABEL, TARGET_ANNOTATION,
};
use rollback_k8s::{K8s, LeaseLocks};
use rollback_testkit::k8s::{kubectl, Fault, K8sSimulator};
use serde_json::{json, Value};

/// The namespace holding the leases.
const NS: &str = "rollback";
const TTL: Duration = Duration::from_secs(60);

/// A started simulator (a test fails, never skips, when it cannot start), a client for it
/// and a kubeconfig the real kubectl uses.
struct Env {
    sim: K8sSimulator,
    k8s: K8s,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Env {
    fn start() -> Env {
        let sim = K8sSimulator::start()
            .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let k8s = K8s::from_url(sim.url()).unwrap();
        Env {
            sim,
            k8s,
            dir,
            kubeconfig,
        }
    }

    /// Leases in [`NS`] on a client of their own (another process, another machine).
    fn locks(&self) -> LeaseLocks {
        LeaseLocks::new(&K8s::from_url(self.sim.url()).unwrap(), NS).unwrap()
    }

    /// A transaction journaled to `journal` in the test's folder, locking with `locks`.
    fn tx(&self, journal: &str, locks: impl LockManager + 'static) -> TransactionBuilder {
        Transaction::builder(journal)
            .reason("test")
            .journal(self.dir.path().join(journal))
            .locks(Arc::new(locks))
    }

    fn api(&self) -> Api<KubeLease> {
        Api::namespaced(self.k8s.client().clone(), NS)
    }

    /// Runs the real kubectl against the simulator; its stdout.
    async fn kubectl(&self, args: &[&str]) -> String {
        kubectl(&self.kubeconfig, args).await
    }

    /// `kubectl get lease NAME -n NS -o json`.
    async fn lease_json(&self, name: &str) -> Value {
        serde_json::from_str(
            &self
                .kubectl(&["get", "lease", name, "-n", NS, "-o", "json"])
                .await,
        )
        .unwrap()
    }
}

/// Builds and runs the transaction; its report.
async fn run(tx: TransactionBuilder) -> Report {
    tx.build().unwrap().run().await.unwrap()
}

fn holder(name: &str, transaction: &str) -> Holder {
    Holder {
        name: name.into(),
        transaction: transaction.into(),
        journal: None,
    }
}

fn target(name: &str) -> FakeTarget {
    FakeTarget::builder(name)
        .revision(Revision::new("1"))
        .revision(Revision::new("2"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn lease_locks_pass_the_lock_conformance_suite_and_give_every_lease_back() {
    let env = Env::start();
    let locks = env.locks();
    assert_lock_conformance(&locks).await;
    // Every Lease the suite took is still there, labelled, with no holder, its token kept.
    let all = env
        .api()
        .list(&ListParams::default().labels(&format!("{MANAGED_BY_LABEL}=rollback")))
        .await
        .unwrap()
        .items;
    assert!(all.len() >= 10, "{} leases", all.len());
    for l in &all {
        let spec = l.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity, None, "{l:?}");
        assert!(spec.lease_transitions.unwrap() >= 1, "{l:?}");
    }
}

#[tokio::test]
async fn a_transaction_holds_its_lease_on_the_cluster_while_it_runs() {
    let env = Env::start();
    let api = target("api");
    let name = LeaseLocks::lease_name(&api.id());
    let seen = Arc::new(Mutex::new(Value::Null));
    let (kubeconfig, lease, s2) = (env.kubeconfig.clone(), name.clone(), seen.clone());
    let look = check_fn("kubectl get lease", move || {
        let (kubeconfig, lease, seen) = (kubeconfig.clone(), lease.clone(), s2.clone());
        async move {
            let out = kubectl(
                &kubeconfig,
                &["get", "lease", &lease, "-n", NS, "-o", "json"],
            )
            .await;
            *seen.lock().unwrap() = serde_json::from_str(&out).unwrap();
            Ok(CheckOutcome::pass("the Lease was read"))
        }
    });
    let step = Step::new(Arc::new(api.clone()), Selector::Previous).verify(look);
    let report = run(env.tx("locked.jsonl", env.locks()).step(step)).await;
    let journal = report.journal_path.clone();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(api.current_id(), "1");

    // While the step ran, kubectl saw the run's lease.
    let held = seen.lock().unwrap().clone();
    let spec = &held["spec"];
    assert_eq!(spec["holderIdentity"], json!(report.transaction), "{held}");
    assert_eq!(spec["leaseTransitions"], 1, "{held}");
    assert_eq!(spec["leaseDurationSeconds"], 300, "{held}");
    assert!(
        spec["acquireTime"].is_string() && spec["renewTime"].is_string(),
        "{held}"
    );
    let notes = &held["metadata"]["annotations"];
    assert_eq!(notes[TARGET_ANNOTATION], "memory/api", "{held}");
    assert!(
        notes[HOLDER_ANNOTATION].as_str().unwrap().contains("(pid "),
        "{held}"
    );
    assert_eq!(
        notes[JOURNAL_ANNOTATION],
        json!(std::path::absolute(&journal).unwrap()),
        "{held}"
    );
    assert_eq!(held["metadata"]["labels"][MANAGED_BY_LABEL], "rollback");

    // Given back: the Lease stays, with no holder and its token.
    let after = env.lease_json(&name).await;
    assert!(after["spec"].get("holderIdentity").is_none(), "{after}");
    assert!(
        after["metadata"]["annotations"]
            .get(HOLDER_ANNOTATION)
            .is_none(),
        "{after}"
    );
    assert_eq!(after["spec"]["leaseTransitions"], 1, "{after}");
    let table = env.kubectl(&["get", "leases", "-n", NS]).await;
    assert!(table.contains(&name), "{table}");
}

#[tokio::test]
async fn a_lease_taken_over_mid_run_stops_the_run_before_its_next_change() {
    let env = Env::start();
    let (a, b) = (target("a"), target("b"));
    let b_id = b.id();
    let bob = env.locks();
    let (api, b_name, thief_locks, bid) = (
        env.api(),
        LeaseLocks::lease_name(&b_id),
        bob.clone(),
        b_id.clone(),
    );
    // While stage 0 verifies, stage 1's Lease lapses in the cluster (its renewTime an hour
    // ago) and bob, on another client, takes it over.
    let thief = check_fn("take b's lease", move || {
        let (api, b_name, bob, bid) = (
            api.clone(),
            b_name.clone(),
            thief_locks.clone(),
            bid.clone(),
        );
        async move {
            let mut lease = api.get(&b_name).await.unwrap();
            let theirs = lease.spec.as_ref().unwrap().lease_transitions.unwrap();
            let hour_ago = k8s_openapi::jiff::Timestamp::now()
                - k8s_openapi::jiff::SignedDuration::from_hours(1);
            lease.spec.as_mut().unwrap().renew_time = Some(MicroTime(hour_ago));
            api.replace(&b_name, &PostParams::default(), &lease)
                .await
                .unwrap();
            let taken = bob
                .acquire(&bid, &holder("bob@laptop", "bobs-run"), TTL)
                .await
                .unwrap();
            assert!(
                taken.token > u64::try_from(theirs).unwrap(),
                "the takeover's token grows"
            );
            Ok(CheckOutcome::pass("b's lease is bob's now"))
        }
    });
    let stages = env
        .tx("fenced.jsonl", env.locks())
        .step(Step::new(Arc::new(a.clone()), Selector::Previous).verify(thief))
        .stage()
        .step(Step::new(Arc::new(b.clone()), Selector::Previous));
    let report = run(stages).await;
    assert_eq!(report.outcome, Outcome::Failed, "{report}");
    assert_eq!(b.apply_count(), 0, "b was never applied: {report}");
    assert_eq!(b.current_id(), "2");
    assert_eq!(a.apply_count(), 1, "a was not put back: {report}");
    let err = report.error.as_ref().expect("the run's error");
    assert_eq!(err.kind, ErrorKind::LeaseLost, "{report}");
    assert!(err.message.contains("bob@laptop"), "{}", err.message);
    // The run's release left bob's lease alone.
    let held = bob.current(&b_id).await.unwrap().unwrap();
    assert_eq!(held.holder.transaction, "bobs-run");
}

#[tokio::test]
async fn of_two_clients_racing_for_a_lease_exactly_one_wins_every_time() {
    let env = Env::start();
    let (alice_locks, bob_locks) = (env.locks(), env.locks());
    let t = TargetId::new("memory", "contended");
    let mut last_token = 0;
    for round in 0..20 {
        let alice = holder("alice@bastion", &format!("alice-{round}"));
        let bob = holder("bob@laptop", &format!("bob-{round}"));
        let (a, b) = tokio::join!(
            alice_locks.acquire(&t, &alice, TTL),
            bob_locks.acquire(&t, &bob, TTL)
        );
        let (won, lost, winner) = match (a, b) {
            (Ok(l), Err(e)) => (l, e, &alice),
            (Err(e), Ok(l)) => (l, e, &bob),
            other => panic!("round {round}: want exactly one winner, got {other:?}"),
        };
        assert_eq!(lost.kind(), ErrorKind::Locked, "round {round}: {lost}");
        assert!(
            lost.to_string().contains(&winner.name),
            "round {round}: the refusal names the holder: {lost}"
        );
        assert!(won.token > last_token, "round {round}: tokens grow");
        last_token = won.token;
        alice_locks.release(&won).await.unwrap();
        assert_eq!(bob_locks.current(&t).await.unwrap(), None, "round {round}");
    }
    // The two really raced: writes lost to the other's (409) were read again and refused.
    let calls = env.sim.calls().await.unwrap();
    let lost = calls
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == 409)
        .count();
    assert!(lost > 0, "no write lost a race in 20 rounds: {calls:#}");
}

/// Set in the children this file starts: the simulator's URL.
const SIM_VAR: &str = "ROLLBACK_TEST_LEASE_SIM_URL";

/// The child of the two-process tests (nothing shared with the other process but the
/// cluster): see `rollback_core::conformance::processes`.
#[tokio::test]
#[ignore = "run as a child process by the tests of this file"]
async fn contender_child() {
    let Ok(url) = std::env::var(SIM_VAR) else {
        return;
    };
    let locks = LeaseLocks::new(&K8s::from_url(&url).unwrap(), NS).unwrap();
    contender(Arc::new(locks)).await;
}

fn contenders(env: &Env) -> Contenders {
    Contenders::new("contender_child").env(SIM_VAR, env.sim.url())
}

#[tokio::test]
async fn two_processes_on_one_target_exactly_one_proceeds_every_time() {
    let env = Env::start();
    contenders(&env)
        .assert_exactly_one_proceeds(50, &env.locks())
        .await;
    // Seen as kubectl sees it: the one Lease, free, its transitions counted.
    let name = env
        .kubectl(&["get", "leases", "-n", NS, "-o", "name"])
        .await;
    assert_eq!(name.lines().count(), 1, "{name}");
}

#[tokio::test]
async fn a_holder_killed_with_sigkill_is_taken_over_after_its_ttl() {
    let env = Env::start();
    contenders(&env)
        .assert_killed_holder_is_taken_over(Duration::from_secs(2), Arc::new(env.locks()))
        .await;
}

#[tokio::test]
async fn api_errors_become_the_transactions_error_kinds() {
    let env = Env::start();
    // kube-rs's own retries (of 429, 503 and 504, with backoff) off, so that each fault
    // answers the one call.
    let mut config = kube::Config::new(env.sim.url().parse().unwrap());
    config.default_retry = false;
    let k8s = K8s::from_client(kube::Client::try_from(config).unwrap());
    let locks = LeaseLocks::new(&k8s, NS).unwrap();
    let t = TargetId::new("memory", "errors");
    let alice = holder("alice@bastion", "tx-a");
    let fault = |method: &str, status: u16| Fault::new(Some(method), "/leases/", status);

    env.sim.inject(fault("GET", 403)).await.unwrap();
    let e = locks.acquire(&t, &alice, TTL).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(!e.is_retryable(), "{e}");
    let text = e.to_string();
    for needed in [
        "get, create and update",
        "coordination.k8s.io",
        "namespace rollback",
        "kubectl auth can-i",
        "permission denied: get leases.coordination.k8s.io",
        "rollback policy",
    ] {
        assert!(text.contains(needed), "{needed:?} in {text}");
    }

    env.sim.inject(fault("GET", 429)).await.unwrap();
    let e = locks.acquire(&t, &alice, TTL).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");

    env.sim.inject(fault("GET", 503)).await.unwrap();
    let e = locks.acquire(&t, &alice, TTL).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.is_retryable()),
        (ErrorKind::Backend, true),
        "{e}"
    );

    // A namespace that does not exist (the simulator has every namespace: the 404 is
    // injected) is named.
    env.sim
        .inject(Fault::new(Some("POST"), "/namespaces/rollback/leases", 404))
        .await
        .unwrap();
    let e = locks.acquire(&t, &alice, TTL).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains("namespace \"rollback\""), "{e}");
    assert!(
        e.to_string().contains("kubectl create namespace rollback"),
        "{e}"
    );

    // Nothing was written by the failed calls; a few lost races are read again.
    assert_eq!(locks.current(&t).await.unwrap(), None);
    let lease = locks.acquire(&t, &alice, TTL).await.unwrap();
    env.sim.inject(fault("PUT", 409).times(3)).await.unwrap();
    let renewed = locks.renew(&lease, TTL).await.unwrap();
    assert_eq!(renewed.token, lease.token);
    // A Lease that never stops changing gives up, retryably.
    env.sim.inject(fault("PUT", 409).times(100)).await.unwrap();
    let e = locks.renew(&lease, TTL).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.is_retryable()),
        (ErrorKind::Backend, true),
        "{e}"
    );
    assert!(e.to_string().contains("kept changing"), "{e}");
    env.sim.clear_faults().await.unwrap();
    locks.release(&lease).await.unwrap();
}

#[tokio::test]
async fn a_lease_left_by_a_run_that_has_ended_is_taken_over_at_once() {
    let env = Env::start();
    let locks = env.locks();
    let t = TargetId::new("memory", "leftover");
    let tx = env
        .tx("ended.jsonl", FileLocks::new(env.dir.path().join("locks")))
        .step(Step::new(Arc::new(target("x")), Selector::Previous))
        .build()
        .unwrap();
    // The run's lease on `t`, as a process that dies after the run's end leaves it.
    let theirs = holder("alice@bastion", tx.id()).with_journal(tx.journal_path());
    let left = locks.acquire(&t, &theirs, TTL).await.unwrap();
    let bob = holder("bob@laptop", "tx-b");
    let e = locks.acquire(&t, &bob, TTL).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Locked, "the run has not ended: {e}");
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let taken = locks.acquire(&t, &bob, TTL).await.unwrap();
    assert_eq!(taken.holder.transaction, "tx-b");
    assert!(taken.token > left.token);
}

#[tokio::test]
async fn the_lock_kind_is_rebuilt_from_its_spec_on_the_same_cluster() {
    let env = Env::start();
    let locks = env.locks();
    let spec = locks.spec().unwrap();
    assert_eq!(spec.kind, "kubernetes-lease");
    assert_eq!(
        spec.params,
        json!({"namespace": NS, "k8s": {"url": env.sim.url()}})
    );
    // A client of the default configuration records the namespace alone.
    let plain = LeaseLocks::new(&K8s::from_client(env.k8s.client().clone()), NS).unwrap();
    assert_eq!(plain.spec().unwrap().params, json!({"namespace": NS}));

    let t = TargetId::new("memory", "resumed");
    let alice = holder("alice@bastion", "tx-a");
    let rebuilt = rollback_k8s::registry().build_locks(&spec).await.unwrap();
    let lease = rebuilt.acquire(&t, &alice, TTL).await.unwrap();
    assert_eq!(locks.current(&t).await.unwrap(), Some(lease.clone()));
    let from_spec = LeaseLocks::from_spec(&spec).await.unwrap();
    assert_eq!(from_spec.namespace(), NS);

    let mut given = rollback_core::Registry::new();
    rollback_k8s::register_with(&mut given, env.k8s.clone());
    let on_given = given.build_locks(&plain.spec().unwrap()).await.unwrap();
    assert_eq!(on_given.current(&t).await.unwrap(), Some(lease.clone()));
    on_given.release(&lease).await.unwrap();
    assert_eq!(locks.current(&t).await.unwrap(), None);

    let e = LeaseLocks::new(&env.k8s, "Not_A_Namespace").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    let e = rollback_k8s::registry()
        .build_locks(&rollback_core::lock::LockSpec {
            kind: "kubernetes-lease".into(),
            params: json!({}),
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
}
