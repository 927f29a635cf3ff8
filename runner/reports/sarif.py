"""SARIF 2.1.0 for link checks (GitHub code scanning and other SARIF viewers).

One run, tool driver ``fetchrun`` with two rules: ``broken-link`` (level
``error``) and ``indeterminate-link`` (level ``warning``). Only broken and
indeterminate links become results; each points at its source with
``physicalLocation.artifactLocation.uri`` and, when the line is known,
``region.startLine``. Relative file paths are given against ``%SRCROOT%`` as
GitHub expects; page URLs are kept as absolute URIs.

The official OASIS schema ships beside this module as
``sarif-2.1.0.schema.json`` (see :func:`schema_path`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, urlsplit

from .model import LinkResult, describe, strip_controls

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)
TOOL_NAME = "fetchrun"

_RULES: tuple[tuple[str, str, str], ...] = (
    ("broken-link", "error", "The link target answered with an error or did not answer."),
    (
        "indeterminate-link",
        "warning",
        "The server refused to say (403/429/bot challenge) after the retry budget.",
    ),
)
_RULE_INDEX = {"broken": 0, "indeterminate": 1}
# RFC 3986 sub-delims, ":" and "@" are valid in a path; everything else is encoded.
_PATH_SAFE = "/!$&'()*+,;=:@-._~"


def schema_path() -> Path:
    """Path of the bundled official SARIF 2.1.0 JSON schema (draft-04)."""
    return Path(__file__).with_name("sarif-2.1.0.schema.json")


def _artifact_location(source: str) -> dict[str, str]:
    parts = urlsplit(source)
    if parts.scheme in ("http", "https", "file") and parts.netloc:
        return {"uri": strip_controls(source)}
    # A file path: SARIF wants a URI reference (RFC 3986), so separators are
    # normalised and anything outside the path alphabet percent-encoded.
    path = PurePosixPath(source.replace("\\", "/")).as_posix()
    uri = quote(path, safe=_PATH_SAFE)
    if path.startswith("/"):
        return {"uri": "file://" + uri}
    return {"uri": uri, "uriBaseId": "%SRCROOT%"}


def _result(result: LinkResult) -> dict[str, Any]:
    index = _RULE_INDEX[result.verdict]
    rule_id, level, _ = _RULES[index]
    physical: dict[str, Any] = {"artifactLocation": _artifact_location(result.source)}
    if result.line is not None and result.line >= 1:
        physical["region"] = {"startLine": result.line}
    properties: dict[str, Any] = {"url": strip_controls(result.url)}
    if result.status is not None:
        properties["status"] = result.status
    if result.final_url is not None:
        properties["finalUrl"] = strip_controls(result.final_url)
    return {
        "ruleId": rule_id,
        "ruleIndex": index,
        "level": level,
        "message": {"text": strip_controls(describe(result))},
        "locations": [{"physicalLocation": physical}],
        "properties": properties,
    }


def render_sarif(
    results: Iterable[LinkResult], tool_version: str | None = None, *, indent: int | None = 2
) -> str:
    """Render broken and indeterminate *results* as a SARIF 2.1.0 log (JSON text)."""
    driver: dict[str, Any] = {
        "name": TOOL_NAME,
        "rules": [
            {
                "id": rule_id,
                "shortDescription": {"text": text},
                "defaultConfiguration": {"level": level},
            }
            for rule_id, level, text in _RULES
        ],
    }
    if tool_version is not None:
        driver["version"] = tool_version
    log = {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {"driver": driver},
                "results": [_result(r) for r in results if r.verdict in _RULE_INDEX],
            }
        ],
    }
    # ensure_ascii keeps the output plain ASCII whatever the pages contained.
    return json.dumps(log, indent=indent, ensure_ascii=True) + "\n"
