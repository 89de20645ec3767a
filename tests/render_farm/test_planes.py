"""Planes: pixel ↔ patient mapping and sampling a volume, against numpy truth."""
from __future__ import annotations

import numpy as np
import pytest

from render_farm.planes import Plane, sample
from render_farm.volume import Volume

X, Y, Z = np.eye(3)


def _volume(seed: int = 0) -> Volume:
    rng = np.random.default_rng(seed)
    voxels = rng.integers(-1000, 1000, (30, 40, 36)).astype(np.int16)
    return Volume(voxels, np.array([10.0, -20.0, 30.0]), (2.0, 0.8, 0.7), np.eye(3))


def _trilinear(voxels: np.ndarray, kji: np.ndarray) -> np.ndarray:
    """Reference trilinear interpolation, written out over the 8 corners."""
    base = np.floor(kji).astype(int)
    frac = kji - base
    out = np.zeros(kji.shape[:-1])
    for corner in np.ndindex(2, 2, 2):
        weight = np.ones(kji.shape[:-1])
        index = []
        for axis, step in enumerate(corner):
            weight *= frac[..., axis] if step else 1.0 - frac[..., axis]
            index.append(np.clip(base[..., axis] + step, 0, voxels.shape[axis] - 1))
        out += weight * voxels[tuple(index)]
    return out


def test_pixel_to_patient_and_back():
    plane = Plane(np.array([1.0, 2.0, 3.0]), X, -Z, (2.0, 0.5), (10, 20))
    point = plane.pixel_to_patient((3, 4))
    assert np.allclose(point, [1.0 + 4 * 0.5, 2.0, 3.0 - 3 * 2.0])
    assert np.allclose(plane.patient_to_pixel(point + 7.0 * plane.normal), [3, 4, 7.0])
    assert np.allclose(plane.normal, np.cross(X, -Z))


def test_axial_plane_on_the_grid_is_the_slice_itself():
    volume = _volume()
    plane = Plane(volume.index_to_patient([5, 0, 0]), X, Y, (0.8, 0.7), (40, 36))
    assert np.array_equal(sample(volume, plane), volume.voxels[5].astype(np.float32))


def test_flipped_coronal_plane_is_numpy_indexing():
    volume = _volume()
    # Superior up: output rows run from the last slice to the first.
    plane = Plane(volume.index_to_patient([29, 7, 0]), X, -Z, (2.0, 0.7), (30, 36))
    assert np.array_equal(sample(volume, plane), volume.voxels[::-1, 7, :])


def test_slab_mip_minip_avg_equal_numpy_over_the_slab():
    volume = _volume()
    # 8 mm slab centred on slice 10 of 2 mm slices: slices 8..12.
    centre = volume.index_to_patient([10, 0, 0])
    for mode, reduce in (("mip", np.max), ("minip", np.min), ("avg", np.mean)):
        plane = Plane(centre, X, Y, (0.8, 0.7), (40, 36), thickness=8.0, mode=mode)
        expected = reduce(volume.voxels[8:13].astype(np.float64), axis=0)
        assert np.allclose(sample(volume, plane), expected, atol=1e-3), mode


def test_oblique_plane_is_trilinear_interpolation():
    volume = _volume()
    angle = np.radians(25.0)
    row_axis = np.array([np.cos(angle), 0.0, np.sin(angle)])
    col_axis = np.array([0.0, 1.0, 0.0])
    plane = Plane(volume.index_to_patient([14.3, 3.2, 4.1]), row_axis, col_axis,
                  (0.6, 0.6), (30, 30))
    rows, cols = np.mgrid[0:30, 0:30]
    kji = volume.patient_to_index(plane.pixel_to_patient(np.stack([rows, cols], -1)))
    inside = np.all((kji >= 0) & (kji <= np.array(volume.shape) - 1), axis=-1)
    assert inside.mean() > 0.5
    got = sample(volume, plane, fill=np.nan)
    assert np.allclose(got[inside], _trilinear(volume.voxels, kji)[inside], atol=0.05)
    far = np.any((kji < -0.5 - 1e-6) | (kji > np.array(volume.shape) - 0.5 + 1e-6), axis=-1)
    assert np.all(np.isnan(got[far]))


def test_outside_the_volume_is_fill_default_minimum():
    volume = _volume()
    plane = Plane(volume.index_to_patient([200, 0, 0]), X, Y, (0.8, 0.7), (4, 4))
    assert np.all(sample(volume, plane) == volume.voxels.min())
    assert np.all(sample(volume, plane, fill=-3000) == -3000)


@pytest.mark.parametrize("kwargs, message", [
    (dict(row_axis=[2.0, 0, 0]), "row_axis must be a unit vector"),
    (dict(col_axis=[1.0, 0, 0]), "perpendicular"),
    (dict(spacing=(0.0, 1.0)), "spacing must be two positive numbers"),
    (dict(size=(0, 10)), "size must be two integers"),
    (dict(thickness=-1.0), "thickness must be >= 0"),
    (dict(mode="sum"), "slab mode must be one of"),
    (dict(origin=[np.nan, 0, 0]), "origin must be three finite numbers"),
])
def test_bad_planes_are_refused(kwargs, message):
    args = dict(origin=[0, 0, 0], row_axis=X, col_axis=Y, spacing=(1.0, 1.0), size=(4, 4))
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Plane(**args)
