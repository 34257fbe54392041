"""Runbook 004, "Kubernetes Rollback" and "Failed Rollback Recovery", on the Kubernetes API
simulator.

Part 1: release 2.4.0 went to ``frontend``, ``backend-python`` and ``backend-rust`` in
namespace ``production``, and the error rate is above 5 %: roll back immediately. One
transaction does the runbook's ``kubectl rollout undo deployment/<name> -n production`` for
all three (kubectl's exact patch, sent with the object's resourceVersion), waits for each as
``kubectl rollout status`` does (by watch, kubectl's messages as events) and verifies that
their pods are Ready.

Part 2: the next incident's rollback goes to a revision that is broken too (its image never
becomes Ready): the transaction notices, puts ``backend-rust`` back where it was and runs the
on-failure action. Then the runbook's recovery: maintenance mode on (step 2, a ``Manifest``
applied as a temporary step: a maintenance-page ConfigMap and the ``backend-rust`` Service
sent to a maintenance Deployment), scale to zero and re-deploy the last known good revision
(``--to-revision``), maintenance off again (what it created is deleted); then scale up
gradually, one replica first and the health check before the rest.

Run: ``.venv/bin/python examples/python/k8s_undo.py [--kubeconfig PATH]``
"""

from __future__ import annotations

import time
from typing import Any

import rollback
from emulators import Kubernetes, arguments, expect, kubernetes, progress
from rollback.k8s import Deployment, Manifest, PodsReady, rollout_status

NS = "production"
APPS = f"/apis/apps/v1/namespaces/{NS}/deployments"
COMPONENTS = ["frontend", "backend-python", "backend-rust"]
PODS = rollback.Policy(attempts=30, interval=0.5, deadline=30)


def rolled_out(obj: dict[str, Any]) -> bool:
    try:
        return rollout_status(obj).done
    except rollback.RolloutError:
        return False


def release(k8s: Kubernetes, name: str, version: str, *, create: bool = False) -> None:
    """What the CI pipeline does: deploy ``version`` of ``name`` and wait for it."""
    image = f"registry.example.com/{name}:{version}"
    meta = {"annotations": {"kubernetes.io/change-cause": f"release {version}"}}
    tpl = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": image}]}}
    if create:
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, **meta}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}}, "template": tpl}}
        k8s.request("POST", APPS, body)
    else:
        k8s.request("PATCH", f"{APPS}/{name}", {"metadata": meta, "spec": {"template": tpl}}, "application/merge-patch+json")
    k8s.wait(f"{APPS}/{name}", rolled_out)


def main() -> int:
    args = arguments(__doc__, k8s=True)
    with kubernetes(args.kubeconfig) as k8s:
        k8s.request("POST", "/_sim/config", {"step_ms": 100, "deadline_ms": 3000})
        for name in COMPONENTS:
            release(k8s, name, "2.3.0", create=True)
            release(k8s, name, "2.4.0")
        start = time.monotonic()

        print("\n== part 1: error rate 12 % after release 2.4.0; roll back immediately")
        deployments = [Deployment(name, NS) for name in COMPONENTS]
        print("kubectl rollout history deployment/frontend -n production:")
        for r in deployments[0].history():
            print(f"   {r.id:>3}  {r.description or '<none>'}  {', '.join(r.images)}")
        tx = rollback.Transaction("roll back release 2.4.0", reason="INC-4412: error rate 12 % for 6 minutes after 2.4.0")
        for d in deployments:
            tx.add(d, rollback.Previous(), verify=PodsReady(d, policy=PODS), timeout=120)
        report = tx.run(on_event=progress(start))
        print(f"\n{report}")
        for d in deployments:
            print(f"kubectl rollout status deployment/{d.name} -n production: {d.rollout_status().message}")
        if expect(report, "succeeded"):
            return 1

        print("\n== part 2: release 2.5.0 of backend-rust fails, and so does its previous release")
        rust = deployments[2]
        release(k8s, "backend-rust", "2.5.0")
        k8s.request("POST", "/_sim/fail-image", {"image": "registry.example.com/backend-rust:2.3.0"})
        steps: list[str] = []

        def maintenance_mode() -> str:
            steps.append("maintenance")
            return "maintenance page on for backend-rust"

        failed = (
            rollback.Transaction("roll back backend-rust 2.5.0", reason="INC-4420: backend-rust 2.5.0 panics")
            .add(rust, rollback.Previous(), verify=PodsReady(rust, policy=rollback.Policy(attempts=4, interval=0.5)), timeout=20)
            .on_failure(maintenance_mode)
            .run(on_event=progress(start))
        )
        print(f"\n{failed}")
        if expect(failed, "compensated") or steps != ["maintenance"]:
            return 1

        print("\n== failed rollback recovery: scale to zero, re-deploy the last known good, scale up gradually")
        known_good = next(r for r in rust.history() if r.images == ["registry.example.com/backend-rust:2.4.0"])
        replicas = rust.replicas(gradual=[1], between=PodsReady(rust, policy=PODS))
        maintenance = Manifest(
            "maintenance",
            [
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "maintenance-mode"}, "data": {"enabled": "true"}},
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "maintenance-page", "labels": {"app": "maintenance"}},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": "maintenance"}},
                        "template": {
                            "metadata": {"labels": {"app": "maintenance"}},
                            "spec": {"containers": [{"name": "page", "image": "registry.example.com/maintenance:1"}]},
                        },
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "backend-rust"},
                    "spec": {"selector": {"app": "maintenance"}, "ports": [{"port": 80, "targetPort": 8080}]},
                },
            ],
            NS,
        )
        stop = (
            rollback.Transaction("backend-rust: stop and re-deploy 2.4.0", reason="INC-4420: recovery")
            .add(maintenance, rollback.Previous(), temporary=True)
            .stage()
            .add(replicas, rollback.Exact("0"), timeout=60)
            .stage()
            .add(rust, rollback.Exact(known_good.id), timeout=60)
            .run(on_event=progress(start))
        )
        print(f"\n{stop}")
        print(f"== maintenance mode: {maintenance.current().id} (off again: what it created is gone)")
        if maintenance.current().id == "applied":
            return 1
        up = (
            rollback.Transaction("backend-rust: scale up gradually", reason="INC-4420: recovery")
            .add(replicas, rollback.Exact("2"), verify=PodsReady(rust, min=2, policy=PODS), timeout=120)
            .run(on_event=progress(start))
        )
        print(f"\n{up}")
        print(f"\n== backend-rust: {rust.rollout_status().message}; images {rust.current().images}")
        return expect(stop, "succeeded") or expect(up, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
