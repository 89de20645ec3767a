"""The 3-D cursor (定位): a point clicked in one series is found and marked in the others."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from app.demo import synthetic
from app.services import ingest, volumes
from render_farm.viewport import ViewState, display_to_image
from tests.conftest import PASSWORD, make_tenant
from tests.web.screenshots import ARTIFACTS, CHROMIUM, chromium, login, new_page, serve
from tests.web.test_viewer import ACTOR

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("app", ["sqlite"], indirect=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]
pytest.importorskip("playwright.sync_api")
OUT = ARTIFACTS / "viewer"
CT_SLICES, CT_STEP, PET_STEP = 24, 1.25, 3.75  # the PET: 8 slices of 3.75 mm over the same slab


@pytest.fixture
def petct(app):
    """HOSPA: a chest CT and PET of one Frame of Reference, and an MR of another in the same study."""
    volumes.CACHE.clear()
    a = make_tenant("HOSPA")
    spec = synthetic.StudySpec()
    for ds in synthetic.chest_ct(spec, n_slices=CT_SLICES, rows=256, cols=256, slice_thickness=CT_STEP):
        ct = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    for ds in synthetic.pet_series(spec, ct_slices=CT_SLICES, rows=64, cols=64):
        pet = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    same_study = synthetic.StudySpec(study_uid=ct.study_uid)
    for ds in synthetic.mr_series(same_study, n_slices=6, rows=64, cols=64):
        ds.SeriesNumber = 9  # hung after the CT and the PET
        mr = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    assert mr.study_uid == ct.study_uid
    return a, ct, pet, mr


def _ready(page, count: int = 1) -> None:
    page.wait_for_function(f"window.pacsViewer && pacsViewer.viewports.length === {count}"
                           " && pacsViewer.viewports.every(v => v.shown && !v.shown.interactive)")


def _to_display(page, vp: int, x: float, y: float) -> tuple[float, float]:
    """Where image point (x, y) of viewport `vp`'s shown frame is drawn, computed in Python."""
    src = page.evaluate(f"pacsViewer.viewports[{vp}].shown.url")
    geom = page.evaluate(f"pacsViewer.viewports[{vp}].geom(pacsViewer.viewports[{vp}].shown.index)")
    full = page.evaluate(f"pacsViewer.viewports[{vp}].shown.full")
    state = ViewState.from_query(urlparse(src).query).replace(width=full["w"], height=full["h"])
    _, to_display = display_to_image(state, (geom[0], geom[1]), (geom[2], geom[3]))
    out = to_display @ np.array([x, y, 1.0])
    return float(out[0]), float(out[1])


def _client(page, vp: int, x: float, y: float) -> tuple[float, float]:
    """The screen position of image point (x, y) in viewport `vp`."""
    dx, dy = _to_display(page, vp, x, y)
    full = page.evaluate(f"pacsViewer.viewports[{vp}].shown.full")
    box = page.locator(".vp").nth(vp).bounding_box()
    return box["x"] + dx * box["width"] / full["w"], box["y"] + dy * box["height"] / full["h"]


def _image_of(page, vp: int, point) -> tuple[float, float, float]:
    """Patient point → (column, row) on viewport `vp`'s current image, and its z (Python maths)."""
    im = page.evaluate(f"pacsViewer.viewports[{vp}].image()")
    geom = page.evaluate(f"pacsViewer.viewports[{vp}].geom()")
    d = np.array(point) - np.array(im[4])
    row_cos, col_cos = np.array(geom[4:7]), np.array(geom[7:10])
    return float(d @ row_cos / geom[3] + 0.5), float(d @ col_cos / geom[2] + 0.5), float(im[4][2])


def _marker(page, vp: int):
    return page.evaluate(f"""() => {{
      const g = pacsViewer.viewports[{vp}].svg.querySelector('g.cursor3d');
      return g ? {{x: +g.dataset.x, y: +g.dataset.y, point: g.dataset.point.split(',').map(Number)}} : null; }}""")


def _pick_tool(page) -> None:
    page.click('.vw-toolbar [data-tool="cursor"]')
    assert page.get_attribute('.vw-toolbar [data-tool="cursor"]', "aria-pressed") == "true"


def test_cursor_moves_the_pet_to_the_clicked_ct_point(app, petct):
    a, ct, pet, mr = petct
    OUT.mkdir(parents=True, exist_ok=True)
    aorta = synthetic.landmarks(synthetic.StudySpec(), CT_SLICES, CT_STEP)["aorta_descending"]
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, base, a.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{ct.study_uid}?series={ct.series_uid}&layout=1x2")
        _ready(page, 2)
        assert page.evaluate("pacsViewer.viewports.map(v => v.stack.series)") == [ct.series_uid, pet.series_uid]
        assert page.locator('.vw-toolbar [data-tool="cursor"]').inner_text() == "定位"
        # The CT on the slice of the descending aorta (z = -k * 1.25), the PET somewhere else.
        k = round(-aorta[2] / CT_STEP)
        page.click(".vp >> nth=0")
        page.keyboard.press("Home")
        for _ in range(k):
            page.keyboard.press("ArrowDown")
        page.wait_for_function(f"pacsViewer.viewports[0].shown.index === {k} && !pacsViewer.viewports[0].shown.interactive")
        pet_before = page.evaluate("pacsViewer.viewports[1].index")
        _pick_tool(page)
        # Click the aorta in the CT viewport.
        column, row, z = _image_of(page, 0, aorta)
        assert z == pytest.approx(-k * CT_STEP)
        sop = page.evaluate("pacsViewer.viewports[0].image()[0]")
        page.mouse.click(*_client(page, 0, column, row))
        page.wait_for_function("pacsViewer.viewports.every(v => v.svg.querySelector('g.cursor3d'))"
                               " && pacsViewer.viewports[1].shown.index === pacsViewer.viewports[1].index"
                               " && !pacsViewer.viewports[1].shown.interactive")
        # The clicked viewport stays on its slice and marks the point where it was clicked.
        assert page.evaluate("pacsViewer.viewports[0].index") == k
        assert page.evaluate("pacsViewer.viewports[0].image()[0]") == sop
        mark = _marker(page, 0)
        point = mark["point"]
        assert point[:2] == pytest.approx(aorta[:2], abs=1.5)  # within a CT pixel (1.4 mm)
        assert point[2] == pytest.approx(z, abs=0.01)  # on the CT slice
        assert (mark["x"], mark["y"]) == pytest.approx(_to_display(page, 0, column, row), abs=1.5)
        # The PET scrolled to the slice containing the point, and marks where it projects.
        pet_index = page.evaluate("pacsViewer.viewports[1].index")
        assert pet_index != pet_before
        pet_column, pet_row, pet_z = _image_of(page, 1, point)
        assert abs(pet_z - point[2]) <= PET_STEP / 2
        mark = _marker(page, 1)
        assert mark["point"] == pytest.approx(point)
        assert (mark["x"], mark["y"]) == pytest.approx(_to_display(page, 1, pet_column, pet_row), abs=0.05)
        assert 0 < pet_column < 64 and 0 < pet_row < 64
        page.screenshot(path=str(OUT / "cursor-petct.png"))

        # Dragging carries the cursor along: lower in the CT, so the PET goes on with it.
        page.keyboard.press("Home")
        page.wait_for_function("pacsViewer.viewports[0].shown.index === 0 && !pacsViewer.viewports[0].shown.interactive")
        assert _marker(page, 0) is None  # scrolled away from the marked slice
        start = _client(page, 0, 100, 100)
        page.mouse.move(*start)
        page.mouse.down()
        for step in range(1, 6):
            page.mouse.move(start[0] + 8 * step, start[1] + 5 * step)
        page.mouse.up()
        page.wait_for_function("pacsViewer.viewports[1].svg.querySelector('g.cursor3d')"
                               " && pacsViewer.viewports[1].shown.index === pacsViewer.viewports[1].index")
        point = _marker(page, 0)["point"]
        assert point[2] == pytest.approx(0.0, abs=0.01)
        assert _marker(page, 1)["point"] == pytest.approx(point)
        assert page.evaluate("pacsViewer.viewports[1].index") == 0  # PET z = -1.25, the nearest to 0
        # Scrolling the PET away takes its marker off; the CT keeps its own.
        pet_box = page.locator(".vp").nth(1).bounding_box()
        page.mouse.move(pet_box["x"] + pet_box["width"] / 2, pet_box["y"] + pet_box["height"] / 2)
        page.mouse.wheel(0, 100)
        page.wait_for_function("pacsViewer.viewports[1].shown.index === 1")
        page.wait_for_function("!pacsViewer.viewports[1].svg.querySelector('g.cursor3d')")
        assert _marker(page, 0)["point"] == pytest.approx(point)
        assert page.evaluate("pacsViewer.viewports[0].index") == 0

        # A series of another Frame of Reference (the MR, same study) does not move.
        page.click('[data-menu="layout"] > summary')
        page.click('[data-menu="layout"] .grid-pick [data-layout="1x3"]')
        _ready(page, 3)
        assert page.evaluate("pacsViewer.viewports[2].stack.series") == mr.series_uid
        assert page.evaluate("pacsViewer.viewports[2].stack.forUid") != page.evaluate(
            "pacsViewer.viewports[0].stack.forUid")
        mr_index, mr_url = page.evaluate("[pacsViewer.viewports[2].index, pacsViewer.viewports[2].shown.url]")
        page.mouse.click(*_client(page, 0, 128, 128))
        page.wait_for_function("pacsViewer.viewports[1].index === 0 && pacsViewer.viewports[1].svg.querySelector('g.cursor3d')")
        page.wait_for_timeout(300)
        assert page.evaluate("[pacsViewer.viewports[2].index, pacsViewer.viewports[2].shown.url]") == [mr_index, mr_url]
        assert _marker(page, 2) is None
        # The MR would have moved, had it shared the frame (its slab reaches z = 0).
        assert page.evaluate("pacsViewer.nearest(pacsViewer.viewports[2], [0, 0, 0])") != mr_index
        page.screenshot(path=str(OUT / "cursor-other-frame.png"))
        assert not errors, errors
        page.context.close()


def test_cursor_crosses_windows(app, petct):
    a, ct, pet, _ = petct
    with serve(app) as base, chromium() as browser:
        first = new_page(browser, base, "desktop")
        errors: list[str] = []
        first.on("pageerror", lambda exc: errors.append(str(exc)))
        login(first, base, a.doctor, PASSWORD)
        second = first.context.new_page()  # same browser context: BroadcastChannel reaches it
        second.on("pageerror", lambda exc: errors.append(str(exc)))
        first.goto(f"{base}/viewer/{ct.study_uid}?series={ct.series_uid}&i=20")
        second.goto(f"{base}/viewer/{ct.study_uid}?series={pet.series_uid}")
        _ready(first)
        _ready(second)
        assert second.evaluate("pacsViewer.active.index") == 0
        monitor = first.context.new_page()
        monitor.on("pageerror", lambda exc: errors.append(str(exc)))
        monitor.goto(f"{base}/viewer/{ct.study_uid}?monitor=2&series={pet.series_uid}")
        _ready(monitor)
        _pick_tool(first)
        first.wait_for_function("pacsViewer.active.index === 20")
        first.mouse.click(*_client(first, 0, 140, 90))
        point = _marker(first, 0)["point"]
        assert point[2] == pytest.approx(-20 * CT_STEP, abs=0.01)
        # The other page's PET goes to the slice of that point and marks it.
        second.wait_for_function("pacsViewer.active.svg.querySelector('g.cursor3d')"
                                 " && pacsViewer.active.shown.index === pacsViewer.active.index")
        column, row, z = _image_of(second, 0, point)
        assert abs(z - point[2]) <= PET_STEP / 2 and second.evaluate("pacsViewer.active.index") == 6
        mark = _marker(second, 0)
        assert mark["point"] == pytest.approx(point)
        assert (mark["x"], mark["y"]) == pytest.approx(_to_display(second, 0, column, row), abs=0.05)
        # A second-monitor window of the first one marks the point too.
        monitor.wait_for_function("pacsViewer.active.svg.querySelector('g.cursor3d')"
                                  " && pacsViewer.active.shown.index === pacsViewer.active.index")
        assert _marker(monitor, 0)["point"] == pytest.approx(point)
        assert monitor.evaluate("pacsViewer.active.index") == 6
        monitor.close()
        # ... and back: a click in the PET page moves the CT page.
        _pick_tool(second)
        second.mouse.click(*_client(second, 0, 30.5, 20.5))
        back = _marker(second, 0)["point"]
        first.wait_for_function("""back => {
          const g = pacsViewer.active.svg.querySelector('g.cursor3d'), v = pacsViewer.active;
          return g && g.dataset.point.split(',').every((c, i) => Math.abs(c - back[i]) < 1e-6)
            && v.shown.index === v.index; }""", arg=back)
        assert first.evaluate("pacsViewer.active.image()[4][2]") == pytest.approx(back[2], abs=CT_STEP / 2)
        first.screenshot(path=str(OUT / "cursor-window-1.png"))
        second.screenshot(path=str(OUT / "cursor-window-2.png"))
        assert not errors, errors
        first.context.close()


def test_cursor_and_the_mpr_crosshair_follow_each_other(app, petct):
    a, ct, pet, _ = petct
    with serve(app) as base, chromium() as browser:
        viewer = new_page(browser, base, "desktop")
        errors: list[str] = []
        viewer.on("pageerror", lambda exc: errors.append(str(exc)))
        login(viewer, base, a.doctor, PASSWORD)
        mpr = viewer.context.new_page()
        mpr.on("pageerror", lambda exc: errors.append(str(exc)))
        mpr.goto(f"{base}/viewer3d/{ct.study_uid}/{ct.series_uid}/mpr")
        viewer.goto(f"{base}/viewer/{ct.study_uid}?series={pet.series_uid}&i=5")
        _ready(viewer)
        mpr.wait_for_function("window.pacsMPR && pacsMPR.views.every(v => v.geom) && pacsMPR.state.cx !== null")
        # A click with the cursor in the 2-D PET puts the MPR crosshair on that point.
        viewer.keyboard.press("c")
        assert viewer.get_attribute('.vw-toolbar [data-tool="cursor"]', "aria-pressed") == "true"
        viewer.mouse.click(*_client(viewer, 0, 40.5, 25.5))
        point = _marker(viewer, 0)["point"]
        assert point[2] == pytest.approx(-20.0, abs=0.01)  # PET slice 6 (z = -1.25 - 5 * 3.75)
        mpr.wait_for_function("p => ['cx', 'cy', 'cz'].every((k, i) => Math.abs(pacsMPR.state[k] - p[i]) < 0.011)",
                              arg=point)
        # A click on the MPR's coronal plane (mid-height: the middle of the 30 mm slab) moves the
        # crosshair in z: the PET follows.
        before = point[2]
        coronal = mpr.locator('.v3d-vp[data-plane="coronal"]').bounding_box()
        mpr.mouse.click(coronal["x"] + coronal["width"] * 0.45, coronal["y"] + coronal["height"] * 0.5)
        mpr.wait_for_function(f"Math.abs(pacsMPR.state.cz - {before}) > 2")
        crosshair = mpr.evaluate("[pacsMPR.state.cx, pacsMPR.state.cy, pacsMPR.state.cz]")
        viewer.wait_for_function("""p => { const g = pacsViewer.active.svg.querySelector('g.cursor3d'), v = pacsViewer.active;
          return g && g.dataset.point.split(',').every((c, i) => Math.abs(c - p[i]) < 1e-6)
            && v.shown.index === v.index; }""", arg=crosshair)
        z = viewer.evaluate("pacsViewer.active.image()[4][2]")
        assert abs(z - crosshair[2]) <= PET_STEP / 2
        mpr.screenshot(path=str(OUT / "cursor-mpr.png"))
        assert not errors, errors
        viewer.context.close()
