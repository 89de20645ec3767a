"""Curved MPR: a straight tube gives the matching MPR; a curved tube is straightened."""
from __future__ import annotations

import numpy as np
import pytest

from render_farm.cache import ByteLRUCache
from render_farm.cpr import (
    CPRState, cpr_frame, cpr_geometry, cross_section, resample_path, split_query,
    straightened, stretched,
)
from render_farm.planes import Plane, sample
from render_farm.volume import Volume
from tests.render_farm.volume_factory import write_series

SHAPE, SPACING = (50, 80, 80), (1.0, 1.0, 1.0)


def _tube_volume(centre_line, radius: float = 2.0) -> Volume:
    """A bright tube (500) of `radius` mm around a densely sampled centre line, in noise."""
    volume = Volume(np.zeros(SHAPE, np.int16), np.zeros(3), SPACING, np.eye(3))
    kji = np.stack(np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij"), -1)
    xyz = volume.index_to_patient(kji).reshape(-1, 3)
    distance = np.full(len(xyz), np.inf)
    for point in centre_line:
        distance = np.minimum(distance, np.linalg.norm(xyz - point, axis=1))
    rng = np.random.default_rng(5)
    values = np.where(distance <= radius, 500, 0) + rng.normal(0, 5, len(xyz))
    return Volume(np.round(values).reshape(SHAPE).astype(np.int16), np.zeros(3), SPACING,
                  np.eye(3))


def test_straight_path_gives_the_matching_mpr():
    rng = np.random.default_rng(0)
    volume = Volume(rng.integers(-500, 500, SHAPE).astype(np.int16), np.zeros(3), SPACING,
                    np.eye(3))
    top, bottom = np.array([40.3, 39.7, 45.0]), np.array([40.3, 39.7, 5.0])
    path = resample_path([top, bottom], 1.0)
    assert len(path.points) == 41 and np.isclose(path.length, 40.0)
    cpr = straightened(volume, path, angle=0.0, width=30.0)
    # Angle 0 of a path going down -z: across = +x, so this is a coronal cut.
    coronal = Plane(top - 15.0 * np.array([1.0, 0, 0]), [1.0, 0, 0], [0, 0, -1.0],
                    (1.0, 1.0), cpr.shape)
    assert np.allclose(cpr, sample(volume, coronal), atol=0.05)
    # Scrolled by 90° about the tangent: across = tangent × normal = -y, a sagittal cut.
    turned = straightened(volume, path, angle=90.0, width=30.0)
    sagittal = Plane(top + 15.0 * np.array([0, 1.0, 0]), [0, -1.0, 0], [0, 0, -1.0],
                     (1.0, 1.0), turned.shape)
    assert np.allclose(turned, sample(volume, sagittal), atol=0.05)


def _arc(radius: float = 25.0, degrees: float = 150.0, z: float = 25.0, count: int = 121):
    angles = np.radians(np.linspace(0.0, degrees, count))
    return np.stack([40 + radius * np.cos(angles), 40 + radius * np.sin(angles),
                     np.full(count, z)], axis=1)


def test_curved_tube_is_straightened_with_its_true_length():
    line = _arc()
    volume = _tube_volume(line)
    sparse = line[::12].tolist() + [line[-1].tolist()]            # 11 clicked points
    path = resample_path(sparse, 0.5)
    polyline = np.sum(np.linalg.norm(np.diff(np.array(sparse), axis=0), axis=1))
    assert np.isclose(path.length, polyline, atol=0.5)
    truth = 25.0 * np.radians(150.0)
    assert abs(path.length - truth) <= 0.01 * truth                # chords of a fine arc
    cpr = straightened(volume, path, angle=0.0, width=20.0)
    middle = cpr.shape[1] // 2
    # The tube runs straight down the middle column for its whole length...
    assert np.all(cpr[:, middle] > 400)
    # ...and 6 mm either side is background, at every row.
    assert np.all(cpr[:, middle - 12] < 100) and np.all(cpr[:, middle + 12] < 100)


def test_stretched_cpr_keeps_length_and_follows_the_path():
    line = _arc(degrees=90.0)
    volume = _tube_volume(line)
    path = resample_path(line[::12].tolist() + [line[-1].tolist()], 0.5)
    values, centre = stretched(volume, path, angle=0.0, width=20.0)
    rows = np.arange(values.shape[0])
    # Every row shows the tube at the column where the path is.
    at_path = values[rows, np.round(centre).astype(int)]
    assert np.mean(at_path > 400) > 0.97
    # The path bows across the image as it curves (it is not straightened): the
    # 90° arc of radius 25 mm bulges 25·(1 - cos 45°) = 7.3 mm off its chord.
    assert np.isclose((centre.max() - centre.min()) * 0.5, 25 * (1 - np.cos(np.pi / 4)), atol=0.5)


def test_cross_section_is_a_disc_centred_on_the_path():
    line = np.stack([np.full(81, 40.0), np.full(81, 40.0), np.linspace(5, 45, 81)], 1)
    volume = _tube_volume(line, radius=3.0)
    path = resample_path([line[0], line[-1]], 1.0)
    plane = cross_section(volume, path, position=20.0, angle=0.0, width=21.0)
    assert np.allclose(plane.normal, path.tangents[20])
    values = sample(volume, plane)
    assert values.shape == (22, 22) or values.shape == (21, 21)
    centre = (np.array(values.shape) - 1) / 2.0
    bright = np.argwhere(values > 250)
    assert np.allclose(bright.mean(axis=0), centre, atol=0.3)
    assert 20 <= len(bright) <= 40                                 # π·3² ≈ 28 mm²


def test_query_round_trip_and_errors():
    state, view = split_query("path=1,2,3;4,5,6.5&kind=stretched&ang=370&cw=40&wc=40&ww=400")
    assert state == CPRState(((1, 2, 3), (4, 5, 6.5)), "stretched", 10.0, 40.0)
    assert split_query(state.to_query() + "&" + view.to_query()) == (state, view)
    for query, message in (("kind=straight", "path: a CPR needs the path points"),
                           ("path=1,2,3", "path: a CPR path needs 2"),
                           ("path=1,2;3,4,5", "each point needs 3 finite numbers"),
                           ("path=1,2,x;3,4,5", "expected x,y,z"),
                           ("path=1,2,3;4,5,6&kind=spiral", "kind: expected one of"),
                           ("path=1,2,3;4,5,6&cw=0", "cw: must be a number"),
                           ("path=1,2,3;4,5,6&hz=2", "hz: expected 1 or 0")):
        with pytest.raises(ValueError, match=message):
            split_query(query)
    with pytest.raises(ValueError, match="at least 2 distinct points"):
        resample_path([[1, 2, 3], [1, 2, 3]], 1.0)


def test_cpr_operations_on_series_files(tmp_path):
    values = np.zeros((20, 24, 24)) - 1000
    values[:, 10:13, 10:13] = 300                                    # a vessel along z
    paths = [str(p) for p in write_series(tmp_path, values, spacing=(1.0, 1.0, 1.0))]
    cache = ByteLRUCache(128 * 1024**2)
    query = "path=11,11,0;11,11,19&cw=10&wc=0&ww=2000&fmt=png"
    body, media_type = cpr_frame(cache, "cpr-1", paths, query)
    assert media_type == "image/png" and body[:4] == b"\x89PNG"
    info = cpr_geometry(cache, "cpr-1", paths, query)
    assert info["size"] == [20, 11] and np.isclose(info["length"], 19.0)
    assert np.allclose(info["centre"][0], [11, 11, 0]) and np.allclose(info["across"][0], [1, 0, 0])
    body, _ = cpr_frame(cache, "cpr-1", paths, query.replace("cw=10", "kind=cross&pos=5"))
    assert body[:4] == b"\x89PNG"
