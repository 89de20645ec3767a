"""3-D views in a real browser: Debian's Chromium through Playwright, the app on a real socket."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.demo import synthetic
from app.services import ingest, volumes
from tests.conftest import PASSWORD, make_tenant
from tests.web.screenshots import ARTIFACTS, CHROMIUM, chromium, login, new_page, serve
from tests.web.test_views3d import ACTOR

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("app", ["sqlite"], indirect=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]
pytest.importorskip("playwright.sync_api")
OUT = ARTIFACTS / "viewer3d"


@pytest.fixture
def study(app):
    """HOSPA with a 48-slice chest CT and its PET, and an XA cine."""
    volumes.CACHE.clear()
    a = make_tenant("HOSPA")
    spec = synthetic.StudySpec(seed=5)
    for ds in synthetic.chest_ct(spec, n_slices=48, rows=128, cols=128, slice_thickness=2.5):
        ct = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    for ds in synthetic.pet_series(spec, ct_slices=48, rows=48, cols=48, ct_slice_thickness=2.5):
        ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    xa = ingest.ingest(a.tenant, synthetic.to_bytes(
        synthetic.xa_cine(synthetic.StudySpec(seed=6), frames=10, rows=128, cols=128)), ACTOR)
    return a, ct, xa


def _shown(page) -> str:
    page.wait_for_function("() => { const i = document.querySelector('.v3d-img');"
                           " return i.complete && i.naturalWidth > 0 && i.dataset.shown; }")
    return page.eval_on_selector(".v3d-img", "i => i.dataset.shown")


def _settled(page, before: str) -> str:
    """Wait until the image shown is a still that differs from `before`."""
    page.wait_for_function(
        "b => { const s = document.querySelector('.v3d-img').dataset.shown;"
        " return s && s !== b && !s.includes('rq=preview'); }", arg=before, timeout=20_000)
    return page.eval_on_selector(".v3d-img", "i => i.dataset.shown")


def test_drag_rotates_the_volume_rendering(study, app):
    a, ct, _ = study
    OUT.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, chromium() as browser:
        for size in ("desktop", "phone"):
            page = new_page(browser, base, size)
            login(page, base, a.doctor, PASSWORD)
            page.goto(f"{base}/viewer/{ct.study_uid}?series={ct.series_uid}&view=vr")
            assert "/viewer3d/" in page.url
            first = _shown(page)
            assert "az=" not in first
            box = page.locator(".v3d-vp").bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(cx, cy)
            page.mouse.down()
            for step in range(1, 9):
                page.mouse.move(cx + 12 * step, cy, steps=2)
            page.mouse.up()
            rotated = _settled(page, first)
            assert "az=" in rotated  # the camera turned about the patient's axis
            page.screenshot(path=str(OUT / f"vr-{size}.png"))
            page.select_option('[data-key="preset"]', "mip")
            mip = _settled(page, rotated)
            assert "preset=mip" in mip and "az=" in mip
            page.close()


def test_fusion_and_dsa_pages_show_their_images(study, app):
    a, ct, xa = study
    OUT.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        login(page, base, a.doctor, PASSWORD)
        page.goto(f"{base}/viewer3d/{ct.study_uid}/{ct.series_uid}/fusion")
        first = _shown(page)
        page.mouse.move(700, 450)
        page.mouse.wheel(0, 300)
        scrolled = _settled(page, first)
        assert "k=" in scrolled and scrolled != first
        page.screenshot(path=str(OUT / "fusion-desktop.png"))
        page.goto(f"{base}/viewer3d/{xa.study_uid}/{xa.series_uid}/dsa")
        first = _shown(page)
        page.fill('[data-key="mask"]', "1")
        masked = _settled(page, first)
        assert "mask=1" in masked
        page.screenshot(path=str(OUT / "dsa-desktop.png"))


def _open_mpr(browser, base: str, tenant, ct, size: str = "desktop"):
    """A logged-in page with the MPR of `ct`, every plane's geometry loaded."""
    page = new_page(browser, base, size)
    login(page, base, tenant.doctor, PASSWORD)
    page.goto(f"{base}/viewer3d/{ct.study_uid}/{ct.series_uid}/mpr")
    page.wait_for_function("window.pacsMPR && pacsMPR.views.every(v => v.geom)")
    return page


def _drag(page, start: tuple[float, float], end: tuple[float, float], steps: int) -> None:
    """Press at `start`, move to `end` in `steps`, release."""
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=steps)
    page.mouse.up()


def _src(page, plane: str) -> str:
    return page.eval_on_selector(f'.v3d-vp[data-plane="{plane}"] .v3d-img', "i => i.dataset.shown || ''")


def test_dragging_the_crosshair_moves_the_other_planes(study, app):
    a, ct, _ = study
    OUT.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        login(page, base, a.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{ct.study_uid}?series={ct.series_uid}&view=mpr")
        page.wait_for_function("window.pacsMPR && pacsMPR.views.every(v => v.geom)"
                               " && pacsMPR.state.cx !== null")
        centre = page.evaluate("[pacsMPR.state.cx, pacsMPR.state.cy, pacsMPR.state.cz]")
        before = {p: _src(page, p) for p in ("coronal", "sagittal")}
        axial = page.locator('.v3d-vp[data-plane="axial"]').bounding_box()
        x0, y0 = axial["x"] + axial["width"] / 2, axial["y"] + axial["height"] / 2
        _drag(page, (x0, y0), (x0 + 60, y0 - 40), 6)  # towards the patient's left and anterior
        page.wait_for_function(
            "b => ['coronal', 'sagittal'].every(p => { const i = document.querySelector("
            "`.v3d-vp[data-plane=\"${p}\"] .v3d-img`); return i.dataset.shown && i.dataset.shown !== b[p]"
            " && !i.dataset.shown.includes('q=60'); })", arg=before, timeout=20_000)
        moved = page.evaluate("[pacsMPR.state.cx, pacsMPR.state.cy, pacsMPR.state.cz]")
        assert moved[0] > centre[0] + 5      # LPS x grows to the patient's left = screen right
        assert moved[1] < centre[1] - 3      # anterior is screen up on the axial view
        assert abs(moved[2] - centre[2]) < 1e-6  # the axial plane itself did not move
        assert f"cx={moved[0]:g}" in _src(page, "coronal") or "cx=" in _src(page, "coronal")
        # The axial view's lines follow: its sagittal line now crosses at the new x.
        page.wait_for_function("pacsMPR.views[0].geom && Math.abs(pacsMPR.views[0].geom.crosshair[0]"
                               f" - {moved[0]}) < 0.01")
        page.screenshot(path=str(OUT / "mpr-desktop.png"))
        # The wheel over the coronal view steps its plane along the patient's y.
        coronal = page.locator('.v3d-vp[data-plane="coronal"]').bounding_box()
        page.mouse.move(coronal["x"] + coronal["width"] / 2, coronal["y"] + coronal["height"] / 2)
        page.mouse.wheel(0, 100)
        page.wait_for_function(f"Math.abs(pacsMPR.state.cy - {moved[1]}) > 0.5")


def test_a_path_clicked_on_the_planes_gives_a_curved_reformat(study, app):
    a, ct, _ = study
    with serve(app) as base, chromium() as browser:
        page = _open_mpr(browser, base, a, ct)
        page.click('[data-tool="path"]')
        coronal = page.locator('.v3d-vp[data-plane="coronal"]').bounding_box()
        cx = coronal["x"] + coronal["width"] / 2
        for dy in (-60, -20, 20, 60):  # a path running head to feet through the coronal plane
            page.mouse.click(cx + dy / 4, coronal["y"] + coronal["height"] / 2 + dy)
        assert page.evaluate("pacsCPR.path().length") == 4
        cpr = page.locator('.v3d-vp[data-op="cpr"]')
        assert cpr.is_visible() and not page.locator('.v3d-vp[data-op="vr"]').is_visible()
        page.wait_for_function("() => (document.querySelector('.v3d-vp[data-op=\"cpr\"] .v3d-img')"
                               ".dataset.shown || '').includes('/cpr?')")
        first = page.eval_on_selector('.v3d-vp[data-op="cpr"] .v3d-img', "i => i.dataset.shown")
        assert "path=" in first
        box = cpr.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.wheel(0, 100)  # turns the view round the path
        page.wait_for_function(
            "f => { const s = document.querySelector('.v3d-vp[data-op=\"cpr\"] .v3d-img').dataset.shown;"
            " return s !== f && s.includes('ang=10') && !s.includes('q=60'); }", arg=first)
        assert page.eval_on_selector('.v3d-vp[data-op="cpr"] .v3d-img', "i => i.naturalWidth") > 0
        page.screenshot(path=str(OUT / "cpr-desktop.png"))


def test_fusion_on_a_coronal_plane(study, app):
    a, ct, _ = study
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        login(page, base, a.doctor, PASSWORD)
        page.goto(f"{base}/viewer3d/{ct.study_uid}/{ct.series_uid}/fusion")
        first = _shown(page)
        page.select_option('[data-key="plane"]', "coronal")
        coronal = _settled(page, first)
        assert "o=coronal" in coronal and "cy=" in coronal and "k=" not in coronal
        page.mouse.move(700, 450)
        page.mouse.wheel(0, 100)
        moved = _settled(page, coronal)
        assert "o=coronal" in moved and moved != coronal
        page.screenshot(path=str(OUT / "fusion-coronal.png"))


def test_the_mpr_crosshair_follows_and_leads_the_3d_cursor_of_other_windows(study, app):
    a, ct, _ = study
    with serve(app) as base, chromium() as browser:
        first = new_page(browser, base, "desktop")
        login(first, base, a.doctor, PASSWORD)
        url = f"{base}/viewer3d/{ct.study_uid}/{ct.series_uid}/mpr"
        first.goto(url)
        second = first.context.new_page()
        second.goto(url)
        for page in (first, second):
            page.wait_for_function("window.pacsMPR && pacsMPR.views.every(v => v.geom)"
                                   " && pacsMPR.state.cx !== null")
        # A cursor message as the 2-D viewer sends it moves both MPR pages' crosshairs.
        first.evaluate("""s => new BroadcastChannel('pacs-cursor').postMessage({type: 'cursor',
            study: s.study, for: s.for, point: [12.5, -20, -50], from: 'viewer-2d'})""",
                       {"study": ct.study_uid, "for": first.evaluate("V3D.data.frameOfReference")})
        for page in (first, second):
            page.wait_for_function("pacsMPR.state.cx === 12.5 && pacsMPR.state.cz === -50")
        # A click in one MPR page moves the other.
        axial = first.locator('.v3d-vp[data-plane="axial"]').bounding_box()
        first.mouse.click(axial["x"] + axial["width"] * 0.3, axial["y"] + axial["height"] * 0.5)
        first.wait_for_function("pacsMPR.state.cx !== 12.5")
        moved = first.evaluate("[pacsMPR.state.cx, pacsMPR.state.cy, pacsMPR.state.cz]")
        second.wait_for_function(f"pacsMPR.state.cx === {moved[0]} && pacsMPR.state.cy === {moved[1]}")
        # Another frame of reference is ignored.
        first.evaluate("""s => new BroadcastChannel('pacs-cursor').postMessage({type: 'cursor',
            study: s, for: '1.2.3.other', point: [99, 99, 99], from: 'x'})""", ct.study_uid)
        first.wait_for_timeout(500)
        assert first.evaluate("pacsMPR.state.cx") == moved[0]


def test_length_and_angle_in_a_plane_are_measured_in_patient_mm(study, app):
    a, ct, _ = study
    with serve(app) as base, chromium() as browser:
        page = _open_mpr(browser, base, a, ct)
        box = page.locator('.v3d-vp[data-plane="axial"]').bounding_box()
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        # The same screen points mapped to patient mm in Python from the farm's geometry.
        expected = page.evaluate("""([x0, y0, dx]) => {
            const v = pacsMPR.views[0], r = v.img.getBoundingClientRect();
            const at = (cx, cy) => [(cx - r.left) * v.size.w / r.width, (cy - r.top) * v.size.h / r.height];
            const a = v.pick(...at(x0, y0)), b = v.pick(...at(x0 + dx, y0));
            return Math.hypot(b[0] - a[0], b[1] - a[1], b[2] - a[2]); }""", [x0, y0, 200])
        page.click('[data-tool="length"]')
        _drag(page, (x0, y0), (x0 + 200, y0), 5)
        label = page.locator('.v3d-vp[data-plane="axial"] .mpr-measure:not(.mpr-saved) text').text_content()
        assert abs(float(label.split()[0]) - expected) < 0.15
        page.click('[data-tool="angle"]')
        for dx, dy in ((150, 0), (0, 0), (0, -150)):  # a right angle on screen is a right angle in mm
            page.mouse.click(x0 + dx, y0 + dy)
        label = page.locator('.v3d-vp[data-plane="axial"] .mpr-measure:not(.mpr-saved) text').text_content()
        assert abs(float(label.rstrip("°")) - 90.0) < 1.0
        page.click('[data-tool="ellipse"]')
        _drag(page, (x0 - 40, y0 - 40), (x0 + 40, y0 + 40), 4)
        page.wait_for_function("(document.querySelector('.v3d-vp[data-plane=\"axial\"] .mpr-measure:not(.mpr-saved) text')"
                               " || {}).textContent?.includes('cm²')")
        stats = page.evaluate("pacsMPR.views[0].roi")
        assert stats["shape"] == "ellipse" and stats["pixels"] > 10 and stats["area_mm2"] > 0


def test_polyline_cobb_and_freehand_in_a_plane(study, app):
    a, ct, _ = study
    with serve(app) as base, chromium() as browser:
        page = _open_mpr(browser, base, a, ct)
        box = page.locator('.v3d-vp[data-plane="axial"]').bounding_box()
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        text = '.v3d-vp[data-plane="axial"] .mpr-measure:not(.mpr-saved) text'
        # Polyline: an L of two 100-pixel legs is twice one leg's length in mm.
        page.click('[data-tool="length"]')
        _drag(page, (x0, y0), (x0 + 100, y0), 4)
        leg = float(page.locator(text).text_content().split()[0])
        page.click('[data-tool="polyline"]')
        for dx, dy in ((0, 0), (100, 0), (100, -100)):
            page.mouse.click(x0 + dx, y0 + dy)
        total = float(page.locator(text).text_content().split()[0])
        assert abs(total - 2 * leg) < 0.2
        # Cobb: a horizontal line and one rising 30 in 80 on screen (square pixels).
        page.click('[data-tool="cobb"]')
        for dx, dy in ((-100, 0), (0, 0), (0, 50), (80, 20)):
            page.mouse.click(x0 + dx, y0 + dy)
        cobb = float(page.locator(text).text_content().rstrip("°"))
        assert abs(cobb - 20.556) < 1.0  # atan(30/80)
        # Freehand: a drawn loop gets area and mean from the plane's values.
        page.click('[data-tool="freehand"]')
        page.mouse.move(x0 - 40, y0 - 40)
        page.mouse.down()
        for x, y in ((40, -40), (40, 40), (-40, 40), (-40, -38)):
            page.mouse.move(x0 + x, y0 + y, steps=5)
        page.mouse.up()
        page.wait_for_function(f"(document.querySelector('{text}') || {{}}).textContent?.includes('cm²')")
        stats = page.evaluate("pacsMPR.views[0].roi")
        assert stats["shape"] == "polygon" and stats["pixels"] > 10


def test_a_saved_mpr_measurement_is_drawn_again_after_reload(study, app):
    a, ct, _ = study
    with serve(app) as base, chromium() as browser:
        page = _open_mpr(browser, base, a, ct)
        box = page.locator('.v3d-vp[data-plane="axial"]').bounding_box()
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.click('[data-tool="length"]')
        _drag(page, (x0 - 50, y0), (x0 + 50, y0), 4)
        label = page.locator('.v3d-vp[data-plane="axial"] .mpr-measure text').first.text_content()
        # Cardiothoracic ratio: 60 px of heart over 150 px of thorax on square pixels.
        page.click('[data-tool="ctr"]')
        for dx in (-30, 30, -75, 75):
            page.mouse.click(x0 + dx, y0 + 60)
        assert page.locator('.v3d-vp[data-plane="axial"] .mpr-measure text').first.text_content() \
            .endswith("0.40")
        page.click('[data-tool="arrow"]')
        _drag(page, (x0 + 60, y0 - 60), (x0 + 10, y0 - 10), 3)
        page.once("dialog", lambda dialog: dialog.accept("右肺结节"))
        page.click('[data-tool="text"]')
        page.mouse.click(x0 + 70, y0 - 70)
        page.wait_for_function("document.querySelectorAll('.v3d-vp[data-plane=\"axial\"] .mpr-saved').length >= 4")
        page.reload()
        page.wait_for_function("window.pacsMPR && pacsMPR.views.every(v => v.geom)"
                               " && document.querySelector('.v3d-vp[data-plane=\"axial\"] .mpr-saved')")
        texts = page.locator('.v3d-vp[data-plane="axial"] .mpr-saved text').all_text_contents()
        assert label in texts and "右肺结节" in texts and any(t.endswith("0.40") for t in texts)
        assert page.locator('.v3d-vp[data-plane="axial"] .mpr-saved polyline[marker-end]').count() == 1
        # A line along the patient x axis only crosses the sagittal plane: not drawn there.
        assert page.locator('.v3d-vp[data-plane="sagittal"] .mpr-saved').count() == 0


def test_probe_and_window_from_a_region_on_a_plane(study, app):
    a, ct, _ = study
    with serve(app) as base, chromium() as browser:
        page = _open_mpr(browser, base, a, ct)
        box = page.locator('.v3d-vp[data-plane="axial"]').bounding_box()
        page.click('[data-tool="probe"]')
        page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + 12)  # air above the patient
        text = '.v3d-vp[data-plane="axial"] .mpr-measure:not(.mpr-saved) text'
        page.wait_for_function(f"(document.querySelector('{text}') || {{}}).textContent?.includes('HU')")
        assert float(page.locator(text).text_content().split()[0]) < -900
        page.click('[data-tool="wlregion"]')
        x0, y0 = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        _drag(page, (x0 - 30, y0 - 30), (x0 + 30, y0 + 30), 3)
        page.wait_for_function("pacsMPR.state.ww !== null")
        window = page.evaluate("[pacsMPR.state.wc, pacsMPR.state.ww]")
        assert window[1] > 0
        page.wait_for_function("pacsMPR.views.every(v => (v.img.dataset.shown || '').includes('ww='))")


def test_the_crosshair_stays_inside_the_volume(study, app):
    a, ct, _ = study
    with serve(app) as base, chromium() as browser:
        page = _open_mpr(browser, base, a, ct)
        top = page.evaluate("""() => { const g = pacsMPR.views[1].geom;   // coronal: row 0 is the top slice
            return g.origin[2]; }""")
        box = page.locator('.v3d-vp[data-plane="coronal"]').bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 3)  # the black band above the image
        page.wait_for_function(f"pacsMPR.state.cz !== null && pacsMPR.state.cz <= {top} + 0.01")
        axial = page.locator('.v3d-vp[data-plane="axial"]').bounding_box()
        page.mouse.move(axial["x"] + axial["width"] / 2, axial["y"] + axial["height"] / 2)
        for _ in range(5):  # stepping the axial plane towards the head cannot leave the volume
            page.mouse.wheel(0, 100)
            page.mouse.wheel(0, -100)
            page.mouse.wheel(0, 100)
        page.wait_for_timeout(300)
        assert page.evaluate("pacsMPR.state.cz") <= top + 0.01
