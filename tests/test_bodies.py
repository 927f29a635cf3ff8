"""Body sink: hashed names (RUN-01), symlink refusal, spill/stream, abort, cancel, ENOSPC."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import tracemalloc
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiofiles.threadpool.binary import AsyncBufferedIOBase

from runner.sinks.bodies import SPILL, TMP_DIR, BodySink, BodyStore, SinkState, request_hash

KiB = 1024
MiB = 1024 * KiB
_T = TypeVar("_T")

# RUN-01: hostile URL paths and names; none may influence where the body lands.
HOSTILE_URLS = [
    "http://h/../../x",
    "http://h/%2e%2e%2fx",
    "http://h/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "http://h/..\\x",
    "http://h//abs",
    "/abs",
    "/etc/passwd",
    "http://h/a\x00b",
    "http://h/CON",
    "http://h/aux.txt",
    "http://h/a:b",
    "http://h/x. ",
    "http://h/" + "n" * 5000,
    "http://h/caf\u00e9",  # NFC
    "http://h/cafe\u0301",  # NFD twin
    "http://h/Readme",
    "http://h/README",  # case twin
    "http://h/download?filename=../../.bashrc",
    "http://h/\udc80",  # lone surrogate: must hash, not raise
]


class CountingExecutor(ThreadPoolExecutor):
    """The loop's default executor, counting every job handed to a thread."""

    def __init__(self) -> None:
        super().__init__(max_workers=4)
        self.calls = 0

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        self.calls += 1
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
async def executor() -> AsyncIterator[CountingExecutor]:
    ex = CountingExecutor()
    asyncio.get_running_loop().set_default_executor(ex)
    yield ex
    ex.shutdown(wait=True)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the root holding a file nothing may touch."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "victim").write_bytes(b"precious")
    return d


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[BodyStore]:
    s = BodyStore(tmp_path / "out")
    yield s
    await s.close()


def temp_files(store: BodyStore) -> list[str]:
    return os.listdir(store.root / TMP_DIR)


def all_files(top: Path) -> set[Path]:
    return {Path(d) / f for d, _, files in os.walk(top) for f in files}


def assert_real_path_under(root: Path, path: Path) -> None:
    assert os.path.realpath(path) == str(path)
    assert os.path.commonpath([str(root), str(path)]) == str(root)


def assert_outside_intact(outside: Path) -> None:
    assert os.listdir(outside) == ["victim"]
    assert (outside / "victim").read_bytes() == b"precious"


async def put(store: BodyStore, url: str, body: bytes, method: str = "GET") -> Path:
    sink = store.open(method, url)
    await sink.write(body)
    return await sink.commit()


# -- naming (RUN-01) -------------------------------------------------------------------


def test_path_is_hash_fanned_out(tmp_path: Path) -> None:
    store = BodyStore(tmp_path / "out")
    h = hashlib.sha256(b"GET http://h/x").hexdigest()
    assert store.path_for("get", "http://h/x") == store.root / h[:2] / h[2:4] / f"{h}.body"
    assert request_hash("GET", "http://h/x") == h


def test_hostile_names_are_safe_unique_and_stable(tmp_path: Path) -> None:
    store = BodyStore(tmp_path / "out")
    root = os.path.realpath(tmp_path / "out")
    paths = [store.path_for(m, u) for m in ("GET", "POST") for u in HOSTILE_URLS]
    assert len(set(paths)) == len(paths)  # NFC/NFD, case twins, methods: all distinct
    for path in paths:
        assert os.path.commonpath([root, path]) == root
        assert len(path.name.encode()) <= 255
        h, suffix = path.name.split(".")
        assert (len(h), suffix) == (64, "body")
        assert set(h) <= set("0123456789abcdef")
        assert (path.parent.parent.name, path.parent.name) == (h[:2], h[2:4])
    again = [store.path_for(m.lower(), u) for m in ("GET", "POST") for u in HOSTILE_URLS]
    assert again == paths


async def test_hostile_bodies_land_under_root_only(
    tmp_path: Path, store: BodyStore, outside: Path
) -> None:
    (tmp_path / ".bashrc").write_bytes(b"rc")
    (store.root / "CON").write_bytes(b"keep")
    before = all_files(tmp_path)
    written = [await put(store, u, b'attachment; filename="../../.bashrc"') for u in HOSTILE_URLS]
    created = all_files(tmp_path) - before
    assert created == set(written)
    for path in created:
        assert_real_path_under(store.root, path)
    assert (tmp_path / ".bashrc").read_bytes() == b"rc"
    assert (store.root / "CON").read_bytes() == b"keep"
    assert_outside_intact(outside)
    assert temp_files(store) == []


# -- symlinks --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, SPILL + 1])
async def test_symlinked_fanout_dir_is_refused(store: BodyStore, outside: Path, size: int) -> None:
    url = "http://h/planted"
    final = store.path_for("GET", url)
    os.symlink(outside, final.parent.parent)
    sink = store.open("GET", url)
    await sink.write(b"x" * size)
    with pytest.raises(OSError, match="not a real directory"):
        await sink.commit()
    assert sink.state is SinkState.ABORTED
    assert_outside_intact(outside)
    assert temp_files(store) == []


async def test_symlinked_leaf_dir_is_refused(store: BodyStore, outside: Path) -> None:
    final = store.path_for("GET", "http://h/leaf")
    final.parent.parent.mkdir()
    os.symlink(outside, final.parent)
    with pytest.raises(OSError, match="not a real directory") as info:
        await put(store, "http://h/leaf", b"body")
    assert info.value.filename == str(final.parent)
    assert_outside_intact(outside)
    assert temp_files(store) == []


async def test_symlink_at_final_path_is_replaced_not_followed(
    store: BodyStore, outside: Path
) -> None:
    final = store.path_for("GET", "http://h/link")
    final.parent.mkdir(parents=True)
    os.symlink(outside / "victim", final)
    assert await put(store, "http://h/link", b"new body") == final
    assert not final.is_symlink()
    assert final.read_bytes() == b"new body"
    assert_outside_intact(outside)


async def test_hard_link_at_final_path_leaves_other_name_intact(
    store: BodyStore, outside: Path
) -> None:
    final = store.path_for("GET", "http://h/hard")
    final.parent.mkdir(parents=True)
    os.link(outside / "victim", final)
    await put(store, "http://h/hard", b"new")
    assert final.read_bytes() == b"new"
    assert_outside_intact(outside)


def test_symlinked_tmp_dir_is_refused(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    os.symlink(outside, root / TMP_DIR)
    with pytest.raises(OSError, match="not a real directory"):
        BodyStore(root)
    assert_outside_intact(outside)


async def test_symlinked_root_is_resolved_once(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "alias")
    store = BodyStore(tmp_path / "alias")
    assert store.root == real
    path = await put(store, "http://h/", b"ok")
    assert path.parent.parent.parent == real
    assert path.read_bytes() == b"ok"


def test_root_created_with_mode(tmp_path: Path) -> None:
    store = BodyStore(tmp_path / "a" / "b")
    assert store.root.is_dir()
    assert (store.root / TMP_DIR).is_dir()
    assert "0 open" in repr(store)


# -- replacing and refusing at the final path ------------------------------------------


async def test_refetch_replaces_own_earlier_body(store: BodyStore) -> None:
    await put(store, "http://h/n", b"monday")
    path = await put(store, "http://h/n", b"tuesday")
    assert path.read_bytes() == b"tuesday"
    assert path.stat().st_mode & 0o777 == 0o644 & ~_umask()


async def test_directory_at_final_path_is_refused(store: BodyStore) -> None:
    final = store.path_for("GET", "http://h/d")
    final.mkdir(parents=True)
    (final / "inner").write_bytes(b"keep")
    with pytest.raises(IsADirectoryError, match="refusing to replace a directory"):
        await put(store, "http://h/d", b"body")
    assert (final / "inner").read_bytes() == b"keep"
    assert temp_files(store) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# -- small bodies: memory, one executor call -------------------------------------------


async def test_small_body_is_one_executor_call(
    store: BodyStore, executor: CountingExecutor
) -> None:
    sink = store.open("GET", "http://h/small")
    for _ in range(4):
        await sink.write(b"a" * (SPILL // 4))  # exactly SPILL bytes: still in memory
        assert temp_files(store) == []
    assert executor.calls == 0
    assert sink.size == SPILL
    assert repr(sink).endswith(f"buffering size={SPILL}>")
    path = await sink.commit()
    assert executor.calls == 1
    assert path.read_bytes() == b"a" * SPILL
    assert sink.state is SinkState.COMMITTED
    assert temp_files(store) == []


async def test_empty_body_commits_empty_file(store: BodyStore) -> None:
    sink = store.open("HEAD", "http://h/")
    await sink.write(b"")
    path = await sink.commit()
    assert path.read_bytes() == b""


async def test_short_os_writes_are_completed(
    store: BodyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data)[:7]))
    path = await put(store, "http://h/short", bytes(range(256)) * 3)
    monkeypatch.undo()
    assert path.read_bytes() == bytes(range(256)) * 3


# -- big bodies: streamed --------------------------------------------------------------


async def test_big_body_streams_through_tmp_with_bounded_memory(
    store: BodyStore, executor: CountingExecutor
) -> None:
    chunk = os.urandom(64 * KiB)
    n = 5 * MiB // len(chunk)
    sink = store.open("GET", "http://h/big")
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            await sink.write(chunk)
            if i == n // 2:
                assert sink.state is SinkState.STREAMING
                (name,) = temp_files(store)
                assert name.startswith(request_hash("GET", "http://h/big"))
                assert not sink.path.exists()
        path = await sink.commit()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 1 * MiB
    assert sink.size == 5 * MiB
    assert path.stat().st_size == 5 * MiB
    with path.open("rb") as f:
        assert f.read(len(chunk)) == chunk
    assert temp_files(store) == []
    # open + first write, one per later chunk, close + rename: never per-byte work
    assert executor.calls <= n + 4


async def test_same_request_twice_concurrently_keeps_one_whole_body(store: BodyStore) -> None:
    sinks = [store.open("GET", "http://h/twice") for _ in range(2)]
    for i, sink in enumerate(sinks):
        await sink.write(bytes([65 + i]) * (SPILL + 1))
    assert len(temp_files(store)) == 2  # distinct random temp names
    await asyncio.gather(*(s.commit() for s in sinks))
    body = sinks[0].path.read_bytes()
    assert body in (b"A" * (SPILL + 1), b"B" * (SPILL + 1))
    assert temp_files(store) == []


# -- abort and cancellation ------------------------------------------------------------


@pytest.mark.parametrize("size", [100, SPILL * 2])
async def test_abort_leaves_nothing_and_is_idempotent(store: BodyStore, size: int) -> None:
    sink = store.open("GET", "http://h/abort")
    await sink.write(b"z" * size)
    await sink.abort()
    await sink.abort()
    assert sink.state is SinkState.ABORTED
    assert temp_files(store) == []
    assert not sink.path.exists()
    with pytest.raises(RuntimeError, match="aborted"):
        await sink.write(b"more")


async def test_abort_after_commit_keeps_body(store: BodyStore) -> None:
    sink = store.open("GET", "http://h/kept")
    await sink.write(b"kept")
    path = await sink.commit()
    await sink.abort()
    assert path.read_bytes() == b"kept"
    with pytest.raises(RuntimeError, match="committed"):
        await sink.commit()


async def test_cancel_mid_stream_then_close_leaves_nothing(tmp_path: Path) -> None:
    store = BodyStore(tmp_path / "out")
    sink = store.open("GET", "http://h/cancel")
    chunk = b"c" * (64 * KiB)

    async def pump() -> None:
        for _ in range(10_000):
            await sink.write(chunk)

    task = asyncio.create_task(pump())
    while sink.size < 2 * SPILL:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "1 open" in repr(store)
    await store.close()
    await store.close()
    assert sink.state is SinkState.ABORTED
    assert temp_files(store) == []
    assert not sink.path.exists()
    with pytest.raises(RuntimeError, match="closed"):
        store.open("GET", "http://h/late")


@pytest.mark.parametrize("size", [100, SPILL * 2])
async def test_cancel_mid_commit_is_all_or_nothing(tmp_path: Path, size: int) -> None:
    store = BodyStore(tmp_path / "out")
    sink = store.open("GET", "http://h/commit")
    await sink.write(b"q" * size)
    task = asyncio.create_task(sink.commit())
    await asyncio.sleep(0)  # the commit step is now in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.close()
    assert temp_files(store) == []
    assert sink.state in (SinkState.COMMITTED, SinkState.ABORTED)
    if sink.path.exists():
        assert sink.path.read_bytes() == b"q" * size


# -- ENOSPC ----------------------------------------------------------------------------


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


async def test_enospc_small_body_keeps_previous_body(
    store: BodyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = await put(store, "http://h/full", b"yesterday")
    real_write = os.write
    root = str(store.root)

    def full_disk(fd: int, data: Any) -> int:
        if os.readlink(f"/proc/self/fd/{fd}").startswith(root):
            raise _enospc()
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    sink = store.open("GET", "http://h/full")
    await sink.write(b"today")
    with pytest.raises(OSError, match="No space") as info:
        await sink.commit()
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert sink.state is SinkState.ABORTED
    assert old.read_bytes() == b"yesterday"
    assert temp_files(store) == []


async def test_enospc_while_streaming(store: BodyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    async def full_disk(self: AsyncBufferedIOBase, data: Any) -> int:
        raise _enospc()

    sink = store.open("GET", "http://h/stream-full")
    await sink.write(b"s" * (SPILL + 1))
    assert len(temp_files(store)) == 1
    monkeypatch.setattr(AsyncBufferedIOBase, "write", full_disk, raising=False)
    with pytest.raises(OSError, match="No space"):
        await sink.write(b"s" * KiB)
    assert sink.state is SinkState.ABORTED
    assert temp_files(store) == []
    assert not sink.path.exists()


async def test_enospc_on_final_flush(store: BodyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    real_close = AsyncBufferedIOBase.close

    async def failing_close(self: AsyncBufferedIOBase) -> None:
        await real_close(self)
        raise _enospc()

    sink = store.open("GET", "http://h/flush-full")
    await sink.write(b"f" * (SPILL + 1))
    monkeypatch.setattr(AsyncBufferedIOBase, "close", failing_close, raising=False)
    with pytest.raises(OSError, match="No space"):
        await sink.commit()
    monkeypatch.undo()
    assert temp_files(store) == []
    assert not sink.path.exists()


def test_repr_shows_state(tmp_path: Path) -> None:
    store = BodyStore(tmp_path / "out")
    sink = store.open("GET", "http://h/")
    assert isinstance(sink, BodySink)
    assert repr(sink) == f"<BodySink {request_hash('GET', 'http://h/')[:12]} buffering size=0>"
