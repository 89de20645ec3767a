"""Tenants are told apart by called AE title; one tenant's data never crosses to another."""
from __future__ import annotations

from pydicom.dataset import Dataset
from pynetdicom import evt
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    Verification,
)

from app.services import tenants
from app.services.audit import SYSTEM
from tests.dicom_node.conftest import movescu, run
from tests.factory import ct_dataset


def _study(patient_name: str) -> list:
    study, series = "1.2.826.0.1.3680043.8.498.7001", "1.2.826.0.1.3680043.8.498.7002"
    return [ct_dataset(study, series, f"1.2.826.0.1.3680043.8.498.700{i + 3}", number=i + 1,
                       patient_name=patient_name) for i in range(2)]


def _find(node, called: str) -> list[Dataset]:
    assoc = node.associate(called=called, contexts=[StudyRootQueryRetrieveInformationModelFind])
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID, query.PatientName = "STUDY", "", ""
    responses = assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
    found = [ds for status, ds in responses if status.Status in (0xFF00, 0xFF01)]
    assoc.release()
    return found


def _get(node, called: str, study: str) -> tuple[Dataset, list]:
    received = []

    def on_store(event):
        received.append(event.dataset)
        return 0x0000

    assoc = node.associate(called=called, contexts=[StudyRootQueryRetrieveInformationModelGet,
                                                    CTImageStorage],
                           roles=node.storage_roles([CTImageStorage]),
                           handlers=[(evt.EVT_C_STORE, on_store)])
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
    final = list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))[-1][0]
    assoc.release()
    return final, received


def test_another_tenant_cannot_find_move_or_get(dicom_node, storescp):
    port, out = storescp
    a_data = _study("Zhang^San=张^三")
    study = a_data[0].StudyInstanceUID
    dicom_node.store(a_data, called="HOSPA")
    tenants.add_peer(dicom_node.b.tenant, "DEST", "127.0.0.1", port, "", SYSTEM)

    assert _find(dicom_node, "HOSPB") == []
    proc = movescu(dicom_node.port, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={study}",
                    called="HOSPB")
    assert "Received Final Move Response (Success)" in proc.stderr
    assert not [p for p in out.rglob("*") if p.is_file()]
    final, received = _get(dicom_node, "HOSPB", study)
    assert final.Status == 0x0000 and final.NumberOfCompletedSuboperations == 0
    assert received == []

    # The same UIDs stored for B stay B's own: each tenant gets back its own copy.
    dicom_node.store(_study("Li^Si=李^四"), called="HOSPB")
    assert [str(ds.PatientName) for ds in _find(dicom_node, "HOSPB")] == ["Li^Si=李^四"]
    assert [str(ds.PatientName) for ds in _find(dicom_node, "HOSPA")] == ["Zhang^San=张^三"]
    _, received = _get(dicom_node, "HOSPA", study)
    assert {str(ds.PatientName) for ds in received} == {"Zhang^San=张^三"}


def test_move_destination_of_another_tenant_is_unknown(dicom_node, storescp):
    tenants.add_peer(dicom_node.a.tenant, "DEST", "127.0.0.1", storescp[0], "", SYSTEM)
    dicom_node.store(_study("Li^Si"), called="HOSPB")
    proc = movescu(dicom_node.port, "QueryRetrieveLevel=STUDY",
                    "StudyInstanceUID=1.2.826.0.1.3680043.8.498.7001", called="HOSPB")
    assert "Refused: MoveDestinationUnknown" in proc.stderr


def test_unknown_or_unapproved_called_ae_is_rejected(dicom_node):
    tenants.register("PENDING", "Pending 医院", "PENDING")  # not approved
    for called in ("NOSUCHAE", "PENDING"):
        proc = run("echoscu", "-aec", called, "127.0.0.1", str(dicom_node.port), check=False)
        assert proc.returncode != 0
        assert "Rejected Permanent" in proc.stderr and "Called AE Title Not Recognized" in \
            proc.stderr, proc.stderr
    assoc = dicom_node.associate(called="NOSUCHAE")
    assert assoc.is_rejected
    run("echoscu", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port))


def test_calling_ae_allow_list(dicom_node):
    tenant = dicom_node.a.tenant
    tenants.add_peer(tenant, "GOODSCU", "127.0.0.1", 104, "modality", SYSTEM)
    tenants.set_calling_ae_restriction(tenant, True, SYSTEM)

    proc = run("echoscu", "-aet", "BADSCU", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port),
               check=False)
    assert "Calling AE Title Not Recognized" in proc.stderr, proc.stderr
    run("echoscu", "-aet", "GOODSCU", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port))
    assoc = dicom_node.associate(called="HOSPB", calling="BADSCU", contexts=[Verification])
    assert assoc.is_established  # HOSPB keeps no allow-list
    assoc.release()
