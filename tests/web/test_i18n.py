"""Simplified Chinese by default, English on request; the catalog is complete."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from flask_babel import force_locale

from app.web import messages
from tests.web.conftest import html

PO = Path(__file__).resolve().parents[2] / "app/translations/zh/LC_MESSAGES/messages.po"
sqlite_only = pytest.mark.parametrize("app", ["sqlite"], indirect=True)


@sqlite_only
def test_default_is_chinese_then_english(seeded, client_for):
    client = client_for(seeded.a.admin)
    page = html(client.get("/"))
    assert 'lang="zh-CN"' in page
    for word in ("检查列表", "患者姓名", "患者ID", "检查日期", "检查类型", "检查号", "影像数", "上传",
                 "审计日志", "退出登录", "近7天"):
        assert word in page, word
    response = client.get("/lang/en", headers={"Referer": "http://localhost/"})
    assert response.status_code == 302 and "lang=en" in response.headers["Set-Cookie"]
    page = html(client.get("/"))
    assert 'lang="en"' in page
    for word in ("Study list", "Patient name", "Accession No.", "Audit log", "Log out", "Last 7 days"):
        assert word in page, word
    assert "检查列表" not in page and "患者" not in page
    client.get("/lang/zh")
    assert "检查列表" in html(client.get("/"))


@sqlite_only
def test_english_error_messages(seeded, client):
    client.get("/lang/en")
    response = client.post("/login", data={"username": seeded.a.doctor, "password": "wrong-pass"})
    assert "Wrong username or password" in html(response)
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "Not found" in html(response)


@sqlite_only
def test_unknown_language_falls_back_to_chinese(client):
    client.get("/lang/xx")
    assert "登录" in html(client.get("/login"))
    assert "登录" in html(client.get("/login?lang=fr"))
    assert "Log in" in html(client.get("/login?lang=en"))


@sqlite_only
def test_error_pages_are_chinese(seeded, client_for, client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "未找到" in html(response) and "<html" in html(response)
    response = client_for(seeded.a.doctor).get("/studies/1.2.3.4")
    assert response.status_code == 404 and "未找到该检查" in html(response)


@sqlite_only
def test_service_messages_are_translated(app):
    with app.test_request_context("/"):
        assert messages.localise("wrong username or password") == "用户名或密码错误"
        assert messages.localise("username dr-li is taken") == "用户名 dr-li 已被占用"
        assert messages.localise("cannot parse DICOM: EOFError") == "无法解析 DICOM 文件（EOFError）"
        assert messages.localise("something new") == "Something new"
    with app.test_request_context("/"), force_locale("en"):
        assert messages.localise("username dr-li is taken") == "Username dr-li is taken"


def test_every_message_is_translated():
    with open(PO, "rb") as f:
        catalog = read_po(f)
    assert catalog.num_plurals == 1  # Chinese has one plural form
    for m in catalog:
        if not m.id:
            continue
        ids = " ".join(m.id) if isinstance(m.id, (tuple, list)) else m.id
        strings = [m.string] if isinstance(m.string, str) else list(m.string)
        assert all(strings) and not m.fuzzy, f"untranslated: {ids}"
        # Placeholders survive translation.
        for token in set(re.findall(r"%\(\w+\)s", ids)):
            assert all(token in s for s in strings), (ids, token)


@sqlite_only
def test_language_switch_returns_only_to_this_site(client):
    for referrer, expected in [("http://localhost/admin/audit?action=login", "/admin/audit?action=login"),
                               ("https://evil.example/", "/"), ("//evil.example/x", "/"),
                               ("/\\evil.example", "/"), (None, "/")]:
        headers = {"Referer": referrer} if referrer else {}
        response = client.get("/lang/en", headers=headers)
        assert response.status_code == 302 and response.headers["Location"] == expected, referrer


@sqlite_only
def test_unexpected_error_is_a_readable_500(app, client):
    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/boom-for-test", "boom_for_test", boom)
    response = client.get("/boom-for-test")
    body = html(response)
    assert response.status_code == 500
    assert "服务器错误" in body and "已记录" in body
    assert "secret internals" not in body and "Traceback" not in body
    partial = client.get("/boom-for-test", headers={"HX-Request": "true"})
    assert partial.status_code == 500 and "<html" not in html(partial) and "服务器错误" in html(partial)
