"""Image planes in patient space and where they cut each other (reference lines, 定位线).

Pure numpy on Image Position (Patient), Image Orientation (Patient) and Pixel
Spacing (PS3.3 C.7.6.2.1.1); :func:`app.services.viewer.reference_lines` feeds it
indexed instances. Image coordinates are continuous, as everywhere in the
viewer: pixel (column i, row j) covers [i, i+1) × [j, j+1).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Planes closer to parallel than this (|cos| of the angle between normals) cut no line.
PARALLEL_COS = math.cos(math.radians(5))


@dataclass(frozen=True)
class Plane:
    """An image's rectangle in patient space (PS3.3 C.7.6.2.1.1).

    Patient point of image coordinates (x, y) — pixel (column i, row j) covers
    [i, i+1) × [j, j+1), so Image Position (Patient) is at (0.5, 0.5) — is
    ``origin + (x − 0.5)·column_spacing·row_dir + (y − 0.5)·row_spacing·col_dir``.
    """

    origin: np.ndarray
    row_dir: np.ndarray  # direction of increasing column index (first three IOP values)
    col_dir: np.ndarray  # direction of increasing row index
    row_spacing: float
    column_spacing: float
    rows: int
    columns: int

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.row_dir, self.col_dir)

    def to_patient(self, x: float, y: float) -> np.ndarray:
        return (self.origin + (x - 0.5) * self.column_spacing * self.row_dir
                + (y - 0.5) * self.row_spacing * self.col_dir)

    def to_image(self, point: np.ndarray) -> tuple[float, float]:
        d = point - self.origin
        return (float(d @ self.row_dir) / self.column_spacing + 0.5,
                float(d @ self.col_dir) / self.row_spacing + 0.5)


def _clip(p: np.ndarray, q: np.ndarray, width: float, height: float) -> list[float] | None:
    """Liang–Barsky: segment p→q clipped to [0, width] × [0, height], or None."""
    low, high, d = 0.0, 1.0, q - p
    for delta, start, limit in ((d[0], p[0], width), (d[1], p[1], height)):
        # Inside when start + t·delta ≥ 0 and start + t·delta ≤ limit: (-delta)·t ≤ start, delta·t ≤ limit − start.
        for step, room in ((-delta, start), (delta, limit - start)):
            if abs(step) < 1e-12:
                if room < 0:
                    return None
                continue
            t = room / step
            if step < 0:
                low = max(low, t)
            else:
                high = min(high, t)
    if high - low < 1e-9:
        return None
    a, b = p + low * d, p + high * d
    return [round(float(v), 2) for v in (*a, *b)]


def reference_line(target: Plane, source: Plane) -> list[float] | None:
    """Where `source`'s image cuts `target`'s, as [x0, y0, x1, y1] image coordinates of `target`.

    The segment is the intersection of the two finite image rectangles: the
    source rectangle's crossing of the target plane, clipped to the target
    image. None when the planes are (nearly) parallel or do not meet.
    """
    normal = target.normal
    if abs(float(normal @ source.normal)) >= PARALLEL_COS:
        return None
    corners = [source.to_patient(x, y) for x, y in
               ((0, 0), (source.columns, 0), (source.columns, source.rows), (0, source.rows))]
    distance = [float((c - target.origin) @ normal) for c in corners]
    crossings = []
    for k in range(4):
        a, b, da, db = corners[k], corners[(k + 1) % 4], distance[k], distance[(k + 1) % 4]
        if da == 0:
            crossings.append(a)
        elif da * db < 0:
            crossings.append(a + (b - a) * (da / (da - db)))
    if len(crossings) < 2:
        return None
    ends = [np.array(target.to_image(point)) for point in crossings]
    p, q = max(((a, b) for a in ends for b in ends), key=lambda ab: np.linalg.norm(ab[0] - ab[1]))
    return _clip(p, q, target.columns, target.rows)


def plane(position: Sequence[float] | None, orientation: Sequence[float] | None,
          spacing: Sequence[float] | None, rows: int | None, columns: int | None) -> Plane | None:
    """The plane of an image, or None when position, orientation or spacing is missing or bad."""
    if not (position and orientation and spacing and rows and columns):
        return None
    row_dir, col_dir = np.array(orientation[:3], float), np.array(orientation[3:6], float)
    if min(np.linalg.norm(row_dir), np.linalg.norm(col_dir), *spacing[:2]) <= 0:
        return None
    return Plane(np.array(position[:3], float), row_dir / np.linalg.norm(row_dir),
                 col_dir / np.linalg.norm(col_dir), float(spacing[0]), float(spacing[1]),
                 int(rows), int(columns))
