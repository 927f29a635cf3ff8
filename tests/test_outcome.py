"""Outcome.to_record(): every field, clipping, and the published JSON Schema.

The schema (runner/record.schema.json, draft 2020-12) is checked with the
``jsonschema`` package when it is installed, else with the small structural
validator below, which covers exactly the keywords the schema uses.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

import runner
from runner.outcome import MAX_TEXT, RECORD_VERSION, ErrorInfo, Outcome, Timings

SCHEMA_PATH = Path(runner.__file__).parent / "record.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
FIELDS = ("v", "url", "final_url", "method", "name", "status", "reason", "ok", "size",
          "content_type", "elapsed_ms", "attempts", "redirects", "error", "sha256",
          "body_path", "started_at", "index", "source")  # fmt: skip
STARTED = "2025-01-02T03:04:05.678Z"

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _type_ok(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def structural_errors(value: Any, schema: dict[str, Any], at: str = "$") -> list[str]:
    """JSON Schema errors for the keywords our schema uses (type-specific ones as in
    the spec: ``pattern`` only constrains strings, ``minimum`` only numbers...)."""
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(_type_ok(value, n) for n in names):
            return [f"{at}: {value!r} is not of type {types}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{at}: {value!r} is not {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: {value!r} not in enum")
    if isinstance(value, str):
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{at}: longer than {schema['maxLength']}")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{at}: shorter than {schema['minLength']}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{at}: does not match {schema['pattern']}")
    if _type_ok(value, "number"):
        if value < schema.get("minimum", value):
            errors.append(f"{at}: below {schema['minimum']}")
        if value > schema.get("maximum", value):
            errors.append(f"{at}: above {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"{at}: missing {k!r}" for k in schema.get("required", ()) if k not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"{at}: unexpected {k!r}" for k in value if k not in props]
        for key, sub in props.items():
            if key in value:
                errors += structural_errors(value[key], sub, f"{at}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += structural_errors(item, schema["items"], f"{at}[{i}]")
    return errors


def schema_errors(record: dict[str, Any]) -> list[str]:
    if importlib.util.find_spec("jsonschema") is not None:
        jsonschema: Any = importlib.import_module("jsonschema")
        validator = jsonschema.Draft202012Validator(SCHEMA)
        return [e.message for e in validator.iter_errors(record)]
    return structural_errors(record, SCHEMA)


def full_outcome(**changes: Any) -> Outcome:
    values: dict[str, Any] = {
        "url": "http://a.test/start",
        "method": "GET",
        "index": 7,
        "source": "jobs.yaml:12:5",
        "started_at": STARTED,
        "name": "listing",
        "final_url": "http://a.test/final",
        "status": 200,
        "reason": "OK",
        "ok": True,
        "size": 1234,
        "content_type": "text/html; charset=utf-8",
        "timings": Timings(dns=0.0012345, connect=0.002, tls=None, ttfb=0.05, total=0.0625),
        "attempts": 2,
        "redirects": ((301, "http://a.test/start"), (302, "http://a.test/middle")),
        "sha256": "ab" * 32,
        "body_path": "/out/ab/cd/abcd.body",
        "retries_waited": 1.5,
    }
    values.update(changes)
    return Outcome(**values)


def test_schema_is_draft_2020_12_and_lists_every_field() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert tuple(SCHEMA["required"]) == FIELDS
    # Optional keys, present only when extract:/follow: or a crawl produced them.
    optional = {"data", "data_errors", "extract_ms", "follow", "crawl", "unchanged", "location"}
    assert set(SCHEMA["properties"]) == {*FIELDS, *optional}
    assert SCHEMA["properties"]["v"] == {"description": "Record format version.", "const": 1}


def test_every_field_is_present_in_order_with_its_value() -> None:
    record = full_outcome().to_record()
    assert tuple(record) == FIELDS
    assert record == {
        "v": RECORD_VERSION,
        "url": "http://a.test/start",
        "final_url": "http://a.test/final",
        "method": "GET",
        "name": "listing",
        "status": 200,
        "reason": "OK",
        "ok": True,
        "size": 1234,
        "content_type": "text/html; charset=utf-8",
        "elapsed_ms": {"dns": 1.234, "connect": 2.0, "tls": None, "ttfb": 50.0, "total": 62.5},
        "attempts": 2,
        "redirects": [
            {"status": 301, "url": "http://a.test/start"},
            {"status": 302, "url": "http://a.test/middle"},
        ],
        "error": None,
        "sha256": "ab" * 32,
        "body_path": "/out/ab/cd/abcd.body",
        "started_at": STARTED,
        "index": 7,
        "source": "jobs.yaml:12:5",
    }
    assert record["v"] == 1
    assert schema_errors(record) == []


def test_a_request_that_never_got_an_answer() -> None:
    outcome = Outcome("http://x.test/", "GET", 0, "<command line>:1:1", STARTED,
                      error=ErrorInfo("connect", "ClientConnectorError: refused"))  # fmt: skip
    record = outcome.to_record()
    assert tuple(record) == FIELDS
    assert record["error"] == {"kind": "connect", "message": "ClientConnectorError: refused"}
    assert (record["status"], record["ok"], record["size"], record["sha256"]) == (
        None, False, None, None,
    )  # fmt: skip
    assert record["elapsed_ms"] == dict.fromkeys(("dns", "connect", "tls", "ttfb", "total"))
    assert outcome.status_class == "error"
    assert schema_errors(record) == []


def test_an_invalid_url_line_validates() -> None:
    outcome = Outcome("not a url", "GET", 3, "urls.txt:4:1", STARTED, attempts=0,
                      error=ErrorInfo("invalid_url", "URL must start with http://"))  # fmt: skip
    assert schema_errors(outcome.to_record()) == []


def test_long_server_text_is_clipped() -> None:
    long = "x" * (MAX_TEXT * 3)
    outcome = full_outcome(
        url="http://a.test/" + long,
        final_url="http://a.test/" + long,
        reason=long,
        content_type=long,
        redirects=((302, "http://a.test/" + long),),
        error=ErrorInfo("protocol", long),
    )
    record = outcome.to_record()
    clipped = [record["url"], record["final_url"], record["reason"], record["content_type"],
               record["redirects"][0]["url"], record["error"]["message"]]  # fmt: skip
    for text in clipped:
        assert len(text) == MAX_TEXT + 1
        assert text.endswith("…")
    assert record["url"].startswith("http://a.test/xxx")
    assert schema_errors(record) == []
    assert len(json.dumps(record)) < 8 * (MAX_TEXT + 200)


def test_text_at_the_limit_is_kept_whole() -> None:
    exact = "r" * MAX_TEXT
    assert full_outcome(reason=exact).to_record()["reason"] == exact


def test_status_class() -> None:
    assert [full_outcome(status=s).status_class for s in (101, 204, 304, 404, 503)] == [
        "1xx", "2xx", "3xx", "4xx", "5xx",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"status": 42}, "status"),
        ({"sha256": "XYZ"}, "sha256"),
        ({"started_at": "yesterday"}, "started_at"),
        ({"size": -1}, "size"),
        ({"error": ErrorInfo("gremlins", "?")}, "kind"),
    ],
)
def test_the_schema_catches_wrong_records(change: dict[str, Any], complaint: str) -> None:
    errors = schema_errors(full_outcome(**change).to_record())
    assert errors
    if importlib.util.find_spec("jsonschema") is None:
        assert complaint in errors[0]


def test_the_schema_rejects_missing_extra_and_mistyped_fields() -> None:
    record = full_outcome().to_record()
    del record["sha256"]
    record["surprise"] = 1
    record["ok"] = "yes"
    errors = schema_errors(record)
    assert len(errors) == 3
