"""Call counting, health, reset and the control API's own errors."""

from __future__ import annotations

import json
import urllib.request

import pytest
from conftest import CLUSTER, FAMILY, FUNCTION, SECRET, SERVICE, wait_until


def raw(emu, method, path, body=None):
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(f"{emu.endpoint}/_emulator/{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_calls_are_counted_by_operation(seeded, ecs, lam, emu):
    assert emu.calls() == {"total": 0, "operations": {}, "by_service": {}, "faults_injected": {"total": 0, "by_kind": {}, "by_operation": {}}}  # seeding is not counted
    emu.inject("UpdateService", "throttle", count=1)
    with pytest.raises(Exception):
        ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1)
    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1)
    ecs.describe_services(cluster=CLUSTER, services=[SERVICE])
    lam.get_alias(FunctionName=FUNCTION, Name="live")
    emu.health()  # control requests are not AWS calls
    calls = emu.calls()
    assert calls["total"] == 4
    assert calls["operations"] == {"UpdateService": 2, "DescribeServices": 1, "GetAlias": 1}
    assert calls["by_service"] == {"ecs": {"UpdateService": 2, "DescribeServices": 1}, "lambda": {"GetAlias": 1}}
    assert emu.control("DELETE", "calls")["total"] == 0
    assert emu.calls() == {"total": 0, "operations": {}, "by_service": {}, "faults_injected": {"total": 0, "by_kind": {}, "by_operation": {}}}


def test_health_ecs(seeded, ecs, emu):
    emu.set_ecs_convergence(200)
    assert emu.health() == {"healthy": True, "bad_live": []}
    emu.mark_bad("ecs", f"{CLUSTER}/{SERVICE}", f"{FAMILY}:3")
    assert emu.health()["healthy"] is True  # revision 3 is not live yet
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:3")
    assert emu.health() == {"healthy": False, "bad_live": [f"ecs {CLUSTER}/{SERVICE} at {FAMILY}:3"]}
    status, body = raw(emu, "GET", "health")
    assert status == 503 and body["healthy"] is False
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:2")
    assert emu.health()["healthy"] is True
    assert raw(emu, "GET", "health")[0] == 200


def test_health_lambda_version_and_weights(seeded, lam, emu):
    emu.mark_bad("lambda", f"{FUNCTION}:live", "1")
    # Alias is at 2 but routes 10% to 1.
    assert emu.health() == {"healthy": False, "bad_live": [f"lambda {FUNCTION}:live at 1"]}
    lam.update_alias(FunctionName=FUNCTION, Name="live", RoutingConfig={"AdditionalVersionWeights": {}})
    assert emu.health()["healthy"] is True
    lam.update_alias(FunctionName=FUNCTION, Name="live", FunctionVersion="1")
    assert emu.health()["healthy"] is False
    emu.control("DELETE", "bad")
    assert emu.health()["healthy"] is True


def test_health_secret(seeded, sm, emu):
    first, second = seeded["secrets"][0]["version_ids"]
    emu.mark_bad("secret", SECRET, second)
    assert emu.health() == {"healthy": False, "bad_live": [f"secret {SECRET} at {second}"]}
    sm.update_secret_version_stage(SecretId=SECRET, VersionStage="AWSCURRENT", MoveToVersionId=first, RemoveFromVersionId=second)
    assert emu.health()["healthy"] is True


def test_reset_clears_moto_and_emulator_state(seeded, ecs, emu):
    emu.set_ecs_convergence(3_600_000)
    emu.fail_task_definition(f"{FAMILY}:3")
    emu.inject("*", "throttle", count=3)
    emu.mark_bad("ecs", f"{CLUSTER}/{SERVICE}", f"{FAMILY}:2")
    emu.reset()
    status = emu.control("GET", "status")
    assert status["faults"] == [] and status["bad"] == [] and status["calls"]["total"] == 0
    assert status["ecs"] == {"convergence_ms": 1000, "failing": [], "rollouts_in_progress": 0}
    assert ecs.list_clusters()["clusterArns"] == []
    # The same names can be seeded again.
    emu.seed({"ecs": [{"cluster": CLUSTER, "service": SERVICE, "family": FAMILY, "desired_count": 1, "revisions": [{"image": "i:1"}]}]})


def test_reset_during_a_rollout(seeded, ecs, emu):
    emu.set_ecs_convergence(300)
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:3")
    emu.reset()
    assert emu.control("GET", "status")["ecs"]["rollouts_in_progress"] == 0
    assert ecs.list_clusters()["clusterArns"] == []


@pytest.mark.parametrize(
    "method, path, body, status, message",
    [
        ("POST", "nope", {}, 404, "no control endpoint"),
        ("GET", "reset", None, 405, "does not accept GET"),
        ("POST", "faults", b"{not json", 400, "not valid JSON"),
        ("POST", "bad", {"kind": "ecs", "name": "no-slash", "revision": "f:1"}, 400, "cluster/service"),
        ("POST", "bad", {"kind": "lambda", "name": "fn:live", "revision": "x"}, 400, "version number"),
        ("POST", "bad", {"kind": "rds", "name": "x", "revision": "y"}, 400, "'kind' must be one of"),
        ("POST", "ecs/config", {"convergence_ms": -1}, 400, "convergence_ms"),
        ("POST", "ecs/config", {}, 400, "convergence_ms"),
        ("POST", "ecs/fail", {"task_definition": "no-revision"}, 400, "family:N"),
    ],
)
def test_bad_control_requests(emu, method, path, body, status, message):
    got_status, payload = raw(emu, method, path, body)
    assert got_status == status
    assert message in payload["error"]


def test_ecs_fail_list_and_clear(emu):
    emu.fail_task_definition("fam:1")
    assert emu.control("GET", "ecs/fail") == {"failing": ["fam:1"]}
    assert emu.control("DELETE", "ecs/fail") == {"failing": []}
    assert emu.control("GET", "ecs/config") == {"convergence_ms": 1000}


def test_convergence_zero_is_immediate(seeded, ecs, emu):
    emu.set_ecs_convergence(0)
    resp = ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:3")["service"]
    (dep,) = resp["deployments"]
    assert dep["rolloutState"] == "COMPLETED" and resp["runningCount"] == 2
    wait_until(lambda: emu.control("GET", "status")["ecs"]["rollouts_in_progress"] == 0, timeout=2)


def test_iam_enforcement_allows_a_users_actions_and_denies_the_rest_in_the_protocols_shape(seeded, emu):
    import boto3
    from botocore.exceptions import ClientError

    key = emu.control("POST", "iam/users", {"name": "ci", "actions": ["ecs:DescribeServices", "lambda:GetAlias"]})
    as_ci = lambda service: boto3.client(  # noqa: E731
        service,
        endpoint_url=emu.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["access_key_id"],
        aws_secret_access_key=key["secret_access_key"],
    )
    assert emu.control("POST", "iam/enforce", {"enabled": True}) == {"enabled": True}
    try:
        as_ci("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])
        as_ci("lambda").get_alias(FunctionName=FUNCTION, Name="live")
        for call in (
            lambda: as_ci("ecs").update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1),
            lambda: as_ci("lambda").list_versions_by_function(FunctionName=FUNCTION),
        ):
            with pytest.raises(ClientError) as denied:
                call()
            err = denied.value.response["Error"]
            assert err["Code"] == "AccessDeniedException", denied.value.response
            assert "is not authorized to perform: " in err["Message"], err
            assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    finally:
        assert emu.control("POST", "iam/enforce", {"enabled": False}) == {"enabled": False}
    status, body = raw(emu, "POST", "iam/users", {"name": "x"})
    assert status == 400 and "actions" in json.dumps(body)
    # The reset turns enforcement off too.
    emu.control("POST", "iam/enforce", {"enabled": True})
    emu.reset()
    boto3.client(
        "ecs", endpoint_url=emu.endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    ).list_clusters()
