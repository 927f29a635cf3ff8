"""Cookie jar and cookie parsing: RFC 6265 rules, security.md CK-01..CK-04, limits, files."""

from __future__ import annotations

import calendar
import logging
import os
import pickle
import stat
import time
from http.cookies import BaseCookie, Morsel, SimpleCookie
from pathlib import Path

import pytest
from yarl import URL

from client.cookie_parse import (
    cookie_header,
    parse_cookie_date,
    parse_max_age,
    parse_set_cookie,
    parse_set_cookie_headers,
)
from client.cookiejar import AbstractCookieJar, CookieJar, DummyCookieJar

LOGGER = "client.cookiejar"
NO_URL = URL()


class FakeClock:
    """A settable clock for expiry tests."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store(jar: AbstractCookieJar, url: str, *fields: str) -> None:
    jar.update_cookies_from_headers(list(fields), URL(url))


def sent(jar: AbstractCookieJar, url: str) -> dict[str, str]:
    return {name: m.value for name, m in jar.filter_cookies(URL(url)).items()}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def jar(clock: FakeClock) -> CookieJar:
    return CookieJar(clock=clock)


# -- Set-Cookie parsing (RFC 6265 §5.2) -------------------------------------------------


def test_parse_name_value_and_attributes() -> None:
    m = parse_set_cookie(" sid = abc ; path=/x; DOMAIN=.Example.com; Secure; HttpOnly=whatever")
    assert m is not None
    assert (m.key, m.value, m.coded_value) == ("sid", "abc", "abc")
    assert m["path"] == "/x"
    assert m["domain"] == ".Example.com"
    assert m["secure"] is True
    assert m["httponly"] is True


def test_parse_last_attribute_wins_and_unknown_ignored() -> None:
    m = parse_set_cookie("a=b; Path=/one; Foo=bar; path=/two; =x; ;;")
    assert m is not None
    assert m["path"] == "/two"


@pytest.mark.parametrize("field", ["novalue", "=value", " =x", "", ";a=b"])
def test_parse_rejects_missing_name_or_equals(field: str) -> None:
    assert parse_set_cookie(field) is None


def test_parse_value_may_contain_equals_and_be_empty() -> None:
    m1 = parse_set_cookie("token=a=b==; Path=/")
    m2 = parse_set_cookie("empty=")
    assert m1 is not None
    assert m1.value == "a=b=="
    assert m2 is not None
    assert m2.value == ""


def test_parse_quoted_value_keeps_coded_value() -> None:
    m = parse_set_cookie('q="a b\\"c"; Path=/')
    assert m is not None
    assert m.value == 'a b"c'
    assert m.coded_value == '"a b\\"c"'


@pytest.mark.parametrize(
    "field",
    [
        "a=b\x01",
        "a\x7f=b",
        "a\x01b=c",
        "a=b; Path=/\x00",
        "a=b\nSet-Cookie: x=y",
        "a=b\rc",
        "a=x\ty",  # HTAB is no cookie-octet
        'a="\\012"',  # an escaped newline is still a CTL once unquoted
    ],
)
def test_parse_rejects_control_characters(field: str) -> None:
    assert parse_set_cookie(field) is None


@pytest.mark.parametrize("name", ["a b", 'a"b', "a,b", "a\\b", "ä"])
def test_parse_rejects_illegal_names(name: str) -> None:
    assert parse_set_cookie(f"{name}=1") is None


def test_parse_accepts_real_world_names() -> None:
    m = parse_set_cookie("user[id]=1")
    assert m is not None
    assert m.key == "user[id]"


def test_parse_pair_limit_is_4096_octets() -> None:
    assert parse_set_cookie("n=" + "v" * 4095) is not None
    assert parse_set_cookie("n=" + "v" * 4096) is None
    assert parse_set_cookie("n=" + "é" * 2048) is None  # 4097 octets in UTF-8


def test_parse_attribute_value_limit_and_count() -> None:
    m = parse_set_cookie("a=b; Path=/" + "p" * 1024)
    assert m is not None
    assert m["path"] == ""
    many = "a=b" + "; Foo=1" * 32 + "; Path=/late"
    m = parse_set_cookie(many)
    assert m is not None
    assert m["path"] == ""
    m = parse_set_cookie("a=b" + "; Foo=1" * 31 + "; Path=/ok")
    assert m is not None
    assert m["path"] == "/ok"


def test_parse_headers_caps_fields_per_response() -> None:
    morsels, dropped = parse_set_cookie_headers([f"c{i}=v" for i in range(60)] + ["bad"])
    assert len(morsels) == 50
    assert dropped == 11


@pytest.mark.parametrize("size", [100 * 1024, 4000])
def test_parse_is_linear_on_backslash_quoted_values(size: int) -> None:
    field = 'a="' + "\\" * size + '"; Path=/'
    start = time.perf_counter()
    for _ in range(10):
        parse_set_cookie(field)
    assert (time.perf_counter() - start) / 10 < 0.05


def test_parse_unquotes_backslash_run_within_limit() -> None:
    m = parse_set_cookie('a="' + "\\\\" * 1000 + '"')
    assert m is not None
    assert m.value == "\\" * 1000


# -- dates (RFC 6265 §5.1.1) and Max-Age -------------------------------------------------

EXPECTED = float(calendar.timegm((1994, 11, 6, 8, 49, 37, 0, 0, 0)))


@pytest.mark.parametrize(
    "text",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # RFC 1123
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850
        "Sun Nov  6 08:49:37 1994",  # asctime
        "Sun, 06-Nov-1994 08:49:37 GMT",  # Netscape
        "06 nov 1994 08:49:37",
        "Sun, 06 Nov 1994 08:49:37 -0000",
        "8:49:37 6 NOVEMBER 94",
    ],
)
def test_cookie_date_formats(text: str) -> None:
    assert parse_cookie_date(text) == EXPECTED


@pytest.mark.parametrize(
    ("text", "year"), [("01 Jan 70 00:00:00", 1970), ("01 Jan 69 00:00:00", 2069)]
)
def test_cookie_date_two_digit_years(text: str, year: int) -> None:
    assert parse_cookie_date(text) == calendar.timegm((year, 1, 1, 0, 0, 0, 0, 0, 0))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage",
        "Sun, 06 Nov 1994 GMT",  # no time
        "Sun, 31 Feb 1994 08:49:37 GMT",  # no such date
        "Sun, 06 Nov 1600 08:49:37 GMT",  # before 1601
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:00 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
    ],
)
def test_cookie_date_failures(text: str) -> None:
    assert parse_cookie_date(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("10", 10), ("-1", -1), ("0", 0), ("+5", None), ("1_0", None), ("\u0665", None), ("5s", None)],
)
def test_max_age_syntax(text: str, expected: int | None) -> None:
    assert parse_max_age(text) == expected


# -- domains, host-only, public suffixes --------------------------------------------------


def test_host_only_cookie_goes_to_its_host_only(jar: CookieJar) -> None:
    store(jar, "http://www.example.com/", "a=1")
    assert sent(jar, "http://www.example.com/") == {"a": "1"}
    assert sent(jar, "http://sub.www.example.com/") == {}
    assert sent(jar, "http://example.com/") == {}
    assert jar.host_only_cookies == {("www.example.com", "", "a")}


@pytest.mark.parametrize("domain", ["example.com", ".example.com", "EXAMPLE.com"])
def test_domain_cookie_goes_to_subdomains(jar: CookieJar, domain: str) -> None:
    store(jar, "http://www.example.com/", f"a=1; Domain={domain}")
    assert sent(jar, "http://example.com/") == {"a": "1"}
    assert sent(jar, "http://x.y.example.com/") == {"a": "1"}
    assert sent(jar, "http://badexample.com/") == {}
    assert jar.host_only_cookies == frozenset()
    assert [m["domain"] for m in jar] == ["example.com"]


@pytest.mark.parametrize(
    "domain", ["example.com.", "other.com", "ample.com", "sub.www.example.com", "..example.com"]
)
def test_domain_not_matching_host_is_refused(jar: CookieJar, domain: str) -> None:
    store(jar, "http://www.example.com/", f"a=1; Domain={domain}")
    assert len(jar) == 0


def test_ck03_cookie_for_ample_not_sent_to_example(jar: CookieJar) -> None:
    store(jar, "http://ample.test/", "a=1", "b=2; Domain=ample.test")
    store(jar, "http://example.test/", "c=3; Domain=ample.test")
    assert sent(jar, "http://example.test/") == {}
    assert sent(jar, "http://ample.test/") == {"a": "1", "b": "2"}


@pytest.mark.parametrize("domain", ["co.uk", "CO.UK", "co.uk.", "com", ".co.uk"])
def test_ck01_public_suffix_domains_are_refused(jar: CookieJar, domain: str) -> None:
    store(jar, "http://x.co.uk/", f"super=1; Domain={domain}")
    assert len(jar) == 0
    assert sent(jar, "http://y.co.uk/") == {}


def test_public_suffix_host_keeps_a_host_only_cookie(jar: CookieJar) -> None:
    store(jar, "https://github.io/", "a=1", "b=2; Domain=github.io")
    assert sent(jar, "https://github.io/") == {"a": "1", "b": "2"}
    assert sent(jar, "https://victim.github.io/") == {}
    store(jar, "https://evil.github.io/", "c=3; Domain=github.io")  # private PSL section
    assert sent(jar, "https://victim.github.io/") == {}


def test_idn_domain_attribute_matches_punycode_host(jar: CookieJar) -> None:
    store(jar, "http://www.bücher.de/", "a=1; Domain=bücher.de")
    assert sent(jar, "http://xn--bcher-kva.de/") == {"a": "1"}


# -- IP hosts (CK-02) -------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:8080", "[::1]", "192.168.0.1"])
def test_ip_hosts_neither_store_nor_receive_by_default(jar: CookieJar, host: str) -> None:
    store(jar, f"http://{host}/", "a=1")
    jar.update_cookies({"b": "2"}, URL(f"http://{host}/"))
    assert len(jar) == 0
    store(jar, "http://example.com/", "c=3")
    assert sent(jar, f"http://{host}/") == {}


def test_ck02_ip_cookie_is_host_only_even_when_unsafe(clock: FakeClock) -> None:
    jar = CookieJar(unsafe=True, clock=clock)
    store(jar, "http://127.0.0.1:8080/", "a=1", "b=2; Domain=0.0.1", "c=3; Domain=127.0.0.1")
    assert sent(jar, "http://127.0.0.1:9090/") == {"a": "1", "c": "3"}
    assert sent(jar, "http://10.127.0.0.1/") == {}
    assert jar.host_only_cookies == {("127.0.0.1", "", "a"), ("127.0.0.1", "", "c")}


def test_shared_cookies_reach_every_host_including_ips(jar: CookieJar) -> None:
    jar.update_cookies({"cookies_are": "working"})
    assert sent(jar, "http://127.0.0.1:1234/cookies") == {"cookies_are": "working"}
    assert sent(jar, "https://any.example/deep/path") == {"cookies_are": "working"}
    assert jar.host_only_cookies == frozenset()
    assert list(jar.cookies) == [("", "")]


def test_set_cookie_without_a_host_is_not_shared(jar: CookieJar) -> None:
    store(jar, "/relative", "a=1")
    assert len(jar) == 0


def test_shared_secure_cookie_only_over_https(jar: CookieJar) -> None:
    m: Morsel[str] = Morsel()
    m.set("s", "1", "1")
    m["secure"] = True
    jar.update_cookies({"s": m})
    assert sent(jar, "http://h.example/") == {}
    assert sent(jar, "https://h.example/") == {"s": "1"}


# -- paths -----------------------------------------------------------------------------


def test_default_path_is_the_request_directory(jar: CookieJar) -> None:
    store(jar, "http://h.example/a/b/c?q=1", "d=1", "e=2; Path=relative", "f=3; Path=")
    assert {m.key: m["path"] for m in jar} == {"d": "/a/b", "e": "/a/b", "f": "/a/b"}
    assert sent(jar, "http://h.example/a/b") == {"d": "1", "e": "2", "f": "3"}
    assert sent(jar, "http://h.example/a") == {}


def test_ck03_path_foo_not_sent_to_foobar(jar: CookieJar) -> None:
    store(jar, "http://h.example/", "a=1; Path=/foo", "b=2; Path=/foo/")
    assert sent(jar, "http://h.example/foobar") == {}
    assert sent(jar, "http://h.example/foo") == {"a": "1"}
    assert sent(jar, "http://h.example/foo/") == {"a": "1", "b": "2"}
    assert sent(jar, "http://h.example/foo/bar") == {"a": "1", "b": "2"}


def test_most_specific_path_first_then_creation_order(jar: CookieJar) -> None:
    store(jar, "http://h.example/", "root=1; Path=/", "deep=2; Path=/a/b", "mid=3; Path=/a")
    store(jar, "http://h.example/", "root2=4; Path=/")
    jar.update_cookies({"shared": "5"})
    assert list(jar.filter_cookies(URL("http://h.example/a/b/c"))) == [
        "deep",
        "mid",
        "root",
        "root2",
        "shared",
    ]


def test_name_clash_most_specific_wins(jar: CookieJar) -> None:
    jar.update_cookies({"a": "shared"})
    store(jar, "http://www.example.com/", "a=domain; Domain=example.com", "a=host")
    assert sent(jar, "http://www.example.com/") == {"a": "host"}
    store(jar, "http://www.example.com/", "a=deep; Path=/x")
    assert sent(jar, "http://www.example.com/x") == {"a": "deep"}


def test_overwrite_keeps_creation_order(jar: CookieJar) -> None:
    store(jar, "http://h.example/", "a=1", "b=2")
    store(jar, "http://h.example/", "a=3")
    assert list(sent(jar, "http://h.example/").items()) == [("a", "3"), ("b", "2")]
    assert len(jar) == 2


# -- Secure (CK-03, RFC 6265bis) ---------------------------------------------------------


def test_secure_cookie_only_over_secure_schemes(jar: CookieJar) -> None:
    store(jar, "https://h.example/", "s=1; Secure", "p=2")
    assert sent(jar, "http://h.example/") == {"p": "2"}
    assert sent(jar, "ws://h.example/") == {"p": "2"}
    assert sent(jar, "https://h.example/") == {"s": "1", "p": "2"}
    assert sent(jar, "wss://h.example/") == {"s": "1", "p": "2"}


def test_insecure_origin_cannot_set_secure_cookie(jar: CookieJar) -> None:
    store(jar, "http://h.example/", "s=1; Secure")
    assert len(jar) == 0


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("http://h.example/", "s=evil"),
        ("http://h.example/", "s=evil; Max-Age=0"),
        ("http://h.example/", "s=evil; Path=/sub"),
        ("http://sub.h.example/", "s=evil; Domain=h.example"),
    ],
)
def test_insecure_origin_leaves_secure_cookies_alone(jar: CookieJar, url: str, field: str) -> None:
    store(jar, "https://h.example/", "s=good; Secure; Domain=h.example")
    store(jar, url, field)
    assert sent(jar, "https://h.example/sub") == {"s": "good"}
    assert len(jar) == 1


def test_insecure_origin_may_set_other_names_and_secure_may_overwrite(jar: CookieJar) -> None:
    store(jar, "https://h.example/", "s=good; Secure")
    store(jar, "http://h.example/", "t=1")
    store(jar, "https://h.example/", "s=newer")
    assert sent(jar, "http://h.example/") == {"t": "1", "s": "newer"}


@pytest.mark.parametrize(
    "origins",
    ["http://h.example", URL("http://h.example:80/x"), ["http://other", URL("http://h.example")]],
)
def test_treat_as_secure_origin(clock: FakeClock, origins: str | URL | list[str | URL]) -> None:
    jar = CookieJar(treat_as_secure_origin=origins, clock=clock)
    store(jar, "http://h.example/", "s=1; Secure")
    assert sent(jar, "http://h.example/") == {"s": "1"}
    assert sent(jar, "http://h.example:8080/") == {}
    assert URL("http://h.example") in jar.treat_as_secure_origin


@pytest.mark.parametrize(
    ("url", "field", "kept"),
    [
        ("https://h.example/", "__Secure-a=1; Secure", True),
        ("https://h.example/", "__Secure-a=1", False),
        ("https://h.example/", "__Host-a=1; Secure; Path=/", True),
        ("https://h.example/", "__host-a=1; Secure; Path=/", True),
        ("https://h.example/", "__Host-a=1; Secure; Path=/x", False),
        ("https://h.example/", "__Host-a=1; Secure; Path=/; Domain=h.example", False),
        ("http://h.example/", "__Secure-a=1; Secure", False),
    ],
)
def test_cookie_name_prefixes(jar: CookieJar, url: str, field: str, kept: bool) -> None:
    store(jar, url, field)
    assert len(jar) == int(kept)


# -- expiry ----------------------------------------------------------------------------


def test_max_age_expires_with_the_clock(jar: CookieJar, clock: FakeClock) -> None:
    store(jar, "http://h.example/", "a=1; Max-Age=60", "b=2")
    clock.now += 59
    assert sent(jar, "http://h.example/") == {"a": "1", "b": "2"}
    clock.now += 1
    assert sent(jar, "http://h.example/") == {"b": "2"}
    assert len(jar) == 1


def test_max_age_wins_over_expires_in_any_order(jar: CookieJar, clock: FakeClock) -> None:
    store(
        jar,
        "http://h.example/",
        "a=1; Max-Age=100; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        "b=2; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=100",
    )
    assert sent(jar, "http://h.example/") == {"a": "1", "b": "2"}
    clock.now += 100
    assert sent(jar, "http://h.example/") == {}


def test_expires_absolute_and_invalid_max_age_ignored(jar: CookieJar, clock: FakeClock) -> None:
    expires = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(clock.now + 3600))
    store(jar, "http://h.example/", f"a=1; Max-Age=+5; Expires={expires}", "b=2; Expires=never")
    m = {c.key: c for c in jar}
    assert m["a"]["max-age"] == ""
    assert m["b"]["expires"] == ""
    clock.now += 3599
    assert sent(jar, "http://h.example/") == {"a": "1", "b": "2"}
    clock.now += 1
    assert sent(jar, "http://h.example/") == {"b": "2"}


@pytest.mark.parametrize(
    "field", ["a=x; Max-Age=0", "a=x; Max-Age=-1", "a=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
)
def test_expired_cookie_deletes_the_stored_one(jar: CookieJar, field: str) -> None:
    store(jar, "http://h.example/", "a=1", "b=2")
    store(jar, "http://h.example/", field)
    assert sent(jar, "http://h.example/") == {"b": "2"}
    assert len(jar) == 1


def test_reset_cookie_does_not_inherit_old_expiry(jar: CookieJar, clock: FakeClock) -> None:
    store(jar, "http://h.example/", "a=1; Max-Age=10")
    store(jar, "http://h.example/", "a=2; Max-Age=1000")
    clock.now += 500
    assert sent(jar, "http://h.example/") == {"a": "2"}
    store(jar, "http://h.example/", "a=3")  # session cookie now
    clock.now += 10_000
    assert sent(jar, "http://h.example/") == {"a": "3"}


def test_huge_max_age_is_capped(jar: CookieJar) -> None:
    store(jar, "http://h.example/", "a=1; Max-Age=" + "9" * 200)
    assert sent(jar, "http://h.example/") == {"a": "1"}


# -- limits (CK-04) --------------------------------------------------------------------


def test_ck04_cookie_bomb_is_capped_with_one_warning(
    jar: CookieJar, caplog: pytest.LogCaptureFixture
) -> None:
    fields = [f"c{i:04}=" + "v" * 100 for i in range(5000)] + ["bad=\x01"]
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        start = time.perf_counter()
        store(jar, "http://bomb.example/", *fields)
        assert time.perf_counter() - start < 0.05
    assert len(jar) == 50
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "4951" in warnings[0].getMessage()


def test_ck04_many_responses_capped_per_domain_and_header(jar: CookieJar) -> None:
    for batch in range(100):
        store(jar, "http://a.bomb.example/", *(f"c{batch}_{i}=" + "v" * 80 for i in range(50)))
    assert 150 <= len(jar) <= 180
    header = cookie_header(jar.filter_cookies(URL("http://a.bomb.example/")), True)
    assert len("Cookie: " + header) <= 8190
    assert header.count("; ") + 1 <= 150


def test_per_domain_limit_counts_the_registrable_domain(jar: CookieJar) -> None:
    for i in range(200):
        store(jar, f"http://h{i}.spam.example/", "a=1")
    assert len(jar) <= 180


def test_eviction_is_least_recently_used_first(clock: FakeClock) -> None:
    jar = CookieJar(max_per_domain=6, clock=clock)
    store(jar, "http://h.example/", *(f"c{i}=v" for i in range(6)))
    store(jar, "http://h.example/", "c0=again")  # refresh c0
    store(jar, "http://h.example/", "new=1")
    # 6 stored: one new cookie makes two go (down to the quota of 5).
    assert set(sent(jar, "http://h.example/")) == {"c0", "c3", "c4", "c5", "new"}


def test_secure_cookies_only_make_way_for_secure_ones(clock: FakeClock) -> None:
    jar = CookieJar(max_per_domain=3, clock=clock)
    store(jar, "https://h.example/", "s1=1; Secure", "s2=2; Secure", "s3=3; Secure")
    store(jar, "https://h.example/", "plain=1")
    assert set(sent(jar, "https://h.example/")) == {"s1", "s2", "s3"}
    store(jar, "https://h.example/", "s4=4; Secure")
    assert "s4" in sent(jar, "https://h.example/")
    assert len(jar) <= 3


def test_expired_cookies_are_evicted_first(clock: FakeClock) -> None:
    jar = CookieJar(max_per_domain=3, clock=clock)
    store(jar, "http://h.example/", "old=1; Max-Age=5", "b=2", "c=3")
    clock.now += 10
    store(jar, "http://h.example/", "d=4")
    assert sent(jar, "http://h.example/") == {"b": "2", "c": "3", "d": "4"}


def test_total_limit(clock: FakeClock) -> None:
    jar = CookieJar(max_total=22, clock=clock)
    for i in range(30):
        store(jar, f"http://site{i}.example/", "a=1")
    assert len(jar) <= 22
    assert sent(jar, "http://site29.example/") == {"a": "1"}
    assert sent(jar, "http://site0.example/") == {}


def test_filter_caps_cookies_per_request(jar: CookieJar) -> None:
    for batch in range(4):
        store(jar, "http://h.example/", *(f"c{batch}_{i}=v" for i in range(50)))
    assert 150 < len(jar) <= 180
    assert len(jar.filter_cookies(URL("http://h.example/"))) == 150


def test_filter_caps_header_octets_keeping_most_specific(jar: CookieJar) -> None:
    big = "v" * 3000
    store(jar, "http://h.example/", *(f"c{i}={big}; Path=/" for i in range(4)))
    store(jar, "http://h.example/", "mine=1; Path=/app")
    filtered = jar.filter_cookies(URL("http://h.example/app"))
    assert next(iter(filtered)) == "mine"
    assert len(filtered) == 3
    assert len("Cookie: " + cookie_header(filtered, True)) <= 8190


# -- the outgoing header ----------------------------------------------------------------


def test_cookie_header_quoting() -> None:
    jar = CookieJar()
    jar.update_cookies({"q": "x y;z", "plain": "v"})
    store(jar, "http://h.example/", 'kept="as sent"')
    assert (
        cookie_header(jar.filter_cookies(URL("http://h.example/")), True)
        == 'kept="as sent"; q="x y\\073z"; plain=v'
    )
    raw = CookieJar(quote_cookie=False)
    raw.update_cookies({"q": "x y"})
    filtered = raw.filter_cookies(URL("http://h.example/"))
    assert filtered["q"].coded_value == "x y"
    assert cookie_header(filtered, False) == "q=x y"


def test_cookie_header_skips_unsafe_pairs_and_caps() -> None:
    cookies: BaseCookie[str] = BaseCookie()
    cookies["ok"] = "1"
    evil: Morsel[str] = Morsel()
    evil.set("evil", "a\r\nX: y", "a\r\nX: y")
    cookies["evil"] = evil
    assert cookie_header(cookies, False) == "ok=1"
    many: BaseCookie[str] = BaseCookie()
    for i in range(200):
        many[f"c{i}"] = "v"
    assert cookie_header(many, True).count(";") == 149
    fat: BaseCookie[str] = BaseCookie()
    for i in range(5):
        fat[f"f{i}"] = "x" * 3000
    assert len("Cookie: " + cookie_header(fat, True)) <= 8190
    long: BaseCookie[str] = BaseCookie()
    long["big"] = "x" * 5000  # over the storage limit, still sendable per request
    assert cookie_header(long, True) == "big=" + "x" * 5000


# -- update_cookies inputs, views, clearing -------------------------------------------------


def test_update_cookies_accepts_mapping_pairs_and_basecookie(jar: CookieJar) -> None:
    simple = SimpleCookie()
    simple["c"] = "3"
    jar.update_cookies({"a": "1"})
    jar.update_cookies([("b", "2")])
    jar.update_cookies(simple)
    assert sent(jar, "http://h.example/") == {"a": "1", "b": "2", "c": "3"}


def test_update_cookies_copies_morsels(jar: CookieJar) -> None:
    m: Morsel[str] = Morsel()
    m.set("a", "1", "1")
    jar.update_cookies({"a": m}, URL("http://h.example/"))
    m.set("a", "changed", "changed")
    assert sent(jar, "http://h.example/") == {"a": "1"}


def test_update_cookies_refuses_bad_names_and_values(
    jar: CookieJar, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        jar.update_cookies({"a b": "1", "ok": "2", "ctl": "x\x00y"})
    assert sent(jar, "http://h.example/") == {"ok": "2"}
    assert len(caplog.records) == 1


def test_cookies_view_is_live_and_read_only(jar: CookieJar) -> None:
    view = jar.cookies
    store(jar, "http://h.example/p/q", "a=1")
    assert view[("h.example", "/p")]["a"].value == "1"
    with pytest.raises(TypeError):
        view[("x", "")] = SimpleCookie()  # type: ignore[index]


def test_clear_with_and_without_predicate(jar: CookieJar) -> None:
    store(jar, "http://h.example/", "a=1", "b=2")
    jar.clear(lambda m: m.key == "a")
    assert sent(jar, "http://h.example/") == {"b": "2"}
    jar.clear()
    assert len(jar) == 0
    assert list(jar) == []


def test_clear_domain_includes_subdomains(jar: CookieJar) -> None:
    store(jar, "http://example.com/", "a=1")
    store(jar, "http://www.example.com/", "b=2")
    store(jar, "http://notexample.com/", "c=3")
    jar.clear_domain("example.com")
    assert [m.key for m in jar] == ["c"]


def test_filter_accepts_str_urls_without_warnings(jar: CookieJar) -> None:
    store(jar, "http://h.example/", "a=1")
    assert jar.filter_cookies("http://h.example")["a"].value == "1"


# -- save / load ----------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path: Path, jar: CookieJar) -> Path:
    store(jar, "https://www.example.com/a/b", "host=1; Secure", "dom=2; Domain=example.com")
    store(jar, "https://www.example.com/", "temp=3; Max-Age=100; HttpOnly")
    jar.update_cookies({"shared": "4"})
    path = tmp_path / "cookies.json"
    jar.save(path)
    return path


def test_save_load_round_trip(saved: Path, clock: FakeClock) -> None:
    loaded = CookieJar(clock=clock)
    loaded.load(saved)
    assert len(loaded) == 4
    assert sent(loaded, "https://www.example.com/a/x") == {
        "host": "1",
        "dom": "2",
        "temp": "3",
        "shared": "4",
    }
    # The host-only flag survives: no leak to a sibling subdomain.
    assert sent(loaded, "https://api.example.com/a/x") == {"dom": "2", "shared": "4"}
    assert ("www.example.com", "/a", "host") in loaded.host_only_cookies
    clock.now += 100  # the absolute deadline was saved, not the relative Max-Age
    assert "temp" not in sent(loaded, "https://www.example.com/")


def test_saved_file_is_private_json(saved: Path) -> None:
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o600
    assert saved.read_text(encoding="utf-8").lstrip().startswith("{")


def test_load_skips_cookies_expired_meanwhile(saved: Path, clock: FakeClock) -> None:
    clock.now += 1000
    loaded = CookieJar(clock=clock)
    loaded.load(saved)
    assert {m.key for m in loaded} == {"host", "dom", "shared"}


def test_load_rejects_pickle_and_keeps_the_jar(tmp_path: Path, jar: CookieJar) -> None:
    store(jar, "http://h.example/", "a=1")
    path = tmp_path / "old.pickle"
    path.write_bytes(pickle.dumps({("h.example", ""): SimpleCookie("a=1")}))
    with pytest.raises(ValueError, match="not a JSON cookie file"):
        jar.load(path)
    assert sent(jar, "http://h.example/") == {"a": "1"}


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        '{"nobar": {}}',
        '{"h.example|": {"a": "x"}}',
        '{"h.example|": {"a": {"key": "a", "value": 1, "coded_value": "1"}}}',
        '{"h.example|": {"a": {"key": "a", "value": "1", "coded_value": "1",'
        ' "expires_timestamp": "soon"}}}',
    ],
)
def test_load_rejects_malformed_json(tmp_path: Path, jar: CookieJar, text: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match="cookie file"):
        jar.load(path)


def test_load_applies_the_same_rules(tmp_path: Path, jar: CookieJar) -> None:
    path = tmp_path / "c.json"
    path.write_text(
        '{"127.0.0.1|": {"ip": {"key": "ip", "value": "1", "coded_value": "1"}},'
        ' "x.co.uk|": {"psl": {"key": "psl", "value": "1", "coded_value": "1", "domain": "co.uk"}},'
        ' "h.example|": {"ok": {"key": "ok", "value": "1", "coded_value": "1",'
        ' "domain": "h.example", "host_only": true}}}',
        encoding="utf-8",
    )
    jar.load(path)
    assert [m.key for m in jar] == ["ok"]
    assert sent(jar, "http://sub.h.example/") == {}
    assert sent(jar, "http://y.co.uk/") == {}


# -- DummyCookieJar and the abstract base ----------------------------------------------------


def test_dummy_jar_ignores_everything() -> None:
    dummy = DummyCookieJar()
    dummy.update_cookies({"a": "1"})
    store(dummy, "http://h.example/", "b=2")
    assert len(dummy) == 0
    assert list(dummy) == []
    assert dummy.filter_cookies(URL("http://h.example/")) == {}
    assert dict(dummy.cookies) == {}
    assert dummy.host_only_cookies == frozenset()
    dummy.clear()
    dummy.clear_domain("h.example")
    assert (dummy.unsafe, dummy.quote_cookie) == (False, True)


def test_abstract_jar_default_header_parsing() -> None:
    class Recording(DummyCookieJar):
        def __init__(self) -> None:
            self.got: list[tuple[str, str]] = []

        def update_cookies(self, cookies: object, response_url: URL = NO_URL) -> None:
            self.got += [(name, m.value) for name, m in cookies]  # type: ignore[attr-defined]

    rec = Recording()
    AbstractCookieJar.update_cookies_from_headers(rec, ["a=1; Path=/", "bad"], URL("http://h/"))
    assert rec.got == [("a", "1")]


# -- performance ----------------------------------------------------------------------------


def test_filter_is_fast_on_a_full_jar(jar: CookieJar) -> None:
    for d in range(300):
        store(jar, f"https://www.site{d}.example/", *(f"c{i}=v{i}; Path=/" for i in range(10)))
    assert len(jar) == 3000
    url = URL("https://www.site150.example/some/deep/path")
    start = time.perf_counter()
    for _ in range(1000):
        assert len(jar.filter_cookies(url)) == 10
    per_call = (time.perf_counter() - start) / 1000
    assert per_call < 0.001  # typically ~10 µs
