"""Render one frame of an instance for a viewport: the farm's 2-D entry point.

frame → Modality LUT → VOI LUT → presentation (one LUT lookup) → overlays
→ viewport transform → filters → pseudo colour → encode. Pseudo colour
comes last so resampling and filters work on grayscale data, not on colours.

Performance (2-core dev machine, shared, load ~3; warm cache; synthetic
512×512 int16 chest CT with 14 HU noise; ``render()`` p50 over 200 runs;
``python -m tests.render_farm.bench_render``)::

    native 512², C40/W400, JPEG q85        0.83 ms   25.7 KiB
    native 512², C40/W400, JPEG q90        0.85 ms   31.4 KiB
    native 512², new window every call     1.28 ms   30.4 KiB  (LUT rebuilt)
    native 512², WebP q90                  7.4 ms    25.5 KiB
    native 512², WebP lossless (q=100)     6.7 ms    67.2 KiB
    native 512², PNG (zlib level 1)        4.2 ms    52.1 KiB
    fit into 800×800, JPEG q90             4.2 ms    49.6 KiB
    512² viewport, zoom 2 + pan, JPEG q90  2.0 ms    27.1 KiB
    512² viewport, rotated 30°, JPEG q90   3.4 ms    17.7 KiB
    native 512², "hot" pseudo colour       1.4 ms    43.0 KiB

The grayscale chain costs one ``np.take`` into a cached 65,536-entry uint8
LUT; the rest is the encoder.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from render_farm.attributes import DisplayAttributes
from render_farm.colormaps import colorize
from render_farm.decode import FrameSource
from render_farm.encode import ImageFormat, encode
from render_farm.overlays import burn_in
from render_farm.pipeline import (
    GrayscaleParams, Lut, Photometric, WindowFunction, apply_grayscale, apply_palette,
    default_window, is_inverse, modality_range, palette_lut, rgb_to_uint8,
)
from render_farm.transform import apply_filters, apply_geometry
from render_farm.viewport import FitMode, ViewState, viewport_geometry


def grayscale_params(attrs: DisplayAttributes, state: ViewState,
                     stored_range: tuple[float, float] | None = None) -> GrayscaleParams:
    """Choose the grayscale transforms for `state` (PS3.3 C.11).

    VOI precedence: the state's window, else the file's first window, else
    its first VOI LUT, else a min-max window over the frame's modality
    values (`stored_range`, required in that case), as dcmtk's ``+Wm``.
    """
    function = state.window_function or attrs.voi_function
    common = dict(slope=attrs.rescale_slope, intercept=attrs.rescale_intercept,
                  modality=attrs.modality_lut,
                  inverse=is_inverse(attrs.photometric, attrs.presentation_shape, state.invert))
    if state.window_center is not None and state.window_width is not None:
        return GrayscaleParams(center=state.window_center, width=state.window_width,
                               function=function, **common)
    if attrs.windows:
        window = attrs.windows[0]
        return GrayscaleParams(center=window.center, width=window.width,
                               function=function, **common)
    if attrs.voi_luts:
        return GrayscaleParams(voi=attrs.voi_luts[0], **common)
    if stored_range is None:
        raise ValueError("a min-max window needs the frame's stored value range")
    low, high = modality_range(*stored_range, attrs.rescale_slope, attrs.rescale_intercept,
                               attrs.modality_lut)
    center, width = default_window(low, high)
    return GrayscaleParams(center=center, width=width, function=WindowFunction.LINEAR, **common)


@lru_cache(maxsize=32)
def _palette_table(red: Lut, green: Lut, blue: Lut, dtype: np.dtype) -> np.ndarray:
    return palette_lut(red, green, blue, dtype)


def display_pixels(source: FrameSource, state: ViewState) -> np.ndarray:
    """Return the frame as uint8 display levels in image space.

    (rows, columns) P-values for grayscale, (rows, columns, 3) for colour;
    overlays are burned in when the state asks. Pseudo colour comes later,
    after resampling, so interpolation works on grayscale data rather than
    blending colours.
    """
    attrs = source.frame_attributes(state.frame)
    stored = source.frame(state.frame)
    if attrs.photometric.is_monochrome and stored.ndim == 2:
        needs_range = state.window_center is None and not attrs.windows and not attrs.voi_luts
        stored_range = source.frame_range(state.frame) if needs_range else None
        pixels = apply_grayscale(stored, grayscale_params(attrs, state, stored_range))
    else:
        if attrs.photometric is Photometric.PALETTE_COLOR and attrs.palette and stored.ndim == 2:
            pixels = apply_palette(stored, _palette_table(*attrs.palette, stored.dtype))
        else:
            pixels = rgb_to_uint8(stored, attrs.bits_stored)
        if state.invert:
            pixels = 255 - pixels
    if state.overlays and attrs.overlays:
        pixels = burn_in(pixels, attrs.overlays, state.frame)
    return pixels


def _render_image(source: FrameSource, state: ViewState) -> Image.Image:
    pixels = display_pixels(source, state)
    image = Image.fromarray(pixels)
    attrs = source.frame_attributes(state.frame)
    geometry = viewport_geometry(state, source.shape, attrs.spacing)
    image = apply_geometry(image, geometry)
    if state.smoothing or state.sharpening:
        image = apply_filters(image, state.smoothing, state.sharpening)
    return colorize(image, state.colormap)


def render_array(source: FrameSource, state: ViewState) -> np.ndarray:
    """Render `state` to a uint8 array, (H, W) grayscale or (H, W, 3) RGB, unencoded."""
    return np.asarray(_render_image(source, state))


def render(source: FrameSource, state: ViewState) -> tuple[bytes, str]:
    """Render `state` of `source`, returning ``(encoded bytes, media type)``.

    Raises
    ------
    IndexError
        `state.frame` is past the last frame.
    render_farm.attributes.UnsupportedImage
        The frame cannot be decoded.
    """
    return encode(_render_image(source, state), state.format, state.quality)


def thumbnail(source: FrameSource, size: int = 128, frame: int | None = None,
              fmt: ImageFormat = ImageFormat.JPEG, quality: int = 80) -> tuple[bytes, str]:
    """Render a whole-image preview whose longer side is `size` pixels.

    The middle frame of a multi-frame image is used unless `frame` is given;
    the file's default window applies.
    """
    if not 1 <= size <= 1024:
        raise ValueError(f"thumbnail size must be 1..1024, got {size}")
    rows, columns = source.shape
    spacing = source.attributes.spacing
    aspect = spacing[0] / spacing[1] if spacing else 1.0
    height, width = rows * aspect, float(columns)
    factor = size / max(height, width)
    state = ViewState(
        frame=source.number_of_frames // 2 if frame is None else frame,
        width=max(1, round(width * factor)), height=max(1, round(height * factor)),
        fit=FitMode.FIT, format=fmt, quality=quality,
    )
    return render(source, state)
