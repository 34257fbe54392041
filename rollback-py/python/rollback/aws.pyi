"""AWS targets and checks on the official AWS SDK.

Configuration comes from the standard AWS environment (``AWS_REGION``, credentials,
profiles, ``AWS_ENDPOINT_URL``), or from ``config=AwsConfig(...)`` given to any of them.
Constructors check names at once (:class:`rollback.InvalidInputError`) and send nothing to
AWS until the target is used.
"""

from collections.abc import Coroutine, Sequence
from typing import Literal, final

from typing_extensions import Self

from .metrics import MetricSource
from . import Action, Check, JournalStore, KnownGoodStore, Locks, Policy, Revision, Seconds, Target

# Mirrors aws.py's list, as a stub must; stubtest (tests/test_typing.py) keeps them equal.
__all__ = [
    "AwsConfig",
    "LambdaAlias",
    "EcsService",
    "EcsDesiredCount",
    "EcsRestart",
    "SecretVersion",
    "RdsInstance",
    "ConnectionHandover",
    "PipelineTransition",
    "PipelineExecution",
    "CloudFormationStack",
    "AlarmCheck",
    "CloudFrontInvalidation",
    "CloudWatchSource",
    "DynamoDbLocks",
    "DynamoDbKnownGood",
    "S3Journals",
    "S3KnownGood",
]

@final
class AwsConfig:
    """AWS settings; unset fields come from the standard AWS environment. Credentials are
    never part of it (nor of journals). Making a target resolves nothing and never blocks:
    the settings are resolved at the first call a target makes, once per process for all
    targets made with the same ``AwsConfig`` (``load()`` / ``from_env()`` resolve and check
    them up front)."""

    def __new__(
        cls,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
    ) -> Self: ...
    @property
    def region(self) -> str | None: ...
    @property
    def endpoint_url(self) -> str | None: ...
    @property
    def profile(self) -> str | None: ...
    @staticmethod
    def from_env() -> AwsConfig:
        """The standard AWS environment's settings, resolved now and checked (a region, and
        credentials the chain yields); raises ``InvalidInputError`` saying what is missing."""
    def load(self) -> AwsConfig:
        """Resolves these settings now and checks them; returns them. Targets never need it:
        they resolve their settings, once per process, at their first call."""
    def load_async(self) -> Coroutine[object, None, AwsConfig]:
        """``load`` as a coroutine, for an event loop."""

@final
class LambdaAlias(Target):
    """A Lambda alias. Revisions are published versions (``"7"``); a rollback points the
    alias at the version and clears canary weights (runbook 002's "canary to 0" is
    ``Exact`` of the alias's own version), guarded by the alias's RevisionId. Stable when
    the version's State is Active."""

    def __new__(cls, function_name: str, alias: str, *, config: AwsConfig | None = None) -> Self: ...
    @property
    def function_name(self) -> str: ...
    @property
    def alias(self) -> str: ...

@final
class EcsService(Target):
    """An ECS service. Revisions are its family's task-definition revisions
    (``"family:14"``; ``Exact`` also takes ``"14"`` and the ARN); a rollback is
    UpdateService(taskDefinition) (with ``force_new_deployment=True`` also
    forceNewDeployment, as ``aws ecs update-service --force-new-deployment``), stable by the
    ServicesStable rules; a FAILED rollout (circuit breaker) fails at once. The plan
    confirms that the chosen revision's ECR images still exist (a deleted image refuses it,
    naming the image; ``check_images=False`` skips that) and shows their digests."""

    def __new__(
        cls,
        cluster: str,
        service: str,
        *,
        force_new_deployment: bool = False,
        check_images: bool = True,
        config: AwsConfig | None = None,
    ) -> Self: ...
    @property
    def cluster(self) -> str: ...
    @property
    def service(self) -> str: ...
    @property
    def force_new_deployment(self) -> bool: ...
    def desired_count(self) -> EcsDesiredCount:
        """This service's desired count as a target."""
    def restart(self) -> EcsRestart:
        """This service's forced new deployment as a target."""

@final
class EcsRestart(Target):
    """An ECS service's forced new deployment. The revision in use is the PRIMARY
    deployment (its id, creation time and task definition); ``Previous`` asks for a new
    deployment (revision ``after:<id>``), waited for to the end. A resumed run does not
    restart twice; a restart cannot be undone (putting it back sends nothing)."""

    def __new__(cls, cluster: str, service: str, *, config: AwsConfig | None = None) -> Self: ...
    @property
    def cluster(self) -> str: ...
    @property
    def service(self) -> str: ...

@final
class EcsDesiredCount(Target):
    """An ECS service's desired count. Revisions are counts (``"0"``, ``"2"``), chosen with
    ``Exact``; scaling up from 0 starts a new deployment (its tasks read secrets anew).
    Usually a temporary step (runbook 001: services stopped during a restore)."""

    def __new__(cls, cluster: str, service: str, *, config: AwsConfig | None = None) -> Self: ...
    @property
    def cluster(self) -> str: ...
    @property
    def service(self) -> str: ...

@final
class SecretVersion(Target):
    """A Secrets Manager secret. Revisions are version ids; a rollback moves AWSCURRENT to
    the version (and AWSPREVIOUS to the one that had it), then gives each consumer ECS
    service (``(cluster, service)``) a new deployment, and each Kubernetes workload given
    as its restart target (``rollback.k8s.Deployment(...).restart()``) kubectl's ``rollout
    restart``, and waits for them; putting the secret back restarts them again, so none
    keeps the rolled-back value. Never reads a secret value."""

    def __new__(
        cls,
        secret_id: str,
        *,
        consumers: Sequence[tuple[str, str] | Target] | None = None,
        config: AwsConfig | None = None,
    ) -> Self: ...
    @property
    def secret_id(self) -> str: ...
    @property
    def consumers(self) -> list[tuple[str, str]]:
        """The consumer ECS services, ``(cluster, service)``."""
    @property
    def consumer_targets(self) -> list[str]:
        """The ids of the consumers given as restart targets (a Kubernetes workload's
        ``restart()``)."""

@final
class RdsInstance(Target):
    """An RDS instance whose data is rolled back by restoring to a NEW instance
    (``restore_as``, default ``<id>-rollback-<time>``), with the original's class, subnet
    group, security groups, parameter group and port; the original is never touched.
    Revisions: ``live`` (current), then its snapshots newest first; ``Exact`` also takes an
    RFC 3339 time or ``"latest"`` for a point-in-time restore. Compensation keeps the
    restored instance and reports it."""

    def __new__(
        cls,
        db_instance_id: str,
        *,
        restore_as: str | None = None,
        config: AwsConfig | None = None,
    ) -> Self: ...
    @property
    def db_instance_id(self) -> str: ...
    @property
    def restore_identifier(self) -> str:
        """The identifier the restored instance gets."""
    def snapshot(self, name: str | None = None, *, timeout: Seconds = 1800.0) -> Revision:
        """Snapshots the instance as ``name`` (default ``pre-migration-<time>``; runbook
        001's "Before Running Migrations") and waits until it is available."""
    def snapshot_async(self, name: str | None = None, *, timeout: Seconds = 1800.0) -> Coroutine[object, None, Revision]:
        """:meth:`snapshot`, awaitable."""
    def restored_endpoint(self) -> tuple[str, int] | None:
        """The restored instance's ``(host, port)``, once it has one."""
    def restored_endpoint_async(self) -> Coroutine[object, None, tuple[str, int] | None]:
        """:meth:`restored_endpoint`, awaitable."""

@final
class ConnectionHandover(Target):
    """Hands a restored instance over: a new version of the connection secret pointing at
    ``db_instance_id``'s endpoint (URL or JSON form, user, password and options kept, the
    value never shown). Select ``Exact(handover.revision_id)``; compensation moves
    AWSCURRENT back."""

    def __new__(cls, secret_id: str, db_instance_id: str, *, config: AwsConfig | None = None) -> Self: ...
    @property
    def secret_id(self) -> str: ...
    @property
    def db_instance_id(self) -> str: ...
    @property
    def revision_id(self) -> str:
        """The revision to select."""

@final
class PipelineTransition(Target):
    """The inbound transition of a CodePipeline stage: ``enabled`` / ``disabled``
    (runbook 003's freeze: ``Exact("disabled")`` as a temporary step); ``stop_in_flight``
    ``"finish"`` or ``"abandon"`` also stops the executions in flight when freezing
    (``"leave"``, the default, leaves them running)."""

    def __new__(
        cls,
        pipeline: str,
        stage: str,
        *,
        stop_in_flight: Literal["leave", "finish", "abandon"] | None = None,
        config: AwsConfig | None = None,
    ) -> Self: ...
    @property
    def pipeline(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def stop_in_flight(self) -> str:
        """``leave``, ``finish`` or ``abandon``."""

@final
class PipelineExecution(Target):
    """A pipeline re-run for an earlier commit (runbook 003 step 3): revisions are the source
    commits of past successful executions, newest first; a rollback starts an execution
    pinned to the commit (StartPipelineExecution with sourceRevisions), stable when it
    Succeeded, failed when it fails, is stopped or superseded."""

    def __new__(
        cls, pipeline: str, *, source_action: str | None = None, config: AwsConfig | None = None
    ) -> Self: ...
    @property
    def pipeline(self) -> str: ...
    @property
    def source_action(self) -> str | None: ...

@final
class CloudFormationStack(Target):
    """A CloudFormation stack rolled back to an earlier version of its template artifact in a
    versioned S3 bucket (runbook 003 step 3): revisions are the S3 versions of ``template``
    (``s3://bucket/key``), newest first; a rollback is UpdateStack pinned to the version,
    stable on UPDATE_COMPLETE, failed with the failing stack events when CloudFormation
    rolls it back."""

    def __new__(
        cls,
        stack: str,
        template: str,
        *,
        keep_parameters: Sequence[str] | None = None,
        capabilities: Sequence[
            Literal["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
        ]
        | None = None,
        config: AwsConfig | None = None,
    ) -> Self: ...
    @property
    def stack(self) -> str: ...
    @property
    def template(self) -> str: ...

@final
class CloudWatchSource(MetricSource):
    """CloudWatch GetMetricData as a metric source for ``rollback.metrics``; a query is
    ``Namespace MetricName Stat [Dimension=Value ...]``."""

    def __new__(cls, *, config: AwsConfig | None = None) -> Self: ...

@final
class AlarmCheck(Check):
    """Passes when no CloudWatch alarm whose name starts with ``prefix`` (or named in
    ``names``) is in ALARM; the evidence names each alarm in ALARM with its reason."""

    def __new__(
        cls,
        prefix: str | None = None,
        *,
        names: Sequence[str] | None = None,
        config: AwsConfig | None = None,
        policy: Policy | None = None,
    ) -> Self: ...

@final
class CloudFrontInvalidation(Action):
    """The cache invalidation after a rollback (runbook 002), for
    :meth:`rollback.Transaction.on_success`: a CloudFront invalidation of ``paths``
    (``"/*"``, ``"/index.html"``) of the distribution whose id is ``distribution``
    (``E2QWRUHAPOMQZL``, not its domain name). The id and paths are checked at once (each
    path starts with ``/``, a ``*`` only at its end; at most 3000 paths, 15 wildcards);
    preflight reads the distribution (GetDistribution), so a wrong id stops the run before
    anything changes. After the run succeeded it sends CreateInvalidation, idempotent per
    run (a resume gets the same invalidation back), and waits until it is Completed (at
    most ``timeout``, default 20 minutes)."""

    def __new__(
        cls,
        distribution: str,
        paths: Sequence[str],
        *,
        timeout: Seconds | None = None,
        config: AwsConfig | None = None,
    ) -> Self: ...
    @property
    def distribution(self) -> str:
        """The distribution's id."""
    @property
    def paths(self) -> list[str]:
        """The paths invalidated."""

@final
class DynamoDbLocks(Locks):
    """Leases in a DynamoDB table a team shares: one item per target (partition key
    ``target``), conditional writes, fencing tokens. ``create=True`` makes the table
    (on-demand billing) unless it exists."""

    def __new__(cls, table: str, *, config: AwsConfig | None = None, create: bool = False) -> Self: ...

@final
class DynamoDbKnownGood(KnownGoodStore):
    """Verified-good revisions in a DynamoDB table a team shares, for
    :class:`rollback.LastKnownGood`. ``create=True`` makes the table unless it exists."""

    def __new__(cls, table: str, *, config: AwsConfig | None = None, create: bool = False) -> Self: ...

@final
class S3KnownGood(KnownGoodStore):
    """Verified-good revisions in an S3 bucket under ``prefix``, for
    :class:`rollback.LastKnownGood`: every record kept (one object each), the newest read.
    ``create=True`` makes the bucket unless it exists."""

    def __new__(
        cls, bucket: str, prefix: str | None = None, *, config: AwsConfig | None = None, create: bool = False
    ) -> Self: ...

@final
class S3Journals(JournalStore):
    """Journals in an S3 bucket under ``prefix``: every record written there too (each batch
    one object, written only if absent), so that :func:`rollback.resume_from_store` finishes
    a run whose machine died. ``create=True`` makes the bucket unless it exists."""

    def __new__(
        cls, bucket: str, prefix: str | None = None, *, config: AwsConfig | None = None, create: bool = False
    ) -> Self: ...
