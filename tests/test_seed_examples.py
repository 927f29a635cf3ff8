"""The seed documents' client examples run unchanged on ``client`` (/work/shared/seeds).

Each case embeds one example verbatim (trailing blanks and the RST indent of
004 dropped) and runs it through :class:`seed_support.SeedRunner`, which only
swaps ``import aiohttp`` for ``import client as aiohttp`` and public hosts for
loopback servers: httpbin for httpbin.org, :class:`seed_support.FakeSite` for
api.github.com, python.org and example.com, a closed port for the
deliberately unreachable domain. Whole programs run in a worker thread with
their own ``asyncio.run``/``run_until_complete`` lines intact; doc fragments run
in the test's loop with the names the docs assume (``session``, ``resp``...).
The assertions check what the seed says is printed (or asserted).

Where a seed cannot run even on aiohttp (a typo, a stale expectation) the case
says so: a strict xfail, or a SyntaxError check plus a minimally repaired copy.
Cookies, SSL, fingerprints, Unix sockets, proxies, websockets and tracing of
004 are left to their own issue.
"""

from __future__ import annotations

import ast
import json
import logging
import mimetypes
import re
import sys
import types
import zlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest
from multidict import CIMultiDictProxy
from seed_support import (
    GITHUB_EVENTS,
    PYTHON_ORG_HOME,
    FakeSites,
    Recorded,
    SeedRunner,
    compile_seed,
    json_documents,
    multipart_parts,
)
from servers import Endpoint
from yarl import URL

import client

MYFILE = "Hello World\nHello Python\n"  # 001's myfile.txt


@dataclass
class Env:
    """What a case needs: the runner, the servers, the captured stdout."""

    run: SeedRunner
    httpbin: Endpoint
    sites: FakeSites
    closed_port: int
    tmp_path: Path
    capsys: pytest.CaptureFixture[str]

    def out(self) -> str:
        """Everything printed since the last call."""
        return self.capsys.readouterr().out

    def site_url(self, site: str, path: str = "/") -> str:
        """The URL of *path* on fake site *site* (``github``, ``python_org``, ``example``)."""
        return self.sites.endpoints[site].url(path)

    def recording_httpbin(self) -> SeedRunner:
        """A runner sending httpbin.org traffic to the recording echo site instead.

        For fragments that drop the response: the echo site shows what was sent.
        """
        base = self.sites.endpoints["example"].base
        return self.run.with_urls({"http://httpbin.org": base, "https://httpbin.org": base})

    def recorded(self, site: str = "example") -> list[Recorded]:
        """Requests fake site *site* received during this test."""
        return list(getattr(self.sites, site).requests)


Case = Callable[[Env], Awaitable[None]]
CASES: list[Any] = []


def case(case_id: str, *marks: pytest.MarkDecorator) -> Callable[[Case], Case]:
    """Register a seed example under a readable id: ``<seed>-<section>``."""

    def register(func: Case) -> Case:
        CASES.append(pytest.param(func, id=case_id, marks=marks))
        return func

    return register


@pytest.fixture(scope="module")
def fake_sites() -> Iterator[FakeSites]:
    """Stand-ins for the public sites the seeds call, other than httpbin."""
    sites = FakeSites.start()
    yield sites
    sites.stop()


@pytest.fixture
def env(
    httpbin: Endpoint,
    fake_sites: FakeSites,
    unused_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Env:
    """A fresh Env; the working directory is ``tmp_path`` (seeds read and write files)."""
    fake_sites.clear()
    monkeypatch.chdir(tmp_path)
    example = fake_sites.endpoints["example"].base
    urls = {
        "http://httpbin.org": httpbin.base,
        "https://httpbin.org": httpbin.base,
        "https://api.github.com": fake_sites.endpoints["github"].base,
        "http://python.org": fake_sites.endpoints["python_org"].base,
        "http://example.com": example,
        "https://example.com": example,
        "http://example.org": example,
        "https://github.com": example,
        # 002 reaches for a domain that does not exist; a closed port fails the
        # same way (ClientConnectorError) without any DNS query leaving the box.
        "https://invalid-domain-xyz.com": f"https://127.0.0.1:{unused_port}",
    }
    return Env(SeedRunner(urls), httpbin, fake_sites, unused_port, tmp_path, capsys)


def assert_sent_by_client(doc: dict[str, Any], env: Env) -> dict[str, str]:
    """httpbin's view of our default headers, as the 001 outputs show them."""
    headers: dict[str, str] = doc["headers"]
    assert headers["Accept"] == "*/*"
    assert headers["Accept-Encoding"].startswith("gzip, deflate")
    assert headers["Host"] == f"127.0.0.1:{env.httpbin.port}"
    assert headers["User-Agent"].startswith("Python/3.")
    return headers


def only_json(out: str) -> dict[str, Any]:
    """The single JSON document in *out*."""
    (doc,) = json_documents(out)
    assert isinstance(doc, dict)
    return doc


# == 000: overview ===================================================================

S000_BASIC = r"""
import aiohttp
import asyncio

async def main():

    async with aiohttp.ClientSession() as session:
        async with session.get('http://python.org') as response:

            print("Status:", response.status)
            print("Content-type:", response.headers['content-type'])

            html = await response.text()
            print("Body:", html[:15], "...")

loop = asyncio.get_event_loop()
loop.run_until_complete(main())
"""


@case("000-basic-example")
async def case_000_basic(env: Env) -> None:
    await env.run.program(S000_BASIC)
    assert env.out() == (
        "Status: 200\nContent-type: text/html; charset=utf-8\nBody: <!doctype html> ...\n"
    )


S000_OTHER_METHODS = r"""
session.post('http://httpbin.org/post', data=b'data')
session.put('http://httpbin.org/put', data=b'data')
session.delete('http://httpbin.org/delete')
session.head('http://httpbin.org/get')
session.options('http://httpbin.org/get')
session.patch('http://httpbin.org/patch', data=b'data')
"""


async def check_method_calls(env: Env, calls: str) -> None:
    """Await each ``session.<method>(...)`` line and check httpbin's answer."""
    async with client.ClientSession() as session:
        for line in calls.strip().splitlines():
            call = await env.run.expression(line, session=session)
            async with await call as resp:
                assert resp.status == 200, line
                if resp.method in ("POST", "PUT", "PATCH"):
                    assert (await resp.json())["data"] == "data"
                elif resp.method == "DELETE":
                    assert (await resp.json())["url"] == env.httpbin.url("/delete")
                elif resp.method == "HEAD":
                    assert await resp.read() == b""
                else:
                    assert resp.method == "OPTIONS"
                    assert "GET" in resp.headers["Allow"]


@case("000-other-methods")
async def case_000_other_methods(env: Env) -> None:
    await check_method_calls(env, S000_OTHER_METHODS)


S000_BASE_URL = r"""
async with aiohttp.ClientSession('http://httpbin.org') as session:
    async with session.get('/get'):
        pass
    async with session.post('/post', data=b'data'):
        pass
    async with session.put('/put', data=b'data'):
        pass
"""


@case("000-base-url")
async def case_000_base_url(env: Env) -> None:
    await env.recording_httpbin().fragment(S000_BASE_URL, aiohttp=client)
    sent = [(r.method, r.target, r.body) for r in env.recorded()]
    assert sent == [("GET", "/get", b""), ("POST", "/post", b"data"), ("PUT", "/put", b"data")]


S000_PARAMS = r"""
params = {'key1': 'value1', 'key2': 'value2'}
async with session.get('http://httpbin.org/get',
                       params=params) as resp:
    expect = 'http://httpbin.org/get?key1=value1&key2=value2'
    assert str(resp.url) == expect
"""


@case("000-params")
async def case_000_params(env: Env) -> None:
    async with client.ClientSession() as session:
        ns = await env.run.fragment(S000_PARAMS, session=session)
    assert ns["expect"] == env.httpbin.url("/get?key1=value1&key2=value2")


S000_JSON_RESPONSE = r"""
async with session.get('https://api.github.com/events') as resp:
    print(await resp.json())
"""


@case("000-json-response")
async def case_000_json_response(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S000_JSON_RESPONSE, session=session)
    assert ast.literal_eval(env.out()) == json.loads(GITHUB_EVENTS)


# Verbatim this is an IndentationError (the bytes literal continues on an indented
# line); see test_seed_snippets_that_are_not_python. Repair: parentheses.
S000_CUSTOM_HEADERS_VERBATIM = r"""
url = 'http://example.com/image'
payload = b'GIF89a\x01\x00\x01\x00\x00\xff\x00,\x00\x00'
          b'\x00\x00\x01\x00\x01\x00\x00\x02\x00;'
headers = {'content-type': 'image/gif'}

await session.post(url,
                   data=payload,
                   headers=headers)
"""
S000_CUSTOM_HEADERS_REPAIRED = r"""
url = 'http://example.com/image'
payload = (b'GIF89a\x01\x00\x01\x00\x00\xff\x00,\x00\x00'
          b'\x00\x00\x01\x00\x01\x00\x00\x02\x00;')
headers = {'content-type': 'image/gif'}

await session.post(url,
                   data=payload,
                   headers=headers)
"""


@case("000-custom-headers-repaired")
async def case_000_custom_headers(env: Env) -> None:
    async with client.ClientSession() as session:
        ns = await env.run.fragment(S000_CUSTOM_HEADERS_REPAIRED, session=session)
    (sent,) = env.recorded()
    assert (sent.method, sent.target) == ("POST", "/image")
    assert sent.headers["content-type"] == "image/gif"
    assert sent.body == ns["payload"]


S000_SESSION_HEADERS = r"""
headers={"Authorization": "Basic bG9naW46cGFzcw=="}
async with aiohttp.ClientSession(headers=headers) as session:
    async with session.get("http://httpbin.org/headers") as r:
        json_body = await r.json()
        assert json_body['headers']['Authorization'] == \
            'Basic bG9naW46cGFzcw=='
"""


@case("000-session-default-headers")
async def case_000_session_headers(env: Env) -> None:
    ns = await env.run.fragment(S000_SESSION_HEADERS, aiohttp=client)
    assert ns["r"].status == 200
    assert_sent_by_client(ns["json_body"], env)


S000_JSON_KEYWORD = r"""
await session.post(url, json={'example': 'text'})
"""
S000_TEXT_PLAIN = r"""
await session.post(url, data='Привет, Мир!')
"""


@case("000-json-keyword")
async def case_000_json_keyword(env: Env) -> None:
    async with client.ClientSession() as session:
        url = env.site_url("example", "/image")  # the url of the snippet before
        await env.run.fragment(S000_JSON_KEYWORD, session=session, url=url)
    (sent,) = env.recorded()
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.body) == {"example": "text"}


@case("000-text-plain")
async def case_000_text_plain(env: Env) -> None:
    async with client.ClientSession() as session:
        url = env.site_url("example", "/image")
        await env.run.fragment(S000_TEXT_PLAIN, session=session, url=url)
    (sent,) = env.recorded()
    assert sent.headers["content-type"] == "text/plain; charset=utf-8"
    assert sent.body == "Привет, Мир!".encode()


S_CUSTOM_COOKIES = r"""
url = 'http://httpbin.org/cookies'
cookies = {'cookies_are': 'working'}
async with ClientSession(cookies=cookies) as session:
    async with session.get(url) as resp:
        assert await resp.json() == {
           "cookies": {"cookies_are": "working"}}
"""


@case("000-custom-cookies")
async def case_000_custom_cookies(env: Env) -> None:
    ns = await env.run.fragment(S_CUSTOM_COOKIES, ClientSession=client.ClientSession)
    assert ns["resp"].status == 200


S000_HELLO_WORLD = r"""
import aiohttp
import asyncio

async def main():
    async with aiohttp.ClientSession() as session:
        async with session.get('http://python.org') as response:
            html = await response.text()
            print(html)

loop = asyncio.get_event_loop()
loop.run_until_complete(main())
"""
S000_HELLO_WORLD_FETCH = r"""
import aiohttp
import asyncio

async def fetch(session, url):
    async with session.get(url) as response:
        return await response.text()

async def main():
    async with aiohttp.ClientSession() as session:
        html = await fetch(session, 'http://python.org')
        print(html)

loop = asyncio.get_event_loop()
loop.run_until_complete(main())
"""


@case("000-session-hello-world")
async def case_000_hello_world(env: Env) -> None:
    await env.run.program(S000_HELLO_WORLD)
    assert env.out() == PYTHON_ORG_HOME + "\n"


@case("000-session-hello-world-fetch")
async def case_000_hello_world_fetch(env: Env) -> None:
    await env.run.program(S000_HELLO_WORLD_FETCH)
    assert env.out() == PYTHON_ORG_HOME + "\n"


S000_ADAPTER = r'''
import asyncio
import aiohttp
import json

from dataclasses import dataclass


@dataclass
class Config:
    verify_ssl: bool = True
    tcp_connections: int = 5


class Http:
    """A generic HTTP Rest adapter."""

    def __init__(self, config: Optional[Config] = None) -> None:
        self.config = Config() if config is None else config

    async def __aenter__(self) -> 'Http':
        self._con = aiohttp.TCPConnector(
            verify_ssl=self.config.verify_ssl, limit=self.config.tcp_connections
        )
        self._session = aiohttp.ClientSession(connector=self._con)
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        await self._session.close()
        await self._con.close()

    async def request(
        self,
        url: str,
        method: str = 'get',
        query_param: Optional[Dict] = None,
        headers: Optional[Dict] = None,
        body: Optional[Dict] = None,
    ) -> aiohttp.ClientResponse:
        """Performs an Async HTTP request.

        Args:
            method (str): request method ('GET', 'POST', 'PUT', ).
            url (str): request url.
            query_param (dict or None): url query parameters.
            header (dict or None): request headers.
            body (json or None): request body in case of method POST or PUT.
        """
        method = method.upper()
        headers = headers or {}

        if method == "GET":
            log.debug(f"Fetching page {url}")
            async with self._session.get(
                url, params=query_param, headers=headers
            ) as response:
                if response.status != 200:
                    log.debug(f"{url} returned an {response.status} code")
                    response.raise_for_status()
                return response


async def main():
    async with Http() as client:
        print(await client.request(method="GET", url="https://httpbin.org/get"))


if __name__ == "__main__":
    asyncio.run(main)
'''


@case("000-aiohttp-adapter")
async def case_000_adapter(env: Env) -> None:
    # The seed forgets `from typing import Optional, Dict` and `log`, and ends
    # with asyncio.run(main) (not main()): we supply the names, skip the
    # __main__ block and call main() ourselves.
    ns = await env.run.program(
        S000_ADAPTER, name="seed", Optional=Optional, Dict=dict, log=logging.getLogger("seed")
    )
    with pytest.warns(DeprecationWarning, match="verify_ssl"):
        await ns["main"]()
    out = env.out()
    assert out.startswith(f"<ClientResponse({env.httpbin.url('/get')}) [200 OK]>\n")
    assert "'Content-Type': 'application/json'" in out


S000_WHY_SO_MANY_LINES = r"""
async with aiohttp.ClientSession() as session:
    async with session.get('http://python.org') as response:
        print(await response.text())
"""


@case("000-why-so-many-lines")
async def case_000_why(env: Env) -> None:
    await env.run.fragment(S000_WHY_SO_MANY_LINES, aiohttp=client)
    assert env.out() == PYTHON_ORG_HOME + "\n"


# == 001: quickstart with httpbin outputs =============================================

S001_SIMPLE_GET = r"""
import aiohttp
import asyncio

async def fetch(session, url):
    async with session.get(url) as resp:
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        html = await fetch(session, "https://httpbin.org/get")
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.1-simple-get")
async def case_001_simple_get(env: Env) -> None:
    await env.run.program(S001_SIMPLE_GET)
    doc = only_json(env.out())
    assert doc["args"] == {}
    assert doc["url"] == env.httpbin.url("/get")
    assert_sent_by_client(doc, env)


S001_QUERY_STRING = r"""
import aiohttp
import asyncio

async def fetch(session, url, params):
    async with session.get(url, params=params) as resp:
        full_url = resp.url
        print("old url = {}".format(url))
        print("new url = {}\r\n".format(full_url))
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        params = {"username":"tom", "password":"123"}
        html = await fetch(session, "https://httpbin.org/get", params)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.2-get-query-string")
async def case_001_query_string(env: Env) -> None:
    await env.run.program(S001_QUERY_STRING)
    out = env.out()
    full = env.httpbin.url("/get?username=tom&password=123")
    assert out.startswith(f"old url = {env.httpbin.url('/get')}\nnew url = {full}\r\n\n")
    doc = only_json(out)
    assert doc["args"] == {"password": "123", "username": "tom"}
    assert doc["url"] == full
    assert_sent_by_client(doc, env)


S001_POST_TEXT = r"""
import aiohttp
import asyncio

async def fetch(session, url, text):
    async with session.post(url, data=text) as resp:
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        url = "https://httpbin.org/post"
        text = "Hello World"
        html = await fetch(session, url, text)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.3-post-text")
async def case_001_post_text(env: Env) -> None:
    await env.run.program(S001_POST_TEXT)
    doc = only_json(env.out())
    assert (doc["data"], doc["files"], doc["form"], doc["json"]) == ("Hello World", {}, {}, None)
    headers = assert_sent_by_client(doc, env)
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Content-Length"] == "11"


S001_POST_JSON = r"""
import aiohttp
import asyncio

async def fetch(session, url, json_dict):
    async with session.post(url, json=json_dict) as resp:
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        json_dict = {"username":"tom", "password":123}
        html = await fetch(session, "https://httpbin.org/post", json_dict)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.4-post-json")
async def case_001_post_json(env: Env) -> None:
    await env.run.program(S001_POST_JSON)
    doc = only_json(env.out())
    assert doc["data"] == '{"username": "tom", "password": 123}'
    assert doc["json"] == {"password": 123, "username": "tom"}
    assert (doc["files"], doc["form"]) == ({}, {})
    headers = assert_sent_by_client(doc, env)
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == "36"


S001_JSON_SERIALIZE = r"""
import ujson

async with aiohttp.ClientSession(
        json_serialize=ujson.dumps) as session:
    await session.post(url, json={'test': 'object'})
"""


@case("001-1.4-json-serialize")
async def case_001_json_serialize(env: Env) -> None:
    # ujson is no dependency of ours: a stand-in whose compact output proves it is used.
    ujson = types.ModuleType("ujson")
    ujson.dumps = lambda obj: json.dumps(obj, separators=(",", ":"))  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "ujson", ujson)
        await env.run.fragment(S001_JSON_SERIALIZE, aiohttp=client, url=env.site_url("example"))
    (sent,) = env.recorded()
    assert sent.body == b'{"test":"object"}'
    assert sent.headers["content-type"] == "application/json"


S001_POST_FORM = r"""
import aiohttp
import asyncio

async def fetch(session, url, payload):
    async with session.post(url, data=payload) as resp:
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        url = "https://httpbin.org/post"
        payload = {"username":"tom", "password":"123"}
        html = await fetch(session, url, payload)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.5-post-form")
async def case_001_post_form(env: Env) -> None:
    await env.run.program(S001_POST_FORM)
    doc = only_json(env.out())
    assert doc["form"] == {"password": "123", "username": "tom"}
    assert (doc["data"], doc["files"], doc["json"]) == ("", {}, None)
    headers = assert_sent_by_client(doc, env)
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["Content-Length"] == "25"


S001_POST_FILE = r"""
import aiohttp
import asyncio

async def fetch(session, url, filename):
    files = {"file": open(filename, "rb")}
    async with session.post(url, data=files) as resp:
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        url = "https://httpbin.org/post"
        filename = "myfile.txt"
        html = await fetch(session, url, filename)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.6-post-file")
async def case_001_post_file(env: Env) -> None:
    (env.tmp_path / "myfile.txt").write_text(MYFILE)
    await env.run.program(S001_POST_FILE)
    doc = only_json(env.out())
    assert doc["files"] == {"file": MYFILE}
    assert (doc["data"], doc["form"], doc["json"]) == ("", {}, None)
    headers = assert_sent_by_client(doc, env)
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")


S001_POST_FORM_AND_FILE = r"""
import aiohttp
import asyncio

async def fetch(session, url, filename):
    data = aiohttp.FormData()
    data.add_field("username", "tom")
    data.add_field("password", "123")
    data.add_field("file",
                  open(filename, "rb"),
                  filename="tom.txt")
    async with session.post(url, data=data) as resp:
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        url = "https://httpbin.org/post"
        filename = "myfile.txt"
        html = await fetch(session, url, filename)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.7-post-form-and-file")
async def case_001_post_form_and_file(env: Env) -> None:
    (env.tmp_path / "myfile.txt").write_text(MYFILE)
    await env.run.program(S001_POST_FORM_AND_FILE)
    doc = only_json(env.out())
    assert doc["files"] == {"file": MYFILE}
    assert doc["form"] == {"password": "123", "username": "tom"}
    headers = assert_sent_by_client(doc, env)
    assert headers["Content-Type"].startswith("multipart/form-data; boundary=")


S001_POST_BINARY = r"""
import aiohttp
import asyncio

async def fetch(session, url, data):
    async with session.post(url, data=data) as resp:
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        data = b"Hello World"
        html = await fetch(session, "https://httpbin.org/post", data)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.8-post-binary")
async def case_001_post_binary(env: Env) -> None:
    await env.run.program(S001_POST_BINARY)
    doc = only_json(env.out())
    assert (doc["data"], doc["files"], doc["form"], doc["json"]) == ("Hello World", {}, {}, None)
    headers = assert_sent_by_client(doc, env)
    assert headers["Content-Type"] == "application/octet-stream"
    assert headers["Content-Length"] == "11"


S001_POST_STREAM = r"""
import aiohttp
import asyncio
import aiofiles

async def file_sender(filename=None):
    async with aiofiles.open(filename, "rb") as f:
        chunk = await f.read(10)
        while chunk:
            yield chunk
            chunk = await f.read(10)

async def fetch(session, url, filename):
    async with session.post(url, data=file_sender(filename)) as resp:
        return await resp.text()

async def main():
    async with aiohttp.ClientSession() as session:
        url = "https://httpbin.org/post"
        filename = "myfile.txt"
        html = await fetch(session, url, filename)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-1.9-post-stream")
async def case_001_post_stream(env: Env) -> None:
    (env.tmp_path / "myfile.txt").write_text(MYFILE)
    await env.run.program(S001_POST_STREAM)
    doc = only_json(env.out())
    # waitress de-chunks the upload, so httpbin shows no Transfer-Encoding header.
    assert (doc["data"], doc["files"], doc["form"], doc["json"]) == (MYFILE, {}, {}, None)
    headers = assert_sent_by_client(doc, env)
    assert headers["Content-Type"] == "application/octet-stream"


S001_STATUS_TEXT = r"""
import aiohttp
import asyncio

async def fetch(session, url):
    async with session.get(url) as resp:
        status_code = resp.status
        print("status code: {}\r\n".format(status_code))
        return await resp.text(encoding="utf8")

async def main():
    async with aiohttp.ClientSession() as session:
        html = await fetch(session, "https://httpbin.org/get?username=tom")
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-2.1-status-and-text")
async def case_001_status_text(env: Env) -> None:
    await env.run.program(S001_STATUS_TEXT)
    out = env.out()
    assert out.startswith("status code: 200\r\n\n{")
    doc = only_json(out)
    assert doc["args"] == {"username": "tom"}
    assert_sent_by_client(doc, env)


S001_JSON = r"""
import aiohttp
import asyncio

async def fetch(session, url):
    async with session.get(url) as resp:
        d = await resp.json()
        print("type(d) = {}\r\n".format(type(d)))
        return d

async def main():
    async with aiohttp.ClientSession() as session:
        html = await fetch(session, "https://httpbin.org/get")
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-2.2-json")
async def case_001_json(env: Env) -> None:
    await env.run.program(S001_JSON)
    first, rest = env.out().split("\r\n\n", 1)
    assert first == "type(d) = <class 'dict'>"
    doc = ast.literal_eval(rest)
    assert doc["args"] == {}
    assert_sent_by_client(doc, env)


S001_BINARY = r"""
import aiohttp
import asyncio

async def fetch(session, url):
    async with session.get(url) as resp:
        return await resp.read()

async def main():
    async with aiohttp.ClientSession() as session:
        html = await fetch(session, "https://httpbin.org/get?username=tom")
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-2.3-binary")
async def case_001_binary(env: Env) -> None:
    await env.run.program(S001_BINARY)
    body = ast.literal_eval(env.out())
    assert isinstance(body, bytes)
    doc = json.loads(body)
    assert doc["args"] == {"username": "tom"}
    assert_sent_by_client(doc, env)


S001_STREAM = r"""
import aiohttp
import asyncio

async def fetch(session, url, filename, chunk_size):
    async with session.get(url) as resp:
        with open(filename, "wb") as fd:
            while True:
                chunk = await resp.content.read(chunk_size)
                if not chunk:
                    break
                fd.write(chunk)

async def main():
    async with aiohttp.ClientSession() as session:
        url = "https://api.github.com/events"
        filename = "myfile.txt"
        chunk_size = 10
        html = await fetch(session, url, filename, chunk_size)
        print(html)

if __name__ == '__main__':
    event_loop = asyncio.get_event_loop()
    event_loop.run_until_complete(main())
"""


@case("001-2.4-stream")
async def case_001_stream(env: Env) -> None:
    await env.run.program(S001_STREAM)
    assert env.out() == "None\n"
    assert (env.tmp_path / "myfile.txt").read_text() == GITHUB_EVENTS


# == 002: tutorial ===================================================================

S002_VERSION = r"""
import aiohttp
print(aiohttp.__version__)
"""


@case("002-installation-version")
async def case_002_version(env: Env) -> None:
    await env.run.program(S002_VERSION)
    assert env.out() == f"{client.__version__}\n"


S002_SIMPLE_GET = r"""
import aiohttp
import asyncio

async def fetch(url: str):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            print(response.status)
            data = await response.json()
            return data

# Run
result = asyncio.run(fetch('https://api.github.com'))
print(result['current_user_url'])
"""


@case("002-simple-get")
async def case_002_simple_get(env: Env) -> None:
    await env.run.program(S002_SIMPLE_GET)
    assert env.out() == f"200\n{env.site_url('github', '/user')}\n"


S002_TWO_CONTEXT_MANAGERS = r"""
import aiohttp
import asyncio

async def example():
    # 1. Session: manages connection pool
    async with aiohttp.ClientSession() as session:

        # 2. Response: the actual request
        async with session.get('https://httpbin.org/get') as response:
            data = await response.json()
            return data

asyncio.run(example())
"""


@case("002-two-context-managers")
async def case_002_two_context_managers(env: Env) -> None:
    ns = await env.run.program(S002_TWO_CONTEXT_MANAGERS)
    data = await ns["example"]()  # the seed drops asyncio.run's result: ask again
    assert data["url"] == env.httpbin.url("/get")


S002_REUSING_SESSIONS = r"""
import aiohttp
import asyncio

async def make_requests():
    # Create ONE session for multiple requests
    async with aiohttp.ClientSession() as session:

        # Request 1
        async with session.get('https://httpbin.org/get') as resp:
            data1 = await resp.json()

        # Request 2 (reuses connection)
        async with session.get('https://httpbin.org/headers') as resp:
            data2 = await resp.json()

        return data1, data2

# ❌ Bad: Creating new session per request
async def bad_example():
    for url in urls:
        async with aiohttp.ClientSession() as session:  # Wasteful!
            async with session.get(url) as resp:
                pass
"""


@case("002-reusing-sessions")
async def case_002_reusing_sessions(env: Env) -> None:
    ns = await env.run.program(S002_REUSING_SESSIONS)
    data1, data2 = await ns["make_requests"]()
    assert data1["url"] == env.httpbin.url("/get")
    assert_sent_by_client(data2, env)
    ns["urls"] = [env.site_url("example", "/a"), env.site_url("example", "/b")]
    await ns["bad_example"]()
    assert [r.target for r in env.recorded()] == ["/a", "/b"]


S002_SESSION_HEADERS = r"""
import aiohttp
import asyncio

async def github_requests():
    headers = {
        'Accept': 'application/vnd.github.v3+json',
        'User-Agent': 'MyApp/1.0'
    }

    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get('https://api.github.com/users/python') as resp:
            return await resp.json()

result = asyncio.run(github_requests())
print(result['login'])
"""


@case("002-session-default-headers")
async def case_002_session_headers(env: Env) -> None:
    await env.run.program(S002_SESSION_HEADERS)
    assert env.out() == "python\n"
    (sent,) = env.recorded("github")
    assert sent.headers["accept"] == "application/vnd.github.v3+json"
    assert sent.headers["user-agent"] == "MyApp/1.0"


S002_ALL_METHODS = r"""
import aiohttp
import asyncio

async def all_methods():
    async with aiohttp.ClientSession() as session:
        # GET
        async with session.get('https://httpbin.org/get') as resp:
            get_data = await resp.json()

        # POST with JSON
        async with session.post(
            'https://httpbin.org/post',
            json={'key': 'value'}
        ) as resp:
            post_data = await resp.json()

        # PUT
        async with session.put(
            'https://httpbin.org/put',
            json={'update': 'data'}
        ) as resp:
            put_data = await resp.json()

        # DELETE
        async with session.delete('https://httpbin.org/delete') as resp:
            delete_data = await resp.json()

        return get_data, post_data

asyncio.run(all_methods())
"""


@case("002-all-methods")
async def case_002_all_methods(env: Env) -> None:
    ns = await env.run.program(S002_ALL_METHODS)
    get_data, post_data = await ns["all_methods"]()
    assert get_data["url"] == env.httpbin.url("/get")
    assert post_data["json"] == {"key": "value"}


S002_POST_DATA_TYPES = r"""
import aiohttp
import asyncio

async def post_examples():
    async with aiohttp.ClientSession() as session:

        # JSON data
        async with session.post(
            'https://httpbin.org/post',
            json={'key': 'value'}
        ) as resp:
            print(await resp.json())

        # Form data
        async with session.post(
            'https://httpbin.org/post',
            data={'field': 'value'}
        ) as resp:
            print(await resp.json())

        # Raw bytes
        async with session.post(
            'https://httpbin.org/post',
            data=b'raw bytes'
        ) as resp:
            print(await resp.json())

asyncio.run(post_examples())
"""


@case("002-post-data-types")
async def case_002_post_data_types(env: Env) -> None:
    await env.run.program(S002_POST_DATA_TYPES)
    as_json, as_form, as_bytes = map(ast.literal_eval, env.out().splitlines())
    assert as_json["json"] == {"key": "value"}
    assert as_json["headers"]["Content-Type"] == "application/json"
    assert as_form["form"] == {"field": "value"}
    assert as_form["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert as_bytes["data"] == "raw bytes"
    assert as_bytes["headers"]["Content-Type"] == "application/octet-stream"


S002_GATHER = r"""
import aiohttp
import asyncio

async def fetch_all(urls: list[str]):
    async with aiohttp.ClientSession() as session:

        async def fetch_one(url: str):
            async with session.get(url) as response:
                return await response.json()

        # Execute all requests concurrently
        tasks = [fetch_one(url) for url in urls]
        results = await asyncio.gather(*tasks)
        return results

urls = [
    'https://httpbin.org/get?id=1',
    'https://httpbin.org/get?id=2',
    'https://httpbin.org/get?id=3'
]

results = asyncio.run(fetch_all(urls))
print(f"Fetched {len(results)} responses")
"""


@case("002-gather")
async def case_002_gather(env: Env) -> None:
    ns = await env.run.program(S002_GATHER)
    assert env.out() == "Fetched 3 responses\n"
    assert [r["args"] for r in ns["results"]] == [{"id": "1"}, {"id": "2"}, {"id": "3"}]


S002_GATHER_ERRORS = r"""
import aiohttp
import asyncio

async def fetch_with_errors(urls: list[str]):
    async with aiohttp.ClientSession() as session:

        async def fetch_one(url: str):
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                    return {'url': url, 'data': await resp.json(), 'error': None}
            except asyncio.TimeoutError:
                return {'url': url, 'data': None, 'error': 'timeout'}
            except aiohttp.ClientError as e:
                return {'url': url, 'data': None, 'error': str(e)}

        tasks = [fetch_one(url) for url in urls]
        return await asyncio.gather(*tasks)

urls = [
    'https://httpbin.org/get',
    'https://httpbin.org/status/404',
    'https://invalid-domain-xyz.com'
]

results = asyncio.run(fetch_with_errors(urls))
for r in results:
    if r['error']:
        print(f"❌ {r['url']}: {r['error']}")
    else:
        print(f"✅ {r['url']}: success")
"""


@case("002-gather-error-handling")
async def case_002_gather_errors(env: Env) -> None:
    await env.run.program(S002_GATHER_ERRORS)
    ok, not_found, unreachable = env.out().splitlines()
    assert ok == f"✅ {env.httpbin.url('/get')}: success"
    url_404 = env.httpbin.url("/status/404")
    # /status/404 has an empty text/html body, so json() raises ContentTypeError.
    assert not_found == (
        f"❌ {url_404}: 404, message='Attempt to decode JSON with unexpected mimetype: "
        f"text/html; charset=utf-8', url='{url_404}'"
    )
    port = env.closed_port
    assert re.fullmatch(
        rf"❌ https://127\.0\.0\.1:{port}: Cannot connect to host 127\.0\.0\.1:{port} "
        rf"ssl:default \[Connect call failed \('127\.0\.0\.1', {port}\)\]",
        unreachable,
    ), unreachable


S002_SEMAPHORE = r"""
import aiohttp
import asyncio

async def fetch_limited(urls: list[str], max_concurrent: int = 10):
    semaphore = asyncio.Semaphore(max_concurrent)

    async with aiohttp.ClientSession() as session:

        async def fetch_one(url: str):
            async with semaphore:  # Limits concurrent requests
                async with session.get(url) as response:
                    return await response.json()

        tasks = [fetch_one(url) for url in urls]
        return await asyncio.gather(*tasks)

# Only 10 concurrent requests at a time
urls = [f'https://httpbin.org/get?id={i}' for i in range(100)]
results = asyncio.run(fetch_limited(urls, max_concurrent=10))
"""


@case("002-limiting-concurrency")
async def case_002_semaphore(env: Env) -> None:
    ns = await env.run.program(S002_SEMAPHORE)
    assert [r["args"]["id"] for r in ns["results"]] == [str(i) for i in range(100)]


S002_TIMEOUT_CONFIG = r"""
import aiohttp
import asyncio

async def with_timeout():
    # Per-request timeout
    timeout = aiohttp.ClientTimeout(total=10)

    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get('https://httpbin.org/delay/2') as resp:
            return await resp.json()

# Detailed timeout
timeout = aiohttp.ClientTimeout(
    total=30,      # Total request time
    connect=5,     # Connection establishment
    sock_read=10,  # Time between data chunks
    sock_connect=5 # Socket connection
)
"""


@case("002-configuring-timeouts")
async def case_002_timeout_config(env: Env) -> None:
    ns = await env.run.program(S002_TIMEOUT_CONFIG)
    timeout = ns["timeout"]
    assert (timeout.total, timeout.connect, timeout.sock_read, timeout.sock_connect) == (
        30,
        5,
        10,
        5,
    )
    data = await ns["with_timeout"]()  # /delay/2 is well inside total=10
    assert data["url"] == env.httpbin.url("/delay/2")


S002_TIMEOUT_ERRORS = r"""
import aiohttp
import asyncio

async def safe_fetch(url: str):
    timeout = aiohttp.ClientTimeout(total=5)

    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(url) as response:
                return await response.json()

    except asyncio.TimeoutError:
        print("Request timed out")
        return None
    except aiohttp.ClientError as e:
        print(f"Client error: {e}")
        return None

result = asyncio.run(safe_fetch('https://httpbin.org/delay/10'))
"""


@case("002-handling-timeout-errors", pytest.mark.slow)
async def case_002_timeout_errors(env: Env) -> None:
    ns = await env.run.program(S002_TIMEOUT_ERRORS)  # waits out total=5
    assert env.out() == "Request timed out\n"
    assert ns["result"] is None


S002_TCP_CONNECTOR = r"""
import aiohttp
import asyncio

async def with_connector():
    # Configure connection pool
    connector = aiohttp.TCPConnector(
        limit=100,           # Max connections total
        limit_per_host=10,   # Max per host
        ttl_dns_cache=300,   # DNS cache TTL
        enable_cleanup_closed=True
    )

    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get('https://httpbin.org/get') as resp:
            return await resp.json()

asyncio.run(with_connector())
"""


@case("002-tcp-connector")
async def case_002_tcp_connector(env: Env) -> None:
    ns = await env.run.program(S002_TCP_CONNECTOR)
    data = await ns["with_connector"]()
    assert data["url"] == env.httpbin.url("/get")


S002_STREAM_DOWNLOAD = r"""
import aiohttp
import asyncio

async def stream_download(url: str, filename: str):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            with open(filename, 'wb') as f:
                async for chunk in response.content.iter_chunked(8192):
                    f.write(chunk)
                    print(f"Downloaded {f.tell()} bytes")

# asyncio.run(stream_download('https://example.com/file.zip', 'output.zip'))
"""


@case("002-stream-download")
async def case_002_stream_download(env: Env) -> None:
    ns = await env.run.program(S002_STREAM_DOWNLOAD)
    await ns["stream_download"](env.httpbin.url("/bytes/20000"), "output.zip")
    sizes = [int(line.split()[1]) for line in env.out().splitlines()]
    assert sizes[-1] == 20000 == (env.tmp_path / "output.zip").stat().st_size
    steps = [b - a for a, b in zip([0, *sizes], sizes, strict=False)]
    assert all(0 < step <= 8192 for step in steps)


S002_API_CLIENT = r"""
import aiohttp
import asyncio
from typing import Optional

class AsyncAPIClient:
    def __init__(self, base_url: str, api_key: str):
        self.base_url = base_url.rstrip('/')
        self.api_key = api_key
        self._session: Optional[aiohttp.ClientSession] = None

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=30)
            headers = {
                'Authorization': f'Bearer {self.api_key}',
                'Content-Type': 'application/json'
            }
            self._session = aiohttp.ClientSession(
                headers=headers,
                timeout=timeout
            )
        return self._session

    async def get(self, endpoint: str, **kwargs):
        session = await self._get_session()
        url = f"{self.base_url}/{endpoint.lstrip('/')}"

        async with session.get(url, **kwargs) as response:
            response.raise_for_status()
            return await response.json()

    async def post(self, endpoint: str, data: dict, **kwargs):
        session = await self._get_session()
        url = f"{self.base_url}/{endpoint.lstrip('/')}"

        async with session.post(url, json=data, **kwargs) as response:
            response.raise_for_status()
            return await response.json()

    async def close(self):
        if self._session and not self._session.closed:
            await self._session.close()

# Usage
async def main():
    client = AsyncAPIClient('https://api.github.com', 'token')
    try:
        user = await client.get('/users/python')
        print(user['login'])
    finally:
        await client.close()

asyncio.run(main())
"""


@case("002-api-client-class")
async def case_002_api_client(env: Env) -> None:
    await env.run.program(S002_API_CLIENT)
    assert env.out() == "python\n"
    (sent,) = env.recorded("github")
    assert (sent.method, sent.target) == ("GET", "/users/python")
    assert sent.headers["authorization"] == "Bearer token"
    assert sent.headers["content-type"] == "application/json"


S002_SCRAPER = r'''
import aiohttp
import asyncio

async def scrape_urls(urls: list[str], max_concurrent: int = 3):
    """Scrape multiple URLs with rate limiting."""

    semaphore = asyncio.Semaphore(max_concurrent)
    timeout = aiohttp.ClientTimeout(total=5)
    results = []

    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def fetch_one(url: str):
            async with semaphore:
                try:
                    async with session.get(url) as response:
                        content = await response.read()
                        return {
                            'url': url,
                            'status': response.status,
                            'size': len(content),
                            'error': None
                        }
                except asyncio.TimeoutError:
                    return {'url': url, 'status': 0, 'size': 0, 'error': 'timeout'}
                except aiohttp.ClientError as e:
                    return {'url': url, 'status': 0, 'size': 0, 'error': str(e)}

        tasks = [fetch_one(url) for url in urls]
        results = await asyncio.gather(*tasks)

    return results

# Test
urls = [
    'https://httpbin.org/get',
    'https://httpbin.org/status/200',
    'https://httpbin.org/status/404',
    'https://httpbin.org/delay/1',
    'https://httpbin.org/bytes/1024',
    'https://httpbin.org/bytes/2048',
    'https://httpbin.org/ip',
    'https://httpbin.org/headers',
    'https://httpbin.org/user-agent',
    'https://httpbin.org/uuid'
]

results = asyncio.run(scrape_urls(urls, max_concurrent=3))

print("\nResults:")
for r in results:
    if r['error']:
        print(f"❌ {r['url']}: {r['error']}")
    else:
        print(f"✅ {r['url']}: {r['status']} ({r['size']} bytes)")

# Summary
successful = sum(1 for r in results if r['error'] is None)
print(f"\nSuccess rate: {successful}/{len(results)}")
'''


@case("002-hands-on-scraper")
async def case_002_scraper(env: Env) -> None:
    await env.run.program(S002_SCRAPER)
    lines = env.out().splitlines()
    assert lines[:2] == ["", "Results:"]
    assert lines[-2:] == ["", "Success rate: 10/10"]
    report = dict(line[2:].rsplit(": ", 1) for line in lines[2:-2])
    assert all(line.startswith("✅ ") for line in lines[2:-2])
    url = env.httpbin.url
    assert report[url("/status/200")] == "200 (0 bytes)"
    assert report[url("/status/404")] == "404 (0 bytes)"
    assert report[url("/bytes/1024")] == "200 (1024 bytes)"
    assert report[url("/bytes/2048")] == "200 (2048 bytes)"
    assert len(report) == 10
    assert all(result.startswith("200 (") for key, result in report.items() if "status" not in key)


# == 004: client usage (request and response sections) ===============================

S004_MAKE_REQUEST = r"""
async with aiohttp.ClientSession() as session:
    async with session.get('https://api.github.com/events') as resp:
        print(resp.status)
        print(await resp.text())
"""


@case("004-make-a-request")
async def case_004_make_request(env: Env) -> None:
    await env.run.fragment(S004_MAKE_REQUEST, aiohttp=client)
    assert env.out() == f"200\n{GITHUB_EVENTS}\n"


@case("004-other-methods")
async def case_004_other_methods(env: Env) -> None:
    # 004's lines are the same as 000's, character for character.
    await check_method_calls(env, S000_OTHER_METHODS)


S004_PARAMS_DICT = r"""
params = {'key1': 'value1', 'key2': 'value2'}
async with session.get('http://httpbin.org/get',
                       params=params) as resp:
    assert str(resp.url) == 'http://httpbin.org/get?key2=value2&key1=value1'
"""
S004_PARAMS_LIST = r"""
params = [('key', 'value1'), ('key', 'value2')]
async with session.get('http://httpbin.org/get',
                       params=params) as r:
    assert str(r.url) == 'http://httpbin.org/get?key=value2&key=value1'
"""
STALE_ORDER = pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="the seed expects reversed query order; aiohttp 3.14 keeps insertion order too",
)


@case("004-params-dict", STALE_ORDER)
async def case_004_params_dict(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_PARAMS_DICT, session=session)


@case("004-params-list", STALE_ORDER)
async def case_004_params_list(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_PARAMS_LIST, session=session)


S004_PARAMS_STR = r"""
async with session.get('http://httpbin.org/get',
                       params='key=value+1') as r:
        assert str(r.url) == 'http://httpbin.org/get?key=value+1'
"""


@case("004-params-str")
async def case_004_params_str(env: Env) -> None:
    async with client.ClientSession() as session:
        ns = await env.run.fragment(S004_PARAMS_STR, session=session)
        # "+" went out unencoded. (Reading the body here would race: the seed
        # already left ``async with``, which releases an unread response.)
        assert ns["r"].url.raw_query_string == "key=value+1"
        assert ns["r"].request_info.url.raw_query_string == "key=value+1"


S004_ENCODED_URL = r"""
await session.get(URL('http://example.com/%30', encoded=True))
"""


@case("004-url-encoded-true")
async def case_004_encoded_url(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_ENCODED_URL, session=session, URL=URL)
    assert [r.target for r in env.recorded()] == ["/%30"]  # not requoted to /0


S004_RESPONSE_TEXT = r"""
async with session.get('https://api.github.com/events') as resp:
    print(await resp.text())
"""
S004_TEXT_ENCODING = r"""
await resp.text(encoding='windows-1251')
"""
S004_READ = r"""
print(await resp.read())
"""
S004_JSON = S000_JSON_RESPONSE  # the same text in both seeds


@case("004-response-content")
async def case_004_response_text(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_RESPONSE_TEXT, session=session)
        assert env.out() == GITHUB_EVENTS + "\n"
        async with session.get(env.site_url("github", "/events")) as resp:
            text = await env.run.expression(S004_TEXT_ENCODING.strip(), resp=resp)
    assert text == GITHUB_EVENTS


@case("004-binary-response-content")
async def case_004_read(env: Env) -> None:
    async with client.ClientSession() as session:
        async with session.get(env.site_url("github", "/events")) as resp:
            await env.run.fragment(S004_READ, resp=resp)
    assert env.out() == f"{GITHUB_EVENTS.encode()!r}\n"


@case("004-json-response-content")
async def case_004_json(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_JSON, session=session)
    assert ast.literal_eval(env.out()) == json.loads(GITHUB_EVENTS)


S004_STREAM_READ = r"""
async with session.get('https://api.github.com/events') as resp:
    await resp.content.read(10)
"""
S004_STREAM_TO_FILE = r"""
with open(filename, 'wb') as fd:
    while True:
        chunk = await resp.content.read(chunk_size)
        if not chunk:
            break
        fd.write(chunk)
"""


@case("004-streaming-response-content")
async def case_004_streaming(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_STREAM_READ, session=session)
        async with session.get(env.site_url("github", "/events")) as resp:
            first = await env.run.expression("await resp.content.read(10)", resp=resp)
            assert first == GITHUB_EVENTS.encode()[:10]
            await env.run.fragment(
                S004_STREAM_TO_FILE, resp=resp, filename="events.json", chunk_size=7
            )
    assert (env.tmp_path / "events.json").read_bytes() == GITHUB_EVENTS.encode()[10:]
    assert len(env.recorded("github")) == 2


S004_CUSTOM_HEADERS = r"""
import json
url = 'https://api.github.com/some/endpoint'
payload = {'some': 'data'}
headers = {'content-type': 'application/json'}

await session.post(url,
                   data=json.dumps(payload),
                   headers=headers)
"""


@case("004-custom-headers")
async def case_004_custom_headers(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_CUSTOM_HEADERS, session=session)
    (sent,) = env.recorded("github")
    assert (sent.method, sent.target) == ("POST", "/some/endpoint")
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == b'{"some": "data"}'


@case("004-custom-cookies")
async def case_004_custom_cookies(env: Env) -> None:
    # 004's example is the same as 000's, character for character.
    ns = await env.run.fragment(S_CUSTOM_COOKIES, ClientSession=client.ClientSession)
    assert ns["resp"].status == 200


S004_POST_FORM = r"""
payload = {'key1': 'value1', 'key2': 'value2'}
async with session.post('http://httpbin.org/post',
                        data=payload) as resp:
    print(await resp.text())
"""
S004_POST_STR = r"""
import json
url = 'https://api.github.com/some/endpoint'
payload = {'some': 'data'}

async with session.post(url, data=json.dumps(payload)) as resp:
    ...
"""


@case("004-post-form")
async def case_004_post_form(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_POST_FORM, session=session)
    assert only_json(env.out())["form"] == {"key1": "value1", "key2": "value2"}


@case("004-post-str")
async def case_004_post_str(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.run.fragment(S004_POST_STR, session=session)
    (sent,) = env.recorded("github")
    assert sent.body == b'{"some": "data"}'
    assert sent.headers["content-type"] == "text/plain; charset=utf-8"


S004_MULTIPART_FILE = r"""
url = 'http://httpbin.org/post'
files = {'file': open('report.xls', 'rb')}

await session.post(url, data=files)
"""
S004_MULTIPART_FORMDATA = r"""
url = 'http://httpbin.org/post'
data = FormData()
data.add_field('file',
               open('report.xls', 'rb'),
               filename='report.xls',
               content_type='application/vnd.ms-excel')

await session.post(url, data=data)
"""
REPORT_XLS = b"\xd0\xcf\x11\xe0 not really a spreadsheet \x00\xff"


@case("004-multipart-file")
async def case_004_multipart_file(env: Env) -> None:
    (env.tmp_path / "report.xls").write_bytes(REPORT_XLS)
    async with client.ClientSession() as session:
        await env.recording_httpbin().fragment(S004_MULTIPART_FILE, session=session)
    (sent,) = env.recorded()
    (part,) = multipart_parts(sent.headers["content-type"], sent.body)
    assert (part.name, part.filename, part.payload) == ("file", "report.xls", REPORT_XLS)
    assert part.content_type == mimetypes.guess_type("report.xls")[0]  # as aiohttp guesses


@case("004-multipart-formdata")
async def case_004_multipart_formdata(env: Env) -> None:
    (env.tmp_path / "report.xls").write_bytes(REPORT_XLS)
    async with client.ClientSession() as session:
        await env.recording_httpbin().fragment(
            S004_MULTIPART_FORMDATA, session=session, FormData=client.FormData
        )
    (sent,) = env.recorded()
    (part,) = multipart_parts(sent.headers["content-type"], sent.body)
    assert (part.name, part.filename, part.payload) == ("file", "report.xls", REPORT_XLS)
    assert part.content_type == "application/vnd.ms-excel"


S004_UPLOAD_FILE_OBJECT = r"""
with open('massive-body', 'rb') as f:
   await session.post('http://httpbin.org/post', data=f)
"""


@case("004-streaming-upload-file-object")
async def case_004_upload_file_object(env: Env) -> None:
    body = bytes(range(256)) * 1024
    (env.tmp_path / "massive-body").write_bytes(body)
    async with client.ClientSession() as session:
        await env.recording_httpbin().fragment(S004_UPLOAD_FILE_OBJECT, session=session)
    (sent,) = env.recorded()
    assert sent.body == body


S004_STREAMER = r"""
@aiohttp.streamer
def file_sender(writer, file_name=None):
    with open(file_name, 'rb') as f:
        chunk = f.read(2**16)
        while chunk:
            yield from writer.write(chunk)
            chunk = f.read(2**16)

# Then you can use `file_sender` as a data provider:

async with session.post('http://httpbin.org/post',
                        data=file_sender(file_name='huge_file')) as resp:
    print(await resp.text())
"""


@case("004-streaming-upload-streamer")
async def case_004_streamer(env: Env) -> None:
    body = "".join(f"line {i}\n" for i in range(20000))  # > 2**16: several writes
    (env.tmp_path / "huge_file").write_text(body)
    async with client.ClientSession() as session:
        await env.run.fragment(S004_STREAMER, session=session, aiohttp=client)
    assert only_json(env.out())["data"] == body


S004_CHAIN = r"""
r = await session.get('http://python.org')
await session.post('http://httpbin.org/post',
                   data=r.content)
"""


@case("004-streaming-upload-chained")
async def case_004_chain(env: Env) -> None:
    async with client.ClientSession() as session:
        await env.recording_httpbin().fragment(S004_CHAIN, session=session)
    (sent,) = env.recorded()
    assert sent.body == PYTHON_ORG_HOME.encode()


# Verbatim: SyntaxError (no colon after the `async with` line). Repair: the colon.
S004_PRECOMPRESSED_VERBATIM = r"""
async def my_coroutine(session, headers, my_data):
    data = zlib.compress(my_data)
    headers = {'Content-Encoding': 'deflate'}
    async with session.post('http://httpbin.org/post',
                            data=data,
                            headers=headers)
        pass
"""
S004_PRECOMPRESSED_REPAIRED = r"""
async def my_coroutine(session, headers, my_data):
    data = zlib.compress(my_data)
    headers = {'Content-Encoding': 'deflate'}
    async with session.post('http://httpbin.org/post',
                            data=data,
                            headers=headers):
        pass
"""


@case("004-precompressed-upload-repaired")
async def case_004_precompressed(env: Env) -> None:
    my_data = b"already compressed by the caller " * 50
    ns = await env.recording_httpbin().fragment(S004_PRECOMPRESSED_REPAIRED, zlib=zlib)
    async with client.ClientSession() as session:
        await ns["my_coroutine"](session, {}, my_data)
    (sent,) = env.recorded()
    assert sent.headers["content-encoding"] == "deflate"
    assert zlib.decompress(sent.body) == my_data  # sent as given, not compressed again


S004_SESSION_HEADERS = r"""
async with aiohttp.ClientSession(
    headers={"Authorization": "Basic bG9naW46cGFzcw=="}) as session:
    async with session.get("http://httpbin.org/headers") as r:
        json_body = await r.json()
        assert json_body['headers']['Authorization'] == \
            'Basic bG9naW46cGFzcw=='
"""


@case("004-session-default-headers")
async def case_004_session_headers(env: Env) -> None:
    ns = await env.run.fragment(S004_SESSION_HEADERS, aiohttp=client)
    assert_sent_by_client(ns["json_body"], env)


S004_CONNECTOR = r"""
conn = aiohttp.TCPConnector()
session = aiohttp.ClientSession(connector=conn)
"""


@case("004-connectors")
async def case_004_connectors(env: Env) -> None:
    ns = await env.run.fragment(S004_CONNECTOR, aiohttp=client)
    session, conn = ns["session"], ns["conn"]
    assert session.connector is conn
    async with session.get(env.site_url("example")) as resp:
        assert resp.status == 200
    await session.close()
    assert conn.closed  # the session owns the connector


@case("004-limiting-pool-size")
async def case_004_limits(env: Env) -> None:
    for code, limit, per_host in (
        ("conn = aiohttp.TCPConnector(limit=30)", 30, 0),
        ("conn = aiohttp.TCPConnector(limit=0)", 0, 0),
        ("conn = aiohttp.TCPConnector(limit_per_host=30)", 100, 30),
    ):
        conn = (await env.run.fragment(code, aiohttp=client))["conn"]
        assert (conn.limit, conn.limit_per_host) == (limit, per_host)
        await conn.close()


S004_NAMESERVERS = r"""
from aiohttp.resolver import AsyncResolver

resolver = AsyncResolver(nameservers=["8.8.8.8", "8.8.4.4"])
conn = aiohttp.TCPConnector(resolver=resolver)
"""


@case("004-custom-nameservers")
async def case_004_nameservers(env: Env) -> None:
    # Construction only: nothing is resolved, so no query goes to 8.8.8.8.
    ns = await env.run.fragment(S004_NAMESERVERS, aiohttp=client)
    assert isinstance(ns["resolver"], client.AsyncResolver)
    await ns["conn"].close()
    await ns["resolver"].close()


S004_STATUS = r"""
async with session.get('http://httpbin.org/get') as resp:
    assert resp.status == 200
"""


@case("004-response-status-codes")
async def case_004_status(env: Env) -> None:
    async with client.ClientSession() as session:
        ns = await env.run.fragment(S004_STATUS, session=session)
    assert ns["resp"].reason == "OK"


@case("004-response-headers")
async def case_004_headers(env: Env) -> None:
    async with client.ClientSession() as session:
        async with session.get(env.httpbin.url("/get")) as resp:
            headers = await env.run.expression("resp.headers", resp=resp)
            ctype = await env.run.expression("resp.headers['Content-Type']", resp=resp)
            lower = await env.run.expression("resp.headers.get('content-type')", resp=resp)
            raw = await env.run.expression("resp.raw_headers", resp=resp)
    assert isinstance(headers, CIMultiDictProxy)
    assert ctype == lower == "application/json"
    assert isinstance(raw, tuple)
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in raw)
    assert (b"Content-Type", b"application/json") in raw


@case("004-response-history")
async def case_004_history(env: Env) -> None:
    async with client.ClientSession() as session:
        resp = await env.run.expression(
            "await session.get('http://example.com/some/redirect/')", session=session
        )
        async with resp:
            shown = repr(await env.run.expression("resp", resp=resp))
            history = await env.run.expression("resp.history", resp=resp)
    assert shown.startswith(f"<ClientResponse({env.site_url('example', '/some/other/url/')}) [200")
    assert isinstance(history, tuple)
    (hop,) = history
    assert repr(hop).startswith(
        f"<ClientResponse({env.site_url('example', '/some/redirect/')}) [301"
    )


S004_TIMEOUT = r"""
async with session.get('https://github.com', timeout=60) as r:
    ...
"""


@case("004-timeouts")
async def case_004_timeouts(env: Env) -> None:
    async with client.ClientSession() as session:
        ns = await env.run.fragment(S004_TIMEOUT, session=session)
    assert ns["r"].status == 200
    assert [r.target for r in env.recorded()] == ["/"]


S004_GRACEFUL_SHUTDOWN = r"""
async def read_website():
    async with aiohttp.ClientSession() as session:
        async with session.get('http://example.org/') as response:
            await response.read()

loop = asyncio.get_event_loop()
loop.run_until_complete(read_website())
# Zero-sleep to allow underlying connections to close
loop.run_until_complete(asyncio.sleep(0))
loop.close()
"""


@case("004-graceful-shutdown")
async def case_004_graceful_shutdown(env: Env) -> None:
    import asyncio

    ns = await env.run.program(S004_GRACEFUL_SHUTDOWN, aiohttp=client, asyncio=asyncio)
    assert ns["loop"].is_closed()
    assert [(r.method, r.target) for r in env.recorded()] == [("GET", "/")]


# == the tests ======================================================================


@pytest.mark.parametrize("seed_case", CASES)
async def test_seed_example(seed_case: Case, env: Env) -> None:
    """The seed example runs on ``client`` and does what its document says."""
    await seed_case(env)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(S000_CUSTOM_HEADERS_VERBATIM, id="000-custom-headers"),
        pytest.param(
            "async with aiohttp.ClientSession() as session:\n"
            "    async with session.post(json={'test': 'object'})\n",
            id="004-json-request",
        ),
        pytest.param(
            "import ujson\n\n"
            "async with aiohttp.ClientSession(json_serialize=ujson.dumps) as session:\n"
            "    async with session.post(json={'test': 'object'})\n",
            id="004-json-request-ujson",
        ),
        pytest.param(S004_PRECOMPRESSED_VERBATIM, id="004-precompressed-upload"),
    ],
)
def test_seed_snippets_that_are_not_python(code: str) -> None:
    """These seed snippets are typos in the docs; no library could run them as written."""
    with pytest.raises(SyntaxError):
        compile_seed(code, "broken")


async def test_query_params_keep_insertion_order_like_aiohttp(httpbin: Endpoint) -> None:
    """What 004's stale params examples really print on aiohttp 3.14 (insertion order)."""
    async with client.ClientSession() as session:
        async with session.get(
            httpbin.url("/get"), params={"key1": "value1", "key2": "value2"}
        ) as resp:
            assert str(resp.url) == httpbin.url("/get?key1=value1&key2=value2")
        async with session.get(
            httpbin.url("/get"), params=[("key", "value1"), ("key", "value2")]
        ) as resp:
            assert str(resp.url) == httpbin.url("/get?key=value1&key=value2")
            assert (await resp.json())["args"] == {"key": ["value1", "value2"]}


def test_public_names_are_sorted_unique_and_resolve() -> None:
    """``client.__all__`` is in plain ``sorted()`` order, has no duplicates, all exist."""
    names = list(client.__all__)
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    missing = [name for name in names if not hasattr(client, name)]
    assert missing == []


async def test_connector_error_says_ssl_default(unused_port: int) -> None:
    """002's printed line, exactly as aiohttp 3.14 words it."""
    async with client.ClientSession() as session:
        with pytest.raises(client.ClientConnectorError) as caught:
            await session.get(f"https://127.0.0.1:{unused_port}")
    assert str(caught.value) == (
        f"Cannot connect to host 127.0.0.1:{unused_port} ssl:default "
        f"[Connect call failed ('127.0.0.1', {unused_port})]"
    )
