"""The exception tree of rollback: one base class, one subclass per kind of failure.

Every exception carries ``target`` (the ``kind/name`` it is about), ``kind`` (a stable
snake_case name) and ``retryable``; messages name the target and never hold a secret value.
"""

from __future__ import annotations

__all__ = [
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


class RollbackError(Exception):
    """Base class of every error the library raises. Custom targets and checks may raise
    the subclasses too: the library treats them by their kind (a ``ThrottledError`` is
    retried, a ``NotFoundError`` refuses the plan...)."""

    default_kind = "error"
    default_retryable = False

    target: str | None
    kind: str
    retryable: bool

    def __init__(
        self,
        message: str,
        *,
        target: str | None = None,
        kind: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.target = target
        self.kind = kind if kind is not None else type(self).default_kind
        self.retryable = retryable if retryable is not None else type(self).default_retryable


class NotFoundError(RollbackError, LookupError):
    """The target, or the revision asked for, does not exist."""

    default_kind = "not_found"


class InvalidInputError(RollbackError, ValueError):
    """The request cannot be carried out as given; nothing was changed."""

    default_kind = "invalid_input"


class ConflictError(RollbackError):
    """The target changed under us (between the plan and the change)."""

    default_kind = "conflict"


class LockedError(RollbackError):
    """Another transaction holds the target's lease; the message names the holder."""

    default_kind = "locked"


class LeaseLostError(RollbackError):
    """The run lost its lease on a target (taken over, or not renewed in time) and stopped
    before changing anything more; the report lists what it had changed."""

    default_kind = "lease_lost"


class ThrottledError(RollbackError):
    """The backend asked us to slow down (retryable)."""

    default_kind = "throttled"
    default_retryable = True


class RollbackTimeoutError(RollbackError, TimeoutError):
    """A wait did not finish within its deadline."""

    default_kind = "timeout"


class VerificationError(RollbackError):
    """A check did not pass."""

    default_kind = "verification_failed"


class RolloutError(RollbackError):
    """A rollout failed and will not recover by waiting (ECS circuit breaker, Kubernetes
    progress deadline, RDS incompatible-restore), or kubectl reports an error for a rollout
    status. ``reason`` says which, when known."""

    default_kind = "rollout_failed"

    reason: str | None = None


class BackendError(RollbackError):
    """The backend failed in a way not covered above (``retryable`` for 5xx, resets)."""

    default_kind = "backend"


class JournalError(RollbackError):
    """The journal could not be written or read."""

    default_kind = "journal"


class PermissionDeniedError(RollbackError):
    """The backend refused a call for want of a permission (AWS AccessDenied, Kubernetes 403);
    the message names the action and resource. ``Transaction.permissions()`` (``rollback
    policy``) gives every permission a run needs."""

    default_kind = "permission_denied"
