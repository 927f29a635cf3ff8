"""One attempt through the public client API: every error kind from a real server
fault, the body's hash and size, the max_body cap and the three save modes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from servers import (
    Close,
    CountingServer,
    Hang,
    ReadRequest,
    Reset,
    ScriptedServer,
    Send,
    SendSlowly,
    Step,
    TLSServerFactory,
    http_response,
)

import client
from client.resolver import ResolveResult
from jobs import (
    DataBody,
    JobFile,
    JsonBody,
    RequestDefaults,
    RequestOverrides,
    RequestSpec,
    SaveMode,
    TimeoutSpec,
    iter_requests,
    job_from_urls,
)
from jobs.model import Location, Request
from runner.fetch import Attempt, BodyTooLarge, FetchSettings, classify, fetch_attempt
from runner.outcome import ErrorInfo
from runner.sinks.bodies import SPILL, TMP_DIR, BodyStore

QUICK = TimeoutSpec(total=5.0, connect=2.0, sock_read=2.0)


def spec_for(url: str, timeout: TimeoutSpec = QUICK, **defaults: Any) -> RequestSpec:
    """The one spec of a job fetching *url*; *defaults* are ``RequestDefaults`` fields."""
    job = job_from_urls([url], timeout=timeout, defaults=RequestDefaults(**defaults))
    return next(iter_requests(job))


@pytest.fixture
async def session() -> AsyncIterator[client.ClientSession]:
    async with client.ClientSession() as s:
        yield s


async def attempt(
    session: client.ClientSession, spec: RequestSpec, settings: FetchSettings | None = None
) -> Attempt:
    settings = settings or FetchSettings(None, SaveMode.NEVER, None)
    return await asyncio.wait_for(fetch_attempt(session, spec, settings), 10)


def kind_of(result: Attempt) -> str | None:
    return result.error.kind if result.error is not None else None


def read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def files_under(root: Path) -> list[Path]:
    """Every regular file below *root* (the ``.tmp`` directory included)."""
    return [Path(d) / f for d, _, names in os.walk(root) for f in names]


# -- success: status, hash, size, timings -------------------------------------------------


async def test_body_is_hashed_and_counted(
    session: client.ClientSession, counting_server: CountingServer
) -> None:
    url = counting_server.url("/data?size=300000")
    result = await attempt(session, spec_for(url))
    assert result.error is None
    assert (result.status, result.reason, result.final_url) == (200, "OK", url)
    assert result.size == 300_000
    assert result.sha256 == hashlib.sha256(b"x" * 300_000).hexdigest()
    assert result.body_path is None
    assert result.timings.ttfb is not None
    assert result.timings.total is not None
    assert 0 < result.timings.ttfb <= result.timings.total


async def test_empty_body_has_the_empty_hash(
    session: client.ClientSession, counting_server: CountingServer
) -> None:
    result = await attempt(session, spec_for(counting_server.url("/?status=204")))
    assert (result.status, result.size) == (204, 0)
    assert result.sha256 == hashlib.sha256(b"").hexdigest()


async def test_headers_the_runner_keeps(
    session: client.ClientSession, counting_server: CountingServer
) -> None:
    url = counting_server.url("/?status=503&header=Retry-After:7&header=Content-Type:text/x")
    result = await attempt(session, spec_for(url))
    assert (result.status, result.retry_after, result.content_type) == (503, "7", "text/x")
    assert result.error is None  # a status is not an error; the engine judges it


async def test_method_params_and_json_body_reach_the_server(
    session: client.ClientSession, counting_server: CountingServer
) -> None:
    job = job_from_urls(
        [counting_server.url("/post")],
        defaults=RequestDefaults(method="POST", params=(("q", "a b"),), body=JsonBody({"n": 1})),
    )
    await attempt(session, next(iter_requests(job)))
    [seen] = counting_server.requests
    assert (seen.method, seen.target) == ("POST", "/post?q=a+b")
    assert json.loads(seen.body) == {"n": 1}


async def test_form_data_body(
    session: client.ClientSession, counting_server: CountingServer
) -> None:
    spec = spec_for(counting_server.url("/f"), method="POST", body=DataBody((("a", "1"),)))
    await attempt(session, spec)
    assert counting_server.requests[0].body == b"a=1"


async def test_redirects_are_recorded(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    moved = http_response(302, headers=[("Location", "/final")])
    scripted_server.script([ReadRequest(), Send(moved), ReadRequest(), Send(http_response(200))])
    result = await attempt(session, spec_for(scripted_server.url("/start")))
    assert result.status == 200
    assert result.final_url == scripted_server.url("/final")
    assert result.redirects == ((302, scripted_server.url("/start")),)


# -- every error kind from a real fault ----------------------------------------------------


async def test_reset_is_disconnected(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    scripted_server.script([ReadRequest(), Reset()])
    result = await attempt(session, spec_for(scripted_server.url()))
    assert kind_of(result) == "disconnected"
    assert result.status is None


async def test_close_before_answering_is_disconnected(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    scripted_server.script([ReadRequest(), Close()])
    assert kind_of(await attempt(session, spec_for(scripted_server.url()))) == "disconnected"


@pytest.mark.parametrize(
    "wire",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
    ],
    ids=["content-length", "chunked"],
)
async def test_truncated_body_is_payload(
    session: client.ClientSession, scripted_server: ScriptedServer, wire: bytes
) -> None:
    scripted_server.script([ReadRequest(), Send(wire), Close()])
    result = await attempt(session, spec_for(scripted_server.url()))
    assert kind_of(result) == "payload"
    assert result.status == 200  # the head arrived; the body did not
    assert result.sha256 is None


async def test_silent_server_is_read_timeout(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    scripted_server.script([ReadRequest(), Hang()])
    spec = spec_for(scripted_server.url(), TimeoutSpec(total=5.0, sock_read=0.1))
    result = await attempt(session, spec)
    assert kind_of(result) == "read_timeout"
    assert result.timings.total is not None
    assert 0.1 <= result.timings.total < 2.0


async def test_slow_drip_is_total_timeout(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    scripted_server.script([ReadRequest(), Send(head), SendSlowly(b"x" * 1000, 1, 0.02)])
    spec = spec_for(scripted_server.url(), TimeoutSpec(total=0.3, sock_read=1.0))
    assert kind_of(await attempt(session, spec)) == "timeout"


async def test_refused_connection_is_connect(
    session: client.ClientSession, unused_port: int
) -> None:
    result = await attempt(session, spec_for(f"http://127.0.0.1:{unused_port}/"))
    assert kind_of(result) == "connect"
    assert result.error is not None
    assert result.error.message.startswith("ClientConnectorError: ")


async def test_untrusted_certificate_is_tls(
    session: client.ClientSession, make_tls_server: TLSServerFactory
) -> None:
    server = make_tls_server("self_signed")
    assert kind_of(await attempt(session, spec_for(server.url()))) == "tls"


class FailingResolver(client.AbstractResolver):
    """No name resolves; or, with ``delay``, resolving takes that long first."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        await asyncio.sleep(self.delay)
        raise socket.gaierror(socket.EAI_NONAME, f"{host} does not exist")

    async def close(self) -> None:
        """Nothing to release."""


async def test_unresolvable_name_is_dns() -> None:
    connector = client.TCPConnector(resolver=FailingResolver())
    async with client.ClientSession(connector=connector) as s:
        result = await attempt(s, spec_for("http://nowhere.test/"))
    assert kind_of(result) == "dns"


async def test_slow_connection_setup_is_connect_timeout() -> None:
    connector = client.TCPConnector(resolver=FailingResolver(delay=5.0))
    async with client.ClientSession(connector=connector) as s:
        spec = spec_for("http://slow.test/", TimeoutSpec(total=5.0, connect=0.1))
        assert kind_of(await attempt(s, spec)) == "connect_timeout"


async def test_redirect_loop_is_too_many_redirects(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    loop = http_response(302, headers=[("Location", "/again")])
    steps: list[Step] = [ReadRequest(), Send(loop)] * 10  # one keep-alive connection
    scripted_server.script(steps)
    result = await attempt(session, spec_for(scripted_server.url(), max_redirects=3))
    assert kind_of(result) == "too_many_redirects"
    assert len(result.redirects) >= 3
    assert {status for status, _ in result.redirects} == {302}


async def test_redirect_to_another_scheme_is_redirect(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    scripted_server.script(
        [ReadRequest(), Send(http_response(302, headers=[("Location", "ftp://x/")]))]
    )
    assert kind_of(await attempt(session, spec_for(scripted_server.url()))) == "redirect"


async def test_garbage_response_is_protocol(
    session: client.ClientSession, scripted_server: ScriptedServer
) -> None:
    scripted_server.script([ReadRequest(), Send(b"SMTP READY\r\n\r\n"), Close()])
    assert kind_of(await attempt(session, spec_for(scripted_server.url()))) == "protocol"


async def test_invalid_url_is_invalid_url(session: client.ClientSession) -> None:
    template = spec_for("http://a.test/")
    spec = RequestSpec("http://exa mple.test:99999/", template.options, Location("t", 1), 0)
    result = await attempt(session, spec)
    assert kind_of(result) == "invalid_url"
    assert result.status is None


# -- max_body --------------------------------------------------------------------------


async def test_declared_too_large_is_refused_and_leaves_no_file(
    session: client.ClientSession, counting_server: CountingServer, tmp_path: Path
) -> None:
    store = BodyStore(tmp_path / "bodies")
    settings = FetchSettings(store, SaveMode.ALWAYS, max_body=1000)
    result = await attempt(session, spec_for(counting_server.url("/?size=5000")), settings)
    assert kind_of(result) == "too_large"
    assert result.error is not None
    assert "Content-Length 5000" in result.error.message
    assert (result.status, result.size, result.sha256, result.body_path) == (200, None, None, None)
    await store.close()
    assert files_under(tmp_path / "bodies") == []


@pytest.mark.parametrize("body_size", [5000, 4 * SPILL])  # in memory / spilled to a temp file
async def test_streamed_too_large_is_cut_off_and_leaves_no_file(
    session: client.ClientSession, scripted_server: ScriptedServer, tmp_path: Path, body_size: int
) -> None:
    head = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"  # no length: read until close
    scripted_server.script([ReadRequest(), Send(head + b"y" * body_size), Close()])
    store = BodyStore(tmp_path / "bodies")
    settings = FetchSettings(store, SaveMode.ALWAYS, max_body=body_size - 1)
    result = await attempt(session, spec_for(scripted_server.url()), settings)
    assert kind_of(result) == "too_large"
    assert result.body_path is None
    assert files_under(tmp_path / "bodies") == []  # the temp file, if any, is gone already
    await store.close()


async def test_body_exactly_at_max_body_is_fine(
    session: client.ClientSession, counting_server: CountingServer
) -> None:
    settings = FetchSettings(None, SaveMode.NEVER, max_body=1234)
    result = await attempt(session, spec_for(counting_server.url("/?size=1234")), settings)
    assert (result.error, result.size) == (None, 1234)


# -- save modes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "saved"),
    [
        (SaveMode.ALWAYS, 200, True),
        (SaveMode.ALWAYS, 404, True),
        (SaveMode.ON_SUCCESS, 200, True),
        (SaveMode.ON_SUCCESS, 404, False),
        (SaveMode.NEVER, 200, False),
        (SaveMode.NEVER, 404, False),
    ],
)
async def test_save_modes(
    session: client.ClientSession,
    counting_server: CountingServer,
    tmp_path: Path,
    mode: SaveMode,
    status: int,
    saved: bool,
) -> None:
    store = BodyStore(tmp_path / "bodies")
    url = counting_server.url(f"/?status={status}&size={SPILL + 10}")
    request = Request(Location("t", 1), url=url, overrides=RequestOverrides(save=mode))
    job = JobFile(requests=(request,), timeout=QUICK)
    spec = next(iter_requests(job))
    assert spec.options.save is mode
    result = await attempt(session, spec, FetchSettings(store, SaveMode.NEVER, None))
    await store.close()
    assert result.status == status
    assert result.sha256 == hashlib.sha256(b"x" * (SPILL + 10)).hexdigest()
    if saved:
        assert result.body_path == str(store.path_for("GET", url))
        assert read_bytes(result.body_path) == b"x" * (SPILL + 10)
        assert files_under(tmp_path / "bodies") == [Path(result.body_path)]
    else:
        assert result.body_path is None
        assert files_under(tmp_path / "bodies") == []
    assert os.listdir(tmp_path / "bodies" / TMP_DIR) == []


async def test_without_a_store_nothing_is_saved(
    session: client.ClientSession, counting_server: CountingServer
) -> None:
    spec = spec_for(counting_server.url("/"))
    result = await attempt(session, spec, FetchSettings(None, SaveMode.ALWAYS, None))
    assert (result.body_path, result.size) == (None, 2)


# -- classify ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (BodyTooLarge("big"), "too_large"),
        (TimeoutError(), "timeout"),
        (client.ClientPayloadError("cut"), "payload"),
        (client.ServerDisconnectedError(), "disconnected"),
        (client.InvalidURL("http://["), "invalid_url"),
        (PermissionError(13, "Permission denied"), "storage"),
        (ValueError("bad header value"), "invalid_request"),
        (KeyError("surprise"), "internal"),
    ],
)
def test_classify_kinds(exc: BaseException, kind: str) -> None:
    assert classify(exc).kind == kind


def test_classify_message_names_the_exception() -> None:
    assert classify(BodyTooLarge("too big")) == ErrorInfo("too_large", "BodyTooLarge: too big")
    assert classify(TimeoutError()) == ErrorInfo("timeout", "TimeoutError")
