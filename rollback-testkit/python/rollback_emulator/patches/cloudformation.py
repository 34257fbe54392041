"""CloudFormation: versioned template URLs, "no updates", LastUpdatedTime and failing updates,
on top of moto 5.2.1.

moto 5.2.1 runs CreateStack / UpdateStack at once (every update is ``UPDATE_COMPLETE``), and:

* reads a ``TemplateURL`` ignoring its ``?versionId=`` (always the newest version), and takes
  the first label of any host that is not ``localhost`` or ``s3*.amazonaws.com`` for the
  bucket, so a path-style URL on the emulator's own address (``http://127.0.0.1:PORT/bucket/key``)
  named bucket ``127``. Here: virtual-hosted URLs (``bucket.s3.REGION.amazonaws.com/key``)
  and path-style ones (any other host) both work, ``versionId`` picks the version, and a
  missing bucket, key or version is ``ValidationError: TemplateURL must reference a valid S3
  object to which you have access.``, as AWS answers;
* said "No updates are to be performed." only when the update carried parameters; now also
  without (same template text, and the parameters passed, if any, resolve to the same values);
* never set ``LastUpdatedTime``: now every update (a failed one too) sets it;
* never fails an update. ``fail_next_update(stack, resource, reason)`` (control endpoint
  ``POST /_emulator/cloudformation/fail``) arms a failure that the stack's next UpdateStack
  consumes: the events AWS writes for a failed update (the stack ``UPDATE_IN_PROGRESS``, the
  resource ``UPDATE_IN_PROGRESS`` then ``UPDATE_FAILED`` with the reason, the stack
  ``UPDATE_ROLLBACK_IN_PROGRESS`` "The following resource(s) failed to update: [R].", the
  resource back to ``UPDATE_COMPLETE``, ``UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS``,
  ``UPDATE_ROLLBACK_COMPLETE``), the stack's template and parameters unchanged, its status
  ``UPDATE_ROLLBACK_COMPLETE``. The resource defaults to the new template's first one;
* ``set_status(stack, status)`` (``POST /_emulator/cloudformation/status``) puts a stack in
  any status, e.g. ``UPDATE_IN_PROGRESS`` for someone else's update that is still running.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from moto.cloudformation import models as cf_models
from moto.cloudformation import responses as cf_responses
from moto.cloudformation import utils as cf_utils
from moto.cloudformation.exceptions import ValidationError
from moto.core.utils import utcnow

LOCK = threading.RLock()
Stack = cf_models.Stack
_orig: dict[str, Any] = {}

# stack name -> armed failures, oldest first
FAILING: dict[str, list[dict[str, str | None]]] = {}

VIRTUAL_HOST = re.compile(r"^(?P<bucket>.+)\.s3([.-][a-z0-9-]+)*\.amazonaws\.com$")
DEFAULT_REASON = "Resource handler returned message: \"Invalid request provided\" (injected by the rollback emulator)"
STATUSES = (
    "CREATE_IN_PROGRESS", "CREATE_FAILED", "CREATE_COMPLETE", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED",
    "ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_FAILED", "UPDATE_IN_PROGRESS",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_COMPLETE", "UPDATE_FAILED", "UPDATE_ROLLBACK_IN_PROGRESS",
    "UPDATE_ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE",
    "REVIEW_IN_PROGRESS", "IMPORT_IN_PROGRESS", "IMPORT_COMPLETE",
)


def _invalid_url() -> ValidationError:
    return ValidationError(message="TemplateURL must reference a valid S3 object to which you have access.")


def get_stack_from_s3_url(template_url: str, account_id: str, partition: str) -> str:
    from moto.s3.models import s3_backends

    parts = urlparse(template_url)
    host = parts.netloc.rsplit("@", 1)[-1].split(":")[0]
    path = unquote(parts.path.lstrip("/"))
    virtual = VIRTUAL_HOST.match(host)
    if virtual and not host.startswith("s3."):
        bucket, key = virtual.group("bucket"), path
    else:
        bucket, _, key = path.partition("/")
    version = parse_qs(parts.query).get("versionId", [None])[0]
    if not bucket or not key:
        raise _invalid_url()
    try:
        obj = s3_backends[account_id][partition].get_object(bucket, key, version_id=version)
    except Exception:  # MissingBucket, MissingVersion, a bad version id...
        raise _invalid_url() from None
    if obj is None or getattr(obj, "value", None) is None:
        raise _invalid_url()
    return obj.value.decode("utf-8")


def _validate_different_update(self: Any, incoming_params: Any, stack_body: str, old_stack: Any) -> None:
    if not stack_body or old_stack.template != stack_body:
        return
    if incoming_params:
        new_params = self._get_param_values(incoming_params, old_stack.stack_parameters)
        if old_stack.stack_parameters != new_params:
            return
    raise ValidationError(old_stack.name, message="No updates are to be performed.")


def fail_next_update(stack: str, resource: str | None, reason: str | None) -> list[dict[str, Any]]:
    with LOCK:
        FAILING.setdefault(stack, []).append({"resource": resource, "reason": reason or DEFAULT_REASON})
        return failing()


def failing() -> list[dict[str, Any]]:
    with LOCK:
        return [{"stack": s, **f} for s, fs in sorted(FAILING.items()) for f in fs]


def clear_failing() -> None:
    with LOCK:
        FAILING.clear()


def _stacks() -> list[Any]:
    out = []
    for _, account in cf_models.cloudformation_backends.items():
        for _, backend in account.items():
            out.extend(backend.stacks.values())
    return out


def set_status(name: str, status: str) -> dict[str, Any]:
    with LOCK:
        for stack in _stacks():
            if stack.name == name or stack.stack_id == name:
                stack.status = status
                return {"stack": stack.name, "status": status}
    raise KeyError(name)


def _event(stack: Any, logical_id: str, physical_id: str, kind: str, status: str, reason: str | None) -> None:
    stack.events.append(
        cf_models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical_id,
            resource_type=kind,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def _failed_update(stack: Any, template: str, failure: dict[str, Any]) -> None:
    """What AWS records for an update that fails on one resource and rolls back."""
    stack._add_stack_event("UPDATE_IN_PROGRESS", resource_status_reason="User Initiated")
    try:
        resources = (Stack.parse_template(template) or {}).get("Resources") or {}
    except Exception:
        resources = {}
    logical = failure.get("resource") or next(iter(resources), "Resource")
    kind = (resources.get(logical) or {}).get("Type", "AWS::CloudFormation::CustomResource")
    existing = stack.resource_map._parsed_resources.get(logical) if hasattr(stack.resource_map, "_parsed_resources") else None
    physical = getattr(existing, "physical_resource_id", None) or f"{stack.name}-{logical}"
    _event(stack, logical, physical, kind, "UPDATE_IN_PROGRESS", None)
    _event(stack, logical, physical, kind, "UPDATE_FAILED", failure["reason"])
    stack._add_stack_event(
        "UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=f"The following resource(s) failed to update: [{logical}]. "
    )
    _event(stack, logical, physical, kind, "UPDATE_IN_PROGRESS", None)
    _event(stack, logical, physical, kind, "UPDATE_COMPLETE", None)
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"


def _update(self: Any, template: str, role_arn: Any = None, parameters: Any = None, tags: Any = None) -> None:
    with LOCK:
        armed = FAILING.get(self.name)
        failure = armed.pop(0) if armed else None
        if armed is not None and not armed:
            FAILING.pop(self.name, None)
    if failure is not None:
        _failed_update(self, template, failure)
    else:
        _orig["update"](self, template, role_arn=role_arn, parameters=parameters, tags=tags)
    self.last_updated_time = utcnow()


def apply() -> None:
    if _orig:
        return
    _orig["update"] = Stack.update
    Stack.update = _update  # type: ignore[method-assign]
    Stack.last_updated_time = None  # type: ignore[attr-defined]
    cf_utils.get_stack_from_s3_url = get_stack_from_s3_url
    cf_responses.get_stack_from_s3_url = get_stack_from_s3_url  # type: ignore[attr-defined]
    cf_responses.CloudFormationResponse._validate_different_update = _validate_different_update  # type: ignore[method-assign]
