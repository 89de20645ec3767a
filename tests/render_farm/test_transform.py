"""Resampling into the viewport lands pixels where the affine says."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from render_farm import FitMode, ViewState, apply_filters, apply_geometry, viewport_geometry


def gradient_image(rows: int = 40, cols: int = 60) -> np.ndarray:
    y, x = np.mgrid[0:rows, 0:cols]
    return ((x * 3 + y * 2) % 256).astype(np.uint8)


def transformed(pixels: np.ndarray, state: ViewState, spacing=None) -> np.ndarray:
    geometry = viewport_geometry(state, pixels.shape[:2], spacing)
    return np.asarray(apply_geometry(Image.fromarray(pixels), geometry))


@pytest.mark.parametrize(("state", "expected"), [
    (ViewState(rotation=90), lambda a: np.rot90(a, k=-1)),
    (ViewState(rotation=180), lambda a: np.rot90(a, k=2)),
    (ViewState(rotation=270), lambda a: np.rot90(a, k=1)),
    (ViewState(hflip=True), np.fliplr),
    (ViewState(vflip=True), np.flipud),
    (ViewState(rotation=90, hflip=True), lambda a: np.rot90(np.fliplr(a), k=-1)),
    (ViewState(rotation=270, vflip=True, hflip=True), lambda a: np.rot90(a[::-1, ::-1], k=1)),
])
def test_quarter_turns_and_flips_are_exact(state, expected):
    pixels = gradient_image()
    assert np.array_equal(transformed(pixels, state), expected(pixels))


def test_whole_pixel_pan_at_one_to_one_is_a_shift():
    pixels = gradient_image(50, 50)
    out = transformed(pixels, ViewState(width=50, height=50, fit=FitMode.PIXEL, pan_x=10, pan_y=-4))
    # Viewport centre shows image (35, 21): output column c shows image column c + 10.
    assert np.array_equal(out[4:, :40], pixels[:46, 10:])
    assert not out[:4].any() and not out[:, 40:].any()   # outside the image is black


def test_zoomed_pixel_lands_where_the_affine_maps_it():
    pixels = np.zeros((100, 100), np.uint8)
    pixels[20, 10] = 255                                    # row 20, column 10
    state = ViewState(width=200, height=200, fit=FitMode.PIXEL, zoom=4, pan_x=-20, pan_y=-20)
    geometry = viewport_geometry(state, pixels.shape)
    x, y = geometry.to_display @ np.array([10.5, 20.5, 1.0])
    out = transformed(pixels, state)
    # At 4× the pixel is a 4 × 4 block of its own value, centred where the affine maps it.
    rows, cols = np.nonzero(out)
    assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (
        round(y) - 2, round(y) + 2, round(x) - 2, round(x) + 2)
    assert (out[rows, cols] == 255).all()


def test_free_rotation_lands_a_block_where_the_affine_maps_it():
    pixels = np.zeros((64, 64), np.uint8)
    pixels[10:13, 40:43] = 255                              # centre at (41.5, 11.5)
    state = ViewState(width=128, height=128, rotation=30, zoom=0.9)
    geometry = viewport_geometry(state, pixels.shape)
    x, y = geometry.to_display @ np.array([41.5, 11.5, 1.0])
    out = transformed(pixels, state)
    rows, cols = np.nonzero(out > 100)
    assert abs(cols.mean() + 0.5 - x) < 1 and abs(rows.mean() + 0.5 - y) < 1


def test_fit_letterboxes_with_black():
    pixels = np.full((50, 100), 200, np.uint8)
    out = transformed(pixels, ViewState(width=200, height=200))
    assert out.shape == (200, 200)
    assert not out[:49].any() and not out[151:].any()
    assert (out[52:148] == 200).all()


def test_shrinking_is_antialiased():
    # A one-pixel checkerboard shrunk 4× must come out mid-grey, not aliased stripes.
    checker = ((np.indices((128, 128)).sum(axis=0) % 2) * 255).astype(np.uint8)
    for state in (ViewState(width=32, height=32), ViewState(width=32, height=32, rotation=45)):
        out = transformed(checker, state).astype(int)
        inner = out[12:20, 12:20]
        assert abs(inner.mean() - 127.5) < 20 and inner.std() < 20


def test_rgb_images_transform_too():
    pixels = np.stack([gradient_image()] * 3, axis=-1)
    out = transformed(pixels, ViewState(width=30, height=20))
    assert out.shape == (20, 30, 3)


def test_filters_keep_size_and_change_pixels():
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8)
    image = Image.fromarray(pixels)
    smooth = np.asarray(apply_filters(image, smoothing=3)).astype(int)
    sharp = np.asarray(apply_filters(image, sharpening=3)).astype(int)
    assert smooth.shape == sharp.shape == (64, 64)
    assert smooth.std() < pixels.std() < sharp.std()
    assert apply_filters(image) is image
    levels = [np.asarray(apply_filters(image, smoothing=level)).std() for level in (1, 2, 3)]
    assert levels[0] > levels[1] > levels[2]
    with pytest.raises(ValueError):
        apply_filters(image, smoothing=4)


def test_one_to_one_views_snap_to_whole_pixels():
    # An odd-sized image centred in an even canvas would sit half a pixel off
    # and be blurred by resampling; 1:1 views are snapped instead.
    pixels = gradient_image(5, 7) + 1                       # no zeros: 0 is the background
    for state in (ViewState(width=8, height=8, fit=FitMode.PIXEL),
                  ViewState(width=8, height=8, fit=FitMode.PIXEL, rotation=90)):
        out = transformed(pixels, state)
        values = set(out[out > 0].tolist())
        assert values <= set(pixels.ravel().tolist())
        assert np.count_nonzero(out) == pixels.size         # every pixel shown, unblurred


@pytest.mark.parametrize("rotation", [0, 30])
def test_high_zoom_shows_real_pixels_as_squares(rotation):
    """At ≥ 4 display pixels per image pixel each image pixel becomes a block of one value."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, (32, 32), dtype=np.uint8)
    state = ViewState(width=256, height=256, fit=FitMode.PIXEL, zoom=8, rotation=rotation)
    geometry = viewport_geometry(state, pixels.shape)
    out = transformed(pixels, state)
    # Every output value is one of the image's values (no blend between neighbours) ...
    assert set(np.unique(out)) <= set(np.unique(pixels)) | {0}
    # ... and the output pixel centre's image pixel is the one shown.
    for x, y in [(100, 100), (131, 77), (200, 160)]:
        col, row = (geometry.to_image @ np.array([x + 0.5, y + 0.5, 1.0])).astype(int)
        if 0 <= row < 32 and 0 <= col < 32:
            assert out[y, x] == pixels[row, col]


def test_moderate_zoom_still_interpolates():
    pixels = np.zeros((32, 32), np.uint8)
    pixels[:, 16:] = 200
    out = transformed(pixels, ViewState(width=96, height=96, fit=FitMode.PIXEL, zoom=3))
    assert len(np.unique(out[48])) > 2  # the edge is blended at 3×
