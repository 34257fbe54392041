"""The Python half of the bad-input campaign: a table of bad inputs across every target kind,
selector, check and transaction option. Each row asserts the typed exception, that the
message names the target (or the thing refused), and that nothing was changed: zero
mutating calls at the AWS emulator (or the Kubernetes simulator). A row that is refused
too late (after a change) or not at all fails here."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

import rollback
from conftest import EmulatorHandle, K8sSim
from helpers import wait_done
from rollback.aws import (
    AlarmCheck,
    ConnectionHandover,
    EcsDesiredCount,
    EcsService,
    LambdaAlias,
    PipelineTransition,
    RdsInstance,
    SecretVersion,
)
from rollback.k8s import DaemonSet, Deployment, K8sConfig, PodsReady, StatefulSet

FN = "agentauri-mcp-s3-tools-prod"
LAMBDA_ID = f"lambda-alias/{FN}:live"
CLUSTER = "agentauri-production"
SERVICE = "api-gateway-v2"
FAMILY = "agentauri-production-api-gateway"
ECS_ID = f"ecs-service/{CLUSTER}/{SERVICE}"
SECRET = "agentauri/production/jwt-secret"
DB = "agentauri-production"
PIPELINE = "Apgms"
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
OTHER_ACCOUNT = "999999999999"
HUGE = 2**70
ONCE = rollback.Policy.once()


@dataclass
class World:
    """What a row needs: the emulator's seeded resources and a scratch directory."""

    emu: EmulatorHandle
    tmp: Path
    secret_versions: list[str]

    def ping(self) -> str:
        return f"{self.emu.endpoint}/_emulator/ping"

    def lambda_tx(self, selector: rollback.Selector | None = None, **opts: Any) -> rollback.Transaction:
        """A transaction that would move the Lambda alias back if nothing refused it."""
        return rollback.Transaction("bad-input", reason="campaign", **opts).add(
            LambdaAlias(FN, "live"), selector or rollback.Previous()
        )

    def lambda_tx_with(self, check: rollback.Check) -> rollback.Transaction:
        return rollback.Transaction("bad-input", reason="campaign").add(LambdaAlias(FN, "live"), rollback.Previous(), verify=check)


@pytest.fixture
def world(emu: EmulatorHandle, tmp_path: Path) -> World:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b"], "alias_version": "2"}]})
    emu.seed(
        {
            "ecs": [
                {
                    "cluster": CLUSTER,
                    "service": SERVICE,
                    "family": FAMILY,
                    "desired_count": 2,
                    "revisions": [{"image": f"{ECR}/api-gateway:{t}", "environment": {"RELEASE": t}} for t in ("x", "y")],
                    "current": 2,
                }
            ]
        }
    )
    seeded = emu.seed({"secrets": [{"name": SECRET, "values": ["key-1", "key-2"]}]})
    emu.seed(
        {
            "rds": [
                {
                    "db_instance_id": DB,
                    "engine": "postgres",
                    "subnet_group": DB,
                    "security_groups": ["sg-0abc"],
                    "port": 5432,
                    "snapshots": [{"id": "rds:agentauri-production-2025-12-28-03-00", "type": "automated", "created": "2025-12-28T03:00:00Z"}],
                }
            ]
        }
    )
    emu.seed({"codepipeline": [{"name": PIPELINE, "stages": ["Source", "Build", "Deploy"]}]})
    emu.control("DELETE", "calls")
    return World(emu, tmp_path, list(seeded["secrets"][0]["version_ids"]))


W = TypeVar("W")


@dataclass
class Row(Generic[W]):
    """One bad input: what to do (given the world it needs), the exception it must raise,
    and the names one of which its message must show."""

    id: str
    act: Callable[[W], object]
    error: type[BaseException]
    names: tuple[str, ...]


def lambda_arn(account: str) -> str:
    return f"arn:aws:lambda:us-east-1:{account}:function:{FN}:1"


def ecs_arn(account: str, region: str = "us-east-1") -> str:
    return f"arn:aws:ecs:{region}:{account}:task-definition/{FAMILY}:1"


CHILD = """
import json, sys
import rollback
from rollback.aws import LambdaAlias
try:
    {statement}
except rollback.RollbackError as e:
    print(json.dumps({{"class": type(e).__name__, "message": str(e), "target": e.target}}))
except BaseException as e:
    print(json.dumps({{"class": type(e).__name__, "message": str(e), "target": None}}))
else:
    print(json.dumps({{"class": None}}))
"""


def limit_memory() -> None:
    """At most 2 GiB of address space: a child reading /dev/zero without bound dies soon
    instead of taking the machine's memory."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def in_child(statement: str) -> None:
    """Runs `statement` in a child process (a path that makes the library read without
    bound aborts or hangs a process) and raises what it raised there; a child that dies or
    hangs fails the row."""
    import json
    import subprocess
    import sys

    try:
        r = subprocess.run(
            [sys.executable, "-c", CHILD.format(statement=statement)],
            capture_output=True,
            text=True,
            timeout=20,
            env=dict(os.environ, FN=FN),
            preexec_fn=limit_memory,
        )
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{statement}: the process hung (killed after 20 s)") from None
    if r.returncode != 0 or not r.stdout.strip():
        raise AssertionError(f"{statement}: the process died (exit {r.returncode}): {r.stderr[-500:]}")
    answer = json.loads(r.stdout.strip().splitlines()[-1])
    if answer["class"] is None:
        return
    cls = getattr(rollback, answer["class"], None)
    if isinstance(cls, type) and issubclass(cls, rollback.RollbackError):
        raise cls(answer["message"], target=answer["target"])
    raise RuntimeError(f"{answer['class']}: {answer['message']}")


def child_run(journal: str) -> str:
    return (
        "rollback.Transaction('bad-input', reason='campaign', journal=" + repr(journal) + ")"
        ".add(LambdaAlias(" + repr(FN) + ", 'live'), rollback.Previous()).run()"
    )


def journal_file(w: World, text: str) -> Path:
    path = w.tmp / "journal.jsonl"
    path.write_text(text)
    return path


def fifo(w: World) -> str:
    path = w.tmp / "journal.fifo"
    if not path.exists():
        os.mkfifo(path)
    return str(path)


I = rollback.InvalidInputError
NF = rollback.NotFoundError
J = rollback.JournalError

AWS_ROWS: list[Row[World]] = [
    # -- Lambda aliases
    Row("lambda-empty-function", lambda w: LambdaAlias("", "live"), I, ("lambda-alias",)),
    Row("lambda-bad-alias", lambda w: LambdaAlias(FN, "li ve"), I, ("li ve",)),
    Row("lambda-unknown-version", lambda w: w.lambda_tx(rollback.Exact("99")).run(), NF, (LAMBDA_ID,)),
    Row("lambda-already-current", lambda w: w.lambda_tx(rollback.Exact("2")).run(), I, (LAMBDA_ID,)),
    Row("lambda-arn-of-another-account", lambda w: w.lambda_tx(rollback.Exact(lambda_arn(OTHER_ACCOUNT))).run(), I, (LAMBDA_ID,)),
    Row("lambda-steps-back-too-far", lambda w: w.lambda_tx(rollback.StepsBack(5)).run(), (NF), (LAMBDA_ID,)),
    Row("lambda-steps-back-zero", lambda w: w.lambda_tx(rollback.StepsBack(0)).run(), I, (LAMBDA_ID,)),
    # -- ECS services and desired counts
    Row("ecs-empty-service", lambda w: EcsService(CLUSTER, ""), I, ("ecs-service",)),
    Row("ecs-unknown-service", lambda w: rollback.Transaction("t", reason="r").add(EcsService(CLUSTER, "nope"), rollback.Previous()).run(), NF, ("nope",)),
    Row("ecs-unknown-revision", lambda w: rollback.Transaction("t", reason="r").add(EcsService(CLUSTER, SERVICE), rollback.Exact("999")).run(), NF, (ECS_ID,)),
    Row("ecs-unknown-image-tag", lambda w: rollback.Transaction("t", reason="r").add(EcsService(CLUSTER, SERVICE), rollback.ImageTag("nope")).run(), NF, (ECS_ID,)),
    Row(
        "ecs-arn-of-another-account",
        lambda w: rollback.Transaction("t", reason="r").add(EcsService(CLUSTER, SERVICE), rollback.Exact(ecs_arn(OTHER_ACCOUNT))).run(),
        I,
        (ECS_ID,),
    ),
    Row(
        "ecs-arn-of-another-region",
        lambda w: rollback.Transaction("t", reason="r").add(EcsService(CLUSTER, SERVICE), rollback.Exact(ecs_arn("123456789012", "eu-west-1"))).run(),
        I,
        (ECS_ID,),
    ),
    Row(
        "ecs-exact-a-lambda-arn",
        lambda w: rollback.Transaction("t", reason="r").add(EcsService(CLUSTER, SERVICE), rollback.Exact(lambda_arn("123456789012"))).run(),
        I,
        (ECS_ID,),
    ),
    Row("desired-count-negative", lambda w: rollback.Transaction("t", reason="r").add(EcsDesiredCount(CLUSTER, SERVICE), rollback.Exact("-1")).run(), NF, (SERVICE,)),
    Row("desired-count-not-a-number", lambda w: rollback.Transaction("t", reason="r").add(EcsDesiredCount(CLUSTER, SERVICE), rollback.Exact("two")).run(), NF, (SERVICE,)),
    Row("desired-count-huge-int", lambda w: rollback.Transaction("t", reason="r").add(EcsDesiredCount(CLUSTER, SERVICE), rollback.Exact(HUGE)).run(), I, ("selector",)),
    Row(
        "desired-count-beyond-i32",
        lambda w: rollback.Transaction("t", reason="r").add(EcsDesiredCount(CLUSTER, SERVICE), rollback.Exact(str(2**40))).run(),
        NF,
        (SERVICE,),
    ),
    # -- secrets and the connection handover
    Row("secret-blank-id", lambda w: SecretVersion("   "), I, ("secret",)),
    Row("secret-unknown-version", lambda w: rollback.Transaction("t", reason="r").add(SecretVersion(SECRET), rollback.Exact("no-such-version")).run(), NF, (SECRET,)),
    Row("handover-empty-secret", lambda w: ConnectionHandover("", DB), I, ("secret",)),
    Row("handover-empty-instance", lambda w: ConnectionHandover(SECRET, ""), I, ("connection-handover",)),
    # -- RDS: restore_as names AWS rejects
    Row("rds-restore-as-itself", lambda w: RdsInstance(DB, restore_as=DB), I, (DB,)),
    Row("rds-restore-as-leading-digit", lambda w: RdsInstance(DB, restore_as="1-restored"), I, (DB,)),
    Row("rds-restore-as-trailing-hyphen", lambda w: RdsInstance(DB, restore_as="restored-"), I, (DB,)),
    Row("rds-restore-as-two-hyphens", lambda w: RdsInstance(DB, restore_as="re--stored"), I, (DB,)),
    Row("rds-restore-as-64-chars", lambda w: RdsInstance(DB, restore_as="r" * 64), I, (DB,)),
    Row("rds-restore-as-underscore", lambda w: RdsInstance(DB, restore_as="re_stored"), I, (DB,)),
    Row("rds-unknown-snapshot", lambda w: rollback.Transaction("t", reason="r").add(RdsInstance(DB, restore_as="restored"), rollback.Exact("no-such-snapshot")).run(), NF, (DB,)),
    # -- pipeline transitions
    Row(
        "pipeline-unknown-state",
        lambda w: rollback.Transaction("t", reason="r").add(PipelineTransition(PIPELINE, "Deploy"), rollback.Exact("paused")).run(),
        NF,
        (PIPELINE,),
    ),
    Row("pipeline-empty-stage", lambda w: PipelineTransition(PIPELINE, ""), I, (PIPELINE,)),
    # -- selectors
    Row("steps-back-huge", lambda w: rollback.StepsBack(HUGE), I, ("selector",)),
    Row("steps-back-negative", lambda w: rollback.StepsBack(-1), I, ("selector",)),
    Row("exact-empty", lambda w: rollback.Exact(""), I, ("selector",)),
    Row("exact-negative-int", lambda w: rollback.Exact(-1), I, ("selector",)),
    Row("image-tag-empty", lambda w: rollback.ImageTag(" "), I, ("selector",)),
    # -- checks and policies
    Row("http-not-http", lambda w: rollback.HttpCheck("ftp://example"), I, ("http-check",)),
    Row("http-status-42", lambda w: rollback.HttpCheck(w.ping(), status=42), I, ("http-check",)),
    Row("http-status-huge", lambda w: rollback.HttpCheck(w.ping(), status=HUGE), I, ("http-check",)),
    Row("http-json-value-without-pointer", lambda w: rollback.HttpCheck(w.ping(), json_value=1), I, ("http-check",)),
    Row("http-negative-timeout", lambda w: rollback.HttpCheck(w.ping(), timeout=-1), I, ("http-check",)),
    Row(
        "http-json-pointer-without-slash",
        lambda w: w.lambda_tx_with(rollback.HttpCheck(w.ping(), json_pointer="ok", policy=ONCE)).run(),
        I,
        ("http-check", LAMBDA_ID, "ok"),
    ),
    Row("http-url-without-host", lambda w: w.lambda_tx_with(rollback.HttpCheck("http:///health", policy=ONCE)).run(), I, ("http-check", LAMBDA_ID)),
    Row("http-bad-method", lambda w: w.lambda_tx_with(rollback.HttpCheck(w.ping(), method="GE T", policy=ONCE)).run(), I, ("http-check", LAMBDA_ID, "GE T")),
    Row("command-as-a-string", lambda w: rollback.CommandCheck("./smoke_test.sh --url x"), I, ("command-check",)),
    Row("command-empty", lambda w: rollback.CommandCheck([]), I, ("command-check",)),
    Row("command-timeout-huge", lambda w: rollback.CommandCheck(["true"], timeout=10**400), I, ("command-check",)),
    Row("policy-zero-attempts", lambda w: rollback.Policy(attempts=0), I, ("policy",)),
    Row("policy-huge-attempts", lambda w: rollback.Policy(attempts=HUGE), I, ("policy",)),
    Row("policy-negative-consecutive", lambda w: rollback.Policy(consecutive=-(2**70)), I, ("policy",)),
    Row("policy-consecutive-over-attempts", lambda w: w.lambda_tx_with(rollback.Check(lambda: True, policy=rollback.Policy(attempts=1, consecutive=3))).run(), I, ("policy",)),
    Row("policy-negative-interval", lambda w: rollback.Policy(interval=-1), I, ("policy",)),
    Row("policy-huge-deadline", lambda w: rollback.Policy(deadline=HUGE), I, ("policy",)),
    Row("alarms-neither", lambda w: AlarmCheck(), I, ("cloudwatch-alarms",)),
    Row("alarms-both", lambda w: AlarmCheck("x", names=["y"]), I, ("cloudwatch-alarms",)),
    Row("alarms-no-names", lambda w: AlarmCheck(names=[]), I, ("alarm",)),
    # -- transaction options
    Row("tx-no-name", lambda w: rollback.Transaction(" "), I, ("transaction",)),
    Row("tx-no-reason", lambda w: rollback.Transaction("t").add(LambdaAlias(FN, "live"), rollback.Previous()).run(), I, ("reason",)),
    Row("tx-no-steps", lambda w: rollback.Transaction("t", reason="r").run(), I, ('"t"', "transaction", "step")),
    Row(
        "tx-duplicate-target",
        lambda w: rollback.Transaction("t", reason="r").add(LambdaAlias(FN, "live"), rollback.Previous()).add(LambdaAlias(FN, "live"), rollback.Exact("1")),
        I,
        (LAMBDA_ID,),
    ),
    Row("tx-concurrency-zero", lambda w: rollback.Transaction("t", concurrency=0), I, ('"t"',)),
    Row("tx-concurrency-huge", lambda w: rollback.Transaction("t", concurrency=HUGE), I, ('"t"',)),
    Row("tx-unknown-policy", lambda w: rollback.Transaction("t", policy="retry"), I, ("transaction",)),
    Row("tx-lease-ttl-zero", lambda w: rollback.Transaction("t", lease_ttl=0), I, ('"t"',)),
    Row("tx-lease-ttl-huge", lambda w: rollback.Transaction("t", lease_ttl=HUGE), I, ('"t"',)),
    Row("tx-step-timeout-huge", lambda w: rollback.Transaction("t", reason="r").add(LambdaAlias(FN, "live"), rollback.Previous(), timeout=10**400), I, (LAMBDA_ID,)),
    Row("rds-snapshot-timeout-negative", lambda w: RdsInstance(DB).snapshot("pre-migration", timeout=-1), I, (DB,)),
    Row("tx-step-timeout-zero", lambda w: rollback.Transaction("t", reason="r").add(LambdaAlias(FN, "live"), rollback.Previous(), timeout=0), I, (LAMBDA_ID,)),
    Row("tx-journal-a-directory", lambda w: in_child(child_run(str(w.tmp))), J, ("{tmp}",)),
    Row("tx-journal-dev-zero", lambda w: in_child(child_run("/dev/zero")), J, ("/dev/zero",)),
    Row("tx-journal-dev-full", lambda w: in_child(child_run("/dev/full")), J, ("/dev/full",)),
    Row("tx-journal-a-fifo", lambda w: in_child(child_run(fifo(w))), J, ("{tmp}",)),
    # -- resume of journals that are no run
    Row("resume-missing", lambda w: rollback.resume(w.tmp / "missing.jsonl"), J, ("missing.jsonl",)),
    Row("resume-empty", lambda w: rollback.resume(journal_file(w, "")), J, ("journal.jsonl",)),
    Row("resume-corrupt", lambda w: rollback.resume(journal_file(w, "{not json\n")), J, ("journal.jsonl",)),
    Row("resume-foreign", lambda w: rollback.resume(journal_file(w, '{"hello": "world"}\n')), J, ("journal.jsonl",)),
    Row("resume-directory", lambda w: in_child(f"rollback.resume({str(w.tmp)!r})"), J, ("{tmp}",)),
    Row("resume-dev-zero", lambda w: in_child("rollback.resume('/dev/zero')"), J, ("/dev/zero",)),
    Row("resume-a-fifo", lambda w: in_child(f"rollback.resume({fifo(w)!r})"), J, ("{tmp}",)),
]


def assert_refused(row: Row[W], world: W, tmp: str = "") -> None:
    """The row raises its typed library error, whose short message names the target."""
    with pytest.raises(row.error) as e:
        row.act(world)
    assert isinstance(e.value, rollback.RollbackError), repr(e.value)
    message = str(e.value)
    names = [n.replace("{tmp}", tmp) for n in row.names]
    assert any(n in message for n in names), f"{message!r} names none of {names}"
    assert len(message) < 400, message


@pytest.mark.parametrize("row", AWS_ROWS, ids=[r.id for r in AWS_ROWS])
def test_bad_input_is_refused_with_nothing_changed(world: World, row: Row[World]) -> None:
    assert_refused(row, world, str(world.tmp))
    assert world.emu.mutations() == 0, world.emu.calls()
    assert LambdaAlias(FN, "live").current().id == "2"


# -- Kubernetes: workloads and the recovery targets (replicas, restart) -------------------------

NS = "production"
APPS = f"/apis/apps/v1/namespaces/{NS}"
DEPLOY_ID = f"k8s-deployment/{NS}/frontend"


@dataclass
class KWorld:
    sim: K8sSim
    config: K8sConfig

    def deployment(self) -> Deployment:
        return Deployment("frontend", NS, config=self.config)

    def mutations(self) -> int:
        return int(self.sim.request("GET", "/_sim/calls")["mutations"])

    def paused(self) -> Deployment:
        """The Deployment, paused (`kubectl rollout pause`); the calls are counted from here."""
        self.sim.request("PATCH", f"{APPS}/deployments/frontend", {"spec": {"paused": True}}, "application/merge-patch+json")
        self.sim.request("DELETE", "/_sim/calls")
        return self.deployment()


def k8s_workload(kind: str, name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": name, "image": image}]}},
        },
    }


@pytest.fixture
def kworld(k8s_sim: K8sSim, k8s_config: K8sConfig) -> KWorld:
    k8s_sim.request("POST", "/_sim/reset")
    k8s_sim.request("POST", "/_sim/config", {"step_ms": 50, "deadline_ms": 1500})
    for kind, resource, name in (("Deployment", "deployments", "frontend"), ("StatefulSet", "statefulsets", "db"), ("DaemonSet", "daemonsets", "agent")):
        k8s_sim.request("POST", f"{APPS}/{resource}", k8s_workload(kind, name, "web:1"))
    for resource, name in (("deployments", "frontend"), ("statefulsets", "db"), ("daemonsets", "agent")):
        # Revision 1 exists once the controller has rolled the workload out; rows such as
        # "already current" need it (without the wait they raced the controller's first step).
        wait_done(k8s_sim, resource, name, namespace=NS)
    k8s_sim.request("DELETE", "/_sim/calls")
    return KWorld(k8s_sim, k8s_config)


def k8s_tx(target: rollback.Target, selector: rollback.Selector) -> rollback.Transaction:
    return rollback.Transaction("bad-input", reason="campaign").add(target, selector)


K8S_ROWS: list[Row[KWorld]] = [
    Row("deployment-bad-name", lambda k: Deployment("Frontend!", NS, config=k.config), I, ("Frontend!",)),
    Row("deployment-empty-namespace", lambda k: Deployment("frontend", "", config=k.config), I, ("frontend",)),
    Row("deployment-unknown-revision", lambda k: k8s_tx(k.deployment(), rollback.Exact("9")).run(), NF, (DEPLOY_ID,)),
    Row("deployment-huge-revision", lambda k: k8s_tx(k.deployment(), rollback.Exact(HUGE)).run(), I, ("selector",)),
    Row("deployment-already-current", lambda k: k8s_tx(k.deployment(), rollback.Exact("1")).run(), I, (DEPLOY_ID,)),
    Row("statefulset-unknown-revision", lambda k: k8s_tx(StatefulSet("db", NS, config=k.config), rollback.Exact("9")).run(), NF, ("db",)),
    Row("daemonset-unknown-revision", lambda k: k8s_tx(DaemonSet("agent", NS, config=k.config), rollback.Exact("9")).run(), NF, ("agent",)),
    Row("daemonset-steps-back-huge", lambda k: k8s_tx(DaemonSet("agent", NS, config=k.config), rollback.StepsBack(HUGE)).run(), I, ("selector",)),
    Row("replicas-negative", lambda k: k8s_tx(k.deployment().replicas(), rollback.Exact("-3")).run(), I, ("frontend",)),
    Row("replicas-not-a-number", lambda k: k8s_tx(k.deployment().replicas(), rollback.Exact("many")).run(), I, ("frontend",)),
    Row("replicas-beyond-i32", lambda k: k8s_tx(k.deployment().replicas(), rollback.Exact(str(2**40))).run(), I, ("frontend",)),
    Row("replicas-exact-huge", lambda k: k8s_tx(k.deployment().replicas(), rollback.Exact(HUGE)).run(), I, ("selector",)),
    Row("restart-paused", lambda k: k8s_tx(k.paused().restart(), rollback.Previous()).run(), I, (f"k8s-deployment-restart/{NS}/frontend",)),
    Row("replicas-gradual-negative", lambda k: k.deployment().replicas(gradual=[-1]), I, ("frontend",)),
    Row("replicas-gradual-huge", lambda k: StatefulSet("db", NS, config=k.config).replicas(gradual=[1, HUGE]), I, ("db",)),
    Row("replicas-step-timeout-negative", lambda k: k.deployment().replicas(step_timeout=-5), I, ("frontend",)),
    Row("pods-ready-nothing", lambda k: PodsReady(), I, ("k8s-pods",)),
    Row("pods-ready-both", lambda k: PodsReady(k.deployment(), selector="app=x"), I, ("k8s-pods",)),
    Row("pods-ready-min-negative", lambda k: PodsReady(k.deployment(), min=-1), I, ("k8s-pods",)),
    Row("pods-ready-min-huge", lambda k: PodsReady(k.deployment(), min=HUGE), I, ("k8s-pods",)),
    Row("k8s-config-not-a-url", lambda k: K8sConfig(url="localhost:8001"), I, ("kubernetes",)),
]


@pytest.mark.parametrize("row", K8S_ROWS, ids=[r.id for r in K8S_ROWS])
def test_bad_kubernetes_input_is_refused_with_nothing_changed(kworld: KWorld, row: Row[KWorld]) -> None:
    assert_refused(row, kworld)
    assert kworld.mutations() == 0, kworld.sim.request("GET", "/_sim/calls")


def test_every_integer_parameter_refuses_huge_and_negative_values() -> None:
    """No OverflowError anywhere: each integer parameter of the API (and each duration given
    as an int), given a number beyond any Rust integer or below its range, raises
    InvalidInputError naming the parameter's owner and saying which way it is out."""
    integers: list[tuple[Callable[[int], object], str]] = [
        (rollback.StepsBack, "StepsBack("),
        (rollback.Exact, "Exact("),
        (lambda n: rollback.Policy(attempts=n), "attempts="),
        (lambda n: rollback.Policy(consecutive=n), "consecutive="),
        (lambda n: rollback.HttpCheck("http://127.0.0.1/", status=n), "status="),
        (lambda n: rollback.Transaction("t", concurrency=n), "concurrency="),
    ]
    durations: list[tuple[Callable[[int], object], str]] = [
        (lambda n: rollback.Transaction("t", lease_ttl=n), "lease_ttl="),
        (lambda n: rollback.Policy(interval=n), "interval="),
        (lambda n: rollback.Policy(deadline=n), "deadline="),
        (lambda n: rollback.CommandCheck(["true"], timeout=n), "timeout="),
        (lambda n: rollback.HttpCheck("http://127.0.0.1/", max_latency=n), "max_latency="),
    ]
    for makers, large, small in ((integers, "too large", "too small"), (durations, "too long", "zero or more")):
        for make, shown in makers:
            for n, word in ((2**64, large), (10**400, large), (-(2**64), small), (-(10**400), small), (-1, small)):
                with pytest.raises(rollback.InvalidInputError) as e:
                    make(n)
                message = str(e.value)
                assert word in message and shown in message, message
                assert "1 or more steps back" not in message and len(message) < 300, message
