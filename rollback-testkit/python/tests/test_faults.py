"""Injected faults come back as the errors botocore (and the Rust SDK) know, then stop."""

from __future__ import annotations

import json
import time
import urllib.request

import botocore.exceptions
import pytest
from conftest import CLUSTER, FAMILY, FUNCTION, SECRET, SERVICE


def error_of(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kwargs)
    return err.value.response


def test_ecs_throttle_count_then_success(seeded, ecs, emu):
    emu.inject("UpdateService", "throttle", count=2)
    for _ in range(2):
        resp = error_of(ecs.update_service, cluster=CLUSTER, service=SERVICE, desiredCount=3)
        assert resp["Error"]["Code"] == "ThrottlingException"
        assert resp["Error"]["Message"] == "Rate exceeded"
        assert resp["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert resp["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == "ThrottlingException"
    # Other operations are not affected, and the third UpdateService goes through.
    assert ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"]
    assert ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=3)["service"]["desiredCount"] == 3
    assert emu.control("GET", "faults") == {"faults": []}


def test_ecs_5xx(seeded, ecs, emu):
    emu.inject("DescribeServices", "5xx", count=1)
    resp = error_of(ecs.describe_services, cluster=CLUSTER, services=[SERVICE])
    assert resp["Error"]["Code"] == "ServiceUnavailableException"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"]


def test_lambda_throttle_and_5xx(seeded, lam, emu):
    emu.inject("UpdateAlias", "throttle", count=1)
    resp = error_of(lam.update_alias, FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    assert resp["Error"]["Code"] == "TooManyRequestsException"
    assert resp["Error"]["Message"] == "Rate exceeded"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert resp["Reason"] == "CallerRateLimitExceeded"
    emu.inject("GetAlias", "5xx", count=1)
    resp = error_of(lam.get_alias, FunctionName=FUNCTION, Name="live")
    assert resp["Error"]["Code"] == "ServiceUnavailableException"
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert lam.get_alias(FunctionName=FUNCTION, Name="live")["FunctionVersion"] == "2"
    # The throttled UpdateAlias never reached moto.
    assert lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")["FunctionVersion"] == "1"


@pytest.mark.parametrize(
    "operation, call",
    [
        ("ListAliases", lambda lam: lam.list_aliases(FunctionName=FUNCTION)),
        ("ListVersionsByFunction", lambda lam: lam.list_versions_by_function(FunctionName=FUNCTION)),
        ("GetFunction", lambda lam: lam.get_function(FunctionName=FUNCTION)),
        ("GetFunctionConfiguration", lambda lam: lam.get_function_configuration(FunctionName=FUNCTION, Qualifier="1")),
        ("PublishVersion", lambda lam: lam.publish_version(FunctionName=FUNCTION)),
        ("CreateAlias", lambda lam: lam.create_alias(FunctionName=FUNCTION, Name="canary", FunctionVersion="1")),
    ],
)
def test_lambda_rest_operations_are_named(seeded, lam, emu, operation, call):
    emu.inject(operation, "throttle", count=1)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(lam)
    assert err.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert emu.calls()["operations"] == {operation: 1}


def test_secretsmanager_fault_and_wildcard(seeded, sm, emu):
    emu.inject("UpdateSecretVersionStage", "throttle", count=1)
    first, second = seeded["secrets"][0]["version_ids"]
    resp = error_of(
        sm.update_secret_version_stage,
        SecretId=SECRET,
        VersionStage="AWSCURRENT",
        MoveToVersionId=first,
        RemoveFromVersionId=second,
    )
    assert resp["Error"]["Code"] == "ThrottlingException"
    emu.inject("*", "5xx", count=2)
    for _ in range(2):
        assert error_of(sm.get_secret_value, SecretId=SECRET)["Error"]["Code"] == "ServiceUnavailableException"
    assert sm.get_secret_value(SecretId=SECRET)["SecretString"] == "new-value"


def test_latency_delays_then_serves(seeded, ecs, emu):
    emu.inject("DescribeServices", "latency", count=1, latency_ms=300)
    started = time.monotonic()
    assert ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"]
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    ecs.describe_services(cluster=CLUSTER, services=[SERVICE])
    assert time.monotonic() - started < 0.3


def test_reset_drops_the_connection(seeded, ecs, emu):
    emu.inject("DescribeServices", "reset", count=1)
    with pytest.raises((botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError)):
        ecs.describe_services(cluster=CLUSTER, services=[SERVICE])
    assert ecs.describe_services(cluster=CLUSTER, services=[SERVICE])["services"]


def test_delete_clears_faults(seeded, ecs, emu):
    emu.inject("ListTaskDefinitions", "throttle", count=5)
    assert len(emu.control("GET", "faults")["faults"]) == 1
    assert emu.control("DELETE", "faults") == {"cleared": 1}
    assert ecs.list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]


def test_service_scoped_fault(seeded, ecs, sm, emu):
    emu.inject("TagResource", "throttle", count=1, service="secretsmanager")
    ecs.tag_resource(resourceArn=seeded["ecs"][0]["service_arn"], tags=[{"key": "k", "value": "v"}])  # ECS's: not faulted
    resp = error_of(sm.tag_resource, SecretId=SECRET, Tags=[{"Key": "k", "Value": "v"}])
    assert resp["Error"]["Code"] == "ThrottlingException"
    assert emu.calls()["by_service"] == {"ecs": {"TagResource": 1}, "secretsmanager": {"TagResource": 1}}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"operation": "updateService", "kind": "throttle"}, "unknown operation"),
        ({"operation": "UpdateService", "kind": "explode"}, "'kind' must be one of"),
        ({"operation": "UpdateService", "kind": "throttle", "count": 0}, "'count' must be an integer >= 1"),
        ({"operation": "UpdateService", "kind": "latency", "count": 1, "latency_ms": 0}, "latency_ms"),
        ({"kind": "throttle"}, "'operation' must be"),
    ],
)
def test_bad_fault_requests_are_400(emu, body, message):
    req = urllib.request.Request(
        f"{emu.endpoint}/_emulator/faults", data=json.dumps(body).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 400
    assert message in json.loads(err.value.read())["error"]


def test_rds_query_protocol_faults(emu, rds):
    emu.inject("DescribeDBInstances", "throttle", count=1, service="rds")
    resp = error_of(rds.describe_db_instances)
    assert resp["Error"]["Code"] == "Throttling" and resp["ResponseMetadata"]["HTTPStatusCode"] == 400
    emu.inject("RestoreDBInstanceFromDBSnapshot", "5xx", count=1)
    resp = error_of(rds.restore_db_instance_from_db_snapshot, DBInstanceIdentifier="x", DBSnapshotIdentifier="y")
    assert resp["Error"]["Code"] == "ServiceUnavailable" and resp["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert rds.describe_db_instances()["DBInstances"] == []
    assert emu.calls()["by_service"] == {"rds": {"DescribeDBInstances": 2, "RestoreDBInstanceFromDBSnapshot": 1}}


@pytest.mark.parametrize(
    "operation, service",
    [
        ("RestoreDBInstanceToPointInTime", None),
        ("DescribeAlarms", "cloudwatch"),
        ("GetMetricData", "monitoring"),
        ("DisableStageTransition", "codepipeline"),
        ("GetPipelineState", None),
    ],
)
def test_new_services_operations_are_known(emu, operation, service):
    added = emu.inject(operation, "throttle", service=service)["added"]
    assert added["operation"] == operation
    if service:
        assert added["service"] == ("cloudwatch" if service == "monitoring" else service)


# -- the seeded rate mode ---------------------------------------------------------------------
def _outcomes(call, n):
    """'ok' or the error code (or 'reset') of each of n calls."""
    out = []
    for _ in range(n):
        try:
            call()
            out.append("ok")
        except botocore.exceptions.ClientError as e:
            out.append(e.response["Error"]["Code"])
        except (botocore.exceptions.ConnectionClosedError, botocore.exceptions.EndpointConnectionError):
            out.append("reset")
    return out


def test_rate_faults_are_seeded_counted_and_never_touch_control_calls(seeded, ecs, emu):
    describe = lambda: ecs.describe_services(cluster=CLUSTER, services=[SERVICE])  # noqa: E731
    added = emu.inject_rate(0.3, ["throttle", "5xx", "reset"], seed=7, service="ecs")
    assert added["added"] == {"operation": "*", "rate": 0.3, "kinds": ["throttle", "5xx", "reset"], "seed": 7, "service": "ecs"}
    first = _outcomes(describe, 60)
    faulted = [o for o in first if o != "ok"]
    # About 30 % of the calls, each of the three kinds among them.
    assert 8 <= len(faulted) <= 30, first
    assert set(faulted) == {"ThrottlingException", "ServiceUnavailableException", "reset"}, first
    calls = emu.calls()
    assert calls["operations"] == {"DescribeServices": 60}
    injected = calls["faults_injected"]
    assert injected["total"] == len(faulted)
    assert injected["by_operation"] == {"DescribeServices": len(faulted)}
    assert injected["by_kind"] == {
        "throttle": faulted.count("ThrottlingException"),
        "5xx": faulted.count("ServiceUnavailableException"),
        "reset": faulted.count("reset"),
    }
    # Control calls (and seeding) are not AWS calls: never counted, never faulted.
    for _ in range(20):
        emu.control("GET", "ping")
    assert emu.calls()["total"] == 60
    # The rate fault stays until cleared; the same seed gives the same sequence again.
    assert emu.control("GET", "faults")["faults"] == [added["added"]]
    assert emu.control("DELETE", "faults") == {"cleared": 1}
    assert _outcomes(describe, 10) == ["ok"] * 10
    emu.inject_rate(0.3, ["throttle", "5xx", "reset"], seed=7, service="ecs")
    assert _outcomes(describe, 60) == first
    emu.control("DELETE", "faults")
    emu.inject_rate(0.3, ["throttle", "5xx", "reset"], seed=8, service="ecs")
    assert _outcomes(describe, 60) != first


def test_rate_faults_are_scoped_by_service_and_operation(seeded, ecs, sm, emu):
    emu.inject_rate(1.0, ["throttle"], seed=1, operation="GetSecretValue")
    assert _outcomes(lambda: sm.get_secret_value(SecretId=SECRET), 3) == ["ThrottlingException"] * 3
    assert _outcomes(lambda: sm.describe_secret(SecretId=SECRET), 3) == ["ok"] * 3
    assert _outcomes(lambda: ecs.describe_services(cluster=CLUSTER, services=[SERVICE]), 3) == ["ok"] * 3
    # A counted fault queued on top is taken first; the calls reset clears the tallies.
    emu.inject("DescribeSecret", "5xx", count=1)
    assert _outcomes(lambda: sm.describe_secret(SecretId=SECRET), 2) == ["ServiceUnavailableException", "ok"]
    assert emu.calls()["faults_injected"]["by_kind"] == {"throttle": 3, "5xx": 1}
    emu.control("DELETE", "calls")
    assert emu.calls()["faults_injected"] == {"total": 0, "by_kind": {}, "by_operation": {}}


@pytest.mark.parametrize(
    "body, message",
    [
        ({"operation": "*", "rate": 0, "kinds": ["throttle"], "seed": 1}, "'rate' must be a number in (0, 1]"),
        ({"operation": "*", "rate": 1.5, "kinds": ["throttle"], "seed": 1}, "'rate' must be a number in (0, 1]"),
        ({"operation": "*", "rate": "0.2", "kinds": ["throttle"], "seed": 1}, "'rate' must be a number"),
        ({"operation": "*", "rate": 0.2, "kinds": [], "seed": 1}, "'kinds' must be a non-empty list"),
        ({"operation": "*", "rate": 0.2, "kinds": ["explode"], "seed": 1}, "'kinds' must be a non-empty list"),
        ({"operation": "*", "rate": 0.2, "kinds": "throttle", "seed": 1}, "'kinds' must be a non-empty list"),
        ({"operation": "*", "rate": 0.2, "kinds": ["throttle"]}, "'seed' must be an integer"),
        ({"operation": "*", "rate": 0.2, "kinds": ["throttle"], "seed": True}, "'seed' must be an integer"),
        ({"operation": "*", "rate": 0.2, "kinds": ["latency"], "seed": 1}, "'latency_ms' must be > 0"),
        ({"operation": "*", "rate": 0.2, "kinds": ["throttle"], "seed": 1, "count": 2}, "no 'count'"),
        ({"operation": "updateService", "rate": 0.2, "kinds": ["throttle"], "seed": 1}, "unknown operation"),
        ({"operation": "*", "rate": 0.2, "kinds": ["throttle"], "seed": 1, "service": "nope"}, "'service' must be"),
        ({"operation": "*", "kind": "throttle", "seed": 1}, "belong to the rate mode"),
    ],
)
def test_bad_rate_fault_requests_are_400(emu, body, message):
    req = urllib.request.Request(f"{emu.endpoint}/_emulator/faults", data=json.dumps(body).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 400
    assert message in json.loads(err.value.read())["error"]
    assert emu.control("GET", "faults") == {"faults": []}
