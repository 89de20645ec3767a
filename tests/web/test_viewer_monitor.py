"""The second monitor: a second window with other series of the study that follows the first."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.demo import synthetic
from app.services import ingest
from tests.conftest import PASSWORD, make_tenant
from tests.web.conftest import html
from tests.web.screenshots import ARTIFACTS, CHROMIUM, chromium, login, new_page, serve
from tests.web.test_viewer import ACTOR, viewer_data


@pytest.fixture
def petct(app):
    """HOSPA: a CT and a PET of one study (one Frame of Reference) and a prior MR; HOSPB empty."""
    a, b = make_tenant("HOSPA"), make_tenant("HOSPB")
    spec = synthetic.StudySpec()
    for ds in synthetic.chest_ct(spec, n_slices=24, rows=128, cols=128):
        ct = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    for ds in synthetic.pet_series(spec, ct_slices=24, rows=64, cols=64):
        pet = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    for ds in synthetic.mr_series(spec, n_slices=6, rows=64, cols=64):
        mr = ingest.ingest(a.tenant, synthetic.to_bytes(ds), ACTOR)
    return a, b, ct, pet, mr


def test_monitor_page_and_tenancy(app, petct, client_for):
    a, b, ct, pet, _ = petct
    body = html(client_for(a.doctor).get(f"/viewer/{ct.study_uid}?monitor=2&series={pet.series_uid}"))
    data = viewer_data(body)
    assert data["monitor"] is True and data["series"] == pet.series_uid
    assert 'class="monitor-badge"' in body and 'data-action="monitor"' not in body
    assert "monitor=2" in body  # the page's own links keep it a monitor window
    main = html(client_for(a.doctor).get(f"/viewer/{ct.study_uid}"))
    assert viewer_data(main)["monitor"] is False and 'data-action="monitor"' in main
    denied = client_for(b.doctor).get(f"/viewer/{ct.study_uid}?monitor=2&series={pet.series_uid}")
    assert denied.status_code == 404 and pet.series_uid not in html(denied)


@pytest.mark.browser
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
def test_second_window_follows_the_first(app, petct):
    a, _, ct, pet, mr = petct
    out = ARTIFACTS / "viewer"
    out.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, base, a.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{ct.study_uid}")
        page.wait_for_function("window.pacsViewer && pacsViewer.active && pacsViewer.active.shown")
        assert page.evaluate("pacsViewer.active.stack.modality") == "CT"
        page.keyboard.press("End")  # before the second window opens: it starts where this one is
        page.wait_for_function("pacsViewer.active.index === 23")
        with page.context.expect_page() as opened:
            page.click('.tb-secondary [data-action="monitor"]')
        second = opened.value
        second.on("pageerror", lambda exc: errors.append(str(exc)))
        second.wait_for_function("window.pacsViewer && pacsViewer.active && pacsViewer.active.shown"
                                 " && pacsViewer.active.stack")
        # The other series of the study: the PET, in the CT's Frame of Reference.
        assert second.evaluate("pacsViewer.active.stack.series") == pet.series_uid
        assert second.evaluate("pacsViewer.monitor.second") is True
        z = page.evaluate("pacsViewer.active.image()[4][2]")
        second.wait_for_function(f"Math.abs(pacsViewer.active.image()[4][2] - {z}) < 2")
        assert second.evaluate("pacsViewer.active.index") == 7  # the PET's last (8 slices of 3.75 mm)
        # Scrolling the first window moves the second to the same patient position.
        for key, index in (("Home", 0), ("End", 23), ("Home", 0)):
            page.keyboard.press(key)
            page.wait_for_function(f"pacsViewer.active.index === {index}")
            z = page.evaluate("pacsViewer.active.image()[4][2]")
            second.wait_for_function(f"Math.abs(pacsViewer.active.image()[4][2] - {z}) < 2"
                                     " && pacsViewer.active.shown.index === pacsViewer.active.index")
        page.mouse.move(700, 450)
        for _ in range(10):
            page.mouse.wheel(0, 100)
        page.wait_for_function("pacsViewer.active.index === 10")
        z = page.evaluate("pacsViewer.active.image()[4][2]")
        expected = second.evaluate(f"pacsViewer.nearest(pacsViewer.active, [0, 0, {z}])")
        second.wait_for_function(f"pacsViewer.active.index === {expected}"
                                 " && pacsViewer.active.shown && !pacsViewer.active.shown.interactive")
        page.screenshot(path=str(out / "monitor-first.png"))
        second.screenshot(path=str(out / "monitor-second.png"))
        # Opening another study in the first window takes the second one along.
        page.goto(f"{base}/viewer/{mr.study_uid}")
        second.wait_for_url(f"**/viewer/{mr.study_uid}?monitor=2**")
        second.wait_for_function("window.pacsViewer && pacsViewer.active && pacsViewer.active.shown")
        assert second.evaluate("pacsViewer.active.stack.study") == mr.study_uid
        assert not errors, errors
        page.context.close()
