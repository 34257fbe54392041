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
  kept but not reported (GetPipelineState has no field for them).
* GetPipeline / ListPipelines sent ``created`` / ``updated`` as ISO-8601 strings; the JSON
  protocol (and aws-sdk-rust's parser) wants epoch seconds. Now numbers.
* Executions (moto has none): ListPipelineExecutions (newest first, ``maxResults`` /
  ``nextToken``), GetPipelineExecution, StartPipelineExecution (``sourceRevisions``: the
  ``revisionType`` must fit the source action's provider, COMMIT_ID for CodeCommit and
  CodeStarSourceConnection, IMAGE_DIGEST for ECR, S3_OBJECT_VERSION_ID / S3_OBJECT_KEY for
  S3; any other provider refuses overrides with ValidationException, as the GitHub (version
  1) action does on AWS) and StopPipelineExecution (``abandon``, ``reason``: Stopping, then
  Stopped; abandoned ones Stopped at once; a second stop is DuplicatedStopRequestException,
  a finished execution PipelineExecutionNotStoppableException). :class:`PipelineScheduler`
  moves started executions InProgress -> Succeeded after ``delay_ms`` (default 1000), or
  Failed when their commit is marked failing (seed ``failing``, or POST
  ``/_emulator/codepipeline/fail``); a newer start supersedes the older InProgress ones
  (SUPERSEDED mode: Superseded). Executions seeded (``executions``) keep the status seeded
  until stopped. Not modelled: stages and actions of an execution (a disabled transition
  does not hold it), RollbackStage, execution filters.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from typing import Any

from moto.codepipeline import models as cp_models
from moto.codepipeline import responses as cp_responses
from moto.codepipeline.exceptions import PipelineNotFoundException
from moto.core.exceptions import JsonRESTError
from moto.core.utils import utcnow

from .ticker import Ticker

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


# -- executions -----------------------------------------------------------------------------
DEFAULT_DELAY_MS = 1000
STATUSES = ("Cancelled", "InProgress", "Stopped", "Stopping", "Succeeded", "Superseded", "Failed")
FINISHED = ("Cancelled", "Stopped", "Succeeded", "Superseded", "Failed")
# The sourceRevisions override each source provider takes (AWS's StartPipelineExecution docs).
OVERRIDES = {
    "CodeCommit": ("COMMIT_ID",),
    "CodeStarSourceConnection": ("COMMIT_ID",),
    "ECR": ("IMAGE_DIGEST",),
    "S3": ("S3_OBJECT_VERSION_ID", "S3_OBJECT_KEY"),
}
FAILED_SUMMARY = "Deploy action failed: the deployment of this revision did not succeed"


class PipelineExecutionNotFoundException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("PipelineExecutionNotFoundException", message)


class PipelineExecutionNotStoppableException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("PipelineExecutionNotStoppableException", message)


class DuplicatedStopRequestException(JsonRESTError):
    code = 400

    def __init__(self, message: str):
        super().__init__("DuplicatedStopRequestException", message)


def executions(pipeline: Any) -> list[dict[str, Any]]:
    """The pipeline's executions, oldest first (each a dict in the API's shape, plus private
    ``_`` keys)."""
    if not hasattr(pipeline, "_rb_executions"):
        pipeline._rb_executions = []
    return pipeline._rb_executions


def source_actions(pipeline: Any) -> list[dict[str, Any]]:
    return [
        a
        for st in pipeline.pipeline.get("stages", [])
        for a in st.get("actions", [])
        if a.get("actionTypeId", {}).get("category") == "Source"
    ]


def _public(ex: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ex.items() if not k.startswith("_")}


def add_execution(
    pipeline: Any,
    revisions: dict[str, str],
    status: str,
    summary: str | None = None,
    trigger: str = "StartPipelineExecution",
    started: float | None = None,
    scheduled: bool = False,
) -> dict[str, Any]:
    """Records an execution of ``pipeline`` (``revisions``: source action name -> revision id).
    Called under LOCK."""
    now = time.time() if started is None else started
    known = {
        r["revisionId"]: r.get("revisionSummary")
        for e in executions(pipeline)
        for r in e["sourceRevisions"]
        if r.get("revisionSummary")
    }
    ex: dict[str, Any] = {
        "pipelineExecutionId": str(uuid.uuid4()),
        "status": status,
        "startTime": round(now, 3),
        "lastUpdateTime": round(now, 3),
        "sourceRevisions": [
            {"actionName": name, "revisionId": rev, **({"revisionSummary": known[rev]} if rev in known else {})}
            for name, rev in revisions.items()
        ],
        "trigger": {"triggerType": trigger, "triggerDetail": f"arn:aws:iam::{pipeline._arn.split(':')[4]}:root"},
        "executionMode": "SUPERSEDED",
        "executionType": "STANDARD",
        "_version": pipeline.pipeline.get("version", 1),
        "_scheduled": scheduled,
        "_since": time.monotonic(),
    }
    if summary:
        ex["statusSummary"] = summary
    executions(pipeline).append(ex)
    return ex


def _set_status(ex: dict[str, Any], status: str, summary: str | None = None) -> None:
    ex["status"] = status
    ex["lastUpdateTime"] = round(time.time(), 3)
    ex["_since"] = time.monotonic()
    if summary:
        ex["statusSummary"] = summary


class PipelineScheduler(Ticker):
    """Moves started executions forward; one per process (moto's state is process-global)."""

    thread_name = "rollback-emulator-codepipeline"

    def __init__(self, delay_ms: int = DEFAULT_DELAY_MS, tick_ms: int = 50):
        super().__init__(tick_ms)
        self.delay_ms = delay_ms
        self.failing: set[str] = set()  # revision ids (commits) whose executions fail
        self._pipelines: list[Any] = []

    def reset(self, delay_ms: int = DEFAULT_DELAY_MS) -> None:
        with LOCK:
            self.failing.clear()
            self._pipelines.clear()
            self.delay_ms = delay_ms

    def watch(self, pipeline: Any) -> None:
        """Called under LOCK: the pipeline has an execution to move."""
        if all(p is not pipeline for p in self._pipelines):
            self._pipelines.append(pipeline)

    def in_progress(self) -> int:
        with LOCK:
            return sum(1 for p in self._pipelines for e in executions(p) if e["_scheduled"] and e["status"] not in FINISHED)

    def tick(self, now: float | None = None, force: bool = False) -> int:
        now = time.monotonic() if now is None else now
        moved = 0
        with LOCK:
            for p in list(self._pipelines):
                for ex in executions(p):
                    if not ex["_scheduled"] or ex["status"] in FINISHED:
                        continue
                    due = force or now - ex["_since"] >= self.delay_ms / 1000
                    if not due:
                        continue
                    moved += 1
                    if ex["status"] == "Stopping":
                        _set_status(ex, "Stopped")
                    elif any(r["revisionId"] in self.failing for r in ex["sourceRevisions"]):
                        _set_status(ex, "Failed", FAILED_SUMMARY)
                    else:
                        _set_status(ex, "Succeeded")
        return moved

    def advance(self) -> int:
        """Finishes every execution in flight now; returns how many there were."""
        return self.tick(force=True)


SCHEDULER = PipelineScheduler()


def _execution(pipeline: Any, name: str, execution_id: Any) -> dict[str, Any]:
    for ex in executions(pipeline):
        if ex["pipelineExecutionId"] == execution_id:
            return ex
    raise PipelineExecutionNotFoundException(f"Pipeline execution ID {execution_id} does not exist in pipeline {name}")


def _pipeline_name(self: Any, key: str) -> str:
    name = self._get_param(key)
    if not isinstance(name, str) or not name:
        raise ValidationException(f"1 validation error detected: Value null at '{key}' failed to satisfy constraint: Member must not be null")
    return name


def _list_pipeline_executions(self: Any) -> str:
    name = _pipeline_name(self, "pipelineName")
    max_results = self._get_param("maxResults") or 100
    if not isinstance(max_results, int) or not 1 <= max_results <= 100:
        raise ValidationException(f"1 validation error detected: Value '{max_results}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100")
    token = self._get_param("nextToken")
    start = 0
    if token is not None:
        if not isinstance(token, str) or not token.isdigit():
            raise ValidationException("Invalid next token")
        start = int(token)
    with LOCK:
        pipeline = _get(self.codepipeline_backend, name)
        newest_first = list(reversed(executions(pipeline)))
        page = newest_first[start : start + max_results]
        out: dict[str, Any] = {"pipelineExecutionSummaries": []}
        for ex in page:
            summary = {k: ex[k] for k in ("pipelineExecutionId", "status", "startTime", "lastUpdateTime", "sourceRevisions", "trigger", "executionMode", "executionType")}
            if "statusSummary" in ex:
                summary["statusSummary"] = ex["statusSummary"]
            if "stopTrigger" in ex:
                summary["stopTrigger"] = ex["stopTrigger"]
            out["pipelineExecutionSummaries"].append(summary)
        if start + max_results < len(newest_first):
            out["nextToken"] = str(start + max_results)
        return json.dumps(out)


def _get_pipeline_execution(self: Any) -> str:
    name = _pipeline_name(self, "pipelineName")
    execution_id = self._get_param("pipelineExecutionId")
    with LOCK:
        pipeline = _get(self.codepipeline_backend, name)
        ex = _execution(pipeline, name, execution_id)
        out: dict[str, Any] = {
            "pipelineName": name,
            "pipelineVersion": ex["_version"],
            "pipelineExecutionId": ex["pipelineExecutionId"],
            "status": ex["status"],
            "artifactRevisions": [
                {"name": "SourceOutput", "revisionId": r["revisionId"], **({"revisionSummary": r["revisionSummary"]} if "revisionSummary" in r else {})}
                for r in ex["sourceRevisions"]
            ],
            "trigger": ex["trigger"],
            "executionMode": ex["executionMode"],
            "executionType": ex["executionType"],
        }
        if "statusSummary" in ex:
            out["statusSummary"] = ex["statusSummary"]
        return json.dumps({"pipelineExecution": out})


def start_execution(backend: Backend, name: str, overrides: Any) -> dict[str, Any]:
    if overrides is None:
        overrides = []
    if not isinstance(overrides, list):
        raise ValidationException("sourceRevisions must be a list")
    with LOCK:
        pipeline = _get(backend, name)
        sources = {a["name"]: a for a in source_actions(pipeline)}
        revisions: dict[str, str] = {}
        history = executions(pipeline)
        for action in sources:
            # Without an override, the source's newest revision: the newest execution's.
            latest = next((r["revisionId"] for e in reversed(history) for r in e["sourceRevisions"] if r["actionName"] == action), None)
            revisions[action] = latest or uuid.uuid4().hex + uuid.uuid4().hex[:8]
        for o in overrides:
            if not isinstance(o, dict) or not all(isinstance(o.get(k), str) and o.get(k) for k in ("actionName", "revisionType", "revisionValue")):
                raise ValidationException("each sourceRevisions entry needs actionName, revisionType and revisionValue")
            action = sources.get(o["actionName"])
            if action is None:
                raise ValidationException(f"Action {o['actionName']} is not a source action of pipeline {name}; its source actions are {', '.join(sources) or 'none'}")
            provider = action.get("actionTypeId", {}).get("provider")
            allowed = OVERRIDES.get(provider, ())
            if o["revisionType"] not in allowed:
                raise ValidationException(
                    f"Source revision override is not supported for action {o['actionName']} (provider {provider}) with revision type {o['revisionType']}"
                )
            revisions[o["actionName"]] = o["revisionValue"]
        for older in history:
            if older["_scheduled"] and older["status"] == "InProgress":
                _set_status(older, "Superseded", "Superseded by a newer execution")
        ex = add_execution(pipeline, revisions, "InProgress", scheduled=True)
        SCHEDULER.watch(pipeline)
        if SCHEDULER.delay_ms <= 0:
            SCHEDULER.advance()
        return ex


def _start_pipeline_execution(self: Any) -> str:
    name = _pipeline_name(self, "name")
    ex = start_execution(self.codepipeline_backend, name, self._get_param("sourceRevisions"))
    return json.dumps({"pipelineExecutionId": ex["pipelineExecutionId"]})


def stop_execution(backend: Backend, name: str, execution_id: Any, abandon: bool, reason: Any) -> dict[str, Any]:
    if reason is not None and (not isinstance(reason, str) or len(reason) > 200):
        raise ValidationException("1 validation error detected: Value at 'reason' failed to satisfy constraint: Member must have length less than or equal to 200")
    with LOCK:
        pipeline = _get(backend, name)
        ex = _execution(pipeline, name, execution_id)
        if ex["status"] == "Stopping" and not abandon:
            raise DuplicatedStopRequestException(f"Execution {execution_id} is already being stopped")
        if ex["status"] not in ("InProgress", "Stopping"):
            raise PipelineExecutionNotStoppableException(f"Unable to stop pipeline execution {execution_id} in status {ex['status']}")
        ex["stopTrigger"] = {"reason": reason or ""}
        if abandon:
            _set_status(ex, "Stopped")
        else:
            _set_status(ex, "Stopping")
            ex["_scheduled"] = True  # Stopping -> Stopped after the delay, seeded ones too
            SCHEDULER.watch(pipeline)
            if SCHEDULER.delay_ms <= 0:
                SCHEDULER.advance()
        return ex


def _stop_pipeline_execution(self: Any) -> str:
    name = _pipeline_name(self, "pipelineName")
    execution_id = self._get_param("pipelineExecutionId")
    abandon = bool(self._get_param("abandon") or False)
    ex = stop_execution(self.codepipeline_backend, name, execution_id, abandon, self._get_param("reason"))
    return json.dumps({"pipelineExecutionId": ex["pipelineExecutionId"]})


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
    Response.list_pipeline_executions = _list_pipeline_executions  # type: ignore[attr-defined]
    Response.get_pipeline_execution = _get_pipeline_execution  # type: ignore[attr-defined]
    Response.start_pipeline_execution = _start_pipeline_execution  # type: ignore[attr-defined]
    Response.stop_pipeline_execution = _stop_pipeline_execution  # type: ignore[attr-defined]
