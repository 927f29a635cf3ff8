"""The state store's on-disk side: the SQLite file, the rows kept across runs, JSONL repair.

A store file is ours when its SQLite header carries our ``application_id``;
``user_version`` is the schema version. Anything else (another program's
database, a newer schema, a file that is not SQLite, a damaged one) is refused
with a :class:`StateError` naming the file, before any table is touched.

The connection runs in WAL mode with ``synchronous=NORMAL``: a commit survives
``kill -9`` of the process (the WAL is in the OS page cache), not a power loss.
``locking_mode=EXCLUSIVE`` makes a second process opening the same file fail
at once instead of interleaving two crawls in one frontier (the OS drops the
lock when a killed process dies). It also means no ``-shm`` file is used.

The JSONL helpers serve ``StateStore.reconcile``: they read with ``pread`` and
append with ``os.write`` on an ``O_APPEND`` descriptor, one line per call, so a
kill leaves at most one partial last line, which the next reconcile cuts.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

APPLICATION_ID = 0x46526E53  # "FRnS": marks a fetchrun state store in the SQLite header
SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CHUNK = 1 << 20  # JSONL read size
_CACHE_KIB = 16 * 1024  # page cache: the url index of a 200k-row frontier stays hot
# Checkpoints (the only fsyncs at synchronous=NORMAL) every 8192 pages, not 1000: an
# 8 ms stall every ~800 complete() calls instead of every ~100.
_CHECKPOINT_PAGES = 8192
_WAL_LIMIT = 64 << 20  # bytes the WAL file is cut back to after a checkpoint

# Why two frontier indexes: take() walks (state, depth, id) for breadth-first order;
# (state, host, depth, id) catches up one host's rows skipped while it was excluded,
# and is the key a later ``--shard K/N`` splits the frontier by.
SCHEMA = (
    "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    """CREATE TABLE frontier(
        id INTEGER PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        host TEXT NOT NULL,
        depth INTEGER NOT NULL,
        kind TEXT NOT NULL,
        via TEXT,
        state INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX frontier_queue ON frontier(state, depth, id)",
    "CREATE INDEX frontier_host ON frontier(state, host, depth, id)",
    "CREATE TABLE outbox(seq INTEGER PRIMARY KEY, record TEXT NOT NULL)",
    """CREATE TABLE validators(
        url TEXT PRIMARY KEY, etag TEXT, last_modified TEXT, body_path TEXT,
        sha256 TEXT, size INTEGER, content_type TEXT)""",
    """CREATE TABLE results(
        url TEXT PRIMARY KEY, verdict TEXT NOT NULL, status INTEGER, reason TEXT,
        final_url TEXT, expires_at REAL NOT NULL, ids TEXT)""",
    """CREATE TABLE occurrences(
        id INTEGER PRIMARY KEY, target TEXT NOT NULL, fragment TEXT,
        source TEXT NOT NULL, line INTEGER, kind TEXT NOT NULL)""",
)
# meta keys: run status ("none" | "running" | "finished"), the job fingerprint, a run
# counter, the highest outbox seq pruned, and the JSONL line offset (see reconcile).
META_DEFAULTS = {"status": "none", "fingerprint": "", "run": "0", "pruned": "0", "offset": "0"}


class StateError(ValueError):
    """The state file cannot be used (not ours, newer, damaged, busy), or a store misuse."""


def open_database(path: Path) -> sqlite3.Connection:
    """A checked connection to the store at ``path``, created (mode 0o600) if missing."""
    if sqlite3.sqlite_version_info < (3, 35):  # UPDATE ... RETURNING
        raise StateError(f"{path}: the state store needs SQLite 3.35+ ({sqlite3.sqlite_version})")
    _prepare_file(path)
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=0.0, cached_statements=64)
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot open the state store: {exc}") from exc
    try:
        _configure(db, path)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise StateError(f"{path}: {_explain(exc)}") from exc
    except BaseException:
        db.close()
        raise
    return db


def _prepare_file(path: Path) -> None:
    """Create the file private (URLs may carry tokens), or check it is an SQLite file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
            return
        except FileExistsError:
            pass
        with open(path, "rb") as file:
            head = file.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StateError(f"{path}: cannot open the state store: {exc}") from exc
    if head and head != _SQLITE_MAGIC:
        raise StateError(f"{path}: not a fetchrun state store (not an SQLite database)")


def _configure(db: sqlite3.Connection, path: Path) -> None:
    db.execute("PRAGMA locking_mode=EXCLUSIVE")
    empty = _check_ours(db, path)  # before the WAL switch: a foreign file is never modified
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
    db.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
    db.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT}")
    # BEGIN IMMEDIATE takes the write lock now, so a second opener fails at once.
    db.execute("BEGIN IMMEDIATE")
    try:
        if empty:
            _create(db)
        else:  # cheap damage check: every table and index must be readable
            problem = db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise StateError(f"{path}: the state store is damaged ({problem})")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _check_ours(db: sqlite3.Connection, path: Path) -> bool:
    """Whether the database is empty (to be created); raise if it is not ours."""
    app = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if app == 0 and version == 0 and not _has_tables(db):
        return True
    if app != APPLICATION_ID:
        raise StateError(f"{path}: not a fetchrun state store (another program's database)")
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{path}: written by a newer fetchrun (state schema {version}, this one reads"
            f" {SCHEMA_VERSION}); use a newer fetchrun or another state file"
        )
    if version < SCHEMA_VERSION:
        raise StateError(f"{path}: unknown state schema version {version}")
    return False


def _create(db: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        db.execute(statement)
    db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", META_DEFAULTS.items())
    db.execute(f"PRAGMA application_id={APPLICATION_ID}")
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def _has_tables(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone() is not None


def _explain(exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return "the state store is in use by another fetchrun process"
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return f"the state store is damaged ({text})"
    return f"cannot use the state store: {text}"


# -- rows kept across runs (validators, results) and this run's occurrences -----------------


@dataclass(frozen=True, slots=True)
class Validators:
    """What a conditional re-fetch needs from the previous run, and the body kept then."""

    etag: str | None = None
    last_modified: str | None = None
    body_path: str | None = None
    sha256: str | None = None
    size: int | None = None
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class CachedResult:
    """A link's check result; reused by a later run until ``expires_at`` (epoch seconds)."""

    url: str
    verdict: str
    status: int | None
    reason: str | None
    final_url: str | None
    expires_at: float
    ids: frozenset[str] | None = None  # fragment targets (ids, names) of the page


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Where a link appears: the page or file ``source``, at ``line``."""

    target: str
    fragment: str | None
    source: str
    line: int | None
    kind: str


_VALIDATOR_COLS = "etag, last_modified, body_path, sha256, size, content_type"
_RESULT_COLS = "url, verdict, status, reason, final_url, expires_at, ids"


def get_validators(db: sqlite3.Connection, url: str) -> Validators | None:
    row = db.execute(f"SELECT {_VALIDATOR_COLS} FROM validators WHERE url = ?", (url,)).fetchone()
    return None if row is None else Validators(*row)


def put_validators(db: sqlite3.Connection, url: str, v: Validators) -> None:
    """Keep ``v`` for ``url``; all fields None forgets them."""
    row = (v.etag, v.last_modified, v.body_path, v.sha256, v.size, v.content_type)
    if all(field is None for field in row):
        db.execute("DELETE FROM validators WHERE url = ?", (url,))
    else:
        db.execute(
            f"INSERT OR REPLACE INTO validators(url, {_VALIDATOR_COLS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (url, *row),
        )


def get_result(db: sqlite3.Connection, url: str, now: float | None) -> CachedResult | None:
    """The stored result, unexpired at ``now`` (None: regardless of expiry)."""
    sql = f"SELECT {_RESULT_COLS} FROM results WHERE url = ?"
    params: tuple[Any, ...] = (url,)
    if now is not None:
        sql, params = sql + " AND expires_at > ?", (url, now)
    row = db.execute(sql, params).fetchone()
    if row is None:
        return None
    url, verdict, status, reason, final_url, expires_at, ids = row
    found = None if ids is None else frozenset(json.loads(ids))
    return CachedResult(url, verdict, status, reason, final_url, expires_at, found)


def put_result(db: sqlite3.Connection, r: CachedResult) -> None:
    ids = None if r.ids is None else json.dumps(sorted(r.ids), ensure_ascii=True)
    db.execute(
        f"INSERT OR REPLACE INTO results({_RESULT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (r.url, r.verdict, r.status, r.reason, r.final_url, r.expires_at, ids),
    )


def put_occurrences(db: sqlite3.Connection, occurrences: Iterable[Occurrence]) -> int:
    rows = [(o.target, o.fragment, o.source, o.line, o.kind) for o in occurrences]
    if rows:
        db.executemany(
            "INSERT INTO occurrences(target, fragment, source, line, kind) VALUES (?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def iter_occurrences(db: sqlite3.Connection) -> Iterator[Occurrence]:
    cursor = db.execute(
        "SELECT target, fragment, source, line, kind FROM occurrences ORDER BY source, line, id"
    )
    with contextlib.closing(cursor):
        while rows := cursor.fetchmany(512):
            for row in rows:
                yield Occurrence(*row)


# -- the JSONL journal -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reconciled:
    """What ``StateStore.reconcile`` found and did."""

    lines: int  # complete lines in the JSONL before appending
    appended: int  # outbox records appended
    truncated: int  # bytes of a partial last line cut off
    extra: int  # lines beyond this run's records (someone else appended): left in place
    missing: int  # records in neither the JSONL nor the outbox (the JSONL was lost)


@contextlib.contextmanager
def open_journal(path: Path) -> Iterator[int]:
    """A read-append descriptor on the JSONL (created, with its parents, if missing)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        raise StateError(f"{path}: cannot open the JSONL journal: {exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise StateError(f"{path}: the JSONL journal must be a regular file to resume")
        yield fd
    finally:
        os.close(fd)


def drop_partial_line(fd: int) -> int:
    """Cut the file after its last newline; return how many bytes were cut."""
    size = end = os.fstat(fd).st_size
    keep = 0
    while end > 0:
        start = max(0, end - _CHUNK)
        cut = os.pread(fd, end - start, start).rfind(b"\n")
        if cut >= 0:
            keep = start + cut + 1
            break
        end = start
    if keep < size:
        os.ftruncate(fd, keep)
    return size - keep


def count_lines(fd: int) -> int:
    """Newlines in the file (all lines are complete after drop_partial_line)."""
    count = offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


def append_records(fd: int, records: Iterable[str]) -> int:
    """Append each record as one line; on a write error cut back to the last whole line."""
    end = os.fstat(fd).st_size
    count = 0
    for record in records:
        line = (record + "\n").encode("ascii")  # records are ASCII-only JSON
        view = memoryview(line)
        try:
            while view:  # a regular file takes it in one call
                view = view[os.write(fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):  # freeing blocks needs no space
                os.ftruncate(fd, end)
            raise
        end += len(line)
        count += 1
    return count
