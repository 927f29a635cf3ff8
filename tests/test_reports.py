"""CI report writers (issue #5): JUnit, SARIF, GitHub annotations, Markdown, exit codes."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from runner.reports import (
    SARIF_SCHEMA_URI,
    LinkResult,
    render_annotations,
    render_junit,
    render_markdown,
    render_sarif,
    verdict_exit_code,
)
from runner.reports.github import escape_data, escape_property
from runner.reports.markdown import escape_cell
from runner.reports.sarif import schema_path

HOSTILE = "a%b\r\nc,d:e\x1b[31mred\x00|`x`|<script>&"


def _r(verdict: Any, source: str = "docs/a.md", line: int | None = 3, **kw: Any) -> LinkResult:
    fields: dict[str, Any] = {
        "url": "https://example.test/x",
        "status": 404,
        "reason": "Not Found",
        "final_url": None,
    }
    fields.update(kw)
    return LinkResult(source=source, line=line, verdict=verdict, **fields)


MIXED = [
    _r("ok", status=200, reason=""),
    _r("broken", line=7),
    _r("broken", source="https://site.test/page", line=None, status=None, reason="timeout"),
    _r("indeterminate", status=429, reason="rate limited"),
    _r("excluded", status=None, reason="pattern"),
]


# --- exit codes ------------------------------------------------------------


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [
        ([], 0),
        (["ok", "excluded"], 0),
        (["ok", "indeterminate"], 3),
        (["indeterminate", "broken", "ok"], 1),
        (["broken"], 1),
    ],
)
def test_exit_code_rules(verdicts: list[str], code: int) -> None:
    assert verdict_exit_code(_r(v) for v in verdicts) == code


def test_link_result_is_frozen() -> None:
    r = _r("ok")
    with pytest.raises(AttributeError):
        r.url = "other"  # type: ignore[misc]


# --- JUnit -----------------------------------------------------------------


def test_junit_counts_and_mapping() -> None:
    root = ET.fromstring(render_junit(MIXED))
    suite = root.find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    # excluded links are not tests; indeterminate ones are skipped, not failed.
    assert len(cases) == 4
    for element in (root, suite):
        assert element.get("tests") == "4"
        assert element.get("failures") == "2"
        assert element.get("skipped") == "1"
        assert element.get("errors") == "0"
    failures = suite.findall("testcase/failure")
    assert len(failures) == 2
    assert failures[0].get("type") == "broken"
    assert "HTTP 404" in (failures[0].get("message") or "")
    assert "docs/a.md:7" in (failures[0].text or "")
    skipped = suite.findall("testcase/skipped")
    assert len(skipped) == 1
    assert (skipped[0].get("message") or "").startswith("indeterminate: ")
    assert cases[0].get("classname") == "docs/a.md"
    assert cases[0].get("name") == "https://example.test/x (line 3)"


def test_junit_escapes_hostile_text() -> None:
    text = render_junit([_r("broken", source=HOSTILE, reason=HOSTILE, url=HOSTILE)])
    assert "\x1b" not in text
    assert "\x00" not in text
    root = ET.fromstring(text)  # parses: no raw <, & or forbidden characters
    case = root.find("testsuite/testcase")
    assert case is not None
    assert case.get("classname") == HOSTILE.replace("\x1b", "\ufffd").replace("\x00", "\ufffd")
    failure = case.find("failure")
    assert failure is not None
    assert "<script>&" in (failure.get("message") or "")


def test_junit_lone_surrogate_is_replaced() -> None:
    text = render_junit([_r("broken", reason="bad\udcffbyte")])
    text.encode("utf-8")  # would raise on a lone surrogate
    assert "bad\ufffdbyte" in text


def test_junit_empty_run_is_valid() -> None:
    root = ET.fromstring(render_junit([]))
    assert root.get("tests") == "0"


# --- SARIF -----------------------------------------------------------------


class _Draft4:
    """The subset of JSON Schema draft-04 the official SARIF schema uses."""

    _TYPES: dict[str, tuple[type, ...]] = {
        "object": (dict,),
        "array": (list,),
        "string": (str,),
        "integer": (int,),
        "number": (int, float),
        "boolean": (bool,),
        "null": (type(None),),
    }

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root

    def errors(self, value: Any, schema: dict[str, Any], at: str = "$") -> list[str]:
        if "$ref" in schema:
            ref = schema["$ref"]
            assert ref.startswith("#/definitions/"), ref
            schema = self.root["definitions"][ref.removeprefix("#/definitions/")]
        out: list[str] = []
        if "type" in schema:
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            ok = any(
                isinstance(value, self._TYPES[t])
                and not (t in {"integer", "number"} and isinstance(value, bool))
                for t in types
            )
            if not ok:
                return [f"{at}: not {types}"]
        if "enum" in schema and value not in schema["enum"]:
            out.append(f"{at}: {value!r} not in enum")
        if isinstance(value, str) and not re.search(schema.get("pattern", ""), value):
            out.append(f"{at}: pattern")
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
            out.append(f"{at}: out of range")
        if isinstance(value, list):
            out += self._array(value, schema, at)
        if isinstance(value, dict):
            out += self._object(value, schema, at)
        for key, need in (("anyOf", 1), ("oneOf", -1)):
            if key in schema:
                passing = sum(not self.errors(value, s, at) for s in schema[key])
                if passing < 1 or (need == -1 and passing != 1):
                    out.append(f"{at}: {key}")
        return out

    def _array(self, value: list[Any], schema: dict[str, Any], at: str) -> list[str]:
        out: list[str] = []
        if len(value) < schema.get("minItems", 0):
            out.append(f"{at}: minItems")
        if schema.get("uniqueItems"):
            dumped = [json.dumps(v, sort_keys=True) for v in value]
            if len(set(dumped)) != len(dumped):
                out.append(f"{at}: uniqueItems")
        if "items" in schema:
            for i, item in enumerate(value):
                out += self.errors(item, schema["items"], f"{at}[{i}]")
        return out

    def _object(self, value: dict[str, Any], schema: dict[str, Any], at: str) -> list[str]:
        out = [f"{at}: missing {k}" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                out += self.errors(item, props[key], f"{at}.{key}")
            elif extra is False:
                out.append(f"{at}: unexpected {key}")
            elif isinstance(extra, dict):
                out += self.errors(item, extra, f"{at}.{key}")
        return out


@pytest.fixture(scope="module")
def sarif_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_path().read_text(encoding="utf-8"))
    assert schema["id"].endswith("/sarif-schema-2.1.0.json")
    return schema


def _validate(log: Any, schema: dict[str, Any]) -> list[str]:
    return _Draft4(schema).errors(log, schema)


def test_sarif_validates_against_official_schema(sarif_schema: dict[str, Any]) -> None:
    log = json.loads(render_sarif(MIXED, tool_version="0.1.0"))
    assert _validate(log, sarif_schema) == []
    assert log["version"] == "2.1.0"
    assert log["$schema"] == SARIF_SCHEMA_URI
    run = log["runs"][0]
    assert run["tool"]["driver"]["name"] == "fetchrun"
    results = run["results"]
    assert [r["level"] for r in results] == ["error", "error", "warning"]
    assert [r["ruleId"] for r in results] == ["broken-link", "broken-link", "indeterminate-link"]
    rules = run["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    first = results[0]["locations"][0]["physicalLocation"]
    assert first["artifactLocation"] == {"uri": "docs/a.md", "uriBaseId": "%SRCROOT%"}
    assert first["region"] == {"startLine": 7}
    page = results[1]["locations"][0]["physicalLocation"]
    assert page["artifactLocation"] == {"uri": "https://site.test/page"}
    assert "region" not in page
    assert results[0]["message"]["text"] == "https://example.test/x: HTTP 404 (Not Found)"


def test_schema_check_rejects_invalid_logs(sarif_schema: dict[str, Any]) -> None:
    # The validator must actually bite, or the test above proves nothing.
    log = json.loads(render_sarif(MIXED))
    log["runs"][0]["results"][0]["level"] = "fatal"
    del log["runs"][0]["tool"]["driver"]["name"]
    log["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"] = {"startLine": 0}
    errors = _validate(log, sarif_schema)
    assert any("enum" in e for e in errors)
    assert any("missing name" in e for e in errors)
    assert any("out of range" in e for e in errors)
    assert _validate({"version": "2.1.0", "runs": [], "bogus": 1}, sarif_schema)


def test_sarif_with_jsonschema_when_installed(sarif_schema: dict[str, Any]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft4Validator(sarif_schema).validate(json.loads(render_sarif(MIXED)))


def test_sarif_hostile_text_and_paths(sarif_schema: dict[str, Any]) -> None:
    results = [
        _r("broken", source="docs\\sub dir/ä#1.md", reason=HOSTILE, url=HOSTILE),
        _r("indeterminate", source="/abs/page.md", line=0, final_url=HOSTILE),
    ]
    text = render_sarif(results)
    assert text.isascii()
    assert "\\u001b" not in text
    log = json.loads(text)
    assert _validate(log, sarif_schema) == []
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri["uri"] == "docs/sub%20dir/%C3%A4%231.md"
    second = log["runs"][0]["results"][1]["locations"][0]["physicalLocation"]
    assert second["artifactLocation"] == {"uri": "file:///abs/page.md"}
    assert "region" not in second  # line 0 is not a valid SARIF line
    assert "\ufffd[31m" in log["runs"][0]["results"][0]["message"]["text"]


def test_sarif_empty_run(sarif_schema: dict[str, Any]) -> None:
    log = json.loads(render_sarif([_r("ok")]))
    assert log["runs"][0]["results"] == []
    assert _validate(log, sarif_schema) == []


# --- GitHub annotations ------------------------------------------------------

# GitHub's documented shape: ::command key=value,key=value::message
_ANNOTATION_RE = re.compile(r"^::(error|warning)( [a-z]+=[^,:\r\n]*(,[a-z]+=[^,:\r\n]*)*)?::.*$")


def test_annotation_lines_format() -> None:
    lines = render_annotations(MIXED).splitlines()
    assert len(lines) == 3
    assert all(_ANNOTATION_RE.match(line) for line in lines)
    assert lines[0] == (
        "::error file=docs/a.md,line=7,title=Broken link::"
        "https://example.test/x: HTTP 404 (Not Found)"
    )
    # A page URL is not a repository file: no file= property, source in the text.
    assert lines[1].startswith("::error title=Broken link::")
    assert lines[1].endswith("[on https://site.test/page]")
    assert lines[2].startswith("::warning file=docs/a.md,line=3,title=Indeterminate link::")


def test_annotation_escaping_hostile_input() -> None:
    out = render_annotations([_r("broken", source=HOSTILE, reason=HOSTILE)])
    assert out.count("\n") == 1
    assert out.endswith("\n")
    for raw in ("\r", "\x1b", "\x00"):
        assert raw not in out
    line = out.rstrip("\n")
    assert _ANNOTATION_RE.match(line)
    head, _, message = line.partition("::")[2].partition("::")
    assert "file=a%25b%0D%0Ac%2Cd%3Ae\ufffd[31mred\ufffd|`x`|<script>&," in head
    assert message.endswith("(a%25b%0D%0Ac,d:e\ufffd[31mred\ufffd|`x`|<script>&)")


def test_escape_helpers() -> None:
    assert escape_data("100%\r\n:,") == "100%25%0D%0A:,"
    assert escape_property("100%\r\n:,") == "100%25%0D%0A%3A%2C"
    # % goes first, so an already-escaped sequence is not mistaken for one.
    assert escape_data("%0A") == "%250A"


def test_no_annotations_when_all_ok() -> None:
    assert render_annotations([_r("ok"), _r("excluded")]) == ""


# --- Markdown ----------------------------------------------------------------


def test_markdown_counts_and_grouping() -> None:
    results = [*MIXED, _r("broken", source="https://site.test/page", line=None, url="u2")]
    md = render_markdown(results)
    assert "**6** links: **1** ok, **3** broken, **1** indeterminate, **1** excluded." in md
    rows = [ln for ln in md.splitlines() if ln.startswith("| ") and "Source" not in ln]
    assert [r.split(" | ")[0] for r in rows] == [
        "| docs/a.md",
        "| docs/a.md",
        "| https://site.test/page",
        "| https://site.test/page",
    ]
    # within a source, rows follow the line order (3 before 7)
    assert rows[0].split(" | ")[1] == "3"
    assert rows[1].split(" | ")[1] == "7"
    assert all(row.count(" | ") == 5 for row in rows)


def test_markdown_escapes_pipes_backticks_and_breaks() -> None:
    md = render_markdown([_r("broken", reason=HOSTILE, source="a|b`c`.md")])
    row = md.splitlines()[-1]
    assert "\x1b" not in md
    assert "\r" not in md
    # every | that is not a column separator is escaped, so the row keeps 6 cells
    assert len(re.findall(r"(?<!\\)\|", row)) == 7
    assert "a\\|b\\`c\\`.md" in row
    assert "\\<script\\>\\&" in row
    assert "\\`x\\`" in row


def test_markdown_no_problems_has_no_table() -> None:
    md = render_markdown([_r("ok")])
    assert "|" not in md
    assert "**1** links: **1** ok" in md


def test_markdown_row_cap_and_cell_truncation() -> None:
    md = render_markdown([_r("broken", line=i) for i in range(1, 6)], max_rows=2)
    assert md.count("| docs/a.md |") == 2
    assert "\u2026and 3 more not listed." in md
    assert len(escape_cell("x" * 1000)) == 300
