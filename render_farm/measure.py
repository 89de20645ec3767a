"""Measurements on one frame, in patient millimetres and modality units.

Pure numpy: points in, numbers out. Points are image coordinates ``(x, y)``
= (column, row) in the continuous convention of :mod:`render_farm.viewport`:
pixel (column i, row j) covers [i, i+1) × [j, j+1), so its centre is
(i + 0.5, j + 0.5). A region contains a pixel when it contains the pixel's
centre.

Physical distances use Pixel Spacing (0028,0030), PS3.3 C.7.6.2.1.1: the
first value is the spacing between rows (adjacent row centres, i.e. along a
column, the y direction), the second between columns (x). Values are the
output of the Modality LUT (PS3.3 C.11.1) — Hounsfield units for CT — never
stored pixel values.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from render_farm.pipeline import Lut, modality_lut

Point = tuple[float, float]

#: Largest number of vertices of a polyline or freehand outline.
MAX_POINTS = 2000
#: Default probe neighbourhood: a (2r+1)² square of pixels around the probed one.
PROBE_RADIUS = 2


@dataclass(frozen=True)
class Spacing:
    """Row and column spacing in mm; ``calibrated`` False means 1 "mm" = 1 pixel."""

    row: float = 1.0
    column: float = 1.0
    calibrated: bool = True

    @classmethod
    def of(cls, spacing: Sequence[float] | None) -> Spacing:
        """From a (row, column) pair, or uncalibrated pixels when absent or invalid."""
        if spacing and len(spacing) >= 2 and spacing[0] > 0 and spacing[1] > 0:
            return cls(float(spacing[0]), float(spacing[1]), True)
        return cls(1.0, 1.0, False)

    @property
    def pixel_area(self) -> float:
        return self.row * self.column


@dataclass(frozen=True)
class RegionStats:
    """Statistics of the modality values of the pixels whose centres lie in a region.

    ``sd`` is the population standard deviation (numpy's default, ddof=0);
    ``area`` is the geometric area of the outline in mm² (pixels² when
    uncalibrated); the value statistics are NaN when no pixel centre is inside.
    """

    area: float
    pixels: int
    mean: float
    sd: float
    min: float
    max: float


@dataclass(frozen=True)
class Probe:
    """The value of one pixel and of its neighbourhood (clipped to the image)."""

    column: int
    row: int
    value: float
    mean: float
    min: float
    max: float
    size: int  # side of the square neighbourhood in pixels


# --------------------------------------------------------------------------- values


def modality_values(stored: np.ndarray, slope: float = 1.0, intercept: float = 0.0,
                    lut: Lut | None = None) -> np.ndarray:
    """Stored pixel values → modality values (float64), PS3.3 C.11.1.

    Colour frames (rows, columns, 3) are reduced to their luma
    (ITU-R BT.601 weights), the usual "grey value" of a colour pixel.
    """
    arr = np.asarray(stored)
    if arr.ndim == 3:
        return arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return modality_lut(arr, slope, intercept, lut)


# --------------------------------------------------------------------------- lines


def _points(points: Sequence[Sequence[float]], minimum: int) -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2 or not minimum <= len(arr) <= MAX_POINTS:
        raise ValueError(f"expected {minimum}..{MAX_POINTS} points (x, y)")
    if not np.all(np.isfinite(arr)):
        raise ValueError("points must be finite numbers")
    return arr


def to_mm(points: Sequence[Sequence[float]], spacing: Spacing) -> np.ndarray:
    """Image points (x, y) → physical in-plane offsets (mm) from the image origin."""
    arr = _points(points, 1)
    return arr * np.array([spacing.column, spacing.row])


def length(p0: Point, p1: Point, spacing: Spacing) -> float:
    """Distance in mm between two image points."""
    a, b = to_mm([p0, p1], spacing)
    return float(np.hypot(*(b - a)))


def polyline_length(points: Sequence[Point], spacing: Spacing) -> float:
    """Total length in mm of the open polyline through `points`."""
    mm = to_mm(_points(points, 2), spacing)
    return float(np.hypot(*np.diff(mm, axis=0).T).sum())


def angle(a: Point, vertex: Point, b: Point, spacing: Spacing) -> float:
    """The angle a–vertex–b in degrees (0..180), measured in physical space."""
    pa, pv, pb = to_mm([a, vertex, b], spacing)
    u, v = pa - pv, pb - pv
    nu, nv = float(np.hypot(*u)), float(np.hypot(*v))
    if nu == 0.0 or nv == 0.0:
        raise ValueError("an angle needs two arms of non-zero length")
    cos = float(np.dot(u, v)) / (nu * nv)
    return math.degrees(math.acos(min(1.0, max(-1.0, cos))))


def cobb_angle(line1: Sequence[Point], line2: Sequence[Point], spacing: Spacing) -> float:
    """The Cobb angle between two lines (e.g. endplates), in degrees 0..90.

    The angle between the lines regardless of the direction each was drawn
    in, so its acute form: 180° − θ when θ > 90°.
    """
    p = to_mm([*line1, *line2], spacing)
    if len(p) != 4:
        raise ValueError("a Cobb angle needs two lines of two points each")
    u, v = p[1] - p[0], p[3] - p[2]
    nu, nv = float(np.hypot(*u)), float(np.hypot(*v))
    if nu == 0.0 or nv == 0.0:
        raise ValueError("a Cobb angle needs two lines of non-zero length")
    cos = abs(float(np.dot(u, v))) / (nu * nv)
    return math.degrees(math.acos(min(1.0, cos)))


def ratio(numerator: float, denominator: float) -> float:
    """`numerator` / `denominator` (e.g. cardiothoracic ratio: heart / thorax width)."""
    if denominator <= 0:
        raise ValueError("the reference length must be positive")
    return numerator / denominator


# --------------------------------------------------------------------------- regions


def _box(shape: tuple[int, int], xs: np.ndarray, ys: np.ndarray
         ) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """Rows/columns whose centres may lie within [min, max] of xs/ys, with those centres."""
    rows, columns = shape[:2]
    c0 = max(0, math.floor(xs.min() - 0.5))
    c1 = min(columns, math.ceil(xs.max() - 0.5) + 1)
    r0 = max(0, math.floor(ys.min() - 0.5))
    r1 = min(rows, math.ceil(ys.max() - 0.5) + 1)
    c1, r1 = max(c0, c1), max(r0, r1)
    cy, cx = np.mgrid[r0:r1, c0:c1].astype(np.float64) + 0.5
    return slice(r0, r1), slice(c0, c1), cx, cy


def _stats(values: np.ndarray, rows: slice, cols: slice, inside: np.ndarray,
           area: float) -> RegionStats:
    picked = values[rows, cols][inside]
    if picked.size == 0:
        nan = float("nan")
        return RegionStats(area, 0, nan, nan, nan, nan)
    return RegionStats(area, int(picked.size), float(picked.mean()), float(picked.std()),
                       float(picked.min()), float(picked.max()))


def rectangle_stats(values: np.ndarray, p0: Point, p1: Point, spacing: Spacing) -> RegionStats:
    """Statistics inside the axis-aligned rectangle with opposite corners `p0`, `p1`."""
    pts = _points([p0, p1], 2)
    xs, ys = pts[:, 0], pts[:, 1]
    rows, cols, cx, cy = _box(values.shape, xs, ys)
    inside = (cx >= xs.min()) & (cx <= xs.max()) & (cy >= ys.min()) & (cy <= ys.max())
    area = float(np.ptp(xs) * spacing.column * np.ptp(ys) * spacing.row)
    return _stats(values, rows, cols, inside, area)


def ellipse_stats(values: np.ndarray, p0: Point, p1: Point, spacing: Spacing) -> RegionStats:
    """Statistics inside the axis-aligned ellipse inscribed in the box `p0`–`p1`."""
    pts = _points([p0, p1], 2)
    xs, ys = pts[:, 0], pts[:, 1]
    a, b = np.ptp(xs) / 2.0, np.ptp(ys) / 2.0
    rows, cols, cx, cy = _box(values.shape, xs, ys)
    if a == 0 or b == 0:
        inside = np.zeros(cx.shape, dtype=bool)
    else:
        inside = ((cx - xs.mean()) / a) ** 2 + ((cy - ys.mean()) / b) ** 2 <= 1.0
    area = float(math.pi * a * spacing.column * b * spacing.row)
    return _stats(values, rows, cols, inside, area)


def polygon_area(points: Sequence[Point], spacing: Spacing) -> float:
    """Area in mm² of the closed polygon through `points` (shoelace formula)."""
    mm = to_mm(_points(points, 3), spacing)
    x, y = mm[:, 0], mm[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def polygon_stats(values: np.ndarray, points: Sequence[Point], spacing: Spacing) -> RegionStats:
    """Statistics inside a closed freehand outline (even-odd rule on pixel centres)."""
    pts = _points(points, 3)
    rows, cols, cx, cy = _box(values.shape, pts[:, 0], pts[:, 1])
    inside = np.zeros(cx.shape, dtype=bool)
    for (x1, y1), (x2, y2) in zip(pts, np.roll(pts, -1, axis=0)):
        if y1 == y2:
            continue  # a horizontal edge never crosses a horizontal ray
        crosses = (y1 > cy) != (y2 > cy)
        x_at = x1 + (cy - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (cx < x_at)
    return _stats(values, rows, cols, inside, polygon_area(pts, spacing))


# --------------------------------------------------------------------------- points


def probe(values: np.ndarray, point: Point, radius: int = PROBE_RADIUS) -> Probe:
    """The value under `point` and the min/max/mean of the (2r+1)² pixels around it."""
    (x, y), = _points([point], 1)
    rows, columns = values.shape[:2]
    column, row = math.floor(x), math.floor(y)
    if not (0 <= column < columns and 0 <= row < rows):
        raise ValueError("the point is outside the image")
    if not 0 <= radius <= 50:
        raise ValueError("probe radius must be 0..50 pixels")
    near = values[max(0, row - radius):row + radius + 1,
                  max(0, column - radius):column + radius + 1]
    return Probe(column, row, float(values[row, column]), float(near.mean()),
                 float(near.min()), float(near.max()), 2 * radius + 1)


def window_for(stats: RegionStats) -> tuple[float, float]:
    """A VOI window (centre, width) spanning a region's minimum to maximum."""
    if stats.pixels == 0:
        raise ValueError("the region contains no pixel")
    width = max(stats.max - stats.min, 1.0)
    return (stats.min + stats.max) / 2.0, width
