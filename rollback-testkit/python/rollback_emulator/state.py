"""Emulator state that lives beside moto: injected faults, call counts, bad-revision marks."""

from __future__ import annotations

import random
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from .operations import Operation

FAULT_KINDS = ("throttle", "5xx", "latency", "reset")
MARK_KINDS = ("lambda", "ecs", "secret", "secret-endpoint")


class ControlError(ValueError):
    """A bad control request; answered with 400 {"error": message}."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Fault:
    operation: str  # AWS operation name or "*"
    kind: str  # throttle | 5xx | latency | reset
    remaining: int
    latency_ms: int = 0
    service: str | None = None  # optional signing name (ecs, lambda, ...) to scope the match

    def matches(self, op: Operation) -> bool:
        if self.service and self.service != op.service:
            return False
        return self.operation == "*" or self.operation == op.name

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operation": self.operation, "kind": self.kind, "remaining": self.remaining}
        if self.kind == "latency":
            out["latency_ms"] = self.latency_ms
        if self.service:
            out["service"] = self.service
        return out


@dataclass
class RateFault:
    """Faults a seeded share of the matching calls, until the faults are cleared.

    The draws come from one ``random.Random(seed)``, so the same sequence of calls meets the
    same faults on every run.
    """

    operation: str  # AWS operation name or "*"
    rate: float  # 0 < rate <= 1
    kinds: tuple[str, ...]  # drawn uniformly among these
    seed: int
    latency_ms: int = 0
    service: str | None = None
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    matches = Fault.matches

    def draw(self) -> str | None:
        """The kind of fault for the next matching call, or None when it goes through."""
        hit = self.rng.random() < self.rate
        kind = self.rng.choice(self.kinds)  # drawn either way: one fixed sequence per seed
        return kind if hit else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"operation": self.operation, "rate": self.rate, "kinds": list(self.kinds), "seed": self.seed}
        if "latency" in self.kinds:
            out["latency_ms"] = self.latency_ms
        if self.service:
            out["service"] = self.service
        return out


@dataclass(frozen=True)
class Mark:
    kind: str  # lambda | ecs | secret | secret-endpoint
    name: str  # function:alias | cluster/service | secret name | secret name
    revision: str  # version | family:N | version id | DB instance id
    region: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "revision": self.revision, "region": self.region}

    def describe(self) -> str:
        if self.kind == "secret-endpoint":
            return f"secret-endpoint {self.name} not at {self.revision}"
        return f"{self.kind} {self.name} at {self.revision}"


@dataclass
class EmulatorState:
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: list[Fault] = field(default_factory=list)
    rate_faults: list[RateFault] = field(default_factory=list)
    injected: Counter = field(default_factory=Counter)  # by kind
    injected_by_operation: Counter = field(default_factory=Counter)
    calls: Counter = field(default_factory=Counter)
    calls_by_service: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    total_calls: int = 0
    marks: list[Mark] = field(default_factory=list)

    # -- faults ---------------------------------------------------------------------------
    def add_fault(self, fault: Fault | RateFault) -> None:
        with self.lock:
            if isinstance(fault, RateFault):
                self.rate_faults.append(fault)
            else:
                self.faults.append(fault)

    def clear_faults(self) -> int:
        with self.lock:
            n = len(self.faults) + len(self.rate_faults)
            self.faults.clear()
            self.rate_faults.clear()
            return n

    def list_faults(self) -> list[dict[str, Any]]:
        with self.lock:
            return [f.to_json() for f in self.faults] + [f.to_json() for f in self.rate_faults]

    # -- calls ----------------------------------------------------------------------------
    def record(self, op: Operation) -> Fault | None:
        """Counts one AWS request and takes the first pending fault that matches it: a
        counted one first, else the first matching rate fault's draw."""
        with self.lock:
            self.total_calls += 1
            self.calls[op.name] += 1
            self.calls_by_service[op.service][op.name] += 1
            taken = self._take(op)
            if taken is not None:
                self.injected[taken.kind] += 1
                self.injected_by_operation[op.name] += 1
            return taken

    def _take(self, op: Operation) -> Fault | None:
        for i, fault in enumerate(self.faults):
            if fault.matches(op):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self.faults[i]
                return Fault(fault.operation, fault.kind, 1, fault.latency_ms, fault.service)
        for rate in self.rate_faults:
            if rate.matches(op):
                kind = rate.draw()
                return None if kind is None else Fault(rate.operation, kind, 1, rate.latency_ms, rate.service)
        return None

    def calls_json(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": self.total_calls,
                "operations": dict(sorted(self.calls.items())),
                "by_service": {s: dict(sorted(c.items())) for s, c in sorted(self.calls_by_service.items())},
                "faults_injected": {
                    "total": sum(self.injected.values()),
                    "by_kind": dict(sorted(self.injected.items())),
                    "by_operation": dict(sorted(self.injected_by_operation.items())),
                },
            }

    def reset_calls(self) -> None:
        with self.lock:
            self.total_calls = 0
            self.calls.clear()
            self.calls_by_service.clear()
            self.injected.clear()
            self.injected_by_operation.clear()

    # -- marks ----------------------------------------------------------------------------
    def add_mark(self, mark: Mark) -> None:
        with self.lock:
            if mark not in self.marks:
                self.marks.append(mark)

    def list_marks(self) -> list[Mark]:
        with self.lock:
            return list(self.marks)

    def clear_marks(self) -> None:
        with self.lock:
            self.marks.clear()

    def reset(self) -> None:
        self.clear_faults()
        self.reset_calls()
        self.clear_marks()
