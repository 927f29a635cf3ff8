"""An asyncio event loop in a daemon thread, for servers that sync tests also use."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class _Server(Protocol):
    async def start(self) -> Any: ...

    async def close(self) -> None: ...


S = TypeVar("S", bound=_Server)


class BackgroundLoop:
    """Runs coroutines on a private loop in another thread.

    Servers started here keep answering while the test's own loop (or a
    blocking stdlib client in a sync test) waits on them.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="tests-bg-loop", daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop running in the background thread."""
        return self._loop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 15.0) -> T:
        """Run *coro* on the background loop and return its result (blocking)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @contextlib.contextmanager
    def serving(self, make: Callable[[], S]) -> Iterator[S]:
        """A server made and started on this loop, closed when the block ends."""

        async def started() -> S:
            server = make()
            await server.start()
            return server

        server = self.run(started())
        try:
            yield server
        finally:
            self.run(server.close())

    def close(self) -> None:
        """Cancel what is left, stop the loop and join the thread."""
        if self._loop.is_closed():
            return
        self.run(_cancel_other_tasks())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()


async def _cancel_other_tasks() -> None:
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
