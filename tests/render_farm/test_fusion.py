"""PET/CT fusion: colours, opacity, and alignment through patient coordinates."""
from __future__ import annotations

import numpy as np
import pytest

from render_farm.colormaps import Colormap, colormap_lut
from render_farm.fusion import FusionState, blend, split_query
from render_farm.volume import Volume

HOT_SPOT = np.array([12.3, -20.6, 31.0])     # patient mm (LPS)


def test_blend_windows_each_image_and_mixes_by_opacity():
    base = np.array([[40.0, -160.0, 240.0, 40.0]])      # CT: mid grey, black, white, grey
    overlay = np.array([[10.0, 10.0, 0.0, np.nan]])      # PET: top of range, ..., bottom, outside
    rgb = blend(base, overlay, (40.0, 400.0), (0.0, 10.0), Colormap.HOT, opacity=0.25)
    white = colormap_lut(Colormap.HOT)[255].astype(float)            # hot's top is white
    grey = np.floor((40 - 39.5) / 399 * 255 + 0.5 * 255 + 0.5)       # 128
    assert np.allclose(rgb[0, 0], np.floor(0.75 * grey + 0.25 * white + 0.5), atol=1)
    assert np.allclose(rgb[0, 1], np.floor(0.25 * white + 0.5), atol=1)
    # Exactly at the bottom of the range the colour map's first entry (black) is blended in.
    assert np.allclose(rgb[0, 2], np.floor(0.75 * 255 + 0.5), atol=1)
    # NaN (outside the PET volume) leaves the CT untouched.
    assert np.all(rgb[0, 3] == grey)


def test_values_below_the_range_are_transparent_unless_asked():
    base = np.full((1, 2), 40.0)
    overlay = np.array([[-5.0, 5.0]])
    shown = blend(base, overlay, (40.0, 400.0), (0.0, 10.0), Colormap.PET, 1.0)
    assert np.all(shown[0, 0] == 128)                           # CT only
    assert np.array_equal(shown[0, 1], colormap_lut(Colormap.PET)[128])
    tinted = blend(base, overlay, (40.0, 400.0), (0.0, 10.0), Colormap.PET, 1.0,
                   transparent_below=False)
    assert np.array_equal(tinted[0, 0], colormap_lut(Colormap.PET)[0])


def test_query_parsing_and_errors():
    fusion, view = split_query("k=12&omin=0&omax=6.5&ocm=hot&op=0.7&suv=1&wc=40&ww=350&fmt=png")
    assert fusion == FusionState(12, 0.0, 6.5, Colormap.HOT, 0.7, True, True)
    assert fusion.to_query() == "k=12&ocm=hot&omax=6.5&omin=0&op=0.7&suv=1"
    assert split_query(fusion.to_query())[0] == fusion
    assert view.window_width == 350
    for query, message in (("op=1.5", "op: opacity must be a number 0..1"),
                           ("omin=5&omax=2", "the minimum must be below the maximum"),
                           ("ocm=jet", "ocm: expected one of"),
                           ("k=-2", "k: must be a slice index"),
                           ("suv=maybe", "suv: expected 1 or 0"),
                           ("omax=inf", "omax: expected a finite number"),
                           ("k=1&k=2", "k: given more than once"),
                           ("wat=1", "unknown viewport parameter")):
        with pytest.raises(ValueError, match=message):
            split_query(query)


def _ct(hu: int = 40) -> Volume:
    """CT: 48 slices of 80×80 at 1 mm × 1 mm, 2.5 mm slices; origin off-centre."""
    voxels = np.full((48, 80, 80), hu, dtype=np.int16)
    return Volume(voxels, np.array([-30.0, -60.0, -20.0]), (2.5, 1.0, 1.0), np.eye(3),
                  key="fusion-ct", modality="CT", frame_of_reference_uid="1.2.3",
                  window=(40.0, 400.0))


def _pet(frame_of_reference: str = "1.2.3") -> Volume:
    """PET: a coarser grid (4 mm, 3.27 mm slices) with another origin, a hot spot at HOT_SPOT."""
    origin = np.array([-41.0, -70.5, -25.0])
    spacing = (3.27, 4.0, 4.0)
    shape = (30, 28, 28)
    pet = Volume(np.zeros(shape, np.float32), origin, spacing, np.eye(3))
    kji = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
    distance = np.linalg.norm(pet.index_to_patient(kji) - HOT_SPOT, axis=-1)
    voxels = (5000.0 * np.exp(-(distance / 5.0) ** 2)).astype(np.float32)
    return Volume(voxels, origin, spacing, np.eye(3), key="fusion-pet", modality="PT",
                  frame_of_reference_uid=frame_of_reference)


def test_hot_spot_lands_on_the_ct_pixel_at_its_patient_position():
    from render_farm.fusion import fuse, slice_plane

    ct, pet = _ct(), _pet()
    k, j, i = ct.patient_to_index(HOT_SPOT)       # (20.4, 39.4, 42.3)
    index = int(round(k))
    # Grey map, opaque, range 0..peak: each channel is the PET value scaled to 0..255.
    grey = FusionState(overlay_min=0.0, overlay_max=5050.0, colormap=Colormap.GRAY,
                       opacity=1.0, transparent_below=False)
    level = fuse(ct, pet, slice_plane(ct, index), grey)[..., 0].astype(np.float64)
    assert level.shape == (80, 80)
    rows, columns = np.mgrid[0:80, 0:80]
    weights = np.where(level > 2, level, 0.0)
    centroid = ((weights * rows).sum() / weights.sum(), (weights * columns).sum() / weights.sum())
    # The spot's centre lands on the CT pixel under its patient position (well
    # within one PET voxel, 4 CT pixels); its brightest pixel within one PET voxel.
    assert abs(centroid[0] - j) < 0.5 and abs(centroid[1] - i) < 0.5
    peak = np.unravel_index(np.argmax(level), level.shape)
    assert abs(peak[0] - j) <= 4 and abs(peak[1] - i) <= 4
    # In colour, over the CT: hot at the spot, CT grey where the PET is below omin.
    state = FusionState(overlay_min=50.0, opacity=1.0, colormap=Colormap.HOT)
    rgb = fuse(ct, pet, slice_plane(ct, index), state)
    assert rgb[peak][0] > 200
    assert np.all(rgb[5, 5] == 128)


def test_different_frames_of_reference_are_refused():
    from render_farm.fusion import fuse, slice_plane

    ct = _ct()
    with pytest.raises(ValueError, match="different frames of reference"):
        fuse(ct, _pet("9.9.9"), slice_plane(ct, 3), FusionState())


def _pet_headers(paths) -> None:
    """Turn written slices into a PET series with SUV attributes (70 kg, 370 MBq, 1 h)."""
    import pydicom
    from pydicom.sequence import Sequence

    for path in paths:
        ds = pydicom.dcmread(path)
        ds.Modality, ds.Units, ds.DecayCorrection = "PT", "BQML", "START"
        ds.PatientWeight = 70
        ds.SeriesDate, ds.SeriesTime = "20240301", "110000"
        drug = pydicom.Dataset()
        drug.RadionuclideTotalDose, drug.RadionuclideHalfLife = 370e6, 6586.2
        drug.RadiopharmaceuticalStartTime = "100000"
        ds.RadiopharmaceuticalInformationSequence = Sequence([drug])
        ds.save_as(path)


def test_fusion_frame_of_stored_series_in_suv(tmp_path):
    import io

    from PIL import Image

    from render_farm.cache import ByteLRUCache
    from render_farm.fusion import fusion_frame
    from tests.render_farm.volume_factory import write_series

    ct, pet = _ct(), _pet()
    ct_paths = write_series(tmp_path / "ct", ct.voxels.astype(np.float64), origin=ct.origin,
                            spacing=ct.spacing)
    pet_paths = write_series(tmp_path / "pet", np.round(pet.voxels).astype(np.float64),
                             origin=pet.origin, spacing=pet.spacing, intercept=0.0)
    _pet_headers(pet_paths)
    k, j, i = ct.patient_to_index(HOT_SPOT)
    # SUV factor 2.763367e-4 (see test_suv): the 5000 Bq/mL peak is SUV 1.38.
    query = f"k={round(k)}&suv=1&omin=0&omax=1.4&ocm=gray&op=1&ot=0&fmt=png"
    cache = ByteLRUCache(256 * 1024**2)
    body, media_type = fusion_frame(cache, "ct-1", [str(p) for p in ct_paths], "pet-1",
                                    [str(p) for p in pet_paths], query)
    assert media_type == "image/png"
    level = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))[..., 0].astype(float)
    peak = np.unravel_index(np.argmax(level), level.shape)
    assert abs(peak[0] - j) <= 4 and abs(peak[1] - i) <= 4
    # The PET value under that pixel, sampled from the in-memory volume on the same plane,
    # times the SUV factor 2.763367e-4 (see test_suv), on a 0..1.4 scale of 255 levels.
    from render_farm.fusion import slice_plane
    from render_farm.planes import sample

    bq_ml = float(sample(pet, slice_plane(ct, round(k)))[peak])
    assert bq_ml > 2000
    assert abs(level[peak] - bq_ml * 2.763367e-4 / 1.4 * 255) <= 1.5
    without_suv = query.replace("suv=1&", "").replace("omax=1.4", "omax=5000")
    body, _ = fusion_frame(cache, "ct-1", [str(p) for p in ct_paths], "pet-1",
                           [str(p) for p in pet_paths], without_suv)
    plain = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))[..., 0].astype(float)
    assert abs(plain[peak] - bq_ml / 5000 * 255) <= 1.5
    # A coronal MPR plane through the spot, shown in a 200×200 viewport: the spot is there.
    coronal = "o=coronal&cx={}&cy={}&cz={}&omin=0&omax=5000&ocm=gray&op=1&ot=0&w=200&h=200" \
        "&fmt=png".format(*HOT_SPOT)
    body, _ = fusion_frame(cache, "ct-1", [str(p) for p in ct_paths], "pet-1",
                           [str(p) for p in pet_paths], coronal)
    shown = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
    assert shown.shape == (200, 200, 3) and shown[..., 0].max() > 150


def test_canonical_query_merges_both_parts_sorted():
    from render_farm.fusion import canonical_query

    assert canonical_query("ww=350&op=0.50&wc=40&ocm=HOT&k=3") == "k=3&ocm=hot&wc=40&ww=350"
    assert canonical_query("k=3&wc=40&ww=350") == canonical_query("ww=350&k=3&wc=40")


def test_fusion_on_an_mpr_plane_through_the_hot_spot():
    from render_farm.fusion import fuse
    from render_farm.mpr import plane_for
    from render_farm.mpr_state import MPRState, Orientation

    # Air CT (black): where the plane leaves the PET volume, nothing shows.
    ct, pet = _ct(-1000), _pet()
    for orientation in (Orientation.CORONAL, Orientation.SAGITTAL):
        mpr = MPRState(orientation, *HOT_SPOT, rz=20.0)   # oblique: turned 20° about z
        plane = plane_for(ct, mpr)
        grey = FusionState(overlay_min=0.0, overlay_max=5050.0, colormap=Colormap.GRAY,
                           opacity=1.0, transparent_below=False, mpr=mpr)
        level = fuse(ct, pet, plane, grey)[..., 0]
        row, column, distance = plane.patient_to_pixel(HOT_SPOT)
        assert abs(distance) < 1e-6
        weights = np.where(level > 2, level.astype(float), 0.0)
        rows, columns = np.mgrid[0:level.shape[0], 0:level.shape[1]]
        centroid = ((weights * rows).sum() / weights.sum(),
                    (weights * columns).sum() / weights.sum())
        # Within a quarter of a PET voxel, in plane pixels (1 mm, or 2.5 mm along z).
        assert abs(centroid[0] - row) * plane.spacing[0] < 1.0
        assert abs(centroid[1] - column) * plane.spacing[1] < 1.0


def test_mpr_keys_choose_the_plane_in_the_query():
    fusion, view = split_query("o=coronal&cx=1&cy=2&cz=3&op=0.7&wc=40&ww=400")
    assert fusion.mpr is not None and fusion.mpr.orientation.value == "coronal"
    assert split_query(fusion.to_query())[0] == fusion
    assert split_query("o=axial")[0].to_query() == "o=axial"
    assert split_query("op=0.7")[0].mpr is None
    with pytest.raises(ValueError, match="k and the MPR keys"):
        split_query("k=3&o=coronal")
    with pytest.raises(ValueError, match="o: expected axial, coronal or sagittal"):
        split_query("o=oblique")


def test_default_overlay_range_is_the_whole_volume_on_every_plane():
    from render_farm.fusion import fuse, slice_plane
    from render_farm.planes import sample

    ct, pet = _ct(-1000), _pet()
    state = FusionState(colormap=Colormap.GRAY, opacity=1.0, transparent_below=False)
    top = pet.value_range[1]
    for index in (18, 20, 23):          # through the spot and beside it
        plane = slice_plane(ct, index)
        level = fuse(ct, pet, plane, state)[..., 0].astype(float)
        expected = sample(pet, plane) / top * 255.0
        assert np.abs(level - expected).max() <= 1.0
