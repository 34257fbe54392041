"""What the examples run against: the AWS emulator and the Kubernetes API simulator.

Each example takes the endpoint of one already running (``--endpoint URL`` for AWS,
``--kubeconfig PATH`` for Kubernetes; the tests pass theirs), or starts its own: the AWS
emulator in this process (the ``rollback_emulator`` package of rollback-testkit/python,
moto with the project's schedulers, from the project virtualenv), the simulator as a child
process (``cargo run -p rollback-testkit --bin rollback-k8s-sim``).

On real AWS or a real cluster the same scripts need none of this: rollback reads the
standard AWS environment and ``KUBECONFIG``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import rollback

ROOT = Path(__file__).resolve().parents[2]


def arguments(doc: str | None, k8s: bool = False) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    if k8s:
        p.add_argument("--kubeconfig", help="a kubeconfig of a running rollback-k8s-sim (default: start one)")
    else:
        p.add_argument("--endpoint", help="the URL of a running AWS emulator (default: start one in this process)")
    return p.parse_args()


class Aws:
    """The AWS emulator's control API (seed, mark revisions bad, health, ...)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.health_url = f"{endpoint}/_emulator/health"

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.endpoint}/_emulator/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=120) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as e:
            if path == "health" and e.code == 503:
                return json.load(e)
            raise RuntimeError(f"emulator {method} {path}: {e.code} {e.read()[:300]!r}") from None

    def seed(self, spec: dict[str, Any]) -> Any:
        return self.control("POST", "seed", spec)

    def mark_bad(self, kind: str, name: str, revision: str) -> None:
        self.control("POST", "bad", {"kind": kind, "name": name, "revision": revision})

    def healthy(self) -> bool:
        return bool(self.control("GET", "health")["healthy"])

    def health(self) -> str:
        return "200 OK" if self.healthy() else "503"

    def calls(self) -> dict[str, Any]:
        calls: dict[str, Any] = self.control("GET", "calls")
        return calls


@contextlib.contextmanager
def aws(endpoint: str | None) -> Iterator[Aws]:
    """The emulator at ``endpoint``, or one started in this process; the standard AWS
    environment (``AWS_ENDPOINT_URL``, a region, fake credentials) points at it."""
    emu: Any = None
    if endpoint is None:
        print("== starting the emulated AWS (moto + the project's schedulers) ...")
        sys.path.insert(0, str(ROOT / "rollback-testkit" / "python"))
        emulator = importlib.import_module("rollback_emulator")
        emu = emulator.Emulator(port=0).start()
        endpoint = str(emu.endpoint)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["AWS_REGION"] = "us-east-1"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    # Leases and journals of the examples go to the temp dir unless told otherwise.
    os.environ.setdefault("ROLLBACK_LOCK_DIR", str(Path(tempfile.gettempdir()) / "rollback-examples-locks"))
    os.environ.setdefault("ROLLBACK_JOURNAL_DIR", str(Path(tempfile.gettempdir()) / "rollback-examples-journal"))
    try:
        yield Aws(endpoint)
    finally:
        if emu is not None:
            emu.stop()


class Kubernetes:
    """The simulator: its kubeconfig, and a small REST client to set the scene."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        found = re.search(r"server:\s*\"?([^\s\"]+)", kubeconfig.read_text())
        if found is None:
            raise RuntimeError(f"{kubeconfig} names no server")
        self.url = found.group(1)

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            return json.loads(text) if text else None

    def wait(self, path: str, done: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            obj: dict[str, Any] = self.request("GET", path)
            if done(obj):
                return obj
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path} did not get there: {obj.get('status')}")
            time.sleep(0.1)


@contextlib.contextmanager
def kubernetes(kubeconfig: str | None) -> Iterator[Kubernetes]:
    """The simulator of ``kubeconfig``, or one started as a child process."""
    proc: subprocess.Popen[str] | None = None
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if kubeconfig is None:
        print("== starting the Kubernetes API simulator (rollback-k8s-sim) ...")
        tmp = tempfile.TemporaryDirectory()
        kubeconfig = str(Path(tmp.name) / "kubeconfig")
        cmd = [*_sim_command(), "--port", "0", "--kubeconfig", kubeconfig, "--exit-on-stdin-eof"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            proc.kill()
            raise RuntimeError(f"the simulator did not start ({' '.join(cmd)}): {line!r}")
    os.environ["KUBECONFIG"] = kubeconfig
    os.environ.setdefault("ROLLBACK_LOCK_DIR", str(Path(tempfile.gettempdir()) / "rollback-examples-locks"))
    os.environ.setdefault("ROLLBACK_JOURNAL_DIR", str(Path(tempfile.gettempdir()) / "rollback-examples-journal"))
    try:
        yield Kubernetes(Path(kubeconfig))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        if tmp is not None:
            tmp.cleanup()


def _sim_command() -> list[str]:
    explicit = os.environ.get("ROLLBACK_K8S_SIM")
    if explicit:
        return [explicit]
    return ["cargo", "run", "--quiet", "-p", "rollback-testkit", "--bin", "rollback-k8s-sim", "--"]


def progress(start: float) -> Callable[[rollback.Event], None]:
    """An ``on_event`` printing one progress line per event, with the time since ``start``."""

    def show(e: rollback.Event) -> None:
        print(f"{time.monotonic() - start:7.2f}s  {e}", flush=True)

    return show


def health_check(emu: Aws) -> rollback.HttpCheck:
    """The emulated application's health endpoint: ``/healthy`` must be true, retried every
    500 ms for up to 30 s."""
    return rollback.HttpCheck(
        emu.health_url,
        json_pointer="/healthy",
        json_value=True,
        policy=rollback.Policy(attempts=60, interval=0.5, deadline=30),
    )


def expect(report: rollback.Report, outcome: str) -> int:
    """The exit status: 0 when the report's outcome is ``outcome``."""
    if report.outcome == outcome:
        return 0
    print(f"expected the outcome {outcome}, got {report.outcome}", file=sys.stderr)
    return 1


# Runbook 001's cluster and services, as (ECS service, task-definition family).
CLUSTER = "agentauri-production"
SERVICES = [
    ("api-gateway-v2", "agentauri-production-api-gateway"),
    ("event-processor", "agentauri-production-event-processor"),
    ("action-workers", "agentauri-production-action-workers"),
]


def runbook_001_services(revisions: list[tuple[str, dict[str, str]]]) -> list[dict[str, Any]]:
    """Seed for runbook 001's services: one task-definition revision per (image tag,
    environment), oldest first, each service running the last with 2 tasks."""
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    out = []
    for service, family in SERVICES:
        repo = service.removesuffix("-v2")
        revs = [{"image": f"{ecr}/{repo}:{tag}", "environment": env} for tag, env in revisions]
        out.append({"cluster": CLUSTER, "service": service, "family": family, "desired_count": 2, "revisions": revs, "current": len(revs)})
    return out
