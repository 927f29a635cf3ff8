"""HTTP Basic auth end to end: session, request and URL credentials (RFC 7617).

httpbin's ``/basic-auth/<user>/<password>`` checks the credentials; a scripted
server shows the raw request, to prove where credentials do and do not go.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from servers import Endpoint, ScriptedServer
from servers.names import LoopbackNames

from client import BasicAuth, ClientSession, TCPConnector, encode_basic_auth


def basic(user_pass: bytes) -> str:
    return "Basic " + base64.b64encode(user_pass).decode("ascii")


def head_lines(raw: bytes) -> list[str]:
    head, _, _ = raw.partition(b"\r\n\r\n")
    return head.decode("latin-1").split("\r\n")


def header(raw: bytes, name: str) -> str | None:
    prefix = name.lower() + ":"
    for line in head_lines(raw)[1:]:
        if line.lower().startswith(prefix):
            return line[len(prefix) :].strip()
    return None


async def status_of(session: ClientSession, url: str, **kwargs: Any) -> int:
    async with session.get(url, **kwargs) as resp:
        await resp.read()
        return resp.status


# -- encoding -------------------------------------------------------------------------------


def test_encode_basic_auth() -> None:
    assert encode_basic_auth("u", "p") == basic(b"u:p") == "Basic dTpw"
    assert encode_basic_auth("u") == basic(b"u:")
    assert encode_basic_auth("usér", "pw") == basic("usér:pw".encode())  # utf-8 by default
    assert BasicAuth("u", "p").encode() == "Basic dTpw"
    assert BasicAuth("usér", "pw").encode() == basic("usér:pw".encode("latin1"))  # aiohttp's
    assert BasicAuth("usér", "pw", encoding="utf-8").encode() == basic("usér:pw".encode())


def test_decode_round_trip_keeps_colons_in_the_password() -> None:
    auth = BasicAuth("user", "pa:ss:word")
    assert BasicAuth.decode(auth.encode()) == auth
    with pytest.raises(ValueError, match="Unknown authorization method"):
        BasicAuth.decode("Bearer abc")
    with pytest.raises(ValueError, match="base64"):
        BasicAuth.decode("Basic !!!")


@pytest.mark.parametrize(
    ("login", "password"),
    [("a:b", "p"), ("u\r\nX-Injected: 1", "p"), ("u", "p\n"), ("u", "p\x00"), ("u\x7f", "")],
)
def test_credentials_that_cannot_be_sent_safely(login: str, password: str) -> None:
    with pytest.raises(ValueError):
        BasicAuth(login, password)
    with pytest.raises(ValueError):
        encode_basic_auth(login, password)


# -- session and request auth ------------------------------------------------------------------


async def test_session_auth_and_request_override(httpbin: Endpoint) -> None:
    url = httpbin.url("/basic-auth/u/p")
    async with ClientSession(auth=BasicAuth("u", "wrong")) as session:
        assert await status_of(session, url) == 401
        assert await status_of(session, url, auth=BasicAuth("u", "p")) == 200
        assert await status_of(session, url) == 401  # the override was for one request


async def test_session_auth_without_base_url_goes_to_every_origin(httpbin: Endpoint) -> None:
    """aiohttp's rule: with no base_url there is no origin to bind the credentials to."""
    connector = TCPConnector(resolver=LoopbackNames("localhost"))
    async with ClientSession(connector=connector, auth=BasicAuth("u", "p")) as session:
        assert await status_of(session, httpbin.url("/basic-auth/u/p")) == 200
        assert await status_of(session, f"http://localhost:{httpbin.port}/basic-auth/u/p") == 200


async def test_session_auth_is_bound_to_the_base_url_origin(httpbin: Endpoint) -> None:
    connector = TCPConnector(resolver=LoopbackNames("localhost"))
    async with ClientSession(
        base_url=httpbin.url("/"), connector=connector, auth=BasicAuth("u", "p")
    ) as session:
        assert await status_of(session, "/basic-auth/u/p") == 200
        assert await status_of(session, httpbin.url("/basic-auth/u/p")) == 200  # same origin
        # Same machine, same port, another host name: another origin.
        assert await status_of(session, f"http://localhost:{httpbin.port}/basic-auth/u/p") == 401
        # A same-origin redirect keeps the credentials.
        assert await status_of(session, "/redirect-to?url=/basic-auth/u/p") == 200


# -- credentials in the URL ---------------------------------------------------------------------


async def test_url_credentials_are_stripped_and_sent_as_authorization(
    httpbin: Endpoint, scripted_server: ScriptedServer
) -> None:
    async with ClientSession() as session:
        url = f"http://u:p@127.0.0.1:{httpbin.port}/basic-auth/u/p"
        async with session.get(url) as resp:
            assert resp.status == 200
            assert resp.url.user is None
            assert resp.request_info.url.password is None
            assert resp.request_info.headers["Authorization"] == "Basic dTpw"
        await status_of(session, f"http://u:p@127.0.0.1:{scripted_server.port}/x")
    (raw,) = scripted_server.requests
    assert head_lines(raw)[0] == "GET /x HTTP/1.1"
    assert header(raw, "Host") == f"127.0.0.1:{scripted_server.port}"
    assert header(raw, "Authorization") == "Basic dTpw"


async def test_req04_userinfo_is_decoded_exactly_once(scripted_server: ScriptedServer) -> None:
    """``u:p%40x@host``: the password is ``p@x``, in Authorization and nowhere else."""
    names = LoopbackNames("auth.test")
    port = scripted_server.port
    async with ClientSession(connector=TCPConnector(resolver=names)) as session:
        await status_of(session, f"http://u:p%40x@auth.test:{port}/")
        await status_of(session, f"http://u:p%2540x@auth.test:{port}/")  # "%40" is literal
    first, second = scripted_server.requests
    assert header(first, "Authorization") == basic(b"u:p@x")
    assert header(second, "Authorization") == basic(b"u:p%40x")
    for raw in (first, second):
        assert header(raw, "Host") == f"auth.test:{port}"
        assert head_lines(raw)[0] == "GET / HTTP/1.1"
        without_auth = raw.replace(str(header(raw, "Authorization")).encode(), b"")
        assert b"p@x" not in without_auth
        assert b"p%40x" not in without_auth
        assert b"p%2540x" not in without_auth
    assert set(names.queries) == {"auth.test"}  # no part of the userinfo reached DNS


async def test_url_login_with_an_encoded_colon_is_refused(scripted_server: ScriptedServer) -> None:
    async with ClientSession() as session:
        with pytest.raises(ValueError, match=":"):
            await session.get(f"http://us%3Aer:p@127.0.0.1:{scripted_server.port}/")
    assert scripted_server.accepted == 0


# -- conflicting sources of credentials ------------------------------------------------------


@pytest.mark.parametrize(
    ("session_kwargs", "userinfo", "request_kwargs"),
    [
        ({}, "", {"auth": BasicAuth("u", "p"), "headers": {"Authorization": "Bearer t"}}),
        ({"headers": {"Authorization": "Bearer t"}}, "", {"auth": BasicAuth("u", "p")}),
        ({}, "u:p@", {"headers": {"authorization": "Bearer t"}}),
        ({}, "u:p@", {"auth": BasicAuth("u", "p")}),
        ({"headers": {"Authorization": "Bearer t"}}, "u:p@", {}),
        # As aiohttp: the session's default auth conflicts with the header too.
        ({"auth": BasicAuth("u", "p")}, "", {"headers": {"Authorization": "Bearer t"}}),
    ],
)
async def test_two_sources_of_credentials_are_refused(
    scripted_server: ScriptedServer,
    session_kwargs: dict[str, Any],
    userinfo: str,
    request_kwargs: dict[str, Any],
) -> None:
    url = f"http://{userinfo}127.0.0.1:{scripted_server.port}/"
    async with ClientSession(**session_kwargs) as session:
        with pytest.raises(ValueError, match=r"(?i)cannot combine"):
            await session.get(url, **request_kwargs)
    assert scripted_server.accepted == 0
