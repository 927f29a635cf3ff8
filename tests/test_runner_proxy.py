"""A job's ``session.proxy`` carries every request through that proxy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from servers.proxy import RecordingProxy

from jobs import load_job_text
from runner.app import EXIT_OK, RunOptions, run_job


@pytest.fixture
async def recording_proxy() -> AsyncIterator[RecordingProxy]:
    proxy = await RecordingProxy().start()
    yield proxy
    await proxy.close()


async def test_job_requests_go_through_the_session_proxy(
    recording_proxy: RecordingProxy, tmp_path: Path
) -> None:
    job = load_job_text(
        "version: 1\n"
        "public_env: [PROXY]\n"
        "session: {proxy: '${PROXY}'}\n"
        "requests:\n  - http://origin.invalid/a\n  - http://origin.invalid/b\n",
        env={"PROXY": recording_proxy.url},
        base_dir=tmp_path,
    )
    out = tmp_path / "r.jsonl"
    result = await run_job(job, RunOptions(output=out, quiet=True))
    assert result.exit_code == EXIT_OK
    # Absolute-form request lines: the proxy, not our resolver, reached the origin.
    assert sorted(h.target for h in recording_proxy.heads) == [
        "http://origin.invalid/a",
        "http://origin.invalid/b",
    ]
    assert len(out.read_text().splitlines()) == 2
