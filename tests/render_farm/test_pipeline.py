"""LUT functions against values worked out by hand from the standard's formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest

from render_farm.pipeline import (
    GrayscaleParams, Lut, Photometric, PresentationShape, WindowFunction, apply_grayscale,
    apply_palette, default_window, grayscale, grayscale_lut, is_inverse, lut_lookup,
    modality_lut, modality_range, palette_lut, presentation, rgb_to_uint8, to_uint8, voi_lut,
    window, ybr_to_rgb,
)

LINEAR, EXACT, SIGMOID = WindowFunction.LINEAR, WindowFunction.LINEAR_EXACT, WindowFunction.SIGMOID


def test_rescale_slope_intercept():
    # PS3.3 C.11.1: output = slope * stored + intercept
    out = modality_lut(np.array([0, 1000, -24], np.int16), slope=2.0, intercept=-1024.0)
    assert out.tolist() == [-1024.0, 976.0, -1072.0]
    assert out.dtype == np.float64


def test_modality_lut_sequence_clamps_and_signed_first_value():
    lut = Lut.from_values(-2, 16, np.array([10, 20, 30]))
    # -5 is below the first mapped value (-2) → first entry; 7 past the end → last.
    assert modality_lut(np.array([-5, -2, -1, 0, 7]), lut=lut).tolist() == [10, 10, 20, 30, 30]


@pytest.mark.parametrize(("x", "expected"), [
    (-161, 0.0), (-160, 0.0),                     # at/below c - 0.5 - (w-1)/2 = -160
    (-159, (-198.5 / 399 + 0.5) * 255),           # first ramp value ≈ 0.639
    (0, (-39.5 / 399 + 0.5) * 255),               # ≈ 102.26
    (39.5, 127.5),                                # c - 0.5 is the midpoint
    (239, 255.0),                                 # c - 0.5 + (w-1)/2 = 239 is on the ramp, at 255
    (239.5, 255.0), (240, 255.0),                 # above the right edge
])
def test_linear_window_c40_w400(x, expected):
    # PS3.3 C.11.2.1.2.1
    assert window(np.array([x]), 40, 400, LINEAR)[0] == pytest.approx(expected)


@pytest.mark.parametrize(("x", "expected"), [
    (-160, 0.0),                                  # x <= c - w/2
    (-159, (-199 / 400 + 0.5) * 255),             # 0.6375
    (0, 102.0), (40, 127.5),
    (239.5, (199.5 / 400 + 0.5) * 255),           # 254.68: LINEAR already gives 255 here
    (240, 255.0), (241, 255.0),
])
def test_linear_exact_window_c40_w400(x, expected):
    # PS3.3 C.11.2.1.3.2
    assert window(np.array([x]), 40, 400, EXACT)[0] == pytest.approx(expected)


def test_linear_and_linear_exact_differ_at_the_edges():
    x = np.array([239.5])
    assert window(x, 40, 400, LINEAR)[0] == 255.0
    assert window(x, 40, 400, EXACT)[0] < 255.0


def test_linear_width_one_is_a_threshold_at_c_minus_half():
    out = window(np.array([99, 99.5, 100, 101]), 100, 1, LINEAR)
    assert out.tolist() == [0.0, 0.0, 255.0, 255.0]


def test_linear_width_below_one_is_taken_as_one():
    assert window(np.array([99, 100]), 100, 0.25, LINEAR).tolist() == [0.0, 255.0]


def test_linear_exact_allows_fractional_widths():
    # PET SUV windows are often < 1 wide; only LINEAR requires w >= 1.
    out = window(np.array([0.0, 0.25, 0.5]), 0.25, 0.5, EXACT)
    assert out.tolist() == pytest.approx([0.0, 127.5, 255.0])


@pytest.mark.parametrize(("x", "expected"), [
    (40, 127.5),                                  # midpoint: 255 / (1 + e^0)
    (140, 255 / (1 + math.exp(-1))),              # 186.42
    (-60, 255 / (1 + math.exp(1))),               # 68.58
])
def test_sigmoid_window(x, expected):
    # PS3.3 C.11.2.1.3.1: y = (ymax - ymin) / (1 + exp(-4 (x - c) / w)) + ymin
    assert window(np.array([x]), 40, 400, SIGMOID)[0] == pytest.approx(expected)


def test_window_rejects_non_positive_width():
    with pytest.raises(ValueError, match="width"):
        window(np.array([0]), 0, 0)


def test_voi_lut_8_bit_with_first_mapped_value():
    lut = Lut.from_values(10, 8, np.array([0, 100, 200, 255]))
    assert voi_lut(np.array([5, 10, 11, 12, 13, 100]), lut).tolist() == [0, 0, 100, 200, 255, 255]


def test_voi_lut_16_bit_scaled_to_display_range():
    lut = Lut.from_values(0, 16, np.array([0, 32768, 65535]))
    out = voi_lut(np.array([0, 1, 2]), lut)
    assert out.tolist() == pytest.approx([0.0, 32768 * 255 / 65535, 255.0])


def test_lut_lookup_truncates_fractional_modality_values():
    lut = Lut.from_values(0, 8, np.array([1, 2, 3]))
    assert lut_lookup(np.array([0.9, 1.2, -0.1]), lut).tolist() == [1, 2, 1]


def test_lut_equality_ignores_explanation_and_is_hashable():
    a = Lut.from_values(0, 8, np.array([1, 2]), "A")
    b = Lut.from_values(0, 8, np.array([1, 2]), "B")
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize(("photometric", "shape", "invert", "expected"), [
    (Photometric.MONOCHROME2, None, False, False),
    (Photometric.MONOCHROME1, None, False, True),          # implicit inversion of MONOCHROME1
    (Photometric.MONOCHROME1, PresentationShape.INVERSE, False, True),   # DX: once, not twice
    (Photometric.MONOCHROME1, PresentationShape.IDENTITY, False, False),
    (Photometric.MONOCHROME2, PresentationShape.INVERSE, False, True),
    (Photometric.MONOCHROME1, None, True, False),          # user invert flips it back
    (Photometric.MONOCHROME2, None, True, True),
])
def test_inversion_rules(photometric, shape, invert, expected):
    assert is_inverse(photometric, shape, invert) is expected


def test_monochrome1_renders_inverted():
    inverse = is_inverse(Photometric.MONOCHROME1, None)
    params = GrayscaleParams(center=128, width=256, inverse=inverse)
    out = grayscale(np.array([0, 255], np.uint8), params)
    assert out.tolist() == [255, 0]


def test_presentation_inverse():
    assert presentation(np.array([0.0, 100.0, 255.0]), True).tolist() == [255.0, 155.0, 0.0]


def test_to_uint8_rounds_and_clips():
    assert to_uint8(np.array([-3.0, 0.49, 0.5, 254.5, 300.0])).tolist() == [0, 0, 1, 255, 255]


def test_default_window_maps_min_to_black_and_max_to_white():
    center, width = default_window(-1000, 3000)
    assert (center, width) == (1000.5, 4001.0)
    out = to_uint8(window(np.array([-1000, 1000, 3000]), center, width))
    assert out.tolist() == [0, 128, 255]


def test_signed_16_bit_lut_matches_direct_computation():
    stored = np.array([-32768, -2000, -1024, -1, 0, 1, 1000, 32767], np.int16)
    params = GrayscaleParams(slope=1.0, intercept=-1024.0, center=40, width=400)
    via_lut = apply_grayscale(stored, params)
    assert via_lut.tolist() == grayscale(stored, params).tolist()
    # stored 1000 → HU -24 → ((-24 - 39.5) / 399 + 0.5) * 255 = 86.9 → 87
    assert via_lut[6] == 87
    assert via_lut[0] == 0 and via_lut[-1] == 255


def test_lut_is_cached_per_parameters_and_read_only():
    params = GrayscaleParams(center=0, width=100)
    lut = grayscale_lut(params, np.dtype(np.int16))
    assert lut is grayscale_lut(GrayscaleParams(center=0, width=100), np.dtype(np.int16))
    assert lut.shape == (65536,) and not lut.flags.writeable
    # Index by the unsigned bit pattern: -1 lives at 0xFFFF.
    assert lut[0xFFFF] == grayscale(np.array([-1], np.int16), params)[0]


def test_32_bit_data_is_computed_without_a_lut():
    stored = np.array([[0, 2**31, 2**32 - 1]], np.uint32)
    center, width = default_window(0, 2**32 - 1)
    params = GrayscaleParams(center=center, width=width)
    assert apply_grayscale(stored, params).tolist() == [[0, 128, 255]]


def test_grayscale_params_need_a_voi_stage():
    with pytest.raises(ValueError):
        GrayscaleParams(center=None, width=None)


def test_modality_range_for_negative_slope_and_lut():
    assert modality_range(0, 100, slope=-2, intercept=10) == (-190.0, 10.0)
    lut = Lut.from_values(0, 8, np.array([5, 50, 1, 7]))
    assert modality_range(0, 3, lut=lut) == (1.0, 50.0)


def test_palette_16_bit_entries_scaled_to_8_bits():
    red = Lut.from_values(0, 16, np.array([0, 65535, 32768]))
    green = Lut.from_values(0, 16, np.array([65535, 0, 257]))
    blue = Lut.from_values(0, 16, np.array([0, 0, 0]))
    table = palette_lut(red, green, blue, np.dtype(np.uint16))
    rgb = apply_palette(np.array([[0, 1, 2, 9]], np.uint16), table)
    # 32768 * 255 / 65535 = 127.5 → 128; 257 → 1; index 9 clamps to the last entry.
    assert rgb.tolist() == [[[0, 255, 0], [255, 0, 0], [128, 1, 0], [128, 1, 0]]]


def test_palette_8_bit_with_first_mapped_value():
    luts = [Lut.from_values(20, 8, np.array([10, 20, 30])) for _ in range(3)]
    table = palette_lut(*luts, np.dtype(np.uint8))
    red = apply_palette(np.array([[0, 20, 21, 255]], np.uint8), table)[0, :, 0]
    assert red.tolist() == [10, 10, 20, 30]


def test_ybr_full_to_rgb_and_rgb_passthrough():
    ybr = np.array([[[128, 128, 128], [255, 128, 128], [76, 85, 255]]], np.uint8)
    rgb = ybr_to_rgb(ybr, Photometric.YBR_FULL)
    # Grey stays grey; Y=255 is white; (76, 85, 255) is pure red (PS3.3 C.7.6.3.1.2).
    assert rgb[0, 0].tolist() == [128, 128, 128]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    assert np.abs(rgb[0, 2].astype(int) - [255, 0, 0]).max() <= 2
    assert ybr_to_rgb(ybr, Photometric.RGB) is ybr


def test_rgb_depth_reduction():
    assert rgb_to_uint8(np.array([0, 256, 65535], np.uint16), 16).tolist() == [0, 1, 255]
    assert rgb_to_uint8(np.array([2**32 - 1], np.uint32), 32).tolist() == [255]
    assert rgb_to_uint8(np.array([0, 15], np.uint8), 4).tolist() == [0, 255]


def test_window_function_and_shape_parsing():
    assert WindowFunction.from_dicom("sigmoid") is SIGMOID
    assert WindowFunction.from_dicom(None) is LINEAR
    assert WindowFunction.from_dicom("LOG") is LINEAR
    assert PresentationShape.from_dicom("INVERSE") is PresentationShape.INVERSE
    assert PresentationShape.from_dicom("LIN OD") is None
