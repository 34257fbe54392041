"""rollback.testing: the in-memory target and its faults, fake checks, the recorder, the
report assertions, the pytest fixtures (from the package's pytest11 entry point), and the
conformance suite on a Python class of a user's own."""

from __future__ import annotations

from pathlib import Path

import pytest

import rollback
from helpers import MemoryTarget
from rollback.testing import (
    InMemoryTarget,
    Recorder,
    always_fails,
    assert_compensated,
    assert_conformance,
    assert_planned,
    assert_succeeded,
    assert_unchanged,
    conformance,
    flaky,
    passes_after,
)


def tx(*targets: InMemoryTarget, verify: list[rollback.Check] | None = None) -> rollback.Transaction:
    t = rollback.Transaction("unit", reason="test")
    for target in targets:
        t.add(target, rollback.Previous(), timeout=10)
    for check in verify or []:
        t.verify(check)
    return t


def test_fixtures_come_from_the_installed_plugin(rollback_memory_target: InMemoryTarget, rollback_recorder: Recorder, rollback_state_dir: Path) -> None:
    api = rollback_memory_target
    assert (api.name, api.current_id, api.target_id) == ("api", "3", "memory/api")
    report = tx(api).run(on_event=rollback_recorder)
    assert_succeeded(report, statuses=["succeeded"])
    assert api.applied == [("3", "2")] and api.apply_count == 1
    assert rollback_recorder.kinds[0] == "started" and rollback_recorder.kinds[-1] == "finished"
    assert len(rollback_recorder.of("applied", "memory/api")) == 1
    assert report.journal_path.is_relative_to(rollback_state_dir)


@pytest.mark.parametrize(("kind", "retried"), [("throttled", True), ("transient", True), ("permanent", False), ("conflict", False)])
def test_injected_apply_faults(kind: str, retried: bool, rollback_state_dir: Path) -> None:
    api = InMemoryTarget("api", ["1", "2"])
    api.fail_next_applies(1, kind)  # type: ignore[arg-type]
    report = tx(api).run()
    if retried:  # the engine retries throttling and 5xx
        assert_succeeded(report)
        assert api.applied == [("2", "1")]
    else:
        assert report.outcome in ("compensated", "failed"), str(report)
        assert api.current_id == "2"
        assert_unchanged(api)
        assert report.steps[0].error_kind == ("conflict" if kind == "conflict" else "backend"), str(report)


def test_failed_rollout_and_unhealthy_revision_are_compensated(rollback_state_dir: Path) -> None:
    web, api = InMemoryTarget("web", ["1", "2"]), InMemoryTarget("api", ["a", "b"])
    api.fail_rollout("a", "progress deadline exceeded")
    report = tx(web, api).run()
    assert_compensated(report, error_kind="rollout_failed")
    assert (web.current_id, api.current_id) == ("2", "b")
    # An unhealthy revision: the target's own health check fails after the move.
    svc = InMemoryTarget("svc", ["1", "2"])
    svc.set_healthy("1", False)
    report = tx(svc, verify=[svc.health_check(policy=rollback.Policy(attempts=2, interval=0))]).run()
    assert_compensated(report, error_kind="verification_failed")
    assert svc.applied == [("2", "1"), ("1", "2")]
    with pytest.raises(AssertionError, match="expected the run to be succeeded"):
        assert_succeeded(report)


def test_convergence_and_never_stable(rollback_state_dir: Path) -> None:
    slow = InMemoryTarget("slow", ["1", "2"], convergence=0.2)
    recorder = Recorder()
    assert_succeeded(tx(slow).run(on_event=recorder))
    assert "check_stable" in slow.calls
    stuck = InMemoryTarget("stuck", ["1", "2"])
    stuck.never_stable("1")
    report = rollback.Transaction("t", reason="r").add(stuck, rollback.Previous(), timeout=0.3).run()
    assert_compensated(report, error_kind="timeout")
    stuck.clear_faults()
    stuck.deploy(rollback.Revision("3", images=["registry/stuck:v3"]))
    assert stuck.current_id == "3" and [r.id for r in stuck.history()] == ["3", "2", "1"]


def test_fake_checks_and_a_dry_run(rollback_state_dir: Path) -> None:
    api = InMemoryTarget("api", ["1", "2"])
    assert_planned(tx(api, verify=[passes_after(3)]).run(dry_run=True))
    assert_unchanged(api)
    check = passes_after(2)
    report = tx(api, verify=[check]).run()
    assert_succeeded(report)
    assert report.checks[0].attempts == 3
    wobbly = flaky([True, False, True], then=False, policy=rollback.Policy(attempts=5, interval=0, consecutive=2))
    assert not wobbly.run().passed
    assert flaky([False, True, True], policy=rollback.Policy(attempts=5, interval=0, consecutive=2)).run().passed
    report = tx(InMemoryTarget("b", ["1", "2"]), verify=[always_fails("503 from /healthz")]).run()
    assert_compensated(report)
    assert "503 from /healthz" in str(report)
    with pytest.raises(ValueError):
        passes_after(-1)
    with pytest.raises(rollback.InvalidInputError, match="not a fault"):
        api.fail_next_applies(1, "sometimes")  # type: ignore[arg-type]
    with pytest.raises(rollback.InvalidInputError):
        InMemoryTarget("api", [])


def test_conformance_on_a_users_own_python_target(rollback_state_dir: Path) -> None:
    mine = MemoryTarget("mine", ["1", "2", "3"], "3")
    report = assert_conformance(mine)
    assert report.ok and len(report.passed) > 5, str(report)
    assert "apply" in " ".join(mine.calls)
    assert mine.at == "3"  # put back where it was found
    assert conformance(InMemoryTarget("memory", ["1", "2"])).ok

    class Broken(MemoryTarget):
        def current(self) -> rollback.Revision:  # a revision its history does not hold
            return rollback.Revision("9")

    broken = conformance(Broken("broken", ["1", "2", "3"], "3"), may_mutate=False)
    assert not broken.ok and not broken
    assert any("history" in f for f in broken.failures), str(broken)
    with pytest.raises(AssertionError, match="FAILED"):
        assert_conformance(Broken("broken", ["1", "2", "3"], "3"), may_mutate=False)


def test_a_drill_breaks_detects_recovers_and_restores(rollback_state_dir: Path) -> None:
    """rollback.Drill over an in-memory target whose newest revision is unhealthy."""
    from rollback.testing import InMemoryTarget

    web = InMemoryTarget("web", ["1", "2", "3"], current="2")
    web.set_healthy("3", False)
    tx = rollback.Transaction("web-rollback", reason="drill").add(web, rollback.Previous()).verify(web.health_check(policy=rollback.Policy(attempts=1)))
    drill = rollback.Drill(tx, environment="staging", detect_within=5, probe_interval=0.01)
    history = rollback_state_dir / "drills.jsonl"
    report = drill.run(history=history)
    assert report["passed"], report
    assert report["targets"][0]["broken_to"]["id"] == "3"
    assert report["time_to_detect"] is not None and report["time_to_recover"] is not None
    assert report["markdown"].startswith("# Rollback drill: web-rollback on staging (passed)")
    assert web.current_id == "2" and web.applied == [("2", "3"), ("3", "2")]
    again = drill.run(history=history)
    assert "## Trend" in again["markdown"] and len(history.read_text().splitlines()) == 2
    # The checks never notice: the drill fails, the target is put back anyway.
    calm = InMemoryTarget("calm", ["1", "2"], current="1")
    tx = rollback.Transaction("calm-rollback", reason="drill").add(calm, rollback.Previous()).verify(calm.health_check(policy=rollback.Policy(attempts=1)))
    report = rollback.Drill(tx, environment="staging", detect_within=0.2, probe_interval=0.01).run()
    assert not report["passed"] and "would not fire" in report["needs_attention"][0], report
    assert calm.current_id == "1"
    with pytest.raises(rollback.InvalidInputError, match="no checks"):
        rollback.Drill(rollback.Transaction("x").add(calm, rollback.Previous()), environment="staging")


def test_runbook_drill_is_refused_unless_marked_for_that_environment(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "runbooks"
    with pytest.raises(rollback.InvalidInputError, match="not marked for drills"):
        rollback.Runbook.drill(examples / "004-kubernetes-undo.yaml", environment="staging", vars={"NAMESPACE": "x"})
    with pytest.raises(rollback.InvalidInputError, match='marked for drills on "staging", not "production"'):
        rollback.Runbook.drill(examples / "004-drill-staging.yaml", environment="production", vars={"NAMESPACE": "x"})
