"""QIDO-RS over the Flask test client, on SQLite and PostgreSQL (PS3.18 §10.6)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent
from app.services import ingest
from app.services.audit import Actor
from tests.dicomweb import api, bearer, web  # noqa: F401  (fixtures)
from tests.factory import ct_bytes

ACTOR = Actor("loader")
PATIENTS = [("P1", "Zhang^San=张^三", "20261101", "CT"), ("P2", "Li^Si=李^四", "20261015", "MR"),
            ("P3", "Zhao^Liu", "20250101", "CT")]


@pytest.fixture
def indexed(api, web):
    """Three studies of HOSPA (P1 with two series of 2 + 1 instances), one of HOSPB."""
    uids = {}
    for pid, name, date, modality in PATIENTS:
        r = ingest.ingest(api.a, ct_bytes(patient_id=pid, patient_name=name, StudyDate=date,
                                                 Modality=modality), ACTOR)
        uids[pid] = r
    p1 = uids["P1"]
    ingest.ingest(api.a, ct_bytes(study_uid=p1.study_uid, series_uid=p1.series_uid,
                                         patient_id="P1", number=2), ACTOR)
    ingest.ingest(api.a, ct_bytes(study_uid=p1.study_uid, patient_id="P1", Modality="PT",
                                         SeriesNumber=2), ACTOR)
    ingest.ingest(api.b, ct_bytes(patient_id="P9", patient_name="Zhang^Wei=张^伟"), ACTOR)
    return uids


def _get(web, api, url, token=None, **params):
    response = web.get(url, query_string=params, headers=bearer(token or api.token_a))
    return response


def _ids(response):
    assert response.status_code == 200, response.get_data()[:300]
    assert response.headers["Content-Type"] == "application/dicom+json"
    return sorted(r["00100020"]["Value"][0] for r in response.get_json())


MATCHING = [
    ({}, ["P1", "P2", "P3"]),
    ({"PatientName": "ZHANG*"}, ["P1"]),
    ({"PatientName": "张*"}, ["P1"]),
    ({"00100010": "zhao^liu"}, ["P3"]),
    ({"PatientID": "P2"}, ["P2"]),
    ({"00100020": "P?"}, ["P1", "P2", "P3"]),
    ({"StudyDate": "20260101-20261231"}, ["P1", "P2"]),
    ({"StudyDate": "-20251231"}, ["P3"]),
    ({"ModalitiesInStudy": "PT"}, ["P1"]),
    ({"ModalitiesInStudy": "MR"}, ["P2"]),
    ({"PatientName": "lisi", "fuzzymatching": "true"}, ["P2"]),
    ({"PatientName": "zhang san", "fuzzymatching": "true"}, ["P1"]),
]


def test_study_matching(web, api, indexed):
    for params, expected in MATCHING:
        assert _ids(_get(web, api, "/dicom-web/studies", **params)) == expected, params


def test_study_default_attributes_and_chinese_name(web, api, indexed):
    response = _get(web, api, "/dicom-web/studies", PatientID="P1")
    [study] = response.get_json()
    # PS3.18 Table 10.6.3-3 attributes the index keeps, in tag order.
    assert list(study) == ["00080005", "00080020", "00080030", "00080050", "00080056", "00080061",
                           "00080090", "00081190", "00100010", "00100020", "00100030", "00100040",
                           "0020000D", "00200010", "00201206", "00201208"]
    assert study["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Zhang^San",
                                                        "Ideographic": "张^三"}]}
    assert study["00080061"]["Value"] == ["CT", "PT"]
    assert study["00201206"]["Value"] == [2] and study["00201208"]["Value"] == [3]
    uid = indexed["P1"].study_uid
    assert study["00081190"]["Value"] == [f"http://localhost/dicom-web/studies/{uid}"]
    assert study["00080005"]["Value"] == ["ISO_IR 192"]


def test_includefield_by_keyword_tag_comma_list_and_all(web, api, indexed):
    one = _get(web, api, "/dicom-web/studies", PatientID="P1",
               includefield="StudyDescription,00080080").get_json()[0]
    assert one["00081030"]["Value"] == ["胸部CT"] and "00080080" in one
    everything = _get(web, api, "/dicom-web/studies", PatientID="P1",
                      includefield="all").get_json()[0]
    assert {"00081030", "00100021", "00080080"} <= set(everything)


def test_series_and_instance_levels(web, api, indexed):
    study = indexed["P1"].study_uid
    series = _get(web, api, f"/dicom-web/studies/{study}/series").get_json()
    assert [s["00080060"]["Value"][0] for s in series] == ["CT", "PT"]
    assert {"0020000E", "00200011", "00201209", "00081190", "0008103E"} <= set(series[0])
    assert "00100010" not in series[0]  # the study is fixed by the path
    ct = series[0]["0020000E"]["Value"][0]
    assert series[0]["00201209"]["Value"] == [2]
    instances = _get(web, api, f"/dicom-web/studies/{study}/series/{ct}/instances").get_json()
    assert [i["00200013"]["Value"][0] for i in instances] == [1, 2]
    assert {"00080016", "00080018", "00280010", "00280011", "00280008", "00081190",
            "00080056"} <= set(instances[0])
    url = instances[0]["00081190"]["Value"][0]
    assert url.endswith(f"/studies/{study}/series/{ct}/instances/"
                        f"{instances[0]['00080018']['Value'][0]}")
    assert len(_get(web, api, f"/dicom-web/studies/{study}/instances").get_json()) == 3
    assert len(_get(web, api, f"/dicom-web/series/{ct}/instances").get_json()) == 2


def test_all_series_and_all_instances_carry_study_attributes(web, api, indexed):
    series = _get(web, api, "/dicom-web/series", Modality="MR").get_json()
    assert len(series) == 1 and series[0]["00100020"]["Value"] == ["P2"]
    assert "00080061" in series[0] and "00201206" in series[0]
    instances = _get(web, api, "/dicom-web/instances", PatientID="P3").get_json()
    assert len(instances) == 1
    assert {"00100010", "00080060", "0020000E", "00080018"} <= set(instances[0])


def test_limit_offset_and_server_cap(web, api, indexed, app):
    everything = _get(web, api, "/dicom-web/studies").get_json()
    page = _get(web, api, "/dicom-web/studies", limit=1, offset=1).get_json()
    assert page == everything[1:2]
    assert _get(web, api, "/dicom-web/studies", offset=5).get_json() == []
    app.config["PACS_QIDO_MAX_RESULTS"] = 2
    capped = _get(web, api, "/dicom-web/studies")
    assert len(capped.get_json()) == 2 and capped.headers["Warning"].startswith("299")
    assert "Warning" not in _get(web, api, "/dicom-web/studies", limit=2).headers


def test_empty_result_is_200_empty_array(web, api, indexed):
    response = _get(web, api, "/dicom-web/studies", PatientID="NOBODY")
    assert response.status_code == 200 and response.get_json() == []


MALFORMED = [
    {"limit": "ten"}, {"limit": "-1"}, {"offset": "x"}, {"StudyDate": "2026xx01-20261231"},
    {"fuzzymatching": "maybe"}, {"includefield": "NotAnAttribute"}, {"NoSuchKeyword": "1"},
    {"NumberOfStudyRelatedInstances": "many"},
]


def test_malformed_parameters_are_400_json(web, api, indexed):
    for params in MALFORMED:
        response = _get(web, api, "/dicom-web/studies", **params)
        assert response.status_code == 400, params
        assert response.get_json()["error"]


def test_queries_are_audited_by_keys_not_values(web, api, indexed, app):
    _get(web, api, "/dicom-web/studies", PatientName="ZHANG*")
    event = db.session.execute(sa.select(AuditEvent).where(AuditEvent.action == "study.query")
                               .order_by(AuditEvent.id.desc())).scalars().first()
    assert event.tenant_id == api.a.id and "PatientName" in event.detail
    assert "ZHANG" not in event.detail and event.actor == api.doctor_a
