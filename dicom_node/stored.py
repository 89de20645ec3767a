"""Send a stored instance's own bytes in a C-STORE sub-operation, not a re-encoding.

C-MOVE and C-GET handlers must yield a pydicom ``Dataset`` (PS3.4 §C.4.2,
§C.4.3 sub-operations; pynetdicom checks the type), which pynetdicom then
encodes for the chosen presentation context. For an instance sent on a
context with its stored transfer syntax, decoding the file into a Dataset
and encoding it back costs ~1–2 ms of CPU per CT slice and yields the same
bytes. :class:`StoredInstance` is a Dataset that carries the stored encoded
data set; :func:`install` wraps the ``encode`` that
``Association.send_c_store`` calls so that such a dataset is returned as
stored when the context's encoding is the stored one. On any other context
it is decoded with pydicom and encoded by pynetdicom as before.
"""
from __future__ import annotations

import threading

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset, read_preamble
from pydicom.uid import UID
from pynetdicom import association

_lock = threading.Lock()
_original_encode = None


class StoredInstance(Dataset):
    """A stored Part 10 instance, sent as its stored data set when the encoding allows.

    Only the elements ``Association.send_c_store`` reads are decoded: the
    SOP Class and Instance UIDs and the File Meta Information.
    """

    def __init__(self, part10: bytes, sop_class_uid: str, sop_instance_uid: str) -> None:
        super().__init__()
        fp = DicomBytesIO(part10)
        read_preamble(fp, False)
        self.file_meta = FileMetaDataset(read_dataset(
            fp, is_implicit_VR=False, is_little_endian=True,
            stop_when=lambda tag, vr, length: tag.group != 2))
        syntax = UID(self.file_meta.TransferSyntaxUID)
        self._pacs_part10 = part10
        self._pacs_offset = fp.tell()
        self._pacs_syntax = syntax
        self.SOPClassUID = sop_class_uid
        self.SOPInstanceUID = sop_instance_uid
        self.set_original_encoding(syntax.is_implicit_VR, syntax.is_little_endian, None)

    def stored_bytes(self, implicit_vr: bool, little_endian: bool, deflated: bool) -> bytes | None:
        """The stored data set if it is already in the asked encoding, else ``None``."""
        syntax = self._pacs_syntax
        if (implicit_vr, little_endian, deflated) != (
                syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated):
            return None
        return self._pacs_part10[self._pacs_offset:]

    def decoded(self) -> Dataset:
        """The whole instance, decoded by pydicom (for a conversion)."""
        return dcmread(DicomBytesIO(self._pacs_part10))


def _encode(ds, is_implicit_vr: bool, is_little_endian: bool, deflated: bool = False):
    """``pynetdicom.dsutils.encode`` as ``send_c_store`` calls it, stored bytes first."""
    if isinstance(ds, StoredInstance):
        stored = ds.stored_bytes(is_implicit_vr, is_little_endian, deflated)
        if stored is not None:
            return stored
        ds = ds.decoded()
    return _original_encode(ds, is_implicit_vr, is_little_endian, deflated)


def install() -> None:
    """Wrap ``pynetdicom.association.encode`` (once per process)."""
    global _original_encode
    with _lock:
        if _original_encode is None:
            _original_encode = association.encode
            association.encode = _encode  # type: ignore[attr-defined]
