"""Building volumes from series files: geometry, repairs and refusals, against known truth."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from render_farm.cache import ByteLRUCache
from render_farm.volume import NotAVolume, load_volume, read_volume
from tests.render_farm.dicom_factory import image, save
from tests.render_farm.volume_factory import marker_values, write_enhanced, write_series


def _linear_field(points: np.ndarray) -> np.ndarray:
    """A value that is linear in patient position, so linear resampling is exact."""
    return 2.0 * points[..., 0] - 3.0 * points[..., 1] + 5.0 * points[..., 2]


def _grid_points(shape, origin, spacing, row, col, positions=None) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    row, col = np.asarray(row, float), np.asarray(col, float)
    if positions is None:
        positions = np.asarray(origin) + np.outer(np.arange(shape[0]) * spacing[0],
                                                  np.cross(row, col))
    return (positions[k] + (i * spacing[2])[..., None] * row
            + (j * spacing[1])[..., None] * col)


def test_classic_series_sorted_and_placed(tmp_path):
    values = marker_values((12, 10, 8))
    # Head-first order reversed: slices stacked along -z are still sorted along the normal.
    row, col = (0.0, 1.0, 0.0), (0.0, 0.0, -1.0)          # a sagittal series
    paths = write_series(tmp_path, values, origin=(5.0, -10.0, 20.0), spacing=(2.5, 0.8, 0.6),
                         row=row, col=col)
    volume = read_volume(paths, key="s1")
    normal = np.cross(row, col)
    assert volume.shape == (12, 10, 8)
    assert volume.voxels.dtype == np.int16 and not volume.voxels.flags.writeable
    assert np.array_equal(volume.voxels, values)
    assert np.allclose(volume.spacing, (2.5, 0.8, 0.6))
    assert np.allclose(volume.directions, [row, col, normal])
    # Voxel (k, j, i) sits at slice k's Image Position + i columns + j rows.
    expected = np.array([5.0, -10.0, 20.0]) + 3 * 2.5 * normal + 4 * 0.6 * np.array(row) \
        + 7 * 0.8 * np.array(col)
    assert np.allclose(volume.index_to_patient([3, 7, 4]), expected)
    assert volume.modality == "CT" and volume.window == (40.0, 400.0)
    assert volume.warnings == ()


def test_fractional_rescale_gives_float32(tmp_path):
    values = marker_values((5, 6, 6)) * 0.5
    volume = read_volume(write_series(tmp_path, values, slope=0.5, intercept=-10.5))
    assert volume.voxels.dtype == np.float32
    assert np.allclose(volume.voxels, values, atol=1e-4)


def test_cached_and_loaded_once_by_concurrent_callers(tmp_path):
    paths = write_series(tmp_path, marker_values((6, 8, 8)))
    cache = ByteLRUCache(64 * 1024**2)
    found = []
    threads = [threading.Thread(target=lambda: found.append(load_volume(cache, "k", paths)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4 and all(volume is found[0] for volume in found)
    assert cache.stats().misses == 1
    assert load_volume(cache, "k", paths) is found[0]


def test_uneven_spacing_is_resampled_and_warned(tmp_path):
    z = np.array([0.0, 1.0, 2.0, 3.5, 4.5, 5.5, 6.0, 7.0, 8.0])
    shape = (len(z), 6, 6)
    positions = np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1)
    values = _linear_field(_grid_points(shape, None, (1.0, 1.0, 1.0), (1, 0, 0), (0, 1, 0),
                                        positions))
    volume = read_volume(write_series(tmp_path, values, spacing=(1.0, 1.0, 1.0),
                                      positions=positions))
    assert any("uneven slice spacing" in note for note in volume.warnings)
    assert volume.shape[0] == 9 and np.isclose(volume.spacing[0], 1.0)
    kji = np.stack(np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij"), -1)
    truth = _linear_field(volume.index_to_patient(kji))
    assert np.abs(volume.voxels - truth).max() <= 0.5     # int16 rounding only


def test_missing_slices_are_interpolated_and_warned(tmp_path):
    z = np.delete(np.arange(12) * 2.0, [5, 6])            # two slices lost
    positions = np.stack([np.zeros_like(z), np.zeros_like(z), z], axis=1)
    shape = (len(z), 5, 7)
    values = _linear_field(_grid_points(shape, None, (2.0, 1.0, 1.0), (1, 0, 0), (0, 1, 0),
                                        positions))
    volume = read_volume(write_series(tmp_path, values, spacing=(2.0, 1.0, 1.0),
                                      positions=positions))
    assert any("about 2 missing slice(s)" in note for note in volume.warnings)
    assert volume.shape[0] == 12 and np.isclose(volume.spacing[0], 2.0)
    kji = np.stack(np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij"), -1)
    assert np.abs(volume.voxels - _linear_field(volume.index_to_patient(kji))).max() <= 0.5


def test_gantry_tilt_is_resampled_onto_an_orthogonal_grid(tmp_path):
    # 15° tilt: each 2 mm slice step also moves tan(15°)·2 mm along +y.
    count, spacing = 10, (2.0, 1.0, 1.0)
    z = np.arange(count) * spacing[0]
    positions = np.stack([np.zeros(count), np.tan(np.radians(15)) * z, z], axis=1)
    shape = (count, 24, 16)
    values = _linear_field(_grid_points(shape, None, spacing, (1, 0, 0), (0, 1, 0), positions))
    volume = read_volume(write_series(tmp_path, values, spacing=spacing, positions=positions))
    assert any("gantry tilt of 15.0°" in note for note in volume.warnings)
    assert np.allclose(volume.directions, np.eye(3))      # orthogonal grid
    kji = np.stack(np.meshgrid(*(np.arange(n) for n in volume.shape), indexing="ij"), -1)
    truth = _linear_field(volume.index_to_patient(kji))
    # The grid keeps the first slice's place; later slices drifted up to 4.8 rows
    # towards +y, so rows from 5 on were imaged in every slice and match the field.
    imaged = kji[..., 1] >= 5
    assert np.abs(volume.voxels - truth)[imaged].max() <= 0.5


def test_enhanced_multiframe_loads_like_the_classic_series(tmp_path):
    values = marker_values((9, 10, 12))
    geometry = dict(origin=(-5.0, 3.0, 7.0), spacing=(1.5, 0.7, 0.9),
                    row=(1.0, 0.0, 0.0), col=(0.0, 0.0, -1.0))
    classic = read_volume(write_series(tmp_path / "classic", values, **geometry))
    for per_frame in (False, True):
        enhanced = read_volume([write_enhanced(tmp_path / f"enhanced{per_frame}.dcm", values,
                                               per_frame_orientation=per_frame, **geometry)])
        assert np.array_equal(enhanced.voxels, classic.voxels)
        assert np.allclose(enhanced.origin, classic.origin)
        assert np.allclose(enhanced.spacing, classic.spacing)
        assert np.allclose(enhanced.directions, classic.directions)
        assert enhanced.window == (40.0, 400.0)


def test_localizer_left_out_with_a_warning(tmp_path):
    paths = write_series(tmp_path, marker_values((5, 8, 8)))
    scout = image(np.zeros((8, 8), np.int16), ImagePositionPatient=[0, 0, 0],
                  ImageOrientationPatient=[1, 0, 0, 0, 0, -1], PixelSpacing=[1, 1])
    volume = read_volume(paths + [save(scout, tmp_path / "scout.dcm")])
    assert volume.shape == (5, 8, 8)
    assert any("another orientation" in note for note in volume.warnings)


def test_identical_duplicates_dropped_different_ones_refused(tmp_path):
    values = marker_values((5, 6, 6))
    paths = write_series(tmp_path / "a", values)
    copies = write_series(tmp_path / "b", values[:2])
    volume = read_volume(paths + copies)
    assert volume.shape == (5, 6, 6) and any("duplicate" in n for n in volume.warnings)
    other = write_series(tmp_path / "c", values[:2] + 100)
    with pytest.raises(NotAVolume, match="two different images lie at the same position"):
        read_volume(paths + other)


def _single(tmp_path, name, **attributes):
    ds = image(np.zeros((4, 4), np.int16), ImagePositionPatient=[0, 0, 0],
               ImageOrientationPatient=[1, 0, 0, 0, 1, 0], PixelSpacing=[1, 1])
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    return save(ds, tmp_path / name)


def test_not_a_volume_gets_a_plain_message(tmp_path):
    with pytest.raises(NotAVolume, match="single image"):
        read_volume([_single(tmp_path, "one.dcm")])
    with pytest.raises(NotAVolume, match="only 2 slices"):
        read_volume(write_series(tmp_path / "two", marker_values((2, 4, 4))))
    mixed = [_single(tmp_path, f"m{n}.dcm", ImageOrientationPatient=orientation)
             for n, orientation in enumerate(([1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, -1],
                                              [1, 0, 0, 0, 0, -1]))]
    with pytest.raises(NotAVolume, match="mixed orientations or sizes"):
        read_volume(mixed)
    colour = save(image(np.zeros((4, 4, 3), np.uint8), photometric="RGB"), tmp_path / "rgb.dcm")
    with pytest.raises(NotAVolume, match="colour image"):
        read_volume([colour, colour, colour])
    no_geometry = save(image(np.zeros((4, 4), np.int16)), tmp_path / "plain.dcm")
    with pytest.raises(NotAVolume, match="cannot be placed in 3-D"):
        read_volume([no_geometry] * 3)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all")
    with pytest.raises(NotAVolume, match="an image of the series has no pixel data"):
        read_volume([tmp_path / "junk.dcm"] * 3)
    with pytest.raises(NotAVolume, match="no images"):
        read_volume([])
    assert issubclass(NotAVolume, ValueError)


def test_bits_stored_high_bits_are_ignored(tmp_path):
    values = marker_values((4, 4, 4)) + 1024                # stored = values - intercept
    paths = write_series(tmp_path, values, intercept=0.0)
    for path in paths:                                      # junk in the unused top 4 bits
        import pydicom
        ds = pydicom.dcmread(path)
        ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 12, 11, 0
        stored = np.frombuffer(ds.PixelData, "<u2") | np.uint16(0xA000)
        ds.PixelData = stored.tobytes()
        ds.save_as(path)
    volume = read_volume(paths)
    assert np.array_equal(volume.voxels, values)


def test_compressed_series_decodes_to_the_same_volume(tmp_path):
    from pydicom.uid import RLELossless
    import pydicom

    values = marker_values((6, 10, 12))
    paths = write_series(tmp_path, values)
    for path in paths[::2]:                                 # a mix of native and RLE files
        ds = pydicom.dcmread(path)
        ds.compress(RLELossless)
        ds.save_as(path)
    volume = read_volume(paths)
    assert np.array_equal(volume.voxels, values)
