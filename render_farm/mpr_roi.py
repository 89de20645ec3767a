"""Region statistics on an MPR plane: area (mm²), mean, SD, min and max of the modality values.

The region is drawn on the browser's view of a plane (display pixels); it
is mapped back through the viewport's affine onto the plane's own pixel
grid, whose spacing is in mm, and the plane's values (thin, or the slab's
projection, exactly as shown) are read from the volume — never from the
JPEG on screen. Query: the MPR query of the view plus ``roi`` (``ellipse``,
``rectangle`` or ``polygon``) and ``pts``: two display corners ``x0,y0,x1,y1``
of an ellipse's or rectangle's bounding box, or 3 or more vertices of a
freehand polygon.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import numpy as np
from PIL import Image, ImageDraw

from render_farm.cache import ByteLRUCache
from render_farm.mpr import plane_for
from render_farm.mpr_state import split_query
from render_farm.planes import sample
from render_farm.viewport import viewport_geometry
from render_farm.volume import load_volume

SHAPES = ("ellipse", "rectangle", "polygon")
MAX_VERTICES = 1000


def _parse(query: str) -> tuple[str, np.ndarray, str]:
    roi, points, rest = "", "", []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "roi":
            roi = value
        elif key == "pts":
            points = value
        else:
            rest.append((key, value))
    if roi not in SHAPES:
        raise ValueError(f"roi: expected one of {', '.join(SHAPES)}, got {roi!r}")
    try:
        corners = np.array([float(v) for v in points.split(",")], dtype=np.float64).reshape(-1, 2)
    except ValueError:
        raise ValueError(f"pts: expected display points x0,y0,x1,y1,..., got {points[:80]!r}") from None
    wanted = (3, MAX_VERTICES) if roi == "polygon" else (2, 2)
    if not wanted[0] <= len(corners) <= wanted[1]:
        raise ValueError(f"pts: a {roi} needs {wanted[0]}..{wanted[1]} points, got {len(corners)}")
    if not np.all(np.isfinite(corners)):
        raise ValueError("pts: the points must be finite numbers")
    return roi, corners, urlencode(rest)


def _polygon_mask(size: tuple[int, int], cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Plane pixels whose centres lie inside the polygon (Pillow's scan conversion)."""
    mask = Image.new("1", (size[1], size[0]), 0)
    ImageDraw.Draw(mask).polygon([(float(c), float(r)) for c, r in zip(cols, rows)], fill=1)
    return np.asarray(mask, dtype=bool)


def mpr_roi(cache: ByteLRUCache, volume_key: str, paths: list[str], query: str) -> dict:
    """Operation: statistics of the region `query` names on its MPR plane (JSON-able).

    Returns
    -------
    dict
        ``area_mm2``, ``pixels``, ``mean``, ``sd``, ``min``, ``max`` (modality
        values, e.g. HU) and ``modality``; ``pixels`` is 0 (and the values
        None) when the region holds no pixel centre.
    """
    roi, corners, rest = _parse(query)
    state, view = split_query(rest)
    volume = load_volume(cache, volume_key, paths)
    plane = plane_for(volume, state)
    to_image = viewport_geometry(view, plane.size, plane.spacing).to_image
    image = np.array([to_image @ np.array([x, y, 1.0]) for x, y in corners])  # (u, v) pairs
    cols, rows = image[:, 0] - 0.5, image[:, 1] - 0.5  # plane pixel coordinates
    r0, r1 = rows.min(), rows.max()
    c0, c1 = cols.min(), cols.max()
    grid_r, grid_c = np.mgrid[0:plane.size[0], 0:plane.size[1]]
    if roi == "polygon":
        inside = _polygon_mask(plane.size, cols, rows)
    elif roi == "rectangle":
        inside = (grid_r >= r0) & (grid_r <= r1) & (grid_c >= c0) & (grid_c <= c1)
    else:
        centre_r, centre_c = (r0 + r1) / 2, (c0 + c1) / 2
        half_r, half_c = max((r1 - r0) / 2, 1e-9), max((c1 - c0) / 2, 1e-9)
        inside = ((grid_r - centre_r) / half_r) ** 2 + ((grid_c - centre_c) / half_c) ** 2 <= 1.0
    count = int(inside.sum())
    answer = {"shape": roi, "pixels": count, "modality": volume.modality,
              "area_mm2": round(count * plane.spacing[0] * plane.spacing[1], 2),
              "mean": None, "sd": None, "min": None, "max": None}
    if count:
        values = sample(volume, plane)[inside].astype(np.float64)
        answer.update(mean=round(float(values.mean()), 2), sd=round(float(values.std()), 2),
                      min=round(float(values.min()), 2), max=round(float(values.max()), 2))
    return answer
