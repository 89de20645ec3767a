"""Who may use DICOMweb: authentication, roles, tenancy, CSRF and CORS."""
from __future__ import annotations

import re

import pytest

from app.services import ingest
from app.services.audit import Actor
from tests.conftest import PASSWORD
from tests.dicomweb import Client, api, bearer, stow_body, web  # noqa: F401  (fixtures)
from tests.factory import ct_bytes

ACTOR = Actor("loader")


@pytest.fixture
def study_a(api):
    """One instance of HOSPA; the UIDs every URL below is built from."""
    return ingest.ingest(api.a, ct_bytes(), ACTOR)


def _urls(r) -> tuple[list[str], list[str]]:
    """(QIDO URLs, WADO URLs) naming HOSPA's study, series and instance."""
    study = f"/dicom-web/studies/{r.study_uid}"
    series = f"{study}/series/{r.series_uid}"
    instance = f"{series}/instances/{r.sop_uid}"
    qido = [f"/dicom-web/studies?StudyInstanceUID={r.study_uid}", f"{study}/series",
            f"{study}/instances", f"{series}/instances",
            f"/dicom-web/series/{r.series_uid}/instances",
            f"/dicom-web/series?SeriesInstanceUID={r.series_uid}",
            f"/dicom-web/instances?SOPInstanceUID={r.sop_uid}"]
    wado = [study, series, instance, f"{study}/metadata", f"{series}/metadata",
            f"{instance}/metadata", f"{instance}/frames/1", f"{instance}/bulkdata/7FE00010"]
    return qido, wado


def test_another_tenant_finds_nothing_anywhere(web, api, study_a):
    qido, wado = _urls(study_a)
    for url in qido:
        assert web.get(url, headers=bearer(api.token_a)).get_json() != [], url
        response = web.get(url, headers=bearer(api.token_b))
        assert response.status_code == 200 and response.get_json() == [], url
    for url in wado:
        assert web.get(url, headers=bearer(api.token_a)).status_code == 200, url
        response = web.get(url, headers=bearer(api.token_b))
        assert response.status_code == 404, url
        assert study_a.sop_uid.encode() not in response.get_data()


def test_no_or_bad_credentials_are_401(web, api, study_a):
    qido, wado = _urls(study_a)
    body, content_type = stow_body([ct_bytes()])
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic eDp5"}):
        for url in qido + wado:
            response = web.get(url, headers=headers)
            assert response.status_code == 401, url
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        response = web.post("/dicom-web/studies", data=body,
                            headers={**headers, "Content-Type": content_type})
        assert response.status_code == 401 and response.get_json()["error"]


def test_read_only_role_may_read_but_not_store(web, api, study_a):
    qido, _ = _urls(study_a)
    assert web.get(qido[0], headers=bearer(api.clinician_a)).status_code == 200
    body, content_type = stow_body([ct_bytes()])
    response = web.post("/dicom-web/studies", data=body,
                        headers=bearer(api.clinician_a, **{"Content-Type": content_type}))
    assert response.status_code == 403


def test_session_stow_needs_csrf_token_bearer_does_not(web, api, app):
    assert web.post("/login", data={"username": api.doctor_a,
                                    "password": PASSWORD}).status_code == 302
    page = web.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    app.config["WTF_CSRF_ENABLED"] = True
    body, content_type = stow_body([ct_bytes()])
    refused = web.post("/dicom-web/studies", data=body, headers={"Content-Type": content_type})
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]
    accepted = web.post("/dicom-web/studies", data=body,
                        headers={"Content-Type": content_type, "X-CSRFToken": token})
    assert accepted.status_code == 200
    assert web.get("/dicom-web/studies").status_code == 200  # reads need no token
    fresh = Client(app)  # no session cookie: the bearer token alone
    body, content_type = stow_body([ct_bytes()])
    assert fresh.post("/dicom-web/studies", data=body,
                      headers=bearer(api.token_a, **{"Content-Type": content_type})
                      ).status_code == 200


def test_cors_only_for_configured_origins(web, api, app):
    preflight = {"Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"}
    assert "Access-Control-Allow-Origin" not in \
        web.options("/dicom-web/studies", headers=preflight).headers
    app.config["PACS_CORS_ORIGINS"] = "https://viewer.example, https://other.example"
    response = web.options("/dicom-web/studies", headers=preflight)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "https://viewer.example"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]
    got = web.get("/dicom-web/studies",
                  headers=bearer(api.token_a, Origin="https://viewer.example"))
    assert got.headers["Access-Control-Allow-Origin"] == "https://viewer.example"
    denied = web.get("/dicom-web/studies",
                     headers=bearer(api.token_a, Origin="https://evil.example"))
    assert "Access-Control-Allow-Origin" not in denied.headers
    unauthenticated = web.get("/dicom-web/studies", headers={"Origin": "https://viewer.example"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["Access-Control-Allow-Origin"] == "https://viewer.example"
