"""Load and validate job files: ``load_job``, ``load_job_text``, ``job_from_urls``,
``job_for_check``.

Job files are treated as hostile input (a pull request can edit them, security.md
RUN-02): size is capped before parsing, YAML is read by ``jobs.yamlsafe``
(no tags, anchors, aliases or duplicate keys; depth and node caps), and every
value is validated into the frozen model. All problems are collected and
raised together as one ``JobError``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from jobs import crawl_sections, entries, sections
from jobs.checks import check_regex, check_url
from jobs.errors import JobError, Problem
from jobs.expand import url_lines
from jobs.interp import NAME
from jobs.model import CacheTTL, CheckSpec, JobFile, Location, Output, Request, RetryPolicy
from jobs.scalars import Ctx, Invalid, fields, get_int
from jobs.secret import show
from jobs.yamlsafe import Map, Node, Scalar, Seq, compose

SUPPORTED_VERSIONS = (1,)
# Job files are small; long URL lists belong in a urls_file.
MAX_FILE_BYTES = 2 * 1024 * 1024
ARGS_SOURCE = "<command line>"
# What a job does: exactly one of these top-level keys.
MODES = ("requests", "crawl", "check")

_SECTIONS = {
    "session": sections.session,
    "limits": sections.limits,
    "timeout": sections.timeout,
    "retry": sections.retry,
    "output": sections.output,
    "defaults": sections.defaults,
}


def load_job(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> JobFile:
    """Read and validate the job file at *path*.

    ``${NAME}`` references are looked up in *env* (default ``os.environ``).
    Relative paths in the file are resolved against the file's directory.
    Raises ``JobError`` listing every problem.
    """
    name = os.fspath(path)
    try:
        data = _read_capped(name)
    except OSError as exc:
        raise JobError([Problem(name, 0, 0, "", f"cannot read job file: {exc.strerror}")]) from None
    if len(data) > MAX_FILE_BYTES:
        raise JobError([_too_big(name, len(data))])
    text = _decode(name, data)
    base_dir = Path(os.path.abspath(name)).parent
    return load_job_text(text, filename=name, env=env, base_dir=base_dir)


def load_job_text(
    text: str,
    *,
    filename: str = "<string>",
    env: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> JobFile:
    """Validate a job given as text; *filename* is used in messages only.

    *base_dir* (default: the current directory) anchors relative paths.
    """
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        line, col = _position(text, exc.start)
        raise JobError([Problem(filename, line, col, "", "text is not valid Unicode")]) from None
    if size > MAX_FILE_BYTES:
        raise JobError([_too_big(filename, size)])
    base = Path(os.path.abspath(base_dir if base_dir is not None else os.getcwd()))
    ctx = Ctx(filename, os.environ if env is None else env, base)
    root = compose(text, filename, ctx.problems)
    job = _job(ctx, root) if root is not None else None
    if ctx.problems or job is None:
        raise JobError(ctx.problems)
    return job


def job_from_urls(urls: Iterable[str], **overrides: Any) -> JobFile:
    """A job fetching *urls* (e.g. ``fetchrun URL...`` or URLs on stdin).

    *overrides* are ``JobFile`` fields (``limits=``, ``timeout=``, ``output=``,
    ``source=``...). A list or tuple is checked now (``JobError`` on a bad URL);
    any other iterable is read lazily, once, by ``iter_requests``, which flags
    bad lines as invalid specs. Blank lines and ``#`` comments are skipped.
    """
    if isinstance(urls, str | bytes):
        raise TypeError("urls must be an iterable of URL strings, not a single string")
    source = overrides.pop("source", ARGS_SOURCE)
    base_dir = overrides.pop("base_dir", Path(os.getcwd()))
    if isinstance(urls, Sequence):
        _check_urls(source, urls)
    request = Request(Location(source, 1, 1), urls=urls)
    return JobFile(requests=(request,), source=source, base_dir=base_dir, **overrides)


def job_for_check(
    targets: Sequence[str],
    *,
    cwd: Path | None = None,
    accept: frozenset[int] | None = None,
    exclude: Sequence[str] = (),
    fragments: bool = False,
    external: bool = True,
    cache: bool = True,
    output_dir: Path | None = None,
) -> JobFile:
    """A link-check job for ``fetchrun check PATH_OR_URL...``.

    *targets* are http(s) URLs or file/directory paths; paths are resolved
    against *cwd* (default: the current directory), may be absolute and must
    exist. *exclude* regexes are compiled now. With *output_dir*, records go
    to ``records.jsonl`` and the state store to ``fetchrun-state.sqlite``
    there. Raises ``JobError`` (source ``<command line>``) listing every problem.
    """
    if isinstance(targets, str):
        raise TypeError("targets must be a sequence of paths or URLs, not a single string")
    base = Path(os.path.abspath(cwd if cwd is not None else os.getcwd()))
    problems: list[Problem] = []

    def report(path: str, message: str) -> None:
        problems.append(Problem(ARGS_SOURCE, 0, 0, path, message))

    checked = crawl_sections.command_line_targets(targets, base, report)
    if not targets:
        report("targets", "name at least one path or URL to check")
    for index, pattern in enumerate(exclude):
        try:
            check_regex(pattern)
        except ValueError as exc:
            report(f"exclude[{index}]", f"{show(pattern)}: {exc}")
    if accept is not None and not accept:
        report("accept", "must list at least one status code")
    if problems:
        raise JobError(problems)
    spec = CheckSpec(
        targets=checked,
        exclude=tuple(exclude),
        fragments=fragments,
        external=external,
        cache=CacheTTL() if cache else None,
    )
    if accept is not None:
        spec = replace(spec, accept=accept)
    output = Output()
    if output_dir is not None:
        out = Path(os.path.abspath(output_dir))
        output = Output(jsonl=out / "records.jsonl", state=out / "fetchrun-state.sqlite")
    return JobFile(
        requests=(),
        output=output,
        source=ARGS_SOURCE,
        base_dir=base,
        check=crawl_sections.accept_wins(spec),
    )


def _check_urls(source: str, urls: Sequence[str]) -> None:
    problems: list[Problem] = []
    for line, text, error in url_lines(iter(urls)):
        if error is None:
            try:
                check_url(text)
            except ValueError as exc:
                error = str(exc)
        if error is not None:
            problems.append(Problem(source, line, 1, f"urls[{line - 1}]", error))
    if problems:
        raise JobError(problems)


def _job(ctx: Ctx, root: Node) -> JobFile | None:
    if not isinstance(root, Map):
        ctx.error(root, "", "a job file must be a mapping with 'version:' and 'requests:'")
        return None
    if not _version_ok(ctx, root):
        return None
    ctx.public = _public_env(ctx, root)
    spec: dict[str, Any] = {
        "version": lambda *_: None,
        "requests": lambda _ctx, node, _path: node,  # read below, once retry is known
        "crawl": crawl_sections.crawl,
        "check": crawl_sections.check,
        **_SECTIONS,
        "public_env": lambda *_: None,  # read first, above
    }
    values = fields(ctx, root, "", spec, elsewhere=sections.ELSEWHERE)
    values.pop("version", None)
    values.pop("public_env", None)
    requests_node = values.pop("requests", None)
    if not _one_mode(ctx, root):
        return None
    requests: tuple[Request, ...] = ()
    if requests_node is not None:
        retry = values.get("retry") or RetryPolicy()
        try:
            requests = entries.requests(ctx, requests_node, "requests", retry)
        except Invalid:
            return None
    return JobFile(
        requests=requests,
        source=ctx.filename,
        base_dir=ctx.base_dir,
        secrets=frozenset(ctx.secrets),
        **values,
    )


def _one_mode(ctx: Ctx, root: Map) -> bool:
    """Exactly one of ``requests:``, ``crawl:``, ``check:``; report a missing or extra one.

    Returns False when none is present (there is nothing to build).
    """
    present = [key for key in MODES if key in root.entries]
    if not present:
        ctx.error(root, "", "missing required key 'requests' (or a 'crawl:' or 'check:' section)")
        return False
    if "crawl" in present and "check" in present:
        ctx.error(
            root.entries["check"][0],
            "check",
            "'crawl' and 'check' cannot be combined; pick one "
            "(a check of a URL target crawls that site itself)",
        )
    if "requests" in present:
        for mode, what in (("crawl", "seeds"), ("check", "targets")):
            if mode in present:
                ctx.error(
                    root.entries[mode][0],
                    mode,
                    f"'{mode}' cannot be combined with 'requests' "
                    f"(a {mode} job's requests are its {what}); keep one",
                )
    return True


def _public_env(ctx: Ctx, root: Map) -> frozenset[str]:
    """``public_env: [NAME, ...]``: variables that are not secrets (base URLs, hosts).

    Every other ``${NAME}`` value is treated as a secret and masked in output.
    """
    entry = root.entries.get("public_env")
    if entry is None:
        return frozenset()
    node = entry[1]
    if not isinstance(node, Seq):
        ctx.error(node, "public_env", "must be a list of environment variable names")
        return frozenset()
    names: set[str] = set()
    for index, item in enumerate(node.items):
        path = f"public_env[{index}]"
        if not isinstance(item, Scalar) or not NAME.fullmatch(item.text):
            ctx.error(item, path, "must be an environment variable name like BASE_URL")
            continue
        names.add(item.text)
    return frozenset(names)


def _version_ok(ctx: Ctx, root: Map) -> bool:
    """Report a missing or unknown version; an unknown one stops validation."""
    supported = ", ".join(map(str, SUPPORTED_VERSIONS))
    if "version" not in root.entries:
        ctx.error(root, "", f"missing required key 'version' (add 'version: {supported}')")
        return True
    node = root.entries["version"][1]
    try:
        version = get_int(ctx, node, "version", 1)
    except Invalid:
        return True
    if version not in SUPPORTED_VERSIONS:
        ctx.error(
            node,
            "version",
            f"unsupported version {version}; this fetchrun reads version {supported}",
        )
        return False
    return True


def _read_capped(name: str) -> bytes:
    """The file's bytes, refusing non-regular files and anything over the cap."""
    # Checked before opening: opening a FIFO would block, /dev/zero never ends.
    if not stat.S_ISREG(os.stat(name).st_mode):
        raise JobError([Problem(name, 0, 0, "", "not a regular file")])
    with open(name, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise JobError([_too_big(name, size)])
        return file.read(MAX_FILE_BYTES + 1)  # the file may have grown since fstat


def _too_big(name: str, size: int) -> Problem:
    return Problem(
        name,
        0,
        0,
        "",
        f"file is {size:,} bytes; job files are limited to "
        f"{MAX_FILE_BYTES:,} (put long URL lists in a urls_file)",
    )


def _decode(name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise JobError([Problem(name, line, col, "", "file is not valid UTF-8")]) from None


def _position(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1
