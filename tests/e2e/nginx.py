"""A real nginx caching proxy on 127.0.0.1, with its config, cache and logs in a temp dir.

nginx comes from Debian (``scripts/ensure-nginx``, which ``make test`` runs).
It answers with ``X-Cache-Status`` (HIT, MISS, EXPIRED, REVALIDATED...), so a
test can see what the cache did without reading its files.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.server import free_port

CANDIDATES = ("nginx", "/usr/sbin/nginx")

CONFIG = """\
{user}
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache levels=1:2 keys_zone=api:1m max_size=16m inactive=10m
                     use_temp_path=off;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache api;
            # An expired entry is revalidated with If-None-Match (and a 304
            # refreshes it) rather than fetched again in full.
            proxy_cache_revalidate on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""


def binary() -> str | None:
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


@dataclass
class Nginx:
    url: str
    process: subprocess.Popen[bytes]
    tmp: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def errors(self) -> str:
        log = self.tmp / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""


def start(executable: str, upstream: str, tmp: Path) -> Nginx:
    """nginx in front of ``upstream`` on a free port, in the foreground."""
    tmp.mkdir(parents=True, exist_ok=True)
    for _attempt in range(3):
        port = free_port()
        # As root the workers would drop to "nobody", who cannot enter our temp dir.
        user = "user root;" if os.geteuid() == 0 else ""
        conf = tmp / "nginx.conf"
        conf.write_text(CONFIG.format(user=user, tmp=tmp, port=port, upstream=upstream))
        process = subprocess.Popen(
            [executable, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        proxy = Nginx(f"http://127.0.0.1:{port}", process, tmp)
        if _wait_listening(proxy, port):
            return proxy
        proxy.stop()
        if "Address already in use" not in proxy.errors():
            raise RuntimeError(f"nginx did not start:\n{proxy.errors()}")
    raise RuntimeError("nginx found no free port after 3 attempts")


def _wait_listening(proxy: Nginx, port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False
