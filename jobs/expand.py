"""From a ``JobFile`` to the stream of ``RequestSpec`` values, lazily.

Nothing here builds a list proportional to the number of URLs: ranges are
expanded with ``itertools.product`` over ``range`` objects, and URL lists are
read line by line with a bounded ``readline`` (a 1 GB line cannot be pulled
into memory). An invalid line of a URL list is yielded as a spec with
``error`` set and its ``file:line`` in ``source``, so the runner records it
as a failed result instead of stopping the run.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from jobs.checks import check_url
from jobs.model import (
    TITLE_FIELD,
    ExtractBlock,
    Extractor,
    Fields,
    JobFile,
    Location,
    Pairs,
    Request,
    RequestKind,
    RequestOptions,
    RequestSpec,
)
from jobs.secret import Secret

MAX_LINE_BYTES = 16 * 1024  # far beyond any real URL (browsers stop near 2-8 KiB)
SHOWN_CHARS = 200  # how much of an invalid line a spec keeps
# count_requests reads URL lists up to this size; beyond it returns None.
MAX_COUNT_BYTES = 512 * 1024 * 1024

_TOO_LONG = f"line is longer than {MAX_LINE_BYTES} bytes"


def iter_requests(job: JobFile) -> Iterator[RequestSpec]:
    """Every request of *job*, in file order, numbered from 0 by ``index``."""
    counter = itertools.count()
    for request in job.requests:
        options = resolve_options(job, request)
        yield from _EXPANDERS[request.kind](request, options, counter)


def count_requests(job: JobFile) -> int | None:
    """How many specs ``iter_requests`` will yield, or None if that is costly to know.

    URL lists are counted by streaming them (no URL checks); a list larger
    than ``MAX_COUNT_BYTES``, an unreadable one, or a one-shot iterator from
    ``job_from_urls`` gives None.
    """
    total = 0
    for request in job.requests:
        count = _count(request)
        if count is None:
            return None
        total += count
    return total


def resolve_options(job: JobFile, request: Request) -> RequestOptions:
    """A request's effective options: built-ins < ``defaults`` < session < its own keys."""
    mine, defaults = request.overrides, job.defaults
    return RequestOptions(
        method=mine.method or defaults.method,
        headers=merge_pairs(job.session.headers, mine.headers or (), fold_case=True),
        params=merge_pairs(defaults.params, mine.params or (), fold_case=False),
        body=mine.body if mine.body is not None else defaults.body,
        name=mine.name,
        expect=mine.expect if mine.expect is not None else defaults.expect,
        follow_redirects=(
            defaults.follow_redirects if mine.follow_redirects is None else mine.follow_redirects
        ),
        max_redirects=defaults.max_redirects if mine.max_redirects is None else mine.max_redirects,
        timeout=replace(job.timeout, **dict(mine.timeout)) if mine.timeout else job.timeout,
        retry=replace(job.retry, **dict(mine.retry)) if mine.retry else job.retry,
        save=mine.save or job.output.save,
        extract=merge_extract(defaults.extract, mine.extract),
        follow=(mine.follow if mine.follow is not None else defaults.follow) or None,
    )


def merge_extract(*blocks: ExtractBlock | None) -> Fields:
    """The built-in ``title`` field, then each ``extract:`` block laid over the last."""
    fields: dict[str, Extractor] = {"title": TITLE_FIELD}
    for block in blocks:
        if block is None:
            continue
        if not block.inherit:
            fields.clear()
        for name, extractor in block.fields:
            if extractor is None:
                fields.pop(name, None)
            else:
                fields[name] = extractor
    return tuple(fields.items())


def merge_pairs(base: Pairs, over: Pairs, *, fold_case: bool) -> Pairs:
    """*base* without the names that *over* sets, then *over*."""
    if not over:
        return base
    if fold_case:
        names = {name.lower() for name, _ in over}
        kept = [pair for pair in base if pair[0].lower() not in names]
    else:
        plain = {name for name, _ in over}
        kept = [pair for pair in base if pair[0] not in plain]
    return (*kept, *over)


def url_lines(lines: Iterable[bytes | str | None]) -> Iterator[tuple[int, str, str | None]]:
    """``(line number, text, error)`` for each line that is not blank or a ``#`` comment.

    A ``None`` line stands for one that was too long to read.
    """
    for number, raw in enumerate(lines, 1):
        if raw is None or len(raw) > MAX_LINE_BYTES:
            yield number, "", _TOO_LONG
            continue
        if isinstance(raw, bytes):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                shown = raw[:SHOWN_CHARS].decode("utf-8", "replace").strip()
                yield number, shown, "line is not valid UTF-8"
                continue
        else:
            line = raw
        text = line.strip().removeprefix("\ufeff").strip() if number == 1 else line.strip()
        if text and not text.startswith("#"):
            yield number, text, None


def file_lines(path: Path) -> Iterator[bytes | None]:
    """The raw lines of *path*, ``None`` for a line over ``MAX_LINE_BYTES``."""
    with open(path, "rb") as file:
        while raw := file.readline(MAX_LINE_BYTES + 1):
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                _skip_line(file)
                yield None
            else:
                yield raw


def _skip_line(file: BinaryIO) -> None:
    while (chunk := file.readline(65536)) and not chunk.endswith(b"\n"):
        pass


def _specs_from_lines(
    lines: Iterable[bytes | str | None],
    label: str,
    options: RequestOptions,
    counter: Iterator[int],
) -> Iterator[RequestSpec]:
    for number, text, error in url_lines(lines):
        if error is None:
            try:
                check_url(text)
            except ValueError as exc:
                error = str(exc)
        url = text if error is None else text[:SHOWN_CHARS]
        yield RequestSpec(url, options, Location(label, number), next(counter), error=error)


def _from_url(
    request: Request, options: RequestOptions, counter: Iterator[int]
) -> Iterator[RequestSpec]:
    yield RequestSpec(request.url or "", options, request.source, next(counter))


def _from_range(
    request: Request, options: RequestOptions, counter: Iterator[int]
) -> Iterator[RequestSpec]:
    template = request.url or ""
    secret = isinstance(template, Secret)
    names = [var.name for var in request.ranges]
    for combo in itertools.product(*(var.values() for var in request.ranges)):
        pairs = tuple(zip(names, combo, strict=True))
        url = template.format_map(dict(pairs))
        yield RequestSpec(
            Secret(url) if secret else url, options, request.source, next(counter), vars=pairs
        )


def _from_file(
    request: Request, options: RequestOptions, counter: Iterator[int]
) -> Iterator[RequestSpec]:
    path = request.urls_file or Path()
    label = str(path)
    try:
        yield from _specs_from_lines(file_lines(path), label, options, counter)
    except OSError as exc:
        # Loaded fine, unreadable now (deleted, I/O error): one failed result, not a crash.
        yield RequestSpec(
            "",
            options,
            Location(label, 0),
            next(counter),
            error=f"cannot read urls_file: {exc.strerror}",
        )


def _from_urls(
    request: Request, options: RequestOptions, counter: Iterator[int]
) -> Iterator[RequestSpec]:
    yield from _specs_from_lines(request.urls or (), request.source.file, options, counter)


_Expander = Callable[[Request, RequestOptions, Iterator[int]], Iterator[RequestSpec]]
_EXPANDERS: dict[RequestKind, _Expander] = {
    "url": _from_url,
    "range": _from_range,
    "urls_file": _from_file,
    "urls": _from_urls,
}


def _count(request: Request) -> int | None:
    kind = request.kind
    if kind == "url":
        return 1
    if kind == "range":
        return math.prod(len(var.values()) for var in request.ranges)
    if kind == "urls":
        urls = request.urls
        return sum(1 for _ in url_lines(urls)) if isinstance(urls, Sized) else None
    path = request.urls_file or Path()
    try:
        if os.stat(path).st_size > MAX_COUNT_BYTES:
            return None
        return sum(1 for _ in url_lines(file_lines(path)))
    except OSError:
        return None
