"""Realistic synthetic DICOM studies for demo data, tests and benchmarks.

Series
    :func:`chest_ct` (contrast chest CT with known nodules, see :func:`nodule_positions`),
    :func:`pet_series` (FDG PET sharing the CT's frame of reference and extent),
    :func:`mr_series` (axial T2 brain), :func:`xa_cine` (multi-frame coronary
    angiogram) and :func:`marker_volume` (geometry phantom for render tests).
    The numpy anatomy lives in :mod:`app.demo.phantom`.
Geometry
    Patient LPS mm, head first supine (HFS), ``ImageOrientationPatient``
    ``1\\0\\0\\0\\1\\0``.  Every series starts at the head: ``InstanceNumber`` 1 is the
    most superior slice and z *decreases* by the slice spacing with each instance.
    The chest CT's slice k (0-based) is centred at ``z = -k * slice_thickness``; its
    FOV (360 mm) is centred on the isocentre, so the voxel at row j, column i is
    at ``x = -180 + (i + 0.5) * 360 / cols``, ``y = -180 + (j + 0.5) * 360 / rows``.
Determinism
    Same spec and arguments give byte-identical datasets: UIDs are ``2.25.`` plus
    a name-based (v5) UUID of the spec, the series kind and its arguments (pydicom
    3's ``generate_uid(prefix=None, entropy_srcs=...)`` ignores the entropy and
    returns a random UUID4, so it cannot be used), noise comes from
    ``numpy.random.default_rng`` seeded with ``spec.seed``, and nothing reads the clock.
Speed
    ``chest_ct(spec)`` (300 slices of 512 x 512, consumed to the last dataset)
    takes about 2.2 s on one core of the 2-core development container (~0.15 s of
    it building the anatomy), 2.9 s including ``to_bytes`` of every slice (158 MB).
    A 32-slice 128 x 128 series takes about 0.2 s.
"""
from __future__ import annotations

import copy
import functools
import io
import os
import uuid
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, MediaStorageDirectoryStorage,
                         MRImageStorage, PositronEmissionTomographyImageStorage,
                         UID, XRayAngiographicImageStorage)
from pydicom.valuerep import format_number_as_ds

from app.demo import phantom

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:cloud-pacs:app.demo.synthetic:v1")
IMPLEMENTATION_CLASS_UID = UID(f"2.25.{uuid.uuid5(_NAMESPACE, 'implementation').int}")
IMPLEMENTATION_VERSION_NAME = "PACSDEMO_1"
FDG_DOSE_BQ = 259e6  # 3.7 MBq/kg for the 70 kg patient
FDG_HALF_LIFE_S = 6586.2
PATIENT_WEIGHT_KG = 70.0
INJECTION_TIME, PET_SERIES_TIME = "090000", "100000"  # 60 min uptake
AXIAL = ("1", "0", "0", "0", "1", "0")  # ImageOrientationPatient of every axial series
_UPTAKE_S = 3600.0


@dataclass(frozen=True)
class PatientSpec:
    """Who the synthetic patient is; ``name`` is a DICOM PN (alphabetic=ideographic)."""

    patient_id: str = "DEMO0001"
    name: str = "Zhang^San=张^三"
    sex: str = "M"
    birth_date: str = "19650312"


@dataclass(frozen=True)
class StudySpec:
    """One synthetic study; ``seed`` drives the anatomy, noise and derived UIDs."""

    patient: PatientSpec = PatientSpec()
    study_uid: str | None = None  # None -> derived deterministically from the spec/seed
    accession: str = "A0001"
    study_date: str = "20261101"
    description: str = "胸部CT平扫+增强"
    referring_physician: str = "Li^Wei=李^伟"
    institution: str = "示范医院"
    seed: int = 0


PHANTOM_SPEC = StudySpec(PatientSpec("PHANTOM01", "Geometry^Phantom", "O", "20000101"),
                         accession="PH0001", description="Geometry phantom")
DEFAULT_MARKERS = ((0.0, 0.0, 0.0), (30.0, 0.0, 0.0), (0.0, -20.0, 0.0), (0.0, 0.0, 40.0),
                   (20.0, 10.0, -30.0))  # distinct distances, so any axis flip shows


@dataclass(frozen=True)
class _Study:
    uid: str
    accession: str
    description: str
    time: str


def _uid(spec: StudySpec, *parts: object) -> str:
    """Deterministic ``2.25.`` UID (ISO/IEC 9834-8 UUID) of the spec and the object's parts."""
    key = [str(spec.seed), spec.patient.patient_id, spec.study_uid or "", *map(repr, parts)]
    return UID(f"2.25.{uuid.uuid5(_NAMESPACE, chr(31).join(key)).int}")


def _study(spec: StudySpec, own: str | None = None, description: str = "") -> _Study:
    """The spec's study, or (``own`` set and no explicit ``study_uid``) a separate one."""
    if own is None or spec.study_uid:
        return _Study(spec.study_uid or _uid(spec, "study"), spec.accession, spec.description, "093000")
    times = {"MR": "140000", "XA": "160000"}
    return _Study(_uid(spec, "study", own), f"{spec.accession}{own}"[:16], description,
                  times.get(own, "120000"))


def _ds(x: float) -> str:
    """Decimal String of at most 16 characters, as exact as fits."""
    return format_number_as_ds(float(x) + 0.0)  # + 0.0 turns -0.0 into 0.0


def _age(birth: str, on: str) -> str:
    """Patient's Age (AS) on the study date; empty (type 2) if either date is unusable."""
    if not (len(birth) == len(on) == 8 and birth.isdigit() and on.isdigit()):
        return ""
    years = int(on[:4]) - int(birth[:4]) - (on[4:8] < birth[4:8])
    return f"{max(years, 0):03d}Y"


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _instance(spec: StudySpec, study: _Study, attrs: dict, sop_uid: str) -> Dataset:
    """A dataset with patient, study and the given series/instance attributes."""
    ds = Dataset()
    ds.file_meta = _file_meta(attrs["SOPClassUID"], sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names and descriptions are Chinese
    ds.SOPInstanceUID = sop_uid
    p = spec.patient
    ds.PatientName, ds.PatientID, ds.PatientSex = p.name, p.patient_id, p.sex
    ds.PatientBirthDate, ds.PatientAge = p.birth_date, _age(p.birth_date, spec.study_date)
    ds.PatientWeight, ds.PatientSize = _ds(PATIENT_WEIGHT_KG), "1.72"
    ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber = study.uid, "1", study.accession
    ds.StudyDate, ds.StudyTime, ds.StudyDescription = spec.study_date, study.time, study.description
    ds.ReferringPhysicianName, ds.InstitutionName = spec.referring_physician, spec.institution
    ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = spec.study_date
    ds.Manufacturer, ds.StationName = "PACS Demo Imaging", "DEMO01"
    ds.ManufacturerModelName, ds.SoftwareVersions = "Synthetic", "app.demo.synthetic 1"
    for keyword, value in attrs.items():
        if isinstance(value, list) and value and isinstance(value[0], Dataset):
            value = copy.deepcopy(value)  # sequence items are mutable: one copy per instance
        setattr(ds, keyword, value)
    return ds


def _pixels(ds: Dataset, frames: np.ndarray, bits_stored: int, signed: bool = False) -> None:
    """Image Pixel module plus little-endian PixelData of ``frames`` (2-D or 3-D)."""
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = frames.shape[-2:]
    ds.BitsAllocated, ds.BitsStored = frames.dtype.itemsize * 8, bits_stored
    ds.HighBit, ds.PixelRepresentation = bits_stored - 1, int(signed)
    data = frames.astype(frames.dtype.newbyteorder("<"), copy=False).tobytes()
    ds.add_new(0x7FE00010, "OB" if frames.dtype.itemsize == 1 else "OW", data + b"\0" * (len(data) % 2))


def _series(spec: StudySpec, study: _Study, kind: str, args: tuple, number: int,
            **attrs: object) -> dict:
    """Series-level attributes shared by every instance of one series."""
    return {"SeriesInstanceUID": _uid(spec, study.uid, kind, *args), "SeriesNumber": number,
            "StudyInstanceUID": study.uid, **attrs}


def _slices(spec: StudySpec, study: _Study, series: dict, images: Iterable[np.ndarray],
            corner: tuple[float, float], zs: Sequence[float], pixel: dict) -> Iterator[Dataset]:
    """Axial instances: one per image, at ``(corner, z)``, with the series and pixel settings."""
    for k, (z, img) in enumerate(zip(zs, images)):
        sop_uid = _uid(spec, series["SeriesInstanceUID"], k + 1)
        ds = _instance(spec, study, series, sop_uid)
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [_ds(corner[0]), _ds(corner[1]), _ds(z)]
        ds.SliceLocation = _ds(z)
        _pixels(ds, img, **pixel)
        yield ds


def _ct_series(spec: StudySpec, study: _Study, kind: str, args: tuple, grid: phantom.Grid,
               thickness: float, **attrs: object) -> dict:
    window = {"WindowCenter": ["40", "-600"], "WindowWidth": ["400", "1500"],
              "WindowCenterWidthExplanation": ["MEDIASTINUM", "LUNG"]}
    return _series(spec, study, kind, args, 2, SOPClassUID=CTImageStorage, Modality="CT",
                   ImageType=["ORIGINAL", "PRIMARY", "AXIAL"], PatientPosition="HFS",
                   ImageOrientationPatient=list(AXIAL),
                   PixelSpacing=[_ds(grid.dy), _ds(grid.dx)], SliceThickness=_ds(thickness),
                   KVP="120", RescaleIntercept="-1024", RescaleSlope="1", RescaleType="HU",
                   AcquisitionNumber=1, PositionReferenceIndicator="", **window, **attrs)


def chest_ct(spec: StudySpec, n_slices: int = 300, rows: int = 512, cols: int = 512,
             slice_thickness: float = 1.25) -> Iterator[pydicom.Dataset]:
    """Contrast-enhanced chest CT, head first; stored = HU + 1024 in 12 unsigned bits."""
    study = _study(spec)
    grid, zs = phantom.ct_geometry(n_slices, rows, cols, slice_thickness)
    series = _ct_series(
        spec, study, "CT", (n_slices, rows, cols, slice_thickness), grid, slice_thickness,
        FrameOfReferenceUID=_uid(spec, study.uid, "frame of reference"),
        SeriesDescription=f"Chest C+ {slice_thickness:g}mm STANDARD", BodyPartExamined="CHEST",
        SeriesTime="095800", AcquisitionTime="095800", ContentTime="095800",
        ProtocolName="Chest PET/CT C+", ContrastBolusAgent="Iopromide 370", ContrastBolusRoute="IV",
        ReconstructionDiameter=_ds(phantom.CT_FOV), ConvolutionKernel="STANDARD",
        XRayTubeCurrent=200, ExposureTime=500, GantryDetectorTilt="0", TableHeight="160",
        DataCollectionDiameter="500", RotationDirection="CW", FilterType="BODY FILTER")
    images = ((hu + 1024).astype(np.uint16) for hu in
              phantom.ct_hu_slices(spec.seed, n_slices, rows, cols, slice_thickness))
    yield from _slices(spec, study, series, images, (grid.xs[0], grid.ys[0]), zs,
                       {"bits_stored": 12})


def nodule_positions(spec: StudySpec, n_slices: int = 300,
                     slice_thickness: float = 1.25) -> list[tuple[float, float, float]]:
    """Centres (patient LPS mm) of the lung nodules in ``chest_ct(spec, n_slices, ...)``."""
    xyzr = phantom.nodule_xyzr(spec.seed, *phantom.ct_slab(n_slices, slice_thickness))
    return [tuple(float(v) for v in row[:3]) for row in xyzr]


def nodule_radii(spec: StudySpec, n_slices: int = 300, slice_thickness: float = 1.25) -> list[float]:
    """Radii (mm) of the nodules, in the order of :func:`nodule_positions`."""
    xyzr = phantom.nodule_xyzr(spec.seed, *phantom.ct_slab(n_slices, slice_thickness))
    return [float(r) for r in xyzr[:, 3]]


def landmarks(spec: StudySpec, n_slices: int = 300,
              slice_thickness: float = 1.25) -> dict[str, tuple[float, float, float]]:
    """Named points (patient mm) inside known tissues of the chest CT, e.g. ``aorta_descending``."""
    return phantom.landmarks(*phantom.ct_slab(n_slices, slice_thickness))


def pet_series(spec: StudySpec, ct_slices: int = 300, rows: int = 128, cols: int = 128,
               ct_slice_thickness: float = 1.25) -> Iterator[pydicom.Dataset]:
    """FDG PET (Bq/ml, decay corrected to series start) of the same patient space as the CT.

    SUVbw = stored * RescaleSlope * PatientWeight[g] /
    (RadionuclideTotalDose * 2 ** -((SeriesTime - RadiopharmaceuticalStartTime) / half-life)).
    """
    study = _study(spec)
    suv, grid, zs, step = phantom.pet_suv_volume(spec.seed, ct_slices, ct_slice_thickness, rows, cols)
    bq_per_suv = FDG_DOSE_BQ * 2 ** (-_UPTAKE_S / FDG_HALF_LIFE_S) / (PATIENT_WEIGHT_KG * 1000)
    slope = float(_ds(max(float(suv.max()) * bq_per_suv / 60000, 1e-3)))
    stored = np.rint(suv * bq_per_suv / slope).astype(np.uint16)
    series = _series(
        spec, study, "PT", (ct_slices, rows, cols, ct_slice_thickness), 3,
        SOPClassUID=PositronEmissionTomographyImageStorage, Modality="PT",
        ImageType=["ORIGINAL", "PRIMARY"], SeriesDescription="PET WB FDG AC",
        FrameOfReferenceUID=_uid(spec, study.uid, "frame of reference"), PositionReferenceIndicator="",
        SeriesTime=PET_SERIES_TIME, AcquisitionTime=PET_SERIES_TIME, ContentTime=PET_SERIES_TIME,
        PatientPosition="HFS", BodyPartExamined="CHEST", ImageOrientationPatient=list(AXIAL),
        PixelSpacing=[_ds(grid.dy), _ds(grid.dx)], SliceThickness=_ds(step),
        RescaleIntercept="0", RescaleSlope=_ds(slope), RescaleType="BQML", Units="BQML",
        SeriesType=["WHOLE BODY", "IMAGE"], CountsSource="EMISSION", DecayCorrection="START",
        CorrectedImage=["DECY", "ATTN", "SCAT", "DTIM", "RAN", "NORM"], RandomsCorrectionMethod="DLYD",
        AttenuationCorrectionMethod="CT-based", ScatterCorrectionMethod="model-based",
        ReconstructionMethod="OSEM 3i21s", NumberOfSlices=len(zs), DecayFactor="1",
        FrameReferenceTime="0", ActualFrameDuration=180000, CollimatorType="NONE",
        WindowCenter=_ds(2.5 * bq_per_suv), WindowWidth=_ds(5 * bq_per_suv),
        RadiopharmaceuticalInformationSequence=[_fdg(spec)])
    for ds in _slices(spec, study, series, stored, (grid.xs[0], grid.ys[0]), zs, {"bits_stored": 16}):
        ds.ImageIndex = ds.InstanceNumber
        yield ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _fdg(spec: StudySpec) -> Dataset:
    item = Dataset()
    item.Radiopharmaceutical, item.RadiopharmaceuticalRoute = "Fluorodeoxyglucose", "Intravenous route"
    item.RadiopharmaceuticalStartTime = INJECTION_TIME + ".00"
    item.RadiopharmaceuticalStartDateTime = spec.study_date + INJECTION_TIME + ".00"
    item.RadionuclideTotalDose = _ds(FDG_DOSE_BQ)
    item.RadionuclideHalfLife = _ds(FDG_HALF_LIFE_S)
    item.RadionuclidePositronFraction = "0.9673"
    item.RadionuclideCodeSequence = [_code("77004003", "SCT", "^18^Fluorine")]
    item.RadiopharmaceuticalCodeSequence = [_code("35321007", "SCT", "Fluorodeoxyglucose F^18^")]
    return item


def mr_series(spec: StudySpec, n_slices: int = 24, rows: int = 256,
              cols: int = 256) -> Iterator[pydicom.Dataset]:
    """Axial T2 TSE brain, 5 mm slices every 6 mm, vertex first.

    A separate MR study of the same patient, unless ``spec.study_uid`` is set, in
    which case the series joins that study.
    """
    study = _study(spec, "MR", "头颅MR平扫")
    fov, spacing = 230.0, 6.0
    grid = phantom.Grid.centred(rows, cols, fov, fov)
    zs = ((n_slices - 1) / 2 - np.arange(n_slices)) * spacing
    series = _series(
        spec, study, "MR", (n_slices, rows, cols), 1, SOPClassUID=MRImageStorage, Modality="MR",
        ImageType=["ORIGINAL", "PRIMARY", "M", "ND"], SeriesDescription="t2_tse_tra_5mm",
        ProtocolName="t2_tse_tra_5mm", BodyPartExamined="HEAD", PatientPosition="HFS",
        FrameOfReferenceUID=_uid(spec, study.uid, "MR frame of reference"),
        PositionReferenceIndicator="",
        SeriesTime=study.time, AcquisitionTime=study.time, ContentTime=study.time,
        ImageOrientationPatient=list(AXIAL), PixelSpacing=[_ds(grid.dy), _ds(grid.dx)],
        SliceThickness="5", SpacingBetweenSlices=_ds(spacing), ScanningSequence="SE",
        SequenceVariant=["SK", "SP"], ScanOptions="", MRAcquisitionType="2D", RepetitionTime="5000",
        EchoTime="95", EchoTrainLength=15, NumberOfAverages="1", ImagingFrequency="123.2",
        ImagedNucleus="1H", EchoNumbers="1", MagneticFieldStrength="3", FlipAngle="150",
        PixelBandwidth="220", PercentSampling="100", PercentPhaseFieldOfView="100",
        AcquisitionMatrix=[0, cols, rows * 9 // 10, 0], InPlanePhaseEncodingDirection="ROW",
        ReceiveCoilName="Head_32", TransmitCoilName="Body", WindowCenter="700", WindowWidth="1400")
    images = phantom.brain_t2_slices(spec.seed, n_slices, rows, cols, fov)
    yield from _slices(spec, study, series, images, (grid.xs[0], grid.ys[0]), zs, {"bits_stored": 12})


def xa_cine(spec: StudySpec, frames: int = 30, rows: int = 512, cols: int = 512) -> pydicom.Dataset:
    """One multi-frame XA run (15 fps) of a left coronary injection.

    The first :func:`app.demo.phantom.xa_mask_frames` frames carry no contrast
    (listed in ``MaskSubtractionSequence``); then the bolus fills the tree and
    washes out.  A separate study unless ``spec.study_uid`` is set.
    """
    study = _study(spec, "XA", "冠状动脉造影")
    n_mask, pitch = phantom.xa_mask_frames(frames), 0.3 * 512 / max(rows, cols)
    mask = Dataset()
    mask.MaskOperation, mask.MaskFrameNumbers = "AVG_SUB", list(range(1, n_mask + 1))
    mask.ContrastFrameAveraging, mask.RecommendedViewingMode = 1, "SUB"
    series = _series(
        spec, study, "XA", (frames, rows, cols), 1, SOPClassUID=XRayAngiographicImageStorage,
        Modality="XA", ImageType=["ORIGINAL", "PRIMARY", "SINGLE PLANE"],
        SeriesDescription="LCA RAO30 CRA20",
        BodyPartExamined="HEART", SeriesTime=study.time, AcquisitionTime=study.time,
        ContentTime=study.time, PatientOrientation="", NumberOfFrames=frames,
        FrameIncrementPointer=Tag(0x0018, 0x1063), FrameTime=_ds(1000 / 15), CineRate=15,
        RecommendedDisplayFrameRate=15, ActualFrameDuration=66, FrameDelay="0", StartTrim=1,
        StopTrim=frames, PreferredPlaybackSequencing=0, PixelIntensityRelationship="LIN",
        MaskSubtractionSequence=[mask], KVP="80", XRayTubeCurrent=800, ExposureTime=6,
        RadiationSetting="GR", PositionerMotion="STATIC", PositionerPrimaryAngle="-30",
        PositionerSecondaryAngle="20", DistanceSourceToDetector="1100", DistanceSourceToPatient="750",
        ImagerPixelSpacing=[_ds(pitch), _ds(pitch)], FieldOfViewShape="RECTANGLE",
        ContrastBolusAgent="Iohexol 350", ContrastBolusRoute="Intracoronary",
        WindowCenter="128", WindowWidth="256", InstanceNumber=1)
    ds = _instance(spec, study, series, _uid(spec, series["SeriesInstanceUID"], 1))
    _pixels(ds, phantom.xa_frames(spec.seed, frames, rows, cols), 8)
    return ds


def marker_volume(n_slices: int = 64, rows: int = 128, cols: int = 128,
                  spacing: tuple[float, float, float] = (1.0, 1.0, 2.0),
                  markers: Sequence[Sequence[float]] = DEFAULT_MARKERS, *, radius: float = 0.0,
                  spec: StudySpec = PHANTOM_SPEC) -> Iterator[pydicom.Dataset]:
    """CT of a noiseless water block with 1000 HU markers at patient points ``(x, y, z)`` mm.

    ``spacing`` is ``(x between columns, y between rows, z between slices)``.  Voxel
    (slice k, row j, column i) is at ``x = (i - cols//2) * sx``, ``y = (j - rows//2) * sy``,
    ``z = (n_slices//2 - k) * sz``: the origin is the centre of voxel
    ``(n_slices//2, rows//2, cols//2)``, so markers on multiples of the spacing hit
    voxel centres exactly, and ``InstanceNumber`` k+1 is the k-th slice from the
    head (see :func:`app.demo.phantom.marker_voxel`).  ``radius`` 0 marks the
    single nearest voxel, otherwise a sphere of that radius (mm).
    """
    sx, sy, sz = spacing
    study = _study(spec)
    args = (n_slices, rows, cols, tuple(spacing), tuple(map(tuple, markers)), radius)
    grid = phantom.Grid((np.arange(cols) - cols // 2) * sx, (np.arange(rows) - rows // 2) * sy, sx, sy)
    series = _ct_series(spec, study, "markers", args, grid, sz, BodyPartExamined="PHANTOM",
                        FrameOfReferenceUID=_uid(spec, study.uid, "markers", *args),
                        SeriesDescription="Geometry marker phantom", SeriesTime=study.time)
    vol = phantom.marker_block((n_slices, rows, cols), spacing, markers, radius)
    zs = (n_slices // 2 - np.arange(n_slices)) * sz
    yield from _slices(spec, study, series, (vol + 1024).astype(np.uint16), (grid.xs[0], grid.ys[0]),
                       zs, {"bits_stored": 12})


def to_bytes(ds: pydicom.Dataset) -> bytes:
    """DICOM Part 10 bytes (preamble, file meta, dataset) of ``ds``.

    A dataset without a transfer syntax in its file meta is written as explicit VR
    little endian; the caller's dataset is not modified.
    """
    if "TransferSyntaxUID" not in getattr(ds, "file_meta", {}):
        ds = copy.copy(ds)
        ds.file_meta = _file_meta(ds.SOPClassUID, ds.SOPInstanceUID)
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def write_datasets(datasets: Iterable[pydicom.Dataset], folder: Path) -> list[Path]:
    """Write each dataset to ``folder/<SOPInstanceUID>.dcm`` (Part 10); return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ds in datasets:
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        tmp = path.with_suffix(".dcm.part")  # readers never see a half-written file
        tmp.write_bytes(to_bytes(ds))
        os.replace(tmp, path)
        paths.append(path)
    return paths


# Names pydicom ships malformed on purpose that still parse silently.
_BROKEN_BY_DESIGN = ("truncated", "mismatch", "bad", "no_meta", "missing")


def sample_files() -> list[Path]:
    """Real sample DICOM files shipped inside the installed pydicom, for ingest tests.

    Selection rule, applied to every file under ``pydicom/data/test_files``
    (what :func:`pydicom.data.get_testdata_files` finds locally; its optional
    downloads from GitHub are skipped so the list needs no network and never
    changes between runs):

    1. the name does not mark it as broken by design (``truncated``, ``mismatch``,
       ``bad``, ``no_meta``, ``missing``);
    2. it parses as Part 10 without ``force`` (preamble, ``DICM``, file meta with a
       ``TransferSyntaxUID``) and is not a DICOMDIR;
    3. it has SOPInstanceUID, StudyInstanceUID and SeriesInstanceUID, which a PACS
       needs to file it (this drops the JPEG-LS near-lossless fragments; JPEG-LS
       stays covered by ``MR_small_jpeg_ls_lossless.dcm``);
    4. an image SOP class carries pixel data (drops the DICOMDIR test stubs), and
       pixel data decodes with the installed plugins;
    5. reading and decoding raise no warning: pydicom warns when it works round a
       defect (excess padding, a wrong VR encoding), which marks a test of that defect.

    The result (sorted) spans explicit/implicit little endian, big endian, deflate,
    RLE, JPEG baseline and lossless, JPEG-LS, JPEG 2000, RGB/YBR colour, palette
    colour and multi-frame files.
    """
    return list(_sample_files())


@functools.cache
def _sample_files() -> tuple[Path, ...]:
    root = Path(pydicom.data.DATA_ROOT) / "test_files"
    found = (p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix != ".py")
    return tuple(p for p in found if not any(b in p.name.lower() for b in _BROKEN_BY_DESIGN)
                 and _usable_sample(p))


def _usable_sample(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            ds = pydicom.dcmread(path)
            if "TransferSyntaxUID" not in ds.file_meta:
                return False
            if ds.get("SOPClassUID") == MediaStorageDirectoryStorage:
                return False
            if not all(k in ds for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")):
                return False
            if "PixelData" in ds:
                ds.pixel_array  # noqa: B018 - decoding is the check
            return "PixelData" in ds or "Image Storage" not in ds.SOPClassUID.name
        except Exception:  # noqa: BLE001 - any failure means "not a usable sample"
            return False
