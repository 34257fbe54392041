"""rollback: deployment rollbacks as reviewed, verified, compensable transactions.

A *target* is one thing with revisions (a Lambda alias, an ECS service, a secret, an RDS
instance, a Kubernetes Deployment...; see :mod:`rollback.aws` and :mod:`rollback.k8s`, or
any object with ``current``, ``history``, ``apply`` and ``wait`` methods). A
:class:`Transaction` moves targets to the revisions *selectors* pick (:class:`Previous`,
:class:`Exact`, :class:`StepsBack`, :class:`ImageTag`, :class:`LastKnownGood`), stage by stage: preflight with no
change (a dry run stops there), lock, apply, wait until stable, verify (:class:`HttpCheck`,
:class:`CommandCheck`, any callable), and on failure put everything back. Every run is
journaled; :func:`resume` finishes one whose process died.

Blocking calls release the GIL and stop on Ctrl-C; every one has an ``*_async`` twin that
returns a coroutine. What the library logs goes to :mod:`logging` under the logger
``rollback`` (children by Rust module, e.g. ``rollback.core.transaction.engine``); ``RUST_LOG``
narrows or widens which Rust events are passed on.
"""

from __future__ import annotations

from . import _rollback
from ._errors import (
    BackendError,
    ConflictError,
    InvalidInputError,
    JournalError,
    PermissionDeniedError,
    LeaseLostError,
    LockedError,
    NotFoundError,
    RollbackError,
    RollbackTimeoutError,
    RolloutError,
    ThrottledError,
    VerificationError,
)
from ._rollback import (
    Action,
    ActionReport,
    Change,
    Check,
    CommandCheck,
    CommandTarget,
    Diff,
    DiffEntry,
    Event,
    Exact,
    HttpCheck,
    ImageTag,
    LastKnownGood,
    Policy,
    Previous,
    Report,
    Revision,
    Runbook,
    Drill,
    Selector,
    StepReport,
    StepsBack,
    Target,
    Transaction,
    Verdict,
    Webhook,
    JournalStore,
    KnownGoodStore,
    Locks,
    resume,
    resume_async,
    resume_from_store,
    resume_from_store_async,
)
from ._typing import CheckLike, CustomTarget, Seconds, TargetLike  # noqa: E402

from . import aws, k8s, metrics  # noqa: E402  (submodules use the names above)

__version__: str = _rollback.__version__

# The stub (__init__.pyi) repeats this list: stubtest (tests/test_typing.py) keeps the two equal.
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
    # shared state
    "Locks",
    "KnownGoodStore",
    "JournalStore",
    "resume_from_store",
    "resume_from_store_async",
]
from . import _errors  # noqa: E402

# The exception classes, listed once (in _errors.py).
__all__ += _errors.__all__
