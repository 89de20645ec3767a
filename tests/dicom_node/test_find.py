"""C-FIND with findscu and pynetdicom: levels, models, wildcards, ranges, cancel, bad input."""
from __future__ import annotations

import time
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import encode
from pynetdicom.sop_class import (
    CTImageStorage,
    MRImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
)

from app.services import audit
from tests.dicom_node.conftest import refresh, run
from tests.factory import ct_dataset

ZHANG, LI = "Zhang^San=张^三", "Li^Si=李^四"


@pytest.fixture
def archive(dicom_node):
    """Three studies: two of Zhang San (CT, one with two series), one of Li Si (MR)."""
    s1, s2, s3 = generate_uid(), generate_uid(), generate_uid()
    ser1a, ser1b = generate_uid(), generate_uid()
    datasets = [
        ct_dataset(s1, ser1a, number=1, StudyDate="20261101", AccessionNumber="ACC1"),
        ct_dataset(s1, ser1a, number=2, StudyDate="20261101", AccessionNumber="ACC1"),
        ct_dataset(s1, ser1b, number=1, StudyDate="20261101", AccessionNumber="ACC1",
                   SeriesNumber=2),
        ct_dataset(s2, patient_id="P002", patient_name=LI, StudyDate="20250315",
                   Modality="MR", SOPClassUID=MRImageStorage, AccessionNumber="ACC2"),
        ct_dataset(s3, StudyDate="20240101", AccessionNumber="ACC3"),
    ]
    for ds in datasets:
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    assoc = dicom_node.associate(contexts=[CTImageStorage, MRImageStorage])
    assert [assoc.send_c_store(ds).Status for ds in datasets] == [0] * 5
    assoc.release()
    return {"node": dicom_node, "studies": (s1, s2, s3), "series": (ser1a, ser1b),
            "datasets": datasets}


def findscu(port: int, out: Path, *keys: str, model: str = "-S", called: str = "HOSPA",
            extra: tuple[str, ...] = ()) -> tuple[list[Dataset], str]:
    """Run findscu, returning the extracted responses and dcmtk's log."""
    out.mkdir(exist_ok=True)
    for old in out.glob("rsp*.dcm"):
        old.unlink()
    args = [arg for key in keys for arg in ("-k", key)]
    proc = run("findscu", model, "-aec", called, "-X", "-od", str(out), "-v", *extra, *args,
               "127.0.0.1", str(port))
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))], proc.stderr


def _keys(ds: Dataset) -> set[str]:
    return {elem.keyword for elem in ds}


def test_study_level_wildcard_returns_exactly_the_requested_keys(archive, tmp_path):
    node = archive["node"]
    found, _ = findscu(node.port, tmp_path, "QueryRetrieveLevel=STUDY", "PatientName=zhang*",
                       "StudyInstanceUID", "StudyDate", "PatientID", "ModalitiesInStudy",
                       "NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries",
                       "AccessionNumber", "PatientBirthDate", "RetrieveAETitle")
    assert len(found) == 2
    expected = {"SpecificCharacterSet", "QueryRetrieveLevel", "PatientName", "StudyInstanceUID",
                "StudyDate", "PatientID", "ModalitiesInStudy", "NumberOfStudyRelatedInstances",
                "NumberOfStudyRelatedSeries", "AccessionNumber", "PatientBirthDate",
                "RetrieveAETitle"}
    assert all(_keys(ds) == expected for ds in found)
    by_uid = {ds.StudyInstanceUID: ds for ds in found}
    first = by_uid[archive["studies"][0]]
    assert first.SpecificCharacterSet == "ISO_IR 192"
    assert first.PatientName == ZHANG and first.PatientName.ideographic == "张^三"
    assert (first.StudyDate, first.AccessionNumber, first.ModalitiesInStudy) == \
        ("20261101", "ACC1", "CT")
    assert (first.NumberOfStudyRelatedInstances, first.NumberOfStudyRelatedSeries) == (3, 2)
    assert first.RetrieveAETitle == "HOSPA" and first.PatientBirthDate == "19650312"
    assert archive["studies"][2] in by_uid


def test_chinese_name_and_date_ranges(archive, tmp_path):
    port = archive["node"].port
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=STUDY",
                       "SpecificCharacterSet=ISO_IR 192", "PatientName=张*", "StudyInstanceUID")
    assert {ds.StudyInstanceUID for ds in found} == {archive["studies"][0], archive["studies"][2]}
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=STUDY", "StudyDate=20250101-20261231",
                       "StudyInstanceUID")
    assert {ds.StudyInstanceUID for ds in found} == set(archive["studies"][:2])
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=STUDY", "StudyDate=-20241231",
                       "StudyInstanceUID", "PatientName")
    assert [ds.StudyInstanceUID for ds in found] == [archive["studies"][2]]
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=STUDY", "ModalitiesInStudy=MR",
                       "PatientName")
    assert [str(ds.PatientName) for ds in found] == [LI]


def test_series_and_image_levels(archive, tmp_path):
    port = archive["node"].port
    study = archive["studies"][0]
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={study}",
                       "SeriesInstanceUID", "Modality", "SeriesNumber",
                       "NumberOfSeriesRelatedInstances")
    assert sorted((ds.SeriesNumber, ds.NumberOfSeriesRelatedInstances) for ds in found) == \
        [(1, 2), (2, 1)]
    assert all(ds.Modality == "CT" and ds.QueryRetrieveLevel == "SERIES" for ds in found)
    series = archive["series"][0]
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=IMAGE", f"StudyInstanceUID={study}",
                       f"SeriesInstanceUID={series}", "SOPInstanceUID", "SOPClassUID",
                       "InstanceNumber", "Rows")
    assert sorted(ds.InstanceNumber for ds in found) == [1, 2]
    assert all(ds.SOPClassUID == CTImageStorage and ds.Rows == 16 for ds in found)
    uids = [ds.SOPInstanceUID for ds in archive["datasets"][:2]]
    assert {ds.SOPInstanceUID for ds in found} == set(uids)
    # a list of UIDs matches any of them (PS3.4 §C.2.2.2.2)
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=IMAGE", f"SOPInstanceUID={uids[0]}\\"
                       f"{archive['datasets'][3].SOPInstanceUID}", "InstanceNumber")
    assert len(found) == 2


def test_patient_root_model(archive, tmp_path):
    port = archive["node"].port
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=PATIENT", "PatientID=P001",
                       "PatientName", "NumberOfPatientRelatedStudies", model="-P")
    assert len(found) == 1
    assert found[0].PatientName == ZHANG and found[0].NumberOfPatientRelatedStudies == 2
    found, _ = findscu(port, tmp_path, "QueryRetrieveLevel=STUDY", "PatientID=P002",
                       "StudyInstanceUID", model="-P")
    assert [ds.StudyInstanceUID for ds in found] == [archive["studies"][1]]


def _exchange(assoc, *requests) -> list:
    """Send DIMSE requests back to back and collect responses up to a final one.

    pynetdicom's own send_* methods pause the association reactor the same
    way while they wait for responses.
    """
    context_id = assoc.accepted_contexts[0].context_id
    assoc._reactor_checkpoint.clear()
    while not assoc._is_paused:
        time.sleep(0.001)
    for request in requests:
        assoc.dimse.send_msg(request, context_id)
    responses = []
    while not responses or responses[-1].Status in (0xFF00, 0xFF01):
        _, rsp = assoc.dimse.get_msg(block=True)
        responses.append(rsp)
    assoc._reactor_checkpoint.set()
    return responses


def _find_request(identifier: bytes | Dataset, message_id: int = 1) -> C_FIND:
    req = C_FIND()
    req.MessageID, req.Priority = message_id, 2
    req.AffectedSOPClassUID = StudyRootQueryRetrieveInformationModelFind
    if isinstance(identifier, Dataset):
        identifier = encode(identifier, False, True)
    req.Identifier = BytesIO(identifier)
    return req


def test_cancel_is_answered(dicom_node, tmp_path):
    """findscu cancels after the first response. pynetdicom's DUL writes queued
    responses before it reads, so a small result set may be complete before
    the C-CANCEL is read: either outcome is a valid PS3.4 §C.4.1 exchange.
    (C-GET cancellation, where sub-operations pace the responses, is tested
    deterministically in test_move_get.py.)"""
    study, series = generate_uid(), generate_uid()
    assoc = dicom_node.associate(contexts=[CTImageStorage])
    for number in range(1, 41):
        assert assoc.send_c_store(ct_dataset(study, series, number=number, size=8)).Status == 0
    assoc.release()
    found, log = findscu(dicom_node.port, tmp_path, "QueryRetrieveLevel=IMAGE",
                         f"SeriesInstanceUID={series}", "SOPInstanceUID", extra=("--cancel", "1"))
    if "Received Final Find Response (Cancel" in log:
        assert 1 <= len(found) < 40
    else:
        assert "Received Final Find Response (Success)" in log and len(found) == 40
    run("echoscu", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port))


def test_unsupported_keys_come_back_empty_with_pending_warning(archive):
    assoc = archive["node"].associate(contexts=[StudyRootQueryRetrieveInformationModelFind])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = archive["studies"][1]
    query.PatientComments = ""  # not kept by the index
    query.PatientName = ""
    responses = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    assoc.release()
    (status, identifier), (final, _) = responses
    assert status.Status == 0xFF01 and final.Status == 0x0000
    assert identifier.PatientComments in (None, "") and identifier.PatientName == LI


def _find_status(node, query: Dataset, model=StudyRootQueryRetrieveInformationModelFind):
    assoc = node.associate(contexts=[model])
    responses = list(assoc.send_c_find(query, model))
    assoc.release()
    return responses[-1][0]


def test_malformed_identifiers_get_failure_statuses(archive):
    node = archive["node"]
    missing = Dataset()
    missing.PatientName = "*"
    status = _find_status(node, missing)
    assert status.Status == 0xA900 and status.OffendingElement == 0x00080052
    wrong = Dataset()
    wrong.QueryRetrieveLevel = "FOO"
    assert _find_status(node, wrong).Status == 0xA900
    patient = Dataset()
    patient.QueryRetrieveLevel = "PATIENT"  # no patient level in the Study Root model
    assert _find_status(node, patient).Status == 0xA900
    bad_range = Dataset()
    bad_range.QueryRetrieveLevel, bad_range.StudyDate = "STUDY", "2026xx01-"
    assert _find_status(node, bad_range).Status == 0xC000


def test_undecodable_identifier_gets_unable_to_process(archive):
    node = archive["node"]
    assoc = node.associate(contexts=[StudyRootQueryRetrieveInformationModelFind])
    # QueryRetrieveLevel, then an undefined-length UN element that never ends.
    garbage = b"\x08\x00\x52\x00CS\x06\x00STUDY \x10\x00\x20\x00UN\x00\x00\xff\xff\xff\xff\x01\x02"
    (rsp,) = _exchange(assoc, _find_request(garbage, 7))
    assoc.release()
    assert rsp.Status == 0xC000
    assert _find_status(node, _study_query()).Status == 0x0000  # node carries on


def _study_query() -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", ""
    return query


def test_each_find_is_audited_without_names(archive, tmp_path):
    findscu(archive["node"].port, tmp_path, "QueryRetrieveLevel=STUDY", "PatientName=Zhang*",
            "StudyInstanceUID")
    refresh()
    events, _ = audit.browse(archive["node"].a.tenant, action="study.query")
    assert events, "no study.query event"
    event = events[0]
    assert (event.actor, event.actor_type, event.source) == ("FINDSCU", "dicom", "127.0.0.1")
    assert "2 matches" in event.detail and "PatientName" in event.detail
    assert "Zhang" not in event.detail and "张" not in event.detail
