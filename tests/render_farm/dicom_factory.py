"""Build small synthetic DICOM instances for render farm tests."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def image(pixels: np.ndarray, photometric: str = "MONOCHROME2", bits_stored: int | None = None,
          frames: int | None = None, **attributes: object) -> Dataset:
    """Return a Part 10-ready dataset holding `pixels` uncompressed.

    `pixels` is (rows, columns), (frames, rows, columns) when `frames` is
    given, or (..., 3) for RGB; its dtype sets Bits Allocated and Pixel
    Representation. Extra attributes are set by keyword.
    """
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    colour = photometric in ("RGB", "YBR_FULL")
    shape = pixels.shape[1:] if frames else pixels.shape
    ds.Rows, ds.Columns = shape[0], shape[1]
    ds.SamplesPerPixel = 3 if colour else 1
    if colour:
        ds.PlanarConfiguration = 0
    if frames:
        ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    return ds


def lut_item(first: int, bits: int, values: np.ndarray, explanation: str = "") -> Dataset:
    """A Modality/VOI LUT sequence item (LUT Data as OW)."""
    item = Dataset()
    item.LUTDescriptor = [len(values) % 65536, first, bits]
    item.LUTData = np.asarray(values).astype("<u2").tobytes()
    if explanation:
        item.LUTExplanation = explanation
    return item


def sequence(*items: Dataset) -> Sequence:
    return Sequence(list(items))


def palette(ds: Dataset, first: int, bits: int, red: np.ndarray, green: np.ndarray,
            blue: np.ndarray) -> Dataset:
    """Add Palette Color LUTs (PS3.3 C.7.6.3.1.5) to `ds`."""
    dtype = "<u2" if bits == 16 else "u1"
    for name, values in (("Red", red), ("Green", green), ("Blue", blue)):
        setattr(ds, f"{name}PaletteColorLookupTableDescriptor", [len(values) % 65536, first, bits])
        data = np.asarray(values).astype(dtype).tobytes()
        setattr(ds, f"{name}PaletteColorLookupTableData", data)
    return ds


def overlay(ds: Dataset, bitmap: np.ndarray, origin: tuple[int, int] = (1, 1),
            group: int = 0x6000, image_frame_origin: int | None = None) -> Dataset:
    """Add an overlay plane (PS3.3 C.9.2) from a bool (rows, cols) or (frames, rows, cols)."""
    frames = bitmap[None] if bitmap.ndim == 2 else bitmap
    bits = np.packbits(frames.astype(np.uint8).ravel(), bitorder="little")
    if bits.size % 2:
        bits = np.append(bits, np.uint8(0))
    ds.add_new((group, 0x0010), "US", frames.shape[1])
    ds.add_new((group, 0x0011), "US", frames.shape[2])
    ds.add_new((group, 0x0015), "IS", str(frames.shape[0]))
    ds.add_new((group, 0x0040), "CS", "G")
    ds.add_new((group, 0x0050), "SS", list(origin))
    ds.add_new((group, 0x0100), "US", 1)
    ds.add_new((group, 0x0102), "US", 0)
    if image_frame_origin is not None:
        ds.add_new((group, 0x0051), "US", image_frame_origin)
    ds.add_new((group, 0x3000), "OW", bits.tobytes())
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def save(ds: Dataset, path: Path) -> Path:
    ds.save_as(path, enforce_file_format=True)
    return path
