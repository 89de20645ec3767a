"""Volumes: a series of slices as one regular 3-D grid in patient space.

Every 3-D operation of the farm (MPR, slab projections, curved MPR, volume
rendering, fusion) works on a :class:`Volume`: modality values on a regular
grid, and the affine map between voxel indices and patient coordinates (mm,
DICOM LPS). Index order is ``(k, j, i)`` = (slice, row, column) so that
``voxels[k]`` is slice k as stored, and ``voxels[k, j, i]`` is the pixel in
column i, row j of that slice.

:func:`load_volume` builds one from the files of a series (PS3.3 C.7.6.2):
images are kept when they share the most common orientation and size,
sorted along the slice normal (row × column cosines), spaced by their
positions (not Slice Thickness), and put on a regular orthogonal grid —
uneven spacing, missing slices and gantry tilt are resampled, and each such
repair is recorded in :attr:`Volume.warnings`. Slice index k therefore
always increases along ``directions[2]`` = row × column cosines.

Load time (2-core dev machine, shared, load 4–5; 600 uncompressed 512² CT
slices in the page cache; ``python -m tests.bench mpr``): 1.0–1.4 s (target
2 s), of which ~0.75 s is pydicom parsing 600 headers, ~0.15 s mapping the
300 MB of memory (see :func:`render_farm.slices.allocate`: first-touch page
faults alone cost 0.8 s) and ~0.1 s reading pixel data straight into it.
A first read from disk rather than the page cache was measured at 7.4 s.
"""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from render_farm.cache import ByteLRUCache
from render_farm.regrid import resample_along_normal, translate
from render_farm.slices import NotAVolume, SliceRef, allocate, read_slices, read_stored

log = logging.getLogger(__name__)

#: A step this many times the usual one means slices are missing.
GAP_FACTOR = 1.5
#: Steps within this fraction of the usual one count as even.
EVEN_TOLERANCE = 0.02
#: Positions closer than this (mm) along the normal are the same slice.
SAME_POSITION_MM = 1e-3
#: In-plane drift (fraction of a pixel) between first and last slice that counts as tilt.
TILT_PIXELS = 0.1


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


def load_volume(cache: ByteLRUCache, key: str, paths: list[str]) -> Volume:
    """Return the volume of the series in `paths`, cached in `cache` under `key`.

    Concurrent calls with one key read the files once (the cache's loader
    lock). Call from any thread or an rq worker: all arguments are primitives
    and the cache.

    Raises
    ------
    NotAVolume
        The images do not make a volume (one image, fewer than 3 slices,
        mixed orientations or sizes, colour, disagreeing duplicates, no
        geometry); the message says which, in plain words.
    """
    return cache.get_or_load(("volume", key), lambda: read_volume(paths, key=key))


def read_volume(paths: list[str], *, key: str = "") -> Volume:
    """Build a :class:`Volume` from the files of one series (no caching)."""
    notes: list[str] = []
    refs = _one_geometry(read_slices([str(p) for p in paths]), notes)
    row, col = refs[0].orientation[:3], refs[0].orientation[3:]
    normal = np.cross(row, col)
    normal /= np.linalg.norm(normal)
    refs.sort(key=lambda ref: float(ref.position @ normal))
    stored = _read_pixels(refs)
    refs, stored = _drop_duplicates(refs, stored, normal, notes)
    if len(refs) < 3:
        raise NotAVolume(f"only {len(refs)} distinct slice positions: a volume needs at least 3")
    voxels = _modality_values(refs, stored)
    del stored
    depths = np.array([ref.position @ normal for ref in refs])
    origin = refs[0].position
    voxels = _undo_tilt(refs, voxels, normal, depths, notes)
    voxels, step = _even_spacing(voxels, depths, notes)
    voxels.flags.writeable = False
    for note in notes:
        log.warning("volume %s: %s", key or "(unkeyed)", note)
    header = refs[0].header
    volume = Volume(voxels, np.array(origin, dtype=np.float64),
                  (float(step), float(refs[0].spacing[0]), float(refs[0].spacing[1])),
                  np.stack([row, col, normal]), key=key,
                  modality=str(header.get("Modality", "")),
                  frame_of_reference_uid=str(header.get("FrameOfReferenceUID", "")),
                  window=_window(header), warnings=tuple(notes))
    volume.value_range  # computed now, at load, rather than on the first frame
    return volume


def _one_geometry(refs: list[SliceRef], notes: list[str]) -> list[SliceRef]:
    """Keep the images of the most common orientation and size."""
    if len(refs) == 1:
        raise NotAVolume("the series has a single image: it is not a volume")

    def signature(ref: SliceRef) -> tuple:
        return (tuple(np.round(ref.orientation, 3)), ref.rows, ref.columns,
                tuple(np.round(ref.spacing, 4)))

    counts = Counter(signature(ref) for ref in refs)
    best, count = counts.most_common(1)[0]
    if count < 3:
        if len(counts) > 1:
            raise NotAVolume("the images have mixed orientations or sizes and no 3 of them "
                             "share one: they do not make a volume")
        raise NotAVolume(f"only {count} slices: a volume needs at least 3")
    if count < len(refs):
        notes.append(f"{len(refs) - count} image(s) of another orientation or size "
                     "(e.g. a localizer) left out")
    return [ref for ref in refs if signature(ref) == best]


def _read_pixels(refs: list[SliceRef]) -> np.ndarray:
    dtypes = {ref.stored_dtype for ref in refs}
    dtype = dtypes.pop() if len(dtypes) == 1 else np.dtype(np.float32)
    stored = allocate((len(refs), refs[0].rows, refs[0].columns), dtype)
    read_stored(refs, stored)
    return stored


def _drop_duplicates(refs: list[SliceRef], stored: np.ndarray, normal: np.ndarray,
                     notes: list[str]) -> tuple[list[SliceRef], np.ndarray]:
    """Drop repeated slices at one position; refuse when they differ."""
    depths = np.array([ref.position @ normal for ref in refs])
    repeated = np.flatnonzero(np.diff(depths) < SAME_POSITION_MM) + 1
    if repeated.size == 0:
        return refs, stored
    for k in repeated:
        a, b = refs[k - 1], refs[k]
        if (not np.array_equal(stored[k - 1], stored[k]) or a.slope != b.slope
                or a.intercept != b.intercept):
            raise NotAVolume(f"two different images lie at the same position "
                             f"({depths[k]:.2f} mm along the slice normal): the series "
                             "mixes acquisitions, phases or echoes and is not one volume")
    notes.append(f"{repeated.size} duplicate slice(s) ignored")
    keep = np.setdiff1d(np.arange(len(refs)), repeated)
    return [refs[k] for k in keep], stored[keep]


def _modality_values(refs: list[SliceRef], stored: np.ndarray) -> np.ndarray:
    """Apply rescale (PS3.3 C.11.1) per slice: int16 when integral and in range."""
    slopes = np.array([ref.slope for ref in refs])
    intercepts = np.array([ref.intercept for ref in refs])
    if stored.dtype.kind in "iu" and stored.dtype.itemsize <= 2 and np.all(slopes == 1) \
            and np.all(intercepts == np.round(intercepts)):
        flat = stored.reshape(len(refs), -1)
        low = flat.min(axis=1).astype(np.int64) + intercepts.astype(np.int64)
        high = flat.max(axis=1).astype(np.int64) + intercepts.astype(np.int64)
        if low.min() >= -32768 and high.max() <= 32767:
            if stored.dtype == np.int16 or (stored.dtype == np.uint16 and flat.max() < 32768):
                voxels = stored.view(np.int16)
                for k, intercept in enumerate(intercepts):
                    if intercept:
                        voxels[k] += np.int16(intercept)
                return voxels
            voxels = allocate(stored.shape, np.int16)
            for k, intercept in enumerate(intercepts):
                voxels[k] = stored[k].astype(np.int32) + int(intercept)
            return voxels
    voxels = allocate(stored.shape, np.float32)
    for k, (slope, intercept) in enumerate(zip(slopes, intercepts)):
        voxels[k] = stored[k].astype(np.float32) * np.float32(slope) + np.float32(intercept)
    return voxels


def _undo_tilt(refs: list[SliceRef], voxels: np.ndarray, normal: np.ndarray,
               depths: np.ndarray, notes: list[str]) -> np.ndarray:
    """Shift each slice in its plane so all stack straight along the normal.

    With gantry tilt, Image Positions step along a line that is not the
    slice normal; the first slice stays put and the others are moved back
    onto its line (bilinear, the volume minimum where nothing was imaged).
    """
    row, col = refs[0].orientation[:3], refs[0].orientation[3:]
    drift = np.array([ref.position - refs[0].position for ref in refs])
    drift -= np.outer(drift @ normal, normal)
    along_rows = drift @ col / refs[0].spacing[0]
    along_cols = drift @ row / refs[0].spacing[1]
    if max(np.abs(along_rows).max(), np.abs(along_cols).max()) <= TILT_PIXELS:
        return voxels
    sideways = np.linalg.norm(drift[-1])
    angle = np.degrees(np.arctan2(sideways, depths[-1] - depths[0]))
    notes.append(f"gantry tilt of {angle:.1f}° corrected: slices resampled onto an "
                 "orthogonal grid")
    fill = float(voxels.min())
    out = allocate(voxels.shape, voxels.dtype)
    for k in range(len(refs)):
        out[k] = translate(voxels[k], -along_rows[k], -along_cols[k], fill)
    return out


def _even_spacing(voxels: np.ndarray, depths: np.ndarray,
                  notes: list[str]) -> tuple[np.ndarray, float]:
    """Resample along the normal when slice steps are uneven or slices are missing."""
    steps = np.diff(depths)
    usual = float(np.median(steps))
    if np.all(np.abs(steps - usual) <= EVEN_TOLERANCE * usual):
        return voxels, float((depths[-1] - depths[0]) / (len(depths) - 1))
    count = int(round((depths[-1] - depths[0]) / usual)) + 1
    targets = np.linspace(depths[0], depths[-1], count)
    gaps = steps > GAP_FACTOR * usual
    if gaps.any():
        missing = int(sum(round(step / usual) - 1 for step in steps[gaps]))
        where = ", ".join(f"{depths[k]:.1f}–{depths[k + 1]:.1f} mm" for k in np.flatnonzero(gaps)[:3])
        notes.append(f"about {missing} missing slice(s) ({where} along the normal) "
                     "interpolated from their neighbours")
    if not np.all(gaps | (np.abs(steps - usual) <= EVEN_TOLERANCE * usual)):
        notes.append(f"uneven slice spacing ({steps.min():.2f} to {steps.max():.2f} mm) "
                     f"resampled to {targets[1] - targets[0]:.2f} mm")
    return resample_along_normal(voxels, depths, targets), float(targets[1] - targets[0])


def _window(header) -> tuple[float, float] | None:
    """First Window Center/Width of the header (or its shared frame VOI), if any."""
    source = header
    if "WindowCenter" not in header:
        shared = (header.get("SharedFunctionalGroupsSequence") or [None])[0]
        voi = shared.get("FrameVOILUTSequence") if shared is not None else None
        per_frame = header.get("PerFrameFunctionalGroupsSequence")
        if not voi and per_frame:
            voi = per_frame[0].get("FrameVOILUTSequence")
        if not voi:
            return None
        source = voi[0]
    try:
        centre, width = source.WindowCenter, source.WindowWidth
        centre = float(centre[0] if hasattr(centre, "__len__") and not isinstance(centre, str) else centre)
        width = float(width[0] if hasattr(width, "__len__") and not isinstance(width, str) else width)
    except (AttributeError, ValueError, TypeError, IndexError):
        return None
    return (centre, width) if width > 0 else None
