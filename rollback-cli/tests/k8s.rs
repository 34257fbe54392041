//! The `rollback` binary on runbook 004's file against the Kubernetes API simulator, with
//! the real kubectl setting up the incident and reading the result: the same undo kubectl
//! would make, verified by the pods being Ready.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;
use rollback_testkit::k8s::K8sSimulator;
use serde_json::{json, Value};

const GOOD: &str = "registry.example.com/agentauri/frontend:1.8.0";
const BAD: &str = "registry.example.com/agentauri/frontend:1.9.0";

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap_or_else(|e| panic!("the real kubectl must be installed: {e}"));
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn rollback(dir: &Path, kubeconfig: &Path, args: &[&str]) -> Output {
    common::command(None, dir, args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .output()
        .unwrap()
}

/// The RBAC attributes of an API call: (namespace, group, resource, verb, name).
fn attributes(call: &Value) -> Option<(String, String, String, String, Option<String>)> {
    let path = call["path"].as_str()?;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    let ["namespaces", ns, resource, tail @ ..] = rest else {
        return None;
    };
    let name = tail.first().map(|n| n.to_string());
    let query = call["query"].as_str().unwrap_or("");
    let verb = match (call["method"].as_str()?, &name) {
        ("GET", Some(_)) => "get",
        ("GET", None) if query.contains("watch=true") || query.contains("watch=1") => "watch",
        ("GET", None) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        _ => return None,
    };
    Some((
        ns.to_string(),
        group.to_string(),
        resource.to_string(),
        verb.into(),
        name,
    ))
}

/// Every namespaced call is allowed by a rule of the Role of its namespace, and every verb
/// of every rule was used by a call: the Roles are sufficient and minimal for the calls.
fn assert_rbac_exact(roles: &Value, calls: &Value) {
    let mut used = std::collections::BTreeSet::new();
    for call in calls.as_array().unwrap() {
        let Some((ns, group, resource, verb, name)) = attributes(call) else {
            continue;
        };
        let role = roles["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["metadata"]["namespace"] == ns.as_str())
            .unwrap_or_else(|| panic!("no Role in {ns} for {call}"));
        let allowed = role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .find(|(_, r)| {
                r["apiGroups"][0] == group.as_str()
                    && r["resources"][0] == resource.as_str()
                    && r["verbs"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|v| v == verb.as_str())
                    && r.get("resourceNames").is_none_or(|names| {
                        name.as_ref().is_some_and(|n| {
                            names.as_array().unwrap().iter().any(|x| x == n.as_str())
                        })
                    })
            });
        let (i, _) = allowed.unwrap_or_else(|| {
            panic!("{verb} {group}/{resource} {name:?} in {ns} is not allowed by {role:#}")
        });
        used.insert((ns, i, verb));
    }
    for role in roles["items"].as_array().unwrap() {
        let ns = role["metadata"]["namespace"].as_str().unwrap().to_string();
        for (i, rule) in role["rules"].as_array().unwrap().iter().enumerate() {
            for verb in rule["verbs"].as_array().unwrap() {
                let verb = verb.as_str().unwrap().to_string();
                assert!(
                    used.contains(&(ns.clone(), i, verb.clone())),
                    "{verb} of {rule} is never used"
                );
            }
        }
    }
}

/// The RBAC Roles `rollback policy --format rbac` generates for runbook `file`.
fn generated_roles(dir: &Path, kubeconfig: &Path, file: &str) -> Value {
    let roles = rollback(
        dir,
        kubeconfig,
        &[
            "policy",
            file,
            "--var",
            "NAMESPACE=production",
            "--format",
            "rbac",
        ],
    );
    assert!(roles.status.success(), "{}", text(&roles.stderr));
    serde_json::from_slice(&roles.stdout).unwrap()
}

/// A simulator, a folder for the test and a kubeconfig in it for the simulator.
fn cluster() -> (K8sSimulator, tempfile::TempDir, PathBuf) {
    let sim = K8sSimulator::start()
        .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    (sim, dir, kubeconfig)
}

/// The image of production/frontend's template, as kubectl reads it.
fn frontend_image(kubeconfig: &Path) -> String {
    kubectl(
        kubeconfig,
        &[
            "get",
            "deployment/frontend",
            "-n",
            "production",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    )
}

/// The revisions `kubectl rollout history` lists for production/frontend.
fn frontend_revisions(kubeconfig: &Path) -> Vec<String> {
    let history = kubectl(
        kubeconfig,
        &[
            "rollout",
            "history",
            "deployment/frontend",
            "-n",
            "production",
        ],
    );
    history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .map(str::to_string)
        .collect()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/runbooks/004-kubernetes-undo.yaml")
}

/// The incident, set up with the real kubectl on the simulator `kubeconfig` points at:
/// Deployment production/frontend at revision 2 (BAD, whose pods never become Ready),
/// revision 1 running GOOD.
async fn incident(sim: &K8sSimulator, dir: &Path, kubeconfig: &Path) {
    let (good, bad) = (GOOD, BAD);
    sim.fail_image(bad).await.unwrap();
    let manifest = dir.join("frontend.json");
    std::fs::write(
        &manifest,
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "frontend", "namespace": "production"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "frontend"}},
                "template": {
                    "metadata": {"labels": {"app": "frontend"}},
                    "spec": {"containers": [{"name": "app", "image": good}]}
                }
            }
        })
        .to_string(),
    )
    .unwrap();
    let m = manifest.to_str().unwrap();
    kubectl(kubeconfig, &["create", "-f", m, "--validate=false"]);
    // The controller sees each template before the next (as a real cluster would, given
    // time): revision 1's ReplicaSet now, revision 2's after `set image`.
    sim.step(1).await.unwrap();
    kubectl(
        kubeconfig,
        &[
            "set",
            "image",
            "deployment/frontend",
            &format!("app={bad}"),
            "-n",
            "production",
        ],
    );
    sim.step(1).await.unwrap();
    let history = kubectl(
        kubeconfig,
        &[
            "rollout",
            "history",
            "deployment/frontend",
            "-n",
            "production",
        ],
    );
    assert!(history.contains('2'), "{history}");
}

#[tokio::test]
async fn runbook_004_undoes_a_crash_looping_release_as_kubectl_would() {
    let (sim, dir, kubeconfig) = cluster();
    incident(&sim, dir.path(), &kubeconfig).await;
    let (good, bad) = (GOOD, BAD);

    // The image column kubectl's history lacks (kubernetes#54932), the one in use marked.
    let h = rollback(
        dir.path(),
        &kubeconfig,
        &["history", "k8s-deployment", "production/frontend"],
    );
    let table = text(&h.stdout);
    assert!(h.status.success(), "{}", text(&h.stderr));
    let rows: Vec<&str> = table.lines().skip(2).collect();
    assert!(rows[0].starts_with('*') && rows[0].contains(bad), "{table}");
    assert!(
        !rows[1].starts_with('*') && rows[1].contains(good),
        "{table}"
    );
    let h = rollback(
        dir.path(),
        &kubeconfig,
        &[
            "history",
            "k8s-deployment",
            "production/frontend",
            "-o",
            "json",
        ],
    );
    let h: Value = serde_json::from_slice(&h.stdout).unwrap();
    assert_eq!(h["current"], "2", "{h}");
    assert_eq!(h["revisions"][1]["images"][0], good, "{h}");
    let bad_name = rollback(
        dir.path(),
        &kubeconfig,
        &["history", "k8s-deployment", "frontend"],
    );
    assert_eq!(bad_name.status.code(), Some(1));
    assert!(
        text(&bad_name.stderr).contains("namespace/name"),
        "{}",
        text(&bad_name.stderr)
    );

    let file = example();
    let f = file.to_str().unwrap();
    sim.reset_calls().await.unwrap();
    let lint = rollback(
        dir.path(),
        &kubeconfig,
        &["lint", f, "--var", "NAMESPACE=production"],
    );
    assert!(lint.status.success(), "{}", text(&lint.stderr));
    let plan = rollback(
        dir.path(),
        &kubeconfig,
        &["plan", f, "--var", "NAMESPACE=production", "-o", "json"],
    );
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan.stderr));
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["steps"][0]["from"]["id"], "2", "{plan}");
    assert_eq!(plan["steps"][0]["to"]["id"], "1", "{plan}");
    let writes = sim.mutations().await.unwrap();

    let applied = rollback(
        dir.path(),
        &kubeconfig,
        &[
            "apply",
            f,
            "--var",
            "NAMESPACE=production",
            "--yes",
            "--reason",
            "frontend crash-looping after 1.9.0",
        ],
    );
    let out = text(&applied.stdout);
    assert!(applied.status.success(), "{out}{}", text(&applied.stderr));
    assert!(out.contains("succeeded"), "{out}");
    // The Role `rollback policy` generates is exact for what the plan and the run called.
    let calls = sim.calls().await.unwrap();
    let roles = generated_roles(dir.path(), &kubeconfig, f);
    assert_rbac_exact(&roles, &calls);
    // The progress lines (no terminal: plain, timestamped) carry the rollout's own words.
    let progress = text(&applied.stderr);
    assert!(
        progress
            .lines()
            .any(|l| l.contains("k8s-deployment/production/frontend")),
        "{progress}"
    );
    // What kubectl sees: the template of revision 1, now revision 3, as `rollout undo` makes.
    let image = frontend_image(&kubeconfig);
    assert_eq!(image, good);
    assert_eq!(frontend_revisions(&kubeconfig), ["2", "3"]);
    let status = kubectl(
        &kubeconfig,
        &[
            "rollout",
            "status",
            "deployment/frontend",
            "-n",
            "production",
            "--timeout=10s",
        ],
    );
    assert!(status.contains("successfully rolled out"), "{status}");
    assert!(
        sim.mutations().await.unwrap() > writes,
        "the run wrote to the cluster"
    );
}

/// `--namespace` (`-n`, ROLLBACK_KUBE_NAMESPACE) is the namespace of targets, checks and
/// history names that give none, and `--context` the kubeconfig context of those that name
/// none; the journal records both, so a resume goes to the same place. Without a namespace
/// anywhere, each entry is refused saying how to give one.
#[tokio::test]
async fn namespace_and_context_flags_fill_in_what_the_runbook_leaves_out() {
    let (sim, dir, kubeconfig) = cluster();
    incident(&sim, dir.path(), &kubeconfig).await;
    // The simulator's context, and a current one that gives no client (its cluster is not
    // in the file): only `--context rollback-sim` reaches the simulator.
    let two = dir.path().join("two-contexts");
    let yaml = std::fs::read_to_string(&kubeconfig).unwrap();
    assert!(yaml.contains("current-context: rollback-sim"), "{yaml}");
    let yaml = yaml
        .replace("current-context: rollback-sim", "current-context: elsewhere")
        .replace(
            "contexts:\n",
            "contexts:\n- name: elsewhere\n  context:\n    cluster: not-in-this-file\n    user: rollback-sim\n",
        );
    std::fs::write(&two, yaml).unwrap();
    let run = |args: &[&str]| rollback(dir.path(), &two, args);

    let h = run(&[
        "history",
        "k8s-deployment",
        "frontend",
        "--namespace",
        "production",
        "--context",
        "rollback-sim",
    ]);
    let table = text(&h.stdout);
    assert!(h.status.success(), "{}", text(&h.stderr));
    assert!(
        table.starts_with("k8s-deployment/production/frontend (2 revisions"),
        "{table}"
    );
    let elsewhere = run(&["history", "k8s-deployment", "frontend", "-n", "production"]);
    assert_eq!(
        elsewhere.status.code(),
        Some(1),
        "the current context is used"
    );
    let no_namespace = run(&["history", "k8s-deployment", "frontend"]);
    assert_eq!(no_namespace.status.code(), Some(1));
    let err = text(&no_namespace.stderr);
    assert!(
        err.contains("namespace/name") && err.contains("--namespace"),
        "{err}"
    );

    let file = dir.path().join("undo.yaml");
    std::fs::write(
        &file,
        "name: undo\nsteps:\n  - target: {kind: k8s-deployment, name: frontend}\n    to: previous\n    timeout: 2m\n    verify:\n      - check: {kind: k8s-pods-ready, deployment: frontend, min: 3}\n        policy: {attempts: 120, interval: 250ms, deadline: 60s}\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let lint = run(&["lint", f]);
    assert_eq!(lint.status.code(), Some(1));
    let err = text(&lint.stderr);
    assert_eq!(
        err.matches("no namespace").count(),
        2,
        "the target and the check: {err}"
    );
    assert!(
        err.contains(":3:") && err.contains(":7:") && err.contains("ROLLBACK_KUBE_NAMESPACE"),
        "{err}"
    );
    let plan = common::command(None, dir.path(), &["plan", f, "-o", "json"])
        .args([
            "--kubeconfig",
            two.to_str().unwrap(),
            "--context",
            "rollback-sim",
        ])
        .env("ROLLBACK_KUBE_NAMESPACE", "production")
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan.stderr));
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["steps"][0]["target"]["name"], "production/frontend");
    assert_eq!(plan["steps"][0]["from"]["id"], "2", "{plan}");
    assert_eq!(plan["steps"][0]["to"]["id"], "1", "{plan}");

    let applied = run(&[
        "apply",
        f,
        "-n",
        "production",
        "--context",
        "rollback-sim",
        "--yes",
        "--reason",
        "1.9.0 crash-loops",
        "-o",
        "json",
    ]);
    let out = text(&applied.stdout);
    assert!(applied.status.success(), "{out}{}", text(&applied.stderr));
    let report: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(report["outcome"], "succeeded", "{report}");
    let image = frontend_image(&kubeconfig);
    assert_eq!(image, GOOD);
    // What a resume rebuilds the target from.
    let journal = dir
        .path()
        .join("journal")
        .read_dir()
        .unwrap()
        .next()
        .unwrap();
    let journal = std::fs::read_to_string(journal.unwrap().path()).unwrap();
    assert!(
        journal.contains(r#""namespace":"production""#)
            && journal.contains(r#""context":"rollback-sim""#),
        "{journal}"
    );
}

/// The query the example's `watch:` names under `key`.
fn watch_query(file: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {}", file.display()));
    line.trim_matches('\'').to_string()
}

/// `rollback watch` on runbook 004's watch file, over a Prometheus API scripted to cross
/// the thresholds, rolling back the simulator's Deployment.
fn watch_cli(
    sim_dir: &Path,
    kubeconfig: &Path,
    prom: &rollback_testkit::prometheus::ScriptedPrometheus,
    extra: &[&str],
) -> (Output, Vec<Value>) {
    let file = common::example("004-watch.yaml");
    let url = format!("PROMETHEUS_URL={}", prom.base_url());
    let mut args = vec![
        "watch",
        file.to_str().unwrap(),
        "--var",
        "NAMESPACE=production",
        "--var",
        &url,
        "--interval",
        "10ms",
        "-o",
        "json",
    ];
    args.extend(extra);
    let out = rollback(sim_dir, kubeconfig, &args);
    let records = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (out, records)
}

fn verdicts(records: &[Value]) -> Vec<&str> {
    records
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn watch_rolls_back_once_when_the_error_rate_crosses_runbook_004s_threshold() {
    use rollback_testkit::prometheus::{Answer, ScriptedPrometheus};
    let (sim, dir, kubeconfig) = cluster();
    incident(&sim, dir.path(), &kubeconfig).await;

    let file = common::example("004-watch.yaml");
    let (err, p95) = (
        watch_query(&file, "error_rate"),
        watch_query(&file, "p95_latency_seconds"),
    );
    use Answer::{NoData, Value as V};
    // Healthy; 9 % errors for the whole window (act); still (same incident); healthy
    // (closed); 9 % again (a new incident, in the cooldown); the metrics gone (held).
    let prom = ScriptedPrometheus::start([
        (
            err.clone(),
            vec![V(0.01), V(0.09), V(0.09), V(0.01), V(0.09), NoData],
        ),
        (
            p95.clone(),
            vec![V(0.3), V(0.3), V(0.3), V(0.3), V(0.3), NoData],
        ),
    ])
    .unwrap();
    let log = dir.path().join("decisions.jsonl");
    let status = dir.path().join("status.json");
    let writes = sim.mutations().await.unwrap();
    let (out, records) = watch_cli(
        dir.path(),
        &kubeconfig,
        &prom,
        &[
            "--max-decisions",
            "6",
            "--log",
            log.to_str().unwrap(),
            "--status-file",
            status.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        verdicts(&records),
        [
            "healthy",
            "acted",
            "already_acted",
            "healthy",
            "cooldown",
            "no_data"
        ],
        "{records:#?}"
    );
    // Each look asked each query once.
    assert_eq!((prom.served(&err), prom.served(&p95)), (6, 6));
    let acted = &records[1];
    assert_eq!(acted["outcome"], "succeeded", "{acted:#}");
    assert_eq!(acted["evidence"][0]["signal"], "error_rate");
    assert_eq!(acted["evidence"][0]["worst"], 0.09);
    assert_eq!(acted["evidence"][0]["threshold"], 0.05);
    assert!(
        acted["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("error rate above 5% for 5m"),
        "{acted:#}"
    );
    assert_eq!(records[4]["incident"], 2);
    assert_eq!(records[5]["no_data"], true);
    // The log holds every record, the status file the last.
    let logged: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(logged, records);
    let last: Value = serde_json::from_str(&std::fs::read_to_string(&status).unwrap()).unwrap();
    assert_eq!(last, records[5]);

    // One undo, as kubectl's own: revision 1's template is now revision 3, and nothing more.
    let image = frontend_image(&kubeconfig);
    assert_eq!(image, GOOD);
    assert_eq!(frontend_revisions(&kubeconfig), ["2", "3"]);
    assert!(sim.mutations().await.unwrap() > writes);
    // One transaction in the journal, with the decision as its reason.
    let list = rollback(dir.path(), &kubeconfig, &["list", "-o", "json"]);
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    let runs = list.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{list:#}");
    assert_eq!(runs[0]["id"], acted["transaction"], "{list:#}");
    assert!(
        runs[0]["reason"]
            .as_str()
            .unwrap()
            .contains("rollback watch: roll back immediately"),
        "{list:#}"
    );
}

#[tokio::test]
async fn a_watch_dry_run_decides_and_changes_nothing() {
    use rollback_testkit::prometheus::{Answer, ScriptedPrometheus};
    let (sim, dir, kubeconfig) = cluster();
    incident(&sim, dir.path(), &kubeconfig).await;
    let file = common::example("004-watch.yaml");
    let prom = ScriptedPrometheus::start([
        (watch_query(&file, "error_rate"), vec![Answer::Value(0.2)]),
        (
            watch_query(&file, "p95_latency_seconds"),
            vec![Answer::Unavailable],
        ),
    ])
    .unwrap();
    let writes = sim.mutations().await.unwrap();
    let (out, records) = watch_cli(
        dir.path(),
        &kubeconfig,
        &prom,
        &["--max-decisions", "2", "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A failing latency query fails the look: no data, held, even with 20 % errors.
    assert_eq!(verdicts(&records), ["no_data", "no_data"], "{records:#?}");
    assert!(
        records[0]["source_error"].as_str().unwrap().contains("503"),
        "{records:#?}"
    );
    assert_eq!(sim.mutations().await.unwrap(), writes);
    // The default log, under .rollback/watch/.
    let log = dir.path().join(".rollback/watch/frontend-watch.jsonl");
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);

    let prom = ScriptedPrometheus::start([
        (watch_query(&file, "error_rate"), vec![Answer::Value(0.2)]),
        (
            watch_query(&file, "p95_latency_seconds"),
            vec![Answer::Value(0.3)],
        ),
    ])
    .unwrap();
    let (out, records) = watch_cli(
        dir.path(),
        &kubeconfig,
        &prom,
        &["--max-decisions", "2", "--dry-run"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(verdicts(&records), ["would_act", "already_acted"]);
    assert!(records.iter().all(|r| r["dry_run"] == true));
    assert_eq!(
        sim.mutations().await.unwrap(),
        writes,
        "a dry run changed something"
    );
}

#[tokio::test]
async fn watch_serves_its_last_decision_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;

    use rollback_testkit::prometheus::{Answer, ScriptedPrometheus};
    let (_sim, dir, kubeconfig) = cluster();
    let file = common::example("004-watch.yaml");
    let prom = ScriptedPrometheus::start([
        (watch_query(&file, "error_rate"), vec![Answer::Value(0.01)]),
        (
            watch_query(&file, "p95_latency_seconds"),
            vec![Answer::Value(0.3)],
        ),
    ])
    .unwrap();
    let url = format!("PROMETHEUS_URL={}", prom.base_url());
    let mut child = common::command(
        None,
        dir.path(),
        &[
            "watch",
            file.to_str().unwrap(),
            "--var",
            "NAMESPACE=production",
            "--var",
            &url,
            "--interval",
            "1h",
            "--status-addr",
            "127.0.0.1:0",
            "-o",
            "json",
        ],
    )
    .arg("--kubeconfig")
    .arg(&kubeconfig)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("status on http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no status address: {line:?}"))
        .to_string();
    // The first decision is made at once (the next in an hour).
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["verdict"], "healthy", "{first:#}");
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    conn.write_all(b"GET /status HTTP/1.1\r\nHost: watch\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let body: Value = serde_json::from_str(response.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body, first);

    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "SIGTERM should end the watch cleanly: {status:?}"
    );
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "no decision after SIGTERM");
}

/// `rollback drill` on runbook 004's drill file: the frontend broken to its bad release,
/// the pods-ready check failing, the rollback, the Deployment left as found.
#[tokio::test]
async fn drill_breaks_detects_recovers_and_leaves_the_deployment_as_found() {
    let (sim, dir, kubeconfig) = cluster();
    incident(&sim, dir.path(), &kubeconfig).await;
    // Staging runs the good release again (revision 3); the bad one (2) is in the history.
    kubectl(
        &kubeconfig,
        &["rollout", "undo", "deployment/frontend", "-n", "production"],
    );
    sim.step(1).await.unwrap();
    assert_eq!(frontend_image(&kubeconfig), GOOD);
    let rs_before = kubectl(
        &kubeconfig,
        &["get", "replicasets", "-n", "production", "-o", "name"],
    );
    let file = common::example("004-drill-staging.yaml");
    let f = file.to_str().unwrap();
    let vars = ["--var", "NAMESPACE=production"];

    // Not marked for drills, or another environment: refused, nothing changed.
    let writes = sim.mutations().await.unwrap();
    let undo = common::example("004-kubernetes-undo.yaml");
    let refused = rollback(
        dir.path(),
        &kubeconfig,
        &[
            "drill",
            undo.to_str().unwrap(),
            "--environment",
            "staging",
            vars[0],
            vars[1],
        ],
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("not marked for drills"),
        "{}",
        text(&refused.stderr)
    );
    let wrong = rollback(
        dir.path(),
        &kubeconfig,
        &["drill", f, "--environment", "production", vars[0], vars[1]],
    );
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains(r#"marked for drills on "staging", not "production""#),
        "{}",
        text(&wrong.stderr)
    );
    assert_eq!(sim.mutations().await.unwrap(), writes);

    let md = dir.path().join("drill.md");
    let out = rollback(
        dir.path(),
        &kubeconfig,
        &[
            "drill",
            f,
            "--environment",
            "staging",
            vars[0],
            vars[1],
            "--out",
            md.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["environment"], "staging");
    assert!(
        report["detected_by"]
            .as_str()
            .unwrap()
            .starts_with("pods ready: the pods of deployment frontend"),
        "{report:#}"
    );
    assert!(report["time_to_detect"].as_u64().is_some(), "{report:#}");
    let ttr = report["time_to_recover"].as_u64().unwrap();
    assert!(
        ttr <= report["recover_within"].as_u64().unwrap(),
        "{report:#}"
    );
    let t = &report["targets"][0];
    assert_eq!(t["found"]["id"], "3", "{report:#}");
    assert_eq!(t["broken_to"]["id"], "2", "{report:#}");
    assert_eq!(t["restored"], true, "{report:#}");
    assert_eq!(report["outcome"], "succeeded");
    // Exactly as found: the good release's ReplicaSet serves, no new ReplicaSet was made.
    assert_eq!(frontend_image(&kubeconfig), GOOD);
    let rs_after = kubectl(
        &kubeconfig,
        &["get", "replicasets", "-n", "production", "-o", "name"],
    );
    assert_eq!(rs_after, rs_before);
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.starts_with("# Rollback drill: frontend-drill on staging (passed)"),
        "{md}"
    );
    assert!(md.contains("| time to recover |"), "{md}");
    // The history has it; a second drill shows the trend.
    let history = dir.path().join(".rollback/drills/frontend-drill.jsonl");
    assert_eq!(
        std::fs::read_to_string(&history).unwrap().lines().count(),
        1
    );
    let again = rollback(
        dir.path(),
        &kubeconfig,
        &["drill", f, "--environment", "staging", vars[0], vars[1]],
    );
    assert!(again.status.success(), "{}", text(&again.stderr));
    let md = text(&again.stdout);
    assert!(md.contains("## Trend"), "{md}");
    assert_eq!(
        std::fs::read_to_string(&history).unwrap().lines().count(),
        2
    );
}

/// Least privilege, both ways, under the simulator's RBAC: runbook 004's undo runs with
/// only the Role `rollback policy` generates, and without any one verb of it the run fails
/// naming that verb and resource (after compensating, when the verb was a check's).
#[tokio::test]
async fn runbook_004_runs_with_only_its_generated_role_and_not_without_any_verb() {
    let (sim, dir, kubeconfig) = cluster();
    incident(&sim, dir.path(), &kubeconfig).await;
    let f = example();
    let f = f.to_str().unwrap();
    let roles = generated_roles(dir.path(), &kubeconfig, f);
    let apply = || {
        rollback(
            dir.path(),
            &kubeconfig,
            &[
                "apply",
                f,
                "--var",
                "NAMESPACE=production",
                "--yes",
                "--reason",
                "least privilege",
            ],
        )
    };
    // Nothing allowed: refused at the first read.
    sim.rbac(Some(&json!({"kind": "List", "items": []})))
        .await
        .unwrap();
    let out = apply();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("kubectl auth can-i"),
        "{}",
        text(&out.stderr)
    );
    let rules = roles["items"][0]["rules"].as_array().unwrap().clone();
    let mut tried = 0;
    let mut watches = Vec::new();
    let without = |i: usize, verb: &Value| {
        let mut fewer = roles.clone();
        fewer["items"][0]["rules"][i]["verbs"]
            .as_array_mut()
            .unwrap()
            .retain(|v| v != verb);
        fewer
    };
    for (i, rule) in rules.iter().enumerate() {
        for verb in rule["verbs"].as_array().unwrap() {
            if verb == "watch" {
                // Without watch the wait polls instead (below).
                watches.push((i, verb.clone()));
                continue;
            }
            let fewer = without(i, verb);
            sim.rbac(Some(&fewer)).await.unwrap();
            let out = apply();
            sim.rbac(None).await.unwrap();
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            let (verb, resource) = (
                verb.as_str().unwrap(),
                rule["resources"][0].as_str().unwrap(),
            );
            assert_eq!(
                out.status.code(),
                Some(1),
                "without {verb} {resource}: {all}"
            );
            assert!(
                all.contains(verb) && all.contains(resource),
                "without {verb} {resource}, the error names them: {all}"
            );
            // A failed run leaves the bad release in use (refused, or compensated).
            assert_eq!(
                frontend_image(&kubeconfig),
                BAD,
                "without {verb} {resource}"
            );
            tried += 1;
        }
    }
    assert!(tried >= 4, "{roles:#}");
    sim.rbac(Some(&roles)).await.unwrap();
    let out = apply();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    sim.rbac(None).await.unwrap();
    assert_eq!(frontend_image(&kubeconfig), GOOD);
    // `watch` is the one verb a run does without: its waits poll with `get` instead. The
    // Role keeps it (a watch sees the rollout at once, with fewer calls).
    for (i, verb) in &watches {
        kubectl(
            &kubeconfig,
            &[
                "set",
                "image",
                "deployment/frontend",
                &format!("app={BAD}"),
                "-n",
                "production",
            ],
        );
        sim.step(1).await.unwrap();
        sim.rbac(Some(&without(*i, verb))).await.unwrap();
        let out = apply();
        sim.rbac(None).await.unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert_eq!(frontend_image(&kubeconfig), GOOD);
    }
}
