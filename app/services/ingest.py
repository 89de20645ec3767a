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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from pydicom.dataset import Dataset
from sqlalchemy.exc import IntegrityError, OperationalError

from app.extensions import db
from app.models import AuditEvent, Instance, Series, Study, Tenant
from app.models.base import utcnow
from app.services import audit, index_parents, storage
from app.services.audit import Actor
from app.services.dicom_attrs import integer, number, text
from app.services.dicom_parse import parse
from app.services.errors import Conflict

log = logging.getLogger(__name__)

STORED, DUPLICATE = "stored", "duplicate"


class StaleParents(Exception):
    """A cached parent row no longer matches; the transaction is retried uncached."""
_RETRIES = 6
_WRITERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="archive-write")


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
    # hashlib releases the GIL on large buffers: the digest is computed on another
    # core while this thread parses.
    hashed = _WRITERS.submit(_sha256, data)
    parsed = parse(data)
    ds = parsed.dataset
    sha = hashed.result()
    existing = _stored_digest(tenant, str(ds.SOPInstanceUID))
    if existing is not None:
        return _duplicate(tenant, ds, existing == sha, actor)
    key = storage.content_key(tenant.id, sha)
    # The file is written and fsynced on another thread while this one resolves
    # the parents (reads only). The index rows are written after the file is
    # durable, so the index never points at a file that is not, and the
    # database's write lock (SQLite: one writer for every process) is held
    # for the statements and the commit only, never across the file's fsyncs.
    written = _WRITERS.submit(archive().put, key, data)
    for attempt in range(_RETRIES):
        try:
            parents, cached = index_parents.resolve(tenant, ds)
            written.result()
            result = _index(tenant, ds, parents, parsed.transfer_syntax_uid, key, sha,
                            len(data), actor)
            db.session.commit()
            if not cached:
                index_parents.CACHE.put(index_parents.cache_key(tenant, ds), parents)
            return result
        except Conflict:
            db.session.rollback()
            written.result()  # finish (or surface) the write before reporting
            raise
        except (IntegrityError, OperationalError, StaleParents) as exc:
            # A concurrent association created the same study/series, or SQLite
            # was busy, or a cached parent went away: start again from a fresh snapshot.
            db.session.rollback()
            index_parents.CACHE.clear()
            if attempt == _RETRIES - 1:
                raise
            log.info("ingest retry %d for %s: %s", attempt + 1, ds.SOPInstanceUID,
                     type(exc).__name__)
            time.sleep(0.01 * (attempt + 1))
            existing = _stored_digest(tenant, str(ds.SOPInstanceUID))
            if existing is not None:
                return _duplicate(tenant, ds, existing == sha, actor)
    raise AssertionError("unreachable")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _stored_digest(tenant: Tenant, sop_uid: str) -> str | None:
    return db.session.connection().execute(
        _STORED_DIGEST, dict(tenant=tenant.id, uid=sop_uid)).scalar_one_or_none()


def _duplicate(tenant: Tenant, ds: Dataset, same: bool, actor: Actor) -> IngestResult:
    audit.record(tenant, actor, "instance.store", "instance", str(ds.SOPInstanceUID),
                 detail="duplicate" if same else "duplicate with different content; kept first",
                 commit=True)
    return IngestResult(str(ds.SOPClassUID), str(ds.SOPInstanceUID),
                        str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), DUPLICATE)


# Statements built once: constructing SQLAlchemy statements per instance costs
# more CPU than executing them. Each is tenant-scoped through its parameters.
_STORED_DIGEST = sa.select(Instance.sha256).where(
    Instance.tenant_id == sa.bindparam("tenant"), Instance.sop_uid == sa.bindparam("uid"))
_INSERT_INSTANCE = sa.insert(Instance)
_INSERT_AUDIT = sa.insert(AuditEvent)
_BUMP_SERIES = sa.update(Series).where(
    Series.id == sa.bindparam("pk"), Series.tenant_id == sa.bindparam("tenant"),
    Series.series_uid == sa.bindparam("uid"),
).values(num_instances=Series.num_instances + 1)
_BUMP_STUDY = sa.update(Study).where(
    Study.id == sa.bindparam("pk"), Study.tenant_id == sa.bindparam("tenant"),
    Study.study_uid == sa.bindparam("uid"),
).values(num_instances=Study.num_instances + 1, size_bytes=Study.size_bytes + sa.bindparam("size"),
         updated_at=sa.bindparam("now"), flagged=sa.or_(Study.flagged, sa.bindparam("flag")))


def _index(tenant: Tenant, ds: Dataset, parents: index_parents.Parents, ts: str, key: str,
           sha: str, size: int, actor: Actor) -> IngestResult:
    mismatch = index_parents.mismatch(parents, ds)
    sop_uid = str(ds.SOPInstanceUID)
    now = utcnow()
    conn = db.session.connection()
    conn.execute(_INSERT_INSTANCE, dict(
        tenant_id=tenant.id, series_pk=parents.series_pk, sop_uid=sop_uid,
        sop_class_uid=str(ds.SOPClassUID), transfer_syntax_uid=ts,
        instance_number=integer(ds, "InstanceNumber"), rows=integer(ds, "Rows"),
        columns=integer(ds, "Columns"), number_of_frames=integer(ds, "NumberOfFrames") or 1,
        image_position=text(ds, "ImagePositionPatient", 100),
        image_orientation=text(ds, "ImageOrientationPatient", 160),
        pixel_spacing=text(ds, "PixelSpacing", 64), slice_location=number(ds, "SliceLocation"),
        storage_key=key, size_bytes=size, sha256=sha, source=f"{actor.kind}:{actor.name}"[:80],
        received_at=now,
        patient_mismatch=json.dumps(mismatch, ensure_ascii=False) if mismatch else None,
    ))
    # Counters move by SQL expressions so concurrent associations never lose an update;
    # matching the UIDs too proves cached parent keys still name these rows.
    series_rows = conn.execute(_BUMP_SERIES, dict(
        pk=parents.series_pk, tenant=tenant.id, uid=str(ds.SeriesInstanceUID))).rowcount
    study_rows = conn.execute(_BUMP_STUDY, dict(
        pk=parents.study_pk, tenant=tenant.id, uid=str(ds.StudyInstanceUID), size=size, now=now,
        flag=bool(mismatch))).rowcount
    if series_rows != 1 or study_rows != 1:
        raise StaleParents("cached study/series rows changed")
    conn.execute(_INSERT_AUDIT, dict(
        tenant_id=tenant.id, at=now, actor=actor.name[:80], actor_type=actor.kind,
        source=actor.source[:80], action="instance.store", object_type="instance",
        object_uid=sop_uid, outcome="success",
        detail="patient data disagree with study" if mismatch else ""))
    return IngestResult(str(ds.SOPClassUID), sop_uid, str(ds.StudyInstanceUID),
                        str(ds.SeriesInstanceUID), STORED, bool(mismatch))
