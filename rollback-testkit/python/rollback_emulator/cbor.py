"""Smithy RPC v2 CBOR, served by translating to and from moto's JSON protocol.

aws-sdk-rust's CloudWatch client (aws-sdk-cloudwatch 1.1xx) speaks Smithy RPC v2 CBOR:
``POST /service/GraniteServiceVersion20100801/operation/DescribeAlarms`` with headers
``smithy-protocol: rpc-v2-cbor``, ``Content-Type: application/cbor`` and
``x-amzn-query-mode: true`` (awsQueryCompatible), and a CBOR body. moto 5.2.1 has no CBOR
support at all (its CloudWatch answers awsQuery and JSON 1.0 only). So the middleware:

1. decodes the CBOR request body (``cbor2``; timestamps arrive as tag 1, blobs as bytes) and
   re-sends it to moto as the same operation in the JSON protocol (``X-Amz-Target:
   GraniteServiceVersion20100801.DescribeAlarms``, ``Content-Type: application/x-amz-json-1.0``,
   epoch-seconds timestamps, base64 blobs), the protocol boto3 uses;
2. encodes moto's JSON answer as CBOR, walking the operation's output shape in botocore's
   model (the model aws-sdk-rust is generated from), because the Rust decoder is strict about
   CBOR types: timestamps must be tag 1, doubles must be floats, integers must be integers;
3. answers errors as CBOR ``{"__type": code, "message": ...}`` and keeps moto's
   ``x-amzn-query-error: Code;Sender`` header, from which the Rust SDK takes the error code.

This works for any operation of any service whose botocore model lists ``smithy-rpc-v2-cbor``
and ``json`` among its protocols, not just the ones rollback uses.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
from typing import Any, Callable, Iterable

import cbor2

from . import operations

CBOR_CONTENT_TYPE = "application/cbor"


def encode(value: Any) -> bytes:
    return cbor2.dumps(value)


def _jsonable(value: Any) -> Any:
    """A decoded CBOR value as the JSON protocol carries it."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, cbor2.CBORTag):
        if value.tag == 1:
            return float(value.value)
        return _jsonable(value.value)
    if isinstance(value, cbor2.CBORSimpleValue) or value is cbor2.undefined:
        return None
    return value


def _timestamp_value(value: Any) -> cbor2.CBORTag:
    if isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            seconds = parsed.timestamp()
    else:
        seconds = float(value)
    return cbor2.CBORTag(1, float(seconds))


def to_cbor_value(value: Any, shape: Any) -> Any:
    """A JSON-protocol value as its CBOR value of ``shape`` (a botocore Shape)."""
    if value is None:
        return None
    kind = shape.type_name if shape is not None else None
    if kind == "structure":
        if not isinstance(value, dict):
            return value
        out = {}
        members = shape.members
        for key, item in value.items():
            member = members.get(key)
            if member is None or item is None:
                continue  # the Rust decoder skips unknown keys; moto sometimes adds some
            out[key] = to_cbor_value(item, member)
        return out
    if kind == "list":
        return [to_cbor_value(v, shape.member) for v in value]
    if kind == "map":
        return {str(k): to_cbor_value(v, shape.value) for k, v in value.items() if v is not None}
    if kind == "timestamp":
        return _timestamp_value(value)
    if kind in ("double", "float"):
        return float(value)
    if kind in ("integer", "long", "short", "byte"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    if kind == "blob":
        return base64.b64decode(value) if isinstance(value, str) else bytes(value)
    if kind == "string":
        return value if isinstance(value, str) else str(value)
    return value


def _read_body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    return environ["wsgi.input"].read(length) if length > 0 else b""


def error_body(code: str, message: str) -> bytes:
    return encode({"__type": code, "message": message})


def serve(
    moto_app: Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]],
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    op: operations.Operation,
) -> Iterable[bytes]:
    """Answers one RPC v2 CBOR request through moto's JSON protocol."""
    model = operations._service_model(op.service)
    target_prefix = model.metadata.get("targetPrefix") if model is not None else None
    try:
        if model is None or not target_prefix or op.name not in model.operation_names:
            raise LookupError(f"no operation {op.name} in service {op.service}")
        raw = _read_body(environ)
        if "gzip" in environ.get("HTTP_CONTENT_ENCODING", "").lower():
            raw = gzip.decompress(raw)  # aws-sdk-rust compresses large PutMetricData bodies
        params = _jsonable(cbor2.loads(raw)) if raw else {}
        if not isinstance(params, dict):
            raise ValueError("the CBOR body is not a map")
    except LookupError as e:
        return _answer(start_response, 404, [], error_body("UnknownOperationException", str(e)))
    except Exception as e:  # undecodable body
        return _answer(start_response, 400, [], error_body("SerializationException", f"cannot decode the CBOR body: {e}"))

    json_version = model.metadata.get("jsonVersion", "1.0")
    body = json.dumps(params).encode()
    inner = dict(environ)
    inner.update(
        {
            "PATH_INFO": "/",
            "RAW_URI": "/",
            "REQUEST_URI": "/",
            "QUERY_STRING": "",
            "CONTENT_TYPE": f"application/x-amz-json-{json_version}",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_AMZ_TARGET": f"{target_prefix}.{op.name}",
            "wsgi.input": io.BytesIO(body),
        }
    )
    for key in ("HTTP_SMITHY_PROTOCOL", "HTTP_X_AMZN_QUERY_MODE", "HTTP_ACCEPT", "HTTP_CONTENT_ENCODING"):
        inner.pop(key, None)

    captured: dict[str, Any] = {}

    def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        captured["status"] = int(status.split()[0])
        captured["headers"] = headers
        return lambda _data: None

    chunks = moto_app(inner, capture)
    try:
        payload = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status = captured.get("status", 500)
    moto_headers = captured.get("headers", [])
    keep = [
        (k, v)
        for k, v in moto_headers
        if k.lower() in ("x-amzn-requestid", "x-amzn-query-error", "x-amzn-errortype")
    ]
    try:
        data = json.loads(payload) if payload.strip() else {}
    except ValueError:
        data = {"__type": "InternalFailure", "message": payload.decode("utf-8", "replace")[:500]}
        status = status if status >= 400 else 500
    if status >= 400:
        code = str(data.get("__type") or data.get("code") or "InternalFailure")
        message = str(data.get("message") or data.get("Message") or "")
        return _answer(start_response, status, keep, error_body(code, message))
    output_shape = model.operation_model(op.name).output_shape
    value = to_cbor_value(data, output_shape) if output_shape is not None else {}
    return _answer(start_response, status, keep, encode(value or {}))


def _answer(
    start_response: Callable[..., Any], status: int, headers: list[tuple[str, str]], body: bytes
) -> list[bytes]:
    from .app import _reason

    out = [
        ("Content-Type", CBOR_CONTENT_TYPE),
        ("smithy-protocol", "rpc-v2-cbor"),
        ("Content-Length", str(len(body))),
    ] + [(k, v) for k, v in headers if k.lower() not in ("content-type", "content-length")]
    start_response(f"{status} {_reason(status)}", out)
    return [body]
