"""The emulated application's health: bad while a revision marked bad is live in moto's state."""

from __future__ import annotations

from typing import Any

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


LIVE = {"lambda": _lambda_live, "ecs": _ecs_live, "secret": _secret_live}


def normalize_mark(body: dict[str, Any], default_region: str) -> Mark:
    kind = body.get("kind")
    name = body.get("name")
    revision = body.get("revision")
    if kind not in LIVE:
        raise ControlError(f"'kind' must be one of lambda, ecs, secret (got {kind!r})")
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
