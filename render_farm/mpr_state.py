"""MPR state: which plane through which point, and its URL form.

An MPR frame is a pure function of (volume, :class:`MPRState`,
:class:`~render_farm.viewport.ViewState`). Both travel in one query string:
the MPR keys below plus the ViewState keys (window, size, zoom, pan,
colour map, format...). The canonical form is the two canonical queries
merged, keys sorted, defaults omitted, numbers in their shortest exact form.

=====  =======================================================  =========
key    meaning                                                  default
=====  =======================================================  =========
o      orientation: ``axial``, ``coronal``, ``sagittal``        axial
cx     crosshair x, patient mm (LPS: + towards patient left)    volume centre
cy     crosshair y (+ posterior)                                volume centre
cz     crosshair z (+ superior)                                 volume centre
rx     rotation of the three planes about patient x, degrees    0
ry     ... about patient y                                      0
rz     ... about patient z (axial in-plane rotation)            0
st     slab thickness, mm (0 = thin plane)                      0
sp     slab projection: ``mip``, ``minip``, ``avg``             avg
=====  =======================================================  =========

The rotations turn the whole crosshair frame about the crosshair point as
``R = Rz(rz) · Ry(ry) · Rx(rx)`` (each positive = counter-clockwise seen
from the + end of its axis), so the three planes stay perpendicular.
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
from dataclasses import dataclass, fields
from urllib.parse import parse_qsl, urlencode

import numpy as np

from render_farm.query_values import finite_number, number
from render_farm.planes import SLAB_MODES
from render_farm.viewport import ViewState

#: Largest slab, mm.
MAX_SLAB_MM = 500.0
MAX_COORDINATE = 1e5


class Orientation(enum.Enum):
    """The three standard MPR planes."""

    AXIAL = "axial"
    CORONAL = "coronal"
    SAGITTAL = "sagittal"


_KEYS = {"orientation": "o", "x": "cx", "y": "cy", "z": "cz", "rx": "rx", "ry": "ry",
         "rz": "rz", "thickness": "st", "mode": "sp"}
_FIELDS = {key: name for name, key in _KEYS.items()}
#: The query keys an MPR state owns (the rest belong to the ViewState).
QUERY_KEYS = frozenset(_FIELDS)


@dataclass(frozen=True)
class MPRState:
    """Which plane of the volume is shown.

    Attributes
    ----------
    orientation : Orientation
    x, y, z : float or None
        Crosshair point, patient mm; None (all three) for the volume centre.
    rx, ry, rz : float
        Rotations (degrees) of the crosshair frame about patient x, y, z.
    thickness : float
        Slab thickness in mm, 0 for a thin plane.
    mode : str
        Slab projection, ``"mip"``, ``"minip"`` or ``"avg"``.
    """

    orientation: Orientation = Orientation.AXIAL
    x: float | None = None
    y: float | None = None
    z: float | None = None
    rx: float = 0.0
    ry: float = 0.0
    rz: float = 0.0
    thickness: float = 0.0
    mode: str = "avg"

    def __post_init__(self) -> None:
        if not isinstance(self.orientation, Orientation):
            raise ValueError(f"o (orientation): expected axial, coronal or sagittal, "
                             f"got {self.orientation!r}")
        given = [getattr(self, name) is not None for name in ("x", "y", "z")]
        if any(given) and not all(given):
            raise ValueError("cx, cy and cz (the crosshair point) must be given together")
        for name in ("x", "y", "z"):
            if getattr(self, name) is not None:
                _check(name, getattr(self, name), -MAX_COORDINATE, MAX_COORDINATE)
        for name in ("rx", "ry", "rz"):
            _check(name, getattr(self, name), -1e6, 1e6)
            # One canonical angle per rotation: (-180, 180].
            angle = -((-float(getattr(self, name)) + 180.0) % 360.0 - 180.0)
            object.__setattr__(self, name, 0.0 if angle == 0 else angle)
        _check("thickness", self.thickness, 0.0, MAX_SLAB_MM)
        if self.mode not in SLAB_MODES:
            raise ValueError(f"sp (slab projection): expected one of {', '.join(SLAB_MODES)}, "
                             f"got {self.mode!r}")
        if self.thickness == 0:
            object.__setattr__(self, "mode", "avg")   # meaningless without a slab

    @property
    def point(self) -> np.ndarray | None:
        """The crosshair as a patient point, or None for the volume centre."""
        if self.x is None:
            return None
        return np.array([self.x, self.y, self.z], dtype=np.float64)

    @property
    def rotation(self) -> np.ndarray:
        """The 3×3 rotation of the crosshair frame."""
        return (_turn(2, self.rz) @ _turn(1, self.ry) @ _turn(0, self.rx))

    @property
    def is_rotated(self) -> bool:
        return bool(self.rx or self.ry or self.rz)

    def to_query(self) -> str:
        """Canonical query of the MPR keys alone (defaults omitted, sorted)."""
        pairs = []
        for field in fields(self):
            value = getattr(self, field.name)
            if value != field.default:
                text = value.value if isinstance(value, Orientation) else (
                    value if isinstance(value, str) else number(value))
                pairs.append((_KEYS[field.name], text))
        return urlencode(sorted(pairs))

    def replace(self, **changes) -> MPRState:
        return dataclasses.replace(self, **changes)


def _turn(axis: int, degrees: float) -> np.ndarray:
    radians = math.radians(degrees)
    cos, sin = math.cos(radians), math.sin(radians)
    a, b = [n for n in range(3) if n != axis]
    matrix = np.eye(3)
    matrix[a, a], matrix[a, b], matrix[b, a], matrix[b, b] = cos, -sin, sin, cos
    return matrix


def _check(name: str, value, low: float, high: float) -> None:
    valid = (isinstance(value, (int, float)) and not isinstance(value, bool)
             and math.isfinite(value) and low <= value <= high)
    if not valid:
        raise ValueError(f"{_KEYS[name]} ({name}): must be a number {low:g}..{high:g}, "
                         f"got {value!r}")




def split_query(query: str) -> tuple[MPRState, ViewState]:
    """Parse an MPR frame query into its MPR and viewport states.

    Raises
    ------
    ValueError
        Unknown or repeated key, unparsable or out-of-range value; the
        message names the key.
    """
    mpr: dict[str, object] = {}
    view: dict[str, str] = {}
    for key, raw in parse_qsl(query, keep_blank_values=True):
        target = mpr if key in QUERY_KEYS else view
        if key in target:
            raise ValueError(f"{key}: given more than once")
        target[key] = raw
    values: dict[str, object] = {}
    for key, raw in mpr.items():
        name, text = _FIELDS[key], str(raw).strip()
        if name == "orientation":
            try:
                values[name] = Orientation(text.lower())
            except ValueError:
                raise ValueError(f"o: expected axial, coronal or sagittal, got {text!r}") from None
        elif name == "mode":
            values[name] = text.lower()
        else:
            values[name] = finite_number(key, text)
    return MPRState(**values), ViewState.from_query(view)


def canonical_query(state: MPRState, view: ViewState) -> str:
    """The one query string of (state, view): both canonical forms merged and sorted."""
    pairs = parse_qsl(state.to_query()) + parse_qsl(view.to_query())
    return urlencode(sorted(pairs))


def cache_key(state: MPRState, view: ViewState) -> str:
    """32 hex digits identifying the frame (for ETags and caches)."""
    text = "mpr/1?" + canonical_query(state, view)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
