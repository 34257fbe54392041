"""Metrics for checks and decisions (runbook 004): sources, :class:`Threshold` checks and
:func:`decide`, the decision tree with its reasons and evidence."""

import datetime
from collections.abc import Callable, Coroutine, Mapping, Sequence
from os import PathLike
from typing import Any, Literal, final

from typing_extensions import Self, disjoint_base

from . import Check, Policy, Seconds, Transaction

__all__ = [
    "MetricSource",
    "PrometheusSource",
    "StaticSource",
    "Series",
    "Threshold",
    "DecisionPolicy",
    "Decision",
    "decide",
    "decide_async",
    "Watch",
]

@disjoint_base
class MetricSource:
    """Where metrics come from (the sources below, ``rollback.aws.CloudWatchSource``)."""

    @property
    def name(self) -> str: ...

@final
class PrometheusSource(MetricSource):
    """A Prometheus server's HTTP API; queries are PromQL. The bearer token is read from
    the environment variable ``bearer_token_env`` at each query, never kept or shown."""

    def __new__(cls, url: str, *, bearer_token_env: str | None = None, timeout: Seconds | None = None) -> Self: ...

@final
class StaticSource(MetricSource):
    """Answers every query from the series given (tests, replays)."""

    def __new__(cls, name: str, series: Mapping[str, Sequence[Series]]) -> Self: ...

@final
class Series:
    """A time series: a name, labels, and ``(datetime, value)`` points."""

    def __new__(
        cls, name: str, points: Sequence[tuple[datetime.datetime, float]], *, labels: Mapping[str, str] | None = None
    ) -> Self: ...
    @property
    def selector(self) -> str: ...
    @property
    def points(self) -> list[tuple[datetime.datetime, float]]: ...

@final
class Threshold(Check):
    """Fails while ``query`` stays ``above`` (or ``below``) a threshold for
    ``sustained_for`` seconds; no data fails it unless ``pass_on_no_data``."""

    def __new__(
        cls,
        source: MetricSource,
        query: str,
        *,
        above: float | None = None,
        below: float | None = None,
        sustained_for: Seconds = ...,  # 300 s
        step: Seconds | None = None,
        pass_on_no_data: bool = False,
        at: datetime.datetime | None = None,
        policy: Policy | None = None,
    ) -> Self: ...

@final
class DecisionPolicy:
    """The decision tree's thresholds; the defaults are runbook 004's."""

    def __new__(
        cls,
        *,
        error_rate_above: float = 0.05,
        latency_p95_above: float = 2.0,
        sustained_for: Seconds = ...,  # 300 s
        slo_burn_rate_above: float = 1.0,
        rollback_within: Seconds = ...,  # 600 s
    ) -> Self: ...
    @property
    def error_rate_above(self) -> float: ...
    @property
    def latency_p95_above(self) -> float: ...
    @property
    def sustained_for(self) -> datetime.timedelta: ...
    @property
    def rollback_within(self) -> datetime.timedelta: ...

@final
class Decision:
    """What the tree concluded, with reasons (numbers) and evidence per signal."""

    @property
    def recommendation(self) -> Literal["rollback_now", "rollback_within", "monitor"]: ...
    @property
    def within(self) -> datetime.timedelta | None: ...
    @property
    def rollback(self) -> bool: ...
    @property
    def reasons(self) -> list[str]: ...
    @property
    def evidence(self) -> list[dict[str, Any]]: ...
    @property
    def at(self) -> datetime.datetime: ...

def decide(
    source: MetricSource,
    *,
    error_rate: str,
    p95_latency: str,
    slo_burn_rate: str | None = None,
    critical_feature_broken: bool = False,
    policy: DecisionPolicy | None = None,
    step: Seconds = ...,  # 30 s
    at: datetime.datetime | None = None,
) -> Decision:
    """Runbook 004's decision tree over ``source``'s series for the window ending ``at``."""

def decide_async(
    source: MetricSource,
    *,
    error_rate: str,
    p95_latency: str,
    slo_burn_rate: str | None = None,
    critical_feature_broken: bool = False,
    policy: DecisionPolicy | None = None,
    step: Seconds = ...,  # 30 s
    at: datetime.datetime | None = None,
) -> Coroutine[object, None, Decision]: ...

@final
class Watch:
    """Rolls back when the numbers say so: runbook 004's decision tree over ``source`` every
    ``interval``; "roll back immediately" calls ``respond(decision)`` for the Transaction to
    run and runs it, "roll back within" waits its grace and decides again. Once per
    incident, none within ``cooldown`` after an action; a failing source or a signal with no
    data is held (``no_data="hold"``) or acted on (``"act"``). Each look is a record dict
    (``seq``, ``at``, ``verdict``, ``incident``, ``no_data``, ``summary``, ``reasons``,
    ``evidence``, ...), as the decision log ``log`` keeps it, one JSON line each."""

    def __new__(
        cls,
        source: MetricSource,
        *,
        error_rate: str,
        p95_latency: str,
        slo_burn_rate: str | None = None,
        policy: DecisionPolicy | None = None,
        step: Seconds = ...,  # 30 s
        interval: Seconds = ...,  # 30 s
        cooldown: Seconds = ...,  # 30 min
        no_data: Literal["hold", "act"] = "hold",
        dry_run: bool = False,
        log: str | PathLike[str] | None = None,
        status_file: str | PathLike[str] | None = None,
    ) -> Self: ...
    def step(
        self, respond: Callable[[Decision], Transaction], *, at: datetime.datetime | None = None
    ) -> dict[str, Any]:
        """One look at ``at`` (now): decides, acts if the rules say so, returns the record."""
    def step_async(
        self, respond: Callable[[Decision], Transaction], *, at: datetime.datetime | None = None
    ) -> Coroutine[object, None, dict[str, Any]]: ...
    def run(
        self,
        respond: Callable[[Decision], Transaction],
        *,
        max_decisions: int | None = None,
        on_record: Callable[[dict[str, Any]], object] | None = None,
    ) -> dict[str, Any]:
        """Looks now and every ``interval`` until ``max_decisions`` looks (or Ctrl-C)."""
