"""The Emulator: moto's dispatcher in-process behind werkzeug's threaded server."""

from __future__ import annotations

import json
import logging
import os
import threading
import urllib.error
import urllib.request
from typing import Any

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_CONVERGENCE_MS = 1000
DEFAULT_RDS_DELAY_MS = 1500

# Loopback calls never go through a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_running_lock = threading.Lock()
_running: "Emulator | None" = None


def _quiet_handler_class() -> type:
    from werkzeug.serving import WSGIRequestHandler

    class Handler(WSGIRequestHandler):
        """No access log; an injected connection reset ends the connection quietly."""

        verbose = False

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            if self.verbose:
                super().log_request(code, size)

        def handle_one_request(self) -> None:
            from .app import RESET_REQUESTED

            RESET_REQUESTED.flag = False
            super().handle_one_request()
            if getattr(RESET_REQUESTED, "flag", False):
                self.close_connection = True
                self._reset = True

        def handle(self) -> None:
            try:
                super().handle()
            except OSError:
                pass  # the connection is gone (client went away or an injected reset)

        def finish(self) -> None:
            try:
                super().finish()
            except OSError:
                pass
            if getattr(self, "_reset", False):
                # rfile/wfile are closed: this really closes the socket, with SO_LINGER 0 a reset.
                self.connection.close()

    return Handler


class Emulator:
    """The AWS emulator, in-process.

    ``Emulator(port=0).start()`` serves on a free loopback port; ``endpoint`` is its URL.
    moto's state is process-global, so one Emulator runs per process at a time.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        convergence_ms: int = DEFAULT_CONVERGENCE_MS,
        verbose: bool = False,
        rds_delay_ms: int = DEFAULT_RDS_DELAY_MS,
    ):
        self.host = host
        self.port = port
        self.region = region
        self.account_id = account_id
        self.convergence_ms = convergence_ms
        self.rds_delay_ms = rds_delay_ms
        self.verbose = verbose
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.app: Any = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "Emulator":
        global _running
        with _running_lock:
            if _running is not None:
                raise RuntimeError(
                    f"an Emulator is already running in this process at {_running.endpoint}; "
                    "moto's state is process-global, so stop it first (or share it)"
                )
            _running = self
        try:
            self._start()
        except BaseException:
            with _running_lock:
                _running = None
            raise
        return self

    def _start(self) -> None:
        os.environ.setdefault("AWS_DEFAULT_REGION", self.region)
        os.environ.setdefault("MOTO_ACCOUNT_ID", self.account_id)
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        from .app import EmulatorApp
        from .patches import apply_all
        from .patches.ecs import SCHEDULER
        from .patches.codepipeline import SCHEDULER as PIPELINE_SCHEDULER
        from .patches.rds import SCHEDULER as RDS_SCHEDULER
        from .state import EmulatorState

        apply_all()
        logging.getLogger("werkzeug").setLevel(logging.INFO if self.verbose else logging.WARNING)
        dispatcher = DomainDispatcherApplication(create_backend_app)
        # Build the apps of the services the tests use now, not on their first request.
        for backend in ("ecs", "awslambda", "secretsmanager", "iam", "moto_api", "rds", "ec2", "cloudwatch", "codepipeline"):
            dispatcher.app_instances[backend] = create_backend_app(backend)  # type: ignore[arg-type]
        SCHEDULER.reset(self.convergence_ms)
        RDS_SCHEDULER.reset(self.rds_delay_ms)
        PIPELINE_SCHEDULER.reset()
        self.app = EmulatorApp(
            dispatcher,
            EmulatorState(),
            SCHEDULER,
            self.region,
            self.account_id,
            self.convergence_ms,
            RDS_SCHEDULER,
            self.rds_delay_ms,
        )
        handler = _quiet_handler_class()
        handler.verbose = self.verbose
        self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=handler)
        self._server.daemon_threads = True
        self.port = self._server.server_port
        self.app.endpoint = self.endpoint
        self._thread = threading.Thread(target=self._server.serve_forever, name="rollback-emulator-http", daemon=True)
        self._thread.start()
        SCHEDULER.start()
        RDS_SCHEDULER.start()
        PIPELINE_SCHEDULER.start()
        # Answering a request proves the server serves before anyone is told it is ready.
        with _OPENER.open(f"{self.endpoint}/_emulator/ping", timeout=30) as resp:
            json.load(resp)

    def stop(self) -> None:
        global _running
        from .patches.ecs import SCHEDULER
        from .patches.codepipeline import SCHEDULER as PIPELINE_SCHEDULER
        from .patches.rds import SCHEDULER as RDS_SCHEDULER

        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        SCHEDULER.stop()
        RDS_SCHEDULER.stop()
        PIPELINE_SCHEDULER.stop()
        with _running_lock:
            if _running is self:
                _running = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        host = self.host if self.host not in ("0.0.0.0", "") else "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    # -- the control API, in-process --------------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> Any:
        """Calls ``/_emulator/<path>`` over HTTP; returns the JSON answer, raises on 4xx/5xx
        (except a 503 from ``health``)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/_emulator/{path.lstrip('/')}",
            data=data,
            method=method.upper(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(req, timeout=120) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            payload = json.loads(e.read() or b"{}")
            if path.strip("/") == "health" and e.code == 503:
                return payload
            raise EmulatorControlError(f"{method} /_emulator/{path}: {e.code}: {payload.get('error', payload)}") from None

    def reset(self) -> Any:
        return self.control("POST", "reset")

    def seed(self, spec: dict[str, Any]) -> Any:
        return self.control("POST", "seed", spec)

    def inject(self, operation: str, kind: str, count: int = 1, latency_ms: int = 0, service: str | None = None) -> Any:
        body: dict[str, Any] = {"operation": operation, "kind": kind, "count": count, "latency_ms": latency_ms}
        if service:
            body["service"] = service
        return self.control("POST", "faults", body)

    def inject_rate(
        self, rate: float, kinds: list[str], seed: int, operation: str = "*", service: str | None = None, latency_ms: int = 0
    ) -> Any:
        body: dict[str, Any] = {"operation": operation, "rate": rate, "kinds": kinds, "seed": seed}
        if latency_ms:
            body["latency_ms"] = latency_ms
        if service:
            body["service"] = service
        return self.control("POST", "faults", body)

    def calls(self) -> Any:
        return self.control("GET", "calls")

    def mark_bad(self, kind: str, name: str, revision: str) -> Any:
        return self.control("POST", "bad", {"kind": kind, "name": name, "revision": revision})

    def health(self) -> Any:
        return self.control("GET", "health")

    def fail_task_definition(self, task_definition: str) -> Any:
        return self.control("POST", "ecs/fail", {"task_definition": task_definition})

    def set_ecs_convergence(self, ms: int) -> Any:
        return self.control("POST", "ecs/config", {"convergence_ms": ms})

    def advance(self) -> Any:
        return self.control("POST", "ecs/advance")

    def set_rds_delay(self, ms: int) -> Any:
        return self.control("POST", "rds/config", {"delay_ms": ms})

    def fail_restore(self, snapshot: str, status: str = "incompatible-restore") -> Any:
        return self.control("POST", "rds/fail", {"snapshot": snapshot, "status": status})

    def fail_point_in_time_restore(self, source: str, status: str = "incompatible-restore") -> Any:
        return self.control("POST", "rds/fail", {"source": source, "status": status})

    def advance_rds(self) -> Any:
        return self.control("POST", "rds/advance")

    def set_cloudfront_delay(self, ms: int) -> Any:
        """How long a CloudFront invalidation stays InProgress before it is Completed."""
        return self.control("POST", "cloudfront/config", {"delay_ms": ms})

    def set_alarm(self, name: str, state: str, reason: str | None = None) -> Any:
        body: dict[str, Any] = {"name": name, "state": state}
        if reason is not None:
            body["reason"] = reason
        return self.control("POST", "cloudwatch/alarm", body)

    def set_pipeline_delay(self, ms: int) -> Any:
        return self.control("POST", "codepipeline/config", {"delay_ms": ms})

    def fail_pipeline_commit(self, commit: str) -> Any:
        return self.control("POST", "codepipeline/fail", {"commit": commit})

    def advance_pipelines(self) -> Any:
        return self.control("POST", "codepipeline/advance")


class EmulatorControlError(RuntimeError):
    """A control API call answered 4xx/5xx."""
