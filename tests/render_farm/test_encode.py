"""Every output format decodes to an image of the requested size."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from render_farm import ImageFormat, encode, encode_gif

GRAY = (np.add.outer(np.arange(48), np.arange(64)) * 2 % 256).astype(np.uint8)
RGB = np.stack([GRAY, 255 - GRAY, GRAY // 2], axis=-1)


def decoded(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


@pytest.mark.parametrize("fmt", list(ImageFormat))
@pytest.mark.parametrize("pixels", [GRAY, RGB], ids=["gray", "rgb"])
def test_formats_decode_at_the_requested_size(fmt, pixels):
    body, media_type = encode(pixels, fmt, quality=80)
    image = decoded(body)
    assert media_type == f"image/{fmt.value}"
    assert image.format == fmt.name
    assert image.size == (64, 48)


def test_grayscale_jpeg_is_single_channel_and_colour_is_420():
    assert decoded(encode(GRAY, ImageFormat.JPEG)[0]).mode == "L"
    colour = decoded(encode(RGB, ImageFormat.JPEG)[0])
    assert colour.mode == "RGB"
    assert colour.layer[0][1:3] == (2, 2)     # luma sampled 2×2 relative to chroma: 4:2:0


@pytest.mark.parametrize("pixels", [GRAY, RGB], ids=["gray", "rgb"])
def test_lossless_encodings_are_exact(pixels):
    for fmt, quality in ((ImageFormat.PNG, 90), (ImageFormat.WEBP, 100), (ImageFormat.TIFF, 90),
                         (ImageFormat.BMP, 90)):
        mode = "RGB" if pixels.ndim == 3 else "L"
        out = np.asarray(decoded(encode(pixels, fmt, quality)[0]).convert(mode))
        assert np.array_equal(out, pixels), fmt
    assert np.array_equal(np.asarray(decoded(encode(GRAY, ImageFormat.GIF)[0]).convert("L")), GRAY)


def test_jpeg_quality_trades_size():
    noisy = np.random.default_rng(0).integers(0, 256, (64, 64)).astype(np.uint8)
    assert len(encode(noisy, ImageFormat.JPEG, 30)[0]) < len(encode(noisy, ImageFormat.JPEG, 95)[0])


def test_animated_gif_has_every_frame():
    frames = [np.full((20, 30), level, np.uint8) for level in (0, 100, 200)]
    body, media_type = encode_gif(frames, duration_ms=50)
    image = decoded(body)
    assert media_type == "image/gif" and image.size == (30, 20)
    assert getattr(image, "n_frames", 1) == 3


@pytest.mark.parametrize("quality", [0, 101])
def test_quality_out_of_range(quality):
    with pytest.raises(ValueError):
        encode(GRAY, ImageFormat.JPEG, quality)


def test_rejects_non_uint8_arrays():
    with pytest.raises(ValueError, match="uint8"):
        encode(GRAY.astype(np.int16), ImageFormat.PNG)


def test_export_formats_are_lossless_files_with_their_extension():
    for fmt, ext in ((ImageFormat.TIFF, "tif"), (ImageFormat.BMP, "bmp"), (ImageFormat.JPEG, "jpg"),
                     (ImageFormat.PNG, "png")):
        assert fmt.extension == ext
    assert ImageFormat.TIFF.lossless and ImageFormat.BMP.lossless and not ImageFormat.JPEG.lossless
    tiff = decoded(encode(GRAY, ImageFormat.TIFF)[0])
    assert tiff.mode == "L" and tiff.info.get("compression") == "tiff_adobe_deflate"
    assert len(encode(GRAY, ImageFormat.BMP)[0]) >= GRAY.size  # uncompressed, 8 bits a pixel
