"""Runbook 001, "Configuration Rollback / Secrets Manager" (and runbook 002's "Secret
Rotation Rollback"): the rotated JWT secret back to its previous version, then the services
that read it restarted so their tasks read it again.

The runbook's ``update-secret-version-stage --move-to-version-id PREVIOUS
--remove-from-version-id CURRENT`` is a ``SecretVersion`` to ``Previous()``; its ``aws ecs
update-service --force-new-deployment`` of each service is the secret's ``consumers``: once
AWSCURRENT has moved, each gets a new deployment and the step waits for all of them, then
the health check runs. Were the check to fail, the secret would be put back and the
services restarted again, so none keeps the rolled-back value. No secret value is read or
printed.

Run: ``.venv/bin/python examples/python/secret_rollback.py [--endpoint URL]``
"""

from __future__ import annotations

import time

import rollback
from emulators import CLUSTER, SERVICES, arguments, aws, expect, health_check, progress, runbook_001_services
from rollback.aws import SecretVersion

SECRET = "agentauri/production/jwt-secret"


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

        secret = SecretVersion(SECRET, consumers=[(CLUSTER, service) for service, _ in SERVICES])
        print("1. the secret's versions, newest first:")
        for v in secret.history():
            print(f"   {v.id} stages={v.facts.get('stages', '')}")
        tx = rollback.Transaction("roll back the JWT secret", reason="INC-2101: logins fail after the JWT secret rotation")
        tx.add(secret, rollback.Previous(), timeout=120)
        tx.verify(health_check(emu))
        print(f"2. the plan:\n{secret.plan(rollback.Previous())}")
        print("3. AWSCURRENT back to the previous version, then every service restarted")
        report = tx.run(on_event=progress(time.monotonic()))
        print(f"\n{report}")
        restarts = emu.calls()["operations"].get("UpdateService", 0)
        print(f"4. AWSCURRENT is on {secret.current().id} | health: {emu.health()} | UpdateService calls: {restarts} | GetSecretValue calls: {emu.calls()['operations'].get('GetSecretValue', 0)}")
        if restarts != len(SERVICES):
            print(f"expected one new deployment per service, saw {restarts} UpdateService calls")
            return 1
        if "jwt-signing-key" in str(report):
            print("a secret value is in the report")
            return 1
        return expect(report, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
