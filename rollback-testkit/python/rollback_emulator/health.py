"""The emulated application's health: bad while a revision marked bad is live in moto's state
(or, for ``secret-endpoint`` marks, while a secret does not yet point at a DB instance)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .state import ControlError, Mark


def _lambda_live(mark: Mark, account: str) -> bool:
    from moto.awslambda.models import lambda_backends

    from .patches import awslambda

    function, _, alias_name = mark.name.rpartition(":")
    with awslambda.LOCK:
        try:
            alias = lambda_backends[account][mark.region].get_alias(alias_name, function)
        except Exception:
            return False
        if str(alias.function_version) == mark.revision:
            return True
        return awslambda._weights(alias.routing_config).get(mark.revision, 0.0) > 0.0


def _ecs_live(mark: Mark, account: str) -> bool:
    from moto.ecs.models import ecs_backends

    from .patches import ecs

    cluster, _, service = mark.name.partition("/")
    with ecs.LOCK:
        svc = ecs_backends[account][mark.region].services.get(f"{cluster}:{service}")
        if svc is None or svc.status != "ACTIVE":
            return False
        primary = ecs._primary(svc)
        td = (primary or {}).get("taskDefinition") or svc.task_definition
        try:
            return td is not None and ecs.td_key(td) == mark.revision
        except ValueError:
            return False


def _secret_live(mark: Mark, account: str) -> bool:
    from moto.secretsmanager.models import secretsmanager_backends

    from .patches import secretsmanager

    with secretsmanager.LOCK:
        secrets = secretsmanager_backends[account][mark.region].secrets
        if mark.name not in secrets:
            return False
        version = secrets[mark.name].versions.get(mark.revision)
        return version is not None and "AWSCURRENT" in version["version_stages"]


def secret_hosts(value: str) -> set[str]:
    """The hosts a secret value names: a URL's host (postgres://user:pass@HOST:5432/db), a JSON
    object's "host" (or "hostname" / "endpoint" / "address"), or URLs among its string values."""
    hosts: set[str] = set()

    def from_text(text: str) -> None:
        text = text.strip()
        if "://" in text:
            try:
                host = urlsplit(text).hostname
            except ValueError:
                host = None
            if host:
                hosts.add(host.lower())

    try:
        data = json.loads(value)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("host", "hostname", "endpoint", "address"):
            v = data.get(key)
            if isinstance(v, str) and v.strip():
                hosts.add(v.strip().lower().rstrip("."))
        for v in data.values():
            if isinstance(v, str):
                from_text(v)
    elif isinstance(value, str):
        from_text(value)
    return hosts


def _secret_endpoint_live(mark: Mark, account: str) -> bool:
    """Bad (live) while the AWSCURRENT value of the secret does not name the endpoint address
    of the DB instance (or the instance has no endpoint yet)."""
    from moto.rds.models import rds_backends
    from moto.secretsmanager.models import secretsmanager_backends

    from .patches import rds, secretsmanager

    with rds.LOCK:
        db = rds_backends[account][mark.region].databases.get(mark.revision)
        endpoint = db.endpoint if db is not None else None
        address = (endpoint or {}).get("Address")
    if not address:
        return True
    with secretsmanager.LOCK:
        secrets = secretsmanager_backends[account][mark.region].secrets
        if mark.name not in secrets:
            return True
        secret = secrets[mark.name]
        current = [v for v in secret.versions.values() if "AWSCURRENT" in v["version_stages"]]
        value = current[0].get("secret_string") if current else None
    if not isinstance(value, str):
        return True
    return address.lower() not in secret_hosts(value)


LIVE = {
    "lambda": _lambda_live,
    "ecs": _ecs_live,
    "secret": _secret_live,
    "secret-endpoint": _secret_endpoint_live,
}


def normalize_mark(body: dict[str, Any], default_region: str) -> Mark:
    kind = body.get("kind")
    name = body.get("name")
    revision = body.get("revision")
    if kind not in LIVE:
        raise ControlError(f"'kind' must be one of lambda, ecs, secret, secret-endpoint (got {kind!r})")
    if not isinstance(name, str) or not name:
        raise ControlError("'name' must be a non-empty string")
    if isinstance(revision, int) and not isinstance(revision, bool):
        revision = str(revision)
    if not isinstance(revision, str) or not revision:
        raise ControlError("'revision' must be a non-empty string")
    region = body.get("region") or default_region
    if kind == "lambda":
        if ":" not in name:
            raise ControlError(f"lambda 'name' must be 'function:alias' (got {name!r})")
        if not revision.isdigit():
            raise ControlError(f"lambda 'revision' must be a version number such as \"2\" (got {revision!r})")
    elif kind == "ecs":
        if name.count("/") != 1 or name.startswith("/") or name.endswith("/"):
            raise ControlError(f"ecs 'name' must be 'cluster/service' (got {name!r})")
        from .patches.ecs import td_key

        try:
            revision = td_key(revision)
        except ValueError as e:
            raise ControlError(f"ecs 'revision': {e}") from None
    return Mark(kind, name, revision, region)


def evaluate(marks: list[Mark], account: str) -> dict[str, Any]:
    bad_live = [m.describe() for m in marks if LIVE[m.kind](m, account)]
    return {"healthy": not bad_live, "bad_live": bad_live}
