"""CodePipeline: stage transitions and pipeline state, on top of moto 5.2.1.

moto 5.2.1 implements CreatePipeline, GetPipeline, UpdatePipeline, ListPipelines,
DeletePipeline and tags only: DisableStageTransition, EnableStageTransition and
GetPipelineState answered ``NotImplementedError`` (HTTP 500). Here:

* DisableStageTransition / EnableStageTransition (``pipelineName``, ``stageName``,
  ``transitionType`` Inbound|Outbound, ``reason``) change the stage's transition state;
  an unknown pipeline is PipelineNotFoundException, an unknown stage StageNotFoundException,
  a bad transitionType or a reason outside botocore's model constraints (1..300 characters of
  ``[a-zA-Z0-9!@ ()\\.*?-]``: no ``:`` or ``,``) ValidationException, as AWS.
* GetPipelineState reports ``pipelineName``, ``pipelineVersion``, ``created``, ``updated`` and
  one ``stageStates`` entry per stage, in order, with ``actionStates`` (action names) and,
  for every stage but the first (which has no inbound transition, as in AWS's examples),
  ``inboundTransitionState {enabled, lastChangedBy, lastChangedAt, disabledReason}``.
  ``lastChangedBy`` is the caller as ``arn:aws:iam::<account>:root``. Outbound transitions are
  kept but not reported (GetPipelineState has no field for them). There are no executions.
* GetPipeline / ListPipelines sent ``created`` / ``updated`` as ISO-8601 strings; the JSON
  protocol (and aws-sdk-rust's parser) wants epoch seconds. Now numbers.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

from moto.codepipeline import models as cp_models
from moto.codepipeline import responses as cp_responses
from moto.codepipeline.exceptions import PipelineNotFoundException
from moto.core.exceptions import JsonRESTError
from moto.core.utils import utcnow

LOCK = threading.RLock()
Backend = cp_models.CodePipelineBackend
Pipeline = cp_models.CodePipeline
_orig: dict[str, Any] = {}

REASON_PATTERN = re.compile(r"^[a-zA-Z0-9!@ \(\)\.\*\?\-]+$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9.@\-_]+$")


class StageNotFoundException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("StageNotFoundException", message)


class ValidationException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("ValidationException", message)


def _epoch(value: Any) -> float:
    return round(value.timestamp(), 3)


def _transitions(pipeline: Any) -> dict[tuple[str, str], dict[str, Any]]:
    if not hasattr(pipeline, "_rb_transitions"):
        pipeline._rb_transitions = {}
    return pipeline._rb_transitions


def _get(backend: Backend, name: str) -> Any:
    pipeline = backend.pipelines.get(name)
    if pipeline is None:
        raise PipelineNotFoundException(f"Account '{backend.account_id}' does not have a pipeline with name '{name}'")
    return pipeline


def _validate(pipeline_name: Any, stage_name: Any, transition_type: Any, reason: Any, disable: bool) -> None:
    errors = []
    if not isinstance(pipeline_name, str) or not 1 <= len(pipeline_name) <= 100 or not NAME_PATTERN.match(pipeline_name):
        errors.append(f"Value '{pipeline_name}' at 'pipelineName' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+")
    if not isinstance(stage_name, str) or not 1 <= len(stage_name) <= 100 or not NAME_PATTERN.match(stage_name):
        errors.append(f"Value '{stage_name}' at 'stageName' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+")
    if transition_type not in ("Inbound", "Outbound"):
        errors.append(f"Value '{transition_type}' at 'transitionType' failed to satisfy constraint: Member must satisfy enum value set: [Inbound, Outbound]")
    if disable:
        if not isinstance(reason, str) or not reason:
            errors.append("Value null at 'reason' failed to satisfy constraint: Member must not be null")
        elif len(reason) > 300:
            errors.append(f"Value '{reason}' at 'reason' failed to satisfy constraint: Member must have length less than or equal to 300")
        elif not REASON_PATTERN.match(reason):
            errors.append(f"Value '{reason}' at 'reason' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9!@ \\(\\)\\.\\*\\?\\-]+")
    if errors:
        noun = "error" if len(errors) == 1 else "errors"
        raise ValidationException(f"{len(errors)} validation {noun} detected: " + "; ".join(errors))


def set_transition(
    backend: Backend, pipeline_name: str, stage_name: str, transition_type: str, enabled: bool, reason: str | None
) -> None:
    _validate(pipeline_name, stage_name, transition_type, reason, not enabled)
    with LOCK:
        pipeline = _get(backend, pipeline_name)
        stages = [s.get("name") for s in pipeline.pipeline.get("stages", [])]
        if stage_name not in stages:
            raise StageNotFoundException(f"Stage {stage_name} not found in pipeline {pipeline_name}")
        state: dict[str, Any] = {
            "enabled": enabled,
            "lastChangedBy": f"arn:aws:iam::{backend.account_id}:root",
            "lastChangedAt": _epoch(utcnow()),
        }
        if not enabled:
            state["disabledReason"] = reason
        _transitions(pipeline)[(stage_name, transition_type)] = state


def pipeline_state(backend: Backend, name: str) -> dict[str, Any]:
    with LOCK:
        pipeline = _get(backend, name)
        transitions = _transitions(pipeline)
        stage_states = []
        for i, stage in enumerate(pipeline.pipeline.get("stages", [])):
            entry: dict[str, Any] = {
                "stageName": stage.get("name"),
                "actionStates": [{"actionName": a.get("name")} for a in stage.get("actions", [])],
            }
            inbound = transitions.get((stage.get("name"), "Inbound"))
            if inbound is not None:
                entry["inboundTransitionState"] = dict(inbound)
            elif i > 0:
                entry["inboundTransitionState"] = {"enabled": True}
            stage_states.append(entry)
        return {
            "pipelineName": name,
            "pipelineVersion": pipeline.pipeline.get("version", 1),
            "stageStates": stage_states,
            "created": _epoch(pipeline._created),
            "updated": _epoch(pipeline._updated),
        }


def _disable_stage_transition(self: Any) -> str:
    set_transition(
        self.codepipeline_backend,
        self._get_param("pipelineName"),
        self._get_param("stageName"),
        self._get_param("transitionType"),
        False,
        self._get_param("reason"),
    )
    return ""


def _enable_stage_transition(self: Any) -> str:
    set_transition(
        self.codepipeline_backend,
        self._get_param("pipelineName"),
        self._get_param("stageName"),
        self._get_param("transitionType"),
        True,
        None,
    )
    return ""


def _get_pipeline_state(self: Any) -> str:
    name = self._get_param("name")
    if not isinstance(name, str) or not name:
        raise ValidationException("1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
    return json.dumps(pipeline_state(self.codepipeline_backend, name))


def _metadata(self: Any) -> dict[str, Any]:
    return {"pipelineArn": self._arn, "created": _epoch(self._created), "updated": _epoch(self._updated)}


def _list_pipelines(self: Backend) -> list[dict[str, Any]]:
    return sorted(
        (
            {"name": name, "version": p.pipeline["version"], "created": _epoch(p._created), "updated": _epoch(p._updated)}
            for name, p in self.pipelines.items()
        ),
        key=lambda i: i["name"],
    )


def apply() -> None:
    if _orig:
        return
    Response = cp_responses.CodePipelineResponse
    _orig["metadata"] = Pipeline.metadata
    Pipeline.metadata = property(_metadata)  # type: ignore[assignment,method-assign]
    _orig["list_pipelines"] = Backend.list_pipelines
    Backend.list_pipelines = _list_pipelines  # type: ignore[method-assign]
    Response.disable_stage_transition = _disable_stage_transition  # type: ignore[attr-defined]
    Response.enable_stage_transition = _enable_stage_transition  # type: ignore[attr-defined]
    Response.get_pipeline_state = _get_pipeline_state  # type: ignore[attr-defined]
