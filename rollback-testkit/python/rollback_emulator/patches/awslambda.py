"""Lambda: alias RevisionId and routing, on top of moto 5.2.1.

moto ignores UpdateAlias's RevisionId and never gives the alias a new one; it keeps
``RoutingConfig {"AdditionalVersionWeights": {}}`` as a non-empty routing config and answers
GetAlias / UpdateAlias with HTTP 201 (AWS: 200) and ``Content-Type: text/html`` (fixed in the
middleware). Here UpdateAlias is a compare-and-set under ``LOCK``: a RevisionId that is not
the alias's current one is answered 412 PreconditionFailedException, and every successful
update gives the alias a new RevisionId.
"""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any
from urllib.parse import unquote

from moto.awslambda import models as lambda_models
from moto.awslambda import responses as lambda_responses

LOCK = threading.RLock()

PRECONDITION_MESSAGE = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetAlias API to retrieve the latest Revision Id"
)

_orig: dict[str, Any] = {}


def _weights(routing_config: Any) -> dict[str, float]:
    if isinstance(routing_config, dict):
        weights = routing_config.get("AdditionalVersionWeights") or {}
        if isinstance(weights, dict):
            return {str(k): float(v) for k, v in weights.items()}
    return {}


def _alias_to_json(self: Any) -> dict[str, Any]:
    out = {
        "AliasArn": self.arn,
        "Description": self.description or "",
        "FunctionVersion": self.function_version,
        "Name": self.name,
        "RevisionId": self.revision_id,
    }
    weights = _weights(self.routing_config)
    if weights:
        out["RoutingConfig"] = {"AdditionalVersionWeights": weights}
    return out


def _alias_update(self: Any, description: str | None, function_version: str | None, routing_config: Any) -> None:
    _orig["alias_update"](self, description, function_version, routing_config)
    if routing_config is not None and not _weights(routing_config):
        self.routing_config = None  # {"AdditionalVersionWeights": {}} clears the weights
    self.revision_id = str(uuid.uuid4())


def _json_error(status: int, code: str, message: str, type_: str = "User") -> tuple[int, dict[str, str], str]:
    return (
        status,
        # moto takes the status from a "status" header (the middleware drops it from the response)
        {"status": str(status), "x-amzn-ErrorType": code, "Content-Type": "application/json"},
        json.dumps({"Type": type_, "message": message}),
    )


def _routing_problem(backend: Any, function_name: str, version: str, routing_config: Any) -> str | None:
    """What AWS would reject in a RoutingConfig (moto checks none of it)."""
    if routing_config is None:
        return None
    weights = (routing_config or {}).get("AdditionalVersionWeights") or {}
    if len(weights) > 1:
        return "Number of items in AdditionalVersionWeights cannot be greater than 1"
    for extra, weight in weights.items():
        if not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 1.0:
            return f"Invalid weight {weight} for version {extra}: must be between 0.0 and 1.0"
        if str(extra) == str(version):
            return f"Alias cannot point to the same version ({version}) in both FunctionVersion and AdditionalVersionWeights"
        try:
            backend.get_function(function_name, str(extra))
        except Exception:
            return f"Version {extra} of function {function_name} does not exist"
    return None


def _update_alias_response(self: Any) -> tuple[int, dict[str, str], str]:
    function_name = unquote(self.path.rsplit("/")[-3])
    alias_name = unquote(self.path.rsplit("/", 2)[-1])
    try:
        params = json.loads(self.body or "{}")
    except ValueError:
        return _json_error(400, "InvalidRequestContentException", "Could not parse request body into json")
    with LOCK:
        alias = self.backend.get_alias(name=alias_name, function_name=function_name)
        revision_id = params.get("RevisionId")
        if revision_id is not None and revision_id != alias.revision_id:
            return _json_error(412, "PreconditionFailedException", PRECONDITION_MESSAGE)
        problem = _routing_problem(
            self.backend, function_name, params.get("FunctionVersion") or alias.function_version, params.get("RoutingConfig")
        )
        if problem:
            return _json_error(400, "InvalidParameterValueException", problem)
        alias = self.backend.update_alias(
            name=alias_name,
            function_name=function_name,
            function_version=params.get("FunctionVersion"),
            description=params.get("Description"),
            routing_config=params.get("RoutingConfig"),
        )
        body = json.dumps(alias.to_json())
    return 200, {"status": "200", "Content-Type": "application/json"}, body


def _get_alias_response(self: Any) -> tuple[int, dict[str, str], str]:
    status, headers, body = _orig["get_alias_response"](self)
    status = 200 if status == 201 else status
    headers = {**{k: v for k, v in headers.items() if k.lower() != "status"}, "status": str(status)}
    headers["Content-Type"] = "application/json"
    return status, headers, body


def apply() -> None:
    if _orig:
        return
    _orig["alias_update"] = lambda_models.LambdaAlias.update
    lambda_models.LambdaAlias.update = _alias_update
    _orig["alias_to_json"] = lambda_models.LambdaAlias.to_json
    lambda_models.LambdaAlias.to_json = _alias_to_json
    _orig["update_alias_response"] = lambda_responses.LambdaResponse.update_alias
    lambda_responses.LambdaResponse.update_alias = _update_alias_response
    _orig["get_alias_response"] = lambda_responses.LambdaResponse.get_alias
    lambda_responses.LambdaResponse.get_alias = _get_alias_response
