"""The core API with nothing but Python: selectors, revisions, custom targets, callable
checks, transactions (compensation, halt, dry run, events, on-failure actions), resume,
errors, blocking and asyncio, Ctrl-C."""

from __future__ import annotations

import _thread
import asyncio
import datetime
import inspect
import json
import pickle
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import rollback
from helpers import MemoryTarget

FAST = rollback.Policy(attempts=3, interval=0.02, deadline=5)


def test_version_and_exports() -> None:
    assert rollback.__version__ == "0.1.0"
    for name in rollback.__all__:
        assert hasattr(rollback, name), name
    for name in rollback.aws.__all__:
        assert hasattr(rollback.aws, name), name
    for name in rollback.k8s.__all__:
        assert hasattr(rollback.k8s, name), name


# -- selectors and data ----------------------------------------------------------------------


def test_selectors_compare_hash_and_show() -> None:
    assert rollback.Previous() == rollback.Previous()
    assert rollback.Exact("7") == rollback.Exact("7")
    assert rollback.Exact("7") != rollback.Exact("8")
    assert rollback.StepsBack(1) != rollback.Previous()
    assert len({rollback.ImageTag("abc"), rollback.ImageTag("abc"), rollback.Previous()}) == 2
    assert repr(rollback.Exact("family:14")) == 'Exact("family:14")'
    assert rollback.Exact("7").id == "7"
    assert rollback.StepsBack(3).n == 3
    assert rollback.ImageTag("abc123").tag == "abc123"
    assert isinstance(rollback.ImageTag("x"), rollback.Selector)
    assert str(rollback.StepsBack(2)) == "2 step(s) back"


@pytest.mark.parametrize(
    "make",
    [lambda: rollback.StepsBack(-1), lambda: rollback.Exact(""), lambda: rollback.ImageTag(" ")],
)
def test_bad_selectors_are_invalid_input(make: object) -> None:
    with pytest.raises(rollback.InvalidInputError) as e:
        make()  # type: ignore[operator]
    assert isinstance(e.value, ValueError)
    assert e.value.kind == "invalid_input"
    assert e.value.target == "selector"


def test_revision_fields() -> None:
    at = datetime.datetime(2025, 12, 28, 14, 30, tzinfo=datetime.timezone.utc)
    r = rollback.Revision("7", created_at=at, images=["repo/api:abc"], description="release 7", env_keys=["A"], facts={"k": "v"})
    assert (r.id, r.created_at, r.images, r.description, r.env_keys, r.facts) == ("7", at, ["repo/api:abc"], "release 7", ["A"], {"k": "v"})
    assert r == rollback.Revision("7", created_at=at, images=["repo/api:abc"], description="release 7", env_keys=["A"], facts={"k": "v"})
    assert r != rollback.Revision("7")
    assert rollback.Revision("1").created_at is None
    assert "Revision(\"7\"" in repr(r)
    with pytest.raises(rollback.InvalidInputError):
        rollback.Revision("")


def test_policy_and_durations() -> None:
    p = rollback.Policy(attempts=4, interval=datetime.timedelta(milliseconds=250), consecutive=2, deadline=30)
    assert p.attempts == 4 and p.consecutive == 2
    assert p.interval == datetime.timedelta(milliseconds=250)
    assert p.deadline == datetime.timedelta(seconds=30)
    assert rollback.Policy.once().attempts == 1
    with pytest.raises(rollback.InvalidInputError):
        rollback.Policy(attempts=0)
    with pytest.raises(rollback.InvalidInputError):
        rollback.Policy(interval=-1)
    with pytest.raises(TypeError):
        rollback.Policy(interval="soon")  # type: ignore[arg-type]
    # Policies that can never pass are refused when made, as a transaction's preflight would.
    with pytest.raises(rollback.InvalidInputError, match="can never pass"):
        rollback.Policy(attempts=2, consecutive=3)
    with pytest.raises(rollback.InvalidInputError, match="deadline"):
        rollback.Policy(attempts=5, consecutive=3, interval=10, deadline=15)


def test_checks_that_cannot_run_are_refused_when_made() -> None:
    for kwargs, text in [
        ({"json_pointer": "status"}, '"/status"'),
        ({"method": "GE T"}, "not an HTTP method"),
        ({"headers": {"X Bad": "1"}}, "header name"),
        ({"timeout": 0}, "timeout is 0"),
    ]:
        with pytest.raises(rollback.InvalidInputError, match=text):
            rollback.HttpCheck("http://127.0.0.1:9/health", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(rollback.InvalidInputError, match="not a valid URL"):
        rollback.HttpCheck("http://")
    with pytest.raises(rollback.InvalidInputError, match="env key"):
        rollback.CommandCheck(["true"], env={"A=B": "x"})


def test_command_check_output_is_scrubbed_of_its_secrets(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("pin-from-the-vault")
    script = tmp_path / "smoke.sh"
    script.write_text('#!/bin/sh\necho "token $API_TOKEN key $SMOKE_KEY pin $(cat "$1")"\nexit 1\n')
    script.chmod(0o755)
    cmd = rollback.CommandCheck(
        [str(script), str(pin)],
        env={"API_TOKEN": "tok-123456"},
        secret_env={"SMOKE_KEY": "plain-named-secret"},
        secrets=["pin-from-the-vault"],
        policy=rollback.Policy.once(),
    )
    v = cmd.run()
    assert not v.passed
    assert "token <redacted> key <redacted> pin <redacted>" in v.evidence, v.evidence
    for secret in ["tok-123456", "plain-named-secret", "pin-from-the-vault"]:
        assert secret not in v.evidence + repr(cmd) + cmd.name, secret


def test_exception_tree() -> None:
    assert issubclass(rollback.NotFoundError, rollback.RollbackError)
    assert issubclass(rollback.NotFoundError, LookupError)
    assert issubclass(rollback.InvalidInputError, ValueError)
    assert issubclass(rollback.RollbackTimeoutError, TimeoutError)
    for cls in (
        rollback.ConflictError,
        rollback.LockedError,
        rollback.LeaseLostError,
        rollback.ThrottledError,
        rollback.VerificationError,
        rollback.RolloutError,
        rollback.BackendError,
        rollback.JournalError,
    ):
        assert issubclass(cls, rollback.RollbackError)
        assert issubclass(rollback.RollbackError, Exception)
    e = rollback.ThrottledError("slow down", target="memory/api")
    assert (e.kind, e.retryable, e.target, str(e)) == ("throttled", True, "memory/api", "slow down")
    assert rollback.NotFoundError("x").kind == "not_found" and not rollback.NotFoundError("x").retryable
    assert rollback.RolloutError("x").reason is None


# -- custom targets --------------------------------------------------------------------------


def test_custom_target_plan_and_dry_run_change_nothing() -> None:
    api = MemoryTarget("api", ["1", "2", "3"], "3")
    tx = rollback.Transaction("roll back api", reason="test")
    tx.add(api, rollback.Previous())
    plan = tx.run(dry_run=True)
    assert plan.outcome == "planned"
    (step,) = plan.steps
    assert step.target == "memory-py/api"
    assert step.from_revision is not None and step.from_revision.id == "3"
    assert step.to_revision is not None and step.to_revision.id == "2"
    assert step.status == "planned"
    assert "registry/api:v3 -> registry/api:v2" in str(step.diff)
    assert [e.section for e in step.diff.entries] == ["image", "description"]
    assert api.applied == [] and not any(c.startswith("apply") for c in api.calls)
    assert "journal: none (dry run" in str(plan)


def test_compensation_with_custom_targets_and_a_callable_check() -> None:
    api = MemoryTarget("api", ["1", "2", "3"], "3", converge=2)
    web = MemoryTarget("web", ["1", "2"], "2")
    looks: list[int] = []

    def web_healthy() -> bool:
        looks.append(1)
        return False

    events: list[rollback.Event] = []
    tx = (
        rollback.Transaction("roll back api and web", reason="INC-1: 5xx")
        .add(api, rollback.StepsBack(2))
        .stage()
        .add(web, rollback.Previous(), verify=rollback.Check(web_healthy, policy=FAST))
    )
    report = tx.run(on_event=events.append)
    assert report.outcome == "compensated", str(report)
    assert api.at == "3" and web.at == "2"
    assert api.applied == [("3", "1"), ("1", "3")]
    assert web.applied == [("2", "1"), ("1", "2")]
    assert len(looks) == 3
    statuses = {s.target: s.status for s in report.steps}
    assert statuses == {"memory-py/api": "compensated", "memory-py/web": "compensated"}
    web_step = report.steps[1]
    assert web_step.error_kind == "verification_failed"
    assert web_step.error is not None and "memory-py/web" in web_step.error
    assert web_step.verdicts[0].name == "test_compensation_with_custom_targets_and_a_callable_check.<locals>.web_healthy"
    assert not web_step.verdicts[0].passed and web_step.verdicts[0].attempts == 3
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    for k in ("planned", "locked", "applied", "waiting", "stable", "check_failed", "compensating", "compensated"):
        assert k in kinds, k
    assert all(isinstance(e.at, datetime.datetime) for e in events)
    assert {e.transaction for e in events} == {report.transaction}
    waiting = [e for e in events if e.kind == "waiting"]
    assert waiting and waiting[0].target == "memory-py/api"
    assert any("2 more look(s)" in e.message for e in waiting)
    # The journal records the run, line by line.
    journal = Path(report.journal_path)
    assert journal.exists()
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    assert len(lines) > 5


def test_success_with_checks_of_every_result_shape() -> None:
    api = MemoryTarget("api", ["1", "2"], "2")
    results: list[object] = [None, True, (True, "200 OK from /health"), 1]

    def returning(value: object) -> Callable[[], object]:
        return lambda: value

    checks = [rollback.Check(returning(r), name=f"check{i}", policy=FAST) for i, r in enumerate(results)]
    report = rollback.Transaction("ok", reason="r").add(api, rollback.Previous(), verify=checks).run()
    assert report.outcome == "succeeded", str(report)
    evidence = [v.evidence for v in report.steps[0].verdicts]
    assert evidence == ["check0: returned None", "check1: True", "check2: 200 OK from /health", "check3: returned a int (truthy)"]
    assert report.steps[0].status == "succeeded"
    assert isinstance(report.duration, datetime.timedelta)


def test_a_check_that_raises_fails_with_the_exception_as_evidence() -> None:
    def boom() -> bool:
        raise RuntimeError("the database is down")

    v = rollback.Check(boom, policy=FAST).run()
    assert not v and not v.passed and v.attempts == 3
    assert "RuntimeError: the database is down" in v.evidence


def test_apply_errors_fail_the_step_and_compensate_earlier_stages() -> None:
    api = MemoryTarget("api", ["1", "2"], "2")
    web = MemoryTarget("web", ["1", "2"], "2")
    web.fail_apply = ValueError("bad revision for web")
    report = rollback.Transaction("t", reason="r").add(api, rollback.Previous()).stage().add(web, rollback.Previous()).run()
    assert report.outcome == "compensated"
    assert api.at == "2"
    web_step = report.steps[1]
    assert web_step.status == "failed"
    assert web_step.error_kind == "invalid_input"
    assert web_step.error is not None and "ValueError: bad revision for web" in web_step.error


def test_a_target_changed_by_someone_else_is_a_conflict() -> None:
    web = MemoryTarget("web", ["1", "2", "3"], "3")

    class Meddler(MemoryTarget):
        def apply(self, change: rollback.Change) -> None:
            super().apply(change)
            web.at = "1"  # someone else deploys web meanwhile

    api = Meddler("api", ["1", "2"], "2")
    report = rollback.Transaction("t", reason="r").add(api, rollback.Previous()).stage().add(web, rollback.Previous()).run()
    assert report.outcome == "compensated", str(report)
    assert report.steps[1].error_kind == "conflict"
    assert "apply 3->2" not in web.calls  # never clobbered


def test_halt_policy_and_on_failure_actions() -> None:
    api = MemoryTarget("api", ["1", "2"], "2")
    ran: list[str] = []

    def maintenance_mode() -> str:
        ran.append("maintenance")
        return "maintenance page on"

    tx = rollback.Transaction("t", reason="r", policy="halt")
    tx.add(api, rollback.Previous(), verify=rollback.Check(lambda: False, policy=FAST))
    tx.on_failure(maintenance_mode).on_failure(lambda: None, name="page the on-call")
    report = tx.run()
    assert report.outcome == "failed"
    assert api.at == "1"  # left as it is
    assert ran == ["maintenance"]
    assert [(a.name, a.ok, a.message) for a in report.actions] == [
        ("test_halt_policy_and_on_failure_actions.<locals>.maintenance_mode", True, "maintenance page on"),
        ("page the on-call", True, "done"),
    ]
    assert report.needs_attention


def test_transaction_level_checks_and_allow_current() -> None:
    api = MemoryTarget("api", ["1", "2"], "1")
    tx = rollback.Transaction("t", reason="r").add(api, rollback.Exact("1"), allow_current=True).verify(lambda: True)
    report = tx.run()
    assert report.outcome == "succeeded"
    assert report.steps[0].status == "skipped"
    assert [v.passed for v in report.checks] == [True]
    with pytest.raises(rollback.InvalidInputError) as e:
        rollback.Transaction("t", reason="r").add(api, rollback.Exact("1")).run()
    assert "memory-py/api" in str(e.value)


def test_temporary_steps_are_put_back() -> None:
    stopped = MemoryTarget("workers", ["0", "2"], "2")
    db = MemoryTarget("db", ["1", "2"], "2")
    report = (
        rollback.Transaction("restore", reason="r")
        .add(stopped, rollback.Exact("0"), temporary=True, timeout=5)
        .stage()
        .add(db, rollback.Previous())
        .run()
    )
    assert report.outcome == "succeeded", str(report)
    assert stopped.applied == [("2", "0"), ("0", "2")]
    assert report.steps[0].status == "reverted"


def test_bad_input_raises_before_anything_changes() -> None:
    api = MemoryTarget("api", ["1", "2"], "2")
    with pytest.raises(rollback.NotFoundError) as nf:
        rollback.Transaction("t", reason="r").add(api, rollback.Exact("9")).run()
    assert "memory-py/api" in str(nf.value) and nf.value.target == "memory-py/api"
    with pytest.raises(LookupError):
        rollback.Transaction("t", reason="r").add(api, rollback.StepsBack(5)).run()
    with pytest.raises(rollback.InvalidInputError):
        rollback.Transaction("t", reason="r").add(api, rollback.StepsBack(0)).run()
    with pytest.raises(rollback.InvalidInputError, match="reason"):
        rollback.Transaction("t").add(api, rollback.Previous()).run()
    with pytest.raises(rollback.InvalidInputError, match="no steps"):
        rollback.Transaction("t", reason="r").run()
    with pytest.raises(rollback.InvalidInputError, match="two steps"):
        rollback.Transaction("t", reason="r").add(api, rollback.Previous()).add(api, rollback.Previous())
    with pytest.raises(rollback.InvalidInputError, match="policy"):
        rollback.Transaction("t", policy="yolo")
    with pytest.raises(rollback.InvalidInputError, match="concurrency"):
        rollback.Transaction("t", concurrency=0)
    with pytest.raises(rollback.InvalidInputError):
        rollback.Transaction(" ")
    with pytest.raises(TypeError, match="not a target"):
        rollback.Transaction("t").add(object(), rollback.Previous())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="selector"):
        rollback.Transaction("t").add(api, "previous")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="check"):
        rollback.Transaction("t").add(api, rollback.Previous(), verify=[42])  # type: ignore[list-item]
    assert api.applied == [] and not any(c.startswith("apply") for c in api.calls)


def test_custom_target_errors_keep_their_kind() -> None:
    class Missing(MemoryTarget):
        def history(self) -> list[rollback.Revision]:
            raise KeyError("no such service")

    t = Missing("gone", ["1"], "1")
    with pytest.raises(rollback.NotFoundError, match="memory-py/gone"):
        rollback.Transaction("t", reason="r").add(t, rollback.Previous()).run()

    class Throttled(MemoryTarget):
        tries = 0

        def current(self) -> rollback.Revision:
            Throttled.tries += 1
            if Throttled.tries < 3:
                raise rollback.ThrottledError("slow down")
            return super().current()

    t2 = Throttled("busy", ["1", "2"], "2")
    report = rollback.Transaction("t", reason="r").add(t2, rollback.Previous()).run()
    assert report.outcome == "succeeded"  # throttling is retried


def test_custom_target_with_resolve_and_str_revisions() -> None:
    class Restart:
        name = "api-restart"

        def __init__(self) -> None:
            self.at = "never"

        def current(self) -> str:
            return self.at

        def history(self) -> list[str]:
            return [self.at]

        def resolve(self, selector: rollback.Selector) -> str:
            assert isinstance(selector, rollback.Previous)
            return "restarted-1"

        def apply(self, change: rollback.Change) -> None:
            self.at = change.to_revision.id

        def wait(self, revision: rollback.Revision) -> None:
            return None

    r = Restart()
    report = rollback.Transaction("restart", reason="r").add(r, rollback.Previous()).run()
    assert report.outcome == "succeeded", str(report)
    assert r.at == "restarted-1"
    assert report.steps[0].target == "python/api-restart"


def test_resume_finishes_a_run_and_rebuilds_the_report(tmp_path: Path) -> None:
    api = MemoryTarget("api", ["1", "2"], "2")
    journal = tmp_path / "run.jsonl"
    report = rollback.Transaction("t", reason="r", journal=journal).add(api, rollback.Previous()).run()
    assert report.journal_path == journal
    again = rollback.resume(journal)
    assert again.outcome == "succeeded" and again.transaction == report.transaction

    async def resume_async() -> rollback.Report:
        return await rollback.resume_async(str(journal), on_event=print)

    assert asyncio.run(resume_async()).transaction == report.transaction
    with pytest.raises(rollback.InvalidInputError, match="already holds a run"):
        rollback.Transaction("t", reason="r", journal=journal).add(api, rollback.Previous()).run()
    with pytest.raises(rollback.JournalError):
        rollback.resume(tmp_path / "missing.jsonl")


def test_ctrl_c_stops_a_blocking_run_and_resume_finishes_it(tmp_path: Path) -> None:
    api = MemoryTarget("api", ["1", "2"], "2", converge=10**9)  # never stable by itself
    journal = tmp_path / "interrupted.jsonl"
    tx = rollback.Transaction("slow", reason="r", journal=journal).add(api, rollback.Previous(), timeout=600)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt) as e:
        tx.run(on_event=interrupt_when_waiting)  # as if Ctrl-C were pressed then
    assert time.monotonic() - start < 10
    notes = getattr(e.value, "__notes__", [])
    assert any("rollback.resume(" in n and str(journal) in n for n in notes), notes
    assert api.at == "1"
    api.converge = 0
    api._pending = 0
    report = rollback.resume(journal, targets=[api])
    assert report.outcome == "succeeded", str(report)
    assert api.at == "1"
    with pytest.raises(rollback.InvalidInputError, match="Python target"):
        rollback.resume(_interrupted_journal(tmp_path))


def test_resume_locks_where_the_run_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = MemoryTarget("api", ["1", "2"], "2", converge=10**9)
    journal = tmp_path / "interrupted.jsonl"
    run_locks, elsewhere = tmp_path / "run-locks", tmp_path / "elsewhere"
    tx = rollback.Transaction("slow", reason="r", journal=journal, locks_dir=run_locks)
    with pytest.raises(KeyboardInterrupt):
        tx.add(api, rollback.Previous(), timeout=600).run(on_event=interrupt_when_waiting)
    leases = list(run_locks.glob("*.lease"))
    assert len(leases) == 1 and leases[0].read_text().strip(), "the interrupted run holds its lease"
    # Another environment: the default lock folder is elsewhere, and no locks_dir is given.
    monkeypatch.setenv("ROLLBACK_LOCK_DIR", str(elsewhere))
    api.converge = 0
    api._pending = 0
    report = rollback.resume(journal, targets=[api])
    assert report.outcome == "succeeded", str(report)
    # Given back: the file keeps only the token, so the next holder's grows.
    assert "holder" not in json.loads(leases[0].read_text()), "resume took and gave back the run's own lease"
    assert not elsewhere.exists() or not list(elsewhere.glob("*.lease"))


def _interrupted_journal(tmp_path: Path) -> Path:
    """A journal of a run stopped by Ctrl-C, whose target is not given to resume."""
    t = MemoryTarget("other", ["1", "2"], "2", converge=10**9)
    journal = tmp_path / "other.jsonl"
    with pytest.raises(KeyboardInterrupt):
        rollback.Transaction("slow", reason="r", journal=journal).add(t, rollback.Previous()).run(on_event=interrupt_when_waiting)
    return journal


def interrupt_when_waiting(e: rollback.Event) -> None:
    """Sends the main thread one KeyboardInterrupt, as Ctrl-C does, when the run first waits."""
    if e.kind == "waiting" and e.message.startswith("waiting up to"):
        _thread.interrupt_main()


def test_a_locked_target_raises_locked_error(tmp_path: Path) -> None:
    api = MemoryTarget("api", ["1", "2"], "2", converge=10**9)
    holder_started = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            rollback.Transaction("first", reason="r", holder="alice@bastion").add(api, rollback.Previous(), timeout=2).run(
                on_event=lambda e: holder_started.set() if e.kind == "locked" else None
            )
        except BaseException as e:  # pragma: no cover
            errors.append(e)

    th = threading.Thread(target=hold)
    th.start()
    assert holder_started.wait(10)
    other = MemoryTarget("api", ["1", "2"], "1")
    with pytest.raises(rollback.LockedError) as e:
        rollback.Transaction("second", reason="r").add(other, rollback.Exact("2")).run()
    assert "alice@bastion" in str(e.value) and e.value.target == "memory-py/api"
    th.join(30)
    assert not errors


def test_blocking_calls_release_the_gil() -> None:
    api = MemoryTarget("api", ["1", "2"], "2", converge=5)
    ticks = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.001)

    th = threading.Thread(target=spin)
    th.start()
    try:
        rollback.Transaction("t", reason="r").add(api, rollback.Previous()).run()
    finally:
        stop.set()
        th.join()
    assert ticks[0] > 10


# -- asyncio -----------------------------------------------------------------------------------


def test_run_async_with_async_custom_target_and_async_check() -> None:
    class AsyncTarget:
        name = "async-api"

        def __init__(self) -> None:
            self.at = "2"
            self.loop_threads: set[int] = set()

        async def current(self) -> rollback.Revision:
            self.loop_threads.add(threading.get_ident())
            await asyncio.sleep(0)
            return rollback.Revision(self.at)

        async def history(self) -> list[rollback.Revision]:
            return [rollback.Revision("2"), rollback.Revision("1")]

        async def apply(self, change: rollback.Change) -> None:
            await asyncio.sleep(0.01)
            self.at = change.to_revision.id

        async def wait(self, revision: rollback.Revision) -> bool:
            return self.at == revision.id

    async def healthy() -> bool:
        await asyncio.sleep(0.01)
        return True

    t = AsyncTarget()

    async def main() -> tuple[rollback.Report, list[str], set[int], int]:
        events: list[str] = []
        tx = rollback.Transaction("async", reason="r").add(t, rollback.Previous(), verify=[healthy])
        report = await tx.run_async(on_event=lambda e: events.append(f"{threading.get_ident()} {e.kind}"))
        return report, events, t.loop_threads, threading.get_ident()

    report, events, threads, loop_thread = asyncio.run(main())
    assert report.outcome == "succeeded", str(report)
    assert t.at == "1"
    assert threads == {loop_thread}  # coroutines ran on the caller's loop
    assert {int(e.split()[0]) for e in events} == {loop_thread}  # so did the events
    assert events[-1].endswith("finished")
    # Under a blocking run, coroutines run to completion on the library's threads.
    t2 = AsyncTarget()
    report = rollback.Transaction("async-blocking", reason="r").add(t2, rollback.Previous(), verify=[healthy]).run()
    assert report.outcome == "succeeded" and t2.at == "1"


def test_async_twins_and_concurrent_runs() -> None:
    targets = [MemoryTarget(f"svc{i}", ["1", "2"], "2", converge=2) for i in range(4)]

    async def main() -> list[rollback.Report]:
        checks = [rollback.Check(lambda: True, policy=FAST)]
        verdict = await checks[0].run_async()
        assert verdict.passed
        txs = [rollback.Transaction(f"t{i}", reason="r").add(t, rollback.Previous()) for i, t in enumerate(targets)]
        return list(await asyncio.gather(*(tx.run_async() for tx in txs)))

    reports = asyncio.run(main())
    assert [r.outcome for r in reports] == ["succeeded"] * 4
    assert all(t.at == "1" for t in targets)


def test_async_errors_raise_in_the_awaiting_coroutine() -> None:
    api = MemoryTarget("api", ["1", "2"], "2")

    async def main() -> None:
        await rollback.Transaction("t", reason="r").add(api, rollback.Exact("nope")).run_async()

    with pytest.raises(rollback.NotFoundError, match="nope"):
        asyncio.run(main())


def test_async_calls_are_coroutines_that_need_no_loop_until_awaited() -> None:
    api = MemoryTarget("api", ["1", "2"], "2")
    tx = rollback.Transaction("t", reason="r").add(api, rollback.Previous())
    # Made outside any event loop (the first line of every asyncio tutorial), nothing runs yet.
    pending = tx.run_async()
    assert inspect.iscoroutine(pending) and api.calls == []
    report = asyncio.run(pending)
    assert report.outcome == "succeeded" and api.at == "1"
    # A coroutine never awaited starts nothing.
    other = MemoryTarget("other", ["1", "2"], "2")
    never = rollback.Transaction("never", reason="r").add(other, rollback.Previous()).run_async()
    never.close()
    assert other.calls == [] and other.at == "2"
    # Every *_async twin is one; a coroutine is awaited once.
    first, second = MemoryTarget("a", ["1", "2"], "2"), MemoryTarget("b", ["1", "2"], "2")
    check = rollback.Check(lambda: True).run_async()
    assert inspect.iscoroutine(check)
    check.close()

    async def main() -> list[rollback.Report]:
        coros = [rollback.Transaction(f"g{i}", reason="r").add(t, rollback.Previous()).run_async() for i, t in enumerate((first, second))]
        return list(await asyncio.gather(*coros))

    assert [r.outcome for r in asyncio.run(main())] == ["succeeded", "succeeded"]
    assert (first.at, second.at) == ("1", "1")


def test_coroutines_under_anyio_on_asyncio() -> None:
    import anyio  # in rollback-py/requirements-dev.txt

    targets = [MemoryTarget(f"svc{i}", ["1", "2"], "2", converge=1) for i in range(3)]
    reports: list[rollback.Report] = []

    async def one(t: MemoryTarget) -> None:
        reports.append(await rollback.Transaction(t.name, reason="r").add(t, rollback.Previous()).run_async())

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            for t in targets:
                tg.start_soon(one, t)
        with anyio.move_on_after(0.2) as scope:  # anyio's cancellation reaches the run too
            stuck = MemoryTarget("stuck", ["1", "2"], "2", converge=10**9)
            await rollback.Transaction("stuck", reason="r").add(stuck, rollback.Previous()).run_async()
        assert scope.cancelled_caught

    anyio.run(main, backend="asyncio")
    assert sorted(r.outcome for r in reports) == ["succeeded"] * 3
    assert all(t.at == "1" for t in targets)


def test_wait_for_timeout_cancels_the_run_and_its_lease_renewal(tmp_path: Path) -> None:
    api = MemoryTarget("api", ["1", "2"], "2", converge=10**9)  # never stable
    journal = tmp_path / "cancelled.jsonl"
    locks = tmp_path / "locks"

    async def main() -> None:
        waiting = asyncio.Event()

        def on_event(e: rollback.Event) -> None:
            if e.kind == "waiting":
                waiting.set()

        run = rollback.Transaction("t", reason="r", journal=journal, locks_dir=locks, lease_ttl=1).add(api, rollback.Previous(), timeout=600)
        task = asyncio.ensure_future(run.run_async(on_event=on_event))
        await waiting.wait()  # applied, waiting for stability
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # asyncio.wait_for: the same through a timeout.
        other = MemoryTarget("other", ["1", "2"], "2", converge=10**9)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(rollback.Transaction("w", reason="r", locks_dir=locks).add(other, rollback.Previous()).run_async(), timeout=0.5)
        assert other.applied == [("2", "1")]

    asyncio.run(main())
    assert api.applied == [("2", "1")]
    # The lease is no longer renewed: once its TTL has passed another transaction takes it
    # (polled, bounded); had the cancelled run gone on renewing, it would stay locked.
    api.converge = 0
    api._pending = 0
    deadline = time.monotonic() + 20
    while True:
        try:
            report = rollback.Transaction("next", reason="r", locks_dir=locks, lease_ttl=1).add(api, rollback.Exact("2")).run()
            break
        except rollback.LockedError:
            assert time.monotonic() < deadline, "the cancelled run's lease is still renewed"
            time.sleep(0.1)  # the poll's interval
    assert report.outcome == "succeeded" and api.at == "2"
    assert journal.exists()  # the cancelled run is journaled, to be resumed


def test_event_callback_errors_do_not_stop_the_run() -> None:
    api = MemoryTarget("api", ["1", "2"], "2")
    seen: list[str] = []
    old = sys.unraisablehook
    sys.unraisablehook = lambda u: seen.append(str(u.exc_value))
    try:

        def bad(e: rollback.Event) -> None:
            raise RuntimeError("printer on fire")

        report = rollback.Transaction("t", reason="r").add(api, rollback.Previous()).run(on_event=bad)
    finally:
        sys.unraisablehook = old
    assert report.outcome == "succeeded"
    assert seen and "printer on fire" in seen[0]


def test_reports_and_events_are_plain_objects() -> None:
    api = MemoryTarget("api", ["1", "2"], "2")
    events: list[rollback.Event] = []
    report = rollback.Transaction("t", reason="why", concurrency=2).add(api, rollback.Previous()).run(on_event=events.append)
    assert report.name == "t" and report.reason == "why"
    assert isinstance(report.started_at, datetime.datetime)
    assert report.needs_attention == [] and report.error is None and report.actions == []
    assert repr(report).startswith('<Report "t": succeeded')
    assert str(events[0]).startswith("[started]")
    assert "memory-py/api" in repr(report.steps[0])
    with pytest.raises(TypeError):
        pickle.dumps(report)


def test_compensation_deadline_bounds_the_retries_of_putting_back(tmp_path: Path) -> None:
    api = MemoryTarget("api", ["1", "2"], "2")

    def breaks_the_target() -> bool:
        # From now on every apply (the compensation's) fails with a retryable error.
        api.fail_apply = ConnectionError("connection reset by peer")
        return False

    check = rollback.Check(breaks_the_target, name="breaks", policy=rollback.Policy.once())
    tx = rollback.Transaction("t", reason="r", journal=tmp_path / "j.jsonl", compensation_deadline=0.5)
    start = time.monotonic()
    report = tx.add(api, rollback.Previous(), verify=check).run()
    assert report.outcome == "failed", str(report)
    assert any("by hand" in a for a in report.needs_attention), str(report)
    put_backs = [c for c in api.calls if c == "apply 1->2"]
    assert len(put_backs) >= 2, api.calls  # retried, not given up at the first error
    assert time.monotonic() - start < 30
    with pytest.raises(rollback.InvalidInputError, match="compensation_deadline"):
        rollback.Transaction("t", compensation_deadline=-1)


def test_last_known_good_picks_what_a_checked_run_verified(tmp_path: Path) -> None:
    kg = tmp_path / "known-good"
    api = MemoryTarget("api", ["13", "14", "15"], "15")
    none = rollback.Transaction("none", reason="r", journal=tmp_path / "0.jsonl", known_good_dir=kg)
    with pytest.raises(rollback.NotFoundError, match="verified healthy"):
        none.add(api, rollback.LastKnownGood()).run(dry_run=True)
    ok = rollback.Check(lambda: True, name="health", policy=FAST)
    first = rollback.Transaction("first", reason="r", journal=tmp_path / "1.jsonl", known_good_dir=kg)
    assert first.add(api, rollback.Previous(), verify=[ok]).run().outcome == "succeeded"
    api.ids.append("16")
    api.at = "16"
    second = rollback.Transaction("second", reason="r", journal=tmp_path / "2.jsonl", known_good_dir=kg)
    report = second.add(api, rollback.LastKnownGood()).run()
    assert report.outcome == "succeeded", str(report)
    assert api.at == "14"
    step = report.steps[0]
    assert step.origin is not None and "health" in step.origin and "last known good" in step.origin
    assert repr(rollback.LastKnownGood()) == "LastKnownGood()"
    assert rollback.LastKnownGood() == rollback.LastKnownGood()


def test_command_target_runs_the_users_commands(tmp_path: Path) -> None:
    """A target from your own commands (the JSON contract): rolled back, verified by its
    stable command, and a failing command raises a typed error without its secret."""
    state = tmp_path / "state"
    state.write_text("v2")
    script = tmp_path / "deployer.py"
    script.write_text(
        "import json, os, sys\n"
        "state = os.environ['STATE']\n"
        "op = sys.argv[1]\n"
        "if op == 'current':\n"
        "    print(json.dumps({'id': open(state).read()}))\n"
        "elif op == 'history':\n"
        "    print(json.dumps([{'id': 'v2'}, {'id': 'v1'}]))\n"
        "elif op == 'apply':\n"
        "    open(state, 'w').write(os.environ['ROLLBACK_TO_ID'])\n"
        "elif op == 'stable':\n"
        "    print(json.dumps({'state': 'stable'}))\n"
        "elif op == 'fail':\n"
        "    print('password=' + os.environ['TOKEN'], file=sys.stderr)\n"
        "    sys.exit(3)\n"
    )
    py = [sys.executable, str(script)]
    target = rollback.CommandTarget(
        "infra",
        current=[*py, "current"],
        history=[*py, "history"],
        apply=[*py, "apply"],
        stable=[*py, "stable"],
        env={"STATE": str(state)},
        timeout=30,
    )
    assert target.name == "infra" and target.target_id == "command/infra"
    assert [r.id for r in target.history()] == ["v2", "v1"]
    report = rollback.Transaction("infra back", reason="r").add(target, rollback.Previous()).run()
    assert report.outcome == "succeeded", str(report)
    assert state.read_text() == "v1"

    failing = rollback.CommandTarget(
        "broken",
        current=[*py, "fail"],
        history=[*py, "history"],
        apply=[*py, "apply"],
        env={"STATE": str(state)},
        secret_env={"TOKEN": "hunter2-token"},
    )
    with pytest.raises(rollback.RollbackError) as err:
        failing.current()
    assert "hunter2-token" not in str(err.value) and "command/broken" in str(err.value)
    with pytest.raises(rollback.InvalidInputError):
        rollback.CommandTarget("x", current=[], history=[*py, "history"], apply=[*py, "apply"])
