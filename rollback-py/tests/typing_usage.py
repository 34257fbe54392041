"""Every name of the API used as a script would; checked by mypy --strict (test_typing.py),
never run."""

from __future__ import annotations

import asyncio
import datetime
import os
from typing import assert_type

import rollback
from rollback.aws import (
    AlarmCheck,
    AwsConfig,
    CloudFrontInvalidation,
    ConnectionHandover,
    EcsDesiredCount,
    EcsService,
    LambdaAlias,
    PipelineTransition,
    RdsInstance,
    SecretVersion,
)
from rollback.k8s import DaemonSet, Deployment, K8sConfig, PodsReady, Replicas, Restart, RolloutStatus, StatefulSet, rollout_status


class Custom:
    name = "custom"

    def current(self) -> rollback.Revision:
        return rollback.Revision("2", images=["repo/x:2"], created_at=datetime.datetime.now(datetime.timezone.utc))

    def history(self) -> list[rollback.Revision]:
        return [self.current(), rollback.Revision("1")]

    def apply(self, change: rollback.Change) -> None:
        print(change.from_revision.id, change.to_revision.id, change.diff.entries, change.is_noop)

    def wait(self, revision: rollback.Revision) -> bool:
        return True


class AsyncCustom:
    async def current(self) -> str:
        return "1"

    async def history(self) -> list[str]:
        return ["1"]

    async def apply(self, change: rollback.Change) -> None:
        return None

    async def wait(self, revision: rollback.Revision) -> bool | str:
        return "converging"


def check() -> bool:
    return True


async def async_check() -> tuple[bool, str]:
    return True, "fine"


def blocking() -> None:
    cfg = AwsConfig(region="us-east-1", endpoint_url="http://127.0.0.1:4566", profile=None)
    alias = LambdaAlias("fn", "live", config=cfg)
    svc = EcsService("cluster", "svc")
    count: EcsDesiredCount = svc.desired_count()
    secret = SecretVersion("s")
    rds = RdsInstance("db", restore_as="db-rollback")
    handover = ConnectionHandover("s", rds.restore_identifier)
    pipe = PipelineTransition("Apgms", "Deploy")
    assert_type(alias.current(), rollback.Revision)
    assert_type(svc.history(), list[rollback.Revision])
    assert_type(secret.plan(rollback.Previous()), rollback.Change)
    assert_type(rds.snapshot(), rollback.Revision)
    assert_type(rds.snapshot("pre", timeout=datetime.timedelta(minutes=5)), rollback.Revision)
    assert_type(rds.restored_endpoint(), tuple[str, int] | None)
    k8s = K8sConfig(kubeconfig=os.environ.get("KUBECONFIG"), context=None, url=None)
    dep = Deployment("frontend", "production", config=k8s)
    sts = StatefulSet("db")
    ds = DaemonSet("agent", "kube-system")
    replicas: Replicas = dep.replicas(gradual=[1], between=check, step_timeout=60)
    restart: Restart = ds.restart()
    status: RolloutStatus = dep.rollout_status()
    assert_type(status.done, bool)
    assert_type(rollout_status({"kind": "Deployment"}).message, str)
    pods = PodsReady(dep, policy=rollback.Policy.once())
    by_selector = PodsReady(namespace="production", selector="app=frontend", min=2, config=k8s)
    policy = rollback.Policy(attempts=5, interval=0.5, consecutive=2, deadline=datetime.timedelta(seconds=30))
    http = rollback.HttpCheck("https://api/health", 200, json_pointer="/status", json_value="ok", headers={"A": "b"}, timeout=5, policy=policy)
    cmd = rollback.CommandCheck(["./smoke.sh", "--url", "https://api"], env={"TOKEN": "x"}, cwd="/srv", timeout=60)
    alarms = AlarmCheck("agentauri", policy=policy)
    named = AlarmCheck(names=["a", "b"])
    fn_check = rollback.Check(check, name="custom", policy=policy).with_policy(rollback.Policy.once())
    verdict = http.run()
    assert_type(verdict.passed, bool)
    tx = (
        rollback.Transaction("t", reason="r", journal="/tmp/j.jsonl", policy="halt", concurrency=4, locks_dir="/tmp/locks", lease_ttl=60, holder="me")
        .add(alias, rollback.Exact("7"), verify=[http, cmd, alarms, check, async_check], timeout=120)
        .add(svc, rollback.ImageTag("abc123"), verify=fn_check)
        .add(count, rollback.Exact("0"), temporary=True)
        .stage()
        .add(rds, rollback.Exact("snap"))
        .add(handover, rollback.Exact(handover.revision_id), allow_current=True)
        .add(pipe, rollback.Exact("disabled"), temporary=True)
        .add(Custom(), rollback.StepsBack(2))
        .add(AsyncCustom(), rollback.Previous())
        .add(dep, rollback.Previous(), verify=[pods, by_selector])
        .add(sts, rollback.Previous())
        .add(replicas, rollback.Exact("0"))
        .add(restart, rollback.Previous())
        .verify(named)
        .on_failure(lambda: "maintenance on", name="maintenance")
        .on_success(CloudFrontInvalidation("E2QWRUHAPOMQZL", ["/*"], timeout=600, config=AwsConfig(region="us-east-1")))
        .on_success(lambda: None, name="all clear")
        .notify(rollback.Webhook("https://hooks.slack.com/services/T/B/X", format="json", timeout=datetime.timedelta(seconds=5)))
    )
    purge: rollback.Action = CloudFrontInvalidation("E2QWRUHAPOMQZL", ("/index.html", "/assets/*"))
    assert_type(purge.name, str)
    assert_type(CloudFrontInvalidation("E1", ["/*"]).paths, list[str])
    events: list[rollback.Event] = []
    report = tx.run(dry_run=True, on_event=events.append)
    assert_type(report.outcome, str)
    assert_type(report.duration, datetime.timedelta)
    for step in report.steps:
        assert_type(step.to_revision, rollback.Revision | None)
        assert_type(step.error, str | None)
        print(step.target, step.status, step.diff, [v.evidence for v in step.verdicts])
    print(report.journal_path, report.needs_attention, [a.ok for a in report.actions], [e.kind for e in events])
    assert_type(report.on_success, list[rollback.ActionReport])
    again = rollback.resume(report.journal_path, targets=[Custom()], on_event=print)
    assert_type(again, rollback.Report)
    try:
        alias.current()
    except rollback.NotFoundError as e:
        print(e.target, e.kind, e.retryable)
    except (rollback.InvalidInputError, rollback.ConflictError, rollback.LockedError, rollback.ThrottledError) as e:
        print(e)
    except (rollback.RollbackTimeoutError, rollback.VerificationError, rollback.BackendError, rollback.JournalError) as e:
        print(e)
    except rollback.RolloutError as e:
        print(e.reason)
    except rollback.RollbackError as e:
        print(e)


async def concurrent() -> None:
    alias = LambdaAlias("fn", "live")
    current, history, change = await asyncio.gather(alias.current_async(), alias.history_async(), alias.plan_async(rollback.Previous()))
    assert_type(current, rollback.Revision)
    assert_type(history, list[rollback.Revision])
    assert_type(change, rollback.Change)
    report = await rollback.Transaction("t", reason="r").add(alias, rollback.Previous()).run_async(on_event=print)
    assert_type(report, rollback.Report)
    assert_type(await rollback.resume_async(report.journal_path), rollback.Report)
    assert_type(await rollback.Check(async_check).run_async(), rollback.Verdict)
    assert_type(await RdsInstance("db").snapshot_async(), rollback.Revision)
    assert_type(await RdsInstance("db").restored_endpoint_async(), tuple[str, int] | None)


custom_target: rollback.CustomTarget = Custom()
target_like: rollback.TargetLike = AsyncCustom()
check_like: rollback.CheckLike = async_check
seconds: rollback.Seconds = 1.5
selectors: list[rollback.Selector] = [rollback.Previous(), rollback.Exact("1"), rollback.StepsBack(2), rollback.ImageTag("x")]
print(rollback.__version__, custom_target, target_like, check_like, seconds, selectors)
