"""The crawl / link-check state store: frontier, record outbox, validators, results.

One SQLite file per output directory (``state_files``: the file itself).

Exactly-once JSONL, the protocol the caller follows::

    seq = store.complete(url, record, links=...)  # ONE transaction: done mark, links, outbox row
    jsonl.write_record(record)                    # then the line
    store.written(seq)                            # the line is on disk: its outbox row may go

A kill between the commit and the line leaves the record in the outbox; at the
resume, :meth:`StateStore.reconcile` appends what the JSONL lacks. The JSONL
holds this run's records only (a new run starts it empty): line N is record N,
shifted by a stored offset if lines were ever lost or added by someone else.

Hand-out (:meth:`StateStore.take`) is breadth-first, by (depth, insertion id),
and never scans the table (see ``state_frontier``).

Transactions: complete() is one. add() and add_occurrences() commit on their
own, or join an enclosing :meth:`StateStore.batch`; complete() is refused in a
batch (its record must be committed before the caller writes the line).
One connection, used from one thread (the event loop's): every call is short.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Container, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from . import state_files as files
from .state_files import CachedResult, Occurrence, Reconciled, StateError, Validators
from .state_frontier import Entry, HandOut, Shard

__all__ = [
    "CachedResult",
    "Entry",
    "Occurrence",
    "Reconciled",
    "StateError",
    "StateStore",
    "Validators",
]

# The JSONL sink's encoding (runner/sinks/jsonl.py): ASCII-only, compact.
_ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), default=str).encode
_PRUNE_EVERY = 256  # written records between outbox prunes: one DELETE per 256 records
_INSERT = "INSERT OR IGNORE INTO frontier(url, host, depth, kind, via) VALUES (?, ?, ?, ?, ?)"
_MARK_DONE = "UPDATE frontier SET state = 1 WHERE url = ? AND state = 0 RETURNING kind"


class StateStore:
    """The frontier and journal of one crawl or link check, in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        """Open (or create, mode 0o600, parents too) the store; refuse a file not ours."""
        self.path = Path(path)
        self._db = files.open_database(self.path)
        self._closed = False
        self._running = False
        self.run_id = 0
        self._seq = self._pruned = self._written = self._offset = 0
        self._queued = self._done = self._pages_done = 0
        self._out = HandOut(self._db)
        self._in_batch = False
        self.reconciled: Reconciled | None = None  # what the last reconcile() found

    def __repr__(self) -> str:
        return (
            f"<StateStore {str(self.path)!r} run={self.run_id} running={self._running}"
            f" seq={self._seq} queued={self._queued} taken={len(self._out.taken)}"
            f" done={self._done}>"
        )

    # -- runs --------------------------------------------------------------------------

    def open_run(self, fingerprint: str, *, fresh: bool = False) -> Literal["new", "resume"]:
        """Resume the unfinished run of the same job, or start a new one.

        A new run clears the frontier, the outbox and the occurrences and starts
        seq at 0; validators and results stay for conditional requests and the
        link cache, unless ``fresh``. An unfinished run of another fingerprint
        is dropped (the state belonged to another job).
        """
        meta = self._meta()
        resume = not fresh and meta["status"] == "running" and meta["fingerprint"] == fingerprint
        if not resume:
            tables = ["frontier", "outbox", "occurrences"]
            if fresh:
                tables += ["validators", "results"]
            with self._transaction() as db:
                for table in tables:
                    db.execute(f"DELETE FROM {table}")
                run = str(int(meta["run"]) + 1)
                self._set_meta(
                    status="running", fingerprint=fingerprint, run=run, pruned="0", offset="0"
                )
        self._running = True
        self._out.taken.clear()
        self._written = 0
        self._load()
        return "resume" if resume else "new"

    def finish_run(self) -> None:
        """Mark the run finished: the next open_run() starts a new one."""
        self._require_run()
        with self._transaction():
            if self._written > self._pruned:
                self._prune()
            self._set_meta(status="finished")
        self._running = False

    def reconcile(self, jsonl: Path | str) -> int:
        """Make the JSONL hold every committed record once; return how many lines were appended.

        Truncates a partial last line, counts the complete lines, appends the
        outbox records beyond them in seq order, then prunes the outbox. Lines
        beyond this run's records (someone appended) are left and reported in
        :attr:`reconciled`, as are records lost with a deleted JSONL.
        """
        self._require_run()
        self._refuse_in_batch("reconcile()")
        with files.open_journal(Path(jsonl)) as fd:
            truncated = files.drop_partial_line(fd)
            lines = files.count_lines(fd)
            have = lines - self._offset  # this run's records in the file
            extra, missing = max(0, have - self._seq), max(0, self._pruned - have)
            start = min(max(have, self._pruned), self._seq)  # records after start are appended
            # The offset is stored before appending: a kill mid-way then resumes correctly.
            with self._transaction():
                self._set_meta(offset=str(lines - start))
            self._offset = lines - start
            cursor = self._db.execute(
                "SELECT record FROM outbox WHERE seq > ? ORDER BY seq", (start,)
            )
            with contextlib.closing(cursor):
                appended = files.append_records(fd, (row[0] for row in cursor))
        self._written = self._seq
        with self._transaction():
            self._prune()
        self.reconciled = Reconciled(lines, appended, truncated, extra, missing)
        return appended

    # -- the frontier ------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """Records committed so far in this run (the last record's seq)."""
        return self._seq

    def add(self, entries: Iterable[Entry]) -> int:
        """Queue the entries whose URL this run has not seen yet; return how many were new."""
        self._require_run()
        with self._transaction():
            return self._insert(entries)

    def take(
        self,
        n: int,
        *,
        exclude_hosts: Container[str] | None = None,
        shard: Shard | None = None,
    ) -> list[Entry]:
        """Hand out up to ``n`` queued entries, breadth-first, none twice in this process.

        Entries stay queued in the file until complete(), so a kill re-queues
        them. Hosts in ``exclude_hosts`` are skipped now and served first (from
        where they were skipped) once a later call lets them in. ``shard=(K, N)``
        hands out only hosts with ``crc32(host) % N == K``.
        """
        self._require_run()
        return self._out.take(n, exclude_hosts if exclude_hosts is not None else (), shard)

    def complete(
        self,
        url: str,
        record: dict[str, Any] | None,
        *,
        links: Iterable[Entry] = (),
        validators: Validators | None = None,
        occurrences: Iterable[Occurrence] = (),
        result: CachedResult | None = None,
    ) -> int:
        """Commit one finished URL in ONE transaction; return its record's seq (0: no record).

        Marks ``url`` done (a URL outside the frontier is allowed), queues the new
        ``links``, puts ``record`` in the outbox, keeps ``validators`` (all None:
        forgotten), the ``occurrences`` and ``result``. The caller writes the JSONL
        line after this returns. Completing a done URL again with a record raises.
        """
        self._require_run()
        self._refuse_in_batch("complete()")
        line = None if record is None else _ENCODE(record)  # encode before the transaction
        with self._transaction() as db:
            done = db.execute(_MARK_DONE, (url,)).fetchall()
            if done:
                self._queued -= 1
                self._done += 1
                self._pages_done += done[0][0] == "page"
            elif line is not None and self._is_done(url):
                raise StateError(f"{url}: completed twice (its record would be written twice)")
            self._insert(links)
            if line is not None:
                db.execute("INSERT INTO outbox(seq, record) VALUES (?, ?)", (self._seq + 1, line))
            if validators is not None:
                files.put_validators(db, url, validators)
            files.put_occurrences(db, occurrences)
            if result is not None:
                files.put_result(db, result)
            if self._written - self._pruned >= _PRUNE_EVERY:
                self._prune()
        self._out.taken.discard(url)
        if line is None:
            return 0
        self._seq += 1
        return self._seq

    def written(self, seq: int) -> None:
        """The JSONL line of ``seq`` is on disk: outbox rows up to it may be pruned (batched)."""
        if seq > self._written:
            self._written = min(seq, self._seq)

    def add_occurrences(self, occurrences: Iterable[Occurrence]) -> int:
        """Record where links appear (outside complete()); return how many."""
        self._require_run()
        with self._transaction():
            return files.put_occurrences(self._db, occurrences)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for several add() / add_occurrences() calls (not complete())."""
        if self._in_batch:
            yield
            return
        with self._transaction():
            self._in_batch = True
            try:
                yield
            finally:
                self._in_batch = False

    def pending(self) -> int:
        """Entries queued and not handed out by this process (all shards)."""
        return self._queued - len(self._out.taken)

    def counts(self) -> dict[str, int]:
        """queued (taken included), taken, done, pages_done (done "page" rows), records."""
        return {
            "queued": self._queued,
            "taken": len(self._out.taken),
            "done": self._done,
            "pages_done": self._pages_done,
            "records": self._seq,
        }

    # -- kept across runs ----------------------------------------------------------------

    def validators(self, url: str) -> Validators | None:
        """The validators kept for ``url`` (by this run or an earlier one)."""
        return files.get_validators(self._db, url)

    def cached_result(self, url: str, now: float) -> CachedResult | None:
        """The stored result of ``url`` if it has not expired at ``now`` (epoch seconds)."""
        return files.get_result(self._db, url, now)

    def result(self, url: str) -> CachedResult | None:
        """The stored result of ``url`` regardless of expiry (for reports)."""
        return files.get_result(self._db, url, None)

    def iter_occurrences(self) -> Iterator[Occurrence]:
        """This run's occurrences, by source then line."""
        return files.iter_occurrences(self._db)

    def close(self) -> None:
        """Close the file (idempotent). Unpruned outbox rows stay for a reconcile()."""
        if not self._closed:
            self._closed = True
            self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        if self._in_batch:  # the batch commits or rolls back
            yield db
            return
        try:
            db.execute("BEGIN")
            yield db
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback()
            raise StateError(f"{self.path}: {exc}") from exc
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._load()  # counters and watermark follow the file again

    def _load(self) -> None:
        db = self._db
        meta = self._meta()
        self.run_id = int(meta["run"])
        self._pruned, self._offset = int(meta["pruned"]), int(meta["offset"])
        top = db.execute("SELECT max(seq) FROM outbox").fetchone()[0]
        self._seq = max(self._pruned, top or 0)
        self._written = max(self._pruned, min(self._written, self._seq))
        self._queued = self._done = self._pages_done = 0
        for state, kind, count in db.execute(
            "SELECT state, kind, count(*) FROM frontier GROUP BY state, kind"
        ):
            if state == 0:
                self._queued += count
            else:
                self._done += count
                self._pages_done += count if kind == "page" else 0
        self._out.rewind()

    def _meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta"))

    def _set_meta(self, **values: str) -> None:
        self._db.executemany(
            "UPDATE meta SET value = ? WHERE key = ?", [(v, k) for k, v in values.items()]
        )

    def _require_run(self) -> None:
        if not self._running:
            raise StateError(f"{self.path}: no run open (open_run() first)")

    def _refuse_in_batch(self, what: str) -> None:
        if self._in_batch:
            raise StateError(f"{what} inside batch(): a record must be committed before its line")

    def _insert(self, entries: Iterable[Entry]) -> int:
        rows = [(e.url, e.host, e.depth, e.kind, e.via) for e in entries]
        if not rows:
            return 0
        added: int = self._db.executemany(_INSERT, rows).rowcount
        if added:  # all duplicates: nothing new for the hand-out to look back for
            self._queued += added
            self._out.added(rows)
        return added

    def _is_done(self, url: str) -> bool:
        row = self._db.execute("SELECT 1 FROM frontier WHERE url = ? AND state = 1", (url,))
        return row.fetchone() is not None

    def _prune(self) -> None:
        upto = self._written
        self._db.execute("DELETE FROM outbox WHERE seq <= ?", (upto,))
        self._set_meta(pruned=str(upto))
        self._pruned = upto
