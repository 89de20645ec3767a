"""The DICOM File Format (PS3.10 §7) around a received C-STORE data set, cheaply.

``Event.encoded_dataset()`` builds and validates a whole File Meta dataset
through pydicom for every instance (~0.2 ms), and copies the received data
set twice. Within one presentation context the File Meta Information differs
only in the Media Storage SOP Instance UID (PS3.10 §7.1) and the group length
that covers it, so pydicom encodes the fixed elements once per (SOP class,
transfer syntax) and, per instance, just those two elements. The bytes are
the same as pynetdicom's (a test compares them).
"""
from __future__ import annotations

import threading
from io import BytesIO

from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import UID
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION
from pynetdicom.events import Event

_PREAMBLE = b"\x00" * 128 + b"DICM"
_GROUP_LENGTH, _INSTANCE_UID = 0x00020000, 0x00020003
_MAX_CACHED = 512  # (SOP class, transfer syntax) pairs; a node sees a few dozen


def _encode(*elements: DataElement) -> bytes:
    """File Meta elements, Explicit VR Little Endian (PS3.10 §7.1), by pydicom's writer."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    for elem in elements:
        write_data_element(fp, elem)
    return fp.getvalue()


def _fixed_parts(sop_class: str, transfer_syntax: str) -> tuple[bytes, bytes]:
    """The encoded elements before and after (0002,0003) Media Storage SOP Instance UID."""
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = PYNETDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = PYNETDICOM_IMPLEMENTATION_VERSION
    before = [meta[tag] for tag in sorted(meta.keys()) if tag < _INSTANCE_UID]
    after = [meta[tag] for tag in sorted(meta.keys()) if tag > _INSTANCE_UID]
    return _encode(*before), _encode(*after)


class FileMetaEncoder:
    """Part 10 bytes for received data sets; fixed parts cached per context."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str], tuple[bytes, bytes]] = {}
        self._lock = threading.Lock()

    def parts(self, sop_class: str, transfer_syntax: str) -> tuple[bytes, bytes]:
        key = (sop_class, transfer_syntax)
        parts = self._parts.get(key)
        if parts is None:
            parts = _fixed_parts(sop_class, transfer_syntax)
            with self._lock:
                if len(self._parts) >= _MAX_CACHED:
                    self._parts.clear()
                self._parts[key] = parts
        return parts

    def file(self, sop_class: str, sop_instance: str, transfer_syntax: str,
             dataset: bytes | memoryview) -> bytes:
        """Preamble, ``DICM``, File Meta Information and ``dataset``, as one bytes object."""
        before, after = self.parts(sop_class, transfer_syntax)
        instance = _encode(DataElement(_INSTANCE_UID, "UI", UID(sop_instance)))
        length = _encode(DataElement(_GROUP_LENGTH, "UL",
                                     len(before) + len(instance) + len(after)))
        return b"".join((_PREAMBLE, length, before, instance, after, dataset))

    def from_event(self, event: Event) -> bytes:
        """What ``event.encoded_dataset()`` returns, for an ``evt.EVT_C_STORE`` event."""
        request = event.request
        received: BytesIO = request.DataSet  # type: ignore[assignment]
        with received.getbuffer() as dataset:  # joined without an intermediate copy
            return self.file(str(request.AffectedSOPClassUID),
                             str(request.AffectedSOPInstanceUID),
                             str(event.context.transfer_syntax), dataset)
