"""The objects request methods return: awaitable *and* async context managers.

``await session.get(url)`` and ``async with session.get(url) as resp:`` both
work, as in aiohttp. The coroutine plumbing lives here once; subclasses say
what entering and leaving the ``async with`` means.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .response import ClientResponse

if TYPE_CHECKING:
    from .session import ClientSession

T = TypeVar("T")


class AwaitableContext(Coroutine[Any, Any, T], Generic[T]):
    """Wraps the coroutine that produces a ``T``; awaiting it returns the ``T``."""

    __slots__ = ("_coro", "_result")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._result: T | None = None

    def send(self, arg: Any) -> Any:
        return self._coro.send(arg)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, T]:
        return self._coro.__await__()

    async def __aenter__(self) -> T:
        self._result = await self._coro
        return self._result

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        raise NotImplementedError


class RequestContextManager(AwaitableContext[ClientResponse]):
    """``session.get(...)``: awaitable, or ``async with`` that releases the response."""

    __slots__ = ()

    async def __aenter__(self) -> ClientResponse:
        # AwaitableContext.__aenter__ inlined, and the response's own one when it is
        # ClientResponse's: two coroutines less per request.
        resp = self._result = await self._coro
        if type(resp).__aenter__ is not _RESPONSE_AENTER:
            return await resp.__aenter__()
        resp._in_context = True
        return resp

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        resp = self._result
        assert resp is not None
        if type(resp).__aexit__ is not _RESPONSE_AEXIT:
            await resp.__aexit__(exc_type, exc, tb)
            return
        resp._in_context = False  # what ClientResponse.__aexit__ does, without its coroutine
        resp.release()


_RESPONSE_AENTER = ClientResponse.__aenter__
_RESPONSE_AEXIT = ClientResponse.__aexit__


class SessionRequestContextManager:
    """``client.request(...)``: a one-shot session closed with its response."""

    def __init__(self, coro: Coroutine[Any, Any, ClientResponse], session: ClientSession) -> None:
        self._coro = coro
        self._session = session
        self._resp: ClientResponse | None = None

    def __await__(self) -> Generator[Any, None, ClientResponse]:
        return self._await().__await__()

    async def _await(self) -> ClientResponse:
        try:
            resp = await self._coro
            await resp.read()
            return resp
        finally:
            await self._session.close()

    async def __aenter__(self) -> ClientResponse:
        try:
            self._resp = await self._coro
        except BaseException:
            await self._session.close()
            raise
        return self._resp

    async def __aexit__(self, *exc: object) -> None:
        assert self._resp is not None
        self._resp.release()
        await self._session.close()
