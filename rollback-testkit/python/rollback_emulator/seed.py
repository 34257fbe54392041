"""POST /_emulator/seed: creates Lambda functions, ECS services, secrets, RDS instances with
their snapshots, CloudWatch alarms and metrics, CodePipeline pipelines, CloudFormation stacks with
their templates in a versioned S3 bucket, and CloudFront distributions through the AWS API.

The resources are made with boto3 against the emulator itself, so they go through the same
code (and patches) as the SDK under test. Those requests carry ``INTERNAL_HEADER`` and are
neither counted nor faulted. The whole spec is validated, and checked against what exists,
before anything is created: seeding a name that exists is a 400, never a partial seed.

What the API cannot do is done on moto's objects directly, in-process: an RDS instance is made
``available`` at once (no creating / backing-up delay), snapshots get the SnapshotType
(``automated`` / ``manual``) and SnapshotCreateTime the spec gives, and a security group gets
the id the spec gives (``sg-0abc``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import ipaddress
import json
import re
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
PIPELINE_ROLE = "rollback-emulator-codepipeline"
PIPELINE_TRUST_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
DEFAULT_ENGINE_VERSIONS = {"postgres": "15.4", "mysql": "8.0.35", "mariadb": "10.11.6"}
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
SEED_KEYS = ("lambda", "ecs", "secrets", "rds", "cloudwatch", "codepipeline", "cloudformation", "cloudfront")


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
    for name in ("lambda", "ecs", "secretsmanager", "iam", "rds", "ec2", "cloudwatch", "codepipeline", "ecr", "cloudformation", "s3", "cloudfront"):
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


def parse_time(value: Any, where: str) -> dt.datetime:
    """Unix seconds or ISO-8601 (``2025-12-28T14:30:00Z``) as an aware UTC datetime."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
    if isinstance(value, str) and value.strip():
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ControlError(f"{where}: {value!r} is not an ISO-8601 time or unix seconds") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    raise ControlError(f"{where}: a time must be unix seconds or an ISO-8601 string (got {value!r})")


def _validate_rds(spec: dict[str, Any]) -> None:
    for i, db in enumerate(spec.get("rds", [])):
        where = f"rds[{i}]"
        if not isinstance(db, dict):
            raise ControlError(f"{where} must be an object")
        _req(db, "db_instance_id", str, where)
        unknown = set(db) - {
            "db_instance_id", "engine", "engine_version", "class", "subnet_group", "security_groups",
            "parameter_group", "port", "multi_az", "backup_retention", "allocated_storage",
            "master_username", "db_name", "created", "snapshots",
        }
        if unknown:
            raise ControlError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("engine", "engine_version", "class", "subnet_group", "parameter_group", "master_username", "db_name"):
            if key in db and not isinstance(db[key], str):
                raise ControlError(f"{where}: '{key}' must be a string")
        groups = db.get("security_groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            raise ControlError(f"{where}: 'security_groups' must be a list of ids (sg-...) or names")
        for key in ("port", "backup_retention", "allocated_storage"):
            if key in db and (not isinstance(db[key], int) or isinstance(db[key], bool) or db[key] < 0):
                raise ControlError(f"{where}: '{key}' must be an integer >= 0")
        if "multi_az" in db and not isinstance(db["multi_az"], bool):
            raise ControlError(f"{where}: 'multi_az' must be true or false")
        if "created" in db:
            parse_time(db["created"], f"{where}.created")
        snaps = db.get("snapshots", [])
        if not isinstance(snaps, list):
            raise ControlError(f"{where}: 'snapshots' must be a list")
        ids = []
        for j, snap in enumerate(snaps):
            swhere = f"{where}.snapshots[{j}]"
            if not isinstance(snap, dict):
                raise ControlError(f"{swhere} must be an object {{id, type, created}}")
            kind = snap.get("type", "manual")
            if kind not in ("manual", "automated"):
                raise ControlError(f"{swhere}: 'type' must be manual or automated (got {kind!r})")
            if "created" not in snap:
                raise ControlError(f"{swhere}: 'created' is required")
            created = parse_time(snap["created"], f"{swhere}.created")
            sid = snap.get("id") or (
                f"rds:{db['db_instance_id']}-{created.strftime('%Y-%m-%d-%H-%M')}" if kind == "automated" else None
            )
            if not isinstance(sid, str) or not sid:
                raise ControlError(f"{swhere}: 'id' is required for a manual snapshot")
            if kind == "manual" and sid.startswith("rds:"):
                raise ControlError(f"{swhere}: manual snapshot ids cannot start with 'rds:' (AWS names automated ones so)")
            ids.append(sid.lower())
        if len(set(ids)) != len(ids):
            raise ControlError(f"{where}: snapshot ids given twice")


def _validate_cloudwatch(spec: dict[str, Any]) -> None:
    cw = spec.get("cloudwatch")
    if cw is None:
        return
    if not isinstance(cw, dict) or set(cw) - {"alarms", "metrics"}:
        raise ControlError("seed: 'cloudwatch' must be an object {\"alarms\": [...], \"metrics\": [...]}")
    for i, alarm in enumerate(cw.get("alarms", [])):
        where = f"cloudwatch.alarms[{i}]"
        if not isinstance(alarm, dict):
            raise ControlError(f"{where} must be an object")
        _req(alarm, "name", str, where)
        if alarm.get("state", "INSUFFICIENT_DATA") not in ALARM_STATES:
            raise ControlError(f"{where}: 'state' must be one of {', '.join(ALARM_STATES)}")
        for key in ("metric", "namespace", "statistic", "comparison", "reason"):
            if key in alarm and not isinstance(alarm[key], str):
                raise ControlError(f"{where}: '{key}' must be a string")
        if not isinstance(alarm.get("dimensions", {}), dict):
            raise ControlError(f"{where}: 'dimensions' must be an object {{name: value}}")
    for i, metric in enumerate(cw.get("metrics", [])):
        where = f"cloudwatch.metrics[{i}]"
        if not isinstance(metric, dict):
            raise ControlError(f"{where} must be an object")
        _req(metric, "namespace", str, where)
        _req(metric, "name", str, where)
        if not isinstance(metric.get("dimensions", {}), dict):
            raise ControlError(f"{where}: 'dimensions' must be an object {{name: value}}")
        points = _req(metric, "points", list, where)
        for j, point in enumerate(points):
            if (
                not isinstance(point, list)
                or len(point) != 2
                or not isinstance(point[1], (int, float))
                or isinstance(point[1], bool)
            ):
                raise ControlError(f"{where}.points[{j}] must be [time, value]")
            parse_time(point[0], f"{where}.points[{j}]")


def _validate_codepipeline(spec: dict[str, Any]) -> None:
    for i, pipe in enumerate(spec.get("codepipeline", [])):
        where = f"codepipeline[{i}]"
        if not isinstance(pipe, dict):
            raise ControlError(f"{where} must be an object")
        _req(pipe, "name", str, where)
        stages = _req(pipe, "stages", list, where)
        if len(stages) < 2 or not all(isinstance(st, str) and st for st in stages):
            raise ControlError(f"{where}: 'stages' must be a list of at least 2 stage names (AWS's minimum)")
        if len(set(stages)) != len(stages):
            raise ControlError(f"{where}: stage names given twice")
        source = pipe.get("source", "s3")
        if source not in SOURCES:
            raise ControlError(f"{where}: 'source' must be one of {', '.join(SOURCES)} (got {source!r})")
        for j, ex in enumerate(pipe.get("executions", [])):
            w = f"{where}.executions[{j}]"
            if not isinstance(ex, dict):
                raise ControlError(f"{w} must be an object {{commit, status, summary, status_summary}}")
            _req(ex, "commit", str, w)
            status = ex.get("status", "Succeeded")
            if status not in EXECUTION_STATUSES:
                raise ControlError(f"{w}: 'status' must be one of {', '.join(EXECUTION_STATUSES)} (got {status!r})")
            for key in ("summary", "status_summary"):
                if key in ex:
                    _req(ex, key, str, w)
        failing = pipe.get("failing", [])
        if not isinstance(failing, list) or not all(isinstance(f, str) and f for f in failing):
            raise ControlError(f"{where}: 'failing' must be a list of commits whose executions fail")


def _validate_cloudformation(spec: dict[str, Any]) -> None:
    for i, st in enumerate(spec.get("cloudformation", [])):
        where = f"cloudformation[{i}]"
        if not isinstance(st, dict):
            raise ControlError(f"{where} must be an object")
        for key in ("stack", "bucket", "key"):
            _req(st, key, str, where)
        templates = _req(st, "templates", list, where)
        if not templates or not all(isinstance(t, (str, dict)) for t in templates):
            raise ControlError(f"{where}: 'templates' must be a non-empty list of templates (JSON objects or text)")
        current = st.get("current", len(templates))
        if not isinstance(current, int) or isinstance(current, bool) or not 1 <= current <= len(templates):
            raise ControlError(f"{where}: 'current' must be a template number 1..{len(templates)}")
        params = st.get("parameters", {})
        if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
            raise ControlError(f"{where}: 'parameters' must be an object {{name: string value}}")
        if not isinstance(st.get("versioned", True), bool):
            raise ControlError(f"{where}: 'versioned' must be true or false")


def _validate_cloudfront(spec: dict[str, Any]) -> None:
    for i, dist in enumerate(spec.get("cloudfront", [])):
        where = f"cloudfront[{i}]"
        if not isinstance(dist, dict):
            raise ControlError(f"{where} must be an object")
        _req(dist, "name", str, where)
        if not isinstance(dist.get("origin", "origin.example.com"), str):
            raise ControlError(f"{where}: 'origin' must be a domain name")


def _validate(spec: Any) -> None:
    if not isinstance(spec, dict):
        raise ControlError(f"seed body must be a JSON object with any of {', '.join(SEED_KEYS)}")
    unknown = set(spec) - set(SEED_KEYS) - {"region"}
    if unknown:
        raise ControlError(f"seed: unknown keys {sorted(unknown)}; expected {', '.join(SEED_KEYS)}, region")
    for key in ("lambda", "ecs", "secrets", "rds", "codepipeline", "cloudformation", "cloudfront"):
        if key in spec and not isinstance(spec[key], list):
            raise ControlError(f"seed: '{key}' must be a list")
    _validate_rds(spec)
    _validate_cloudfront(spec)
    _validate_cloudwatch(spec)
    _validate_codepipeline(spec)
    _validate_cloudformation(spec)
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
            if e.response["Error"]["Code"] in (
                "ResourceNotFoundException",
                "ServiceNotFoundException",
                "ClientException",
                "PipelineNotFoundException",
            ):
                return False
            if e.response["Error"]["Code"] == "ValidationError" and "does not exist" in e.response["Error"].get("Message", ""):
                return False  # CloudFormation: "Stack with id X does not exist"
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
    for db in spec.get("rds", []):
        try:
            c["rds"].describe_db_instances(DBInstanceIdentifier=db["db_instance_id"])
            raise ControlError(f"seed: DB instance {db['db_instance_id']!r} already exists; POST /_emulator/reset first")
        except ClientError as e:
            if e.response["Error"]["Code"] != "DBInstanceNotFound":
                raise
        for snap in db.get("snapshots", []):
            if snap.get("id"):
                try:
                    c["rds"].describe_db_snapshots(DBSnapshotIdentifier=snap["id"])
                    raise ControlError(f"seed: DB snapshot {snap['id']!r} already exists; POST /_emulator/reset first")
                except ClientError as e:
                    if e.response["Error"]["Code"] != "DBSnapshotNotFound":
                        raise
    alarms = [a["name"] for a in (spec.get("cloudwatch") or {}).get("alarms", [])]
    if alarms:
        found = c["cloudwatch"].describe_alarms(AlarmNames=alarms, AlarmTypes=["MetricAlarm", "CompositeAlarm"])
        names = [a["AlarmName"] for a in found["MetricAlarms"] + found["CompositeAlarms"]]
        if names:
            raise ControlError(f"seed: CloudWatch alarm {names[0]!r} already exists; POST /_emulator/reset first")
    for pipe in spec.get("codepipeline", []):
        if exists(c["codepipeline"].get_pipeline, name=pipe["name"]):
            raise ControlError(f"seed: pipeline {pipe['name']!r} already exists; POST /_emulator/reset first")
    for st in spec.get("cloudformation", []):
        if exists(c["cloudformation"].describe_stacks, StackName=st["stack"]):
            raise ControlError(f"seed: stack {st['stack']!r} already exists; POST /_emulator/reset first")
    if spec.get("cloudfront"):
        cf = c["cloudfront"]
        listed = cf.list_distributions()["DistributionList"].get("Items") or []
        # The summaries moto lists carry no Comment: each distribution's config does.
        comments = {cf.get_distribution_config(Id=d["Id"])["DistributionConfig"].get("Comment") for d in listed}
        for dist in spec["cloudfront"]:
            if dist["name"] in comments:
                raise ControlError(f"seed: CloudFront distribution {dist['name']!r} already exists; POST /_emulator/reset first")


def _role(iam: Any, name: str, trust_policy: str) -> str:
    """The ARN of the IAM role `name`, created with `trust_policy` when missing."""
    from botocore.exceptions import ClientError

    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except ClientError:
        return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust_policy)["Role"]["Arn"])


def _seed_lambda(fn: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    lam = c["lambda"]
    role_arn = _role(c["iam"], LAMBDA_ROLE, TRUST_POLICY)
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


# moto's account: the one images are put into.
MOTO_ACCOUNT = "123456789012"
# An image in this emulator's ECR: <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>.
ECR_IMAGE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+):([^:@/]+)$")


def _push_image(image: str, c: dict[str, Any]) -> None:
    """Puts an ECR image named in a task definition into the emulator's ECR (the repository
    made when missing), so that checks of the image find it; other images are left alone."""
    m = ECR_IMAGE.match(image)
    if not m:
        return
    account, region, repo, tag = m.groups()
    ecr = c["ecr"]
    if account != MOTO_ACCOUNT or region != ecr.meta.region_name:
        return
    try:
        ecr.create_repository(repositoryName=repo)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 7023, "digest": "sha256:" + hashlib.sha256(image.encode()).hexdigest()},
            "layers": [],
        }
    )
    try:
        ecr.put_image(repositoryName=repo, imageManifest=manifest, imageTag=tag)
    except ecr.exceptions.ImageAlreadyExistsException:
        pass


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
        if not rev.get("image_missing"):
            for image in [rev["image"]] + [x.get("image", "") for x in rev.get("containers", [])]:
                _push_image(image, c)
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


# -- RDS ----------------------------------------------------------------------------------------
def _iso(when: dt.datetime) -> str:
    """ISO-8601 in UTC with a Z, for naive (moto's UTC) and aware datetimes."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when.isoformat() + "Z"


def _account(c: dict[str, Any]) -> str:
    import os

    return os.environ.get("MOTO_ACCOUNT_ID", "123456789012")


def _seed_network(db: dict[str, Any], c: dict[str, Any], region: str) -> tuple[str | None, str | None]:
    """(subnet group name, VPC id): the subnet group (with a VPC and two subnets) when missing."""
    from botocore.exceptions import ClientError

    ec2, rds = c["ec2"], c["rds"]
    name = db.get("subnet_group")
    if not name:
        return None, None
    try:
        group = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
        return name, group.get("VpcId")
    except ClientError as e:
        if e.response["Error"]["Code"] not in ("DBSubnetGroupNotFoundFault", "DBSubnetGroupNotFound"):
            raise
    taken = [ipaddress.ip_network(v["CidrBlock"]) for v in ec2.describe_vpcs()["Vpcs"]]
    cidr = next(
        n for n in (ipaddress.ip_network(f"10.{i}.0.0/16") for i in range(10, 250)) if not any(n.overlaps(t) for t in taken)
    )
    vpc = ec2.create_vpc(
        CidrBlock=str(cidr),
        TagSpecifications=[{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}],
    )["Vpc"]["VpcId"]
    subnets = []
    for k, zone in enumerate(("a", "b")):
        block = str(list(cidr.subnets(new_prefix=24))[k + 1])
        subnets.append(
            ec2.create_subnet(VpcId=vpc, CidrBlock=block, AvailabilityZone=f"{region}{zone}")["Subnet"]["SubnetId"]
        )
    rds.create_db_subnet_group(
        DBSubnetGroupName=name, DBSubnetGroupDescription=f"{name} (seeded by the rollback emulator)", SubnetIds=subnets
    )
    return name, vpc


def _seed_security_groups(groups: list[str], vpc: str | None, c: dict[str, Any], region: str) -> list[str]:
    """Ids of the groups: existing ones as they are; a missing ``sg-...`` id is created with that id."""
    from moto.ec2.models import ec2_backends

    ec2 = c["ec2"]
    backend = ec2_backends[_account(c)][region]
    vpc = vpc or backend.default_vpc.id
    ids = []
    for group in groups:
        if group.startswith("sg-"):
            if backend.get_security_group_from_id(group) is None:
                made = ec2.create_security_group(
                    GroupName=f"rollback-emulator-{group}", Description=f"{group} (seeded)", VpcId=vpc
                )["GroupId"]
                sg = backend.groups[vpc].pop(made)
                sg.id = sg.group_id = group
                backend.groups[vpc][group] = sg
            ids.append(group)
        else:
            found = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [group]}])["SecurityGroups"]
            if found:
                ids.append(found[0]["GroupId"])
            else:
                ids.append(ec2.create_security_group(GroupName=group, Description=f"{group} (seeded)", VpcId=vpc)["GroupId"])
    return ids


def _seed_rds(db: dict[str, Any], c: dict[str, Any], region: str) -> dict[str, Any]:
    from moto.rds.models import rds_backends

    from .patches import rds as rds_patch

    rds = c["rds"]
    engine = db.get("engine", "postgres")
    version = db.get("engine_version") or DEFAULT_ENGINE_VERSIONS.get(engine, "15.4")
    subnet_group, vpc = _seed_network(db, c, region)
    sg_ids = _seed_security_groups(db.get("security_groups", []), vpc, c, region)
    parameter_group = db.get("parameter_group")
    if parameter_group and not parameter_group.startswith(f"default.{engine}"):
        try:
            rds.describe_db_parameter_groups(DBParameterGroupName=parameter_group)
        except Exception:
            rds.create_db_parameter_group(
                DBParameterGroupName=parameter_group,
                DBParameterGroupFamily=f"{engine}{version.split('.')[0]}",
                Description=f"{parameter_group} (seeded by the rollback emulator)",
            )
    kwargs: dict[str, Any] = {
        "DBInstanceIdentifier": db["db_instance_id"],
        "Engine": engine,
        "EngineVersion": version,
        "DBInstanceClass": db.get("class", "db.t3.micro"),
        "MasterUsername": db.get("master_username", "postgres" if engine == "postgres" else "admin"),
        "MasterUserPassword": "rollback-emulator-password",
        "AllocatedStorage": db.get("allocated_storage", 20),
        "BackupRetentionPeriod": db.get("backup_retention", 7),
        "MultiAZ": db.get("multi_az", False),
    }
    if db.get("db_name"):
        kwargs["DBName"] = db["db_name"]
    if "port" in db:
        kwargs["Port"] = db["port"]
    if subnet_group:
        kwargs["DBSubnetGroupName"] = subnet_group
    if sg_ids:
        kwargs["VpcSecurityGroupIds"] = sg_ids
    if parameter_group:
        kwargs["DBParameterGroupName"] = parameter_group
    rds.create_db_instance(**kwargs)

    backend = rds_backends[_account(c)][region]
    snaps = db.get("snapshots", [])
    # moto keeps naive UTC datetimes
    times = [parse_time(s["created"], "created").astimezone(dt.timezone.utc).replace(tzinfo=None) for s in snaps]
    with rds_patch.LOCK:
        instance = backend.databases[db["db_instance_id"]]
        # InstanceCreateTime: the spec's "created", else the time of seeding (moto's).
        if "created" in db:
            created = parse_time(db["created"], "created").astimezone(dt.timezone.utc).replace(tzinfo=None)
            instance.created = created
            instance.instance_create_time = created
        rds_patch.SCHEDULER.complete(instance)  # available at once; takes moto's first automated snapshot
        if any(s.get("type") == "automated" for s in snaps):
            for snap in rds_patch.automated_snapshots(backend, instance.db_instance_identifier):
                backend.database_snapshots.pop(snap.db_snapshot_identifier, None)
        made = []
        for snap, when in zip(snaps, times):
            kind = snap.get("type", "manual")
            sid = snap.get("id") or f"rds:{instance.db_instance_identifier}-{when.strftime('%Y-%m-%d-%H-%M')}"
            snapshot = backend.create_db_snapshot(instance.db_instance_identifier, sid, snapshot_type=kind)
            snapshot.created = when
            snapshot.original_snapshot_create_time = when
            made.append(
                {"id": snapshot.db_snapshot_identifier, "type": kind, "created": _iso(when), "arn": snapshot.arn}
            )
        automated = sorted(
            (s.db_snapshot_identifier for s in rds_patch.automated_snapshots(backend, instance.db_instance_identifier))
        )
        endpoint = instance.endpoint or {}
        earliest = rds_patch.earliest_restorable_time(backend, instance.db_instance_identifier)
        return {
            "db_instance_id": instance.db_instance_identifier,
            "arn": instance.db_instance_arn,
            "endpoint": {"address": endpoint.get("Address"), "port": endpoint.get("Port")},
            "snapshots": [m["id"] for m in made],
            "snapshot_details": made,
            "automated_snapshots": automated,
            "earliest_restorable_time": _iso(earliest) if earliest else None,
            "security_groups": sg_ids,
            "subnet_group": subnet_group,
            "vpc_id": vpc,
        }


# -- CloudWatch ---------------------------------------------------------------------------------
def _seed_cloudwatch(cw: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    client = c["cloudwatch"]
    alarms = []
    for alarm in cw.get("alarms", []):
        kwargs: dict[str, Any] = {
            "AlarmName": alarm["name"],
            "MetricName": alarm.get("metric", "HTTPCode_Target_5XX_Count"),
            "Namespace": alarm.get("namespace", "AWS/ApplicationELB"),
            "Statistic": alarm.get("statistic", "Sum"),
            "Period": int(alarm.get("period", 60)),
            "EvaluationPeriods": int(alarm.get("evaluation_periods", 1)),
            "Threshold": float(alarm.get("threshold", 1.0)),
            "ComparisonOperator": alarm.get("comparison", "GreaterThanOrEqualToThreshold"),
        }
        if alarm.get("dimensions"):
            kwargs["Dimensions"] = [{"Name": k, "Value": str(v)} for k, v in alarm["dimensions"].items()]
        client.put_metric_alarm(**kwargs)
        state = alarm.get("state", "INSUFFICIENT_DATA")
        if state != "INSUFFICIENT_DATA" or alarm.get("reason"):
            client.set_alarm_state(
                AlarmName=alarm["name"],
                StateValue=state,
                StateReason=alarm.get("reason") or f"Seeded by the rollback emulator in {state}",
            )
        found = client.describe_alarms(AlarmNames=[alarm["name"]])["MetricAlarms"][0]
        alarms.append({"name": alarm["name"], "arn": found["AlarmArn"], "state": found["StateValue"]})
    metrics = []
    for metric in cw.get("metrics", []):
        dims = [{"Name": k, "Value": str(v)} for k, v in (metric.get("dimensions") or {}).items()]
        data = []
        for when, value in metric["points"]:
            datum: dict[str, Any] = {
                "MetricName": metric["name"],
                "Timestamp": parse_time(when, "point"),
                "Value": float(value),
            }
            if dims:
                datum["Dimensions"] = dims
            if metric.get("unit"):
                datum["Unit"] = metric["unit"]
            data.append(datum)
        for k in range(0, len(data), 500):
            client.put_metric_data(Namespace=metric["namespace"], MetricData=data[k : k + 500])
        metrics.append({"namespace": metric["namespace"], "name": metric["name"], "points": len(data)})
    return {"alarms": alarms, "metrics": metrics}


# -- CodePipeline -------------------------------------------------------------------------------
# The source action of a seeded pipeline, by the seed's ``source``: provider and configuration.
SOURCES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "s3": (
        {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        {"S3Bucket": "rollback-emulator-source", "S3ObjectKey": "source.zip"},
    ),
    "github": (
        {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
        {
            "ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/rollback-emulator",
            "FullRepositoryId": "example/app",
            "BranchName": "main",
        },
    ),
    "codecommit": (
        {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        {"RepositoryName": "app", "BranchName": "main"},
    ),
    "ecr": (
        {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"},
        {"RepositoryName": "app", "ImageTag": "latest"},
    ),
    # GitHub (version 1): no sourceRevisions override.
    "github-v1": (
        {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
        {"Owner": "example", "Repo": "app", "Branch": "main", "OAuthToken": "****"},
    ),
}
EXECUTION_STATUSES = ("Cancelled", "InProgress", "Stopped", "Stopping", "Succeeded", "Superseded", "Failed")


def _action(stage: str, first: bool, source: str = "s3") -> dict[str, Any]:
    if first:
        type_id, config = SOURCES[source]
        return {
            "name": stage,
            "actionTypeId": dict(type_id),
            "configuration": dict(config),
            "outputArtifacts": [{"name": "SourceOutput"}],
        }
    if "build" in stage.lower():
        type_id = {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}
        config = {"ProjectName": stage}
    else:
        type_id = {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"}
        config = {"ClusterName": "rollback-emulator", "ServiceName": stage}
    return {"name": stage, "actionTypeId": type_id, "configuration": config, "inputArtifacts": [{"name": "SourceOutput"}]}


def _seed_pipeline(pipe: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    cp = c["codepipeline"]
    role_arn = _role(c["iam"], PIPELINE_ROLE, PIPELINE_TRUST_POLICY)
    source = pipe.get("source", "s3")
    stages = [{"name": st, "actions": [_action(st, i == 0, source)]} for i, st in enumerate(pipe["stages"])]
    cp.create_pipeline(
        pipeline={
            "name": pipe["name"],
            "roleArn": role_arn,
            "artifactStore": {"type": "S3", "location": "rollback-emulator-artifacts"},
            "stages": stages,
        }
    )
    meta = cp.get_pipeline(name=pipe["name"])["metadata"]
    out: dict[str, Any] = {"name": pipe["name"], "arn": meta["pipelineArn"], "stages": list(pipe["stages"])}
    if "executions" in pipe or "failing" in pipe:
        out["executions"] = _seed_executions(pipe, meta["pipelineArn"])
    return out


def _seed_executions(pipe: dict[str, Any], arn: str) -> list[dict[str, Any]]:
    """Past executions, oldest first, a minute apart and ending a minute ago (moto has no API
    to make them: written into the emulator's own execution records)."""
    import time

    from moto.codepipeline.models import codepipeline_backends

    from .patches import codepipeline as cp_patch

    _, _, _, region, account, _ = arn.split(":", 5)
    backend = codepipeline_backends[account][region]
    past = pipe.get("executions", [])
    now = time.time()
    out = []
    with cp_patch.LOCK:
        pipeline = backend.pipelines[pipe["name"]]
        action = pipe["stages"][0]
        for i, ex in enumerate(past):
            rec = cp_patch.add_execution(
                pipeline,
                {action: ex["commit"]},
                ex.get("status", "Succeeded"),
                summary=ex.get("status_summary"),
                trigger="Webhook",
                started=now - 60 * (len(past) - i),
            )
            if ex.get("summary"):
                rec["sourceRevisions"][0]["revisionSummary"] = ex["summary"]
            out.append({"id": rec["pipelineExecutionId"], "commit": ex["commit"], "status": rec["status"]})
        cp_patch.SCHEDULER.failing.update(pipe.get("failing", []))
    return out


# -- CloudFormation ----------------------------------------------------------------------------
def _template_text(template: str | dict[str, Any]) -> str:
    return template if isinstance(template, str) else json.dumps(template, indent=2)


def _seed_stack(st: dict[str, Any], c: dict[str, Any], region: str) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    s3, cfn = c["s3"], c["cloudformation"]
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=st["bucket"])
        else:
            s3.create_bucket(Bucket=st["bucket"], CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise
    if st.get("versioned", True):
        s3.put_bucket_versioning(Bucket=st["bucket"], VersioningConfiguration={"Status": "Enabled"})
    texts = [_template_text(t) for t in st["templates"]]
    versions = []
    for text in texts:
        out = s3.put_object(Bucket=st["bucket"], Key=st["key"], Body=text.encode(), ContentType="application/json")
        versions.append(out.get("VersionId") or "null")
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in (st.get("parameters") or {}).items()]
    stack_id = cfn.create_stack(StackName=st["stack"], TemplateBody=texts[0], Parameters=params)["StackId"]
    keep = [{"ParameterKey": k, "UsePreviousValue": True} for k in (st.get("parameters") or {})]
    for text in texts[1 : st.get("current", len(texts))]:
        cfn.update_stack(StackName=st["stack"], TemplateBody=text, Parameters=keep)
    return {"stack": st["stack"], "stack_id": stack_id, "bucket": st["bucket"], "key": st["key"], "version_ids": versions}


# -- CloudFront ---------------------------------------------------------------------------------
def _seed_distribution(dist: dict[str, Any], c: dict[str, Any]) -> dict[str, Any]:
    """A distribution named by its Comment (CloudFront ids are made by AWS), deployed."""
    origin = dist.get("origin", "origin.example.com")
    config = {
        "CallerReference": f"rollback-emulator-{dist['name']}",
        "Comment": dist["name"],
        "Enabled": True,
        "Origins": {
            "Quantity": 1,
            "Items": [{"Id": "origin", "DomainName": origin, "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443, "OriginProtocolPolicy": "https-only"}}],
        },
        "DefaultCacheBehavior": {"TargetOriginId": "origin", "ViewerProtocolPolicy": "redirect-to-https"},
    }
    out = c["cloudfront"].create_distribution(DistributionConfig=config)["Distribution"]
    return {"name": dist["name"], "id": out["Id"], "arn": out["ARN"], "domain_name": out["DomainName"]}


def seed(spec: Any, endpoint: str, default_region: str) -> dict[str, Any]:
    _validate(spec)
    names = [("lambda", fn["function"]) for fn in spec.get("lambda", [])]
    names += [("ecs", f"{s['cluster']}/{s['service']}") for s in spec.get("ecs", [])]
    names += [("ecs family", s["family"]) for s in spec.get("ecs", [])]
    names += [("secret", s["name"]) for s in spec.get("secrets", [])]
    names += [("DB instance", d["db_instance_id"].lower()) for d in spec.get("rds", [])]
    names += [("alarm", a["name"]) for a in (spec.get("cloudwatch") or {}).get("alarms", [])]
    names += [("pipeline", p["name"]) for p in spec.get("codepipeline", [])]
    names += [("stack", st["stack"]) for st in spec.get("cloudformation", [])]
    names += [("distribution", d["name"]) for d in spec.get("cloudfront", [])]
    dupes = sorted({f"{k} {n}" for k, n in names if names.count((k, n)) > 1})
    if dupes:
        raise ControlError(f"seed: names given twice: {', '.join(dupes)}")
    region = spec.get("region") or default_region
    clients = _clients(endpoint, region)
    _check_absent(spec, clients)
    out: dict[str, Any] = {
        "lambda": [_seed_lambda(fn, clients) for fn in spec.get("lambda", [])],
        "ecs": [_seed_ecs(svc, clients) for svc in spec.get("ecs", [])],
        "secrets": [_seed_secret(sec, clients) for sec in spec.get("secrets", [])],
    }
    if "rds" in spec:
        out["rds"] = [_seed_rds(db, clients, region) for db in spec["rds"]]
    if "cloudwatch" in spec:
        out["cloudwatch"] = _seed_cloudwatch(spec["cloudwatch"] or {}, clients)
    if "codepipeline" in spec:
        out["codepipeline"] = [_seed_pipeline(p, clients) for p in spec["codepipeline"]]
    if "cloudformation" in spec:
        out["cloudformation"] = [_seed_stack(st, clients, region) for st in spec["cloudformation"]]
    if "cloudfront" in spec:
        out["cloudfront"] = [_seed_distribution(d, clients) for d in spec["cloudfront"]]
    return out
