"""The type stubs: mypy (pinned in rollback-py/requirements-dev.txt) checks them, the
examples, these tests and a file using every name of the API (typing_usage.py), in strict
mode; stubtest checks that the
stubs match the installed module (every name, every signature)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "rollback-py" / "python" / "rollback"
CONFIG = ROOT / "rollback-py" / "pyproject.toml"
CACHE = ROOT / "target" / "mypy-cache"  # kept out of the source tree


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--cache-dir", str(CACHE), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_stubs_and_package_type_check() -> None:
    r = mypy("--strict", str(PACKAGE))
    assert r.returncode == 0, r.stdout + r.stderr


def test_examples_tests_and_api_usage_type_check() -> None:
    examples = sorted(str(p) for p in (ROOT / "examples" / "python").glob("*.py"))
    tests = sorted(str(p) for p in Path(__file__).parent.glob("*.py") if p.name != "typing_misuse.py")
    r = mypy("--strict", *tests, *examples)
    assert r.returncode == 0, r.stdout + r.stderr


def test_misuse_is_caught_by_the_type_checker() -> None:
    bad = Path(__file__).with_name("typing_misuse.py")
    r = mypy("--strict", str(bad))
    assert r.returncode == 1, r.stdout
    flagged = {int(line.split(":")[1]) for line in r.stdout.splitlines() if ": error:" in line}
    marked = {n for n, line in enumerate(bad.read_text().splitlines(), 1) if "# error" in line}
    assert flagged == marked, r.stdout


def test_stubs_match_the_runtime_module(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(CONFIG), "rollback"],
        cwd=tmp_path,  # stubtest keeps its cache in the working directory
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
