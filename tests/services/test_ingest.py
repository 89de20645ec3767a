"""Ingest: durable, idempotent, tenant-separated, and strict about bad input."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Instance, Series, Study
from app.services import ingest, tenancy
from app.services.audit import Actor
from app.services.errors import Conflict, Invalid
from tests.factory import ct_bytes, ct_dataset, to_bytes

ACTOR = Actor("tester", "user", "127.0.0.1")


def test_stored_bytes_are_the_original_and_indexed(two_tenants):
    a, _ = two_tenants
    data = ct_bytes()
    result = ingest.ingest(a.tenant, data, ACTOR)
    assert result.status == ingest.STORED
    inst = tenancy.get(a.tenant, Instance, sop_uid=result.sop_uid)
    assert ingest.archive().read(inst.storage_key) == data
    study = tenancy.get(a.tenant, Study, study_uid=result.study_uid)
    assert (study.num_series, study.num_instances, study.modalities) == (1, 1, "CT")
    assert study.patient.name == "Zhang^San=张^三"
    assert "zhangsan" in study.patient.name_search and "zs" in study.patient.name_search


def test_same_instance_twice_is_stored_once(two_tenants):
    a, _ = two_tenants
    data = ct_bytes()
    first = ingest.ingest(a.tenant, data, ACTOR)
    again = ingest.ingest(a.tenant, data, ACTOR)
    assert (first.status, again.status) == (ingest.STORED, ingest.DUPLICATE)
    study = tenancy.get(a.tenant, Study, study_uid=first.study_uid)
    assert study.num_instances == 1


def test_same_uids_in_two_tenants_do_not_collide(two_tenants):
    a, b = two_tenants
    data = ct_bytes()
    ra = ingest.ingest(a.tenant, data, ACTOR)
    rb = ingest.ingest(b.tenant, data, ACTOR)
    assert ra.status == rb.status == ingest.STORED
    ia = tenancy.get(a.tenant, Instance, sop_uid=ra.sop_uid)
    ib = tenancy.get(b.tenant, Instance, sop_uid=rb.sop_uid)
    assert ia.id != ib.id and ia.storage_key != ib.storage_key


def test_patient_mismatch_is_kept_and_flagged(two_tenants):
    a, _ = two_tenants
    first = ct_dataset(patient_id="P1", patient_name="Li^Si=李^四")
    other = ct_dataset(study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID,
                       patient_id="P2", patient_name="Wang^Wu=王^五", number=2)
    ingest.ingest(a.tenant, to_bytes(first), ACTOR)
    result = ingest.ingest(a.tenant, to_bytes(other), ACTOR)
    assert result.status == ingest.STORED and result.flagged
    study = tenancy.get(a.tenant, Study, study_uid=first.StudyInstanceUID)
    assert study.flagged and study.num_instances == 2
    assert study.patient.patient_id == "P1"  # not silently merged into the new identity
    inst = tenancy.get(a.tenant, Instance, sop_uid=other.SOPInstanceUID)
    assert "P2" in inst.patient_mismatch


@pytest.mark.parametrize("mangle, reason", [
    (lambda b: b"garbage" * 100, "not a DICOM"),
    (lambda b: b[: len(b) - 200], "truncated"),
    (lambda b: b[:400], "truncated"),
    (lambda b: b[:131], "not a DICOM"),
])
def test_bad_input_is_refused_and_nothing_is_stored(two_tenants, mangle, reason):
    a, _ = two_tenants
    with pytest.raises(Invalid) as info:
        ingest.ingest(a.tenant, mangle(ct_bytes()), ACTOR)
    assert reason in info.value.message
    assert db.session.execute(sa.select(sa.func.count(Instance.id))).scalar_one() == 0
    assert db.session.execute(sa.select(sa.func.count(Study.id))).scalar_one() == 0


def test_missing_uid_is_refused(two_tenants):
    a, _ = two_tenants
    ds = ct_dataset()
    del ds.SeriesInstanceUID
    with pytest.raises(Invalid, match="SeriesInstanceUID"):
        ingest.ingest(a.tenant, to_bytes(ds), ACTOR)


def test_series_uid_reused_under_another_study_is_a_conflict(two_tenants):
    a, _ = two_tenants
    first = ct_dataset()
    ingest.ingest(a.tenant, to_bytes(first), ACTOR)
    with pytest.raises(Conflict):
        ingest.ingest(a.tenant, ct_bytes(series_uid=first.SeriesInstanceUID), ACTOR)
    assert db.session.execute(sa.select(sa.func.count(Study.id))).scalar_one() == 1


def test_store_is_audited_without_patient_names(two_tenants):
    a, _ = two_tenants
    result = ingest.ingest(a.tenant, ct_bytes(), ACTOR)
    event = db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.action == "instance.store")).scalar_one()
    assert (event.tenant_id, event.object_uid, event.actor) == (a.tenant.id, result.sop_uid, "tester")
    assert "Zhang" not in event.detail and "张" not in event.detail


def test_concurrent_ingest_into_one_series_loses_nothing(app, two_tenants):
    a, _ = two_tenants
    first = ct_dataset()
    payloads = [to_bytes(ct_dataset(study_uid=first.StudyInstanceUID,
                                     series_uid=first.SeriesInstanceUID, number=i))
                for i in range(40)]
    errors: list[BaseException] = []

    def worker(chunk):
        with app.app_context():
            tenant = db.session.merge(a.tenant)
            try:
                for data in chunk:
                    ingest.ingest(tenant, data, ACTOR)
            except BaseException as exc:  # reported below
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(payloads[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    db.session.expire_all()
    series = tenancy.get(a.tenant, Series, series_uid=first.SeriesInstanceUID)
    assert series.num_instances == 40
    assert series.study.num_instances == 40 and series.study.num_series == 1
