"""Runbook 002, "Canary Rollback": canary to 0.

``claude-proxy-api-prod`` is in canary mode: its ``live`` alias serves version 1 and sends 10 %
of the traffic to version 2, which answers 5xx. The runbook's ``canary_release.sh
--canary-percent 0 --live`` is the alias moved to its own primary version with the routing
weights cleared: a real change although the version stays the same. The plan shows the
weights that go; the health check must pass afterwards, and the script fails if a weight is
left.

Run: ``.venv/bin/python examples/python/canary_reset.py [--endpoint URL]``
"""

from __future__ import annotations

import time

import rollback
from emulators import arguments, aws, expect, health_check, progress
from rollback.aws import LambdaAlias

FUNCTION = "claude-proxy-api-prod"


def main() -> int:
    args = arguments(__doc__)
    with aws(args.endpoint) as emu:
        emu.seed(
            {"lambda": [{"function": FUNCTION, "alias": "live", "versions": ["release 2.2.0", "release 2.3.0"], "alias_version": "1", "routing": {"2": 0.1}}]}
        )
        emu.mark_bad("lambda", f"{FUNCTION}:live", "2")
        canary = LambdaAlias(FUNCTION, "live")
        primary = canary.current()
        print(f"== {FUNCTION}:live serves version {primary.id} with canary {primary.facts.get('canary', 'none')}; health answers {emu.health()}")

        tx = rollback.Transaction("canary to 0", reason="INC-3108: 5xx from the canary of release 2.3.0")
        tx.add(canary, rollback.Exact(primary.id), verify=health_check(emu), timeout=60)
        print("\n== the plan (dry run: nothing changes); the canary weights go")
        print(tx.run(dry_run=True))
        print("\n== canary to 0")
        report = tx.run(on_event=progress(time.monotonic()))
        print(f"\n{report}")
        after = canary.current()
        print(f"\n== outcome: {report.outcome} | alias at version {after.id}, canary {after.facts.get('canary', 'none')} | health: {emu.health()}")
        if "canary" in after.facts:
            print("the canary weights are still there")
            return 1
        return expect(report, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
