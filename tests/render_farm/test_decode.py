"""FrameSource: lazy per-frame decoding, attributes, errors."""
from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.pixels import pixel_array

from render_farm import (
    ByteLRUCache, Photometric, PresentationShape, UnsupportedImage, WindowFunction, load_source,
    open_source,
)
from tests.render_farm import dicom_factory as factory


def sample(name: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return get_testdata_file(name, download=False)


def test_native_ct_attributes_and_frame():
    source = open_source(sample("CT_small.dcm"))
    attrs = source.attributes
    assert (attrs.rows, attrs.columns, attrs.number_of_frames) == (128, 128, 1)
    assert attrs.photometric is Photometric.MONOCHROME2
    assert (attrs.rescale_slope, attrs.rescale_intercept) == (1.0, -1024.0)
    assert attrs.bits_stored == 16 and attrs.pixel_representation == 1
    assert attrs.spacing == pytest.approx((0.661468, 0.661468))
    frame = source.frame(0)
    assert frame.dtype == np.int16 and not frame.flags.writeable
    assert np.array_equal(frame, pydicom.dcmread(sample("CT_small.dcm")).pixel_array)


def test_windows_with_explanations():
    attrs = open_source(sample("examples_overlay.dcm")).attributes
    assert attrs.window_centers == (450.0, 200.0)
    assert attrs.window_widths == (790.0, 443.0)
    assert attrs.window_explanations[0] == "WINDOW1"
    assert attrs.voi_function is WindowFunction.LINEAR


@pytest.mark.parametrize("name", [
    "MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm", "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
])
def test_every_transfer_syntax_decodes_to_the_same_native_values(name):
    reference = open_source(sample("MR_small.dcm")).frame(0)
    frame = open_source(sample(name)).frame(0)
    assert frame.dtype.isnative
    assert np.array_equal(frame, reference)


def test_deflate_jpeg_baseline_and_jpeg2000_decode():
    assert open_source(sample("image_dfl.dcm")).frame(0).shape == (512, 512)
    rgb = open_source(sample("SC_rgb_jpeg_dcmtk.dcm")).frame(0)     # YBR_FULL baseline
    assert rgb.shape == (100, 100, 3)
    # Converted to RGB on decode: the test image's first quadrant is red.
    assert rgb[5, 5].tolist()[0] > 200 and rgb[5, 5].tolist()[1] < 50
    assert open_source(sample("examples_jpeg2k.dcm")).frame(0).shape == (480, 640, 3)


def test_multi_frame_selection_decodes_only_the_asked_frame():
    cache = ByteLRUCache(64 * 1024**2)
    source = open_source(sample("examples_ybr_color.dcm"), cache=cache)
    assert source.number_of_frames == 30
    frame = source.frame(7)
    expected = pixel_array(sample("examples_ybr_color.dcm"), index=7, decoding_plugin="pillow")
    assert np.abs(frame.astype(int) - expected.astype(int)).max() <= 1
    assert cache.stats().items == 1                       # frame 7 only
    assert not np.array_equal(source.frame(0), frame)
    assert cache.stats().items == 2


def test_synthetic_multi_frame_frames_are_distinct():
    pixels = np.stack([np.full((8, 9), value, np.uint16) for value in (10, 20, 30)])
    source = open_source(factory.to_bytes(factory.image(pixels, frames=3)))
    assert [int(source.frame(i)[0, 0]) for i in range(3)] == [10, 20, 30]
    assert source.shape == (8, 9)
    with pytest.raises(IndexError, match="3 frame"):
        source.frame(3)


def test_repeat_reads_hit_the_cache():
    cache = ByteLRUCache(64 * 1024**2)
    source = open_source(sample("CT_small.dcm"), cache=cache)
    assert source.frame(0) is source.frame(0)
    assert cache.stats().hits == 1 and cache.stats().misses == 1
    assert source.frame_range(0) == (float(source.frame(0).min()), float(source.frame(0).max()))


def test_load_source_caches_the_source_under_its_key(tmp_path):
    cache = ByteLRUCache(64 * 1024**2)
    path = sample("CT_small.dcm")
    first = load_source(cache, "uid-1", path)
    assert load_source(cache, "uid-1", path) is first
    assert ("source", "uid-1") in cache and first.key == "uid-1"


def test_bytes_and_path_sources_agree():
    path = sample("MR_small.dcm")
    with open(path, "rb") as handle:
        from_bytes = open_source(handle.read())
    assert np.array_equal(from_bytes.frame(0), open_source(path).frame(0))
    assert from_bytes.key.startswith("bytes:") and from_bytes.nbytes > 0


def test_palette_and_overlay_attributes():
    palette = open_source(sample("examples_palette.dcm")).attributes
    assert palette.photometric is Photometric.PALETTE_COLOR
    red, green, blue = palette.palette
    assert red.bits == 16 and red.values.size == 256
    overlays = open_source(sample("examples_overlay.dcm")).attributes.overlays
    assert len(overlays) == 1 and overlays[0].bitmaps.shape == (1, 300, 484)


def test_modality_and_voi_lut_sequences_and_presentation_shape():
    pixels = np.arange(64, dtype=np.uint16).reshape(8, 8)
    ds = factory.image(
        pixels, bits_stored=12, PresentationLUTShape="INVERSE", VOILUTFunction="SIGMOID",
        ModalityLUTSequence=factory.sequence(factory.lut_item(0, 12, np.arange(4096)[::-1])),
        VOILUTSequence=factory.sequence(factory.lut_item(0, 16, np.arange(4096) * 16, "SOFT")),
    )
    attrs = open_source(factory.to_bytes(ds)).attributes
    assert attrs.modality_lut.values[0] == 4095 and attrs.modality_lut.bits == 12
    assert attrs.voi_luts[0].explanation == "SOFT" and attrs.voi_luts[0].values[-1] == 65520
    assert attrs.presentation_shape is PresentationShape.INVERSE
    assert attrs.voi_function is WindowFunction.SIGMOID


def test_signed_lut_descriptor_first_value():
    pixels = np.zeros((4, 4), np.int16)
    item = factory.lut_item(0, 16, np.arange(10))
    item.add_new(0x00283002, "US", [10, 65536 - 5, 16])   # -5 written as US
    ds = factory.image(pixels, ModalityLUTSequence=factory.sequence(item))
    assert open_source(factory.to_bytes(ds)).attributes.modality_lut.first_mapped == -5


def test_enhanced_functional_groups_per_frame():
    pixels = np.zeros((2, 4, 4), np.int16)
    ds = factory.image(pixels, frames=2)

    def group(**values: object) -> Dataset:
        item = Dataset()
        for keyword, value in values.items():
            inner = Dataset()
            for key, val in value.items():  # type: ignore[attr-defined]
                setattr(inner, key, val)
            setattr(item, keyword, factory.sequence(inner))
        return item

    ds.SharedFunctionalGroupsSequence = factory.sequence(group(
        PixelValueTransformationSequence={"RescaleSlope": 2, "RescaleIntercept": -100},
        PixelMeasuresSequence={"PixelSpacing": [0.5, 0.25]},
    ))
    ds.PerFrameFunctionalGroupsSequence = factory.sequence(
        group(FrameVOILUTSequence={"WindowCenter": 10, "WindowWidth": 100}),
        group(FrameVOILUTSequence={"WindowCenter": 500, "WindowWidth": 50,
                                   "VOILUTFunction": "LINEAR_EXACT"}),
    )
    source = open_source(factory.to_bytes(ds))
    first, second = source.frame_attributes(0), source.frame_attributes(1)
    assert (first.rescale_slope, first.rescale_intercept) == (2.0, -100.0)
    assert first.pixel_spacing == (0.5, 0.25)
    assert first.windows[0].center == 10 and second.windows[0].center == 500
    assert second.voi_function is WindowFunction.LINEAR_EXACT


@pytest.mark.parametrize("content", [b"not dicom at all", b"\0" * 200])
def test_garbage_is_unsupported(content):
    with pytest.raises(UnsupportedImage):
        open_source(content)


def test_instances_without_pixel_data_are_unsupported():
    with pytest.raises(UnsupportedImage, match="no Pixel Data"):
        open_source(sample("rtplan.dcm"))


def test_truncated_pixel_data_fails_on_decode():
    source = open_source(sample("MR_truncated.dcm"))
    with pytest.raises(UnsupportedImage, match="cannot decode frame 0"):
        source.frame(0)


def test_unsupported_photometric_interpretation():
    ds = factory.image(np.zeros((4, 4), np.uint8), photometric="HSV")
    with pytest.raises(UnsupportedImage, match="HSV"):
        open_source(factory.to_bytes(ds))


def test_concurrent_frame_requests_decode_correctly():
    from concurrent.futures import ThreadPoolExecutor

    path = sample("examples_ybr_color.dcm")
    source = open_source(path, cache=ByteLRUCache(64 * 1024**2))
    order = [i % 10 for i in range(40)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        frames = list(pool.map(source.frame, order))
    reference = open_source(path)
    for index, frame in zip(order, frames):
        assert np.array_equal(frame, reference.frame(index))
