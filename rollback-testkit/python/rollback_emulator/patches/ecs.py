"""ECS: a deployment scheduler on top of moto 5.2.1.

moto never moves deployments: CreateService leaves the one deployment IN_PROGRESS with
runningCount 0, and UpdateService stores the task definition string as given ("family:2",
not the ARN), never replaces the deployment's taskDefinition, and sets runningCount to the
new desiredCount at once. Here UpdateService starts a rollout (a new PRIMARY deployment
IN_PROGRESS beside the previous one, now ACTIVE) and :class:`EcsScheduler` converges it after
the configured delay, or fails it like the deployment circuit breaker when its task
definition was marked failing.

All reads and writes of services go through ``LOCK``; DescribeServices / UpdateService /
CreateService answer with snapshots taken under it, so a response never sees a half-moved
deployment.
"""

from __future__ import annotations

import base64
import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import EcsClientException, InvalidParameterException, TaskDefinitionNotFoundException
from moto.ecs.models import TaskDefinition
from moto.moto_api._internal import mock_random

from .ticker import Ticker

LOCK = threading.RLock()

Backend = ecs_models.EC2ContainerServiceBackend
Service = ecs_models.Service

CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."


def td_key(task_definition: str) -> str:
    """'family:N' for 'family:N' or a task definition ARN; ValueError otherwise."""
    name = task_definition.split("task-definition/")[-1] if "task-definition/" in task_definition else task_definition
    family, sep, rev = name.rpartition(":")
    if not sep or not family or not rev.isdigit():
        raise ValueError(f"task definition {task_definition!r} is not 'family:N' or a task definition ARN")
    return f"{family}:{int(rev)}"


def new_deployment_id() -> str:
    return f"ecs-svc/{mock_random.randint(0, 10**19 - 1):019d}"


@dataclass
class Rollout:
    kind: str  # "deploy" (new primary) | "scale" (desiredCount only)
    started: float
    duration: float  # seconds
    failing: bool = False
    from_running: dict[str, int] = field(default_factory=dict)  # deployment id -> runningCount at start

    def progress(self, now: float) -> float:
        if self.duration <= 0:
            return 1.0
        return max(0.0, min(1.0, (now - self.started) / self.duration))


class EcsScheduler(Ticker):
    """Moves ECS deployments forward; one per process (moto's state is process-global)."""

    thread_name = "rollback-emulator-ecs"

    def __init__(self, convergence_ms: int = 1000, tick_ms: int = 50):
        super().__init__(tick_ms)
        self.convergence_ms = convergence_ms
        self.failing: set[str] = set()
        self._rollouts: dict[int, tuple[Backend, Service, Rollout]] = {}

    def reset(self, convergence_ms: int = 1000) -> None:
        with LOCK:
            self._rollouts.clear()
            self.failing.clear()
            self.convergence_ms = convergence_ms

    def in_progress(self) -> int:
        with LOCK:
            return len(self._rollouts)

    # -- rollouts -------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with LOCK:
            for key, (backend, svc, rollout) in list(self._rollouts.items()):
                if svc.status != "ACTIVE" or not svc.deployments:
                    del self._rollouts[key]
                    continue
                p = rollout.progress(now)
                if p >= 1.0:
                    self._finish(backend, svc, rollout)
                    del self._rollouts[key]
                else:
                    self._step(backend, svc, rollout, p)

    def advance(self) -> int:
        """Converges every rollout now; returns how many there were."""
        with LOCK:
            n = len(self._rollouts)
            for backend, svc, rollout in list(self._rollouts.values()):
                if svc.status == "ACTIVE" and svc.deployments:
                    self._finish(backend, svc, rollout)
            self._rollouts.clear()
            return n

    def _begin(self, backend: Backend, svc: Service, rollout: Rollout) -> None:
        self._rollouts[id(svc)] = (backend, svc, rollout)
        if rollout.duration <= 0:
            self._finish(backend, svc, rollout)
            del self._rollouts[id(svc)]

    def current_rollout(self, svc: Service) -> Rollout | None:
        entry = self._rollouts.get(id(svc))
        return entry[2] if entry else None

    def on_update(
        self,
        backend: Backend,
        svc: Service,
        before_td: str | None,
        new_td: str | None,
        force: bool,
        desired_changed: bool,
    ) -> None:
        """Called under LOCK after moto's update_service, with moto's count changes undone."""
        now_dt = utcnow()
        desired = svc.desired_count
        td = new_td or svc.task_definition
        primary = _primary(svc)
        if primary is None:
            return
        if (new_td and new_td != before_td) or force:
            dep_id = new_deployment_id()
            new_primary = {
                **{k: v for k, v in primary.items() if k not in ("id", "status")},
                "id": dep_id,
                "status": "PRIMARY",
                "taskDefinition": td,
                "desiredCount": desired,
                "pendingCount": desired,
                "runningCount": 0,
                "failedTasks": 0,
                "rolloutState": "IN_PROGRESS",
                "rolloutStateReason": f"ECS deployment {dep_id} in progress.",
                "createdAt": now_dt,
                "updatedAt": now_dt,
            }
            others = []
            for dep in svc.deployments:
                if dep is primary:
                    others.append({**dep, "status": "ACTIVE", "updatedAt": now_dt, "pendingCount": 0})
                elif dep.get("runningCount", 0) > 0:
                    others.append(dict(dep))
            svc.deployments = [new_primary] + others
            rollout = Rollout(
                kind="deploy",
                started=time.monotonic(),
                duration=self.convergence_ms / 1000,
                failing=td_key(td) in self.failing,
                from_running={d["id"]: d.get("runningCount", 0) for d in others},
            )
            _set_counts(backend, svc, sum(d.get("runningCount", 0) for d in others), desired)
            if desired > 0:
                tasks = " ".join(f"(task {mock_random.get_random_hex(32)})" for _ in range(desired))
                _event(svc, f"(service {svc.name}) has started {desired} tasks: {tasks}.")
            self._begin(backend, svc, rollout)
        elif desired_changed:
            deployments = []
            for dep in svc.deployments:
                dep = dict(dep)
                if dep.get("status") == "PRIMARY":
                    dep["desiredCount"] = desired
                    if dep.get("rolloutState") != "FAILED":
                        dep["pendingCount"] = max(0, desired - dep.get("runningCount", 0))
                    dep["updatedAt"] = now_dt
                deployments.append(dep)
            svc.deployments = deployments
            existing = self.current_rollout(svc)
            if existing is not None and existing.kind == "deploy":
                return  # the running deployment converges to the new desiredCount
            rollout = Rollout(
                kind="scale",
                started=time.monotonic(),
                duration=self.convergence_ms / 1000,
                from_running={d["id"]: d.get("runningCount", 0) for d in deployments},
            )
            _set_counts(backend, svc, svc.running_count, sum(d.get("pendingCount", 0) for d in deployments))
            self._begin(backend, svc, rollout)

    def _step(self, backend: Backend, svc: Service, rollout: Rollout, p: float) -> None:
        now_dt = utcnow()
        deployments = [dict(d) for d in svc.deployments]
        for dep in deployments:
            start = rollout.from_running.get(dep["id"], 0)
            if dep["status"] == "PRIMARY":
                desired = dep.get("desiredCount", 0)
                if rollout.kind == "deploy" and rollout.failing:
                    dep["runningCount"] = 0
                    dep["pendingCount"] = desired
                    dep["failedTasks"] = int(p * max(desired, 1) * 2)
                elif dep.get("rolloutState") == "FAILED":
                    continue
                else:
                    running = start + int((desired - start) * p)
                    dep["runningCount"] = max(0, running)
                    dep["pendingCount"] = max(0, desired - running)
            elif rollout.kind == "deploy" and not rollout.failing:
                # Old tasks stop as new ones start (minimumHealthyPercent 100).
                dep["runningCount"] = max(0, start - int(start * p))
            elif rollout.kind == "scale" and svc.desired_count == 0:
                dep["runningCount"] = max(0, start - int(start * p))
            dep["updatedAt"] = now_dt
        svc.deployments = deployments
        _set_counts(
            backend,
            svc,
            sum(d.get("runningCount", 0) for d in deployments),
            sum(d.get("pendingCount", 0) for d in deployments if d["status"] == "PRIMARY"),
        )

    def _finish(self, backend: Backend, svc: Service, rollout: Rollout) -> None:
        now_dt = utcnow()
        primary = _primary(svc)
        if primary is None:
            return
        primary = dict(primary)
        desired = primary.get("desiredCount", svc.desired_count)
        if rollout.kind == "deploy" and rollout.failing:
            primary.update(
                runningCount=0,
                pendingCount=0,
                failedTasks=max(primary.get("failedTasks", 0), 2 * max(desired, 1)),
                rolloutState="FAILED",
                rolloutStateReason=CIRCUIT_BREAKER_REASON,
                updatedAt=now_dt,
            )
            others = [dict(d) for d in svc.deployments if d.get("status") != "PRIMARY"]
            for dep in others:
                dep["runningCount"] = rollout.from_running.get(dep["id"], dep.get("runningCount", 0))
            svc.deployments = [primary] + others
            _set_counts(backend, svc, sum(d.get("runningCount", 0) for d in others), 0)
            _event(
                svc,
                f"(service {svc.name}) (deployment {primary['id']}) deployment failed: tasks failed to start.",
            )
            return
        if primary.get("rolloutState") == "FAILED":
            # desiredCount change on a failed deployment: the primary stays failed; the older
            # deployments follow a scale to zero.
            others = [dict(d) for d in svc.deployments if d.get("status") != "PRIMARY"]
            if svc.desired_count == 0:
                for dep in others:
                    dep["runningCount"] = 0
            primary["updatedAt"] = now_dt
            svc.deployments = [primary] + others
            _set_counts(backend, svc, sum(d.get("runningCount", 0) for d in others), 0)
            return
        primary.update(
            runningCount=desired,
            pendingCount=0,
            rolloutState="COMPLETED",
            rolloutStateReason=f"ECS deployment {primary['id']} completed.",
            updatedAt=now_dt,
        )
        svc.deployments = [primary]
        _set_counts(backend, svc, desired, 0)
        if rollout.kind == "deploy":
            _event(svc, f"(service {svc.name}) (deployment {primary['id']}) deployment completed.")
        _event(svc, f"(service {svc.name}) has reached a steady state.")


SCHEDULER = EcsScheduler()


# -- helpers ------------------------------------------------------------------------------
def _primary(svc: Service) -> dict[str, Any] | None:
    for dep in svc.deployments:
        if dep.get("status") == "PRIMARY":
            return dep
    return None


def _set_counts(backend: Backend, svc: Service, running: int, pending: int) -> None:
    """Sets the service's counts and moves the cluster's task counts by the difference."""
    cluster = backend.clusters.get(svc.cluster_name)
    if cluster is not None:
        cluster.running_tasks_count += running - svc.running_count
        cluster.pending_tasks_count += pending - svc.pending_count
    svc.running_count = running
    svc.pending_count = pending


def _event(svc: Service, message: str) -> None:
    event = {"id": str(mock_random.uuid4()), "createdAt": utcnow(), "message": message}
    svc.events = [event] + list(svc.events)[:99]


def snapshot(svc: Service) -> Service:
    """A copy for serialization, taken under LOCK."""
    snap = copy.copy(svc)
    snap.deployments = [dict(d) for d in svc.deployments]
    snap.events = list(svc.events)
    return snap


def _find_cluster_service(backend: Backend, cluster_str: str, service_str: str) -> Service | None:
    cluster_name = cluster_str.split("/")[-1]
    name = service_str.split("/")[-1]
    svc = backend.services.get(f"{cluster_name}:{name}")
    return svc


# -- patches ------------------------------------------------------------------------------
_orig: dict[str, Any] = {}


def _describe_task_definition(self: Backend, task_definition_str: str) -> Any:
    name = task_definition_str.split("/")[-1]
    if ":" not in name:
        # AWS: a family without a revision means its latest ACTIVE revision (moto: the latest).
        active = [rev for rev, td in self.task_definitions.get(name, {}).items() if td.status == "ACTIVE"]
        if not active:
            raise TaskDefinitionNotFoundException()
        return self.task_definitions[name][max(active)]
    return _orig["describe_task_definition"](self, task_definition_str)


def _create_service(self: Backend, cluster_str: str, service_name: str, desired_count: int, task_definition_str: str | None = None, *args: Any, **kwargs: Any) -> Service:
    with LOCK:
        existing = _find_cluster_service(self, cluster_str or "default", service_name)
        if existing is not None and existing.status == "ACTIVE":
            raise InvalidParameterException("Creation of service was not idempotent.")
        if task_definition_str:
            td = self.describe_task_definition(task_definition_str)
            if td.status != "ACTIVE":
                raise EcsClientException("TaskDefinition is inactive")
            task_definition_str = td.arn
        svc = _orig["create_service"](self, cluster_str, service_name, desired_count, task_definition_str, *args, **kwargs)
        # A new service looks steady at once: one PRIMARY COMPLETED deployment, all running.
        desired = svc.desired_count
        deployments = []
        for dep in svc.deployments:
            dep = dict(dep)
            dep.update(
                runningCount=desired,
                pendingCount=0,
                failedTasks=0,
                rolloutState="COMPLETED",
                rolloutStateReason=f"ECS deployment {dep['id']} completed.",
            )
            deployments.append(dep)
        svc.deployments = deployments
        svc.created_at = deployments[0]["createdAt"] if deployments else utcnow()
        svc.created_by = f"arn:aws:iam::{self.account_id}:root"
        _set_counts(self, svc, desired, 0)
        _event(svc, f"(service {svc.name}) has reached a steady state.")
        return snapshot(svc)


def _update_service(self: Backend, service_properties: dict[str, Any]) -> Service:
    props = dict(service_properties)
    cluster_str = props.get("cluster") or "default"
    service_str = props.get("service") or ""
    with LOCK:
        svc = self._get_service(cluster_str, service_str.split("/")[-1])
        cluster = self.clusters[svc.cluster_name]
        before = (svc.task_definition, svc.desired_count, svc.running_count, svc.pending_count)
        cluster_counts = (cluster.running_tasks_count, cluster.pending_tasks_count)
        new_td = None
        if props.get("task_definition"):
            td = self.describe_task_definition(props["task_definition"])
            if td.status != "ACTIVE":
                raise EcsClientException("TaskDefinition is inactive")
            new_td = td.arn
            service_properties["task_definition"] = td.arn
        if props.get("desired_count") is not None and int(props["desired_count"]) < 0:
            raise InvalidParameterException("desiredCount must be >= 0.")
        force = bool(props.get("force_new_deployment"))
        service_properties["force_new_deployment"] = False  # moto would rename the old deployment
        _orig["update_service"](self, service_properties)
        # Undo moto's immediate effects; the scheduler moves the counts over time.
        svc.running_count, svc.pending_count = before[2], before[3]
        cluster.running_tasks_count, cluster.pending_tasks_count = cluster_counts
        if new_td:
            svc.task_definition = new_td
        SCHEDULER.on_update(self, svc, before[0], new_td, force, svc.desired_count != before[1])
        return snapshot(svc)


def _describe_services(self: Backend, cluster_str: str, service_names_or_arns: list[str]) -> Any:
    with LOCK:
        services, failures = _orig["describe_services"](self, cluster_str, service_names_or_arns)
        return [snapshot(s) for s in services], failures


def _delete_service(self: Backend, cluster_name: str, service_name: str, force: bool) -> Service:
    with LOCK:
        svc = _orig["delete_service"](self, cluster_name, service_name, force)
        return snapshot(svc)


def _list_task_definitions_response(self: Any) -> ActionResult:
    """ListTaskDefinitions with sort (ASC/DESC) and maxResults/nextToken, as AWS does."""
    family = self._get_param("familyPrefix")
    status = self._get_param("status") or "ACTIVE"
    sort = (self._get_param("sort") or "ASC").upper()
    if sort not in ("ASC", "DESC"):
        raise InvalidParameterException("sort must be ASC or DESC.")
    max_results = self._get_param("maxResults")
    max_results = 100 if max_results is None else int(max_results)
    if not 1 <= max_results <= 100:
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    token = self._get_param("nextToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)[1])
        except Exception:
            raise InvalidParameterException("Invalid nextToken.")
    tds = [
        td
        for revisions in self.ecs_backend.task_definitions.values()
        for td in revisions.values()
        if (family is None or td.family == family) and td.status == status
    ]
    tds.sort(key=lambda td: (td.family, td.revision), reverse=(sort == "DESC"))
    page = tds[start : start + max_results]
    result: dict[str, Any] = {"taskDefinitionArns": [td.arn for td in page]}
    if start + max_results < len(tds):
        result["nextToken"] = base64.urlsafe_b64encode(f"offset:{start + max_results}".encode()).decode()
    return ActionResult(result)


def _task_definition_init(self: TaskDefinition, *args: Any, **kwargs: Any) -> None:
    """moto's task definitions have no registeredAt; AWS stamps each registration."""
    _orig["task_definition_init"](self, *args, **kwargs)
    self.registered_at = utcnow()


def apply() -> None:
    if _orig:
        return
    _orig["task_definition_init"] = TaskDefinition.__init__
    TaskDefinition.__init__ = _task_definition_init  # type: ignore[method-assign]
    for name, new in (
        ("describe_task_definition", _describe_task_definition),
        ("create_service", _create_service),
        ("update_service", _update_service),
        ("describe_services", _describe_services),
        ("delete_service", _delete_service),
    ):
        _orig[name] = getattr(Backend, name)
        setattr(Backend, name, new)
    _orig["list_task_definitions_response"] = ecs_responses.EC2ContainerServiceResponse.list_task_definitions
    ecs_responses.EC2ContainerServiceResponse.list_task_definitions = _list_task_definitions_response
