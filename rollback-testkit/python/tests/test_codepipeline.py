"""CodePipeline: freezing the pipeline (runbook 003 steps 1 and 5), which moto 5.2.1 lacks."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import botocore.exceptions
import pytest

PIPELINE = "Apgms"


@pytest.fixture
def cp_seeded(emu):
    return emu.seed({"codepipeline": [{"name": PIPELINE, "stages": ["Source", "Build", "Deploy"]}]})


def error_of(call, **kw):
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(**kw)
    return err.value.response["Error"]


def test_seeded_pipeline(cp_seeded, cp):
    (pipe,) = cp_seeded["codepipeline"]
    assert pipe == {"name": PIPELINE, "arn": f"arn:aws:codepipeline:us-east-1:123456789012:{PIPELINE}", "stages": ["Source", "Build", "Deploy"]}
    got = cp.get_pipeline(name=PIPELINE)
    assert [s["name"] for s in got["pipeline"]["stages"]] == ["Source", "Build", "Deploy"]
    assert isinstance(got["metadata"]["created"], dt.datetime)
    (listed,) = cp.list_pipelines()["pipelines"]
    assert listed["name"] == PIPELINE and isinstance(listed["updated"], dt.datetime)


def test_state_before_any_change(cp_seeded, cp):
    state = cp.get_pipeline_state(name=PIPELINE)
    assert state["pipelineName"] == PIPELINE and state["pipelineVersion"] == 1
    stages = state["stageStates"]
    assert [s["stageName"] for s in stages] == ["Source", "Build", "Deploy"]
    assert "inboundTransitionState" not in stages[0]  # the first stage has no inbound transition
    assert stages[1]["inboundTransitionState"] == {"enabled": True}
    assert stages[2]["actionStates"] == [{"actionName": "Deploy"}]


def test_disable_then_enable(cp_seeded, cp):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    cp.disable_stage_transition(pipelineName=PIPELINE, stageName="Deploy", transitionType="Inbound", reason="Rollback in progress")
    deploy = cp.get_pipeline_state(name=PIPELINE)["stageStates"][2]["inboundTransitionState"]
    assert deploy["enabled"] is False and deploy["disabledReason"] == "Rollback in progress"
    assert deploy["lastChangedBy"] == "arn:aws:iam::123456789012:root"
    assert deploy["lastChangedAt"] >= before
    cp.enable_stage_transition(pipelineName=PIPELINE, stageName="Deploy", transitionType="Inbound")
    deploy = cp.get_pipeline_state(name=PIPELINE)["stageStates"][2]["inboundTransitionState"]
    assert deploy["enabled"] is True and "disabledReason" not in deploy and "lastChangedAt" in deploy
    # Outbound is accepted and kept; GetPipelineState has no field for it.
    cp.disable_stage_transition(pipelineName=PIPELINE, stageName="Build", transitionType="Outbound", reason="hold")
    assert cp.get_pipeline_state(name=PIPELINE)["stageStates"][1]["inboundTransitionState"] == {"enabled": True}


def test_errors(cp_seeded, cp):
    err = error_of(cp.disable_stage_transition, pipelineName="Nope", stageName="Deploy", transitionType="Inbound", reason="x")
    assert err["Code"] == "PipelineNotFoundException"
    err = error_of(cp.disable_stage_transition, pipelineName=PIPELINE, stageName="Nope", transitionType="Inbound", reason="x")
    assert err["Code"] == "StageNotFoundException"
    err = error_of(cp.enable_stage_transition, pipelineName=PIPELINE, stageName="Nope", transitionType="Inbound")
    assert err["Code"] == "StageNotFoundException"
    assert error_of(cp.get_pipeline_state, name="Nope")["Code"] == "PipelineNotFoundException"
    # AWS's reason pattern has no ':' or ','.
    err = error_of(cp.disable_stage_transition, pipelineName=PIPELINE, stageName="Deploy", transitionType="Inbound", reason="rollback: txn 7")
    assert err["Code"] == "ValidationException" and "reason" in err["Message"]


def test_raw_json_protocol_as_aws_sdk_rust_sends_it(cp_seeded, emu):
    """aws-sdk-codepipeline 1.131 speaks awsJson1_1 (X-Amz-Target CodePipeline_20150709.*)."""

    def call(op, body):
        req = urllib.request.Request(
            f"{emu.endpoint}/",
            data=json.dumps(body).encode(),
            method="POST",
            headers={
                "X-Amz-Target": f"CodePipeline_20150709.{op}",
                "Content-Type": "application/x-amz-json-1.1",
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/codepipeline/aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, resp.headers, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, e.headers, json.loads(e.read())

    status, headers, _ = call("DisableStageTransition", {"pipelineName": PIPELINE, "stageName": "Deploy", "transitionType": "Inbound", "reason": "Rollback"})
    assert status == 200
    status, headers, body = call("GetPipelineState", {"name": PIPELINE})
    assert status == 200 and headers["Content-Type"] == "application/x-amz-json-1.1"
    assert isinstance(body["created"], (int, float))  # epoch seconds, as the JSON protocol wants
    assert isinstance(body["stageStates"][2]["inboundTransitionState"]["lastChangedAt"], (int, float))
    status, _, body = call("GetPipelineState", {"name": "Nope"})
    assert status == 400 and body["__type"] == "PipelineNotFoundException"
    emu.inject("DisableStageTransition", "throttle", count=1)
    status, headers, body = call("DisableStageTransition", {"pipelineName": PIPELINE, "stageName": "Deploy", "transitionType": "Inbound", "reason": "x"})
    assert status == 400 and body["__type"] == "ThrottlingException"
    assert emu.calls()["by_service"]["codepipeline"] == {"DisableStageTransition": 2, "GetPipelineState": 2}
