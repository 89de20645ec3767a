"""MPR: markers at known patient positions land where they must, in every plane."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from render_farm.cache import ByteLRUCache
from render_farm.encode import ImageFormat
from render_farm.mpr import (
    geometry, mpr_frame, mpr_geometry, mpr_pick, pick, plane_for, render_mpr, volume_centre,
)
from render_farm.mpr_state import MPRState, Orientation, canonical_query, split_query
from render_farm.planes import sample
from render_farm.viewport import ViewState
from render_farm.volume import NotAVolume, Volume
from tests.render_farm.volume_factory import write_series

SHAPE, SPACING = (60, 90, 100), (2.0, 0.8, 0.75)
ORIGIN = np.array([-40.0, -30.0, -60.0])


def _volume_with(points: list[np.ndarray], sigma: float = 1.2, peak: float = 1000.0) -> Volume:
    """Air-like background with a Gaussian blob (sigma mm) at each patient point."""
    volume = Volume(np.zeros(SHAPE, np.int16), ORIGIN, SPACING, np.eye(3))
    kji = np.stack(np.meshgrid(*(np.arange(n) for n in SHAPE), indexing="ij"), -1)
    xyz = volume.index_to_patient(kji)
    values = np.zeros(SHAPE)
    for point in points:
        values += peak * np.exp(-np.sum((xyz - point) ** 2, axis=-1) / (2 * sigma**2))
    return Volume(np.round(values).astype(np.int16), ORIGIN, SPACING, np.eye(3),
                  window=(500.0, 1000.0))


def _state(point: np.ndarray, orientation: str, **kwargs) -> MPRState:
    return MPRState(Orientation(orientation), *map(float, point), **kwargs)


def _peak(values: np.ndarray) -> np.ndarray:
    """Sub-pixel (row, col) centroid of the brightest blob."""
    row, col = np.unravel_index(np.argmax(values), values.shape)
    window = values[max(row - 3, 0):row + 4, max(col - 3, 0):col + 4].astype(float)
    window = np.clip(window - 0.2 * window.max(), 0, None)
    rows, cols = np.mgrid[max(row - 3, 0):row + 4, max(col - 3, 0):col + 4]
    rows, cols = rows[:window.shape[0], :window.shape[1]], cols[:window.shape[0], :window.shape[1]]
    return np.array([np.sum(rows * window), np.sum(cols * window)]) / window.sum()


@pytest.mark.parametrize("orientation", ["axial", "coronal", "sagittal"])
def test_marker_lands_on_its_pixel_in_every_plane(orientation):
    marker = np.array([3.7, -6.1, 12.3])
    volume = _volume_with([marker])
    state = _state(marker, orientation)
    plane = plane_for(volume, state)
    expected = plane.patient_to_pixel(marker)
    assert abs(expected[2]) < 1e-9                        # the plane passes through it
    assert np.allclose(_peak(sample(volume, plane)), expected[:2], atol=0.35)


def test_radiological_display_orientation():
    centre = ORIGIN + np.array([37.5, 36.0, 59.0])
    left, anterior, superior = (centre + [20, 0, 0], centre + [0, -20, 0], centre + [0, 0, 20])
    volume = _volume_with([left, anterior, superior])

    def where(orientation: str, point: np.ndarray) -> np.ndarray:
        plane = plane_for(volume, _state(centre, orientation))
        return plane.patient_to_pixel(point)[:2] - plane.patient_to_pixel(centre)[:2]

    # Axial: patient left at screen right, anterior up.
    assert where("axial", left)[1] > 0 and where("axial", anterior)[0] < 0
    # Coronal: superior up, patient right (−x) at screen left, so left at right.
    assert where("coronal", superior)[0] < 0 and where("coronal", left)[1] > 0
    # Sagittal: superior up, anterior at screen left.
    assert where("sagittal", superior)[0] < 0 and where("sagittal", anterior)[1] < 0
    # And the rendered pixels agree: the left marker is bright right of centre on the axial.
    state = _state(left, "axial")
    plane = plane_for(volume, state)
    values = sample(volume, plane)
    row, col = plane.patient_to_pixel(left)[:2].round().astype(int)
    assert values[row, col] > 500 and col > plane.patient_to_pixel(centre)[1]
    assert values[row, col] >= values[row - 2:row + 3, col - 2:col + 3].max() - 1


def test_marker_after_oblique_rotation_and_length_within_one_percent():
    state = MPRState(Orientation.AXIAL, 1.0, 2.0, 3.0, rx=25.0, ry=-10.0, rz=35.0)
    rotation = state.rotation
    right, down = rotation @ [1.0, 0, 0], rotation @ [0, 1.0, 0]
    a = state.point
    b = a + 24.0 * right - 17.0 * down                     # in the rotated axial plane
    truth = float(np.linalg.norm(b - a))
    volume = _volume_with([a, b])
    plane = plane_for(volume, state)
    assert np.allclose(plane.row_axis, right) and np.allclose(plane.col_axis, down)
    view = ViewState(width=400, height=400, zoom=1.7, pan_x=10.0, pan_y=-5.0,
                     window_center=500.0, window_width=1000.0, format=ImageFormat.PNG)
    rendered = np.asarray(render_mpr(volume, state, view)).astype(float)
    # Find each blob on screen, map the two display points back to patient mm.
    found = []
    for point in (a, b):
        info = geometry(volume, state, view)
        pixel = plane.patient_to_pixel(point)[:2]
        display = np.array(info["image_to_display"]) @ [pixel[1] + 0.5, pixel[0] + 0.5, 1.0]
        x, y = display.round().astype(int)
        crop = np.zeros_like(rendered)
        crop[y - 6:y + 7, x - 6:x + 7] = rendered[y - 6:y + 7, x - 6:x + 7]
        row, col = _peak(crop)
        found.append(pick(volume, state, view, col + 0.5, row + 0.5))
    assert np.linalg.norm(found[0] - a) < 0.5 and np.linalg.norm(found[1] - b) < 0.5
    assert abs(np.linalg.norm(found[1] - found[0]) - truth) <= 0.01 * truth


def test_slab_mip_equals_numpy_max_over_the_slab():
    rng = np.random.default_rng(3)
    voxels = rng.integers(-1000, 2000, SHAPE).astype(np.int16)
    volume = Volume(voxels, ORIGIN, SPACING, np.eye(3))
    centre = volume.index_to_patient([30, 40, 50])
    # 10 mm around slice 30 of 2 mm slices: slices 28..32 (faces included).
    axial = plane_for(volume, _state(centre, "axial", thickness=10.0, mode="mip"))
    assert np.array_equal(sample(volume, axial), voxels[28:33].max(axis=0))
    # Coronal: 4 mm around row 40 of 0.8 mm rows: rows 38 (-1.6 mm) .. 42 (+1.6 mm).
    coronal = plane_for(volume, _state(centre, "coronal", thickness=4.0, mode="minip"))
    assert np.array_equal(sample(volume, coronal), voxels[::-1, 38:43, :].min(axis=1))


def test_reference_lines_cross_at_the_crosshair():
    volume = _volume_with([])
    point = volume_centre(volume) + [5.0, -3.0, 8.0]
    info = geometry(volume, _state(point, "axial"), ViewState())
    row, col = info["crosshair_pixel"]
    coronal, sagittal = info["lines"]["coronal"], info["lines"]["sagittal"]
    # On an axial view the coronal plane is a horizontal line, the sagittal a vertical one.
    assert np.allclose([coronal["from"][0], coronal["to"][0]], row)
    assert np.allclose(sorted([coronal["from"][1], coronal["to"][1]]), [-0.5, SHAPE[2] - 0.5])
    assert np.allclose([sagittal["from"][1], sagittal["to"][1]], col)
    # Rotated about z, the lines turn with it but still cross at the crosshair.
    info = geometry(volume, _state(point, "axial", rz=30.0), ViewState())
    row, col = info["crosshair_pixel"]
    (r0, c0), (r1, c1) = info["lines"]["coronal"]["from"], info["lines"]["coronal"]["to"]
    cross = (c1 - c0) * (row - r0) - (r1 - r0) * (col - c0)
    assert abs(cross) < 1e-6 and abs(r1 - r0) < 1e-6     # still along the screen rows


def test_click_picks_the_patient_point_under_it():
    volume = _volume_with([])
    point = volume_centre(volume) + [4.0, 2.0, -6.0]
    for orientation in ("axial", "coronal", "sagittal"):
        state = _state(point, orientation, rx=10.0)
        view = ViewState(width=300, height=200, zoom=1.3)
        info = geometry(volume, state, view)
        row, col = info["crosshair_pixel"]
        x, y = np.array(info["image_to_display"]) @ [col + 0.5, row + 0.5, 1.0]
        assert np.allclose(pick(volume, state, view, x, y), point, atol=1e-6)


def test_query_is_canonical_and_bad_values_are_named():
    state, view = split_query("wc=40&o=coronal&cz=-12.5&cy=0&cx=3&rz=370&st=20&sp=MIP&ww=400")
    assert state == MPRState(Orientation.CORONAL, 3.0, 0.0, -12.5, rz=10.0, thickness=20.0,
                             mode="mip")
    assert canonical_query(state, view) == \
        "cx=3&cy=0&cz=-12.5&o=coronal&rz=10&sp=mip&st=20&wc=40&ww=400"
    assert split_query(canonical_query(state, view)) == (state, view)
    for query, message in (("o=oblique", "o: expected axial, coronal or sagittal"),
                           ("cx=1", "must be given together"),
                           ("st=-1", "st \\(thickness\\)"),
                           ("sp=sum&st=2", "sp \\(slab projection\\)"),
                           ("rx=nan", "rx: expected a finite number"),
                           ("o=axial&o=coronal", "o: given more than once"),
                           ("what=1", "unknown viewport parameter")):
        with pytest.raises(ValueError, match=message):
            split_query(query)


def test_operations_on_series_files(tmp_path):
    marker = np.array([10.0, 12.0, 14.0])
    kji = np.stack(np.meshgrid(*(np.arange(n) for n in (20, 32, 32)), indexing="ij"), -1)
    xyz = kji[..., ::-1] * [1.0, 1.0, 2.0]
    values = -1000 + 1500 * np.exp(-np.sum((xyz - marker) ** 2, -1) / 8.0)
    paths = [str(p) for p in write_series(tmp_path / "ct", values, spacing=(2.0, 1.0, 1.0))]
    cache = ByteLRUCache(256 * 1024**2)
    query = "o=sagittal&cx=10&cy=12&cz=14&fmt=png&wc=0&ww=1000"
    body, media_type = mpr_frame(cache, "series-1", paths, query)
    assert media_type == "image/png"
    shown = np.asarray(Image.open(io.BytesIO(body)))
    info = mpr_geometry(cache, "series-1", paths, query)
    assert shown.shape == (info["output_size"][1], info["output_size"][0])
    y, x = np.unravel_index(np.argmax(shown), shown.shape)
    assert np.linalg.norm(np.array(mpr_pick(cache, "series-1", paths, query, x + 0.5, y + 0.5))
                          - marker) < 2.0
    body, media_type = mpr_frame(cache, "series-1", paths, "o=axial&st=6&sp=mip")
    assert media_type == "image/jpeg" and body[:2] == b"\xff\xd8"
    with pytest.raises(NotAVolume, match="only 2 slices"):
        mpr_frame(cache, "series-2", paths[:2], "o=axial")
