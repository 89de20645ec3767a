"""Reference lines (定位线): geometry against a known truth, the JSON API, tenancy."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from pydicom.uid import generate_uid

from app.demo import synthetic
from app.services import ingest, viewer_planes
from tests.conftest import make_tenant
from tests.web.test_viewer import ACTOR

# The axial stack: 12 slices of 64 × 64, 0.7 mm pixels, 2 mm apart, head first (z falls with k).
SHAPE, SPACING = (12, 64, 64), (0.7, 0.7, 2.0)
CORONAL_ROW, COLUMNS, SLICES = 40, (10, 50), (2, 10)  # the localizer's cut and extent


def coronal_localizer(axial: list, row: int = CORONAL_ROW, columns=COLUMNS, slices=SLICES,
                      orientation=(1, 0, 0, 0, 0, -1)):
    """A coronal image through row `row` of the axial volume, covering part of it (same FoR)."""
    volume = np.stack([ds.pixel_array for ds in axial])
    first = axial[slices[0]]
    ds = copy.deepcopy(first)
    image = np.ascontiguousarray(volume[slices[0]:slices[1], row, columns[0]:columns[1]])
    x0, y0, z0 = (float(v) for v in first.ImagePositionPatient)
    ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = 1, 1, "Localizer"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.ImageOrientationPatient = list(orientation)
    ds.ImagePositionPatient = [x0 + columns[0] * SPACING[0], y0 + row * SPACING[1], z0]
    ds.PixelSpacing = [SPACING[2], SPACING[0]]
    ds.Rows, ds.Columns = image.shape
    ds.PixelData = image.astype(np.uint16).tobytes()
    return ds


@pytest.fixture
def scout(app):
    """HOSPA: the axial marker stack and a coronal localizer; an unrelated series elsewhere."""
    a, b = make_tenant("HOSPA"), make_tenant("HOSPB")
    axial = list(synthetic.marker_volume(*SHAPE, spacing=SPACING))
    sops = [ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR).sop_uid for ds in axial]
    loc = ingest.ingest(a.tenant, synthetic.to_bytes(coronal_localizer(axial)), ACTOR)
    return a, b, loc.study_uid, sops, loc.sop_uid, axial


def test_plane_geometry_known_truth():
    axial = list(synthetic.marker_volume(*SHAPE, spacing=SPACING))
    plane = lambda ds: viewer_planes.plane(  # noqa: E731
        [float(v) for v in ds.ImagePositionPatient], [float(v) for v in ds.ImageOrientationPatient],
        [float(v) for v in ds.PixelSpacing], ds.Rows, ds.Columns)
    loc = plane(coronal_localizer(axial))
    rows = SLICES[1] - SLICES[0]
    for k in range(SHAPE[0]):
        line = viewer_planes.reference_line(loc, plane(axial[k]))
        if SLICES[0] <= k < SLICES[1]:
            # Axial slice k is the localizer's row k - first: a full-width horizontal line.
            assert line == pytest.approx([0, k - SLICES[0] + 0.5, COLUMNS[1] - COLUMNS[0],
                                          k - SLICES[0] + 0.5], abs=1e-6) or \
                line == pytest.approx([COLUMNS[1] - COLUMNS[0], k - SLICES[0] + 0.5, 0,
                                       k - SLICES[0] + 0.5], abs=1e-6)
        else:
            assert line is None, k  # above or below what the localizer shows
        back = viewer_planes.reference_line(plane(axial[k]), loc)
        if SLICES[0] <= k < SLICES[1]:
            # On the axial: row CORONAL_ROW's centre, only where the localizer reaches (x 10..50).
            xs = sorted([back[0], back[2]])
            assert xs == pytest.approx(list(COLUMNS)) and back[1] == back[3] == CORONAL_ROW + 0.5
        else:
            assert back is None, k
    assert rows == 8
    # A sagittal plane through column 20 cuts the axial as a vertical line at x = 20.5.
    sag = viewer_planes.Plane(np.array([-32 * 0.7 + 20 * 0.7, -100.0, 50.0]), np.array([0, 1.0, 0]),
                              np.array([0, 0, -1.0]), 1.0, 1.0, 200, 300)
    line = viewer_planes.reference_line(plane(axial[6]), sag)
    assert sorted([line[1], line[3]]) == pytest.approx([0, 64]) and line[0] == line[2] == pytest.approx(20.5)
    # Parallel planes (another axial slice, or one 3° off) cut nothing.
    assert viewer_planes.reference_line(plane(axial[3]), plane(axial[6])) is None
    tilt = np.radians(3)
    tilted = viewer_planes.Plane(np.zeros(3), np.array([1.0, 0, 0]),
                                 np.array([0, np.cos(tilt), np.sin(tilt)]), 1, 1, 64, 64)
    assert viewer_planes.reference_line(plane(axial[6]), tilted) is None
    assert viewer_planes.plane(None, [1, 0, 0, 0, 1, 0], [1, 1], 4, 4) is None


def test_reference_lines_api(app, scout, client_for):
    a, b, study, sops, localizer, _ = scout
    client = client_for(a.doctor)
    url = f"/viewer/{study}/reference-lines"
    response = client.get(url, query_string={"target": localizer, "source": sops})
    assert response.status_code == 200, response.get_data(as_text=True)[-600:]
    got = response.get_json()["lines"]
    assert sorted(got) == sorted(sops[SLICES[0]:SLICES[1]])  # the others miss the localizer
    assert got[sops[5]][1] == got[sops[5]][3] == pytest.approx(5 - SLICES[0] + 0.5)
    on_axial = client.get(url, query_string={"target": sops[5], "source": [localizer, sops[4]]})
    assert on_axial.get_json()["lines"] == {localizer: pytest.approx([10, 40.5, 50, 40.5])} or \
        on_axial.get_json()["lines"] == {localizer: pytest.approx([50, 40.5, 10, 40.5])}
    # Another Frame of Reference draws nothing; unknown images are skipped, a bad target is 404.
    spec = synthetic.StudySpec(synthetic.PatientSpec("PV2001", "Li^Si=李^四", "F", "19800704"))
    other = [ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR).sop_uid
             for ds in synthetic.chest_ct(spec, n_slices=2, rows=32, cols=32)]
    assert client.get(url, query_string={"target": localizer, "source": other + ["1.2.3"]}
                      ).get_json()["lines"] == {}
    missing = client.get(url, query_string={"target": "1.2.3", "source": sops[0]},
                         headers={"Accept": "application/json"})
    assert missing.status_code == 404 and missing.get_json()["error"]
    # Another institution reaches nothing, even with the right UIDs.
    intruder = client_for(b.doctor)
    denied = intruder.get(url, query_string={"target": localizer, "source": sops})
    assert denied.status_code == 404 and localizer not in denied.get_data(as_text=True)


def _svg_line(page, vp: int) -> list[float] | None:
    return page.evaluate(f"""() => {{
      const l = pacsViewer.viewports[{vp}].svg.querySelector('line.refline');
      return l ? ['x1', 'y1', 'x2', 'y2'].map(k => +l.getAttribute(k)) : null; }}""")


def _display(page, vp: int, x: float, y: float) -> tuple[float, float]:
    """Where image point (x, y) of viewport `vp`'s shown frame is drawn, computed in Python."""
    from urllib.parse import urlparse

    from render_farm.viewport import ViewState, display_to_image

    src = page.evaluate(f"pacsViewer.viewports[{vp}].shown.url")
    geom = page.evaluate(f"pacsViewer.viewports[{vp}].geom()")
    full = page.evaluate(f"pacsViewer.viewports[{vp}].shown.full")
    state = ViewState.from_query(urlparse(src).query).replace(width=full["w"], height=full["h"])
    _, to_display = display_to_image(state, (geom[0], geom[1]), (geom[2], geom[3]))
    out = to_display @ np.array([x, y, 1.0])
    return float(out[0]), float(out[1])


@pytest.mark.browser
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_reference_lines_in_the_browser(app, scout):
    from tests.conftest import PASSWORD
    from tests.web.screenshots import ARTIFACTS, CHROMIUM, chromium, login, new_page, serve
    from pathlib import Path

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    a, _, study, sops, localizer, _ = scout
    out = ARTIFACTS / "viewer"
    out.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, base, a.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{study}")
        page.wait_for_function("window.pacsViewer && pacsViewer.active && pacsViewer.active.shown")
        assert page.evaluate("pacsViewer.viewports[0].stack.images[0][0]") == localizer
        page.click('[data-menu="layout"] > summary')
        page.click('[data-menu="layout"] .menu-body > [data-layout="1x2"]')
        page.wait_for_function("pacsViewer.viewports[1] && pacsViewer.viewports[1].shown")
        # Axial image 1 lies above what the localizer shows: they do not cut each other.
        page.wait_for_function("Object.keys(pacsViewer.referenceLines).length === 2")
        assert _svg_line(page, 0) is None and _svg_line(page, 1) is None
        # Scrolling the axial viewport moves its line on the localizer, one row (2 mm) per image.
        page.click(".vp >> nth=1")
        for k in (5, 6):
            page.evaluate(f"pacsViewer.viewports[1].goTo({k})")
            page.wait_for_function(f"pacsViewer.viewports[1].shown.index === {k}")
            page.wait_for_function(f"""() => {{ const l = pacsViewer.viewports[0].svg.querySelector('line.refline');
                return l && l.getAttribute('data-source') === {sops[k]!r}; }}""")
            x1, y1, x2, y2 = _svg_line(page, 0)
            assert y1 == y2 == pytest.approx(_display(page, 0, 0, k - SLICES[0] + 0.5)[1], abs=0.05)
            assert sorted([x1, x2]) == pytest.approx(
                [_display(page, 0, 0, 0)[0], _display(page, 0, COLUMNS[1] - COLUMNS[0], 0)[0]], abs=0.05)
            # ... and the localizer cuts the axial image along row 40, where it reaches (x 10..50).
            page.wait_for_function("pacsViewer.viewports[1].svg.querySelector('line.refline')")
            x1, y1, x2, y2 = _svg_line(page, 1)
            ends = sorted([_display(page, 1, 10, 40.5), _display(page, 1, 50, 40.5)])
            assert sorted([(x1, y1), (x2, y2)]) == [pytest.approx(e, abs=0.05) for e in ends]
        page.screenshot(path=str(out / "reference-lines-desktop.png"))
        # The line from the active viewport is the solid one.
        assert page.evaluate("pacsViewer.viewports[0].svg.querySelector('line.refline.from-active') !== null")
        page.click(".vp >> nth=0")
        page.wait_for_function("pacsViewer.viewports[1].svg.querySelector('line.refline.from-active')")
        page.set_viewport_size({"width": 2560, "height": 1440})
        page.wait_for_function("pacsViewer.viewports.every(v => v.shown && v.shown.full.w === v.size().w"
                               " && v.svg.querySelector('line.refline'))")
        page.screenshot(path=str(out / "reference-lines-large.png"))
        # Below the localizer the line goes away again.
        page.evaluate("pacsViewer.viewports[1].goTo(11)")
        page.wait_for_function("pacsViewer.viewports[1].shown.index === 11")
        page.wait_for_function("!pacsViewer.viewports[0].svg.querySelector('line.refline')")
        assert not errors, errors
        page.context.close()
