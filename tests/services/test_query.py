"""C-FIND/QIDO matching rules over the index (PS3.4 §C.2.2.2)."""
from __future__ import annotations

import pytest

from app.services import ingest, query, retrieve
from app.services.audit import Actor
from app.services.errors import Invalid
from app.services.query import Level
from tests.factory import ct_bytes

ACTOR = Actor("tester")


@pytest.fixture
def indexed(two_tenants):
    a, b = two_tenants
    rows = [("P1", "Zhang^San=张^三", "20261101", "CT"), ("P2", "Li^Si=李^四", "20261015", "MR"),
            ("P3", "Zhao^Liu", "20250101", "CT")]
    uids = {}
    for pid, name, date, modality in rows:
        r = ingest.ingest(a.tenant, ct_bytes(patient_id=pid, patient_name=name, StudyDate=date,
                                             Modality=modality), ACTOR)
        uids[pid] = r
    ingest.ingest(b.tenant, ct_bytes(patient_id="P9", patient_name="Zhang^Wei=张^伟"), ACTOR)
    return a, b, uids


def _pids(matches):
    return sorted(m.patient.patient_id for m in matches)


@pytest.mark.parametrize("filters, expected", [
    ({}, ["P1", "P2", "P3"]),
    ({"PatientName": "ZHANG*"}, ["P1"]),
    ({"PatientName": "张*"}, ["P1"]),
    ({"PatientName": "zhao^liu"}, ["P3"]),
    ({"PatientName": "Z*"}, ["P1", "P3"]),
    ({"PatientID": "P?"}, ["P1", "P2", "P3"]),
    ({"StudyDate": "20261001-"}, ["P1", "P2"]),
    ({"StudyDate": "-20251231"}, ["P3"]),
    ({"StudyDate": "20261015"}, ["P2"]),
    ({"ModalitiesInStudy": "MR"}, ["P2"]),
    ({"ModalitiesInStudy": "MR\\CT"}, ["P1", "P2", "P3"]),
    ({"UnknownKeyword": "x"}, ["P1", "P2", "P3"]),
])
def test_study_level_matching(indexed, filters, expected):
    a, _, _ = indexed
    assert _pids(query.search(a.tenant, Level.STUDY, filters)) == expected


def test_uid_list_matching(indexed):
    a, _, uids = indexed
    wanted = f"{uids['P1'].study_uid}\\{uids['P3'].study_uid}"
    assert _pids(query.search(a.tenant, Level.STUDY, {"StudyInstanceUID": wanted})) == ["P1", "P3"]


def test_fuzzy_pinyin_name(indexed):
    a, _, _ = indexed
    assert _pids(query.search(a.tenant, Level.STUDY, {"PatientName": "lisi"}, fuzzy=True)) == ["P2"]


def test_other_tenant_rows_never_match(indexed):
    a, b, uids = indexed
    assert query.search(b.tenant, Level.STUDY, {"StudyInstanceUID": uids["P1"].study_uid}) == []
    assert retrieve.select(b.tenant, study_uid=uids["P1"].study_uid) == []
    assert _pids(query.search(b.tenant, Level.STUDY, {"PatientName": "ZHANG*"})) == ["P9"]


def test_image_level_and_values(indexed):
    a, _, uids = indexed
    matches = query.search(a.tenant, Level.IMAGE, {"SeriesInstanceUID": uids["P2"].series_uid})
    assert len(matches) == 1
    m = matches[0]
    assert m.value("SOPInstanceUID") == uids["P2"].sop_uid
    assert m.value("Modality") == "MR"
    assert m.value("PatientName") == "Li^Si=李^四"


@pytest.mark.parametrize("bad", ["2026-abc", "abc-"])
def test_malformed_range_is_invalid(indexed, bad):
    a, _, _ = indexed
    with pytest.raises(Invalid):
        query.search(a.tenant, Level.STUDY, {"StudyDate": bad})


def test_limit_and_offset(indexed):
    a, _, _ = indexed
    page1 = query.search(a.tenant, Level.STUDY, {}, limit=2)
    page2 = query.search(a.tenant, Level.STUDY, {}, limit=2, offset=2)
    assert len(page1) == 2 and len(page2) == 1
    assert {m.study.id for m in page1}.isdisjoint({m.study.id for m in page2})
