"""Kubernetes: Deployments, StatefulSets and DaemonSets rolled back as ``kubectl rollout
undo`` does, their replica counts and restarts as targets, :class:`PodsReady`, and
kubectl's rollout status rules.

The client comes from ``KUBECONFIG`` (or ``~/.kube/config``, or the in-cluster service
account), or from ``config=K8sConfig(...)``.
"""

import os
import pathlib
from collections.abc import Sequence
from typing import Any, final

from typing_extensions import Self

from . import Check, CheckLike, Locks, Policy, Seconds, Target

# Mirrors k8s.py's list, as a stub must; stubtest (tests/test_typing.py) keeps them equal.
__all__ = [
    "K8sConfig",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Replicas",
    "Restart",
    "PodsReady",
    "RolloutStatus",
    "rollout_status",
    "LeaseLocks",
    "Manifest",
]

@final
class K8sConfig:
    """Where the client's configuration comes from: a kubeconfig file (None: ``KUBECONFIG``
    / ``~/.kube/config``, else in-cluster), a context (None: the current one), or an API
    server URL that needs no credentials (``kubectl proxy``), which overrides both.
    Credentials are never recorded in journals."""

    def __new__(
        cls,
        kubeconfig: str | os.PathLike[str] | None = None,
        context: str | None = None,
        url: str | None = None,
    ) -> Self: ...
    @property
    def kubeconfig(self) -> pathlib.Path | None: ...
    @property
    def context(self) -> str | None: ...
    @property
    def url(self) -> str | None: ...

@final
class RolloutStatus:
    """kubectl's rollout status: whether it is done, and kubectl's message; true when
    done."""

    @property
    def done(self) -> bool: ...
    @property
    def message(self) -> str:
        """``deployment "x" successfully rolled out``, ``Waiting for deployment "x" rollout
        to finish: 1 of 2 updated replicas are available...``"""
    def __bool__(self) -> bool: ...

def rollout_status(obj: dict[str, Any]) -> RolloutStatus:
    """kubectl's rollout status of a Deployment, StatefulSet or DaemonSet given as a dict
    (``kubectl get -o json``). Raises :class:`rollback.RolloutError` where kubectl reports
    an error (progress deadline exceeded, a strategy without rollout status, an object it
    cannot read); its ``reason`` says which."""

# Deployment, StatefulSet and DaemonSet repeat their common methods: at run time they are
# separate final classes made by one Rust macro (rollback-py/src/k8s.rs `workload!`), with
# no Python base class of their own to declare the methods once; stubtest checks each.
@final
class Deployment(Target):
    """A Deployment. Revisions are its rollout revisions (``"3"``, from its ReplicaSets);
    a rollback is ``kubectl rollout undo`` (a paused Deployment is refused, an
    already-matching template skipped), sent with the object's resourceVersion, waited for
    by watch with kubectl's status rules."""

    def __new__(cls, name: str, namespace: str = "default", *, config: K8sConfig | None = None) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    def rollout_status(self) -> RolloutStatus:
        """kubectl's rollout status of the object now; raises
        :class:`rollback.RolloutError` where kubectl reports an error."""
    def restart(self) -> Restart:
        """This workload's restart (``kubectl rollout restart``) as a target."""
    def replicas(
        self,
        gradual: Sequence[int] | None = None,
        between: CheckLike | None = None,
        *,
        step_timeout: Seconds | None = None,
    ) -> Replicas:
        """The replica count as a target (``kubectl scale``): ``Exact("0")`` scales to
        zero; on the way up it stops at each ``gradual`` count, waits for it and runs
        ``between`` (runbook 004's "scale up gradually, verify health"). The journal
        records ``between``, so a resumed scale-up runs it too: a :class:`PodsReady`,
        :class:`rollback.HttpCheck` or :class:`rollback.CommandCheck` is rebuilt from the
        journal; a Python callable cannot be, and a scale-up resumed without it stops at
        its next step (``VerificationError``) rather than go on unchecked."""

@final
class StatefulSet(Target):
    """A StatefulSet. Revisions are its ControllerRevisions; a rollback is ``kubectl rollout
    undo``."""

    def __new__(cls, name: str, namespace: str = "default", *, config: K8sConfig | None = None) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    def rollout_status(self) -> RolloutStatus:
        """kubectl's rollout status of the object now; raises
        :class:`rollback.RolloutError` where kubectl reports an error."""
    def restart(self) -> Restart:
        """This workload's restart (``kubectl rollout restart``) as a target."""
    def replicas(
        self,
        gradual: Sequence[int] | None = None,
        between: CheckLike | None = None,
        *,
        step_timeout: Seconds | None = None,
    ) -> Replicas:
        """The replica count as a target; see :meth:`Deployment.replicas`."""

@final
class DaemonSet(Target):
    """A DaemonSet. Revisions are its ControllerRevisions; a rollback is ``kubectl rollout
    undo``."""

    def __new__(cls, name: str, namespace: str = "default", *, config: K8sConfig | None = None) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    def rollout_status(self) -> RolloutStatus:
        """kubectl's rollout status of the object now; raises
        :class:`rollback.RolloutError` where kubectl reports an error."""
    def restart(self) -> Restart:
        """This workload's restart (``kubectl rollout restart``) as a target."""

@final
class Replicas(Target):
    """A workload's replica count as a target: revisions are counts chosen with
    ``Exact("N")``. Made by ``Deployment.replicas()`` / ``StatefulSet.replicas()``."""

@final
class Restart(Target):
    """A workload's restart as a target: any selector but ``Exact`` restarts now
    (``Previous()`` reads well); stable when the rollout it starts is done. Made by
    ``.restart()``."""

@final
class PodsReady(Check):
    """Passes when the pods of ``workload`` (by its own selector), or the pods matching
    ``selector`` (``app=frontend,tier!=canary``) in ``namespace``, are Ready, at least
    ``min`` of them; the evidence names pods that are not (CrashLoopBackOff,
    ImagePullBackOff...)."""

    def __new__(
        cls,
        workload: Deployment | StatefulSet | DaemonSet | None = None,
        *,
        namespace: str | None = None,
        selector: str | None = None,
        min: int = 1,
        config: K8sConfig | None = None,
        policy: Policy | None = None,
    ) -> Self: ...

@final
class LeaseLocks(Locks):
    """Leases as ``coordination.k8s.io/v1`` Leases in ``namespace`` (RBAC: get, create and
    update on leases there), shared by every run that can reach the cluster."""

    def __new__(cls, namespace: str, *, config: K8sConfig | None = None) -> Self: ...

@final
class Manifest(Target):
    """A set of objects (ConfigMaps, Services, Deployments; Secrets are refused) applied as
    one target, usually a temporary step (runbook 004's maintenance mode). ``Previous()``
    applies ``objects`` (each created, or replaced); putting it back restores each object as
    it was and deletes the ones it created, from a snapshot kept in the journal. Each object
    is a dict with ``apiVersion``, ``kind`` and ``metadata.name``; one without a namespace
    is in ``namespace``."""

    def __new__(
        cls,
        name: str,
        objects: Sequence[dict[str, Any]],
        namespace: str = "default",
        *,
        config: K8sConfig | None = None,
    ) -> Self: ...
    @property
    def name(self) -> str: ...
    @property
    def namespace(self) -> str: ...
