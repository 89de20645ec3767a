"""TCP options for every DIMSE connection the node has, accepted or opened.

A DIMSE exchange is a chain of small messages, each waiting for the last.
Two TCP defaults turn that into ~40 ms stalls per message:

* Nagle's algorithm on the sender holds back a small segment while earlier
  data is unacknowledged. We disable it on our side (``TCP_NODELAY``).
* Delayed ACKs on the receiver hold the acknowledgement the peer's Nagle is
  waiting for. Peers often leave Nagle on (dcmtk as packaged in Debian sets
  ``TCP_NODELAY`` only when the environment variable of that name says so),
  so on Linux we also acknowledge at once (``TCP_QUICKACK``). Quick-ACK mode
  is not sticky — the kernel may leave it after any segment — so it is
  re-armed after every read.
"""
from __future__ import annotations

import socket

from pynetdicom.events import Event

_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
DUL_POLL_SECONDS = 0.0002


class QuickAckSocket(socket.socket):
    """A TCP socket that re-arms ``TCP_QUICKACK`` after each read."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        if data:
            self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return data

    def recv_into(self, buffer, nbytes: int = 0, flags: int = 0) -> int:  # type: ignore[override]
        count = super().recv_into(buffer, nbytes, flags)
        if count:
            self.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        return count


def on_conn_open(event: Event) -> None:
    """``evt.EVT_CONN_OPEN``: tune the association's socket before any DIMSE traffic.

    pynetdicom fires this for accepted connections before the association
    starts, and for our own (C-MOVE) connections right after ``connect``.
    """
    # pynetdicom's transport loop sleeps between polls (1 ms by default); each
    # request and each response waits out part of a sleep. A shorter sleep
    # trades a little idle CPU per open association for lower DIMSE latency.
    event.assoc.dul._run_loop_delay = DUL_POLL_SECONDS
    transport = event.assoc.dul.socket
    sock = transport.socket
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if _QUICKACK is None or type(sock) is not socket.socket:  # e.g. TLS: leave it alone
        return
    timeout = sock.gettimeout()
    quick = QuickAckSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    quick.settimeout(timeout)
    quick.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
    transport.socket = quick
