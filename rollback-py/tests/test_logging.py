"""Rust `tracing` as Python `logging`: real runs against the AWS emulator log under the
`rollback` logger (children by Rust target), Python's levels filter them, and no secret
value (a secret's value, a CommandCheck's env token) is in any record."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import pytest

import rollback
from conftest import EmulatorHandle, K8sSim
from rollback.aws import LambdaAlias, SecretVersion

FN = "agentauri-mcp-s3-tools-prod"
TARGET = f"lambda-alias/{FN}:live"
SECRET_VALUE = "canary-secret-value-7f3a9c"


def seed_lambda(emu: EmulatorHandle) -> None:
    emu.seed({"lambda": [{"function": FN, "alias": "live", "versions": ["a", "b"], "alias_version": "2"}]})


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "rollback" or r.name.startswith("rollback.")]


def halted_run() -> rollback.Report:
    """A run whose check fails under the Halt policy: the target is left moved and the run
    says it needs attention."""
    return (
        rollback.Transaction("halted", reason="INC-1", policy="halt")
        .add(LambdaAlias(FN, "live"), rollback.Previous(), verify=rollback.Check(lambda: False, name="always-fails", policy=rollback.Policy.once()))
        .run()
    )


def test_a_run_logs_under_rollback_with_levels_and_fields(emu: EmulatorHandle, caplog: pytest.LogCaptureFixture) -> None:
    seed_lambda(emu)
    emu.inject("UpdateAlias", "throttle", count=1)
    caplog.set_level(logging.DEBUG, logger="rollback")
    report = halted_run()
    assert report.outcome == "failed" and report.needs_attention, str(report)
    records = ours(caplog)
    attention = [r for r in records if "needs attention" in r.getMessage()]
    assert attention, [r.getMessage() for r in records]
    assert attention[0].levelno == logging.WARNING
    assert attention[0].name == "rollback.core.transaction.engine"
    assert attention[0].rust_target == "rollback_core::transaction::engine"  # type: ignore[attr-defined]
    assert report.transaction in attention[0].getMessage()
    assert TARGET in attention[0].getMessage()
    retries = [r for r in records if r.levelno == logging.DEBUG and "retrying" in r.getMessage()]
    assert retries, [r.getMessage() for r in records]
    assert "attempt" in retries[0].rust_fields  # type: ignore[attr-defined]
    assert "step" in retries[0].rust_spans  # type: ignore[attr-defined]
    assert TARGET in retries[0].getMessage()  # the span's fields
    infos = [r for r in records if r.levelno == logging.INFO]
    assert any("applied" == r.rust_fields.get("kind") for r in infos)  # type: ignore[attr-defined]
    assert emu.count("UpdateAlias") == 2


def test_python_levels_filter_what_rust_logs(emu: EmulatorHandle, caplog: pytest.LogCaptureFixture) -> None:
    seed_lambda(emu)
    caplog.set_level(logging.WARNING, logger="rollback")
    caplog.handler.setLevel(logging.NOTSET)  # only the loggers' levels filter
    halted_run()
    levels = {r.levelno for r in ours(caplog)}
    assert levels and min(levels) >= logging.WARNING, levels
    # A child logger set lower lets its own events through, the others stay filtered.
    caplog.clear()
    emu.reset()
    seed_lambda(emu)
    emu.inject("UpdateAlias", "throttle", count=1)
    wait_logger = logging.getLogger("rollback.core.wait")
    caplog.set_level(logging.DEBUG, logger="rollback.core.wait")
    caplog.handler.setLevel(logging.NOTSET)
    try:
        report = rollback.Transaction("t", reason="r").add(LambdaAlias(FN, "live"), rollback.Previous()).run()
    finally:
        wait_logger.setLevel(logging.NOTSET)
    assert report.outcome == "succeeded", str(report)
    below = [r for r in ours(caplog) if r.levelno < logging.WARNING]
    assert below and {r.name for r in below} == {"rollback.core.wait"}, [(r.name, r.getMessage()) for r in below]
    # Off: nothing at all.
    caplog.clear()
    emu.reset()
    seed_lambda(emu)
    caplog.set_level(logging.CRITICAL, logger="rollback")
    caplog.handler.setLevel(logging.NOTSET)
    halted_run_again = rollback.Transaction("t2", reason="r", policy="halt").add(
        LambdaAlias(FN, "live"), rollback.Previous(), verify=rollback.Check(lambda: False, policy=rollback.Policy.once())
    )
    assert halted_run_again.run().outcome == "failed"
    assert ours(caplog) == []


def canary_run(emu: EmulatorHandle, tmp_path: Path, script_text: str, token: str) -> None:
    """A run over a secret and a Lambda alias whose CommandCheck (given `token` in its env)
    fails, so both are put back."""
    seeded = emu.seed({"secrets": [{"name": "app/canary", "values": [f"old-{SECRET_VALUE}", SECRET_VALUE]}]})
    versions = seeded["secrets"][0]["version_ids"]
    seed_lambda(emu)
    script = tmp_path / "smoke.sh"
    script.write_text(script_text)
    script.chmod(0o755)
    smoke = rollback.CommandCheck([str(script)], env={"SMOKE_TOKEN": token}, policy=rollback.Policy(attempts=2, interval=0.05))
    report = (
        rollback.Transaction("canary", reason="INC-2")
        .add(SecretVersion("app/canary"), rollback.Previous())
        .add(LambdaAlias(FN, "live"), rollback.Previous(), verify=smoke)
        .run()
    )
    assert report.outcome == "compensated", str(report)
    assert SecretVersion("app/canary").current().id == versions[1]


def assert_clean(records: list[logging.LogRecord], *canaries: str) -> None:
    assert any("check_failed" == getattr(r, "rust_fields", {}).get("kind") for r in records), [r.getMessage() for r in records]
    for r in records:
        shown = r.getMessage() + repr(getattr(r, "rust_fields", {})) + repr(r.args)
        for canary in canaries:
            assert canary not in shown, shown


def test_no_secret_value_in_any_record(emu: EmulatorHandle, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    token = "canary-env-token-0c41e8"
    caplog.set_level(5, logger="rollback")  # TRACE: every record the library makes
    canary_run(emu, tmp_path, '#!/bin/sh\necho "checking"\nexit 1\n', token)
    assert_clean(ours(caplog), SECRET_VALUE, token)


def test_a_command_check_printing_its_token_is_not_logged(emu: EmulatorHandle, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """A smoke test that prints the token it was given: its output reaches the events (and
    so the log) scrubbed of the check's secret-looking env values."""
    token = "canary-env-token-51bd02"
    caplog.set_level(5, logger="rollback")
    canary_run(emu, tmp_path, '#!/bin/sh\necho "using token $SMOKE_TOKEN"\necho "token $SMOKE_TOKEN" >&2\nexit 1\n', token)
    assert_clean(ours(caplog), SECRET_VALUE, token)


def test_disabled_levels_never_reach_python(emu: EmulatorHandle, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the level the `rollback` loggers are enabled for, events are dropped on the Rust
    side: Python is not even asked (no GIL taken for them)."""
    seed_lambda(emu)
    emu.inject("UpdateAlias", "throttle", count=2)  # DEBUG "retrying" events
    asked: list[tuple[str, int]] = []
    original = logging.Logger.isEnabledFor

    def spy(self: logging.Logger, level: int) -> bool:
        if self.name.startswith("rollback"):
            asked.append((self.name, level))
        return original(self, level)

    monkeypatch.setattr(logging.Logger, "isEnabledFor", spy)
    caplog.set_level(logging.WARNING, logger="rollback")
    report = halted_run()
    assert report.outcome == "failed"
    assert asked and min(level for _, level in asked) >= logging.WARNING, asked
    # Enabled for DEBUG: the same run asks about (and logs) its DEBUG events.
    asked.clear()
    emu.reset()
    seed_lambda(emu)
    emu.inject("UpdateAlias", "throttle", count=2)
    caplog.set_level(logging.DEBUG, logger="rollback")
    halted_run()
    assert any(level == logging.DEBUG for _, level in asked), asked


def test_runs_on_many_threads_log_without_deadlock(emu: EmulatorHandle, caplog: pytest.LogCaptureFixture) -> None:
    """Blocking runs on several Python threads and an asyncio run at once, each releasing the
    GIL while tokio's workers log at DEBUG through it."""
    names = [f"fn-{i}" for i in range(4)]
    emu.seed({"lambda": [{"function": n, "alias": "live", "versions": ["a", "b"], "alias_version": "2"} for n in names]})
    emu.inject("UpdateAlias", "throttle", count=len(names))
    caplog.set_level(logging.DEBUG, logger="rollback")
    outcomes: dict[str, str] = {}

    def blocking(name: str) -> None:
        outcomes[name] = rollback.Transaction(name, reason="r").add(LambdaAlias(name, "live"), rollback.Previous()).run().outcome

    async def in_loop(name: str) -> None:
        report = await rollback.Transaction(name, reason="r").add(LambdaAlias(name, "live"), rollback.Previous()).run_async()
        outcomes[name] = report.outcome

    threads = [threading.Thread(target=blocking, args=(n,)) for n in names[:3]]
    for t in threads:
        t.start()
    asyncio.run(in_loop(names[3]))
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert outcomes == {n: "succeeded" for n in names}
    logged = " ".join(r.getMessage() for r in ours(caplog))
    assert all(f"lambda-alias/{n}:live" in logged for n in names)
    assert any(r.levelno == logging.DEBUG for r in ours(caplog))


CHILD = """
import logging, sys
sys.path.insert(0, {tests!r})
import rollback
from helpers import MemoryTarget

records = []
handler = logging.Handler()
handler.emit = records.append
logging.getLogger("rollback").addHandler(handler)
logging.getLogger("rollback").setLevel(logging.DEBUG)
t = MemoryTarget("api", ["1", "2"], "2")
report = rollback.Transaction("t", reason="r", journal={journal!r}).add(t, rollback.Previous()).run()
assert report.outcome == "succeeded", str(report)
print(len(records), sorted({{r.name for r in records}}))
"""


@pytest.mark.parametrize(
    ("rust_log", "expect_records"),
    [(None, True), ("off", False), ("rollback_core=warn", False), ("rollback_core::events=info", True)],
)
def test_rust_log_chooses_which_rust_events_reach_logging(tmp_path: Path, rust_log: str | None, expect_records: bool) -> None:
    """RUST_LOG is read when the module is imported (so in a child process here)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
    if rust_log is not None:
        env["RUST_LOG"] = rust_log
    code = CHILD.format(tests=str(Path(__file__).parent), journal=str(tmp_path / "j.jsonl"))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    count = int(r.stdout.split()[0])
    assert (count > 0) == expect_records, (rust_log, r.stdout)
    if expect_records:
        assert "rollback.core.events" in r.stdout


def test_another_crates_log_of_a_proxy_page_is_short_and_secret_free(k8s_sim: K8sSim, caplog: pytest.LogCaptureFixture) -> None:
    """kube-client logs a body it cannot parse at WARN; a proxy's page that echoes a token
    reaches Python only as a secret-free excerpt."""
    from rollback.k8s import Deployment, K8sConfig

    k8s_sim.request("POST", "/_sim/reset")
    page = '<html><body>502 Bad Gateway: upstream said {"token": "tok-CANARY-9f8e7d6c"} ' + "padding " * 300 + "</body></html>"
    k8s_sim.request("POST", "/_sim/inject", {"method": "GET", "path_contains": "/deployments/web", "status": 502, "times": 5, "body": page})
    caplog.set_level(logging.DEBUG, logger="rollback")
    tx = rollback.Transaction("proxy", reason="INC-1").add(Deployment("web", "production", config=K8sConfig(url=k8s_sim.url)), rollback.Previous())
    with pytest.raises(rollback.RollbackError):
        tx.run(dry_run=True)
    records = ours(caplog)
    foreign = [r for r in records if r.name.startswith("rollback.kube")]
    assert foreign, [(r.name, r.getMessage()[:80]) for r in records]
    for r in records:
        assert "tok-CANARY-9f8e7d6c" not in r.getMessage(), (r.name, r.getMessage())
    assert all(len(r.getMessage()) <= 500 for r in foreign), [len(r.getMessage()) for r in foreign]
