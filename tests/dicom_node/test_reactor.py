"""The node's pynetdicom loop changes: wake on work, whole-PDU reads."""
from __future__ import annotations

import queue
import socket
import threading
import time
import types

from pynetdicom import association, dul

from dicom_node import reactor


def test_pdu_read_returns_every_byte_sent_in_pieces():
    ours, theirs = socket.socketpair()
    payload = bytes(range(256)) * 2048  # 512 KiB, arriving in 7 KiB pieces

    def send() -> None:
        for i in range(0, len(payload), 7000):
            theirs.sendall(payload[i:i + 7000])

    sender = threading.Thread(target=send)
    sender.start()
    data = reactor.recv_pdu_bytes(types.SimpleNamespace(socket=ours), len(payload))
    sender.join()
    assert bytes(data) == payload
    ours.close(), theirs.close()


def test_pdu_read_stops_short_when_the_peer_closes():
    ours, theirs = socket.socketpair()
    theirs.sendall(b"abc")
    theirs.close()
    assert bytes(reactor.recv_pdu_bytes(types.SimpleNamespace(socket=ours), 10)) == b"abc"
    ours.close()


class _FakeReactorThread(threading.Thread):
    """A thread shaped like pynetdicom's Association: it has ``dimse.msg_queue``."""

    def __init__(self, sleep_for: float) -> None:
        super().__init__()
        self.dimse = types.SimpleNamespace(msg_queue=queue.Queue())
        self.sleep_for, self.slept = sleep_for, None

    def run(self) -> None:
        start = time.monotonic()
        association.time.sleep(self.sleep_for)
        self.slept = time.monotonic() - start


def test_association_reactor_wakes_when_a_message_is_queued():
    reactor.install()
    thread = _FakeReactorThread(sleep_for=30.0)
    thread.start()
    time.sleep(0.05)
    thread.dimse.msg_queue.put((1, "C-STORE-RQ"))
    thread.join(10)
    assert not thread.is_alive() and thread.slept < 10


def test_patched_sleeps_still_wait_when_there_is_no_work():
    reactor.install()
    thread = _FakeReactorThread(sleep_for=0.05)
    thread.start()
    thread.join(10)
    assert thread.slept >= 0.045
    start = time.monotonic()
    dul.time.sleep(0.05)  # not a DUL thread: a plain sleep
    assert time.monotonic() - start >= 0.045
