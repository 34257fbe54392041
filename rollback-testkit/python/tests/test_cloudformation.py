"""CloudFormation: stacks whose templates live in a versioned bucket (runbook 003 step 3), and
the gaps of moto 5.2.1 that patches/cloudformation.py closes."""

from __future__ import annotations

import json

import botocore.exceptions
import pytest
from conftest import _client

STACK = "apgms-staging"
BUCKET = "apgms-templates"
KEY = "staging/template.json"


def template(timeout: int) -> dict:
    return {
        "Parameters": {"Stage": {"Type": "String", "Default": "staging"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": timeout}}},
    }


@pytest.fixture
def cfn(emu):
    return _client(emu, "cloudformation")


@pytest.fixture
def s3(emu):
    return _client(emu, "s3")


@pytest.fixture
def stack(emu):
    return emu.seed(
        {
            "cloudformation": [
                {"stack": STACK, "bucket": BUCKET, "key": KEY, "templates": [template(30), template(60)], "parameters": {"Stage": "staging"}}
            ]
        }
    )["cloudformation"][0]


def error_of(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kw)
    return err.value.response["Error"]


def url(emu, version=None, key=KEY):
    return f"{emu.endpoint}/{BUCKET}/{key}" + (f"?versionId={version}" if version else "")


def body(cfn):
    got = cfn.get_template(StackName=STACK)["TemplateBody"]  # botocore parses a JSON body
    return json.loads(json.dumps(got)) if not isinstance(got, str) else json.loads(got)


def test_seeded_stack_and_versions(stack, cfn, s3):
    assert stack["stack"] == STACK and len(stack["version_ids"]) == 2
    desc = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert desc["StackStatus"] == "UPDATE_COMPLETE" and "LastUpdatedTime" in desc
    assert body(cfn) == template(60)
    listed = s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)["Versions"]
    assert [v["VersionId"] for v in listed] == stack["version_ids"][::-1]
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"


def test_template_url_pins_the_version_path_and_virtual_hosted(emu, stack, cfn):
    old = stack["version_ids"][0]
    cfn.update_stack(StackName=STACK, TemplateURL=url(emu, old), Parameters=[{"ParameterKey": "Stage", "UsePreviousValue": True}])
    assert body(cfn) == template(30)
    new = stack["version_ids"][1]
    cfn.update_stack(StackName=STACK, TemplateURL=f"https://{BUCKET}.s3.us-east-1.amazonaws.com/{KEY}?versionId={new}")
    assert body(cfn) == template(60)
    for bad in (url(emu, "not-a-version"), url(emu, key="nope.json"), f"{emu.endpoint}/no-such-bucket/{KEY}"):
        err = error_of(cfn.update_stack, StackName=STACK, TemplateURL=bad)
        assert err["Code"] == "ValidationError" and "TemplateURL must reference a valid S3 object" in err["Message"], bad


def test_no_updates_with_or_without_parameters(emu, stack, cfn):
    current = stack["version_ids"][1]
    for params in ([], [{"ParameterKey": "Stage", "UsePreviousValue": True}]):
        err = error_of(cfn.update_stack, StackName=STACK, TemplateURL=url(emu, current), Parameters=params)
        assert err["Code"] == "ValidationError" and err["Message"] == "No updates are to be performed."


def test_an_armed_failure_rolls_the_next_update_back_with_events(emu, stack, cfn):
    emu.control("POST", "cloudformation/fail", {"stack": STACK, "resource": "Queue", "reason": "VisibilityTimeout is out of range"})
    assert emu.control("GET", "cloudformation/fail")["failing"][0]["stack"] == STACK
    before = cfn.describe_stacks(StackName=STACK)["Stacks"][0]["LastUpdatedTime"]
    cfn.update_stack(StackName=STACK, TemplateURL=url(emu, stack["version_ids"][0]))
    desc = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert desc["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE" and desc["LastUpdatedTime"] >= before
    assert body(cfn) == template(60)  # the update was rolled back
    events = cfn.describe_stack_events(StackName=STACK)["StackEvents"]  # newest first
    statuses = [(e["LogicalResourceId"], e["ResourceStatus"]) for e in events[:8]]
    assert statuses == [
        (STACK, "UPDATE_ROLLBACK_COMPLETE"),
        (STACK, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"),
        ("Queue", "UPDATE_COMPLETE"),
        ("Queue", "UPDATE_IN_PROGRESS"),
        (STACK, "UPDATE_ROLLBACK_IN_PROGRESS"),
        ("Queue", "UPDATE_FAILED"),
        ("Queue", "UPDATE_IN_PROGRESS"),
        (STACK, "UPDATE_IN_PROGRESS"),
    ]
    assert events[5]["ResourceStatusReason"] == "VisibilityTimeout is out of range"
    assert events[5]["ResourceType"] == "AWS::SQS::Queue"
    # consumed: the next update goes through
    assert emu.control("GET", "cloudformation/fail")["failing"] == []
    cfn.update_stack(StackName=STACK, TemplateURL=url(emu, stack["version_ids"][0]))
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"


def test_status_control_and_bad_control_input(emu, stack, cfn):
    emu.control("POST", "cloudformation/status", {"stack": STACK, "status": "UPDATE_IN_PROGRESS"})
    assert cfn.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_IN_PROGRESS"
    from test_control import raw

    assert raw(emu, "POST", "cloudformation/status", {"stack": STACK, "status": "SLEEPING"})[0] == 400
    assert raw(emu, "POST", "cloudformation/status", {"stack": "nope", "status": "UPDATE_COMPLETE"})[0] == 404
    assert raw(emu, "POST", "cloudformation/fail", {"resource": "Queue"})[0] == 400
    emu.control("POST", "cloudformation/fail", {"stack": STACK})
    emu.reset()
    assert emu.control("GET", "cloudformation/fail")["failing"] == []


def test_unversioned_bucket_and_calls_counted(emu, cfn, s3):
    emu.seed({"cloudformation": [{"stack": STACK, "bucket": BUCKET, "key": KEY, "templates": [template(30)], "versioned": False}]})
    assert "Status" not in s3.get_bucket_versioning(Bucket=BUCKET)
    emu.control("DELETE", "calls")
    cfn.describe_stacks(StackName=STACK)
    s3.list_object_versions(Bucket=BUCKET, Prefix=KEY)
    ops = emu.calls()["operations"]
    assert ops.get("cloudformation:DescribeStacks", ops.get("DescribeStacks")) == 1, ops
    assert ops.get("s3:ListObjectVersions", ops.get("ListObjectVersions")) == 1, ops
