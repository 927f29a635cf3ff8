"""Hostile YAML (security.md K3-K5, RUN-02): every case is a prompt, bounded,
positioned config error; nothing is constructed from tags, nothing expands."""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from jobs import JobError, Problem, load_job, load_job_text, yamlsafe

VALID_TAIL = "requests: [https://example.com/]\n"


def problems(text: str) -> list[str]:
    with pytest.raises(JobError) as info:
        load_job_text(text, filename="j.yaml", env={})
    return str(info.value).splitlines()


def bounded(load: Callable[[], object], seconds: float = 1.0, mebibytes: int = 100) -> None:
    """RUN-02: a config error within 1 s using < 100 MiB.

    Time and memory are measured in separate runs: tracemalloc slows
    allocation-heavy code several times over.
    """
    start = time.perf_counter()
    with pytest.raises(JobError):
        load()
    assert time.perf_counter() - start < seconds
    tracemalloc.start()
    try:
        with pytest.raises(JobError):
            load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < mebibytes * 1024 * 1024


def hostile(text: str) -> list[str]:
    """The problems of *text*, after checking the load is bounded."""
    bounded(lambda: load_job_text(text, filename="j.yaml", env={}))
    return problems(text)


def test_python_tag_is_refused_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'version: 1\nrequests: !!python/object/apply:os.system ["touch {marker}"]\n'
    lines = hostile(text)
    assert lines == [
        "j.yaml:2:11: requests: YAML tags are not allowed in job files "
        "(!!python/object/apply:os.system); quote the value if it is a string"
    ]
    assert not marker.exists()


def test_any_explicit_tag_is_refused() -> None:
    lines = problems("version: 1\nlimits: {concurrency: !!int '5'}\n" + VALID_TAIL)
    assert lines == [
        "j.yaml:2:23: limits.concurrency: YAML tags are not allowed in job files (!!int); "
        "quote the value if it is a string"
    ]


def test_billion_laughs_is_refused_quickly() -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    text = "version: 1\n" + "\n".join(levels) + "\nrequests: [*i]\n"
    lines = hostile(text)
    anchors = [line for line in lines if "anchors and aliases" in line]
    assert len(anchors) == 9
    assert anchors[0].startswith("j.yaml:2:4: a: YAML anchors and aliases")


def test_self_referencing_alias_is_refused() -> None:
    lines = hostile("version: 1\nsession: {headers: &a [*a]}\n" + VALID_TAIL)
    assert lines == [
        "j.yaml:2:20: session.headers: YAML anchors and aliases (&name, *name) are not "
        "allowed in job files; use 'defaults:' for shared settings"
    ]


def test_alias_without_anchor_is_refused() -> None:
    assert problems("version: 1\nrequests: [*nowhere]\n") == [
        "j.yaml:2:12: requests[0]: YAML aliases (*name) are not allowed in job files"
    ]


def test_ten_mebibyte_file_is_refused_before_parsing(tmp_path: Path) -> None:
    job = tmp_path / "big.yaml"
    job.write_bytes(b"version: 1\n" + b"#" * (10 * 1024 * 1024) + b"\n")
    bounded(lambda: load_job(job))
    with pytest.raises(JobError) as info:
        load_job(job)
    assert str(info.value) == (
        f"{job}: file is 10,485,772 bytes; job files are limited to 2,097,152 "
        "(put long URL lists in a urls_file)"
    )


def test_big_text_is_refused() -> None:
    lines = problems("version: 1\n" + "#" * (3 * 1024 * 1024))
    assert lines == [
        "j.yaml: file is 3,145,739 bytes; job files are limited to 2,097,152 "
        "(put long URL lists in a urls_file)"
    ]


@pytest.mark.parametrize(
    "nested",
    [
        "[" * 10_000 + "]" * 10_000,
        "{a: " * 10_000 + "1" + "}" * 10_000,
    ],
    ids=["flow-sequences", "flow-mappings"],
)
def test_ten_thousand_deep_nesting_is_refused(nested: str) -> None:
    lines = hostile(f"version: 1\nrequests: {nested}\n")
    assert len(lines) == 1
    assert lines[0].startswith("j.yaml:2:")
    assert lines[0].endswith("nesting is deeper than 50 levels")


def test_deep_block_nesting_is_refused() -> None:
    text = "version: 1\nrequests:\n" + "".join(" " * i + f"k{i}:\n" for i in range(60))
    lines = problems(text)
    assert len(lines) == 1
    assert lines[0].endswith("nesting is deeper than 50 levels")


def test_node_count_is_capped() -> None:
    lines = hostile("version: 1\nrequests: [" + "0," * 60_000 + "]\n")
    # Nodes 1-5 are the root mapping, two keys, "1" and the list; item k is node 6 + k.
    assert lines == [f"j.yaml:2:{12 + 2 * 49_995}: requests[49995]: more than 50000 YAML nodes"]


def test_duplicate_keys_are_refused() -> None:
    assert problems("version: 1\n" + VALID_TAIL + "requests: [https://evil.example/]\n") == [
        "j.yaml:3:1: requests: duplicate key 'requests' (first defined on line 2)"
    ]


def test_duplicate_keys_count_quoting_as_the_same_key() -> None:
    text = "version: 1\nlimits: {concurrency: 1, 'concurrency': 2}\n" + VALID_TAIL
    assert problems(text) == [
        "j.yaml:2:26: limits.concurrency: duplicate key 'concurrency' (first defined on line 2)"
    ]


def test_non_string_keys_are_refused() -> None:
    text = "version: 1\nsession: {headers: {[a, b]: c}}\n" + VALID_TAIL
    assert problems(text) == ["j.yaml:2:21: session.headers: mapping keys must be strings"]


def test_only_one_document() -> None:
    assert problems("version: 1\n" + VALID_TAIL + "---\nversion: 1\n") == [
        "j.yaml:3:1: a job file holds exactly one YAML document"
    ]


def test_syntax_error_has_a_position() -> None:
    assert problems("version: 1\nrequests: [https://example.com/\n") == [
        "j.yaml:3:1: YAML syntax error: did not find expected ',' or ']' while parsing a flow "
        "sequence"
    ]


def test_control_character_is_refused() -> None:
    assert problems("version: 1\x07\n") == ["j.yaml:1:11: character not allowed in YAML ('\\x07')"]


def test_lone_surrogate_text_is_refused() -> None:
    assert problems("version: 1\n# \ud800\n") == ["j.yaml:2:3: text is not valid Unicode"]


def test_invalid_utf8_file_is_refused(tmp_path: Path) -> None:
    job = tmp_path / "j.yaml"
    job.write_bytes(b"version: 1\nrequests: [https://example.com/\xff]\n")
    with pytest.raises(JobError) as info:
        load_job(job)
    assert str(info.value) == f"{job}:2:32: file is not valid UTF-8"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(JobError) as info:
        load_job(tmp_path / "nope.yaml")
    assert (
        str(info.value)
        == f"{tmp_path / 'nope.yaml'}: cannot read job file: No such file or directory"
    )
    with pytest.raises(JobError) as info:
        load_job(tmp_path)
    assert str(info.value) == f"{tmp_path}: not a regular file"


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "job.yaml"
    os.mkfifo(fifo)
    with pytest.raises(JobError) as info:
        load_job(fifo)
    assert str(info.value) == f"{fifo}: not a regular file"


def test_empty_and_non_mapping_documents() -> None:
    expected = ["j.yaml:1:1: a job file must be a mapping with 'version:' and 'requests:'"]
    assert problems("") == expected
    assert problems("# only a comment\n") == expected
    assert problems("- https://example.com/\n") == expected


def test_run02_mistakes_together_are_all_reported_at_once() -> None:
    text = (
        "version: 1\n"
        "timeout: {total: 1:30}\n"
        "defaults: {follow_redirects: no}\n"
        "output: {jsonl: ../../x}\n"
        'session: {headers: {X-Evil: "a\\r\\nInjected: 1"}}\n'
        "requests: [https://example.com/]\n"
    )
    lines = hostile(text)
    assert lines == [
        "j.yaml:2:18: timeout.total: must be a number > 0: '1:30' is base 60 in YAML 1.1 "
        "(= 90); write 90",
        "j.yaml:3:30: defaults.follow_redirects: must be true or false; 'no' is a YAML 1.1 "
        "boolean, write false",
        "j.yaml:4:17: output.jsonl: path must not contain '..' (it would leave the job directory)",
        "j.yaml:5:29: session.headers.X-Evil: header value contains a control character ('\\r')",
    ]


PURE_PYTHON_CASES = [
    (
        'version: 1\nrequests: !!python/object/apply:os.system ["id"]\n',
        "j.yaml:2:11: requests: YAML tags are not allowed in job files "
        "(!!python/object/apply:os.system); quote the value if it is a string",
    ),
    (
        "version: 1\nsession: {headers: &a [*a]}\n" + VALID_TAIL,
        "j.yaml:2:20: session.headers: YAML anchors and aliases (&name, *name) are not allowed in "
        "job files; use 'defaults:' for shared settings",
    ),
    (
        "version: 1\nrequests: " + "[" * 10_000 + "]" * 10_000 + "\n",
        str(Problem("j.yaml", 2, 60, "requests" + "[0]" * 49, "nesting is deeper than 50 levels")),
    ),
    (
        "version: 1\n" + VALID_TAIL + "requests: [https://evil.example/]\n",
        "j.yaml:3:1: requests: duplicate key 'requests' (first defined on line 2)",
    ),
    (
        "version: 1\ntimeout: {total: 1:30}\n" + VALID_TAIL,
        "j.yaml:2:18: timeout.total: must be a number > 0: '1:30' is base 60 in YAML 1.1 (= 90); "
        "write 90",
    ),
]


@pytest.mark.parametrize(("text", "expected"), PURE_PYTHON_CASES)
def test_pure_python_loader_gives_the_same_answers(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    """Without libyaml, PyYAML's pure-Python parser must behave the same (only slower)."""
    assert yamlsafe._Loader is not yaml.SafeLoader  # the suite normally runs on libyaml
    monkeypatch.setattr(yamlsafe, "_Loader", yaml.SafeLoader)
    with pytest.raises(JobError) as info:
        load_job_text(text, filename="j.yaml", env={})
    assert [str(p) for p in info.value.problems] == [expected]
