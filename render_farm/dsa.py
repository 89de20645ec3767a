"""Digital subtraction angiography (DSA) of X-ray angiography multi-frame images.

A contrast ("live") frame minus a mask frame taken before the contrast
arrived leaves only the vessels (PS3.3 C.7.6.10, Mask module). Linear
subtraction works on modality values; logarithmic subtraction,
``1000 · (ln(live + 1) − ln(mask + 1))``, is for pixel values proportional
to X-ray intensity (Pixel Intensity Relationship LIN): it cancels the
overlying anatomy multiplicatively, so a vessel keeps one value over bone
and over soft tissue. A mask pixel shift (sub-pixel, bilinear) corrects
patient motion between mask and live frame.

The difference then goes through the usual 2-D display chain: window
(by default centre 0, as differences are signed, and a width taken from
the mask so every frame of a run shares it), inversion, viewport geometry,
filters, pseudo colour, encoding.

Query: every :class:`~render_farm.viewport.ViewState` key, plus

    mask  0-based mask frame; absent: the file's Mask Subtraction Sequence
          (0028,6100) frames (averaged), else frame 0
    log   1 for logarithmic subtraction                         0
    sx sy mask shift in pixels, right and down; absent: the file's
          Mask Sub-pixel Shift (0028,6114), else 0
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import numpy as np
from PIL import Image

from render_farm.cache import ByteLRUCache
from render_farm.colormaps import colorize
from render_farm.decode import FrameSource, load_source
from render_farm.encode import encode
from render_farm.pipeline import is_inverse, modality_lut, presentation, to_uint8, window
from render_farm.transform import apply_filters, apply_geometry
from render_farm.viewport import ViewState, viewport_geometry

#: Scale of logarithmic differences, so windows are in whole numbers (‰ of ln).
LOG_SCALE = 1000.0
MAX_SHIFT = 1000.0
_DSA_KEYS = ("mask", "log", "sx", "sy")


@dataclass(frozen=True)
class DSAState:
    """The subtraction part of a DSA view (see the module docstring for defaults)."""

    mask_frame: int | None = None
    logarithmic: bool = False
    shift_x: float | None = None
    shift_y: float | None = None

    def __post_init__(self) -> None:
        if self.mask_frame is not None and (isinstance(self.mask_frame, bool)
                                            or not isinstance(self.mask_frame, int)
                                            or self.mask_frame < 0):
            raise ValueError(f"mask: must be a frame index ≥ 0, got {self.mask_frame!r}")
        for key, value in (("sx", self.shift_x), ("sy", self.shift_y)):
            if value is not None and not (math.isfinite(value) and abs(value) <= MAX_SHIFT):
                raise ValueError(f"{key}: mask shift must be a number of pixels within "
                                 f"±{MAX_SHIFT:g}, got {value!r}")

    def to_query(self) -> str:
        """Canonical query of the DSA keys (defaults omitted, sorted)."""
        pairs = []
        if self.mask_frame is not None:
            pairs.append(("mask", str(self.mask_frame)))
        if self.logarithmic:
            pairs.append(("log", "1"))
        for key, value in (("sx", self.shift_x), ("sy", self.shift_y)):
            if value is not None:
                pairs.append((key, repr(float(value)).removesuffix(".0")))
        return urlencode(sorted(pairs))


def split_query(query: str) -> tuple[DSAState, ViewState]:
    """Parse a DSA query into its subtraction and viewport parts.

    Raises
    ------
    ValueError
        Any bad key or value (the message names the key).
    """
    dsa: dict[str, str] = {}
    view: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in _DSA_KEYS:
            if key in dsa:
                raise ValueError(f"{key}: given more than once")
            dsa[key] = value.strip()
        else:
            view.append((key, value))
    try:
        mask = int(dsa["mask"]) if "mask" in dsa else None
    except ValueError:
        raise ValueError(f"mask: expected a frame index, got {dsa['mask']!r}") from None
    if dsa.get("log", "0").lower() not in ("0", "1", "true", "false", "on", "off", "yes", "no"):
        raise ValueError(f"log: expected 1 or 0, got {dsa['log']!r}")
    shifts = []
    for key in ("sx", "sy"):
        try:
            shifts.append(float(dsa[key]) if key in dsa else None)
        except ValueError:
            raise ValueError(f"{key}: expected a number of pixels, got {dsa[key]!r}") from None
    state = DSAState(mask, dsa.get("log", "0").lower() in ("1", "true", "on", "yes"), *shifts)
    return state, ViewState.from_query(urlencode(view))


def canonical_query(query: str) -> str:
    """The one canonical form of a query: both parts validated, keys sorted, defaults omitted.

    Equal views give equal strings, for cache keys and ETags.
    """
    own, view = split_query(query)
    pairs = [pair.split("=", 1) for part in (own.to_query(), view.to_query()) if part
             for pair in part.split("&")]
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def shift_image(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Move `image` content `dx` pixels right and `dy` down, bilinearly.

    ``out[y, x] = image[y - dy, x - dx]``, edge pixels repeated beyond the border.
    """
    image = np.asarray(image, dtype=np.float64)
    if dx == 0 and dy == 0:
        return image
    rows, columns = image.shape
    ys = np.clip(np.arange(rows) - dy, 0, rows - 1)
    xs = np.clip(np.arange(columns) - dx, 0, columns - 1)
    y0 = np.minimum(np.floor(ys).astype(np.intp), rows - 2 if rows > 1 else 0)
    x0 = np.minimum(np.floor(xs).astype(np.intp), columns - 2 if columns > 1 else 0)
    y1, x1 = np.minimum(y0 + 1, rows - 1), np.minimum(x0 + 1, columns - 1)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    top = image[y0][:, x0] * (1 - fx) + image[y0][:, x1] * fx
    bottom = image[y1][:, x0] * (1 - fx) + image[y1][:, x1] * fx
    return top * (1 - fy) + bottom * fy


def subtract(live: np.ndarray, mask: np.ndarray, shift: tuple[float, float] = (0.0, 0.0),
             logarithmic: bool = False) -> np.ndarray:
    """Return ``live − shifted mask`` (float32), linear or logarithmic (see the module)."""
    live = np.asarray(live, dtype=np.float64)
    moved = shift_image(mask, *shift)
    if logarithmic:
        return (LOG_SCALE * (np.log1p(np.maximum(live, 0.0))
                             - np.log1p(np.maximum(moved, 0.0)))).astype(np.float32)
    return (live - moved).astype(np.float32)


def _mask_defaults(source: FrameSource) -> tuple[list[int], tuple[float, float]]:
    """Mask frames (0-based) and shift from the file's Mask Subtraction Sequence."""
    items = source.dataset.get("MaskSubtractionSequence") or []
    frames: list[int] = []
    shift = (0.0, 0.0)
    if items:
        numbers = items[0].get("MaskFrameNumbers")
        if numbers is not None:
            numbers = [numbers] if isinstance(numbers, int) else list(numbers)
            frames = [int(n) - 1 for n in numbers]   # (0028,6110) is 1-based
        pixel_shift = items[0].get("MaskSubPixelShift")
        if pixel_shift is not None and len(pixel_shift) == 2:
            # (0028,6114) is (column shift, row shift).
            shift = (float(pixel_shift[0]), float(pixel_shift[1]))
    frames = [f for f in frames if 0 <= f < source.number_of_frames]
    return frames or [0], shift


def _modality(source: FrameSource, index: int) -> np.ndarray:
    attrs = source.frame_attributes(index)
    if not attrs.photometric.is_monochrome or source.frame(index).ndim != 2:
        raise ValueError("DSA needs grayscale frames")
    return modality_lut(source.frame(index), attrs.rescale_slope, attrs.rescale_intercept,
                        attrs.modality_lut)


def _mask(source: FrameSource, state: DSAState) -> tuple[np.ndarray, tuple[float, float]]:
    """The mask image (modality values, averaged over its frames) and its shift."""
    frames, file_shift = _mask_defaults(source)
    if state.mask_frame is not None:
        frames = [state.mask_frame]
    mask = np.mean([_modality(source, f) for f in frames], axis=0)
    shift = (file_shift[0] if state.shift_x is None else state.shift_x,
             file_shift[1] if state.shift_y is None else state.shift_y)
    return mask, shift


def subtracted_frame(source: FrameSource, frame: int, state: DSAState) -> np.ndarray:
    """The DSA difference image of `frame` (float32, modality or log units).

    Raises
    ------
    IndexError
        `frame` or the mask frame is past the last frame.
    ValueError
        Not a grayscale image.
    """
    mask, shift = _mask(source, state)
    return subtract(_modality(source, frame), mask, shift, state.logarithmic)


def default_dsa_window(mask: np.ndarray, logarithmic: bool = False) -> tuple[float, float]:
    """Centre 0 and a width from the mask's own contrast, the same for every live frame.

    A per-frame window would flicker in a cine and hide how the contrast
    fills and washes out. The width is a quarter of the mask's 0.5–99.5
    percentile spread (in log units for logarithmic subtraction), at least
    a tenth of its median level (100 log units), so a vessel that takes a
    few percent of the signal is clearly dark.
    """
    low, median, high = np.percentile(np.maximum(mask, 0.0), (0.5, 50.0, 99.5))
    if logarithmic:
        spread = LOG_SCALE * (np.log1p(high) - np.log1p(low))
        return 0.0, float(max(spread / 4.0, 100.0))
    return 0.0, float(max((high - low) / 4.0, median / 10.0, 2.0))


def render_dsa(source: FrameSource, frame: int, dsa: DSAState, state: ViewState) -> Image.Image:
    """Subtract and display: window → presentation → viewport → filters → pseudo colour."""
    mask, shift = _mask(source, dsa)
    difference = subtract(_modality(source, frame), mask, shift, dsa.logarithmic)
    if state.window_center is not None and state.window_width is not None:
        centre, width = state.window_center, state.window_width
    else:
        centre, width = default_dsa_window(mask, dsa.logarithmic)
    attrs = source.frame_attributes(frame)
    function = state.window_function or attrs.voi_function
    inverse = is_inverse(attrs.photometric, attrs.presentation_shape, state.invert)
    levels = to_uint8(presentation(window(difference, centre, width, function), inverse))
    image = apply_geometry(Image.fromarray(levels),
                           viewport_geometry(state, source.shape, attrs.spacing))
    if state.smoothing or state.sharpening:
        image = apply_filters(image, state.smoothing, state.sharpening)
    return colorize(image, state.colormap)


def dsa_frame(cache: ByteLRUCache, path: str, source_key: str, query: str,
              frame: int) -> tuple[bytes, str]:
    """Operation: frame `frame` of an XA multi-frame instance, mask subtracted.

    Parameters
    ----------
    cache : ByteLRUCache
        Where the decoded source and frames are kept (shared with 2-D frames).
    path : str
        The stored Part 10 file.
    source_key : str
        Cache identity of the instance (tenant, SOP Instance UID, content).
    query : str
        ViewState keys plus ``mask``, ``log``, ``sx``, ``sy`` (module docstring);
        the ViewState frame is replaced by `frame`.
    frame : int
        0-based live frame.

    Returns
    -------
    tuple of (bytes, str)
        Encoded image and media type.
    """
    dsa, state = split_query(query)
    state = state.replace(frame=frame)
    source = load_source(cache, source_key, path)
    if dsa.mask_frame is not None and dsa.mask_frame >= source.number_of_frames:
        raise IndexError(f"mask frame {dsa.mask_frame} out of range: the image has "
                         f"{source.number_of_frames} frame(s)")
    return encode(render_dsa(source, frame, dsa, state), state.format, state.quality)
