"""CloudFront invalidations, on top of moto 5.2.1.

moto 5.2.1 creates an invalidation already ``COMPLETED`` (AWS's statuses are ``InProgress``
and ``Completed``), creates a new one for every CreateInvalidation even when its
CallerReference was used before, and takes any path. Here, as AWS:

* an invalidation is ``InProgress`` when created and ``Completed`` once the delay has passed
  (``delay_ms``, default 1000, set with ``POST /_emulator/cloudfront/config``; 0 completes
  it inside the call). The status is computed when read, so no scheduler thread is needed;
* a CreateInvalidation whose CallerReference was used before on the distribution returns
  that invalidation (no new one) if its paths are the same, and is
  ``InvalidationBatchAlreadyExists`` (HTTP 400) if they are not;
* every path must start with ``/`` (else ``InvalidArgument``, HTTP 400), and a batch holds
  1..3000 paths (AWS's limit of paths in progress per distribution; ``TooManyInvalidationsInProgress``
  past it is not emulated).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from moto.cloudfront import models as cf_models
from moto.cloudfront.exceptions import CloudFrontException

LOCK = threading.RLock()
Backend = cf_models.CloudFrontBackend
Invalidation = cf_models.Invalidation
DEFAULT_DELAY_MS = 1000
MAX_PATHS = 3000
CONFIG = {"delay_ms": DEFAULT_DELAY_MS}
_orig: dict[str, Any] = {}


class InvalidationBatchAlreadyExists(CloudFrontException):
    # Not in botocore's model (AWS documents it on CallerReference), so its HTTP status is the
    # serializer's default, 400.
    def __init__(self, caller_ref: str):
        super().__init__(
            "InvalidationBatchAlreadyExists",
            f"The CallerReference {caller_ref} was used for another invalidation batch of this distribution.",
        )


class InvalidArgument(CloudFrontException):
    def __init__(self, message: str):
        super().__init__("InvalidArgument", message)


def reset() -> None:
    with LOCK:
        CONFIG["delay_ms"] = DEFAULT_DELAY_MS


def _status_get(self: Any) -> str:
    done_at = getattr(self, "_rb_done_at", 0.0)
    return "Completed" if time.monotonic() >= done_at else "InProgress"


def _status_set(self: Any, _value: str) -> None:
    # moto's __init__ sets "COMPLETED"; the status follows the delay instead.
    self._rb_done_at = time.monotonic() + CONFIG["delay_ms"] / 1000


def _create_invalidation(self: Backend, dist_id: str, paths: list[str], caller_ref: str) -> Any:
    if isinstance(paths, str):  # one path comes back from the XML as a string
        paths = [paths]
    paths = list(paths or [])
    if not 1 <= len(paths) <= MAX_PATHS:
        raise InvalidArgument(f"An invalidation batch holds 1 to {MAX_PATHS} paths (got {len(paths)}).")
    bad = [p for p in paths if not isinstance(p, str) or not p.startswith("/")]
    if bad:
        raise InvalidArgument(f"Your request contains one or more invalid invalidation paths: {bad[0]!r} does not start with /.")
    with LOCK:
        self.get_distribution(dist_id)  # NoSuchDistribution first, as AWS
        for existing in self.invalidations.get(dist_id, []):
            if existing.caller_ref == caller_ref:
                if list(existing.paths) == paths:
                    return existing
                raise InvalidationBatchAlreadyExists(caller_ref)
        return _orig["create_invalidation"](self, dist_id, paths, caller_ref)


def apply() -> None:
    if _orig:
        return
    _orig["create_invalidation"] = Backend.create_invalidation
    Backend.create_invalidation = _create_invalidation  # type: ignore[method-assign]
    Invalidation.status = property(_status_get, _status_set)  # type: ignore[attr-defined]
