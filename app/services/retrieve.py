"""Selecting and reading stored instances for C-MOVE, C-GET and WADO-RS."""
from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from app.models import Instance, Tenant
from app.services import query
from app.services.ingest import archive
from app.services.query import Level, Match


def select(tenant: Tenant, study_uid: str = "", series_uid: str = "",
           sop_uid: str = "") -> list[Match]:
    """The tenant's instances under the given UIDs (each may be a ``\\``-separated list).

    An empty result means nothing of this tenant matches — another tenant's
    UIDs select nothing.
    """
    filters = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid,
               "SOPInstanceUID": sop_uid}
    if not any(filters.values()):
        return []
    return query.search(tenant, Level.IMAGE, filters)


def read(instance: Instance) -> bytes:
    """The stored Part 10 bytes of ``instance``, exactly as received."""
    return archive().read(instance.storage_key)


def open_file(instance: Instance) -> BinaryIO:
    return archive().open(instance.storage_key)


def local_path(instance: Instance) -> Path | None:
    """A filesystem path of the stored object, when the backend has one."""
    return archive().path(instance.storage_key)
