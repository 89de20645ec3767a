"""Viewport state: every parameter of a rendered view, and its URL form.

A render is a pure function of (instance, :class:`ViewState`). The state
travels in the image URL, so it has one canonical query encoding — short
keys, defaults omitted, keys sorted, numbers in their shortest exact form —
and :meth:`ViewState.cache_key` hashes that encoding for ETags and caches.

The geometry is one affine map between display and image pixels
(:func:`display_to_image`). Both use continuous coordinates in which pixel
(column i, row j) covers [i, i+1) × [j, j+1), so its centre is (i+0.5, j+0.5)
— the convention of Pillow's affine transform and of browser event offsets.
"""
from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Mapping
import dataclasses
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np

from render_farm.query_values import finite_number, flag, number
from render_farm.colormaps import Colormap
from render_farm.encode import ImageFormat
from render_farm.pipeline import WindowFunction


class FitMode(enum.Enum):
    """How the image is scaled into the viewport before zoom applies."""

    FIT = "fit"          # whole image visible, letterboxed
    FILL = "fill"        # viewport covered, image cropped
    PIXEL = "pixel"      # one image pixel per display pixel (1:1)
    TRUE_SIZE = "true"   # physical size, given the display's mm per pixel


MAX_OUTPUT = 8192
MAX_FRAME = 1_000_000
ZOOM_RANGE = (0.01, 64.0)
MAX_PAN = 1e6
MAX_WINDOW = 1e9
_DEFAULT_QUALITY = 90

# Short query names; the canonical query lists them in sorted key order.
_KEYS = {
    "frame": "f", "window_center": "wc", "window_width": "ww", "window_function": "wf",
    "width": "w", "height": "h", "fit": "fit", "display_mm_per_px": "mm", "zoom": "z",
    "pan_x": "px", "pan_y": "py", "rotation": "rot", "hflip": "hf", "vflip": "vf",
    "invert": "inv", "colormap": "cm", "smoothing": "sm", "sharpening": "sh",
    "overlays": "ov", "format": "fmt", "quality": "q",
}
_FIELDS = {key: name for name, key in _KEYS.items()}
_FUNCTION_CODES = {WindowFunction.LINEAR: "linear", WindowFunction.LINEAR_EXACT: "exact",
                   WindowFunction.SIGMOID: "sigmoid"}
_ENUM_CODES: dict[str, dict[Any, str]] = {
    "window_function": _FUNCTION_CODES,
    "fit": {mode: mode.value for mode in FitMode},
    "colormap": {cmap: cmap.value for cmap in Colormap},
    "format": {fmt: fmt.value for fmt in ImageFormat},
}
_ALIASES = {"format": {"jpg": ImageFormat.JPEG}}


@dataclass(frozen=True)
class ViewState:
    """Every parameter of one rendered viewport.

    Construction validates all values (ValueError naming the query key) and
    normalises `rotation` into [0, 360) and `quality` of lossless formats
    (PNG, GIF, TIFF, BMP) to the default, so equal renders have equal states.

    Attributes
    ----------
    frame : int
        0-based frame index.
    window_center, window_width : float or None
        VOI window (PS3.3 C.11.2.1.2) in modality units; None for the file's
        first window (else its VOI LUT, else a min-max window). Both or neither.
    window_function : WindowFunction or None
        None uses the file's VOI LUT Function (0028,1056).
    width, height : int or None
        Output size in pixels; None for the image's own (rotated) size.
    fit : FitMode
        Base scaling; `zoom` multiplies it.
    display_mm_per_px : float or None
        Physical pixel pitch of the display, required by TRUE_SIZE.
    zoom : float
    pan_x, pan_y : float
        Offset, in image pixels, of the image point shown at the viewport
        centre from the image centre.
    rotation : float
        Clockwise degrees, applied after flips (as PS3.3 C.10.6.1.1 orders them).
    hflip, vflip, invert, overlays : bool
    colormap : Colormap
    smoothing, sharpening : int
        Filter strength 0 (off) to 3.
    format : ImageFormat
    quality : int
        1..100 for JPEG/WebP (WebP 100 is lossless); ignored by lossless formats.
    """

    frame: int = 0
    window_center: float | None = None
    window_width: float | None = None
    window_function: WindowFunction | None = None
    width: int | None = None
    height: int | None = None
    fit: FitMode = FitMode.FIT
    display_mm_per_px: float | None = None
    zoom: float = 1.0
    pan_x: float = 0.0
    pan_y: float = 0.0
    rotation: float = 0.0
    hflip: bool = False
    vflip: bool = False
    invert: bool = False
    colormap: Colormap = Colormap.GRAY
    smoothing: int = 0
    sharpening: int = 0
    overlays: bool = False
    format: ImageFormat = ImageFormat.JPEG
    quality: int = _DEFAULT_QUALITY

    def __post_init__(self) -> None:
        _check_int(self, "frame", 0, MAX_FRAME)
        _check_optional_float(self, "window_center", -MAX_WINDOW, MAX_WINDOW)
        _check_optional_float(self, "window_width", 0.0, MAX_WINDOW, exclusive_low=True)
        if (self.window_center is None) != (self.window_width is None):
            raise ValueError("wc and ww (window centre and width) must be given together")
        for name in ("width", "height"):
            if getattr(self, name) is not None:
                _check_int(self, name, 1, MAX_OUTPUT)
        if (self.width is None) != (self.height is None):
            raise ValueError("w and h (output width and height) must be given together")
        _check_optional_float(self, "display_mm_per_px", 0.0, 10.0, exclusive_low=True)
        if self.fit is FitMode.TRUE_SIZE and self.display_mm_per_px is None:
            raise ValueError("fit=true (true size) needs mm, the display's mm per pixel")
        _check_float(self, "zoom", *ZOOM_RANGE)
        _check_float(self, "pan_x", -MAX_PAN, MAX_PAN)
        _check_float(self, "pan_y", -MAX_PAN, MAX_PAN)
        _check_float(self, "rotation", -1e6, 1e6)
        object.__setattr__(self, "rotation", float(self.rotation) % 360.0)
        for name in ("hflip", "vflip", "invert", "overlays"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{_KEYS[name]} ({name}): must be a boolean")
        _check_int(self, "smoothing", 0, 3)
        _check_int(self, "sharpening", 0, 3)
        _check_int(self, "quality", 1, 100)
        if self.format.lossless:
            # Quality means nothing to lossless encoders; one canonical value
            # keeps equal renders under one cache key.
            object.__setattr__(self, "quality", _DEFAULT_QUALITY)
        for name, codes in _ENUM_CODES.items():
            value = getattr(self, name)
            if not (value is None and name == "window_function") and value not in codes:
                raise ValueError(f"{_KEYS[name]} ({name}): not a {name} value: {value!r}")

    def to_query(self) -> str:
        """Return the canonical URL query string (defaults omitted, keys sorted)."""
        pairs = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value != field.default:
                pairs.append((_KEYS[field.name], _format(field.name, value)))
        return urlencode(sorted(pairs))

    @classmethod
    def from_query(cls, query: Mapping[str, Any] | str) -> ViewState:
        """Parse and validate a query string or mapping (values str or 1-item lists).

        Raises
        ------
        ValueError
            Unknown key, repeated key, unparsable or out-of-range value; the
            message names the query key.
        """
        if isinstance(query, str):
            items = parse_qsl(query, keep_blank_values=True)
        else:
            items = list(query.items())
        values: dict[str, Any] = {}
        for key, raw in items:
            if key not in _FIELDS:
                known = ", ".join(sorted(_FIELDS))
                raise ValueError(f"unknown viewport parameter {key!r}; known: {known}")
            name = _FIELDS[key]
            if name in values:
                raise ValueError(f"{key}: given more than once")
            if isinstance(raw, (list, tuple)):
                if len(raw) != 1:
                    raise ValueError(f"{key}: expected one value, got {len(raw)}")
                raw = raw[0]
            values[name] = _parse(name, str(raw))
        return cls(**values)

    def cache_key(self) -> str:
        """A stable 32-hex-digit digest of the canonical query (same state → same key)."""
        digest = hashlib.blake2b(b"viewstate/1?" + self.to_query().encode(), digest_size=16)
        return digest.hexdigest()

    def replace(self, **changes: Any) -> ViewState:
        """Return a copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    #: The query keys :meth:`from_query` accepts, for callers that filter URLs.
    QUERY_KEYS = frozenset(_FIELDS)


def _format(name: str, value: Any) -> str:
    if name in _ENUM_CODES:
        return _ENUM_CODES[name][value]
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return number(value)


def _parse(name: str, text: str) -> Any:
    key = _KEYS[name]
    default = ViewState.__dataclass_fields__[name].default
    text = text.strip()
    if name in _ENUM_CODES:
        lookup = {code: member for member, code in _ENUM_CODES[name].items()}
        lookup.update(_ALIASES.get(name, {}))
        if text.lower() not in lookup:
            raise ValueError(f"{key}: expected one of {', '.join(sorted(lookup))}, got {text!r}")
        return lookup[text.lower()]
    if isinstance(default, bool):
        return flag(key, text)
    if isinstance(default, int) or name in ("width", "height"):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{key}: expected an integer, got {text!r}") from None
    return finite_number(key, text)


def _check_int(state: ViewState, name: str, low: int, high: int) -> None:
    value = getattr(state, name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{_KEYS[name]} ({name}): must be an integer {low}..{high}, got {value!r}")


def _check_float(state: ViewState, name: str, low: float, high: float,
                 exclusive_low: bool = False) -> None:
    value = getattr(state, name)
    valid = (isinstance(value, (int, float)) and not isinstance(value, bool)
             and math.isfinite(value) and low <= value <= high
             and not (exclusive_low and value == low))
    if not valid:
        bound = f"> {low:g}" if exclusive_low else f">= {low:g}"
        raise ValueError(f"{_KEYS[name]} ({name}): must be a number {bound} and <= {high:g}, "
                         f"got {value!r}")


def _check_optional_float(state: ViewState, name: str, low: float, high: float,
                          exclusive_low: bool = False) -> None:
    if getattr(state, name) is not None:
        _check_float(state, name, low, high, exclusive_low)


@dataclass(frozen=True, eq=False)
class Geometry:
    """Where the image lands in the output.

    Attributes
    ----------
    output_size : tuple[int, int]
        (width, height) of the output in pixels.
    to_image : numpy.ndarray
        2×3 affine from display coordinates to image coordinates.
    to_display : numpy.ndarray
        2×3 affine from image coordinates to display coordinates.
    scale_x, scale_y : float
        Display pixels per image pixel along the image's columns and rows
        (they differ for non-square pixels).
    """

    output_size: tuple[int, int]
    to_image: np.ndarray
    to_display: np.ndarray
    scale_x: float
    scale_y: float

    def is_identity(self, src_shape: tuple[int, int]) -> bool:
        """True when the output is the image itself, pixel for pixel."""
        rows, columns = src_shape[:2]
        return (self.output_size == (columns, rows)
                and float(np.abs(self.to_image - _IDENTITY).max()) <= 1e-9)


_IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _cos_sin(degrees: float) -> tuple[float, float]:
    # Quarter turns are exact so 1:1 rotated views sample pixel centres exactly.
    exact = {0.0: (1.0, 0.0), 90.0: (0.0, 1.0), 180.0: (-1.0, 0.0), 270.0: (0.0, -1.0)}
    if degrees in exact:
        return exact[degrees]
    radians = math.radians(degrees)
    return math.cos(radians), math.sin(radians)


def _is_unit_permutation(linear: np.ndarray) -> bool:
    """True for a 2×2 signed permutation: 1:1 scale, quarter turns, flips."""
    return bool(np.all(np.isin(linear, (-1.0, 0.0, 1.0)))
                and np.all(np.abs(linear).sum(axis=0) == 1.0))


def _translate(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def viewport_geometry(state: ViewState, src_shape: tuple[int, int],
                      pixel_spacing: tuple[float, float] | None = None) -> Geometry:
    """Compute the display ↔ image affine of `state` for an image of `src_shape`.

    Parameters
    ----------
    state : ViewState
    src_shape : tuple[int, int]
        (rows, columns) of the image.
    pixel_spacing : tuple[float, float], optional
        (row, column) spacing in mm (PS3.3 C.7.6.2.1.1). Non-square pixels are
        stretched to their physical aspect, and TRUE_SIZE needs the column
        spacing; without it TRUE_SIZE falls back to 1:1 pixels.

    Notes
    -----
    Image → display is ``T(out centre) · R(rotation) · F(flips) · S(scale)
    · T(-(image centre + pan))``: flips act in image axes before the
    clockwise rotation, as in a presentation state (PS3.3 C.10.6.1.1).
    """
    rows, columns = src_shape[:2]
    aspect = pixel_spacing[0] / pixel_spacing[1] if pixel_spacing else 1.0
    cos, sin = _cos_sin(state.rotation)
    # Bounding box of the rotated image at one display pixel per column pixel.
    phys_w, phys_h = float(columns), rows * aspect
    box_w = abs(cos) * phys_w + abs(sin) * phys_h
    box_h = abs(sin) * phys_w + abs(cos) * phys_h
    if state.width is None or state.height is None:
        out_w, out_h = max(1, round(box_w)), max(1, round(box_h))
    else:
        out_w, out_h = state.width, state.height
    if state.fit is FitMode.FIT:
        scale = min(out_w / box_w, out_h / box_h)
    elif state.fit is FitMode.FILL:
        scale = max(out_w / box_w, out_h / box_h)
    elif state.fit is FitMode.TRUE_SIZE and pixel_spacing and state.display_mm_per_px:
        scale = pixel_spacing[1] / state.display_mm_per_px
    else:
        scale = 1.0
    scale *= state.zoom
    centre = _translate(-(columns / 2.0 + state.pan_x), -(rows / 2.0 + state.pan_y))
    stretch = np.diag([scale, scale * aspect, 1.0])
    flip = np.diag([-1.0 if state.hflip else 1.0, -1.0 if state.vflip else 1.0, 1.0])
    rotate = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    forward = _translate(out_w / 2.0, out_h / 2.0) @ rotate @ flip @ stretch @ centre
    if _is_unit_permutation(forward[:2, :2]):
        # 1:1 views (any quarter turn or flip) snap to whole display pixels so
        # they stay pixel-exact instead of resampling at half-pixel offsets.
        forward[:2, 2] = np.floor(forward[:2, 2] + 0.5)
    inverse = np.linalg.inv(forward)
    return Geometry((out_w, out_h), inverse[:2].copy(), forward[:2].copy(),
                    scale, scale * aspect)


def display_to_image(state: ViewState, src_shape: tuple[int, int],
                     pixel_spacing: tuple[float, float] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(display→image, image→display)`` 2×3 affine matrices.

    A browser point (x, y) in output pixels maps to image coordinates
    ``M @ [x, y, 1]``; the floor of those is the (column, row) of the pixel
    under it. Measurements and probes use this; the inverse places image
    annotations on the display. To pan by a drag of (dx, dy) display pixels,
    subtract ``M[:, :2] @ [dx, dy]`` from (pan_x, pan_y).
    """
    geometry = viewport_geometry(state, src_shape, pixel_spacing)
    return geometry.to_image, geometry.to_display
