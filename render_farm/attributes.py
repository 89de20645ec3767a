"""Read the attributes the display pipeline needs from a pydicom Dataset.

Classic images carry them at the top level; enhanced multi-frame images
(PS3.3 C.7.6.16) put them in the Shared and Per-frame Functional Groups, so
every lookup goes per-frame item → shared item → top level.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut

from render_farm._dataset import is_little_endian
from render_farm.overlays import OverlayPlane, read_overlays
from render_farm.pipeline import Lut, Photometric, PresentationShape, WindowFunction


class UnsupportedImage(ValueError):
    """The instance has no pixel data the render farm can display."""


# Decoders always undo the JPEG 2000 multi-component transform (PS3.5 8.2.4),
# so these arrive as RGB.
_PHOTOMETRIC_ALIASES = {"YBR_ICT": "RGB", "YBR_RCT": "RGB"}

# Functional group macros (PS3.3 C.7.6.16.2) holding display attributes.
_PIXEL_VALUE_TRANSFORMATION = "PixelValueTransformationSequence"
_FRAME_VOI_LUT = "FrameVOILUTSequence"
_PIXEL_MEASURES = "PixelMeasuresSequence"


@dataclass(frozen=True)
class Window:
    """One Window Center / Width pair (0028,1050/1051) with its explanation."""

    center: float
    width: float
    explanation: str = ""


@dataclass(frozen=True)
class DisplayAttributes:
    """The Image Pixel, Modality LUT, VOI LUT and Presentation LUT attributes
    of one frame, PS3.3 C.7.6.3, C.11.1, C.11.2, C.11.6."""

    rows: int
    columns: int
    number_of_frames: int
    samples_per_pixel: int
    photometric: Photometric
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    modality_lut: Lut | None = None
    windows: tuple[Window, ...] = ()
    voi_function: WindowFunction = WindowFunction.LINEAR
    voi_luts: tuple[Lut, ...] = ()
    presentation_shape: PresentationShape | None = None
    palette: tuple[Lut, Lut, Lut] | None = None
    pixel_spacing: tuple[float, float] | None = None
    imager_pixel_spacing: tuple[float, float] | None = None
    overlays: tuple[OverlayPlane, ...] = field(default=(), compare=False, repr=False)

    @property
    def window_centers(self) -> tuple[float, ...]:
        return tuple(w.center for w in self.windows)

    @property
    def window_widths(self) -> tuple[float, ...]:
        return tuple(w.width for w in self.windows)

    @property
    def window_explanations(self) -> tuple[str, ...]:
        return tuple(w.explanation for w in self.windows)

    @property
    def spacing(self) -> tuple[float, float] | None:
        """(row, column) spacing in mm: Pixel Spacing, else Imager Pixel Spacing."""
        return self.pixel_spacing or self.imager_pixel_spacing


def read_attributes(ds: Dataset, frame: int | None = None,
                    base: DisplayAttributes | None = None) -> DisplayAttributes:
    """Return the display attributes of `ds`, for `frame` of an enhanced image.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
    frame : int, optional
        0-based frame whose Per-frame Functional Groups apply; None for the
        image level (shared groups and top-level attributes only).
    base : DisplayAttributes, optional
        The image-level attributes already read; frame-invariant parts
        (palette, LUT sequences, overlays) are reused rather than re-read.

    Raises
    ------
    UnsupportedImage
        No pixel data description, or a photometric interpretation the
        farm does not render.
    """
    if base is None:
        base = _image_level(ds)
    if frame is None:
        return base
    return replace(base, **_frame_level(ds, frame))


def _image_level(ds: Dataset) -> DisplayAttributes:
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
        bits_allocated, bits_stored = int(ds.BitsAllocated), int(ds.BitsStored)
        photometric_value = str(ds.PhotometricInterpretation).strip()
    except (AttributeError, TypeError, ValueError) as exc:
        raise UnsupportedImage(f"missing or invalid Image Pixel attributes: {exc}") from exc
    try:
        photometric = Photometric(_PHOTOMETRIC_ALIASES.get(photometric_value, photometric_value))
    except ValueError:
        raise UnsupportedImage(f"unsupported Photometric Interpretation {photometric_value!r}")
    little_endian = is_little_endian(ds)
    representation = int(ds.get("PixelRepresentation", 0) or 0)
    return DisplayAttributes(
        rows=rows, columns=columns,
        number_of_frames=_number_of_frames(ds),
        samples_per_pixel=int(ds.get("SamplesPerPixel", 1) or 1),
        photometric=photometric,
        bits_allocated=bits_allocated, bits_stored=bits_stored,
        pixel_representation=representation,
        modality_lut=_first_lut(ds.get("ModalityLUTSequence"), representation, little_endian),
        voi_luts=_luts(ds.get("VOILUTSequence"), representation, little_endian),
        presentation_shape=PresentationShape.from_dicom(ds.get("PresentationLUTShape")),
        palette=_palette(ds) if photometric is Photometric.PALETTE_COLOR else None,
        imager_pixel_spacing=_pair(ds.get("ImagerPixelSpacing")),
        overlays=read_overlays(ds),
        **_frame_level(ds, None),
    )


def _frame_level(ds: Dataset, frame: int | None) -> dict[str, Any]:
    """The attributes functional groups may set per frame (PS3.3 C.7.6.16.2)."""
    groups = _macro_items(ds, frame)
    transform = groups(_PIXEL_VALUE_TRANSFORMATION)
    voi = groups(_FRAME_VOI_LUT)
    return {
        "rescale_slope": _number(_first(transform, "RescaleSlope"), 1.0) or 1.0,
        "rescale_intercept": _number(_first(transform, "RescaleIntercept"), 0.0),
        "windows": _windows(voi),
        "voi_function": WindowFunction.from_dicom(_first(voi, "VOILUTFunction")),
        "pixel_spacing": _pair(_first(groups(_PIXEL_MEASURES), "PixelSpacing")),
    }


def _macro_items(ds: Dataset, frame: int | None) -> Callable[[str], list[Dataset]]:
    """Return a function giving, for a functional group macro, the datasets to
    search in order: the frame's item, the shared item, then `ds` itself."""
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []

    def items(macro: str) -> list[Dataset]:
        found: list[Dataset] = []
        if frame is not None and frame < len(per_frame):
            found += list(per_frame[frame].get(macro) or [])[:1]
        if shared:
            found += list(shared[0].get(macro) or [])[:1]
        return found + [ds]

    return items


def _first(datasets: Sequence[Dataset], keyword: str) -> object:
    for item in datasets:
        value = item.get(keyword)
        if value is not None and value != "":
            return value
    return None


def _values(value: object) -> list[object]:
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def _number(value: object, default: float) -> float:
    values = _values(value)
    try:
        return float(values[0]) if values else default  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default


def _pair(value: object) -> tuple[float, float] | None:
    try:
        numbers = [float(v) for v in _values(value)]  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if len(numbers) != 2 or min(numbers) <= 0:
        return None
    return numbers[0], numbers[1]


def _number_of_frames(ds: Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        raise UnsupportedImage(f"invalid Number of Frames {ds.get('NumberOfFrames')!r}")


def _windows(datasets: Sequence[Dataset]) -> tuple[Window, ...]:
    """Pair Window Center/Width values (PS3.3 C.11.2.1.2); widths <= 0 are dropped."""
    for item in datasets:
        centers, widths = _values(item.get("WindowCenter")), _values(item.get("WindowWidth"))
        if not centers or not widths:
            continue
        explanations = _values(item.get("WindowCenterWidthExplanation"))
        windows = []
        for i, (center, width) in enumerate(zip(centers, widths)):
            try:
                c, w = float(center), float(width)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                continue
            if w > 0:
                windows.append(Window(c, w, str(explanations[i]) if i < len(explanations) else ""))
        return tuple(windows)
    return ()


def _luts(sequence: object, representation: int, little_endian: bool) -> tuple[Lut, ...]:
    luts = []
    for item in _values(sequence):
        lut = _read_lut(item, representation, little_endian)  # type: ignore[arg-type]
        if lut is not None:
            luts.append(lut)
    return tuple(luts)


def _first_lut(sequence: object, representation: int, little_endian: bool) -> Lut | None:
    luts = _luts(sequence, representation, little_endian)
    return luts[0] if luts else None


def _read_lut(item: Dataset, representation: int, little_endian: bool) -> Lut | None:
    """Parse one Modality/VOI LUT item (PS3.3 C.11.1.1.1, C.11.2.1.1)."""
    descriptor = _values(item.get("LUTDescriptor"))
    data = item.get("LUTData")
    if len(descriptor) != 3 or data is None:
        return None
    count = int(descriptor[0]) or 65536  # type: ignore[arg-type]
    first, bits = int(descriptor[1]), int(descriptor[2])  # type: ignore[arg-type]
    # The descriptor's VR is US or SS; read as US, a signed first value wraps.
    if representation == 1 and first >= 32768:
        first -= 65536
    if isinstance(data, bytes):
        if bits <= 8 and len(data) == count:
            values = np.frombuffer(data, dtype=np.uint8)
        else:
            values = np.frombuffer(data, dtype="<u2" if little_endian else ">u2")
    else:
        values = np.asarray(_values(data), dtype=np.int64)
    if values.size < 1 or not 1 <= bits <= 16:
        return None
    return Lut.from_values(first, bits, values[:count], str(item.get("LUTExplanation", "")))


def _palette(ds: Dataset) -> tuple[Lut, Lut, Lut]:
    """Read the palette LUTs (PS3.3 C.7.6.3.1.5), normal or segmented.

    pydicom's ``apply_color_lut`` already understands both encodings, so it
    is run over every input the LUT maps to recover the plain tables.
    """
    descriptor = _values(ds.get("RedPaletteColorLookupTableDescriptor"))
    if len(descriptor) != 3:
        raise UnsupportedImage("PALETTE COLOR image without a palette descriptor")
    count = int(descriptor[0]) or 65536  # type: ignore[arg-type]
    first = int(descriptor[1])  # type: ignore[arg-type]
    domain = np.arange(first, first + count, dtype=np.int64)
    try:
        rgb = apply_color_lut(domain, ds)
    except Exception as exc:  # pydicom raises several types for bad palettes
        raise UnsupportedImage(f"unreadable palette colour LUTs: {exc}") from exc
    # pydicom returns uint8 or uint16 entries following the descriptor's depth.
    bits = 16 if rgb.dtype == np.uint16 else 8
    red, green, blue = (Lut.from_values(first, bits, rgb[:, i]) for i in range(3))
    return red, green, blue
