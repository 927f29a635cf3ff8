"""The two local targets: nginx on ten loopback addresses, and the polite server.

Both are child processes of the bench, bound to 127.0.0.2-127.0.0.11 only,
and stopped (by their own pid) when the bench ends.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .site import HOSTS

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    gzip off;
    keepalive_timeout 65;
    keepalive_requests 100000;
    client_body_temp_path {work}/tmp-body;
    proxy_temp_path {work}/tmp-proxy;
    fastcgi_temp_path {work}/tmp-fastcgi;
    uwsgi_temp_path {work}/tmp-uwsgi;
    scgi_temp_path {work}/tmp-scgi;
    types {{ text/html html; }}
    default_type application/octet-stream;
    server {{
{listens}
        root {site};
        location /r/ {{ rewrite ^/r/(\\d+)$ /p/$1.html permanent; }}
        error_page 404 /404.html;
        location = /404.html {{ internal; }}
    }}
}}
"""

TOOLS = {"nginx": "nginx-light", "wrk": "wrk", "curl": "curl"}
_SBIN = ("/usr/sbin", "/sbin")


def which(tool: str) -> str | None:
    found = shutil.which(tool)
    if found is None:
        for folder in _SBIN:
            candidate = Path(folder) / tool
            if candidate.exists():
                return str(candidate)
    return found


def ensure_tools() -> dict[str, str]:
    """Paths of nginx, wrk and curl; installs Debian's packages when missing (as root)."""
    missing = [pkg for tool, pkg in TOOLS.items() if which(tool) is None]
    if missing:
        if os.geteuid() != 0:
            wanted = " ".join(missing)
            sys.exit(f"bench: missing {wanted}: sudo apt-get install {wanted}")
        print(f"bench: installing {' '.join(missing)} with apt-get", file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    paths = {tool: which(tool) for tool in TOOLS}
    lost = [tool for tool, path in paths.items() if path is None]
    if lost:
        sys.exit(f"bench: still missing after install: {', '.join(lost)}")
    return {tool: str(path) for tool, path in paths.items()}


def free_port() -> int:
    """A port free on every benchmark host."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((HOSTS[0], 0))
            port = int(probe.getsockname()[1])
        if all(_bindable(host, port) for host in HOSTS):
            return port
    raise RuntimeError("no port free on all benchmark hosts")


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for host in HOSTS:
        while True:
            try:
                with socket.create_connection((host, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nothing listening on {host}:{port}") from None
                time.sleep(0.05)


class Nginx:
    """nginx serving ``site`` on every benchmark host at ``port``."""

    def __init__(self, binary: str, work: Path, site: Path, port: int) -> None:
        self.port = port
        listens = "\n".join(f"        listen {host}:{port};" for host in HOSTS)
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=work, site=site, listens=listens))
        self._args = [binary, "-p", str(work), "-c", str(conf)]
        self._proc: subprocess.Popen[bytes] | None = None

    def version(self) -> str:
        out = subprocess.run([self._args[0], "-v"], capture_output=True, text=True)
        return (out.stderr or out.stdout).strip().rpartition("/")[2]

    def __enter__(self) -> Nginx:
        self._proc = subprocess.Popen(self._args, stdin=subprocess.DEVNULL)
        wait_listening(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self._proc)


class PoliteServer:
    """``bench.polite_server`` in its own process, on every benchmark host."""

    def __init__(self, port: int, stats: Path) -> None:
        self.port = port
        self._args = [sys.executable, "-m", "bench.polite_server", str(port), str(stats)]
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PoliteServer:
        root = Path(__file__).resolve().parent.parent
        self._proc = subprocess.Popen(self._args, cwd=root, stdin=subprocess.DEVNULL)
        wait_listening(self.port)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self._proc)


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM our own child, then SIGKILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
