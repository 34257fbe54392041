"""Unit-testing your rollback logic without AWS or a cluster.

- :class:`InMemoryTarget`: a target in memory with history, an optional convergence delay
  and injectable faults (throttling, 5xx, 4xx, conflicts, failed rollouts, revisions that
  never stabilise, unhealthy revisions); it behaves as the real backends do and records
  what was done to it.
- Fake checks: :func:`passes_after`, :func:`always_fails`, :func:`flaky`.
- :class:`Recorder`: an ``on_event`` callable that keeps every event.
- Assertions on reports: :func:`assert_succeeded`, :func:`assert_compensated`,
  :func:`assert_failed`, :func:`assert_planned`, :func:`assert_unchanged`.
- :func:`conformance` / :func:`assert_conformance`: the suite every built-in target passes,
  run on yours (a Python class with ``current``, ``history``, ``apply`` and ``wait``).
- pytest fixtures (``rollback_memory_target``, ``rollback_recorder``,
  ``rollback_state_dir``), available once the package is installed (the ``pytest11``
  entry point ``rollback.pytest_plugin``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

from . import Check, Event, Policy, Report
from ._rollback import ConformanceReport, InMemoryTarget, conformance, conformance_async

__all__ = [
    "InMemoryTarget",
    "ConformanceReport",
    "conformance",
    "conformance_async",
    "assert_conformance",
    "passes_after",
    "always_fails",
    "flaky",
    "Recorder",
    "assert_succeeded",
    "assert_compensated",
    "assert_failed",
    "assert_planned",
    "assert_unchanged",
]

# Fake checks retry at once by default, so a test does not wait for back-off.
QUICK = Policy(attempts=10, interval=0.0)


class _Counted:
    def __init__(self, results: Sequence[bool], then: bool, what: str) -> None:
        self.results = list(results)
        self.then = then
        self.what = what
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self) -> tuple[bool, str]:
        with self.lock:
            i = self.calls
            self.calls += 1
        passed = self.results[i] if i < len(self.results) else self.then
        return passed, f"{self.what}: attempt {i + 1} {'passed' if passed else 'failed'}"


def passes_after(n: int, *, name: str = "passes after", policy: Policy | None = None) -> Check:
    """A check that fails its first ``n`` attempts and passes from then on."""
    if n < 0:
        raise ValueError(f"passes_after(n={n}): give zero or more failing attempts")
    return Check(_Counted([False] * n, True, f"{name} {n}"), name=name, policy=policy or QUICK)


def always_fails(message: str = "the check failed (fake)", *, name: str = "always fails", policy: Policy | None = None) -> Check:
    """A check that never passes; its evidence is ``message``."""
    return Check(lambda: (False, message), name=name, policy=policy or QUICK)


def flaky(pattern: Iterable[bool], *, then: bool = True, name: str = "flaky", policy: Policy | None = None) -> Check:
    """A check whose attempts give ``pattern`` in order (``[True, False, True]``), then
    ``then`` for every attempt after it."""
    results = [bool(p) for p in pattern]
    return Check(_Counted(results, then, name), name=name, policy=policy or QUICK)


class Recorder:
    """An ``on_event`` callable keeping every event, for assertions on what a run did."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)

    @property
    def kinds(self) -> list[str]:
        """The events' kinds, in order (``started``, ``planned``, ``locked``, ...)."""
        return [e.kind for e in self.events]

    def of(self, kind: str, target: str | None = None) -> list[Event]:
        """The events of ``kind`` (about ``target``, ``kind/name``, when given)."""
        return [e for e in self.events if e.kind == kind and (target is None or e.target == target)]

    def clear(self) -> None:
        with self._lock:
            self.events.clear()


def _expect(report: Report, outcome: str, statuses: Sequence[str] | None) -> None:
    if report.outcome != outcome:
        raise AssertionError(f"expected the run to be {outcome}, it was {report.outcome}:\n{report}")
    if statuses is not None:
        got = [s.status for s in report.steps]
        if got != list(statuses):
            raise AssertionError(f"expected step statuses {list(statuses)}, got {got}:\n{report}")


def assert_succeeded(report: Report, *, statuses: Sequence[str] | None = None) -> None:
    """The run succeeded (and, when given, its steps ended with ``statuses``)."""
    _expect(report, "succeeded", statuses)


def assert_compensated(report: Report, *, error_kind: str | None = None) -> None:
    """Something failed and everything applied was put back: the outcome is
    ``compensated``, no step is left applied or failed to compensate, nothing needs a
    person; with ``error_kind``, the failing step's error kind is that
    (``verification_failed``, ``rollout_failed``, ``backend``, ...)."""
    _expect(report, "compensated", None)
    left = [f"{s.target}: {s.status}" for s in report.steps if s.status in ("applied", "succeeded", "compensation_failed")]
    if left:
        raise AssertionError(f"steps not put back: {left}:\n{report}")
    if report.needs_attention:
        raise AssertionError(f"compensated but needs attention: {report.needs_attention}")
    if error_kind is not None:
        kinds = {s.error_kind for s in report.steps if s.error_kind}
        verdicts = list(report.checks) + [v for s in report.steps for v in s.verdicts]
        if any(not v.passed for v in verdicts):
            kinds.add("verification_failed")
        if error_kind not in kinds and error_kind not in str(report.error or ""):
            raise AssertionError(f"expected a {error_kind} error, got {sorted(kinds) or report.error}:\n{report}")


def assert_failed(report: Report) -> None:
    """The run failed and says what needs a person."""
    _expect(report, "failed", None)
    if not report.needs_attention:
        raise AssertionError(f"a failed run must say what needs a person:\n{report}")


def assert_planned(report: Report) -> None:
    """A dry run: planned, every step ``planned``, nothing applied."""
    _expect(report, "planned", None)
    bad = [f"{s.target}: {s.status}" for s in report.steps if s.status != "planned"]
    if bad:
        raise AssertionError(f"a dry run changed something: {bad}")


def assert_unchanged(*targets: InMemoryTarget) -> None:
    """No real change was applied to any of ``targets`` (compensation included)."""
    changed = {t.name: t.applied for t in targets if t.applied}
    if changed:
        raise AssertionError(f"targets changed: {changed}")


def assert_conformance(
    target: object,
    *,
    unknown_revision: str = "does-not-exist-0",
    secret_canary: str | None = None,
    stable_timeout: float = 60.0,
    may_mutate: bool = True,
) -> ConformanceReport:
    """:func:`conformance`, raising ``AssertionError`` with every failure when one fails."""
    report = conformance(
        target, unknown_revision=unknown_revision, secret_canary=secret_canary, stable_timeout=stable_timeout, may_mutate=may_mutate
    )
    if not report.ok:
        raise AssertionError(str(report))
    return report
