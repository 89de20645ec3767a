"""Parse and validate incoming DICOM Part 10 bytes before anything is stored."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from app.services.dicom_attrs import text, valid_uid
from app.services.errors import Invalid

_UNDEFINED = 0xFFFFFFFF
_DEFER_BYTES = 64 * 1024
REQUIRED_UIDS = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")


@dataclass(frozen=True)
class Parsed:
    dataset: Dataset
    transfer_syntax_uid: str


def parse(data: bytes) -> Parsed:
    """Parse Part 10 bytes; raise :class:`Invalid` with a readable reason if unusable.

    pydicom tolerates truncation silently (a short final value, or the rest of
    the file missing), so completeness is checked here: every top-level value
    must be as long as its header says, and an image must carry all its pixels.
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        raise Invalid("not a DICOM Part 10 file (no 'DICM' prefix after the preamble)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Large values (pixel data) are skipped, not copied: indexing never
            # needs them, and completeness is checked from their offsets below.
            ds = pydicom.dcmread(io.BytesIO(data), defer_size=_DEFER_BYTES)
            if UID(getattr(ds.file_meta, "TransferSyntaxUID", "")).is_deflated:
                # Offsets of a deflated dataset refer to the inflated stream.
                ds = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, OSError,
            NotImplementedError, AttributeError, IndexError) as exc:
        raise Invalid(f"cannot parse DICOM: {type(exc).__name__}") from exc
    ts = text(ds.file_meta, "TransferSyntaxUID", 64) if hasattr(ds, "file_meta") else ""
    if not ts or not valid_uid(ts):
        raise Invalid("missing or invalid Transfer Syntax UID in the file meta")
    _check_complete(ds, len(data))
    for keyword in REQUIRED_UIDS:
        uid = text(ds, keyword, 100)
        if not valid_uid(uid):
            raise Invalid(f"missing or invalid {keyword}")
    return Parsed(ds, ts)


def _check_complete(ds: Dataset, size: int) -> None:
    # keep_deferred: Dataset.elements() would read each deferred value (the pixel
    # data) back out of the buffer just to look at its length.
    for tag in ds.keys():
        elem = ds.get_item(tag, keep_deferred=True)
        if not isinstance(elem, RawDataElement) or elem.length == _UNDEFINED:
            continue
        if elem.value is None:  # deferred: the value must lie inside the file
            if elem.value_tell + elem.length > size:
                raise Invalid("truncated file: an element is shorter than its length")
        elif len(elem.value) != elem.length:
            raise Invalid("truncated file: an element is shorter than its length")
    pixels = _length(ds, "PixelData")
    if "Rows" in ds and pixels is None and "FloatPixelData" not in ds \
            and "DoubleFloatPixelData" not in ds:
        raise Invalid("truncated file: image without pixel data")
    if pixels is not None and pixels != _UNDEFINED \
            and not UID(ds.file_meta.TransferSyntaxUID).is_compressed:
        try:
            samples = int(ds.get("SamplesPerPixel", 1))
            if ds.get("PhotometricInterpretation") == "YBR_FULL_422":
                samples = 2  # PS3.3 C.7.6.3.1.2: two chroma samples shared by two pixels
            expected = (int(ds.Rows) * int(ds.Columns) * samples * int(ds.BitsAllocated)
                        * int(ds.get("NumberOfFrames", 1) or 1) + 7) // 8
        except (AttributeError, TypeError, ValueError) as exc:
            raise Invalid("image attributes (Rows, Columns, BitsAllocated) are invalid") from exc
        if pixels < expected:
            raise Invalid("truncated file: pixel data shorter than Rows × Columns × frames")


def _length(ds: Dataset, keyword: str) -> int | None:
    """The value length of an element without reading a deferred value."""
    elem = ds.get_item(tag_for_keyword(keyword), keep_deferred=True)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement):
        return elem.length
    return len(elem.value) if elem.value is not None else 0
