"""Multiplanar reformation: the axial, coronal and sagittal planes through a point.

Display orientation is radiological (the convention of every PACS):

* axial — patient left at screen right, anterior up (seen from the feet);
* coronal — superior up, patient right at screen left (seen from the front);
* sagittal — superior up, anterior at screen left (seen from the patient's left).

In LPS terms the (screen right, screen down) axes are axial (+x, +y),
coronal (+x, -z), sagittal (+y, -z). Oblique MPR rotates that frame about
the crosshair point (:attr:`MPRState.rotation`); a slab projects
``thickness`` mm around the plane by MIP, MinIP or mean.

Each plane spans the volume: its extent is the volume's corners projected
on its axes. Its pixel spacing is the voxel spacing along each screen axis
when that axis runs along the voxel grid (so a coronal cut of 1.25 mm
slices has 1.25 mm rows: no resampling, the viewport shows the true
aspect), else the smallest voxel spacing.

Operations for the web app (all arguments primitives, so they run on an rq
worker as well as in-process):

* :func:`mpr_frame` — the encoded image of one viewport;
* :func:`mpr_geometry` — the plane's pixel ↔ patient mapping, the viewport
  affine and where the other two planes cut this one, as a JSON-able dict,
  for drawing crosshairs and measuring in patient mm;
* :func:`pick` — a clicked display point → patient mm, the new crosshair.

Performance (2-core dev machine shared with other work, load 4–5; 600
slices of 512², 1.25 mm, int16, volume warm in the cache; the whole
operation ``mpr_frame`` to a 512×512 JPEG q90, p50 over 30 calls;
``python -m tests.bench mpr``)::

    axial / coronal / sagittal               4.4 / 6.6 / 16.6 ms   (target 20)
    oblique axial / coronal (rx 20, rz 15)   9.3 / 14.5 ms         (target 40)
    20 mm slab MIP axial / coronal           6.7 / 10.0 ms         (target 40)
    20 mm slab MIP oblique                   25.5 ms              (target 40)

Under heavier load from other processes the same frames were measured up
to 2–4× slower (oblique slab MIP 117 ms p50 before the 3-D block reslice).
"""
from __future__ import annotations

import numpy as np

from render_farm.cache import ByteLRUCache
from render_farm.planes import Plane, is_grid_aligned, sample
from render_farm.plane_display import (
    display_plane, encode_view, render_display_values, render_values,
)
from render_farm.mpr_state import MPRState, Orientation, canonical_query, split_query
from render_farm.viewport import ViewState, viewport_geometry
from render_farm.volume import Volume, load_volume

#: (screen right, screen down) patient axes of the standard planes (LPS).
SCREEN_AXES = {
    Orientation.AXIAL: (np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])),
    Orientation.CORONAL: (np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, -1.0])),
    Orientation.SAGITTAL: (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, -1.0])),
}
_PARALLEL = 1e-6


def volume_centre(volume: Volume) -> np.ndarray:
    """Patient position of the middle of the volume."""
    return volume.index_to_patient((np.array(volume.shape, dtype=np.float64) - 1.0) / 2.0)


def volume_corners(volume: Volume) -> np.ndarray:
    """The 8 corner voxel centres, patient mm."""
    top = np.array(volume.shape, dtype=np.float64) - 1.0
    corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]) * top
    return volume.index_to_patient(corners)


def crosshair(volume: Volume, state: MPRState) -> np.ndarray:
    """The state's crosshair point, or the volume centre."""
    point = state.point
    return volume_centre(volume) if point is None else point


def _axis_spacing(volume: Volume, axis: np.ndarray) -> float:
    """Voxel spacing along `axis` if it runs along a grid axis, else the finest spacing."""
    for m in range(3):
        if abs(abs(float(volume.directions[m] @ axis)) - 1.0) < _PARALLEL:
            return float(volume.spacing[2 - m])
    return float(min(volume.spacing))


def plane_through(volume: Volume, point: np.ndarray, right: np.ndarray, down: np.ndarray,
                  thickness: float = 0.0, mode: str = "avg") -> Plane:
    """The plane with screen axes (`right`, `down`) through `point`, covering the volume."""
    spacing = (_axis_spacing(volume, down), _axis_spacing(volume, right))
    offsets = volume_corners(volume) - point
    u, v = offsets @ right, offsets @ down
    columns = int(np.floor((u.max() - u.min()) / spacing[1] + 1e-6)) + 1
    rows = int(np.floor((v.max() - v.min()) / spacing[0] + 1e-6)) + 1
    origin = point + u.min() * right + v.min() * down
    return Plane(origin, right, down, spacing, (rows, columns), thickness, mode)


def plane_for(volume: Volume, state: MPRState, orientation: Orientation | None = None) -> Plane:
    """The plane `state` shows (or its `orientation` sibling through the same crosshair)."""
    rotation = state.rotation
    right, down = (rotation @ axis for axis in SCREEN_AXES[orientation or state.orientation])
    return plane_through(volume, crosshair(volume, state), right, down,
                         state.thickness, state.mode)


def render_mpr(volume: Volume, state: MPRState, view: ViewState):
    """Render one MPR viewport to a Pillow image (L or RGB).

    Planes along the voxel grid are cut out whole with numpy and placed by
    the 2-D viewport chain; other planes are sampled straight at the
    viewport's pixels (one trilinear sample per screen pixel).
    """
    plane = plane_for(volume, state)
    square = abs(plane.spacing[0] - plane.spacing[1]) < 1e-9
    if is_grid_aligned(volume, plane) or not square:
        return render_values(sample(volume, plane), plane.spacing, volume, view)
    screen, _ = display_plane(plane, view)
    return render_display_values(sample(volume, screen), volume, view)


def mpr_frame(cache: ByteLRUCache, volume_key: str, paths: list[str],
              query: str) -> tuple[bytes, str]:
    """Operation: one MPR viewport as ``(encoded image, media type)``.

    Parameters
    ----------
    cache : ByteLRUCache
        The process's render cache; the volume is kept there under `volume_key`.
    volume_key : str
        Cache identity of the series' volume (tenant, series UID, version).
    paths : list of str
        The series' files (read only when the volume is not cached).
    query : str
        MPR keys (see :mod:`render_farm.mpr_state`: o, cx, cy, cz, rx, ry,
        rz, st, sp) plus ViewState keys (wc, ww, w, h, z, px, py, fmt, q...).

    Raises
    ------
    ValueError
        A bad query (the message names the key), or
        :class:`~render_farm.volume.NotAVolume` when the series is not a volume.
    """
    state, view = split_query(query)
    volume = load_volume(cache, volume_key, paths)
    return encode_view(render_mpr(volume, state, view), view)


def _line_in(plane: Plane, point: np.ndarray, direction: np.ndarray) -> dict | None:
    """The part of the line (point + t·direction) inside the plane's image, as
    pixel (row, col) end points; None when it misses the image."""
    start = plane.patient_to_pixel(point)[:2]
    step = plane.patient_to_pixel(point + direction)[:2] - start
    rows, columns = plane.size
    low, high = -np.inf, np.inf
    for axis, limit in ((0, rows), (1, columns)):
        if abs(step[axis]) < 1e-12:
            if not -0.5 <= start[axis] <= limit - 0.5:
                return None
            continue
        t0 = (-0.5 - start[axis]) / step[axis]
        t1 = (limit - 0.5 - start[axis]) / step[axis]
        low, high = max(low, min(t0, t1)), min(high, max(t0, t1))
    if low > high:
        return None
    ends = [start + low * step, start + high * step]
    return {"from": [float(v) for v in ends[0]], "to": [float(v) for v in ends[1]]}


def geometry(volume: Volume, state: MPRState, view: ViewState) -> dict:
    """The plane of `state` as a JSON-able dict (see :func:`mpr_geometry`)."""
    plane = plane_for(volume, state)
    point = crosshair(volume, state)
    view_geometry = viewport_geometry(view, plane.size, plane.spacing)
    lines = {}
    for other in Orientation:
        if other is state.orientation:
            continue
        normal = plane_for(volume, state, other).normal
        direction = np.cross(plane.normal, normal)
        lines[other.value] = _line_in(plane, point, direction / np.linalg.norm(direction))
    return {
        "orientation": state.orientation.value,
        "query": canonical_query(state, view),
        "origin": plane.origin.tolist(),
        "row_axis": plane.row_axis.tolist(),
        "col_axis": plane.col_axis.tolist(),
        "normal": plane.normal.tolist(),
        "spacing": list(plane.spacing),
        "size": list(plane.size),
        "thickness": plane.thickness,
        "mode": plane.mode,
        "crosshair": point.tolist(),
        "crosshair_pixel": plane.patient_to_pixel(point)[:2].tolist(),
        "display_to_image": view_geometry.to_image.tolist(),
        "image_to_display": view_geometry.to_display.tolist(),
        "output_size": list(view_geometry.output_size),
        "lines": lines,
        "volume": {"shape": list(volume.shape), "spacing": list(volume.spacing),
                   "warnings": list(volume.warnings), "modality": volume.modality},
    }


def mpr_geometry(cache: ByteLRUCache, volume_key: str, paths: list[str], query: str) -> dict:
    """Operation: the geometry of an MPR viewport, JSON-able.

    Keys: ``origin``, ``row_axis``, ``col_axis``, ``normal`` (patient mm /
    unit vectors: patient = origin + col·spacing[1]·row_axis +
    row·spacing[0]·col_axis, pixel centres at whole (row, col)),
    ``spacing`` (row, col mm), ``size`` (rows, cols), ``thickness``,
    ``mode``, ``crosshair`` (patient mm) and ``crosshair_pixel`` (row,
    col), ``display_to_image`` / ``image_to_display`` (2×3 viewport
    affines in the viewport convention: image pixel centres at +0.5, so
    image (u, v) is plane pixel (row v-0.5, col u-0.5)), ``output_size``,
    ``lines`` (for each other orientation, the segment where its plane cuts
    this one: ``{"from": [row, col], "to": [row, col]}`` or None),
    ``volume`` (shape, spacing, warnings, modality) and the canonical ``query``.
    """
    state, view = split_query(query)
    return geometry(load_volume(cache, volume_key, paths), state, view)


def pick(volume: Volume, state: MPRState, view: ViewState, x: float, y: float) -> np.ndarray:
    """Patient point (mm) under display point (`x`, `y`) of the viewport.

    (x, y) are browser offsets in output pixels (pixel centres at +0.5).
    Use the result as the new crosshair (``cx, cy, cz``) of all three views.
    """
    plane = plane_for(volume, state)
    to_image = viewport_geometry(view, plane.size, plane.spacing).to_image
    u, v = to_image @ np.array([x, y, 1.0])
    return plane.pixel_to_patient((v - 0.5, u - 0.5))


def mpr_pick(cache: ByteLRUCache, volume_key: str, paths: list[str], query: str,
             x: float, y: float) -> list[float]:
    """Operation: the patient point [x, y, z] (mm) under a click, for the new crosshair."""
    state, view = split_query(query)
    return pick(load_volume(cache, volume_key, paths), state, view, x, y).tolist()
