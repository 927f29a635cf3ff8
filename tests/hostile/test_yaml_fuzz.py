"""Property tests: whatever the job file holds, ``fetchrun --validate`` answers 0 or 2.

tests/test_jobs_fuzz.py fuzzes ``load_job_text``; this goes through the command
line as users (and CI on a pull request's YAML) run it, in-process via
``runner.cli.main``: the file read from disk, bytes that are not UTF-8, the
argument parser, the messages printed. Never a traceback, never another code.
"""

from __future__ import annotations

import io
import os
import re
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_jobs_fuzz import KEYS, TRICKY, nested

from runner.cli import main

# FETCHRUN_FUZZ_EXAMPLES=5000 for a longer hunt.
FUZZ = settings(
    max_examples=int(os.environ.get("FETCHRUN_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# What --validate may print: "file: ok", or one problem a line, compiler style
# ("file:line:col: path: msg" or "file:line:col: msg"), or one message about the
# file as a whole ("file: ..."), with no raw control characters.
PROBLEM = re.compile(r"^(?::\d+:\d+)?: [^\x00-\x1f\x7f]+$")

SECTION_KEYS = [*KEYS, "deny_private", "public_env", "extract", "follow"]
values = st.one_of(nested, st.sampled_from(TRICKY))


def validate(path: Path, data: bytes) -> tuple[int, str]:
    """Write *data* to *path*, run ``fetchrun PATH --validate``; (exit code, stderr)."""
    path.write_bytes(data)
    err, out = io.StringIO(), io.StringIO()
    with redirect_stderr(err), redirect_stdout(out):
        code = main([str(path), "--validate"])
    return code, err.getvalue()


def check(path: Path, data: bytes) -> None:
    code, err = validate(path, data)
    assert code in (0, 2), err
    assert "Traceback" not in err
    if code == 0:
        assert err == f"{path}: ok\n"
        return
    lines = err.splitlines()
    assert lines
    for line in lines:
        assert line.startswith(str(path)), line
        assert PROBLEM.match(line.removeprefix(str(path))), line


@pytest.fixture
def job_path(tmp_path: Path) -> Path:
    return tmp_path / "job.yaml"


@FUZZ
@given(st.text(max_size=400))
def test_RUN_02_fuzz_arbitrary_text(job_path: Path, text: str) -> None:
    check(job_path, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=300))
def test_RUN_02_fuzz_arbitrary_bytes(job_path: Path, data: bytes) -> None:
    check(job_path, data)


@FUZZ
@given(nested)
def test_RUN_02_fuzz_arbitrary_nested_structures(job_path: Path, value: Any) -> None:
    check(job_path, yaml.safe_dump(value, allow_unicode=True).encode())


@FUZZ
@given(
    st.dictionaries(st.sampled_from(SECTION_KEYS), values, max_size=8),
    st.dictionaries(st.sampled_from(SECTION_KEYS), values, max_size=6),
    st.lists(st.one_of(values, st.dictionaries(st.sampled_from(SECTION_KEYS), values)), max_size=4),
)
def test_RUN_02_fuzz_job_shaped_documents(
    job_path: Path, top: dict[str, Any], session: dict[str, Any], requests: list[Any]
) -> None:
    document = {"version": 1, **top, "session": session, "requests": requests}
    check(job_path, yaml.safe_dump(document, allow_unicode=True).encode())


@FUZZ
@given(st.lists(st.sampled_from(["deny_private", "proxy", "verify_tls"]), max_size=3), values)
def test_RUN_02_fuzz_session_switches(job_path: Path, keys: list[str], value: Any) -> None:
    session = dict.fromkeys(keys, value)
    document = {"version": 1, "session": session, "requests": ["http://example.test/"]}
    check(job_path, yaml.safe_dump(document).encode())


def test_RUN_02_fuzz_the_oracle_accepts_a_valid_job_and_reports_an_invalid_one(
    job_path: Path,
) -> None:
    good = b"version: 1\nsession: {deny_private: true}\nrequests: [http://example.test/]\n"
    assert validate(job_path, good) == (0, f"{job_path}: ok\n")
    code, err = validate(job_path, good.replace(b"true", b"sure"))
    assert code == 2
    assert err.startswith(f"{job_path}:2:")
    assert PROBLEM.match(err.strip().removeprefix(str(job_path)))
    assert "session.deny_private" in err
