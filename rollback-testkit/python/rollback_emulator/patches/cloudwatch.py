"""CloudWatch: alarm filters, alarm states and GetMetricData start times, on top of moto 5.2.1.

* DescribeAlarms applied only ONE of its filters (ActionPrefix, else AlarmNamePrefix, else
  AlarmNames, else StateValue): ``--alarm-name-prefix agentauri --state-value ALARM`` (the
  runbook's verification command) returned every agentauri alarm whatever its state. Now every
  given filter applies (AND), ``AlarmTypes`` is honoured and, as in AWS, only metric alarms are
  returned when it is omitted; ``MaxRecords`` / ``NextToken`` page the answer.
* A new alarm started in ``OK``; AWS starts it in ``INSUFFICIENT_DATA`` ("Unchecked: Initial
  alarm creation").
* GetMetricData used StartTime as given; AWS rounds it down (to the minute within 15 days, to
  5 minutes within 63 days, to the hour before that; to 5/10/20/30 seconds for those periods),
  which moves the period boundaries and so the returned Timestamps.

The wire protocol aws-sdk-rust uses for CloudWatch (Smithy RPC v2 CBOR) is served by
``rollback_emulator.cbor``.
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from typing import Any

from moto.cloudwatch import models as cw_models
from moto.cloudwatch import responses as cw_responses
from moto.cloudwatch.exceptions import InvalidParameterValue
from moto.core.responses import ActionResult

LOCK = threading.RLock()
Backend = cw_models.CloudWatchBackend
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
_orig: dict[str, Any] = {}


def _describe_alarms_response(self: Any) -> ActionResult:
    action_prefix = self._get_param("ActionPrefix")
    name_prefix = self._get_param("AlarmNamePrefix")
    names = self._get_param("AlarmNames", []) or []
    state = self._get_param("StateValue")
    types = self._get_param("AlarmTypes", []) or ["MetricAlarm"]
    max_records = self._get_param("MaxRecords")
    token = self._get_param("NextToken")
    if name_prefix and names:
        raise InvalidParameterValue("AlarmNamePrefix and AlarmNames cannot be used together.")
    alarms = sorted(self.cloudwatch_backend.describe_alarms(), key=lambda a: a.name)
    if action_prefix:
        alarms = [a for a in alarms if any(x.startswith(action_prefix) for x in (a.alarm_actions or []))]
    if name_prefix:
        alarms = [a for a in alarms if a.name.startswith(name_prefix)]
    if names:
        alarms = [a for a in alarms if a.name in names]
    if state:
        alarms = [a for a in alarms if a.state_value == state]
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)[1])
        except Exception:
            raise InvalidParameterValue("The NextToken is invalid.")
    limit = int(max_records) if max_records else 100
    metric = [a for a in alarms if a.rule is None] if "MetricAlarm" in types else []
    composite = [a for a in alarms if a.rule is not None] if "CompositeAlarm" in types else []
    combined = metric + composite
    page = combined[start : start + limit]
    result: dict[str, Any] = {
        "MetricAlarms": [a for a in page if a.rule is None],
        "CompositeAlarms": [a for a in page if a.rule is not None],
    }
    if start + limit < len(combined):
        result["NextToken"] = base64.urlsafe_b64encode(f"offset:{start + limit}".encode()).decode()
    return ActionResult(result)


def _alarm_init(self: Any, *args: Any, **kwargs: Any) -> None:
    _orig["alarm_init"](self, *args, **kwargs)
    self.state_value = "INSUFFICIENT_DATA"


def round_start_time(start: dt.datetime, period: int | None, now: dt.datetime | None = None) -> dt.datetime:
    """StartTime as CloudWatch rounds it (GetMetricData's StartTime documentation)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    aware = start if start.tzinfo else start.replace(tzinfo=dt.timezone.utc)
    age = now - aware
    if period in (1, 5, 10, 20, 30) and age <= dt.timedelta(hours=3):
        step = max(period, 1)
        return aware.replace(second=aware.second - aware.second % step, microsecond=0)
    if age <= dt.timedelta(days=15):
        return aware.replace(second=0, microsecond=0)
    if age <= dt.timedelta(days=63):
        return aware.replace(minute=aware.minute - aware.minute % 5, second=0, microsecond=0)
    return aware.replace(minute=0, second=0, microsecond=0)


def _get_metric_data(self: Backend, queries: list[dict[str, Any]], start_time: dt.datetime, end_time: dt.datetime, scan_by: str = "TimestampAscending") -> Any:
    periods = [int(q["MetricStat"]["Period"]) for q in queries if "MetricStat" in q and q["MetricStat"].get("Period")]
    period = min(periods) if periods else None
    rounded = round_start_time(start_time, period)
    if start_time.tzinfo is None:
        rounded = rounded.replace(tzinfo=None)
    return _orig["get_metric_data"](self, queries, rounded, end_time, scan_by)


def set_alarm(account: str, region: str, name: str, state: str, reason: str) -> dict[str, Any]:
    """POST /_emulator/cloudwatch/alarm: flips an alarm (SetAlarmState) and returns it."""
    backend = cw_models.cloudwatch_backends[account][region]
    with LOCK:
        if name not in backend.alarms:
            raise KeyError(name)
        backend.set_alarm_state(name, reason, None, state)
        alarm = backend.alarms[name]
        return {"name": alarm.name, "state": alarm.state_value, "reason": alarm.state_reason}


def apply() -> None:
    if _orig:
        return
    _orig["describe_alarms_response"] = cw_responses.CloudWatchResponse.describe_alarms
    cw_responses.CloudWatchResponse.describe_alarms = _describe_alarms_response  # type: ignore[method-assign]
    _orig["alarm_init"] = cw_models.Alarm.__init__
    cw_models.Alarm.__init__ = _alarm_init  # type: ignore[method-assign]
    _orig["get_metric_data"] = Backend.get_metric_data
    Backend.get_metric_data = _get_metric_data  # type: ignore[method-assign]
