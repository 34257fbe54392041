"""Secrets Manager staging labels move like AWS's and GetSecretValue follows AWSCURRENT."""

from __future__ import annotations

import botocore.exceptions
import pytest
from conftest import SECRET


def stages(sm):
    return {v["VersionId"]: v["VersionStages"] for v in sm.list_secret_version_ids(SecretId=SECRET)["Versions"]}


def test_moving_awscurrent_back(seeded, sm):
    first, second = seeded["secrets"][0]["version_ids"]
    sm.update_secret_version_stage(
        SecretId=SECRET, VersionStage="AWSCURRENT", MoveToVersionId=first, RemoveFromVersionId=second
    )
    assert stages(sm) == {first: ["AWSCURRENT"], second: ["AWSPREVIOUS"]}
    value = sm.get_secret_value(SecretId=SECRET)
    assert value["SecretString"] == "old-value" and value["VersionId"] == first
    assert "AWSCURRENT" in value["VersionStages"]
    assert sm.get_secret_value(SecretId=SECRET, VersionStage="AWSPREVIOUS")["SecretString"] == "new-value"
    described = sm.describe_secret(SecretId=SECRET)["VersionIdsToStages"]
    assert described == {first: ["AWSCURRENT"], second: ["AWSPREVIOUS"]}


def test_put_after_a_move_makes_the_right_version_previous(seeded, sm):
    first, second = seeded["secrets"][0]["version_ids"]
    sm.update_secret_version_stage(
        SecretId=SECRET, VersionStage="AWSCURRENT", MoveToVersionId=first, RemoveFromVersionId=second
    )
    third = sm.put_secret_value(SecretId=SECRET, SecretString="third-value")["VersionId"]
    assert sm.get_secret_value(SecretId=SECRET)["SecretString"] == "third-value"
    got = stages(sm)
    assert got[third] == ["AWSCURRENT"] and got[first] == ["AWSPREVIOUS"]
    assert second not in got  # no labels left: deprecated, listed only with IncludeDeprecated
    assert sm.list_secret_version_ids(SecretId=SECRET, IncludeDeprecated=True)["Versions"][1]["VersionId"] == second


def test_awsprevious_is_removed_from_whichever_version_had_it(seeded, sm):
    first, second = seeded["secrets"][0]["version_ids"]
    third = sm.put_secret_value(SecretId=SECRET, SecretString="third-value")["VersionId"]
    assert stages(sm) == {second: ["AWSPREVIOUS"], third: ["AWSCURRENT"]}
    sm.update_secret_version_stage(
        SecretId=SECRET, VersionStage="AWSCURRENT", MoveToVersionId=first, RemoveFromVersionId=third
    )
    got = sm.list_secret_version_ids(SecretId=SECRET, IncludeDeprecated=True)["Versions"]
    assert {v["VersionId"]: v["VersionStages"] for v in got} == {
        first: ["AWSCURRENT"],
        second: [],
        third: ["AWSPREVIOUS"],
    }


def test_list_secret_version_ids_fields(seeded, sm):
    first, second = seeded["secrets"][0]["version_ids"]
    resp = sm.list_secret_version_ids(SecretId=SECRET)
    assert resp["ARN"] == seeded["secrets"][0]["arn"] and resp["Name"] == SECRET
    assert "NextToken" not in resp
    versions = resp["Versions"]
    assert [v["VersionId"] for v in versions] == [first, second]
    assert versions[0]["CreatedDate"] < versions[1]["CreatedDate"]


def test_moving_awscurrent_without_remove_from_is_rejected(seeded, sm):
    first, _ = seeded["secrets"][0]["version_ids"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sm.update_secret_version_stage(SecretId=SECRET, VersionStage="AWSCURRENT", MoveToVersionId=first)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"


def test_missing_secret_is_resource_not_found(emu, sm):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        sm.list_secret_version_ids(SecretId="nope")
    assert err.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_json_protocol_content_type(seeded, sm):
    resp = sm.list_secret_version_ids(SecretId=SECRET)
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/x-amz-json-1.1"
