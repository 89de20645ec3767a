"""Fixtures: a real DICOM node in-process or as a subprocess, and small SCU helpers.

``dicom_node`` runs the node in this process (non-blocking server) against
the SQLite test app with two tenants, HOSPA and HOSPB; ``any_node`` does the
same on each backend. ``node_process`` runs ``flask --app wsgi pacs
dicom-node`` against a file SQLite database so a test can SIGKILL it.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from flask_migrate import upgrade
from pynetdicom import AE, build_context, build_role, evt
from pynetdicom.sop_class import Verification

from app import create_app
from app.extensions import db
from app.services import tenants
from dicom_node import server
from dicom_node.sockets import on_conn_open

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TIMEOUT = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run a dcmtk tool, returning its output (stderr holds dcmtk's log)."""
    proc = subprocess.run([*args], capture_output=True, text=True, timeout=TIMEOUT)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[0]} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def movescu(port: int, *keys: str, destination: str = "DEST", called: str = "HOSPA",
            model: str = "-S") -> subprocess.CompletedProcess:
    """Run movescu -v (not checked: the test reads the statuses in its log)."""
    args = [arg for key in keys for arg in ("-k", key)]
    return run("movescu", model, "-v", "-aec", called, "-aem", destination, *args, "127.0.0.1",
               str(port), check=False)


def refresh() -> None:
    """End the test thread's transaction so it sees what the node committed."""
    db.session.rollback()


def dataset_part(path_or_bytes) -> bytes:
    """The encoded dataset after the file meta (dcmtk may rewrite the meta)."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(data), stop_before_pixels=True)
    meta_len = int(ds.file_meta.FileMetaInformationGroupLength)
    return data[132 + 12 + meta_len:]


@dataclass
class NodeFixture:
    """A running node with two tenants whose AE titles are HOSPA and HOSPB."""

    app: object
    node: server.Node
    a: NodeTenant
    b: NodeTenant

    @property
    def port(self) -> int:
        return self.node.port

    def associate(self, called: str = "HOSPA", contexts=None, calling: str = "TESTSCU",
                  roles: list | None = None, handlers: list | None = None):
        """A pynetdicom association with the node (the caller releases it)."""
        ae = AE(ae_title=calling)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
        for cx in contexts or [Verification]:
            if isinstance(cx, str):
                ae.add_requested_context(cx)
            else:
                ae.add_requested_context(cx.abstract_syntax, cx.transfer_syntax)
        # Nagle on our side too, or every request stalls ~40 ms on delayed ACKs.
        handlers = [(evt.EVT_CONN_OPEN, on_conn_open), *(handlers or [])]
        return ae.associate("127.0.0.1", self.port, ae_title=called, ext_neg=roles or [],
                            evt_handlers=handlers)

    def store(self, datasets, called: str = "HOSPA") -> None:
        """C-STORE ``datasets`` (each in its own transfer syntax); all must succeed."""
        pairs = sorted({(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID) for ds in datasets})
        assoc = self.associate(called=called,
                               contexts=[build_context(uid, [ts]) for uid, ts in pairs])
        assert [assoc.send_c_store(ds).Status for ds in datasets] == [0] * len(datasets)
        assoc.release()

    def storage_roles(self, sop_classes) -> list:
        return [build_role(uid, scp_role=True) for uid in sop_classes]


@dataclass
class NodeTenant:
    tenant: object
    code: str
    ae: str


def node_tenant(code: str) -> NodeTenant:
    """An approved tenant receiving on AE title ``code`` (no users: hashing is slow)."""
    return NodeTenant(tenants.register(code, f"{code} 医院", code, approve=True), code, code)


def _running(app):
    a, b = node_tenant("HOSPA"), node_tenant("HOSPB")
    node = server.start(app, port=0, host="127.0.0.1")
    try:
        yield NodeFixture(app, node, a, b)
    finally:
        node.stop(grace=2)
        refresh()


@pytest.fixture
def dicom_node(sqlite_app):
    """The node in this process against the SQLite test app."""
    yield from _running(sqlite_app)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_node(request):
    """The node in this process, on each backend in turn."""
    yield from _running(request.getfixturevalue(f"{request.param}_app"
                                                if request.param == "sqlite" else "pg_app"))


@pytest.fixture
def storescp(tmp_path):
    """dcmtk storescp (uncompressed syntaxes, bit-preserving) on a free port: (port, dir)."""
    out = tmp_path / "storescp"
    out.mkdir()
    port = free_port()
    proc = subprocess.Popen(["storescp", "-aet", "DEST", "-od", str(out), "+B", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield port, out
    finally:
        proc.terminate()
        proc.wait(10)


class NodeProcess:
    """``flask --app wsgi pacs dicom-node`` in a subprocess, against files in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.db_url = f"sqlite:///{root / 'pacs.sqlite3'}"
        self.env = dict(os.environ, PACS_DATA_DIR=str(root), DATABASE_URL=self.db_url,
                        PACS_DICOM_PORT=str(self.port), PACS_DICOM_HOST="127.0.0.1",
                        STORAGE_URL=f"file://{root / 'archive'}")
        self.proc: subprocess.Popen | None = None
        self.app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": self.db_url,
                               "STORAGE_URL": f"file://{root / 'archive'}",
                               "PACS_DATA_DIR": str(root), "SECRET_KEY": "test-secret"})

    def start(self) -> None:
        with open(self.root / "node.log", "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [str(BIN / "flask"), "--app", "wsgi", "pacs", "dicom-node"],
                cwd=ROOT, env=self.env, stdout=log, stderr=log)
        wait_port(self.port)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


@pytest.fixture
def node_process(tmp_path):
    """A node subprocess (not yet started) on a fresh file database with tenant CRASH."""
    root = tmp_path / "node"
    root.mkdir()
    handle = NodeProcess(root)
    with handle.app.app_context():
        upgrade()
        tenants.register("CRASH", "CRASH 医院", "CRASH", approve=True)
        db.session.remove()
    try:
        yield handle
    finally:
        if handle.proc and handle.proc.poll() is None:
            handle.kill()
