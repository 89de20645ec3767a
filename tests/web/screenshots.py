"""Screenshots of the main pages at phone, desktop and reading-room sizes, in Chinese and English.

    .venv/bin/python -m tests.web.screenshots            # → test-artifacts/screens/*.png

Builds a throw-away app (SQLite in a temporary directory) with two institutions
and a few studies with Chinese names, serves it with werkzeug on a free port and
drives Debian's Chromium through Playwright. ``tests/web/test_browser.py`` uses
the same helpers.
"""
from __future__ import annotations

import argparse
import io
import tempfile
import zipfile
from pathlib import Path

from tests.live import CHROMIUM, CHROMIUM_ARGS, chromium, serve  # noqa: F401 (re-exported)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SIZES = {"phone": (360, 740), "desktop": (1440, 900), "large": (2560, 1440)}


def new_page(browser, base: str, size: str = "desktop", lang: str = "zh"):
    """A page in a fresh browser context of the given size and UI language."""
    width, height = SIZES[size]
    context = browser.new_context(viewport={"width": width, "height": height},
                                  device_scale_factor=1, locale="zh-CN" if lang == "zh" else "en-US")
    if lang != "zh":
        context.add_cookies([{"name": "lang", "value": lang, "url": base}])
    return context.new_page()


def login(page, base: str, username: str, password: str) -> None:
    """Log in through the real form."""
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form button[type=submit]")
    page.wait_for_load_state("networkidle")


def upload_sample(tmp: Path) -> list[Path]:
    """A good file, a zip with good and hostile entries, and a truncated file."""
    from tests.factory import ct_bytes

    good = tmp / "IM0001.dcm"  # the same instance every time: stored once, then "already present"
    good.write_bytes(ct_bytes(patient_id="PA3001", patient_name="Sun^Li=孙^丽",
                              study_uid="2.25.3001", series_uid="2.25.3001.1", sop_uid="2.25.3001.1.1",
                              StudyDescription="腰椎MR", Modality="MR", AccessionNumber="ACC301",
                              PatientSex="F", PatientBirthDate="19880506"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("DICOM/IM0002", ct_bytes(patient_id="PA3002", patient_name="Wu^Gang=吴^刚",
                                                  study_uid="2.25.3002", series_uid="2.25.3002.1"))
        archive.writestr("../evil.dcm", b"x")
        archive.writestr("readme.txt", "光盘说明")
    bundle = tmp / "光盘导出.zip"
    bundle.write_bytes(buffer.getvalue())
    data = ct_bytes(patient_id="PA3003", size=64)
    truncated = tmp / "broken.dcm"
    truncated.write_bytes(data[: len(data) - 2000])
    return [good, bundle, truncated]


def shoot(page, out: Path, name: str) -> Path:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def shoot_all(browser, base: str, out: Path, users: dict[str, str], password: str,
              study_uid: str, tmp: Path) -> list[Path]:
    """Every main page, for each language and size."""
    out.mkdir(parents=True, exist_ok=True)
    shots = []
    for lang in ("zh", "en"):
        for size in SIZES:
            tag = f"{lang}-{size}"
            page = new_page(browser, base, size, lang)
            page.goto(f"{base}/")  # → the login page, with "please log in"
            shots.append(shoot(page, out, f"login-{tag}"))
            page.fill("#username", users["doctor"])
            page.fill("#password", "wrong-password")
            page.click("form button[type=submit]")
            shots.append(shoot(page, out, f"login-error-{tag}"))
            login(page, base, users["admin"], password)
            page.goto(f"{base}/")
            shots.append(shoot(page, out, f"studies-{tag}"))
            page.goto(f"{base}/?name=zhang&modality=CT")
            shots.append(shoot(page, out, f"studies-filtered-{tag}"))
            page.goto(f"{base}/studies/{study_uid}")
            shots.append(shoot(page, out, f"study-{tag}"))
            page.goto(f"{base}/upload")
            page.set_input_files("input[type=file]:not([webkitdirectory])", [str(p) for p in upload_sample(tmp)])
            page.click("#upload-form button[type=submit]")
            page.wait_for_selector("#upload-result .tally")
            shots.append(shoot(page, out, f"upload-{tag}"))
            page.goto(f"{base}/admin/audit")
            shots.append(shoot(page, out, f"audit-{tag}"))
            page.goto(f"{base}/admin/users")
            shots.append(shoot(page, out, f"users-{tag}"))
            page.goto(f"{base}/no/such/page")
            shots.append(shoot(page, out, f"error404-{tag}"))
            page.context.close()
        for size in ("phone", "desktop"):
            page = new_page(browser, base, size, lang)
            page.goto(f"{base}/register")
            shots.append(shoot(page, out, f"register-{lang}-{size}"))
            login(page, base, users["root"], password)
            shots.append(shoot(page, out, f"institutions-{lang}-{size}"))
            page.context.close()
    return shots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ARTIFACTS / "screens")
    options = parser.parse_args()

    from flask_migrate import upgrade

    from app import create_app
    from app.services import tenants, users
    from tests.conftest import PASSWORD, make_tenant
    from tests.web.data import ROWS_A, ROWS_B, ingest_rows

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        app = create_app({
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp / 'pacs.sqlite3'}",
            "STORAGE_URL": f"file://{tmp / 'archive'}", "PACS_DATA_DIR": str(tmp),
            "SECRET_KEY": "screenshots",
        })
        with app.app_context():
            upgrade()
            a, b = make_tenant("HOSPA"), make_tenant("HOSPB")
            users.create(None, "root", PASSWORD, "platform-admin")
            tenants.register("HOSPC", "第三人民医院", "HOSPC", "李主任 138-0000-0000")
            uids = ingest_rows(a.tenant, ROWS_A)
            ingest_rows(b.tenant, ROWS_B)
            names = {"admin": a.admin, "doctor": a.doctor, "root": "root"}
        with serve(app) as base, chromium() as browser:
            shots = shoot_all(browser, base, options.out, names, PASSWORD, uids["PA1001"], tmp)
    for path in shots:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
