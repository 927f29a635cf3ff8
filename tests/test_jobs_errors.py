"""jobs.errors: how problems render and how JobError collects them."""

from __future__ import annotations

import pytest

from jobs import JobError, Problem
from jobs.errors import MAX_PROBLEMS


def test_problem_renders_like_a_compiler_message() -> None:
    problem = Problem("jobs.yaml", 12, 5, "requests[3].timeout", "must be a number > 0")
    assert str(problem) == "jobs.yaml:12:5: requests[3].timeout: must be a number > 0"


def test_problem_without_path_or_position() -> None:
    assert str(Problem("jobs.yaml", 1, 1, "", "bad YAML")) == "jobs.yaml:1:1: bad YAML"
    assert str(Problem("jobs.yaml", 0, 0, "", "cannot read")) == "jobs.yaml: cannot read"


def test_very_long_paths_are_shortened() -> None:
    path = "requests" + "[0]" * 60
    text = str(Problem("j.yaml", 2, 3, path, "too deep"))
    assert text.startswith("j.yaml:2:3: requests[0]")
    assert "..." in text
    assert len(text) < 140


def test_job_error_sorts_by_position_and_renders_one_per_line() -> None:
    error = JobError(
        [
            Problem("j.yaml", 9, 1, "b", "second"),
            Problem("j.yaml", 2, 7, "a", "first"),
        ]
    )
    assert [p.message for p in error.problems] == ["first", "second"]
    assert str(error) == "j.yaml:2:7: a: first\nj.yaml:9:1: b: second"


def test_job_error_caps_the_number_of_problems() -> None:
    error = JobError(Problem("j.yaml", line, 1, "x", "bad") for line in range(1, 501))
    assert len(error.problems) == MAX_PROBLEMS + 1
    assert str(error).splitlines()[-1] == f"j.yaml: ... and {500 - MAX_PROBLEMS} more problems"


def test_job_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one"):
        JobError([])
