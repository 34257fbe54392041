"""Names for type hints: what a duration, a check, a target may be given as, and the
protocol a Python object follows to be a target (see ``rollback.CustomTarget``)."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Protocol, Union

if TYPE_CHECKING:  # typing.TypeAlias is Python 3.10+; annotations are not evaluated here
    from typing import TypeAlias

from . import Change, Check, Revision, Target  # bound by rollback/__init__ before this import

__all__ = ["Seconds", "CustomTarget", "TargetLike", "CheckLike"]

Seconds: TypeAlias = Union[float, datetime.timedelta]


class CustomTarget(Protocol):
    """What a Python object needs to be a target; see the stubs for the rules."""

    def current(self) -> Revision | str | Awaitable[Revision | str]: ...

    def history(self) -> Iterable[Revision | str] | Awaitable[Iterable[Revision | str]]: ...

    def apply(self, change: Change, /) -> object: ...

    def wait(self, revision: Revision, /) -> bool | str | None | Awaitable[bool | str | None]: ...


TargetLike: TypeAlias = Union[Target, CustomTarget]
CheckLike: TypeAlias = Union[Check, Callable[[], object]]
