"""JUnit XML for link checks, the dialect CI test reporters read.

Mapping (one ``<testcase>`` per checked link, grouped in one ``<testsuite>``):

* ``ok`` -> a passing testcase;
* ``broken`` -> ``<failure type="broken" message=...>`` with the details as text;
* ``indeterminate`` -> ``<skipped message="indeterminate: ...">``: the server
  would not say (403/429/bot challenge), which is neither pass nor fail;
* ``excluded`` -> no testcase: the link was never checked.

``classname`` is the source (file path or page URL), ``name`` the URL with its
line (``url (line 12)``) so reporters show where the link lives.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

from .model import LinkResult, describe, strip_controls

_XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def _clean(text: str) -> str:
    # ElementTree escapes &, <, >, quotes and newlines in attributes, but not
    # characters XML 1.0 forbids outright, so those go first.
    return strip_controls(text)


def _testcase(suite: ET.Element, result: LinkResult) -> None:
    name = result.url if result.line is None else f"{result.url} (line {result.line})"
    case = ET.SubElement(suite, "testcase", classname=_clean(result.source), name=_clean(name))
    case.set("time", "0")
    message = _clean(describe(result))
    if result.verdict == "broken":
        failure = ET.SubElement(case, "failure", type="broken", message=message)
        where = result.source if result.line is None else f"{result.source}:{result.line}"
        failure.text = f"{message}\nin {_clean(where)}"
    elif result.verdict == "indeterminate":
        ET.SubElement(case, "skipped", message=f"indeterminate: {message}")


def render_junit(results: Iterable[LinkResult], suite_name: str = "fetchrun links") -> str:
    """Render *results* as a JUnit XML document (see the module doc for the mapping)."""
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", name=_clean(suite_name))
    tests = failures = skipped = 0
    for result in results:
        if result.verdict == "excluded":
            continue
        tests += 1
        _testcase(suite, result)
        failures += result.verdict == "broken"
        skipped += result.verdict == "indeterminate"
    for element in (root, suite):
        element.set("tests", str(tests))
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("skipped", str(skipped))
    ET.indent(root)
    return _XML_DECL + ET.tostring(root, encoding="unicode") + "\n"
