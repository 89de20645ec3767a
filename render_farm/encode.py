"""Encode rendered uint8 images as JPEG, WebP, PNG, GIF, TIFF or BMP with Pillow.

Settings are chosen for interactive latency: no JPEG Huffman optimisation,
4:2:0 chroma for colour, grayscale kept single-channel (a third of the
work and smaller files), PNG at zlib level 1, WebP at its fastest method.
TIFF (Deflate-compressed) and BMP (uncompressed) are for exports: lossless
files that office software, printers and older workstations open.
"""
from __future__ import annotations

import enum
import io
from collections.abc import Sequence

import numpy as np
from PIL import Image


class ImageFormat(enum.Enum):
    """Output encodings of a render."""

    JPEG = "jpeg"
    WEBP = "webp"
    PNG = "png"
    GIF = "gif"
    TIFF = "tiff"
    BMP = "bmp"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]

    @property
    def lossless(self) -> bool:
        """True when the encoding never alters pixel values (PNG, TIFF, BMP; GIF for grayscale)."""
        return self in (ImageFormat.PNG, ImageFormat.GIF, ImageFormat.TIFF, ImageFormat.BMP)

    @property
    def extension(self) -> str:
        """The usual file name extension, without the dot."""
        return {ImageFormat.JPEG: "jpg", ImageFormat.TIFF: "tif"}.get(self, self.value)


_MEDIA_TYPES = {
    ImageFormat.JPEG: "image/jpeg",
    ImageFormat.WEBP: "image/webp",
    ImageFormat.PNG: "image/png",
    ImageFormat.GIF: "image/gif",
    ImageFormat.TIFF: "image/tiff",
    ImageFormat.BMP: "image/bmp",
}

#: zlib level for PNG: level 1 is several times faster than the default 6
#: and only a few percent larger on medical images.
PNG_COMPRESS_LEVEL = 1
#: libwebp effort 0..6; 0 is the fastest lossy encoder.
WEBP_METHOD = 0


def to_image(array: np.ndarray | Image.Image) -> Image.Image:
    """Wrap a uint8 (H, W) or (H, W, 3) array as a Pillow image (L or RGB)."""
    if isinstance(array, Image.Image):
        return array
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError("expected a uint8 (H, W) or (H, W, 3) array, "
                         f"got {array.dtype} {array.shape}")
    return Image.fromarray(np.ascontiguousarray(array))


def encode(image: np.ndarray | Image.Image, fmt: ImageFormat,
           quality: int = 90) -> tuple[bytes, str]:
    """Encode one image, returning ``(bytes, media_type)``.

    Parameters
    ----------
    image : numpy.ndarray or PIL.Image.Image
        uint8 grayscale (H, W) or RGB (H, W, 3).
    fmt : ImageFormat
        Output encoding.
    quality : int
        1..100 for JPEG and WebP (WebP at 100 is lossless); ignored by the lossless formats.
    """
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100, got {quality}")
    img = to_image(image)
    buffer = io.BytesIO()
    if fmt is ImageFormat.JPEG:
        # subsampling=2 is 4:2:0; it is ignored for single-channel images.
        img.save(buffer, "JPEG", quality=quality, optimize=False, subsampling=2)
    elif fmt is ImageFormat.WEBP:
        if quality == 100:
            img.save(buffer, "WEBP", lossless=True, quality=0, method=WEBP_METHOD)
        else:
            img.save(buffer, "WEBP", quality=quality, method=WEBP_METHOD)
    elif fmt is ImageFormat.PNG:
        img.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt is ImageFormat.GIF:
        _gif_frame(img).save(buffer, "GIF")
    elif fmt is ImageFormat.TIFF:
        # Deflate (Adobe) at level 1: lossless, read by every TIFF reader since TIFF 6.0 notes.
        img.save(buffer, "TIFF", compression="tiff_adobe_deflate", zlib_level=1)
    elif fmt is ImageFormat.BMP:
        img.save(buffer, "BMP")  # grayscale as 8-bit with a grey palette
    else:  # pragma: no cover - exhaustive over the enum
        raise ValueError(f"unknown format {fmt}")
    return buffer.getvalue(), fmt.media_type


def encode_gif(frames: Sequence[np.ndarray | Image.Image], duration_ms: int = 100,
               loop: int = 0) -> tuple[bytes, str]:
    """Encode frames as an animated GIF (cine loops, e-film previews).

    Parameters
    ----------
    frames : sequence of arrays or images
        Same-sized uint8 grayscale or RGB frames.
    duration_ms : int
        Display time of each frame.
    loop : int
        Number of repeats, 0 for forever.
    """
    if not frames:
        raise ValueError("an animation needs at least one frame")
    images = [_gif_frame(to_image(frame)) for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:],
                   duration=duration_ms, loop=loop)
    return buffer.getvalue(), ImageFormat.GIF.media_type


def _gif_frame(img: Image.Image) -> Image.Image:
    # GIF holds 256 palette colours: grayscale maps exactly, colour is
    # reduced with Pillow's fast adaptive palette.
    if img.mode == "L":
        return img
    return img.convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
