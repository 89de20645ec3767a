"""Sending stored instances back out: C-MOVE and C-GET sub-operations.

Instances go out as stored whenever the peer accepted the stored transfer
syntax. Otherwise they are converted to a little-endian syntax the peer
accepted — PS3.5 §10.1 makes Implicit VR Little Endian the one every AE
reads. Re-encoding is not a new instance, so the SOP Instance UID the
requestor asked for is kept.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.events import Event

from app.services import query, retrieve
from app.services.query import Level, Match
from dicom_node.identifiers import RetrieveRequest
from dicom_node.stored import StoredInstance

if TYPE_CHECKING:
    from app.models import Instance, Tenant

log = logging.getLogger(__name__)
_LITTLE_ENDIAN = {ExplicitVRLittleEndian, ImplicitVRLittleEndian}


@dataclass(frozen=True)
class Outgoing:
    """One instance to send, read from ``path`` when the archive has local files."""

    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    path: Path | None
    instance: Instance


def select(tenant: Tenant, request: RetrieveRequest) -> list[Match]:
    """The tenant's instances named by a C-MOVE/C-GET identifier (PS3.4 §C.4.2, §C.4.3)."""
    if request.level is Level.PATIENT:
        return query.search(tenant, Level.IMAGE, {"PatientID": request.uids["PatientID"]})
    return retrieve.select(tenant, request.uids.get("StudyInstanceUID", ""),
                           request.uids.get("SeriesInstanceUID", ""),
                           request.uids.get("SOPInstanceUID", ""))


def plan(matches: Iterable[Match]) -> list[Outgoing]:
    """Snapshot what to send while the app context is open: plain values, and the
    (then detached) row for archives without local files."""
    return [Outgoing(m.instance.sop_uid, m.instance.sop_class_uid, m.instance.transfer_syntax_uid,
                     retrieve.local_path(m.instance), m.instance) for m in matches]


def accepted_syntaxes(accepted_contexts: Iterable) -> dict[str, set[str]]:
    """Transfer syntaxes per SOP class on which we may send C-STORE requests."""
    syntaxes: dict[str, set[str]] = {}
    for cx in accepted_contexts:
        if cx.as_scu:
            syntaxes.setdefault(str(cx.abstract_syntax), set()).add(str(cx.transfer_syntax[0]))
    return syntaxes


def load(item: Outgoing, accepted: set[str], read: Callable[[Outgoing], bytes]) -> Dataset:
    """The instance as a dataset the peer can take on one of its ``accepted`` syntaxes.

    Unconvertible instances are returned as stored: pynetdicom then finds no
    context, and the sub-operation is counted failed (PS3.4 §C.4.2, §C.4.3).
    """
    data = item.path.read_bytes() if item.path is not None else read(item)
    stored = UID(item.transfer_syntax_uid)
    if stored in accepted or not (accepted & _LITTLE_ENDIAN) \
            or (not stored.is_compressed and stored.is_little_endian):
        # Sent as stored on a context with the stored syntax; pynetdicom re-encodes
        # explicit/implicit/deflated little endian itself (dicom_node.stored).
        return StoredInstance(data, item.sop_class_uid, item.sop_uid)
    ds = dcmread(DicomBytesIO(data))
    try:
        if stored.is_compressed:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds.decompress(generate_instance_uid=False)
        else:
            _big_to_little_endian(ds)
    except Exception as exc:  # no decoder for this syntax (e.g. video): fail this one
        log.warning("cannot convert %s from %s: %s", item.sop_uid, stored, type(exc).__name__)
    return ds


def placeholder(item: Outgoing) -> Dataset:
    """A dataset that fails to send, so an unreadable instance counts as a failed
    sub-operation and is listed in Failed SOP Instance UID List (PS3.4 §C.4.2)."""
    ds = Dataset()
    ds.SOPInstanceUID = item.sop_uid
    return ds


def _big_to_little_endian(ds: Dataset) -> None:
    """Re-encode a retired Explicit VR Big Endian dataset as Explicit VR Little Endian."""
    for _ in ds.iterall():  # decode every raw element with the big-endian rules
        pass
    if "PixelData" in ds and int(ds.get("BitsAllocated", 8)) in (16, 32):
        width = int(ds.BitsAllocated) // 8
        pixels = np.frombuffer(ds.PixelData, dtype=f">u{width}")
        ds.PixelData = pixels.astype(f"<u{width}").tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.set_original_encoding(False, True, ds.original_character_set)


class SubOperations:
    """The C-STORE sub-operations of one C-MOVE/C-GET: what the peer accepts, and
    the outcome counts read from the C-STORE-RSPs it returns."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.accepted: dict[str, set[str]] = {}  # SOP class -> transfer syntaxes
        self.attempted = 0  # handed to pynetdicom for sending
        self.cancelled = False
        self.completed = 0
        self.warning = 0

    @property
    def failed(self) -> int:
        """Attempts that neither completed nor warned (refused, or no context to send on)."""
        return self.attempted - self.completed - self.warning

    @property
    def remaining(self) -> int:
        return self.total - self.attempted

    def on_established(self, event: Event) -> None:
        """``evt.EVT_ESTABLISHED`` of the C-MOVE sub-association: note what it accepted."""
        self.accepted = accepted_syntaxes(event.assoc.accepted_contexts)

    def on_dimse_recv(self, event: Event) -> None:
        """``evt.EVT_DIMSE_RECV`` handler: PS3.4 Table B.2-1 status classes."""
        message = event.message
        if not isinstance(message, C_STORE_RSP):
            return
        status = int(message.command_set.Status)
        if status == 0x0000:
            self.completed += 1
        elif status == 0x0001 or 0xB000 <= status <= 0xBFFF:
            self.warning += 1

    def summary(self) -> str:
        return (f"{self.total} matched, {self.completed} completed, {self.warning} warning, "
                f"{self.failed} failed, {self.remaining} not attempted"
                + (" (cancelled)" if self.cancelled else ""))
