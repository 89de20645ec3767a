"""A running single-machine install for benchmarks: fresh data dir and database,
the DICOM node and gunicorn as subprocesses, a tenant, a token and a peer."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TENANT, AE = "BENCH", "BENCH"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def listeners(port: int) -> int:
    """How many sockets listen on TCP ``port`` (Linux: several with SO_REUSEPORT)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def wait_listeners(port: int, count: int, timeout: float = 60) -> None:
    """Wait until ``count`` processes listen on ``port``, so that parallel associations
    can spread over all node processes from the first one."""
    deadline = time.monotonic() + timeout
    while listeners(port) < count and time.monotonic() < deadline:
        time.sleep(0.1)


class Stack:
    """Start with ``with Stack(database='sqlite'|'postgresql') as s:``."""

    def __init__(self, database: str = "sqlite", web: bool = False,
                 node_processes: int = os.cpu_count() or 1) -> None:
        self.node_processes = node_processes
        self.dir = Path(tempfile.mkdtemp(prefix="pacs-bench-"))
        self.database = database
        self.dicom_port, self.http_port = free_port(), free_port()
        self.env = dict(os.environ, PACS_DATA_DIR=str(self.dir), PACS_DICOM_PORT=str(self.dicom_port),
                        PACS_HTTP_PORT=str(self.http_port), PACS_DICOM_HOST="127.0.0.1")
        self.env.pop("REDIS_URL", None)
        if database == "postgresql":
            name = "pacs_bench"
            admin = sa.create_engine("postgresql+psycopg://postgres@localhost/postgres",
                                     isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            self.env["DATABASE_URL"] = f"postgresql+psycopg://postgres@localhost/{name}"
        self.url = self.env.get("DATABASE_URL", f"sqlite:///{self.dir / 'pacs.sqlite3'}")
        self.procs: list[subprocess.Popen] = []
        self.with_web = web
        self.token = ""

    def flask(self, *args: str) -> str:
        out = subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def __enter__(self) -> "Stack":
        self.flask("db", "upgrade")
        self.flask("pacs", "create-tenant", "--code", TENANT, "--name", "Bench", "--ae", AE)
        self.flask("pacs", "create-user", "--tenant", TENANT, "--username", "bench",
                   "--password", "bench-password", "--role", "radiologist")
        self.token = self.flask("pacs", "create-token", "--tenant", TENANT, "--user", "bench")
        self._spawn([str(BIN / "flask"), "--app", "wsgi", "pacs", "dicom-node",
                     "--processes", str(self.node_processes)])
        wait_port(self.dicom_port)
        if Path("/proc/net/tcp").exists():
            wait_listeners(self.dicom_port, self.node_processes)
        if self.with_web:
            self._spawn([str(BIN / "gunicorn"), "--workers", "2", "--threads", "4", "--bind",
                         f"127.0.0.1:{self.http_port}", "--log-level", "warning", "wsgi:app"])
            wait_port(self.http_port)
        return self

    def _spawn(self, cmd: list[str]) -> None:
        self.procs.append(subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL, start_new_session=True))

    def add_peer(self, ae: str, port: int) -> None:
        self.flask("pacs", "add-peer", "--tenant", TENANT, "--ae", ae, "--host", "127.0.0.1",
                   "--port", str(port))

    def engine(self) -> sa.Engine:
        return sa.create_engine(self.url)

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
