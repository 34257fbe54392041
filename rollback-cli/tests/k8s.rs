//! The `rollback` binary on runbook 004's file against the Kubernetes API simulator, with
//! the real kubectl setting up the incident and reading the result: the same undo kubectl
//! would make, verified by the pods being Ready.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::text;
use rollback_testkit::k8s::K8sSimulator;
use serde_json::Value;

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
    let sim = K8sSimulator::start()
        .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
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
    let roles = rollback(
        dir.path(),
        &kubeconfig,
        &[
            "policy",
            f,
            "--var",
            "NAMESPACE=production",
            "--format",
            "rbac",
        ],
    );
    assert!(roles.status.success(), "{}", text(&roles.stderr));
    let roles: Value = serde_json::from_slice(&roles.stdout).unwrap();
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
    let image = kubectl(
        &kubeconfig,
        &[
            "get",
            "deployment/frontend",
            "-n",
            "production",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    );
    assert_eq!(image, good);
    let history = kubectl(
        &kubeconfig,
        &[
            "rollout",
            "history",
            "deployment/frontend",
            "-n",
            "production",
        ],
    );
    let revisions: Vec<&str> = history
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|w| w.parse::<u32>().is_ok())
        .collect();
    assert_eq!(revisions, ["2", "3"], "{history}");
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
    let sim = K8sSimulator::start()
        .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
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
    let image = kubectl(
        &kubeconfig,
        &[
            "get",
            "deployment/frontend",
            "-n",
            "production",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    );
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
