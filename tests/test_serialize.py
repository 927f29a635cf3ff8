"""Request serialization (client/serialize.py): byte-exact heads, and the
security.md A1-A3 injection attempts rejected before anything reaches the wire."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from yarl import URL

from client.serialize import (
    LAST_CHUNK,
    check_header_name,
    check_header_value,
    check_method,
    encode_chunk,
    encode_request_head,
    request_target,
)

# -- byte-exact heads ----------------------------------------------------------------


def test_request_head_is_byte_exact() -> None:
    head = encode_request_head(
        "GET",
        "/path?q=1",
        (1, 1),
        [("Host", "example.com"), ("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate")],
    )
    assert head == (
        b"GET /path?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n"
        b"Accept-Encoding: gzip, deflate\r\n\r\n"
    )


def test_http10_head_without_headers() -> None:
    assert encode_request_head("HEAD", "/", (1, 0), []) == b"HEAD / HTTP/1.0\r\n\r\n"


def test_repeated_headers_keep_their_order() -> None:
    head = encode_request_head(
        "POST", "/", (1, 1), iter([("Cookie", "a=1"), ("X-A", "1"), ("Cookie", "b=2")])
    )
    assert head == b"POST / HTTP/1.1\r\nCookie: a=1\r\nX-A: 1\r\nCookie: b=2\r\n\r\n"


def test_header_values_are_utf8_and_may_hold_htab() -> None:
    head = encode_request_head("GET", "/", (1, 1), [("X-Name", "Zoë\tx"), ("X-Empty", "")])
    assert head == "GET / HTTP/1.1\r\nX-Name: Zoë\tx\r\nX-Empty: \r\n\r\n".encode()


def test_method_is_returned_as_given() -> None:
    assert check_method("get") == "get"
    assert check_method("M-SEARCH") == "M-SEARCH"


# -- request targets -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin_form", "absolute_form"),
    [
        ("http://h", "/", "http://h/"),
        ("http://h/p?q=1#frag", "/p?q=1", "http://h/p?q=1"),
        ("http://u:p@h:8080/a b?x=ü", "/a%20b?x=%C3%BC", "http://h:8080/a%20b?x=%C3%BC"),
        ("http://[::1]:80/x", "/x", "http://[::1]/x"),
        ("https://bücher.example/", "/", "https://xn--bcher-kva.example/"),
    ],
)
def test_request_target_forms(url: str, origin_form: str, absolute_form: str) -> None:
    assert request_target(URL(url)) == origin_form
    assert request_target(URL(url), absolute_form=True) == absolute_form


def test_relative_url_gets_a_slash() -> None:
    assert request_target(URL("?a=1")) == "/?a=1"
    assert request_target(URL("")) == "/"


def test_query_params_with_crlf_are_percent_encoded() -> None:
    # REQ-02: params={"a": "x\r\ny"} reaches the wire encoded, never raw.
    url = URL("http://h/p").with_query({"a": "x\r\ny", "b": "1 2"})
    target = request_target(url)
    assert target == "/p?a=x%0D%0Ay&b=1+2"
    assert request_target(URL("http://h/p?q=1 HTTP/1.1\r\nX-Inj: 1")).count(" ") == 0


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/a\r\nX-Inj: 1", ""),
        ("/a b", ""),
        ("/a\x00", ""),
        ("/a\tb", ""),
        ("/\x7f", ""),
        ("/ü", ""),
        ("/", "q=1 HTTP/1.1\r\nHost: evil"),
    ],
)
def test_raw_url_parts_with_sp_or_ctl_are_rejected(path: str, query: str) -> None:
    # A2: yarl keeps pre-encoded parts as given; the serializer must refuse them.
    url = URL.build(scheme="http", host="h", path=path, query_string=query, encoded=True)
    with pytest.raises(ValueError, match="request target"):
        request_target(url)
    with pytest.raises(ValueError, match="request target"):
        request_target(url, absolute_form=True)


@pytest.mark.parametrize("target", ["", "/a b", "/a\r\n", "/\x00", "/é", "* HTTP/1.1\r\nX: y"])
def test_encode_request_head_rechecks_the_target(target: str) -> None:
    with pytest.raises(ValueError, match="request target"):
        encode_request_head("GET", target, (1, 1), [])


# -- A1: method and version ------------------------------------------------------------


@pytest.mark.parametrize(
    "method",
    ["GET / HTTP/1.1\r\nHost: evil\r\n\r\nGET", "GE T", "", "GET\n", "GET\r", "G\x00T", "GÉT",
     "GET:", "(GET)", "GET/"],
)  # fmt: skip
def test_injected_methods_are_rejected(method: str) -> None:
    with pytest.raises(ValueError, match="method"):
        check_method(method)
    with pytest.raises(ValueError, match="method"):
        encode_request_head(method, "/", (1, 1), [])


@pytest.mark.parametrize("version", [(2, 0), (1, 2), (0, 9), (3, 0), "1.1\r\nX: y", None])
def test_only_http_10_and_11(version: object) -> None:
    with pytest.raises(ValueError, match="version"):
        encode_request_head("GET", "/", version, [])  # type: ignore[arg-type]


# -- A3: header names and values ---------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["X Y", "X:Y", "", "X\r\nY", "X\n", "Ü", "X\x00", "(X)", "X\t", "X@Y", "X,Y"]
)
def test_bad_header_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="header name"):
        check_header_name(name)
    with pytest.raises(ValueError, match="header name"):
        encode_request_head("GET", "/", (1, 1), [(name, "v")])


@pytest.mark.parametrize(
    "value",
    ["a\r\nSet-Cookie: x", "h\r\nX: 1", "a\nb", "a\rb", "a\x00b", "a\x7fb", "a\x01b", "\x1f",
     "a\x0bb", "a\x0cb"],
)  # fmt: skip
def test_bad_header_values_are_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="header value"):
        check_header_value(value)
    with pytest.raises(ValueError, match="header value"):
        encode_request_head("GET", "/", (1, 1), [("Host", value)])


def test_non_string_header_parts_are_rejected() -> None:
    with pytest.raises(ValueError, match="header value"):
        encode_request_head("GET", "/", (1, 1), [("X", b"bytes")])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="header name"):
        encode_request_head("GET", "/", (1, 1), [(b"X", "v")])  # type: ignore[list-item]


def test_headers_changed_after_validation_are_checked_again() -> None:
    # Headers stay mutable until sent: a later CRLF must still be caught.
    headers = [("X-A", "ok")]
    check_header_value(headers[0][1])
    headers[0] = ("X-A", "ok\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="header value"):
        encode_request_head("GET", "/", (1, 1), headers)


def test_surrogates_cannot_be_encoded() -> None:
    with pytest.raises(ValueError):  # UnicodeEncodeError is a ValueError
        encode_request_head("GET", "/", (1, 1), [("X", "\udcff")])


# -- chunked framing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (b"hello", b"5\r\nhello\r\n"),
        (bytearray(b"x" * 255), b"ff\r\n" + b"x" * 255 + b"\r\n"),
        (memoryview(b"abc"), b"3\r\nabc\r\n"),
        (memoryview(b"abcdef")[2:4], b"2\r\ncd\r\n"),
        (b"\r\n0\r\n\r\n", b"7\r\n\r\n0\r\n\r\n\r\n"),
    ],
)
def test_encode_chunk(data: bytes | bytearray | memoryview, wire: bytes) -> None:
    assert encode_chunk(data) == wire


@pytest.mark.parametrize("empty", [b"", bytearray(), memoryview(b"")])
def test_empty_chunk_is_never_a_premature_last_chunk(empty: bytes | bytearray) -> None:
    assert encode_chunk(empty) == b""
    assert LAST_CHUNK == b"0\r\n\r\n"


def test_multibyte_memoryview_is_sized_in_bytes() -> None:
    view = memoryview(b"\x00\x01" * 4).cast("H")
    assert len(view) == 4
    assert encode_chunk(view) == b"8\r\n" + b"\x00\x01" * 4 + b"\r\n"


# -- properties ------------------------------------------------------------------------

WIRE_SAFE = settings(max_examples=400, deadline=None)


def assert_clean_head(head: bytes, n_headers: int) -> None:
    """Exactly the expected lines, none holding CR, LF or NUL."""
    lines = head.split(b"\r\n")
    assert lines[-2:] == [b"", b""]
    assert len(lines) == n_headers + 3
    for line in lines:
        assert b"\r" not in line
        assert b"\n" not in line
        assert b"\x00" not in line
    assert len(lines[0].split(b" ")) == 3
    for line in lines[1:-2]:
        name, sep, _ = line.partition(b": ")
        assert sep
        assert name.isascii()
        assert b" " not in name


@WIRE_SAFE
@given(
    method=st.text(max_size=12),
    target=st.text(max_size=30),
    headers=st.lists(st.tuples(st.text(max_size=12), st.text(max_size=30)), max_size=4),
)
def test_arbitrary_strings_never_inject(
    method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    try:
        head = encode_request_head(method, target, (1, 1), headers)
    except ValueError:
        return
    assert_clean_head(head, len(headers))


@WIRE_SAFE
@given(path=st.text(max_size=30), query=st.text(max_size=30), absolute=st.booleans())
def test_arbitrary_url_parts_never_inject(path: str, query: str, absolute: bool) -> None:
    for encoded in (False, True):
        try:
            url = URL.build(
                scheme="http", host="h", path="/" + path, query_string=query, encoded=encoded
            )
            target = request_target(url, absolute_form=absolute)
        except ValueError:
            continue
        assert target.isascii()
        assert not any(c <= " " or c == "\x7f" for c in target)
        assert_clean_head(encode_request_head("GET", target, (1, 1), []), 0)
