"""CloudWatch through boto3 (JSON 1.0) and through the wire protocol aws-sdk-rust uses
(Smithy RPC v2 CBOR), which moto 5.2.1 does not speak and the emulator translates."""

from __future__ import annotations

import datetime as dt
import time
import urllib.request

import botocore.exceptions
import cbor2
import pytest

NOW = time.time()
CW_SPEC = {
    "cloudwatch": {
        "alarms": [
            {"name": "agentauri-api-5xx", "state": "ALARM", "metric": "HTTPCode_Target_5XX_Count", "namespace": "AWS/ApplicationELB"},
            {"name": "agentauri-db-cpu", "state": "OK", "metric": "CPUUtilization", "namespace": "AWS/RDS", "threshold": 80},
            {"name": "other-alarm", "state": "ALARM"},
            {"name": "agentauri-new"},
        ],
        "metrics": [
            {
                "namespace": "AgentAuri",
                "name": "ErrorRate",
                "dimensions": {"Service": "api"},
                "points": [[NOW - 60 * k, 0.01 * k] for k in range(1, 6)],
            },
            {
                "namespace": "AgentAuri",
                "name": "ErrorRate",
                "dimensions": {"Service": "worker"},
                "points": [[dt.datetime.fromtimestamp(NOW - 120, dt.timezone.utc).isoformat(), 0.5]],
            },
        ],
    }
}
SIGV4 = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/monitoring/aws4_request, SignedHeaders=host, Signature=0"


@pytest.fixture
def cw_seeded(emu):
    return emu.seed(CW_SPEC)


def cbor_call(emu, operation, body, headers=None):
    """A request exactly as aws-sdk-cloudwatch 1.140 sends it (RPC v2 CBOR, awsQueryCompatible)."""
    data = cbor2.dumps(body)
    req = urllib.request.Request(
        f"{emu.endpoint}/service/GraniteServiceVersion20100801/operation/{operation}",
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/cbor",
            "Accept": "application/cbor",
            "smithy-protocol": "rpc-v2-cbor",
            "x-amzn-query-mode": "true",
            "Authorization": SIGV4,
            **(headers or {}),
        },
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, resp.headers, cbor2.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, e.headers, cbor2.loads(e.read())


def metric_query(service="api"):
    return {
        "Id": "errors",
        "MetricStat": {
            "Metric": {"Namespace": "AgentAuri", "MetricName": "ErrorRate", "Dimensions": [{"Name": "Service", "Value": service}]},
            "Period": 60,
            "Stat": "Average",
        },
    }


def test_seed_answer(cw_seeded):
    alarms = {a["name"]: a for a in cw_seeded["cloudwatch"]["alarms"]}
    assert alarms["agentauri-api-5xx"]["state"] == "ALARM"
    assert alarms["agentauri-api-5xx"]["arn"] == "arn:aws:cloudwatch:us-east-1:123456789012:alarm:agentauri-api-5xx"
    assert alarms["agentauri-new"]["state"] == "INSUFFICIENT_DATA"  # AWS's initial state (moto: OK)
    assert cw_seeded["cloudwatch"]["metrics"] == [
        {"namespace": "AgentAuri", "name": "ErrorRate", "points": 5},
        {"namespace": "AgentAuri", "name": "ErrorRate", "points": 1},
    ]


def test_describe_alarms_applies_every_filter(cw_seeded, cw):
    def names(**kw):
        return [a["AlarmName"] for a in cw.describe_alarms(**kw)["MetricAlarms"]]

    # The runbook's verification command: both filters apply (moto applied only the prefix).
    assert names(AlarmNamePrefix="agentauri", StateValue="ALARM") == ["agentauri-api-5xx"]
    assert names(StateValue="ALARM") == ["agentauri-api-5xx", "other-alarm"]
    assert names(AlarmNamePrefix="agentauri") == ["agentauri-api-5xx", "agentauri-db-cpu", "agentauri-new"]
    assert names(AlarmNames=["agentauri-db-cpu", "other-alarm"], StateValue="OK") == ["agentauri-db-cpu"]
    page = cw.describe_alarms(AlarmNamePrefix="agentauri", MaxRecords=2)
    assert [a["AlarmName"] for a in page["MetricAlarms"]] == ["agentauri-api-5xx", "agentauri-db-cpu"]
    rest = cw.describe_alarms(AlarmNamePrefix="agentauri", MaxRecords=2, NextToken=page["NextToken"])
    assert [a["AlarmName"] for a in rest["MetricAlarms"]] == ["agentauri-new"] and "NextToken" not in rest


def test_control_flips_an_alarm(cw_seeded, cw, emu):
    assert emu.set_alarm("agentauri-api-5xx", "OK", "recovered after rollback") == {
        "alarm": {"name": "agentauri-api-5xx", "state": "OK", "reason": "recovered after rollback"}
    }
    (alarm,) = cw.describe_alarms(AlarmNames=["agentauri-api-5xx"])["MetricAlarms"]
    assert alarm["StateValue"] == "OK" and alarm["StateReason"] == "recovered after rollback"
    assert cw.describe_alarms(AlarmNamePrefix="agentauri", StateValue="ALARM")["MetricAlarms"] == []
    emu.set_alarm("agentauri-api-5xx", "ALARM")
    assert cw.describe_alarms(AlarmNames=["agentauri-api-5xx"])["MetricAlarms"][0]["StateValue"] == "ALARM"
    with pytest.raises(Exception, match="404: no CloudWatch alarm 'nope'"):
        emu.set_alarm("nope", "OK")
    with pytest.raises(Exception, match="'state' must be one of"):
        emu.set_alarm("agentauri-api-5xx", "RED")


def test_get_metric_data_newest_first(cw_seeded, cw):
    end = dt.datetime.fromtimestamp(NOW + 1, dt.timezone.utc)
    resp = cw.get_metric_data(
        MetricDataQueries=[metric_query()], StartTime=end - dt.timedelta(minutes=10), EndTime=end
    )
    (result,) = resp["MetricDataResults"]
    assert result["Id"] == "errors" and result["StatusCode"] == "Complete"
    assert result["Values"] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    stamps = result["Timestamps"]
    assert stamps == sorted(stamps, reverse=True)
    assert all(t.second == 0 for t in stamps)  # StartTime rounded down to the minute, as AWS does
    worker = cw.get_metric_data(
        MetricDataQueries=[metric_query("worker")], StartTime=end - dt.timedelta(minutes=10), EndTime=end
    )["MetricDataResults"][0]
    assert worker["Values"] == [0.5]


def test_cbor_describe_alarms(cw_seeded, emu):
    status, headers, body = cbor_call(emu, "DescribeAlarms", {"AlarmNamePrefix": "agentauri", "StateValue": "ALARM"})
    assert status == 200
    assert headers["Content-Type"] == "application/cbor" and headers["smithy-protocol"] == "rpc-v2-cbor"
    (alarm,) = body["MetricAlarms"]
    assert alarm["AlarmName"] == "agentauri-api-5xx" and alarm["StateValue"] == "ALARM"
    # Types are what the Rust decoder demands: timestamps tag 1 (decoded as datetime), doubles
    # as floats, integers as integers.
    assert isinstance(alarm["StateUpdatedTimestamp"], dt.datetime)
    assert isinstance(alarm["Threshold"], float) and isinstance(alarm["EvaluationPeriods"], int)
    assert isinstance(alarm["Period"], int) and alarm["ActionsEnabled"] is True


def test_cbor_get_metric_data(cw_seeded, emu):
    end = NOW + 1
    status, _, body = cbor_call(
        emu,
        "GetMetricData",
        {
            "MetricDataQueries": [metric_query()],
            "StartTime": cbor2.CBORTag(1, end - 600.0),
            "EndTime": cbor2.CBORTag(1, end),
        },
    )
    assert status == 200
    (result,) = body["MetricDataResults"]
    assert result["Values"] == pytest.approx([0.01, 0.02, 0.03, 0.04, 0.05])
    assert all(isinstance(v, float) for v in result["Values"])
    assert all(isinstance(t, dt.datetime) for t in result["Timestamps"])
    assert result["Timestamps"] == sorted(result["Timestamps"], reverse=True)


def test_cbor_errors_carry_the_query_error_code(cw_seeded, emu):
    status, headers, body = cbor_call(emu, "SetAlarmState", {"AlarmName": "nope", "StateValue": "ALARM", "StateReason": "x"})
    assert status == 404
    assert headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
    assert body["__type"].endswith("ResourceNotFound")
    status, _, body = cbor_call(emu, "SetAlarmState", {"AlarmName": "agentauri-api-5xx", "StateValue": "OK", "StateReason": "ok"})
    assert status == 200 and body == {}
    status, _, body = cbor_call(emu, "NoSuchOperation", {})
    assert status == 404 and body["__type"] == "UnknownOperationException"


def test_cbor_faults_and_call_counts(cw_seeded, emu, cw):
    emu.inject("DescribeAlarms", "throttle", count=1, service="cloudwatch")
    emu.inject("GetMetricData", "5xx", count=1)
    status, headers, body = cbor_call(emu, "DescribeAlarms", {})
    assert status == 400 and headers["x-amzn-query-error"] == "Throttling;Sender"
    assert headers["Content-Type"] == "application/cbor" and body == {"__type": "ThrottlingException", "message": "Rate exceeded"}
    status, headers, body = cbor_call(emu, "GetMetricData", {"MetricDataQueries": [], "StartTime": cbor2.CBORTag(1, 0), "EndTime": cbor2.CBORTag(1, 60)})
    assert status == 503 and headers["x-amzn-query-error"] == "ServiceUnavailable;Receiver"
    assert cbor_call(emu, "DescribeAlarms", {})[0] == 200
    # boto3 (JSON protocol): the same operation names; botocore reads the query error code.
    emu.inject("DescribeAlarms", "throttle", count=1, service="monitoring")
    with pytest.raises(botocore.exceptions.ClientError) as err:
        cw.describe_alarms()
    assert err.value.response["Error"]["Code"] == "Throttling"
    calls = emu.calls()
    assert calls["by_service"]["cloudwatch"] == {"DescribeAlarms": 3, "GetMetricData": 1}


def test_cbor_put_metric_data_gzip(emu, cw):
    """aws-sdk-rust gzips large PutMetricData bodies (request compression)."""
    import gzip

    body = {"Namespace": "AgentAuri", "MetricData": [{"MetricName": "Latency", "Value": 1.5, "Timestamp": cbor2.CBORTag(1, NOW - 30)}]}
    data = gzip.compress(cbor2.dumps(body))
    req = urllib.request.Request(
        f"{emu.endpoint}/service/GraniteServiceVersion20100801/operation/PutMetricData",
        data=data,
        method="POST",
        headers={"Content-Type": "application/cbor", "Content-Encoding": "gzip", "smithy-protocol": "rpc-v2-cbor", "Authorization": SIGV4},
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
    (metric,) = cw.list_metrics(Namespace="AgentAuri", MetricName="Latency")["Metrics"]
    assert metric["MetricName"] == "Latency"
