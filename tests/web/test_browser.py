"""The UI in a real browser: Debian's Chromium through Playwright, the app on a real socket."""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.web.data import ROWS_A
from tests.web.screenshots import (ARTIFACTS, CHROMIUM, chromium, login, new_page, serve,
                                   upload_sample)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("app", ["sqlite"], indirect=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]
pytest.importorskip("playwright.sync_api")


def _range(days: int) -> tuple[str, str]:
    today = date.today()
    return (today - timedelta(days=days - 1)).isoformat(), today.isoformat()


def _matching(start: str, end: str, patient_id: str) -> int:
    """How many of the seeded studies of ``patient_id`` fall in the range (0 shows one 'empty' row)."""
    return sum(1 for row in ROWS_A if row.patient_id == patient_id
               and start.replace("-", "") <= row.date <= end.replace("-", ""))


def test_study_list_search_language_and_upload(app, seeded, tmp_path):
    from playwright.sync_api import expect

    app.config["WTF_CSRF_ENABLED"] = True  # the real forms and the htmx header carry the token
    out = ARTIFACTS / "browser"
    out.mkdir(parents=True, exist_ok=True)
    with serve(app) as base, chromium() as browser:
        for size in ("desktop", "phone"):
            page = new_page(browser, base, size)
            login(page, base, seeded.a.doctor, PASSWORD)
            assert page.url.rstrip("/") == base
            table = page.locator("#study-table")
            expect(table).to_contain_text("张三")
            expect(page.locator("h1")).to_have_text("检查列表")
            page.screenshot(path=str(out / f"studies-{size}.png"), full_page=True)

            # Live filtering: the table changes, the page does not reload, the URL follows.
            page.evaluate("window.__sameDocument = true")
            page.locator("#f-name").press_sequentially("zhangsan", delay=20)
            expect(table.locator("tbody tr")).to_have_count(1)
            expect(table).to_contain_text("张三")
            expect(table).not_to_contain_text("李四")
            assert page.evaluate("window.__sameDocument") is True
            assert re.search(r"[?&]name=zhangsan", page.url)
            page.press("#f-name", "Enter")  # submits with the search button, not a date shortcut
            expect(table.locator("tbody tr")).to_have_count(1)
            assert page.input_value("#f-from") == "" and "days=" not in page.url
            page.screenshot(path=str(out / f"studies-filtered-{size}.png"), full_page=True)

            # Open the study and come back: no page snapshot was cached (hx-history="false"),
            # so the filtered list is fetched again from the pushed URL.
            table.locator("tbody a", has_text="张三").first.click()
            expect(page.locator("h1.patient")).to_contain_text("张三")
            assert page.evaluate("localStorage.getItem('htmx-history-cache')") in (None, "[]")
            page.go_back()
            expect(page.locator("#f-name")).to_have_value("zhangsan")
            expect(table.locator("tbody tr")).to_have_count(1)
            page.evaluate("window.__sameDocument = true")

            # A date shortcut fills the date boxes and filters.
            page.click("button[data-days='7']")
            start, end = _range(7)
            expect(page.locator("#f-from")).to_have_value(start)
            assert page.input_value("#f-to") == end
            expect(table.locator("tbody tr")).to_have_count(max(1, _matching(start, end, "PA1001")))
            assert page.evaluate("window.__sameDocument") is True
            page.context.close()

        # English, then an upload through the form with per-file results.
        page = new_page(browser, base, "desktop")
        login(page, base, seeded.a.doctor, PASSWORD)
        page.click("a.lang")
        expect(page.locator("h1")).to_have_text("Study list")
        expect(page.locator("#study-table th").first).to_contain_text("Patient name")
        page.click("nav.mainnav >> text=Upload")
        expect(page.locator("h1")).to_have_text("Upload images")
        page.evaluate("window.__sameDocument = true")
        files = upload_sample(tmp_path)
        page.set_input_files("#upload-form input[type=file]:not([webkitdirectory])",
                             [str(p) for p in files])
        expect(page.locator("#upload-selected")).to_contain_text("3 files selected")
        page.click("#upload-form button[type=submit]")
        result = page.locator("#upload-result")
        expect(result.locator(".tally")).to_contain_text("2 stored")
        expect(result).to_contain_text("IM0001.dcm")
        expect(result).to_contain_text("unsafe path in zip entry".capitalize())
        expect(result).to_contain_text("Truncated file")
        assert page.evaluate("window.__sameDocument") is True
        expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
        page.screenshot(path=str(out / "upload-en-desktop.png"), full_page=True)
        page.set_viewport_size({"width": 360, "height": 740})
        page.screenshot(path=str(out / "upload-en-phone.png"), full_page=True)
        page.context.close()



def test_everything_works_without_javascript(app, seeded, tmp_path):
    from playwright.sync_api import expect

    app.config["WTF_CSRF_ENABLED"] = True
    with serve(app) as base, chromium() as browser:
        context = browser.new_context(java_script_enabled=False, viewport={"width": 360, "height": 740})
        page = context.new_page()
        login(page, base, seeded.a.doctor, PASSWORD)
        page.fill("#f-name", "zs")
        page.press("#f-name", "Enter")  # a plain GET form
        expect(page.locator("#study-table tbody tr")).to_have_count(1)
        assert "name=zs" in page.url and "days=" not in page.url
        page.click("button[data-days='30']")  # ?days=30 → the server fills the dates
        start, end = _range(30)
        assert page.input_value("#f-from") == start and page.input_value("#f-to") == end
        expect(page.locator("#study-table tbody tr")).to_have_count(max(1, _matching(start, end, "PA1001")))
        page.goto(f"{base}/?sort=pid&dir=asc&per_page=5")
        page.click("a[rel=next]")
        expect(page.locator("#study-table tbody tr")).to_have_count(2)
        page.goto(f"{base}/upload")
        page.set_input_files("#upload-form input[type=file]:not([webkitdirectory])",
                             [str(p) for p in upload_sample(tmp_path)])
        page.click("#upload-form button[type=submit]")  # a plain multipart POST
        expect(page.locator("#upload-result .tally")).to_contain_text("2 已入库")
        expect(page.locator("#upload-result")).to_contain_text("文件不完整")
        page.click("form.logout button")
        expect(page.locator("h2")).to_have_text("登录")
        context.close()
