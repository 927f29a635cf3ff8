"""``extract:`` / ``follow:``: load-time checks with positions, and each extractor
kind applied to known bodies (runner.extract), without a network.

End-to-end runs against local sites are in test_scrape_e2e.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

import runner.extract as rx
from jobs import JobError, JobFile, RequestOptions, iter_requests, load_job_text
from jobs.model import TITLE_FIELD, Extractor, Follow
from runner.cli import main as cli_main
from runner.extract import Extraction, Tap, open_tap, plan_for, redact_data
from runner.extract_fields import MAX_FIELD_CHARS, Doc, follow_links
from runner.extract_title import TITLE_SCAN_BYTES, _title_end, quick_title, title_of

PAGE_URL = "http://shop.test/catalogue/page1.html"
HTML = "text/html; charset=utf-8"
SHOP = b"""<!DOCTYPE html><html><head><title>
    Shop  &amp; more  </title>
<link rel="canonical" href="/catalogue/">
</head><body>
<h1> Items </h1>
<div class="item"><h2>Lamp</h2><span class="price"> 12.50 </span>
<a href="lamp.html#top">more</a></div>
<div class="item"><h2>Chair</h2><span class="price">7</span><a href="../chair.html">more</a></div>
<div class="item"><h2>Mug</h2><span class="price">n/a</span><a href="mailto:x@y.test">ask</a></div>
<a class="next" href="?page=2">Next</a>
<script>var sku = "A-17"; var sku2 = "B-9";</script>
</body></html>"""


def load(text: str) -> JobFile:
    return load_job_text(dedent(text), filename="job.yaml")


def options(extract: str = "", follow: str = "", defaults: str = "") -> RequestOptions:
    text = "version: 1\n"
    if defaults:
        text += f"defaults:\n  {defaults}\n"
    text += "requests:\n  - url: http://shop.test/\n"
    if extract:
        text += f"    extract: {extract}\n"
    if follow:
        text += f"    follow: {follow}\n"
    return next(iter_requests(load(text))).options


async def extract(
    opts: RequestOptions,
    body: bytes,
    content_type: str | None = HTML,
    *,
    url: str = PAGE_URL,
    headers: tuple[tuple[str, str], ...] = (),
    chunk: int = 65536,
) -> Extraction | None:
    head: CIMultiDict[str] = CIMultiDict(headers)
    if content_type is not None:
        head["Content-Type"] = content_type
    tap = open_tap(opts, head, None)
    if tap is None:
        return None
    for start in range(0, len(body), chunk):
        tap.feed(body[start : start + chunk])
    return await tap.finish(url)


def must(result: Extraction | None) -> Extraction:
    assert result is not None
    return result


def must_tap(tap: Tap | None) -> Tap:
    assert tap is not None
    return tap


def problems(text: str) -> list[str]:
    with pytest.raises(JobError) as info:
        load(text)
    return [str(p) for p in info.value.problems]


# ------------------------------------------------------------------ loading


def test_the_issue_example_loads_into_extractors_in_order() -> None:
    job = load("""\
        version: 1
        defaults:
          extract:
            title: {css: "title", text: true}
            canonical: {css: "link[rel=canonical]", attr: href, absolute: true}
        requests:
          - url: https://shop.example/items?page=1
            extract:
              names:  {css: ".item h2", text: true, all: true}
              prices: {css: ".item .price", text: true, all: true, to: float}
              total:  {json: "meta.total"}
            follow: {css: "a.next", attr: href, max_pages: 50}
        """)
    opts = next(iter_requests(job)).options
    assert dict(opts.extract) == {
        "title": Extractor("css", "title"),  # a user field replaces the built-in title
        "canonical": Extractor("css", "link[rel=canonical]", attr="href", absolute=True),
        "names": Extractor("css", ".item h2", all=True),
        "prices": Extractor("css", ".item .price", all=True, to="float"),
        "total": Extractor("json", "meta.total"),
    }
    assert opts.follow == Follow(
        Extractor("css", "a.next", attr="href", all=True, absolute=True), max_pages=50
    )


def test_title_is_on_by_default_and_blocks_merge_by_name() -> None:
    assert options().extract == (("title", TITLE_FIELD),)
    assert options().follow is None
    job = load("""\
        version: 1
        defaults:
          extract: {a: {css: p}, b: {header: ETag}}
          follow: {css: a.next}
        requests:
          - http://shop.test/plain
          - url: http://shop.test/override
            extract: {b: {regex: "x(y)"}, title: false, c: {xpath: //p}}
          - url: http://shop.test/none
            extract: false
            follow: false
        """)
    plain, override, none = (s.options for s in iter_requests(job))
    assert [name for name, _ in plain.extract] == ["title", "a", "b"]
    assert plain.follow is not None
    assert plain.follow.rule.attr == "href"  # css: href by default
    assert dict(override.extract) == {
        "a": Extractor("css", "p"),
        "b": Extractor("regex", "x(y)"),
        "c": Extractor("xpath", "//p"),
    }
    assert (none.extract, none.follow) == ((), None)
    assert load("version: 1\ndefaults: {extract: false}\nrequests: [http://a.test/]\n")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ('{css: "div["}', "invalid CSS selector: Expected ident or '*', got <EOF at 4>"),
        ('{css: "a::text"}', "invalid CSS selector: Pseudo-elements are not supported."),
        ('{xpath: "//a["}', "invalid XPath: Invalid expression"),
        ('{xpath: "nope(1)"}', "invalid XPath: Unregistered function"),
        ('{json: "meta.[", all: true}', "invalid JMESPath: Incomplete expression at position 6"),
        ('{json: "nope(@)"}', "invalid JMESPath: Unknown function: nope()"),
        ('{regex: "(a"}', "invalid regular expression: missing ), unterminated subpattern"),
        ("{header: X Y}", "header name must be an HTTP token"),
        ('{css: ""}', "is empty"),
    ],
)
def test_a_bad_selector_is_a_load_error_at_its_position(field: str, message: str) -> None:
    line = f"      x: {field}"
    (problem,) = problems(f"version: 1\nrequests:\n  - url: http://a.test/\n    extract:\n{line}\n")
    kind, _, rest = field[1:].partition(": ")
    col = line.index(rest.split(",")[0].rstrip("}")) + 1  # where the expression starts
    assert problem.startswith(f"job.yaml:5:{col}: requests[0].extract.x.{kind}: {message}")


def test_option_mistakes_are_reported_together() -> None:
    found = problems("""\
        version: 1
        requests:
          - url: http://a.test/
            extract:
              both:   {css: a, attr: href, text: true}
              jsattr: {json: a, attr: href}
              conv:   {css: a, to: double}
              mix:    {css: a, absolute: true, to: int}
              two:    {css: a, xpath: //a}
              none:   {all: true}
              typo:   {css: a, atr: href}
              "bad name": {css: a}
              notmap: h1
            follow: true
          - url: http://a.test/
            follow: {css: a, max_pages: 0}
        """)
    assert found == [
        "job.yaml:5:36: requests[0].extract.both.text: use attr or text, not both",
        "job.yaml:6:25: requests[0].extract.jsattr.attr: is for css and xpath",
        "job.yaml:7:28: requests[0].extract.conv.to: must be int or float, not 'double'",
        "job.yaml:8:15: requests[0].extract.mix: 'to' and 'absolute' do not mix "
        "(a URL is not a number)",
        "job.yaml:9:24: requests[0].extract.two.xpath: use one of css, xpath, json, regex, "
        "header, not several",
        "job.yaml:10:15: requests[0].extract.none: needs one of css, xpath, json, regex, header",
        "job.yaml:11:24: requests[0].extract.typo.atr: unknown key 'atr' (did you mean 'attr'?)",
        "job.yaml:12:7: requests[0].extract['bad name']: field names use letters, digits, "
        "'_' and '-'",
        "job.yaml:13:15: requests[0].extract.notmap: must be a mapping like "
        "{css: 'h1', text: true}, not 'h1'",
        "job.yaml:14:13: requests[0].follow: must be a mapping like {css: 'a.next', "
        "max_pages: 10} (for redirects, use follow_redirects)",
        "job.yaml:16:33: requests[1].follow.max_pages: must be an integer from 1 to 100000, not 0",
    ]


def test_text_false_needs_an_attribute() -> None:
    (problem,) = problems(
        "version: 1\nrequests:\n  - url: http://a.test/\n    extract: {t: {css: a, text: false}}\n"
    )
    assert problem == "job.yaml:4:27: requests[0].extract.t.text: text: false needs an attr"


def test_extract_at_the_top_level_says_where_it_belongs() -> None:
    (problem,) = problems("version: 1\nextract: {a: {css: p}}\nrequests: [http://a.test/]\n")
    assert problem == (
        "job.yaml:2:1: extract: unknown key 'extract' here; set it under 'defaults:' "
        "(or in a request)"
    )


def test_validate_points_at_the_bad_selector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "scrape.yaml"
    job.write_text(
        "version: 1\nrequests:\n  - url: http://a.test/\n    extract:\n"
        "      ok: {css: h1}\n      broken: {xpath: '//div[@class='}\n",
        encoding="utf-8",
    )
    assert cli_main([str(job), "--validate"]) == 2
    err = capsys.readouterr().err
    assert (
        err == f"{job}:6:23: requests[0].extract.broken.xpath: invalid XPath: Invalid expression\n"
    )
    job.write_text("version: 1\nrequests:\n  - url: http://a.test/\n    extract: {ok: {css: h1}}\n")
    assert cli_main([str(job), "--validate"]) == 0


def test_the_sample_scrape_job_validates() -> None:
    path = Path(__file__).resolve().parent.parent / "sample_jobs" / "scrape_demo.yaml"
    job = load_job_text(
        path.read_text(encoding="utf-8"), filename=str(path), env={"DEMO_BASE": "http://d.test"}
    )
    catalogue, api, robots = (s.options for s in iter_requests(job))
    assert catalogue.follow is not None
    assert catalogue.follow.max_pages == 5
    assert [n for n, _ in api.extract] == ["title", "total", "page", "ids", "cheap", "server"]
    assert [n for n, _ in robots.extract] == ["title", "disallow", "sitemap"]


# ------------------------------------------------------------------ each kind


async def test_css_text_attr_all_and_missing() -> None:
    opts = options(
        "{heading: {css: h1}, names: {css: '.item h2', all: true},"
        " raw: {css: '.price', strip: false}, canonical: {css: 'link[rel=canonical]', attr: href},"
        " nothing: {css: table}, none_all: {css: table td, all: true},"
        " noattr: {css: h1, attr: id}}"
    )
    result = await extract(opts, SHOP)
    assert result is not None
    assert result.data == {
        "title": "Shop & more",  # the built-in title: entities decoded, spaces collapsed
        "heading": "Items",
        "names": ["Lamp", "Chair", "Mug"],
        "raw": " 12.50 ",
        "canonical": "/catalogue/",
        "nothing": None,
        "none_all": [],
        "noattr": None,
    }
    assert result.errors == {}
    assert result.ms is not None
    assert result.ms >= 0


async def test_xpath_strings_numbers_and_elements() -> None:
    opts = options(
        "{hrefs: {xpath: '//div/a/@href', all: true}, n: {xpath: 'count(//h2)'},"
        " second: {xpath: '(//h2)[2]'}, texts: {xpath: '//h2/text()', all: true},"
        " has: {xpath: 'boolean(//script)'}, linkattr: {xpath: '//a[@class]', attr: class}}"
    )
    result = await extract(opts, SHOP)
    assert result is not None
    assert result.data["hrefs"] == ["lamp.html#top", "../chair.html", "mailto:x@y.test"]
    assert result.data["n"] == 3.0
    assert result.data["second"] == "Chair"
    assert result.data["texts"] == ["Lamp", "Chair", "Mug"]
    assert result.data["has"] is True
    assert result.data["linkattr"] == "next"


async def test_json_jmespath_values_lists_and_missing() -> None:
    body = json.dumps(
        {"meta": {"total": 200, "pages": "10"}, "items": [{"id": 1, "n": " a "}, {"id": 2}]}
    ).encode()
    opts = options(
        "{total: {json: meta.total}, pages: {json: meta.pages, to: int},"
        " ids: {json: 'items[*].id'}, one: {json: meta.total, all: true},"
        " names: {json: 'items[*].n', all: true}, missing: {json: meta.nope},"
        " missing_all: {json: nope, all: true}, meta: {json: meta}}"
    )
    result = await extract(opts, body, "application/json")
    assert result is not None
    assert result.data == {
        "total": 200,
        "pages": 10,
        "ids": [1, 2],
        "one": [200],
        "names": ["a"],
        "missing": None,
        "missing_all": [],
        "meta": {"total": 200, "pages": "10"},
    }  # no title: this is not HTML


async def test_regex_first_group_whole_match_and_all() -> None:
    opts = options(
        """{sku: {regex: 'sku\\d? = "([^"]+)"'}, skus: {regex: '"([A-Z]-\\d+)"', all: true},"""
        """ word: {regex: 'Ch\\w+'}, none: {regex: 'zzz'}, none_all: {regex: 'zzz', all: true}}"""
    )
    result = await extract(opts, SHOP)
    assert result is not None
    assert result.data["sku"] == "A-17"
    assert result.data["skus"] == ["A-17", "B-9"]
    assert result.data["word"] == "Chair"
    assert (result.data["none"], result.data["none_all"]) == (None, [])
    text = await extract(options("{v: {regex: 'v=(\\d+)', to: int}}"), b"a v=42 b", "text/plain")
    assert must(text).data == {"v": 42}


async def test_header_fields() -> None:
    opts = options(
        "{etag: {header: ETag}, links: {header: Link, all: true}, gone: {header: X-None},"
        " size: {header: X-Size, to: int}, where: {header: X-Where, absolute: true},"
        " bad: {header: ETag, to: int}}"
    )
    headers = (("ETag", ' "v1" '), ("Link", "<a>"), ("Link", "<b>"), ("X-Size", "12"),
               ("X-Where", "/elsewhere"))  # fmt: skip
    result = await extract(opts, b"\x89PNG", "image/png", headers=headers)
    assert result is not None
    assert result.data == {
        "etag": '"v1"',
        "links": ["<a>", "<b>"],
        "gone": None,
        "size": 12,
        "where": "http://shop.test/elsewhere",
        "bad": None,
    }
    assert result.errors == {"bad": "cannot convert '\"v1\"' to int"}


async def test_conversions_and_errors_stay_per_field() -> None:
    opts = options(
        "{prices: {css: .price, all: true, to: float}, first: {css: .price, to: float},"
        " second: {xpath: '(//span)[2]', to: int}, bad: {css: h2, to: int},"
        " names: {css: h2, all: true}}"
    )
    result = await extract(opts, SHOP)
    assert result is not None
    assert result.data == {
        "title": "Shop & more",
        "prices": [],
        "first": 12.5,
        "second": 7,
        "bad": None,
        "names": ["Lamp", "Chair", "Mug"],
    }
    assert result.errors == {
        "prices": "cannot convert 'n/a' to float",
        "bad": "cannot convert 'Lamp' to int",
    }
    json_opts = options("{a: {json: a, to: int}, b: {json: b, to: int}, c: {json: c, to: float}}")
    result = await extract(json_opts, b'{"a": 3.0, "b": 2.5, "c": true}', "application/json")
    assert result is not None
    assert result.data == {"a": 3, "b": None, "c": None}
    assert result.errors == {
        "b": "cannot convert 2.5 to int",
        "c": "cannot convert True to float",
    }


async def test_absolute_urls_resolve_against_the_final_url_and_base_href() -> None:
    opts = options(
        "{links: {css: 'div a', attr: href, all: true, absolute: true},"
        " next: {css: a.next, attr: href, absolute: true},"
        " canonical: {css: 'link[rel=canonical]', attr: href, absolute: true}}"
    )
    result = await extract(opts, SHOP)
    assert result is not None
    assert result.data["links"] == [
        "http://shop.test/catalogue/lamp.html#top",
        "http://shop.test/chair.html",
        "mailto:x@y.test",
    ]
    assert result.data["next"] == "http://shop.test/catalogue/page1.html?page=2"
    assert result.data["canonical"] == "http://shop.test/catalogue/"
    based = b'<html><head><base href="https://cdn.test/v2/"></head><a href="x?q=1">x</a>'
    href = options("{u: {css: a, attr: href, absolute: true}}")
    result = await extract(href, based)
    assert must(result).data["u"] == "https://cdn.test/v2/x?q=1"
    broken = await extract(href, b'<a href="http://[oops/">x</a>')
    assert must(broken).data["u"] is None


async def test_malformed_html_still_yields_values() -> None:
    body = (
        b"<html><title>Broken</title><body><<<>>><div class=item><h2>A<h2>B</div></span>"
        b"</table><p>unclosed <b>bold <i>both</b> tail<div class='item'><h2>C</h2>\x00\xff"
    )
    opts = options("{names: {css: '.item h2', all: true}, p: {css: p}, n: {xpath: count(//h2)}}")
    result = await extract(opts, body)
    assert result is not None
    assert result.data["title"] == "Broken"
    assert result.data["names"][0] == "AB"  # the first h2 holds the unclosed second one
    assert result.data["names"][-1] == "C"
    assert result.data["p"].startswith("unclosed bold both")
    assert result.data["n"] == 3.0
    assert result.errors == {}


async def test_only_fitting_content_types_are_parsed() -> None:
    opts = options("{h: {css: h1}, j: {json: a}, r: {regex: 'x(.)'}, e: {header: ETag}}")
    on_json = await extract(opts, b'{"a": 1}', "application/json; charset=utf-8")
    assert on_json is not None
    assert on_json.data == {"h": None, "j": 1, "r": None, "e": None}
    assert on_json.errors == {
        "h": "css reads HTML or XML responses; content type is application/json; charset=utf-8"
    }
    on_html = await extract(opts, SHOP)
    assert on_html is not None
    assert on_html.errors == {"j": "json reads JSON responses; content type is text/html; "
                              "charset=utf-8"}  # fmt: skip
    on_png = await extract(opts, b"<h1>not html</h1>", "image/png")
    assert on_png is not None
    assert "title" not in on_png.data
    assert set(on_png.errors) == {"h", "j", "r"}
    unlabelled = await extract(opts, b"<h1>x</h1>", None)
    assert unlabelled is not None
    assert unlabelled.errors["h"] == "css reads HTML or XML responses; content type is none"
    # The default (title only) costs nothing for a response that is not HTML.
    assert await extract(options(), b'{"a": 1}', "application/json") is None
    assert await extract(options("false"), SHOP) is None


async def test_head_responses_give_headers_and_no_title() -> None:
    assert await extract(options(defaults="method: HEAD"), b"", HTML) is None
    opts = options("{etag: {header: ETag}, h: {css: h1}}", defaults="method: HEAD")
    result = must(await extract(opts, b"", HTML, headers=(("ETag", "x"),)))
    assert result.data == {"etag": "x", "h": None}
    assert result.errors == {"h": "a HEAD response has no body"}


async def test_invalid_json_is_a_field_error() -> None:
    opts = options("{a: {json: a}, b: {json: b, all: true}}")
    result = await extract(opts, b'{"a": 1', "application/json")
    assert result is not None
    assert result.data == {"a": None, "b": []}
    assert result.errors["a"].startswith("invalid JSON: Expecting")
    deep = b'{"a":' * 100 + b"1" + b"}" * 100
    result = await extract(options("{a: {json: '@'}}"), deep, "application/problem+json")
    assert must(result).errors == {"a": "value is nested more than 64 levels deep"}


async def test_xml_is_read_without_entities_or_dtds() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        b"<url><loc>http://a.test/1</loc></url><url><loc>&x;</loc></url></urlset>"
    )
    opts = options("{locs: {xpath: \"//*[local-name()='loc']\", all: true}}")
    result = await extract(opts, body, "application/xml")
    assert result is not None
    assert result.data == {"locs": ["http://a.test/1", "&x;"]}  # left unexpanded


# ------------------------------------------------------------------ title


@pytest.mark.parametrize(
    ("body", "content_type", "title"),
    [
        (b"<title>Caf\xc3\xa9</title>", "text/html", "Caf\u00e9"),  # UTF-8 assumed
        (b"<title>Caf\xe9</title>", "text/html; charset=ISO-8859-1", "Caf\u00e9"),
        (
            b'<meta charset="windows-1252"><title>Caf\xe9 \x80</title>',
            "text/html",
            "Caf\u00e9 \u20ac",
        ),
        (b"<p>no title here</p>", "text/html", None),
        (b"", "text/html", None),
        (b"<title>Unclosed", "text/html", "Unclosed"),
        (b"<html><head><title>X</title></head>", "application/xhtml+xml", "X"),
        (b"<!-- no </title> here --><TITLE>Upper</TITLE>", "text/html", "Upper"),
        (b"<script>s = '</title>'</script><Title>Mixed</Title>", "text/html", "Mixed"),
        (b"<body><svg><title>Icon</title></svg><title>Late</title>", "text/html", "Icon"),
    ],
)
async def test_title_from_the_first_bytes(
    body: bytes, content_type: str, title: str | None
) -> None:
    for chunk in (1, 7, 65536):
        result = await extract(options(), body, content_type, chunk=chunk)
        assert result is not None
        assert result.data == {"title": title}


async def test_a_title_past_the_first_64_kib_is_not_read() -> None:
    late = b"<html><head><!--" + b"x" * TITLE_SCAN_BYTES + b"--><title>Late</title>"
    result = await extract(options(), late, chunk=4096)
    assert must(result).data == {"title": None}
    early = b"<title>Early</title>" + b"<p>filler</p>" * 50_000
    result = await extract(options(), early)
    assert must(result).data == {"title": "Early"}


async def test_titles_are_parsed_in_batches_each_to_its_own_response() -> None:
    head: CIMultiDict[str] = CIMultiDict({"Content-Type": "text/html"})
    taps = [must_tap(open_tap(options(), head, None)) for _ in range(40)]
    for i, tap in enumerate(taps):  # a comment first: these heads take the parser
        tap.feed(b"<!doctype html><!-- c --><title>page %d</title><p>x</p>" % i)
    doomed = asyncio.ensure_future(taps[0].finish(PAGE_URL))
    await asyncio.sleep(0)  # it is now waiting in the batch...
    results = [asyncio.ensure_future(tap.finish(PAGE_URL)) for tap in taps[1:]]
    doomed.cancel()  # ...and its cancellation must not break the others
    done = await asyncio.gather(*results)
    assert [r.data for r in done] == [{"title": f"page {i}"} for i in range(1, 40)]
    assert doomed.cancelled()


@pytest.mark.parametrize("split", [1, 3, 6, 7, 20, 21, 23, 26])
async def test_a_title_end_split_across_chunks(split: int) -> None:
    body = b"<html><title>Split here</title><p>after</p>"
    head: CIMultiDict[str] = CIMultiDict({"Content-Type": HTML})
    tap = open_tap(options(), head, None)
    assert tap is not None
    tap.feed(body[:split])
    tap.feed(body[split:])
    assert (await tap.finish(PAGE_URL)).data == {"title": "Split here"}


# ------------------------------------------------------------------ limits


async def test_bodies_over_the_cap_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rx, "MAX_EXTRACT_BODY", 1000)
    opts = options("{names: {css: h2, all: true}, etag: {header: ETag}}")
    big = SHOP + b"<p>pad</p>" * 200
    streamed = await extract(opts, big, headers=(("ETag", "e"),), chunk=300)
    assert streamed is not None
    assert streamed.data == {"title": "Shop & more", "names": [], "etag": "e"}
    assert streamed.errors == {"names": "body too large to extract (over 1000 bytes)"}
    head: CIMultiDict[str] = CIMultiDict({"Content-Type": HTML})
    tap = open_tap(opts, head, 5000)  # a Content-Length over the cap: nothing is kept
    assert tap is not None
    tap.feed(SHOP)
    declared = await tap.finish(PAGE_URL)
    assert declared.errors == streamed.errors


async def test_a_large_body_gives_the_same_data_off_the_loop() -> None:
    opts = options("{names: {css: '.item h2', all: true}, n: {xpath: count(//h2), to: int}}")
    items = b"".join(b'<div class="item"><h2>N%d</h2></div>' % i for i in range(5000))
    body = b"<title>Big</title>" + items
    assert len(body) > rx.OFFLOOP_BYTES
    result = await extract(opts, body)
    assert result is not None
    assert result.data["n"] == 5000
    assert result.data["names"][:2] == ["N0", "N1"]
    assert len(result.data["names"]) == 5000


async def test_huge_values_are_an_error_not_a_record() -> None:
    body = b"<p>" + b"x" * (MAX_FIELD_CHARS + 1) + b"</p>"
    result = await extract(options("{p: {css: p}}"), body)
    assert result is not None
    assert result.data["p"] is None
    assert result.errors["p"].startswith("value is larger than")


def test_follow_links_are_absolute_http_on_the_same_host_once() -> None:
    body = (
        b'<a href="/b#frag">b</a><a href="/b">again</a><a href="c?x=1">c</a>'
        b'<a href="mailto:a@b.test">m</a><a href="javascript:void(0)">j</a>'
        b'<a href="https://shop.test/secure">s</a><a href="http://other.test/">o</a><a>none</a>'
    )
    doc = Doc("html", body, "utf-8", "http://shop.test/a/")
    rule = Extractor("css", "a", attr="href", all=True, absolute=True)
    assert follow_links(doc, Follow(rule), "http://shop.test/a/") == (
        "http://shop.test/b",
        "http://shop.test/a/c?x=1",
        "https://shop.test/secure",
    )
    anywhere = follow_links(doc, Follow(rule, same_host=False), "http://shop.test/a/")
    assert anywhere[-1] == "http://other.test/"
    assert follow_links(Doc("json", b"{}", None, "http://shop.test/"), Follow(rule), "") == ()


def test_plans_are_cached_per_options_object() -> None:
    opts = options("{a: {css: p}}")
    plan = plan_for(opts)
    assert plan is not None
    assert plan is plan_for(opts)
    assert (plan.title, plan.has_body_fields) == ("title", True)
    assert plan_for(options("false")) is None


def test_redact_data_masks_every_string() -> None:
    data: dict[str, Any] = {
        "u": "http://a.test/?k=SECRET",
        "l": ["SECRET", 1, None],
        "n": {"x": "SECRET!"},
    }
    masked = redact_data(data, lambda s: s.replace("SECRET", "***"))
    assert masked == {"u": "http://a.test/?k=***", "l": ["***", 1, None], "n": {"x": "***!"}}


# ------------------------------------------------------------------ quick title

_PIECES = [
    b"<!doctype html>", b"<!DOCTYPE html PUBLIC '-//W3C//DTD'>", b"<html lang=\"en\">",
    b"<head>", b"</head>", b"<body>", b"<meta charset=\"utf-8\">", b"<meta charset=utf-16>",
    b"<meta http-equiv=Content-Type content='text/html; charset=shift_jis'>",
    b"<meta charset=\"windows-1252\">", b"<link rel=stylesheet href=\"/a.css?x=1&y=2\">",
    b"<br/>", b"<p class='a\"b'>", b"</p>", b"<div data-x=\"a>b\">", b"<img alt=\"<title>\">",
    b"<!-- <title>c</title> -->", b"<script>t='<title>s</title>'</script>",
    b"<style>p{}</style>", b"<noscript>x</noscript>", b"<svg><title>Icon</title></svg>",
    b"<textarea><title>t</title></textarea>", b"<?xml version='1.0'?>", b"text ", b"\n",
    b"a &amp; b", b"x\x00y", b"caf\xc3\xa9", b"\xe9", b"\xef\xbb\xbf", b"\x0c", b"<", b">",
    b"<title>", b"</title>", b"<TITLE>", b"<title id=t>", b"<title id=\"t\">", b"</TITLE >",
    b"<table><tr><td>", b"<select><option selected>", b"<pre>", b"<frameset>", b"&", b">",
    b"<input value='>'>", b"<x-y>", b"<titles>", b"<p\n>",
]
_TITLE_TEXT = st.binary(max_size=12) | st.sampled_from(
    [b"page 7", b"  A \t\n B  ", b"a&amp;b", b"x<b>y</b>", b"\x1c\x1f", b"\xc3\xa9", b""]
)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.sampled_from(_PIECES), max_size=8),
    _TITLE_TEXT,
    st.lists(st.sampled_from(_PIECES), max_size=4),
    st.sampled_from([None, "utf-8", "iso-8859-1", "shift_jis", "utf-16"]),
)
def test_quick_title_agrees_with_libxml2(
    before: list[bytes], text: bytes, after: list[bytes], charset: str | None
) -> None:
    """Whenever the regex reads a title, libxml2 reads the same one from those bytes."""
    data = b"".join(before) + b"<title>" + text + b"</title>" + b"".join(after)
    quick = quick_title(data, charset)
    if quick is not None:
        assert quick == title_of(data, _title_end(data, 0, TITLE_SCAN_BYTES), charset)


@pytest.mark.parametrize(
    ("head", "title"),
    [
        (b"<!doctype html><title>page 5</title>\n<p>x", "page 5"),
        (b'<html lang="en"><head><meta charset="utf-8">\n<title>\n A  b\n</title>', "A b"),
        (b"<TITLE>Up</TITLE>", "Up"),
        (b"<title></title>", ""),
    ],
)
def test_plain_heads_take_the_quick_path(head: bytes, title: str) -> None:
    assert quick_title(head, None) == title
    assert title_of(head, _title_end(head, 0, len(head)), None) == title


@pytest.mark.parametrize(
    "head",
    [
        b"<!-- <title>Fake</title> --><title>Real</title>",  # a comment
        b"<script>w('<title>x</title>')</script><title>Real</title>",  # raw text
        b"<svg><title>Icon</title></svg><title>Late</title>",  # foreign content
        b"<title>Shop &amp; more</title>",  # an entity
        b"<title>Caf\xc3\xa9</title>",  # not ASCII
        b"<meta charset=shift_jis><title>a\\b</title>",  # 0x5C is not "\" there
        b"<title>Unclosed",  # the end is in a later chunk (or never comes)
    ],
)
def test_other_heads_go_to_libxml2(head: bytes) -> None:
    assert quick_title(head, None) is None


async def test_quick_titles_need_no_loop_turn() -> None:
    head: CIMultiDict[str] = CIMultiDict({"Content-Type": "text/html"})
    tap = must_tap(open_tap(options(), head, None))
    tap.feed(b"<!doctype html><title>Now</title><p>x</p>")
    tap.feed(b"<p>more</p>")  # nothing kept or scanned after the title
    finish = tap.finish(PAGE_URL)
    with pytest.raises(StopIteration) as done:  # completes on its first step
        finish.send(None)
    assert done.value.value.data == {"title": "Now"}
