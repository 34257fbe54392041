"""Runbook 001, "ECS Service Rollback" and "Rollback All Services": every service to the
known-good image.

Runbook 001's three services in cluster ``agentauri-production`` run image tag ``def456``,
which answers 5xx. The last known-good commit is ``abc123``, two task-definition revisions
back (``bd4e1f0`` came between, so ``Previous`` would not do). One transaction moves all three
to the revision whose image carries tag ``abc123``, in one stage (the runbook's
``rollback-all.sh``, except that the revision is found by its images), after a dry run
showing each service's image and environment diff (``JWT_SECRET`` redacted), then waits for
every service to be stable and runs the health check. The script fails if a ``JWT_SECRET``
value shows anywhere.

Then runbook 003 step 2, "confirm the previous image still exists in ECR": the ``reports``
service's previous revision runs an image deleted from ECR, so ``Previous()`` is refused
before anything changes, naming the image; two back goes out with
``force_new_deployment=True`` (runbook 002 Option 1), its plan showing the digest.

Run: ``.venv/bin/python examples/python/ecs_services.py [--endpoint URL]``
"""

from __future__ import annotations

import time
from pathlib import Path

import rollback
from emulators import CLUSTER, SERVICES, arguments, aws, expect, health_check, progress, runbook_001_services
from rollback.aws import EcsService

KNOWN_GOOD = "abc123"


def env(feature: str, jwt: str) -> dict[str, str]:
    return {"LOG_LEVEL": "info", "FEATURE_X": feature, "JWT_SECRET": jwt}


def main() -> int:
    args = arguments(__doc__)
    with aws(args.endpoint) as emu:
        emu.control("POST", "ecs/config", {"convergence_ms": 1500})
        emu.seed(
            {
                "ecs": runbook_001_services(
                    [(KNOWN_GOOD, env("off", "jwt-value-2025-11")), ("bd4e1f0", env("off", "jwt-value-2025-11")), ("def456", env("on", "jwt-value-2025-12"))]
                )
            }
        )
        for service, family in SERVICES:
            emu.mark_bad("ecs", f"{CLUSTER}/{service}", f"{family}:3")
        print(f"== incident: def456 is live and health answers {emu.health()}")

        tx = rollback.Transaction(f"roll back all services to {KNOWN_GOOD}", reason="INC-2077: 5xx from every service after deploying def456")
        for service, _ in SERVICES:
            tx.add(EcsService(CLUSTER, service), rollback.ImageTag(KNOWN_GOOD), timeout=120)
        tx.verify(health_check(emu))

        print("\n== the plan (dry run: nothing changes)")
        plan = str(tx.run(dry_run=True))
        print(plan)
        if "jwt-value-" in plan:
            print("a JWT_SECRET value is in the plan")
            return 1

        print("\n== rolling back")
        report = tx.run(on_event=progress(time.monotonic()))
        print(f"\n{report}")
        print(f"\n== outcome: {report.outcome} | health: {emu.health()} | journal: {report.journal_path}")
        if "jwt-value-" in Path(report.journal_path).read_text():
            print("a JWT_SECRET value is in the journal")
            return 1
        if expect(report, "succeeded"):
            return 1

        print("\n== runbook 003 step 2: is the previous image still in ECR?")
        ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/reports"
        emu.seed(
            {
                "ecs": [
                    {
                        "cluster": CLUSTER,
                        "service": "reports",
                        "family": "reports",
                        "desired_count": 1,
                        "revisions": [{"image": f"{ecr}:1.7.0"}, {"image": f"{ecr}:1.8.0", "image_missing": True}, {"image": f"{ecr}:1.9.0"}],
                    }
                ]
            }
        )
        before = emu.calls()["operations"].get("UpdateService", 0)
        reports = EcsService(CLUSTER, "reports", force_new_deployment=True)
        try:
            rollback.Transaction("reports: back one revision", reason="INC-2078: reports 1.9.0 times out").add(reports, rollback.Previous()).run()
            print("a revision without its image was not refused")
            return 1
        except rollback.NotFoundError as e:
            print(f"refused before any change: {e}")
        forced = rollback.Transaction("reports: back two revisions, forced new deployment", reason="INC-2078: 1.8.0's image is gone")
        report = forced.add(reports, rollback.StepsBack(2), timeout=120).run(on_event=progress(time.monotonic()))
        print(f"\n{report}")
        updates = emu.calls()["operations"].get("UpdateService", 0) - before
        print(f"== UpdateService calls for reports: {updates} (none for the refused run)")
        if updates != 1:
            return 1
        return expect(report, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
