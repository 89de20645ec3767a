"""Sample a volume at arbitrary patient points (curved sample grids such as a CPR).

numpy trilinear interpolation, with the edge rule of
:func:`render_farm.planes.sample`: within half a voxel outside the grid
counts as the edge voxel, further out is the fill value.
"""
from __future__ import annotations

import numpy as np

from render_farm.planes import default_fill
from render_farm.volume import Volume

_TOLERANCE = 1e-6


def sample_points(volume: Volume, xyz: np.ndarray, *, fill: float | None = None) -> np.ndarray:
    """Trilinear values of `volume` at patient points ``[..., 3]`` (float32, shape ``[...]``).

    For sample grids that are not planes (curved MPR). Same edge rule as
    :func:`sample`: within half a voxel outside the grid counts as the edge
    voxel, further out is `fill` (default: the volume minimum).
    """
    fill_value = default_fill(volume) if fill is None else float(fill)
    points = np.asarray(xyz, dtype=np.float64)
    kji = volume.patient_to_index(points.reshape(-1, 3))
    shape = np.array(volume.shape)
    inside = np.all((kji >= -0.5 - _TOLERANCE) & (kji <= shape - 0.5 + _TOLERANCE), axis=1)
    kji = np.clip(kji, 0, shape - 1)
    base = np.minimum(np.floor(kji).astype(np.intp), np.maximum(shape - 2, 0))
    frac = (kji - base).astype(np.float32)
    flat = volume.voxels.reshape(-1)
    strides = np.array([shape[1] * shape[2], shape[2], 1])
    out = np.zeros(len(kji), dtype=np.float32)
    for corner in np.ndindex(2, 2, 2):
        step = np.minimum(base + corner, shape - 1)
        weight = np.ones(len(kji), dtype=np.float32)
        for axis, bit in enumerate(corner):
            weight *= frac[:, axis] if bit else 1.0 - frac[:, axis]
        out += weight * flat[step @ strides]
    out[~inside] = fill_value
    return out.reshape(points.shape[:-1])
