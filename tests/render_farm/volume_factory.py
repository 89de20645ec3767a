"""Write synthetic 3-D series as Part 10 files, with known geometry, for volume tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, EnhancedCTImageStorage, generate_uid

from tests.render_farm.dicom_factory import image, save

FRAME_OF_REFERENCE = "1.2.826.0.1.3680043.8.498.1"


def _stored(values: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    return np.round((values - intercept) / slope).astype(np.int16)


def write_series(folder: Path, values: np.ndarray, *, origin=(0.0, 0.0, 0.0),
                 spacing=(2.0, 1.0, 1.0), row=(1.0, 0.0, 0.0), col=(0.0, 1.0, 0.0),
                 positions: np.ndarray | None = None, slope: float = 1.0,
                 intercept: float = -1024.0, seed: int = 0) -> list[Path]:
    """Write `values` (k, j, i) as one CT file per slice, in shuffled order.

    Slice k lies at ``positions[k]`` (default: origin + k · spacing[0] · (row × col)).
    Returns the paths (shuffled, so the loader has to sort them).
    """
    folder.mkdir(parents=True, exist_ok=True)
    row, col = np.asarray(row, float), np.asarray(col, float)
    normal = np.cross(row, col)
    if positions is None:
        positions = np.asarray(origin) + np.outer(np.arange(len(values)) * spacing[0], normal)
    series = generate_uid()
    paths = []
    for k in np.random.default_rng(seed).permutation(len(values)):
        ds = image(_stored(values[k], slope, intercept), Modality="CT",
                   SeriesInstanceUID=series, FrameOfReferenceUID=FRAME_OF_REFERENCE,
                   ImagePositionPatient=[float(v) for v in positions[k]],
                   ImageOrientationPatient=[float(v) for v in (*row, *col)],
                   PixelSpacing=[spacing[1], spacing[2]], SliceThickness=spacing[0],
                   RescaleSlope=slope, RescaleIntercept=intercept, InstanceNumber=int(k) + 1,
                   WindowCenter=40, WindowWidth=400, PatientName="Test^Volume",
                   PatientID="V1", StudyInstanceUID="1.2.3.4")
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        paths.append(save(ds, folder / f"{k:04d}-{ds.SOPInstanceUID}.dcm"))
    return paths


def write_enhanced(path: Path, values: np.ndarray, *, origin=(0.0, 0.0, 0.0),
                   spacing=(2.0, 1.0, 1.0), row=(1.0, 0.0, 0.0), col=(0.0, 1.0, 0.0),
                   slope: float = 1.0, intercept: float = -1024.0,
                   per_frame_orientation: bool = False) -> Path:
    """Write `values` as one Enhanced CT file: frames in reverse order, plane
    positions per frame, orientation shared (or per frame), pixel measures and
    rescale shared (PS3.3 C.7.6.16.2)."""
    row, col = np.asarray(row, float), np.asarray(col, float)
    normal = np.cross(row, col)
    order = np.arange(len(values))[::-1]
    ds = image(np.stack([_stored(values[k], slope, intercept) for k in order]),
               frames=len(values), Modality="CT", FrameOfReferenceUID=FRAME_OF_REFERENCE)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = EnhancedCTImageStorage

    def item(**attributes) -> Sequence:
        inner = Dataset()
        for keyword, value in attributes.items():
            setattr(inner, keyword, value)
        return Sequence([inner])

    orientation = [float(v) for v in (*row, *col)]
    shared = Dataset()
    shared.PixelMeasuresSequence = item(PixelSpacing=[spacing[1], spacing[2]],
                                        SliceThickness=spacing[0])
    shared.PixelValueTransformationSequence = item(RescaleSlope=slope, RescaleIntercept=intercept,
                                                   RescaleType="HU")
    shared.FrameVOILUTSequence = item(WindowCenter=40, WindowWidth=400)
    if not per_frame_orientation:
        shared.PlaneOrientationSequence = item(ImageOrientationPatient=orientation)
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for k in order:
        frame = Dataset()
        place = np.asarray(origin) + k * spacing[0] * normal
        frame.PlanePositionSequence = item(ImagePositionPatient=[float(v) for v in place])
        if per_frame_orientation:
            frame.PlaneOrientationSequence = item(ImageOrientationPatient=orientation)
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    return save(ds, path)


def marker_values(shape=(40, 48, 44), background: float = 0.0, seed: int = 1) -> np.ndarray:
    """Mildly noisy HU values, for markers to be placed in."""
    rng = np.random.default_rng(seed)
    return background + np.round(rng.normal(0.0, 3.0, shape))
