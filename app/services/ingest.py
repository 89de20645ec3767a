"""Ingest: the one path for C-STORE, STOW-RS, browser upload and CLI import.

Validate, store the original bytes unchanged, index in one transaction, and
return only when both are durable — callers acknowledge after this returns
(PS3.4 §B.2.3: success means the SCP has stored the instance). Re-sending an
instance is harmless: it is found by SOP Instance UID and not stored again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from pydicom.dataset import Dataset
from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import db
from app.models import Instance, Patient, Series, Study, Tenant
from app.models.base import utcnow
from app.services import audit, names, storage, tenancy
from app.services.audit import Actor
from app.services.dicom_attrs import integer, number, text
from app.services.dicom_parse import parse
from app.services.errors import Conflict

log = logging.getLogger(__name__)

STORED, DUPLICATE = "stored", "duplicate"
_RETRIES = 6


@dataclass(frozen=True)
class IngestResult:
    sop_class_uid: str
    sop_uid: str
    study_uid: str
    series_uid: str
    status: str  # stored | duplicate
    flagged: bool = False  # patient data disagree with the indexed study


def archive() -> storage.Storage:
    """The archive backend configured for this app (one per process)."""
    ext = current_app.extensions
    if "pacs_storage" not in ext:
        ext["pacs_storage"] = storage.from_url(current_app.config["STORAGE_URL"])
    return ext["pacs_storage"]


def ingest(tenant: Tenant, data: bytes, actor: Actor) -> IngestResult:
    """Store and index one Part 10 instance for ``tenant``.

    Raises
    ------
    Invalid
        The bytes are not a usable DICOM instance; nothing is stored.
    Conflict
        The Series Instance UID is already indexed under another study.
    """
    parsed = parse(data)
    ds = parsed.dataset
    sha = hashlib.sha256(data).hexdigest()
    existing = tenancy.find(tenant, Instance, sop_uid=str(ds.SOPInstanceUID))
    if existing is not None:
        return _duplicate(tenant, ds, existing, sha, actor)
    key = storage.content_key(tenant.id, sha)
    archive().put(key, data)  # durable before the index points at it
    for attempt in range(_RETRIES):
        try:
            result = _index(tenant, ds, parsed.transfer_syntax_uid, key, sha, len(data), actor)
            db.session.commit()
            return result
        except Conflict:
            db.session.rollback()
            raise
        except (IntegrityError, OperationalError) as exc:
            # A concurrent association created the same study/series, or SQLite
            # was busy: start the transaction again from a fresh snapshot.
            db.session.rollback()
            if attempt == _RETRIES - 1:
                raise
            log.info("ingest retry %d for %s: %s", attempt + 1, ds.SOPInstanceUID,
                     type(exc).__name__)
            time.sleep(0.01 * (attempt + 1))
            existing = tenancy.find(tenant, Instance, sop_uid=str(ds.SOPInstanceUID))
            if existing is not None:
                return _duplicate(tenant, ds, existing, sha, actor)
    raise AssertionError("unreachable")


def _duplicate(tenant: Tenant, ds: Dataset, existing: Instance, sha: str,
               actor: Actor) -> IngestResult:
    same = existing.sha256 == sha
    audit.record(tenant, actor, "instance.store", "instance", str(ds.SOPInstanceUID),
                 detail="duplicate" if same else "duplicate with different content; kept first",
                 commit=True)
    return IngestResult(str(ds.SOPClassUID), str(ds.SOPInstanceUID),
                        str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), DUPLICATE)


def _index(tenant: Tenant, ds: Dataset, ts: str, key: str, sha: str, size: int,
           actor: Actor) -> IngestResult:
    patient = _patient(tenant, ds)
    study, mismatch = _study(tenant, ds, patient)
    series = _series(tenant, ds, study)
    instance = Instance(
        tenant_id=tenant.id, series_pk=series.id, sop_uid=str(ds.SOPInstanceUID),
        sop_class_uid=str(ds.SOPClassUID), transfer_syntax_uid=ts,
        instance_number=integer(ds, "InstanceNumber"), rows=integer(ds, "Rows"),
        columns=integer(ds, "Columns"), number_of_frames=integer(ds, "NumberOfFrames") or 1,
        image_position=text(ds, "ImagePositionPatient", 100),
        image_orientation=text(ds, "ImageOrientationPatient", 160),
        pixel_spacing=text(ds, "PixelSpacing", 64), slice_location=number(ds, "SliceLocation"),
        storage_key=key, size_bytes=size, sha256=sha, source=f"{actor.kind}:{actor.name}"[:80],
        patient_mismatch=json.dumps(mismatch, ensure_ascii=False) if mismatch else None,
    )
    db.session.add(instance)
    db.session.flush()
    # Counters move by SQL expressions so concurrent associations never lose an update.
    db.session.execute(sa.update(Series).where(Series.id == series.id)
                       .values(num_instances=Series.num_instances + 1))
    db.session.execute(sa.update(Study).where(Study.id == study.id).values(
        num_instances=Study.num_instances + 1, size_bytes=Study.size_bytes + size,
        updated_at=utcnow(), **({"flagged": True} if mismatch else {})))
    audit.record(tenant, actor, "instance.store", "instance", instance.sop_uid,
                 detail="patient data disagree with study" if mismatch else "")
    return IngestResult(instance.sop_class_uid, instance.sop_uid, study.study_uid,
                        series.series_uid, STORED, bool(mismatch))


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


def _study(tenant: Tenant, ds: Dataset, patient: Patient) -> tuple[Study, dict]:
    study = tenancy.find(tenant, Study, study_uid=str(ds.StudyInstanceUID))
    if study is not None:
        return study, _mismatch(study.patient, ds)
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
    return study, _mismatch(patient, ds)


def _mismatch(patient: Patient, ds: Dataset) -> dict:
    """Patient attributes of ``ds`` that disagree with the indexed patient."""
    incoming = {"PatientID": text(ds, "PatientID", 64), "PatientName": text(ds, "PatientName", 324),
                "PatientBirthDate": text(ds, "PatientBirthDate", 8),
                "PatientSex": text(ds, "PatientSex", 16)}
    indexed = {"PatientID": patient.patient_id, "PatientName": patient.name,
               "PatientBirthDate": patient.birth_date, "PatientSex": patient.sex}
    return {k: incoming[k] for k in incoming
            if incoming[k] and indexed[k] and incoming[k] != indexed[k]}


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
