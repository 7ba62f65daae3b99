"""A throwaway PostgreSQL server for tests and benchmarks: own data directory, unix socket, local port.

PostgreSQL refuses to run as root, so when the current user is root the server runs as the
``postgres`` OS user (``runuser -u postgres --``) in a temporary directory that user owns.

>>> from tests.support.pgserver import find_pg_bin  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .net import free_port


def find_pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` holding ``initdb`` and ``pg_ctl`` (or PATH), else None."""
    cands = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0,
    )
    if cands:
        return Path(cands[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    """A running throwaway server; :meth:`stop` shuts it down and removes its directory."""

    bin_dir: Path
    root: Path
    port: int
    user: str = "postgres"
    dbname: str = "postgres"
    _as_user: tuple[str, ...] = ()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def conninfo(self) -> str:
        """A libpq URI (trust authentication, no password)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def airflow_uri(self) -> str:
        """The value of an ``AIRFLOW_CONN_*`` variable for this server."""
        return f"postgres://{self.user}@{self.host}:{self.port}/{self.dbname}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_user, *args], check=True, capture_output=True, text=True)

    def stop(self) -> None:
        data = self.root / "data"
        if data.exists():
            subprocess.run(
                [*self._as_user, str(self.bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                capture_output=True,
                text=True,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(*, fsync: bool = False) -> PostgresServer:
    """initdb into a fresh temporary directory and start a server on a free local port.

    Raises ``FileNotFoundError`` when no PostgreSQL server binaries are installed
    (``apt-get install -y postgresql``).
    """
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql/*/bin or on PATH; "
            "install them with: apt-get install -y postgresql"
        )
    root = Path(tempfile.mkdtemp(prefix="ad_pg_"))
    as_user: tuple[str, ...] = ()
    user = os.environ.get("USER") or "postgres"
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres", group="postgres")
        as_user = ("runuser", "-u", "postgres", "--")
        user = "postgres"
    os.chmod(root, 0o700)
    port = free_port()
    server = PostgresServer(bin_dir=bin_dir, root=root, port=port, user=user, _as_user=as_user)
    data = root / "data"
    try:
        server._run(
            str(bin_dir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )
        opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c timezone=UTC -c max_connections=50"
        if not fsync:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        server._run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start")
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        server.stop()
        raise RuntimeError(f"starting PostgreSQL failed: {exc.stderr or exc.stdout}\n{log}") from exc
    # wait until it accepts TCP connections
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((server.host, port), timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    return server
