"""Show sampled modality values (an MPR plane, a CPR) through the farm's 2-D chain.

Planes come out of a volume as float32 modality values, already rescaled,
so the Modality LUT stage is the identity and the chain is: VOI window
(:mod:`render_farm.pipeline`) → viewport geometry, filters
(:mod:`render_farm.transform`) → pseudo colour (:mod:`render_farm.colormaps`)
→ :mod:`render_farm.encode`. For integer volumes (CT) the values are
rounded to int16 first so the window is one ``np.take`` into the cached
65,536-entry LUT, as for 2-D frames.

Two ways onto the screen:

* :func:`render_values` — sample the whole plane, then let
  :func:`render_farm.transform.apply_geometry` zoom/pan/rotate it (best
  when the sample is a cheap numpy cut at native resolution);
* :func:`display_plane` + :func:`render_display_values` — sample the
  volume directly at the viewport's pixels (oblique planes: one trilinear
  sample per screen pixel, no second resampling).
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from render_farm.colormaps import colorize
from render_farm.encode import encode
from render_farm.pipeline import (
    GrayscaleParams, WindowFunction, apply_grayscale, default_window, grayscale,
)
from render_farm.planes import Plane
from render_farm.transform import apply_filters, apply_geometry
from render_farm.viewport import Geometry, ViewState, viewport_geometry
from render_farm.volume import Volume


def window_of(volume: Volume, view: ViewState) -> tuple[float, float]:
    """The VOI window: the view's, else the series', else min-max of the volume."""
    if view.window_center is not None and view.window_width is not None:
        return view.window_center, view.window_width
    if volume.window is not None:
        return volume.window
    return default_window(*volume.value_range)


def to_levels(values: np.ndarray, volume: Volume, view: ViewState) -> np.ndarray:
    """Window float modality values to uint8 display levels (PS3.3 C.11.2)."""
    centre, width = window_of(volume, view)
    params = GrayscaleParams(center=centre, width=width,
                             function=view.window_function or WindowFunction.LINEAR,
                             inverse=view.invert)
    if volume.voxels.dtype == np.int16:
        finite = np.nan_to_num(values, nan=volume.value_range[0])
        rounded = np.clip(np.rint(finite), -32768, 32767).astype(np.int16)
        return apply_grayscale(rounded, params)
    return grayscale(np.nan_to_num(values, nan=volume.value_range[0]), params)


def _finish(image: Image.Image, view: ViewState) -> Image.Image:
    if view.smoothing or view.sharpening:
        image = apply_filters(image, view.smoothing, view.sharpening)
    return colorize(image, view.colormap)


def render_values(values: np.ndarray, spacing: tuple[float, float], volume: Volume,
                  view: ViewState) -> Image.Image:
    """Window `values` (rows, columns) and place them in the viewport.

    `spacing` is (row, column) mm, so non-square pixels (a coronal cut of
    thick slices) are shown at their true aspect.
    """
    image = Image.fromarray(to_levels(values, volume, view))
    image = apply_geometry(image, viewport_geometry(view, values.shape, spacing))
    return _finish(image, view)


def display_plane(plane: Plane, view: ViewState) -> tuple[Plane, Geometry]:
    """The plane whose pixels are the viewport's pixels.

    The viewport's display → image affine (pixel centres at +0.5) is
    composed with the plane's image → patient map. Needs square plane
    pixels, so the display axes stay perpendicular in patient space.
    """
    geometry = viewport_geometry(view, plane.size, plane.spacing)
    to_image = geometry.to_image
    # Display pixel centre (x+0.5, y+0.5) → image (u, v) → plane pixel (v-0.5, u-0.5).
    def patient(x: float, y: float) -> np.ndarray:
        u, v = to_image @ np.array([x + 0.5, y + 0.5, 1.0])
        return plane.pixel_to_patient((v - 0.5, u - 0.5))

    start = patient(0.0, 0.0)
    step_x, step_y = patient(1.0, 0.0) - start, patient(0.0, 1.0) - start
    width, height = geometry.output_size
    return Plane(start, step_x / np.linalg.norm(step_x), step_y / np.linalg.norm(step_y),
                 (float(np.linalg.norm(step_y)), float(np.linalg.norm(step_x))),
                 (height, width), plane.thickness, plane.mode), geometry


def render_display_values(values: np.ndarray, volume: Volume, view: ViewState) -> Image.Image:
    """Window values already sampled at the viewport's pixels."""
    return _finish(Image.fromarray(to_levels(values, volume, view)), view)


def encode_view(image: Image.Image, view: ViewState) -> tuple[bytes, str]:
    """Encode with the view's format and quality."""
    return encode(image, view.format, view.quality)
