"""Derived series: reformatted planes saved as DICOM load back where they were cut."""
from __future__ import annotations

from datetime import datetime

import numpy as np
import pydicom
import pytest

from render_farm.derived import derived_series, stack_planes
from render_farm.mpr_state import MPRState, Orientation
from render_farm.planes import sample
from render_farm.volume import read_volume
from tests.render_farm.volume_factory import write_series


def _source_and_volume(tmp_path):
    rng = np.random.default_rng(2)
    values = np.round(rng.normal(0, 5, (30, 40, 36))) - 100
    marker = np.array([20.0, 14.0, 33.0])                  # patient mm (x, y, z)
    values[int(marker[2] / 1.5), int(marker[1] / 0.8), int(marker[0] / 0.8)] = 1500
    paths = write_series(tmp_path / "source", values, spacing=(1.5, 0.8, 0.8))
    return pydicom.dcmread(paths[0]), read_volume(paths), marker


def test_coronal_3mm_mip_series_loads_back_in_place(tmp_path):
    source, volume, marker = _source_and_volume(tmp_path)
    planes = stack_planes(volume, MPRState(Orientation.CORONAL), step=3.0, mode="mip")
    assert len(planes) == 11                               # 31.2 mm of rows / 3 mm, + 1
    when = datetime(2026, 1, 2, 3, 4, 5)
    series = derived_series(volume, planes, source, description="COR 3mm MIP", when=when)
    assert len({ds.SeriesInstanceUID for ds in series}) == 1
    assert series[0].SeriesInstanceUID != source.SeriesInstanceUID
    assert len({ds.SOPInstanceUID for ds in series}) == len(series)
    first = series[0]
    assert list(first.ImageType) == ["DERIVED", "SECONDARY"]
    assert first.PatientName == "Test^Volume" and first.PatientID == "V1"
    assert first.StudyInstanceUID == source.StudyInstanceUID
    assert first.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert first.SOPClassUID == source.SOPClassUID and first.Modality == "CT"
    assert [float(v) for v in first.ImageOrientationPatient] == [1, 0, 0, 0, 0, -1]
    assert float(first.SliceThickness) == 3.0 and float(first.SpacingBetweenSlices) == 3.0
    assert first.SeriesDate == "20260102" and first.SeriesTime == "030405"
    # Written and read back, the series is a volume whose brightest voxel is the marker.
    for n, ds in enumerate(series):
        ds.save_as(tmp_path / f"d{n}.dcm", enforce_file_format=True)
    derived = read_volume([tmp_path / f"d{n}.dcm" for n in range(len(series))])
    assert derived.warnings == ()
    assert np.isclose(derived.spacing[0], 3.0)
    brightest = np.unravel_index(np.argmax(derived.voxels), derived.shape)
    # The MIP slab is 3 mm thick, so only the position across it is to within ±1.5 mm.
    found = derived.index_to_patient(np.array(brightest, dtype=float))
    assert np.abs(found - marker)[[0, 2]].max() < 0.8 and abs(found[1] - marker[1]) <= 1.5
    assert derived.voxels.max() == 1500


def test_thin_oblique_planes_keep_values_through_rescale(tmp_path):
    source, volume, _ = _source_and_volume(tmp_path)
    state = MPRState(Orientation.AXIAL, 10.0, 10.0, 20.0, rx=20.0)
    planes = stack_planes(volume, state, step=2.0, thickness=0.0)
    series = derived_series(volume, planes[:3], source)

    for ds, plane in zip(series, planes):
        stored = np.frombuffer(ds.PixelData, "<i2").reshape(ds.Rows, ds.Columns)
        values = stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.abs(values - sample(volume, plane)).max() <= 0.5


def test_bad_requests_are_refused(tmp_path):
    source, volume, _ = _source_and_volume(tmp_path)
    with pytest.raises(ValueError, match="step between derived planes must be > 0"):
        stack_planes(volume, MPRState(), step=0.0)
    with pytest.raises(ValueError, match="at most 2000"):
        stack_planes(volume, MPRState(), step=0.01)
    with pytest.raises(ValueError, match="at least one plane"):
        derived_series(volume, [], source)
