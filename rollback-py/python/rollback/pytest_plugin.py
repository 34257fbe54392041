"""pytest fixtures for testing rollback logic (registered as the ``pytest11`` entry point
``rollback``, so they exist in any test suite once the package is installed).

- ``rollback_state_dir``: leases and journals of the test go to its ``tmp_path``
  (``ROLLBACK_LOCK_DIR``, ``ROLLBACK_JOURNAL_DIR``), so tests never share or leave them.
- ``rollback_memory_target``: an :class:`rollback.testing.InMemoryTarget` named ``api`` with
  revisions ``1``, ``2``, ``3``, at ``3``.
- ``rollback_recorder``: a :class:`rollback.testing.Recorder` to pass as ``on_event``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .testing import InMemoryTarget, Recorder


@pytest.fixture
def rollback_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "rollback-state"
    monkeypatch.setenv("ROLLBACK_LOCK_DIR", str(state / "locks"))
    monkeypatch.setenv("ROLLBACK_JOURNAL_DIR", str(state / "journal"))
    yield state


@pytest.fixture
def rollback_memory_target(rollback_state_dir: Path) -> InMemoryTarget:
    return InMemoryTarget("api", ["1", "2", "3"])


@pytest.fixture
def rollback_recorder() -> Recorder:
    return Recorder()
