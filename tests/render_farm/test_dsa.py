"""DSA of a synthetic angiography run with a known vessel."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset

from render_farm.cache import ByteLRUCache
from render_farm.dsa import DSAState, dsa_frame, shift_image, split_query, subtract
from tests.render_farm import dicom_factory

ROWS, COLUMNS, FRAMES = 48, 64, 8
CONTRAST_FROM = 3          # frames 0..2 are masks, 3.. carry contrast
VESSEL_ROWS = slice(20, 24)
VESSEL_DROP = 200.0        # the vessel lowers the live frame by this much (linear case)


def _anatomy() -> np.ndarray:
    """Smooth background: bone-like bump on a gradient (values 1000..~3000)."""
    y, x = np.mgrid[0:ROWS, 0:COLUMNS].astype(np.float64)
    return 1000.0 + 10.0 * x + 1500.0 * np.exp(-((x - 40) ** 2 + (y - 30) ** 2) / 200.0)


def _vessel() -> np.ndarray:
    vessel = np.zeros((ROWS, COLUMNS))
    vessel[VESSEL_ROWS, 8:56] = 1.0
    return vessel


def _run(frames: np.ndarray, tmp_path, **attributes) -> str:
    ds = dicom_factory.image(np.round(frames).astype(np.uint16), frames=frames.shape[0],
                             Modality="XA", **attributes)
    return str(dicom_factory.save(ds, tmp_path / "xa.dcm"))


def _linear_run() -> np.ndarray:
    stack = np.repeat(_anatomy()[None], FRAMES, axis=0)
    stack[CONTRAST_FROM:] -= VESSEL_DROP * _vessel()
    return stack


def _png(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


def test_subtraction_leaves_only_the_vessel(tmp_path):
    path = _run(_linear_run(), tmp_path)
    body, media_type = dsa_frame(ByteLRUCache(2**24), path, "xa-1", "fmt=png&wc=0&ww=400", 5)
    assert media_type == "image/png"
    shown = _png(body)
    assert shown.shape == (ROWS, COLUMNS)
    vessel = _vessel().astype(bool)
    # −200 with centre 0, width 400 is black; the cancelled background is mid grey.
    assert shown[vessel].max() <= 1
    assert np.all(np.abs(shown[~vessel].astype(int) - 128) <= 1)


def test_mask_frame_with_contrast_cancels_the_vessel(tmp_path):
    path = _run(_linear_run(), tmp_path)
    body, _ = dsa_frame(ByteLRUCache(2**24), path, "xa-2", "fmt=png&wc=0&ww=400&mask=4", 6)
    assert np.all(np.abs(_png(body).astype(int) - 128) <= 1)


def test_mask_frame_from_the_mask_subtraction_sequence(tmp_path):
    stack = _linear_run()
    stack[0] += 300.0        # a bad first frame (e.g. before the detector settled)
    item = Dataset()
    item.MaskOperation = "AVG_SUB"
    item.MaskFrameNumbers = [2, 3]   # 1-based: frames 1 and 2
    path = _run(stack, tmp_path, MaskSubtractionSequence=dicom_factory.sequence(item))
    body, _ = dsa_frame(ByteLRUCache(2**24), path, "xa-3", "fmt=png&wc=0&ww=400", 5)
    shown = _png(body)
    assert np.all(np.abs(shown[~_vessel().astype(bool)].astype(int) - 128) <= 1)


def test_logarithmic_subtraction_is_independent_of_the_background(tmp_path):
    # Beer–Lambert: the vessel multiplies the intensity by e^−0.2 wherever it lies.
    anatomy = _anatomy()
    live = anatomy * np.exp(-0.2 * _vessel())
    difference = subtract(live, anatomy, logarithmic=True)
    vessel = _vessel().astype(bool)
    # 1000 · (ln(live + 1) − ln(mask + 1)) ≈ −200, within the +1's effect (< 0.3).
    assert np.all(np.abs(difference[vessel] + 200.0) < 0.3)
    assert np.all(difference[~vessel] == 0)
    linear = subtract(live, anatomy)
    assert np.ptp(linear[vessel]) > 100   # linear subtraction varies with the background


def test_pixel_shift_corrects_motion():
    anatomy = _anatomy()
    moved = shift_image(anatomy, 1.5, -0.5)    # the patient moved after the mask
    unshifted = subtract(moved, anatomy)
    corrected = subtract(moved, anatomy, shift=(1.5, -0.5))
    inner = (slice(2, -2), slice(3, -3))
    assert np.abs(unshifted[inner]).max() > 10
    assert np.abs(corrected[inner]).max() < 1e-3


def test_shift_image_moves_content_right_and_down():
    image = np.zeros((5, 5))
    image[1, 1] = 100.0
    moved = shift_image(image, 2.0, 1.0)
    assert moved[2, 3] == 100.0 and moved.sum() == 100.0
    half = shift_image(image, 0.5, 0.0)
    assert half[1, 1] == 50.0 and half[1, 2] == 50.0


def test_shift_in_the_query_reaches_the_render(tmp_path):
    stack = _linear_run()
    stack[CONTRAST_FROM:] = shift_image(_anatomy(), 2.0, 0.0) - VESSEL_DROP * _vessel()
    path = _run(stack, tmp_path)
    cache = ByteLRUCache(2**24)
    raw, _ = dsa_frame(cache, path, "xa-4", "fmt=png&wc=0&ww=400", 5)
    fixed, _ = dsa_frame(cache, path, "xa-4", "fmt=png&wc=0&ww=400&sx=2", 5)
    background = ~_vessel().astype(bool)
    background[:, :3] = False
    assert np.abs(_png(raw)[background].astype(int) - 128).max() > 5
    assert np.abs(_png(fixed)[background].astype(int) - 128).max() <= 1


def test_query_parsing_and_errors(tmp_path):
    dsa, view = split_query("mask=2&log=1&sx=0.5&wc=0&ww=100")
    assert dsa == DSAState(2, True, 0.5, None)
    assert dsa.to_query() == "log=1&mask=2&sx=0.5"
    assert view.window_width == 100
    for query, message in (("mask=-1", "mask: must be a frame index"),
                           ("mask=x", "mask: expected a frame index"),
                           ("sx=abc", "sx: expected a number"),
                           ("sy=1e9", "sy: mask shift"),
                           ("log=maybe", "log: expected 1 or 0"),
                           ("zz=1", "unknown viewport parameter")):
        with pytest.raises(ValueError, match=message):
            split_query(query)
    path = _run(_linear_run(), tmp_path)
    with pytest.raises(IndexError, match="mask frame 9 out of range"):
        dsa_frame(ByteLRUCache(2**24), path, "xa-5", "mask=9", 3)


def test_canonical_query_merges_both_parts_sorted():
    from render_farm.dsa import canonical_query

    assert canonical_query("ww=400&sx=1.0&wc=0&mask=2&log=0") == "mask=2&sx=1&wc=0&ww=400"
    assert canonical_query("mask=2&wc=0&ww=400&sx=1") == canonical_query("sx=1&ww=400&wc=0&mask=2")
    assert canonical_query("") == ""


def test_default_window_is_shared_by_the_frames_of_a_run(tmp_path):
    # Contrast arriving: the vessel takes 50 in frame 3 and 200 in frame 7.
    stack = np.repeat(_anatomy()[None], FRAMES, axis=0)
    stack[3] -= 50.0 * _vessel()
    stack[7] -= 200.0 * _vessel()
    path = _run(stack, tmp_path)
    cache = ByteLRUCache(2**24)
    early = _png(dsa_frame(cache, path, "xa-6", "fmt=png", 3)[0])
    full = _png(dsa_frame(cache, path, "xa-6", "fmt=png", 7)[0])
    vessel = _vessel().astype(bool)
    # Same window: the background is mid grey in both and the vessel darkens as it fills.
    assert np.all(np.abs(early[~vessel].astype(int) - 128) <= 1)
    assert np.all(np.abs(full[~vessel].astype(int) - 128) <= 1)
    assert full[vessel].mean() < early[vessel].mean() - 30
    assert early[vessel].mean() < 128 - 15
