"""DICOMweb rendered and thumbnail resources (PS3.18 §8.3.5, §10.4)."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pytest
import sqlalchemy as sa
from PIL import Image

from app.demo.synthetic import StudySpec, chest_ct, to_bytes, xa_cine
from app.extensions import db
from app.models import AuditEvent
from app.services import ingest
from app.services.audit import Actor
from render_farm import (
    FitMode,
    ImageFormat,
    ViewState,
    WindowFunction,
    open_source,
    render,
)
from tests.dicomweb import api, bearer, sqlite_api, sqlite_web, web  # noqa: F401

LOADER = Actor("loader")


@dataclass
class Data:
    study: str
    series: str
    sops: list[str]
    ct: list[bytes]
    xa_study: str
    xa_series: str
    xa_sop: str
    xa: bytes

    @property
    def instance(self) -> str:
        return f"/dicom-web/studies/{self.study}/series/{self.series}/instances/{self.sops[1]}"

    @property
    def cine(self) -> str:
        return f"/dicom-web/studies/{self.xa_study}/series/{self.xa_series}/instances/{self.xa_sop}"


def _load(tenant) -> Data:
    ct = [to_bytes(ds) for ds in chest_ct(StudySpec(), n_slices=3, rows=64, cols=64)]
    stored = [ingest.ingest(tenant, data, LOADER) for data in ct]
    xa = to_bytes(xa_cine(StudySpec(seed=1), frames=8, rows=64, cols=64))
    cine = ingest.ingest(tenant, xa, LOADER)
    return Data(stored[0].study_uid, stored[0].series_uid, [s.sop_uid for s in stored], ct,
                cine.study_uid, cine.series_uid, cine.sop_uid, xa)


@pytest.fixture
def data(sqlite_api) -> Data:
    return _load(sqlite_api.a)


def _get(client, url: str, token: str, **headers: str):
    return client.get(url, headers=bearer(token, **headers))


def _image(response) -> Image.Image:
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return Image.open(io.BytesIO(response.get_data()))


def _local(data: bytes, state: ViewState) -> bytes:
    return render(open_source(data), state)[0]


def test_every_resource_renders(sqlite_web, sqlite_api, data):
    base = f"/dicom-web/studies/{data.study}"
    urls = {
        data.instance + "/rendered": (64, 64),
        data.instance + "/frames/1/rendered": (64, 64),
        f"{base}/series/{data.series}/rendered": (64, 64),
        f"{base}/rendered": (64, 64),
        f"{base}/thumbnail": (128, 128),
        f"{base}/series/{data.series}/thumbnail": (128, 128),
        data.instance + "/thumbnail": (128, 128),
    }
    for url, size in urls.items():
        response = _get(sqlite_web, url, sqlite_api.token_a)
        image = _image(response)
        assert response.mimetype == "image/jpeg" and image.format == "JPEG", url
        assert image.size == size, url
        assert "Accept" in response.headers["Vary"]
    # A series/study renders its first image; the thumbnail its middle one.
    first = _get(sqlite_web, f"{base}/rendered", sqlite_api.token_a).get_data()
    assert first == _local(data.ct[0], ViewState())
    assert _get(sqlite_web, data.instance + "/rendered", sqlite_api.token_a).get_data() == \
        _local(data.ct[1], ViewState())
    events = db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent)
                                .where(AuditEvent.action == "instance.render")).scalar_one()
    assert events == len(urls) + 2  # one per request


def test_window_viewport_and_quality(sqlite_web, sqlite_api, data):
    def get(query: str, accept: str = "image/jpeg"):
        return _get(sqlite_web, f"{data.instance}/rendered?{query}", sqlite_api.token_a,
                    Accept=accept)

    lung = get("window=-600,1500").get_data()
    assert lung == _local(data.ct[1], ViewState(window_center=-600, window_width=1500))
    sigmoid = get("window=-600,1500,sigmoid").get_data()
    assert sigmoid == _local(data.ct[1], ViewState(window_center=-600, window_width=1500,
                                                   window_function=WindowFunction.SIGMOID))
    assert get("window=-600,1500,linear-exact").status_code == 200
    assert len(get("quality=10").get_data()) < len(get("quality=95").get_data())
    assert _image(get("viewport=32,32")).size == (32, 32)
    assert _image(get("viewport=100,50")).size == (50, 50)  # aspect kept, fits inside
    # A source region at 1:1 is the crop of the full image; a negative width flips it.
    full = np.asarray(_image(get("", "image/png")))
    region = np.asarray(_image(get("viewport=32,24,16,8,32,24", "image/png")))
    assert np.array_equal(region, full[8:32, 16:48])
    flipped = np.asarray(_image(get("viewport=32,24,16,8,-32,24", "image/png")))
    assert np.array_equal(flipped, full[8:32, 16:48][:, ::-1])
    zoomed = _image(get("viewport=64,64,16,16,32,32", "image/png"))
    assert zoomed.size == (64, 64)
    assert get("annotation=patient,technique").status_code == 200  # accepted, not burned in
    assert get("charset=utf-8&unknown=1").status_code == 200  # unknown parameters ignored


def test_media_types(sqlite_web, sqlite_api, data):
    url = data.instance + "/rendered"
    for accept, media_type, fmt in (("image/png", "image/png", "PNG"),
                                    ("image/webp", "image/webp", "WEBP"),
                                    ("image/gif", "image/gif", "GIF"),
                                    ("*/*", "image/jpeg", "JPEG"),
                                    ("image/*", "image/jpeg", "JPEG"),
                                    ("text/html, image/png;q=0.5", "image/png", "PNG")):
        response = _get(sqlite_web, url, sqlite_api.token_a, Accept=accept)
        assert response.mimetype == media_type and _image(response).format == fmt, accept
    lossless = _get(sqlite_web, url, sqlite_api.token_a, Accept="image/png").get_data()
    assert lossless == _local(data.ct[1], ViewState(format=ImageFormat.PNG))
    by_param = _get(sqlite_web, url + "?accept=image/png", sqlite_api.token_a,
                    Accept="image/jpeg")
    assert by_param.mimetype == "image/png"
    for accept in ("application/json", 'multipart/related; type="application/dicom"'):
        assert _get(sqlite_web, url, sqlite_api.token_a, Accept=accept).status_code == 406


def test_multi_frame_instance_as_animated_gif(sqlite_web, sqlite_api, data):
    animated = _image(_get(sqlite_web, data.cine + "/rendered", sqlite_api.token_a,
                           Accept="image/gif"))
    assert animated.format == "GIF" and animated.n_frames == 8 and animated.size == (64, 64)
    assert animated.info["duration"] == 70  # Frame Time 66.7 ms (15 fps), in centiseconds
    first = _get(sqlite_web, data.cine + "/rendered", sqlite_api.token_a, Accept="image/jpeg")
    assert first.get_data() == _local(data.xa, ViewState())
    third = _get(sqlite_web, data.cine + "/frames/3/rendered", sqlite_api.token_a)
    assert third.get_data() == _local(data.xa, ViewState(frame=2))
    single = _image(_get(sqlite_web, data.cine + "/frames/3/rendered", sqlite_api.token_a,
                         Accept="image/gif"))
    assert getattr(single, "n_frames", 1) == 1
    thumb = _get(sqlite_web, data.cine + "/thumbnail?viewport=32,32", sqlite_api.token_a)
    assert thumb.get_data() == _local(data.xa, ViewState(frame=4, width=32, height=32,
                                                          fit=FitMode.PIXEL,
                                                          zoom=0.5, quality=80))
    assert _get(sqlite_web, data.cine + "/frames/9/rendered", sqlite_api.token_a) \
        .status_code == 404


MALFORMED = [
    "window=abc", "window=40", "window=40,0", "window=40,400,cubic", "window=40,400,linear,x",
    "viewport=0,10", "viewport=10", "viewport=a,b", "viewport=10,10,1,2", "viewport=1.5,10",
    "viewport=10,10,100,0,10,10", "viewport=10,10,0,0,0,10", "quality=0", "quality=101",
    "quality=abc", "annotation=foo", "annotation=", "viewport=8192,8192,0,0,0.5,0.5",
]


def test_malformed_parameters_are_400(sqlite_web, sqlite_api, data):
    for query in MALFORMED:
        response = _get(sqlite_web, f"{data.instance}/rendered?{query}", sqlite_api.token_a)
        assert response.status_code == 400, query
        assert response.is_json and response.get_json()["error"], query


def test_malformed_frame_numbers(sqlite_web, sqlite_api, data):
    for frames, status in (("0", 400), ("1,2", 400), ("x", 400), ("2", 404)):
        url = f"{data.instance}/frames/{frames}/rendered"
        assert _get(sqlite_web, url, sqlite_api.token_a).status_code == status, frames


def test_tenancy_and_authentication(web, api):
    data = _load(api.a)
    base = f"/dicom-web/studies/{data.study}"
    urls = [data.instance + "/rendered", data.instance + "/frames/1/rendered",
            f"{base}/series/{data.series}/rendered", f"{base}/rendered", f"{base}/thumbnail",
            f"{base}/series/{data.series}/thumbnail", data.instance + "/thumbnail"]
    for url in urls:
        assert _get(web, url, api.token_b).status_code == 404, url
        anonymous = web.get(url)
        assert anonymous.status_code == 401, url
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert _get(web, url, api.token_a).status_code == 200, url
