"""Viewer frame delivery: signed grants, state in the URL, ETags, tenancy (in-process farm)."""
from __future__ import annotations

import io
import time

import pytest
import sqlalchemy as sa
from PIL import Image

from app.demo.synthetic import StudySpec, chest_ct, to_bytes
from app.extensions import db
from app.models import AuditEvent
from app.services import ingest, rendering, tenants, users
from app.services.audit import Actor
from render_farm import ImageFormat, ViewState, open_source, render
from tests.conftest import PASSWORD
from tests.factory import ct_bytes

LOADER = Actor("loader")


class Setup:
    """HOSPA with a 3-slice 64² CT and a doctor; HOSPB with its own doctor."""

    def __init__(self) -> None:
        self.a = tenants.register("HOSPA", "HOSPA 医院", "HOSPA", approve=True)
        self.b = tenants.register("HOSPB", "HOSPB 医院", "HOSPB", approve=True)
        self.doctor_a = users.create(self.a, "hospa-doctor", PASSWORD, "radiologist")
        self.doctor_b = users.create(self.b, "hospb-doctor", PASSWORD, "radiologist")
        self.data = [to_bytes(ds) for ds in chest_ct(StudySpec(), n_slices=3, rows=64, cols=64)]
        results = [ingest.ingest(self.a, data, LOADER) for data in self.data]
        self.study, self.sops = results[0].study_uid, [r.sop_uid for r in results]

    def actor(self, user) -> Actor:
        return Actor(user.username, "user", "127.0.0.1", user.id, user.role)

    def token(self, **kwargs) -> str:
        return rendering.grant(self.a, self.actor(self.doctor_a), self.study, **kwargs)


@pytest.fixture
def setup(sqlite_app) -> Setup:
    return Setup()


@pytest.fixture
def web(sqlite_app):
    return sqlite_app.test_client()


def _image(response) -> Image.Image:
    return Image.open(io.BytesIO(response.get_data()))


def test_frame_renders_the_state_in_the_url(setup, web):
    token = setup.token()
    state = ViewState(frame=0, window_center=-600, window_width=1500, width=100, height=80)
    url = rendering.frame_url(token, setup.sops[1], state)
    assert url.startswith(f"/frames/{token}/{setup.sops[1]}/0?")
    response = web.get(url)  # no session: the grant alone authorises
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.mimetype == "image/jpeg"
    assert _image(response).size == (100, 80)
    assert response.headers["Cache-Control"].startswith("private, max-age=")
    # The same bytes as rendering the stored file directly, in process.
    expected, _ = render(open_source(setup.data[1]), state)
    assert response.get_data() == expected


def test_lossless_png_state(setup, web):
    state = ViewState(format=ImageFormat.PNG)
    response = web.get(rendering.frame_url(setup.token(), setup.sops[0], state))
    assert response.status_code == 200 and response.mimetype == "image/png"
    image = _image(response)
    assert image.format == "PNG" and image.size == (64, 64) and image.mode == "L"


def test_etag_and_304_without_rendering_or_database(setup, web, monkeypatch):
    url = rendering.frame_url(setup.token(), setup.sops[2], ViewState(width=32, height=32))
    first = web.get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"')

    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        again = web.get(url)  # the instance lookup is cached: no query per frame
        assert again.status_code == 200 and again.headers["ETag"] == etag
        monkeypatch.setattr(rendering, "render", lambda *a: pytest.fail("rendered for a 304"))
        cached = web.get(url, headers={"If-None-Match": etag})
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert cached.status_code == 304 and cached.get_data() == b""
    assert cached.headers["ETag"] == etag
    assert statements == []
    monkeypatch.undo()
    other = web.get(url.replace("w=32", "w=33"), headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["ETag"] != etag  # another state


def test_tampered_forged_and_expired_grants_are_403(setup, web):
    token = setup.token()
    payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    other_payload = rendering._b64(f"{setup.b.id}.{setup.doctor_b.id}.9999999999.{setup.study}"
                                   .encode())
    for bad in (f"{payload}.{flipped}", f"{other_payload}.{signature}", "garbage", "a.b.c",
                rendering._b64(b"1.1.9999999999.1.2") + ".AAAA", f"{payload}.签名",
                f"{payload}x.{signature}"):
        response = web.get(f"/frames/{bad}/{setup.sops[0]}/0")
        assert response.status_code == 403, bad
    expired = setup.token(now=time.time() - 3 * 3600)
    response = web.get(f"/frames/{expired}/{setup.sops[0]}/0")
    assert response.status_code == 403
    assert "已过期" in response.get_data(as_text=True)  # 图像链接已过期 (Chinese by default)
    short = setup.token(max_age=1)
    assert web.get(f"/frames/{short}/{setup.sops[0]}/0").status_code == 200
    with pytest.raises(Exception) as caught:
        rendering.verify(short, now=time.time() + 2)
    assert caught.value.http_status == 403


def test_bad_state_is_400_with_a_readable_message(setup, web):
    base = f"/frames/{setup.token()}/{setup.sops[0]}"
    for query, words in (("ww=abc&wc=40", "ww: expected a number"),
                         ("wc=40", "must be given together"),
                         ("zoom=2", "unknown viewport parameter"),
                         ("f=2", "disagrees")):
        response = web.get(f"{base}/0?{query}")
        assert response.status_code == 400, query
        assert words in response.get_data(as_text=True), query
    assert web.get(f"{base}/7").status_code == 404  # no frame 7 in a single-frame CT


def test_another_tenants_grant_cannot_reach_the_instance(app, web_any):
    """Tenant B holds a study with the same Study UID (UIDs are unique per tenant only)."""
    setup = Setup()
    own = ingest.ingest(setup.b, ct_bytes(study_uid=setup.study, size=32), LOADER)
    token_b = rendering.grant(setup.b, setup.actor(setup.doctor_b), setup.study)
    for sop in setup.sops:
        assert web_any.get(f"/frames/{token_b}/{sop}/0").status_code == 404
    assert web_any.get(f"/frames/{token_b}/{own.sop_uid}/0").status_code == 200
    token_a = setup.token()
    assert web_any.get(f"/frames/{token_a}/{own.sop_uid}/0").status_code == 404
    with pytest.raises(Exception) as caught:  # B has no study of A's other UIDs
        rendering.grant(setup.b, setup.actor(setup.doctor_b), "1.2.3.4")
    assert caught.value.http_status == 404


@pytest.fixture
def web_any(app):
    return app.test_client()


def test_grant_is_audited_once_and_frames_are_not(setup, web):
    token = setup.token()
    for frame_sop in setup.sops:
        assert web.get(f"/frames/{token}/{frame_sop}/0").status_code == 200
    actions = db.session.execute(sa.select(AuditEvent.action, AuditEvent.object_uid)
                                 .where(AuditEvent.action.like("study.view%"))).all()
    assert actions == [("study.view", setup.study)]
    assert not db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.action.like("%render%"))).first()
