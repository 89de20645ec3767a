"""Volume rendering state: every parameter of a VR view, and its URL form.

Like :class:`render_farm.viewport.ViewState`, a :class:`VRState` has one
canonical query encoding — short keys, defaults omitted, keys sorted,
numbers in their shortest exact form — so equal views share a cache key.

Query keys::

    preset  transfer function (vr_presets.PRESETS)     ct_bone
    s, sc   shift (modality units) and width scale     0, 1
    sh      shading 1/0; absent = the preset's choice
    v       standard view: anterior posterior left right head feet
    az el ro   azimuth, elevation, roll (degrees)      0
    z       zoom                                        1
    px py   pan in output pixels (right, down)          0
    crop    x0,x1,y0,y1,z0,z1 patient mm (LPS)
    cropf   the same as fractions 0..1 of the volume's patient bounding box
    tbl     1 = remove the CT table (largest body component kept)
    cut     scalpel cuts, ';'-separated; each is the camera it was drawn with
            ``view,az,el,ro,z,px,py,w,h`` then the polygon ``x0,y0,x1,y1,...``
            in that camera's output pixels; voxels projecting inside are removed
    w h     output size                                 512 512
    rq      render quality: preview (reduced size, coarse sampling) or still
    fmt q   jpeg/webp/png and quality                   jpeg 90
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import parse_qsl, urlencode

from render_farm.query_values import finite_number, flag, number
from render_farm.encode import ImageFormat
from render_farm.vr_camera import Camera, StandardView
from render_farm.vr_presets import DEFAULT_PRESET, get_preset

MAX_OUTPUT = 4096
MAX_CUTS = 32
MAX_VERTICES = 256
ZOOM_RANGE = (0.05, 50.0)
SCALE_RANGE = (0.05, 20.0)
MAX_PAN = 1e5
_DEFAULT_QUALITY = 90
QUALITIES = ("still", "preview")

_KEYS = {
    "preset": "preset", "shift": "s", "scale": "sc", "shade": "sh", "view": "v",
    "azimuth": "az", "elevation": "el", "roll": "ro", "zoom": "z", "pan_x": "px",
    "pan_y": "py", "crop_mm": "crop", "crop_fraction": "cropf", "table_removal": "tbl",
    "cuts": "cut", "width": "w", "height": "h", "render_quality": "rq", "format": "fmt",
    "quality": "q",
}
_FIELDS = {key: name for name, key in _KEYS.items()}


@dataclass(frozen=True)
class Cut:
    """One scalpel stroke: a closed polygon drawn over the view of `camera`.

    Every voxel whose centre projects inside the polygon, at any depth, is removed.
    """

    camera: Camera
    polygon: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not 3 <= len(self.polygon) <= MAX_VERTICES:
            raise ValueError(f"cut: a polygon needs 3..{MAX_VERTICES} vertices, "
                             f"got {len(self.polygon)}")

    def to_text(self) -> str:
        c = self.camera
        numbers = [c.azimuth, c.elevation, c.roll, c.zoom, c.pan_x, c.pan_y, c.width, c.height]
        numbers += [v for point in self.polygon for v in point]
        return ",".join([c.view.value] + [number(v) for v in numbers])

    @classmethod
    def from_text(cls, text: str) -> Cut:
        parts = text.split(",")
        if len(parts) < 15 or len(parts) % 2 == 0:
            raise ValueError("cut: expected view,az,el,ro,z,px,py,w,h then x,y pairs "
                             f"(≥ 3 vertices), got {text!r}")
        values = [finite_number("cut", part) for part in parts[1:]]
        width, height = values[6], values[7]
        if not (width.is_integer() and height.is_integer()):
            raise ValueError(f"cut: w and h must be integers, got {parts[7]!r}, {parts[8]!r}")
        state = VRState(view=_parse_view("cut", parts[0]), azimuth=values[0],
                        elevation=values[1], roll=values[2], zoom=values[3], pan_x=values[4],
                        pan_y=values[5], width=int(width), height=int(height))
        coords = values[8:]
        return cls(state.camera, tuple(zip(coords[0::2], coords[1::2])))


def _parse_view(key: str, text: str) -> StandardView:
    try:
        return StandardView(text.strip().lower())
    except ValueError:
        known = ", ".join(view.value for view in StandardView)
        raise ValueError(f"{key}: expected one of {known}, got {text!r}") from None


@dataclass(frozen=True)
class VRState:
    """Every parameter of one volume rendered view (see the module docstring).

    Construction validates all values (ValueError naming the query key) and
    normalises angles into [0, 360).
    """

    preset: str = DEFAULT_PRESET
    shift: float = 0.0
    scale: float = 1.0
    shade: bool | None = None
    view: StandardView = StandardView.ANTERIOR
    azimuth: float = 0.0
    elevation: float = 0.0
    roll: float = 0.0
    zoom: float = 1.0
    pan_x: float = 0.0
    pan_y: float = 0.0
    crop_mm: tuple[float, ...] | None = None
    crop_fraction: tuple[float, ...] | None = None
    table_removal: bool = False
    cuts: tuple[Cut, ...] = ()
    width: int = 512
    height: int = 512
    render_quality: str = "still"
    format: ImageFormat = ImageFormat.JPEG
    quality: int = _DEFAULT_QUALITY

    def __post_init__(self) -> None:
        get_preset(self.preset)
        self._check_float("shift", -1e5, 1e5)
        self._check_float("scale", *SCALE_RANGE)
        for name in ("azimuth", "elevation", "roll"):
            self._check_float(name, -1e6, 1e6)
            object.__setattr__(self, name, float(getattr(self, name)) % 360.0)
        self._check_float("zoom", *ZOOM_RANGE)
        self._check_float("pan_x", -MAX_PAN, MAX_PAN)
        self._check_float("pan_y", -MAX_PAN, MAX_PAN)
        if not isinstance(self.view, StandardView):
            raise ValueError(f"v (view): not a standard view: {self.view!r}")
        if self.shade is not None and not isinstance(self.shade, bool):
            raise ValueError("sh (shade): must be a boolean")
        if not isinstance(self.table_removal, bool):
            raise ValueError("tbl (table_removal): must be a boolean")
        self._check_crop()
        if len(self.cuts) > MAX_CUTS:
            raise ValueError(f"cut: at most {MAX_CUTS} cuts, got {len(self.cuts)}")
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_OUTPUT:
                raise ValueError(f"{_KEYS[name]} ({name}): must be an integer 1..{MAX_OUTPUT}, "
                                 f"got {value!r}")
        if self.render_quality not in QUALITIES:
            raise ValueError(f"rq (render quality): expected still or preview, "
                             f"got {self.render_quality!r}")
        if not isinstance(self.format, ImageFormat) or self.format is ImageFormat.GIF:
            raise ValueError(f"fmt (format): expected jpeg, webp or png, got {self.format!r}")
        if isinstance(self.quality, bool) or not isinstance(self.quality, int) \
                or not 1 <= self.quality <= 100:
            raise ValueError(f"q (quality): must be an integer 1..100, got {self.quality!r}")
        if self.format is ImageFormat.PNG:
            object.__setattr__(self, "quality", _DEFAULT_QUALITY)

    def _check_float(self, name: str, low: float, high: float) -> None:
        value = getattr(self, name)
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or not low <= value <= high):
            raise ValueError(f"{_KEYS[name]} ({name}): must be a number {low:g}..{high:g}, "
                             f"got {value!r}")

    def _check_crop(self) -> None:
        if self.crop_mm is not None and self.crop_fraction is not None:
            raise ValueError("crop and cropf: give the crop box in mm or in fractions, not both")
        for name in ("crop_mm", "crop_fraction"):
            box = getattr(self, name)
            if box is None:
                continue
            key = _KEYS[name]
            if len(box) != 6 or not all(isinstance(v, (int, float)) and math.isfinite(v)
                                        for v in box):
                raise ValueError(f"{key}: expected six numbers x0,x1,y0,y1,z0,z1, got {box!r}")
            if any(box[a] >= box[a + 1] for a in (0, 2, 4)):
                raise ValueError(f"{key}: each low bound must be below its high bound, got {box!r}")
            if name == "crop_fraction" and (min(box) < 0.0 or max(box) > 1.0):
                raise ValueError(f"{key}: fractions must lie in 0..1, got {box!r}")

    @property
    def camera(self) -> Camera:
        """The camera part of the state (what a scalpel cut remembers)."""
        return Camera(self.view, self.azimuth, self.elevation, self.roll, self.zoom,
                      self.pan_x, self.pan_y, self.width, self.height)

    def edits_key(self) -> str:
        """Canonical text of the voxel edits (table removal and cuts), '' for none."""
        parts = (["tbl"] if self.table_removal else []) + [cut.to_text() for cut in self.cuts]
        return ";".join(parts)

    def to_query(self) -> str:
        """Return the canonical URL query string (defaults omitted, keys sorted)."""
        pairs = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value != field.default:
                pairs.append((_KEYS[field.name], _format(field.name, value)))
        return urlencode(sorted(pairs))

    @classmethod
    def from_query(cls, query: Mapping[str, Any] | str) -> VRState:
        """Parse and validate a query string or mapping (values str or 1-item lists).

        Raises
        ------
        ValueError
            Unknown or repeated key, unparsable or out-of-range value; the
            message names the query key.
        """
        items = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) \
            else list(query.items())
        values: dict[str, Any] = {}
        for key, raw in items:
            if key not in _FIELDS:
                raise ValueError(f"unknown volume rendering parameter {key!r}; "
                                 f"known: {', '.join(sorted(_FIELDS))}")
            name = _FIELDS[key]
            if name in values:
                raise ValueError(f"{key}: given more than once")
            if isinstance(raw, (list, tuple)):
                if len(raw) != 1:
                    raise ValueError(f"{key}: expected one value, got {len(raw)}")
                raw = raw[0]
            values[name] = _parse(name, str(raw).strip())
        return cls(**values)

    def cache_key(self) -> str:
        """A stable 32-hex-digit digest of the canonical query."""
        return hashlib.blake2b(b"vrstate/1?" + self.to_query().encode(),
                               digest_size=16).hexdigest()

    def replace(self, **changes: Any) -> VRState:
        """Return a copy with `changes` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    #: The query keys :meth:`from_query` accepts.
    QUERY_KEYS = frozenset(_FIELDS)


def _format(name: str, value: Any) -> str:
    if name == "view":
        return value.value
    if name == "format":
        return value.value
    if name == "cuts":
        return ";".join(cut.to_text() for cut in value)
    if name in ("crop_mm", "crop_fraction"):
        return ",".join(number(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, str)):
        return str(value)
    return number(value)


def _parse(name: str, text: str) -> Any:
    key = _KEYS[name]
    if name == "preset":
        return text.lower()
    if name == "render_quality":
        return text.lower()
    if name == "view":
        return _parse_view(key, text)
    if name == "format":
        lookup = {"jpeg": ImageFormat.JPEG, "jpg": ImageFormat.JPEG, "webp": ImageFormat.WEBP,
                  "png": ImageFormat.PNG}
        if text.lower() not in lookup:
            raise ValueError(f"{key}: expected jpeg, webp or png, got {text!r}")
        return lookup[text.lower()]
    if name == "cuts":
        return tuple(Cut.from_text(part) for part in text.split(";") if part)
    if name in ("crop_mm", "crop_fraction"):
        return tuple(finite_number(key, part) for part in text.split(","))
    if name in ("shade", "table_removal"):
        return flag(key, text)
    if name in ("width", "height", "quality"):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{key}: expected an integer, got {text!r}") from None
    return finite_number(key, text)
