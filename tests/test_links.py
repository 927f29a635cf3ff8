"""runner.links: links (with lines) from known HTML, Markdown and sitemap documents."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from runner.links import (
    Link,
    SitemapError,
    extract_html,
    extract_markdown,
    extract_sitemap,
    html_ids,
)
from runner.links.html import srcset_urls

PAGE = "https://site.test/docs/page.html"

HTML_DOC = b"""<!DOCTYPE html>
<html><head>
<link rel="stylesheet" href="/css/site.css">
<script src="js/app.js"></script>
<meta http-equiv="Refresh" content="0; URL='/moved?a=1#top'">
</head><body>
<a href="other.html#sec-2">Other   <b>page</b></a>
<img src="//cdn.test/logo.png" alt="Logo"
     srcset="small.jpg 480w, https://img.test/big,crop.jpg 1024w, x.png">
<iframe src="https://video.test/embed/1"></iframe>
<video><source src="clip.webm" srcset="a.webp 1x, b.webp 2x"></video>
<a href="mailto:me@site.test">mail</a> <a href="javascript:void(0)">js</a>
<a name="anchor">no href</a><div id="main"></div>
</body></html>
"""


def urls(links: list[Link]) -> list[tuple[str, str, int]]:
    return [(link.kind, link.url, link.line) for link in links]


def test_html_every_tag_kind_with_lines() -> None:
    links = extract_html(HTML_DOC, PAGE, source="page.html")
    assert urls(links) == [
        ("link", "https://site.test/css/site.css", 3),
        ("script", "https://site.test/docs/js/app.js", 4),
        ("meta-refresh", "https://site.test/moved?a=1", 5),
        ("a", "https://site.test/docs/other.html", 7),
        # libxml2 reports the line where a start tag ends (documented in html.py).
        ("img", "https://cdn.test/logo.png", 9),
        ("srcset", "https://site.test/docs/small.jpg", 9),
        ("srcset", "https://img.test/big,crop.jpg", 9),
        ("srcset", "https://site.test/docs/x.png", 9),
        ("iframe", "https://video.test/embed/1", 10),
        ("source", "https://site.test/docs/clip.webm", 11),
        ("srcset", "https://site.test/docs/a.webp", 11),
        ("srcset", "https://site.test/docs/b.webp", 11),
        ("a", "mailto:me@site.test", 12),
        ("a", "javascript:void(0)", 12),
    ]
    assert links[2].fragment == "top"
    assert links[3].fragment == "sec-2"
    assert links[3].text == "Other page"
    assert links[4].text == "Logo"
    assert all(link.source == "page.html" for link in links)


def test_html_base_href_first_one_wins_and_is_resolved() -> None:
    body = """<html><head><base target="_blank"><base href="../assets/">
<base href="https://elsewhere.test/"></head>
<body><a href="x.html">x</a><a href="/root">r</a><a href="#frag">f</a>
<a href="//other.test/p">p</a><a href="https://abs.test/q?a#">q</a></body></html>"""
    links = extract_html(body, PAGE, source="s")
    assert [link.url for link in links] == [
        "https://site.test/assets/x.html",
        "https://site.test/root",
        "https://site.test/assets/",
        "https://other.test/p",
        "https://abs.test/q?a",
    ]
    assert links[4].fragment is None
    assert links[2].fragment == "frag"
    assert [link.line for link in links] == [3, 3, 3, 4, 4]


def test_html_attribute_whitespace_and_empty_href() -> None:
    body = '<a href="  /a\n/b\t ">x</a><a href="">self</a><a>none</a><a href="#">top</a>'
    links = extract_html(body, PAGE, source="s")
    assert [(link.url, link.fragment) for link in links] == [
        ("https://site.test/a/b", None),
        (PAGE, None),
        (PAGE, None),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("0; url=/a", "https://site.test/a"),
        ("5;URL = 'b c.html'", "https://site.test/docs/b c.html"),
        ('3, url="/q" ignored', "https://site.test/q"),
        ("0;/bare", "https://site.test/bare"),
        ("  10  ", None),
        ("0; url=", None),
    ],
)
def test_meta_refresh_forms(content: str, expected: str | None) -> None:
    attr = content.replace('"', "&quot;")
    body = f'<meta http-equiv="refresh" content="{attr}"><meta name="x" content="0;url=/no">'
    links = extract_html(body, PAGE, source="s")
    assert [link.url for link in links] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("srcset", "expected"),
    [
        ("a.png", ["a.png"]),
        ("a.png 1x,b.png 2x", ["a.png", "b.png"]),
        (" a,b.png 100w , c.png 2x ", ["a,b.png", "c.png"]),
        ("a.png, b.png,,", ["a.png", "b.png"]),
        (
            "data:image/png;base64,AAA 1x, c.png (x, y) 2x, d.png",
            ["data:image/png;base64,AAA", "c.png", "d.png"],
        ),
        ("", []),
    ],
)
def test_srcset_descriptors(srcset: str, expected: list[str]) -> None:
    assert list(srcset_urls(srcset)) == expected


def test_malformed_html_recovers_with_lines() -> None:
    body = (
        b"<div><p>unclosed <a href=one.html>one\n<table><a href='two.html'>two</td>\n"
        b'<img src=three.png <a href="four.html">\x00<!-- <a href=no.html> -->\n'
        b"<script>var s = '<a href=\"no2.html\">';</script><a href=five.html>"
    )
    links = extract_html(body, PAGE, source="s")
    found = [(link.url.rsplit("/", 1)[1], link.line) for link in links]
    assert ("one.html", 1) in found
    assert ("two.html", 2) in found
    assert ("five.html", 4) in found
    assert not any(name.startswith("no") for name, _ in found)


def test_html_encodings_and_empty_bodies() -> None:
    latin = '<meta charset="iso-8859-1"><a href="/caf\xe9">caf\xe9</a>'.encode("latin-1")
    assert extract_html(latin, PAGE, source="s")[0].text == "caf\xe9"
    utf8 = '<a href="/x">\u2713 done</a>'.encode()
    assert extract_html(utf8, PAGE, source="s")[0].text == "\u2713 done"
    assert extract_html(utf8, PAGE, source="s", charset="bogus-charset") == []
    assert extract_html(b"", PAGE, source="s") == []
    assert extract_html("  \n ", PAGE, source="s") == []


def test_html_ids_for_fragment_checks() -> None:
    assert html_ids(HTML_DOC) == {"main", "anchor"}
    assert html_ids('<h2 id="a">x</h2><span name="n" id="b"></span><a name="c"></a>') == {
        "a",
        "b",
        "c",
    }
    assert html_ids(b"") == set()


def test_html_large_page_is_fast() -> None:
    row = '<div><a href="/p/{0}">Item {0}</a><img src="i/{0}.png" srcset="a.png 1x, b 2x"></div>\n'
    body = "<html><body>" + "".join(row.format(i) for i in range(1500)) + "</body></html>"
    started = time.perf_counter()
    links = extract_html(body, PAGE, source="s")
    assert time.perf_counter() - started < 1.0
    assert len(links) == 1500 * 4
    assert links[-4].url == "https://site.test/p/1499"
    assert links[-4].line == 1500


MARKDOWN = """# Title with [inline](a.md "A title") and ![img](img/x.png)

See [the docs][Docs Ref], [collapsed][], [Shortcut] and [not a ref].
Wrapped [link
text](wrapped.md) and <https://auto.test/x?y=1#z> plus <someone@mail.test>.
Escaped \\[not](link.md) and `[code](span.md)` and ``a `[b](c.md)` d``.
[![badge](https://ci.test/badge.svg)](https://ci.test/run)
[nested [brackets]](nested.md) [paren](<with space.md>) [p](foo_(bar).md#s)

```python
[fenced](fenced.md) <https://fenced.test>
```

~~~~
[tilde](tilde.md)
```
still fenced
~~~~

    [indented](indented.md)

- item
    [list continuation](cont.md)

[docs ref]: https://docs.test/guide "Guide"
[Collapsed]: <collapsed.md>
[shortcut]: /short%20cut
  [unused]: unused.md 'never referenced'
[docs ref]: https://second-definition.test/ignored
"""


def test_markdown_links_with_lines() -> None:
    links = extract_markdown(MARKDOWN, "https://site.test/docs/", source="README.md")
    assert [(link.kind, link.url, link.line) for link in links] == [
        ("markdown", "https://site.test/docs/a.md", 1),
        ("markdown", "https://site.test/docs/img/x.png", 1),
        ("markdown-ref", "https://docs.test/guide", 3),
        ("markdown-ref", "https://site.test/docs/collapsed.md", 3),
        ("markdown-ref", "https://site.test/short%20cut", 3),
        ("markdown", "https://site.test/docs/wrapped.md", 4),
        ("autolink", "https://auto.test/x?y=1", 5),
        ("autolink", "mailto:someone@mail.test", 5),
        ("markdown", "https://ci.test/run", 7),
        ("markdown", "https://ci.test/badge.svg", 7),
        ("markdown", "https://site.test/docs/nested.md", 8),
        ("markdown", "https://site.test/docs/with space.md", 8),
        ("markdown", "https://site.test/docs/foo_(bar).md", 8),
        ("markdown", "https://site.test/docs/cont.md", 23),
        ("markdown-ref", "https://site.test/docs/unused.md", 28),
    ]
    by_url = {link.url: link for link in links}
    assert by_url["https://site.test/docs/a.md"].text == "inline"
    assert by_url["https://site.test/docs/img/x.png"].text == "img"
    assert by_url["https://docs.test/guide"].text == "the docs"
    assert by_url["https://site.test/docs/wrapped.md"].text == "link text"
    assert by_url["https://auto.test/x?y=1"].fragment == "z"
    assert by_url["https://site.test/docs/foo_(bar).md"].fragment == "s"
    assert by_url["https://site.test/docs/unused.md"].text is None
    assert all(link.source == "README.md" for link in links)


def test_markdown_escapes_entities_and_unclosed_fence() -> None:
    text = "[a](a\\).md) [b](x.md?p=1&amp;q=2) [c](  spaced.md  'T' )\n```\n[in](fence.md)\n"
    links = extract_markdown(text, "https://h.test/", source="s")
    assert [link.url for link in links] == [
        "https://h.test/a).md",
        "https://h.test/x.md?p=1&q=2",
        "https://h.test/spaced.md",
    ]


def test_markdown_lists_and_indented_code() -> None:
    text = (
        "1. first [one](one.md)\n\n    continued [two](two.md)\n\n"
        "para\n\n    code [no](no.md)\n\tcode [no2](no2.md)\n"
        "``` not-a-fence ` info\n[three](three.md)\n"
    )
    links = extract_markdown(text, "https://h.test/d/", source="s")
    assert [(link.url, link.line) for link in links] == [
        ("https://h.test/d/one.md", 1),
        ("https://h.test/d/two.md", 3),
        ("https://h.test/d/three.md", 10),
    ]


def test_markdown_not_links() -> None:
    text = "[x] (gap.md) [y](unterminated.md \"t\" [z]() <not an autolink> <a href='h.md'>\n"
    assert extract_markdown(text, "https://h.test/", source="s") == []


def test_markdown_hostile_input_is_linear() -> None:
    text = "[" * 50_000 + "](x)" + "`" * 3 + " `` " * 10_000 + "\n" + "[a](" * 10_000
    started = time.perf_counter()
    extract_markdown(text, "https://h.test/", source="s")
    assert time.perf_counter() - started < 5.0


SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
URLSET = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="{SITEMAP_NS}">
  <!-- a comment <loc>https://no.test/</loc> -->
  <url>
    <loc>https://site.test/</loc>
    <lastmod>2024-01-01</lastmod>
  </url>
  <url><loc>
     https://site.test/a?x=1&amp;y=2#frag
  </loc></url>
  <url><loc></loc></url>
  <other><loc>https://ignored.test/</loc></other>
</urlset>
""".encode()


def test_sitemap_urlset() -> None:
    links, is_index = extract_sitemap(URLSET, source="https://site.test/sitemap.xml")
    assert not is_index
    assert urls(links) == [
        ("sitemap", "https://site.test/", 5),
        ("sitemap", "https://site.test/a?x=1&y=2", 8),
    ]
    assert links[1].fragment == "frag"
    assert links[0].source == "https://site.test/sitemap.xml"


def test_sitemap_index_without_namespace_and_relative_loc() -> None:
    body = (
        b"<sitemapindex><sitemap><loc>/sm-1.xml</loc></sitemap>\n<sitemap>\n<loc>"
        b"https://site.test/sm-2.xml.gz</loc><lastmod>2024</lastmod></sitemap></sitemapindex>"
    )
    links, is_index = extract_sitemap(body, source="https://site.test/sitemap_index.xml")
    assert is_index
    assert urls(links) == [
        ("sitemap-index", "https://site.test/sm-1.xml", 1),
        ("sitemap-index", "https://site.test/sm-2.xml.gz", 3),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x1f\x8b\x08\x00rest", "gzip"),
        (b"<urlset><url><loc>x</loc></url>", "well-formed"),
        (b"", "well-formed"),
        (b"<html><body/></html>", "<html>"),
        (b'<!DOCTYPE urlset SYSTEM "http://127.0.0.1:9/x.dtd"><urlset/>', "DOCTYPE"),
    ],
)
def test_sitemap_refused(body: bytes, message: str) -> None:
    with pytest.raises(SitemapError, match=message):
        extract_sitemap(body, source="s")


def test_sitemap_xxe_reads_no_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE urlset [<!ENTITY x SYSTEM "{secret.as_uri()}">]>'
        f'<urlset xmlns="{SITEMAP_NS}"><url><loc>https://a.test/&x;</loc></url></urlset>'
    ).encode()
    with pytest.raises(SitemapError) as caught:
        extract_sitemap(body, source="s")
    assert "TOP-SECRET" not in str(caught.value)


def test_sitemap_billion_laughs_is_not_expanded() -> None:
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{n} "{("&lol" + (str(n - 1) if n > 1 else "") + ";") * 10}">'
        for n in range(1, 10)
    )
    body = (
        f'<?xml version="1.0"?><!DOCTYPE urlset [{entities}]>'
        f"<urlset><url><loc>https://a.test/&lol9;</loc></url></urlset>"
    ).encode()
    started = time.perf_counter()
    # Refused by libxml2's amplification guard or by our DOCTYPE rule: never expanded.
    with pytest.raises(SitemapError, match=r"DOCTYPE|amplification"):
        extract_sitemap(body, source="s")
    assert time.perf_counter() - started < 1.0


def test_link_is_frozen() -> None:
    link = extract_markdown("<https://a.test/>", "", source="s")[0]
    with pytest.raises(AttributeError):
        link.url = "x"  # type: ignore[misc]
