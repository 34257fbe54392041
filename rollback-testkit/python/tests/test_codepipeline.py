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


# -- executions (runbook 003 steps 1 and 3) ---------------------------------------------------
from conftest import wait_until  # noqa: E402

A, B, C = "a" * 40, "b" * 40, "c" * 40


@pytest.fixture
def cp_history(emu):
    return emu.seed(
        {
            "codepipeline": [
                {
                    "name": PIPELINE,
                    "stages": ["Source", "Build", "Deploy"],
                    "source": "github",
                    "executions": [
                        {"commit": C, "summary": "release 1.7"},
                        {"commit": B, "summary": "release 1.8"},
                        {"commit": A, "status": "InProgress", "summary": "release 1.9"},
                    ],
                    "failing": [C],
                }
            ]
        }
    )


def test_seeded_executions_newest_first_and_paged(cp_history, cp):
    seeded = cp_history["codepipeline"][0]["executions"]
    assert [(e["commit"], e["status"]) for e in seeded] == [(C, "Succeeded"), (B, "Succeeded"), (A, "InProgress")]
    got = cp.list_pipeline_executions(pipelineName=PIPELINE)["pipelineExecutionSummaries"]
    assert [e["sourceRevisions"][0]["revisionId"] for e in got] == [A, B, C]
    assert got[0]["sourceRevisions"][0] == {"actionName": "Source", "revisionId": A, "revisionSummary": "release 1.9"}
    assert got[0]["startTime"] > got[1]["startTime"] > got[2]["startTime"]
    assert got[1]["trigger"]["triggerType"] == "Webhook"
    page = cp.list_pipeline_executions(pipelineName=PIPELINE, maxResults=2)
    assert len(page["pipelineExecutionSummaries"]) == 2
    rest = cp.list_pipeline_executions(pipelineName=PIPELINE, maxResults=2, nextToken=page["nextToken"])
    assert [e["pipelineExecutionId"] for e in rest["pipelineExecutionSummaries"]] == [seeded[0]["id"]] and "nextToken" not in rest
    one = cp.get_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=seeded[1]["id"])["pipelineExecution"]
    assert one["status"] == "Succeeded" and one["artifactRevisions"][0]["revisionId"] == B
    assert cp.get_pipeline(name=PIPELINE)["pipeline"]["stages"][0]["actions"][0]["actionTypeId"]["provider"] == "CodeStarSourceConnection"


def test_start_pinned_execution_succeeds_in_emulated_time(cp_history, cp, emu):
    emu.set_pipeline_delay(200)
    override = [{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": B}]
    started = cp.start_pipeline_execution(name=PIPELINE, sourceRevisions=override)["pipelineExecutionId"]

    def status():
        return cp.get_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=started)["pipelineExecution"]["status"]

    assert status() == "InProgress"
    assert wait_until(lambda: status() == "Succeeded")
    newest = cp.list_pipeline_executions(pipelineName=PIPELINE)["pipelineExecutionSummaries"][0]
    assert newest["pipelineExecutionId"] == started and newest["trigger"]["triggerType"] == "StartPipelineExecution"
    assert newest["sourceRevisions"][0] == {"actionName": "Source", "revisionId": B, "revisionSummary": "release 1.8"}


def test_failing_commit_and_superseded(cp_history, cp, emu):
    emu.set_pipeline_delay(60_000)
    pin = lambda sha: [{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": sha}]  # noqa: E731
    first = cp.start_pipeline_execution(name=PIPELINE, sourceRevisions=pin(B))["pipelineExecutionId"]
    second = cp.start_pipeline_execution(name=PIPELINE, sourceRevisions=pin(C))["pipelineExecutionId"]
    get = lambda i: cp.get_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=i)["pipelineExecution"]  # noqa: E731
    assert get(first)["status"] == "Superseded"
    assert emu.advance_pipelines() == {"finished": 1}
    failed = get(second)
    assert failed["status"] == "Failed" and "Deploy action failed" in failed["statusSummary"]
    emu.fail_pipeline_commit(B)
    assert emu.control("GET", "codepipeline/fail") == {"failing": sorted([B, C])}
    third = cp.start_pipeline_execution(name=PIPELINE, sourceRevisions=pin(B))["pipelineExecutionId"]
    emu.advance_pipelines()
    assert get(third)["status"] == "Failed"


def test_stop_and_abandon(cp_history, cp, emu):
    emu.set_pipeline_delay(60_000)
    in_flight = cp_history["codepipeline"][0]["executions"][2]["id"]
    cp.stop_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=in_flight, reason="rollback")
    got = cp.list_pipeline_executions(pipelineName=PIPELINE)["pipelineExecutionSummaries"][0]
    assert got["status"] == "Stopping" and got["stopTrigger"] == {"reason": "rollback"}
    assert error_of(cp.stop_pipeline_execution, pipelineName=PIPELINE, pipelineExecutionId=in_flight)["Code"] == "DuplicatedStopRequestException"
    emu.advance_pipelines()
    assert cp.get_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=in_flight)["pipelineExecution"]["status"] == "Stopped"
    err = error_of(cp.stop_pipeline_execution, pipelineName=PIPELINE, pipelineExecutionId=in_flight, abandon=True)
    assert err["Code"] == "PipelineExecutionNotStoppableException"
    pin = [{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": B}]
    started = cp.start_pipeline_execution(name=PIPELINE, sourceRevisions=pin)["pipelineExecutionId"]
    cp.stop_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=started, abandon=True, reason="abandon")
    assert cp.get_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=started)["pipelineExecution"]["status"] == "Stopped"


def test_execution_errors(cp_history, cp, emu):
    assert error_of(cp.list_pipeline_executions, pipelineName="Nope")["Code"] == "PipelineNotFoundException"
    err = error_of(cp.get_pipeline_execution, pipelineName=PIPELINE, pipelineExecutionId="00000000-0000-0000-0000-000000000000")
    assert err["Code"] == "PipelineExecutionNotFoundException"
    bad_type = [{"actionName": "Source", "revisionType": "IMAGE_DIGEST", "revisionValue": "sha256:ab"}]
    assert error_of(cp.start_pipeline_execution, name=PIPELINE, sourceRevisions=bad_type)["Code"] == "ValidationException"
    bad_action = [{"actionName": "Build", "revisionType": "COMMIT_ID", "revisionValue": A}]
    err = error_of(cp.start_pipeline_execution, name=PIPELINE, sourceRevisions=bad_action)
    assert err["Code"] == "ValidationException" and "source actions are Source" in err["Message"]
    emu.seed({"codepipeline": [{"name": "Legacy", "stages": ["Source", "Deploy"], "source": "github-v1"}]})
    pin = [{"actionName": "Source", "revisionType": "COMMIT_ID", "revisionValue": A}]
    err = error_of(cp.start_pipeline_execution, name="Legacy", sourceRevisions=pin)
    assert err["Code"] == "ValidationException" and "provider GitHub" in err["Message"]
    # Without an override, the source's newest revision.
    started = cp.start_pipeline_execution(name=PIPELINE)["pipelineExecutionId"]
    got = cp.get_pipeline_execution(pipelineName=PIPELINE, pipelineExecutionId=started)["pipelineExecution"]
    assert got["artifactRevisions"][0]["revisionId"] == A
    assert emu.control("GET", "status")["codepipeline"]["executions_in_progress"] == 1


def test_seed_validates_executions(emu):
    from rollback_emulator.server import EmulatorControlError

    for bad, needle in [
        ({"name": "P", "stages": ["S", "D"], "source": "svn"}, "'source' must be one of"),
        ({"name": "P", "stages": ["S", "D"], "executions": [{"status": "Succeeded"}]}, "commit"),
        ({"name": "P", "stages": ["S", "D"], "executions": [{"commit": A, "status": "Done"}]}, "'status' must be one of"),
        ({"name": "P", "stages": ["S", "D"], "failing": "abc"}, "'failing' must be a list"),
    ]:
        with pytest.raises(EmulatorControlError) as err:
            emu.seed({"codepipeline": [bad]})
        assert needle in str(err.value)
