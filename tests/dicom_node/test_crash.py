"""Crash safety: SIGKILL the node mid-run; every acknowledged instance is there after.

DESIGN rule 3: a C-STORE success is sent only after the file is fsynced and
the index transaction committed, so whatever the sender saw acknowledged
survives a crash, and nothing is half-indexed.
"""
from __future__ import annotations

import hashlib
import threading
import time

import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage

from app.services import query, retrieve, tenants
from app.services.query import Level
from dicom_node.sockets import on_conn_open
from tests.dicom_node.conftest import dataset_part, run
from tests.factory import ct_dataset, to_bytes

TOTAL, KILL_AFTER = 100, 40


def _send(port: int, datasets: list, acked: list) -> None:
    """C-STORE until the node goes away, recording what was acknowledged."""
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context(CTImageStorage)
    ae.dimse_timeout = ae.network_timeout = 10
    assoc = ae.associate("127.0.0.1", port, ae_title="CRASH",
                         evt_handlers=[(evt.EVT_CONN_OPEN, on_conn_open)])
    assert assoc.is_established
    for ds in datasets:
        try:
            status = assoc.send_c_store(ds)
        except Exception:
            break
        if "Status" not in status or status.Status != 0x0000:
            break
        acked.append(ds)
    if assoc.is_established:
        assoc.release()


@pytest.mark.slow
def test_acknowledged_instances_survive_sigkill(node_process):
    study, series = generate_uid(), generate_uid()
    datasets = [ct_dataset(study, series, number=i, size=64) for i in range(1, TOTAL + 1)]
    node_process.start()
    acked: list = []

    def kill_mid_run() -> None:
        while len(acked) < KILL_AFTER:
            time.sleep(0.001)
        node_process.kill()

    killer = threading.Thread(target=kill_mid_run)
    killer.start()
    _send(node_process.port, datasets, acked)
    killer.join(30)
    assert KILL_AFTER <= len(acked) < TOTAL, "the node was not killed mid-run"

    node_process.start()  # restart on the same files
    with node_process.app.app_context():
        tenant = tenants.by_code("CRASH")
        indexed = {m.instance.sop_uid: m.instance for m in query.search(tenant, Level.IMAGE, {})}
        for ds in acked:
            instance = indexed[ds.SOPInstanceUID]
            data = retrieve.read(instance)
            assert hashlib.sha256(data).hexdigest() == instance.sha256
            assert dataset_part(data) == dataset_part(to_bytes(ds))
        for instance in indexed.values():  # no row points at a missing or torn file
            assert hashlib.sha256(retrieve.read(instance)).hexdigest() == instance.sha256
        (study_match,) = query.search(tenant, Level.STUDY, {"StudyInstanceUID": study})
        assert study_match.value("NumberOfStudyRelatedInstances") == len(indexed)

    # Re-sending everything is harmless; then a clean SIGTERM shutdown.
    resent: list = []
    _send(node_process.port, datasets, resent)
    assert len(resent) == TOTAL
    run("echoscu", "-aec", "CRASH", "127.0.0.1", str(node_process.port))
    assert node_process.terminate() == 0
    with node_process.app.app_context():
        assert len(query.search(tenants.by_code("CRASH"), Level.IMAGE, {})) == TOTAL
