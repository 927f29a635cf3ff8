"""The seeds' proxy examples (000 "Proxy support", 004 "Proxy support") run on ``client``.

Each example is embedded verbatim and run through :class:`seed_support.SeedRunner`
as in ``test_seed_examples.py``: python.org is a :class:`seed_support.FakeSite`,
and the doc's proxies (``http://proxy.com``, ``http://some.proxy.com``) are a
real proxy, proxy.py, on loopback: without authentication for the plain
examples, with ``--basic-auth user:pass`` for the ``proxy_auth`` and
URL-credential ones (so a 200 proves the credentials were sent). proxy.py's
access log shows that each request really went through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from seed_support import PYTHON_ORG_HOME, PYTHON_ORG_PAGES, FakeSite, SeedRunner
from servers import Endpoint, WaitressThread
from servers.proxy import ProxyPy, proxy_env_names

import client

SEED_PROXY_WITH_CREDENTIALS = "http://user:pass@some.proxy.com"
_MARKER = "http://127.0.0.1:1/seed-proxy-with-credentials"


@dataclass
class ProxySeedRunner(SeedRunner):
    """A runner that also maps the seeds' proxy URL with credentials.

    ``localize`` refuses every URL with userinfo (it cannot tell which host
    follows the ``@``), so that one URL is swapped for a loopback marker before
    the check and for the real proxy, with the seed's credentials, after it.
    """

    credentials_proxy: str = ""

    def localize(self, code: str) -> str:
        code = code.replace(SEED_PROXY_WITH_CREDENTIALS, _MARKER)
        return super().localize(code).replace(_MARKER, self.credentials_proxy)


@dataclass
class Env:
    plain: ProxySeedRunner  # the doc's proxies -> proxy.py without auth
    auth: ProxySeedRunner  # the doc's proxies -> proxy.py requiring user:pass
    site: Endpoint
    proxy: ProxyPy
    auth_proxy: ProxyPy
    capsys: pytest.CaptureFixture[str]
    marks: tuple[int, int] = (0, 0)  # where each proxy's access log stood at the start

    def out(self) -> str:
        return self.capsys.readouterr().out


@pytest.fixture(scope="module")
def python_org() -> Iterator[Endpoint]:
    server = WaitressThread(FakeSite(PYTHON_ORG_PAGES), threads=4)
    server.start()
    yield Endpoint(server.host, server.port)
    server.stop()


@pytest.fixture(scope="module")
def proxies() -> Iterator[tuple[ProxyPy, ProxyPy]]:
    plain = ProxyPy().start()
    auth = ProxyPy(basic_auth="user:pass").start()
    yield plain, auth
    plain.stop()
    auth.stop()


@pytest.fixture
def env(
    python_org: Endpoint,
    proxies: tuple[ProxyPy, ProxyPy],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Env:
    for name in proxy_env_names():
        monkeypatch.delenv(name)
    plain, auth = proxies

    def runner(proxy: ProxyPy) -> ProxySeedRunner:
        return ProxySeedRunner(
            {
                "http://python.org": python_org.base,
                "http://proxy.com": proxy.url,
                "http://some.proxy.com": proxy.url,
            },
            credentials_proxy=auth.url.replace("http://", "http://user:pass@"),
        )

    marks = (plain.mark(), auth.mark())
    return Env(runner(plain), runner(auth), python_org, plain, auth, capsys, marks)


async def assert_proxied(env: Env, proxy: ProxyPy) -> None:
    """This test's request to the fake python.org is in ``proxy``'s access log."""
    since = env.marks[0] if proxy is env.proxy else env.marks[1]
    await proxy.wait_for_log(f"GET 127.0.0.1:{env.site.port}/", since=since)


# == 000 ============================================================================

S000_PROXY = r"""
async with aiohttp.ClientSession() as session:
    async with session.get("http://python.org",
                           proxy="http://proxy.com") as resp:
        print(resp.status)
"""

S000_PROXY_AUTH = r"""
async with aiohttp.ClientSession() as session:
    proxy_auth = aiohttp.BasicAuth('user', 'pass')
    async with session.get("http://python.org",
                           proxy="http://proxy.com",
                           proxy_auth=proxy_auth) as resp:
        print(resp.status)
"""

S000_PROXY_URL_CREDENTIALS = r"""
session.get("http://python.org",
            proxy="http://user:pass@some.proxy.com")
"""

S000_TRUST_ENV = r"""
async with aiohttp.ClientSession(trust_env=True) as session:
    async with session.get("http://python.org") as resp:
        print(resp.status)
"""


async def test_000_proxy(env: Env) -> None:
    await env.plain.fragment(S000_PROXY, aiohttp=client)
    assert env.out() == "200\n"
    await assert_proxied(env, env.proxy)


async def test_000_proxy_auth(env: Env) -> None:
    await env.auth.fragment(S000_PROXY_AUTH, aiohttp=client)
    assert env.out() == "200\n"  # proxy.py answers 407 without the credentials
    await assert_proxied(env, env.auth_proxy)


async def test_000_proxy_url_credentials(env: Env) -> None:
    await check_url_credentials(env, S000_PROXY_URL_CREDENTIALS)


async def check_url_credentials(env: Env, code: str) -> None:
    async with client.ClientSession() as session:
        call = await env.auth.expression(code.strip(), session=session)
        async with await call as resp:
            assert resp.status == 200
            assert await resp.text() == PYTHON_ORG_HOME
    await assert_proxied(env, env.auth_proxy)


async def test_000_trust_env(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", env.proxy.url)
    await env.plain.fragment(S000_TRUST_ENV, aiohttp=client)
    assert env.out() == "200\n"
    await assert_proxied(env, env.proxy)


# == 004 ============================================================================

S004_PROXY = r"""
async with aiohttp.ClientSession() as session:
    async with session.get("http://python.org",
                           proxy="http://some.proxy.com") as resp:
        print(resp.status)
"""

S004_PROXY_AUTH = r"""
async with aiohttp.ClientSession() as session:
    proxy_auth = aiohttp.BasicAuth('user', 'pass')
    async with session.get("http://python.org",
                           proxy="http://some.proxy.com",
                           proxy_auth=proxy_auth) as resp:
        print(resp.status)
"""

S004_PROXY_URL_CREDENTIALS = r"""
session.get("http://python.org",
            proxy="http://user:pass@some.proxy.com")
"""

# Stale: request methods take no trust_env (aiohttp 3.14 raises TypeError too);
# it is a ClientSession argument, as the repaired copy below passes it.
S004_TRUST_ENV = r"""
async with aiohttp.ClientSession() as session:
    async with session.get("http://python.org", trust_env=True) as resp:
        print(resp.status)
"""
S004_TRUST_ENV_REPAIRED = r"""
async with aiohttp.ClientSession(trust_env=True) as session:
    async with session.get("http://python.org") as resp:
        print(resp.status)
"""


async def test_004_proxy(env: Env) -> None:
    await env.plain.fragment(S004_PROXY, aiohttp=client)
    assert env.out() == "200\n"
    await assert_proxied(env, env.proxy)


async def test_004_proxy_auth(env: Env) -> None:
    await env.auth.fragment(S004_PROXY_AUTH, aiohttp=client)
    assert env.out() == "200\n"
    await assert_proxied(env, env.auth_proxy)


async def test_004_proxy_url_credentials(env: Env) -> None:
    await check_url_credentials(env, S004_PROXY_URL_CREDENTIALS)


async def test_004_trust_env_verbatim_is_a_type_error(env: Env) -> None:
    with pytest.raises(TypeError, match="trust_env"):
        await env.plain.fragment(S004_TRUST_ENV, aiohttp=client)


async def test_004_trust_env_repaired(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", env.proxy.url)
    await env.plain.fragment(S004_TRUST_ENV_REPAIRED, aiohttp=client)
    assert env.out() == "200\n"
    await assert_proxied(env, env.proxy)


async def test_without_the_credentials_the_auth_proxy_refuses(env: Env) -> None:
    """The control for the auth cases: the same example without proxy_auth gets 407."""
    await env.auth.fragment(S004_PROXY, aiohttp=client)
    assert env.out() == "407\n"
