"""STOW-RS: store instances (PS3.18 §10.5).

Each part of a ``multipart/related; type="application/dicom"`` request goes
through :func:`app.services.ingest.ingest`, which returns only once the
instance is durably stored and indexed, so the response below acknowledges
nothing that could still be lost. The response (PS3.18 §10.5.3, Table
10.5.3-1) lists stored instances in Referenced SOP Sequence (0008,1199) and
failures in Failed SOP Sequence (0008,1198) with a Failure Reason (0008,1197)
from PS3.4 §B.2.3 / PS3.18 Table 10.5.3-2.
"""
from __future__ import annotations

import errno
import io
import json
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pydicom
from flask import Response
from werkzeug.exceptions import UnsupportedMediaType

from app.dicomweb import dicom_json
from app.dicomweb.multipart import MultipartError, iter_parts, parse_media_type
from app.extensions import db
from app.models import Tenant
from app.services import audit, ingest
from app.services.audit import Actor
from app.services.errors import Conflict, Invalid

log = logging.getLogger(__name__)

# Failure Reason values (PS3.18 Table 10.5.3-2, PS3.4 Annex B.2.3).
PROCESSING_FAILURE = 0x0110
OUT_OF_RESOURCES = 0xA700
STUDY_MISMATCH = 0xA900  # the instance is not of the study named in the request URL
CANNOT_UNDERSTAND = 0xC000
_UIDS = ["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"]


@dataclass
class Outcome:
    """What happened to the parts of one STOW-RS request."""

    stored: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    studies: set[str] = field(default_factory=set)

    @property
    def status(self) -> int:
        """200 all stored, 202 some failed, 409 none stored (PS3.18 §10.5.3)."""
        if not self.failed:
            return 200
        return 202 if self.stored else 409


def _boundary(content_type: str) -> str:
    media = parse_media_type(content_type)
    if media.type != "multipart/related":
        raise UnsupportedMediaType('STOW-RS takes multipart/related; type="application/dicom"')
    part_type = media.params.get("type", "application/dicom").lower()
    if part_type != "application/dicom":
        raise UnsupportedMediaType(f"parts of type {part_type} are not supported; "
                                   "send application/dicom")
    boundary = media.params.get("boundary", "")
    if not boundary:
        raise Invalid("the multipart/related Content-Type has no boundary")
    return boundary


def _peek(data: bytes) -> dict[str, str]:
    """The instance's UIDs if its header can be read (for the response), else ``{}``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=_UIDS)
        return {k: str(ds.get(k, "")) for k in _UIDS}
    except Exception:
        return {}


def _reason(exc: Exception) -> int:
    if isinstance(exc, Invalid):
        return CANNOT_UNDERSTAND
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.ENOMEM):
        return OUT_OF_RESOURCES
    return PROCESSING_FAILURE


class _Store:
    """Stores the parts of one request and collects their outcome."""

    def __init__(self, tenant: Tenant, actor: Actor, base: str, study: str) -> None:
        self.tenant, self.actor, self.base, self.study = tenant, actor, base, study
        self.outcome = Outcome()

    def fail(self, uids: dict[str, str], reason: int, why: str) -> None:
        item: dict[str, Any] = {"FailureReason": reason}
        if uids.get("SOPClassUID"):
            item["ReferencedSOPClassUID"] = uids["SOPClassUID"]
        if uids.get("SOPInstanceUID"):
            item["ReferencedSOPInstanceUID"] = uids["SOPInstanceUID"]
        self.outcome.failed.append(dicom_json.dataset(item))
        audit.record(self.tenant, self.actor, "instance.store", "instance",
                     uids.get("SOPInstanceUID", ""), outcome="failure",
                     detail=f"STOW-RS 0x{reason:04X}: {why}"[:500], commit=True)

    def part(self, headers: dict[str, str], data: bytes) -> None:
        media = parse_media_type(headers.get("content-type", "application/dicom")).type
        uids = _peek(data)
        if media != "application/dicom":
            return self.fail(uids, CANNOT_UNDERSTAND, f"part of type {media}")
        if self.study and uids.get("StudyInstanceUID") and uids["StudyInstanceUID"] != self.study:
            return self.fail(uids, STUDY_MISMATCH, "Study Instance UID differs from the URL")
        try:
            result = ingest.ingest(self.tenant, data, self.actor)
        except (Invalid, Conflict) as exc:
            return self.fail(uids, _reason(exc), exc.message)
        except Exception as exc:  # storage or database trouble: this part fails, not the request
            db.session.rollback()
            log.exception("STOW-RS part %s failed", uids.get("SOPInstanceUID", "?"))
            return self.fail(uids, _reason(exc), type(exc).__name__)
        url = f"{self.base}/studies/{result.study_uid}/series/{result.series_uid}" \
              f"/instances/{result.sop_uid}"
        self.outcome.stored.append(dicom_json.dataset({
            "ReferencedSOPClassUID": result.sop_class_uid,
            "ReferencedSOPInstanceUID": result.sop_uid, "RetrieveURL": url}))
        self.outcome.studies.add(result.study_uid)


def store(tenant: Tenant, actor: Actor, content_type: str, stream: BinaryIO, base: str,
          study: str = "") -> Outcome:
    """Store every part of a STOW-RS request body read from ``stream``.

    Raises
    ------
    UnsupportedMediaType
        Not ``multipart/related`` of ``application/dicom`` (HTTP 415).
    Invalid
        No boundary, or a body from which not one part could be read (HTTP 400).
    """
    boundary = _boundary(content_type)
    job = _Store(tenant, actor, base, study)
    try:
        for headers, data in iter_parts(stream, boundary):
            job.part(headers, data)
    except MultipartError as exc:
        if not job.outcome.stored and not job.outcome.failed:
            raise
        job.fail({}, CANNOT_UNDERSTAND, exc.message)  # the parts before it stand
    if not job.outcome.stored and not job.outcome.failed:
        raise Invalid("the request contains no instances")
    return job.outcome


def response(outcome: Outcome, base: str) -> Response:
    """The PS3.18 Table 10.5.3-1 response as application/dicom+json."""
    body: dict[str, Any] = {}
    if len(outcome.studies) == 1:
        body["00081190"] = dicom_json.element("RetrieveURL",
                                              f"{base}/studies/{next(iter(outcome.studies))}")
    if outcome.failed:
        body["00081198"] = {"vr": "SQ", "Value": outcome.failed}
    if outcome.stored:
        body["00081199"] = {"vr": "SQ", "Value": outcome.stored}
    return Response(json.dumps(body, ensure_ascii=False), status=outcome.status,
                    content_type="application/dicom+json")
