"""End to end: the viewer in Chromium, the live web app with REDIS_URL, two real rq render workers.

Workers are ``python -m render_farm.worker`` subprocesses on the machine's Redis,
in a database of their own (12; the farm tests use 15, the farm benchmark 14).
Every frame the browser asks for must arrive, made by the worker its series is
routed to (frame responses name their worker in ``X-Render-Worker``); nothing
may be rendered in the web process (the local fallback is off).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.demo import synthetic
from app.services import ingest
from render_farm import routing
from tests.conftest import PASSWORD, make_tenant
from tests.web.screenshots import ARTIFACTS, CHROMIUM, chromium, login, new_page, serve
from tests.web.test_viewer import ACTOR

redis = pytest.importorskip("redis")
REDIS_URL = os.environ.get("PACS_TEST_REDIS_VIEWER", "redis://localhost:6379/12")
ROOT = Path(__file__).resolve().parents[2]
_RUN = os.getpid()

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("app", ["sqlite"], indirect=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture
def farm(tmp_path):
    """Starts render workers on Redis DB 12; stops them (and empties the DB) afterwards."""
    connection = redis.Redis.from_url(REDIS_URL)
    try:
        connection.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    connection.flushdb()
    procs: list[subprocess.Popen] = []

    def start(*names: str) -> None:
        for name in names:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "render_farm.worker", "--url", REDIS_URL, "--name", name,
                 "--cache-bytes", str(128 << 20)], cwd=ROOT, stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / f"{name}.log", "wb")))  # noqa: SIM115 (the child owns it)
        deadline = time.monotonic() + 30
        while not set(names) <= set(routing.live_names(connection)):
            assert time.monotonic() < deadline, "render workers did not start"
            assert all(p.poll() is None for p in procs), "a render worker exited"
            time.sleep(0.05)

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        connection.flushdb()
        connection.close()


def test_scrolling_a_study_rendered_by_two_workers(app, farm):
    a = make_tenant("HOSPA")
    spec = synthetic.StudySpec()
    for ds in synthetic.chest_ct(spec, n_slices=30, rows=256, cols=256):
        ct = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    for ds in synthetic.pet_series(spec, ct_slices=30, rows=64, cols=64):
        pet = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    # Worker names for which the two series are routed to different workers, so both work.
    for attempt in range(100):
        names = (f"view-a-{_RUN}-{attempt}", f"view-b-{_RUN}-{attempt}")
        expected = {uid: routing.choose(f"{a.tenant.id}/{uid}", names)
                    for uid in (ct.series_uid, pet.series_uid)}
        if len(set(expected.values())) == 2:
            break
    farm(*names)
    app.config.update(REDIS_URL=REDIS_URL, PACS_RENDER_LOCAL_FALLBACK=False)
    app.extensions.pop("pacs_render_farm", None)
    sop_series = {}  # SOP Instance UID → series, from the stacks
    answered, failed, asked = {}, [], set()
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        def response(r):
            if "/frames/" in r.url:
                answered[r.url] = (r.status, r.headers.get("x-render-worker"))
        page.on("request", lambda r: asked.add(r.url) if "/frames/" in r.url else None)
        page.on("response", response)
        page.on("requestfailed", lambda r: failed.append((r.url, r.failure)) if "/frames/" in r.url else None)
        login(page, base, a.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{ct.study_uid}")
        page.wait_for_function("window.pacsViewer && pacsViewer.active && pacsViewer.active.stack"
                               " && pacsViewer.active.shown")
        page.click('[data-menu="layout"] > summary')
        page.click('[data-menu="layout"] .menu-body > [data-layout="1x2"]')
        page.wait_for_function("pacsViewer.viewports[1] && pacsViewer.viewports[1].shown")
        page.click('[data-toggle="sync"]')  # the PET follows the CT as it scrolls
        box = page.locator(".vp >> nth=0").bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        for _ in range(29):
            page.mouse.wheel(0, 100)
            time.sleep(0.04)
        page.wait_for_function("pacsViewer.viewports[0].index === 29 && pacsViewer.viewports.every("
                               "v => v.shown && !v.shown.interactive && v.shown.index === v.index)",
                               timeout=30_000)
        for vp in (0, 1):
            stack = page.evaluate(f"pacsViewer.viewports[{vp}].stack")
            sop_series.update({image[0]: stack["series"] for image in stack["images"]})
        assert page.evaluate("document.querySelectorAll('.vp-img')[1].naturalWidth") > 0
        page.screenshot(path=str(ARTIFACTS / "viewer" / "farm-scrolled-desktop.png"))
        assert not errors, errors
        page.context.close()
    # Every frame asked for arrived (prefetches the viewer itself dropped aside), from the
    # worker its series is routed to.
    dropped = {url for url, _ in failed}
    assert asked - dropped <= set(answered)
    assert len(answered) >= 40
    for url, (status, worker) in answered.items():
        assert status in (200, 304), (url, status)
        sop = url.split("/frames/", 1)[1].split("/")[1]
        if status == 200:
            assert worker == expected[sop_series[sop]], (url, worker)
    assert {w for _, w in answered.values()} - {None} == set(names)  # both did their share
