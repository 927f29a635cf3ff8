"""The benchmark's static site and URL lists, all derived from one rule.

Every URL carries its own number (``?n=I``), and what a correct client must
see for it (status, body bytes) is a pure function of that number: the
checker needs no 1M-entry table, and a result line can be verified alone.

The mix per 100 URLs: 1 missing page (404), 1 old path that redirects (301,
then the page), 98 pages. Pages come in three sizes, as a crawl sees them:
~2 KB (70 %), ~20 KB (26 %), ~200 KB (4 %). URLs rotate over ten loopback
hosts (127.0.0.2 to 127.0.0.11) so per-host limits mean something.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

PAGES = 1000  # distinct page files; URL n fetches page (n * 7919) % PAGES
HOSTS = tuple(f"127.0.0.{i}" for i in range(2, 12))
NOT_FOUND_BODY = b"<!doctype html><title>404</title><h1>Not here</h1>\n" * 4
_FILLER = (
    b"<p>fetchrun benchmark page: lorem ipsum dolor sit amet, consectetur "
    b"adipiscing elit, sed do eiusmod tempor incididunt ut labore.</p>\n"
)


def page_size(page: int) -> int:
    """Body bytes of page ``page``: ~2 KB, ~20 KB or ~200 KB with some jitter."""
    r = page % 100
    jitter = (page * 131) % 997
    if r < 70:
        return 1800 + jitter // 2
    if r < 96:
        return 18000 + jitter * 4
    return 180000 + jitter * 40


def page_body(page: int) -> bytes:
    size = page_size(page)
    head = f"<!doctype html><title>page {page}</title>\n".encode()
    reps = size // len(_FILLER) + 1
    return (head + _FILLER * reps)[:size]


def url_path(n: int) -> str:
    """The path (and query) of URL number ``n``."""
    kind = n % 100
    page = (n * 7919) % PAGES
    if kind == 0:
        return f"/missing/{n}.html?n={n}"
    if kind == 1:
        return f"/r/{page:04d}?n={n}"
    return f"/p/{page:04d}.html?n={n}"


def expected(n: int) -> tuple[int, int]:
    """(final status, final body bytes) for URL ``n``, redirects followed."""
    if n % 100 == 0:
        return 404, len(NOT_FOUND_BODY)
    return 200, page_size((n * 7919) % PAGES)


def url(n: int, port: int) -> str:
    return f"http://{HOSTS[n % len(HOSTS)]}:{port}{url_path(n)}"


def number_of(url_text: str) -> int:
    """Recover ``n`` from a URL written by :func:`url`."""
    return int(url_text.rpartition("?n=")[2])


def iter_urls(count: int, port: int) -> Iterator[str]:
    for n in range(count):
        yield url(n, port)


def write_url_file(path: Path, count: int, port: int) -> Path:
    with path.open("w", encoding="ascii") as f:
        chunk: list[str] = []
        for u in iter_urls(count, port):
            chunk.append(u + "\n")
            if len(chunk) >= 10000:
                f.writelines(chunk)
                chunk.clear()
        f.writelines(chunk)
    return path


def build_site(root: Path) -> Path:
    """Write the static site under ``root`` (readable by nginx's worker user)."""
    (root / "p").mkdir(parents=True, exist_ok=True)
    for page in range(PAGES):
        (root / "p" / f"{page:04d}.html").write_bytes(page_body(page))
    (root / "404.html").write_bytes(NOT_FOUND_BODY)
    for dirpath, _dirs, _files in os.walk(root):
        os.chmod(dirpath, 0o755)
    os.chmod(root.parent, 0o755)
    return root
