"""The package as a user gets it: `maturin build` makes one abi3 wheel (CPython 3.9+) with the
stubs and py.typed; installed into a brand-new virtualenv with nothing else in it, it imports,
runs a transaction on an in-memory target, and rolls back a Lambda alias on the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from conftest import ROOT, EmulatorHandle

SMOKE = textwrap.dedent(
    """
    import asyncio, sys
    import rollback
    from rollback.aws import LambdaAlias

    class Memory:
        name = "smoke"
        def __init__(self): self.at = "2"
        def current(self): return rollback.Revision(self.at)
        def history(self): return [rollback.Revision("2"), rollback.Revision("1")]
        def apply(self, change): self.at = change.to_revision.id
        def wait(self, revision): return self.at == revision.id

    m = Memory()
    report = asyncio.run(rollback.Transaction("smoke", reason="wheel").add(m, rollback.Previous()).run_async())
    assert report.outcome == "succeeded" and m.at == "1", str(report)
    alias = LambdaAlias("smoke-fn", "live")
    report = rollback.Transaction("smoke-aws", reason="wheel").add(alias, rollback.Previous()).run()
    assert report.outcome == "succeeded" and alias.current().id == "1", str(report)
    print("smoke ok", rollback.__file__, sys.prefix)
    """
)


def smoke_env(tmp_path: Path, emu: EmulatorHandle) -> dict[str, str]:
    """Nothing of the developer's environment but PATH: the emulator, and state in tmp_path."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": emu.endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "ROLLBACK_LOCK_DIR": str(tmp_path / "locks"),
        "ROLLBACK_JOURNAL_DIR": str(tmp_path / "journal"),
    }


def test_the_abi3_wheel_installs_into_a_new_virtualenv_and_runs(tmp_path: Path, emu: EmulatorHandle) -> None:
    out = tmp_path / "dist"
    # The debug profile shares the workspace's target/ with `maturin develop`; a release wheel
    # (`maturin build --release`) is the same shape, only slower to build.
    env = dict(os.environ, CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")))
    maturin = Path(sys.executable).parent / "maturin"
    build = subprocess.run(
        [str(maturin), "build", "--quiet", "--out", str(out)], cwd=ROOT / "rollback-py", env=env, capture_output=True, text=True, timeout=3000
    )
    assert build.returncode == 0, build.stderr[-4000:]
    wheels = list(out.glob("*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]
    assert "-cp39-abi3-" in wheel.name, wheel.name  # one wheel for CPython 3.9 and later
    names = set(zipfile.ZipFile(wheel).namelist())
    for want in ("rollback/__init__.pyi", "rollback/aws.pyi", "rollback/k8s.pyi", "rollback/py.typed", "rollback/_aio.py"):
        assert want in names, f"{want} not in {wheel.name}"
    assert any(n.startswith("rollback/_rollback.") and n.endswith(".so") for n in names), names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    for field in ("Requires-Python: >=3.9", "License: Apache-2.0", "Project-URL: Source", "Classifier: Typing :: Typed", "Description-Content-Type: text/markdown"):
        assert field in text, f"{field!r} not in the wheel's METADATA"

    # A brand-new virtualenv from the base interpreter, with nothing but the wheel.
    venv = tmp_path / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-index", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stderr[-4000:]
    listed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True).stdout
    assert {line.split("==")[0] for line in listed.split()} <= {"rollback", "pip", "setuptools"}, listed

    emu.seed({"lambda": [{"function": "smoke-fn", "alias": "live", "versions": ["1.0", "1.1"], "alias_version": "2"}]})
    run_env = smoke_env(tmp_path, emu)
    smoke = subprocess.run([str(python), "-c", SMOKE], cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=300)
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
    assert "smoke ok" in smoke.stdout and str(venv) in smoke.stdout, smoke.stdout
    assert emu.count("UpdateAlias") == 1


def test_pip_install_of_the_source_folder_works(tmp_path: Path, emu: EmulatorHandle) -> None:
    """`pip install ./rollback-py`, as the README says, through maturin's PEP 517 backend. The dev
    profile (MATURIN_PEP517_ARGS) shares the workspace's debug build with `maturin develop`; the
    default release profile is the same build, only slower."""
    into = tmp_path / "site"
    env = dict(
        os.environ,
        CARGO_TARGET_DIR=os.environ.get("CARGO_TARGET_DIR", str(ROOT / "target")),
        MATURIN_PEP517_ARGS="--profile dev",
    )
    pip = subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-build-isolation",
            "--no-deps", "--target", str(into), str(ROOT / "rollback-py"),
        ],
        env=env, capture_output=True, text=True, timeout=3000,
    )
    assert pip.returncode == 0, pip.stdout[-2000:] + pip.stderr[-4000:]
    assert (into / "rollback" / "py.typed").exists() and list((into / "rollback").glob("_rollback*.so"))

    emu.seed({"lambda": [{"function": "smoke-fn", "alias": "live", "versions": ["1.0", "1.1"], "alias_version": "2"}]})
    run_env = dict(smoke_env(tmp_path, emu), PYTHONPATH=str(into))
    base = getattr(sys, "_base_executable", sys.executable)
    smoke = subprocess.run([base, "-c", SMOKE], cwd=tmp_path, env=run_env, capture_output=True, text=True, timeout=300)
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
    assert f"smoke ok {into}" in smoke.stdout, smoke.stdout
    assert emu.count("UpdateAlias") == 1
