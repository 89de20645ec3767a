"""Exports of the viewer: one image or a whole series as PNG, JPEG, TIFF or BMP, audited."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.models import AuditEvent
from tests.web.conftest import html
from tests.web.test_viewer import SHAPE, loaded  # noqa: F401 (fixture)


def _image(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    image.load()
    return image


@pytest.mark.parametrize(("fmt", "pil", "mime", "ext"), [
    ("tiff", "TIFF", "image/tiff", "tif"), ("bmp", "BMP", "image/bmp", "bmp"),
    ("png", "PNG", "image/png", "png"), ("jpeg", "JPEG", "image/jpeg", "jpg")])
def test_export_one_image(app, loaded, client_for, fmt, pil, mime, ext):
    client = client_for(loaded.a.doctor)
    sop = loaded.sops[6]
    response = client.get(f"/viewer/{loaded.study}/export/{sop}?fmt={fmt}&w=200&h=100&wc=500&ww=1000")
    assert response.status_code == 200 and response.mimetype == mime
    assert response.headers["Content-Disposition"] == f'attachment; filename="CT-2-7.{ext}"'
    image = _image(response.data)
    assert image.format == pil and image.size == (200, 100)
    if fmt != "jpeg":  # lossless: the same pixels as the PNG of the same view
        png = client.get(f"/viewer/{loaded.study}/export/{sop}?fmt=png&w=200&h=100&wc=500&ww=1000")
        assert np.array_equal(np.asarray(image.convert("L")), np.asarray(_image(png.data).convert("L")))
    event = AuditEvent.query.filter_by(action="instance.export", object_uid=sop).first()
    assert event is not None and f"format={fmt}" in event.detail and event.actor == loaded.a.doctor


def test_export_a_series_as_a_zip(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    response = client.get(f"/viewer/{loaded.study}/series/{loaded.series}/export?fmt=tiff&w=64&h=64")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert response.headers["Content-Disposition"] == 'attachment; filename="CT-2.zip"'
    names = zipfile.ZipFile(io.BytesIO(response.data)).namelist()
    assert names == [f"CT-2/{k:04d}.tif" for k in range(1, SHAPE[0] + 1)]
    first = _image(zipfile.ZipFile(io.BytesIO(response.data)).read(names[0]))
    assert first.format == "TIFF" and first.size == (64, 64)
    event = AuditEvent.query.filter_by(action="series.export", object_uid=loaded.series).one()
    assert event.detail == f"format=tiff images={SHAPE[0]}"


def test_bad_exports_get_a_clear_answer(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    base = f"/viewer/{loaded.study}"
    webp = client.get(f"{base}/export/{loaded.sops[0]}?fmt=webp")
    assert webp.status_code == 400 and "不支持该导出格式" in html(webp)
    assert client.get(f"{base}/export/{loaded.sops[0]}?fmt=tga").status_code == 400
    assert client.get(f"{base}/export/{loaded.sops[0]}?fmt=png&f=9").status_code == 404
    assert client.get(f"{base}/export/{loaded.sops[0]}?fmt=png&f=x").status_code == 400
    assert client.get(f"{base}/export/1.2.3?fmt=png").status_code == 404
    assert client.get(f"{base}/series/1.2.3/export?fmt=png").status_code == 404
    assert AuditEvent.query.filter(AuditEvent.action.like("%.export")).count() == 0


def test_another_institution_cannot_export(app, loaded, client_for):
    intruder = client_for(loaded.b.doctor)
    for url in (f"/viewer/{loaded.study}/export/{loaded.sops[0]}?fmt=tiff",
                f"/viewer/{loaded.study}/series/{loaded.series}/export?fmt=bmp"):
        response = intruder.get(url)
        assert response.status_code == 404 and response.mimetype == "text/html"
    assert AuditEvent.query.filter(AuditEvent.action.like("%.export")).count() == 0
    anonymous = app.test_client().get(f"/viewer/{loaded.study}/export/{loaded.sops[0]}?fmt=png")
    assert anonymous.status_code == 302


@pytest.mark.browser
@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_export_menu_downloads_tiff_and_bmp(app, loaded, tmp_path):
    from tests.conftest import PASSWORD
    from tests.web.screenshots import ARTIFACTS, CHROMIUM, chromium, login, new_page, serve

    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    with serve(app) as base, chromium() as browser:
        page = new_page(browser, base, "desktop")
        login(page, base, loaded.a.doctor, PASSWORD)
        page.goto(f"{base}/viewer/{loaded.study}")
        page.wait_for_function("window.pacsViewer && pacsViewer.active && pacsViewer.active.shown")
        page.keyboard.press("End")
        page.wait_for_function(f"pacsViewer.active.shown.index === {SHAPE[0] - 1}")
        summary = page.locator('.tb-secondary [data-menu="export"] > summary')
        summary.click()
        page.screenshot(path=str(ARTIFACTS / "viewer" / "export-menu-desktop.png"))
        with page.expect_download() as got:
            page.click('.tb-secondary [data-export="tiff"][data-scope="image"]')
        download = got.value
        assert download.suggested_filename == f"CT-2-{SHAPE[0]}.tif"
        path = tmp_path / "image.tif"
        download.save_as(path)
        assert Image.open(path).format == "TIFF"
        summary.click()
        with page.expect_download() as got:
            page.click('.tb-secondary [data-export="bmp"][data-scope="series"]')
        download = got.value
        assert download.suggested_filename == "CT-2.zip"
        download.save_as(tmp_path / "series.zip")
        names = zipfile.ZipFile(tmp_path / "series.zip").namelist()
        assert len(names) == SHAPE[0] and names[0].endswith(".bmp")
        page.context.close()
    assert AuditEvent.query.filter_by(action="series.export").count() == 1
    assert AuditEvent.query.filter_by(action="instance.export", object_uid=loaded.sops[-1]).count() == 1
