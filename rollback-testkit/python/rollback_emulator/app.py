"""The WSGI application: moto's dispatcher wrapped with fault injection, call counting,
and the control API under ``/_emulator/``."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
import traceback
import uuid
from contextlib import ExitStack
from typing import Any, Callable, Iterable

from . import cbor, health, operations
from .operations import Operation
from .patches import cloudformation as cloudformation_patch
from .patches import cloudwatch as cloudwatch_patch
from .patches import codepipeline as pipeline_patch
from .patches import ecs as ecs_patch
from .patches import rds as rds_patch
from .seed import INTERNAL_HEADER, seed
from .state import FAULT_KINDS, ControlError, EmulatorState, Fault, RateFault

CONTROL_PREFIX = "/_emulator/"
INTERNAL_ENVIRON_KEY = "HTTP_" + INTERNAL_HEADER.upper().replace("-", "_")

StartResponse = Callable[..., Any]


# -- fault responses ------------------------------------------------------------------------
def _query_compatible(service: str) -> bool:
    model = operations._service_model(service)
    return model is not None and "awsQueryCompatible" in model.metadata


def json_content_type(service: str) -> str:
    model = operations._service_model(service)
    version = model.metadata.get("jsonVersion", "1.1") if model is not None else "1.1"
    return f"application/x-amz-json-{version}"


def fault_response(op: Operation, kind: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The error AWS answers for a throttled / unavailable request, in the operation's protocol."""
    request_id = str(uuid.uuid4())
    throttle = kind == "throttle"
    extra: list[tuple[str, str]] = []
    if op.protocol in ("json", "rpc-v2-cbor"):
        code = "ThrottlingException" if throttle else "ServiceUnavailableException"
        message = "Rate exceeded" if throttle else "Service Unavailable"
        status = 400 if throttle else 503
        body = {"__type": code, "message": message}
        if _query_compatible(op.service):
            # awsQueryCompatible services (CloudWatch) name the error by its query-protocol
            # code in this header; botocore and aws-sdk-rust take the code from it.
            extra.append(("x-amzn-query-error", "Throttling;Sender" if throttle else "ServiceUnavailable;Receiver"))
        if op.protocol == "rpc-v2-cbor":
            data = cbor.encode(body)
            headers = [
                ("Content-Type", cbor.CBOR_CONTENT_TYPE),
                ("smithy-protocol", "rpc-v2-cbor"),
                ("x-amzn-RequestId", request_id),
                ("Content-Length", str(len(data))),
            ] + extra
            return status, headers, data
        ctype = json_content_type(op.service)
    elif op.protocol.startswith("rest-json") or op.service == "lambda":
        if throttle:
            code, status = ("TooManyRequestsException" if op.service == "lambda" else "ThrottlingException"), 429
            body = {"Type": "User", "message": "Rate exceeded", "Reason": "CallerRateLimitExceeded"}
        else:
            code, status = "ServiceUnavailableException", 503
            body = {"Type": "Service", "message": "Service Unavailable"}
        ctype = "application/json"
    else:  # query / rest-xml
        code = "Throttling" if throttle else "ServiceUnavailable"
        status = 400 if throttle else 503
        message = "Rate exceeded" if throttle else "Service Unavailable"
        xml = (
            f"<ErrorResponse><Error><Type>{'Sender' if throttle else 'Receiver'}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], xml.encode()
    data = json.dumps(body).encode()
    headers = [
        ("Content-Type", ctype),
        ("x-amzn-ErrorType", code),
        ("x-amzn-RequestId", request_id),
        ("Content-Length", str(len(data))),
    ] + extra
    return status, headers, data


def _access_denied(op: Operation, status: str, body: bytes) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """moto's IAM denial (an XML ErrorResponse whatever the protocol) as AWS answers it in a
    JSON protocol: ``AccessDeniedException`` with AWS's "User: ... is not authorized to
    perform: ACTION" message (moto names no resource: it authorizes against ``*``)."""
    if not status.startswith("403") or not body.lstrip().startswith(b"<"):
        return None
    import html
    import re

    text = body.decode("utf-8", errors="replace")
    if "<Code>AccessDenied" not in text:
        return None
    found = re.search(r"<Message>(.*?)</Message>", text, re.S)
    message = html.unescape(found.group(1)) if found else "Access denied"
    code = "AccessDeniedException"
    payload = {"__type": code, "message": message} if op.protocol == "json" else {"Type": "User", "message": message}
    data = json.dumps(payload).encode()
    ctype = json_content_type(op.service) if op.protocol == "json" else "application/json"
    return (
        "403 Forbidden",
        [("Content-Type", ctype), ("x-amzn-ErrorType", code), ("x-amzn-RequestId", str(uuid.uuid4())), ("Content-Length", str(len(data)))],
        data,
    )


# Set by the middleware on the request's thread; the server's request handler then closes the
# connection at once (SO_LINGER 0: a TCP reset) instead of waiting for another request on it.
RESET_REQUESTED = threading.local()


def _reset_connection(environ: dict[str, Any]) -> None:
    """Makes the server drop the connection with a TCP reset and no response."""
    sock = environ.get("werkzeug.socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    RESET_REQUESTED.flag = True
    raise ConnectionResetError("rollback-emulator: injected connection reset")


# -- the application ------------------------------------------------------------------------
class EmulatorApp:
    def __init__(
        self,
        moto_app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        state: EmulatorState,
        scheduler: ecs_patch.EcsScheduler,
        region: str,
        account_id: str,
        default_convergence_ms: int,
        rds_scheduler: rds_patch.RdsScheduler | None = None,
        default_rds_delay_ms: int = rds_patch.DEFAULT_DELAY_MS,
    ):
        self.moto_app = moto_app
        self.state = state
        self.scheduler = scheduler
        self.rds_scheduler = rds_scheduler or rds_patch.SCHEDULER
        self.default_rds_delay_ms = default_rds_delay_ms
        self.region = region
        self.account_id = account_id
        self.default_convergence_ms = default_convergence_ms
        self.endpoint = ""  # set once the server is bound
        self.started = time.time()

    # WSGI entry point
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX) or path == CONTROL_PREFIX.rstrip("/"):
            return self._control(environ, start_response)
        if path.startswith("/moto-api") or path == "/favicon.ico":
            return self.moto_app(environ, start_response)
        op = operations.identify(environ)
        if environ.get(INTERNAL_ENVIRON_KEY):
            return self._moto(op, environ, start_response)
        fault = self.state.record(op)
        if fault is not None:
            if fault.kind == "latency":
                time.sleep(fault.latency_ms / 1000)
            elif fault.kind == "reset":
                _reset_connection(environ)
            else:
                status, headers, body = fault_response(op, fault.kind)
                start_response(f"{status} {_reason(status)}", headers)
                return [body]
        return self._moto(op, environ, start_response)

    def _moto(self, op: Operation, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if op.protocol == "rpc-v2-cbor":
            return cbor.serve(self.moto_app, environ, start_response, op)
        if op.protocol == "json":
            content_type = json_content_type(op.service)
        elif op.service == "lambda":
            content_type = "application/json"
        else:
            return self.moto_app(environ, start_response)

        answered: list[Any] = []

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered[:] = [status, headers, exc_info]
            return lambda data: None

        body = b"".join(self.moto_app(environ, capture))
        status, headers, exc_info = answered
        denied = _access_denied(op, status, body)
        if denied is not None:
            status, headers, body = denied
        else:
            # moto answers some JSON (Lambda, Secrets Manager) with Content-Type text/html, and
            # CloudWatch's JSON with Content-Type "text".
            headers = [
                ("Content-Type", content_type) if k.lower() == "content-type" and v.startswith("text") else (k, v)
                for k, v in headers
                if k.lower() != "status"
            ]
        if exc_info:
            start_response(status, headers, exc_info)
        else:
            start_response(status, headers)
        return [body]

    # -- control API ------------------------------------------------------------------------
    def _control(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        route = environ.get("PATH_INFO", "")[len(CONTROL_PREFIX) :].strip("/")
        try:
            body = self._json_body(environ) if method in ("POST", "PUT", "PATCH") else None
            handlers = ROUTES.get(route)
            if handlers is None:
                raise ControlError(
                    f"no control endpoint {method} /_emulator/{route}; see rollback-testkit/python/README.md "
                    f"(endpoints: {', '.join(sorted(ROUTES))})",
                    status=404,
                )
            handler = handlers.get(method)
            if handler is None:
                raise ControlError(
                    f"/_emulator/{route} does not accept {method}; it accepts {', '.join(sorted(handlers))}",
                    status=405,
                )
            status, payload = handler(self, body)
        except ControlError as e:
            status, payload = e.status, {"error": e.message}
        except Exception as e:  # a bug or an AWS error while seeding: say what happened
            traceback.print_exc()
            status, payload = 500, {"error": f"{type(e).__name__}: {e}"}
        data = json.dumps(payload, default=str).encode()
        start_response(
            f"{status} {_reason(status)}",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    @staticmethod
    def _json_body(environ: dict[str, Any]) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as e:
            raise ControlError(f"the request body is not valid JSON: {e}") from None

    # handlers: (self, body) -> (status, payload)
    def ping(self, _: Any) -> tuple[int, Any]:
        return 200, {"ok": True}

    def status(self, _: Any) -> tuple[int, Any]:
        import moto

        return 200, {
            "endpoint": self.endpoint,
            "region": self.region,
            "account_id": self.account_id,
            "moto_version": moto.__version__,
            "uptime_s": round(time.time() - self.started, 3),
            "ecs": {
                "convergence_ms": self.scheduler.convergence_ms,
                "failing": sorted(self.scheduler.failing),
                "rollouts_in_progress": self.scheduler.in_progress(),
            },
            "rds": {
                "delay_ms": self.rds_scheduler.delay_ms,
                "failing": self.rds_scheduler.failing(),
                "transitions_in_progress": self.rds_scheduler.in_progress(),
            },
            "codepipeline": {
                "delay_ms": pipeline_patch.SCHEDULER.delay_ms,
                "failing": sorted(pipeline_patch.SCHEDULER.failing),
                "executions_in_progress": pipeline_patch.SCHEDULER.in_progress(),
            },
            "faults": self.state.list_faults(),
            "bad": [m.to_json() for m in self.state.list_marks()],
            "calls": self.state.calls_json(),
        }

    def reset(self, _: Any) -> tuple[int, Any]:
        from moto.moto_api._internal.models import moto_api_backend

        from .patches import awslambda, cloudfront, codepipeline, secretsmanager

        locks = (ecs_patch.LOCK, rds_patch.LOCK, awslambda.LOCK, secretsmanager.LOCK, cloudwatch_patch.LOCK, codepipeline.LOCK)
        with ExitStack() as held:
            for lock in (*locks, cloudformation_patch.LOCK, cloudfront.LOCK):
                held.enter_context(lock)
            moto_api_backend.reset()
            cloudformation_patch.clear_failing()
            codepipeline.SCHEDULER.reset()
            cloudfront.reset()
            self.scheduler.reset(self.default_convergence_ms)
            self.rds_scheduler.reset(self.default_rds_delay_ms)
            self.state.reset()
        from moto import settings

        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        return 200, {"reset": True}

    def iam_user(self, body: Any) -> tuple[int, Any]:
        """Creates an IAM user allowed exactly ``actions`` (on every resource: moto matches
        a request's resource as ``*``) and returns its access key, for runs under least
        privilege once ``iam/enforce`` is on."""
        from moto.iam.models import iam_backends

        name = body.get("name") if isinstance(body, dict) else None
        actions = body.get("actions") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name or not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise ControlError('give {"name": "ci", "actions": ["ecs:UpdateService", ...]}', status=400)
        iam = iam_backends[self.account_id]["global"]
        iam.create_user(self.region, name)
        statements = [{"Effect": "Allow", "Action": sorted(actions), "Resource": "*"}] if actions else []
        iam.put_user_policy(name, "rollback", json.dumps({"Version": "2012-10-17", "Statement": statements or [{"Effect": "Deny", "Action": "none:None", "Resource": "*"}]}))
        key = iam.create_access_key(name)
        return 200, {"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key}

    def iam_enforce(self, body: Any) -> tuple[int, Any]:
        """Turns moto's IAM enforcement on (every request after this one is authenticated
        and its action authorized against its caller's policies) or off."""
        from moto import settings
        from moto.core.authorization import ActionAuthenticatorMixin

        enabled = body.get("enabled") if isinstance(body, dict) else None
        if not isinstance(enabled, bool):
            raise ControlError('give {"enabled": true} or {"enabled": false}', status=400)
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if enabled else float("inf")
        ActionAuthenticatorMixin.request_count = 0
        return 200, {"enabled": enabled}

    def do_seed(self, body: Any) -> tuple[int, Any]:
        from botocore.exceptions import ClientError

        try:
            return 200, seed(body, self.endpoint, self.region)
        except ClientError as e:
            err = e.response.get("Error", {})
            raise ControlError(
                f"seed failed in {e.operation_name}: {err.get('Code')}: {err.get('Message')} "
                "(resources made before this step remain; POST /_emulator/reset to start over)"
            ) from None

    def add_fault(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ControlError(
                "body must be an object {operation, kind, count, latency_ms} or, for the rate mode, "
                "{operation, rate, kinds, seed, latency_ms}"
            )
        operation = body.get("operation")
        latency_ms = body.get("latency_ms", 0)
        service = body.get("service")
        operation, service = self._fault_scope(operation, service)
        latency_ms = self._latency(latency_ms)
        if "rate" in body:
            fault: Fault | RateFault = self._rate_fault(body, operation, service, latency_ms)
        else:
            fault = self._count_fault(body, operation, service, latency_ms)
        self.state.add_fault(fault)
        return 200, {"added": fault.to_json(), "faults": self.state.list_faults()}

    @staticmethod
    def _fault_scope(operation: Any, service: Any) -> tuple[str, str | None]:
        if not isinstance(operation, str) or not operation:
            raise ControlError("'operation' must be an AWS operation name such as \"UpdateService\", or \"*\"")
        if service is not None and (
            not isinstance(service, str) or not operations.operation_names(operations.service_name(service))
        ):
            raise ControlError(
                f"'service' must be a service such as ecs, lambda, secretsmanager, rds, cloudwatch, codepipeline (got {service!r})"
            )
        if service is not None:
            service = operations.service_name(service)
        if operation != "*" and not operations.known_operation(operation, service):
            where = service or ", ".join(operations.KNOWN_SERVICES)
            raise ControlError(
                f"unknown operation {operation!r} (not an operation of {where}); use the AWS API name, "
                "e.g. UpdateService, UpdateAlias, GetSecretValue, or \"*\""
            )
        return operation, service

    @staticmethod
    def _latency(latency_ms: Any) -> int:
        if not isinstance(latency_ms, (int, float)) or isinstance(latency_ms, bool) or latency_ms < 0:
            raise ControlError(f"'latency_ms' must be a number >= 0 (got {latency_ms!r})")
        if latency_ms > 600_000:
            raise ControlError("'latency_ms' must be at most 600000")
        return int(latency_ms)

    @staticmethod
    def _count_fault(body: dict[str, Any], operation: str, service: str | None, latency_ms: int) -> Fault:
        kind = body.get("kind")
        count = body.get("count", 1)
        if "kinds" in body or "seed" in body:
            raise ControlError("'kinds' and 'seed' belong to the rate mode; give 'rate' too, or use 'kind' and 'count'")
        if kind not in FAULT_KINDS:
            raise ControlError(f"'kind' must be one of {', '.join(FAULT_KINDS)} (got {kind!r})")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ControlError(f"'count' must be an integer >= 1 (got {count!r})")
        if kind == "latency" and latency_ms <= 0:
            raise ControlError("'latency_ms' must be > 0 for kind latency")
        return Fault(operation, kind, count, latency_ms, service)

    @staticmethod
    def _rate_fault(body: dict[str, Any], operation: str, service: str | None, latency_ms: int) -> RateFault:
        rate, kinds, seed = body.get("rate"), body.get("kinds"), body.get("seed")
        if "kind" in body or "count" in body:
            raise ControlError("the rate mode takes 'kinds' (a list) and no 'count'; drop 'kind' / 'count', or drop 'rate'")
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate <= 1:
            raise ControlError(f"'rate' must be a number in (0, 1], the share of matching calls faulted (got {rate!r})")
        if not isinstance(kinds, list) or not kinds or any(k not in FAULT_KINDS for k in kinds):
            raise ControlError(f"'kinds' must be a non-empty list of {', '.join(FAULT_KINDS)} (got {kinds!r})")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ControlError(f"'seed' must be an integer, so a run can be repeated (got {seed!r})")
        if "latency" in kinds and latency_ms <= 0:
            raise ControlError("'latency_ms' must be > 0 when 'kinds' holds latency")
        return RateFault(operation, float(rate), tuple(kinds), seed, latency_ms, service)

    def list_faults(self, _: Any) -> tuple[int, Any]:
        return 200, {"faults": self.state.list_faults()}

    def clear_faults(self, _: Any) -> tuple[int, Any]:
        return 200, {"cleared": self.state.clear_faults()}

    def calls(self, _: Any) -> tuple[int, Any]:
        return 200, self.state.calls_json()

    def reset_calls(self, _: Any) -> tuple[int, Any]:
        self.state.reset_calls()
        return 200, self.state.calls_json()

    def add_mark(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ControlError("body must be an object {kind, name, revision}")
        mark = health.normalize_mark(body, self.region)
        self.state.add_mark(mark)
        return 200, {"added": mark.to_json(), "bad": [m.to_json() for m in self.state.list_marks()]}

    def list_marks(self, _: Any) -> tuple[int, Any]:
        return 200, {"bad": [m.to_json() for m in self.state.list_marks()]}

    def clear_marks(self, _: Any) -> tuple[int, Any]:
        self.state.clear_marks()
        return 200, {"bad": []}

    def health(self, _: Any) -> tuple[int, Any]:
        result = health.evaluate(self.state.list_marks(), self.account_id)
        return (200 if result["healthy"] else 503), result

    def ecs_config(self, body: Any) -> tuple[int, Any]:
        ms = _milliseconds(body, "convergence_ms")
        with ecs_patch.LOCK:
            self.scheduler.convergence_ms = ms
        return 200, {"convergence_ms": self.scheduler.convergence_ms}

    def get_ecs_config(self, _: Any) -> tuple[int, Any]:
        return 200, {"convergence_ms": self.scheduler.convergence_ms}

    def ecs_fail(self, body: Any) -> tuple[int, Any]:
        td = body.get("task_definition") if isinstance(body, dict) else None
        if not isinstance(td, str):
            raise ControlError("body must be an object {\"task_definition\": \"family:N\" or its ARN}")
        try:
            key = ecs_patch.td_key(td)
        except ValueError as e:
            raise ControlError(str(e)) from None
        with ecs_patch.LOCK:
            self.scheduler.failing.add(key)
            return 200, {"failing": sorted(self.scheduler.failing)}

    def ecs_list_failing(self, _: Any) -> tuple[int, Any]:
        with ecs_patch.LOCK:
            return 200, {"failing": sorted(self.scheduler.failing)}

    def ecs_clear_failing(self, _: Any) -> tuple[int, Any]:
        with ecs_patch.LOCK:
            self.scheduler.failing.clear()
        return 200, {"failing": []}

    def ecs_advance(self, _: Any) -> tuple[int, Any]:
        return 200, {"converged": self.scheduler.advance()}

    # -- RDS ------------------------------------------------------------------------------
    def rds_config(self, body: Any) -> tuple[int, Any]:
        ms = _milliseconds(body, "delay_ms")
        with rds_patch.LOCK:
            self.rds_scheduler.delay_ms = ms
        return 200, {"delay_ms": self.rds_scheduler.delay_ms}

    def get_rds_config(self, _: Any) -> tuple[int, Any]:
        return 200, {"delay_ms": self.rds_scheduler.delay_ms}

    def rds_advance(self, _: Any) -> tuple[int, Any]:
        return 200, {"finished": self.rds_scheduler.advance()}

    def rds_fail(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ControlError("body must be an object {\"snapshot\": id} or {\"source\": DB instance id}, with \"status\"")
        snapshot, source = body.get("snapshot"), body.get("source")
        status = body.get("status", "incompatible-restore")
        if (snapshot is None) == (source is None):
            raise ControlError("give exactly one of 'snapshot' (a DB snapshot id) or 'source' (a DB instance id, for point-in-time restores)")
        target = snapshot if snapshot is not None else source
        if not isinstance(target, str) or not target:
            raise ControlError("'snapshot' / 'source' must be a non-empty string")
        if status not in rds_patch.FAIL_STATUSES:
            raise ControlError(f"'status' must be one of {', '.join(rds_patch.FAIL_STATUSES)} (got {status!r})")
        if target.startswith("arn:"):
            target = target.rsplit(":", 1)[-1]
        with rds_patch.LOCK:
            table = self.rds_scheduler.fail_snapshots if snapshot is not None else self.rds_scheduler.fail_sources
            table[target.lower()] = status
        return 200, {"failing": self.rds_scheduler.failing()}

    def rds_list_failing(self, _: Any) -> tuple[int, Any]:
        return 200, {"failing": self.rds_scheduler.failing()}

    def rds_clear_failing(self, _: Any) -> tuple[int, Any]:
        with rds_patch.LOCK:
            self.rds_scheduler.fail_snapshots.clear()
            self.rds_scheduler.fail_sources.clear()
        return 200, {"failing": self.rds_scheduler.failing()}

    # -- CodePipeline ---------------------------------------------------------------------
    def codepipeline_config(self, body: Any) -> tuple[int, Any]:
        ms = _milliseconds(body, "delay_ms")
        with pipeline_patch.LOCK:
            pipeline_patch.SCHEDULER.delay_ms = ms
        return 200, {"delay_ms": ms}

    def get_codepipeline_config(self, _: Any) -> tuple[int, Any]:
        return 200, {"delay_ms": pipeline_patch.SCHEDULER.delay_ms}

    def codepipeline_fail(self, body: Any) -> tuple[int, Any]:
        commit = body.get("commit") if isinstance(body, dict) else None
        if not isinstance(commit, str) or not commit:
            raise ControlError('body must be an object {"commit": the source revision id (commit, image digest, S3 version id) whose executions fail}')
        with pipeline_patch.LOCK:
            pipeline_patch.SCHEDULER.failing.add(commit)
            return 200, {"failing": sorted(pipeline_patch.SCHEDULER.failing)}

    def codepipeline_list_failing(self, _: Any) -> tuple[int, Any]:
        with pipeline_patch.LOCK:
            return 200, {"failing": sorted(pipeline_patch.SCHEDULER.failing)}

    def codepipeline_clear_failing(self, _: Any) -> tuple[int, Any]:
        with pipeline_patch.LOCK:
            pipeline_patch.SCHEDULER.failing.clear()
        return 200, {"failing": []}

    def codepipeline_advance(self, _: Any) -> tuple[int, Any]:
        return 200, {"finished": pipeline_patch.SCHEDULER.advance()}

    # -- CloudFront -----------------------------------------------------------------------
    def cloudfront_config(self, body: Any) -> tuple[int, Any]:
        from .patches import cloudfront

        ms = _milliseconds(body, "delay_ms")
        with cloudfront.LOCK:
            cloudfront.CONFIG["delay_ms"] = ms
        return 200, {"delay_ms": ms}

    def get_cloudfront_config(self, _: Any) -> tuple[int, Any]:
        from .patches import cloudfront

        return 200, {"delay_ms": cloudfront.CONFIG["delay_ms"]}

    # -- CloudWatch -----------------------------------------------------------------------
    def cloudwatch_alarm(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict):
            raise ControlError("body must be an object {\"name\": alarm name, \"state\": \"ALARM\"|\"OK\"|\"INSUFFICIENT_DATA\", \"reason\": ...}")
        name, state = body.get("name"), body.get("state")
        reason = body.get("reason") or f"Set by the rollback emulator to {state}"
        region = body.get("region") or self.region
        if not isinstance(name, str) or not name:
            raise ControlError("'name' must be the name of an existing alarm")
        if state not in cloudwatch_patch.STATES:
            raise ControlError(f"'state' must be one of {', '.join(cloudwatch_patch.STATES)} (got {state!r})")
        if not isinstance(reason, str):
            raise ControlError("'reason' must be a string")
        try:
            alarm = cloudwatch_patch.set_alarm(self.account_id, region, name, state, reason)
        except KeyError:
            raise ControlError(f"no CloudWatch alarm {name!r} in {region}", status=404) from None
        return 200, {"alarm": alarm}

    # -- CloudFormation -------------------------------------------------------------------
    def cloudformation_fail(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("stack"), str) or not body["stack"]:
            raise ControlError('body must be an object {"stack": name, "resource": logical id (optional), "reason": text (optional)}')
        resource, reason = body.get("resource"), body.get("reason")
        for key, value in (("resource", resource), ("reason", reason)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ControlError(f"'{key}' must be a non-empty string when given")
        return 200, {"failing": cloudformation_patch.fail_next_update(body["stack"], resource, reason)}

    def cloudformation_list_failing(self, _: Any) -> tuple[int, Any]:
        return 200, {"failing": cloudformation_patch.failing()}

    def cloudformation_clear_failing(self, _: Any) -> tuple[int, Any]:
        cloudformation_patch.clear_failing()
        return 200, {"failing": []}

    def cloudformation_status(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("stack"), str):
            raise ControlError('body must be an object {"stack": name, "status": a stack status}')
        status = body.get("status")
        if status not in cloudformation_patch.STATUSES:
            raise ControlError(f"'status' must be a stack status such as UPDATE_IN_PROGRESS (got {status!r})")
        try:
            return 200, cloudformation_patch.set_status(body["stack"], status)
        except KeyError:
            raise ControlError(f"no CloudFormation stack {body['stack']!r}", status=404) from None


ROUTES: dict[str, dict[str, Callable[[EmulatorApp, Any], tuple[int, Any]]]] = {
    "ping": {"GET": EmulatorApp.ping},
    "status": {"GET": EmulatorApp.status},
    "reset": {"POST": EmulatorApp.reset},
    "seed": {"POST": EmulatorApp.do_seed},
    "iam/users": {"POST": EmulatorApp.iam_user},
    "iam/enforce": {"POST": EmulatorApp.iam_enforce},
    "faults": {"POST": EmulatorApp.add_fault, "GET": EmulatorApp.list_faults, "DELETE": EmulatorApp.clear_faults},
    "calls": {"GET": EmulatorApp.calls, "DELETE": EmulatorApp.reset_calls},
    "bad": {"POST": EmulatorApp.add_mark, "GET": EmulatorApp.list_marks, "DELETE": EmulatorApp.clear_marks},
    "health": {"GET": EmulatorApp.health},
    "ecs/config": {"POST": EmulatorApp.ecs_config, "GET": EmulatorApp.get_ecs_config},
    "ecs/fail": {"POST": EmulatorApp.ecs_fail, "GET": EmulatorApp.ecs_list_failing, "DELETE": EmulatorApp.ecs_clear_failing},
    "ecs/advance": {"POST": EmulatorApp.ecs_advance},
    "rds/config": {"POST": EmulatorApp.rds_config, "GET": EmulatorApp.get_rds_config},
    "rds/fail": {"POST": EmulatorApp.rds_fail, "GET": EmulatorApp.rds_list_failing, "DELETE": EmulatorApp.rds_clear_failing},
    "rds/advance": {"POST": EmulatorApp.rds_advance},
    "cloudwatch/alarm": {"POST": EmulatorApp.cloudwatch_alarm},
    "cloudformation/fail": {
        "POST": EmulatorApp.cloudformation_fail,
        "GET": EmulatorApp.cloudformation_list_failing,
        "DELETE": EmulatorApp.cloudformation_clear_failing,
    },
    "cloudformation/status": {"POST": EmulatorApp.cloudformation_status},
    "codepipeline/config": {"POST": EmulatorApp.codepipeline_config, "GET": EmulatorApp.get_codepipeline_config},
    "codepipeline/fail": {
        "POST": EmulatorApp.codepipeline_fail,
        "GET": EmulatorApp.codepipeline_list_failing,
        "DELETE": EmulatorApp.codepipeline_clear_failing,
    },
    "codepipeline/advance": {"POST": EmulatorApp.codepipeline_advance},
    "cloudfront/config": {"POST": EmulatorApp.cloudfront_config, "GET": EmulatorApp.get_cloudfront_config},
}


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _milliseconds(body: Any, key: str) -> int:
    """The whole milliseconds 0..3600000 at ``body[key]`` (a config call's setting)."""
    if not isinstance(body, dict) or key not in body:
        raise ControlError(f'body must be an object {{"{key}": N}}')
    ms = body[key]
    if not isinstance(ms, (int, float)) or isinstance(ms, bool) or ms < 0 or ms > 3_600_000:
        raise ControlError(f"'{key}' must be a number of milliseconds 0..3600000 (got {ms!r})")
    return int(ms)
