"""Wake pynetdicom's polling loops when there is work, instead of on a timer.

pynetdicom runs two polling threads per association: the DUL thread sleeps
between checks of its socket and its outgoing queue, and the association
reactor sleeps 1 ms between checks for a complete DIMSE message. A C-STORE
therefore waits out several sleeps — measured at ~1.7 ms each on a loaded
2-core machine — between the last byte of a request and its handler, and
between the handler's answer and the response leaving. It also reads each
PDU in 4 KiB slices (130 ``recv`` calls for a 0.5 MiB CT slice).

:func:`install` changes three things, none of them pynetdicom's behaviour:

* the association reactor's sleep returns as soon as a DIMSE message is
  queued for it (it waits on the message queue's condition);
* the DUL thread's sleep returns as soon as its socket is readable (it
  waits in ``select``);
* a PDU is read with as few ``recv_into`` calls as the kernel allows.

Every patched sleep still returns within the time asked for, so every loop
that polls with it keeps its meaning. The patches are process-wide and
idempotent; they apply to the node's own outgoing associations too.
"""
from __future__ import annotations

import select
import threading
import time
import types

from pynetdicom import association, dul
from pynetdicom.transport import AssociationSocket

_installed = False
_lock = threading.Lock()


def _reactor_sleep(seconds: float) -> None:
    """``time.sleep`` for ``pynetdicom.association``: wake on a queued DIMSE message."""
    dimse = getattr(threading.current_thread(), "dimse", None)
    queue = getattr(dimse, "msg_queue", None)
    if queue is None:
        time.sleep(seconds)
        return
    with queue.not_empty:
        if not queue._qsize():
            queue.not_empty.wait(seconds)


def _dul_sleep(seconds: float) -> None:
    """``time.sleep`` for ``pynetdicom.dul``: wake when the socket has data."""
    transport = getattr(threading.current_thread(), "socket", None)
    sock = getattr(transport, "socket", None)
    if not isinstance(transport, AssociationSocket) or sock is None or sock.fileno() < 0:
        time.sleep(seconds)
        return
    try:
        select.select([sock], [], [], seconds)
    except (OSError, ValueError):  # closed under us: the DUL loop notices next round
        time.sleep(seconds)


def _clock(sleep) -> types.SimpleNamespace:
    """A stand-in for the ``time`` module whose ``sleep`` is `sleep`."""
    names = {name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
    return types.SimpleNamespace(**{**names, "sleep": sleep})


def recv_pdu_bytes(self: AssociationSocket, nr_bytes: int) -> bytearray:
    """Read `nr_bytes` (fewer only if the peer closes), in as few reads as possible."""
    buffer = bytearray(nr_bytes)
    view = memoryview(buffer)
    read = 0
    sock = self.socket
    while read < nr_bytes:
        got = sock.recv_into(view[read:], nr_bytes - read)
        if not got:
            del view
            return buffer[:read]  # connection closed: the DUL reports the short PDU
        read += got
    return buffer


def install() -> None:
    """Apply the three changes (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        association.time = _clock(_reactor_sleep)  # type: ignore[attr-defined]
        dul.time = _clock(_dul_sleep)  # type: ignore[attr-defined]
        AssociationSocket.recv = recv_pdu_bytes  # type: ignore[method-assign]
        _installed = True
