"""The background thread of the ECS and RDS schedulers: ``tick()`` every ``tick_ms``."""

from __future__ import annotations

import threading


class Ticker:
    """Calls ``tick()`` on a daemon thread every ``tick_ms`` between ``start()`` and ``stop()``."""

    thread_name = "rollback-emulator"

    def __init__(self, tick_ms: int):
        self.tick_ms = tick_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self, now: float | None = None) -> None:
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.tick_ms / 1000):
            try:
                self.tick()
            except Exception:  # never let the scheduler die; the next tick retries
                import traceback

                traceback.print_exc()
