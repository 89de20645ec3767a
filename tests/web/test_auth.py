"""Login with lockout, logout, registration, CSRF, session cookie."""
from __future__ import annotations

import re

import pytest

from tests.conftest import PASSWORD
from tests.web.conftest import html

pytestmark = pytest.mark.parametrize("app", ["sqlite"], indirect=True)


def test_login_page_is_chinese_and_has_a_token(client):
    page = html(client.get("/login"))
    assert "登录" in page and "用户名" in page and "密码" in page
    assert 'name="csrf_token"' in page and 'lang="zh-CN"' in page


def test_wrong_password_is_401_with_a_message(seeded, client):
    response = client.post("/login", data={"username": seeded.a.doctor, "password": "nope-nope"})
    assert response.status_code == 401
    assert "用户名或密码错误" in html(response)
    assert seeded.a.doctor in html(response)  # the username stays filled in
    response = client.post("/login", data={"username": "nobody", "password": "nope-nope"})
    assert response.status_code == 401 and "用户名或密码错误" in html(response)


def test_five_failures_lock_the_account(seeded, client):
    for _ in range(5):
        assert client.post("/login", data={"username": seeded.a.doctor,
                                           "password": "wrong-pass"}).status_code == 401
    response = client.post("/login", data={"username": seeded.a.doctor, "password": PASSWORD})
    assert response.status_code == 401
    assert "账号已被临时锁定" in html(response)
    assert client.get("/").status_code == 302  # still not logged in


def test_login_goes_back_to_next_but_never_off_site(seeded, client):
    response = client.post("/login?next=/upload", data={"username": seeded.a.doctor, "password": PASSWORD})
    assert response.headers["Location"] == "/upload"
    client.post("/logout")
    for target in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        response = client.post("/login", query_string={"next": target},
                               data={"username": seeded.a.doctor, "password": PASSWORD})
        assert response.headers["Location"] == "/", target
        client.post("/logout")


def test_platform_admin_lands_on_institutions(seeded, client):
    response = client.post("/login", data={"username": seeded.root, "password": PASSWORD})
    assert response.headers["Location"] == "/admin/tenants"
    assert client.get("/login").headers["Location"] == "/admin/tenants"


def test_logout_is_post_and_ends_the_session(seeded, client_for):
    client = client_for(seeded.a.doctor)
    assert client.get("/").status_code == 200
    assert client.get("/logout").status_code == 405
    assert client.get("/").status_code == 200  # a GET did not log out
    response = client.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_session_cookie_is_httponly_and_expires(seeded, app, client):
    response = client.post("/login", data={"username": seeded.a.doctor, "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Expires=" in cookie
    assert app.config["PERMANENT_SESSION_LIFETIME"].total_seconds() <= 8 * 3600


def test_csrf_missing_token_is_a_readable_400(seeded, app, client):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/login", data={"username": seeded.a.doctor, "password": PASSWORD})
    assert response.status_code == 400
    body = html(response)
    assert "页面已过期" in body and "<html" in body and "Traceback" not in body and "CSRF" not in body
    # With the token from the form it works.
    token = re.search(r'name="csrf_token" value="([^"]+)"', html(client.get("/login"))).group(1)
    response = client.post("/login", data={"username": seeded.a.doctor, "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 302
    # htmx sends the token from the meta tag as X-CSRFToken.
    page = html(client.get("/upload"))
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    headers = {"HX-Request": "true", "HX-Target": "upload-result"}
    assert client.post("/upload", data={}, headers=headers).status_code == 400  # no token
    response = client.post("/upload", data={}, headers=dict(headers, **{"X-CSRFToken": meta}))
    assert response.status_code == 400 and "请至少选择一个文件" in html(response)
    assert client.post("/logout").status_code == 400  # logout needs the token too
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302


def test_every_form_carries_a_csrf_token(seeded, client_for):
    admin = client_for(seeded.a.admin)
    for url in ("/", "/upload", "/admin/users", "/admin/peers", "/admin/audit"):
        page = html(admin.get(url))
        for form in re.findall(r"<form\b.*?</form>", page, re.S):
            if re.search(r'method="post"', form, re.I):
                assert 'name="csrf_token"' in form, (url, form[:200])


def test_register_an_institution(app, client):
    form = {"code": "HOSPC", "name": "第三人民医院", "ae_title": "HOSPC", "contact": "李主任",
            "username": "hospc-admin", "password": "long-enough-1"}
    response = client.post("/register", data=form)
    assert response.status_code == 302
    assert "申请已提交" in html(client.get("/login"))
    # Pending: cannot log in yet.
    response = client.post("/login", data={"username": "hospc-admin", "password": "long-enough-1"})
    assert response.status_code == 401
    # Same code again: a readable error, the form keeps its values.
    response = client.post("/register", data=dict(form, username="other-admin"))
    assert response.status_code == 400
    assert "机构代码 HOSPC 已被占用" in html(response) and "第三人民医院" in html(response)
    response = client.post("/register", data=dict(form, code="HOSPD", ae_title="X", password="short"))
    assert response.status_code == 400 and "密码至少需要 8 个字符" in html(response)


def test_platform_admin_approves(seeded, client_for, client):
    client.post("/register", data={"code": "HOSPC", "name": "第三人民医院", "ae_title": "HOSPC",
                                   "username": "hospc-admin", "password": "long-enough-1"})
    root = client_for(seeded.root)
    page = html(root.get("/admin/tenants"))
    assert "待审核" in page and "第三人民医院" in page
    response = root.post("/admin/tenants/HOSPC/status", data={"status": "approved"})
    assert response.status_code == 302
    assert "已批准" in html(root.get("/admin/tenants"))
    assert client.post("/login", data={"username": "hospc-admin",
                                       "password": "long-enough-1"}).status_code == 302
    assert root.post("/admin/tenants/HOSPC/status", data={"status": "bogus"}).status_code == 400
    assert root.post("/admin/tenants/NOPE/status", data={"status": "approved"}).status_code == 404


def test_tenant_admin_adds_users_and_peers(seeded, client_for):
    admin = client_for(seeded.a.admin)
    response = admin.post("/admin/users", data={"username": "dr-wang", "display_name": "王医生",
                                                "role": "radiologist", "password": "long-enough-1"})
    assert response.status_code == 302
    page = html(admin.get("/admin/users"))
    assert "dr-wang" in page and "王医生" in page and "诊断医师" in page
    response = admin.post("/admin/users", data={"username": "dr-wang", "role": "radiologist",
                                                "password": "long-enough-1"})
    assert response.status_code == 400 and "用户名 dr-wang 已被占用" in html(response)
    response = admin.post("/admin/peers", data={"ae_title": "WORKSTATION", "host": "10.0.0.5",
                                                "port": "104", "description": "阅片工作站"})
    assert response.status_code == 302
    assert "WORKSTATION" in html(admin.get("/admin/peers"))
    response = admin.post("/admin/peers", data={"ae_title": "W2", "host": "h", "port": "abc"})
    assert response.status_code == 400 and "端口必须是数字" in html(response)


def test_tenant_admin_restricts_callers_to_registered_peers(seeded, client_for):
    from app.extensions import db
    from app.models import Tenant

    admin = client_for(seeded.a.admin)
    assert 'name="restrict" value="1"' in html(admin.get("/admin/peers"))
    assert admin.post("/admin/peers", data={"action": "callers", "restrict": "1"}).status_code == 302
    assert 'name="restrict" value="0"' in html(admin.get("/admin/peers"))
    db.session.expire_all()
    a, b = (db.session.get(Tenant, t.tenant.id) for t in (seeded.a, seeded.b))
    assert a.restrict_calling_aes and not b.restrict_calling_aes  # the other tenant is untouched
    doctor = client_for(seeded.a.doctor)
    assert doctor.post("/admin/peers", data={"action": "callers", "restrict": "0"}).status_code == 403
    assert admin.post("/admin/peers", data={"action": "callers", "restrict": "0"}).status_code == 302
    db.session.expire_all()
    assert not db.session.get(Tenant, seeded.a.tenant.id).restrict_calling_aes
