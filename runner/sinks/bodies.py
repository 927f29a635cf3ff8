"""Response bodies streamed to disk under names no server can choose (issue #4, RUN-01).

Layout: ``root/ab/cd/<h>.body`` where ``h = sha256("METHOD url")`` in hex. Only the
request picks the name, never a URL path segment or a header such as
``Content-Disposition``, so ``..``, absolute paths, NUL, reserved DOS names, NFC/NFD
or case twins and over-long names cannot reach the filesystem: every name is 69 bytes
of lowercase hex plus suffix, and distinct requests get distinct names.

Writing: bodies up to :data:`SPILL` bytes stay in memory and are written to a temp file
and renamed into place by **one** executor call at :meth:`BodySink.commit`. Larger
bodies spill to ``root/.tmp/`` and stream through aiofiles. The final path is only ever
touched by an atomic rename, so it holds the previous complete body or the new complete
one, never a partial one (ENOSPC included).

Symlinks: the root is resolved once with ``realpath`` (a user may point the output at a
symlinked directory; that is their choice, made once). Below it, directories are walked
with ``dir_fd`` and ``O_NOFOLLOW``, so a symlink planted at ``.tmp``, ``ab`` or ``ab/cd``
is refused with an :class:`OSError`, never followed. A symlink (or hard link) at the
final path is replaced itself: ``rename(2)`` never follows its target. POSIX only.

Cancellation invariant: every I/O step of a sink runs in a task shielded from the
caller and recorded on the sink. A cancelled ``write``/``commit`` therefore leaves that
step running to completion; :meth:`BodySink.abort` and :meth:`BodyStore.close` first
wait for it, then close and unlink the temp file. A cancelled ``commit`` either
completes the rename (whole body in place) or leaves nothing at the final path.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import aiofiles
from aiofiles.threadpool.binary import AsyncBufferedIOBase

__all__ = ["SPILL", "TMP_DIR", "BodySink", "BodyStore", "SinkState", "request_hash"]

SPILL = 256 * 1024
"""Bodies up to this many bytes are buffered in memory and written in one executor call."""

TMP_DIR = ".tmp"
"""Temp files live in ``root/.tmp`` (same filesystem as the final paths: rename is atomic)."""

_SUFFIX = ".body"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_MODE = 0o755
_FILE_MODE = 0o644

_T = TypeVar("_T")


def request_hash(method: str, url: str) -> str:
    """Hex sha256 of ``"METHOD url"``; ``surrogatepass`` keeps odd ``str`` URLs injective."""
    key = f"{method.upper()} {url}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(key).hexdigest()


def _not_a_dir(path: Path, exc: OSError) -> OSError:
    return OSError(exc.errno, "refusing body directory: not a real directory (symlink?)", str(path))


def _open_subdir(parent_fd: int, name: str, shown: Path) -> int:
    """Open (creating if missing) directory *name* below *parent_fd*; refuse symlinks."""
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, _DIR_MODE, dir_fd=parent_fd)
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _not_a_dir(shown, exc) from exc
        raise


def _write_all(fd: int, chunks: Iterable[bytes]) -> None:
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view) :]


class _Dirs(contextlib.ExitStack):
    """Directory fds opened for one executor call and closed at its end (never shared:
    a long-lived fd closed by ``BodyStore.close`` under a running thread could be reused)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.root_fd = self._fd(os.open(root, _DIR_FLAGS))
        self.tmp_fd = self.subdir(self.root_fd, TMP_DIR, root / TMP_DIR)

    def _fd(self, fd: int) -> int:
        self.callback(os.close, fd)
        return fd

    def subdir(self, parent_fd: int, name: str, shown: Path) -> int:
        return self._fd(_open_subdir(parent_fd, name, shown))


class BodyStore:
    """The body tree under one output root; hands out one :class:`BodySink` per body."""

    __slots__ = ("_closed", "_live", "_root")

    def __init__(self, root: Path) -> None:
        """Create *root* (mode 0o755) and ``root/.tmp`` if missing; resolve root once.

        Raises :class:`OSError` if root is not a directory or ``.tmp`` is not a real one.
        """
        os.makedirs(root, mode=_DIR_MODE, exist_ok=True)
        self._root = Path(os.path.realpath(root))
        tmp = self._root / TMP_DIR
        with contextlib.suppress(FileExistsError):
            os.mkdir(tmp, _DIR_MODE)
        if not stat.S_ISDIR(os.lstat(tmp).st_mode):
            raise _not_a_dir(tmp, OSError(errno.ENOTDIR, "not a directory"))
        self._live: set[BodySink] = set()
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._live)} open"
        return f"<BodyStore {str(self._root)!r} {state}>"

    @property
    def root(self) -> Path:
        """The resolved (``realpath``) root every body lies under."""
        return self._root

    def path_for(self, method: str, url: str) -> Path:
        """Final path of the body of ``method url``: ``root/h[:2]/h[2:4]/h.body``. No I/O."""
        return self._final(request_hash(method, url))

    def open(self, method: str, url: str) -> BodySink:
        """Start a body for ``method url``; commit or abort it, or :meth:`close` the store."""
        if self._closed:
            raise RuntimeError("BodyStore is closed")
        sink = BodySink(self, request_hash(method, url))
        self._live.add(sink)
        return sink

    async def close(self) -> None:
        """Abort every sink not yet committed (removing its temp file). Idempotent.

        Every sink is tried; the first :class:`OSError` is re-raised afterwards.
        """
        self._closed = True
        first: OSError | None = None
        for sink in list(self._live):
            try:
                await sink.abort()
            except OSError as exc:
                first = first or exc
        if first is not None:
            raise first

    # -- sync helpers, each run inside one executor call -------------------------------

    def _final(self, h: str) -> Path:
        return self._root / h[:2] / h[2:4] / (h + _SUFFIX)

    def _forget(self, sink: BodySink) -> None:
        self._live.discard(sink)

    def _temp_opener(self, name: str, flags: int) -> int:
        """``opener`` for aiofiles: create *name* in ``.tmp``, exclusively, no symlinks."""
        with _Dirs(self._root) as dirs:
            return os.open(name, flags | _TMP_FLAGS, _FILE_MODE, dir_fd=dirs.tmp_fd)

    def _unlink_temp(self, name: str) -> None:
        with _Dirs(self._root) as dirs, contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dirs.tmp_fd)

    def _install(self, name: str, h: str) -> Path:
        with _Dirs(self._root) as dirs:
            return self._rename(dirs, name, h)

    def _write_small(self, name: str, chunks: list[bytes], h: str) -> Path:
        """Write a buffered body to a fresh temp file and rename it into place."""
        with _Dirs(self._root) as dirs:
            fd = os.open(name, _TMP_FLAGS, _FILE_MODE, dir_fd=dirs.tmp_fd)
            try:
                try:
                    _write_all(fd, chunks)
                finally:
                    os.close(fd)
                return self._rename(dirs, name, h)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=dirs.tmp_fd)
                raise

    def _rename(self, dirs: _Dirs, name: str, h: str) -> Path:
        final = self._final(h)
        outer = dirs.subdir(dirs.root_fd, h[:2], final.parent.parent)
        leaf = dirs.subdir(outer, h[2:4], final.parent)
        try:
            # rename(2) replaces a symlink or hard link at the final name, never its target.
            os.replace(name, final.name, src_dir_fd=dirs.tmp_fd, dst_dir_fd=leaf)
        except IsADirectoryError as exc:
            raise OSError(
                exc.errno, "refusing to replace a directory with a body", str(final)
            ) from exc
        return final


class SinkState(enum.Enum):
    """Where a :class:`BodySink` is in its life."""

    BUFFERING = "buffering"  # in memory, no file yet
    STREAMING = "streaming"  # temp file open in .tmp
    COMMITTED = "committed"  # renamed into place
    FAILED = "failed"  # an I/O step raised; only abort() is useful now
    ABORTED = "aborted"  # temp file (if any) removed


_DONE = (SinkState.COMMITTED, SinkState.ABORTED)


class BodySink:
    """One response body on its way to disk. Not for concurrent use by several tasks.

    Chunks are buffered by reference up to :data:`SPILL` bytes: do not mutate them.
    """

    __slots__ = ("_chunks", "_file", "_hash", "_pending", "_size", "_state", "_store", "_tmp")

    def __init__(self, store: BodyStore, h: str) -> None:
        self._store = store
        self._hash = h
        self._state = SinkState.BUFFERING
        self._chunks: list[bytes] = []
        self._size = 0
        self._tmp: str | None = None  # set *before* the temp file may exist
        self._file: AsyncBufferedIOBase | None = None
        self._pending: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        return f"<BodySink {self._hash[:12]} {self._state.value} size={self._size}>"

    @property
    def size(self) -> int:
        """Bytes accepted by :meth:`write` so far."""
        return self._size

    @property
    def state(self) -> SinkState:
        """Current state (see :class:`SinkState`)."""
        return self._state

    @property
    def path(self) -> Path:
        """The final path this body is committed to."""
        return self._store._final(self._hash)

    async def write(self, chunk: bytes) -> None:
        """Append *chunk*. On :class:`OSError` the sink aborts itself, then re-raises."""
        await self._settle()
        self._check_writable()
        if not chunk:
            return
        self._size += len(chunk)
        if self._state is SinkState.STREAMING:
            await self._run(self._append(chunk))
        elif self._size <= SPILL:
            self._chunks.append(chunk)
        else:
            chunks, self._chunks = self._chunks, []
            chunks.append(chunk)
            await self._run(self._spill(chunks))

    async def commit(self) -> Path:
        """Put the complete body at its final path and return that path.

        On :class:`OSError` (ENOSPC, a refused symlinked directory...) the temp file is
        removed, nothing new appears at the final path, and the error is re-raised.
        """
        await self._settle()
        self._check_writable()
        return await self._run(self._finish())

    async def abort(self) -> None:
        """Drop the body: close and delete this sink's own temp file. Idempotent."""
        await self._settle()
        if self._state not in _DONE:
            await self._step(self._discard())

    # -- steps: each runs as one shielded task ----------------------------------------

    async def _append(self, chunk: bytes) -> None:
        assert self._file is not None
        await self._file.write(chunk)

    async def _spill(self, chunks: list[bytes]) -> None:
        name = self._tmp = f"{self._hash}.{secrets.token_hex(8)}.part"
        self._file = await aiofiles.open(name, "wb", opener=self._store._temp_opener)
        self._state = SinkState.STREAMING
        await self._file.writelines(chunks)

    async def _finish(self) -> Path:
        loop = asyncio.get_running_loop()
        store, file = self._store, self._file
        if file is None:
            name = self._tmp = f"{self._hash}.{secrets.token_hex(8)}.part"
            chunks, self._chunks = self._chunks, []
            path = await loop.run_in_executor(None, store._write_small, name, chunks, self._hash)
        else:
            assert self._tmp is not None
            await file.close()
            self._file = None
            path = await loop.run_in_executor(None, store._install, self._tmp, self._hash)
        self._tmp = None
        self._state = SinkState.COMMITTED
        store._forget(self)
        return path

    async def _discard(self) -> None:
        self._chunks = []
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):  # flushing data we are discarding: moot
                await file.close()
        if self._tmp is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._store._unlink_temp, self._tmp)
            self._tmp = None
        self._state = SinkState.ABORTED
        self._store._forget(self)

    # -- plumbing ---------------------------------------------------------------------

    def _check_writable(self) -> None:
        if self._state is SinkState.FAILED:
            raise RuntimeError("body sink failed earlier; call abort()")
        if self._state in _DONE:
            raise RuntimeError(f"body sink is already {self._state.value}")

    async def _settle(self) -> None:
        """Wait (without raising its outcome) for a step a cancelled caller left running."""
        pending = self._pending
        if pending is not None and not pending.done():
            await asyncio.wait((pending,))

    async def _step(self, coro: Coroutine[Any, Any, _T]) -> _T:
        # Shielded: cancelling the caller never interrupts a step halfway, so the
        # sink's fields always describe what exists on disk (see module docstring).
        task = asyncio.ensure_future(self._guarded(coro))
        self._pending = task
        return await asyncio.shield(task)

    async def _guarded(self, coro: Coroutine[Any, Any, _T]) -> _T:
        try:
            return await coro
        except BaseException:
            self._state = SinkState.FAILED
            raise

    async def _run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """A write/commit step; on failure clean up at once, then re-raise."""
        try:
            return await self._step(coro)
        except OSError:
            # The step's error is the one to report; a failing cleanup leaves the
            # sink FAILED with its temp name, so BodyStore.close() retries and raises.
            with contextlib.suppress(OSError):
                await self.abort()
            raise
