"""The codec's vocabulary: what ``ResponseCodec.feed`` emits.

A final response head, informational (1xx) heads, body data as plain
``bytes``, chunk boundaries and the end of the message; plus the codec's
``Phase``. Shared by the codec and the protocol that routes the events.
"""

from __future__ import annotations

import enum
from typing import ClassVar, Final, TypeAlias

from multidict import CIMultiDict

__all__ = [
    "CHUNK_END",
    "END",
    "ChunkEnd",
    "EndOfMessage",
    "Event",
    "InformationalHead",
    "Phase",
    "ResponseHead",
]


class _Record:
    """Value semantics for the slotted event classes below (``@dataclass(slots=True)``'s
    ``__init__``/``__repr__``/``__eq__``, written out: building dataclasses costs
    ``import client`` ~0.4 ms each)."""

    __slots__ = ()
    _fields: ClassVar[tuple[str, ...]] = ()  # in declaration order (__slots__ are sorted)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self._fields)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value (as dataclasses)


class ResponseHead(_Record):
    """The final response's status line and header section.

    ``chunked``/``content_length`` describe the headers as received (the codec
    already applied the no-body rules: HEAD, 204, 304, upgrades).  ``upgrade``
    is true for an accepted 101 and for a 2xx answer to CONNECT (a tunnel).
    """

    _fields = (
        "status",
        "reason",
        "version",
        "headers",
        "raw_headers",
        "keep_alive",
        "upgrade",
        "chunked",
        "content_length",
    )
    __slots__ = tuple(sorted(_fields))

    def __init__(
        self,
        status: int,
        reason: str,
        version: tuple[int, int],
        headers: CIMultiDict[str],
        raw_headers: tuple[tuple[bytes, bytes], ...],
        keep_alive: bool,
        upgrade: bool,
        chunked: bool,
        content_length: int | None,
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.raw_headers = raw_headers
        self.keep_alive = keep_alive
        self.upgrade = upgrade
        self.chunked = chunked
        self.content_length = content_length


class InformationalHead(_Record):
    """A 1xx response (other than an accepted 101) before the final one."""

    _fields = ("status", "headers")
    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: CIMultiDict[str]) -> None:
        self.status = status
        self.headers = headers


class EndOfMessage:
    """Marks the end of the current response; use the :data:`END` singleton."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END"


END: Final = EndOfMessage()


class ChunkEnd:
    """Marks the end of one HTTP chunk (for ``iter_chunks``); see :data:`CHUNK_END`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "CHUNK_END"


CHUNK_END: Final = ChunkEnd()

#: Body data is delivered as plain ``bytes`` objects.
Event: TypeAlias = ResponseHead | InformationalHead | bytes | EndOfMessage | ChunkEnd


class Phase(enum.Enum):
    """Where the codec is in the current response."""

    IDLE = "idle"  # no request armed
    HEAD = "head"  # reading a status line and header section
    BODY_LENGTH = "body-length"
    BODY_CHUNKED = "body-chunked"
    BODY_CLOSE = "body-until-close"
    DONE = "done"  # END emitted
    UPGRADED = "upgraded"  # END emitted; later bytes belong to another protocol
    FAILED = "failed"  # a protocol error was raised
