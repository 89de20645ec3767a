"""Browser upload: files, zips (hostile ones too), truncated DICOM, too-large bodies."""
from __future__ import annotations

import io
import zipfile

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import Instance
from tests.factory import ct_bytes
from tests.web.conftest import html

pytestmark = pytest.mark.parametrize("app", ["sqlite"], indirect=True)
HTMX = {"HX-Request": "true", "HX-Target": "upload-result"}


def stored(tenant) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Instance)
                              .where(Instance.tenant_id == tenant.id)).scalar_one()


@pytest.fixture
def uploader(seeded, client_for):
    return client_for(seeded.a.doctor)


def _post(client, files: list[tuple[str, bytes]], headers=None):
    data = {"files": [(io.BytesIO(content), name) for name, content in files]}
    return client.post("/upload", data=data, content_type="multipart/form-data", headers=headers or {})


def test_upload_page(uploader):
    page = html(uploader.get("/upload"))
    assert 'enctype="multipart/form-data"' in page and "webkitdirectory" in page
    assert 'hx-post="/upload"' in page and "<progress" in page and 'name="csrf_token"' in page


def test_a_valid_file_is_stored(seeded, uploader):
    before = stored(seeded.a.tenant)
    response = _post(uploader, [("IM0001.dcm", ct_bytes(patient_id="UP1", patient_name="Sun^Li=孙^丽"))])
    assert response.status_code == 200
    body = html(response)
    assert "<html" in body  # without htmx: the whole page with the results
    assert "IM0001.dcm" in body and "已入库" in body and "打开该检查" in body
    assert stored(seeded.a.tenant) == before + 1
    assert "孙丽" in html(uploader.get("/?name=sunli"))
    # The same file again is harmless and says so.
    response = _post(uploader, [("IM0001.dcm", ct_bytes(patient_id="UP1", sop_uid="1.2.3.4.5"))], HTMX)
    response = _post(uploader, [("again.dcm", ct_bytes(patient_id="UP1", sop_uid="1.2.3.4.5"))], HTMX)
    assert "已存在" in html(response) and "<html" not in html(response)
    assert "HX-Request" in response.headers["Vary"]


def _hostile_zip(good: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("study/IM0001", good)
        archive.writestr("../evil.dcm", good)
        archive.writestr(zipfile.ZipInfo("/etc/abs.dcm"), good)
        archive.writestr("readme.txt", "这不是DICOM文件")
        with archive.open("bomb.dcm", "w") as bomb:  # 200 MB of zeros, ~200 KB compressed
            chunk = bytes(1 << 20)
            for _ in range(200):
                bomb.write(chunk)
    return buffer.getvalue()


def test_a_hostile_zip_stores_only_the_good_file(seeded, uploader):
    before = stored(seeded.a.tenant)
    archive = _hostile_zip(ct_bytes(patient_id="ZIP1"))
    assert len(archive) < 1_000_000
    response = _post(uploader, [("cd.zip", archive)], HTMX)
    assert response.status_code == 200
    body = html(response)
    assert "<html" not in body
    expected = {
        "cd.zip/study/IM0001": "已入库",
        "cd.zip/../evil.dcm": "压缩包内的文件路径不安全",
        "cd.zip//etc/abs.dcm": "压缩包内的文件路径不安全",
        "cd.zip/readme.txt": "不是 DICOM 文件",
        "cd.zip/bomb.dcm": "疑似压缩炸弹",
    }
    for name, reason in expected.items():
        row = next(line for line in body.splitlines() if f'<span class="fname">{name}</span>' in line)
        assert reason in row, (name, row)
    assert "<strong>1</strong> 已入库" in body and "<strong>4</strong> 失败" in body
    assert stored(seeded.a.tenant) == before + 1


def test_a_truncated_file_stores_nothing(seeded, uploader):
    before = stored(seeded.a.tenant)
    data = ct_bytes(patient_id="TRUNC", size=64)
    response = _post(uploader, [("cut.dcm", data[: len(data) - 1000])])
    assert response.status_code == 400
    body = html(response)
    assert "cut.dcm" in body and "文件不完整" in body and "<html" in body
    assert stored(seeded.a.tenant) == before
    assert "没有符合条件的检查" in html(uploader.get("/?patient_id=TRUNC"))


def test_nothing_chosen(uploader):
    response = uploader.post("/upload", data={"files": [(io.BytesIO(b""), "")]},
                             content_type="multipart/form-data")
    assert response.status_code == 400 and "请至少选择一个文件" in html(response)


def test_too_large_is_a_readable_413(app, seeded, uploader):
    app.config["MAX_CONTENT_LENGTH"] = 50_000
    response = _post(uploader, [("big.dcm", bytes(80_000))])
    assert response.status_code == 413
    body = html(response)
    assert "上传内容过大" in body and "48.8 KB" in body and "<html" in body
    response = _post(uploader, [("big.dcm", bytes(80_000))], HTMX)
    assert response.status_code == 413 and "<html" not in html(response)
    assert "上传内容过大" in html(response)
    assert 'data-max-bytes="50000"' in html(uploader.get("/upload"))


def test_a_folder_of_more_than_a_thousand_files(seeded, uploader):
    # A CD folder sends one multipart part per file; Flask's default limit is 1,000 parts.
    files = [(f"CD/DICOM/IM{i:04d}", b"not dicom") for i in range(1100)]
    response = _post(uploader, files, HTMX)
    assert response.status_code == 400  # all failed, but every file was read and answered
    assert "CD/DICOM/IM1099" in html(response)


def test_reader_roles_cannot_upload(seeded, client_for):
    from app.services import users
    from tests.conftest import PASSWORD
    users.create(seeded.a.tenant, "ward-doc", PASSWORD, "clinician")
    client = client_for("ward-doc")
    assert client.get("/upload").status_code == 403
    assert "/upload" not in html(client.get("/"))  # no link to it either
