"""C-MOVE into a dcmtk storescp, C-GET cancellation, and retrieve auditing."""
from __future__ import annotations

import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import JPEG2000Lossless, generate_uid
from pynetdicom import evt
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from app.services import audit, tenants
from app.services.audit import SYSTEM
from tests.dicom_node.conftest import dataset_part, free_port, movescu, refresh, wait_port
from tests.factory import ct_dataset, to_bytes


def _series(n: int, **kwargs) -> tuple[str, str, list]:
    study, series = generate_uid(), generate_uid()
    return study, series, [ct_dataset(study, series, number=i, size=32, **kwargs)
                           for i in range(1, n + 1)]


def test_movescu_sends_every_instance_to_storescp(dicom_node, storescp):
    port, out = storescp
    tenants.add_peer(dicom_node.a.tenant, "DEST", "127.0.0.1", port, "storescp", SYSTEM)
    study, series, datasets = _series(4)
    dicom_node.store(datasets)
    proc = movescu(dicom_node.port, "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study}",
                    f"SeriesInstanceUID={series}")
    assert "Received Final Move Response (Success)" in proc.stderr, proc.stderr
    received = {pydicom.dcmread(p).SOPInstanceUID: p for p in out.rglob("*") if p.is_file()}
    assert set(received) == {ds.SOPInstanceUID for ds in datasets}
    for ds in datasets:
        assert pydicom.dcmread(received[ds.SOPInstanceUID]).PatientName == "Zhang^San=张^三"

    refresh()
    events, _ = audit.browse(dicom_node.a.tenant, action="series.retrieve")
    assert events[0].detail == "C-MOVE to DEST: 4 matched, 4 completed, 0 warning, 0 failed, " \
                               "0 not attempted"
    assert events[0].object_uid == series and events[0].actor == "MOVESCU"


def test_move_in_the_patient_root_model(dicom_node, storescp):
    port, out = storescp
    tenants.add_peer(dicom_node.a.tenant, "DEST", "127.0.0.1", port, "storescp", SYSTEM)
    _, _, datasets = _series(2, patient_id="PMOVE")
    dicom_node.store(datasets)
    proc = movescu(dicom_node.port, "QueryRetrieveLevel=PATIENT", "PatientID=PMOVE", model="-P")
    assert "Received Final Move Response (Success)" in proc.stderr, proc.stderr
    assert len([p for p in out.rglob("*") if p.is_file()]) == 2


def test_unknown_move_destination_is_refused(dicom_node):
    study, _, datasets = _series(1)
    dicom_node.store(datasets)
    proc = movescu(dicom_node.port, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}",
                    destination="NOWHERE")
    assert "Refused: MoveDestinationUnknown" in proc.stderr, proc.stderr
    refresh()
    events, _ = audit.browse(dicom_node.a.tenant, action="study.retrieve")
    assert events[0].outcome == "failure" and "NOWHERE" in events[0].detail


def test_move_identifier_without_unique_key_is_refused(dicom_node, storescp):
    tenants.add_peer(dicom_node.a.tenant, "DEST", "127.0.0.1", storescp[0], "", SYSTEM)
    assoc = dicom_node.associate(contexts=[StudyRootQueryRetrieveInformationModelMove])
    query = Dataset()
    query.QueryRetrieveLevel = "SERIES"  # SeriesInstanceUID missing
    final = list(assoc.send_c_move(query, "DEST", StudyRootQueryRetrieveInformationModelMove))
    assoc.release()
    assert final[-1][0].Status == 0xA900


def test_compressed_instances_move_as_stored_or_decompressed(dicom_node, tmp_path):
    """A destination accepting JPEG 2000 gets the stored bytes; one that accepts
    only uncompressed syntaxes gets the decompressed pixels."""
    study, _, datasets = _series(2)
    for ds in datasets:
        ds.compress(JPEG2000Lossless, generate_instance_uid=False)
    dicom_node.store(datasets)
    expected = ct_dataset(size=32).pixel_array
    for name, accept in (("ALLTS", ["+xa"]), ("PLAIN", [])):
        out = tmp_path / name
        out.mkdir()
        port = free_port()
        scp = subprocess.Popen(["storescp", "-aet", name, "-od", str(out), *accept, str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            tenants.add_peer(dicom_node.a.tenant, name, "127.0.0.1", port, "", SYSTEM)
            proc = movescu(dicom_node.port, "QueryRetrieveLevel=STUDY",
                            f"StudyInstanceUID={study}", destination=name)
            assert "Received Final Move Response (Success)" in proc.stderr, proc.stderr
        finally:
            scp.terminate()
            scp.wait(10)
        files = sorted(p for p in out.rglob("*") if p.is_file())
        assert len(files) == 2
        for path in files:
            got = pydicom.dcmread(path)
            sent = next(ds for ds in datasets if ds.SOPInstanceUID == got.SOPInstanceUID)
            if accept:
                assert got.file_meta.TransferSyntaxUID == JPEG2000Lossless
                assert got.PixelData == sent.PixelData
            else:
                assert not got.file_meta.TransferSyntaxUID.is_compressed
                assert np.array_equal(got.pixel_array, expected)


def test_get_can_be_cancelled(dicom_node):
    study, _, datasets = _series(30)
    dicom_node.store(datasets)
    received = []

    def on_store(event):
        received.append(event.request.AffectedSOPInstanceUID)
        return 0x0000

    assoc = dicom_node.associate(
        contexts=[StudyRootQueryRetrieveInformationModelGet, CTImageStorage],
        roles=dicom_node.storage_roles([CTImageStorage]), handlers=[(evt.EVT_C_STORE, on_store)])
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
    context_id = next(cx.context_id for cx in assoc.accepted_contexts
                      if cx.abstract_syntax == StudyRootQueryRetrieveInformationModelGet)
    statuses = []
    for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet,
                                      msg_id=5):
        statuses.append(status)
        if len(statuses) == 1:
            assoc.send_c_cancel(5, context_id)
    assoc.release()
    final = statuses[-1]
    assert final.Status == 0xFE00  # PS3.4 Table C.4-3: sub-operations terminated by cancel
    assert final.NumberOfRemainingSuboperations > 0
    assert final.NumberOfCompletedSuboperations == len(received) < 30


@pytest.mark.parametrize("model", [StudyRootQueryRetrieveInformationModelMove,
                                   PatientRootQueryRetrieveInformationModelMove])
def test_pynetdicom_move_reports_sub_operations(dicom_node, storescp, model):
    port, out = storescp
    tenants.add_peer(dicom_node.a.tenant, "DEST", "127.0.0.1", port, "", SYSTEM)
    study, _, datasets = _series(3)
    dicom_node.store(datasets)
    assoc = dicom_node.associate(contexts=[model])
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
    responses = [status for status, _ in assoc.send_c_move(query, "DEST", model)]
    assoc.release()
    assert [r.Status for r in responses] == [0xFF00] * 3 + [0x0000]
    assert [r.NumberOfRemainingSuboperations for r in responses[:3]] == [2, 1, 0]
    assert responses[-1].NumberOfCompletedSuboperations == 3
    for path in (p for p in out.rglob("*") if p.is_file()):
        uid = pydicom.dcmread(path).SOPInstanceUID
        sent = next(ds for ds in datasets if ds.SOPInstanceUID == uid)
        assert dataset_part(path) == dataset_part(to_bytes(sent))
