"""Runbook 004 from Python, end to end and in memory: a Watch replays an incident's metrics
(error rate 1 %, then 9 % for ten minutes, then 1 % again) through the decision tree and
rolls back once, with the cooldown holding a second breach; then a Drill practises the same
rollback and measures it. Swap the StaticSource for ``PrometheusSource(url)`` (or
``rollback.aws.CloudWatchSource``) and the in-memory target for a real one to use it.

    python examples/python/watch_and_drill.py
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

import rollback
from rollback.metrics import Series, StaticSource, Watch
from rollback.testing import InMemoryTarget

START = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.timezone.utc)


def minute(m: int) -> datetime.datetime:
    return START + datetime.timedelta(minutes=m)


def replay() -> StaticSource:
    """An incident's recorded series: 9 % errors from minute 10 to 20 and from 40 to 50."""
    errors = [(minute(m), 0.09 if 10 <= m <= 20 or 40 <= m <= 50 else 0.01) for m in range(0, 61)]
    latency = [(minute(m), 0.3) for m in range(0, 61)]
    return StaticSource(
        "recorded incident",
        {
            "error_rate": [Series("error_rate", errors, labels={"service": "api"})],
            "p95": [Series("p95", latency, labels={"service": "api"})],
        },
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        state = Path(d)
        api = InMemoryTarget("api", ["41", "42"])  # 42 is the bad release
        api.set_healthy("42", False)

        def rollback_api(decision: rollback.metrics.Decision) -> rollback.Transaction:
            print(f"  acting on: {decision}")
            return (
                rollback.Transaction("api-rollback", reason="error rate above 5 %", journal=state / "journal.jsonl", locks_dir=state / "locks")
                .add(api, rollback.Previous())
                .verify(api.health_check(policy=rollback.Policy(attempts=1)))
            )

        watch = Watch(replay(), error_rate="error_rate", p95_latency="p95", step=60, cooldown=3600, log=state / "decisions.jsonl")
        print("== rollback watch over the recorded incident, one look every 5 minutes")
        for m in range(5, 60, 5):
            record = watch.step(rollback_api, at=minute(m))
            print(f"  {minute(m):%H:%M} {record['verdict']:<13} incident={record['incident']}")
        print(f"the api now runs {api.current_id}; rollbacks made: {len(api.applied)}")

        print("== rollback drill: 42 again, the check must notice, the rollback must recover")
        tx = (
            rollback.Transaction("api-rollback", journal=state / "drill.jsonl", locks_dir=state / "locks")
            .add(api, rollback.Previous())
            .verify(api.health_check(policy=rollback.Policy(attempts=1)))
        )
        report = rollback.Drill(tx, environment="staging", break_to=rollback.Exact("42"), probe_interval=0.05).run(history=state / "drills.jsonl")
        print(report["markdown"].splitlines()[0])
        print(f"detected in {report['time_to_detect']} ms, recovered in {report['time_to_recover']} ms; left at {api.current_id}")
        assert report["passed"] and api.current_id == "41"


if __name__ == "__main__":
    main()
