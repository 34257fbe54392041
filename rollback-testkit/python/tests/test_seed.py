"""POST /_emulator/seed builds what the runbooks act on."""

from __future__ import annotations

import json
import urllib.request

import pytest
from conftest import CLUSTER, FAMILY, FUNCTION, SECRET, SERVICE, SPEC, _client, describe

from rollback_emulator import EmulatorControlError


def test_seed_returns_what_it_made(seeded):
    (fn,) = seeded["lambda"]
    assert fn["function"] == FUNCTION and fn["alias"] == "live" and fn["versions"] == ["1", "2"]
    assert fn["function_arn"] == f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
    (svc,) = seeded["ecs"]
    assert svc["cluster"] == CLUSTER and svc["service"] == SERVICE
    assert svc["service_arn"] == f"arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/{SERVICE}"
    assert svc["task_definitions"] == [f"{FAMILY}:1", f"{FAMILY}:2", f"{FAMILY}:3"]
    (sec,) = seeded["secrets"]
    assert sec["name"] == SECRET and sec["arn"].startswith(f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET}-")
    assert len(sec["version_ids"]) == 2 and sec["current"] == sec["version_ids"][1]


def test_seeded_lambda(seeded, lam):
    alias = lam.get_alias(FunctionName=FUNCTION, Name="live")
    assert alias["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert alias["FunctionVersion"] == "2"
    assert alias["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.1}}
    assert alias["RevisionId"] == seeded["lambda"][0]["revision_id"]
    versions = {v["Version"]: v for v in lam.list_versions_by_function(FunctionName=FUNCTION)["Versions"]}
    assert versions["1"]["Description"] == "release 1" and versions["2"]["Description"] == "release 2"
    assert versions["1"]["CodeSha256"] != versions["2"]["CodeSha256"]


def test_seeded_ecs(seeded, ecs):
    svc = describe(ecs)
    assert svc["taskDefinition"].endswith(f"task-definition/{FAMILY}:2")
    assert svc["desiredCount"] == 2 and svc["runningCount"] == 2 and svc["pendingCount"] == 0
    (dep,) = svc["deployments"]
    assert dep["status"] == "PRIMARY" and dep["rolloutState"] == "COMPLETED" and dep["runningCount"] == 2
    td1 = ecs.describe_task_definition(taskDefinition=f"{FAMILY}:1")["taskDefinition"]
    assert td1["status"] == "INACTIVE"
    (container,) = td1["containerDefinitions"]
    assert container["name"] == SERVICE and container["image"].endswith("api-gateway:abc123")
    assert container["environment"] == [{"name": "LOG_LEVEL", "value": "info"}, {"name": "DB_PASSWORD", "value": "hunter2"}]
    td3 = ecs.describe_task_definition(taskDefinition=f"{FAMILY}:3")["taskDefinition"]
    assert [c["name"] for c in td3["containerDefinitions"]] == [SERVICE, "sidecar"]
    active = ecs.list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[1] for a in active] == ["2", "3"]


def test_seeded_ecs_images_are_in_ecr_unless_missing(emu):
    ecr_url = "123456789012.dkr.ecr.us-east-1.amazonaws.com/gone"
    emu.seed(
        {
            "ecs": [
                {
                    "cluster": CLUSTER,
                    "service": "gone",
                    "family": "gone",
                    "revisions": [{"image": f"{ecr_url}:1"}, {"image": f"{ecr_url}:2", "image_missing": True}, {"image": "nginx:1.25"}],
                }
            ]
        }
    )
    ecr = _client(emu, "ecr")
    found = ecr.describe_images(repositoryName="gone", imageIds=[{"imageTag": "1"}])["imageDetails"]
    assert [d["imageTags"] for d in found] == [["1"]] and found[0]["imageDigest"].startswith("sha256:")
    with pytest.raises(ecr.exceptions.ImageNotFoundException):
        ecr.describe_images(repositoryName="gone", imageIds=[{"imageTag": "2"}])
    assert [r["repositoryName"] for r in ecr.describe_repositories()["repositories"]] == ["gone"]
    assert emu.calls()["operations"].get("DescribeImages") == 2


def test_seeded_secret(seeded, sm):
    first, second = seeded["secrets"][0]["version_ids"]
    assert sm.get_secret_value(SecretId=SECRET)["SecretString"] == "new-value"
    stages = {v["VersionId"]: v["VersionStages"] for v in sm.list_secret_version_ids(SecretId=SECRET)["Versions"]}
    assert stages == {first: ["AWSPREVIOUS"], second: ["AWSCURRENT"]}


def test_seeding_the_same_names_twice_is_a_clear_400(seeded, emu):
    with pytest.raises(EmulatorControlError, match=r"400: seed: lambda function .* already exists"):
        emu.seed(SPEC)
    with pytest.raises(EmulatorControlError, match=r"400: seed: secret .* already exists"):
        emu.seed({"secrets": SPEC["secrets"]})
    with pytest.raises(EmulatorControlError, match=r"400: seed: task definition family .* already exists"):
        emu.seed({"ecs": SPEC["ecs"]})


@pytest.mark.parametrize(
    "spec, message",
    [
        ([], "must be a JSON object"),
        ({"lambdas": []}, "unknown keys"),
        ({"lambda": [{"function": "f"}]}, "'versions' is required"),
        ({"lambda": [{"function": "f", "versions": ["a"], "alias": "live", "alias_version": "3"}]}, "alias_version"),
        ({"ecs": [{"cluster": "c", "service": "s", "family": "f", "revisions": [{"image": "i"}], "inactive": [1]}]}, "cannot be inactive"),
        ({"secrets": [{"name": "s", "values": []}]}, "non-empty list"),
    ],
)
def test_bad_seed_specs_are_400(emu, spec, message):
    req = urllib.request.Request(
        f"{emu.endpoint}/_emulator/seed", data=json.dumps(spec).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req)
    assert err.value.code == 400
    assert message in json.loads(err.value.read())["error"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"rds": [{"engine": "postgres"}]}, "'db_instance_id' is required"),
        ({"rds": [{"db_instance_id": "d", "snapshots": [{"id": "s", "type": "weekly", "created": 0}]}]}, "manual or automated"),
        ({"rds": [{"db_instance_id": "d", "snapshots": [{"id": "s"}]}]}, "'created' is required"),
        ({"rds": [{"db_instance_id": "d", "snapshots": [{"id": "s", "created": "yesterday"}]}]}, "not an ISO-8601"),
        ({"rds": [{"db_instance_id": "d", "snapshots": [{"id": "rds:x", "type": "manual", "created": 0}]}]}, "cannot start with 'rds:'"),
        ({"rds": [{"db_instance_id": "d", "colour": "red"}]}, "unknown keys"),
        ({"cloudwatch": {"alarms": [{"name": "a", "state": "RED"}]}}, "'state' must be one of"),
        ({"cloudwatch": {"metrics": [{"namespace": "n", "name": "m", "points": [[0]]}]}}, "must be [time, value]"),
        ({"cloudwatch": []}, "'cloudwatch' must be an object"),
        ({"codepipeline": [{"name": "p", "stages": ["Only"]}]}, "at least 2 stage names"),
    ],
)
def test_bad_new_seed_specs_are_400(emu, spec, message):
    with pytest.raises(EmulatorControlError, match="400") as err:
        emu.seed(spec)
    assert message in str(err.value)


def test_rds_cloudwatch_codepipeline_twice_is_a_clear_400(emu):
    from conftest import RDS_SPEC

    emu.seed({"rds": RDS_SPEC["rds"], "cloudwatch": {"alarms": [{"name": "a"}]}, "codepipeline": [{"name": "P", "stages": ["A", "B"]}]})
    with pytest.raises(EmulatorControlError, match=r"400: seed: DB instance .* already exists"):
        emu.seed({"rds": RDS_SPEC["rds"]})
    with pytest.raises(EmulatorControlError, match=r"400: seed: CloudWatch alarm 'a' already exists"):
        emu.seed({"cloudwatch": {"alarms": [{"name": "a"}]}})
    with pytest.raises(EmulatorControlError, match=r"400: seed: pipeline 'P' already exists"):
        emu.seed({"codepipeline": [{"name": "P", "stages": ["A", "B"]}]})


def test_seed_rds_with_names_and_defaults(emu, rds):
    made = emu.seed(
        {
            "rds": [
                {
                    "db_instance_id": "plain",
                    "security_groups": ["app-db"],
                    "created": "2025-01-01T00:00:00Z",
                    "snapshots": [{"type": "automated", "created": 1766894400}],
                }
            ]
        }
    )
    (db,) = made["rds"]
    assert db["security_groups"][0].startswith("sg-") and db["subnet_group"] is None
    assert db["automated_snapshots"] == ["rds:plain-2025-12-28-04-00"]
    got = rds.describe_db_instances(DBInstanceIdentifier="plain")["DBInstances"][0]
    assert got["Engine"] == "postgres" and got["EngineVersion"] == "15.4" and got["DBInstanceStatus"] == "available"
    assert got["InstanceCreateTime"].isoformat() == "2025-01-01T00:00:00+00:00"
