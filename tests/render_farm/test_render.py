"""render(), render_array() and thumbnail() end to end."""
from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from render_farm import (
    ByteLRUCache, Colormap, FitMode, ImageFormat, ViewState, WindowFunction, colormap_lut,
    open_source, render, render_array, thumbnail,
)
from tests.render_farm import dicom_factory as factory


def sample(name: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_testdata_file(name, download=False)


@pytest.fixture(scope="module")
def ct():
    return open_source(sample("CT_small.dcm"), cache=ByteLRUCache(64 * 1024**2))


def ramp_source(**attributes):
    pixels = np.arange(-1024, 3072, 16, dtype=np.int16).reshape(16, 16)
    ds = factory.image(pixels, RescaleSlope=1, RescaleIntercept=0, **attributes)
    return open_source(factory.to_bytes(ds))


def test_render_returns_encoded_bytes_of_the_viewport(ct):
    body, media_type = render(ct, ViewState(width=300, height=200, format=ImageFormat.JPEG))
    image = Image.open(io.BytesIO(body))
    assert media_type == "image/jpeg" and image.size == (300, 200) and image.mode == "L"


def test_state_window_overrides_the_file_and_minmax_is_the_default():
    source = ramp_source()
    default = render_array(source, ViewState())
    assert default.min() == 0 and default.max() == 255      # min-max window
    windowed = render_array(source, ViewState(window_center=0, window_width=100))
    stored = source.frame(0)
    assert (windowed[stored <= -51] == 0).all() and (windowed[stored >= 49] == 255).all()


def test_file_window_and_function_are_used():
    linear = render_array(ramp_source(WindowCenter=0, WindowWidth=1000), ViewState())
    sigmoid = render_array(ramp_source(WindowCenter=0, WindowWidth=1000, VOILUTFunction="SIGMOID"),
                           ViewState())
    assert not np.array_equal(linear, sigmoid)
    forced = render_array(ramp_source(WindowCenter=0, WindowWidth=1000),
                          ViewState(window_function=WindowFunction.SIGMOID))
    assert np.array_equal(forced, sigmoid)


def test_invert_and_monochrome1():
    plain = render_array(ramp_source(WindowCenter=0, WindowWidth=1000), ViewState()).astype(int)
    inverted = render_array(ramp_source(WindowCenter=0, WindowWidth=1000), ViewState(invert=True))
    mono1 = render_array(ramp_source(WindowCenter=0, WindowWidth=1000,
                                     PhotometricInterpretation="MONOCHROME1"), ViewState())
    assert np.array_equal(inverted, 255 - plain) and np.array_equal(mono1, inverted)


def test_colormap_makes_rgb_from_the_gray_levels(ct):
    gray = render_array(ct, ViewState())
    for colormap in (Colormap.HOT, Colormap.PET, Colormap.RAINBOW):
        rgb = render_array(ct, ViewState(colormap=colormap))
        assert rgb.shape == gray.shape + (3,)
        assert np.array_equal(rgb, colormap_lut(colormap)[gray])


def test_colour_images_render_and_invert():
    source = open_source(sample("SC_rgb_rle.dcm"))
    rgb = render_array(source, ViewState())
    assert rgb.shape == (100, 100, 3)
    assert np.array_equal(render_array(source, ViewState(invert=True)), 255 - rgb)
    # Pseudo colour does not apply to colour images.
    assert np.array_equal(render_array(source, ViewState(colormap=Colormap.HOT)), rgb)


def test_palette_color_renders_rgb():
    rgb = render_array(open_source(sample("examples_palette.dcm")), ViewState())
    assert rgb.shape == (350, 800, 3) and rgb.std() > 0


def test_multi_frame_frame_selection():
    source = open_source(sample("SC_rgb_rle_2frame.dcm"))
    first = render_array(source, ViewState(frame=0))
    second = render_array(source, ViewState(frame=1))
    assert not np.array_equal(first, second)
    with pytest.raises(IndexError):
        render(source, ViewState(frame=2))


def test_filters_apply_in_display_space(ct):
    plain = render_array(ct, ViewState(width=256, height=256)).astype(float)
    smooth = render_array(ct, ViewState(width=256, height=256, smoothing=2)).astype(float)
    sharp = render_array(ct, ViewState(width=256, height=256, sharpening=2)).astype(float)
    assert smooth.shape == sharp.shape == (256, 256)
    def roughness(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image)).mean())

    assert roughness(smooth) < roughness(plain) < roughness(sharp)


@pytest.mark.parametrize("fmt", list(ImageFormat))
def test_every_format(ct, fmt):
    body, media_type = render(ct, ViewState(format=fmt, fit=FitMode.PIXEL, width=64, height=64))
    assert media_type == fmt.media_type and Image.open(io.BytesIO(body)).size == (64, 64)


def test_thumbnail_keeps_the_aspect_ratio():
    body, media_type = thumbnail(open_source(sample("examples_palette.dcm")), size=100)
    image = Image.open(io.BytesIO(body))
    assert media_type == "image/jpeg" and image.size == (100, 44)
    body, _ = thumbnail(open_source(sample("examples_ybr_color.dcm")), size=64,
                        fmt=ImageFormat.PNG)
    assert Image.open(io.BytesIO(body)).size == (64, 48)


def test_render_is_deterministic(ct):
    state = ViewState(width=200, height=150, zoom=1.3, rotation=17, colormap=Colormap.BONE)
    assert render(ct, state) == render(ct, state)
