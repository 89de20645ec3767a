"""Overlay planes (60xx) burned into renders."""
from __future__ import annotations

import numpy as np

from render_farm import ImageFormat, ViewState, burn_in, open_source, read_overlays, render_array
from tests.render_farm import dicom_factory as factory


def l_shape() -> np.ndarray:
    bitmap = np.zeros((4, 6), bool)
    bitmap[:, 0] = True
    bitmap[3, :] = True
    return bitmap


def test_overlay_is_burned_at_its_origin():
    ds = factory.image(np.zeros((16, 16), np.uint8), WindowCenter=128, WindowWidth=256)
    factory.overlay(ds, l_shape(), origin=(3, 5))            # 1-based (row, column)
    source = open_source(factory.to_bytes(ds))
    out = render_array(source, ViewState(overlays=True, format=ImageFormat.PNG))
    expected = np.zeros((16, 16), np.uint8)
    expected[2:6, 4:10][l_shape()] = 255
    assert np.array_equal(out, expected)
    assert not render_array(source, ViewState()).any()       # off unless asked


def test_overlay_is_clipped_at_the_image_edges():
    plane = read_overlays(factory.overlay(factory.image(np.zeros((4, 4), np.uint8)),
                                          np.ones((3, 3), bool), origin=(-1, 3)))
    out = burn_in(np.zeros((4, 4), np.uint8), plane, frame=0)
    expected = np.zeros((4, 4), np.uint8)
    expected[0, 2:4] = 255                                   # only row 0, columns 2..3 overlap
    assert np.array_equal(out, expected)


def test_multi_frame_overlay_follows_image_frame_origin():
    pixels = np.zeros((4, 5, 5), np.uint8)
    frames = np.zeros((2, 5, 5), bool)
    frames[0, 0, 0] = frames[1, 4, 4] = True
    ds = factory.overlay(factory.image(pixels, frames=4), frames, image_frame_origin=2)
    planes = read_overlays(ds)
    # Overlay frame 1 belongs to image frame 2 (0-based 1), frame 2 to image frame 3.
    assert not burn_in(pixels[0], planes, frame=0).any()
    assert burn_in(pixels[1], planes, frame=1)[0, 0] == 255
    assert burn_in(pixels[2], planes, frame=2)[4, 4] == 255
    assert not burn_in(pixels[3], planes, frame=3).any()


def test_overlay_on_rgb_and_several_groups():
    ds = factory.image(np.zeros((6, 6, 3), np.uint8), photometric="RGB")
    factory.overlay(ds, np.eye(6, dtype=bool), group=0x6000)
    factory.overlay(ds, np.fliplr(np.eye(6, dtype=bool)), group=0x6002)
    out = render_array(open_source(factory.to_bytes(ds)), ViewState(overlays=True))
    mask = np.eye(6, dtype=bool) | np.fliplr(np.eye(6, dtype=bool))
    assert (out[mask] == 255).all() and not out[~mask].any()


def test_overlay_follows_the_viewport_transform():
    ds = factory.image(np.zeros((8, 8), np.uint8), WindowCenter=128, WindowWidth=256)
    bitmap = np.zeros((8, 8), bool)
    bitmap[0, 7] = True                                      # top-right corner
    factory.overlay(ds, bitmap)
    out = render_array(open_source(factory.to_bytes(ds)), ViewState(overlays=True, rotation=90))
    assert out[7, 7] == 255 and out.sum() == 255             # now bottom-right
