"""AWS targets and checks on the official AWS SDK.

Configuration comes from the standard AWS environment (``AWS_REGION``, credentials,
profiles, ``AWS_ENDPOINT_URL``), or from ``config=AwsConfig(region=..., endpoint_url=...,
profile=...)`` given to any of them.
"""

from __future__ import annotations

from ._rollback import (
    AlarmCheck,
    AwsConfig,
    CloudFormationStack,
    CloudFrontInvalidation,
    CloudWatchSource,
    ConnectionHandover,
    DynamoDbKnownGood,
    DynamoDbLocks,
    EcsDesiredCount,
    EcsRestart,
    EcsService,
    LambdaAlias,
    PipelineTransition,
    PipelineExecution,
    RdsInstance,
    S3Journals,
    S3KnownGood,
    SecretVersion,
)

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
