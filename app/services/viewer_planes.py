"""Image planes in patient space and where they cut each other (reference lines, 定位线).

The geometry is pure numpy on Image Position (Patient), Image Orientation
(Patient) and Pixel Spacing (PS3.3 C.7.6.2.1.1); :func:`reference_lines` (the
service the viewer calls) feeds it a tenant's indexed instances. Image
coordinates are continuous, as everywhere in the viewer: pixel (column i, row j)
covers [i, i+1) × [j, j+1).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa

from app.extensions import db
from app.models import Instance, Series, Study, Tenant
from app.services import tenancy
from app.services.errors import NotFound

#: Source images one request may ask about (the viewer asks for a window of 33).
MAX_REFERENCE_SOURCES = 64

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


# --------------------------------------------------------------------------- the service


def _numbers(text: str, count: int) -> list[float] | None:
    try:
        values = [float(v) for v in (text or "").split("\\")]
    except ValueError:
        return None
    return values[:count] if len(values) >= count else None


def _plane(instance: Instance | sa.Row) -> Plane | None:
    return plane(_numbers(instance.image_position, 3), _numbers(instance.image_orientation, 6),
                 _numbers(instance.pixel_spacing, 2), instance.rows, instance.columns)


def reference_lines(tenant: Tenant, study_uid: str, target_sop: str,
                    source_sops: Sequence[str]) -> dict[str, list[float]]:
    """Reference lines (定位线) of other images of a study on the `target_sop` image.

    Only images in the target's Frame of Reference count, and parallel ones
    cut no line. Returns ``{source SOP UID: [x0, y0, x1, y1]}`` in target
    image coordinates, for the sources that cut it. Another tenant's study or
    an image outside the study is NotFound.
    """
    study = tenancy.get(tenant, Study, study_uid=study_uid)
    wanted = list(dict.fromkeys(source_sops))[:MAX_REFERENCE_SOURCES]
    rows = db.session.execute(
        tenancy.select(tenant, Instance, Instance.sop_uid, Instance.image_position,
                       Instance.image_orientation, Instance.pixel_spacing, Instance.rows,
                       Instance.columns, Series.frame_of_reference_uid)
        .join(Series, Instance.series_pk == Series.id)
        .where(Series.study_pk == study.id, Instance.sop_uid.in_([target_sop, *wanted]))).all()
    found = {row.sop_uid: row for row in rows}
    if target_sop not in found:
        raise NotFound("no such image in this series")
    target = found[target_sop]
    frame_uid, target_plane = target.frame_of_reference_uid or "", _plane(target)
    lines: dict[str, list[float]] = {}
    for sop in wanted:
        source = found.get(sop)
        if sop == target_sop or source is None or not frame_uid \
                or source.frame_of_reference_uid != frame_uid:
            continue
        source_plane = _plane(source)
        line = reference_line(target_plane, source_plane) if target_plane and source_plane else None
        if line:
            lines[sop] = line
    return lines
