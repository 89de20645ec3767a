"""Small helpers shared by the modules that read pydicom Datasets."""
from __future__ import annotations

from pydicom.dataset import Dataset


def is_little_endian(ds: Dataset) -> bool:
    """Byte order of `ds`'s encoding: the transfer syntax, else how it was read.

    OW values (LUT Data, Overlay Data) are kept as raw bytes by pydicom, so
    their 16-bit words must be read in this order.
    """
    file_meta = getattr(ds, "file_meta", None)
    syntax = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if syntax is not None:
        try:
            return bool(syntax.is_little_endian)
        except (AttributeError, ValueError):
            pass
    return ds.original_encoding[1] is not False
