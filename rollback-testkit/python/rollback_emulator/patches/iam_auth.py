"""moto's IAM enforcement (``INITIAL_NO_AUTH_ACTION_COUNT``, switched by ``/_emulator/iam/enforce``)
as a least-privilege test needs it.

Gaps closed (moto 5.2.1):

- moto recomputes each request's SigV4 signature and refuses a mismatch; for REST services
  (Lambda) it computes another signature than botocore's and aws-sdk-rust's, so every call
  was refused as ``SignatureDoesNotMatch``. The emulator checks who is calling (the access
  key must be a user's) and what they may do, not how a request is signed: the signature is
  not checked.
- moto names the action by the request's *signing* name (``monitoring:DescribeAlarms``); IAM
  names CloudWatch's actions ``cloudwatch:...``, as policies write them.
- a GetObject of a given version is ``s3:GetObjectVersion`` to IAM (moto: ``s3:GetObject``).

Not closed: moto authorizes against the resource ``*`` (an ARN-scoped Allow never matches), so
a least-privilege user holds its actions on every resource; resource scoping is tested against
the ARNs of the calls instead.
"""

from __future__ import annotations

from typing import Any

# SigV4 signing names whose IAM action prefix differs.
IAM_PREFIX = {"monitoring": "cloudwatch"}


def apply() -> None:
    from moto.iam import access_control

    base = access_control.IAMRequestBase
    original_init = base.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        service, _, name = self._action.partition(":")
        if service in IAM_PREFIX:
            self._action = f"{IAM_PREFIX[service]}:{name}"
        if self._action == "s3:GetObject" and "versionId=" in (self._path or ""):
            self._action = "s3:GetObjectVersion"

    def check_signature(self: Any) -> None:
        # The access key was looked up (and refused if unknown) when the request was made.
        return None

    base.__init__ = __init__  # type: ignore[method-assign]
    base.check_signature = check_signature  # type: ignore[method-assign]
