"""STOW-RS over the Flask test client, on SQLite and PostgreSQL (PS3.18 §10.5)."""
from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Instance
from app.services import query
from app.services.query import Level
from tests.dicomweb import api, bearer, stow_body, web  # noqa: F401  (fixtures)
from tests.factory import ct_bytes

CANNOT_UNDERSTAND, STUDY_MISMATCH = 0xC000, 0xA900


def _post(web, token, parts, url="/dicom-web/studies", **kwargs):
    body, content_type = stow_body(parts, **kwargs)
    return web.post(url, data=body, headers=bearer(token, **{"Content-Type": content_type}))


def _instances() -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Instance)).scalar_one()


def _sequence(response, tag):
    return response.get_json().get(tag, {}).get("Value", [])


def test_store_two_instances(web, api):
    first = ct_bytes(number=1, study_uid="1.2.826.0.1.5", sop_uid="1.2.826.0.1.5.1")
    second = ct_bytes(number=2, study_uid="1.2.826.0.1.5", sop_uid="1.2.826.0.1.5.2")
    response = _post(web, api.token_a, [first, second])
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/dicom+json"
    stored = _sequence(response, "00081199")
    assert [s["00081155"]["Value"][0] for s in stored] == ["1.2.826.0.1.5.1", "1.2.826.0.1.5.2"]
    assert stored[0]["00081150"]["Value"] == ["1.2.840.10008.5.1.4.1.1.2"]
    assert stored[0]["00081190"]["Value"][0].startswith(
        "http://localhost/dicom-web/studies/1.2.826.0.1.5/series/")
    assert response.get_json()["00081190"]["Value"] == [
        "http://localhost/dicom-web/studies/1.2.826.0.1.5"]
    assert "00081198" not in response.get_json()
    assert len(query.search(api.a, Level.IMAGE, {"StudyInstanceUID": "1.2.826.0.1.5"})) == 2
    assert query.search(api.b, Level.IMAGE, {}) == []
    # Re-sending is harmless: acknowledged again, stored once.
    assert _post(web, api.token_a, [first]).status_code == 200
    assert _instances() == 2


def test_garbage_only_is_409_and_stores_nothing(web, api):
    response = _post(web, api.token_a, [b"this is not DICOM", b"\0" * 200])
    assert response.status_code == 409
    failed = _sequence(response, "00081198")
    assert [f["00081197"]["Value"] for f in failed] == [[CANNOT_UNDERSTAND]] * 2
    assert "00081199" not in response.get_json()
    assert _instances() == 0
    failures = db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.action == "instance.store", AuditEvent.outcome == "failure")).scalars().all()
    assert len(failures) == 2


def test_truncated_file_stores_nothing(web, api, app):
    whole = ct_bytes(size=64)
    response = _post(web, api.token_a, [whole[:-1000]])
    assert response.status_code == 409
    [failed] = _sequence(response, "00081198")
    assert failed["00081197"]["Value"] == [CANNOT_UNDERSTAND]
    assert failed["00081155"]["Value"]  # the header was readable, so the SOP is named
    assert _instances() == 0


def test_mixed_good_and_bad_is_202(web, api):
    response = _post(web, api.token_a, [ct_bytes(), b"garbage", ct_bytes()])
    assert response.status_code == 202
    assert len(_sequence(response, "00081199")) == 2
    assert len(_sequence(response, "00081198")) == 1
    assert _instances() == 2


def test_study_in_url_must_match(web, api):
    good = ct_bytes(study_uid="1.2.826.0.1.7")
    other = ct_bytes(study_uid="1.2.826.0.1.8")
    response = _post(web, api.token_a, [good, other], url="/dicom-web/studies/1.2.826.0.1.7")
    assert response.status_code == 202
    [failed] = _sequence(response, "00081198")
    assert failed["00081197"]["Value"] == [STUDY_MISMATCH]
    assert _instances() == 1


def test_malformed_requests(web, api):
    data = ct_bytes()
    plain = web.post("/dicom-web/studies", data=data,
                     headers=bearer(api.token_a, **{"Content-Type": "application/dicom"}))
    assert plain.status_code == 415
    body, _ = stow_body([data])
    for content_type, status in [
        ('multipart/related; type="application/dicom+json"; boundary=b0undary-7f3a', 415),
        ('multipart/related; type="application/dicom"', 400),  # no boundary
        ('multipart/related; type="application/dicom"; boundary=not-in-body', 400),
    ]:
        response = web.post("/dicom-web/studies", data=body,
                            headers=bearer(api.token_a, **{"Content-Type": content_type}))
        assert response.status_code == status, content_type
        assert response.get_json()["error"]
    empty = web.post("/dicom-web/studies", data=b"--x--\r\n",
                     headers=bearer(api.token_a, **{"Content-Type":
                                                    "multipart/related; boundary=x"}))
    assert empty.status_code == 400
    # A body cut off mid-part: the complete parts stand, the rest is reported failed.
    body, content_type = stow_body([data, ct_bytes(size=64)])
    cut = web.post("/dicom-web/studies", data=body[:len(body) - 2000],
                   headers=bearer(api.token_a, **{"Content-Type": content_type}))
    assert cut.status_code == 202
    assert _instances() == 1
