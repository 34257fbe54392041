"""Fixtures: the AWS emulator (in-process, one per session, reset before each test that uses
it) and the Kubernetes simulator (the `rollback-k8s-sim` binary, one per session).

An emulator that cannot start FAILS the tests that need it, saying why; nothing is skipped.
The environment is isolated: leases and journals go to temporary directories, AWS settings
point at the emulator with fake credentials and no shared config files.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EMULATOR_PATH = ROOT / "rollback-testkit" / "python"
sys.path.insert(0, str(EMULATOR_PATH))

import rollback  # noqa: E402  (installed into .venv by scripts/common.sh need_rollback_py)


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Leases, journals and AWS settings of this session only."""
    base = tmp_path_factory.mktemp("rollback-env")
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("AWS_") or k in ("KUBECONFIG",):
            del os.environ[k]
    os.environ.update(
        {
            "ROLLBACK_LOCK_DIR": str(base / "locks"),
            "ROLLBACK_JOURNAL_DIR": str(base / "journal"),
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(base / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(base / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    yield base
    os.environ.clear()
    os.environ.update(saved)


class EmulatorHandle:
    """The session's emulator, with the control calls the tests use."""

    def __init__(self, emu: Any) -> None:
        self.emu = emu
        self.endpoint: str = emu.endpoint

    def __getattr__(self, name: str) -> Any:
        return getattr(self.emu, name)

    def count(self, operation: str) -> int:
        calls = self.emu.calls()
        return int(calls.get("operations", {}).get(operation, 0))

    def mutations(self) -> int:
        """AWS calls that change something (Update*, Create*, Put*, Restore*, ...)."""
        ops = self.emu.calls().get("operations", {})
        prefixes = ("Update", "Create", "Put", "Restore", "Delete", "Tag", "Disable", "Enable", "Register", "Deregister", "Publish")
        return sum(int(n) for op, n in ops.items() if op.startswith(prefixes))


@pytest.fixture(scope="session")
def emulator_session(isolated_env: Path) -> Iterator[EmulatorHandle]:
    try:
        Emulator = importlib.import_module("rollback_emulator").Emulator
    except Exception as e:  # pragma: no cover - a broken setup
        pytest.fail(
            f"the AWS emulator cannot be imported from {EMULATOR_PATH}: {e!r}; "
            "run `bash scripts/setup-python.sh` (moto and cbor2 into .venv)",
            pytrace=False,
        )
    try:
        emu = Emulator(port=0, convergence_ms=300, rds_delay_ms=300).start()
    except Exception as e:  # pragma: no cover
        pytest.fail(f"the AWS emulator could not start: {e!r}", pytrace=False)
    os.environ["AWS_ENDPOINT_URL"] = emu.endpoint
    try:
        yield EmulatorHandle(emu)
    finally:
        emu.stop()


@pytest.fixture
def emu(emulator_session: EmulatorHandle) -> EmulatorHandle:
    """The emulator, reset (no resources, no faults, no calls counted)."""
    emulator_session.reset()
    emulator_session.set_ecs_convergence(300)
    emulator_session.set_rds_delay(300)
    return emulator_session


# -- Kubernetes --------------------------------------------------------------------------


class K8sSim:
    """The Kubernetes API simulator, as a subprocess, with a tiny REST client for seeding."""

    def __init__(self, proc: subprocess.Popen[str], url: str, kubeconfig: Path) -> None:
        self.proc = proc
        self.url = url
        self.kubeconfig = kubeconfig

    def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json") -> Any:
        import json
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": content_type})
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            return json.loads(text) if text else None


def _sim_command() -> list[str]:
    explicit = os.environ.get("ROLLBACK_K8S_SIM")
    if explicit:
        return [explicit]
    return ["cargo", "run", "--quiet", "-p", "rollback-testkit", "--bin", "rollback-k8s-sim", "--"]


@pytest.fixture(scope="session")
def k8s_sim(isolated_env: Path) -> Iterator[K8sSim]:
    kubeconfig = isolated_env / "kubeconfig"
    cmd = _sim_command() + ["--port", "0", "--kubeconfig", str(kubeconfig)]
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as e:
        pytest.fail(f"the Kubernetes simulator could not start ({' '.join(cmd)}): {e}", pytrace=False)
    line: list[str] = []

    def read_first_line() -> None:
        assert proc.stdout is not None
        line.append(proc.stdout.readline())

    reader = threading.Thread(target=read_first_line, daemon=True)
    reader.start()
    reader.join(timeout=900)  # a cold `cargo run` builds the binary first
    first = line[0].strip() if line else ""
    if not first.startswith("listening on "):
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        pytest.fail(
            f"the Kubernetes simulator did not start ({' '.join(cmd)}): first line {first!r}; stderr:\n{err[-3000:]}",
            pytrace=False,
        )
    url = first.removeprefix("listening on ").strip()
    for _ in range(100):
        if kubeconfig.exists():
            break
        time.sleep(0.05)
    try:
        yield K8sSim(proc, url, kubeconfig)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def k8s_config(k8s_sim: K8sSim) -> rollback.k8s.K8sConfig:
    return rollback.k8s.K8sConfig(kubeconfig=str(k8s_sim.kubeconfig))
