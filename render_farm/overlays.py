"""Overlay planes, repeating groups 60xx (PS3.3 C.9.2), burned into renders.

Each plane is a 1-bit bitmap (Overlay Data, 60xx,3000) placed at Overlay
Origin on one or more frames. Burning sets covered pixels to white, like
dcmtk's default "replace" mode with full foreground density. Overlays
embedded in unused high bits of Pixel Data (retired since 2004) are not read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.utils import unpack_bits

from render_farm._dataset import is_little_endian

#: The 16 overlay groups, 6000..601E, even only (PS3.5 7.6).
OVERLAY_GROUPS = tuple(range(0x6000, 0x6020, 2))


@dataclass(frozen=True, eq=False)
class OverlayPlane:
    """One overlay plane (PS3.3 C.9.2.1).

    Parameters
    ----------
    group : int
        The 60xx group number.
    rows, columns : int
        Overlay Rows/Columns (60xx,0010/0011).
    origin : tuple[int, int]
        Overlay Origin (60xx,0050): 1-based (row, column) of the plane's top
        left pixel in the image; may be negative or past the image.
    frames : int
        Number of Frames in Overlay (60xx,0015).
    image_frame_origin : int
        Image Frame Origin (60xx,0051): 1-based image frame of overlay frame 1.
    overlay_type : str
        "G" graphics or "R" ROI.
    data : bytes
        Overlay Data, bit-packed little endian, LSB first.
    """

    group: int
    rows: int
    columns: int
    origin: tuple[int, int]
    frames: int
    image_frame_origin: int
    overlay_type: str
    data: bytes = field(repr=False)
    description: str = ""

    @cached_property
    def bitmaps(self) -> np.ndarray:
        """All overlay frames unpacked to bool, shape (frames, rows, columns)."""
        size = self.frames * self.rows * self.columns
        bits = unpack_bits(self.data)[:size]
        if bits.size < size:  # truncated data: missing bits are off
            bits = np.concatenate([bits, np.zeros(size - bits.size, bits.dtype)])
        return bits.astype(bool).reshape(self.frames, self.rows, self.columns)

    def bitmap_for(self, frame: int) -> np.ndarray | None:
        """The bitmap shown on 0-based image `frame`, or None if none applies."""
        index = frame + 1 - self.image_frame_origin
        if 0 <= index < self.frames:
            return self.bitmaps[index]
        return None


def read_overlays(ds: Dataset) -> tuple[OverlayPlane, ...]:
    """Read every overlay plane in `ds` that has its own Overlay Data."""
    planes = []
    for group in OVERLAY_GROUPS:
        element = ds.get((group, 0x3000))
        if element is None or not element.value:
            continue
        try:
            planes.append(_read_plane(ds, group, bytes(element.value)))
        except (TypeError, ValueError, IndexError):
            continue  # a malformed plane is skipped rather than failing the image
    return tuple(planes)


def _read_plane(ds: Dataset, group: int, data: bytes) -> OverlayPlane:
    def value(element: int, default: object = None) -> object:
        found = ds.get((group, element))
        return default if found is None or found.value in (None, "") else found.value

    rows, columns = int(value(0x0010)), int(value(0x0011))  # type: ignore[arg-type]
    if rows <= 0 or columns <= 0:
        raise ValueError("empty overlay")
    origin = value(0x0050, [1, 1])
    if int(value(0x0100, 1)) != 1:  # type: ignore[arg-type]
        raise ValueError("only 1-bit overlay data is defined")
    if not is_little_endian(ds):
        # OW data is stored as 16-bit words; bits are numbered within words.
        data = np.frombuffer(data[: len(data) // 2 * 2], ">u2").astype("<u2").tobytes()
    return OverlayPlane(
        group=group, rows=rows, columns=columns,
        origin=(int(origin[0]), int(origin[1])),  # type: ignore[index]
        frames=max(int(value(0x0015, 1)), 1),  # type: ignore[arg-type]
        image_frame_origin=max(int(value(0x0051, 1)), 1),  # type: ignore[arg-type]
        overlay_type=str(value(0x0040, "G")).strip().upper(),
        data=data,
        description=str(value(0x0022, "")),
    )


def burn_in(image: np.ndarray, planes: tuple[OverlayPlane, ...], frame: int,
            value: int = 255) -> np.ndarray:
    """Return a copy of `image` with the planes shown on `frame` set to `value`.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 image in image pixel space, (rows, columns) or (rows, columns, 3).
    planes : tuple of OverlayPlane
        The planes to draw.
    frame : int
        0-based image frame number.
    value : int
        Level written where a plane's bit is set (white by default).
    """
    out = image.copy()
    height, width = image.shape[:2]
    for plane in planes:
        bitmap = plane.bitmap_for(frame)
        if bitmap is None:
            continue
        top, left = plane.origin[0] - 1, plane.origin[1] - 1
        # Intersect the plane with the image; origins may be negative.
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + plane.rows, height), min(left + plane.columns, width)
        if y0 >= y1 or x0 >= x1:
            continue
        mask = bitmap[y0 - top:y1 - top, x0 - left:x1 - left]
        out[y0:y1, x0:x1][mask] = value
    return out
