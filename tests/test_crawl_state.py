"""runner.crawl.state: the SQLite frontier / journal store, on real files."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runner.crawl.state import CachedResult, Entry, Occurrence, StateError, StateStore, Validators
from runner.sinks.jsonl import JsonlSink

ROOT = Path(__file__).resolve().parent.parent


def entry(path: str, depth: int = 0, host: str = "a:80") -> Entry:
    return Entry(f"http://{host}/{path}", host, depth)


def urls(entries: list[Entry]) -> list[str]:
    return [e.url.rsplit("/", 1)[1] for e in entries]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "deep" / "dir" / "state.sqlite"


@pytest.fixture
def store(path: Path) -> Iterator[StateStore]:
    with StateStore(path) as s:
        assert s.open_run("job") == "new"
        yield s


def reopen(
    store: StateStore, fingerprint: str = "job", *, fresh: bool = False
) -> tuple[StateStore, str]:
    store.close()
    again = StateStore(store.path)
    return again, again.open_run(fingerprint, fresh=fresh)


def lines(jsonl: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in jsonl.read_text().splitlines()]


# -- runs --------------------------------------------------------------------------------------


def test_file_private_and_parents_created(store: StateStore, path: Path) -> None:
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store.add([entry("p")])  # the WAL file gets the database file's mode
    assert stat.S_IMODE(path.with_name(path.name + "-wal").stat().st_mode) == 0o600
    assert "run=1" in repr(store)
    assert "queued=1" in repr(store)


def test_resume_keeps_the_frontier_until_finished(store: StateStore) -> None:
    assert store.add([entry("p1"), entry("p2")]) == 2
    store.complete(store.take(1)[0].url, {"n": 1})
    store, mode = reopen(store)
    assert mode == "resume"
    assert store.seq == 1
    assert store.counts() == {"queued": 1, "taken": 0, "done": 1, "pages_done": 1, "records": 1}
    assert urls(store.take(5)) == ["p2"]
    store.finish_run()
    with pytest.raises(StateError, match="no run open"):
        store.take(1)
    store, mode = reopen(store)
    assert mode == "new"
    assert store.seq == 0
    assert store.counts()["done"] == 0
    assert store.take(5) == []
    assert store.add([entry("p1")]) == 1  # a new run may queue a URL again
    store.close()


def test_other_fingerprint_or_fresh_starts_a_new_run(store: StateStore) -> None:
    store.add([entry("p1")])
    store, mode = reopen(store, "other job")
    assert mode == "new"
    assert store.pending() == 0
    store.add([entry("p1")])
    store, mode = reopen(store, "other job", fresh=True)
    assert mode == "new"
    assert store.pending() == 0
    assert store.run_id == 3
    store.close()


def test_not_ours_newer_damaged_busy(tmp_path: Path, path: Path) -> None:
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE t(x)")
    db.close()
    with pytest.raises(StateError, match=r"foreign\.db: not a fetchrun state store"):
        StateStore(foreign)
    with sqlite3.connect(foreign) as db:  # untouched: still in its rollback-journal mode
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    db.close()
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(StateError, match=r"notes\.txt: not a fetchrun state store \(not an SQL"):
        StateStore(text)
    StateStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(StateError, match="newer fetchrun") as info:
        StateStore(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_damaged_file(path: Path) -> None:
    with StateStore(path) as s:
        s.open_run("job")
        s.add([entry(f"p{i}" * 20) for i in range(2000)])
    data = bytearray(path.read_bytes())
    rng = random.Random(5)
    data[4096:] = bytes(rng.randrange(256) for _ in range(len(data) - 4096))
    path.write_bytes(bytes(data))
    with pytest.raises(StateError, match="damaged"):
        StateStore(path)


def test_second_opener_is_refused(store: StateStore) -> None:
    with pytest.raises(StateError, match="in use by another"):
        StateStore(store.path)
    store.add([entry("p")])  # the first one goes on
    assert store.pending() == 1


# -- the frontier ------------------------------------------------------------------------------


def test_add_deduplicates(store: StateStore) -> None:
    assert store.add([entry("a"), entry("b"), entry("a")]) == 2
    assert store.add([entry("b", depth=3), entry("c")]) == 1
    url = store.take(1)[0].url
    store.complete(url, None, links=[entry("a"), entry("c"), entry("d", 1)])
    assert store.counts()["queued"] == 3  # b, c, d
    assert store.add([entry("a")]) == 0  # done URLs stay known for the run


def test_take_breadth_first_and_never_twice(store: StateStore) -> None:
    store.add([entry("d1a", 1), entry("d0a", 0), entry("d2", 2), entry("d0b", 0), entry("d1b", 1)])
    assert urls(store.take(2)) == ["d0a", "d0b"]
    assert urls(store.take(2)) == ["d1a", "d1b"]
    store.add([entry("d1c", 1)])
    assert urls(store.take(5)) == ["d1c", "d2"]
    assert store.take(5) == []
    assert store.pending() == 0
    assert store.counts()["taken"] == 6
    store.complete("http://a:80/d0a", None, links=[entry("late", 0)])  # behind the watermark
    assert urls(store.take(5)) == ["late"]
    assert store.take(0) == []


def test_excluded_hosts_are_served_later_from_where_skipped(store: StateStore) -> None:
    store.add([entry(f"{h}{i}", host=h) for i in range(3) for h in ("A", "B")])
    store.add([entry("C0", 1, host="C")])
    assert urls(store.take(2, exclude_hosts={"A"})) == ["B0", "B1"]
    assert urls(store.take(10)) == ["A0", "A1", "A2", "B2", "C0"]
    assert store.take(10) == []


def test_shards_split_by_host(store: StateStore) -> None:
    hosts = [f"h{i}:80" for i in range(12)]
    store.add([entry(f"p{i}", host=h) for h in hosts for i in range(3)])
    seen: list[str] = []
    for k in range(3):
        got = store.take(100, shard=(k, 3))
        assert {zlib.crc32(e.host.encode()) % 3 for e in got} <= {k}
        seen += [e.url for e in got]
    assert sorted(seen) == sorted(f"http://{h}/p{i}" for h in hosts for i in range(3))
    with pytest.raises(ValueError, match="0 <= K < N"):
        store.take(1, shard=(3, 3))


def test_complete_is_one_transaction(store: StateStore) -> None:
    store.add([entry("p1"), entry("p2")])
    [first, _second] = store.take(2)
    before = store.counts()

    def links() -> Iterator[Entry]:
        yield entry("new")
        raise RuntimeError("extractor bug")

    with pytest.raises(RuntimeError):
        store.complete(
            first.url, {"n": 1}, links=links(), occurrences=[Occurrence("t", None, "s", 1, "a")]
        )
    assert store.counts() == before
    assert store.seq == 0
    assert list(store.iter_occurrences()) == []
    assert store.complete(first.url, {"n": 1}, links=[entry("new", 1)]) == 1
    assert urls(store.take(5)) == ["new"]  # p2 is still out (taken), not handed again
    with pytest.raises(StateError, match="completed twice"):
        store.complete(first.url, {"n": 1})
    assert store.complete(first.url, None) == 0  # no record: harmless
    assert store.complete("file:///outside/frontier", {"n": 2}) == 2


def test_batch_groups_adds_and_refuses_complete(store: StateStore) -> None:
    with store.batch():
        store.add([entry("a")])
        store.add_occurrences([Occurrence("t", None, "s", 1, "a")])
        with pytest.raises(StateError, match="inside batch"):
            store.complete("http://a:80/a", {})
    assert store.pending() == 1

    def failing_batch() -> None:
        with store.batch():
            store.add([entry("b")])
            raise KeyError("boom")

    with pytest.raises(KeyError):
        failing_batch()
    assert store.pending() == 1
    assert len(list(store.iter_occurrences())) == 1


# -- kept across runs --------------------------------------------------------------------------


def test_validators_and_results_outlive_runs_with_ttl(store: StateStore) -> None:
    v = Validators('"e1"', "Mon, 01 Jan 2024 00:00:00 GMT", "/b/1", "ab" * 32, 12, "text/html")
    ok = CachedResult("http://x/ok", "ok", 200, "OK", None, 1000.0, frozenset({"top", "a"}))
    bad = CachedResult("http://x/bad", "broken", 404, "Not Found", None, 500.0)
    store.add([entry("p")])
    store.complete("http://a:80/p", {"n": 1}, validators=v, result=ok)
    store.complete("http://x/bad", None, result=bad)
    store.finish_run()
    store, mode = reopen(store)
    assert mode == "new"
    assert store.validators("http://a:80/p") == v
    assert store.cached_result("http://x/ok", now=999.0) == ok
    assert store.cached_result("http://x/bad", now=499.0) == bad
    assert store.cached_result("http://x/bad", now=500.0) is None  # expired
    assert store.result("http://x/bad") == bad  # reports see it regardless
    store.complete("http://a:80/p", None, validators=Validators())  # all None: forgotten
    assert store.validators("http://a:80/p") is None
    store, _ = reopen(store, fresh=True)
    assert store.result("http://x/ok") is None
    store.close()


def test_occurrences_ordered_and_cleared_at_a_new_run(store: StateStore) -> None:
    occ = [
        Occurrence("http://t/1", "f", "b.md", 9, "a"),
        Occurrence("http://t/2", None, "a.md", 3, "img"),
        Occurrence("http://t/3", None, "b.md", 2, "a"),
    ]
    store.complete("file:///a.md", None, occurrences=occ)
    store, mode = reopen(store)
    assert mode == "resume"
    assert list(store.iter_occurrences()) == [occ[1], occ[2], occ[0]]
    store.finish_run()
    store, _ = reopen(store)
    assert list(store.iter_occurrences()) == []
    store.close()


# -- reconcile ---------------------------------------------------------------------------------


def record(i: int) -> dict[str, Any]:
    return {"url": f"http://a:80/p{i}", "i": i, "text": "caf\u00e9 \x1b[0m"}


def run_records(store: StateStore, jsonl: Path, n: int, *, write: int) -> None:
    """Complete n records; only the first ``write`` get their line (the rest: killed)."""
    sink = JsonlSink(jsonl, append=True)
    for i in range(store.seq + 1, store.seq + n + 1):
        seq = store.complete(f"http://a:80/p{i}", record(i))
        if i <= write:
            sink.write_record(record(i))
            store.written(seq)
    sink.close()


def sink_text(records: list[dict[str, Any]], target: Path) -> str:
    sink = JsonlSink(target)
    for r in records:
        sink.write_record(r)
    sink.close()
    return target.read_text()


def test_reconcile_appends_what_a_kill_lost(store: StateStore, tmp_path: Path) -> None:
    jsonl = tmp_path / "out" / "records.jsonl"
    run_records(store, jsonl, 5, write=3)  # records 4 and 5 committed, lines never written
    store, mode = reopen(store)
    assert mode == "resume"
    assert store.reconcile(jsonl) == 2
    assert store.reconciled is not None
    assert store.reconciled.lines == 3
    # Byte for byte what the JSONL sink writes (ASCII escapes, compact separators).
    assert jsonl.read_text() == sink_text([record(i) for i in range(1, 6)], tmp_path / "x")
    assert store.reconcile(jsonl) == 0  # idempotent
    store.close()


def test_reconcile_cuts_a_partial_line(store: StateStore, tmp_path: Path) -> None:
    jsonl = tmp_path / "records.jsonl"
    run_records(store, jsonl, 3, write=2)
    with jsonl.open("ab") as f:  # killed in the middle of line 3
        f.write(b'{"url":"http://a:80/p3","i"')
    store, _ = reopen(store)
    assert store.reconcile(jsonl) == 1
    assert store.reconciled is not None
    assert store.reconciled.truncated == 27
    assert [r["i"] for r in lines(jsonl)] == [1, 2, 3]
    store.close()


def test_reconcile_rewrites_a_missing_jsonl_from_the_outbox(
    store: StateStore, tmp_path: Path
) -> None:
    jsonl = tmp_path / "records.jsonl"
    run_records(store, jsonl, 3, write=3)
    jsonl.unlink()
    store, _ = reopen(store)
    assert store.reconcile(jsonl) == 3
    assert [r["i"] for r in lines(jsonl)] == [1, 2, 3]
    # Past 256 written records the outbox is pruned: a lost JSONL loses those for good.
    run_records(store, jsonl, 297, write=300)
    jsonl.unlink()
    store, _ = reopen(store)
    assert store.reconcile(jsonl) == 300 - 259
    assert store.reconciled is not None
    assert store.reconciled.missing == 259
    run_records(store, jsonl, 2, write=301)  # 301 written, 302 lost in a kill
    store, _ = reopen(store)
    assert store.reconcile(jsonl) == 1
    assert [r["i"] for r in lines(jsonl)] == list(range(260, 303))
    store.close()


def test_reconcile_leaves_lines_someone_appended(store: StateStore, tmp_path: Path) -> None:
    jsonl = tmp_path / "records.jsonl"
    run_records(store, jsonl, 2, write=2)
    with jsonl.open("a") as f:
        f.write('{"foreign":1}\n{"foreign":2}\n')
    store, _ = reopen(store)
    assert store.reconcile(jsonl) == 0
    assert store.reconciled is not None
    assert store.reconciled.extra == 2
    run_records(store, jsonl, 2, write=3)  # record 4 committed, line lost
    store, _ = reopen(store)
    assert store.reconcile(jsonl) == 1
    assert [r.get("i") for r in lines(jsonl)] == [1, 2, None, None, 3, 4]
    store.close()


# -- kill -9 -----------------------------------------------------------------------------------

CHILD = r"""
import json, os, signal, sys
from pathlib import Path
from runner.crawl.state import Entry, StateStore

state, jsonl, kill_at, phase = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
N = 2000
encode = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode
def host(i): return f"h{i % 7}:80"
def url(i): return f"http://{host(i)}/p{i}"
def die(point):
    if phase == point and ops == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

store = StateStore(Path(state))
if store.open_run("kill-test") == "resume":
    store.reconcile(Path(jsonl))
    r = store.reconciled
    print(json.dumps({"appended": r.appended, "truncated": r.truncated}), flush=True)
else:
    print("{}", flush=True)
store.add(Entry(url(i), host(i), 0) for i in range(10))  # idempotent: safe at every start
fd = os.open(jsonl, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
ops = 0
while batch := store.take(16):
    for e in batch:
        i = int(e.url.rsplit("p", 1)[1])
        kids = [Entry(url(j), host(j), e.depth + 1, via=e.url)
                for j in range(10 * i + 1, min(10 * i + 11, N))]
        kids.append(Entry(url(0), host(0), e.depth + 1))  # a link back: de-duplicated
        ops += 1
        die("before")
        record = {"url": e.url, "depth": e.depth, "pad": "x" * (i % 50)}
        seq = store.complete(e.url, record, links=kids)
        die("committed")
        line = (encode(record) + "\n").encode()
        if phase == "half" and ops == kill_at:
            os.write(fd, line[: len(line) // 2])
        die("half")
        os.write(fd, line)
        die("written")
        store.written(seq)
counts = store.counts()
store.finish_run()
store.close()
print(json.dumps(counts))
"""


def child(tmp_path: Path, kill_at: int, phase: str) -> subprocess.Popen[str]:
    args = [
        sys.executable,
        "-c",
        CHILD,
        str(tmp_path / "state.sqlite"),
        str(tmp_path / "records.jsonl"),
        str(kill_at),
        phase,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_kill_9_at_random_points_loses_and_repeats_nothing(tmp_path: Path) -> None:
    rng = random.Random(20240905)
    jsonl = tmp_path / "records.jsonl"
    phases = ["before", "committed", "half", "written", rng.choice(["committed", "half"])]
    healed: list[dict[str, int]] = []  # what each start's reconcile() did
    for phase in phases:
        proc = child(tmp_path, rng.randint(1, 300), phase)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        healed.append(json.loads(out))
    # And once from outside, at whatever point the loop has reached.
    target = len(jsonl.read_bytes().splitlines()) + rng.randint(20, 200)
    proc = child(tmp_path, 0, "none")
    deadline = time.monotonic() + 20
    while len(jsonl.read_bytes().splitlines()) < target:
        assert time.monotonic() < deadline
        assert proc.poll() is None
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    out, _err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    healed.append(json.loads(out.splitlines()[0]))
    proc = child(tmp_path, 0, "none")  # the last run finishes the crawl
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    first, last = out.splitlines()
    healed.append(json.loads(first))
    # A kill after the commit left one record for reconcile; mid-line, a cut line too.
    assert healed[1:5] == [
        {"appended": 0, "truncated": 0},
        {"appended": 1, "truncated": 0},
        {"appended": 1, "truncated": healed[3]["truncated"]},
        {"appended": 0, "truncated": 0},
    ]
    assert healed[3]["truncated"] > 0
    counts = json.loads(last)
    assert counts["done"] == 2000
    assert counts["queued"] == 0
    assert counts["records"] == 2000
    got = [r["url"] for r in lines(jsonl)]
    assert len(got) == 2000
    assert sorted(got) == sorted(f"http://h{i % 7}:80/p{i}" for i in range(2000))
