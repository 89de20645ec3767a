"""WADO-RS: instances, transfer syntax negotiation, metadata, frames, bulk data."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom import encaps
from pydicom.data import get_testdata_file
from pydicom.pixels import pixel_array
from pydicom.uid import ImplicitVRLittleEndian

from app.services import ingest
from app.services.audit import Actor
from tests.dicomweb import (DICOM_ANY, api, bearer, parts_of, sqlite_api,  # noqa: F401
                            sqlite_web, web)
from tests.factory import ct_bytes, ct_dataset, to_bytes

ACTOR = Actor("loader")
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


@pytest.fixture
def series(api):
    """A two-instance series of HOSPA; returns (study, series, [(sop, bytes)])."""
    first = ct_bytes(number=1)
    r = ingest.ingest(api.a, first, ACTOR)
    second = ct_bytes(study_uid=r.study_uid, series_uid=r.series_uid, number=2)
    r2 = ingest.ingest(api.a, second, ACTOR)
    return r.study_uid, r.series_uid, [(r.sop_uid, first), (r2.sop_uid, second)]


def _store_file(tenant, path: str | Path):
    data = Path(path).read_bytes()
    return ingest.ingest(tenant, data, ACTOR), data


def test_study_series_instance_stream_stored_bytes(web, api, series):
    study, series_uid, instances = series
    base = f"/dicom-web/studies/{study}"
    for url, expected in ((base, instances), (f"{base}/series/{series_uid}", instances),
                          (f"{base}/series/{series_uid}/instances/{instances[1][0]}",
                           instances[1:])):
        response = web.get(url, headers=bearer(api.token_a, Accept=DICOM_ANY))
        assert response.status_code == 200
        assert response.content_length == len(response.get_data())
        parts = parts_of(response)
        assert [body for _, body in parts] == [data for _, data in expected]
        assert all(ct == f"application/dicom; transfer-syntax={EXPLICIT}" for ct, _ in parts)
    # No transfer-syntax parameter means Explicit VR Little Endian, which these are: unchanged.
    plain = web.get(base, headers=bearer(api.token_a))
    assert [b for _, b in parts_of(plain)] == [data for _, data in instances]


def test_transfer_syntax_negotiation(web, api):
    implicit = ct_dataset()
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    stored, data = ingest.ingest(api.a, to_bytes(implicit), ACTOR), to_bytes(implicit)
    url = f"/dicom-web/studies/{stored.study_uid}/series/{stored.series_uid}" \
          f"/instances/{stored.sop_uid}"

    def get(accept):
        return web.get(url, headers=bearer(api.token_a, Accept=accept))

    [(ctype, body)] = parts_of(get(DICOM_ANY))
    assert body == data and ctype.endswith(IMPLICIT)
    [(ctype, body)] = parts_of(get('multipart/related; type="application/dicom"'))
    assert ctype.endswith(EXPLICIT)  # the PS3.18 default: converted
    converted = pydicom.dcmread(io.BytesIO(body))
    assert converted.file_meta.TransferSyntaxUID == EXPLICIT
    assert converted.PixelData == implicit.PixelData and converted.PatientName == "Zhang^San=张^三"
    jpeg = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    assert get(jpeg).status_code == 406
    assert get(jpeg + ", " + DICOM_ANY + ";q=0.5").status_code == 200
    assert get("application/json").status_code == 406
    assert web.get(url + "?accept=" + DICOM_ANY.replace(" ", ""),
                      headers=bearer(api.token_a)).status_code == 200


def test_metadata_has_bulk_data_uris_not_pixels(web, api, series):
    study, series_uid, instances = series
    for url in (f"/dicom-web/studies/{study}/metadata",
                f"/dicom-web/studies/{study}/series/{series_uid}/metadata"):
        response = web.get(url, headers=bearer(api.token_a))
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/dicom+json"
        assert len(response.get_json()) == 2
    sop = instances[0][0]
    base = f"/dicom-web/studies/{study}/series/{series_uid}/instances/{sop}"
    [meta] = web.get(base + "/metadata", headers=bearer(api.token_a)).get_json()
    assert meta["00100010"]["Value"] == [{"Alphabetic": "Zhang^San", "Ideographic": "张^三"}]
    assert meta["00080018"]["Value"] == [sop] and meta["00083002"]["Value"] == [EXPLICIT]
    pixel = meta["7FE00010"]
    assert pixel["vr"] == "OW" and "InlineBinary" not in pixel
    assert pixel["BulkDataURI"] == f"http://localhost{base}/bulkdata/7FE00010"
    bulk = web.get(pixel["BulkDataURI"].removeprefix("http://localhost"),
                      headers=bearer(api.token_a))
    assert [b for _, b in parts_of(bulk)] == [ct_dataset().PixelData]
    assert web.get(base + "/bulkdata/00431029", headers=bearer(api.token_a)).status_code == 404
    assert web.get(base + "/bulkdata/xyz", headers=bearer(api.token_a)).status_code == 400


def _frames_url(stored) -> str:
    return f"/dicom-web/studies/{stored.study_uid}/series/{stored.series_uid}" \
           f"/instances/{stored.sop_uid}/frames/"


def test_frames_of_uncompressed_multiframe(sqlite_web, sqlite_api):
    ds = ct_dataset(NumberOfFrames=3, size=8)
    frames = [np.full(64, 100 * (i + 1), np.uint16).tobytes() for i in range(3)]
    ds.PixelData = b"".join(frames)
    stored = ingest.ingest(sqlite_api.a, to_bytes(ds), ACTOR)
    url = _frames_url(stored)
    response = sqlite_web.get(url + "3,1", headers=bearer(sqlite_api.token_a))
    assert response.status_code == 200
    parts = parts_of(response)
    assert [b for _, b in parts] == [frames[2], frames[0]]
    assert parts[0][0] == f"application/octet-stream; transfer-syntax={EXPLICIT}"
    assert sqlite_web.get(url + "4", headers=bearer(sqlite_api.token_a)).status_code == 404
    assert sqlite_web.get(url + "0", headers=bearer(sqlite_api.token_a)).status_code == 400
    assert sqlite_web.get(url + "one", headers=bearer(sqlite_api.token_a)).status_code == 400


def test_frames_of_implicit_and_big_endian_32_bit_dose(sqlite_web, sqlite_api):
    little, _ = _store_file(sqlite_api.a, get_testdata_file("rtdose.dcm"))
    big, _ = _store_file(sqlite_api.b, get_testdata_file("rtdose_expb.dcm"))
    expected = pixel_array(get_testdata_file("rtdose.dcm"), index=14).astype("<u4").tobytes()
    [(ctype, frame)] = parts_of(sqlite_web.get(_frames_url(little) + "15",
                                           headers=bearer(sqlite_api.token_a)))
    assert frame == expected
    # Big endian stored: sent little endian unless the stored syntax is accepted.
    [(ctype, frame)] = parts_of(sqlite_web.get(_frames_url(big) + "15",
                                           headers=bearer(sqlite_api.token_b)))
    assert frame == expected and ctype.endswith(EXPLICIT)
    any_syntax = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
    [(ctype, frame)] = parts_of(sqlite_web.get(_frames_url(big) + "15",
                                           headers=bearer(sqlite_api.token_b, Accept=any_syntax)))
    assert ctype.endswith("1.2.840.10008.1.2.2")
    assert np.frombuffer(frame, ">u4").astype("<u4").tobytes() == expected


def test_frames_of_jpeg_baseline(sqlite_web, sqlite_api):
    path = get_testdata_file("examples_ybr_color.dcm")
    stored, data = _store_file(sqlite_api.a, path)
    ds = pydicom.dcmread(path)
    url = _frames_url(stored) + "1,30"
    bitstreams = [encaps.get_frame(ds.PixelData, i, number_of_frames=30) for i in (0, 29)]

    def get(accept):
        response = sqlite_web.get(url, headers=bearer(sqlite_api.token_a, Accept=accept))
        assert response.status_code == 200, response.get_data()[:200]
        return parts_of(response)

    jpeg = get('multipart/related; type="image/jpeg"')
    assert [b for _, b in jpeg] == bitstreams
    assert jpeg[0][0] == "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"
    native = get('multipart/related; type="application/octet-stream"; transfer-syntax=*')
    assert [b for _, b in native] == bitstreams  # OHIF's default Accept
    assert native[0][0].endswith("transfer-syntax=1.2.840.10008.1.2.4.50")
    decoded = get('multipart/related; type="application/octet-stream"')
    assert [b for _, b in decoded] == [pixel_array(path, index=i).tobytes() for i in (0, 29)]
    assert decoded[0][0].endswith(EXPLICIT)
    png = sqlite_web.get(url, headers=bearer(sqlite_api.token_a,
                                         Accept='multipart/related; type="image/png"'))
    assert png.status_code == 406
