"""Public helpers: Basic auth, header parsers, IP/host checks, certificate pinning."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from collections.abc import AsyncIterator
from types import MappingProxyType

import pytest
import trustme
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDictProxy
from yarl import URL

from client.exceptions import ServerFingerprintMismatch
from client.helpers import (
    BasicAuth,
    ContentDisposition,
    Fingerprint,
    MimeType,
    charset_from_content_type,
    check_host,
    content_disposition_filename,
    encode_basic_auth,
    is_ip_address,
    is_json_content_type,
    parse_content_disposition,
    parse_link_header,
    parse_mimetype,
)

# -- BasicAuth --------------------------------------------------------------------


def test_basic_auth_fields_and_encode() -> None:
    auth = BasicAuth("user", "pass")
    assert (auth.login, auth.password, auth.encoding) == ("user", "pass", "latin1")
    assert auth == ("user", "pass", "latin1")
    assert auth.encode() == "Basic " + base64.b64encode(b"user:pass").decode()
    assert BasicAuth("user").encode() == "Basic " + base64.b64encode(b"user:").decode()


def test_basic_auth_encoding_is_used() -> None:
    assert BasicAuth("ü", "é").encode() == "Basic " + base64.b64encode(b"\xfc:\xe9").decode()
    utf8 = BasicAuth("ü", "é", encoding="utf-8").encode()
    assert utf8 == "Basic " + base64.b64encode("ü:é".encode()).decode()


@pytest.mark.parametrize(
    ("login", "password"),
    [
        ("a:b", "x"),
        ("user\r\nX-Injected: 1", ""),
        ("user", "pass\r\nX-Injected: 1"),
        ("user", "pa\nss"),
        ("us\x00er", ""),
        ("user", "\x7f"),
        ("user", "tab\there"),
    ],
)
def test_basic_auth_refuses_injection(login: str, password: str) -> None:
    with pytest.raises(ValueError):
        BasicAuth(login, password)
    with pytest.raises(ValueError):
        encode_basic_auth(login, password)


def test_basic_auth_refuses_none() -> None:
    with pytest.raises(ValueError, match="login"):
        BasicAuth(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="password"):
        BasicAuth("user", None)  # type: ignore[arg-type]


def test_basic_auth_decode_round_trip() -> None:
    header = BasicAuth("user", "p:a:ss").encode()
    assert BasicAuth.decode(header) == BasicAuth("user", "p:a:ss")
    assert BasicAuth.decode("basic " + base64.b64encode(b"u:").decode()) == ("u", "", "latin1")
    utf8 = "Basic " + base64.b64encode("ü:x".encode()).decode()
    assert BasicAuth.decode(utf8, encoding="utf-8").login == "ü"


@pytest.mark.parametrize(
    ("header", "encoding", "match"),
    [
        ("Bearer abc", "latin1", "Unknown authorization method"),
        ("Basic", "latin1", "Invalid credentials"),
        ("Basic !!!notbase64", "latin1", "base64"),
        ("Basic " + base64.b64encode(b"nocolon").decode(), "latin1", "Invalid credentials"),
        ("Basic " + base64.b64encode(b"u:p\r\nX: y").decode(), "latin1", "control"),
        ("Basic " + base64.b64encode(b"\xff:x").decode(), "ascii", "base64"),
    ],
)
def test_basic_auth_decode_errors(header: str, encoding: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BasicAuth.decode(header, encoding=encoding)


def test_encode_basic_auth_defaults_to_utf8() -> None:
    assert encode_basic_auth("user", "pass") == "Basic dXNlcjpwYXNz"
    assert encode_basic_auth("ü") == "Basic " + base64.b64encode("ü:".encode()).decode()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://host/", None),
        ("http://u:p@host/", ("u", "p")),
        ("http://u:p%40x@host/", ("u", "p@x")),
        ("http://u:p%2540x@host/", ("u", "p%40x")),  # decoded exactly once
        ("http://u:p@ss@host/", ("u", "p@ss")),  # split on the last @
        ("http://u@host/", ("u", "")),
        ("http://:p@host/", ("", "p")),
    ],
)
def test_basic_auth_from_url(url: str, expected: tuple[str, str] | None) -> None:
    auth = BasicAuth.from_url(URL(url))
    assert (auth.login, auth.password) == expected if auth is not None else expected is None


def test_basic_auth_from_url_refuses_unsafe_credentials() -> None:
    with pytest.raises(ValueError, match="control"):
        BasicAuth.from_url(URL("http://u:p%0d%0aX:%20y@host/"))
    with pytest.raises(ValueError, match=":"):
        BasicAuth.from_url(URL("http://u%3Ax:p@host/"))
    with pytest.raises(TypeError):
        BasicAuth.from_url("http://u:p@host/")  # type: ignore[arg-type]
    assert BasicAuth.from_url(URL("http://u:p@host/"), encoding="utf-8") == ("u", "p", "utf-8")


# -- Content-Disposition ------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected_type", "expected_params"),
    [
        ("inline", "inline", {}),
        ("ATTACHMENT", "attachment", {}),
        ("attachment; filename=foo.html", "attachment", {"filename": "foo.html"}),
        ('attachment; filename="foo bar.html"', "attachment", {"filename": "foo bar.html"}),
        (
            'attachment; filename="a;b.txt"; size=3',
            "attachment",
            {"filename": "a;b.txt", "size": "3"},
        ),
        ('attachment; filename="\\"q\\".txt"', "attachment", {"filename": '"q".txt'}),
        ('attachment; FileName="x"', "attachment", {"filename": "x"}),
        ("attachment; filename=foo;", "attachment", {"filename": "foo"}),
        ('attachment; filename="/etc/passwd"', "attachment", {"filename": "etc/passwd"}),
        (
            "attachment; filename*=UTF-8''%e2%82%ac%20rates",
            "attachment",
            {"filename*": "€ rates"},
        ),
        (
            "attachment; filename*=iso-8859-1'en'%A3%20rates",
            "attachment",
            {"filename*": "£ rates"},
        ),
        ("attachment; filename*=bogus-charset''x; a=b", "attachment", {"a": "b"}),
        ("attachment; filename*=hex''41; a=b", "attachment", {"a": "b"}),
        ("attachment; filename*=noquotes", "attachment", {}),
        ("attachment; filename=foo; filename=bar", None, {}),
        ("attachment; filename", None, {}),
        ("attachment; filename=foo bar", None, {}),
        ('attachment; filename="unterminated', None, {}),
        ('attachment; filename="a" junk', None, {}),
        ("attach ment; filename=x", None, {}),
        ('"attachment"', None, {}),
        ("", None, {}),
        (None, None, {}),
    ],
)
def test_parse_content_disposition(
    header: str | None, expected_type: str | None, expected_params: dict[str, str]
) -> None:
    assert parse_content_disposition(header) == (expected_type, expected_params)


def test_content_disposition_rfc6266_fallback_prefers_ext_value() -> None:
    header = "attachment; filename=\"EURO rates\"; filename*=utf-8''%e2%82%ac%20rates"
    disptype, params = parse_content_disposition(header)
    assert disptype == "attachment"
    assert content_disposition_filename(params) == "€ rates"
    cd = ContentDisposition(disptype, MappingProxyType(params), "€ rates")
    assert cd.type == "attachment"
    assert cd.parameters["filename"] == "EURO rates"


def test_content_disposition_filename_variants() -> None:
    assert content_disposition_filename({}) is None
    assert content_disposition_filename({"name": "x"}) is None
    assert content_disposition_filename({"filename": "a.txt"}) == "a.txt"
    assert content_disposition_filename({"name": "field"}, name="name") == "field"


def test_content_disposition_continuations() -> None:
    _, params = parse_content_disposition(
        'attachment; filename*0="very long "; filename*1=name; filename*2=".txt"'
    )
    assert content_disposition_filename(params) == "very long name.txt"
    _, params = parse_content_disposition(
        "attachment; filename*0*=UTF-8''%e2%82%ac; filename*1*=%20rates"
    )
    assert content_disposition_filename(params) == "€ rates"
    # Numeric order, not lexicographic: *10 comes after *9.
    parts = {f"filename*{i}": chr(ord("a") + i) for i in range(12)}
    assert content_disposition_filename(parts) == "abcdefghijkl"
    assert content_disposition_filename({"filename*1": "gap"}) is None
    assert content_disposition_filename({"filename*0*": "bogus''x%zz"}) is None


# -- Link --------------------------------------------------------------------------


BASE = URL("https://api.example.test/v1/items?page=1")


def test_parse_link_header_github_style() -> None:
    value = (
        '<https://api.example.test/v1/items?page=2>; rel="next", '
        '<https://api.example.test/v1/items?page=5>; rel="last"'
    )
    links = parse_link_header(value, BASE)
    assert isinstance(links, MultiDictProxy)
    assert list(links) == ["next", "last"]
    assert links["next"]["url"] == URL("https://api.example.test/v1/items?page=2")
    assert links["next"]["rel"] == "next"
    assert links["last"]["url"] == URL("https://api.example.test/v1/items?page=5")


def test_parse_link_header_relative_and_params() -> None:
    value = "</v1/items?page=3>; rel=next; title=\"a, b; c\", <other>; REL='prev'; hreflang=en"
    links = parse_link_header(value, BASE)
    assert links["next"]["url"] == URL("https://api.example.test/v1/items?page=3")
    assert links["next"]["title"] == "a, b; c"
    assert links["prev"]["url"] == URL("https://api.example.test/v1/other")
    assert links["prev"]["hreflang"] == "en"


def test_parse_link_header_without_rel_is_keyed_by_target() -> None:
    links = parse_link_header("<https://x.test/a,b>; type=text/html", BASE)
    assert list(links) == ["https://x.test/a,b"]
    assert links["https://x.test/a,b"]["url"] == URL("https://x.test/a,b")


def test_parse_link_header_skips_junk() -> None:
    value = (
        "garbage, <https://x.test/1>; rel=one, <unterminated; rel=x, ; rel=y, "
        '<https://x.test/2>; rel="two'
    )
    links = parse_link_header(value, BASE)
    assert links["one"]["url"] == URL("https://x.test/1")
    assert "y" not in links
    assert parse_link_header("", BASE) == {}
    assert parse_link_header("<http://[bad>; rel=z", BASE) == {}


# -- Content-Type ------------------------------------------------------------------


def test_parse_mimetype() -> None:
    empty = parse_mimetype("")
    assert (empty[:3], dict(empty.parameters)) == (("", "", ""), {})
    assert parse_mimetype("*")[:3] == ("*", "*", "")
    assert parse_mimetype("application/json")[:3] == ("application", "json", "")
    mt = parse_mimetype('Application/RSS+XML; Charset="UTF-8"; q=0.5')
    assert (mt.type, mt.subtype, mt.suffix) == ("application", "rss", "xml")
    assert dict(mt.parameters) == {"charset": "UTF-8", "q": "0.5"}
    assert parse_mimetype("text/html") is parse_mimetype("text/html")  # cached


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("APPLICATION/JSON", True),
        ("application/problem+json", True),
        ("application/vnd.api+json", True),
        ("application/json-patch+json", True),
        ("application/x-json", False),
        ("application/jsonx", False),
        ("text/json", False),
        ("text/html", False),
        ("", False),
    ],
)
def test_is_json_content_type(value: str, expected: bool) -> None:
    assert is_json_content_type(value) is expected
    assert is_json_content_type(parse_mimetype(value)) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/html; charset=UTF-8", "utf-8"),
        ('text/plain; charset="latin-1"', "iso8859-1"),
        ("text/plain; charset=cp1252", "cp1252"),
        ("text/plain; charset=no-such-codec", None),
        ("text/plain; charset=hex", None),
        ("text/plain; charset=rot13", None),
        ("text/plain", None),
        ("", None),
    ],
)
def test_charset_from_content_type(value: str, expected: str | None) -> None:
    assert charset_from_content_type(value) == expected


# -- IP literals and hosts ---------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "0.0.0.0", "255.255.255.255", "::1", "2001:db8::1", "fe80::1%eth0"]
)
def test_is_ip_address_true(host: str) -> None:
    assert is_ip_address(host)
    assert is_ip_address(host.encode())


@pytest.mark.parametrize(
    "host",
    [
        "",
        None,
        b"",
        "localhost",
        "example.com",
        "127.1",
        "2130706433",
        "0x7f.1",
        "017700000001",
        "256.0.0.1",
        "01.2.3.4",
        "1.2.3",
        "[::1]",
        "1:2:3",
        b"\xff.1.1.1",
        "١٢٧.0.0.1",
    ],
)
def test_is_ip_address_false(host: str | bytes | None) -> None:
    assert not is_ip_address(host)


@pytest.mark.parametrize(
    "host",
    [
        "2130706433",
        "127.1",
        "0x7f.1",
        "017700000001",
        "0x7f000001",
        "0x7f.0.0.1",
        "127.00.0.1",
        "127.0.0.1.",
        "1.2.3.4.5",
        "example.123",
        "example.0x1f",
        "256.1.1.1",
        "0x",
    ],
)
def test_check_host_rejects_non_canonical_ipv4(host: str) -> None:
    with pytest.raises(ValueError, match="canonical"):
        check_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "example.com.",
        "localhost",
        "127.0.0.1",
        "10.1.2.3",
        "::1",
        "fe80::1%eth0",
        "123.example",
        "a1.b2",
        "x.0xg",
        "xn--bcher-kva.example",
    ],
)
def test_check_host_accepts(host: str) -> None:
    check_host(host)


def test_check_host_rejects_empty_and_bad_ipv6() -> None:
    with pytest.raises(ValueError, match="empty"):
        check_host("")
    with pytest.raises(ValueError, match="IPv6"):
        check_host("1:2:3")


# -- junk never breaks the parsers (property tests) --------------------------------

_HEADERISH = st.text(alphabet=st.sampled_from(list("abc=;,\"\\<>/*'% \t\x00é:+0x9")), max_size=60)


@settings(database=None, max_examples=300)  # no .hypothesis/ directory in the tree
@given(st.one_of(st.text(max_size=80), _HEADERISH))
def test_parsers_never_raise_on_junk(value: str) -> None:
    disptype, params = parse_content_disposition(value)
    assert disptype is None or disptype == disptype.lower()
    content_disposition_filename(params)
    links = parse_link_header(value, BASE)
    assert all(isinstance(link["url"], URL) for link in links.values())
    assert isinstance(parse_mimetype(value), MimeType)
    charset_from_content_type(value)
    is_json_content_type(value)
    is_ip_address(value)
    try:
        check_host(value)
    except ValueError:
        pass


# -- Fingerprint -------------------------------------------------------------------


def test_fingerprint_accepts_only_sha256() -> None:
    digest = hashlib.sha256(b"cert").digest()
    assert Fingerprint(digest).fingerprint == digest
    for weak in (hashlib.md5(b"x").digest(), hashlib.sha1(b"x").digest()):
        with pytest.raises(ValueError, match="md5 and sha1 are insecure"):
            Fingerprint(weak)
    with pytest.raises(ValueError, match="invalid length"):
        Fingerprint(b"short")


def test_fingerprint_equality_and_hash() -> None:
    digest = hashlib.sha256(b"cert").digest()
    assert Fingerprint(digest) == Fingerprint(digest)
    assert len({Fingerprint(digest), Fingerprint(digest)}) == 1
    assert Fingerprint(digest) != Fingerprint(hashlib.sha256(b"other").digest())
    assert digest.hex() in repr(Fingerprint(digest))


class _Client(asyncio.Protocol):
    def __init__(self) -> None:
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)


@pytest.fixture
async def tls_endpoint(tls_ca: trustme.CA) -> AsyncIterator[tuple[int, bytes]]:
    """A TLS server on 127.0.0.1; yields (port, DER of its certificate)."""
    leaf = tls_ca.issue_cert("127.0.0.1")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(ctx)
    writers: list[asyncio.StreamWriter] = []

    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        writers.append(w)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    yield server.sockets[0].getsockname()[1], der
    for w in writers:
        w.transport.abort()
    await asyncio.sleep(0)
    server.close()
    await server.wait_closed()


async def _connect(port: int, ctx: ssl.SSLContext | None) -> tuple[asyncio.Transport, _Client]:
    loop = asyncio.get_running_loop()
    return await loop.create_connection(_Client, "127.0.0.1", port, ssl=ctx)


async def test_fingerprint_check_on_real_tls(
    tls_endpoint: tuple[int, bytes], ssl_client_context: ssl.SSLContext
) -> None:
    port, der = tls_endpoint
    transport, proto = await _connect(port, ssl_client_context)
    try:
        Fingerprint(hashlib.sha256(der).digest()).check(transport)
        wrong = hashlib.sha256(b"not the cert").digest()
        with pytest.raises(ServerFingerprintMismatch) as info:
            Fingerprint(wrong).check(transport)
        err = info.value
        assert (err.expected, err.got) == (wrong, hashlib.sha256(der).digest())
        assert (err.host, err.port) == ("127.0.0.1", port)
    finally:
        transport.abort()
        await proto.lost


async def test_fingerprint_fails_closed_without_tls() -> None:
    # A plaintext listener: the pin can never be satisfied (security.md F3).
    accepted: list[asyncio.StreamWriter] = []

    async def handle(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.append(w)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, proto = await _connect(port, None)
    while not accepted:
        await asyncio.sleep(0)
    try:
        with pytest.raises(ServerFingerprintMismatch) as info:
            Fingerprint(hashlib.sha256(b"x").digest()).check(transport)
        assert info.value.got == b""
    finally:
        transport.abort()
        await proto.lost
        for w in accepted:
            w.transport.abort()
        await asyncio.sleep(0)
        server.close()
        await server.wait_closed()
