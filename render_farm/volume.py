"""Volumes: a series of slices as one regular 3-D grid in patient space.

Every 3-D operation of the farm (MPR, slab projections, curved MPR, volume
rendering, fusion) works on a :class:`Volume`: modality values on a regular
grid, and the affine map between voxel indices and patient coordinates (mm,
DICOM LPS). Index order is ``(k, j, i)`` = (slice, row, column) so that
``voxels[k]`` is slice k as stored, and ``voxels[k, j, i]`` is the pixel in
column i, row j of that slice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True, eq=False)
class Volume:
    """A regular grid of modality values (HU for CT) and where it lies in patient space.

    Parameters
    ----------
    voxels : numpy.ndarray
        Shape (slices, rows, columns); ``int16`` when the modality values
        are integers that fit, else ``float32``. Read-only.
    origin : numpy.ndarray
        Patient position (mm, LPS) of the centre of voxel (0, 0, 0).
    spacing : tuple of float
        (slice, row, column) spacing in mm: the distance between slice
        centres, between row centres and between column centres.
    directions : numpy.ndarray
        3×3; row 0 is the unit patient vector along increasing column index
        i (Image Orientation row cosines), row 1 along increasing row index j
        (column cosines), row 2 along increasing slice index k.
    key : str
        Cache identity (tenant, series, content).
    modality : str
    frame_of_reference_uid : str
    window : tuple of float or None
        (centre, width) the series suggests, in modality values.
    warnings : tuple of str
        What the assembly had to do or noticed (resampled, gantry tilt,
        missing slices), in plain words for the UI.
    """

    voxels: np.ndarray
    origin: np.ndarray
    spacing: tuple[float, float, float]
    directions: np.ndarray
    key: str = ""
    modality: str = ""
    frame_of_reference_uid: str = ""
    window: tuple[float, float] | None = None
    warnings: tuple[str, ...] = field(default=())

    @property
    def shape(self) -> tuple[int, int, int]:
        """(slices, rows, columns)."""
        return tuple(self.voxels.shape)  # type: ignore[return-value]

    @cached_property
    def value_range(self) -> tuple[float, float]:
        """(minimum, maximum) modality value, computed once."""
        if self.voxels.size == 0:
            return (0.0, 0.0)
        return float(self.voxels.min()), float(self.voxels.max())

    @property
    def nbytes(self) -> int:
        """Bytes held, for the farm's byte-bounded cache."""
        return int(self.voxels.nbytes)

    def index_to_patient(self, kji: np.ndarray) -> np.ndarray:
        """Patient coordinates (mm) of continuous indices ``[..., (k, j, i)]``."""
        kji = np.asarray(kji, dtype=np.float64)
        steps = kji[..., ::-1] * np.asarray(self.spacing[::-1])  # (i, j, k) in mm
        return self.origin + steps @ self.directions

    def patient_to_index(self, xyz: np.ndarray) -> np.ndarray:
        """Continuous indices ``[..., (k, j, i)]`` of patient coordinates (mm)."""
        offset = np.asarray(xyz, dtype=np.float64) - self.origin
        steps = offset @ np.linalg.inv(self.directions)  # (i, j, k) in mm
        return (steps / np.asarray(self.spacing[::-1]))[..., ::-1]
