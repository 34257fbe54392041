"""Metrics for checks and decisions (runbook 004's "When to Rollback" and "Rollback
Decision Tree"): sources (:class:`PrometheusSource`, ``rollback.aws.CloudWatchSource``,
:class:`StaticSource` for tests and replays), :class:`Threshold` checks ("error rate above
5 % for 5 minutes") usable wherever a check is, and :func:`decide`, the decision tree with
its reasons and evidence; :class:`Watch` decides on an interval and rolls back when it says
so (once per incident, with a cooldown). No data is never read as healthy: a threshold without data fails
unless told otherwise, and a query that fails fails the decision.
"""

from __future__ import annotations

from ._rollback import (
    Decision,
    DecisionPolicy,
    MetricSource,
    PrometheusSource,
    Series,
    StaticSource,
    Threshold,
    Watch,
    decide,
    decide_async,
)

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
