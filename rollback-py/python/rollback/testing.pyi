"""Unit-testing your rollback logic without AWS or a cluster: an in-memory target with
injectable faults, fake checks, an event recorder, assertions on reports, the conformance
suite for your own targets, and pytest fixtures (``rollback_memory_target``,
``rollback_recorder``, ``rollback_state_dir``)."""

from collections.abc import Coroutine, Iterable, Sequence
from typing import Literal, final

from . import Check, Event, Policy, Report, Revision, Seconds, Target

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

QUICK: Policy

@final
class InMemoryTarget(Target):
    """A target in memory: ``revisions`` oldest first (ids or :class:`Revision`), the last
    in use unless ``current`` names another; after a change it converges for
    ``convergence`` seconds. It behaves as the real backends do (idempotent apply,
    conflicts, stability waits) and records what was done to it."""

    def __new__(
        cls,
        name: str,
        revisions: Sequence[str | Revision],
        *,
        current: str | None = None,
        convergence: Seconds | None = None,
    ) -> InMemoryTarget: ...
    @property
    def name(self) -> str: ...
    @property
    def current_id(self) -> str:
        """The revision in use (not counted in :attr:`calls`)."""
    @property
    def applied(self) -> list[tuple[str, str]]:
        """Every real change ``apply`` made, as ``(from, to)`` ids, in order."""
    @property
    def apply_count(self) -> int: ...
    @property
    def calls(self) -> list[str]:
        """The methods the library called: ``current``, ``history``, ``resolve``, ``plan``,
        ``apply``, ``check_stable``."""
    def deploy(self, revision: str | Revision) -> None:
        """Makes ``revision`` the newest and the one in use (the scene before a rollback)."""
    def set_current(self, id: str) -> None:
        """Puts the target at revision ``id``, as if someone else moved it."""
    def fail_next_applies(self, n: int | None = None, kind: Literal["throttled", "transient", "5xx", "permanent", "conflict"] = "transient") -> None:
        """The next ``n`` (default 1) applies fail with ``kind``."""
    def fail_rollout(self, id: str, message: str = "the rollout failed (injected)") -> None:
        """A rollout to revision ``id`` fails."""
    def never_stable(self, id: str) -> None:
        """Revision ``id`` never becomes stable."""
    def set_healthy(self, id: str, healthy: bool = True) -> None:
        """Whether revision ``id`` is healthy for :meth:`health_check`."""
    def clear_faults(self) -> None: ...
    def health_check(self, *, policy: Policy | None = None) -> Check:
        """A check passing when the revision in use is healthy."""

@final
class ConformanceReport:
    """What :func:`conformance` found; true when every check passed."""

    @property
    def passed(self) -> list[str]: ...
    @property
    def failures(self) -> list[str]: ...
    @property
    def ok(self) -> bool: ...
    def __bool__(self) -> bool: ...

def conformance(
    target: object,
    *,
    unknown_revision: str = ...,  # "does-not-exist-0"
    secret_canary: str | None = None,
    stable_timeout: Seconds = ...,  # 60 s
    may_mutate: bool = True,
) -> ConformanceReport:
    """The conformance suite every built-in target passes, run on ``target`` (yours too)."""

def conformance_async(
    target: object,
    *,
    unknown_revision: str = ...,  # "does-not-exist-0"
    secret_canary: str | None = None,
    stable_timeout: Seconds = ...,  # 60 s
    may_mutate: bool = True,
) -> Coroutine[object, None, ConformanceReport]: ...
def assert_conformance(
    target: object,
    *,
    unknown_revision: str = "does-not-exist-0",
    secret_canary: str | None = None,
    stable_timeout: float = 60.0,
    may_mutate: bool = True,
) -> ConformanceReport:
    """:func:`conformance`, raising ``AssertionError`` listing the failures."""

def passes_after(n: int, *, name: str = "passes after", policy: Policy | None = None) -> Check:
    """Fails the first ``n`` attempts, then passes."""

def always_fails(message: str = "the check failed (fake)", *, name: str = "always fails", policy: Policy | None = None) -> Check: ...
def flaky(pattern: Iterable[bool], *, then: bool = True, name: str = "flaky", policy: Policy | None = None) -> Check:
    """Attempts give ``pattern`` in order, then ``then``."""

class Recorder:
    """An ``on_event`` callable keeping every event."""

    events: list[Event]
    def __init__(self) -> None: ...
    def __call__(self, event: Event) -> None: ...
    @property
    def kinds(self) -> list[str]: ...
    def of(self, kind: str, target: str | None = None) -> list[Event]: ...
    def clear(self) -> None: ...

def assert_succeeded(report: Report, *, statuses: Sequence[str] | None = None) -> None: ...
def assert_compensated(report: Report, *, error_kind: str | None = None) -> None: ...
def assert_failed(report: Report) -> None: ...
def assert_planned(report: Report) -> None: ...
def assert_unchanged(*targets: InMemoryTarget) -> None: ...
