"""rollback.k8s against the Kubernetes API simulator (`rollback-k8s-sim`): undo as kubectl
does it for Deployments, StatefulSets and DaemonSets, verified by PodsReady and rollout
status, replicas and restart targets, rollout_status on dicts, bad input refused with the
simulator unchanged."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from typing import Any

import pytest

import rollback
from conftest import EmulatorHandle, K8sSim
from helpers import wait_done
from rollback.k8s import DaemonSet, Deployment, K8sConfig, PodsReady, StatefulSet, rollout_status

NS = "production"
APPS = f"/apis/apps/v1/namespaces/{NS}"
FAST = rollback.Policy(attempts=40, interval=0.2, deadline=20)


@pytest.fixture
def sim(k8s_sim: K8sSim) -> K8sSim:
    k8s_sim.request("POST", "/_sim/reset")
    k8s_sim.request("POST", "/_sim/config", {"step_ms": 50, "deadline_ms": 1500})
    return k8s_sim


def template(app: str, image: str) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": app, "image": image}]}}


def workload(kind: str, name: str, image: str, replicas: int | None = 2) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": {"app": name}}, "template": template(name, image)}
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS, "annotations": {"kubernetes.io/change-cause": f"deploy {image}"}},
        "spec": spec,
    }


def deploy(sim: K8sSim, kind: str, resource: str, name: str, images: list[str], replicas: int | None = 2) -> None:
    """Creates the workload at the first image, then rolls out each next one."""
    sim.request("POST", f"{APPS}/{resource}", workload(kind, name, images[0], replicas))
    wait_done(sim, resource, name)
    for image in images[1:]:
        patch = {
            "metadata": {"annotations": {"kubernetes.io/change-cause": f"deploy {image}"}},
            "spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}},
        }
        sim.request("PATCH", f"{APPS}/{resource}/{name}", patch, "application/merge-patch+json")
        wait_done(sim, resource, name)


def mutations(sim: K8sSim) -> int:
    return int(sim.request("GET", "/_sim/calls")["mutations"])


def test_deployment_undo_verified_like_runbook_004(sim: K8sSim, k8s_config: K8sConfig) -> None:
    deploy(sim, "Deployment", "deployments", "frontend", ["web:2.3.0", "web:2.4.0"])
    frontend = Deployment("frontend", NS, config=k8s_config)
    assert (frontend.name, frontend.namespace, frontend.kind) == ("frontend", NS, "k8s-deployment")
    assert frontend.target_id == f"k8s-deployment/{NS}/frontend"
    assert frontend.current().id == "2"
    history = frontend.history()
    assert [(r.id, r.images, r.description) for r in history] == [
        ("2", ["web:2.4.0"], "deploy web:2.4.0"),
        ("1", ["web:2.3.0"], "deploy web:2.3.0"),
    ]
    assert history[0].created_at is not None
    change = frontend.plan(rollback.Previous())
    assert change.to_revision.id == "1" and "web:2.4.0 -> web:2.3.0" in str(change.diff)
    assert frontend.rollout_status().done
    sim.request("DELETE", "/_sim/calls")
    events: list[rollback.Event] = []
    report = (
        rollback.Transaction("frontend-undo", reason="error rate 12% after 2.4.0")
        .add(frontend, rollback.Previous(), verify=PodsReady(frontend, policy=FAST), timeout=60)
        .run(on_event=events.append)
    )
    assert report.outcome == "succeeded", str(report)
    status = frontend.rollout_status()
    assert status.done and status.message == 'deployment "frontend" successfully rolled out'
    assert frontend.current().images == ["web:2.3.0"]
    assert any(e.kind == "waiting" and "Waiting for deployment" in e.message for e in events)
    assert "pod(s) ready" in report.steps[0].verdicts[0].evidence
    assert mutations(sim) == 1  # one patch, kubectl's


def test_undo_to_a_revision_and_async(sim: K8sSim, k8s_config: K8sConfig) -> None:
    deploy(sim, "Deployment", "deployments", "backend-python", ["api:1", "api:2", "api:3"])
    d = Deployment("backend-python", NS, config=k8s_config)

    async def main() -> tuple[rollback.Revision, list[rollback.Revision], rollback.Report]:
        current, history = await asyncio.gather(d.current_async(), d.history_async())
        report = await rollback.Transaction("to-revision", reason="r").add(d, rollback.Exact("1"), timeout=60).run_async()
        return current, history, report

    current, history, report = asyncio.run(main())
    assert current.id == "3" and len(history) == 3
    assert report.outcome == "succeeded", str(report)
    assert d.current().images == ["api:1"]


def test_failed_undo_is_compensated(sim: K8sSim, k8s_config: K8sConfig) -> None:
    deploy(sim, "Deployment", "deployments", "backend-rust", ["rust:1", "rust:2"])
    sim.request("POST", "/_sim/fail-image", {"image": "rust:1"})
    d = Deployment("backend-rust", NS, config=k8s_config)
    report = (
        rollback.Transaction("undo", reason="r")
        .add(d, rollback.Previous(), verify=PodsReady(d, policy=rollback.Policy(attempts=3, interval=0.1)), timeout=30)
        .run()
    )
    assert report.outcome == "compensated", str(report)
    step = report.steps[0]
    assert step.error_kind in ("rollout_failed", "verification_failed", "timeout"), step.error
    sim.request("DELETE", "/_sim/fail-image")
    wait_done(sim, "deployments", "backend-rust")
    assert d.current().images == ["rust:2"]


def test_rollout_status_of_dicts(sim: K8sSim) -> None:
    deploy(sim, "Deployment", "deployments", "frontend", ["web:1"])
    obj = sim.request("GET", f"{APPS}/deployments/frontend")
    done = rollout_status(obj)
    assert done.done and bool(done) and done.message == 'deployment "frontend" successfully rolled out'
    waiting = copy.deepcopy(obj)
    waiting["status"]["updatedReplicas"] = 1
    w = rollout_status(waiting)
    assert not w.done
    assert w.message == 'Waiting for deployment "frontend" rollout to finish: 1 out of 2 new replicas have been updated...'
    stuck = copy.deepcopy(obj)
    stuck["status"]["conditions"] = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    with pytest.raises(rollback.RolloutError, match="exceeded its progress deadline") as e:
        rollout_status(stuck)
    assert e.value.reason == "progress_deadline_exceeded"
    assert isinstance(e.value, rollback.RollbackError)
    on_delete = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "generation": 1}, "spec": {"updateStrategy": {"type": "OnDelete"}}, "status": {"observedGeneration": 1}}
    with pytest.raises(rollback.RolloutError) as e2:
        rollout_status(on_delete)
    assert e2.value.reason == "unsupported_strategy"
    with pytest.raises(rollback.RolloutError) as e3:
        rollout_status({"kind": "Service"})
    assert e3.value.reason == "invalid_object"
    with pytest.raises(TypeError):
        rollout_status("deployment/frontend")  # type: ignore[arg-type]


def test_replicas_gradual_scale_up_with_a_check_between(sim: K8sSim, k8s_config: K8sConfig) -> None:
    deploy(sim, "Deployment", "deployments", "frontend", ["web:1"], replicas=3)
    d = Deployment("frontend", NS, config=k8s_config)
    looks: list[int] = []

    def healthy() -> bool:
        looks.append(1)
        return True

    replicas = d.replicas(gradual=[1], between=healthy, step_timeout=30)
    assert replicas.kind == "k8s-deployment-replicas"
    assert replicas.current().id == "3"
    r = rollback.Transaction("stop", reason="r").add(replicas, rollback.Exact("0"), timeout=30).run()
    assert r.outcome == "succeeded", str(r)
    assert replicas.current().id == "0"
    r = rollback.Transaction("scale up", reason="r").add(replicas, rollback.Exact("3"), timeout=60).run()
    assert r.outcome == "succeeded", str(r)
    assert replicas.current().id == "3" and looks


def test_restart_target(sim: K8sSim, k8s_config: K8sConfig) -> None:
    deploy(sim, "Deployment", "deployments", "frontend", ["web:1"])
    restart = Deployment("frontend", NS, config=k8s_config).restart()
    assert restart.current().id == "never"
    r = rollback.Transaction("restart", reason="r").add(restart, rollback.Previous(), timeout=60).run()
    assert r.outcome == "succeeded", str(r)
    assert restart.current().id != "never"


def test_a_secret_restarts_the_kubernetes_workloads_that_read_it(
    sim: K8sSim, k8s_config: K8sConfig, emu: EmulatorHandle
) -> None:
    from rollback.aws import SecretVersion

    secret_id = "agentauri/production/jwt-secret"
    seeded = emu.seed({"secrets": [{"name": secret_id, "values": ["jwt-key-2026-10", "jwt-key-2026-11"]}]})
    versions = seeded["secrets"][0]["version_ids"]
    deploy(sim, "Deployment", "deployments", "worker", ["worker:1"])
    restart = Deployment("worker", NS, config=k8s_config).restart()
    secret = SecretVersion(secret_id, consumers=[restart])
    assert secret.consumer_targets == ["k8s-deployment-restart/production/worker"] and secret.consumers == []
    assert "consumer k8s-deployment-restart/production/worker: restarted" in str(secret.plan(rollback.Previous()))
    assert restart.current().id == "never"
    r = rollback.Transaction("secret", reason="r").add(secret, rollback.Previous(), timeout=60).run()
    assert r.outcome == "succeeded", str(r)
    assert secret.current().id == versions[0]
    assert restart.current().id != "never"
    with pytest.raises(TypeError, match="restart target"):
        SecretVersion(secret_id, consumers=[42])  # type: ignore[list-item]
    with pytest.raises(rollback.InvalidInputError, match="not a restart target"):
        SecretVersion(secret_id, consumers=[Deployment("worker", NS, config=k8s_config)])


def test_statefulset_and_daemonset_undo(sim: K8sSim, k8s_config: K8sConfig) -> None:
    deploy(sim, "StatefulSet", "statefulsets", "postgresql", ["postgres:15", "postgres:16"])
    deploy(sim, "DaemonSet", "daemonsets", "node-agent", ["agent:1", "agent:2"], replicas=None)
    sts = StatefulSet("postgresql", NS, config=k8s_config)
    ds = DaemonSet("node-agent", NS, config=k8s_config)
    assert sts.kind == "k8s-statefulset" and ds.kind == "k8s-daemonset"
    assert [r.images for r in sts.history()] == [["postgres:16"], ["postgres:15"]]
    report = (
        rollback.Transaction("undo", reason="r")
        .add(sts, rollback.Previous(), verify=PodsReady(sts, policy=FAST), timeout=60)
        .add(ds, rollback.Previous(), verify=PodsReady(ds, policy=FAST), timeout=60)
        .run()
    )
    assert report.outcome == "succeeded", str(report)
    assert sts.current().images == ["postgres:15"] and ds.current().images == ["agent:1"]
    assert sts.rollout_status().done and ds.rollout_status().done
    assert sts.replicas().current().id == "2"


def test_pods_ready_by_selector_and_url_config(sim: K8sSim) -> None:
    deploy(sim, "Deployment", "deployments", "frontend", ["web:1"])
    by_url = K8sConfig(url=sim.url)
    assert by_url.url == sim.url and by_url.kubeconfig is None
    check = PodsReady(namespace=NS, selector="app=frontend", min=2, config=by_url, policy=rollback.Policy.once())
    v = check.run()
    assert v.passed, v.evidence
    assert not PodsReady(namespace=NS, selector="app=nothing", config=by_url, policy=rollback.Policy.once()).run().passed
    assert PodsReady(namespace=NS, selector="app=nothing", min=0, config=by_url, policy=rollback.Policy.once()).run().passed
    with pytest.raises(rollback.InvalidInputError):
        PodsReady()
    with pytest.raises(rollback.InvalidInputError):
        PodsReady(namespace=NS, selector=" ", config=by_url)
    with pytest.raises(TypeError):
        PodsReady(object())  # type: ignore[arg-type]


def test_kubeconfig_from_the_environment(sim: K8sSim, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy(sim, "Deployment", "deployments", "frontend", ["web:1", "web:2"])
    monkeypatch.setenv("KUBECONFIG", str(sim.kubeconfig))
    assert Deployment("frontend", NS).current().images == ["web:2"]


def test_bad_input_raises_typed_errors_with_the_simulator_unchanged(sim: K8sSim, k8s_config: K8sConfig) -> None:
    deploy(sim, "Deployment", "deployments", "frontend", ["web:1", "web:2"])
    sim.request("DELETE", "/_sim/calls")
    bad_names: list[Callable[[], object]] = [
        lambda: Deployment("Frontend!", NS, config=k8s_config),
        lambda: Deployment("frontend", "", config=k8s_config),
    ]
    for make in bad_names:
        with pytest.raises(rollback.InvalidInputError):
            make()
    assert sim.request("GET", "/_sim/calls")["total"] == 0
    with pytest.raises(rollback.NotFoundError, match="missing"):
        Deployment("missing", NS, config=k8s_config).current()
    d = Deployment("frontend", NS, config=k8s_config)
    with pytest.raises(rollback.NotFoundError, match="9"):
        rollback.Transaction("t", reason="r").add(d, rollback.Exact("9")).run()
    with pytest.raises(rollback.InvalidInputError):
        rollback.Transaction("t", reason="r").add(d, rollback.Exact("2")).run()
    sim.request("PATCH", f"{APPS}/deployments/frontend", {"spec": {"paused": True}}, "application/merge-patch+json")
    before = mutations(sim)
    with pytest.raises(rollback.InvalidInputError, match="paused"):
        rollback.Transaction("t", reason="r").add(d, rollback.Previous()).run()
    assert mutations(sim) == before
    with pytest.raises(rollback.InvalidInputError):
        K8sConfig(url="localhost:8001")
    with pytest.raises(rollback.InvalidInputError):
        Deployment("frontend", NS, config=K8sConfig(kubeconfig="/nonexistent/kubeconfig"))
    assert d.current().images == ["web:2"]


def test_manifest_as_a_temporary_maintenance_step(sim: K8sSim, k8s_config: K8sConfig) -> None:
    core = f"/api/v1/namespaces/{NS}"
    sim.request("POST", f"{core}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"maintenance": "off"}})
    maintenance = rollback.k8s.Manifest(
        "maintenance",
        [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "flags"}, "data": {"maintenance": "on"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "maintenance-page"}, "data": {"index.html": "back soon"}},
        ],
        namespace=NS,
        config=k8s_config,
    )
    assert (maintenance.name, maintenance.namespace) == ("maintenance", NS)
    seen: list[str] = []

    def during() -> bool:
        flags = sim.request("GET", f"{core}/configmaps/flags")
        page = sim.request("GET", f"{core}/configmaps/maintenance-page")
        seen.append(f"{flags['data']['maintenance']} {page['data']['index.html']}")
        return True

    tx = rollback.Transaction("maintenance around the fix", reason="r")
    tx.add(maintenance, rollback.Previous(), temporary=True, timeout=30, verify=during)
    report = tx.run()
    assert report.outcome == "succeeded", str(report)
    assert seen and seen[0] == "on back soon", seen
    assert sim.request("GET", f"{core}/configmaps/flags")["data"] == {"maintenance": "off"}
    names = [c["metadata"]["name"] for c in sim.request("GET", f"{core}/configmaps")["items"]]
    assert "maintenance-page" not in names, names
    with pytest.raises(rollback.InvalidInputError, match="Secret"):
        rollback.k8s.Manifest("bad", [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}], namespace=NS, config=k8s_config)
