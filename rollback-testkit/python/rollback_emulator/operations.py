"""Naming the AWS operation of an incoming request.

JSON-protocol services (ECS, Secrets Manager, CodePipeline, and CloudWatch from boto3) name it
in ``X-Amz-Target`` (``AmazonEC2ContainerServiceV20141113.UpdateService`` -> ``UpdateService``);
Smithy RPC v2 CBOR requests (CloudWatch from aws-sdk-rust) in the path
(``/service/GraniteServiceVersion20100801/operation/DescribeAlarms``); query-protocol services
(RDS, IAM, STS) in the form body's ``Action``; REST services (Lambda) by method and path, which
are matched against the request URIs of botocore's service model (the same model the Rust SDK
is generated from), so every operation of the service is named, not just a few.

Services are named by their botocore name; the SigV4 signing name ``monitoring`` is CloudWatch.
"""

from __future__ import annotations

import functools
import io
import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

# X-Amz-Target prefixes of the JSON services, for requests that carry no SigV4 scope.
TARGET_PREFIX_SERVICE = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "secretsmanager": "secretsmanager",
    "GraniteServiceVersion20100801": "cloudwatch",
    "CodePipeline_20150709": "codepipeline",
    "DynamoDB_20120810": "dynamodb",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
}

# SigV4 signing names that differ from the botocore service name.
SIGNING_NAME_SERVICE = {"monitoring": "cloudwatch"}

# Services whose operation names are accepted by the fault API (validation of typos).
KNOWN_SERVICES = ("ecs", "lambda", "secretsmanager", "iam", "sts", "rds", "cloudwatch", "codepipeline", "ec2", "dynamodb", "ecr", "cloudformation", "s3", "cloudfront")

# Smithy RPC v2 CBOR: POST /service/{ServiceShape}/operation/{Operation}
CBOR_PATH = re.compile(r"^/service/([^/]+)/operation/([^/]+)/?$")

UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Operation:
    service: str  # botocore service name: ecs, lambda, secretsmanager, cloudwatch, rds, ...
    name: str  # AWS API operation name: UpdateService, GetAlias, ...
    protocol: str  # json | rpc-v2-cbor | rest-json | query | rest-xml | unknown


_model_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _service_model(service: str) -> Any:
    import botocore.session

    with _model_lock:
        try:
            return botocore.session.get_session().get_service_model(service)
        except Exception:  # unknown service name
            return None


@functools.lru_cache(maxsize=None)
def operation_names(service: str) -> frozenset[str]:
    model = _service_model(service)
    return frozenset(model.operation_names) if model is not None else frozenset()


def service_name(name: str) -> str:
    """The botocore service name of a SigV4 signing name (``monitoring`` -> ``cloudwatch``)."""
    return SIGNING_NAME_SERVICE.get(name, name)


def known_operation(name: str, service: str | None = None) -> bool:
    services = (service_name(service),) if service else KNOWN_SERVICES
    return any(name in operation_names(s) for s in services)


@functools.lru_cache(maxsize=None)
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], tuple[tuple[str, str | None], ...], int, str]]:
    """(method, path regex, required query literals, literal length, operation) per operation."""
    model = _service_model(service)
    routes = []
    if model is None:
        return routes
    for op_name in model.operation_names:
        http = model.operation_model(op_name).http
        method = http.get("method", "POST").upper()
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        literal_len = 0
        pattern = ""
        for part in re.split(r"(\{[^}]+\})", path.rstrip("/") or "/"):
            if part.startswith("{") and part.endswith("}"):
                pattern += "(.+)" if part.endswith("+}") else "([^/]+)"
            else:
                pattern += re.escape(part)
                literal_len += len(part)
        required: list[tuple[str, str | None]] = []
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            required.append((key, value if eq else None))
            literal_len += len(item)
        routes.append((method, re.compile(f"^{pattern}/?$"), tuple(required), literal_len, op_name))
    return routes


def rest_operation(service: str, method: str, path: str, query_string: str) -> str:
    query = parse_qs(query_string, keep_blank_values=True)
    best: tuple[int, str] | None = None
    for m, regex, required, literal_len, op_name in _rest_routes(service):
        if m != method or not regex.match(path):
            continue
        if any(k not in query or (v is not None and v not in query[k]) for k, v in required):
            continue
        if best is None or literal_len > best[0]:
            best = (literal_len, op_name)
    return best[1] if best else UNKNOWN


def _signing_service(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request", auth)
    return service_name(match.group(1).lower()) if match else None


def cbor_operation(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(service shape name, operation) of a Smithy RPC v2 CBOR request, else None."""
    if environ.get("HTTP_SMITHY_PROTOCOL", "").strip().lower() != "rpc-v2-cbor":
        return None
    match = CBOR_PATH.match(environ.get("PATH_INFO", ""))
    return (match.group(1), match.group(2)) if match else None


def signing_region(environ: dict[str, Any]) -> str | None:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = re.search(r"Credential=[^/,\s]+/\d{8}/([^/]+)/[^/]+/aws4_request", auth)
    return match.group(1) if match else None


def _form_action(environ: dict[str, Any]) -> str | None:
    """The Action of a query-protocol request; the body is put back for moto."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
    return action or parse_qs(environ.get("QUERY_STRING", "")).get("Action", [None])[0]


def identify(environ: dict[str, Any]) -> Operation:
    service = _signing_service(environ)
    cbor = cbor_operation(environ)
    if cbor is not None:
        shape, name = cbor
        return Operation(service or TARGET_PREFIX_SERVICE.get(shape, shape), name, "rpc-v2-cbor")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        prefix, _, name = target.rpartition(".")
        service = service or TARGET_PREFIX_SERVICE.get(prefix, prefix or "unknown")
        return Operation(service, name or UNKNOWN, "json")
    model = _service_model(service) if service else None
    protocol = model.metadata.get("protocol", "unknown") if model is not None else "unknown"
    if protocol == "query" or protocol == "ec2":
        return Operation(service or "unknown", _form_action(environ) or UNKNOWN, "query")
    if service and protocol.startswith("rest"):
        name = rest_operation(
            service,
            environ.get("REQUEST_METHOD", "GET").upper(),
            environ.get("PATH_INFO", "/"),
            environ.get("QUERY_STRING", ""),
        )
        return Operation(service, name, protocol)
    action = _form_action(environ)
    if action:
        return Operation(service or "unknown", action, "query")
    return Operation(service or "unknown", UNKNOWN, protocol)
