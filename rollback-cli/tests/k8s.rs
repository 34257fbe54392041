//! The `rollback` binary on runbook 004's file against the Kubernetes API simulator, with
//! the real kubectl setting up the incident and reading the result: the same undo kubectl
//! would make, verified by the pods being Ready.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rollback_testkit::k8s::K8sSimulator;
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

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
    Command::new(env!("CARGO_BIN_EXE_rollback"))
        .args(args)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .current_dir(dir)
        .env("ROLLBACK_JOURNAL_DIR", dir.join("journal"))
        .env("ROLLBACK_LOCK_DIR", dir.join("locks"))
        .env("ROLLBACK_KNOWN_GOOD_DIR", dir.join("known-good"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/runbooks/004-kubernetes-undo.yaml")
}

#[tokio::test]
async fn runbook_004_undoes_a_crash_looping_release_as_kubectl_would() {
    let sim = K8sSimulator::start()
        .unwrap_or_else(|e| panic!("the Kubernetes API simulator did not start: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    sim.write_kubeconfig(&kubeconfig).unwrap();
    let (good, bad) = (
        "registry.example.com/agentauri/frontend:1.8.0",
        "registry.example.com/agentauri/frontend:1.9.0",
    );
    sim.fail_image(bad).await.unwrap();
    let manifest = dir.path().join("frontend.json");
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
    kubectl(&kubeconfig, &["create", "-f", m, "--validate=false"]);
    // The controller sees each template before the next (as a real cluster would, given
    // time): revision 1's ReplicaSet now, revision 2's after `set image`.
    sim.step(1).await.unwrap();
    kubectl(
        &kubeconfig,
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
        &kubeconfig,
        &[
            "rollout",
            "history",
            "deployment/frontend",
            "-n",
            "production",
        ],
    );
    assert!(history.contains('2'), "{history}");

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
