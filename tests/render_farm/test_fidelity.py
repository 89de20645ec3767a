"""Render fidelity against dcmtk's dcmj2pnm, the reference DICOM renderer.

Every pydicom sample file that is a Part 10 file with pixel data is rendered
losslessly (PNG, native size, frame 0, overlays off) with the window dcmtk is
told to use, and must match ``dcmj2pnm --write-png`` within ±1 grey level
per pixel (per channel for colour):

* a window in the file → ``+Wi 1`` (ours: the file's first window);
* no window but a VOI LUT → ``+Wl 1`` (ours: the first VOI LUT);
* neither → ``+Wm`` min-max (ours: the default min-max window);
* colour → no VOI options.

±1 is the rounding freedom the standard leaves: dcmtk truncates window
output to an integer level, we round to the nearest. Files dcmtk cannot read
(this build has no JPEG 2000 / JPEG-LS codecs) or pydicom cannot decode are
skipped with the reason. Synthetic files cover what the samples lack: VOI
and Modality LUT sequences, MONOCHROME1, Presentation LUT Shape, SIGMOID,
16-bit palettes, user windows.

The sample list is what ``pydicom.data.get_testdata_files("*")`` returns
offline: pydicom's bundled ``test_files`` plus any pydicom-data files already
downloaded. The function itself is not called because it first tries to
download the rest, which costs ~15 s of timeouts on a machine without network.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from PIL import Image
from pydicom.data.download import get_data_dir
from pydicom.misc import is_dicom

from render_farm import (
    DisplayAttributes, ImageFormat, UnsupportedImage, ViewState, WindowFunction, open_source,
    render,
)
from tests.render_farm import dicom_factory as factory

DCMJ2PNM = shutil.which("dcmj2pnm")
DCMDJPEG = shutil.which("dcmdjpeg")
pytestmark = [
    pytest.mark.skipif(DCMJ2PNM is None, reason="dcmtk's dcmj2pnm is not installed"),
    # pydicom warns about the sample files' deliberate defects (padding, bad VRs).
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
LOSSLESS = ViewState(format=ImageFormat.PNG)


def _has_pixel_data(path: Path) -> bool:
    if not is_dicom(path):          # Part 10 files only: preamble + "DICM"
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return "PixelData" in pydicom.dcmread(path, defer_size=256)
        except Exception:
            return False


def sample_files() -> list[Path]:
    roots = [Path(pydicom.data.DATA_ROOT) / "test_files", get_data_dir()]
    found = {p.name: p for root in roots if root.is_dir() for p in root.iterdir() if p.is_file()}
    return [found[name] for name in sorted(found) if _has_pixel_data(found[name])]


# Investigated differences; each is checked another way below.
KNOWN_DIFFERENCES = {
    "rtdose_expb.dcm": (
        "dcmtk reads 32-bit Explicit VR Big Endian Pixel Data (OW) as 16-bit words, so each "
        "sample's two halves come out swapped (0x00130EE8 as 0x0EE80013) and its min-max "
        "window is nonsense; pydicom decodes exactly the values of the little endian twin "
        "rtdose.dcm (test_big_endian_32_bit_equals_its_little_endian_twin)"),
    "JPGExtended.dcm": (
        "12-bit lossy JPEG: only pylibjpeg-libjpeg decodes it here and its inverse DCT differs "
        "from dcmtk's IJG by ±1 in 3,612 of 262,144 samples, which also moves the min-max "
        "window, giving ±2 levels; on dcmtk's own decoded samples our pipeline is within ±1 "
        "(test_12_bit_lossy_jpeg_pipeline_on_dcmtk_decoded_samples)"),
}
KNOWN_DIFFERENCES["rtdose_expb_1frame.dcm"] = KNOWN_DIFFERENCES["rtdose_expb.dcm"]


def _params() -> list:
    params = []
    for path in sample_files():
        marks = []
        if path.name in KNOWN_DIFFERENCES:
            marks = [pytest.mark.xfail(strict=True, reason=KNOWN_DIFFERENCES[path.name])]
        params.append(pytest.param(path, id=path.name, marks=marks))
    return params


def voi_options(attrs: DisplayAttributes) -> list[str]:
    """The dcmj2pnm VOI options that select the window our default render uses."""
    if not attrs.photometric.is_monochrome:
        return []
    if attrs.windows:
        return ["+Wi", "1"]
    if attrs.voi_luts:
        return ["+Wl", "1"]
    return ["+Wm"]


def dcmj2pnm(path: Path, options: list[str], out_dir: Path) -> np.ndarray:
    """Run dcmj2pnm to PNG and return its pixels; skip when dcmtk cannot read the file."""
    out = out_dir / (path.name + ".dcmtk.png")
    result = subprocess.run([DCMJ2PNM, "--write-png", *options, str(path), str(out)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0 or not out.exists():
        errors = [line for line in result.stderr.splitlines() if line.startswith(("E:", "F:"))]
        syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.get("TransferSyntaxUID")
        name = syntax.name if syntax is not None else "no transfer syntax"
        pytest.skip(f"dcmj2pnm cannot decode {path.name} ({name}): {' / '.join(errors)[:200]}")
    return np.asarray(Image.open(out))


def ours(path: Path | bytes, state: ViewState = LOSSLESS) -> tuple[np.ndarray, DisplayAttributes]:
    """Render through the public API and decode the PNG; skip what pydicom cannot read."""
    try:
        source = open_source(path)
        body, media_type = render(source, state)
    except UnsupportedImage as exc:
        name = path.name if isinstance(path, Path) else "synthetic"
        pytest.skip(f"cannot render {name} (pydicom cannot read or decode it): "
                    f"{str(exc).splitlines()[0][:200]}")
    assert media_type == "image/png"
    return np.asarray(Image.open(io.BytesIO(body))), source.attributes


def assert_within_one(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape
    difference = np.abs(actual.astype(int) - expected.astype(int))
    worst = np.unravel_index(np.argmax(difference), difference.shape)
    assert difference.max() <= 1, (
        f"{(difference > 1).sum()} pixels differ by more than 1 grey level; worst "
        f"{difference.max()} at {worst}: ours {actual[worst]}, dcmtk {expected[worst]}")


@pytest.mark.parametrize("path", _params())
def test_sample_file_matches_dcmj2pnm(path: Path, tmp_path: Path):
    rendered, attrs = ours(path)
    reference = dcmj2pnm(path, ["-O", *voi_options(attrs)], tmp_path)
    assert_within_one(rendered, reference)


def sample(name: str) -> Path:
    path = Path(pydicom.data.DATA_ROOT) / "test_files" / name
    if not path.exists():
        pytest.skip(f"{name} is not in this pydicom")
    return path


def test_overlays_match_dcmj2pnm(tmp_path: Path):
    # dcmj2pnm shows every overlay plane by default, in "replace" mode.
    path = sample("examples_overlay.dcm")
    rendered, _ = ours(path, ViewState(format=ImageFormat.PNG, overlays=True))
    reference = dcmj2pnm(path, ["+Wi", "1"], tmp_path)
    assert (reference == 255).sum() > 250            # the overlay is really there
    assert_within_one(rendered, reference)


def test_user_window_matches_set_window(tmp_path: Path):
    path = sample("CT_small.dcm")
    rendered, _ = ours(path, ViewState(window_center=60, window_width=350, format=ImageFormat.PNG))
    assert_within_one(rendered, dcmj2pnm(path, ["-O", "+Ww", "60", "350"], tmp_path))


def test_big_endian_32_bit_equals_its_little_endian_twin():
    big, _ = ours(sample("rtdose_expb.dcm"))
    little, _ = ours(sample("rtdose.dcm"))
    assert np.array_equal(big, little)


@pytest.mark.skipif(DCMDJPEG is None, reason="dcmtk's dcmdjpeg is not installed")
def test_12_bit_lossy_jpeg_pipeline_on_dcmtk_decoded_samples(tmp_path: Path):
    path = sample("JPGExtended.dcm")
    decoded = tmp_path / "dcmtk-decoded.dcm"
    subprocess.run([DCMDJPEG, str(path), str(decoded)], check=True, capture_output=True)
    rendered, _ = ours(decoded)
    assert_within_one(rendered, dcmj2pnm(path, ["-O", "+Wm"], tmp_path))


# --- synthetic edge cases ---------------------------------------------------

RAMP = np.linspace(-1200, 2800, 64 * 64).reshape(64, 64).astype(np.int16)
U12 = (np.arange(64 * 64).reshape(64, 64) % 4096).astype(np.uint16)


def _palette_16() -> pydicom.Dataset:
    ds = factory.image((np.arange(64 * 64).reshape(64, 64) * 7 % 65536).astype(np.uint16),
                       photometric="PALETTE COLOR")
    index = np.arange(65536)
    return factory.palette(ds, 0, 16, index, 65535 - index, index * 3 % 65536)


def _palette_8_offset() -> pydicom.Dataset:
    ds = factory.image((np.arange(64 * 64).reshape(64, 64) % 256).astype(np.uint8),
                       photometric="PALETTE COLOR")
    index = np.arange(200)
    return factory.palette(ds, 20, 8, index, 255 - index, index * 3 % 256)


FILE_WINDOW, FILE_VOI_LUT, MIN_MAX = ["+Wi", "1"], ["+Wl", "1"], ["+Wm"]


def ramp(**attributes: object) -> pydicom.Dataset:
    return factory.image(RAMP, **attributes)


def u12(**attributes: object) -> pydicom.Dataset:
    return factory.image(U12, bits_stored=12, **attributes)


def one_lut(first: int, bits: int, values: np.ndarray) -> pydicom.Sequence:
    return factory.sequence(factory.lut_item(first, bits, values))


INVERTING_LUT = 4095 - np.arange(4096)
SQRT_LUT = np.sqrt(np.arange(4096) / 4095) * 65535

SYNTHETIC = {
    "signed_rescale_file_window": (lambda: ramp(
        RescaleSlope=1, RescaleIntercept=-1024, WindowCenter=40, WindowWidth=400), FILE_WINDOW),
    "fractional_rescale_minmax": (lambda: ramp(RescaleSlope=0.5, RescaleIntercept=-100), MIN_MAX),
    "monochrome1": (lambda: ramp(
        PhotometricInterpretation="MONOCHROME1", WindowCenter=500, WindowWidth=2000), FILE_WINDOW),
    "monochrome1_inverse_shape": (lambda: ramp(
        PhotometricInterpretation="MONOCHROME1", WindowCenter=500, WindowWidth=2000,
        PresentationLUTShape="INVERSE"), FILE_WINDOW),
    "monochrome1_identity_shape": (lambda: ramp(
        PhotometricInterpretation="MONOCHROME1", WindowCenter=500, WindowWidth=2000,
        PresentationLUTShape="IDENTITY"), FILE_WINDOW),
    "monochrome2_inverse_shape": (lambda: ramp(
        WindowCenter=500, WindowWidth=2000, PresentationLUTShape="INVERSE"), FILE_WINDOW),
    "sigmoid_from_file": (lambda: ramp(
        WindowCenter=500, WindowWidth=2000, VOILUTFunction="SIGMOID"), FILE_WINDOW),
    "window_width_1": (lambda: ramp(WindowCenter=500, WindowWidth=1), FILE_WINDOW),
    "window_width_2": (lambda: ramp(WindowCenter=500.5, WindowWidth=2), FILE_WINDOW),
    "voi_lut_16_bit": (lambda: u12(VOILUTSequence=one_lut(0, 16, SQRT_LUT)), FILE_VOI_LUT),
    "voi_lut_8_bit_first_mapped": (lambda: u12(
        VOILUTSequence=one_lut(1000, 8, np.arange(2048) // 8)), FILE_VOI_LUT),
    "modality_lut_window": (lambda: u12(
        WindowCenter=1000, WindowWidth=1500,
        ModalityLUTSequence=one_lut(0, 12, INVERTING_LUT)), FILE_WINDOW),
    "modality_lut_minmax": (lambda: u12(
        ModalityLUTSequence=one_lut(0, 12, INVERTING_LUT)), MIN_MAX),
    "palette_16_bit": (_palette_16, []),
    "palette_8_bit_first_mapped": (_palette_8_offset, []),
}


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_synthetic_case_matches_dcmj2pnm(name: str, tmp_path: Path):
    build, options = SYNTHETIC[name]
    path = factory.save(build(), tmp_path / f"{name}.dcm")
    rendered, _ = ours(path)
    assert_within_one(rendered, dcmj2pnm(path, ["-O", *options], tmp_path))


def test_sigmoid_chosen_in_the_viewport_matches_dcmj2pnm(tmp_path: Path):
    path = factory.save(ramp(WindowCenter=500, WindowWidth=2000), tmp_path / "sigmoid.dcm")
    state = ViewState(window_function=WindowFunction.SIGMOID, format=ImageFormat.PNG)
    rendered, _ = ours(path, state)
    assert_within_one(rendered, dcmj2pnm(path, ["-O", "+Wi", "1", "+Wfs"], tmp_path))
