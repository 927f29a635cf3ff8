"""The test servers themselves, proven with stdlib clients only."""

from __future__ import annotations

import asyncio
import base64
import gzip
import http.client
import json
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import brotli
import pytest
import trustme
from servers import (
    TLS_KINDS,
    BackgroundLoop,
    Close,
    CountingServer,
    Endpoint,
    HalfClose,
    Hang,
    ReadRequest,
    Reset,
    ScriptedConnection,
    ScriptedServer,
    SecureHttpbin,
    Send,
    SendSlowly,
    Sleep,
    TLSCertificates,
    TLSServerFactory,
    WaitressThread,
    client_context,
    http_response,
    httpbin_app,
)

# -- helpers -------------------------------------------------------------------------


@contextmanager
def connect(
    ep: Endpoint, ctx: ssl.SSLContext | None = None
) -> Iterator[http.client.HTTPConnection]:
    """An http.client connection to *ep* that is always closed."""
    conn: http.client.HTTPConnection
    if ep.base.startswith("https:"):
        conn = http.client.HTTPSConnection(ep.host, ep.port, context=ctx, timeout=10)
    else:
        conn = http.client.HTTPConnection(ep.host, ep.port, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def fetch(
    ep: Endpoint,
    method: str,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    headers: dict[str, str] | None = None,
    ctx: ssl.SSLContext | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a fresh connection; chunked when *body* is an iterable."""
    with connect(ep, ctx) as conn:
        chunked = body is not None and not isinstance(body, bytes)
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        resp = conn.getresponse()
        return resp, resp.read()


def get_json(ep: Endpoint, path: str, ctx: ssl.SSLContext | None = None) -> Any:
    resp, data = fetch(ep, "GET", path, ctx=ctx)
    assert resp.status == 200
    return json.loads(data)


MULTIPART = (
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="field"\r\n\r\nvalue\r\n'
    b"--XyZ\r\n"
    b'Content-Disposition: form-data; name="up"; filename="a.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\nfile body\r\n"
    b"--XyZ--\r\n"
)


def pieces(data: bytes, size: int = 7) -> Iterator[bytes]:
    """*data* in small pieces, so http.client sends many chunks."""
    return (data[i : i + size] for i in range(0, len(data), size))


# -- httpbin on waitress -------------------------------------------------------------


def test_httpbin_endpoint_shape(httpbin: Endpoint) -> None:
    assert httpbin.host == "127.0.0.1"
    assert httpbin.base == f"http://127.0.0.1:{httpbin.port}"
    assert httpbin.url("/get") == httpbin.url("get") == httpbin.base + "/get"


def test_httpbin_get_and_headers(httpbin: Endpoint) -> None:
    data = get_json(httpbin, "/get?a=1&b=2")
    assert data["args"] == {"a": "1", "b": "2"}
    assert data["url"] == httpbin.url("/get?a=1&b=2")
    _, body = fetch(httpbin, "GET", "/headers", headers={"X-Probe": "yes"})
    assert json.loads(body)["headers"]["X-Probe"] == "yes"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_httpbin_post_data(httpbin: Endpoint, chunked: bool) -> None:
    payload = b'{"k": [1, 2, 3], "s": "' + b"x" * 5000 + b'"}'
    body: bytes | Iterator[bytes] = pieces(payload, 1000) if chunked else payload
    resp, raw = fetch(httpbin, "POST", "/post", body, {"Content-Type": "application/json"})
    data = json.loads(raw)
    assert resp.status == 200
    assert data["data"] == payload.decode()
    assert data["json"]["k"] == [1, 2, 3]
    # waitress de-chunks and reports the real length to the app
    assert data["headers"]["Content-Length"] == str(len(payload))


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_httpbin_post_form_and_files(httpbin: Endpoint, chunked: bool) -> None:
    form = b"a=1&b=two+words"
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    body: bytes | Iterator[bytes] = pieces(form) if chunked else form
    assert json.loads(fetch(httpbin, "POST", "/post", body, ctype)[1])["form"] == {
        "a": "1",
        "b": "two words",
    }
    ctype = {"Content-Type": "multipart/form-data; boundary=XyZ"}
    body = pieces(MULTIPART) if chunked else MULTIPART
    data = json.loads(fetch(httpbin, "POST", "/post", body, ctype)[1])
    assert data["form"] == {"field": "value"}
    assert data["files"] == {"up": "file body"}


def test_httpbin_status_and_response_headers(httpbin: Endpoint) -> None:
    assert fetch(httpbin, "GET", "/status/404")[0].status == 404
    resp, _ = fetch(httpbin, "GET", "/response-headers?X-Answer=42&X-Answer=43")
    assert resp.headers.get_all("X-Answer") == ["42", "43"]


def test_httpbin_redirects(httpbin: Endpoint) -> None:
    path, hops = "/redirect/3", 0
    while True:
        resp, _ = fetch(httpbin, "GET", path)
        if resp.status != 302:
            break
        path, hops = resp.headers["Location"], hops + 1
    assert (hops, resp.status, path) == (3, 200, "/get")

    resp, _ = fetch(httpbin, "GET", "/absolute-redirect/2")
    assert resp.headers["Location"] == httpbin.url("/absolute-redirect/1")
    resp, _ = fetch(httpbin, "GET", "/redirect-to?url=/anything/x&status_code=307")
    assert (resp.status, resp.headers["Location"]) == (307, "/anything/x")


@pytest.mark.parametrize(
    ("path", "encoding", "decode"),
    [
        ("/gzip", "gzip", gzip.decompress),
        ("/deflate", "deflate", zlib.decompress),
        ("/brotli", "br", brotli.decompress),
    ],
)
def test_httpbin_compressed(httpbin: Endpoint, path: str, encoding: str, decode: Any) -> None:
    resp, raw = fetch(httpbin, "GET", path)
    assert resp.headers["Content-Encoding"] == encoding
    data = json.loads(decode(raw))
    assert data[{"gzip": "gzipped", "deflate": "deflated", "br": "brotli"}[encoding]] is True


def test_httpbin_bytes_stream_and_keepalive(httpbin: Endpoint) -> None:
    with connect(httpbin) as conn:
        conn.request("GET", "/bytes/1024")
        resp = conn.getresponse()
        assert (resp.headers["Content-Length"], len(resp.read())) == ("1024", 1024)
        sock = conn.sock
        conn.request("GET", "/stream/20")
        assert conn.sock is sock  # same socket: keep-alive held
        resp = conn.getresponse()
        assert resp.headers["Transfer-Encoding"] == "chunked"
        lines = resp.read().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(20))


def test_httpbin_cookies(httpbin: Endpoint) -> None:
    resp, _ = fetch(httpbin, "GET", "/cookies/set?flavour=oat")
    assert resp.status == 302
    assert resp.headers["Set-Cookie"].startswith("flavour=oat")
    data = json.loads(fetch(httpbin, "GET", "/cookies", headers={"Cookie": "flavour=oat"})[1])
    assert data == {"cookies": {"flavour": "oat"}}


def test_httpbin_basic_auth(httpbin: Endpoint) -> None:
    assert fetch(httpbin, "GET", "/basic-auth/u/p")[0].status == 401
    token = base64.b64encode(b"u:p").decode()
    resp, raw = fetch(
        httpbin, "GET", "/basic-auth/u/p", headers={"Authorization": f"Basic {token}"}
    )
    assert (resp.status, json.loads(raw)) == (200, {"authenticated": True, "user": "u"})


def test_httpbin_delay_runs_in_parallel(httpbin: Endpoint) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(lambda _: fetch(httpbin, "GET", "/delay/1")[0].status, range(4)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 4
    assert 1.0 <= elapsed < 2.5  # side by side: one at a time would take 4 s


def test_waitress_thread_stops_cleanly() -> None:
    before = threading.active_count()
    server = WaitressThread(httpbin_app(), threads=4)
    server.start()
    ep = Endpoint(server.host, server.port)
    with connect(ep) as conn:  # an idle keep-alive connection is open at stop()
        conn.request("GET", "/get")
        assert conn.getresponse().read()
        server.stop()
    assert threading.active_count() == before
    # Refused, normally; any connect failure proves nothing serves the port
    # (a loaded suite can also fail the connect locally, e.g. EADDRNOTAVAIL).
    with pytest.raises(OSError):
        socket.create_connection((ep.host, ep.port), timeout=2).close()


# -- TLS -------------------------------------------------------------------------------


def test_httpbin_secure(httpbin_secure: Endpoint, ssl_client_context: ssl.SSLContext) -> None:
    assert httpbin_secure.base == f"https://127.0.0.1:{httpbin_secure.port}"
    data = get_json(httpbin_secure, "/get?x=1", ssl_client_context)
    assert data["url"] == httpbin_secure.url("/get?x=1")
    resp, raw = fetch(httpbin_secure, "POST", "/post", pieces(b"over tls"), ctx=ssl_client_context)
    assert json.loads(raw)["data"] == "over tls"
    resp, _ = fetch(httpbin_secure, "GET", "/absolute-redirect/1", ctx=ssl_client_context)
    assert resp.headers["Location"] == httpbin_secure.url("/get")
    localhost = Endpoint("localhost", httpbin_secure.port, "https")
    assert get_json(localhost, "/get", ssl_client_context)["url"].startswith("https://localhost:")


def test_httpbin_secure_rejects_untrusting_client(httpbin_secure: Endpoint) -> None:
    other_ca = client_context(trustme.CA())
    with pytest.raises(ssl.SSLCertVerificationError):
        fetch(httpbin_secure, "GET", "/get", ctx=other_ca)


def test_secure_httpbin_stops_cleanly(tls_ca: trustme.CA) -> None:
    before = threading.active_count()
    bg = BackgroundLoop()
    server = SecureHttpbin(tls_ca, bg)
    ep = server.start()
    ctx = client_context(tls_ca)
    with connect(ep, ctx) as conn:  # open at stop(): the proxy must drop it
        conn.request("GET", "/get")
        assert conn.getresponse().status == 200
        server.stop()
        bg.close()
    assert threading.active_count() == before


def tls_get(host: str, port: int, ctx: ssl.SSLContext) -> bytes:
    """A raw HTTP/1.1 GET over a stdlib TLS socket; returns the whole response."""
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        chunks = []
        while data := tls.recv(4096):
            chunks.append(data)
        return b"".join(chunks)


# OpenSSL X509_V_ERR_* codes each broken server must produce (62 hostname, 64 IP mismatch).
VERIFY_CODES = {"expired": 10, "self_signed": 18, "wrong_host": 64}


@pytest.mark.parametrize("kind", sorted(VERIFY_CODES))
def test_tls_kind_fails_verification(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext, kind: Any
) -> None:
    server = make_tls_server(kind)
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        tls_get(server.host, server.port, ssl_client_context)
    assert info.value.verify_code == VERIFY_CODES[kind]
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    assert tls_get(server.host, server.port, unverified).endswith(b"\r\n\r\nok")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tls_valid(
    make_tls_server: TLSServerFactory, ssl_client_context: ssl.SSLContext, host: str
) -> None:
    server = make_tls_server("valid")
    assert server.url("/x") == f"https://127.0.0.1:{server.port}/x"
    assert tls_get(host, server.port, ssl_client_context).startswith(b"HTTP/1.1 200 OK\r\n")
    assert (server.server.handshakes, server.server.requests) == (1, 1)


def test_tls_client_cert_required(make_tls_server: TLSServerFactory, tls_ca: trustme.CA) -> None:
    server = make_tls_server("client_cert_required")
    assert server.client_cert is not None
    # TLS 1.3 ends the handshake before the server checks: the error comes on read.
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        tls_get(server.host, server.port, client_context(tls_ca))
    ctx = client_context(tls_ca)
    server.client_cert.configure_cert(ctx)
    assert tls_get(server.host, server.port, ctx).endswith(b"\r\n\r\nok")


def test_tls_kinds_listed() -> None:
    assert set(TLS_KINDS) == {*VERIFY_CODES, "valid", "client_cert_required"}


def test_unused_port_refuses(unused_port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", unused_port), timeout=2).close()


# -- ScriptedServer ----------------------------------------------------------------


async def open_conn(server: ScriptedServer | CountingServer) -> Any:
    return await asyncio.open_connection(server.host, server.port)


async def shut(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass  # the server may have reset us on purpose


GET = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n"


async def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait until *check()* holds (the server side runs in this same loop)."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.001)


async def test_scripted_default_answers_ok(scripted_server: ScriptedServer) -> None:
    reader, writer = await open_conn(scripted_server)
    writer.write(GET)
    assert (await reader.read()).endswith(b"\r\n\r\nok")  # then FIN
    await shut(writer)
    assert scripted_server.requests == [GET]
    assert scripted_server.url("x") == f"http://127.0.0.1:{scripted_server.port}/x"


async def test_scripted_reset_gives_connection_reset(scripted_server: ScriptedServer) -> None:
    scripted_server.script([ReadRequest(), Send(b"HTTP/1.1 200 OK\r\n"), Sleep(0.05), Reset()])
    reader, writer = await open_conn(scripted_server)
    writer.write(GET)
    assert await reader.readline() == b"HTTP/1.1 200 OK\r\n"
    with pytest.raises(ConnectionResetError):
        await reader.read()
    await shut(writer)


async def test_scripted_records_bodies_and_pipelining(scripted_server: ScriptedServer) -> None:
    reply = http_response(204)
    scripted_server.script([ReadRequest(), Send(reply), ReadRequest(), Send(reply), Close()])
    chunked = (
        b"POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    sized = b"PUT /s HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
    reader, writer = await open_conn(scripted_server)
    writer.write(chunked + sized)  # both in one segment
    assert await reader.read() == reply * 2
    await shut(writer)
    assert scripted_server.requests == [chunked, sized]
    assert scripted_server.connections[0].requests == [chunked, sized]


async def test_scripted_per_connection_scripts(scripted_server: ScriptedServer) -> None:
    scripted_server.script([Close()], [Send(b"second"), Hang()])
    conns = [await open_conn(scripted_server)]
    assert await conns[0][0].read() == b""  # FIN at once
    await eventually(lambda: scripted_server.open_connections == 0)
    conns += [await open_conn(scripted_server) for _ in range(2)]
    assert await conns[1][0].readexactly(6) == b"second"
    assert await conns[2][0].readexactly(6) == b"second"  # the last script repeats
    with pytest.raises(TimeoutError):  # Hang(): nothing more, no EOF
        await asyncio.wait_for(conns[2][0].read(1), 0.1)
    assert (scripted_server.accepted, scripted_server.max_concurrent) == (3, 2)
    for _, writer in conns:
        await shut(writer)


async def test_scripted_send_slowly(scripted_server: ScriptedServer) -> None:
    scripted_server.script([SendSlowly(b"abcdef", chunk=2, interval=0.05)])
    reader, writer = await open_conn(scripted_server)
    started = time.monotonic()
    assert await reader.read() == b"abcdef"
    assert time.monotonic() - started >= 0.09  # two pauses between three writes
    await shut(writer)


async def test_scripted_half_close_and_handler(scripted_server: ScriptedServer) -> None:
    got: list[bytes] = []

    async def handler(conn: ScriptedConnection) -> None:
        await conn.send(b"bye")
        await HalfClose().run(conn)
        got.append(await conn.read_until_eof())

    scripted_server.serve(handler)
    reader, writer = await open_conn(scripted_server)
    assert await reader.read() == b"bye"  # EOF from the server...
    writer.write(b"still talking")  # ...but it still reads
    writer.write_eof()
    await shut(writer)
    await eventually(lambda: got == [b"still talking"])


async def test_scripted_peer_gone_is_quiet_and_bug_is_loud() -> None:
    server = ScriptedServer()
    await server.start()
    reader, writer = await open_conn(server)
    writer.write(b"GET / HTTP/1.1\r\n")  # head never finished
    await shut(writer)
    await eventually(lambda: server.open_connections == 0)
    assert isinstance(server.connections[0].error, asyncio.IncompleteReadError)

    async def buggy(conn: ScriptedConnection) -> None:
        raise AssertionError("handler bug")

    server.serve(buggy)
    reader, writer = await open_conn(server)
    assert await reader.read() == b""
    await shut(writer)
    with pytest.raises(AssertionError, match="handler bug"):
        await server.close()


# -- CountingServer ----------------------------------------------------------------


async def exchange(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, req: bytes) -> bytes:
    """Send one request, read one Content-Length response (test-side, trivial)."""
    writer.write(req)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def req(path: str = "/", host: str = "h", extra: str = "", method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()


async def test_counting_keepalive_reuse(counting_server: CountingServer) -> None:
    reader, writer = await open_conn(counting_server)
    for _ in range(5):
        resp = await exchange(writer, reader, req())
        assert resp.startswith(b"HTTP/1.1 200 OK\r\n")
        assert resp.endswith(b"\r\n\r\nok")
    stats = counting_server.stats
    assert (stats.connections, stats.open, stats.requests) == (1, 1, 5)
    assert counting_server.requests_per_connection == [5]
    await shut(writer)
    await eventually(lambda: counting_server.stats.open == 0)


async def test_counting_connection_close(counting_server: CountingServer) -> None:
    for extra in ("Connection: close\r\n", ""):
        reader, writer = await open_conn(counting_server)
        path = "/" if extra else "/?close=1"
        resp = await exchange(writer, reader, req(path, extra=extra))
        assert b"\r\nConnection: close\r\n" in resp
        assert await reader.read() == b""  # the server closed
        await shut(writer)
    assert counting_server.stats.connections == 2
    assert counting_server.requests_per_connection == [1, 1]


async def test_counting_query_controls(counting_server: CountingServer) -> None:
    counting_server.headers = [("X-Server", "counting")]
    reader, writer = await open_conn(counting_server)
    resp = await exchange(writer, reader, req("/?status=503&size=10&header=X-A:1"))
    assert resp.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nX-A: 1\r\n" in resp
    assert b"\r\nX-Server: counting\r\n" in resp
    assert resp.endswith(b"\r\n\r\n" + b"x" * 10)
    writer.write(req(method="HEAD"))
    head = await reader.readuntil(b"\r\n\r\n")  # no body follows a HEAD reply
    assert b"Content-Length: 2\r\n" in head
    resp = await exchange(writer, reader, req("/?status=204"))
    assert b"Content-Length" not in resp
    writer.write(b"NOT HTTP\r\n\r\n")
    assert (await reader.read()).startswith(b"HTTP/1.1 400 ")
    await shut(writer)
    record = counting_server.requests[0]
    assert (record.method, record.target, record.host) == (
        "GET",
        "/?status=503&size=10&header=X-A:1",
        "h",
    )


async def test_counting_in_flight_per_host(counting_server: CountingServer) -> None:
    conns = [await open_conn(counting_server) for _ in range(3)]
    hosts = ["a", "a", "b"]
    pending = [
        asyncio.create_task(exchange(w, r, req("/?delay=0.3", host)))
        for (r, w), host in zip(conns, hosts, strict=True)
    ]
    await eventually(lambda: counting_server.stats.in_flight == 3)
    await asyncio.gather(*pending)
    stats, by_host = counting_server.stats, counting_server.by_host
    assert (stats.in_flight, stats.max_in_flight, stats.max_open) == (0, 3, 3)
    assert (by_host["a"].max_in_flight, by_host["a"].connections) == (2, 2)
    assert (by_host["b"].max_in_flight, by_host["b"].open) == (1, 1)
    for _, writer in conns:
        await shut(writer)


async def test_counting_pipelined_answers_in_order(counting_server: CountingServer) -> None:
    reader, writer = await open_conn(counting_server)
    writer.write(req("/?delay=0.2&size=1") + req("/?size=2"))
    await eventually(lambda: counting_server.stats.in_flight == 2)
    first = await exchange(writer, reader, b"")
    second = await exchange(writer, reader, b"")
    assert (first[-1:], second[-2:]) == (b"x", b"xx")
    assert counting_server.requests_per_connection == [2]
    await shut(writer)


async def test_in_loop_servers_over_tls(
    tls_certificates: TLSCertificates, ssl_client_context: ssl.SSLContext
) -> None:
    ctx = tls_certificates.server_context("valid")
    scripted, counting = ScriptedServer(ssl=ctx), CountingServer(ssl=ctx)
    await scripted.start()
    await counting.start()
    assert scripted.base.startswith("https://")
    assert counting.url("/a").startswith("https://127.0.0.1:")
    for server in (scripted, counting):
        reader, writer = await asyncio.open_connection(
            server.host, server.port, ssl=ssl_client_context
        )
        resp = await exchange(writer, reader, req(extra="Connection: close\r\n"))
        assert resp.endswith(b"\r\n\r\nok")
        await shut(writer)
    assert counting.stats.requests == 1
    assert len(scripted.requests) == 1
    await scripted.close()
    await counting.close()
