"""Every script in examples/python runs to the end it promises (exit status 0), against the
session's emulators; one also starts its own emulator, as a person running it would."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, EmulatorHandle, K8sSim

EXAMPLES = ROOT / "examples" / "python"
AWS_EXAMPLES = ["lambda_alias", "canary_reset", "ecs_services", "database_restore", "secret_rollback", "apgms_stack", "cache_invalidation"]


def run(script: str, *args: str, timeout: float = 300) -> str:
    env = dict(os.environ)
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{script}.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{out[-6000:]}"
    return out


@pytest.mark.parametrize("script", AWS_EXAMPLES)
def test_aws_example(script: str, emu: EmulatorHandle) -> None:
    out = run(script, "--endpoint", emu.endpoint)
    assert "[finished]" in out and "succeeded" in out
    assert "jwt-signing-key" not in out and "jwt-value-" not in out and "pw-9c4f1e7a2b" not in out
    if script == "cache_invalidation":
        assert "CreateInvalidation 1" in out and "[#incidents] rollback succeeded" in out, out
        assert "XXXXXXXX" not in out


def test_an_example_starts_its_own_emulator(emulator_session: EmulatorHandle) -> None:
    # moto's state is per process: the script's own emulator is independent of the session's.
    out = run("lambda_alias")
    assert "starting the emulated AWS" in out and "the alias now: version 1 | health: 200 OK" in out


def test_k8s_example(k8s_sim: K8sSim) -> None:
    k8s_sim.request("POST", "/_sim/reset")
    out = run("k8s_undo", "--kubeconfig", str(k8s_sim.kubeconfig))
    assert 'deployment "frontend" successfully rolled out' in out
    assert "maintenance page on for backend-rust" in out
    assert "== maintenance mode: before (off again" in out


def test_terraform_example_with_the_stand_in() -> None:
    out = run("terraform_rollback")
    assert "the infrastructure runs 1.8 | terraform apply calls: 1 | worktrees left: 0" in out
    assert 'version = "1.9" -> "1.8"' in out  # the plan shows terraform plan's output


def test_the_users_own_pytest_suite_passes() -> None:
    # examples/python/test_my_pipeline.py, run as its user runs it: pytest, with the fixtures
    # from the package's plugin and nothing else.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLLBACK_", "AWS_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLES / "test_my_pipeline.py")],
        cwd=EXAMPLES,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "6 passed" in proc.stdout, proc.stdout[-2000:]


def test_every_example_is_tested() -> None:
    scripts = {p.stem for p in EXAMPLES.glob("*.py")} - {"emulators"}
    assert scripts == set(AWS_EXAMPLES) | {"k8s_undo", "test_my_pipeline", "terraform_rollback", "watch_and_drill"}


def test_watch_and_drill_example() -> None:
    out = run("watch_and_drill")
    looks = [line.split()[1] for line in out.splitlines() if line.startswith("  12:")]
    assert looks == ["healthy", "healthy", "acted", "already_acted", "healthy", "healthy", "healthy", "healthy", "cooldown", "cooldown", "healthy"], out
    assert "the api now runs 41; rollbacks made: 1" in out
    assert "# Rollback drill: api-rollback on staging (passed)" in out and "left at 41" in out
