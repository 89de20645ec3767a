"""Frame responses without cookies, translated render errors, projection X-ray aspect, favicon."""
from __future__ import annotations

from pydicom.uid import DigitalXRayImageStorageForPresentation

from app.services import ingest, rendering
from tests.factory import ct_bytes, ct_dataset, to_bytes
from tests.web.conftest import html
from tests.web.test_viewer import ACTOR, frame_urls, loaded  # noqa: F401 (fixture)


def test_frames_never_set_a_session_cookie(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    page = client.get(f"/viewer/{loaded.study}")
    assert "Set-Cookie" in page.headers  # pages do refresh the idle session
    url = frame_urls(html(page))[0]
    for response in (client.get(url), client.get(url, headers={"If-None-Match": "nope"})):
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert "Set-Cookie" not in response.headers
        assert "Cookie" not in response.headers.get("Vary", "")
    etag = client.get(url).headers["ETag"]
    cached = client.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304 and "Set-Cookie" not in cached.headers
    # Without any session (a frame URL is self-authorising) there is still no cookie.
    anonymous = app.test_client().get(url)
    assert anonymous.status_code == 200 and "Set-Cookie" not in anonymous.headers
    # An error answer neither.
    assert "Set-Cookie" not in app.test_client().get("/frames/x.y/1.2/0").headers


def test_render_errors_are_translated(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    url = frame_urls(html(client.get(f"/viewer/{loaded.study}")))[0]
    path = url.split("?")[0]
    bad = client.get(f"{path}?ww=-5&wc=1")
    assert bad.status_code == 400 and "视图参数有误" in html(bad) and "Traceback" not in html(bad)
    forged = client.get("/frames/bm90.c2ln/1.2.3/0")
    assert forged.status_code == 403 and "图像链接无效，请重新打开阅片器" in html(forged)
    missing_frame = client.get(path.rsplit("/", 1)[0] + "/7")
    assert missing_frame.status_code == 404 and "没有该帧" in html(missing_frame)
    client.get("/lang/en")
    english = client.get(f"{path}?ww=-5&wc=1")
    assert "Bad viewport parameters" in html(english)


def test_projection_xray_aspect_comes_from_imager_pixel_spacing(app, loaded):
    ds = ct_dataset(size=32, Modality="DX", SOPClassUID=DigitalXRayImageStorageForPresentation,
                    ImagerPixelSpacing=[0.2, 0.1])
    del ds.PixelSpacing, ds.ImagePositionPatient, ds.ImageOrientationPatient
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    stored = ingest.ingest(loaded.a.tenant, to_bytes(ds), ACTOR)
    target = rendering.instance_target(loaded.a.tenant, stored.study_uid, "", stored.sop_uid)
    assert target.aspect == 2.0  # rows are twice as far apart as columns
    square = ingest.ingest(loaded.a.tenant, ct_bytes(size=16), ACTOR)
    assert rendering.instance_target(loaded.a.tenant, square.study_uid, "", square.sop_uid).aspect == 1.0


def test_favicon_is_linked_and_served(app, loaded, client_for):
    client = client_for(loaded.a.doctor)
    for page in (client.get("/"), client.get(f"/viewer/{loaded.study}")):
        assert '<link rel="icon" href="/static/favicon.svg"' in html(page)
        assert '<link rel="icon" href="/static/favicon-32.png"' in html(page)  # browsers without SVG icons
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
    assert client.get("/static/favicon-32.png").mimetype == "image/png"


def test_stack_json_is_gzipped_for_browsers_that_take_it(app, loaded, client_for):
    import gzip
    import json

    client = client_for(loaded.a.doctor)
    url = f"/viewer/{loaded.study}/series/{loaded.series}"
    plain = client.get(url)
    assert "Content-Encoding" not in plain.headers
    packed = client.get(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
    unpacked, expected = json.loads(gzip.decompress(packed.data)), plain.get_json()
    assert unpacked["images"] == expected["images"] and unpacked["geoms"] == expected["geoms"]
    assert len(packed.data) < len(plain.data) / 2
