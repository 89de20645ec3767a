"""3-D views through the web app: pages, /vframes images, grants, tenancy and bad input."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html import unescape

import numpy as np
import pytest
from PIL import Image

from app.demo import synthetic
from app.services import ingest, volumes
from app.services.audit import Actor
from tests.conftest import make_tenant
from tests.factory import ct_bytes
from tests.web.conftest import html

pytestmark = pytest.mark.parametrize("app", ["sqlite"], indirect=True)
ACTOR = Actor("views3d-test")
SPEC = synthetic.StudySpec(seed=3)


@dataclass
class Loaded:
    a: object
    b: object
    study: str
    ct: str
    pet: str
    xa_study: str
    xa: str
    single_study: str
    single: str  # a series of one CT image: not a volume


def _ingest_all(tenant, datasets) -> tuple[str, str]:
    for ds in datasets:
        result = ingest.ingest(tenant, synthetic.to_bytes(ds), ACTOR)
    return result.study_uid, result.series_uid


@pytest.fixture
def loaded(app) -> Loaded:
    volumes.CACHE.clear()
    a, b = make_tenant("HOSPA"), make_tenant("HOSPB")
    study, ct = _ingest_all(a.tenant, synthetic.chest_ct(SPEC, n_slices=24, rows=64, cols=64,
                                                         slice_thickness=5.0))
    _, pet = _ingest_all(a.tenant, synthetic.pet_series(SPEC, ct_slices=24, rows=32, cols=32,
                                                        ct_slice_thickness=5.0))
    xa_study, xa = _ingest_all(a.tenant, [synthetic.xa_cine(synthetic.StudySpec(seed=4), frames=8,
                                                            rows=64, cols=64)])
    single = ingest.ingest(a.tenant, ct_bytes(), ACTOR)
    return Loaded(a, b, study, ct, pet, xa_study, xa, single.study_uid, single.series_uid)


def _images(page: str) -> list[str]:
    return [unescape(src) for src in re.findall(r'<img class="v3d-img" src="([^"]+)"', page)]


def _decode(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return Image.open(io.BytesIO(response.data))


def test_dsa_page_shows_the_subtracted_frame_and_caches_it(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    response = doctor.get(f"/viewer3d/{loaded.xa_study}/{loaded.xa}/dsa?f=6")
    page = html(response)
    assert response.status_code == 200 and "减影" in page and 'hx-history="false"' in page
    [src] = _images(page)
    assert src.startswith("/vframes/") and "f=6" in src
    first = doctor.get(src)
    image = _decode(first)
    assert image.format == "JPEG" and "Set-Cookie" not in first.headers
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 1  # the contrast-filled vessels stand out of the subtracted background
    again = doctor.get(src, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    other_mask = doctor.get(src + "&mask=7")
    assert other_mask.status_code == 200 and other_mask.headers["ETag"] != first.headers["ETag"]


def test_another_tenant_reaches_nothing(loaded, client_for):
    intruder = client_for(loaded.b.doctor)
    for view in ("vr", "mpr", "dsa"):
        assert intruder.get(f"/viewer3d/{loaded.study}/{loaded.ct}/{view}").status_code == 404
    doctor = client_for(loaded.a.doctor)
    [src] = _images(html(doctor.get(f"/viewer3d/{loaded.xa_study}/{loaded.xa}/dsa")))
    token = src.split("/")[2]
    # A's valid grant names A's XA study: A's CT series of another study is not reachable with it.
    assert doctor.get(f"/vframes/{token}/{loaded.ct}/vr?w=64&h=64").status_code == 404
    # B's own grant cannot name A's series either.
    b_study = ingest.ingest(loaded.b.tenant, ct_bytes(), ACTOR)
    b_page = html(intruder.get(f"/viewer3d/{b_study.study_uid}/{b_study.series_uid}/dsa"))
    b_token = _images(b_page)[0].split("/")[2]
    assert intruder.get(f"/vframes/{b_token}/{loaded.xa}/dsa").status_code == 404
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert doctor.get(f"/vframes/{forged}/{loaded.xa}/dsa").status_code == 403


def test_bad_views_and_parameters_get_readable_errors(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    response = doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/hologram")
    assert response.status_code == 404 and "Traceback" not in html(response)
    response = doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/vr?z=abc")
    assert response.status_code == 400 and "z" in html(response)
    [src] = _images(html(doctor.get(f"/viewer3d/{loaded.xa_study}/{loaded.xa}/dsa")))
    token = src.split("/")[2]
    response = doctor.get(f"/vframes/{token}/{loaded.xa}/dsa?mask=99",
                          headers={"Accept": "application/json"})
    assert response.status_code == 404 and "mask frame 99" in response.get_json()["error"].lower()
    response = doctor.get(f"/vframes/{token}/{loaded.xa}/teleport")
    assert response.status_code == 404


def test_a_visitor_who_is_not_logged_in_is_sent_to_login_and_back(loaded, app):
    url = f"/viewer3d/{loaded.study}/{loaded.ct}/vr"
    response = app.test_client().get(url)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "viewer3d" in response.headers["Location"]


def test_viewer_deep_links_open_the_3d_views(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    response = doctor.get(f"/viewer/{loaded.study}?series={loaded.ct}&view=mpr")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/viewer3d/{loaded.study}/{loaded.ct}/mpr"
    response = doctor.get(f"/viewer/{loaded.study}?series={loaded.ct}&view=fusion&overlay={loaded.pet}")
    assert response.headers["Location"] == \
        f"/viewer3d/{loaded.study}/{loaded.ct}/fusion?overlay={loaded.pet}"
    response = doctor.get(f"/viewer/{loaded.study}?view=vr")  # no series: the first image series
    assert response.headers["Location"] == f"/viewer3d/{loaded.study}/{loaded.ct}/vr"
    assert doctor.get(f"/viewer/{loaded.study}?view=hologram").status_code == 404
    assert client_for(loaded.b.doctor).get(f"/viewer/{loaded.study}?view=vr").status_code == 404


def test_volume_rendering_page_and_image(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    page = html(doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/vr?preset=ct_bone&v=anterior"))
    assert "容积重建" in page and "CT 骨骼" in page
    [src] = _images(page)
    image = np.asarray(_decode(doctor.get(src)).convert("L"), dtype=float)
    assert image.shape == (volumes.PAGE_SIZE, volumes.PAGE_SIZE)
    assert image.max() > 100 and image.std() > 10  # bone and contrast render bright on black
    assert "v=" not in src  # anterior is the default view, left out of the canonical query
    side = np.asarray(_decode(doctor.get(src + "&v=left")).convert("L"), float)
    assert np.abs(side - image).mean() > 1  # another standard view is another picture


def test_a_series_that_is_not_a_volume_gets_a_clear_message(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    page = html(doctor.get(f"/viewer3d/{loaded.single_study}/{loaded.single}/vr"))
    [src] = _images(page)
    response = doctor.get(src, headers={"Accept": "application/json"})
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert message and "Traceback" not in message


def test_fusion_page_puts_the_pet_over_the_ct(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    page = html(doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/fusion"))
    assert "融合" in page and loaded.pet in page
    [src] = _images(page)
    assert f"/fusion/{loaded.pet}?" in src
    fused = np.asarray(_decode(doctor.get(src)).convert("RGB"), dtype=float)
    colour = np.abs(fused[..., 0] - fused[..., 2])  # grey CT has R == B; the PET map does not
    assert colour.max() > 60
    plain = np.asarray(_decode(doctor.get(src + "&op=0")).convert("RGB"), dtype=float)
    assert np.abs(plain[..., 0] - plain[..., 2]).max() < 20


def test_mpr_page_planes_and_geometry(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    page = html(doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/mpr?st=10&sp=mip"))
    assert "多平面重建" in page and "轴位" in page and "冠状位" in page and "矢状位" in page
    srcs = _images(page)
    assert len(srcs) == 4 and all(s.startswith("/vframes/") for s in srcs)
    axial, coronal, sagittal, rendering = srcs
    assert "o=coronal" in coronal and "o=sagittal" in sagittal and "/vr?" in rendering
    for src in srcs:
        assert _decode(doctor.get(src)).size == (volumes.PAGE_SIZE // 2, volumes.PAGE_SIZE // 2)
    geometry = doctor.get(axial.replace("/mpr?", "/mpr_geometry?")).get_json()
    assert geometry["orientation"] == "axial" and geometry["thickness"] == 10
    assert set(geometry["lines"]) == {"coronal", "sagittal"}
    assert geometry["volume"]["shape"] == [24, 64, 64]
    # The crosshair defaults to the volume centre, where the other two planes cross.
    row, col = geometry["crosshair_pixel"]
    assert abs(row - 31.5) < 1 and abs(col - 31.5) < 1
    bad = doctor.get(axial.replace("st=10", "st=-4"), headers={"Accept": "application/json"})
    assert bad.status_code == 400 and "st" in bad.get_json()["error"].lower()


def test_saving_a_reformatted_series_archives_it_for_the_2d_viewer(loaded, client_for, app):
    from app.extensions import db
    from app.models import AuditEvent, Instance, Series

    doctor = client_for(loaded.a.doctor)
    page = html(doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/mpr"))
    assert "另存为序列" in page and 'name="csrf_token"' in page
    response = doctor.post(f"/viewer3d/{loaded.study}/{loaded.ct}/derive",
                           data={"o": "coronal", "step": "5", "query": "st=5&sp=mip"})
    assert response.status_code == 302 and f"/viewer/{loaded.study}?series=" in response.headers["Location"]
    new_uid = response.headers["Location"].split("series=")[1]
    series = db.session.execute(db.select(Series).where(Series.series_uid == new_uid)).scalar_one()
    assert series.tenant_id == loaded.a.tenant.id and "冠状位" in series.description
    images = db.session.execute(db.select(Instance).where(Instance.series_pk == series.id)).scalars().all()
    # The coronal stack spans the volume front to back (63 row spacings) in 5 mm steps.
    source = db.session.execute(db.select(Instance).where(Instance.sop_uid != "")
                                .join(Series).where(Series.series_uid == loaded.ct)).scalars().first()
    depth = 63 * float(source.pixel_spacing.split("\\")[0])
    assert abs(len(images) - (depth / 5 + 1)) <= 1
    # Coronal: rows run to the patient's left, columns to the feet.
    assert all([float(v) for v in i.image_orientation.split("\\")] == [1, 0, 0, 0, 0, -1]
               for i in images)
    assert doctor.get(response.headers["Location"]).status_code == 200  # the 2-D viewer shows it
    events = db.session.execute(db.select(AuditEvent).where(AuditEvent.action == "series.derive")).scalars().all()
    assert len(events) == 1 and events[0].object_uid == new_uid
    # Another tenant cannot derive from this series; a bad step is refused and stores nothing.
    intruder = client_for(loaded.b.doctor)
    assert intruder.post(f"/viewer3d/{loaded.study}/{loaded.ct}/derive",
                         data={"o": "coronal", "step": "5"}).status_code == 404
    count = db.session.execute(db.select(db.func.count(Series.id))).scalar_one()
    bad = doctor.post(f"/viewer3d/{loaded.study}/{loaded.ct}/derive", data={"o": "coronal", "step": "0.01"})
    assert bad.status_code == 400
    assert db.session.execute(db.select(db.func.count(Series.id))).scalar_one() == count


def test_fusion_probe_gives_hu_and_suv_under_a_point(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    [src] = _images(html(doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/fusion")))
    probe = src.replace("?", "/probe?", 1)
    centre = doctor.get(probe + f"&at={volumes.PAGE_SIZE / 2},{volumes.PAGE_SIZE / 2}").get_json()
    corner = doctor.get(probe + "&at=2,2").get_json()
    assert corner["base"] < -900  # air outside the body
    assert -200 < centre["base"] < 400  # soft tissue or contrast in the chest
    assert centre["overlay_modality"] == "PT" and centre["overlay"] is not None
    assert centre["suv"] is not None and 0 < centre["suv"] < 50
    # The SUV is the stored value times the series' SUVbw factor, the same everywhere.
    other = doctor.get(probe + f"&at={volumes.PAGE_SIZE / 3},{volumes.PAGE_SIZE / 2}").get_json()
    if other["overlay"] and centre["overlay"]:
        assert abs(centre["suv"] / centre["overlay"] - other["suv"] / other["overlay"]) < 1e-3 * (
            centre["suv"] / centre["overlay"]) + 1e-4
    bad = doctor.get(probe + "&at=nowhere", headers={"Accept": "application/json"})
    assert bad.status_code == 400 and "x,y" in bad.get_json()["error"]


def test_region_statistics_on_a_plane_come_from_the_volume(loaded, client_for, app):
    import pydicom
    from app.extensions import db
    from app.models import Instance, Series
    from app.services import retrieve

    doctor = client_for(loaded.a.doctor)
    page = html(doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/mpr"))
    axial = _images(page)[0]
    geometry = doctor.get(axial.replace("/mpr?", "/mpr_geometry?")).get_json()
    # The crosshair on slice 12 exactly, so the axial plane is that stored slice, pixel for pixel.
    instance = db.session.execute(db.select(Instance).join(Series).where(
        Series.series_uid == loaded.ct, Instance.instance_number == 12)).scalar_one()
    ds = pydicom.dcmread(retrieve.local_path(instance))
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    cx, cy, _ = geometry["crosshair"]
    z = float(ds.ImagePositionPatient[2])
    size = volumes.PAGE_SIZE // 2
    query = axial.split("?", 1)[1] + f"&cx={cx}&cy={cy}&cz={z}"
    base = axial.split("?", 1)[0].replace("/mpr", "/mpr_roi")
    whole = doctor.get(f"{base}?{query}&roi=rectangle&pts=0,0,{size},{size}").get_json()
    rows, columns = hu.shape
    spacing = [float(v) for v in ds.PixelSpacing]
    assert whole["pixels"] == rows * columns
    assert abs(whole["area_mm2"] - rows * spacing[0] * columns * spacing[1]) < 0.01
    assert abs(whole["mean"] - hu.mean()) < 0.01 and whole["min"] == hu.min() and whole["max"] == hu.max()
    ellipse = doctor.get(f"{base}?{query}&roi=ellipse&pts=0,0,{size},{size}").get_json()
    assert abs(ellipse["pixels"] / whole["pixels"] - np.pi / 4) < 0.02  # an inscribed ellipse
    bad = doctor.get(f"{base}?{query}&roi=star&pts=0,0,1,1", headers={"Accept": "application/json"})
    assert bad.status_code == 400 and "roi" in bad.get_json()["error"].lower()


def test_freehand_region_on_a_plane_and_bad_polygons(loaded, client_for):
    doctor = client_for(loaded.a.doctor)
    axial = _images(html(doctor.get(f"/viewer3d/{loaded.study}/{loaded.ct}/mpr")))[0]
    base, query = axial.split("?", 1)
    base = base.replace("/mpr", "/mpr_roi")
    size = volumes.PAGE_SIZE // 2
    square = doctor.get(f"{base}?{query}&roi=rectangle&pts=40,40,{size - 40},{size - 40}").get_json()
    polygon = doctor.get(f"{base}?{query}&roi=polygon&pts=40,40,{size - 40},40,{size - 40},"
                         f"{size - 40},40,{size - 40}").get_json()
    # The same square drawn as a freehand polygon covers the same pixels, within its edge.
    assert abs(polygon["pixels"] - square["pixels"]) <= 0.1 * square["pixels"]
    assert abs(polygon["mean"] - square["mean"]) < 0.1 * abs(square["sd"]) + 1
    for bad in ("roi=polygon&pts=1,1,2,2", "roi=ellipse&pts=1,1", "roi=polygon&pts=a,b,c,d,e,f"):
        response = doctor.get(f"{base}?{query}&{bad}", headers={"Accept": "application/json"})
        assert response.status_code == 400 and "pts" in response.get_json()["error"].lower()


def test_mpr_measurements_are_saved_per_user_and_series(loaded, client_for, app):
    from app.extensions import db
    from app.models import AuditEvent

    doctor = client_for(loaded.a.doctor)
    url = f"/viewer3d/{loaded.study}/{loaded.ct}/measurements"
    assert doctor.get(url).get_json() == {"measurements": []}
    body = {"kind": "length", "points": [[0, 0, -50], [30, 40, -50]], "label": "50.0 mm"}
    assert doctor.post(url, json=body).status_code == 201
    [saved] = doctor.get(url).get_json()["measurements"]
    assert (saved["kind"], saved["points"], saved["label"]) == ("length", body["points"], "50.0 mm")
    # Not in the 2-D viewer's list (it draws frame pixels), not for another user or tenant.
    assert doctor.get(f"/viewer/{loaded.study}/annotations").get_json()["annotations"] == []
    assert client_for(loaded.a.admin).get(url).get_json() == {"measurements": []}
    intruder = client_for(loaded.b.doctor)
    assert intruder.get(url).status_code == 404
    assert intruder.post(url, json=body).status_code == 404
    for bad in ({"kind": "length", "points": [[0, 0, 0]]}, {"kind": "spiral", "points": []},
                {"kind": "angle", "points": [[0, 0, "x"], [1, 1, 1], [2, 2, 2]]}):
        response = doctor.post(url, json=bad)
        assert response.status_code == 400
    assert doctor.post(url, data="not json").status_code == 400
    events = db.session.execute(db.select(AuditEvent).where(
        AuditEvent.action == "measurement.save", AuditEvent.object_uid == loaded.ct)).scalars().all()
    assert len(events) == 1
