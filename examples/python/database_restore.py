"""Runbook 001, "Database Migration Rollback / Option 2: Restore from Snapshot", as one
transaction.

Before the migration a snapshot is taken ("Before Running Migrations"). The migration breaks
queries, and the rollback is:

- stage 0: the three services stopped (desired count 0) as *temporary* steps, so nothing
  writes meanwhile; they start again (a new deployment that reads the secret anew) once the
  stages are done, or by compensation;
- stage 1: the pre-migration snapshot restored to a NEW instance,
  ``agentauri-production-rollback``, with the original's class, subnet group and security
  groups (the original is never touched);
- stage 2: the connection handover: the restored endpoint written into the secret
  ``agentauri/production/database-url`` as a new version, user, password and options kept;
- then the health check, which fails until the secret names the restored instance.

The secret holds a password, never printed: the script checks that it is in none of the
plan, the events, the report and the journal. Part 2 replays the incident with a snapshot
that cannot be restored (``incompatible-restore``): the transaction compensates, the services
run again, the secret is untouched and the failed instance is left for a person.

Run: ``.venv/bin/python examples/python/database_restore.py [--endpoint URL]``
"""

from __future__ import annotations

import time
from pathlib import Path

import rollback
from emulators import CLUSTER, SERVICES, Aws, arguments, aws, expect, health_check, progress, runbook_001_services
from rollback.aws import ConnectionHandover, EcsDesiredCount, RdsInstance, SecretVersion

DB = "agentauri-production"
RESTORED = "agentauri-production-rollback"
SECRET = "agentauri/production/database-url"
PASSWORD = "pw-9c4f1e7a2b"  # inside the connection secret; never printed


def seed(emu: Aws) -> None:
    emu.control("POST", "ecs/config", {"convergence_ms": 800})
    emu.control("POST", "rds/config", {"delay_ms": 1500})
    seeded = emu.seed(
        {
            "rds": [
                {
                    "db_instance_id": DB,
                    "engine": "postgres",
                    "class": "db.t3.micro",
                    "subnet_group": "agentauri-production",
                    "security_groups": ["sg-0abc"],
                    "port": 5432,
                    "snapshots": [{"id": "rds:agentauri-production-2025-12-28-03-00", "type": "automated", "created": "2025-12-28T03:00:00Z"}],
                }
            ],
            "ecs": runbook_001_services([("1.9.0", {"LOG_LEVEL": "info"})]),
        }
    )
    host = seeded["rds"][0]["endpoint"]["address"]
    url = f"postgres://app:{PASSWORD}@{host}:5432/agentauri_backend?sslmode=require"
    emu.seed({"secrets": [{"name": SECRET, "values": [url]}]})


def pre_migration_snapshot() -> str:
    snapshot = RdsInstance(DB).snapshot(timeout=120)
    print(f"== pre-migration snapshot {snapshot.id} is available")
    return snapshot.id


def option_2(snapshot: str, emu: Aws) -> rollback.Transaction:
    rds = RdsInstance(DB, restore_as=RESTORED)
    handover = ConnectionHandover(SECRET, rds.restore_identifier)
    tx = rollback.Transaction(f"restore {DB} from {snapshot}", reason="INC-2093: migration 20251228000001 broke queries")
    for service, _ in SERVICES:
        tx.add(EcsDesiredCount(CLUSTER, service), rollback.Exact("0"), temporary=True, timeout=60)
    tx.stage().add(rds, rollback.Exact(snapshot), timeout=120)
    tx.stage().add(handover, rollback.Exact(handover.revision_id), timeout=60)
    return tx.verify(health_check(emu))


def main() -> int:
    args = arguments(__doc__)
    with aws(args.endpoint) as emu:
        seed(emu)
        start = time.monotonic()

        print("\n== part 1: restore the pre-migration snapshot")
        snapshot = pre_migration_snapshot()
        emu.mark_bad("secret-endpoint", SECRET, RESTORED)
        print(f"== the migration broke queries; health answers {emu.health()}")
        events: list[str] = []
        show = progress(start)

        def on_event(e: rollback.Event) -> None:
            show(e)
            events.append(f"{e}\n{e!r}")

        tx = option_2(snapshot, emu)
        print("\n== the plan (dry run: nothing changes)")
        plan = str(tx.run(dry_run=True))
        print(plan)
        print("\n== rolling back")
        report = tx.run(on_event=on_event)
        print(f"\n{report}")
        endpoint = RdsInstance(DB, restore_as=RESTORED).restored_endpoint()
        if endpoint is None:
            print("the restored instance has no endpoint")
            return 1
        written = next((s.to_revision.facts.get("version") for s in report.steps if s.target.startswith("connection-handover/") and s.to_revision), None)
        print(f"\n== restored endpoint: {endpoint[0]}:{endpoint[1]} | secret AWSCURRENT: version {written} | health: {emu.health()}")
        journal = Path(report.journal_path).read_text()
        if any(PASSWORD in text for text in (plan, "".join(events), str(report), repr(report.steps), journal)):
            print("the database password appeared in the output")
            return 1
        print(f"== the database password is in none of: the plan, {len(events)} events, the report, the journal ({len(journal)} bytes)")
        if expect(report, "succeeded"):
            return 1

        print("\n== part 2: the same on a fresh emulator, with a snapshot that cannot be restored")
        emu.control("POST", "reset")
        seed(emu)
        snapshot = pre_migration_snapshot()
        emu.control("POST", "rds/fail", {"snapshot": snapshot, "status": "incompatible-restore"})
        emu.mark_bad("secret-endpoint", SECRET, RESTORED)
        secret_before = SecretVersion(SECRET).current().id
        report = option_2(snapshot, emu).run(on_event=progress(start))
        print(f"\n{report}")
        desired = {service: EcsDesiredCount(CLUSTER, service).current().id for service, _ in SERVICES}
        untouched = SecretVersion(SECRET).current().id == secret_before
        reported = any(RESTORED in a for a in report.needs_attention)
        print(f"\n== outcome: {report.outcome} | desired counts: {desired} | secret untouched: {untouched} | {RESTORED} in needs_attention: {reported}")
        if not untouched or not reported or set(desired.values()) != {"2"}:
            print("the compensation did not leave things as expected")
            return 1
        return expect(report, "compensated")


if __name__ == "__main__":
    raise SystemExit(main())
