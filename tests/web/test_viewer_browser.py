"""The viewer in a real browser: Debian's Chromium through Playwright, the app on a real socket."""
from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

from app.demo import synthetic
from app.services import ingest, viewer
from render_farm.colormaps import Colormap
from render_farm.encode import ImageFormat
from render_farm.viewport import ViewState, display_to_image
from tests.conftest import PASSWORD, make_tenant
from tests.web.screenshots import ARTIFACTS, CHROMIUM, chromium, login, new_page, serve
from tests.web.test_viewer import ACTOR, MARKERS, SHAPE, load, marker_pixel

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("app", ["sqlite"], indirect=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]
pytest.importorskip("playwright.sync_api")
OUT = ARTIFACTS / "viewer"


@pytest.fixture
def studies(app):
    """HOSPA with the marker phantom, and a chest CT + PET study with a prior MR of the same patient."""
    a = make_tenant("HOSPA")
    phantom, _, _ = load(a.tenant)
    spec = synthetic.StudySpec()
    for ds in synthetic.chest_ct(spec, n_slices=24, rows=256, cols=256):
        ct = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    for ds in synthetic.pet_series(spec, ct_slices=24, rows=64, cols=64):
        ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    for ds in synthetic.mr_series(spec, n_slices=6, rows=128, cols=128):
        ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    return a, phantom, ct.study_uid


def _ready(page) -> None:
    """Wait until the script has the stack and a frame of its own on screen."""
    page.wait_for_function("window.pacsViewer && window.pacsViewer.active && window.pacsViewer.active.shown"
                           " && document.querySelector('.vp-img').naturalWidth > 0")


SETTLED = ("pacsViewer.viewports.every(v => !v.stack || (v.shown && !v.shown.interactive"
           " && v.shown.full.w === v.size().w && v.shown.full.h === v.size().h))")


def _text(page, key: str) -> str:
    return page.locator(f'.vp.active [data-v="{key}"]').inner_text()


def _client_point(page, image_point: tuple[float, float]) -> tuple[float, float]:
    """Where an image point is on screen, computed in Python from the frame URL's state."""
    src = page.eval_on_selector(".vp.active .vp-img", "img => img.getAttribute('src')")
    state = ViewState.from_query(urlparse(src).query)
    box = page.locator(".vp.active").bounding_box()
    geom = page.evaluate("window.pacsViewer.active.geom()")
    _, to_display = display_to_image(state, (geom[0], geom[1]), (geom[2], geom[3]))
    x, y = to_display @ np.array([image_point[0], image_point[1], 1.0])
    return box["x"] + x * box["width"] / state.width, box["y"] + y * box["height"] / state.height


def test_read_a_study(app, studies):
    from playwright.sync_api import expect

    app.config["WTF_CSRF_ENABLED"] = True  # the script's POSTs carry the page's token
    tenant, phantom, _ = studies
    OUT.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        flights, starts, aborted = set(), [], {}

        def started(request):
            if "/frames/" in request.url and "h=128" not in request.url:
                flights.add(request.url)
                starts.append((time.monotonic(), request.url, frozenset(flights)))

        def failed(request):  # the viewer aborts a prefetch just before it asks for a new frame
            aborted[request.url] = time.monotonic()
            flights.discard(request.url)
        page.on("request", started)
        page.on("requestfinished", lambda r: flights.discard(r.url))
        page.on("requestfailed", failed)

        def overlaps() -> list:
            return [(at, url[-60:], [(u[-60:], aborted.get(u, 0) - at) for u in others])
                    for at, url, others in starts if len(others) > 1]

        def peak(since: float = 0.0) -> int:
            """Most frame requests in flight at once; an abort reported < 20 ms late ended before."""
            return max(len({u for u in others if u == url or not (
                u in aborted and 0 <= aborted[u] - at < 0.02)}) for at, url, others in starts
                if at >= since)

        # The study list links to the viewer; the real login form brings us back to it.
        page.goto(f"{base}/viewer/{phantom}")
        assert urlparse(page.url).path == "/login"
        page.fill("#username", tenant.doctor)
        page.fill("#password", PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_url(f"**/viewer/{phantom}")
        _ready(page)
        assert page.evaluate("document.querySelector('.vp-img').naturalWidth") > 0
        expect(page.locator(".vp.active .badge.lossy")).to_have_text("有损")

        # The wheel scrolls: the image counter moves on, and so does the frame.
        assert _text(page, "image") == "1/12"
        box = page.locator(".vp.active").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(cx, cy)
        for _ in range(6):
            page.mouse.wheel(0, 100)
            time.sleep(0.03)
        expect(page.locator('.vp.active [data-v="image"]')).to_have_text("7/12")
        page.wait_for_function("window.pacsViewer.active.shown.index === 6")

        # Steps of a scroll are pipelined, three at most; everything else waits its turn.
        assert peak() <= 3, f"{peak()} frame requests were in flight at once: {overlaps()}"
        time.sleep(0.3)  # the prefetches of the resting viewport end
        dragging = time.monotonic()
        # Dragging with the W/L tool changes the window: corner text and frame URL follow.
        before_ww, before_src = _text(page, "ww"), page.get_attribute(".vp.active .vp-img", "src")
        page.mouse.down()
        page.mouse.move(cx + 90, cy + 40, steps=10)
        page.mouse.up()
        page.wait_for_function("!window.pacsViewer.active.shown.interactive")
        assert _text(page, "ww") != before_ww
        src = page.get_attribute(".vp.active .vp-img", "src")
        assert src != before_src and "wc=" in src and "ww=" in src and "q=60" not in src
        assert peak(dragging) == 1, f"{peak(dragging)} frame requests were in flight at once: {overlaps()}"

        # A length between two markers on the slice through z = 0, read in mm.
        page.keyboard.press("Home")
        for _ in range(SHAPE[0] // 2):
            page.keyboard.press("ArrowDown")
        page.wait_for_function(f"window.pacsViewer.active.shown.index === {SHAPE[0] // 2}"
                               " && !window.pacsViewer.active.shown.interactive")
        page.keyboard.press("Escape")  # back to the default view
        page.wait_for_function("!/wc=/.test(document.querySelector('.vp.active .vp-img').src)")
        page.keyboard.press("l")
        start = _client_point(page, marker_pixel(*MARKERS[0][:2]))
        end = _client_point(page, marker_pixel(*MARKERS[1][:2]))
        page.mouse.move(*start)
        page.mouse.down()
        page.mouse.move(*end, steps=8)
        page.mouse.up()
        label = page.locator(".vp.active .vp-svg text.ann-label").first
        expect(label).to_contain_text("mm")
        millimetres = float(label.text_content().split()[0])
        assert millimetres == pytest.approx(14.0, rel=0.01)
        expect(page.locator("#vw-annotations li")).to_have_count(1)
        page.mouse.move(cx + 200, cy + 200)
        page.screenshot(path=str(OUT / "phantom-length-desktop.png"))
        assert not errors, errors
        page.context.close()


def test_geometry_in_the_browser_equals_the_server(app, studies):
    """viewer-geometry.js against render_farm.viewport and app.services.viewer; grant renewal."""
    tenant, phantom, _ = studies
    app.config["PACS_FRAME_GRANT_SECONDS"] = 3
    states = [{"w": 800, "h": 600}, {"w": 800, "h": 600, "z": 2.5, "px": 10.3, "py": -7, "rot": 90, "hf": True},
              {"w": 513, "h": 777, "rot": 30, "vf": True, "z": 0.7}, {"w": 128, "h": 64, "rot": 270, "hf": True, "vf": True},
              {"w": 100, "h": 100, "rot": 180, "px": 3, "py": 4}, {"w": 64, "h": 64}]
    shapes = [((64, 64), (0.7, 0.7)), ((300, 200), (0.5, 0.8)), ((64, 64), (1.0, 1.0))]
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        login(page, base, tenant.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{phantom}")
        _ready(page)
        for spec in states:
            for (rows, cols), spacing in shapes:
                got = page.evaluate("([s, r, c, p]) => PacsGeom.geometry(s, r, c, p)",
                                    [spec, rows, cols, list(spacing)])
                state = ViewState(width=spec["w"], height=spec["h"], zoom=spec.get("z", 1.0),
                                  pan_x=spec.get("px", 0.0), pan_y=spec.get("py", 0.0),
                                  rotation=spec.get("rot", 0.0), hflip=spec.get("hf", False),
                                  vflip=spec.get("vf", False))
                to_image, to_display = display_to_image(state, (rows, cols), spacing)
                assert np.allclose(np.array(got["fwd"]).reshape(2, 3), to_display, atol=1e-9), spec
                assert np.allclose(np.array(got["inv"]).reshape(2, 3), to_image, atol=1e-9), spec
                query = page.evaluate("s => PacsGeom.query(s)", dict(spec, wc=-600, ww=1500.5, q=60))
                assert query == state.replace(window_center=-600, window_width=1500.5, quality=60).to_query()
        png = page.evaluate("s => PacsGeom.query(s)", {"w": 10, "h": 10, "fmt": "png", "q": 90, "inv": True, "cm": "hot"})
        assert png == ViewState(width=10, height=10, format=ImageFormat.PNG, invert=True,
                                colormap=Colormap.HOT).to_query()
        rng = np.random.default_rng(3)
        for vector in rng.normal(size=(40, 3)).tolist() + [[1, 0, 0], [0, -1, 0], [0.7, 0.7, 0]]:
            assert page.evaluate("v => PacsGeom.letters(v)", vector) == viewer.direction_letters(vector)
        # Frame URLs carry a grant that expires; the open page renews it and goes on.
        page.wait_for_function("pacsViewer.active.stack.frameBase", timeout=5000)
        old = page.evaluate("pacsViewer.active.stack.frameBase")
        time.sleep(3.2)
        page.keyboard.press("End")  # not prefetched: asked of the server with the old grant
        page.wait_for_function(f"pacsViewer.active.shown.index === {SHAPE[0] - 1}", timeout=10000)
        assert page.evaluate("pacsViewer.active.stack.frameBase") != old
        page.context.close()


TOUCH = """() => {
  const el = document.querySelector('.vp.active'), r = el.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  const ev = (type, id, x, y) => el.dispatchEvent(new PointerEvent(type, {
    pointerId: id, pointerType: 'touch', clientX: x, clientY: y, bubbles: true, isPrimary: id === 1}));
  ev('pointerdown', 1, cx - 20, cy); ev('pointerdown', 2, cx + 20, cy);
  for (let k = 1; k <= 5; k++) { ev('pointermove', 1, cx - 20 - 10 * k, cy); ev('pointermove', 2, cx + 20 + 10 * k, cy); }
  ev('pointerup', 1, cx - 70, cy); ev('pointerup', 2, cx + 70, cy);
  ev('pointerdown', 3, cx, cy - 100);
  for (let k = 1; k <= 10; k++) ev('pointermove', 3, cx, cy - 100 + 20 * k);
  ev('pointerup', 3, cx, cy + 100);
}"""


def test_screens_desktop_and_phone(app, studies):
    from playwright.sync_api import expect

    tenant, _, ct = studies
    OUT.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        login(page, base, tenant.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{ct}")
        _ready(page)
        expect(page.locator(".vp.active .o-tl")).to_contain_text("张三")
        page.screenshot(path=str(OUT / "ct-desktop.png"))
        # Lung window by keyboard, a 2×2 layout, and the prior MR beside the CT.
        page.keyboard.press("2")
        expect(page.locator('.vp.active [data-v="ww"]')).to_have_text("1500")
        page.click('[data-menu="layout"] > summary')
        page.click('[data-menu="layout"] .menu-body > [data-layout="2x2"]')
        expect(page.locator(".vp")).to_have_count(4)
        page.wait_for_function("pacsViewer.viewports[1].shown && pacsViewer.viewports[1].stack.modality === 'PT'")
        # Synchronised: the PET (same frame of reference) follows the CT by patient position.
        page.click('[data-toggle="sync"]')
        page.keyboard.press("End")
        page.wait_for_function("pacsViewer.viewports[1].index === pacsViewer.viewports[1].stack.images.length - 1")
        # Cine: the active viewport plays, and stops again.
        page.keyboard.press("Home")
        page.keyboard.press(" ")
        page.wait_for_function("pacsViewer.active.index >= 3")
        page.keyboard.press(" ")
        assert page.evaluate("pacsViewer.cine") is None
        page.click('[data-toggle="sync"]')
        page.locator("[data-compare]").first.click()
        page.wait_for_function("pacsViewer.viewports[1].shown && pacsViewer.viewports[1].stack.modality === 'MR'")
        page.wait_for_function(SETTLED)
        page.screenshot(path=str(OUT / "ct-2x2-prior-desktop.png"))
        page.click('[data-menu="layout"] > summary')
        page.click('.grid-pick [data-layout="4x4"]')
        expect(page.locator(".vp")).to_have_count(16)
        page.wait_for_function(SETTLED)
        page.screenshot(path=str(OUT / "ct-4x4-desktop.png"))
        page.context.close()

        phone = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2,
                                    has_touch=True, is_mobile=True, locale="zh-CN")
        page = phone.new_page()
        login(page, base, tenant.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{ct}")
        _ready(page)
        assert page.evaluate("pacsViewer.tool") == "scroll"  # one finger scrolls on a touch screen
        toolbar = page.locator(".vw-toolbar").bounding_box()
        assert toolbar["width"] <= 360
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # Two fingers pinch to zoom (about their midpoint); one finger scrolls through the images.
        page.evaluate(TOUCH)
        assert page.evaluate("pacsViewer.active.state.z") == pytest.approx(140 / 40, rel=0.01)
        assert page.evaluate("pacsViewer.active.index") > 0
        page.wait_for_function("!pacsViewer.active.shown.interactive")
        page.keyboard.press("Escape")
        page.screenshot(path=str(OUT / "ct-phone.png"))
        page.click(".tb-more > summary")
        page.screenshot(path=str(OUT / "ct-phone-more.png"))
        phone.close()
