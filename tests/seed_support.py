"""Running the seed documents' client examples (see tests/test_seed_examples.py).

A seed example is embedded verbatim; :func:`localize` makes the only edits the
promise allows (``import aiohttp`` becomes ``import client as aiohttp`` and public
hosts become loopback servers), and refuses code that still names a public host.

* whole programs run with :meth:`SeedRunner.program` in a worker thread that has
  a fresh current event loop, so the seed's own ``asyncio.run(...)`` or
  ``loop.run_until_complete(...)`` lines run unchanged;
* doc fragments (top-level ``await`` / ``async with``, a ``session`` assumed
  in scope) run with :meth:`SeedRunner.fragment` in the test's loop.

Public APIs the seeds call (GitHub, python.org, example.com) are played by
:class:`FakeSite`, a tiny WSGI app on waitress that serves fixed documents and
echoes (and records) every other request.
"""

from __future__ import annotations

import ast
import asyncio
import email.parser
import email.policy
import inspect
import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import CodeType
from typing import Any

from servers import Endpoint, WaitressThread

# A URL that is not on loopback: any left after localize() would leave the box.
# ("localhost" too is loopback: cookie examples need a name, the jar refuses IPs.)
_PUBLIC_URL = re.compile(r"\b(?:https?|wss?)://(?!(?:127\.0\.0\.1|localhost)[:/])[\w.-]+")
_IMPORT = re.compile(r"^(?P<indent>[ \t]*)import aiohttp[ \t]*$", re.MULTILINE)
_FROM_IMPORT = re.compile(
    r"^(?P<indent>[ \t]*)from aiohttp(?P<sub>(?:\.\w+)*) import ", re.MULTILINE
)

WSGIEnviron = dict[str, Any]
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def localize(code: str, urls: Mapping[str, str]) -> str:
    """*code* with the import swapped and every public URL prefix in *urls* mapped.

    Longer prefixes are replaced first, so ``http://example.com/image`` may map
    somewhere other than ``http://example.com``.
    """
    code = _IMPORT.sub(r"\g<indent>import client as aiohttp", code)
    code = _FROM_IMPORT.sub(r"\g<indent>from client\g<sub> import ", code)
    for public in sorted(urls, key=len, reverse=True):
        code = code.replace(public, urls[public])
    leftover = _PUBLIC_URL.search(code)
    if leftover is not None:
        raise AssertionError(f"seed code still names a public host: {leftover.group()}")
    return code


def compile_seed(code: str, name: str) -> CodeType:
    """Compile seed code, allowing the doc fragments' top-level ``await``."""
    # dont_inherit: this module's `from __future__ import annotations` must not leak in.
    # optimize=0: the seeds' own asserts are their checks, kept under `python -O` too.
    compiled: CodeType = compile(
        code,
        f"<seed {name}>",
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
        optimize=0,
    )
    return compiled


def _exec_in_fresh_loop(code: CodeType, namespace: dict[str, Any]) -> None:
    """Run *code* as a script would run: this thread gets its own current loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        exec(code, namespace)
    finally:
        asyncio.set_event_loop(None)
        loop.close()  # a no-op if the seed closed it itself


@dataclass
class SeedRunner:
    """Localizes and runs seed code against the loopback servers in *urls*."""

    urls: dict[str, str]

    def localize(self, code: str) -> str:
        """See :func:`localize`."""
        return localize(code, self.urls)

    async def program(self, code: str, *, name: str = "__main__", **names: Any) -> dict[str, Any]:
        """Run a whole seed program in a worker thread; return its globals.

        *name* becomes ``__name__`` (anything but ``"__main__"`` skips an
        ``if __name__ == '__main__':`` block); *names* are pre-set globals.
        """
        compiled = compile_seed(self.localize(code), name)
        namespace: dict[str, Any] = {"__name__": name, **names}
        await asyncio.to_thread(_exec_in_fresh_loop, compiled, namespace)
        return namespace

    async def fragment(self, code: str, **names: Any) -> dict[str, Any]:
        """Run a doc fragment in the test's loop with *names* (e.g. ``session``) in scope."""
        namespace: dict[str, Any] = {"__name__": "seed_fragment", **names}
        compiled = compile_seed(self.localize(code), "fragment")
        result = eval(compiled, namespace)
        if compiled.co_flags & inspect.CO_COROUTINE:
            await result
        return namespace

    async def expression(self, code: str, **names: Any) -> Any:
        """The value of one seed expression, e.g. ``await resp.read()``."""
        compiled = compile(
            self.localize(code),
            "<seed expression>",
            "eval",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            dont_inherit=True,
            optimize=0,
        )
        value = eval(compiled, {"__name__": "seed_expression", **names})
        if compiled.co_flags & inspect.CO_COROUTINE:
            value = await value
        return value

    def with_urls(self, overrides: Mapping[str, str]) -> SeedRunner:
        """A runner whose URL map is this one's updated with *overrides*."""
        return SeedRunner({**self.urls, **overrides})


def json_documents(text: str) -> list[Any]:
    """Every top-level JSON object or array printed in *text*, in order."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    index = 0
    while (start := _next_json_start(text, index)) >= 0:
        try:
            value, index = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            index = start + 1
            continue
        found.append(value)
    return found


def _next_json_start(text: str, index: int) -> int:
    starts = [pos for pos in (text.find("{", index), text.find("[", index)) if pos >= 0]
    return min(starts, default=-1)


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a ``multipart/form-data`` body."""

    name: str | None
    filename: str | None
    content_type: str
    payload: bytes


def multipart_parts(content_type: str, body: bytes) -> list[Part]:
    """Split a ``multipart/form-data`` body with the stdlib MIME parser."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert message.is_multipart(), content_type
    parts: list[Part] = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append(
            Part(
                part.get_param("name", header="content-disposition"),  # type: ignore[arg-type]
                part.get_filename(),
                part.get_content_type(),
                payload,
            )
        )
    return parts


# -- fake public sites --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """A fixed document; ``{base}`` in *body* becomes ``http://<Host header>``."""

    body: str
    content_type: str = "application/json; charset=utf-8"
    status: str = "200 OK"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as a FakeSite received it (header names lower-cased)."""

    method: str
    target: str  # the raw request-target, as sent
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeSite:
    """A WSGI app: *pages* by path; any other request is echoed back as JSON."""

    pages: Mapping[str, Page]
    requests: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: WSGIEnviron, start_response: StartResponse) -> Iterable[bytes]:
        body = environ["wsgi.input"].read()
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").lower()] = environ[key]
        record = Recorded(environ["REQUEST_METHOD"], environ["REQUEST_URI"], headers, body)
        with self._lock:
            self.requests.append(record)
        page = self.pages.get(environ["PATH_INFO"])
        if page is None:
            page = Page(json.dumps(_echo(record)))
        payload = page.body.replace("{base}", f"http://{environ['HTTP_HOST']}").encode()
        headers_out = [("Content-Type", page.content_type), ("Content-Length", str(len(payload)))]
        start_response(page.status, [*headers_out, *page.headers])
        return [payload]

    def clear(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self.requests.clear()


def _echo(record: Recorded) -> dict[str, Any]:
    return {
        "method": record.method,
        "target": record.target,
        "headers": record.headers,
        "data": record.body.decode("utf-8", "replace"),
    }


# GitHub's public timeline, as the seeds print it: compact JSON.
GITHUB_EVENTS = (
    '[{"created_at":"2015-06-12T14:06:22Z","public":true,'
    '"actor":{"login":"octocat","id":583231},"type":"PushEvent"}]'
)
GITHUB_PAGES = {
    "/": Page(
        json.dumps({"current_user_url": "{base}/user", "events_url": "{base}/events"}, indent=2)
    ),
    "/events": Page(GITHUB_EVENTS),
    "/users/python": Page(json.dumps({"login": "python", "id": 1525981, "type": "Organization"})),
}
PYTHON_ORG_HOME = (
    "<!doctype html>\n<html><head><title>Welcome to Python.org</title></head>"
    "<body><h1>Python</h1></body></html>\n"
)
PYTHON_ORG_PAGES = {"/": Page(PYTHON_ORG_HOME, "text/html; charset=utf-8")}
# The redirect the history example follows (004 "Response History").
EXAMPLE_PAGES = {
    "/some/redirect/": Page(
        "", "text/plain", "301 Moved Permanently", (("Location", "/some/other/url/"),)
    )
}


@dataclass
class FakeSites:
    """Running stand-ins for api.github.com, python.org and example.com."""

    github: FakeSite
    python_org: FakeSite
    example: FakeSite
    endpoints: dict[str, Endpoint]
    _servers: list[WaitressThread]

    @classmethod
    def start(cls) -> FakeSites:
        """Start one small waitress server per site."""
        sites = {
            "github": FakeSite(GITHUB_PAGES),
            "python_org": FakeSite(PYTHON_ORG_PAGES),
            "example": FakeSite(EXAMPLE_PAGES),
        }
        servers: list[WaitressThread] = []
        endpoints: dict[str, Endpoint] = {}
        for name, site in sites.items():
            server = WaitressThread(site, threads=4)
            server.start()
            servers.append(server)
            endpoints[name] = Endpoint(server.host, server.port)
        return cls(sites["github"], sites["python_org"], sites["example"], endpoints, servers)

    def clear(self) -> None:
        """Forget every site's recorded requests."""
        for site in (self.github, self.python_org, self.example):
            site.clear()

    def stop(self) -> None:
        """Stop every server."""
        for server in self._servers:
            server.stop()
