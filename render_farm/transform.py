"""Resample a rendered image into the viewport and apply display filters.

The viewport affine (:mod:`render_farm.viewport`) uses Pillow's pixel-centre
convention, so its display → image matrix feeds ``Image.transform(AFFINE)``
directly, or, without free rotation, a box for ``Image.resize``. Filters run
after resampling, in display space, so a level looks the same at any zoom.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from render_farm.viewport import Geometry

#: Gaussian radius (display pixels) for smoothing levels 1..3.
SMOOTHING_RADII = (0.6, 1.0, 1.6)
#: Unsharp mask (radius, percent, threshold) for sharpening levels 1..3.
SHARPENING = ((1.0, 60, 2), (1.5, 110, 2), (2.0, 170, 1))
#: From this many display pixels per image pixel (along both axes) up, images are
#: magnified by nearest neighbour: a radiologist zooming in wants to see the real
#: pixels as squares, not a blur interpolated between them.
NEAREST_FROM_SCALE = 4.0


def resampling(geometry: Geometry) -> Image.Resampling:
    """The filter for `geometry`: nearest neighbour at high zoom, else bilinear."""
    if min(abs(geometry.scale_x), abs(geometry.scale_y)) >= NEAREST_FROM_SCALE:
        return Image.Resampling.NEAREST
    return Image.Resampling.BILINEAR


def _is_pixel_exact(matrix: np.ndarray) -> bool:
    """True when every output pixel centre lands on an input pixel centre:
    a signed permutation of the axes and an integer offset (1:1, quarter
    turns, flips, whole-pixel pans). Nearest neighbour is then lossless."""
    linear = matrix[:, :2]
    if not np.allclose(np.abs(linear).sum(axis=0), 1.0, atol=1e-9):
        return False
    if not np.allclose(linear, np.round(linear), atol=1e-9):
        return False
    # The output pixel centre (x+0.5, y+0.5) must map to (i+0.5, j+0.5).
    centre = linear @ np.array([0.5, 0.5]) + matrix[:, 2]
    return bool(np.allclose(centre - 0.5, np.round(centre - 0.5), atol=1e-6))


def apply_geometry(image: Image.Image, geometry: Geometry) -> Image.Image:
    """Resample `image` (L or RGB) into the viewport described by `geometry`.

    Views without free rotation (the usual fit/zoom/pan, flips and quarter
    turns) are done with exact transposes plus one box-addressed
    :meth:`PIL.Image.Image.resize`, which is separable, antialiased when
    shrinking and several times faster than a general affine; a whole-pixel
    1:1 view is a plain crop. Free rotations use the affine transform.
    From :data:`NEAREST_FROM_SCALE` × up, pixels are repeated, not interpolated.
    Pixels outside the image are black.
    """
    if geometry.is_identity((image.height, image.width)):
        return image
    linear = geometry.to_image[:, :2]
    if np.count_nonzero(np.abs(linear) > 1e-12) == 2:
        return _axis_aligned(image, geometry)
    return _affine(image, geometry)


_TRANSPOSE = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def _axis_aligned(image: Image.Image, geometry: Geometry) -> Image.Image:
    matrix = np.vstack([geometry.to_image, [0.0, 0.0, 1.0]])
    # Undo quarter turns and flips with exact transposes of the image, each
    # applied to the image coordinates too, until display x/y increase with
    # image x/y: what is left is a scale plus an offset.
    if abs(matrix[0, 0]) < 1e-12:
        image = image.transpose(Image.Transpose.TRANSPOSE)
        matrix = _TRANSPOSE @ matrix
    if matrix[0, 0] < 0:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        matrix = np.array([[-1.0, 0.0, image.width], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ matrix
    if matrix[1, 1] < 0:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        matrix = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, image.height], [0.0, 0.0, 1.0]]) @ matrix
    (sx, _, ox), (_, sy, oy) = matrix[:2]
    out_w, out_h = geometry.output_size
    # Output pixels whose whole footprint lies inside the image.
    x0, x1 = _visible(sx, ox, image.width, out_w)
    y0, y1 = _visible(sy, oy, image.height, out_h)
    if x0 >= x1 or y0 >= y1:
        return Image.new(image.mode, (out_w, out_h), 0)
    box = (min(max(sx * x0 + ox, 0.0), image.width), min(max(sy * y0 + oy, 0.0), image.height),
           min(max(sx * x1 + ox, 0.0), image.width), min(max(sy * y1 + oy, 0.0), image.height))
    if _is_pixel_exact(matrix[:2]):
        part = image.crop(tuple(round(v) for v in box))
    else:
        part = image.resize((x1 - x0, y1 - y0), resampling(geometry), box=box)
    if (x0, y0, x1, y1) == (0, 0, out_w, out_h):
        return part
    canvas = Image.new(image.mode, (out_w, out_h), 0)
    canvas.paste(part, (x0, y0))
    return canvas


def _visible(scale: float, offset: float, size: int, out: int) -> tuple[int, int]:
    """Output pixel range [start, stop) mapping inside image extent [0, size]."""
    start = math.ceil(-offset / scale - 1e-9)
    stop = math.floor((size - offset) / scale + 1e-9)
    return max(start, 0), min(stop, out)


def _affine(image: Image.Image, geometry: Geometry) -> Image.Image:
    # Bilinear sampling reads only the 2×2 neighbourhood of each output
    # pixel, so before shrinking by 2× or more the image is box-reduced by
    # the integer factor to avoid aliasing.
    matrix = geometry.to_image
    factor_x = max(1, math.floor(1.0 / geometry.scale_x))
    factor_y = max(1, math.floor(1.0 / geometry.scale_y))
    if factor_x > 1 or factor_y > 1:
        image = image.reduce((factor_x, factor_y))
        # Reduced pixel i covers original pixels [k·i, k·(i+1)).
        matrix = np.diag([1.0 / factor_x, 1.0 / factor_y]) @ matrix
    return image.transform(geometry.output_size, Image.Transform.AFFINE,
                           data=tuple(float(v) for v in matrix.ravel()),
                           resample=resampling(geometry), fillcolor=0)


def apply_filters(image: Image.Image, smoothing: int = 0, sharpening: int = 0) -> Image.Image:
    """Smooth (Gaussian) and/or sharpen (unsharp mask) at levels 0 (off) to 3.

    Smoothing runs first so sharpening, if also asked for, acts on the
    denoised image rather than amplifying noise.
    """
    if not (0 <= smoothing <= 3 and 0 <= sharpening <= 3):
        raise ValueError("filter levels are 0..3")
    if smoothing:
        image = image.filter(ImageFilter.GaussianBlur(SMOOTHING_RADII[smoothing - 1]))
    if sharpening:
        radius, percent, threshold = SHARPENING[sharpening - 1]
        image = image.filter(ImageFilter.UnsharpMask(radius, percent, threshold))
    return image
