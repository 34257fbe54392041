"""A user's own pytest suite over their rollback logic, using only ``rollback.testing``
(no AWS, no cluster, no emulator): the kind of test a pipeline author keeps beside the
pipeline code.

``roll_back_release`` below stands for your code: it takes the services of a release and a
health check, rolls them all back in one stage and verifies them. The tests pin down what it
must do: roll everything back, leave everything as it was when a check fails or a rollout
fails, retry throttling, and make no change in a dry run.

Run: ``.venv/bin/python -m pytest examples/python/test_my_pipeline.py``
(the fixtures ``rollback_memory_target``, ``rollback_recorder`` and ``rollback_state_dir``
come with the package, through its pytest plugin).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import rollback
from rollback.testing import (
    InMemoryTarget,
    Recorder,
    always_fails,
    assert_compensated,
    assert_conformance,
    assert_planned,
    assert_succeeded,
    assert_unchanged,
    passes_after,
)

# -- the code under test (in your project it is imported from your pipeline) ---------------


def roll_back_release(
    services: Sequence[rollback.Target],
    health: rollback.Check,
    *,
    reason: str,
    dry_run: bool = False,
    on_event: Callable[[rollback.Event], None] | None = None,
) -> rollback.Report:
    """Every service back to its previous revision in one stage, then the health check."""
    tx = rollback.Transaction("roll back the release", reason=reason)
    for service in services:
        tx.add(service, rollback.Previous(), timeout=60)
    tx.verify(health)
    return tx.run(dry_run=dry_run, on_event=on_event)


# -- its tests ------------------------------------------------------------------------------


def services() -> list[InMemoryTarget]:
    return [InMemoryTarget(name, ["1.8.0", "1.9.0"]) for name in ("api", "worker", "web")]


def test_every_service_goes_back_and_is_verified(rollback_state_dir: Path, rollback_recorder: Recorder) -> None:
    fleet = services()
    report = roll_back_release(fleet, passes_after(2), reason="5xx after 1.9.0", on_event=rollback_recorder)
    assert_succeeded(report, statuses=["succeeded"] * 3)
    assert [s.current_id for s in fleet] == ["1.8.0"] * 3
    assert report.checks[0].attempts == 3
    assert len(rollback_recorder.of("applied")) == 3


def test_a_failing_health_check_puts_everything_back(rollback_state_dir: Path) -> None:
    fleet = services()
    report = roll_back_release(fleet, always_fails("GET /healthz: 503"), reason="5xx after 1.9.0")
    assert_compensated(report, error_kind="verification_failed")
    assert [s.current_id for s in fleet] == ["1.9.0"] * 3


def test_a_failed_rollout_of_one_service_puts_the_others_back(rollback_state_dir: Path) -> None:
    fleet = services()
    fleet[1].fail_rollout("1.8.0", "progress deadline exceeded")
    report = roll_back_release(fleet, passes_after(0), reason="5xx after 1.9.0")
    assert_compensated(report, error_kind="rollout_failed")
    assert [s.current_id for s in fleet] == ["1.9.0"] * 3


def test_throttling_is_retried(rollback_memory_target: InMemoryTarget) -> None:
    rollback_memory_target.fail_next_applies(2, "throttled")
    report = roll_back_release([rollback_memory_target], passes_after(0), reason="r")
    assert_succeeded(report)
    assert rollback_memory_target.applied == [("3", "2")]


def test_a_dry_run_changes_nothing(rollback_state_dir: Path) -> None:
    fleet = services()
    assert_planned(roll_back_release(fleet, passes_after(0), reason="r", dry_run=True))
    assert_unchanged(*fleet)


class MyDeployTool:
    """A target of your own (wrapping a deploy tool the library has no backend for)."""

    name = "my-tool"

    def __init__(self) -> None:
        self.releases = ["41", "42", "43"]
        self.live = "43"

    def current(self) -> str:
        return self.live

    def history(self) -> list[str]:
        return list(reversed(self.releases))

    def apply(self, change: rollback.Change) -> None:
        self.live = change.to_revision.id

    def wait(self, revision: rollback.Revision) -> bool:
        return self.live == revision.id


def test_my_own_target_keeps_the_target_contract(rollback_state_dir: Path) -> None:
    tool = MyDeployTool()
    report = assert_conformance(tool)
    assert report.ok
    assert tool.live == "43"  # the suite puts it back where it found it
