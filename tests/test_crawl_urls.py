"""URL normalization (RFC 3986 §6.2.2) and crawl scope."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from jobs import CrawlScope
from runner.crawl.scope import Scope
from runner.crawl.urlnorm import MAX_URL_LENGTH, host_key, normalize

NORMAL = [
    # case: scheme and host lower-case, path and query as written
    ("HTTP://Example.COM/Path?Q=A", "http://example.com/Path?Q=A"),
    ("hTTpS://WWW.example.com", "https://www.example.com/"),
    # default ports dropped, others kept, leading zeros and an empty port go
    ("http://h:80/a", "http://h/a"),
    ("https://h:443/a", "https://h/a"),
    ("https://h:80/a", "https://h:80/a"),
    ("http://h:443/a", "http://h:443/a"),
    ("http://h:8080/a", "http://h:8080/a"),
    ("http://h:0080/a", "http://h/a"),
    ("http://h:/a", "http://h/a"),
    ("http://h:65535/", "http://h:65535/"),
    # empty path
    ("http://h", "http://h/"),
    ("http://h?x=1", "http://h/?x=1"),
    ("http://h#top", "http://h/"),
    # dot segments (RFC 3986 §5.2.4)
    ("http://h/a/./b/../c", "http://h/a/c"),
    ("http://h/a/b/..", "http://h/a/"),
    ("http://h/../../x", "http://h/x"),
    ("http://h/./", "http://h/"),
    ("http://h/a/%2e%2E/b", "http://h/b"),
    ("http://h/.well-known/x", "http://h/.well-known/x"),
    ("http://h/a.b/c..d/", "http://h/a.b/c..d/"),
    ("http://h/q?p=/../x", "http://h/q?p=/../x"),  # not in the query
    # percent-encoding: unreserved decoded, hex upper, %2F kept encoded
    ("http://h/%7euser/%7Efoo", "http://h/~user/~foo"),
    ("http://h/%41%62%2d%5F", "http://h/Ab-_"),
    ("http://h/a%2fb", "http://h/a%2Fb"),
    ("http://h/%e2%82%ac", "http://h/%E2%82%AC"),
    ("http://h/?q=%7e&r=%2b", "http://h/?q=~&r=%2B"),
    ("http://h/%zz%", "http://h/%25zz%25"),
    # characters that need escaping, as the client sends them
    ("http://h/a b/é", "http://h/a%20b/%C3%A9"),
    ("http://h/a[b]|c", "http://h/a%5Bb%5D%7Cc"),
    ("http://h/a\\b", "http://h/a%5Cb"),
    # query order and repeated keys kept; an empty query dropped
    ("http://h/?b=2&a=1&b=1", "http://h/?b=2&a=1&b=1"),
    ("http://h/?a&&b", "http://h/?a&&b"),
    ("http://h/?", "http://h/"),
    # fragments dropped, whatever they hold
    ("http://h/p#frag", "http://h/p"),
    ("http://h/p?q#f?g/../h", "http://h/p?q"),
    # // in the path is a path, not an authority
    ("http://h//a//b", "http://h//a//b"),
    # IDNA hosts as punycode; already-punycode hosts as they are
    ("http://Bücher.de/x", "http://xn--bcher-kva.de/x"),
    ("http://xn--bcher-kva.de/x", "http://xn--bcher-kva.de/x"),
    # IPv4 and IPv6 literals (IPv6 compressed, lower-case)
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("http://[0:0:0:0:0:0:0:1]/", "http://[::1]/"),
    ("http://[2001:DB8::A]:443/", "http://[2001:db8::a]:443/"),
    ("https://[2001:db8::a]:443/", "https://[2001:db8::a]/"),
    # whitespace around, tab/newline inside (as browsers read hrefs)
    ("  http://h/a\n  ", "http://h/a"),
    ("http://h/a\tb\r\nc", "http://h/abc"),
    # host trailing dot kept (another name for DNS caching purposes)
    ("http://h./", "http://h./"),
]

REFUSED = [
    "",
    "/relative/path",
    "relative",
    "//h/scheme-relative",
    "ftp://h/",
    "mailto:someone@example.com",
    "javascript:alert(1)",
    "data:text/html,hi",
    "file:///etc/passwd",
    "http:/x",
    "http:x",
    "http:///x",
    "http://",
    # userinfo, even empty
    "http://user:pass@h/",
    "http://user@h/",
    "http://@h/",
    "http://:@h/",
    # bad ports
    "http://h:0/",
    "http://h:65536/",
    "http://h:99999/",
    "http://h:abc/",
    "http://h:-1/",
    "http://h:123456/",
    # bad hosts
    "http://exa mple.com/",
    "http://-h/",
    "http://%41.com/",
    "http://[::1/",
    "http://[fe80::1%25eth0]/",
    "http://h<>/",
    # overlong
    "http://h/" + "a" * MAX_URL_LENGTH,
]


@pytest.mark.parametrize(("url", "expected"), NORMAL)
def test_normal_form(url: str, expected: str) -> None:
    assert normalize(url) == expected
    assert normalize(expected) == expected  # idempotent


@pytest.mark.parametrize("url", REFUSED)
def test_refused(url: str) -> None:
    assert normalize(url) is None


def test_non_strings_are_refused_not_raised() -> None:
    assert normalize(None) is None  # type: ignore[arg-type]
    assert normalize(b"http://h/") is None  # type: ignore[arg-type]


def test_length_cap_counts_the_escaped_form() -> None:
    assert normalize("http://h/" + "a" * (MAX_URL_LENGTH - 9)) is not None
    assert normalize("http://h/" + "a" * (MAX_URL_LENGTH - 8)) is None
    # 2000 characters that each become %XX%XX: over the cap once escaped
    assert normalize("http://h/" + "é" * 2000) is None


@pytest.mark.parametrize(("url", "expected"), NORMAL)
def test_normal_form_is_what_the_client_sends(url: str, expected: str) -> None:
    # The client builds request URLs with yarl: the normal form must come back unchanged.
    assert str(URL(expected)) == expected


URL_PIECES = st.sampled_from(
    [*"aAzZ09.-_~/%?#:@!$&'()*+,;=[] \\é", "%2f", "%7e", "%7E", "%41", "%e2%82%ac", "/./", "/../"]
)
HOSTS = st.sampled_from(
    ["h", "H", "Example.COM", "a..b", "1.2.3.4", "[::1]", "bücher.de", "h.", "h_x", "-a"]
)
PORTS = st.sampled_from(["", ":", ":80", ":443", ":8080", ":0", ":65536", ":0080"])


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["http", "https", "HTTP", "ftp"]),
    HOSTS,
    PORTS,
    st.lists(URL_PIECES, max_size=12).map("".join),
)
def test_normal_forms_are_fixed_points(scheme: str, host: str, port: str, rest: str) -> None:
    url = f"{scheme}://{host}{port}{rest}"
    normal = normalize(url)
    if normal is None:
        return
    assert normalize(normal) == normal
    assert str(URL(normal)) == normal
    assert "#" not in normal
    assert normal.startswith(("http://", "https://"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_normalize_never_raises(text: str) -> None:
    for url in (text, "http://" + text, "https://h/" + text, "http://[" + text):
        result = normalize(url)
        assert result is None or normalize(result) == result


HOST_KEYS = [
    ("http://h/", "h"),
    ("http://H:80/", "h"),
    ("https://h:443/x", "h"),
    ("https://h:8443/x", "h:8443"),
    ("http://Bücher.de:81/", "xn--bcher-kva.de:81"),
    ("http://[::1]:8080/", "[::1]:8080"),
    ("http://[::1]/", "[::1]"),
]


@pytest.mark.parametrize(("url", "expected"), HOST_KEYS)
def test_host_key(url: str, expected: str) -> None:
    assert host_key(url) == expected


@pytest.mark.parametrize(("url", "_"), NORMAL + HOST_KEYS)
def test_host_key_is_the_engines_key_of_the_normal_form(url: str, _: str) -> None:
    normal = normalize(url)
    assert normal is not None
    # runner.engine keys its host slots on the lower-cased netloc, credentials off.
    assert host_key(url) == urlsplit(normal).netloc.lower().rpartition("@")[2]


def test_host_key_falls_back_for_urls_that_do_not_normalize() -> None:
    assert host_key("http://user:pw@Some.Host:99999/") == "some.host:99999"
    assert host_key("ftp://Files.Example/") == "files.example"
    assert host_key("not a url") == ""
    assert host_key("http://[::1/") == ""


# -- scope ---------------------------------------------------------------------------

SEEDS = ["http://Site.example/docs/", "http://other.example:8080/"]


def test_same_host_allows_the_seeds_hosts_only() -> None:
    scope = Scope(CrawlScope(), SEEDS)
    assert scope.hosts == frozenset({"site.example", "other.example:8080"})
    assert scope.reason("http://site.example/anything") is None
    assert scope.reason("HTTP://SITE.EXAMPLE:80/x") is None
    assert scope.reason("http://other.example:8080/x") is None
    assert scope.reason("http://other.example/x") == "other host"  # port 80 is another host
    assert scope.reason("http://sub.site.example/") == "other host"
    assert scope.reason("https://elsewhere.example/") == "other host"


def test_any_host_when_same_host_is_off() -> None:
    scope = Scope(CrawlScope(same_host=False), SEEDS)
    assert scope.hosts is None
    assert scope.reason("https://elsewhere.example/") is None


def test_not_http_is_out_of_scope() -> None:
    scope = Scope(CrawlScope(same_host=False), SEEDS)
    assert scope.reason("mailto:x@site.example") == "not an http(s) URL"
    assert scope.reason("http://u:p@site.example/") == "not an http(s) URL"


def test_prefixes_are_compared_in_normal_form() -> None:
    spec = CrawlScope(prefixes=("HTTP://Site.Example:80/docs/", "http://site.example/api"))
    scope = Scope(spec, SEEDS)
    assert scope.reason("http://site.example/docs/") is None
    assert scope.reason("http://site.example/docs/a/b") is None
    assert scope.reason("http://site.example/x/../docs/a") is None
    assert scope.reason("http://site.example/api/v1") is None
    assert scope.reason("http://site.example/apiary") is None  # a prefix is a prefix
    assert scope.reason("http://site.example/doc") == "outside prefix"
    assert scope.reason("http://site.example/blog/") == "outside prefix"


def test_host_is_checked_before_prefix() -> None:
    scope = Scope(CrawlScope(prefixes=("http://site.example/docs/",)), SEEDS)
    assert scope.reason("http://evil.example/docs/") == "other host"


def test_include_must_match_one() -> None:
    spec = CrawlScope(include=(r"/docs/", r"\.html$"))
    scope = Scope(spec, SEEDS)
    assert scope.reason("http://site.example/docs/x") is None
    assert scope.reason("http://site.example/a.html") is None
    assert scope.reason("http://site.example/a.pdf") == "not included"


def test_exclude_names_the_pattern_that_matched() -> None:
    spec = CrawlScope(include=(r"/docs/",), exclude=(r"\?print=", r"/private/"))
    scope = Scope(spec, SEEDS)
    assert scope.reason("http://site.example/docs/a") is None
    assert scope.reason("http://site.example/docs/a?print=1") == r"excluded by \?print="
    assert scope.reason("http://site.example/docs/private/x") == "excluded by /private/"
    assert scope.reason("http://site.example/blog/private/x") == "not included"


def test_regexes_see_the_normal_form() -> None:
    scope = Scope(CrawlScope(exclude=(r"^http://site\.example/~",)), SEEDS)
    assert scope.reason("HTTP://SITE.example:80/%7ejoe#x") == r"excluded by ^http://site\.example/~"
    scope = Scope(CrawlScope(include=(r"#",)), SEEDS)
    assert scope.reason("http://site.example/a#frag") == "not included"  # fragment gone
