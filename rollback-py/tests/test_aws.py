"""rollback.aws against the AWS emulator (moto with the project's schedulers), through the
real AWS SDK for Rust: every target, blocking and asyncio, checks, failures and their
compensation, bad input refused with the emulator's state unchanged, secrets never shown."""

from __future__ import annotations

import _thread
import asyncio
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

import rollback
from conftest import ROOT, EmulatorHandle
from rollback.aws import (
    AlarmCheck,
    AwsConfig,
    CloudFormationStack,
    ConnectionHandover,
    EcsDesiredCount,
    EcsRestart,
    EcsService,
    LambdaAlias,
    PipelineExecution,
    PipelineTransition,
    RdsInstance,
    SecretVersion,
)

FN = "agentauri-mcp-s3-tools-prod"
CANARY = "claude-proxy-api-prod"
CLUSTER = "agentauri-production"
SECRET = "agentauri/production/jwt-secret"
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
SERVICES = [
    ("api-gateway-v2", "agentauri-production-api-gateway"),
    ("event-processor", "agentauri-production-event-processor"),
    ("action-workers", "agentauri-production-action-workers"),
]
FAST = rollback.Policy(attempts=40, interval=0.25, deadline=20)


def health_check(emu: EmulatorHandle) -> rollback.HttpCheck:
    return rollback.HttpCheck(f"{emu.endpoint}/_emulator/health", json_pointer="/healthy", json_value=True, policy=FAST)


def seed_services(emu: EmulatorHandle, tags: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    ecs = []
    for service, family in SERVICES:
        repo = service.removesuffix("-v2")
        ecs.append(
            {
                "cluster": CLUSTER,
                "service": service,
                "family": family,
                "desired_count": 2,
                "revisions": [
                    {"image": f"{ECR}/{repo}:{t}", "environment": dict(env or {"LOG_LEVEL": "info"}, RELEASE=t)} for t in tags
                ],
                "current": len(tags),
            }
        )
    seeded: dict[str, Any] = emu.seed({"ecs": ecs})
    return seeded


# -- Lambda ------------------------------------------------------------------------------------


def test_lambda_alias_rollback_verified_by_health(emu: EmulatorHandle) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["release 1.4.0", "release 1.5.0"], "alias_version": "2"}]})
    emu.mark_bad("lambda", f"{FN}:live", "2")
    live = LambdaAlias(FN, "live")
    assert (live.function_name, live.alias, live.kind, live.target_id) == (FN, "live", "lambda-alias", f"lambda-alias/{FN}:live")
    assert repr(live) == f"<LambdaAlias lambda-alias/{FN}:live>"
    assert live.current().id == "2"
    history = live.history()
    assert [r.id for r in history][:2] == ["2", "1"]
    assert history[1].description == "release 1.4.0"
    change = live.plan(rollback.Previous())
    assert (change.from_revision.id, change.to_revision.id, change.target) == ("2", "1", f"lambda-alias/{FN}:live")
    assert "release 1.5.0 -> release 1.4.0" in str(change)
    assert emu.mutations() == 0
    events: list[rollback.Event] = []
    report = rollback.Transaction("roll back the MCP server", reason="INC-3107").add(
        live, rollback.Previous(), verify=health_check(emu), timeout=60
    ).run(on_event=events.append)
    assert report.outcome == "succeeded", str(report)
    assert live.current().id == "1"
    assert emu.health()["healthy"] is True
    assert emu.count("UpdateAlias") == 1
    assert report.steps[0].verdicts[0].passed
    assert any(e.kind == "applied" and e.target == f"lambda-alias/{FN}:live" for e in events)


def test_canary_reset_clears_the_weights(emu: EmulatorHandle) -> None:
    emu.seed({"lambda": [{"function": CANARY, "alias": "live", "versions": ["2.2.0", "2.3.0"], "alias_version": "1", "routing": {"2": 0.1}}]})
    emu.mark_bad("lambda", f"{CANARY}:live", "2")
    canary = LambdaAlias(CANARY, "live")
    primary = canary.current()
    assert primary.id == "1" and "canary" in primary.facts
    plan = rollback.Transaction("canary to 0", reason="INC-3108").add(canary, rollback.Exact(primary.id)).run(dry_run=True)
    assert "canary" in str(plan.steps[0].diff)
    report = rollback.Transaction("canary to 0", reason="INC-3108").add(canary, rollback.Exact(primary.id), verify=health_check(emu)).run()
    assert report.outcome == "succeeded", str(report)
    after = canary.current()
    assert after.id == "1" and "canary" not in after.facts
    assert emu.health()["healthy"] is True


def test_async_twins_on_lambda(emu: EmulatorHandle) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b", "c"], "alias_version": "3"}]})
    live = LambdaAlias(FN, "live")

    async def main() -> tuple[rollback.Revision, list[rollback.Revision], rollback.Change, rollback.Report]:
        current, history, change = await asyncio.gather(
            live.current_async(), live.history_async(), live.plan_async(rollback.StepsBack(2))
        )
        report = await rollback.Transaction("t", reason="r").add(live, rollback.StepsBack(2)).run_async()
        return current, history, change, report

    current, history, change, report = asyncio.run(main())
    assert current.id == "3" and [r.id for r in history][:3] == ["3", "2", "1"]
    assert change.to_revision.id == "1"
    assert report.outcome == "succeeded" and live.current().id == "1"


def test_throttling_is_retried_with_events(emu: EmulatorHandle) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b"], "alias_version": "2"}]})
    emu.inject("UpdateAlias", "throttle", count=2)
    events: list[rollback.Event] = []
    report = rollback.Transaction("t", reason="r").add(LambdaAlias(FN, "live"), rollback.Previous()).run(on_event=events.append)
    assert report.outcome == "succeeded", str(report)
    assert sum(1 for e in events if e.kind == "retrying") == 2
    assert emu.count("UpdateAlias") == 3


def test_explicit_config_and_the_environment(emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b"], "alias_version": "2"}]})
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    cfg = AwsConfig(region="us-east-1", endpoint_url=emu.endpoint)
    assert (cfg.region, cfg.endpoint_url, cfg.profile) == ("us-east-1", emu.endpoint, None)
    assert "AwsConfig(region=" in repr(cfg)
    assert LambdaAlias(FN, "live", config=cfg).current().id == "2"
    with pytest.raises(rollback.InvalidInputError, match="endpoint_url"):
        AwsConfig(endpoint_url="localhost:4566")
    with pytest.raises(rollback.InvalidInputError):
        AwsConfig(region=" ")



def test_constructors_resolve_nothing_and_load_checks_up_front(emu: EmulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b"], "alias_version": "2"}]})
    # No credentials anywhere (a profile that does not exist): making targets inside an
    # event loop neither fails nor blocks (nothing is resolved); the first call, and load(),
    # say what is wrong.
    keys = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    for k in keys:
        monkeypatch.delenv(k)
    broken = AwsConfig(profile="no-such-profile")

    async def make() -> list[LambdaAlias]:
        return [LambdaAlias(f"fn-{i}", "live", config=broken) for i in range(200)]

    made = asyncio.run(make())
    assert len(made) == 200
    with pytest.raises(rollback.InvalidInputError, match="credentials") as e:
        broken.load()
    assert "profile" in str(e.value), str(e.value)
    with pytest.raises(rollback.InvalidInputError, match="credentials"):
        asyncio.run(broken.load_async())
    with pytest.raises(rollback.RollbackError):
        made[0].current()
    assert emu.count("GetAlias") == 0  # refused before anything was sent
    for k, v in keys.items():
        monkeypatch.setenv(k, v)
    # The environment's settings, resolved and checked up front, then used by targets.
    cfg = AwsConfig.from_env()
    assert repr(cfg) == "AwsConfig(region=None, endpoint_url=None, profile=None)"
    assert LambdaAlias(FN, "live").current().id == "2"
    assert asyncio.run(AwsConfig(region="us-east-1").load_async()).region == "us-east-1"
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # the emulator's server sets it
    with pytest.raises(rollback.InvalidInputError, match="AWS_REGION"):
        AwsConfig.from_env()


# -- ECS ---------------------------------------------------------------------------------------


def test_all_services_to_a_known_good_image_with_secrets_redacted(emu: EmulatorHandle) -> None:
    emu.set_ecs_convergence(500)
    seed_services(emu, ["abc123", "bd4e1f0", "def456"], env={"LOG_LEVEL": "info", "JWT_SECRET": "jwt-value-2025-12"})
    for service, family in SERVICES:
        emu.mark_bad("ecs", f"{CLUSTER}/{service}", f"{family}:3")
    targets = [EcsService(CLUSTER, s) for s, _ in SERVICES]
    assert targets[0].cluster == CLUSTER and targets[0].service == "api-gateway-v2"
    h = targets[0].history()
    assert [r.id for r in h] == ["agentauri-production-api-gateway:3", "agentauri-production-api-gateway:2", "agentauri-production-api-gateway:1"]
    assert h[2].images == [f"{ECR}/api-gateway:abc123"]
    assert "JWT_SECRET" in h[0].env_keys
    tx = rollback.Transaction("roll back all services to abc123", reason="INC-2077").verify(health_check(emu))
    for t in targets:
        tx.add(t, rollback.ImageTag("abc123"), timeout=60)
    plan = tx.run(dry_run=True)
    assert [s.to_revision.id.split(":")[1] for s in plan.steps if s.to_revision] == ["1", "1", "1"]
    assert "jwt-value" not in str(plan) and "jwt-value" not in repr(plan.steps)
    events: list[rollback.Event] = []
    report = tx.run(on_event=events.append)
    assert report.outcome == "succeeded", str(report)
    assert all(t.current().id.endswith(":1") for t in targets)
    assert emu.health()["healthy"] is True
    journal = Path(report.journal_path).read_text()
    assert "jwt-value" not in journal
    assert not any("jwt-value" in str(e) for e in events)
    assert any(e.kind == "waiting" for e in events)


def test_circuit_breaker_fails_fast_and_compensates(emu: EmulatorHandle) -> None:
    seeded = seed_services(emu, ["1.8.0", "1.9.0"])
    svc = EcsService(CLUSTER, "api-gateway-v2")
    other = EcsService(CLUSTER, "event-processor")
    emu.fail_task_definition("agentauri-production-api-gateway:1")
    report = (
        rollback.Transaction("t", reason="r")
        .add(other, rollback.Previous())
        .stage()
        .add(svc, rollback.Previous(), timeout=60)
        .run()
    )
    assert seeded
    assert report.outcome == "compensated", str(report)
    failed = report.steps[1]
    assert failed.status in ("failed", "compensated") and failed.error_kind == "rollout_failed"
    assert failed.error is not None and "circuit breaker" in failed.error
    assert other.current().id.endswith(":2")


def test_alarm_check(emu: EmulatorHandle) -> None:
    emu.seed({"cloudwatch": {"alarms": [{"name": "agentauri-api-5xx", "state": "ALARM", "reason": "5xx above 1"}]}})
    check = AlarmCheck("agentauri", policy=rollback.Policy.once())
    assert "agentauri*" in check.name
    v = check.run()
    assert not v.passed and "agentauri-api-5xx" in v.evidence
    emu.set_alarm("agentauri-api-5xx", "OK")
    assert check.run().passed
    assert AlarmCheck(names=["agentauri-api-5xx"]).run().passed
    with pytest.raises(rollback.InvalidInputError):
        AlarmCheck()
    with pytest.raises(rollback.InvalidInputError):
        AlarmCheck(names=[])


def test_pipeline_freeze_as_a_temporary_step(emu: EmulatorHandle) -> None:
    emu.seed({"codepipeline": [{"name": "Apgms", "stages": ["Source", "Build", "Deploy"]}]})
    seed_services(emu, ["good", "bad"])
    deploy = PipelineTransition("Apgms", "Deploy")
    assert (deploy.pipeline, deploy.stage) == ("Apgms", "Deploy")
    assert deploy.current().id == "enabled"
    report = (
        rollback.Transaction("apgms", reason="r")
        .add(deploy, rollback.Exact("disabled"), temporary=True)
        .stage()
        .add(EcsService(CLUSTER, "api-gateway-v2"), rollback.Previous(), timeout=60)
        .run()
    )
    assert report.outcome == "succeeded", str(report)
    assert report.steps[0].status == "reverted"
    assert deploy.current().id == "enabled"
    assert emu.count("DisableStageTransition") == 1 and emu.count("EnableStageTransition") == 1


def test_pipeline_re_run_and_freeze_that_stops_in_flight(emu: EmulatorHandle) -> None:
    good, bad, running = "1" * 40, "2" * 40, "3" * 40
    emu.seed(
        {
            "codepipeline": [
                {
                    "name": "Apgms",
                    "stages": ["Source", "Build", "Deploy"],
                    "source": "github",
                    "executions": [{"commit": good}, {"commit": bad}, {"commit": running, "status": "InProgress"}],
                }
            ]
        }
    )
    emu.set_pipeline_delay(200)
    freeze = PipelineTransition("Apgms", "Deploy", stop_in_flight="abandon")
    assert freeze.stop_in_flight == "abandon"
    with pytest.raises(rollback.InvalidInputError):
        PipelineTransition("Apgms", "Deploy", stop_in_flight="later")  # type: ignore[arg-type]
    report = rollback.Transaction("freeze", reason="r").add(freeze, rollback.Exact("disabled")).run()
    assert report.outcome == "succeeded", str(report)
    assert emu.count("StopPipelineExecution") == 1
    rerun = PipelineExecution("Apgms")
    assert (rerun.pipeline, rerun.source_action) == ("Apgms", None)
    assert [r.id for r in rerun.history()] == [bad, good]
    report = rollback.Transaction("rerun", reason="r").add(rerun, rollback.Previous(), timeout=30).run()
    assert report.outcome == "succeeded", str(report)
    assert rerun.current().id == good
    assert emu.count("StartPipelineExecution") == 1
    with pytest.raises(rollback.NotFoundError):
        rollback.Transaction("bad", reason="r").add(PipelineExecution("Apgms"), rollback.Exact("9" * 40)).run(dry_run=True)


def cfn_template(timeout: int) -> dict[str, Any]:
    return {
        "Parameters": {"Stage": {"Type": "String", "Default": "staging"}},
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": timeout}}},
    }


def test_cloudformation_stack_to_the_previous_template_and_a_failed_update_compensated(emu: EmulatorHandle) -> None:
    seeded = emu.seed(
        {
            "cloudformation": [
                {
                    "stack": "apgms-staging",
                    "bucket": "apgms-templates",
                    "key": "staging/template.json",
                    "versioned": True,
                    "templates": [cfn_template(30), cfn_template(60), cfn_template(90)],
                    "parameters": {"Stage": "staging"},
                }
            ]
        }
    )
    first, second, third = seeded["cloudformation"][0]["version_ids"]
    stack = CloudFormationStack("apgms-staging", "s3://apgms-templates/staging/template.json", capabilities=["CAPABILITY_IAM"])
    assert (stack.stack, stack.template) == ("apgms-staging", "s3://apgms-templates/staging/template.json")
    assert stack.current().id == third
    plan = rollback.Transaction("cfn", reason="r").add(stack, rollback.Previous()).run(dry_run=True)
    assert '"VisibilityTimeout": 60' in str(plan) and '"VisibilityTimeout": 90' in str(plan), str(plan)
    assert emu.count("UpdateStack") == 0

    report = rollback.Transaction("cfn", reason="r").add(stack, rollback.Previous(), timeout=60).run()
    assert report.outcome == "succeeded", str(report)
    assert stack.current().id == second
    assert emu.count("UpdateStack") == 1

    # The next update is one CloudFormation rolls back: failed with the resource's reason,
    # and compensation puts the stack back on the version it was at.
    emu.control("POST", "cloudformation/fail", {"stack": "apgms-staging", "resource": "Queue", "reason": "VisibilityTimeout is out of range"})
    failed = rollback.Transaction("cfn-fails", reason="r").add(stack, rollback.Exact(first), timeout=60).run()
    assert failed.outcome == "compensated", str(failed)
    assert "VisibilityTimeout is out of range" in str(failed), str(failed)
    assert stack.current().id == second

    with pytest.raises(rollback.InvalidInputError, match="s3://BUCKET/KEY"):
        CloudFormationStack("apgms-staging", "https://example.com/template.json")
    with pytest.raises(rollback.InvalidInputError, match="capability"):
        CloudFormationStack("apgms-staging", "s3://apgms-templates/t.json", capabilities=["CAPABILITY_ROOT"])  # type: ignore[list-item]
    mutations = emu.mutations()
    with pytest.raises(rollback.NotFoundError):
        rollback.Transaction("missing", reason="r").add(
            CloudFormationStack("no-such-stack", "s3://apgms-templates/staging/template.json"), rollback.Previous()
        ).run(dry_run=True)
    assert emu.mutations() == mutations


def test_interrupted_aws_run_resumes_from_its_journal(emu: EmulatorHandle, tmp_path: Path) -> None:
    seed_services(emu, ["good", "bad"])
    emu.set_ecs_convergence(600_000)  # converges only when told
    svc = EcsService(CLUSTER, "api-gateway-v2")
    journal = tmp_path / "ecs.jsonl"

    def ctrl_c_once_waiting(e: rollback.Event) -> None:
        if e.kind == "waiting" and e.message.startswith("waiting up to"):
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        rollback.Transaction("t", reason="r", journal=journal).add(svc, rollback.Previous(), timeout=120).run(on_event=ctrl_c_once_waiting)
    assert emu.count("UpdateService") == 1
    emu.advance()
    report = rollback.resume(journal)  # the ECS target is rebuilt from the journal
    assert report.outcome == "succeeded", str(report)
    assert emu.count("UpdateService") == 1  # not applied twice
    assert svc.current().id.endswith(":1")


# -- Secrets Manager -----------------------------------------------------------------------------


def test_secret_rollback_never_shows_the_value(emu: EmulatorHandle) -> None:
    seeded = emu.seed({"secrets": [{"name": SECRET, "values": ["jwt-signing-key-2026-10", "jwt-signing-key-2026-11"]}]})
    versions = seeded["secrets"][0]["version_ids"]
    emu.mark_bad("secret", SECRET, versions[1])
    secret = SecretVersion(SECRET)
    assert secret.secret_id == SECRET
    assert secret.current().id == versions[1]
    assert [r.id for r in secret.history()] == [versions[1], versions[0]]
    events: list[str] = []
    report = rollback.Transaction("secret", reason="r").add(secret, rollback.Previous(), verify=health_check(emu)).run(
        on_event=lambda e: events.append(f"{e}{e!r}")
    )
    assert report.outcome == "succeeded", str(report)
    assert secret.current().id == versions[0]
    shown = "".join(events) + str(report) + repr(report.steps) + Path(report.journal_path).read_text()
    shown += repr(secret) + repr(secret.history()) + str(secret.plan(rollback.Previous()))
    assert "jwt-signing-key" not in shown
    assert emu.count("GetSecretValue") == 0


def test_secret_consumers_are_restarted_and_a_restart_step(emu: EmulatorHandle) -> None:
    seeded = emu.seed({"secrets": [{"name": SECRET, "values": ["jwt-signing-key-2026-10", "jwt-signing-key-2026-11"]}]})
    versions = seeded["secrets"][0]["version_ids"]
    seed_services(emu, ["1.8.0", "1.9.0"])
    consumers = [(CLUSTER, s) for s, _ in SERVICES[:2]]
    secret = SecretVersion(SECRET, consumers=consumers)
    assert secret.consumers == consumers
    plan = secret.plan(rollback.Previous())
    assert f"consumer {CLUSTER}/api-gateway-v2" in str(plan), str(plan)
    before = emu.count("UpdateService")
    report = rollback.Transaction("secret and consumers", reason="r").add(secret, rollback.Previous(), timeout=60).run()
    assert report.outcome == "succeeded", str(report)
    assert secret.current().id == versions[0]
    assert emu.count("UpdateService") - before == 2
    with pytest.raises(rollback.InvalidInputError, match="named twice"):
        SecretVersion(SECRET, consumers=[consumers[0], consumers[0]])

    svc = EcsService(CLUSTER, SERVICES[2][0], force_new_deployment=True)
    assert svc.force_new_deployment and not EcsService(CLUSTER, SERVICES[2][0]).force_new_deployment
    restart = svc.restart()
    assert isinstance(restart, EcsRestart) and restart.service == SERVICES[2][0]
    deployment = restart.current().id
    report = rollback.Transaction("restart", reason="r").add(restart, rollback.Previous(), timeout=60).run()
    assert report.outcome == "succeeded", str(report)
    to = report.steps[0].to_revision
    assert to is not None and to.id == f"after:{deployment}"
    assert restart.current().id != deployment
    assert emu.count("UpdateService") - before == 3


# -- RDS -----------------------------------------------------------------------------------------

DB = "agentauri-production"
RESTORED = "agentauri-production-rollback"
DB_SECRET = "agentauri/production/database-url"
PASSWORD = "pw-9c4f1e7a2b"


def seed_database(emu: EmulatorHandle) -> None:
    seeded = emu.seed(
        {
            "rds": [
                {
                    "db_instance_id": DB,
                    "engine": "postgres",
                    "subnet_group": "agentauri-production",
                    "security_groups": ["sg-0abc"],
                    "port": 5432,
                    "snapshots": [{"id": "rds:agentauri-production-2025-12-28-03-00", "type": "automated", "created": "2025-12-28T03:00:00Z"}],
                }
            ]
        }
    )
    host = seeded["rds"][0]["endpoint"]["address"]
    emu.seed({"secrets": [{"name": DB_SECRET, "values": [f"postgres://app:{PASSWORD}@{host}:5432/app"]}]})
    seed_services(emu, ["1.9.0"])


def restore_transaction(snapshot: str) -> rollback.Transaction:
    rds = RdsInstance(DB, restore_as=RESTORED)
    handover = ConnectionHandover(DB_SECRET, rds.restore_identifier)
    assert (handover.secret_id, handover.db_instance_id) == (DB_SECRET, RESTORED)
    tx = rollback.Transaction(f"restore {DB}", reason="INC-2093")
    for service, _ in SERVICES:
        tx.add(EcsDesiredCount(CLUSTER, service), rollback.Exact("0"), temporary=True, timeout=60)
    tx.stage().add(rds, rollback.Exact(snapshot), timeout=60)
    tx.stage().add(handover, rollback.Exact(handover.revision_id), timeout=60)
    return tx


def test_database_restore_with_handover(emu: EmulatorHandle) -> None:
    seed_database(emu)
    rds = RdsInstance(DB, restore_as=RESTORED)
    assert (rds.db_instance_id, rds.restore_identifier) == (DB, RESTORED)
    assert RdsInstance(DB).restore_identifier.startswith(f"{DB}-rollback-")
    snap = rds.snapshot("pre-migration-20251228-143000", timeout=30)
    assert snap.id == "pre-migration-20251228-143000"
    history = rds.history()
    assert history[0].id == "live" and snap.id in [r.id for r in history]
    assert rds.restored_endpoint() is None
    emu.mark_bad("secret-endpoint", DB_SECRET, RESTORED)
    events: list[str] = []
    tx = restore_transaction(snap.id).verify(health_check(emu))
    report = tx.run(on_event=lambda e: events.append(repr(e)))
    assert report.outcome == "succeeded", str(report)
    assert [s.status for s in report.steps[:3]] == ["reverted"] * 3
    endpoint = rds.restored_endpoint()
    assert endpoint is not None and endpoint[1] == 5432
    assert emu.health()["healthy"] is True
    assert EcsService(CLUSTER, "api-gateway-v2").desired_count().current().id == "2"
    shown = "".join(events) + str(report) + repr(report.steps) + Path(report.journal_path).read_text()
    assert PASSWORD not in shown


def test_failed_restore_is_compensated_and_reported(emu: EmulatorHandle) -> None:
    seed_database(emu)
    rds = RdsInstance(DB, restore_as=RESTORED)

    async def snapshot() -> rollback.Revision:
        return await rds.snapshot_async("pre-migration-1", timeout=30)

    snap = asyncio.run(snapshot())
    emu.fail_restore(snap.id, "incompatible-restore")
    secret_before = SecretVersion(DB_SECRET).current().id
    report = restore_transaction(snap.id).run()
    assert report.outcome == "compensated", str(report)
    assert SecretVersion(DB_SECRET).current().id == secret_before
    assert any(RESTORED in a for a in report.needs_attention)
    for service, _ in SERVICES:
        assert EcsDesiredCount(CLUSTER, service).current().id == "2"

    async def endpoint() -> tuple[str, int] | None:
        return await rds.restored_endpoint_async()

    assert asyncio.run(endpoint()) is None  # the failed instance has no endpoint


# -- bad input: typed errors, nothing changed ---------------------------------------------------------


def test_bad_input_raises_typed_errors_with_the_emulator_unchanged(emu: EmulatorHandle) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b"], "alias_version": "2"}]})
    seed_services(emu, ["x", "y"])
    emu.control("DELETE", "calls")
    # Names the backends would refuse: refused at construction, before any request.
    for make in (
        lambda: LambdaAlias("", "live"),
        lambda: LambdaAlias(FN, "li ve"),
        lambda: EcsService(CLUSTER, ""),
        lambda: SecretVersion("   "),
        lambda: RdsInstance(DB, restore_as=DB),
        lambda: ConnectionHandover("", DB),
    ):
        with pytest.raises(rollback.InvalidInputError) as e:
            make()
        assert isinstance(e.value, ValueError) and e.value.target
    assert emu.calls()["total"] == 0
    # Unknown things and revisions: NotFoundError (a LookupError) naming the target.
    with pytest.raises(rollback.NotFoundError) as nf:
        LambdaAlias("no-such-function", "live").current()
    assert "no-such-function" in str(nf.value)
    tx = rollback.Transaction("t", reason="r").add(LambdaAlias(FN, "live"), rollback.Exact("99"))
    with pytest.raises(LookupError, match="99"):
        tx.run()
    with pytest.raises(rollback.NotFoundError, match="nope"):
        rollback.Transaction("t", reason="r").add(EcsService(CLUSTER, "api-gateway-v2"), rollback.ImageTag("nope")).run()
    with pytest.raises(rollback.NotFoundError):
        EcsService(CLUSTER, "no-such-service").current()
    # Already there: invalid input.
    with pytest.raises(rollback.InvalidInputError, match="already"):
        rollback.Transaction("t", reason="r").add(LambdaAlias(FN, "live"), rollback.Exact("2")).run()
    # One bad step refuses the whole transaction: the good one is not applied either.
    with pytest.raises(rollback.NotFoundError):
        (
            rollback.Transaction("t", reason="r")
            .add(LambdaAlias(FN, "live"), rollback.Previous())
            .add(EcsService(CLUSTER, "event-processor"), rollback.Exact("999"))
            .run()
        )
    assert emu.mutations() == 0
    assert emu.count("UpdateAlias") == 0 and emu.count("UpdateService") == 0
    assert LambdaAlias(FN, "live").current().id == "2"


def test_locked_target_is_refused_without_a_change(emu: EmulatorHandle) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b"], "alias_version": "2"}]})
    lock_dir = Path(os.environ["ROLLBACK_LOCK_DIR"])
    started = threading.Event()
    release = threading.Event()

    def slow_check() -> bool:
        started.set()
        release.wait(20)
        return True

    def first() -> None:
        rollback.Transaction("first", reason="r", holder="bob@bastion").add(
            LambdaAlias(FN, "live"), rollback.Previous(), verify=rollback.Check(slow_check, policy=rollback.Policy.once())
        ).run()

    th = threading.Thread(target=first)
    th.start()
    try:
        assert started.wait(20)
        before = emu.mutations()
        with pytest.raises(rollback.LockedError, match="bob@bastion"):
            rollback.Transaction("second", reason="r").add(LambdaAlias(FN, "live"), rollback.Exact("2"), allow_current=True).run()
        assert emu.mutations() == before
    finally:
        release.set()
        th.join(30)
    assert lock_dir.exists()


def test_http_and_command_checks(emu: EmulatorHandle, tmp_path: Path) -> None:
    ok = rollback.HttpCheck(f"{emu.endpoint}/_emulator/ping", json_pointer="/ok", json_value=True, policy=rollback.Policy.once())
    assert ok.url.endswith("/ping") and ok.run().passed
    bad = rollback.HttpCheck(f"{emu.endpoint}/_emulator/nope", policy=rollback.Policy.once())
    v = bad.run()
    assert not v.passed and "404" in v.evidence
    secret_header = rollback.HttpCheck(
        f"{emu.endpoint}/_emulator/ping", headers={"Authorization": "Bearer s3cr3t-token"}, policy=rollback.Policy.once()
    )
    assert "s3cr3t" not in repr(secret_header) and "s3cr3t" not in secret_header.run().evidence
    with pytest.raises(rollback.InvalidInputError):
        rollback.HttpCheck("ftp://example")
    with pytest.raises(rollback.InvalidInputError):
        rollback.HttpCheck(emu.endpoint, json_value=1)
    with pytest.raises(rollback.InvalidInputError):
        rollback.HttpCheck(emu.endpoint, status=42)
    script = tmp_path / "smoke.sh"
    script.write_text('#!/bin/sh\necho "checking $1"\ntest "$SMOKE_TOKEN" = "tok-123"\n')
    script.chmod(0o755)
    cmd = rollback.CommandCheck([str(script), "api"], env={"SMOKE_TOKEN": "tok-123"}, timeout=10, policy=rollback.Policy.once())
    assert cmd.argv == [str(script), "api"]
    v = cmd.run()
    assert v.passed, v.evidence
    assert "tok-123" not in v.evidence + repr(cmd) + cmd.name
    failing = rollback.CommandCheck([str(script), "api"], env={"SMOKE_TOKEN": "wrong"}, policy=rollback.Policy.once()).run()
    assert not failing.passed and "exit" in failing.evidence
    with pytest.raises(rollback.InvalidInputError):
        rollback.CommandCheck("./smoke_test.sh --url x")
    with pytest.raises(rollback.InvalidInputError):
        rollback.CommandCheck([])


def test_events_are_json_friendly(emu: EmulatorHandle) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b"], "alias_version": "2"}]})
    lines: list[str] = []
    rollback.Transaction("t", reason="r").add(LambdaAlias(FN, "live"), rollback.Previous()).run(
        on_event=lambda e: lines.append(json.dumps({"kind": e.kind, "target": e.target, "message": e.message, "step": e.step}))
    )
    kinds = [json.loads(line)["kind"] for line in lines]
    assert kinds[0] == "started" and kinds[-1] == "finished"


def test_checks_may_call_the_library(emu: EmulatorHandle) -> None:
    """A check (or custom target) calling blocking or async library calls from the library's
    own threads: no deadlock, no nested-runtime panic."""
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b", "c"], "alias_version": "3"}]})
    live = LambdaAlias(FN, "live")

    def blocking_check() -> bool:
        return live.current().id in ("1", "2")

    async def async_check() -> bool:
        return (await live.current_async()).id in ("1", "2")

    report = rollback.Transaction("t", reason="r").add(live, rollback.Previous(), verify=[blocking_check, async_check]).run()
    assert report.outcome == "succeeded", str(report)

    async def main() -> rollback.Report:
        tx = rollback.Transaction("t2", reason="r").add(live, rollback.Previous(), verify=[blocking_check, async_check])
        return await tx.run_async()

    report = asyncio.run(main())
    assert report.outcome == "succeeded", str(report)
    assert live.current().id == "1"


def test_shared_state_on_dynamodb_and_s3(emu: EmulatorHandle, tmp_path: Path) -> None:
    import boto3  # moto's dependency: in the emulator's environment

    from helpers import MemoryTarget

    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(
        Bucket="team-journals"
    )
    locks = rollback.aws.DynamoDbLocks("rollback-locks", create=True)
    known_good = rollback.aws.DynamoDbKnownGood("rollback-known-good", create=True)
    journals = rollback.aws.S3Journals("team-journals", "rollback/journals")
    assert isinstance(locks, rollback.Locks) and "rollback-locks" in repr(locks)
    assert "s3://team-journals/rollback/journals/" in repr(journals)
    api = MemoryTarget("api", ["1", "2", "3"], "3")
    ok = rollback.Check(lambda: True, name="health", policy=rollback.Policy(attempts=1))

    def team(name: str) -> rollback.Transaction:
        return rollback.Transaction(
            name, reason="r", journal=tmp_path / f"{name}.jsonl", locks=locks, known_good=known_good, journal_store=journals
        )

    report = team("first").add(api, rollback.Previous(), verify=[ok]).run()
    assert report.outcome == "succeeded", str(report)
    by_op = emu.calls()["operations"]
    # The lease: a read and a put to take it, a renewal before the apply, an update to give
    # it back; the known-good record: one put. Every journal record went to S3 (the
    # emulator's counter names S3's PutObject CopyObject).
    assert (by_op["GetItem"], by_op["PutItem"], by_op["UpdateItem"]) == (1, 2, 2), by_op
    records = len((tmp_path / "first.jsonl").read_text().splitlines())
    assert 1 <= by_op["CopyObject"] <= records, (by_op, records)
    # The next incident picks the verified revision from the team's table.
    api.ids.append("4")
    api.at = "4"
    again = team("second").add(api, rollback.LastKnownGood()).run()
    assert again.outcome == "succeeded" and api.at == "2", str(again)
    assert again.steps[0].origin is not None and report.transaction in again.steps[0].origin
    # The finished run, from S3 on "another machine", is its report (nothing run again).
    copy = rollback.resume_from_store(journals, report.transaction, tmp_path / "laptop" / "copy.jsonl", targets=[api])
    assert copy.outcome == "succeeded" and copy.transaction == report.transaction
    with pytest.raises(TypeError, match="rollback.Locks"):
        rollback.Transaction("x", locks="a folder")  # type: ignore[arg-type]
    with pytest.raises(rollback.InvalidInputError, match="not both"):
        rollback.Transaction("x", locks=locks, locks_dir=tmp_path)
    with pytest.raises(rollback.InvalidInputError, match="bucket"):
        rollback.aws.S3Journals("Not_A_Bucket")


def test_an_interrupted_run_is_resumed_from_s3_with_the_team_stores(emu: EmulatorHandle, tmp_path: Path) -> None:
    from helpers import MemoryTarget

    journals = rollback.aws.S3Journals("team-state", "journals", create=True)
    known_good = rollback.aws.S3KnownGood("team-state", "known-good", create=True)
    assert "s3://team-state/known-good/" in repr(known_good)
    locks = rollback.aws.DynamoDbLocks("rollback-locks", create=True)
    api = MemoryTarget("api", ["1", "2"], "2", converge=10**9)  # never stable by itself
    ok = health_check(emu)  # data, so the resumed run checks it again
    seen: list[str] = []

    def ctrl_c_when_waiting(e: rollback.Event) -> None:
        seen.append(e.transaction)
        if e.kind == "waiting" and e.message.startswith("waiting up to"):
            _thread.interrupt_main()

    tx = rollback.Transaction("runner", reason="r", journal=tmp_path / "runner.jsonl", locks=locks, journal_store=journals)
    with pytest.raises(KeyboardInterrupt):
        tx.add(api, rollback.Previous(), verify=[ok], timeout=600).run(on_event=ctrl_c_when_waiting)
    assert api.at == "1" and seen
    # No record yet: the run did not finish.
    with pytest.raises(rollback.NotFoundError, match="team-state"):
        rollback.Transaction("probe", known_good=known_good).add(api, rollback.LastKnownGood()).run(dry_run=True)
    api.converge = 0
    api._pending = 0

    async def finish() -> rollback.Report:
        return await rollback.resume_from_store_async(
            journals, seen[0], tmp_path / "laptop" / "copy.jsonl", targets=[api], locks=locks, known_good=known_good
        )

    report = asyncio.run(finish())
    assert report.outcome == "succeeded" and report.transaction == seen[0], str(report)
    assert len(api.applied) == 1, f"applied twice: {api.applied}"
    # The resumed run recorded what it verified in the team's bucket.
    api.at = "2"
    plan = rollback.Transaction("next", known_good=known_good).add(api, rollback.LastKnownGood()).run(dry_run=True)
    to = plan.steps[0].to_revision
    assert to is not None and to.id == "1", str(plan)
    assert seen[0] in (plan.steps[0].origin or ""), str(plan)
    with pytest.raises(rollback.InvalidInputError, match="not both"):
        rollback.resume(tmp_path / "runner.jsonl", known_good=known_good, known_good_dir=tmp_path)


def test_runbook_file_loaded_as_a_transaction(emu: EmulatorHandle, tmp_path: Path) -> None:
    fn = "agentcore-mcp-s3-tools-prod"
    emu.seed({"lambda": [{"function": fn, "alias": "live", "versions": ["1.4.0", "1.5.0"], "alias_version": "2"}]})
    emu.mark_bad("lambda", f"{fn}:live", "2")
    runbook = ROOT / "examples" / "runbooks" / "000-lambda-alias.yaml"
    health = f"{emu.endpoint}/_emulator/health"
    tx = rollback.Runbook.load(runbook, vars={"ENV": "prod", "HEALTH_URL": health}, reason="INC-7: MCP tool bug in 1.5.0")
    assert repr(tx) == '<Transaction "lambda-mcp-rollback-prod": 1 step(s) in 1 stage(s)>'
    plan = tx.run(dry_run=True)
    assert plan.outcome == "planned" and plan.steps[0].to_revision is not None and plan.steps[0].to_revision.id == "1"
    assert emu.count("UpdateAlias") == 0
    report = tx.run()
    assert report.outcome == "succeeded", str(report)
    assert emu.count("UpdateAlias") == 1
    # Unset variables and bad keys: every problem at once, with its line, nothing called.
    with pytest.raises(rollback.InvalidInputError, match="HEALTH_URL") as unset:
        rollback.Runbook.load(runbook, vars={"ENV": "prod"}, environment=False)
    assert ":14:" in str(unset.value) or "line 14" in str(unset.value), str(unset.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsteps:\n  - target: {kind: lambda-alias, function: f, alias: live, colour: blue}\n    to: previous\n")
    with pytest.raises(rollback.InvalidInputError, match="colour"):
        rollback.Runbook.load(bad)
    with pytest.raises(rollback.InvalidInputError, match="cannot read"):
        rollback.Runbook.load(tmp_path / "missing.yaml")


def test_the_least_privilege_of_a_transaction() -> None:
    from helpers import MemoryTarget

    tx = rollback.Transaction("p", reason="r", locks=rollback.aws.DynamoDbLocks("rollback-locks"))
    tx.add(LambdaAlias(FN, "live"), rollback.Previous(), verify=[AlarmCheck("agentauri")])
    tx.add(EcsService(CLUSTER, "api-gateway-v2"), rollback.Previous())
    tx.add(MemoryTarget("mine", ["1", "2"], "2"), rollback.Previous())
    # The region: the resolved settings' when a call was made, else the one given here.
    needs = tx.permissions(account="123456789012", region="us-east-1")
    by_action: dict[str, list[str]] = {}
    for st in needs["iam"]["Statement"]:
        for a in st["Action"]:
            by_action.setdefault(a, []).extend(st["Resource"])
    assert by_action["lambda:UpdateAlias"] == [f"arn:aws:lambda:us-east-1:123456789012:function:{FN}:*"]
    assert by_action["ecs:UpdateService"] == [f"arn:aws:ecs:us-east-1:123456789012:service/{CLUSTER}/api-gateway-v2"]
    assert by_action["dynamodb:UpdateItem"] == ["arn:aws:dynamodb:us-east-1:123456789012:table/rollback-locks"]
    assert by_action["cloudwatch:DescribeAlarms"] == ["*"]
    assert needs["rbac"] == []
    assert needs["undeclared"] == ["target memory-py/mine"], needs["undeclared"]
    with pytest.raises(rollback.InvalidInputError, match="12 digits"):
        tx.permissions(account="12")
