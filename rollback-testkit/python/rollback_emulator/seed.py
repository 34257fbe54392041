"""POST /_emulator/seed: creates Lambda functions, ECS services and secrets through the AWS API.

The resources are made with boto3 against the emulator itself, so they go through the same
code (and patches) as the SDK under test. Those requests carry ``INTERNAL_HEADER`` and are
neither counted nor faulted. The whole spec is validated, and checked against what exists,
before anything is created: seeding a name that exists is a 400, never a partial seed.
"""

from __future__ import annotations

import io
import json
import threading
import zipfile
from typing import Any

from .state import ControlError

INTERNAL_HEADER = "X-Rollback-Emulator-Internal"
LAMBDA_ROLE = "rollback-emulator-lambda"
TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


_client_cache: dict[tuple[str, str], dict[str, Any]] = {}
_client_lock = threading.Lock()


def _clients(endpoint: str, region: str) -> dict[str, Any]:
    with _client_lock:
        if (endpoint, region) not in _client_cache:
            _client_cache[(endpoint, region)] = _make_clients(endpoint, region)
        return _client_cache[(endpoint, region)]


def _make_clients(endpoint: str, region: str) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(
        aws_access_key_id="rollback-emulator", aws_secret_access_key="rollback-emulator", region_name=region
    )
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    out = {}
    for name in ("lambda", "ecs", "secretsmanager", "iam"):
        client = session.client(name, endpoint_url=endpoint, config=config)

        def mark_internal(request: Any, **_: Any) -> None:
            request.headers[INTERNAL_HEADER] = "1"

        client.meta.events.register("before-sign", mark_internal)
        out[name] = client
    return out


def _zip(source: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", source)
    return buf.getvalue()


def _req(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise ControlError(f"{where}: '{key}' is required")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ControlError(f"{where}: '{key}' has the wrong type ({type(value).__name__})")
    return value


def _validate(spec: Any) -> None:
    if not isinstance(spec, dict):
        raise ControlError("seed body must be a JSON object with 'lambda', 'ecs' and/or 'secrets' lists")
    unknown = set(spec) - {"lambda", "ecs", "secrets", "region"}
    if unknown:
        raise ControlError(f"seed: unknown keys {sorted(unknown)}; expected lambda, ecs, secrets, region")
    for key in ("lambda", "ecs", "secrets"):
        if key in spec and not isinstance(spec[key], list):
            raise ControlError(f"seed: '{key}' must be a list")
    for i, fn in enumerate(spec.get("lambda", [])):
        where = f"lambda[{i}]"
        if not isinstance(fn, dict):
            raise ControlError(f"{where} must be an object")
        _req(fn, "function", str, where)
        versions = _req(fn, "versions", list, where)
        if not versions or not all(isinstance(v, str) for v in versions):
            raise ControlError(f"{where}: 'versions' must be a non-empty list of descriptions")
        if "alias" in fn:
            _req(fn, "alias", str, where)
            alias_version = str(fn.get("alias_version", len(versions)))
            if not alias_version.isdigit() or not 1 <= int(alias_version) <= len(versions):
                raise ControlError(f"{where}: 'alias_version' must be one of the versions 1..{len(versions)}")
            routing = fn.get("routing") or {}
            if not isinstance(routing, dict):
                raise ControlError(f"{where}: 'routing' must be an object {{version: weight}}")
            for v, w in routing.items():
                if not str(v).isdigit() or not 1 <= int(v) <= len(versions) or str(v) == alias_version:
                    raise ControlError(f"{where}: routing version {v!r} must be another version 1..{len(versions)}")
                if not isinstance(w, (int, float)) or not 0 <= w <= 1:
                    raise ControlError(f"{where}: routing weight {w!r} must be between 0 and 1")
        elif "alias_version" in fn or "routing" in fn:
            raise ControlError(f"{where}: 'alias_version'/'routing' need 'alias'")
    for i, svc in enumerate(spec.get("ecs", [])):
        where = f"ecs[{i}]"
        if not isinstance(svc, dict):
            raise ControlError(f"{where} must be an object")
        for key in ("cluster", "service", "family"):
            _req(svc, key, str, where)
        revisions = _req(svc, "revisions", list, where)
        if not revisions:
            raise ControlError(f"{where}: 'revisions' must not be empty")
        for j, rev in enumerate(revisions):
            rwhere = f"{where}.revisions[{j}]"
            if not isinstance(rev, dict):
                raise ControlError(f"{rwhere} must be an object")
            _req(rev, "image", str, rwhere)
            if not isinstance(rev.get("environment", {}), dict):
                raise ControlError(f"{rwhere}: 'environment' must be an object {{NAME: value}}")
            containers = rev.get("containers", [])
            if not isinstance(containers, list) or not all(
                isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("image"), str) for c in containers
            ):
                raise ControlError(f"{rwhere}: 'containers' must be a list of container definitions with name and image")
        desired = svc.get("desired_count", 1)
        if not isinstance(desired, int) or isinstance(desired, bool) or desired < 0:
            raise ControlError(f"{where}: 'desired_count' must be an integer >= 0")
        n = len(revisions)
        current = svc.get("current", n)
        inactive = svc.get("inactive", [])
        if not isinstance(current, int) or not 1 <= current <= n:
            raise ControlError(f"{where}: 'current' must be a revision number 1..{n}")
        if not isinstance(inactive, list) or not all(isinstance(r, int) and 1 <= r <= n for r in inactive):
            raise ControlError(f"{where}: 'inactive' must be a list of revision numbers 1..{n}")
        if current in inactive:
            raise ControlError(f"{where}: the current revision {current} cannot be inactive (AWS: TaskDefinition is inactive)")
    for i, sec in enumerate(spec.get("secrets", [])):
        where = f"secrets[{i}]"
        if not isinstance(sec, dict):
            raise ControlError(f"{where} must be an object")
        _req(sec, "name", str, where)
        values = _req(sec, "values", list, where)
        if not values or not all(isinstance(v, (str, dict, list)) for v in values):
            raise ControlError(f"{where}: 'values' must be a non-empty list of strings (or JSON values)")


def _check_absent(spec: dict[str, Any], c: dict[str, Any]) -> None:
    from botocore.exceptions import ClientError

    def exists(call: Any, **kw: Any) -> bool:
        try:
            call(**kw)
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in ("ResourceNotFoundException", "ServiceNotFoundException", "ClientException"):
                return False
            raise

    for fn in spec.get("lambda", []):
        if exists(c["lambda"].get_function, FunctionName=fn["function"]):
            raise ControlError(f"seed: lambda function {fn['function']!r} already exists; POST /_emulator/reset first")
    for svc in spec.get("ecs", []):
        if c["ecs"].list_task_definitions(familyPrefix=svc["family"], status="ACTIVE")["taskDefinitionArns"] or c[
            "ecs"
        ].list_task_definitions(familyPrefix=svc["family"], status="INACTIVE")["taskDefinitionArns"]:
            raise ControlError(f"seed: task definition family {svc['family']!r} already exists; POST /_emulator/reset first")
        clusters = c["ecs"].describe_clusters(clusters=[svc["cluster"]])["clusters"]
        if clusters:
            found = c["ecs"].describe_services(cluster=svc["cluster"], services=[svc["service"]])["services"]
            if any(s["status"] == "ACTIVE" for s in found):
                raise ControlError(
                    f"seed: ECS service {svc['cluster']}/{svc['service']} already exists; POST /_emulator/reset first"
                )
    for sec in spec.get("secrets", []):
        if exists(c["secretsmanager"].describe_secret, SecretId=sec["name"]):
            raise ControlError(f"seed: secret {sec['name']!r} already exists; POST /_emulator/reset first")


def _seed_lambda(fn: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    lam, iam = c["lambda"], c["iam"]
    try:
        role_arn = iam.get_role(RoleName=LAMBDA_ROLE)["Role"]["Arn"]
    except ClientError:
        role_arn = iam.create_role(RoleName=LAMBDA_ROLE, AssumeRolePolicyDocument=TRUST_POLICY)["Role"]["Arn"]
    name = fn["function"]
    descriptions = fn["versions"]

    def code(i: int) -> bytes:
        return _zip(f"RELEASE = {descriptions[i]!r}\n\n\ndef handler(event, context):\n    return {{'release': RELEASE}}\n")

    created = lam.create_function(
        FunctionName=name,
        Runtime=fn.get("runtime", "python3.12"),
        Role=role_arn,
        Handler="handler.handler",
        Code={"ZipFile": code(0)},
        Description=fn.get("description", ""),
    )
    versions = []
    for i, description in enumerate(descriptions):
        if i > 0:  # Lambda publishes a new version only when code or configuration changed
            lam.update_function_code(FunctionName=name, ZipFile=code(i))
        versions.append(lam.publish_version(FunctionName=name, Description=description)["Version"])
    out: dict[str, Any] = {"function": name, "function_arn": created["FunctionArn"], "versions": versions}
    if "alias" in fn:
        kwargs: dict[str, Any] = {
            "FunctionName": name,
            "Name": fn["alias"],
            "FunctionVersion": str(fn.get("alias_version", len(descriptions))),
        }
        if fn.get("routing"):
            kwargs["RoutingConfig"] = {"AdditionalVersionWeights": {str(k): float(v) for k, v in fn["routing"].items()}}
        alias = lam.create_alias(**kwargs)
        out.update(alias=fn["alias"], alias_arn=alias["AliasArn"], revision_id=alias["RevisionId"])
    return out


def _seed_ecs(svc: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    ecs = c["ecs"]
    if not ecs.describe_clusters(clusters=[svc["cluster"]])["clusters"]:
        ecs.create_cluster(clusterName=svc["cluster"])
    family = svc["family"]
    task_definitions = []
    for rev in svc["revisions"]:
        container: dict[str, Any] = {
            "name": svc.get("container", svc["service"]),
            "image": rev["image"],
            "essential": True,
            "environment": [{"name": k, "value": str(v)} for k, v in rev.get("environment", {}).items()],
        }
        if rev.get("port"):
            container["portMappings"] = [{"containerPort": int(rev["port"]), "protocol": "tcp"}]
        if rev.get("secrets"):
            container["secrets"] = rev["secrets"]
        td = ecs.register_task_definition(
            family=family,
            containerDefinitions=[container] + list(rev.get("containers", [])),
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu=str(rev.get("cpu", "256")),
            memory=str(rev.get("memory", "512")),
        )["taskDefinition"]
        task_definitions.append(f"{td['family']}:{td['revision']}")
    for r in svc.get("inactive", []):
        ecs.deregister_task_definition(taskDefinition=task_definitions[r - 1])
    current = task_definitions[svc.get("current", len(task_definitions)) - 1]
    created = ecs.create_service(
        cluster=svc["cluster"],
        serviceName=svc["service"],
        taskDefinition=current,
        desiredCount=svc.get("desired_count", 1),
        launchType="FARGATE",
    )["service"]
    return {
        "cluster": svc["cluster"],
        "service": svc["service"],
        "service_arn": created["serviceArn"],
        "task_definitions": task_definitions,
        "current": current,
    }


def _seed_secret(sec: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    sm = c["secretsmanager"]

    def text(v: Any) -> str:
        return v if isinstance(v, str) else json.dumps(v)

    values = sec["values"]
    kwargs: dict[str, Any] = {"Name": sec["name"], "SecretString": text(values[0])}
    if sec.get("description"):
        kwargs["Description"] = sec["description"]
    created = sm.create_secret(**kwargs)
    version_ids = [created["VersionId"]]
    for v in values[1:]:
        version_ids.append(sm.put_secret_value(SecretId=sec["name"], SecretString=text(v))["VersionId"])
    return {"name": sec["name"], "arn": created["ARN"], "version_ids": version_ids, "current": version_ids[-1]}


def seed(spec: Any, endpoint: str, default_region: str) -> dict[str, Any]:
    _validate(spec)
    names = [("lambda", fn["function"]) for fn in spec.get("lambda", [])]
    names += [("ecs", f"{s['cluster']}/{s['service']}") for s in spec.get("ecs", [])]
    names += [("ecs family", s["family"]) for s in spec.get("ecs", [])]
    names += [("secret", s["name"]) for s in spec.get("secrets", [])]
    dupes = sorted({f"{k} {n}" for k, n in names if names.count((k, n)) > 1})
    if dupes:
        raise ControlError(f"seed: names given twice: {', '.join(dupes)}")
    region = spec.get("region") or default_region
    clients = _clients(endpoint, region)
    _check_absent(spec, clients)
    return {
        "lambda": [_seed_lambda(fn, clients) for fn in spec.get("lambda", [])],
        "ecs": [_seed_ecs(svc, clients) for svc in spec.get("ecs", [])],
        "secrets": [_seed_secret(sec, clients) for sec in spec.get("secrets", [])],
    }
