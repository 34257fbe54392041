"""rollback: deployment rollbacks as reviewed, verified, compensable transactions.

A *target* is one thing with revisions (a Lambda alias, an ECS service, a secret, an RDS
instance, a Kubernetes Deployment...; see :mod:`rollback.aws` and :mod:`rollback.k8s`, or
any object with ``current``, ``history``, ``apply`` and ``wait`` methods). A
:class:`Transaction` moves targets to the revisions *selectors* pick, stage by stage:
preflight with no change (a dry run stops there), lock, apply, wait until stable, verify,
and on failure put everything back. Every run is journaled; :func:`resume` finishes one
whose process died.

Blocking calls release the GIL and stop on Ctrl-C; every one has an ``*_async`` twin that
returns a coroutine run on the library's runtime. What the library logs goes to
:mod:`logging` under the logger ``rollback`` (children by Rust module; see the README).
"""

import datetime
import os
import pathlib
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Literal, Protocol, final

from typing_extensions import Self, TypeAlias, disjoint_base

from . import aws as aws
from . import k8s as k8s
from . import metrics as metrics
from ._errors import BackendError as BackendError
from ._errors import ConflictError as ConflictError
from ._errors import InvalidInputError as InvalidInputError
from ._errors import JournalError as JournalError
from ._errors import PermissionDeniedError as PermissionDeniedError
from ._errors import LeaseLostError as LeaseLostError
from ._errors import LockedError as LockedError
from ._errors import NotFoundError as NotFoundError
from ._errors import RollbackError as RollbackError
from ._errors import RollbackTimeoutError as RollbackTimeoutError
from ._errors import RolloutError as RolloutError
from ._errors import ThrottledError as ThrottledError
from ._errors import VerificationError as VerificationError

# Mirrors __init__.py's list (and _errors.__all__, which mypy does not follow through
# `__all__ +=` in a stub); stubtest (tests/test_typing.py) keeps them equal.
__all__ = [
    "__version__",
    "aws",
    "k8s",
    "metrics",
    # selectors
    "Selector",
    "Previous",
    "Exact",
    "StepsBack",
    "ImageTag",
    "LastKnownGood",
    # data
    "Revision",
    "Change",
    "Diff",
    "DiffEntry",
    "Event",
    "Report",
    "StepReport",
    "ActionReport",
    "Verdict",
    "Policy",
    # targets, checks, transactions
    "Seconds",
    "Target",
    "CustomTarget",
    "TargetLike",
    "CheckLike",
    "Check",
    "HttpCheck",
    "CommandCheck",
    "CommandTarget",
    "Transaction",
    "Action",
    "Webhook",
    "Runbook",
    "Drill",
    "resume",
    "resume_async",
    "Locks",
    "KnownGoodStore",
    "JournalStore",
    "resume_from_store",
    "resume_from_store_async",
    # errors
    "RollbackError",
    "NotFoundError",
    "InvalidInputError",
    "ConflictError",
    "LeaseLostError",
    "LockedError",
    "ThrottledError",
    "RollbackTimeoutError",
    "VerificationError",
    "RolloutError",
    "BackendError",
    "JournalError",
    "PermissionDeniedError",
]

__version__: str
"""The package version (the Rust workspace's)."""

Seconds: TypeAlias = float | datetime.timedelta
"""A duration: seconds (int or float) or a ``datetime.timedelta``; never negative, at most
366 days (:class:`InvalidInputError` otherwise).

Every ``int`` parameter of the API takes any Python int: one out of its range (negative,
or too large for the library, e.g. ``StepsBack(2**70)``) raises :class:`InvalidInputError`
saying the range, never ``OverflowError``."""

# -- selectors ------------------------------------------------------------------------------

@disjoint_base
class Selector:
    """Which revision to roll back to. Use a subclass: :class:`Previous`, :class:`Exact`,
    :class:`StepsBack` or :class:`ImageTag`. Selectors compare and hash by value."""

    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Previous(Selector):
    """The revision before the one in use (not "newest minus one": a target moved back
    before goes one further back)."""

    def __new__(cls) -> Self: ...

@final
class Exact(Selector):
    """The revision with this id: Lambda ``"7"``, ECS ``"family:14"`` (also ``"14"`` or the
    ARN), a secret version id, an RDS snapshot id (or an RFC 3339 time, or ``"latest"``),
    Kubernetes ``"3"``; a number may be given as an int (``Exact(2)`` is ``Exact("2")``).
    Raises :class:`InvalidInputError` for an empty id or a negative or too large int."""

    def __new__(cls, id: str | int) -> Self: ...
    @property
    def id(self) -> str:
        """The revision id."""

@final
class StepsBack(Selector):
    """The revision ``n`` steps before the one in use (``StepsBack(1)`` is ``Previous()``).
    A negative or too large ``n`` raises :class:`InvalidInputError`; ``0`` is refused by
    the plan."""

    def __new__(cls, n: int) -> Self: ...
    @property
    def n(self) -> int:
        """How many steps back."""

@final
class ImageTag(Selector):
    """The newest revision whose images carry this tag (``abc123`` in
    ``registry/api:abc123``), matched on the images, not on ids or ARNs."""

    def __new__(cls, tag: str) -> Self: ...
    @property
    def tag(self) -> str:
        """The tag."""

@final
class LastKnownGood(Selector):
    """The newest revision a past transaction verified healthy (it succeeded and its checks
    passed), from the known-good records (``known_good_dir`` of :class:`Transaction`); an
    error (:class:`NotFoundError`) when there is none, never another revision."""

    def __new__(cls) -> Self: ...

# -- revisions, changes, diffs --------------------------------------------------------------

@final
class Revision:
    """One revision of a target: the backend's id, when it was made, and the facts a person
    needs to choose. Never a secret value. Custom targets build them (or return plain str
    ids)."""

    def __new__(
        cls,
        id: str,
        *,
        created_at: datetime.datetime | None = None,
        images: Sequence[str] = ...,
        description: str | None = None,
        env_keys: Sequence[str] = ...,
        facts: dict[str, str] | None = None,
    ) -> Self: ...
    @property
    def id(self) -> str:
        """The backend's id: Lambda ``"7"``, ECS ``"family:14"``, a secret version id, a
        snapshot id, Kubernetes ``"3"``."""
    @property
    def created_at(self) -> datetime.datetime | None:
        """When it was made (timezone-aware, UTC), if the backend says."""
    @property
    def images(self) -> list[str]:
        """Container images, in order."""
    @property
    def env_keys(self) -> list[str]:
        """Names of environment variables (never their values)."""
    @property
    def description(self) -> str | None:
        """Description or change-cause."""
    @property
    def facts(self) -> dict[str, str]:
        """Other facts: Lambda canary weights (``canary``), secret stages (``stages``),
        snapshot type..."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class DiffEntry:
    """One line of a diff. Values of secret-looking keys read ``<redacted>``."""

    @property
    def section(self) -> str:
        """``image``, ``env``, ``fact`` or ``description``."""
    @property
    def key(self) -> str:
        """What changed."""
    @property
    def from_value(self) -> str | None:
        """Before (``None`` when added)."""
    @property
    def to_value(self) -> str | None:
        """After (``None`` when removed)."""

@final
class Diff:
    """What a change changes, for review; ``str()`` is the text a person reads."""

    @property
    def entries(self) -> list[DiffEntry]:
        """The entries, by section and key."""
    def __len__(self) -> int: ...
    def __bool__(self) -> bool: ...

@final
class Change:
    """A planned change of one target; ``str()`` shows it with its diff."""

    @property
    def target(self) -> str:
        """The target, ``kind/name``."""
    @property
    def from_revision(self) -> Revision:
        """The revision in use."""
    @property
    def to_revision(self) -> Revision:
        """The revision chosen."""
    @property
    def diff(self) -> Diff:
        """What changes."""
    @property
    def is_noop(self) -> bool:
        """Whether the target already is at the revision chosen."""

# -- targets --------------------------------------------------------------------------------

@disjoint_base
class Target:
    """A thing with revisions and a current revision. The built-in targets extend it; a
    Python object with the methods of :class:`CustomTarget` works wherever a target is
    asked for, without extending it. Not constructed directly."""

    @property
    def target_id(self) -> str:
        """The target as messages and reports name it: ``kind/name``."""
    @property
    def kind(self) -> str:
        """The kind: ``lambda-alias``, ``ecs-service``, ``k8s-deployment``..."""
    def current(self) -> Revision:
        """The revision in use now."""
    def current_async(self) -> Coroutine[object, None, Revision]:
        """:meth:`current`, awaitable."""
    def history(self) -> list[Revision]:
        """Every revision one can roll back to, newest first, including the one in use."""
    def history_async(self) -> Coroutine[object, None, list[Revision]]:
        """:meth:`history`, awaitable."""
    def plan(self, selector: Selector) -> Change:
        """The change ``selector`` asks for, with its diff; changes nothing. Raises
        :class:`NotFoundError` (no such revision), :class:`InvalidInputError`..."""
    def plan_async(self, selector: Selector) -> Coroutine[object, None, Change]:
        """:meth:`plan`, awaitable."""

class CustomTarget(Protocol):
    """What a Python object needs to be a target (no base class needed). Its methods run on
    the library's threads; each may be ``async def``.

    - ``current()``: the revision in use, a :class:`Revision` or its id as a str;
    - ``history()``: every revision, newest first, including the current one;
    - ``apply(change)``: move the target to ``change.to_revision``. The library reads
      ``current()`` first: a target already there is skipped (``apply`` is not called),
      one that is neither there nor at ``change.from_revision`` is a conflict;
    - ``wait(revision)``: ``True`` or ``None`` when stable at ``revision``; ``False`` or a
      progress message (str) while converging (asked again with back-off until the step's
      timeout); raising fails the step.

    Optional: ``resolve(selector)`` returning the revision a selector picks (for targets
    whose revisions are not all in the history), and ``name`` / ``kind`` attributes naming
    the target (default: the class name and ``python``). Exceptions become the library's
    errors: ``LookupError`` not found, ``ValueError`` invalid input, ``TimeoutError`` a
    timeout, ``ConnectionError`` retryable, the library's own exceptions by their kind.
    """

    def current(self) -> Revision | str | Awaitable[Revision | str]: ...
    def history(self) -> Iterable[Revision | str] | Awaitable[Iterable[Revision | str]]: ...
    def apply(self, change: Change, /) -> object: ...
    def wait(self, revision: Revision, /) -> bool | str | None | Awaitable[bool | str | None]: ...

TargetLike: TypeAlias = Target | CustomTarget
"""A built-in target or a custom one."""

# -- checks ---------------------------------------------------------------------------------

@final
class Policy:
    """How a check runs: at most ``attempts`` attempts, ``interval`` apart, until
    ``consecutive`` passes in a row, within ``deadline`` for the whole. ``consecutive``
    above ``attempts`` (it could never pass) raises :class:`InvalidInputError`."""

    def __new__(
        cls,
        attempts: int = 10,
        interval: Seconds = 2.0,
        consecutive: int = 1,
        deadline: Seconds = 120.0,
    ) -> Self: ...
    @staticmethod
    def once() -> Policy:
        """One attempt, no retry (deadline 60 s)."""
    @property
    def attempts(self) -> int: ...
    @property
    def interval(self) -> datetime.timedelta: ...
    @property
    def consecutive(self) -> int: ...
    @property
    def deadline(self) -> datetime.timedelta: ...

@final
class Verdict:
    """What a check concluded under its policy; true when it passed."""

    @property
    def name(self) -> str:
        """The check's name."""
    @property
    def passed(self) -> bool: ...
    @property
    def attempts(self) -> int:
        """Attempts made."""
    @property
    def evidence(self) -> str:
        """What the last attempt saw."""
    def __bool__(self) -> bool: ...

@disjoint_base
class Check:
    """A check and the policy it runs under. ``Check(func)`` makes one from a Python
    callable (it may be ``async def``): a true result or ``None`` passes, a false one
    fails, ``(passed, evidence)`` gives both, an exception fails the attempt with the
    exception as evidence. The built-in checks extend this class."""

    def __new__(
        cls,
        func: Callable[[], object],
        *,
        name: str | None = None,
        policy: Policy | None = None,
    ) -> Self: ...
    @property
    def name(self) -> str:
        """The check's name, as reports show it."""
    @property
    def policy(self) -> Policy:
        """The policy it runs under (default: ``Policy()``)."""
    def with_policy(self, policy: Policy) -> Check:
        """The same check under another policy."""
    def run(self) -> Verdict:
        """Runs the check under its policy now."""
    def run_async(self) -> Coroutine[object, None, Verdict]:
        """:meth:`run`, awaitable."""

CheckLike: TypeAlias = Check | Callable[[], object]
"""A check, or a callable used as one under the default policy."""

@final
class HttpCheck(Check):
    """An HTTP request that passes when the answer looks healthy: ``method`` (``GET``) must
    answer ``status`` within ``timeout`` (10 s); optionally the body contains
    ``body_contains``, the JSON body has a value at ``json_pointer`` (RFC 6901, e.g.
    ``"/status"``), equal to ``json_value`` when given, and the answer comes within
    ``max_latency``. A service that does not answer is a failed check, not an error.
    Header values of secret-looking names (``Authorization``...) are never shown."""

    def __new__(
        cls,
        url: str,
        status: int = 200,
        *,
        method: str = "GET",
        body_contains: str | None = None,
        json_pointer: str | None = None,
        json_value: Any = None,
        headers: dict[str, str] | None = None,
        timeout: Seconds | None = None,
        max_latency: Seconds | None = None,
        policy: Policy | None = None,
    ) -> Self: ...
    @property
    def url(self) -> str: ...

@final
class CommandCheck(Check):
    """A program run directly (no shell) that passes when it exits 0 within ``timeout``
    (60 s); the evidence has its exit status and last lines of output. ``argv`` is shown in
    reports: pass secrets through ``env``, whose values are never shown, or ``secret_env``
    for secrets under names that do not look secret. The values of secret-looking ``env``
    vars, of ``secret_env`` and of ``secrets`` are taken out of the output it prints."""

    def __new__(
        cls,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        secret_env: dict[str, str] | None = None,
        secrets: Sequence[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: Seconds | None = None,
        policy: Policy | None = None,
    ) -> Self: ...
    @property
    def argv(self) -> list[str]: ...

@final
class CommandTarget(Target):
    """A target driven by your own commands, for what the library has no backend for
    (Terraform, down-migrations, a GitLab rollback job): ``current``, ``history`` and
    ``apply`` (and optionally ``plan`` and ``stable``) are each a program and its arguments,
    run directly (no shell), speaking the JSON contract documented in
    ``rollback_core::command_target`` (``current`` prints one revision object, ``history``
    an array newest first, ``stable`` ``{"state": "stable"|"progressing"|"failed"}``; the
    chosen revision is in ``ROLLBACK_TO_ID``). Exit 75 is a retryable failure, any other
    non-zero exit a failure; quoted output is scrubbed of secret values. Recipes:
    ``examples/recipes/terraform`` and ``examples/recipes/alembic``."""

    def __new__(
        cls,
        name: str,
        *,
        current: Sequence[str],
        history: Sequence[str],
        apply: Sequence[str],
        plan: Sequence[str] | None = None,
        stable: Sequence[str] | None = None,
        env: dict[str, str] | None = None,
        secret_env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        timeout: Seconds | None = None,
    ) -> Self: ...
    @property
    def name(self) -> str: ...

# -- events and reports ---------------------------------------------------------------------

@final
class Event:
    """One transition of a transaction, as ``on_event`` receives it; ``str()`` is a
    progress line."""

    @property
    def kind(self) -> str:
        """``started``, ``planned``, ``locked``, ``step_started``, ``skipped``,
        ``applied``, ``retrying``, ``waiting``, ``stable``, ``check_passed``, ``verified``
        (a step is done), ``check_failed``, ``failed``, ``compensating``, ``compensated``,
        ``reverting``, ``reverted``, ``action``, ``interrupted`` or ``finished``."""
    @property
    def target(self) -> str | None:
        """The target (``kind/name``), if about one."""
    @property
    def message(self) -> str:
        """For a person."""
    @property
    def step(self) -> int | None:
        """The step index, if about a step."""
    @property
    def transaction(self) -> str:
        """The transaction id."""
    @property
    def at(self) -> datetime.datetime:
        """When (UTC)."""

@final
class StepReport:
    """What happened to one step."""

    @property
    def step(self) -> int:
        """The index, in the order steps were added."""
    @property
    def stage(self) -> int: ...
    @property
    def target(self) -> str:
        """``kind/name``."""
    @property
    def from_revision(self) -> Revision | None:
        """The revision captured in preflight."""
    @property
    def to_revision(self) -> Revision | None:
        """The revision chosen."""
    @property
    def diff(self) -> Diff: ...
    @property
    def origin(self) -> str | None:
        """Where the choice of the revision came from (the last known good's transaction)."""
    @property
    def status(self) -> str:
        """``planned``, ``not_started``, ``skipped``, ``applied``, ``succeeded``,
        ``failed``, ``compensated``, ``reverted`` or ``compensation_failed``."""
    @property
    def error(self) -> str | None:
        """The error message, if the step failed."""
    @property
    def error_kind(self) -> str | None:
        """The error's kind (``not_found``, ``rollout_failed``...), if it failed."""
    @property
    def verdicts(self) -> list[Verdict]:
        """The step's checks."""
    @property
    def duration(self) -> datetime.timedelta: ...

@final
class ActionReport:
    """What an on-failure or on-success action did."""

    @property
    def name(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def message(self) -> str: ...

@final
class Report:
    """The result of a run; ``str()`` is the report a person reads."""

    @property
    def outcome(self) -> str:
        """``planned`` (dry run), ``succeeded``, ``compensated`` (something failed and
        everything applied is back), ``failed`` (see :attr:`needs_attention`) or
        ``interrupted`` (stopped before it finished; resume it)."""
    @property
    def transaction(self) -> str:
        """The transaction id (in the journal and every event)."""
    @property
    def name(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def steps(self) -> list[StepReport]:
        """One per step, in step order."""
    @property
    def checks(self) -> list[Verdict]:
        """The transaction-level checks."""
    @property
    def actions(self) -> list[ActionReport]:
        """The on-failure actions."""
    @property
    def on_success(self) -> list[ActionReport]:
        """The on-success actions (none unless the run succeeded)."""
    @property
    def needs_attention(self) -> list[str]:
        """What a person must look at."""
    @property
    def error(self) -> str | None:
        """The failure that stopped the run, if any."""
    @property
    def journal_path(self) -> pathlib.Path:
        """The journal file (a dry run writes none)."""
    @property
    def started_at(self) -> datetime.datetime: ...
    @property
    def duration(self) -> datetime.timedelta: ...

# -- after the run ---------------------------------------------------------------------------

@disjoint_base
class Action:
    """An action run after the steps, for :meth:`Transaction.on_success` or
    :meth:`Transaction.on_failure`: :class:`rollback.aws.CloudFrontInvalidation` is one (a
    plain callable works too)."""

    @property
    def name(self) -> str:
        """Its name in reports and the journal."""

@final
class Webhook:
    """Posts a notice when a run starts (its leases held) and when it ends (outcome,
    targets, reason, time to recover, what needs a person) to an http(s) URL:
    ``format="slack"`` (the default) posts ``{"text": ...}`` as Slack's incoming webhooks
    take it, ``format="json"`` the notice as JSON; ``timeout`` bounds each post (default
    10 s). The URL is a secret of sorts: reports, errors and ``repr()`` show its host only.
    A bad URL or format raises :class:`InvalidInputError`."""

    def __new__(
        cls, url: str, *, format: Literal["slack", "json"] = "slack", timeout: Seconds | None = None
    ) -> Self: ...
    @property
    def format(self) -> str:
        """``"slack"`` or ``"json"``."""
    @property
    def name(self) -> str:
        """``webhook <host>``."""

# -- transactions ---------------------------------------------------------------------------

@final
class Transaction:
    """A rollback transaction: stages of steps run through preflight (no change), lock,
    apply, wait until stable and verify; on failure ``policy="compensate"`` puts every
    applied target back (``"halt"`` leaves them), then the on-failure actions run. Each
    run writes a journal (``journal``, default a new file under ``$ROLLBACK_JOURNAL_DIR``
    or ``.rollback/journal``) and takes expiring leases (under ``locks_dir``, default
    ``$ROLLBACK_LOCK_DIR`` or the temp dir). A run that succeeds with checks records what
    it verified under ``known_good_dir`` (default ``$ROLLBACK_KNOWN_GOOD_DIR`` or
    ``.rollback/known-good``), which :class:`LastKnownGood` reads. Putting targets back is retried through
    throttling and transient errors for up to ``compensation_deadline`` per target
    (default 5 minutes). The methods that add return the transaction, so calls chain."""

    def __new__(
        cls,
        name: str,
        reason: str | None = None,
        journal: str | os.PathLike[str] | None = None,
        policy: str = "compensate",
        concurrency: int = 16,
        *,
        locks_dir: str | os.PathLike[str] | None = None,
        lease_ttl: Seconds | None = None,
        holder: str | None = None,
        compensation_deadline: Seconds | None = None,
        known_good_dir: str | os.PathLike[str] | None = None,
        locks: Locks | None = None,
        known_good: KnownGoodStore | None = None,
        journal_store: JournalStore | None = None,
    ) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def reason(self) -> str | None:
        """Why it runs: required for a real run."""
    def add(
        self,
        target: TargetLike,
        selector: Selector,
        verify: CheckLike | Sequence[CheckLike] | None = None,
        *,
        temporary: bool = False,
        allow_current: bool = False,
        timeout: Seconds | None = None,
    ) -> Transaction:
        """Adds a step to the current stage: ``target`` to the revision ``selector`` picks,
        then ``verify``'s checks. ``temporary`` puts the target back once every stage is
        done (services stopped during a restore); ``allow_current`` accepts a target
        already there (skipped) instead of refusing the run; ``timeout`` bounds the wait
        until stable (default 10 minutes). A target may appear once."""
    def stage(self) -> Transaction:
        """Starts a new stage: its steps run after every step before."""
    def verify(self, check: CheckLike) -> Transaction:
        """Adds a transaction-level check, run after every stage."""
    def on_failure(self, action: Action | Callable[[], object], *, name: str | None = None) -> Transaction:
        """Adds an action run after a failure whatever the policy (scale to zero,
        maintenance mode): an :class:`Action`, or a callable whose return value (a str, or
        None) goes into the report (``name`` names a callable; default its own name)."""
    def on_success(self, action: Action | Callable[[], object], *, name: str | None = None) -> Transaction:
        """Adds an action run after the run succeeded (every step verified, the checks
        passed), in the order added: an :class:`Action`
        (:class:`rollback.aws.CloudFrontInvalidation`), or a callable whose return value (a
        str, or None) goes into the report. Each is journaled before and after it runs, so
        a resume does not run it again; one that fails is listed in
        :attr:`Report.needs_attention` and the run stays succeeded."""
    def notify(self, notifier: Webhook) -> Transaction:
        """Adds a notifier, told when the run starts (its leases held) and how it ended; a
        notification that fails is listed in :attr:`Report.needs_attention` and never fails
        the run."""
    def __len__(self) -> int:
        """How many steps."""
    def run(self, dry_run: bool = False, on_event: Callable[[Event], object] | None = None) -> Report:
        """Runs it (``dry_run=True``: the plan only, nothing changed). Raises, with nothing
        changed, on bad input (:class:`InvalidInputError`, :class:`NotFoundError`) or a
        locked target (:class:`LockedError`); any later failure is in the report's outcome.
        ``on_event`` gets every event, in order. Releases the GIL; Ctrl-C stops the run
        (the KeyboardInterrupt's note says how to resume it)."""
    def permissions(
        self, *, account: str | None = None, region: str | None = None, role: str = "rollback"
    ) -> dict[str, Any]:
        """The least privilege a run needs, as ``rollback policy`` prints it:
        ``{"iam": <IAM policy>, "rbac": [<Role>, ...], "undeclared": [<part>, ...]}``; the
        parts in ``undeclared`` (a Python target, a command check) are not covered. Calls
        nothing."""
    def run_async(
        self, dry_run: bool = False, on_event: Callable[[Event], object] | None = None
    ) -> Coroutine[object, None, Report]:
        """:meth:`run`, awaitable; ``on_event`` is called on the caller's event loop.
        Cancelling the awaitable stops the run as Ctrl-C does."""

def resume(
    journal_path: str | os.PathLike[str],
    *,
    targets: Iterable[TargetLike] | None = None,
    on_event: Callable[[Event], object] | None = None,
    locks_dir: str | os.PathLike[str] | None = None,
    locks: Locks | None = None,
    known_good_dir: str | os.PathLike[str] | None = None,
    known_good: KnownGoodStore | None = None,
    journal_store: JournalStore | None = None,
) -> Report:
    """Finishes the run recorded in a journal (its process died, or it was interrupted)
    without applying anything twice; a run that already ended is returned as it was.
    Built-in targets are rebuilt from the journal; pass Python targets again in
    ``targets``. Leases are taken where the run recorded them (its lock folder or shared
    store) unless ``locks_dir`` or ``locks`` is given; ``journal_store`` writes the new
    records there too; a success is recorded in ``known_good`` / ``known_good_dir``
    (default: the local folder)."""

@final
class Runbook:
    """Runbook files (``rollback plan|apply FILE``) from Python."""

    @staticmethod
    def load(
        path: str | os.PathLike[str],
        *,
        vars: Mapping[str, str] | None = None,
        reason: str | None = None,
        environment: bool = True,
    ) -> Transaction:
        """The transaction the runbook file at ``path`` describes, its ``${NAME}``s filled
        from ``vars`` (then, unless ``environment=False``, from the environment). Every
        problem is reported at once with its line and column (``InvalidInputError``);
        nothing is called. ``reason`` (a real run needs one) replaces the file's. The file's
        ``locks:`` is the run's lock manager."""
    @staticmethod
    def drill(
        path: str | os.PathLike[str],
        *,
        environment: str,
        vars: Mapping[str, str] | None = None,
        env: bool = True,
    ) -> Drill:
        """The file's drill on ``environment`` (its ``drill:`` section); refused
        (``InvalidInputError``) for a runbook not marked for drills on that environment."""

@final
class Drill:
    """A rollback drill over ``transaction`` on the drill environment ``environment``:
    each target broken to ``break_to`` (default: the newest revision not in use), the
    checks waited on until one fails (time to detect), the transaction run (time to
    recover, against ``recover_within``), every target left where it was found."""

    def __new__(
        cls,
        transaction: Transaction,
        *,
        environment: str,
        break_to: Selector | None = None,
        detect_within: Seconds = ...,  # 5 min
        recover_within: Seconds = ...,  # 5 min
        probe_interval: Seconds = ...,  # 2 s
    ) -> Self: ...
    def run(self, *, history: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The drill's report (``passed``, ``time_to_detect``, ``time_to_recover`` in
        milliseconds, ``targets``, ``needs_attention``, ``markdown``); with ``history`` it
        is added to that JSON-lines file and the Markdown shows the trend."""

def resume_async(
    journal_path: str | os.PathLike[str],
    *,
    targets: Iterable[TargetLike] | None = None,
    on_event: Callable[[Event], object] | None = None,
    locks_dir: str | os.PathLike[str] | None = None,
    locks: Locks | None = None,
    known_good_dir: str | os.PathLike[str] | None = None,
    known_good: KnownGoodStore | None = None,
    journal_store: JournalStore | None = None,
) -> Coroutine[object, None, Report]:
    """:func:`resume`, awaitable."""

# -- shared state ---------------------------------------------------------------------------

@disjoint_base
class Locks:
    """Where leases are kept, shared by a team: :class:`rollback.aws.DynamoDbLocks`,
    :class:`rollback.k8s.LeaseLocks` (a folder on this machine is ``locks_dir=``)."""

@disjoint_base
class KnownGoodStore:
    """Where verified-good revisions are kept, shared by a team:
    :class:`rollback.aws.DynamoDbKnownGood`, :class:`rollback.aws.S3KnownGood` (a folder on
    this machine is ``known_good_dir=``)."""

@disjoint_base
class JournalStore:
    """Where journals are kept beyond this machine: :class:`rollback.aws.S3Journals`."""

def resume_from_store(
    store: JournalStore,
    transaction: str,
    local_path: str | os.PathLike[str],
    *,
    targets: Iterable[TargetLike] | None = None,
    on_event: Callable[[Event], object] | None = None,
    locks: Locks | None = None,
    locks_dir: str | os.PathLike[str] | None = None,
    known_good: KnownGoodStore | None = None,
    known_good_dir: str | os.PathLike[str] | None = None,
) -> Report:
    """Finishes ``transaction`` from its journal in ``store`` (a run whose machine died):
    the records are copied to ``local_path`` and resumed as :func:`resume` does, every new
    record written there and to the store."""

def resume_from_store_async(
    store: JournalStore,
    transaction: str,
    local_path: str | os.PathLike[str],
    *,
    targets: Iterable[TargetLike] | None = None,
    on_event: Callable[[Event], object] | None = None,
    locks: Locks | None = None,
    locks_dir: str | os.PathLike[str] | None = None,
    known_good: KnownGoodStore | None = None,
    known_good_dir: str | os.PathLike[str] | None = None,
) -> Coroutine[object, None, Report]:
    """:func:`resume_from_store`, awaitable."""
