"""Runbook 000, "Lambda MCP Server Rollback": the live alias back to the previous version.

Release 1.5.0 of the MCP server went to version 2 of ``agentcore-mcp-s3-tools-prod`` and its
``live`` alias, and the tools fail. The runbook's list-versions / update-alias / get-alias
becomes: the versions, newest first; one transaction moving the alias to the previous
version, verified by the application's health check; the alias as it is now.

Run: ``.venv/bin/python examples/python/lambda_alias.py [--endpoint URL]``
"""

from __future__ import annotations

import time

import rollback
from emulators import arguments, aws, expect, health_check, progress
from rollback.aws import LambdaAlias

FUNCTION = "agentcore-mcp-s3-tools-prod"


def main() -> int:
    args = arguments(__doc__)
    with aws(args.endpoint) as emu:
        emu.seed({"lambda": [{"function": FUNCTION, "alias": "live", "versions": ["release 1.4.0", "release 1.5.0"], "alias_version": "2"}]})
        emu.mark_bad("lambda", f"{FUNCTION}:live", "2")
        print(f"== incident: release 1.5.0 is live; health answers {emu.health()}")

        live = LambdaAlias(FUNCTION, "live")
        print("1. the function's versions, newest first:")
        for v in live.history():
            print(f"   {v.id:>3} {v.description or ''}")
        print("2. the alias back to the previous version, verified by the health check")
        report = (
            rollback.Transaction("roll back the MCP server's live alias", reason="INC-3107: MCP tool bug in release 1.5.0")
            .add(live, rollback.Previous(), verify=health_check(emu), timeout=60)
            .run(on_event=progress(time.monotonic()))
        )
        print(f"\n{report}")
        print(f"3. the alias now: version {live.current().id} | health: {emu.health()}")
        return expect(report, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
