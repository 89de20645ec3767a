"""One walk over every protected URL: anonymous, wrong role, and another institution's ids."""
from __future__ import annotations

import re
import tempfile
from urllib.parse import quote, urlparse

import pytest
from flask import url_for

from app import create_app
from app.services import permissions
from tests.web.conftest import html

# Public pages, the language switch, logout (tested in test_auth) and DICOMweb (tested elsewhere).
PUBLIC = {"static", "auth.login", "auth.register", "auth.logout", "set_language"}


def _rules() -> list[tuple[str, str, str]]:
    """``(endpoint, rule, method)`` for every protected URL of the app."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "x",
                          "PACS_DATA_DIR": tmp, "STORAGE_URL": f"file://{tmp}/archive"})
    found = []
    for rule in app.url_map.iter_rules():
        # /frames and /vframes are authorised by a signed grant, not a session:
        # tests/render_farm/test_frames.py and tests/web/test_views3d.py
        if rule.endpoint in PUBLIC or rule.rule.startswith(("/dicom-web", "/frames", "/vframes")):
            continue
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        found.append((rule.endpoint, rule.rule, "GET" if "GET" in methods else methods[0]))
    return sorted(found)


RULES = _rules()


def _url(app, seeded, endpoint: str, rule: str) -> str:
    """Build the URL with tenant A's identifiers."""
    values = {}
    for name in re.findall(r"<(?:[^:<>]+:)?([^<>]+)>", rule):
        if name.endswith("uid"):
            values[name] = seeded.uids_a["PA1001"]
        elif name == "code":
            values[name] = seeded.a.code
        else:
            values[name] = "x"
    with app.test_request_context():
        return url_for(endpoint, **values)


def _call(client, method: str, url: str):
    return client.open(url, method=method, data={} if method != "GET" else None)


def test_the_walk_covers_the_pages():
    endpoints = {endpoint for endpoint, _, _ in RULES}
    assert {"studies.index", "studies.detail", "studies.upload", "admin.tenants",
            "admin.users_page", "admin.peers_page", "admin.audit_page"} <= endpoints


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
@pytest.mark.parametrize("endpoint, rule, method", RULES, ids=[r[0] for r in RULES])
def test_anonymous_and_wrong_role(app, seeded, client_for, endpoint, rule, method):
    url = _url(app, seeded, endpoint, rule)
    # Anonymous: to the login page, coming back here afterwards.
    response = _call(app.test_client(), method, url)
    assert response.status_code == 302, (endpoint, response.status_code)
    location = urlparse(response.headers["Location"])
    assert location.path == "/login"
    assert f"next={quote(urlparse(url).path, safe='')}" in location.query
    # An htmx swap with an expired session sends the whole page to the login form.
    response = app.test_client().open(url, method=method,
                                      headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/"})
    assert response.headers.get("HX-Redirect", "").startswith("/login?next=")
    # Wrong role: a readable 403 page.
    permission = getattr(app.view_functions[endpoint], "required_permission", None)
    assert permission, f"{endpoint} is not protected by permission_required"
    candidates = [(seeded.a.doctor, "radiologist"), (seeded.root, "platform-admin")]
    username = next(u for u, role in candidates if not permissions.allowed(role, permission))
    response = _call(client_for(username), method, url)
    assert response.status_code == 403, (endpoint, username)
    body = html(response)
    assert "无权访问" in body and "您没有访问此页面的权限" in body and "<html" in body
    assert "PA1001" not in body and "张三" not in body


@pytest.mark.parametrize("endpoint, rule, method", [r for r in RULES if r[2] == "GET"],
                         ids=[r[0] for r in RULES if r[2] == "GET"])
def test_other_institution_sees_nothing_of_a(app, seeded, client_for, endpoint, rule, method):
    url = _url(app, seeded, endpoint, rule)
    response = client_for(seeded.b.admin).get(url)
    body = html(response)
    if "<" in rule:  # an identifier of A in the URL: not found (or not allowed), never shown
        assert response.status_code in (403, 404), (endpoint, response.status_code)
    if "uid>" in rule:
        assert response.status_code == 404
        assert "未找到" in body
    for marker in ("PA1001", "张三", "Zhang^San", "胸部CT平扫", seeded.a.admin, seeded.a.doctor):
        assert marker not in body, (endpoint, marker)
