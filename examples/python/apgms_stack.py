"""Runbook 003 (APGMS) step 3, both ways: the CloudFormation stack back to the previous
template artifact with the pipeline frozen, or the pipeline re-run for the last good commit.

Release 1.9 changed the stack's template (the queue's visibility timeout went from 30 s to
5 s) and a 2.0 execution is in flight.

- Option A: the ``Deploy`` stage's inbound transition disabled as a temporary step with the
  execution in flight abandoned (steps 1 and 2), then ``CloudFormationStack`` to
  ``Previous()``: UpdateStack pinned to the previous S3 version of the template artifact,
  waited for until UPDATE_COMPLETE (step 3); the transition is enabled again afterwards
  (step 5). The dry run shows the template diff.
- Option B: ``PipelineExecution`` to ``Previous()``: StartPipelineExecution pinned to the
  commit of the last successful execution before 1.9, waited for until it Succeeded.

Run: ``.venv/bin/python examples/python/apgms_stack.py [--endpoint URL]``
"""

from __future__ import annotations

import time
from typing import Any

import rollback
from emulators import arguments, aws, expect, progress
from rollback.aws import CloudFormationStack, PipelineExecution, PipelineTransition

STACK = "apgms-prod"
TEMPLATE = "s3://apgms-templates/prod/template.json"
GOOD = "8f14e45fceea167a5a36dedd4bea2543a1b2c3d4"
BAD = "c9f0f895fb98ab9159f51fd0297e236d5e6f7a8b"
IN_FLIGHT = "45c48cce2e2d7fbdea1afc51c7c6ad26f1e2d3c4"


def template(visibility: int) -> dict[str, Any]:
    return {
        "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
        "Resources": {"Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": visibility}}},
    }


def main() -> int:
    args = arguments(__doc__)
    with aws(args.endpoint) as emu:
        emu.seed(
            {
                "codepipeline": [
                    {
                        "name": "Apgms",
                        "stages": ["Source", "Build", "Deploy"],
                        "source": "github",
                        "executions": [
                            {"commit": GOOD, "summary": "release 1.8"},
                            {"commit": BAD, "summary": "release 1.9"},
                            {"commit": IN_FLIGHT, "summary": "release 2.0", "status": "InProgress"},
                        ],
                    }
                ],
                "cloudformation": [
                    {
                        "stack": STACK,
                        "bucket": "apgms-templates",
                        "key": "prod/template.json",
                        "versioned": True,
                        "templates": [template(30), template(5)],
                        "parameters": {"Stage": "prod"},
                    }
                ],
            }
        )
        emu.control("POST", "codepipeline/config", {"delay_ms": 500})

        print("== option A: the stack back to the previous template, the pipeline frozen meanwhile")
        freeze = PipelineTransition("Apgms", "Deploy", stop_in_flight="abandon")
        stack = CloudFormationStack(STACK, TEMPLATE)
        tx = rollback.Transaction("runbook 003: previous template, pipeline frozen", reason="INC-0412: jobs redelivered since 1.9")
        tx.add(freeze, rollback.Exact("disabled"), temporary=True).stage().add(stack, rollback.Previous(), timeout=120)
        print(tx.run(dry_run=True))
        report = tx.run(on_event=progress(time.monotonic()))
        print(f"\n{report}")
        ops = emu.calls()["operations"]
        print(f"== stack at {stack.current().id} | Deploy transition {freeze.current().id} | StopPipelineExecution calls: {ops.get('StopPipelineExecution', 0)}")
        if expect(report, "succeeded") != 0 or freeze.current().id != "enabled":
            return 1

        print("\n== option B: the pipeline re-run for the last good commit")
        rerun = PipelineExecution("Apgms")
        rerun_tx = rollback.Transaction("runbook 003: re-run the last good commit", reason="INC-0412: re-running 1.8")
        report = rerun_tx.add(rerun, rollback.Previous(), timeout=60).run(on_event=progress(time.monotonic()))
        print(f"\n{report}")
        print(f"== the pipeline's latest successful execution is of {rerun.current().id}")
        if rerun.current().id != GOOD:
            return 1
        return expect(report, "succeeded")


if __name__ == "__main__":
    raise SystemExit(main())
