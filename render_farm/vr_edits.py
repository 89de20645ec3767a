"""Voxel edits for volume rendering: CT table removal and scalpel cuts.

Edits never change the cached :class:`~render_farm.volume.Volume`. They are
part of the VR state (``tbl=1``, ``cut=...``), replayed in order into a
boolean "removed" mask, and the rendered voxels are a copy with removed
voxels set to the volume's minimum (air for CT), which no preset shows.
Masks are cached per edit prefix, so adding one more cut costs one cut.
"""
from __future__ import annotations

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonDataModel import vtkImageData
from vtkmodules.vtkImagingMorphological import vtkImageConnectivityFilter

from render_farm.cache import ByteLRUCache
from render_farm.vr_camera import place_camera
from render_farm.vr_state import Cut, VRState
from render_farm.volume import Volume

#: CT table removal keeps the largest connected region above this (HU): the
#: body with its skin and fat (≈ −100 HU), not the air gap to the table.
TABLE_THRESHOLD_HU = -400.0
#: Connectivity runs on a grid subsampled to at most this many voxels (the
#: filter takes ~11 s on 512×512×600 at full size, under 1 s at half).
CONNECTIVITY_MAX_VOXELS = 24_000_000


def volume_identity(volume: Volume) -> str:
    """The cache identity of `volume`: its key, or its array's id when it has none."""
    return volume.key or f"array:{id(volume.voxels)}"


def _largest_component(foreground: np.ndarray) -> np.ndarray:
    """Boolean mask of the largest 26-connected region of a boolean (k, j, i) array."""
    image = vtkImageData()
    image.SetDimensions(foreground.shape[2], foreground.shape[1], foreground.shape[0])
    flat = np.ascontiguousarray(foreground, dtype=np.uint8).reshape(-1)
    image.GetPointData().SetScalars(numpy_to_vtk(flat, deep=False))
    connectivity = vtkImageConnectivityFilter()
    connectivity.SetInputData(image)
    connectivity.SetScalarRange(1, 1)
    connectivity.SetExtractionModeToLargestRegion()
    connectivity.SetLabelScalarTypeToUnsignedChar()
    connectivity.Update()
    labels = vtk_to_numpy(connectivity.GetOutput().GetPointData().GetScalars())
    return labels.reshape(foreground.shape) > 0


def _dilate(mask: np.ndarray) -> np.ndarray:
    """Grow a boolean mask by one voxel along each axis (a 3×3×3 box, separably)."""
    out = mask.copy()
    for axis in range(3):
        grown = out.copy()
        lead = [slice(None)] * 3
        trail = [slice(None)] * 3
        lead[axis], trail[axis] = slice(1, None), slice(None, -1)
        grown[tuple(lead)] |= out[tuple(trail)]
        grown[tuple(trail)] |= out[tuple(lead)]
        out = grown
    return out


def table_mask(volume: Volume, threshold: float = TABLE_THRESHOLD_HU,
               max_voxels: int = CONNECTIVITY_MAX_VOXELS) -> np.ndarray:
    """Voxels to remove so only the body remains: everything above `threshold`
    that is not connected to the largest region above it.

    Voxels below the threshold (air, lungs) are kept, so lung presets still
    show the lungs. Large volumes are labelled on a subsampled grid whose
    body mask is grown by one coarse voxel before it is brought back, so a
    table closer to the skin than about one coarse voxel stays. `max_voxels`
    bounds the grid the connectivity runs on.
    """
    voxels = volume.voxels
    step = 1
    while voxels[::step, ::step, ::step].size > max_voxels:
        step += 1
    coarse = voxels[::step, ::step, ::step] > threshold
    if not coarse.any():
        return np.zeros(volume.shape, dtype=bool)   # no body: nothing to tell it from
    if step == 1:
        return coarse & ~_largest_component(coarse)
    body = _dilate(_largest_component(coarse))
    removed = np.empty(volume.shape, dtype=bool)
    rows, columns = volume.shape[1:]
    # Slice by slice, so no full-size intermediate besides the answer.
    for index in range(volume.shape[0]):
        kept = body[index // step].repeat(step, axis=0).repeat(step, axis=1)[:rows, :columns]
        np.greater(voxels[index], threshold, out=removed[index])
        removed[index] &= ~kept
    return removed


def polygon_raster(polygon: tuple[tuple[float, float], ...], width: int, height: int,
                   oversample: int = 1) -> np.ndarray:
    """Boolean (height·o, width·o) image: which cells lie inside `polygon` (even-odd rule).

    Cell (r, c) covers output pixel coordinates [c/o, (c+1)/o) × [r/o, (r+1)/o)
    and is inside when its centre is, tested exactly by scanlines rather than
    by a rasteriser that rounds vertices to whole pixels.
    """
    points = np.asarray(polygon, dtype=np.float64)
    start, end = points, np.roll(points, -1, axis=0)
    rows = (np.arange(height * oversample) + 0.5) / oversample
    centres = (np.arange(width * oversample) + 0.5) / oversample
    y = rows[:, None]
    crosses = (start[:, 1] <= y) != (end[:, 1] <= y)     # (rows, edges)
    rise = np.where(end[:, 1] == start[:, 1], 1.0, end[:, 1] - start[:, 1])
    at = start[:, 0] + (y - start[:, 1]) * (end[:, 0] - start[:, 0]) / rise
    at = np.sort(np.where(crosses, at, np.inf), axis=1)
    inside = np.zeros((rows.size, centres.size), dtype=bool)
    for row in np.flatnonzero(crosses.any(axis=1)):
        inside[row] = np.searchsorted(at[row], centres) % 2 == 1
    return inside


#: Scalpel polygons are rasterised at this many cells per output pixel, so a
#: voxel is judged within a quarter pixel of the drawn line.
CUT_OVERSAMPLE = 4


def cut_mask(volume: Volume, cut: Cut) -> np.ndarray:
    """Voxels whose centres project inside the polygon of `cut`, at any depth."""
    frame = place_camera(cut.camera, volume)
    o = CUT_OVERSAMPLE
    inside = polygon_raster(cut.polygon, cut.camera.width, cut.camera.height, o)
    height, width = inside.shape
    # Output pixel coordinates are affine in the voxel index: per axis step
    # (i, j, k) in patient mm, dotted with the screen axes.
    steps = volume.directions * np.asarray(volume.spacing[::-1])[:, None]
    to_x = steps @ frame.right / frame.mm_per_pixel * o
    to_y = -(steps @ frame.up) / frame.mm_per_pixel * o
    start = frame.project(volume.origin) * o
    slices, rows, columns = volume.shape
    j, i = np.mgrid[0:rows, 0:columns].astype(np.float32)
    plane_x = (i * to_x[0] + j * to_x[1] + start[0]).astype(np.float32)
    plane_y = (i * to_y[0] + j * to_y[1] + start[1]).astype(np.float32)
    removed = np.zeros(volume.shape, dtype=bool)
    for k in range(slices):
        x = np.floor(plane_x + np.float32(k * to_x[2])).astype(np.int32)
        y = np.floor(plane_y + np.float32(k * to_y[2])).astype(np.int32)
        valid = (x >= 0) & (x < width) & (y >= 0) & (y < height)
        hit = np.zeros((rows, columns), dtype=bool)
        hit[valid] = inside[y[valid], x[valid]]
        removed[k] = hit
    return removed


def _edit_steps(state: VRState) -> list[str | Cut]:
    return (["table"] if state.table_removal else []) + list(state.cuts)


def removed_mask(cache: ByteLRUCache, volume: Volume, state: VRState) -> np.ndarray | None:
    """The voxels the state's edits remove, or None when it has none (cached per prefix)."""
    steps = _edit_steps(state)
    if not steps:
        return None
    identity = volume_identity(volume)

    def build(count: int) -> np.ndarray:
        step = steps[count - 1]
        mask = table_mask(volume) if step == "table" else cut_mask(volume, step)
        if count > 1:
            mask |= masked(count - 1)
        mask.flags.writeable = False
        return mask

    def masked(count: int) -> np.ndarray:
        key = ("vr-removed", identity, tuple(_text(step) for step in steps[:count]))
        return cache.get_or_load(key, lambda: build(count))

    return masked(len(steps))


def _text(step: str | Cut) -> str:
    return step if isinstance(step, str) else step.to_text()


def edited_voxels(cache: ByteLRUCache, volume: Volume, state: VRState) -> np.ndarray:
    """The voxels to render: the volume's own, or a cached copy with the edits applied."""
    if not state.table_removal and not state.cuts:
        return volume.voxels
    key = ("vr-voxels", volume_identity(volume), state.edits_key())

    def build() -> np.ndarray:
        removed = removed_mask(cache, volume, state)
        voxels = volume.voxels.copy()
        voxels[removed] = volume.voxels.min()
        voxels.flags.writeable = False
        return voxels

    return cache.get_or_load(key, build)
