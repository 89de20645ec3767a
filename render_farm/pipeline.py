"""The DICOM grayscale and colour display pipeline as pure numpy functions.

Grayscale (PS3.3 C.11, PS3.14): stored values → Modality LUT (C.11.1) →
VOI LUT or window (C.11.2) → Presentation LUT (C.11.6) → 8-bit P-values.
Colour: RGB is shown as stored, YBR_FULL/YBR_FULL_422 are converted to RGB
(PS3.3 C.7.6.3.1.2) and PALETTE COLOR goes through the palette LUTs
(PS3.3 C.7.6.3.1.5, C.7.9).

Every function takes arrays and returns new arrays. The render path does not
call them pixel by pixel: :func:`grayscale_lut` runs the whole grayscale chain
once over every value a 8/16-bit stored pixel can take, and the frame is then
mapped with a single ``np.take``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from pydicom.pixels.processing import convert_color_space

#: The 8-bit display range the pipeline writes (P-values, PS3.14).
Y_MAX = 255.0


class WindowFunction(enum.Enum):
    """VOI LUT Function (0028,1056), PS3.3 C.11.2.1.3."""

    LINEAR = "LINEAR"
    LINEAR_EXACT = "LINEAR_EXACT"
    SIGMOID = "SIGMOID"

    @classmethod
    def from_dicom(cls, value: object) -> WindowFunction:
        """Parse (0028,1056); absent or unknown values mean LINEAR (C.11.2.1.3)."""
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            return cls.LINEAR


class PresentationShape(enum.Enum):
    """Presentation LUT Shape (2050,0020), PS3.3 C.11.6.1.2."""

    IDENTITY = "IDENTITY"
    INVERSE = "INVERSE"

    @classmethod
    def from_dicom(cls, value: object) -> PresentationShape | None:
        """Parse (2050,0020); absent or unsupported shapes (LIN OD) give None."""
        try:
            return cls(str(value).strip().upper())
        except ValueError:
            return None


class Photometric(enum.Enum):
    """The Photometric Interpretation (0028,0004) values the farm renders."""

    MONOCHROME1 = "MONOCHROME1"
    MONOCHROME2 = "MONOCHROME2"
    PALETTE_COLOR = "PALETTE COLOR"
    RGB = "RGB"
    YBR_FULL = "YBR_FULL"
    YBR_FULL_422 = "YBR_FULL_422"

    @property
    def is_monochrome(self) -> bool:
        return self in (Photometric.MONOCHROME1, Photometric.MONOCHROME2)


@dataclass(frozen=True)
class Lut:
    """A DICOM lookup table: LUT Descriptor (0028,3002) plus LUT Data (0028,3006).

    Parameters
    ----------
    first_mapped : int
        Second descriptor value: the input value mapped to the first entry.
    bits : int
        Third descriptor value: bits per entry (PS3.3 C.11.1.1.1 / C.11.2.1.1).
    data : bytes
        The entries as little-endian uint16, normalised on load so the LUT is
        hashable and can key the LUT caches.
    explanation : str
        LUT Explanation (0028,3003), not part of equality.
    """

    first_mapped: int
    bits: int
    data: bytes
    explanation: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= 16:
            raise ValueError(f"LUT bits per entry must be 1..16, got {self.bits}")
        if not self.data:
            raise ValueError("LUT has no entries")

    @classmethod
    def from_values(cls, first_mapped: int, bits: int, values: np.ndarray,
                    explanation: str = "") -> Lut:
        """Build a LUT from its entries as any integer array."""
        data = np.asarray(values).astype("<u2").tobytes()
        return cls(int(first_mapped), int(bits), data, explanation)

    @property
    def values(self) -> np.ndarray:
        """The entries as a read-only uint16 array."""
        return np.frombuffer(self.data, dtype="<u2")

    @property
    def max_output(self) -> float:
        """Largest value an entry can hold, 2**bits - 1."""
        return float(2**self.bits - 1)


def lut_lookup(arr: np.ndarray, lut: Lut) -> np.ndarray:
    """Map `arr` through `lut`, clamping inputs outside it to the end entries.

    PS3.3 C.11.1.1.1 / C.11.2.1.1: values below the first mapped value take
    the first entry, values past the last take the last. Non-integer inputs
    (modality values after a fractional rescale) are truncated toward minus
    infinity, as the LUT is indexed by integers.
    """
    values = lut.values
    index = np.floor(np.asarray(arr, dtype=np.float64)) - lut.first_mapped
    np.clip(index, 0, values.size - 1, out=index)
    return values[index.astype(np.intp)]


def modality_lut(arr: np.ndarray, slope: float = 1.0, intercept: float = 0.0,
                 lut: Lut | None = None) -> np.ndarray:
    """Apply the Modality LUT, PS3.3 C.11.1: a LUT sequence item, else rescale.

    Returns float64 modality values (e.g. Hounsfield units):
    ``slope * stored + intercept``, or the LUT entries when `lut` is given.
    """
    if lut is not None:
        return lut_lookup(arr, lut).astype(np.float64)
    out = np.asarray(arr, dtype=np.float64)
    if slope != 1.0:
        out = out * slope
    if intercept != 0.0:
        out = out + intercept
    return out


def window(arr: np.ndarray, center: float, width: float,
           function: WindowFunction = WindowFunction.LINEAR,
           y_min: float = 0.0, y_max: float = Y_MAX) -> np.ndarray:
    """Apply a VOI window, returning float64 values in [y_min, y_max].

    * LINEAR, PS3.3 C.11.2.1.2.1: ``x <= c - 0.5 - (w-1)/2`` → y_min,
      ``x > c - 0.5 + (w-1)/2`` → y_max, else
      ``((x - (c - 0.5)) / (w-1) + 0.5) * (y_max - y_min) + y_min``.
      Width must be ≥ 1 for LINEAR; smaller widths are taken as 1.
    * LINEAR_EXACT, C.11.2.1.3.2: ``x <= c - w/2`` → y_min, ``x > c + w/2``
      → y_max, else ``((x - c) / w + 0.5) * (y_max - y_min) + y_min``.
    * SIGMOID, C.11.2.1.3.1: ``(y_max - y_min) / (1 + exp(-4 (x - c) / w)) + y_min``.
    """
    if width <= 0:
        raise ValueError(f"window width must be > 0, got {width}")
    x = np.asarray(arr, dtype=np.float64)
    span = y_max - y_min
    if function is WindowFunction.SIGMOID:
        return span / (1.0 + np.exp(-4.0 * (x - center) / width)) + y_min
    if function is WindowFunction.LINEAR_EXACT:
        lower, upper = center - width / 2.0, center + width / 2.0
        ramp = ((x - center) / width + 0.5) * span + y_min
    else:
        width = max(width, 1.0)
        lower = center - 0.5 - (width - 1.0) / 2.0
        upper = center - 0.5 + (width - 1.0) / 2.0
        # A width of exactly 1 is a pure threshold: the ramp is never used.
        ramp = ((x - (center - 0.5)) / max(width - 1.0, 1e-12) + 0.5) * span + y_min
    return np.where(x <= lower, y_min, np.where(x > upper, y_max, ramp))


def voi_lut(arr: np.ndarray, lut: Lut, y_min: float = 0.0,
            y_max: float = Y_MAX) -> np.ndarray:
    """Apply a VOI LUT Sequence item, PS3.3 C.11.2.1.1, scaled to [y_min, y_max].

    The LUT output range 0 .. 2**bits - 1 is spread linearly over the
    display range.
    """
    out = lut_lookup(arr, lut).astype(np.float64)
    return out * ((y_max - y_min) / lut.max_output) + y_min


def presentation(arr: np.ndarray, inverse: bool, y_max: float = Y_MAX) -> np.ndarray:
    """Apply the Presentation LUT Shape, PS3.3 C.11.6.1.2 (INVERSE: ``y_max - y``)."""
    return y_max - arr if inverse else arr


def is_inverse(photometric: Photometric, shape: PresentationShape | None,
               invert: bool = False) -> bool:
    """Decide whether grayscale output is inverted.

    PS3.3 C.11.6.1.2 and C.8.11.1.1.1: an explicit Presentation LUT Shape
    decides; without one, MONOCHROME1 (minimum = white) is shown inverted.
    MONOCHROME1 with INVERSE is therefore inverted once, not twice (DX
    images carry both). The user's `invert` toggle flips the result.
    """
    if shape is None:
        inverse = photometric is Photometric.MONOCHROME1
    else:
        inverse = shape is PresentationShape.INVERSE
    return inverse != invert


def to_uint8(arr: np.ndarray) -> np.ndarray:
    """Round display values in [0, 255] to the nearest 8-bit level."""
    return np.clip(np.floor(np.asarray(arr) + 0.5), 0, 255).astype(np.uint8)


def default_window(vmin: float, vmax: float) -> tuple[float, float]:
    """Min-max window covering modality values `vmin`..`vmax`.

    Follows Suppl. 33's convention ("a Window Center of 2^n-1 and a Window
    Width of 2^n selects the range 0 to 2^n-1"): centre ``(min + max + 1) / 2``,
    width ``max - min + 1``, so with LINEAR min maps to black and max to white.
    dcmtk's min-max window (dcmj2pnm ``+Wm``) uses the same rule.
    """
    return (vmin + vmax + 1.0) / 2.0, vmax - vmin + 1.0


@dataclass(frozen=True)
class GrayscaleParams:
    """Everything that maps a stored grayscale value to an 8-bit display level.

    Exactly one VOI stage applies: `voi` when given, else the window
    (`center`, `width`, `function`). Frozen and hashable: it keys the LUT cache.
    """

    slope: float = 1.0
    intercept: float = 0.0
    modality: Lut | None = None
    center: float | None = None
    width: float | None = None
    function: WindowFunction = WindowFunction.LINEAR
    voi: Lut | None = None
    inverse: bool = False

    def __post_init__(self) -> None:
        if self.voi is None and (self.center is None or self.width is None):
            raise ValueError("GrayscaleParams needs a window (center, width) or a VOI LUT")


def grayscale(arr: np.ndarray, params: GrayscaleParams) -> np.ndarray:
    """Run the whole grayscale chain on stored values, returning uint8 levels."""
    values = modality_lut(arr, params.slope, params.intercept, params.modality)
    if params.voi is not None:
        shown = voi_lut(values, params.voi)
    else:
        shown = window(values, float(params.center), float(params.width),  # type: ignore[arg-type]
                       params.function)
    return to_uint8(presentation(shown, params.inverse))


def _lut_domain(dtype: np.dtype) -> np.ndarray:
    """Every value of an 8/16-bit integer dtype, ordered by its unsigned bit pattern.

    Indexing the LUT with ``frame.view(uint)`` then needs no offset or
    widening copy, for signed data too (-1 sits at 0xFFFF).
    """
    unsigned = np.dtype(f"u{dtype.itemsize}")
    return np.arange(2 ** (8 * dtype.itemsize), dtype=unsigned).view(dtype)


@lru_cache(maxsize=256)
def grayscale_lut(params: GrayscaleParams, dtype: np.dtype) -> np.ndarray:
    """Return a read-only uint8 LUT indexed by the unsigned view of `dtype` values.

    65,536 entries for 16-bit data (64 KiB), 256 for 8-bit. Cached per
    parameters, so a repeated window costs one ``np.take`` per frame.
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or dtype.itemsize > 2:
        raise ValueError(f"LUTs are built for 8/16-bit integers, not {dtype}")
    lut = grayscale(_lut_domain(dtype), params)
    lut.flags.writeable = False
    return lut


def apply_grayscale(arr: np.ndarray, params: GrayscaleParams) -> np.ndarray:
    """Map a grayscale frame to uint8 levels: one LUT lookup for 8/16-bit data.

    32-bit and float frames are computed directly (a LUT over 2**32 values
    would not be a shortcut).
    """
    if arr.dtype.kind in "iu" and arr.dtype.itemsize <= 2:
        lut = grayscale_lut(params, arr.dtype)
        index = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
        return np.take(lut, index)
    return grayscale(arr, params)


def modality_range(smin: float, smax: float, slope: float = 1.0, intercept: float = 0.0,
                   lut: Lut | None = None) -> tuple[float, float]:
    """Range of modality values produced by stored values `smin`..`smax`.

    Rescale is monotonic so its ends suffice; a Modality LUT need not be, so
    every entry it can reach is examined.
    """
    if lut is None:
        ends = modality_lut(np.array([smin, smax]), slope, intercept)
        return float(ends.min()), float(ends.max())
    reached = modality_lut(np.arange(np.floor(smin), np.floor(smax) + 1), lut=lut)
    return float(reached.min()), float(reached.max())


def ybr_to_rgb(arr: np.ndarray, photometric: Photometric) -> np.ndarray:
    """Convert YBR_FULL / YBR_FULL_422 to RGB (PS3.3 C.7.6.3.1.2); RGB passes through.

    Subsampled 4:2:2 data has already been expanded by the decoder, so both
    YBR forms use the same full-range matrix (pydicom's ``convert_color_space``).
    """
    if photometric in (Photometric.YBR_FULL, Photometric.YBR_FULL_422):
        return convert_color_space(arr, "YBR_FULL", "RGB")
    return arr


def rgb_to_uint8(arr: np.ndarray, bits_stored: int) -> np.ndarray:
    """Reduce RGB samples of `bits_stored` bits to 8 bits by dropping low bits.

    Truncation keeps the mapping monotonic and exact for 16/32-bit samples;
    dcmtk reduces colour depth the same way.
    """
    if arr.dtype == np.uint8 and bits_stored <= 8:
        return arr if bits_stored == 8 else _expand_bits(arr, bits_stored)
    if bits_stored < 8:
        return _expand_bits(arr, bits_stored)
    return (arr >> (bits_stored - 8)).astype(np.uint8)


def _expand_bits(arr: np.ndarray, bits: int) -> np.ndarray:
    scale = 255.0 / (2**bits - 1)
    return to_uint8(arr.astype(np.float64) * scale)


def palette_lut(red: Lut, green: Lut, blue: Lut, dtype: np.dtype) -> np.ndarray:
    """Build an (N, 3) uint8 RGB table indexed by the unsigned view of `dtype`.

    PS3.3 C.7.6.3.1.5: each channel maps stored values through its own LUT,
    clamping below the first mapped value and past the last entry; 16-bit
    entries are scaled to 8 bits (``round(v * 255 / 65535)``).
    """
    domain = _lut_domain(np.dtype(dtype))
    channels = [lut_lookup(domain, lut).astype(np.float64) * (Y_MAX / lut.max_output)
                for lut in (red, green, blue)]
    return to_uint8(np.stack(channels, axis=-1))


def apply_palette(arr: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map a PALETTE COLOR frame through a table from :func:`palette_lut`."""
    index = arr.view(np.dtype(f"u{arr.dtype.itemsize}"))
    return np.take(table, index, axis=0)
