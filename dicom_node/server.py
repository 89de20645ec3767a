"""Build the node's pynetdicom AE, bind the handlers to the app, start and stop it.

One AE serves every tenant: the called AE title picks the tenant
(:mod:`dicom_node.handlers`). ``serve`` runs in the foreground for
``flask pacs dicom-node``; ``start`` returns a running :class:`Node` (tests,
embedding).
"""
from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass

from flask import Flask
from pynetdicom import AE, _config
from pynetdicom.transport import ThreadedAssociationServer

from dicom_node import contexts, memory, reactor, stored
from dicom_node.handlers import Handlers

log = logging.getLogger(__name__)

#: Calling AE title of the node's own outgoing associations (C-MOVE sub-operations).
AE_TITLE = "CLOUDPACS"
#: Maximum PDU length we receive (PS3.8 §D.1). Big PDUs mean fewer PDUs, fewer
#: reads and fewer reactor loops per 0.5 MiB CT slice; bounded so one peer
#: cannot make us buffer an arbitrarily large PDU.
MAX_PDU = 1 << 20
#: Listen backlog: modalities burst many associations at once at shift start.
LISTEN_BACKLOG = 128
#: Seconds a stopping node waits for open associations to finish their work.
STOP_GRACE = 10.0


def configure_pynetdicom() -> None:
    """Process-wide pynetdicom settings the node relies on.

    Identifiers are not logged (they carry patient names), and the standard
    per-PDU logging handlers are not bound, which also saves work per message.
    The polling loops wake on work (:mod:`dicom_node.reactor`), and large
    buffers reuse heap pages (:mod:`dicom_node.memory`). Stored instances go
    out as stored bytes (:mod:`dicom_node.stored`).
    """
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False
    _config.LOG_HANDLER_LEVEL = "none"
    reactor.install()
    memory.tune_malloc()
    stored.install()
    pynetdicom_log = logging.getLogger("pynetdicom")
    if pynetdicom_log.level == logging.NOTSET:
        pynetdicom_log.setLevel(logging.WARNING)


def build_ae(app: Flask) -> AE:
    """The AE with the node's limits and timeouts; contexts are given at start."""
    configure_pynetdicom()
    ae = AE(ae_title=AE_TITLE)
    ae.maximum_associations = int(app.config.get("PACS_MAX_ASSOCIATIONS", 64))
    ae.maximum_pdu_size = MAX_PDU
    ae.acse_timeout = 30
    ae.dimse_timeout = 60
    ae.network_timeout = 120
    return ae


@dataclass
class Node:
    """A running node: its AE and listening server."""

    ae: AE
    server: ThreadedAssociationServer

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop listening, let established associations finish for ``grace`` s, abort the rest."""
        self.server.shutdown()  # stops accepting and closes the listening socket
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(
                assoc.is_established for assoc in self.server.active_associations):
            time.sleep(0.05)
        self.ae.shutdown()  # aborts whatever is still open


def start(app: Flask, port: int | None = None, host: str | None = None) -> Node:
    """Start the node in background threads and return it (``port=0``: any free port)."""
    ae = build_ae(app)
    address = (host if host is not None else app.config.get("PACS_DICOM_HOST", "0.0.0.0"),
               int(port if port is not None else app.config.get("PACS_DICOM_PORT", 11112)))
    if app.config.get("PACS_DICOM_REUSE_PORT"):
        server = _start_shared(ae, address, app)
    else:
        server = ae.start_server(address, block=False, evt_handlers=Handlers(app).bindings(),
                                 contexts=contexts.accepted())
    server.socket.listen(LISTEN_BACKLOG)  # socketserver's default backlog is 5
    node = Node(ae, server)
    log.info("DICOM node listening on %s:%d (max %d associations)", address[0], node.port,
             ae.maximum_associations)
    return node


class SharedPortServer(ThreadedAssociationServer):
    """A server whose port other node processes may bind too (``SO_REUSEPORT``).

    One Python process handles its associations on one core (the GIL); with
    several processes bound to the same port, the kernel spreads incoming
    associations across them, so parallel senders use every core.
    """

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def _start_shared(ae: AE, address: tuple[str, int], app: Flask) -> ThreadedAssociationServer:
    # AE.start_server with our server class (it takes none): make, run, register.
    server = ae.make_server(address, evt_handlers=Handlers(app).bindings(),
                            contexts=contexts.accepted(), server_class=SharedPortServer)
    threading.Thread(target=server.serve_forever, name="dicom-node-acceptor", daemon=True).start()
    ae._servers.append(server)  # so AE.shutdown stops it like its own servers
    return server


def serve(app: Flask) -> None:
    """Run the node in the foreground until SIGINT or SIGTERM, then stop cleanly."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        log.info("DICOM node stopping (signal %d)", signum)
        stopping.set()

    node = start(app)
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        node.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("DICOM node stopped")
