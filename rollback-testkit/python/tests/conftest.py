"""Shared fixtures: one in-process Emulator for the session, reset before every test."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

import boto3
import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # works without PYTHONPATH too

from rollback_emulator import Emulator  # noqa: E402

# botocore's retries "max_attempts" counts *retries* (max_attempts=1 is two attempts);
# total_max_attempts=1 is one attempt, no retry.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})

SPEC: dict[str, Any] = {
    "lambda": [
        {
            "function": "agentauri-mcp-s3-tools-prod",
            "alias": "live",
            "versions": ["release 1", "release 2"],
            "alias_version": "2",
            "routing": {"1": 0.1},
        }
    ],
    "ecs": [
        {
            "cluster": "agentauri-production",
            "service": "api-gateway-v2",
            "family": "agentauri-production-api-gateway",
            "desired_count": 2,
            "revisions": [
                {
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/api-gateway:abc123",
                    "environment": {"LOG_LEVEL": "info", "DB_PASSWORD": "hunter2"},
                },
                {
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/api-gateway:def456",
                    "environment": {"LOG_LEVEL": "info"},
                },
                {
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/api-gateway:0a1b2c",
                    "environment": {"LOG_LEVEL": "debug"},
                    "containers": [{"name": "sidecar", "image": "datadog/agent:7", "essential": False}],
                },
            ],
            "current": 2,
            "inactive": [1],
        }
    ],
    "secrets": [{"name": "agentauri/production/jwt-secret", "values": ["old-value", "new-value"]}],
}
DB = "agentauri-production"
MANUAL_SNAPSHOT = "pre-migration-20251228-143000"
AUTO_SNAPSHOT = "rds:agentauri-production-2025-12-28-03-00"
RDS_SPEC: dict[str, Any] = {
    "rds": [
        {
            "db_instance_id": DB,
            "engine": "postgres",
            "class": "db.t3.micro",
            "subnet_group": "agentauri-production",
            "security_groups": ["sg-0abc"],
            "parameter_group": "default.postgres15",
            "port": 5432,
            "multi_az": False,
            "snapshots": [
                {"id": MANUAL_SNAPSHOT, "type": "manual", "created": "2025-12-28T14:30:00Z"},
                {"id": AUTO_SNAPSHOT, "type": "automated", "created": "2025-12-28T03:00:00Z"},
            ],
        }
    ],
    "secrets": [
        {
            "name": "agentauri/production/database-url",
            "values": ["postgres://user:pass@agentauri-production.aaaaaaaaaa.us-east-1.rds.amazonaws.com:5432/agentauri_backend"],
        }
    ],
}
CLUSTER = "agentauri-production"
SERVICE = "api-gateway-v2"
FAMILY = "agentauri-production-api-gateway"
FUNCTION = "agentauri-mcp-s3-tools-prod"
SECRET = "agentauri/production/jwt-secret"


@pytest.fixture(scope="session")
def emulator() -> Emulator:
    emu = Emulator(port=0)
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    emulator.reset()
    return emulator


@pytest.fixture
def seeded(emu: Emulator) -> dict[str, Any]:
    return emu.seed(SPEC)


def _client(emu: Emulator, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=emu.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=NO_RETRIES,
    )


@pytest.fixture
def ecs(emu: Emulator) -> Any:
    return _client(emu, "ecs")


@pytest.fixture
def lam(emu: Emulator) -> Any:
    return _client(emu, "lambda")


@pytest.fixture
def sm(emu: Emulator) -> Any:
    return _client(emu, "secretsmanager")


@pytest.fixture
def rds(emu: Emulator) -> Any:
    return _client(emu, "rds")


@pytest.fixture
def cw(emu: Emulator) -> Any:
    return _client(emu, "cloudwatch")


@pytest.fixture
def cp(emu: Emulator) -> Any:
    return _client(emu, "codepipeline")


@pytest.fixture
def rds_seeded(emu: Emulator) -> dict[str, Any]:
    return emu.seed(RDS_SPEC)


def wait_until(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Polls until condition() is truthy and returns it; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def describe(ecs: Any, cluster: str = CLUSTER, service: str = SERVICE) -> dict[str, Any]:
    return ecs.describe_services(cluster=cluster, services=[service])["services"][0]
