"""Import many files at once: folders, zip archives, browser uploads.

Each file goes through :func:`app.services.ingest.ingest` on its own, so a bad
file gets its own error and never stops or half-stores the others. Zip
archives are read defensively: entries with absolute paths or ``..`` are
refused, and so is anything that inflates beyond the configured limits.
"""
from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from app.extensions import db
from app.models import Tenant
from app.services.audit import Actor
from app.services.errors import DomainError, Invalid
from app.services.ingest import DUPLICATE, IngestResult, ingest

log = logging.getLogger(__name__)

MAX_ENTRY_BYTES = 1 << 30  # one DICOM file inside a zip
MAX_ZIP_TOTAL_BYTES = 8 << 30  # everything a zip may inflate to
MAX_RATIO = 200  # inflated / compressed; DICOM rarely exceeds ~20


@dataclass
class Item:
    name: str
    result: IngestResult | None = None
    error: str = ""


@dataclass
class ImportReport:
    items: list[Item] = field(default_factory=list)

    @property
    def stored(self) -> int:
        return sum(1 for i in self.items if i.result and i.result.status != DUPLICATE)

    @property
    def duplicates(self) -> int:
        return sum(1 for i in self.items if i.result and i.result.status == DUPLICATE)

    @property
    def failed(self) -> list[Item]:
        return [i for i in self.items if i.error]


def import_paths(tenant: Tenant, paths: list[Path], actor: Actor) -> ImportReport:
    """Import files, folders (recursively) and ``.zip`` files from the filesystem."""
    report = ImportReport()
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            with open(file, "rb") as stream:
                import_stream(tenant, str(file), stream, actor, report)
    return report


def import_stream(tenant: Tenant, name: str, stream: BinaryIO, actor: Actor,
                  report: ImportReport | None = None) -> ImportReport:
    """Import one uploaded file, which may be a zip archive."""
    report = report or ImportReport()
    head = stream.read(4)
    stream.seek(0)
    if head == b"PK\x03\x04":
        for entry_name, data, error in _zip_entries(stream):
            _one(tenant, f"{name}/{entry_name}", data, error, actor, report)
    else:
        _one(tenant, name, stream.read(), "", actor, report)
    return report


def _one(tenant: Tenant, name: str, data: bytes | None, error: str, actor: Actor,
         report: ImportReport) -> None:
    if error:
        report.items.append(Item(name, error=error))
        return
    try:
        report.items.append(Item(name, result=ingest(tenant, data or b"", actor)))
    except DomainError as exc:
        report.items.append(Item(name, error=exc.message))
    except Exception:  # one file's unexpected failure must not fail the others
        log.exception("import of one file failed (tenant %s)", tenant.id)
        db.session.rollback()
        report.items.append(Item(name, error="internal error while storing this file"))


def _zip_entries(stream: BinaryIO) -> Iterator[tuple[str, bytes | None, str]]:
    """Yield ``(name, bytes, error)`` for each file entry of a zip archive."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError) as exc:
        yield "", None, f"not a readable zip archive ({type(exc).__name__})"
        return
    total = 0
    for info in archive.infolist():
        if info.is_dir():
            continue
        name = info.filename
        if _unsafe_name(name):
            yield name, None, "unsafe path in zip entry (absolute or '..'); skipped"
            continue
        if info.file_size > MAX_ENTRY_BYTES or \
                info.file_size > MAX_RATIO * max(info.compress_size, 1) + (1 << 20):
            yield name, None, "zip entry inflates too much (zip bomb?); skipped"
            continue
        try:
            data = _read_bounded(archive, info, min(MAX_ENTRY_BYTES, MAX_ZIP_TOTAL_BYTES - total))
        except Invalid as exc:
            yield name, None, exc.message
            continue
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
            yield name, None, f"corrupt zip entry ({type(exc).__name__})"
            continue
        total += len(data)
        yield name, data, ""


def _unsafe_name(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or (len(name) > 1 and name[1] == ":")


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    # Never trust the declared size: stop reading past the limit.
    out = io.BytesIO()
    with archive.open(info) as entry:
        while chunk := entry.read(1 << 20):
            out.write(chunk)
            if out.tell() > limit:
                raise Invalid("zip entry inflates too much (zip bomb?); skipped")
    return out.getvalue()
