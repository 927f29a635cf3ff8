"""JSONL records: one JSON object a line, written and flushed as each request ends.

``ensure_ascii`` escapes control characters and non-ASCII text from servers,
so a line never carries raw terminal escapes or breaks on invalid UTF-8. A
file target is written unbuffered, one ``write(2)`` per record, so a crash
(``kill -9``) never leaves half a line from us; if the OS cuts a line (ENOSPC
mid-record) the file is truncated back to the last complete line before the
error is raised, so the JSONL stays valid (security.md RUN-03).
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path
from typing import Any

from ..outcome import Outcome, encode_json

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC


class JsonlSink:
    """Appends records to a file (or stdout for ``-``)."""

    def __init__(self, target: Path | str, *, append: bool = False) -> None:
        self._fd = -1  # -1: standard output
        self._end = 0  # offset just past the last complete line (regular files)
        self._regular = False
        if target != "-":
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, _FLAGS | (os.O_APPEND if append else os.O_TRUNC), 0o666)
            info = os.fstat(self._fd)
            self._regular = stat.S_ISREG(info.st_mode)
            self._end = info.st_size if self._regular else 0
        self.written = 0

    def write(self, outcome: Outcome) -> None:
        """Append ``outcome``'s record (``to_json``: the same text, without the dict)."""
        self._write_text(outcome.to_json())

    def write_record(self, record: dict[str, Any]) -> None:
        """Append one record (e.g. ``to_record()`` plus keys of the caller's own)."""
        self._write_text(encode_json(record))

    def _write_text(self, line: str) -> None:
        if self._fd == -1:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        else:
            self._write_line((line + "\n").encode("ascii"))
        self.written += 1

    def _write_line(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:  # a regular file takes it in one call; the loop is for the odd target
                view = view[os.write(self._fd, view) :]
        except OSError:
            if self._regular:
                # Freeing blocks needs no space: drop the cut line, keep the file valid.
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._end)
            raise
        self._end += len(data)

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -2  # -2: closed (writes fail with EBADF)
            os.close(fd)
        elif self._fd == -1:
            sys.stdout.flush()
