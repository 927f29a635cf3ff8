"""Handing out frontier rows breadth-first without scanning the table.

Order is (depth, id): depth first, then insertion. A watermark (depth, id)
walks the (state, depth, id) index forward. Every queued row behind it is one of:

* handed out by this process and not completed yet (``taken``: the entries in
  flight, a few thousand at most);
* skipped because its host was excluded at the time: ``behind[host]`` keeps
  the first such key, and that host is served from there, through the
  (state, host, depth, id) index, once a call lets it in again;
* of another shard (never handed out here);
* added later at a lower depth than the watermark (a slow page of an earlier
  level): its host goes into ``behind`` too.

So each call reads only rows it hands out, rows in flight, and rows it skips
once; the memory kept is the taken set plus one key per skipped host.
"""

from __future__ import annotations

import contextlib
import sqlite3
import zlib
from collections.abc import Container, Generator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["page", "link"]
Shard = tuple[int, int]
Key = tuple[int, int]  # (depth, id): the hand-out order
START: Key = (-1, 0)  # a watermark before every row

_COLS = "SELECT id, url, host, depth, kind, via FROM frontier WHERE state = 0"
# Two range queries, not "(depth, id) > (?, ?)": SQLite seeks that row value on depth only.
_SCAN_AT = f"{_COLS} AND depth = ? AND id > ? ORDER BY id"
_SCAN_AFTER = f"{_COLS} AND depth > ? ORDER BY depth, id"
_HOST_AT = f"{_COLS} AND host = ? AND depth = ? AND id >= ? ORDER BY id"
_HOST_AFTER = f"{_COLS} AND host = ? AND depth > ? ORDER BY depth, id"


@dataclass(frozen=True, slots=True)
class Entry:
    """One frontier URL (``host`` is the politeness key, "host:port")."""

    url: str
    host: str
    depth: int
    kind: Kind = "page"
    via: str | None = None


class HandOut:
    """The in-process side of the frontier: what was handed out, where the walk stands."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self.taken: set[str] = set()  # URLs handed out, not completed (still queued in the file)
        self.mark: Key = START
        self.behind: dict[str, Key] = {}
        self.shard: Shard | None = None

    def rewind(self) -> None:
        """Walk again from the start (the taken set keeps repeats out)."""
        self.mark = START
        self.behind.clear()

    def take(self, n: int, excluded: Container[str], shard: Shard | None) -> list[Entry]:
        """Up to ``n`` entries not handed out yet (see the module docstring)."""
        if shard != self.shard:
            if shard is not None and not 0 <= shard[0] < shard[1]:
                raise ValueError(f"shard {shard[0]}/{shard[1]}: want 0 <= K < N")
            self.shard = shard
            self.rewind()
        out: list[Entry] = []
        if n > 0 and self.behind:
            self._catch_up(out, n, excluded)
        if len(out) < n:
            self._scan(out, n, excluded)
        return out

    def added(self, rows: Sequence[tuple[str, str, int, str, str | None]]) -> None:
        """Rows were offered (some new): new ones below the watermark must be looked back for."""
        mark_depth = self.mark[0]
        for _url, host, depth, _kind, _via in rows:
            if depth < mark_depth:  # new ids are the highest: same depth is still ahead
                old = self.behind.get(host)
                if old is None or (depth, 0) < old:
                    self.behind[host] = (depth, 0)

    def _scan(self, out: list[Entry], n: int, excluded: Container[str]) -> None:
        """Hand out rows past the watermark, moving it over every row looked at."""
        depth, last = self.mark
        taken, shard = self.taken, self.shard
        rows = self._rows((_SCAN_AT, (depth, last)), (_SCAN_AFTER, (depth,)))
        with contextlib.closing(rows):
            for rid, url, host, depth, kind, via in rows:
                last = rid
                if url in taken or (shard is not None and not in_shard(host, shard)):
                    continue
                if host in excluded:
                    self.behind.setdefault(host, (depth, rid))
                    continue
                taken.add(url)
                out.append(Entry(url, host, depth, kind, via))
                if len(out) >= n:
                    break
        self.mark = (depth, last)

    def _catch_up(self, out: list[Entry], n: int, excluded: Container[str]) -> None:
        """Serve the hosts let back in, each from where it was skipped (earliest first)."""
        for host, start in sorted(self.behind.items(), key=lambda item: item[1]):
            if len(out) >= n:
                return
            if host in excluded:
                continue
            resume_at = self._catch_up_host(out, n, host, start)
            if resume_at is None:
                del self.behind[host]
            else:
                self.behind[host] = resume_at

    def _catch_up_host(self, out: list[Entry], n: int, host: str, start: Key) -> Key | None:
        """Where to go on for ``host`` next time, or None when it has caught up."""
        if self.shard is not None and not in_shard(host, self.shard):
            return None
        mark, taken = self.mark, self.taken
        rows = self._rows((_HOST_AT, (host, *start)), (_HOST_AFTER, (host, start[0])))
        with contextlib.closing(rows):
            for rid, url, _host, depth, kind, via in rows:
                if (depth, rid) > mark:
                    return None  # the main walk hands it out from here
                if url in taken:
                    continue
                taken.add(url)
                out.append(Entry(url, host, depth, kind, via))
                if len(out) >= n:
                    return (depth, rid + 1)
        return None

    def _rows(self, *queries: tuple[str, tuple[Any, ...]]) -> Generator[Any, None, None]:
        """The rows of each query in turn, stepped lazily (closing resets the statement)."""
        for sql, params in queries:
            cursor = self._db.execute(sql, params)
            try:
                yield from cursor
            finally:
                cursor.close()


def in_shard(host: str, shard: Shard) -> bool:
    """Whether ``host`` belongs to shard K of N (crc32: stable across processes, unlike hash())."""
    return zlib.crc32(host.encode()) % shard[1] == shard[0]
