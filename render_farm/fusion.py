"""Image fusion (融合): PET, SPECT or MR in colour over CT, in one frame of reference.

For a plane of the base (CT) volume — one of its own slices, or an MPR
plane — both volumes are sampled on that plane through patient
coordinates (:func:`render_farm.planes.sample`, trilinear), so the overlay
may have any grid, origin, spacing and orientation: a PET voxel lands on the
CT pixel at the same patient position. Each is windowed separately; the
overlay goes through a pseudo-colour map (:mod:`render_farm.colormaps`)
and is blended over the grey base with an opacity. The blended RGB image
then goes through the ordinary viewport geometry, filters and encoding.

Query: every :class:`~render_farm.viewport.ViewState` key (``wc``/``ww``
window the base; geometry and format as for 2-D frames), plus

    k      base slice index (0-based) to fuse on                     middle slice
    o cx cy cz rx ry rz st sp
           instead of k: the MPR plane of the base (render_farm.mpr_state keys),
           e.g. a coronal or oblique plane, or a slab
    omin   overlay value shown at the bottom of the colour map       0
    omax   overlay value shown at the top                            overlay volume max
    ocm    overlay colour map: hot rainbow pet bone coolwarm gray    pet
    op     overlay opacity 0..1                                      0.5
    ot     1: overlay values below omin are transparent              1
    suv    1: overlay window in SUVbw (PET, see render_farm.suv)     0
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import numpy as np
import pydicom
from PIL import Image

from render_farm.query_values import finite_number, flag, number
from render_farm.cache import ByteLRUCache
from render_farm.colormaps import Colormap, colormap_lut
from render_farm.encode import encode
from render_farm.mpr import plane_for
from render_farm.mpr_state import QUERY_KEYS as MPR_KEYS, MPRState
from render_farm.mpr_state import split_query as split_mpr_query
from render_farm.pipeline import to_uint8, window
from render_farm.plane_display import window_of
from render_farm.planes import Plane, sample
from render_farm.suv import suv_bw_factor
from render_farm.transform import apply_filters, apply_geometry
from render_farm.viewport import ViewState, viewport_geometry
from render_farm.volume import Volume, load_volume

_KEYS = ("k", "omin", "omax", "ocm", "op", "ot", "suv")


@dataclass(frozen=True)
class FusionState:
    """The fusion part of the view (see the module docstring for keys and defaults)."""

    slice_index: int | None = None
    overlay_min: float | None = None
    overlay_max: float | None = None
    colormap: Colormap = Colormap.PET
    opacity: float = 0.5
    transparent_below: bool = True
    suv: bool = False
    mpr: MPRState | None = None

    def __post_init__(self) -> None:
        if self.slice_index is not None and self.mpr is not None:
            raise ValueError("k and the MPR keys (o, cx, cy, cz, rx, ry, rz, st, sp) both "
                             "choose the plane: give one or the other")
        if self.slice_index is not None and (isinstance(self.slice_index, bool)
                                             or not isinstance(self.slice_index, int)
                                             or self.slice_index < 0):
            raise ValueError(f"k: must be a slice index ≥ 0, got {self.slice_index!r}")
        for key, value in (("omin", self.overlay_min), ("omax", self.overlay_max)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{key}: must be a finite number, got {value!r}")
        if (self.overlay_min is not None and self.overlay_max is not None
                and self.overlay_min >= self.overlay_max):
            raise ValueError(f"omin and omax: the minimum must be below the maximum, "
                             f"got {self.overlay_min:g} and {self.overlay_max:g}")
        if not isinstance(self.colormap, Colormap):
            raise ValueError(f"ocm: not a colour map: {self.colormap!r}")
        if not (isinstance(self.opacity, (int, float)) and 0.0 <= self.opacity <= 1.0):
            raise ValueError(f"op: opacity must be a number 0..1, got {self.opacity!r}")

    def to_query(self) -> str:
        """Canonical query of the fusion keys (defaults omitted, sorted)."""
        pairs = []
        if self.slice_index is not None:
            pairs.append(("k", str(self.slice_index)))
        for key, value in (("omin", self.overlay_min), ("omax", self.overlay_max)):
            if value is not None:
                pairs.append((key, number(value)))
        if self.colormap is not Colormap.PET:
            pairs.append(("ocm", self.colormap.value))
        if self.opacity != 0.5:
            pairs.append(("op", number(self.opacity)))
        if not self.transparent_below:
            pairs.append(("ot", "0"))
        if self.suv:
            pairs.append(("suv", "1"))
        if self.mpr is not None:
            # An all-default MPR state still says "an MPR plane": keep one key of it.
            pairs += parse_qsl(self.mpr.to_query()) or [("o", self.mpr.orientation.value)]
        return urlencode(sorted(pairs))


def split_query(query: str) -> tuple[FusionState, ViewState]:
    """Parse a fusion query into its fusion and viewport parts.

    Raises
    ------
    ValueError
        Any bad key or value; the message names the key.
    """
    own: dict[str, str] = {}
    view: list[tuple[str, str]] = []
    items = parse_qsl(query, keep_blank_values=True)
    for key, value in items:
        if key in _KEYS:
            if key in own:
                raise ValueError(f"{key}: given more than once")
            own[key] = value.strip()
        else:
            view.append((key, value))
    values: dict[str, object] = {}
    if "k" in own:
        try:
            values["slice_index"] = int(own["k"])
        except ValueError:
            raise ValueError(f"k: expected a slice index, got {own['k']!r}") from None
    if "omin" in own:
        values["overlay_min"] = finite_number("omin", own["omin"])
    if "omax" in own:
        values["overlay_max"] = finite_number("omax", own["omax"])
    if "ocm" in own:
        try:
            values["colormap"] = Colormap(own["ocm"].lower())
        except ValueError:
            known = ", ".join(c.value for c in Colormap)
            raise ValueError(f"ocm: expected one of {known}, got {own['ocm']!r}") from None
    if "op" in own:
        values["opacity"] = finite_number("op", own["op"])
    if "ot" in own:
        values["transparent_below"] = flag("ot", own["ot"])
    if "suv" in own:
        values["suv"] = flag("suv", own["suv"])
    mpr, view_state = split_mpr_query(urlencode(view))
    if any(key in MPR_KEYS for key, _ in items):
        values["mpr"] = mpr
    return FusionState(**values), view_state  # type: ignore[arg-type]


def canonical_query(query: str) -> str:
    """The one canonical form of a query: both parts validated, keys sorted, defaults omitted.

    Equal views give equal strings, for cache keys and ETags.
    """
    own, view = split_query(query)
    pairs = [pair.split("=", 1) for part in (own.to_query(), view.to_query()) if part
             for pair in part.split("&")]
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def blend(base: np.ndarray, overlay: np.ndarray, base_window: tuple[float, float],
          overlay_range: tuple[float, float], colormap: Colormap = Colormap.PET,
          opacity: float = 0.5, transparent_below: bool = True) -> np.ndarray:
    """Blend an overlay image in colour over a grey base image of the same shape.

    Parameters
    ----------
    base, overlay : numpy.ndarray
        (rows, columns) modality values on the same pixels; NaN in the
        overlay (outside its volume) is transparent.
    base_window : (centre, width)
        VOI window of the base (PS3.3 C.11.2.1.2, LINEAR).
    overlay_range : (low, high)
        Overlay values mapped to the first and last colour of `colormap`.
    colormap : Colormap
    opacity : float
        Weight of the overlay colour, 0..1.
    transparent_below : bool
        Leave pixels below `low` uncoloured (a PET background shows no tint).

    Returns
    -------
    numpy.ndarray
        (rows, columns, 3) uint8 RGB.
    """
    grey = to_uint8(window(base, *base_window)).astype(np.float32)
    low, high = overlay_range
    values = np.nan_to_num(overlay, nan=-np.inf)
    level = to_uint8(np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0)
    colour = colormap_lut(colormap)[level].astype(np.float32)
    alpha = np.full(base.shape, float(opacity), dtype=np.float32)
    hidden = ~np.isfinite(values) | (values < low if transparent_below else False)
    alpha[hidden] = 0.0
    out = grey[..., None] * (1.0 - alpha[..., None]) + colour * alpha[..., None]
    return to_uint8(out)


def slice_plane(volume: Volume, index: int) -> Plane:
    """The plane of slice `index` of `volume`, pixel for pixel, for :func:`planes.sample`."""
    if not 0 <= index < volume.shape[0]:
        raise IndexError(f"slice {index} out of range: the volume has {volume.shape[0]} slices")
    return Plane(origin=volume.index_to_patient(np.array([index, 0.0, 0.0])),
                 row_axis=np.asarray(volume.directions[0], dtype=np.float64),
                 col_axis=np.asarray(volume.directions[1], dtype=np.float64),
                 spacing=(volume.spacing[1], volume.spacing[2]),
                 size=(volume.shape[1], volume.shape[2]))


def fuse(base: Volume, overlay: Volume, plane: Plane, state: FusionState, base_window:
         tuple[float, float] | None = None, overlay_scale: float = 1.0) -> np.ndarray:
    """Sample both volumes on `plane` and blend them (RGB uint8, the plane's pixels).

    Parameters
    ----------
    base, overlay : Volume
        Same frame of reference (checked when both carry its UID).
    plane : render_farm.planes.Plane
    state : FusionState
    base_window : (centre, width), optional
        Default: the base series' window, else its min-max (as MPR shows it).
    overlay_scale : float
        Factor on overlay values before windowing (the SUVbw factor).

    Raises
    ------
    ValueError
        Different frames of reference: such series need registration first.
    """
    if (base.frame_of_reference_uid and overlay.frame_of_reference_uid
            and base.frame_of_reference_uid != overlay.frame_of_reference_uid):
        raise ValueError("the two series are in different frames of reference; "
                         "fusing them needs a registration")
    base_values = sample(base, plane)
    # NaN outside the overlay volume: blended as transparent, not as its minimum.
    overlay_values = sample(overlay, plane, fill=np.nan).astype(np.float32) \
        * np.float32(overlay_scale)
    low = 0.0 if state.overlay_min is None else state.overlay_min
    if state.overlay_max is not None:
        high = state.overlay_max
    else:
        # The whole overlay volume's maximum, so the colours hold while scrolling.
        high = overlay.value_range[1] * overlay_scale
        high = high if high > low else low + 1.0
    window_ = base_window or window_of(base, ViewState())
    return blend(base_values, overlay_values, window_, (low, high), state.colormap,
                 state.opacity, state.transparent_below)


def render_fusion(base: Volume, overlay: Volume, fusion: FusionState, view: ViewState,
                  overlay_scale: float = 1.0) -> Image.Image:
    """Fuse on the state's plane (a base slice or an MPR plane), then apply the
    viewport (geometry, filters)."""
    if fusion.mpr is not None:
        plane = plane_for(base, fusion.mpr)
    else:
        index = base.shape[0] // 2 if fusion.slice_index is None else fusion.slice_index
        plane = slice_plane(base, index)
    base_window = None
    if view.window_center is not None and view.window_width is not None:
        base_window = (view.window_center, view.window_width)
    rgb = fuse(base, overlay, plane, fusion, base_window, overlay_scale)
    image = apply_geometry(Image.fromarray(rgb),
                           viewport_geometry(view, rgb.shape[:2], plane.spacing))
    if view.smoothing or view.sharpening:
        image = apply_filters(image, view.smoothing, view.sharpening)
    return image


def overlay_suv_factor(cache: ByteLRUCache, overlay_key: str, overlay_paths: list[str]) -> float:
    """SUVbw factor of a PET series from its first file's header (cached per series).

    The factor is the same for every slice when values are decay corrected
    (START, ADMIN), which is how PET series are stored in practice.
    """
    if not overlay_paths:
        raise ValueError("the overlay series has no files")

    def load() -> float:
        header = pydicom.dcmread(overlay_paths[0], stop_before_pixels=True, force=True)
        return suv_bw_factor(header)

    return cache.get_or_load(("suv-factor", overlay_key), load)


def fusion_frame(cache: ByteLRUCache, base_key: str, base_paths: list[str], overlay_key: str,
                 overlay_paths: list[str], query: str) -> tuple[bytes, str]:
    """Operation: a fused image of two series, ``(encoded image, media type)``.

    Parameters
    ----------
    cache : ByteLRUCache
        The process's render cache (both volumes and the SUV factor live there).
    base_key, overlay_key : str
        Cache identities of the base (CT) and overlay (PET/SPECT/MR) volumes.
    base_paths, overlay_paths : list of str
        The stored Part 10 files of each series.
    query : str
        ViewState keys plus the fusion keys of the module docstring.

    Raises
    ------
    ValueError
        Bad query, series in different frames of reference, a series that is
        not a volume (:class:`render_farm.slices.NotAVolume`), or ``suv=1`` on a
        series whose header lacks what SUV needs (:class:`render_farm.suv.SUVError`).
    IndexError
        ``k`` past the base's last slice.
    """
    fusion, view = split_query(query)
    base = load_volume(cache, base_key, base_paths)
    overlay = load_volume(cache, overlay_key, overlay_paths)
    scale = overlay_suv_factor(cache, overlay_key, overlay_paths) if fusion.suv else 1.0
    image = render_fusion(base, overlay, fusion, view, scale)
    return encode(image, view.format, view.quality)
