"""ViewState URL encoding, validation, and the display ↔ image affine."""
from __future__ import annotations

import numpy as np
import pytest

from render_farm import (
    Colormap, FitMode, ImageFormat, ViewState, WindowFunction, display_to_image, viewport_geometry,
)

FULL = ViewState(
    frame=12, window_center=-600, window_width=1500.5, window_function=WindowFunction.SIGMOID,
    width=640, height=480, fit=FitMode.TRUE_SIZE, display_mm_per_px=0.25, zoom=1.75,
    pan_x=-12.5, pan_y=3, rotation=-90, hflip=True, vflip=True, invert=True,
    colormap=Colormap.PET, smoothing=2, sharpening=1, overlays=True, format=ImageFormat.WEBP,
    quality=75,
)


def test_default_state_has_an_empty_query():
    assert ViewState().to_query() == ""
    assert ViewState.from_query("") == ViewState()


def test_full_round_trip_through_query_string():
    query = FULL.to_query()
    assert ViewState.from_query(query) == FULL
    assert query == ("cm=pet&f=12&fit=true&fmt=webp&h=480&hf=1&inv=1&mm=0.25&ov=1&px=-12.5"
                     "&py=3&q=75&rot=270&sh=1&sm=2&vf=1&w=640&wc=-600&wf=sigmoid&ww=1500.5&z=1.75")


def test_query_is_canonical():
    # Key order, int-valued floats and aliases do not change the encoding.
    a = ViewState.from_query({"ww": "400.0", "wc": "40", "fmt": "jpg", "rot": "-270"})
    b = ViewState.from_query("wc=40.000&rot=90&ww=400")
    assert a == b and a.to_query() == b.to_query() == "rot=90&wc=40&ww=400"
    assert a.cache_key() == b.cache_key()


def test_mapping_values_may_be_single_item_lists():
    assert ViewState.from_query({"f": ["3"], "inv": ["true"]}) == ViewState(frame=3, invert=True)


def test_floats_round_trip_exactly():
    state = ViewState(zoom=1 / 3, pan_x=1e-7, window_center=0.1, window_width=1e5 + 0.5)
    assert ViewState.from_query(state.to_query()) == state


def test_cache_key_is_stable_and_discriminating():
    assert ViewState(frame=1).cache_key() == ViewState(frame=1).cache_key()
    assert ViewState(frame=1).cache_key() != ViewState(frame=2).cache_key()
    assert len(ViewState().cache_key()) == 32


@pytest.mark.parametrize(("query", "message"), [
    ("f=-1", r"f \(frame\): must be an integer 0\.\."),
    ("f=1.5", "f: expected an integer"),
    ("wc=40", "wc and ww"),
    ("wc=40&ww=0", r"ww \(window_width\): must be a number > 0"),
    ("wc=40&ww=abc", "ww: expected a number"),
    ("wc=nan&ww=1", "wc: expected a finite number"),
    ("w=100", "w and h"),
    ("w=0&h=10", r"w \(width\): must be an integer 1\.\.8192"),
    ("w=9000&h=10", r"w \(width\)"),
    ("z=0", r"z \(zoom\)"),
    ("z=100", r"z \(zoom\)"),
    ("q=0", r"q \(quality\): must be an integer 1\.\.100"),
    ("q=101", r"q \(quality\)"),
    ("sm=4", r"sm \(smoothing\)"),
    ("sh=-1", r"sh \(sharpening\)"),
    ("fit=true", "needs mm"),
    ("fit=stretch", "fit: expected one of fill, fit, pixel, true"),
    ("cm=viridis", "cm: expected one of"),
    ("fmt=tga", "fmt: expected one of"),
    ("hf=maybe", "hf: expected 1 or 0"),
    ("wf=log", "wf: expected one of exact, linear, sigmoid"),
    ("zoom=2", "unknown viewport parameter 'zoom'"),
    ("f=1&f=2", "f: given more than once"),
    ("px=1e9", r"px \(pan_x\)"),
    ("mm=0", r"mm \(display_mm_per_px\)"),
])
def test_invalid_queries_are_rejected_with_the_key_named(query, message):
    with pytest.raises(ValueError, match=message):
        ViewState.from_query(query)


def test_direct_construction_is_validated_too():
    with pytest.raises(ValueError, match="hf"):
        ViewState(hflip=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="quality"):
        ViewState(quality=True)  # type: ignore[arg-type]


def test_rotation_is_normalised():
    assert ViewState(rotation=-90).rotation == 270.0
    assert ViewState(rotation=720).rotation == 0.0
    assert ViewState(rotation=360 + 45.5).to_query() == "rot=45.5"


def test_quality_of_lossless_formats_is_canonical():
    assert ViewState(format=ImageFormat.PNG, quality=40) == ViewState(format=ImageFormat.PNG)
    assert ViewState.from_query("fmt=png&q=40").to_query() == "fmt=png"


def test_replace_validates():
    assert ViewState().replace(frame=4).frame == 4
    with pytest.raises(ValueError):
        ViewState().replace(zoom=-1)


# --- geometry -----------------------------------------------------------

def apply(matrix: np.ndarray, x: float, y: float) -> tuple[float, float]:
    out = matrix @ np.array([x, y, 1.0])
    return float(out[0]), float(out[1])


def test_default_state_is_the_identity():
    geometry = viewport_geometry(ViewState(), (50, 80))
    assert geometry.output_size == (80, 50)
    assert geometry.is_identity((50, 80))


def test_pixel_zoom_and_pan_place_a_known_pixel():
    # 100×100 image, 200×200 viewport, 1:1 ×2 zoom, viewport centre on image (60, 45).
    state = ViewState(width=200, height=200, fit=FitMode.PIXEL, zoom=2, pan_x=10, pan_y=-5)
    to_image, to_display = display_to_image(state, (100, 100))
    # Pixel (col 10, row 20) has centre (10.5, 20.5): 2 × (10.5 - 60, 20.5 - 45) + 100.
    assert apply(to_display, 10.5, 20.5) == pytest.approx((1.0, 51.0))
    assert apply(to_image, 1.0, 51.0) == pytest.approx((10.5, 20.5))
    # The viewport centre shows the panned-to image point.
    assert apply(to_image, 100, 100) == pytest.approx((60.0, 45.0))


def test_fit_letterboxes_and_fill_crops():
    fit = viewport_geometry(ViewState(width=200, height=200), (50, 100))
    assert fit.scale_x == pytest.approx(2.0)
    # The 100×50 image becomes 200×100, centred: rows 50..150.
    assert apply(fit.to_display, 0, 0) == pytest.approx((0.0, 50.0))
    assert apply(fit.to_display, 100, 50) == pytest.approx((200.0, 150.0))
    fill = viewport_geometry(ViewState(width=200, height=200, fit=FitMode.FILL), (50, 100))
    assert fill.scale_x == pytest.approx(4.0)


def test_fit_accounts_for_rotation():
    # A 100 wide × 50 high image turned 90° is 50 wide × 100 high.
    geometry = viewport_geometry(ViewState(width=100, height=200, rotation=90), (50, 100))
    assert geometry.scale_x == pytest.approx(2.0)


def test_rotation_is_clockwise_and_after_flips():
    # Image top-left corner → after a clockwise quarter turn it is the top-right corner.
    _, to_display = display_to_image(ViewState(rotation=90), (40, 60))
    assert apply(to_display, 0, 0) == pytest.approx((40.0, 0.0))
    # hflip then rotate: the top-left corner first moves to the top-right, then to the bottom-right.
    _, to_display = display_to_image(ViewState(rotation=90, hflip=True), (40, 60))
    assert apply(to_display, 0, 0) == pytest.approx((40.0, 60.0))
    _, to_display = display_to_image(ViewState(vflip=True), (40, 60))
    assert apply(to_display, 0, 0) == pytest.approx((0.0, 40.0))


def test_true_size_uses_pixel_spacing_and_display_pitch():
    state = ViewState(width=100, height=100, fit=FitMode.TRUE_SIZE, display_mm_per_px=0.25)
    assert viewport_geometry(state, (64, 64), (0.5, 0.5)).scale_x == pytest.approx(2.0)
    # Without spacing there is no physical size: 1:1 pixels.
    assert viewport_geometry(state, (64, 64), None).scale_x == pytest.approx(1.0)


def test_non_square_pixels_are_shown_at_their_physical_aspect():
    geometry = viewport_geometry(ViewState(), (50, 100), (1.0, 0.5))
    assert geometry.output_size == (100, 100)
    assert (geometry.scale_x, geometry.scale_y) == pytest.approx((1.0, 2.0))


@pytest.mark.parametrize("state", [
    ViewState(width=300, height=200, zoom=1.3, pan_x=7.25, pan_y=-3, rotation=33, hflip=True),
    ViewState(width=64, height=64, fit=FitMode.FILL, rotation=180, vflip=True),
    FULL,
])
def test_display_to_image_inverse_round_trips(state):
    to_image, to_display = display_to_image(state, (128, 96), (0.7, 0.7))
    points = np.random.default_rng(1).uniform(-50, 300, size=(20, 2))
    for x, y in points:
        assert apply(to_image, *apply(to_display, x, y)) == pytest.approx((x, y))
    product = np.vstack([to_image, [0, 0, 1]]) @ np.vstack([to_display, [0, 0, 1]])
    assert product == pytest.approx(np.eye(3))


def test_export_formats_parse_and_drop_quality():
    for code in ("tiff", "bmp"):
        state = ViewState.from_query(f"fmt={code}&q=50")
        assert state.format.value == code and state.quality == 90
        assert state.to_query() == f"fmt={code}"
