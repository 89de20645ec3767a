"""Decode DICOM Part 10 instances into frames of pixel values, lazily.

A :class:`FrameSource` reads the header once and decodes a frame only when
it is asked for, so opening a 500-frame ultrasound cine to show frame 1
decodes one frame. Decoded frames go into a byte-bounded LRU cache shared by
the whole farm. Any transfer syntax pydicom decodes with the installed
plugins works: native little/big endian, deflate, JPEG baseline, extended
and lossless, JPEG-LS, JPEG 2000 and RLE (pylibjpeg + libjpeg/openjpeg/rle).
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.pixels.utils import as_pixel_options
from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit

from render_farm.attributes import DisplayAttributes, UnsupportedImage, read_attributes
from render_farm.cache import ByteLRUCache
from render_farm.pipeline import Photometric, ybr_to_rgb

#: Frames of a source opened without a shared cache are kept in a private one this big.
PRIVATE_CACHE_BYTES = 256 * 1024**2

# Elements bigger than this stay on disk until a frame is decoded.
_DEFER_SIZE = 64 * 1024

# Lossy JPEG decoders disagree by ±1 on the inverse DCT. Pillow's
# libjpeg-turbo shares the IJG lineage of dcmtk and most PACS and decodes
# 8-bit lossy JPEG bit-identically to them, while pylibjpeg-libjpeg does not;
# so 8-bit lossy JPEG goes to Pillow first (12-bit falls back to pylibjpeg).
_PREFERRED_PLUGIN = {JPEGBaseline8Bit: "pillow", JPEGExtended12Bit: "pillow"}


class FrameSource:
    """Pixel data and display attributes of one image instance.

    Frames are returned as read-only arrays of stored pixel values
    (``uint8``/``int8``/``uint16``/``int16``/``uint32``... following Bits
    Allocated and Pixel Representation), shape (rows, columns), or
    (rows, columns, 3) RGB for colour images: YBR_FULL(_422) is converted to
    RGB on decode, since colour-space conversion is part of reading the data,
    not of the display transforms. PALETTE COLOR frames hold palette indices.

    Parameters
    ----------
    dataset : pydicom.dataset.Dataset
        The instance; its Pixel Data may be deferred (read at first decode).
    key : str
        Opaque identity for cache keys (e.g. the SOP Instance UID + version).
    cache : ByteLRUCache, optional
        Where decoded frames are kept; a private cache when omitted.
    encoded_bytes : int
        Size of the encoded instance, reported as :attr:`nbytes`.
    """

    def __init__(self, dataset: Dataset, *, key: str, cache: ByteLRUCache | None = None,
                 encoded_bytes: int = 0) -> None:
        if "PixelData" not in dataset:
            raise UnsupportedImage("the instance has no Pixel Data (7FE0,0010)")
        syntax = getattr(dataset, "file_meta", Dataset()).get("TransferSyntaxUID")
        if syntax is None:
            raise UnsupportedImage("no Transfer Syntax UID in the file meta information")
        try:
            self._decoder = get_decoder(syntax)
        except NotImplementedError:
            raise UnsupportedImage(f"no decoder for transfer syntax {syntax.name}")
        self._plugins = [_PREFERRED_PLUGIN[syntax], ""] if syntax in _PREFERRED_PLUGIN else [""]
        self.key = key
        self.attributes: DisplayAttributes = read_attributes(dataset)
        self._ds = dataset
        self._cache = cache if cache is not None else ByteLRUCache(PRIVATE_CACHE_BYTES)
        self._lock = threading.Lock()
        self._frame_attributes: dict[int, DisplayAttributes] = {}
        self._ranges: dict[int, tuple[float, float]] = {}
        self._enhanced = "PerFrameFunctionalGroupsSequence" in dataset
        self.nbytes = encoded_bytes

    @property
    def number_of_frames(self) -> int:
        return self.attributes.number_of_frames

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of every frame."""
        return self.attributes.rows, self.attributes.columns

    @property
    def dataset(self) -> Dataset:
        """The header (for callers that need other attributes); do not mutate."""
        return self._ds

    def frame_attributes(self, index: int) -> DisplayAttributes:
        """Display attributes of frame `index` (per-frame functional groups applied)."""
        self._check_index(index)
        if not self._enhanced:
            return self.attributes
        found = self._frame_attributes.get(index)
        if found is None:
            found = read_attributes(self._ds, index, base=self.attributes)
            self._frame_attributes[index] = found
        return found

    def frame(self, index: int) -> np.ndarray:
        """Return frame `index` (0-based), decoding it on first use."""
        self._check_index(index)
        return self._cache.get_or_load((self.key, "frame", index), lambda: self._decode(index))

    def frame_range(self, index: int) -> tuple[float, float]:
        """Minimum and maximum stored value of frame `index` (for min-max windows)."""
        found = self._ranges.get(index)
        if found is None:
            data = self.frame(index)
            found = self._ranges[index] = (float(data.min()), float(data.max()))
        return found

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.number_of_frames:
            raise IndexError(f"frame {index} out of range: the image has "
                             f"{self.number_of_frames} frame(s)")

    def _decode_with_plugins(self, index: int) -> tuple[np.ndarray, dict]:
        options = as_pixel_options(self._ds)
        for plugin in self._plugins:
            try:
                return self._decoder.as_array(self._ds, index=index, raw=True,
                                              decoding_plugin=plugin, **options)
            except Exception as exc:  # decoders raise many types on corrupt data
                error = exc
        raise UnsupportedImage(f"cannot decode frame {index}: {error}") from error

    def _decode(self, index: int) -> np.ndarray:
        # pydicom datasets are not thread-safe when a deferred element loads.
        with self._lock:
            arr, props = self._decode_with_plugins(index)
        if arr.ndim == 3 and arr.shape[-1] == 3:
            decoded = str(props.get("photometric_interpretation", "RGB"))
            if decoded in ("YBR_FULL", "YBR_FULL_422"):
                arr = ybr_to_rgb(arr, Photometric(decoded))
        # Big endian files decode to '>i2' etc.; LUT indexing views the bytes
        # as native unsigned integers, so normalise the byte order once here.
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))
        arr.flags.writeable = False
        return arr


def open_source(src: str | os.PathLike[str] | bytes, *, key: str | None = None,
                cache: ByteLRUCache | None = None) -> FrameSource:
    """Open a Part 10 file (path or bytes) as a :class:`FrameSource`.

    Parameters
    ----------
    src : str, os.PathLike or bytes
        Path to the file, or its content.
    key : str, optional
        Cache identity; by default the path with its size and mtime, or a
        hash of the bytes.
    cache : ByteLRUCache, optional
        Shared cache for decoded frames.

    Raises
    ------
    UnsupportedImage
        Not DICOM, no pixel data, or pixel data the farm cannot decode.
    """
    try:
        if isinstance(src, (bytes, bytearray, memoryview)):
            data = bytes(src)
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            key = key or "bytes:" + hashlib.blake2b(data, digest_size=16).hexdigest()
            size = len(data)
        else:
            path = Path(src)
            stat = path.stat()
            ds = pydicom.dcmread(path, defer_size=_DEFER_SIZE, force=True)
            key = key or f"file:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
            size = stat.st_size
    except (InvalidDicomError, EOFError, ValueError, TypeError, KeyError) as exc:
        raise UnsupportedImage(f"not a readable DICOM file: {exc}") from exc
    return FrameSource(ds, key=key, cache=cache, encoded_bytes=size)


def load_source(cache: ByteLRUCache, key: str,
                src: str | os.PathLike[str] | bytes) -> FrameSource:
    """Return the cached source under `key`, opening `src` on a miss.

    Sources and their decoded frames share `cache`, so one byte budget
    bounds both.
    """
    return cache.get_or_load(("source", key), lambda: open_source(src, key=key, cache=cache))
