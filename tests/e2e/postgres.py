"""A throwaway PostgreSQL cluster on 127.0.0.1, with its data, socket and log in a temp dir.

PostgreSQL comes from Debian (``scripts/ensure-postgres``, which ``make test``
runs); this module only runs its programs: ``initdb`` a new cluster, start it
on a free port, ``createdb`` one database per catalog under test, stop it.
PostgreSQL refuses to run as root, so as root every program runs as the
unprivileged ``postgres`` user, which owns the temp dir. Durability is
switched off (``fsync``, ``synchronous_commit``): a crash would lose the
cluster, which is thrown away anyway.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.server import free_port

PROGRAMS = ("initdb", "pg_ctl", "postgres", "createdb")
# Debian installs each major version's programs here, out of PATH.
DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "twofold"
RUN_AS_ROOT = "postgres"  # the unprivileged user the cluster runs as when we are root

SETTINGS = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{tmp}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
log_min_messages = warning
"""


def bindir() -> Path | None:
    """The directory of PostgreSQL's server programs: the newest Debian version, else PATH."""

    def complete(directory: Path) -> bool:
        return all(os.access(directory / name, os.X_OK) for name in PROGRAMS)

    def version(directory: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", directory.parent.name))

    debian = sorted((Path(p) for p in glob.glob(DEBIAN_GLOB)), key=version, reverse=True)
    for directory in debian:
        if complete(directory):
            return directory
    found = shutil.which("initdb")
    if found:
        directory = Path(found).resolve().parent  # through symlinks such as /usr/local/bin
        if complete(directory):
            return directory
    return None


@dataclass
class Cluster:
    """A running cluster; :meth:`create_database` gives each catalog a database of its own."""

    bin: Path
    tmp: Path
    port: int
    user: str | None
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def url(self, database: str, driver: str = "asyncpg") -> str:
        return f"postgresql+{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, prefix: str = "catalog") -> str:
        """A new, empty database; its SQLAlchemy URL."""
        name = f"{prefix}_{next(self._names)}"
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        result = _run(self.user, [str(self.bin / program), *args])
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed:\n{result.stdout}{result.stderr}{self.log()}")
        return result

    def log(self) -> str:
        path = self.tmp / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def halt(self) -> None:
        """Stop the server as an outage would (open sessions are cut), keeping its data."""
        self.run("pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "30")

    def resume(self) -> None:
        """Start a halted server again, on the same port, with the same data."""
        log = str(self.tmp / "postgres.log")
        self.run("pg_ctl", "start", "-D", str(self.data), "-l", log, "-w", "-t", "30")

    def stop(self) -> None:
        """Stop the server (fast: open sessions are cut) and delete everything it wrote."""
        try:
            if (self.data / "postmaster.pid").exists():
                _run(self.user, [str(self.bin / "pg_ctl"), "stop", "-D", str(self.data),
                                 "-m", "fast", "-w", "-t", "30"])  # fmt: skip
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def start(directory: Path) -> Cluster:
    """initdb a cluster in a new temp dir and start it on a free port; stop() it after."""
    user = RUN_AS_ROOT if os.geteuid() == 0 else None
    # Not under pytest's tmp dirs: they are private to root, and the server may run as another user.
    tmp = Path(tempfile.mkdtemp(prefix="twofold-postgres-"))
    if user is not None:
        try:
            account = pwd.getpwnam(user)
        except KeyError:
            tmp.rmdir()
            raise RuntimeError(
                f"no user {user!r} to run PostgreSQL as (it refuses root): "
                "run scripts/ensure-postgres (make test does)"
            ) from None
        os.chown(tmp, account.pw_uid, account.pw_gid)
    cluster = Cluster(directory, tmp, 0, user)
    try:
        init = [str(directory / "initdb"), "-D", str(cluster.data), "-U", SUPERUSER,
                "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]  # fmt: skip
        result = _run(user, init)
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}")
        base = (cluster.data / "postgresql.conf").read_text()
        for _attempt in range(3):
            cluster.port = free_port()
            settings = SETTINGS.format(port=cluster.port, tmp=tmp)
            (cluster.data / "postgresql.conf").write_text(base + settings)
            started = _run(user, [str(directory / "pg_ctl"), "start", "-D", str(cluster.data),
                                  "-l", str(tmp / "postgres.log"), "-w", "-t", "30"])  # fmt: skip
            if started.returncode == 0:
                return cluster
            if "could not bind" not in cluster.log():
                raise RuntimeError(f"PostgreSQL did not start:\n{started.stdout}{cluster.log()}")
        raise RuntimeError("PostgreSQL found no free port after 3 attempts")
    except BaseException:
        cluster.stop()
        raise


def _run(user: str | None, command: list[str]) -> subprocess.CompletedProcess[str]:
    # Output is captured: pg_ctl start points the server's own at the -l log
    # file, so the server it leaves running holds none of our pipes open.
    return subprocess.run(
        command,
        user=user,
        group=user,
        extra_groups=[] if user is not None else None,
        cwd="/",  # a directory the unprivileged user can enter
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
