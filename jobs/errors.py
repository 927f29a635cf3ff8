"""Job-file errors: every mistake is a ``Problem`` with a position; a bad file
raises one ``JobError`` carrying all of them.

Rendering follows the compiler convention that editors and CI annotators
parse (``file:line:col: path: message``), so a problem in a job file from a
pull request points at the exact spot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# A hostile file can hold thousands of mistakes; past this many the rest are
# summarised in one line instead of flooding a CI log.
MAX_PROBLEMS = 100


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a job file.

    ``line`` and ``col`` are 1-based; 0 means "no position" (e.g. the file
    could not be read at all). ``path`` names the setting, as in
    ``requests[3].timeout``; it is empty for problems that belong to no key.
    Messages never contain the value of an environment variable.
    """

    file: str
    line: int
    col: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        path = self.path
        if len(path) > 100:  # e.g. the path to a node 50 levels deep
            path = f"{path[:60]}...{path[-30:]}"
        if path:
            return f"{where}: {path}: {self.message}"
        return f"{where}: {self.message}"


class JobError(Exception):
    """A job file (or job built in code) is invalid.

    ``problems`` lists every mistake found, sorted by position; ``str()``
    renders one per line.
    """

    problems: tuple[Problem, ...]

    def __init__(self, problems: Iterable[Problem]) -> None:
        ordered = sorted(problems, key=lambda p: (p.file, p.line, p.col))
        if not ordered:
            raise ValueError("JobError needs at least one problem")
        self.problems = _capped(ordered)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


def _capped(problems: list[Problem]) -> tuple[Problem, ...]:
    if len(problems) <= MAX_PROBLEMS:
        return tuple(problems)
    hidden = len(problems) - MAX_PROBLEMS
    last = problems[MAX_PROBLEMS - 1]
    summary = Problem(last.file, 0, 0, "", f"... and {hidden} more problems")
    return (*problems[:MAX_PROBLEMS], summary)
