"""rollback.metrics: threshold checks and runbook 004's decision tree from Python, over a
static source, a Prometheus HTTP API (a local server speaking its JSON) and CloudWatch on the
emulator through the real SDK."""

from __future__ import annotations

import datetime
import http.server
import json
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rollback
from conftest import EmulatorHandle
from rollback.aws import CloudWatchSource
from rollback.metrics import DecisionPolicy, PrometheusSource, Series, StaticSource, Threshold, decide
from rollback.testing import InMemoryTarget, assert_compensated, assert_succeeded

NOW = datetime.datetime(2026, 12, 4, 12, 0, tzinfo=datetime.timezone.utc)
ONCE = rollback.Policy(attempts=1)


def minutes(values: list[float], end: datetime.datetime = NOW) -> list[tuple[datetime.datetime, float]]:
    """One point a minute, the last at ``end``."""
    return [(end - datetime.timedelta(minutes=len(values) - 1 - i), v) for i, v in enumerate(values)]


def source(error_rate: list[float], latency: list[float]) -> StaticSource:
    return StaticSource(
        "replay",
        {
            "errors": [Series("error_rate", minutes(error_rate), labels={"service": "api"})],
            "p95": [Series("latency_p95", minutes(latency), labels={"service": "api"})],
        },
    )


def test_threshold_check_sustained_breach_and_no_data(rollback_state_dir: Path) -> None:
    src = source([0.07] * 8, [0.4] * 8)
    breach = Threshold(src, "errors", above=0.05, sustained_for=300, step=60, at=NOW, policy=ONCE)
    verdict = breach.run()
    assert not verdict.passed
    assert "0.07" in verdict.evidence or "7" in verdict.evidence, verdict.evidence
    calm = Threshold(src, "p95", above=2.0, sustained_for=300, step=60, at=NOW, policy=ONCE)
    assert calm.run().passed
    # One minute under the threshold inside the window: not sustained.
    blip = Threshold(source([0.07, 0.07, 0.07, 0.01, 0.07, 0.07, 0.07, 0.07], [0.4] * 8), "errors", above=0.05, step=60, at=NOW, policy=ONCE)
    assert blip.run().passed
    # No data is never read as healthy, unless asked.
    missing = Threshold(src, "nothing", above=0.05, step=60, at=NOW, policy=ONCE)
    assert not missing.run().passed and "no data" in missing.run().evidence
    assert Threshold(src, "nothing", above=0.05, step=60, at=NOW, policy=ONCE, pass_on_no_data=True).run().passed
    # As a transaction's check: a breach puts the target back.
    api = InMemoryTarget("api", ["1", "2"])
    report = rollback.Transaction("t", reason="r").add(api, rollback.Previous()).verify(breach).run()
    assert_compensated(report, error_kind="verification_failed")
    report = rollback.Transaction("t", reason="r").add(api, rollback.Previous()).verify(calm).run()
    assert_succeeded(report)


def test_threshold_bad_input() -> None:
    src = source([0.0], [0.0])
    with pytest.raises(rollback.InvalidInputError, match="not both"):
        Threshold(src, "errors", above=1, below=0)
    with pytest.raises(rollback.InvalidInputError, match="give the threshold"):
        Threshold(src, "errors")
    with pytest.raises(rollback.InvalidInputError, match="finite"):
        Threshold(src, "errors", above=float("nan"))
    with pytest.raises(rollback.InvalidInputError, match="sustained_for"):
        Threshold(src, "errors", above=1, sustained_for=-1)
    with pytest.raises(rollback.InvalidInputError, match="http"):
        PrometheusSource("prometheus:9090")
    with pytest.raises(rollback.InvalidInputError, match="fraction"):
        DecisionPolicy(error_rate_above=5)


def test_decide_over_a_static_source() -> None:
    now = decide(source([0.07] * 8, [0.4] * 8), error_rate="errors", p95_latency="p95", step=60, at=NOW)
    assert (now.recommendation, now.rollback) == ("rollback_now", True)
    assert "error rate" in now.reasons[0], now.reasons
    errors = now.evidence[0]
    assert errors["signal"] == "error_rate" and errors["breached"] and errors["worst"] == pytest.approx(0.07)
    assert errors["labels"] == {"service": "api"} and errors["window_end"] == NOW
    assert str(now).startswith("roll back immediately")
    calm = decide(source([0.01] * 8, [0.4] * 8), error_rate="errors", p95_latency="p95", step=60, at=NOW)
    assert (calm.recommendation, calm.rollback, calm.within) == ("monitor", False, None)
    strict = decide(
        source([0.01] * 8, [0.4] * 8), error_rate="errors", p95_latency="p95", step=60, at=NOW, policy=DecisionPolicy(latency_p95_above=0.3)
    )
    assert strict.recommendation == "rollback_now" and "p95" in strict.reasons[0]
    broken = decide(source([0.01] * 8, [0.4] * 8), error_rate="errors", p95_latency="p95", step=60, at=NOW, critical_feature_broken=True)
    assert broken.recommendation == "rollback_now"


class Prometheus(http.server.BaseHTTPRequestHandler):
    """/api/v1/query_range answering every query with the series of ``values``."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real Prometheus answers
    values: list[float] = []
    queries: list[str] = []

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(url.query)
        Prometheus.queries.append(q["query"][0])
        raw = q["end"][0]  # RFC 3339 or Unix seconds, as Prometheus takes either
        try:
            end = float(raw)
        except ValueError:
            end = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
        step = float(q["step"][0])
        n = len(self.values)
        points = [[end - (n - 1 - i) * step, str(v)] for i, v in enumerate(self.values)]
        body = {"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"service": "api"}, "values": points}]}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def prometheus() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Prometheus.queries = []
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def test_prometheus_source(prometheus: str) -> None:
    Prometheus.values = [0.09] * 11
    src = PrometheusSource(prometheus, timeout=5)
    decision = decide(src, error_rate='sum(rate(http_requests_total{code=~"5.."}[1m]))', p95_latency="histogram_quantile(0.95, x)")
    assert decision.recommendation == "rollback_now", decision.reasons  # an error rate of 9 %
    assert sorted(Prometheus.queries) == sorted(['sum(rate(http_requests_total{code=~"5.."}[1m]))', "histogram_quantile(0.95, x)"])
    # "below" breaches when values are lower: 0.09 stays below 0.5 for the whole window.
    assert not Threshold(src, "up", below=0.5, policy=ONCE).run().passed
    assert Threshold(src, "up", below=0.01, policy=ONCE).run().passed
    assert len(Prometheus.queries) == 4


def test_cloudwatch_source_on_the_emulator(emu: EmulatorHandle) -> None:
    now = int(datetime.datetime.now(datetime.timezone.utc).timestamp()) // 60 * 60
    points = [[now - m * 60, 0.06 + 0.005 * (m % 3)] for m in reversed(range(8))]
    calm = [[now - m * 60, 0.4] for m in reversed(range(8))]
    emu.seed(
        {
            "cloudwatch": {
                "metrics": [
                    {"namespace": "AgentAuri", "name": "ErrorRate", "dimensions": {"Service": "api"}, "points": points},
                    {"namespace": "AgentAuri", "name": "LatencyP95", "dimensions": {"Service": "api"}, "points": calm},
                ]
            }
        }
    )
    src = CloudWatchSource()
    decision = decide(src, error_rate="AgentAuri ErrorRate Average Service=api", p95_latency="AgentAuri LatencyP95 Average Service=api", step=60)
    assert decision.recommendation == "rollback_now", decision.reasons
    assert emu.count("GetMetricData") == 2
    with pytest.raises(rollback.InvalidInputError):
        Threshold(src, "not a cloudwatch query with $$ characters", above=1)
    assert emu.count("GetMetricData") == 2


def incident_source() -> StaticSource:
    """9 % errors from 5 minutes before NOW to 10 minutes after it, 1 % around that."""
    points = [(NOW + datetime.timedelta(minutes=m), 0.09 if -5 <= m <= 10 else 0.01) for m in range(-30, 31)]
    calm = [(NOW + datetime.timedelta(minutes=m), 0.3) for m in range(-30, 31)]
    return StaticSource(
        "replay",
        {
            "errors": [Series("error_rate", points, labels={"service": "api"})],
            "p95": [Series("latency_p95", calm, labels={"service": "api"})],
        },
    )


def test_watch_acts_once_per_incident_and_holds_in_the_cooldown(rollback_state_dir: Path) -> None:
    from rollback.metrics import Watch

    api = InMemoryTarget("api", ["1", "2"])
    asked: list[str] = []

    def respond(decision: rollback.metrics.Decision) -> rollback.Transaction:
        asked.append(decision.recommendation)
        return rollback.Transaction("api-rollback", reason="errors").add(api, rollback.Previous())

    log = rollback_state_dir / "decisions.jsonl"
    watch = Watch(incident_source(), error_rate="errors", p95_latency="p95", step=60, cooldown=3600, log=log)
    records = [watch.step(respond, at=NOW + datetime.timedelta(minutes=m)) for m in (-10, 0, 5, 20, 25)]
    assert [r["verdict"] for r in records] == ["healthy", "acted", "already_acted", "healthy", "healthy"]
    assert asked == ["rollback_now"]
    assert records[1]["outcome"] == "succeeded"
    assert records[1]["evidence"][0]["worst"] == 0.09
    assert api.current_id == "1"
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == records


def test_watch_no_data_dry_run_and_a_wrong_respond(rollback_state_dir: Path) -> None:
    from rollback.metrics import Watch

    api = InMemoryTarget("api", ["1", "2"])
    asked: list[int] = []

    def respond(decision: rollback.metrics.Decision) -> rollback.Transaction:
        asked.append(1)
        return rollback.Transaction("api-rollback", reason="errors").add(api, rollback.Previous())

    held = Watch(incident_source(), error_rate="missing", p95_latency="p95", step=60)
    record = held.step(respond, at=NOW)
    assert (record["verdict"], record["no_data"]) == ("no_data", True)
    acting = Watch(incident_source(), error_rate="missing", p95_latency="p95", step=60, no_data="act", dry_run=True)
    assert acting.step(respond, at=NOW)["verdict"] == "would_act"
    assert asked == [] and api.current_id == "2"

    wrong = Watch(incident_source(), error_rate="errors", p95_latency="p95", step=60)
    record = wrong.step(lambda d: "not a transaction", at=NOW)  # type: ignore[arg-type, return-value]
    assert record["verdict"] == "act_failed" and "rollback.Transaction" in record["error"], record
    with pytest.raises(ValueError, match="hold"):
        Watch(incident_source(), error_rate="errors", p95_latency="p95", no_data="maybe")  # type: ignore[arg-type]
    with pytest.raises(rollback.InvalidInputError, match="interval"):
        Watch(incident_source(), error_rate="errors", p95_latency="p95", policy=DecisionPolicy(error_rate_above=0.05), interval=0)
