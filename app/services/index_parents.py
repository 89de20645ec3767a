"""Find or create the patient, study and series rows an incoming instance belongs to.

Resolved parents are remembered per process (keyed by tenant and UIDs), so
the 2nd…Nth instance of a series costs no lookups: a 300-slice CT resolves
its parents once. Entries are added only after the creating transaction
committed, and expire after a short time so changes made by other processes
(relinking a series, merging patients) are seen soon.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import sqlalchemy as sa
from pydicom.dataset import Dataset

from app.extensions import db
from app.models import Patient, Series, Study, Tenant
from app.services import names, tenancy
from app.services.dicom_attrs import integer, text
from app.services.errors import Conflict

_TTL_SECONDS = 30.0
_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class Parents:
    study_pk: int
    series_pk: int
    patient: dict  # indexed patient attributes, to detect disagreeing instances


class _Cache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple, tuple[float, Parents]] = OrderedDict()

    def get(self, key: tuple) -> Parents | None:
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            self._items.move_to_end(key)
            return item[1]

    def put(self, key: tuple, parents: Parents) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + _TTL_SECONDS, parents)
            self._items.move_to_end(key)
            while len(self._items) > _MAX_ENTRIES:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


CACHE = _Cache()


def cache_key(tenant: Tenant, ds: Dataset) -> tuple:
    return (db.engine.url.render_as_string(), tenant.id, str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID))


def resolve(tenant: Tenant, ds: Dataset) -> tuple[Parents, bool]:
    """Return the parents of ``ds`` and whether they came from the cache."""
    cached = CACHE.get(cache_key(tenant, ds))
    if cached is not None:
        return cached, True
    patient = _patient(tenant, ds)
    study = tenancy.find(tenant, Study, study_uid=str(ds.StudyInstanceUID))
    if study is not None:
        patient = study.patient  # an existing study keeps its patient
    else:
        study = _new_study(tenant, ds, patient)
    series = _series(tenant, ds, study)
    return Parents(study.id, series.id, patient_attributes(patient)), False


def patient_attributes(patient: Patient) -> dict:
    return {"PatientID": patient.patient_id, "PatientName": patient.name,
            "PatientBirthDate": patient.birth_date, "PatientSex": patient.sex}


def mismatch(parents: Parents, ds: Dataset) -> dict:
    """Patient attributes of ``ds`` that disagree with the study's indexed patient."""
    incoming = {"PatientID": text(ds, "PatientID", 64), "PatientName": text(ds, "PatientName", 324),
                "PatientBirthDate": text(ds, "PatientBirthDate", 8),
                "PatientSex": text(ds, "PatientSex", 16)}
    indexed = parents.patient
    return {k: v for k, v in incoming.items() if v and indexed[k] and v != indexed[k]}


def _patient(tenant: Tenant, ds: Dataset) -> Patient:
    pid = text(ds, "PatientID", 64)
    issuer = text(ds, "IssuerOfPatientID", 64)
    # With no Patient ID each study gets its own patient rather than merging strangers.
    patient_key = f"{pid}^{issuer}" if pid else f"~{ds.StudyInstanceUID}"
    patient = tenancy.find(tenant, Patient, patient_key=patient_key)
    if patient is None:
        name = text(ds, "PatientName", 324)
        patient = Patient(
            tenant_id=tenant.id, patient_key=patient_key, patient_id=pid, issuer=issuer,
            name=name, name_search=names.search_text(name), sex=text(ds, "PatientSex", 16),
            birth_date=text(ds, "PatientBirthDate", 8),
        )
        db.session.add(patient)
        db.session.flush()
    return patient


def _new_study(tenant: Tenant, ds: Dataset, patient: Patient) -> Study:
    study = Study(
        tenant_id=tenant.id, patient_pk=patient.id, study_uid=str(ds.StudyInstanceUID),
        study_date=text(ds, "StudyDate", 8), study_time=text(ds, "StudyTime", 16),
        accession_number=text(ds, "AccessionNumber", 16), study_id=text(ds, "StudyID", 16),
        description=text(ds, "StudyDescription", 200),
        referring_physician=text(ds, "ReferringPhysicianName", 324),
        institution=text(ds, "InstitutionName", 200),
    )
    db.session.add(study)
    db.session.flush()
    return study


def _series(tenant: Tenant, ds: Dataset, study: Study) -> Series:
    series = tenancy.find(tenant, Series, series_uid=str(ds.SeriesInstanceUID))
    if series is not None:
        if series.study_pk != study.id:
            raise Conflict("Series Instance UID already belongs to another study")
        return series
    series = Series(
        tenant_id=tenant.id, study_pk=study.id, series_uid=str(ds.SeriesInstanceUID),
        modality=text(ds, "Modality", 16), series_number=integer(ds, "SeriesNumber"),
        description=text(ds, "SeriesDescription", 200), body_part=text(ds, "BodyPartExamined", 64),
        series_date=text(ds, "SeriesDate", 8), series_time=text(ds, "SeriesTime", 16),
        frame_of_reference_uid=text(ds, "FrameOfReferenceUID", 64),
    )
    db.session.add(series)
    db.session.flush()
    modalities = sorted({m for (m,) in db.session.execute(
        sa.select(Series.modality).where(Series.study_pk == study.id)) if m})
    db.session.execute(sa.update(Study).where(Study.id == study.id).values(
        num_series=Study.num_series + 1, modalities="\\".join(modalities)[:64]))
    return series
