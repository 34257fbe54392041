"""The coroutine every ``*_async`` call returns.

``coroutine(start)`` is a plain ``async def``: calling it needs no event loop and runs
nothing, so ``asyncio.run(tx.run_async())``, ``asyncio.gather``, ``asyncio.wait_for`` and
anyio (on asyncio) work as with any coroutine. Awaiting it calls ``start()`` on the running
loop, which starts the work on the library's runtime and returns its future; cancelling the
awaiting task cancels that future, which drops the Rust work (and its lease renewal).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


async def coroutine(start: Callable[[], Awaitable[Any]]) -> Any:
    return await start()
