"""Resample a stack of slices onto a regular grid (uneven spacing, gaps, gantry tilt).

Pure numpy, linear interpolation: along the slice normal between the two
neighbouring slices, and within a slice (tilt) between the four
neighbouring pixels.
"""
from __future__ import annotations

import numpy as np

from render_farm.slices import allocate


def resample_along_normal(stack: np.ndarray, positions: np.ndarray,
                          targets: np.ndarray) -> np.ndarray:
    """Interpolate slices at `targets` from slices at increasing `positions`.

    Parameters
    ----------
    stack : numpy.ndarray
        (n, rows, columns) values of slices at `positions` (mm along the normal).
    positions : numpy.ndarray
        Increasing, length n.
    targets : numpy.ndarray
        Where the output slices lie, within ``[positions[0], positions[-1]]``.

    Returns
    -------
    numpy.ndarray
        (len(targets), rows, columns), the dtype of `stack` (integers rounded).
    """
    out = allocate((len(targets),) + stack.shape[1:], stack.dtype)
    upper = np.clip(np.searchsorted(positions, targets, side="right"), 1, len(positions) - 1)
    for m, (t, hi) in enumerate(zip(targets, upper)):
        lo = hi - 1
        weight = (t - positions[lo]) / (positions[hi] - positions[lo])
        weight = min(max(weight, 0.0), 1.0)
        if weight <= 1e-6:
            out[m] = stack[lo]
        elif weight >= 1 - 1e-6:
            out[m] = stack[hi]
        else:
            blend = (stack[lo].astype(np.float32) * np.float32(1.0 - weight)
                     + stack[hi].astype(np.float32) * np.float32(weight))
            out[m] = np.rint(blend) if out.dtype.kind in "iu" else blend
    return out


def translate(image: np.ndarray, dy: float, dx: float, fill: float) -> np.ndarray:
    """Return ``out[y, x] = image[y + dy, x + dx]`` (bilinear), `fill` outside.

    Used to undo gantry tilt: each slice is shifted in its own plane by the
    offset of its Image Position from the first slice's line.
    """
    y0, x0 = int(np.floor(dy)), int(np.floor(dx))
    fy, fx = dy - y0, dx - x0
    out = np.zeros(image.shape, dtype=np.float32)
    for oy, wy in ((y0, 1.0 - fy), (y0 + 1, fy)):
        for ox, wx in ((x0, 1.0 - fx), (x0 + 1, fx)):
            weight = wy * wx
            if weight > 1e-9:
                out += np.float32(weight) * _shifted(image, oy, ox, fill)
    return np.rint(out).astype(image.dtype) if image.dtype.kind in "iu" else out.astype(image.dtype)


def _shifted(image: np.ndarray, oy: int, ox: int, fill: float) -> np.ndarray:
    """``out[y, x] = image[y + oy, x + ox]`` for whole-pixel offsets, `fill` outside."""
    rows, columns = image.shape
    out = np.full(image.shape, fill, dtype=np.float32)
    ys = slice(max(0, -oy), min(rows, rows - oy))
    xs = slice(max(0, -ox), min(columns, columns - ox))
    if ys.start < ys.stop and xs.start < xs.stop:
        out[ys, xs] = image[ys.start + oy:ys.stop + oy, xs.start + ox:xs.stop + ox]
    return out
