"""The 2-D viewer page and its measurement API, through the test client."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from app.demo import synthetic
from app.models import AuditEvent
from app.services import ingest
from app.services.audit import Actor
from tests.conftest import make_tenant
from tests.web.conftest import html

# A small marker phantom with non-unit spacing: 0.7 mm pixels, 2 mm slices; water inside columns
# and rows 8..55, air around.
SPACING = (0.7, 0.7, 2.0)
MARKERS = ((0.0, 0.0, 0.0), (14.0, 0.0, 0.0), (0.0, -11.2, 0.0), (0.0, 0.0, 8.0))  # in the water
SHAPE = (12, 64, 64)  # slices, rows, columns
ACTOR = Actor("viewer-test")


@dataclass
class Loaded:
    a: object
    b: object
    study: str
    series: str
    sops: list[str]  # by instance number
    ct_study: str  # a second study of another patient


def marker_pixel(x: float, y: float) -> tuple[float, float]:
    """Image coordinates (column, row centre) of a marker at patient (x, y) on its slice."""
    return x / SPACING[0] + SHAPE[2] // 2 + 0.5, y / SPACING[1] + SHAPE[1] // 2 + 0.5


def load(tenant) -> tuple[str, str, list[str]]:
    sops = []
    for ds in synthetic.marker_volume(*SHAPE, spacing=SPACING, markers=MARKERS):
        result = ingest.ingest(tenant, synthetic.to_bytes(ds), ACTOR)
        sops.append(result.sop_uid)
    return result.study_uid, result.series_uid, sops


@pytest.fixture
def loaded(app) -> Loaded:
    a, b = make_tenant("HOSPA"), make_tenant("HOSPB")
    study, series, sops = load(a.tenant)
    ct = None
    spec = synthetic.StudySpec(synthetic.PatientSpec("PV2001", "Li^Si=李^四", "F", "19800704"))
    for ds in synthetic.chest_ct(spec, n_slices=3, rows=64, cols=64):
        ct = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    return Loaded(a, b, study, series, sops, ct.study_uid)


def frame_urls(body: str) -> list[str]:
    return [unescape(u) for u in re.findall(r'src="(/frames/[^"]+)"', body)]


def viewer_data(body: str) -> dict:
    found = re.search(r'<script type="application/json" id="vw-data">(.*?)</script>', body, re.DOTALL)
    return json.loads(found.group(1))


def test_viewer_shows_the_first_series_at_once(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    response = client.get(f"/viewer/{loaded.study}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = html(response)
    assert 'hx-history="false"' in body
    urls = frame_urls(body)
    # The viewport image (instance 1) and a thumbnail per series.
    assert any(f"/{loaded.sops[0]}/0?" in u for u in urls)
    assert sum(1 for u in urls if "h=128" in u) == 1
    assert "Geometry" in body and "PHANTOM01" in body
    # The frame URL answers with an image.
    image = client.get(urls[0])
    assert image.status_code == 200 and image.mimetype == "image/jpeg"
    data = viewer_data(body)
    assert data["study"] == loaded.study and data["series"] == loaded.series and data["index"] == 0
    # Opening the viewer is audited once (the grant) as study.view.
    events = AuditEvent.query.filter_by(action="study.view", object_uid=loaded.study).count()
    assert events == 1


def test_the_study_list_links_to_the_viewer(app, loaded, client_for):
    body = html(client_for(loaded.a.doctor).get("/"))
    assert f'href="/viewer/{loaded.study}"' in body


def test_series_parameter_selects_that_series(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    body = html(client.get(f"/viewer/{loaded.ct_study}"))
    ct_series = viewer_data(body)["series"]
    body = html(client.get(f"/viewer/{loaded.ct_study}?series={ct_series}"))
    assert viewer_data(body)["series"] == ct_series
    # A series of another study is not part of this one.
    assert client.get(f"/viewer/{loaded.study}?series={ct_series}").status_code == 404
    # CT presets are offered as links: soft tissue is wc=40, ww=400.
    assert "wc=40&amp;ww=400" in body and "软组织" in body and "肺窗" in body


def test_no_script_links_move_through_the_stack(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    body = html(client.get(f"/viewer/{loaded.study}"))
    assert 'class="vp-prev disabled"' in body
    next_link = unescape(re.search(r'<a class="vp-next" href="([^"]+)"', body).group(1))
    assert parse_qs(urlparse(next_link).query)["i"] == ["1"]
    body = html(client.get(next_link))
    assert any(f"/{loaded.sops[1]}/0?" in u for u in frame_urls(body))
    assert "2/12" in body  # the instance counter of the corner text
    # A preset link renders the page with that window in the frame URL.
    preset = unescape(re.search(r'<a href="([^"]+)" data-preset="2"', body).group(1))
    assert parse_qs(urlparse(preset).query)["wc"] == ["-600"]
    body = html(client.get(preset))
    url = next(u for u in frame_urls(body) if f"/{loaded.sops[1]}/" in u)
    assert parse_qs(urlparse(url).query)["ww"] == ["1500"]
    body = html(client.get(f"/viewer/{loaded.study}?i=5&wc=40&ww=400&inv=1&rot=90"))
    url = next(u for u in frame_urls(body) if f"/{loaded.sops[5]}/" in u)
    query = parse_qs(urlparse(url).query)
    assert query["wc"] == ["40"] and query["ww"] == ["400"] and query["inv"] == ["1"]
    assert query["rot"] == ["90"]
    # Past the end is clamped; a malformed state is a readable 400.
    assert "12/12" in html(client.get(f"/viewer/{loaded.study}?i=999"))
    bad = client.get(f"/viewer/{loaded.study}?ww=-5")
    assert bad.status_code == 400 and "<html" in html(bad)


def test_orientation_letters_follow_the_view(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    body = html(client.get(f"/viewer/{loaded.study}"))
    assert '<span class="ori ori-right">L</span>' in body and '<span class="ori ori-top">A</span>' in body
    body = html(client.get(f"/viewer/{loaded.study}?rot=90"))
    # Turned clockwise: what was at the top (anterior) is now on the right.
    assert '<span class="ori ori-right">A</span>' in body and '<span class="ori ori-top">R</span>' in body
    body = html(client.get(f"/viewer/{loaded.study}?hf=1"))
    assert '<span class="ori ori-right">R</span>' in body


def test_anonymous_is_sent_to_login_and_back(app, loaded):
    response = app.test_client().get(f"/viewer/{loaded.study}?series={loaded.series}")
    assert response.status_code == 302
    location = urlparse(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"][0].startswith(f"/viewer/{loaded.study}")


def test_stack_json_has_geometry_for_every_image(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    data = viewer_data(html(client.get(f"/viewer/{loaded.study}")))
    stack = client.get(f"/viewer/{loaded.study}/series/{loaded.series}?grant={data['token']}").get_json()
    assert [image[0] for image in stack["images"]] == loaded.sops
    rows, columns, row_mm, col_mm, *iop = stack["geoms"][0]
    assert (rows, columns, row_mm, col_mm) == (64, 64, 0.7, 0.7) and iop == [1, 0, 0, 0, 1, 0]
    assert stack["thickness"] == 2.0 and stack["valueUnit"] == "HU"
    assert stack["frameBase"].startswith(f"/frames/{data['token']}/")
    assert 'class="o o-tl"' in stack["corners"]
    assert ["1", 40, 400] in stack["presets"]
    # The page's grant is reused: no second study.view.
    assert AuditEvent.query.filter_by(action="study.view", object_uid=loaded.study).count() == 1


def _measure(client, study, sop, kind, points, frame=0, **extra):
    return client.post(f"/viewer/{study}/annotations", json=dict(sop=sop, frame=frame, kind=kind,
                                                                  points=points, **extra))


def test_length_between_two_markers(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    centre = SHAPE[0] // 2  # the slice at z = 0
    p0, p1, p2 = (marker_pixel(*m[:2]) for m in MARKERS[:3])
    response = _measure(client, loaded.study, loaded.sops[centre], "length", [p0, p1])
    assert response.status_code == 201, response.get_data(as_text=True)
    saved = response.get_json()
    assert saved["result"]["unit"] == "mm"
    assert saved["result"]["length"] == pytest.approx(14.0, rel=0.01)
    diagonal = _measure(client, loaded.study, loaded.sops[centre], "length", [p1, p2]).get_json()
    assert diagonal["result"]["length"] == pytest.approx(math.hypot(14.0, 11.2), rel=0.01)
    angle = _measure(client, loaded.study, loaded.sops[centre], "angle", [p1, p0, p2]).get_json()
    assert angle["result"]["angle"] == pytest.approx(90.0)
    # The markers really are where the geometry says: a probe reads 1000 HU on one, 0 beside it.
    probe = _measure(client, loaded.study, loaded.sops[centre], "probe", [p1]).get_json()["result"]
    assert probe["value"] == 1000 and probe["min"] == 0 and probe["valueUnit"] == "HU"
    assert AuditEvent.query.filter_by(action="measurement.save").count() == 4


def test_roi_statistics_equal_numpy_on_the_same_pixels(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    centre = SHAPE[0] // 2
    datasets = list(synthetic.marker_volume(*SHAPE, spacing=SPACING, markers=MARKERS))
    hu = datasets[centre].pixel_array.astype(float) - 1024
    # Rectangle over columns 28..54, rows 20..40 (edges on pixel boundaries): two markers inside.
    saved = _measure(client, loaded.study, loaded.sops[centre], "rectangle",
                     [(28, 20), (55, 41)]).get_json()["result"]
    region = hu[20:41, 28:55]
    assert saved["pixels"] == region.size
    assert saved["mean"] == pytest.approx(region.mean())
    assert saved["sd"] == pytest.approx(region.std())
    assert (saved["min"], saved["max"]) == (region.min(), region.max()) == (0, 1000)
    assert saved["area"] == pytest.approx(27 * 0.7 * 21 * 0.7)
    ellipse = _measure(client, loaded.study, loaded.sops[centre], "ellipse",
                       [(20, 20), (44, 44)]).get_json()["result"]
    cy, cx = np.mgrid[0:64, 0:64] + 0.5
    inside = ((cx - 32) / 12) ** 2 + ((cy - 32) / 12) ** 2 <= 1
    assert ellipse["pixels"] == inside.sum() and ellipse["mean"] == pytest.approx(hu[inside].mean())
    # W/L from a region: min..max of the values inside.
    window = client.post(f"/viewer/{loaded.study}/region-window", json={
        "sop": loaded.sops[centre], "frame": 0, "kind": "rectangle", "points": [(28, 20), (55, 41)]}).get_json()
    assert window == {"center": 500.0, "width": 1000.0}


def test_measurements_are_saved_listed_and_deleted_per_user(app, loaded, client_for):
    from app.services import users
    from tests.conftest import PASSWORD

    users.create(loaded.a.tenant, "hospa-second", PASSWORD, "radiologist")
    first, second = client_for(loaded.a.doctor), client_for("hospa-second")
    sop = loaded.sops[0]
    made = _measure(first, loaded.study, sop, "text", [(10, 10)], text="胸腔积液?").get_json()
    _measure(first, loaded.study, sop, "arrow", [(10, 10), (20, 20)])
    listed = first.get(f"/viewer/{loaded.study}/annotations").get_json()
    assert [a["kind"] for a in listed["annotations"]] == ["text", "arrow"]
    assert listed["annotations"][0]["text"] == "胸腔积液?"
    assert listed["annotations"][0]["points"] == [[10, 10]]
    # Another user of the same institution sees none of them and cannot delete them.
    assert second.get(f"/viewer/{loaded.study}/annotations").get_json()["annotations"] == []
    gone = second.post(f"/viewer/{loaded.study}/annotations/{made['id']}/delete")
    assert gone.status_code == 404
    assert first.post(f"/viewer/{loaded.study}/annotations/{made['id']}/delete").status_code == 200
    listed = first.get(f"/viewer/{loaded.study}/annotations").get_json()
    assert [a["kind"] for a in listed["annotations"]] == ["arrow"]
    assert AuditEvent.query.filter_by(action="measurement.delete").count() == 1
    # Key images: marked, listed, unmarked.
    marked = first.post(f"/viewer/{loaded.study}/key-images", json={"sop": sop, "frame": 0}).get_json()
    assert marked == {"marked": True}
    keys = first.get(f"/viewer/{loaded.study}/annotations").get_json()["keyImages"]
    assert keys == [{"sop": sop, "frame": 0, "series": loaded.series}]
    assert first.post(f"/viewer/{loaded.study}/key-images",
                      json={"sop": sop, "frame": 0}).get_json() == {"marked": False}


def test_bad_measurements_get_a_clear_answer(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    sop = loaded.sops[0]
    for kind, points in [("length", [(1, 1)]), ("nonsense", [(1, 1)]), ("angle", "xx"),
                         ("length", [(1, float("nan")), (2, 2)])]:
        response = client.post(f"/viewer/{loaded.study}/annotations",
                               data=json.dumps({"sop": sop, "frame": 0, "kind": kind, "points": points}),
                               headers={"Content-Type": "application/json", "Accept": "application/json"})
        assert response.status_code == 400, (kind, points)
        assert response.get_json()["error"]
    assert _measure(client, loaded.study, sop, "length", [(1, 1), (2, 2)], frame=3).status_code == 400
    assert _measure(client, loaded.study, "1.2.3", "length", [(1, 1), (2, 2)]).status_code == 404
    assert client.post(f"/viewer/{loaded.study}/annotations", data="x").status_code == 400


def test_another_institution_reaches_nothing(app, loaded, client_for):
    owner = client_for(loaded.a.doctor)
    made = _measure(owner, loaded.study, loaded.sops[0], "length", [(1, 1), (5, 5)]).get_json()
    token = viewer_data(html(owner.get(f"/viewer/{loaded.study}")))["token"]
    intruder = client_for(loaded.b.doctor)
    study, series, sop = loaded.study, loaded.series, loaded.sops[0]
    for url in [f"/viewer/{study}", f"/viewer/{study}?series={series}",
                f"/viewer/{study}/series/{series}", f"/viewer/{study}/series/{series}?grant={token}",
                f"/viewer/{study}/panel", f"/viewer/{study}/annotations"]:
        response = intruder.get(url)
        assert response.status_code == 404, url
        assert "PHANTOM01" not in html(response) and sop not in html(response)
    for url, body in [(f"/viewer/{study}/annotations", {"sop": sop, "frame": 0, "kind": "length",
                                                            "points": [(1, 1), (2, 2)]}),
                      (f"/viewer/{study}/annotations/{made['id']}/delete", {}),
                      (f"/viewer/{study}/region-window", {"sop": sop, "frame": 0, "kind": "rectangle",
                                                              "points": [(0, 0), (9, 9)]}),
                      (f"/viewer/{study}/key-images", {"sop": sop, "frame": 0})]:
        assert intruder.post(url, json=body).status_code == 404, url
    # B's own study with A's instance UID: still nothing.
    b_study, _, _ = load(loaded.b.tenant)  # same UIDs as A's phantom: deterministic
    assert b_study == study
    assert intruder.get(f"/viewer/{study}/annotations").get_json()["annotations"] == []
    assert _measure(intruder, study, sop, "length", [(1, 1), (5, 5)]).status_code == 201
    assert len(owner.get(f"/viewer/{study}/annotations").get_json()["annotations"]) == 1
