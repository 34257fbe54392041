"""ECS deployments move like AWS's: PRIMARY IN_PROGRESS beside ACTIVE, then one COMPLETED."""

from __future__ import annotations

import botocore.exceptions
import pytest
from conftest import CLUSTER, FAMILY, SERVICE, describe, wait_until


def converged(ecs):
    svc = describe(ecs)
    deps = svc["deployments"]
    if len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED" and svc["runningCount"] == svc["desiredCount"]:
        return svc
    return None


def test_fresh_service_is_steady(seeded, ecs):
    svc = describe(ecs)
    (dep,) = svc["deployments"]
    assert dep["status"] == "PRIMARY" and dep["rolloutState"] == "COMPLETED"
    assert dep["runningCount"] == dep["desiredCount"] == svc["runningCount"] == 2 and dep["pendingCount"] == 0
    ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=[SERVICE], WaiterConfig={"Delay": 1, "MaxAttempts": 2})


def test_update_rolls_out_then_converges(seeded, ecs, emu):
    emu.set_ecs_convergence(600)
    resp = ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:3")["service"]
    assert resp["taskDefinition"].endswith(f"task-definition/{FAMILY}:3")
    new, old = resp["deployments"]
    assert new["status"] == "PRIMARY" and new["rolloutState"] == "IN_PROGRESS"
    assert new["taskDefinition"].endswith(f"{FAMILY}:3") and new["runningCount"] == 0 and new["pendingCount"] == 2
    assert new["rolloutStateReason"] == f"ECS deployment {new['id']} in progress."
    assert new["id"].startswith("ecs-svc/") and new["createdAt"] and new["updatedAt"]
    assert old["status"] == "ACTIVE" and old["rolloutState"] == "COMPLETED" and old["runningCount"] == 2
    assert old["taskDefinition"].endswith(f"{FAMILY}:2")

    during = describe(ecs)
    assert len(during["deployments"]) == 2 and during["deployments"][0]["rolloutState"] == "IN_PROGRESS"

    svc = wait_until(lambda: converged(ecs), timeout=10)
    (dep,) = svc["deployments"]
    assert dep["id"] == new["id"] and dep["status"] == "PRIMARY" and dep["taskDefinition"].endswith(f"{FAMILY}:3")
    assert dep["runningCount"] == 2 and dep["pendingCount"] == 0 and svc["runningCount"] == 2
    assert dep["rolloutStateReason"] == f"ECS deployment {new['id']} completed."
    assert svc["events"][0]["message"] == f"(service {SERVICE}) has reached a steady state."


def test_running_count_ramps_during_the_delay(seeded, ecs, emu):
    emu.set_ecs_convergence(1500)
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:3")
    seen = set()

    def ramped():
        svc = describe(ecs)
        seen.add(svc["deployments"][0]["runningCount"])
        return len(svc["deployments"]) == 1

    wait_until(ramped, timeout=10, interval=0.02)
    assert {0, 1, 2} <= seen


def test_failing_revision_trips_the_circuit_breaker(seeded, ecs, emu):
    emu.set_ecs_convergence(300)
    emu.fail_task_definition(f"arn:aws:ecs:us-east-1:123456789012:task-definition/{FAMILY}:3")
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:3")
    svc = wait_until(lambda: (s := describe(ecs))["deployments"][0]["rolloutState"] == "FAILED" and s, timeout=10)
    new, old = svc["deployments"]
    assert new["status"] == "PRIMARY" and new["taskDefinition"].endswith(f"{FAMILY}:3")
    assert new["rolloutStateReason"] == "ECS deployment circuit breaker: tasks failed to start."
    assert new["runningCount"] == 0 and new["failedTasks"] > 0
    assert old["status"] == "ACTIVE" and old["taskDefinition"].endswith(f"{FAMILY}:2") and old["runningCount"] == 2
    assert svc["runningCount"] == 2

    # Rolling back to the good revision converges to one deployment.
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:2")
    svc = wait_until(lambda: converged(ecs), timeout=10)
    assert svc["deployments"][0]["taskDefinition"].endswith(f"{FAMILY}:2")


def test_advance_converges_now(seeded, ecs, emu):
    emu.set_ecs_convergence(3_600_000)
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:3")
    assert len(describe(ecs)["deployments"]) == 2
    assert emu.advance() == {"converged": 1}
    svc = converged(ecs)
    assert svc is not None and svc["deployments"][0]["taskDefinition"].endswith(f"{FAMILY}:3")


def test_desired_count_only_update(seeded, ecs, emu):
    emu.set_ecs_convergence(300)
    before = describe(ecs)["deployments"][0]["id"]
    resp = ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=4)["service"]
    assert resp["desiredCount"] == 4 and resp["runningCount"] == 2
    (dep,) = resp["deployments"]
    assert dep["id"] == before and dep["desiredCount"] == 4
    svc = wait_until(lambda: (s := describe(ecs))["runningCount"] == 4 and s, timeout=10)
    (dep,) = svc["deployments"]
    assert dep["id"] == before and dep["runningCount"] == 4 and dep["pendingCount"] == 0

    ecs.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=0)
    svc = wait_until(lambda: (s := describe(ecs))["runningCount"] == 0 and s, timeout=10)
    assert svc["desiredCount"] == 0 and len(svc["deployments"]) == 1


def test_force_new_deployment_same_revision(seeded, ecs, emu):
    emu.set_ecs_convergence(200)
    before = describe(ecs)["deployments"][0]["id"]
    resp = ecs.update_service(cluster=CLUSTER, service=SERVICE, forceNewDeployment=True)["service"]
    new, old = resp["deployments"]
    assert new["id"] != before and old["id"] == before
    assert new["taskDefinition"] == old["taskDefinition"]
    svc = wait_until(lambda: converged(ecs), timeout=10)
    assert svc["deployments"][0]["id"] == new["id"]


def test_inactive_revision_is_rejected(seeded, ecs):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:1")
    assert err.value.response["Error"]["Code"] == "ClientException"
    assert "TaskDefinition is inactive" in err.value.response["Error"]["Message"]


def test_family_without_revision_means_latest_active(seeded, ecs, emu):
    emu.set_ecs_convergence(0)
    ecs.deregister_task_definition(taskDefinition=f"{FAMILY}:3")
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=FAMILY)
    assert describe(ecs)["taskDefinition"].endswith(f"{FAMILY}:2")


def test_list_task_definitions_sort_and_paging(seeded, ecs):
    desc = ecs.list_task_definitions(familyPrefix=FAMILY, sort="DESC", maxResults=1)
    assert desc["taskDefinitionArns"][0].endswith(f"{FAMILY}:3") and desc["nextToken"]
    page2 = ecs.list_task_definitions(familyPrefix=FAMILY, sort="DESC", maxResults=1, nextToken=desc["nextToken"])
    assert page2["taskDefinitionArns"][0].endswith(f"{FAMILY}:2") and "nextToken" not in page2
    inactive = ecs.list_task_definitions(familyPrefix=FAMILY, status="INACTIVE")["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[1] for a in inactive] == ["1"]
    paginated = [
        arn
        for page in ecs.get_paginator("list_task_definitions").paginate(familyPrefix=FAMILY, PaginationConfig={"PageSize": 1})
        for arn in page["taskDefinitionArns"]
    ]
    assert [a.rsplit(":", 1)[1] for a in paginated] == ["2", "3"]


def test_describe_services_wire_format_matches_the_model(seeded, ecs, emu):
    """Field names and types as the service model (shared by botocore and the Rust SDK) says."""
    import json
    import urllib.request

    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    emu.set_ecs_convergence(3_600_000)
    ecs.update_service(cluster=CLUSTER, service=SERVICE, taskDefinition=f"{FAMILY}:3")
    body = json.dumps({"cluster": CLUSTER, "services": [SERVICE]})
    req = AWSRequest(
        method="POST",
        url=emu.endpoint + "/",
        data=body,
        headers={
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.DescribeServices",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    SigV4Auth(Credentials("testing", "testing"), "ecs", "us-east-1").add_auth(req)
    prepared = req.prepare()
    raw = urllib.request.urlopen(urllib.request.Request(prepared.url, data=body.encode(), headers=dict(prepared.headers)))
    assert raw.headers["Content-Type"].startswith("application/x-amz-json-1.1")
    wire = json.loads(raw.read())
    model = botocore.session.get_session().get_service_model("ecs")
    deployment_shape = model.shape_for("Deployment")
    service_shape = model.shape_for("Service")
    svc = wire["services"][0]
    assert set(svc) <= set(service_shape.members)
    for dep in svc["deployments"]:
        assert set(dep) <= set(deployment_shape.members), set(dep) - set(deployment_shape.members)
        for key in ("id", "status", "taskDefinition", "rolloutState", "rolloutStateReason"):
            assert isinstance(dep[key], str)
        for key in ("desiredCount", "runningCount", "pendingCount", "failedTasks"):
            assert isinstance(dep[key], int) and not isinstance(dep[key], bool)
        for key in ("createdAt", "updatedAt"):
            assert isinstance(dep[key], (int, float))  # epoch seconds in the JSON protocol
    for key in ("desiredCount", "runningCount", "pendingCount"):
        assert isinstance(svc[key], int)
