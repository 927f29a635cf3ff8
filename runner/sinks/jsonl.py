"""JSONL records: one JSON object a line, written and flushed as each request ends.

``ensure_ascii`` escapes control characters and non-ASCII text from servers,
so a line never carries raw terminal escapes or breaks on invalid UTF-8; a
record is written with one ``write`` call so a crash never leaves half a line
from us (the OS may still cut a line at ENOSPC, which we report).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO, Any

from ..outcome import Outcome


class JsonlSink:
    """Appends records to a file (or stdout for ``-``)."""

    def __init__(self, target: Path | str, *, append: bool = False) -> None:
        self._owns = target != "-"
        if self._owns:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = path.open("a" if append else "w", encoding="ascii")
        else:
            self._file = sys.stdout
        self.written = 0

    def write(self, outcome: Outcome) -> None:
        self.write_record(outcome.to_record())

    def write_record(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=True, separators=(",", ":"), default=str)
        self._file.write(line + "\n")
        self._file.flush()
        self.written += 1

    def close(self) -> None:
        if self._owns:
            self._file.close()
        else:
            self._file.flush()
