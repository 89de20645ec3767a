"""Save reformatted planes as a new DICOM series (batch MPR: 3 mm coronal slices...).

:func:`stack_planes` lays parallel planes through a volume;
:func:`derived_series` samples them and returns one pydicom Dataset per
plane, ready for the archive's ingest: a new Series Instance UID and SOP
Instance UIDs, Image Type ``DERIVED\\SECONDARY`` (PS3.3 C.7.6.1.1.2), the
plane's Image Position/Orientation (Patient), Pixel Spacing, Slice
Thickness and Spacing Between Slices, a rescale that keeps the modality
values, and the patient, study and frame of reference of a source image.
"""
from __future__ import annotations

from datetime import datetime
from typing import Iterable

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, PositronEmissionTomographyImageStorage,
    SecondaryCaptureImageStorage, generate_uid,
)

from render_farm.mpr import plane_for, volume_corners
from render_farm.mpr_state import MPRState
from render_farm.planes import Plane, sample
from render_farm.volume import Volume

#: Most planes one derived series may hold.
MAX_PLANES = 2000
#: Storage classes for derived images, by modality; others become Secondary Capture.
STORAGE_CLASS = {"CT": CTImageStorage, "MR": MRImageStorage,
                 "PT": PositronEmissionTomographyImageStorage}
#: Attributes copied from the source image (Patient, General Study, Frame of Reference...).
COPIED = ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
          "PatientAge", "PatientSize", "PatientWeight", "StudyInstanceUID", "StudyDate",
          "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
          "StudyDescription", "FrameOfReferenceUID", "PositionReferenceIndicator",
          "Modality", "BodyPartExamined", "PatientPosition", "Manufacturer",
          "InstitutionName", "SpecificCharacterSet", "KVP")


def stack_planes(volume: Volume, state: MPRState, step: float, *,
                 thickness: float | None = None, mode: str | None = None) -> list[Plane]:
    """Parallel planes of `state`'s orientation every `step` mm across the whole volume.

    The planes keep `state`'s orientation, rotation and crosshair (one of
    them passes through it). Each is `thickness` mm thick (default: `step`,
    so the slabs tile the volume) and projected by `mode` (default
    ``state.mode``: ``"mip"``, ``"minip"``, ``"avg"``); ``thickness=0``
    gives thin planes.

    Raises
    ------
    ValueError
        `step` not positive or more than :data:`MAX_PLANES` planes.
    """
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"the step between derived planes must be > 0 mm, got {step}")
    plane = plane_for(volume, state.replace(thickness=0.0))
    depth = (volume_corners(volume) - plane.origin) @ plane.normal
    first = int(np.ceil(depth.min() / step - 1e-9))
    last = int(np.floor(depth.max() / step + 1e-9))
    if last - first + 1 > MAX_PLANES:
        raise ValueError(f"{last - first + 1} planes of {step} mm: at most {MAX_PLANES} "
                         "per derived series")
    slab = step if thickness is None else float(thickness)
    planes = []
    for m in range(first, last + 1):
        moved = plane.moved(m * step)
        planes.append(Plane(moved.origin, moved.row_axis, moved.col_axis, moved.spacing,
                            moved.size, slab, (mode or state.mode) if slab > 0 else "avg"))
    return planes


def _rescale(values: np.ndarray, integral: bool) -> tuple[np.ndarray, float, float]:
    """Stored int16 values, slope and intercept for modality `values`."""
    finite = np.nan_to_num(values, nan=float(np.nanmin(values)) if np.isfinite(values).any() else 0.0)
    low, high = float(finite.min()), float(finite.max())
    if integral and -32768 <= low and high <= 32767:
        return np.rint(finite).astype(np.int16), 1.0, 0.0
    slope = max((high - low) / 65000.0, 1e-6)
    intercept = (high + low) / 2.0
    stored = np.clip(np.rint((finite - intercept) / slope), -32768, 32767).astype(np.int16)
    return stored, slope, intercept


def derived_image(values: np.ndarray, plane: Plane, source: Dataset, *, series_uid: str,
                  number: int, step: float, integral: bool, description: str,
                  series_number: int, window: tuple[float, float] | None,
                  when: datetime) -> Dataset:
    """One derived image of modality `values` lying on `plane`."""
    ds = Dataset()
    for keyword in COPIED:
        if keyword in source:
            setattr(ds, keyword, source.data_element(keyword).value)
    modality = str(source.get("Modality", "OT"))
    ds.SOPClassUID = STORAGE_CLASS.get(modality, SecondaryCaptureImageStorage)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = series_uid, series_number, number
    ds.SeriesDescription = description[:64]
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.DerivationDescription = (f"{description}: {plane.mode.upper()} slab {plane.thickness:g} mm"
                                if plane.thickness else description)[:1024]
    date, time = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
    ds.SeriesDate = ds.ContentDate = ds.InstanceCreationDate = date
    ds.SeriesTime = ds.ContentTime = ds.InstanceCreationTime = time
    ds.ImagePositionPatient = [round(float(v), 4) for v in plane.origin]
    ds.ImageOrientationPatient = [round(float(v), 6) for v in (*plane.row_axis, *plane.col_axis)]
    ds.PixelSpacing = [round(float(s), 6) for s in plane.spacing]
    ds.SliceThickness = round(float(plane.thickness or step), 4)
    ds.SpacingBetweenSlices = round(float(step), 4)
    ds.SliceLocation = round(float(plane.origin @ plane.normal), 4)
    stored, slope, intercept = _rescale(values, integral)
    ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}"[:16], f"{intercept:.10g}"[:16]
    if modality == "CT":
        ds.RescaleType = "HU"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]:.6g}", f"{window[1]:.6g}"
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.PixelData = stored.astype("<i2").tobytes()
    return ds


def derived_series(volume: Volume, planes: Iterable[Plane], source: Dataset, *,
                   description: str = "MPR", series_number: int = 900,
                   when: datetime | None = None) -> list[Dataset]:
    """Sample `planes` and return them as a new series of pydicom Datasets.

    Parameters
    ----------
    volume : Volume
    planes : iterable of Plane
        Usually from :func:`stack_planes`; parallel and evenly spaced for a
        series other viewers can stack (the step is taken from the first two).
    source : Dataset
        An image of the source series: patient, study, frame of reference and
        modality are copied from it.
    description : str
        Series Description (e.g. "冠状位 3mm MIP").
    series_number : int
    when : datetime, optional
        Series/content date and time (default: now).
    """
    planes = list(planes)
    if not planes:
        raise ValueError("a derived series needs at least one plane")
    when = when or datetime.now()
    step = (float(abs((planes[1].origin - planes[0].origin) @ planes[0].normal))
            if len(planes) > 1 else float(planes[0].thickness or min(volume.spacing)))
    integral = volume.voxels.dtype.kind in "iu"
    series_uid = generate_uid()
    return [derived_image(sample(volume, plane), plane, source, series_uid=series_uid,
                          number=n, step=step, integral=integral and plane.mode != "avg"
                          if plane.thickness else integral, description=description,
                          series_number=series_number, window=volume.window, when=when)
            for n, plane in enumerate(planes, start=1)]
