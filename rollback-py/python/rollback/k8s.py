"""Kubernetes: Deployments, StatefulSets and DaemonSets rolled back as ``kubectl rollout
undo`` does, their replica counts and restarts as targets, :class:`PodsReady`, and
kubectl's rollout status rules (:func:`rollout_status`).

The client comes from ``KUBECONFIG`` (or ``~/.kube/config``, or the in-cluster service
account), or from ``config=K8sConfig(kubeconfig=..., context=..., url=...)``.
"""

from __future__ import annotations

from ._rollback import (
    DaemonSet,
    Deployment,
    K8sConfig,
    LeaseLocks,
    Manifest,
    PodsReady,
    Replicas,
    Restart,
    RolloutStatus,
    StatefulSet,
    rollout_status,
)

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
