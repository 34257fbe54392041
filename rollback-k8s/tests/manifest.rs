#![allow(clippy::unwrap_used)]
//! [`Manifest`] (runbook 004's maintenance mode) through the real kube-rs client against
//! the project's Kubernetes API simulator, the incident set up and the result read with the
//! real kubectl: maintenance on for the frontend's undo and off after it, the same put-back
//! by compensation when the undo fails, bad input refused before anything changes, a run
//! stopped after the apply resumed from its journal in a fresh registry, the runbook file,
//! and kubectl seeing the simulator's ConfigMaps and Services as it sees a real server's.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::api::Api;
use rollback_core::runbook::{Runbook, Vars};
use rollback_core::verify::{check_fn, CheckOutcome, Policy};
use rollback_core::{
    Check, ErrorKind, EventKind, FileLocks, Interrupt, Outcome, Registry, RollbackTarget, Selector,
    Step, StepStatus, TargetSpec, Transaction, TransactionBuilder,
};
use rollback_k8s::manifest::{APPLIED, BEFORE};
use rollback_k8s::{Deployment, K8s, K8sDefaults, Manifest};
use rollback_testkit::k8s::K8sSimulator;
use serde_json::{json, Value};

const NS: &str = "production";
const V1: &str = "registry.k8s.io/pause:3.8";
const V2: &str = "registry.k8s.io/pause:3.9";

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// What runbook 004's team had before the incident, applied with kubectl: the frontend
/// (released twice), its Service and its flags.
const FRONTEND: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: frontend, namespace: production}
spec:
  replicas: 2
  selector: {matchLabels: {app: frontend}}
  template:
    metadata: {labels: {app: frontend}}
    spec:
      containers: [{name: app, image: "registry.k8s.io/pause:3.8"}]
---
apiVersion: v1
kind: Service
metadata: {name: frontend, namespace: production, labels: {team: web}}
spec:
  selector: {app: frontend}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: frontend-flags, namespace: production}
data: {mode: live, banner: "none"}
"#;

/// The maintenance manifest (the same as `examples/runbooks/004-maintenance.yaml`'s).
fn maintenance_objects() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "maintenance-mode"},
               "data": {"enabled": "true", "message": "Back shortly."}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "frontend-flags"},
               "data": {"mode": "maintenance"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "maintenance", "labels": {"app": "maintenance"}},
               "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "maintenance"}},
                        "template": {"metadata": {"labels": {"app": "maintenance"}},
                                     "spec": {"containers": [{"name": "page", "image": V2}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "frontend"},
               "spec": {"selector": {"app": "maintenance"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
    ]
}

struct Env {
    sim: K8sSimulator,
    k8s: K8s,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

async fn kubectl_out(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.arg("--kubeconfig").arg(kubeconfig).args(args);
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the real kubectl must be installed: {e}"))
}

impl Env {
    /// The simulator with the incident's objects, set up with kubectl: the frontend at
    /// its second release (revision 2), its Service and flags.
    async fn start() -> Env {
        let sim = K8sSimulator::start()
            .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        sim.write_kubeconfig(&kubeconfig).unwrap();
        let k8s = K8s::from_url(sim.url()).unwrap();
        let env = Env {
            sim,
            k8s,
            dir,
            kubeconfig,
        };
        let file = env.dir.path().join("frontend.yaml");
        std::fs::write(&file, FRONTEND).unwrap();
        env.kubectl(&["apply", "--validate=false", "-f", file.to_str().unwrap()])
            .await;
        env.sim.step(1).await.unwrap();
        env.kubectl(&[
            "set",
            "image",
            "deployment/frontend",
            &format!("app={V2}"),
            "-n",
            NS,
        ])
        .await;
        env.sim.step(1).await.unwrap();
        env
    }

    /// Runs the real kubectl; its stdout (a failure fails the test).
    async fn kubectl(&self, args: &[&str]) -> String {
        let out = kubectl_out(&self.kubeconfig, args).await;
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `kubectl get KIND NAME -n production -o json`, or `None` when kubectl says NotFound.
    async fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let out = kubectl_out(
            &self.kubeconfig,
            &["get", kind, name, "-n", NS, "-o", "json"],
        )
        .await;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("NotFound"), "kubectl get {kind} {name}: {err}");
            return None;
        }
        Some(serde_json::from_slice(&out.stdout).unwrap())
    }

    fn maintenance(&self) -> Manifest {
        Manifest::new(&self.k8s, NS, "maintenance", maintenance_objects()).unwrap()
    }

    fn frontend(&self) -> Deployment {
        Deployment::new(&self.k8s, NS, "frontend").unwrap()
    }

    fn journal(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!(
            "{name}-{}.jsonl",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn locks(&self) -> Arc<FileLocks> {
        Arc::new(FileLocks::new(self.dir.path().join("locks")))
    }

    fn tx(&self, name: &str) -> TransactionBuilder {
        Transaction::builder(name)
            .reason("frontend rollback failed: recovering behind the maintenance page")
            .journal(self.journal(name))
            .locks(self.locks())
    }

    /// Runbook 004's recovery: stage 1 maintenance on (temporary), stage 2 the frontend's
    /// undo with `check`.
    fn recovery(&self, name: &str, check: Check) -> TransactionBuilder {
        self.tx(name)
            .step(Step::new(Arc::new(self.maintenance()), Selector::exact(APPLIED)).temporary())
            .stage()
            .step(Step::new(Arc::new(self.frontend()), Selector::Previous).verify(check))
    }

    /// The pre-existing objects as kubectl shows them.
    async fn before(&self) -> (Value, Value) {
        (
            self.get("service", "frontend").await.unwrap(),
            self.get("configmap", "frontend-flags").await.unwrap(),
        )
    }

    /// Maintenance is off: the Service and the flags hold exactly what they held `before`
    /// (only their resourceVersion moved), the created objects are gone.
    async fn assert_put_back(&self, before: &(Value, Value)) {
        let without_rv = |mut v: Value| {
            v["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("resourceVersion");
            v
        };
        let service = self.get("service", "frontend").await.unwrap();
        assert_eq!(service["spec"]["selector"], json!({"app": "frontend"}));
        assert_eq!(without_rv(service), without_rv(before.0.clone()));
        let flags = self.get("configmap", "frontend-flags").await.unwrap();
        assert_eq!(flags["data"], json!({"mode": "live", "banner": "none"}));
        assert_eq!(without_rv(flags), without_rv(before.1.clone()));
        assert!(self.get("configmap", "maintenance-mode").await.is_none());
        assert!(self.get("deployment", "maintenance").await.is_none());
        let pods = self
            .kubectl(&[
                "get",
                "pods",
                "-n",
                NS,
                "-l",
                "app=maintenance",
                "-o",
                "name",
            ])
            .await;
        assert_eq!(
            pods.trim(),
            "",
            "the maintenance Deployment's pods went with it"
        );
    }
}

/// A check of the frontend's step that passes only while maintenance is on: the Service
/// sends traffic to the maintenance pods and the flag exists.
fn maintenance_is_on(k8s: &K8s) -> Check {
    let client = k8s.client().clone();
    Check::new(check_fn("maintenance is on", move || {
        let client = client.clone();
        async move {
            let svc: Service = Api::namespaced(client.clone(), NS)
                .get("frontend")
                .await
                .unwrap();
            let flag: Option<ConfigMap> = Api::namespaced(client, NS)
                .get_opt("maintenance-mode")
                .await
                .unwrap();
            let selector = svc.spec.unwrap().selector.unwrap_or_default();
            Ok(
                if selector.get("app").map(String::as_str) == Some("maintenance") && flag.is_some()
                {
                    CheckOutcome::pass(
                        "frontend Service selects app=maintenance, maintenance-mode exists",
                    )
                } else {
                    CheckOutcome::fail(format!(
                        "selector {selector:?}, maintenance-mode exists: {}",
                        flag.is_some()
                    ))
                },
            )
        }
    }))
    .policy(Policy::once())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_004_maintenance_is_on_for_the_undo_and_put_back_after_it() {
    let env = Env::start().await;
    let before = env.before().await;
    let cluster_ip = before.0["spec"]["clusterIP"].clone();

    // The plan: a diff per object, from the API server's dry runs; nothing changes.
    let mutations = env.sim.mutations().await.unwrap();
    let plan = env
        .recovery("plan", maintenance_is_on(&env.k8s))
        .build()
        .unwrap()
        .dry_run()
        .await
        .unwrap();
    assert_eq!(plan.outcome, Outcome::Planned, "{plan}");
    let diff = plan.steps[0].diff.to_string();
    for line in [
        "+ fact ConfigMap production/maintenance-mode: created",
        "+ fact ConfigMap production/maintenance-mode data.message: Back shortly.",
        "~ fact ConfigMap production/frontend-flags data.mode: live -> maintenance",
        "- fact ConfigMap production/frontend-flags data.banner: none",
        "+ fact Deployment production/maintenance: created",
        "~ fact Service production/frontend spec.selector.app: frontend -> maintenance",
        // The replace drops what the manifest does not give (restored at the end).
        "- fact Service production/frontend spec.ports[0].name: http",
        "+ fact Deployment production/maintenance spec.template.spec.containers[page].image: registry.k8s.io/pause:3.9",
        "- fact Service production/frontend metadata.labels.team: web",
    ] {
        assert!(diff.contains(line), "{line:?} in\n{diff}");
    }
    // Fields the server keeps or defaults (the cluster IP, the protocol) are no change.
    assert!(
        !diff.contains("clusterIP") && !diff.contains("protocol"),
        "{diff}"
    );
    assert!(
        !diff.contains("spec.ports[0].port") && !diff.contains("metadata: {}"),
        "{diff}"
    );
    assert_eq!(plan.steps[0].from.as_ref().unwrap().id, BEFORE);
    assert_eq!(plan.steps[0].to.as_ref().unwrap().id, APPLIED);
    assert_eq!(env.before().await, before, "a plan changes nothing");
    // The API server checked the writes as dry runs.
    assert!(env.sim.mutations().await.unwrap() > mutations);

    let report = env
        .recovery("recovery", maintenance_is_on(&env.k8s))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(report.steps[0].status, StepStatus::Reverted, "{report}");
    assert_eq!(report.steps[1].status, StepStatus::Succeeded, "{report}");
    // The check ran while maintenance was on (it passes only then).
    assert!(report.steps[1].verdicts[0].passed, "{report}");
    env.assert_put_back(&before).await;
    let service = env.get("service", "frontend").await.unwrap();
    assert_eq!(
        service["spec"]["clusterIP"], cluster_ip,
        "the same Service, not a new one"
    );
    assert_eq!(service["metadata"]["uid"], before.0["metadata"]["uid"]);
    // And the undo itself: kubectl sees the first release's image again.
    let image = env
        .kubectl(&[
            "get",
            "deployment",
            "frontend",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image, V1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_undo_is_compensated_and_the_manifest_objects_are_put_back_exactly() {
    let env = Env::start().await;
    let before = env.before().await;
    let failing = Check::new(check_fn("frontend health", || async {
        Ok(CheckOutcome::fail("HTTP 503 from /health"))
    }))
    .policy(Policy::once());
    let report = env
        .recovery("failed", failing)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Compensated, "{report}");
    assert_eq!(report.steps[0].status, StepStatus::Compensated, "{report}");
    assert_eq!(report.steps[1].status, StepStatus::Compensated, "{report}");
    assert!(report.needs_attention.is_empty(), "{report}");
    env.assert_put_back(&before).await;
    let image = env
        .kubectl(&[
            "get",
            "deployment",
            "frontend",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image, V2, "the frontend is back at the release it was at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_objects_are_refused_before_anything_changes() {
    let env = Env::start().await;
    let before = env.before().await;
    let calls = env.sim.calls().await.unwrap().as_array().unwrap().len();
    let refused = |objects: Vec<Value>| {
        let e = Manifest::new(&env.k8s, NS, "maintenance", objects).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        e.to_string()
    };
    let mut no_name = maintenance_objects();
    no_name[1] = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"labels": {"a": "b"}}, "data": {}});
    let e = refused(no_name);
    assert!(
        e.contains("object 2 (ConfigMap) has no metadata.name"),
        "{e}"
    );
    let mut unknown = maintenance_objects();
    unknown.push(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web"}}));
    let e = refused(unknown);
    assert!(e.contains("object 5 (Ingress web): kind \"Ingress\" is not one a manifest takes (ConfigMap, Service, Deployment)"), "{e}");
    let mut secret = maintenance_objects();
    secret.insert(0, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": "hunter2"}}));
    let e = refused(secret.clone());
    assert!(e.contains("object 1 (Secret db) is a Secret"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    let e = refused(vec![
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
    ]);
    assert!(
        e.contains("apiVersion \"apps/v1\" does not serve ConfigMap; use apiVersion: v1"),
        "{e}"
    );
    let e = refused(vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "Front_End"}}),
    ]);
    assert!(
        e.contains("object 1 (Service Front_End): name \"Front_End\""),
        "{e}"
    );
    let e = refused(vec![]);
    assert!(e.contains("no objects"), "{e}");
    let mut twice = maintenance_objects();
    twice.push(maintenance_objects()[0].clone());
    assert!(refused(twice)
        .contains("object 5 (ConfigMap production/maintenance-mode) is in the manifest twice"));
    // The same refusal when the kind comes from data (a runbook, a journal).
    let registry = rollback_k8s::registry();
    let spec = TargetSpec::new(
        "k8s-manifest",
        json!({"namespace": NS, "name": "maintenance", "objects": secret, "k8s": {"url": env.sim.url()}}),
    );
    let id = rollback_core::TargetId::new("k8s-manifest", "production/maintenance");
    let e = registry.build(&id, &spec).await.unwrap_err();
    assert!(e.to_string().contains("is a Secret"), "{e}");
    assert_eq!(
        env.sim.calls().await.unwrap().as_array().unwrap().len(),
        calls,
        "refused before any request"
    );

    // A Deployment the API server refuses (its selector does not match its labels) passes
    // the local checks and is refused in preflight by the server's dry run: nothing moves.
    let mut invalid = maintenance_objects();
    invalid[2]["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let target = Manifest::new(&env.k8s, NS, "maintenance", invalid).unwrap();
    let e = env
        .tx("invalid")
        .step(Step::new(Arc::new(target), Selector::exact(APPLIED)).temporary())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        e.to_string()
            .contains("create deployment production/maintenance was refused as invalid"),
        "{e}"
    );
    assert_eq!(
        env.before().await,
        before,
        "untouched, resourceVersions included"
    );
    assert!(env.get("configmap", "maintenance-mode").await.is_none());
    assert!(env.get("deployment", "maintenance").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_after_the_apply_is_resumed_from_its_journal_and_put_back() {
    let env = Env::start().await;
    let before = env.before().await;
    let stop = Interrupt::new();
    let on_verified = stop.clone();
    let journal = env.journal("stopped");
    let report = Transaction::builder("stopped")
        .reason("recovering behind the maintenance page")
        .journal(&journal)
        .locks(env.locks())
        .interrupt(stop)
        .on_event(move |e| {
            if e.kind == EventKind::Verified && e.step == Some(0) {
                on_verified.interrupt();
            }
        })
        .step(Step::new(Arc::new(env.maintenance()), Selector::exact(APPLIED)).temporary())
        .stage()
        .step(Step::new(Arc::new(env.frontend()), Selector::Previous))
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Interrupted, "{report}");
    // Maintenance is on, and only the journal knows what was there before.
    let service = env.get("service", "frontend").await.unwrap();
    assert_eq!(service["spec"]["selector"], json!({"app": "maintenance"}));
    assert!(env.get("deployment", "maintenance").await.is_some());
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        text.contains("Service/production/frontend"),
        "the snapshot is journaled"
    );

    // Another process: a registry that knows nothing but the kinds.
    let resumed = rollback_core::resume_with(
        &journal,
        rollback_core::ResumeOptions {
            registry: rollback_k8s::registry(),
            locks: Some(env.locks()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(resumed.outcome, Outcome::Succeeded, "{resumed}");
    assert_eq!(resumed.steps[0].status, StepStatus::Reverted, "{resumed}");
    env.assert_put_back(&before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kind_is_data_its_spec_round_trips_and_the_runbook_file_runs() {
    let env = Env::start().await;
    let before = env.before().await;
    let m = env.maintenance();
    let spec = m.spec();
    assert_eq!(spec.kind, "k8s-manifest");
    assert_eq!(spec.params["k8s"]["url"], json!(env.sim.url()));
    let registry = rollback_k8s::registry();
    let rebuilt = registry.build(&m.id(), &spec).await.unwrap();
    assert_eq!(rebuilt.id(), m.id());
    assert_eq!(
        rebuilt.id().to_string(),
        "k8s-manifest/production/maintenance"
    );
    assert_eq!(rebuilt.spec(), spec);
    assert_eq!(rebuilt.current().await.unwrap(), m.current().await.unwrap());
    let history = m.history().await.unwrap();
    let ids: Vec<&str> = history.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [BEFORE, APPLIED]);
    assert_eq!(m.resolve(&Selector::Previous).await.unwrap().id, APPLIED);
    let e = m.resolve(&Selector::exact("3")).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("choose Exact(\"applied\") or Previous"),
        "{e}"
    );

    // The namespace a spec leaves out is the defaults'.
    let mut r = Registry::with_builtins();
    rollback_k8s::register_defaults(
        &mut r,
        K8sDefaults {
            namespace: Some(NS.into()),
            context: None,
        },
    );
    let mut params = spec.params.clone();
    params.as_object_mut().unwrap().remove("namespace");
    let defaulted = r
        .build(&m.id(), &TargetSpec::new("k8s-manifest", params))
        .await
        .unwrap();
    assert_eq!(defaulted.spec(), spec);

    // examples/runbooks/004-maintenance.yaml, on the simulator's client.
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/runbooks/004-maintenance.yaml");
    let vars = Vars::new().without_environment().set("NAMESPACE", NS);
    let runbook = Runbook::load(&file, &vars).unwrap();
    let mut r = Registry::with_builtins();
    rollback_k8s::register_with(&mut r, env.k8s.clone());
    let report = runbook
        .build(&r)
        .await
        .unwrap()
        .reason("frontend rollback failed")
        .journal(env.journal("runbook"))
        .locks(env.locks())
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{report}");
    assert_eq!(
        report.steps[0].target.to_string(),
        "k8s-manifest/production/maintenance"
    );
    assert_eq!(report.steps[0].status, StepStatus::Reverted, "{report}");
    env.assert_put_back(&before).await;
}

/// kubectl reads and writes the simulator's ConfigMaps and Services as it does a real API
/// server's: `get -o json` shows what the API holds, `apply` creates, configures and finds
/// nothing to do, `delete` answers and a get after it is NotFound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_config_maps_and_services_as_on_a_real_api_server() {
    let env = Env::start().await;
    let api: Api<ConfigMap> = Api::namespaced(env.k8s.client().clone(), NS);
    let by_kube = serde_json::to_value(api.get("frontend-flags").await.unwrap()).unwrap();
    let by_kubectl = env.get("configmap", "frontend-flags").await.unwrap();
    assert_eq!(by_kubectl, by_kube);
    assert_eq!(by_kubectl["kind"], "ConfigMap");
    assert!(by_kubectl["metadata"]["annotations"]
        ["kubectl.kubernetes.io/last-applied-configuration"]
        .is_string());

    let names = env
        .kubectl(&["get", "cm,svc", "-n", NS, "-o", "name"])
        .await;
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["configmap/frontend-flags", "service/frontend"]
    );
    let ip = env
        .kubectl(&[
            "get",
            "svc",
            "frontend",
            "-n",
            NS,
            "-o",
            "jsonpath={.spec.clusterIP}",
        ])
        .await;
    assert!(ip.starts_with("10.96."), "{ip}");

    // kubectl apply: its strategic merge patch of the selector keeps the cluster IP and
    // the port's defaults; the same file again is "unchanged".
    let file = env.dir.path().join("svc.yaml");
    std::fs::write(
        &file,
        FRONTEND.replace("selector: {app: frontend}", "selector: {app: maintenance}"),
    )
    .unwrap();
    let out = env
        .kubectl(&["apply", "--validate=false", "-f", file.to_str().unwrap()])
        .await;
    assert!(out.contains("service/frontend configured"), "{out}");
    assert!(out.contains("configmap/frontend-flags unchanged"), "{out}");
    env.sim.step(1).await.unwrap();
    let svc = env.get("service", "frontend").await.unwrap();
    assert_eq!(svc["spec"]["selector"], json!({"app": "maintenance"}));
    assert_eq!(svc["spec"]["clusterIP"], json!(ip));
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    let out = env
        .kubectl(&["apply", "--validate=false", "-f", file.to_str().unwrap()])
        .await;
    assert!(out.contains("service/frontend unchanged"), "{out}");

    let out = env
        .kubectl(&["delete", "configmap", "frontend-flags", "-n", NS])
        .await;
    assert_eq!(out.trim(), "configmap \"frontend-flags\" deleted");
    let out = kubectl_out(
        &env.kubeconfig,
        &["get", "configmap", "frontend-flags", "-n", NS],
    )
    .await;
    assert!(!out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Error from server (NotFound): configmaps \"frontend-flags\" not found"
    );
}

/// The contract every target keeps (history, selectors, planning changes nothing, apply and
/// its idempotence, conflicts, waits, and the target left as it was found).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_passes_the_conformance_suite() {
    let env = Env::start().await;
    let before = env.before().await;
    let fixture = rollback_core::conformance::Fixture {
        stable_timeout: std::time::Duration::from_secs(30),
        ..Default::default()
    };
    rollback_core::conformance::assert_conformance(&env.maintenance(), &fixture).await;
    env.assert_put_back(&before).await;
}

/// Someone changes an object of the manifest while maintenance is on: the put-back refuses
/// to overwrite their change (a conflict, reported for a person) and, as every object is
/// checked before any is written, writes nothing: a person decides what maintenance off
/// means now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_made_during_maintenance_is_not_overwritten_by_the_put_back() {
    let env = Env::start().await;
    let kubeconfig = env.kubeconfig.clone();
    let meddle = Check::new(check_fn(
        "someone edits the maintenance page's flag",
        move || {
            let kubeconfig = kubeconfig.clone();
            async move {
                let out = kubectl_out(
                    &kubeconfig,
                    &[
                        "patch",
                        "configmap",
                        "maintenance-mode",
                        "-n",
                        NS,
                        "--type=merge",
                        "-p",
                        r#"{"data":{"message":"Back at 15:00."}}"#,
                    ],
                )
                .await;
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                Ok(CheckOutcome::pass("edited"))
            }
        },
    ))
    .policy(Policy::once());
    let report = env
        .recovery("meddled", meddle)
        .build()
        .unwrap()
        .run()
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{report}");
    assert_eq!(
        report.steps[0].status,
        StepStatus::CompensationFailed,
        "{report}"
    );
    let error = report.steps[0].error.as_ref().unwrap();
    assert_eq!(error.kind, ErrorKind::Conflict, "{report}");
    assert!(
        error
            .message
            .contains("ConfigMap production/maintenance-mode changed by someone else"),
        "{}",
        error.message
    );
    assert!(!report.needs_attention.is_empty(), "{report}");
    // Their change stays; nothing of the manifest was written back over it.
    let flag = env.get("configmap", "maintenance-mode").await.unwrap();
    assert_eq!(flag["data"]["message"], "Back at 15:00.");
    let service = env.get("service", "frontend").await.unwrap();
    assert_eq!(
        service["spec"]["selector"],
        json!({"app": "maintenance"}),
        "checked before anything is written"
    );
}
