"""Shared by the tests: a Python target kept in memory, and a wait for a simulated rollout."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import rollback
from conftest import K8sSim
from rollback.k8s import rollout_status


class MemoryTarget:
    """A custom target (no base class): revisions ``ids`` oldest first, at ``current``.

    ``converge`` is how many ``wait`` calls answer "still converging" before "stable";
    ``fail_apply`` makes ``apply`` raise it; every call is recorded in ``calls``.
    """

    kind = "memory-py"

    def __init__(self, name: str, ids: Sequence[str], current: str, *, converge: int = 0) -> None:
        self.name = name
        self.ids = list(ids)
        self.at = current
        self.converge = converge
        self._pending = 0
        self.fail_apply: BaseException | None = None
        self.calls: list[str] = []
        self.applied: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def revision(self, rid: str) -> rollback.Revision:
        return rollback.Revision(rid, images=[f"registry/{self.name}:v{rid}"], description=f"release {rid}")

    def current(self) -> rollback.Revision:
        self.calls.append("current")
        return self.revision(self.at)

    def history(self) -> list[rollback.Revision]:
        self.calls.append("history")
        return [self.revision(i) for i in reversed(self.ids)]

    def apply(self, change: rollback.Change) -> None:
        self.calls.append(f"apply {change.from_revision.id}->{change.to_revision.id}")
        if self.fail_apply is not None:
            raise self.fail_apply
        with self.lock:
            self.applied.append((change.from_revision.id, change.to_revision.id))
            self.at = change.to_revision.id
            self._pending = self.converge

    def wait(self, revision: rollback.Revision) -> bool | str:
        self.calls.append(f"wait {revision.id}")
        with self.lock:
            if self._pending > 0:
                self._pending -= 1
                return f"{self._pending + 1} more look(s)"
        return self.at == revision.id


def wait_done(sim: K8sSim, resource: str, name: str, timeout: float = 20, namespace: str = "production") -> dict[str, Any]:
    """Polls the simulator until the workload's rollout is done (kubectl's rules); returns it."""
    deadline = time.monotonic() + timeout
    while True:
        obj: dict[str, Any] = sim.request("GET", f"/apis/apps/v1/namespaces/{namespace}/{resource}/{name}")
        try:
            if rollout_status(obj).done:
                return obj
        except rollback.RolloutError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{resource}/{name} did not roll out: {obj.get('status')}")
        time.sleep(0.05)
