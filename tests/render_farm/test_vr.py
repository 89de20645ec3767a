"""Volume rendering: what a reader would check on the picture, on both ray casters.

The phantom is a small CT in patient space (2 mm voxels, identity
orientation, so +x is the patient's left, +y posterior, +z head): a bone
sphere on the patient's left, a soft-tissue sphere on the right, and, where
asked, a body slab with a table under it (posterior) across an air gap.
"""
from __future__ import annotations

import io

import numpy as np
import pytest

from render_farm.cache import ByteLRUCache
from render_farm.volume import Volume
from render_farm.vr import choose_mapper, clear_scenes, opengl_renderer, render_volume
from render_farm.vr_camera import Camera, StandardView, place_camera
from render_farm.vr_edits import cut_mask, table_mask
from render_farm.vr_presets import PRESETS, get_preset
from render_farm.vr_state import Cut, VRState

N = 64
SPACING = 2.0
BONE_CENTRE = np.array([88.0, 64.0, 64.0])    # patient mm: left of the volume centre (63, 63, 63)
SOFT_CENTRE = np.array([38.0, 64.0, 64.0])    # right of it
RADIUS = 12.0

MAPPERS = ["cpu", pytest.param("gpu", marks=pytest.mark.skipif(
    not opengl_renderer(), reason="no OpenGL context for the GPU mapper"))]


def _grid() -> np.ndarray:
    k, j, i = np.mgrid[0:N, 0:N, 0:N] * SPACING
    return np.stack([i, j, k], axis=-1)   # patient (x, y, z) of each voxel, origin 0


def _ball(xyz: np.ndarray, centre: np.ndarray, contrast: float) -> np.ndarray:
    """A sphere of RADIUS whose edge ramps over 3 mm, as partial volume blurs real CT."""
    inside = np.clip((RADIUS - np.linalg.norm(xyz - centre, axis=-1)) / 3.0 + 0.5, 0.0, 1.0)
    return contrast * inside


def _phantom(key: str, table: bool = False) -> Volume:
    xyz = _grid()
    hu = np.full((N, N, N), -1000.0)
    if table:
        x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
        central = (x >= 10) & (x <= 116) & (z >= 10) & (z <= 116)
        hu[central & (y >= 30) & (y <= 90)] = 40        # body slab
        hu[central & (y >= 100) & (y <= 108)] = 300     # table, 10 mm below
    else:
        hu += _ball(xyz, SOFT_CENTRE, 1040)
    hu += _ball(xyz, BONE_CENTRE, 2200)
    hu = np.minimum(hu, 1200).astype(np.int16)
    hu.flags.writeable = False
    return Volume(hu, np.zeros(3), (SPACING, SPACING, SPACING), np.eye(3), key=key,
                  modality="CT")


@pytest.fixture(scope="module")
def phantom() -> Volume:
    return _phantom("test-vr-spheres")


@pytest.fixture(autouse=True, scope="module")
def _fresh_scenes():
    clear_scenes()
    yield
    clear_scenes()


def _brightness(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64).mean(axis=-1)


def _at(rgb: np.ndarray, xy: np.ndarray, half: int = 3) -> float:
    """Mean brightness of a small square around output pixel coordinates `xy`."""
    x, y = int(xy[0]), int(xy[1])
    return float(_brightness(rgb)[y - half:y + half + 1, x - half:x + half + 1].mean())


def _centroid_x(rgb: np.ndarray) -> float:
    weights = _brightness(rgb)
    return float((weights.sum(axis=0) * np.arange(rgb.shape[1])).sum() / weights.sum())


@pytest.mark.parametrize("mapper", MAPPERS)
def test_bone_preset_shows_bone_not_soft_tissue(phantom, mapper):
    state = VRState(preset="ct_bone", width=160, height=120)
    rgb = render_volume(phantom, state, mapper=mapper)
    assert rgb.shape == (120, 160, 3) and rgb.dtype == np.uint8
    frame = place_camera(state.camera, phantom)
    bone, soft = frame.project(BONE_CENTRE), frame.project(SOFT_CENTRE)
    assert _at(rgb, bone) > 100
    assert _at(rgb, soft) < 10
    assert _at(rgb, (5, 5)) == 0   # background


@pytest.mark.parametrize("mapper", MAPPERS)
def test_soft_tissue_preset_shows_both_spheres(phantom, mapper):
    state = VRState(preset="ct_soft", width=128, height=128)
    rgb = render_volume(phantom, state, mapper=mapper)
    frame = place_camera(state.camera, phantom)
    assert _at(rgb, frame.project(SOFT_CENTRE)) > 20
    assert _at(rgb, frame.project(BONE_CENTRE)) > 20


@pytest.mark.parametrize("mapper", MAPPERS)
def test_patient_left_is_on_screen_right_from_the_front_and_flips_from_the_back(phantom, mapper):
    anterior = render_volume(phantom, VRState(width=128, height=128), mapper=mapper)
    posterior = render_volume(phantom, VRState(view=StandardView.POSTERIOR, width=128,
                                               height=128), mapper=mapper)
    # The bone sphere is 25 mm left of centre: about 10 pixels at this scale.
    assert _centroid_x(anterior) > 64 + 6
    assert _centroid_x(posterior) < 64 - 6
    # And it lands where the camera projects its centre, within two pixels.
    for rgb, view in ((anterior, StandardView.ANTERIOR), (posterior, StandardView.POSTERIOR)):
        expected = place_camera(Camera(view=view, width=128, height=128), phantom)
        assert abs(_centroid_x(rgb) - expected.project(BONE_CENTRE)[0]) < 2


@pytest.mark.parametrize("mapper", MAPPERS)
def test_feet_view_matches_axial_convention_and_azimuth_turns(phantom, mapper):
    feet = render_volume(phantom, VRState(view=StandardView.FEET, width=128, height=128),
                         mapper=mapper)
    assert _centroid_x(feet) > 64 + 6      # patient left on screen right, as axial CT
    # Turning 180° about the vertical axis from the front is the view from behind.
    turned = render_volume(phantom, VRState(azimuth=180, width=128, height=128), mapper=mapper)
    assert _centroid_x(turned) < 64 - 6


@pytest.mark.parametrize("mapper", MAPPERS)
def test_crop_box_removes_the_structure_outside_it(phantom, mapper):
    state = VRState(preset="ct_soft", width=128, height=128)
    frame = place_camera(state.camera, phantom)
    bone = frame.project(BONE_CENTRE)
    # Keep the patient's right half (x < 63 mm): the left bone sphere goes.
    cropped = render_volume(phantom, state.replace(crop_mm=(0, 63, 0, 126, 0, 126)),
                            mapper=mapper)
    assert _at(cropped, bone) < 5
    assert _at(cropped, frame.project(SOFT_CENTRE)) > 30
    as_fractions = render_volume(phantom, state.replace(crop_fraction=(0, 0.5, 0, 1, 0, 1)),
                                 mapper=mapper)
    assert _at(as_fractions, bone) < 5


@pytest.mark.parametrize("mapper", MAPPERS)
def test_table_removal_removes_the_slab_below_the_body(mapper):
    volume = _phantom("test-vr-table", table=True)
    state = VRState(preset="ct_soft", view=StandardView.LEFT, width=128, height=128)
    frame = place_camera(state.camera, volume)
    table_xy = frame.project(np.array([63.0, 104.0, 63.0]))
    body_xy = frame.project(np.array([63.0, 60.0, 63.0]))
    cache = ByteLRUCache(64 * 1024**2)
    before = render_volume(volume, state, cache=cache, mapper=mapper)
    after = render_volume(volume, state.replace(table_removal=True), cache=cache, mapper=mapper)
    assert _at(before, table_xy, 1) > 30
    assert _at(after, table_xy, 1) < 5
    assert _at(after, body_xy) > 15


def test_table_mask_is_exactly_the_table():
    volume = _phantom("test-vr-table-mask", table=True)
    x, y, z = np.moveaxis(_grid(), -1, 0)
    table = (x >= 10) & (x <= 116) & (z >= 10) & (z <= 116) & (y >= 100) & (y <= 108)
    assert np.array_equal(table_mask(volume), table)
    # Labelled on a 2× coarser grid (as large volumes are), the answer is the same.
    assert np.array_equal(table_mask(volume, max_voxels=40_000), table)
    empty = Volume(np.full((8, 8, 8), -1000, np.int16), np.zeros(3), (1.0,) * 3, np.eye(3))
    assert not table_mask(empty).any()


@pytest.mark.parametrize("mapper", MAPPERS)
def test_scalpel_removes_what_was_cut_at_every_depth(phantom, mapper):
    state = VRState(preset="ct_bone", width=128, height=128)
    frame = place_camera(state.camera, phantom)
    x, y = frame.project(BONE_CENTRE)
    square = ((x - 15, y - 15), (x + 15, y - 15), (x + 15, y + 15), (x - 15, y + 15))
    edited = state.replace(cuts=(Cut(state.camera, square),))
    cache = ByteLRUCache(64 * 1024**2)
    assert _at(render_volume(phantom, state, cache=cache, mapper=mapper), (x, y)) > 100
    assert _brightness(render_volume(phantom, edited, cache=cache, mapper=mapper)).max() == 0
    # The cut goes through the whole depth: from the side the sphere is gone too.
    side = edited.replace(view=StandardView.LEFT)
    assert _brightness(render_volume(phantom, side, cache=cache, mapper=mapper)).max() == 0


def test_cut_mask_is_the_prism_under_the_polygon(phantom):
    camera = Camera(width=128, height=128)
    frame = place_camera(camera, phantom)
    # A rectangle over patient x 20..40 mm and z 80..100 mm, seen from the front.
    low = frame.project(np.array([20.0, 0.0, 100.0]))
    high = frame.project(np.array([40.0, 0.0, 80.0]))
    polygon = ((low[0], low[1]), (high[0], low[1]), (high[0], high[1]), (low[0], high[1]))
    removed = cut_mask(phantom, Cut(camera, polygon))
    xyz = _grid()
    inside = ((xyz[..., 0] > 20.5) & (xyz[..., 0] < 39.5)
              & (xyz[..., 2] > 80.5) & (xyz[..., 2] < 99.5))
    outside = ((xyz[..., 0] < 19.5) | (xyz[..., 0] > 40.5)
               | (xyz[..., 2] < 79.5) | (xyz[..., 2] > 100.5))
    assert removed[inside].all()
    assert not removed[outside].any()


@pytest.mark.parametrize("mapper", MAPPERS)
def test_mip_shows_the_brightest_structure(phantom, mapper):
    state = VRState(preset="mip", width=128, height=128)
    rgb = render_volume(phantom, state, mapper=mapper)
    frame = place_camera(state.camera, phantom)
    assert _at(rgb, frame.project(BONE_CENTRE)) > 240          # 1200 HU: white
    assert 40 < _at(rgb, frame.project(SOFT_CENTRE)) < 120      # 40 HU: mid grey


def test_preview_is_close_to_the_still_at_the_same_size(phantom):
    still = render_volume(phantom, VRState(width=300, height=300), mapper="cpu")
    preview = render_volume(phantom, VRState(width=300, height=300, render_quality="preview"),
                            mapper="cpu")
    assert preview.shape == still.shape
    assert abs(_centroid_x(preview) - _centroid_x(still)) < 1.5
    assert np.abs(_brightness(preview) - _brightness(still)).mean() < 5


def test_shift_moves_the_transfer_function_like_a_level_drag(phantom):
    state = VRState(preset="ct_bone", width=128, height=128)
    frame = place_camera(state.camera, phantom)
    # Shifted down by 300 HU, the bone preset starts at about −170 HU: soft tissue shows.
    shifted = render_volume(phantom, state.replace(shift=-300), mapper="cpu")
    assert _at(shifted, frame.project(SOFT_CENTRE)) > 30
    # Shifted far up, nothing is opaque any more.
    assert _brightness(render_volume(phantom, state.replace(shift=2500), mapper="cpu")).max() < 5


def test_every_preset_renders_and_adjusts(phantom):
    for name, preset in PRESETS.items():
        assert get_preset(name) is preset
        # Every preset shows something of the phantom (the lung preset its sphere edges).
        rgb = render_volume(phantom, VRState(preset=name, width=48, height=48), mapper="cpu")
        assert rgb.max() > 20, name
        wider = preset.adjusted(shift=10, scale=2)
        assert wider.opacity[0][0] == preset.center + (preset.opacity[0][0] - preset.center) * 2 + 10
    with pytest.raises(ValueError, match="unknown volume rendering preset 'ct_bones'"):
        get_preset("ct_bones")


def test_state_query_is_canonical_and_round_trips():
    cut = Cut(Camera(view=StandardView.LEFT, azimuth=10, width=256, height=200),
              ((1.5, 2), (100, 2), (50, 80)))
    state = VRState(preset="ct_angio", shift=-20, scale=1.5, shade=False, azimuth=-30,
                    elevation=400, zoom=2, pan_x=12, crop_fraction=(0, 0.5, 0, 1, 0.25, 1),
                    table_removal=True, cuts=(cut,), width=640, height=480,
                    render_quality="preview")
    query = state.to_query()
    assert VRState.from_query(query) == state
    assert VRState.from_query(query).to_query() == query
    assert state.azimuth == 330 and state.elevation == 40
    assert VRState().to_query() == ""
    assert VRState.from_query("v=posterior&az=0").to_query() == "v=posterior"
    assert state.cache_key() == VRState.from_query(query).cache_key() != VRState().cache_key()


@pytest.mark.parametrize("query, message", [
    ("preset=bone", "unknown volume rendering preset"),
    ("v=top", "v: expected one of anterior"),
    ("zz=1", "unknown volume rendering parameter 'zz'"),
    ("z=0", "z (zoom): must be a number"),
    ("sc=abc", "sc: expected a number"),
    ("crop=0,1,0,1,0", "crop: expected six numbers"),
    ("crop=0,10,0,10,5,1", "each low bound must be below"),
    ("cropf=0,2,0,1,0,1", "cropf: fractions must lie in 0..1"),
    ("crop=0,1,0,1,0,1&cropf=0,1,0,1,0,1", "not both"),
    ("cut=anterior,0,0,0,1,0,0,64,64,1,1,2,2", "cut: expected"),
    ("cut=sideways,0,0,0,1,0,0,64,64,1,1,2,2,3,1", "cut: expected one of"),
    ("rq=fast", "rq (render quality)"),
    ("fmt=gif", "fmt: expected jpeg, webp or png"),
    ("w=0", "w (width): must be an integer"),
    ("v=left&v=right", "v: given more than once"),
])
def test_bad_queries_get_a_readable_error(query, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        VRState.from_query(query)


def test_mapper_choice():
    assert choose_mapper("cpu") == "cpu"
    assert choose_mapper("auto") in ("cpu", "gpu")
    with pytest.raises(ValueError, match="mapper must be one of auto, gpu, cpu"):
        choose_mapper("opencl")


def test_polygon_raster_tests_cell_centres_exactly():
    from render_farm.vr_edits import polygon_raster

    # A right triangle above the line y = x - 0.25: centres (c+0.5, r+0.5) with c > r.
    inside = polygon_raster(((0, -0.25), (4, -0.25), (4, 3.75)), 6, 5)
    r, c = np.mgrid[0:5, 0:6]
    assert np.array_equal(inside, (c > r) & (c < 4))
    # Oversampled 4×, a square from 1.1 to 2.9 holds cell centres 1.125..2.875 (cells 4..11).
    square = polygon_raster(((1.1, 1.1), (2.9, 1.1), (2.9, 2.9), (1.1, 2.9)), 4, 4, 4)
    assert square.sum() == 8 * 8 and square[4:12, 4:12].all()


@pytest.mark.parametrize("mapper", MAPPERS)
def test_slices_stacked_downwards_still_show_patient_left_on_the_right(phantom, mapper):
    # Same patient, slices stored head to feet: the index frame is left-handed.
    flipped = Volume(np.ascontiguousarray(phantom.voxels[::-1]),
                     phantom.index_to_patient(np.array([N - 1.0, 0.0, 0.0])), phantom.spacing,
                     np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, -1.0]]), key="test-vr-flipped")
    for view, right_of_centre in ((StandardView.ANTERIOR, True), (StandardView.POSTERIOR, False)):
        state = VRState(view=view, width=128, height=128)
        rgb = render_volume(flipped, state, mapper=mapper)
        expected = place_camera(state.camera, flipped).project(BONE_CENTRE)
        assert (_centroid_x(rgb) > 64) == right_of_centre
        assert abs(_centroid_x(rgb) - expected[0]) < 2
    # Head up: a bone sphere moved towards the head appears higher in the picture.
    high = np.roll(phantom.voxels, 10, axis=0)            # +10 slices = +20 mm towards the head
    up = Volume(high, phantom.origin, phantom.spacing, phantom.directions, key="test-vr-high")
    rgb = render_volume(up, VRState(width=128, height=128), mapper=mapper)
    rows = _brightness(rgb).sum(axis=1)
    centroid_y = (rows * np.arange(128)).sum() / rows.sum()
    assert centroid_y < 64 - 6


@pytest.mark.parametrize("mapper", MAPPERS)
def test_float_volumes_render(mapper):
    # MR and PET volumes arrive as float32.
    xyz = _grid()
    signal = (300.0 * np.exp(-(np.linalg.norm(xyz - BONE_CENTRE, axis=-1) / 10.0) ** 2))
    volume = Volume(signal.astype(np.float32), np.zeros(3), (SPACING,) * 3, np.eye(3),
                    key="test-vr-mr", modality="MR")
    state = VRState(preset="mr_default", width=96, height=96)
    rgb = render_volume(volume, state, mapper=mapper)
    assert _at(rgb, place_camera(state.camera, volume).project(BONE_CENTRE)) > 20


def test_degenerate_volumes_are_refused():
    flat = Volume(np.zeros((1, 8, 8), np.int16), np.zeros(3), (1.0, 1.0, 1.0), np.eye(3))
    with pytest.raises(ValueError, match="at least 2 voxels along each axis"):
        render_volume(flat, VRState(), mapper="cpu")



def test_vr_frame_renders_a_stored_series(tmp_path):
    from PIL import Image as PILImage

    from render_farm.vr import vr_frame
    from tests.render_farm.volume_factory import write_series

    # The bone-sphere phantom written as 64 CT slices of 2 mm, patient left at +x.
    paths = write_series(tmp_path / "ct", _phantom("unused").voxels.astype(np.float64),
                         spacing=(SPACING, SPACING, SPACING))
    cache = ByteLRUCache(256 * 1024**2)
    body, media_type = vr_frame(cache, "series-vr-1", [str(p) for p in paths],
                                "w=128&h=128&fmt=png")
    assert media_type == "image/png"
    rgb = np.asarray(PILImage.open(io.BytesIO(body)).convert("RGB"))
    assert rgb.shape == (128, 128, 3)
    assert _centroid_x(rgb) > 64 + 6       # patient left on screen right, from the front
    body, _ = vr_frame(cache, "series-vr-1", [str(p) for p in paths], "w=128&h=128&v=posterior")
    assert _centroid_x(np.asarray(PILImage.open(io.BytesIO(body)).convert("RGB"))) < 64 - 6
    with pytest.raises(ValueError, match="unknown volume rendering preset"):
        vr_frame(cache, "series-vr-1", [str(p) for p in paths], "preset=nope")
