#![allow(clippy::unwrap_used)]
//! Runbook 004's Kubernetes procedures through the real kube-rs client, end to end: against
//! the in-repo API simulator (`rollback-testkit`), and the same scenarios against a real
//! cluster with `cargo test -p rollback-k8s --test scenarios -- --ignored` when
//! `KUBECONFIG` points at one (each run uses its own namespace `rollback-test-<n>` and
//! deletes it afterwards; images are `registry.k8s.io/pause`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use rollback_core::conformance::{assert_conformance, Fixture};
use rollback_core::verify::{check_fn, CheckOutcome, Policy, Verifier, VerifierExt};
use rollback_core::{
    ApplyOutcome, ErrorKind, FileLocks, Outcome, RollbackTarget, Selector, Step, Transaction,
    TransactionBuilder,
};
use rollback_k8s::{DaemonSet, Deployment, K8s, PodsReady, StatefulSet, Workload, WorkloadKind};
use rollback_testkit::k8s::K8sSimulator;
use serde_json::{json, Value};

const V1: &str = "registry.k8s.io/pause:3.8";
const V2: &str = "registry.k8s.io/pause:3.9";
const V3: &str = "registry.k8s.io/pause:3.10";
/// An image that never becomes ready (the simulator is told so; on a real cluster it does
/// not exist, so its pods stay in ImagePullBackOff).
const BAD: &str = "registry.k8s.io/pause:0.0-does-not-exist";

/// Numbers the journals of one test.
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Where the scenarios run.
struct Env {
    k8s: K8s,
    ns: String,
    sim: Option<K8sSimulator>,
    dir: tempfile::TempDir,
}

impl Env {
    async fn sim() -> Env {
        let sim = K8sSimulator::start()
            .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
        sim.fail_image(BAD).await.unwrap();
        let k8s = K8s::from_url(sim.url()).unwrap();
        Env {
            k8s,
            ns: "production".into(),
            sim: Some(sim),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn cluster() -> Env {
        assert!(
            std::env::var_os("KUBECONFIG").is_some(),
            "set KUBECONFIG to a cluster to run the `needs cluster` scenarios"
        );
        let k8s = K8s::from_env().await.unwrap();
        let ns = format!("rollback-test-{}", std::process::id());
        let api: Api<Namespace> = Api::all(k8s.client().clone());
        let _ = api
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await;
        Env {
            k8s,
            ns,
            sim: None,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn done(self) {
        if self.sim.is_none() {
            let api: Api<Namespace> = Api::all(self.k8s.client().clone());
            let _ = api.delete(&self.ns, &DeleteParams::default()).await;
        }
    }

    /// API calls that change something, on the simulator (`None` on a real cluster).
    async fn mutations(&self) -> Option<u64> {
        match &self.sim {
            Some(sim) => Some(sim.mutations().await.unwrap()),
            None => None,
        }
    }

    fn tx(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("test")
            .journal(self.dir.path().join(format!(
                "{name}-{}.jsonl",
                RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )))
            .locks(Arc::new(FileLocks::new(self.dir.path().join("locks"))))
    }

    fn api<K: rollback_k8s::workload::ApiObject>(&self) -> Api<K> {
        Api::namespaced(self.k8s.client().clone(), &self.ns)
    }

    /// Creates the workload at `images[0]` (with `spec` besides its selector and template)
    /// and rolls it through the others, waiting for each rollout: revisions 1..=n.
    async fn workload<W: WorkloadKind>(
        &self,
        name: &str,
        mut spec: Value,
        images: &[&str],
    ) -> Workload<W> {
        spec["selector"] = json!({"matchLabels": {"app": name}});
        spec["template"] = pod_template(name, images[0]);
        let object: W = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"kubernetes.io/change-cause": format!("deploy {}", images[0])}},
            "spec": spec
        }))
        .unwrap();
        self.api::<W>()
            .create(&PostParams::default(), &object)
            .await
            .unwrap();
        let target = Workload::<W>::new(&self.k8s, &self.ns, name).unwrap();
        self.settle(&target, images[0]).await;
        for image in &images[1..] {
            self.set_image::<W>(name, image).await;
            self.settle(&target, image).await;
        }
        target
    }

    async fn deployment(&self, name: &str, replicas: i32, images: &[&str]) -> Deployment {
        self.workload(
            name,
            json!({"replicas": replicas, "progressDeadlineSeconds": 20}),
            images,
        )
        .await
    }

    async fn statefulset(&self, name: &str, images: &[&str]) -> StatefulSet {
        self.workload(name, json!({"replicas": 2, "serviceName": name}), images)
            .await
    }

    async fn daemonset(&self, name: &str, images: &[&str]) -> DaemonSet {
        self.workload(name, json!({}), images).await
    }

    /// What a person does with `kubectl set image`: a new template.
    async fn set_image<K: rollback_k8s::workload::ApiObject>(&self, name: &str, image: &str) {
        let patch = json!({
            "metadata": {"annotations": {"kubernetes.io/change-cause": format!("deploy {image}")}},
            "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
        });
        self.api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap();
    }

    /// Waits (by watch) until the workload runs `image` and its rollout is done.
    /// The broken image is only waited for until the controller records it.
    async fn settle<W: WorkloadKind>(&self, target: &Workload<W>, image: &str) {
        let current = wait_for_current(target, image).await;
        if image == BAD {
            return;
        }
        target
            .wait_stable(
                &current,
                Duration::from_secs(60),
                &rollback_core::Progress::none(),
            )
            .await
            .unwrap_or_else(|e| panic!("{image} did not roll out: {e}"));
    }
}

/// The current revision once its images are `image` (the controller records a new
/// template within a moment; this reads until it has, bounded).
async fn wait_for_current<W: WorkloadKind>(
    target: &Workload<W>,
    image: &str,
) -> rollback_core::Revision {
    rollback_core::wait::poll_until(
        &target.id().to_string(),
        &format!("the controller to record {image}"),
        Duration::from_secs(30),
        rollback_core::wait::PollSchedule::stability(),
        &rollback_core::Progress::none(),
        || async {
            let c = target.current().await?;
            Ok(if c.images == [image] && c.id != rollback_k8s::UNRECORDED {
                rollback_core::Stability::Stable
            } else {
                rollback_core::Stability::Waiting(format!("at {:?}", c.images))
            })
        },
    )
    .await
    .unwrap();
    target.current().await.unwrap()
}

fn pod_template(app: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": image,
                                 "env": [{"name": "LOG_LEVEL", "value": "info"}]}]}
    })
}

fn ids(history: &[rollback_core::Revision]) -> Vec<&str> {
    history.iter().map(|r| r.id.as_str()).collect()
}

fn fixture() -> Fixture {
    Fixture {
        unknown_revision: "99".into(),
        stable_timeout: Duration::from_secs(90),
        ..Fixture::default()
    }
}

// ---------------------------------------------------------------- scenarios

async fn conformance_of_each_workload(env: Env) {
    let d = env.deployment("web", 2, &[V1, V2]).await;
    assert_conformance(&d, &fixture()).await;
    let s = env.statefulset("db", &[V1, V2]).await;
    assert_conformance(&s, &fixture()).await;
    let ds = env.daemonset("agent", &[V1, V2]).await;
    assert_conformance(&ds, &fixture()).await;
    env.done().await;
}

/// `kubectl rollout undo` twice: 1,2,3 -> back to 2's template (now revision 4) -> back to
/// 3's (now 5), as kubectl toggles between the last two.
async fn undo_twice_toggles_between_the_last_two(env: Env) {
    let d = env.deployment("frontend", 3, &[V1, V2, V3]).await;
    assert_eq!(ids(&d.history().await.unwrap()), ["3", "2", "1"]);

    let report = env
        .tx("undo-1")
        .step(Step::new(Arc::new(d.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(
        (
            report.steps[0].from.as_ref().unwrap().id.as_str(),
            report.steps[0].to.as_ref().unwrap().id.as_str()
        ),
        ("3", "2")
    );
    let now = wait_for_current(&d, V2).await;
    assert_eq!(
        now.id, "4",
        "the controller renumbers the reused ReplicaSet"
    );
    assert_eq!(ids(&d.history().await.unwrap()), ["4", "3", "1"]);
    assert_eq!(
        now.description.as_deref(),
        Some(format!("deploy {V2}").as_str())
    );

    let report = env
        .tx("undo-2")
        .step(Step::new(Arc::new(d.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(wait_for_current(&d, V3).await.id, "5");
    assert_eq!(ids(&d.history().await.unwrap()), ["5", "4", "1"]);
    env.done().await;
}

async fn undo_to_a_revision_and_by_image_tag(env: Env) {
    let d = env.deployment("frontend", 2, &[V1, V2, V3]).await;
    let step = Step::new(Arc::new(d.clone()), Selector::Exact("1".into()))
        .verify(PodsReady::of(&d).min(2));
    let report = env
        .tx("to-1")
        .step(step)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(d.current().await.unwrap().images, [V1]);
    assert!(
        report.steps[0].verdicts.iter().all(|v| v.passed),
        "{report}"
    );

    let step = Step::new(Arc::new(d.clone()), Selector::ImageTag("3.10".into()));
    let report = env
        .tx("to-tag")
        .step(step)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(d.current().await.unwrap().images, [V3]);
    env.done().await;
}

async fn paused_is_refused_and_nothing_changes(env: Env) {
    let d = env.deployment("frontend", 1, &[V1, V2]).await;
    env.api::<apps::Deployment>()
        .patch(
            "frontend",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    let before = env.mutations().await;
    let err = env
        .tx("paused")
        .step(Step::new(Arc::new(d.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string()
            .contains("resume it first with 'kubectl rollout resume'"),
        "{err}"
    );
    assert!(err.to_string().contains("k8s-deployment/"), "{err}");
    assert_eq!(
        env.mutations().await,
        before,
        "a refused rollback sent a write"
    );
    assert_eq!(d.current().await.unwrap().images, [V2]);
    env.done().await;
}

async fn unknown_revision_and_no_history_change_nothing(env: Env) {
    let d = env.deployment("frontend", 1, &[V1, V2]).await;
    let single = env.deployment("single", 1, &[V1]).await;
    let before = env.mutations().await;
    for (target, selector, kind, words) in [
        (
            &d,
            Selector::Exact("42".into()),
            ErrorKind::NotFound,
            "unable to find specified revision 42 in history",
        ),
        (
            &single,
            Selector::Previous,
            ErrorKind::NotFound,
            "no rollout history found for deployment \"single\"",
        ),
        (
            &d,
            Selector::Exact("latest".into()),
            ErrorKind::InvalidInput,
            "not a revision number",
        ),
        (
            &d,
            Selector::ImageTag("9.9".into()),
            ErrorKind::NotFound,
            "9.9",
        ),
        // kubectl reads `--to-revision=0` as "the previous one"; here it is bad input.
        (
            &d,
            Selector::Exact("0".into()),
            ErrorKind::InvalidInput,
            "revision 0 does not exist",
        ),
        (
            &d,
            Selector::StepsBack(0),
            ErrorKind::InvalidInput,
            "1 or more steps back",
        ),
        (
            &d,
            Selector::Exact("18446744073709551616".into()),
            ErrorKind::InvalidInput,
            "too large",
        ),
    ] {
        let err = env
            .tx("bad")
            .step(Step::new(Arc::new(target.clone()), selector))
            .build()
            .unwrap()
            .run()
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.to_string().contains(words), "{err}");
        assert!(err.to_string().contains(&target.id().to_string()), "{err}");
    }
    let missing = Deployment::new(&env.k8s, &env.ns, "no-such-app").unwrap();
    let err = missing.current().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("\"no-such-app\""), "{err}");
    assert_eq!(env.mutations().await, before, "bad input sent a write");
    env.done().await;
}

async fn a_concurrent_change_is_a_conflict_not_overwritten(env: Env) {
    let d = env.deployment("frontend", 1, &[V1, V2]).await;
    let to = d.resolve(&Selector::Previous).await.unwrap();
    let change = d.plan(&to).await.unwrap();
    // Someone deploys V3 between our plan and our apply.
    env.set_image::<apps::Deployment>("frontend", V3).await;
    let err = d.apply(&change).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(wait_for_current(&d, V3).await.images, [V3]);
    env.done().await;
}

async fn an_already_matching_template_is_skipped(env: Env) {
    let d = env.deployment("frontend", 1, &[V1, V2]).await;
    let to = d.resolve(&Selector::Previous).await.unwrap();
    let change = d.plan(&to).await.unwrap();
    // Someone runs the same undo first.
    env.set_image::<apps::Deployment>("frontend", V1).await;
    wait_for_current(&d, V1).await;
    let before = env.mutations().await;
    assert_eq!(
        d.apply(&change).await.unwrap(),
        ApplyOutcome::AlreadyCurrent
    );
    assert_eq!(env.mutations().await, before);
    env.done().await;
}

/// Rolling back to a revision that fails (progress deadline) is compensated: the
/// Deployment goes back to the template it had, and that is verified stable.
async fn a_failing_rollout_is_compensated(env: Env) {
    let d = env.deployment("frontend", 2, &[BAD, V2]).await;
    let report = env
        .tx("to-bad")
        .step(Step::new(Arc::new(d.clone()), Selector::Previous).timeout(Duration::from_secs(120)))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    let err = report.steps[0].error.as_ref().unwrap();
    assert_eq!(err.kind, ErrorKind::RolloutFailed, "{report}");
    assert!(
        err.message.contains("exceeded its progress deadline"),
        "{report}"
    );
    assert_eq!(d.current().await.unwrap().images, [V2]);
    env.done().await;
}

/// Runbook 004's recovery: scale to zero for the length of the undo (temporary step), put
/// back to the captured count gradually (1, then 3) with a check between.
async fn scale_to_zero_undo_and_gradual_scale_up(env: Env) {
    let d = env.deployment("frontend", 3, &[V1, V2]).await;
    let seen_at: Arc<Mutex<Vec<i32>>> = Arc::default();
    let seen = seen_at.clone();
    let probe = d.clone();
    let between = check_fn("replicas seen between steps", move || {
        let (seen, probe) = (seen.clone(), probe.clone());
        async move {
            let r = probe.replicas().current().await?;
            seen.lock().unwrap().push(r.id.parse().unwrap());
            Ok(CheckOutcome::pass(format!("at {} replicas", r.id)))
        }
    });
    let replicas = d.replicas().gradual([1]).between(between);
    let report = env
        .tx("recovery")
        .step(Step::new(Arc::new(replicas.clone()), Selector::Exact("0".into())).temporary())
        .stage()
        .step(Step::new(Arc::new(d.clone()), Selector::Previous).verify(PodsReady::of(&d).min(0)))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(replicas.current().await.unwrap().id, "3");
    assert_eq!(
        *seen_at.lock().unwrap(),
        [1],
        "the check runs once, at 1 replica"
    );
    assert_eq!(d.current().await.unwrap().images, [V1]);
    let ready = Policy::default()
        .attempts(120)
        .interval(Duration::from_millis(250))
        .run(&PodsReady::of(&d).min(3), |_, _| {})
        .await;
    assert!(ready.passed, "{}", ready.evidence);
    env.done().await;
}

/// A failing check at the first step of a gradual scale-up stops there; compensation
/// puts the captured count (0) back.
async fn a_failing_check_between_scale_steps_is_compensated(env: Env) {
    let d = env.deployment("frontend", 0, &[V1]).await;
    let replicas = d
        .replicas()
        .gradual([1])
        .between(check_fn("health", || async {
            Ok(CheckOutcome::fail("error rate 9%"))
        }));
    let report = env
        .tx("gradual")
        .step(Step::new(
            Arc::new(replicas.clone()),
            Selector::Exact("3".into()),
        ))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(
        report.steps[0].error.as_ref().unwrap().kind,
        ErrorKind::VerificationFailed
    );
    assert_eq!(replicas.current().await.unwrap().id, "0");
    env.done().await;
}

/// `kubectl rollout restart`: a new template annotation, a new revision, a finished rollout.
async fn restart_rolls_out_a_new_revision(env: Env) {
    let d = env.deployment("frontend", 2, &[V1]).await;
    let restart = d.restart();
    assert_eq!(restart.current().await.unwrap().id, "never");
    let report = env
        .tx("restart")
        .step(Step::new(Arc::new(restart.clone()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let at = restart.current().await.unwrap().id;
    assert_ne!(at, "never");
    chrono::DateTime::parse_from_rfc3339(&at).unwrap();
    assert_eq!(ids(&d.history().await.unwrap()), ["2", "1"]);
    env.done().await;
}

async fn pods_ready_names_the_pods_that_are_not(env: Env) {
    let d = env.deployment("frontend", 2, &[V1]).await;
    let ok = PodsReady::of(&d).check().await.unwrap();
    assert!(ok.passed, "{}", ok.evidence);
    assert!(
        ok.evidence.contains("2 of 2 pod(s) ready"),
        "{}",
        ok.evidence
    );
    env.set_image::<apps::Deployment>("frontend", BAD).await;
    let check = PodsReady::new(&env.k8s, &env.ns, "app=frontend").unwrap();
    let failing = Policy::default()
        .attempts(240)
        .interval(Duration::from_millis(250))
        .run(&check.clone().not(), |_, _| {})
        .await;
    assert!(
        failing.passed,
        "no pod of the bad image showed up as not ready: {}",
        failing.evidence
    );
    let outcome = check.check().await.unwrap();
    assert!(!outcome.passed);
    assert!(
        outcome.evidence.contains("not ready: frontend-"),
        "{}",
        outcome.evidence
    );
    env.done().await;
}

/// Targets are data: each kind is rebuilt from its spec (what a journal records) by the
/// registry, talks to the same API server and reads the same state; a run killed after its
/// apply is finished by `resume` from the journal alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_are_rebuilt_from_their_specs_and_runs_resume() {
    let env = Env::sim().await;
    let d = env.deployment("frontend", 2, &[V1, V2]).await;
    let s = env.statefulset("db", &[V1]).await;
    let targets: Vec<Arc<dyn RollbackTarget>> = vec![
        Arc::new(d.clone()),
        Arc::new(d.replicas().gradual([1])),
        Arc::new(d.restart()),
        Arc::new(s.clone()),
        Arc::new(s.replicas()),
        Arc::new(env.daemonset("agent", &[V1]).await),
    ];
    let registry = rollback_k8s::registry();
    for t in &targets {
        let spec = t.spec();
        assert_eq!(
            spec.params["k8s"]["url"],
            json!(env.sim.as_ref().unwrap().url())
        );
        let rebuilt = registry.build(&t.id(), &spec).await.unwrap();
        assert_eq!(rebuilt.id(), t.id());
        assert_eq!(rebuilt.spec(), spec);
        assert_eq!(rebuilt.current().await.unwrap(), t.current().await.unwrap());
    }

    // A run whose process stopped right after the patch: the journal says "intent", the
    // cluster already moved. Resuming applies nothing twice and finishes the wait.
    let journal = env.dir.path().join("killed.jsonl");
    let tx = env
        .tx("killed")
        .journal(&journal)
        .step(Step::new(Arc::new(d.clone()), Selector::Previous))
        .build()
        .unwrap();
    let report = tx.run().await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    let lines: Vec<String> = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let cut = lines
        .iter()
        .position(|l| l.contains("\"applied\""))
        .expect("an applied record");
    std::fs::write(&journal, lines[..cut].join("\n") + "\n").unwrap();
    let before = env.mutations().await;
    let resumed = rollback_core::resume_with(
        &journal,
        rollback_core::ResumeOptions {
            registry: rollback_k8s::registry(),
            locks: Some(Arc::new(FileLocks::new(env.dir.path().join("locks")))),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(resumed.outcome, Outcome::Succeeded, "{resumed}");
    assert_eq!(
        env.mutations().await,
        before,
        "the resumed run patched again"
    );
    assert_eq!(d.current().await.unwrap().images, [V1]);
}

/// Waiting is a watch, not polling: while a rollout of several seconds goes on, the wait
/// reads the Deployment a fixed number of times (to find the revision, then one watch),
/// where a 250 ms poll would read it a dozen times; and it returns once the rollout is done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_watches_instead_of_polling() {
    let env = Env::sim().await;
    let sim = env.sim.as_ref().unwrap();
    let d = env.deployment("frontend", 3, &[V1]).await;
    // One replica moves every second: the rollout takes about four seconds.
    sim.configure(rollback_testkit::k8s::SimConfig::new().step(Duration::from_secs(1)))
        .await
        .unwrap();
    env.set_image::<apps::Deployment>("frontend", V2).await;
    let target = wait_for_current(&d, V2).await;
    sim.reset_calls().await.unwrap();
    let messages: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = messages.clone();
    d.wait_stable(
        &target,
        Duration::from_secs(60),
        &rollback_core::Progress::new(move |m| sink.lock().unwrap().push(m.to_string())),
    )
    .await
    .unwrap();
    let status = d.rollout_status().await.unwrap().unwrap();
    assert!(status.is_done(), "{status}");
    let calls = sim.calls().await.unwrap();
    let calls = calls.as_array().unwrap();
    let on_deployment: Vec<&Value> = calls
        .iter()
        .filter(|c| c["path"].as_str().unwrap().contains("/deployments"))
        .collect();
    let watches = on_deployment
        .iter()
        .filter(|c| c["query"].as_str().unwrap_or("").contains("watch=true"))
        .count();
    assert!(watches >= 1, "no watch request: {on_deployment:#?}");
    assert!(
        on_deployment.len() <= 4,
        "{} requests on the Deployment while waiting: {on_deployment:#?}",
        on_deployment.len()
    );
    // kubectl's progress messages came through the watch as the rollout moved.
    let messages = messages.lock().unwrap();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("Waiting for deployment \"frontend\" rollout to finish")),
        "{messages:?}"
    );
    assert!(messages.len() >= 2, "{messages:?}");
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod simulator {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Env::sim().await).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                #[ignore = "needs cluster"]
                async fn $name() {
                    super::$name(super::Env::cluster().await).await;
                }
            )*
        }
    };
}

scenarios!(
    conformance_of_each_workload,
    undo_twice_toggles_between_the_last_two,
    undo_to_a_revision_and_by_image_tag,
    paused_is_refused_and_nothing_changes,
    unknown_revision_and_no_history_change_nothing,
    a_concurrent_change_is_a_conflict_not_overwritten,
    an_already_matching_template_is_skipped,
    a_failing_rollout_is_compensated,
    scale_to_zero_undo_and_gradual_scale_up,
    a_failing_check_between_scale_steps_is_compensated,
    restart_rolls_out_a_new_revision,
    pods_ready_names_the_pods_that_are_not,
);

/// What someone else does to the workload while our step waits after its apply.
#[derive(Debug, Clone, Copy)]
enum TheirChange {
    /// `kubectl set image` against the API server.
    KubectlSetImage,
    /// A new template from a second client.
    SetImage,
    /// `spec.replicas` from a second client.
    Scale,
}

/// The step a concurrency case runs.
#[derive(Debug, Clone, Copy)]
enum OurStep {
    Undo,
    UndoStatefulSet,
    Restart,
    ScaleUp,
}

/// Someone else changes the workload while our step waits after its apply (the
/// controller is paused, so our own rollout cannot finish first and nothing is left to
/// timing): the wait fails at once saying so, with one watch and no waiting out the step
/// timeout; with `Halt` their change stays; with `Compensate` the engine's put-back does
/// not clobber it (the undo's is refused as a conflict; the recovery steps put back only
/// their own field).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_change_while_we_wait_fails_at_once_and_is_kept() {
    use rollback_core::events::EventKind;
    use rollback_core::FailurePolicy;

    let env = Env::sim().await;
    let sim = env.sim.as_ref().unwrap();
    let kubeconfig = env.dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    // Someone else: their own client.
    let them = K8s::from_url(sim.url()).unwrap();
    let cases = [
        (
            OurStep::Undo,
            TheirChange::KubectlSetImage,
            FailurePolicy::Halt,
        ),
        (
            OurStep::Undo,
            TheirChange::SetImage,
            FailurePolicy::Compensate,
        ),
        (
            OurStep::UndoStatefulSet,
            TheirChange::SetImage,
            FailurePolicy::Halt,
        ),
        (
            OurStep::Restart,
            TheirChange::KubectlSetImage,
            FailurePolicy::Halt,
        ),
        (
            OurStep::Restart,
            TheirChange::SetImage,
            FailurePolicy::Compensate,
        ),
        (OurStep::ScaleUp, TheirChange::SetImage, FailurePolicy::Halt),
        (
            OurStep::ScaleUp,
            TheirChange::SetImage,
            FailurePolicy::Compensate,
        ),
        (OurStep::ScaleUp, TheirChange::Scale, FailurePolicy::Halt),
    ];
    for (n, (ours, theirs, policy)) in cases.into_iter().enumerate() {
        let case = format!("{ours:?} / {theirs:?} / {policy:?}");
        let name = format!("app-{n}");
        let (target, kind): (Arc<dyn RollbackTarget>, &str) = match ours {
            OurStep::Undo => (
                Arc::new(env.deployment(&name, 2, &[V1, V2]).await),
                "deployment",
            ),
            OurStep::UndoStatefulSet => (
                Arc::new(env.statefulset(&name, &[V1, V2]).await),
                "statefulset",
            ),
            OurStep::Restart => (
                Arc::new(env.deployment(&name, 2, &[V2]).await.restart()),
                "deployment",
            ),
            OurStep::ScaleUp => (
                Arc::new(env.deployment(&name, 1, &[V2]).await.replicas()),
                "deployment",
            ),
        };
        let selector = match ours {
            OurStep::ScaleUp => Selector::Exact("3".into()),
            _ => Selector::Previous,
        };
        sim.pause_controller(true).await.unwrap();
        sim.reset_calls().await.unwrap();

        // Their change comes once our apply is done; the controller resumes once our step
        // has failed (so that a compensation can finish).
        let (applied_tx, applied_rx) = tokio::sync::oneshot::channel::<()>();
        let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<()>();
        let signals = Mutex::new((Some(applied_tx), Some(failed_tx)));
        let someone = {
            let (them, kubeconfig, name, ns) = (
                them.clone(),
                kubeconfig.clone(),
                name.clone(),
                env.ns.clone(),
            );
            async move {
                applied_rx.await.unwrap();
                match theirs {
                    TheirChange::KubectlSetImage => {
                        let out = tokio::task::spawn_blocking(move || {
                            std::process::Command::new("kubectl")
                                .arg("--kubeconfig")
                                .arg(&kubeconfig)
                                .args([
                                    "-n",
                                    &ns,
                                    "set",
                                    "image",
                                    &format!("{kind}/{name}"),
                                    &format!("app={V3}"),
                                ])
                                .output()
                                .unwrap()
                        })
                        .await
                        .unwrap();
                        assert!(
                            out.status.success(),
                            "kubectl set image: {}",
                            String::from_utf8_lossy(&out.stderr)
                        );
                    }
                    TheirChange::SetImage => {
                        let patch = Patch::Strategic(
                            json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": V3}]}}}}),
                        );
                        if kind == "statefulset" {
                            Api::<apps::StatefulSet>::namespaced(them.client().clone(), &ns)
                                .patch(&name, &PatchParams::default(), &patch)
                                .await
                                .unwrap();
                        } else {
                            Api::<apps::Deployment>::namespaced(them.client().clone(), &ns)
                                .patch(&name, &PatchParams::default(), &patch)
                                .await
                                .unwrap();
                        }
                    }
                    TheirChange::Scale => {
                        Api::<apps::Deployment>::namespaced(them.client().clone(), &ns)
                            .patch(
                                &name,
                                &PatchParams::default(),
                                &Patch::Merge(json!({"spec": {"replicas": 5}})),
                            )
                            .await
                            .unwrap();
                    }
                }
                failed_rx.await.unwrap();
                // Let the controller go on, so that a compensation can finish.
                sim.pause_controller(false).await.unwrap();
            }
        };
        let tx = env
            .tx(&format!("concurrent-{n}"))
            .policy(policy)
            .on_event(move |e| {
                let mut s = signals.lock().unwrap();
                match e.kind {
                    EventKind::Applied => drop(s.0.take().map(|tx| tx.send(()))),
                    EventKind::Failed => drop(s.1.take().map(|tx| tx.send(()))),
                    _ => {}
                }
            })
            .step(Step::new(target.clone(), selector).timeout(Duration::from_secs(300)))
            .build()
            .unwrap();
        let (report, ()) = tokio::join!(tx.run(), someone);
        let report = report.unwrap();

        let err = report.steps[0]
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{case}: {report}"));
        assert_eq!(err.kind, ErrorKind::RolloutFailed, "{case}: {report}");
        assert!(err.message.contains("someone else"), "{case}: {report}");
        assert!(
            err.message.contains("their change is left as it is"),
            "{case}: {report}"
        );
        let calls = sim.calls().await.unwrap();
        let watches = calls
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["query"].as_str().unwrap_or("").contains("watch=true"))
            .count();
        let max_watches = if matches!(policy, FailurePolicy::Halt) {
            1
        } else {
            2
        };
        assert!(watches <= max_watches, "{case}: {watches} watches");
        println!(
            "{case}: outcome {}, {watches} watch(es); {}",
            report.outcome, err.message
        );

        // Their change is kept.
        let object: Value = match kind {
            "statefulset" => {
                serde_json::to_value(env.api::<apps::StatefulSet>().get(&name).await.unwrap())
                    .unwrap()
            }
            _ => serde_json::to_value(env.api::<apps::Deployment>().get(&name).await.unwrap())
                .unwrap(),
        };
        match theirs {
            TheirChange::Scale => assert_eq!(object["spec"]["replicas"], json!(5), "{case}"),
            _ => assert_eq!(
                object["spec"]["template"]["spec"]["containers"][0]["image"],
                json!(V3),
                "{case}: their image was overwritten"
            ),
        }
        match (ours, policy) {
            (_, FailurePolicy::Halt) => {
                assert_eq!(report.outcome, Outcome::Failed, "{case}: {report}")
            }
            // The undo's put-back finds their template, not ours: a conflict, left to a person.
            (OurStep::Undo | OurStep::UndoStatefulSet, _) => {
                assert_eq!(report.outcome, Outcome::Failed, "{case}: {report}");
                assert!(!report.needs_attention.is_empty(), "{case}: {report}");
            }
            // The recovery steps put back only their own field (the count, the annotation).
            _ => assert_eq!(report.outcome, Outcome::Compensated, "{case}: {report}"),
        }
    }
}
