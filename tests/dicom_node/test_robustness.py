"""Many senders at once, and bad input of every kind: the node answers and keeps serving."""
from __future__ import annotations

import os
import socket
import threading
import time

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import evt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from app.services import audit, query
from app.services.query import Level
from tests.dicom_node.conftest import refresh, run
from tests.factory import ct_dataset


def _indexed(tenant, **filters) -> int:
    refresh()
    return len(query.search(tenant, Level.IMAGE, filters))


def test_sixteen_parallel_associations_store_at_once(any_node):
    """More associations than pynetdicom's default limit of 10 are open together."""
    senders, per_sender = 16, 6
    study = generate_uid()
    associations = [any_node.associate(contexts=[CTImageStorage], calling=f"SCU{i}")
                    for i in range(senders)]
    assert all(assoc.is_established for assoc in associations)
    statuses: list[list[int]] = [[] for _ in range(senders)]
    start = threading.Barrier(senders)

    def send(i: int) -> None:
        series = generate_uid()
        start.wait()
        for number in range(per_sender):
            ds = ct_dataset(study, series, number=number + 1, size=32)
            statuses[i].append(associations[i].send_c_store(ds).Status)
        associations[i].release()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [[0] * per_sender] * senders
    assert _indexed(any_node.a.tenant, StudyInstanceUID=study) == senders * per_sender


def test_instance_without_uids_is_refused_and_not_indexed(dicom_node):
    ds = ct_dataset()
    del ds.StudyInstanceUID
    assoc = dicom_node.associate(contexts=[CTImageStorage])
    status = assoc.send_c_store(ds)
    assert status.Status == 0xC210  # PS3.4 Table B.2-1 "Error: Cannot understand"
    assert "StudyInstanceUID" in status.ErrorComment
    assert assoc.send_c_store(ct_dataset()).Status == 0x0000  # the association carries on
    assoc.release()
    assert _indexed(dicom_node.a.tenant, SOPInstanceUID=ds.SOPInstanceUID) == 0


def test_series_under_another_study_is_a_processing_failure(dicom_node):
    series = generate_uid()
    assoc = dicom_node.associate(contexts=[CTImageStorage])
    assert assoc.send_c_store(ct_dataset(series_uid=series)).Status == 0
    clash = ct_dataset(series_uid=series)  # new study, same series
    status = assoc.send_c_store(clash)
    assoc.release()
    assert status.Status == 0x0110 and "another study" in status.ErrorComment
    assert _indexed(dicom_node.a.tenant, SOPInstanceUID=clash.SOPInstanceUID) == 0


@pytest.mark.parametrize("garbage", [
    b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n",
    os.urandom(4096),
    b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 64,  # A-ASSOCIATE-RQ claiming a 4 GiB body
    b"\x04\x00\x00\x00\x00\x10\x00\x00\x00\x01",  # P-DATA before any association
])
def test_garbage_on_the_port_does_not_stop_the_node(dicom_node, garbage):
    with socket.create_connection(("127.0.0.1", dicom_node.port), timeout=5) as sock:
        sock.sendall(garbage)
        sock.shutdown(socket.SHUT_WR)
        try:
            sock.recv(1024)  # an A-ABORT, or just the close
        except OSError:
            pass
    run("echoscu", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port))


def test_connection_dropped_mid_store_leaves_nothing_half_done(dicom_node, tmp_path):
    ds = ct_dataset(size=512)  # ~0.5 MiB: its P-DATA is cut in the middle
    assoc = dicom_node.associate(contexts=[CTImageStorage, Verification])
    sock_wrapper = assoc.dul.socket
    original_send = sock_wrapper.send

    def send_half_then_drop(data: bytes) -> None:
        if data[:1] == b"\x04" and len(data) > 100_000:  # the data set's P-DATA-TF PDU
            sock_wrapper.socket.sendall(data[: len(data) // 2])
            sock_wrapper.socket.shutdown(socket.SHUT_RDWR)
            return
        original_send(data)

    sock_wrapper.send = send_half_then_drop
    try:
        assoc.send_c_store(ds)
    except Exception:
        pass
    assoc.abort()

    run("echoscu", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port))
    assert _indexed(dicom_node.a.tenant, SOPInstanceUID=ds.SOPInstanceUID) == 0
    assert not any(p.is_file() for p in (tmp_path / "archive").rglob("*"))  # no temp files
    # the same instance sent properly afterwards is stored
    dicom_node.store([ds])
    assert _indexed(dicom_node.a.tenant, SOPInstanceUID=ds.SOPInstanceUID) == 1


def test_abort_during_get_leaves_the_node_serving(dicom_node):
    study, series = generate_uid(), generate_uid()
    dicom_node.store([ct_dataset(study, series, number=i) for i in range(1, 6)])
    calls = []

    def on_store(event):
        calls.append(1)
        if len(calls) == 2:  # the viewer crashes while receiving
            event.assoc.dul.socket.socket.shutdown(socket.SHUT_RDWR)
        return 0x0000

    assoc = dicom_node.associate(
        contexts=[StudyRootQueryRetrieveInformationModelGet, CTImageStorage],
        roles=dicom_node.storage_roles([CTImageStorage]), handlers=[(evt.EVT_C_STORE, on_store)])
    query_ds = Dataset()
    query_ds.QueryRetrieveLevel, query_ds.StudyInstanceUID = "STUDY", study
    list(assoc.send_c_get(query_ds, StudyRootQueryRetrieveInformationModelGet))
    assoc.abort()
    run("echoscu", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port))
    # the abandoned retrieve is still audited, with what was (not) done
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        refresh()
        events, _ = audit.browse(dicom_node.a.tenant, action="study.retrieve")
        if events:
            break
        time.sleep(0.1)
    assert events and events[0].detail.startswith("C-GET: 5 matched")
