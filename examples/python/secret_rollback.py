"""Runbook 001, "Configuration Rollback / Secrets Manager" (and runbook 002's "Secret
Rotation Rollback"): the rotated JWT secret back to its previous version, then the services
restarted so their tasks read it.

The runbook's ``update-secret-version-stage --move-to-version-id PREVIOUS
--remove-from-version-id CURRENT`` is a ``SecretVersion`` to ``Previous()``; its ``aws ecs
update-service --force-new-deployment`` has no built-in target, so this script brings its
own: ``EcsRestart``, a plain Python class with ``current``, ``history``, ``resolve``,
``apply`` and ``wait`` (boto3 underneath) used as a target in the same transaction, after
the secret (stage 1) and verified by the health check. Its revision is the time of the last
restart, kept as a tag on the service. If a restart fails, the secret is put back too.
No secret value is read or printed.

Run: ``.venv/bin/python examples/python/secret_rollback.py [--endpoint URL]``
"""

from __future__ import annotations

import datetime
import os
import time
from typing import Any

import boto3

import rollback
from emulators import CLUSTER, SERVICES, arguments, aws, expect, health_check, progress, runbook_001_services
from rollback.aws import SecretVersion

SECRET = "agentauri/production/jwt-secret"
TAG = "rollback:restarted-at"


class EcsRestart:
    """``aws ecs update-service --force-new-deployment`` as a target. Revisions are restart
    times (the service's ``rollback:restarted-at`` tag, ``never`` when unset); any selector
    asks for a restart now. Stable when the service has one deployment and all its tasks."""

    kind = "ecs-restart"

    def __init__(self, cluster: str, service: str) -> None:
        self.cluster = cluster
        self.service = service
        self.name = f"{cluster}/{service}"
        self.ecs: Any = boto3.client("ecs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))

    def _describe(self) -> dict[str, Any]:
        out = self.ecs.describe_services(cluster=self.cluster, services=[self.service], include=["TAGS"])
        if not out["services"]:
            raise LookupError(f"service {self.name} not found")
        svc: dict[str, Any] = out["services"][0]
        return svc

    def current(self) -> rollback.Revision:
        tags = {t["key"]: t["value"] for t in self._describe().get("tags", [])}
        at = tags.get(TAG, "never")
        return rollback.Revision(at, description="never restarted" if at == "never" else f"restarted at {at}")

    def history(self) -> list[rollback.Revision]:
        return [self.current()]

    def resolve(self, selector: rollback.Selector) -> rollback.Revision:
        if isinstance(selector, rollback.Exact):
            return rollback.Revision(selector.id)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return rollback.Revision(now, description=f"restart at {now}")

    def apply(self, change: rollback.Change) -> None:
        svc = self._describe()
        self.ecs.tag_resource(resourceArn=svc["serviceArn"], tags=[{"key": TAG, "value": change.to_revision.id}])
        self.ecs.update_service(cluster=self.cluster, service=self.service, forceNewDeployment=True)

    def wait(self, revision: rollback.Revision) -> bool | str:
        svc = self._describe()
        deployments = svc.get("deployments", [])
        if len(deployments) == 1 and svc["runningCount"] == svc["desiredCount"]:
            return True
        return f"{len(deployments)} deployment(s), {svc['runningCount']} of {svc['desiredCount']} task(s) running"


def main() -> int:
    args = arguments(__doc__)
    with aws(args.endpoint) as emu:
        emu.control("POST", "ecs/config", {"convergence_ms": 800})
        seeded = emu.seed(
            {
                "secrets": [{"name": SECRET, "values": ["jwt-signing-key-2026-10", "jwt-signing-key-2026-11"]}],
                "ecs": runbook_001_services([("1.9.0", {"LOG_LEVEL": "info"})]),
            }
        )
        rotated = seeded["secrets"][0]["current"]
        emu.mark_bad("secret", SECRET, rotated)
        print(f"== the JWT secret was rotated to version {rotated} and logins fail; health answers {emu.health()}")

        secret = SecretVersion(SECRET)
        print("1. the secret's versions, newest first:")
        for v in secret.history():
            print(f"   {v.id} stages={v.facts.get('stages', '')}")
        tx = rollback.Transaction("roll back the JWT secret", reason="INC-2101: logins fail after the JWT secret rotation")
        tx.add(secret, rollback.Previous(), timeout=60)
        tx.stage()
        for service, _ in SERVICES:
            tx.add(EcsRestart(CLUSTER, service), rollback.Previous(), timeout=60)
        tx.verify(health_check(emu))
        print("2. AWSCURRENT back to the previous version, then every service restarted")
        report = tx.run(on_event=progress(time.monotonic()))
        print(f"\n{report}")
        print(f"3. AWSCURRENT is on {secret.current().id} | health: {emu.health()} | GetSecretValue calls: {emu.calls()['operations'].get('GetSecretValue', 0)}")
        if "jwt-signing-key" in str(report):
            print("a secret value is in the report")
            return 1
        return expect(report, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
