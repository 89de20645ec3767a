"""The audit trail page: scoped to the institution, filtered with htmx."""
from __future__ import annotations

import re

from tests.web.conftest import html


def actions(page: str) -> list[str]:
    return re.findall(r'<small class="code muted">([^<]+)</small>', page)


def test_tenant_admin_sees_only_their_institution(seeded, client_for):
    client_for(seeded.b.doctor).get("/")  # B's doctor logs in and searches
    admin = client_for(seeded.a.admin)
    admin.get(f"/studies/{seeded.uids_a['PA1001']}")
    page = html(admin.get("/admin/audit"))
    assert 'hx-history="false"' in page
    assert seeded.a.admin in page
    assert seeded.b.doctor not in page and seeded.b.admin not in page
    assert "study.view" in actions(page) and "instance.store" in actions(page)
    assert "查看检查" in page and "影像入库" in page


def test_filter_by_action_and_outcome_with_htmx(seeded, client_for, app):
    app.test_client().post("/login", data={"username": seeded.a.doctor, "password": "wrong-pass"})
    admin = client_for(seeded.a.admin)
    response = admin.get("/admin/audit?action=login", headers={"HX-Request": "true", "HX-Target": "audit-rows"})
    body = html(response)
    assert response.status_code == 200 and "<html" not in body and "<table" in body
    assert "HX-Request" in response.headers["Vary"]
    assert set(actions(body)) == {"login"}
    assert "失败" in body
    body = html(admin.get("/admin/audit?action=login&outcome=failure"))
    assert set(actions(body)) == {"login"} and "共 1 条记录" in body
    body = html(admin.get(f"/admin/audit?actor={seeded.a.doctor}&action=study."))
    assert "instance.store" not in actions(body)
    assert html(admin.get("/admin/audit?since=2000-01-01&until=2000-01-02")).count("没有符合条件的记录") == 1
    assert admin.get("/admin/audit?since=yesterday").status_code == 400


def test_platform_admin_sees_every_institution(seeded, client_for):
    client_for(seeded.b.doctor)
    page = html(client_for(seeded.root).get("/admin/audit?action=login"))
    assert seeded.b.doctor in page and "HOSPB" in page and "机构" in page
