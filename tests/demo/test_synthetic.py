"""Tests of the synthetic DICOM generator (app.demo.synthetic)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, MRImageStorage,
                         PositronEmissionTomographyImageStorage, XRayAngiographicImageStorage)

from app.demo import phantom, synthetic
from app.demo.synthetic import StudySpec

SPEC = StudySpec()
SMALL = {"n_slices": 32, "rows": 128, "cols": 128}
# 0.7 mm pixels to sample small structures; 3 mm slices so the anatomy is not squashed
# so far in z that big vessels overlap the organs around them (see app.demo.phantom).
FINE = {"n_slices": 60, "rows": 512, "cols": 512, "slice_thickness": 3.0}
FINE_Z = (FINE["n_slices"], FINE["slice_thickness"])


def _read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def _hu(ds: Dataset) -> np.ndarray:
    return ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def _voxel(series: list[Dataset], point: tuple[float, float, float]) -> tuple[int, int, int]:
    """(slice, row, column) nearest a patient point, from the headers alone."""
    zs = np.array([float(ds.ImagePositionPatient[2]) for ds in series])
    first = series[0]
    x0, y0 = (float(v) for v in first.ImagePositionPatient[:2])
    dy, dx = (float(v) for v in first.PixelSpacing)
    return (int(np.argmin(np.abs(zs - point[2]))), round((point[1] - y0) / dy),
            round((point[0] - x0) / dx))


def _patch(volume: np.ndarray, voxel: tuple[int, int, int], half: int = 2) -> np.ndarray:
    k, j, i = voxel
    return volume[k, j - half:j + half + 1, i - half:i + half + 1]


@pytest.fixture(scope="module")
def fine_ct() -> tuple[list[Dataset], np.ndarray]:
    series = list(synthetic.chest_ct(SPEC, **FINE))
    return series, np.stack([_hu(ds) for ds in series])


def test_chest_ct_is_deterministic_and_seed_dependent() -> None:
    first = [synthetic.to_bytes(ds) for ds in synthetic.chest_ct(SPEC, **SMALL)]
    again = [synthetic.to_bytes(ds) for ds in synthetic.chest_ct(SPEC, **SMALL)]
    assert first == again
    other = list(synthetic.chest_ct(StudySpec(seed=1), **SMALL))
    assert other[10].PixelData != _read(first[10]).PixelData
    assert other[0].StudyInstanceUID != _read(first[0]).StudyInstanceUID


def test_explicit_study_uid_is_used() -> None:
    spec = StudySpec(study_uid="1.2.826.0.1.3680043.8.498.1")
    ds = next(synthetic.chest_ct(spec, **SMALL))
    assert ds.StudyInstanceUID == spec.study_uid


def test_ct_round_trips_through_part10_bytes() -> None:
    series = list(synthetic.chest_ct(SPEC, **SMALL))
    expected = phantom.ct_hu_slices(SPEC.seed, 32, 128, 128, 1.25)
    for ds, hu in zip(series, expected, strict=True):
        data = synthetic.to_bytes(ds)
        assert data[128:132] == b"DICM"
        back = _read(data)
        assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert len(back.PixelData) == 128 * 128 * 2
        assert np.array_equal(np.frombuffer(back.PixelData, "<u2").reshape(128, 128), back.pixel_array)
        assert np.array_equal(_hu(back), hu)
    back = _read(synthetic.to_bytes(series[0]))
    assert str(back.PatientName) == "Zhang^San=张^三"
    assert back.PatientName.ideographic == "张^三"
    assert back.InstitutionName == "示范医院"


def test_ct_header_at_full_matrix(fine_ct: tuple[list[Dataset], np.ndarray]) -> None:
    ds = fine_ct[0][0]
    assert ds.SOPClassUID == CTImageStorage and ds.Modality == "CT"
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert (ds.Rows, ds.Columns) == (512, 512)
    assert [float(v) for v in ds.PixelSpacing] == [0.703125, 0.703125]
    assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation) == (16, 12, 11, 0)
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert (float(ds.RescaleIntercept), float(ds.RescaleSlope)) == (-1024.0, 1.0)
    assert [float(v) for v in ds.WindowCenter] == [40, -600]
    assert [float(v) for v in ds.WindowWidth] == [400, 1500]
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert (ds.PatientPosition, ds.BodyPartExamined) == ("HFS", "CHEST")
    for keyword in ("KVP", "FrameOfReferenceUID", "Manufacturer", "StudyTime", "SeriesTime",
                    "SeriesNumber", "SeriesDescription", "SliceThickness", "SliceLocation"):
        assert keyword in ds, keyword


def test_ct_geometry_is_consistent() -> None:
    series = list(synthetic.chest_ct(SPEC, **SMALL))
    assert [ds.InstanceNumber for ds in series] == list(range(1, 33))
    ipp = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in series])
    assert np.allclose(ipp[:, :2], ipp[0, :2])
    assert np.allclose(np.diff(ipp[:, 2]), -1.25)  # head first: z falls with InstanceNumber
    assert np.allclose([float(ds.SliceLocation) for ds in series], ipp[:, 2])
    assert all([float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0] for ds in series)
    assert len({ds.FrameOfReferenceUID for ds in series}) == 1
    assert len({ds.SOPInstanceUID for ds in series}) == 32
    # The FOV is centred on the isocentre: first and last pixel centres are symmetric.
    dy, dx = (float(v) for v in series[0].PixelSpacing)
    assert ipp[0, 0] + 127 * dx == pytest.approx(-ipp[0, 0])
    assert ipp[0, 1] + 127 * dy == pytest.approx(-ipp[0, 1])


def test_nodules_are_where_nodule_positions_says(fine_ct: tuple[list[Dataset], np.ndarray]) -> None:
    series, volume = fine_ct
    positions = synthetic.nodule_positions(SPEC, *FINE_Z)
    radii = synthetic.nodule_radii(SPEC, *FINE_Z)
    assert len(positions) >= 3 and all(2.5 <= r <= 7.5 for r in radii)
    chest = phantom.chest_phantom(SPEC.seed, *FINE_Z)
    grid, zs = phantom.ct_geometry(FINE["n_slices"], 512, 512, FINE["slice_thickness"])
    for (x, y, z), r in zip(positions, radii):
        k, j, i = _voxel(series, (x, y, z))
        labels = chest.labels(grid, zs[k])
        assert labels[j, i] == phantom.Tissue.NODULE
        assert -50 <= _patch(volume, (k, j, i), 1).mean() <= 50
        # Just outside the sphere it is lung again (or a vessel running through it).
        outside = {labels[j, round(i + s * (r + 3) / grid.dx)] for s in (-1, 1)}
        assert outside <= {phantom.Tissue.LUNG, phantom.Tissue.VESSEL}


@pytest.mark.parametrize(("name", "low", "high"), [
    ("lung_right", -950, -700), ("lung_left", -950, -700), ("aorta_ascending", 200, 320),
    ("aorta_descending", 200, 320), ("vertebral_body", 180, 330), ("heart", 0, 80), ("liver", 30, 100)])
def test_tissue_hu_at_landmarks(fine_ct: tuple[list[Dataset], np.ndarray], name: str,
                                low: float, high: float) -> None:
    series, volume = fine_ct
    point = synthetic.landmarks(SPEC, *FINE_Z)[name]
    assert low <= np.median(_patch(volume, _voxel(series, point))) <= high


def test_cortical_bone_and_table(fine_ct: tuple[list[Dataset], np.ndarray]) -> None:
    series, volume = fine_ct
    k, j, i = _voxel(series, synthetic.landmarks(SPEC, *FINE_Z)["vertebral_body"])
    assert _patch(volume, (k, j, i), 30).max() > 700  # the vertebral cortex
    # The couch lies under the patient: a dense shell below the skin at the midline.
    k, j, i = _voxel(series, synthetic.landmarks(SPEC, *FINE_Z)["table"])
    assert volume[k, j - 4:j + 6, i].max() > 150
    assert volume[k, j - 10:j - 2, i].min() < -900  # air gap between back and table


def test_pet_matches_ct_space_and_has_suv_attributes() -> None:
    ct = list(synthetic.chest_ct(SPEC, **SMALL))
    pet = list(synthetic.pet_series(SPEC, ct_slices=32, rows=128, cols=128))
    ds = pet[0]
    assert ds.SOPClassUID == PositronEmissionTomographyImageStorage and ds.Modality == "PT"
    assert ds.FrameOfReferenceUID == ct[0].FrameOfReferenceUID
    assert ds.StudyInstanceUID == ct[0].StudyInstanceUID
    assert ds.SeriesInstanceUID != ct[0].SeriesInstanceUID
    # Same slab: top and bottom slice edges coincide.
    def edges(series: list[Dataset]) -> tuple[float, float]:
        zs = [float(s.ImagePositionPatient[2]) for s in series]
        half = float(series[0].SliceThickness) / 2
        return max(zs) + half, min(zs) - half
    assert edges(pet) == pytest.approx(edges(ct))
    assert float(ds.PixelSpacing[0]) > float(ct[0].PixelSpacing[0])
    assert -float(ds.ImagePositionPatient[0]) >= -float(ct[0].ImagePositionPatient[0])
    assert (ds.Units, ds.DecayCorrection, ds.NumberOfSlices) == ("BQML", "START", len(pet))
    drug = ds.RadiopharmaceuticalInformationSequence[0]
    assert float(drug.RadionuclideHalfLife) == 6586.2
    assert float(drug.RadionuclideTotalDose) > 0 and drug.RadiopharmaceuticalStartTime
    assert float(ds.PatientWeight) > 0 and ds.SeriesTime and ds.AcquisitionTime


def _suv(series: list[Dataset]) -> np.ndarray:
    """SUVbw from the headers, the way a viewer computes it."""
    ds = series[0]
    drug = ds.RadiopharmaceuticalInformationSequence[0]

    def seconds(tm: str) -> float:
        return int(tm[:2]) * 3600 + int(tm[2:4]) * 60 + float(tm[4:])
    elapsed = seconds(ds.SeriesTime) - seconds(drug.RadiopharmaceuticalStartTime)
    dose = float(drug.RadionuclideTotalDose) * 2 ** (-elapsed / float(drug.RadionuclideHalfLife))
    bqml = np.stack([s.pixel_array * float(s.RescaleSlope) + float(s.RescaleIntercept) for s in series])
    return bqml * float(ds.PatientWeight) * 1000 / dose


def test_pet_is_hot_at_nodules_heart_and_kidneys() -> None:
    pet = [_read(synthetic.to_bytes(ds)) for ds in synthetic.pet_series(SPEC, 32, 128, 128)]
    suv = _suv(pet)
    marks = synthetic.landmarks(SPEC, 32)
    lung = np.median(_patch(suv, _voxel(pet, marks["lung_right"])))
    assert 0.1 < lung < 0.8
    for point in synthetic.nodule_positions(SPEC, 32):
        assert suv[_voxel(pet, point)] > max(1.0, 2 * lung)
    assert _patch(suv, _voxel(pet, marks["heart"]), 10).max() > 3
    assert suv.max() > 8  # renal excretion
    assert 1.5 < np.median(_patch(suv, _voxel(pet, marks["liver"]))) < 3.5


def test_mr_series_attributes_and_study() -> None:
    series = list(synthetic.mr_series(SPEC, n_slices=6, rows=64, cols=64))
    ds = series[0]
    assert ds.SOPClassUID == MRImageStorage and ds.Modality == "MR"
    assert (ds.Rows, ds.Columns, len(series)) == (64, 64, 6)
    for keyword in ("RepetitionTime", "EchoTime", "MagneticFieldStrength", "ScanningSequence",
                    "SequenceVariant", "MRAcquisitionType", "ImagedNucleus", "SliceThickness"):
        assert keyword in ds, keyword
    ct = next(synthetic.chest_ct(SPEC, **SMALL))
    assert ds.StudyInstanceUID != ct.StudyInstanceUID  # a study of its own by default
    assert ds.PatientID == ct.PatientID
    shared = StudySpec(study_uid="1.2.826.0.1.3680043.8.498.2")
    assert next(synthetic.mr_series(shared, 2, 32, 32)).StudyInstanceUID == shared.study_uid
    back = _read(synthetic.to_bytes(series[3]))
    assert np.array_equal(back.pixel_array, series[3].pixel_array)
    assert back.pixel_array.max() > 1000  # bright CSF on T2
    assert np.diff([float(s.ImagePositionPatient[2]) for s in series]) == pytest.approx(-6.0)


def test_xa_cine_is_multiframe_with_contrast_free_mask() -> None:
    ds = _read(synthetic.to_bytes(synthetic.xa_cine(SPEC, frames=16, rows=128, cols=128)))
    assert ds.SOPClassUID == XRayAngiographicImageStorage and ds.Modality == "XA"
    assert int(ds.NumberOfFrames) == 16
    assert ds.FrameIncrementPointer == 0x00181063
    assert float(ds.FrameTime) == pytest.approx(1000 / float(ds.CineRate))
    frames = ds.pixel_array.astype(int)
    assert frames.shape == (16, 128, 128) and ds.BitsAllocated == 8
    n_mask = phantom.xa_mask_frames(16)
    numbers = ds.MaskSubtractionSequence[0]["MaskFrameNumbers"]
    assert (list(numbers.value) if numbers.VM > 1 else [numbers.value]) == list(range(1, n_mask + 1))
    assert n_mask >= 2
    mask = frames[0]
    for f in range(1, n_mask):  # mask frames differ by noise only
        assert (mask - frames[f] > 25).sum() == 0
    opacified = [(mask - frames[f] > 25).sum() for f in range(n_mask, 16)]
    assert max(opacified) > 200 and opacified[0] < max(opacified)  # the bolus spreads


def test_marker_volume_puts_markers_at_documented_voxels() -> None:
    markers = [(0.0, 0.0, 0.0), (30.0, 0.0, 0.0), (0.0, -20.0, 0.0), (0.0, 0.0, 40.0),
               (20.0, 10.0, -30.0)]
    series = list(synthetic.marker_volume(markers=markers))
    volume = np.stack([_hu(ds) for ds in series])
    assert volume.shape == (64, 128, 128)
    assert (volume == 1000).sum() == len(markers)
    for point in markers:
        k, j, i = _voxel(series, point)
        assert volume[k, j, i] == 1000
        assert (k, j, i) == phantom.marker_voxel(point, volume.shape, (1.0, 1.0, 2.0))
    assert np.diff([float(ds.ImagePositionPatient[2]) for ds in series]) == pytest.approx(-2.0)
    spheres = np.stack([_hu(ds) for ds in synthetic.marker_volume(markers=markers[:1], radius=3.0)])
    assert 4 * np.pi / 3 * 27 / 2 * 0.7 < (spheres == 1000).sum() < 4 * np.pi / 3 * 27 / 2 * 1.3


def test_write_datasets_and_to_bytes(tmp_path: Path) -> None:
    series = list(synthetic.chest_ct(SPEC, n_slices=3, rows=32, cols=32))
    paths = synthetic.write_datasets(series, tmp_path / "ct")
    assert [p.name for p in paths] == [f"{ds.SOPInstanceUID}.dcm" for ds in series]
    for path, ds in zip(paths, series):
        assert path.read_bytes() == synthetic.to_bytes(ds)
        assert pydicom.dcmread(path).SOPInstanceUID == ds.SOPInstanceUID
    bare = Dataset()  # no file meta at all: still written as a valid Part 10 file
    bare.SOPClassUID, bare.SOPInstanceUID, bare.PatientID = CTImageStorage, "1.2.3.4", "X"
    back = _read(synthetic.to_bytes(bare))
    assert back.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian and back.PatientID == "X"
    assert not hasattr(bare, "file_meta")  # the caller's dataset is left alone


def test_sample_files_span_transfer_syntaxes() -> None:
    files = synthetic.sample_files()
    assert len(files) >= 10
    syntaxes, photometric, multiframe = set(), set(), 0
    for path in files:
        ds = pydicom.dcmread(path)
        syntaxes.add(ds.file_meta.TransferSyntaxUID.name)
        assert {"SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"} <= set(ds.dir())
        if "PixelData" in ds:
            photometric.add(ds.PhotometricInterpretation)
            multiframe += int(ds.get("NumberOfFrames", 1) or 1) > 1
    for name in ("JPEG Baseline (Process 1)", "RLE Lossless", "JPEG 2000 Image Compression",
                 "Deflated Explicit VR Little Endian", "Explicit VR Big Endian",
                 "JPEG-LS Lossless Image Compression"):
        assert name in syntaxes
    assert {"MONOCHROME2", "RGB", "PALETTE COLOR"} <= photometric and multiframe >= 2
    assert not any("truncated" in p.name for p in files)
