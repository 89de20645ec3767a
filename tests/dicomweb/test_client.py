"""DICOMweb over real HTTP: dicomweb-client against the app on a local port.

dicomweb-client (what many Python tools and tests use) exercises content
negotiation, multipart decoding and JSON handling independently of our code.
The whole pydicom sample set goes through STOW-RS and back through WADO-RS
byte for byte.
"""
from __future__ import annotations

import collections
import io
import warnings
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom import encaps
from pydicom.data import get_testdata_file, get_testdata_files

from app.services import tenants, users
from app.services.dicom_parse import REQUIRED_UIDS, parse
from app.services.errors import Invalid
from tests.conftest import PASSWORD
from tests.dicomweb import (DICOM_ANY, api, bearer, decode_multipart,  # noqa: F401
                            sqlite_api, stow_body)
from tests.live import serve
from tests.factory import ct_dataset, to_bytes


@pytest.fixture
def server(app):
    """The app (each backend) on a free local port."""
    with serve(app) as url:
        # dicomweb-client sends "Host" without the port, so name the public URL.
        app.config["PACS_DICOMWEB_URL"] = f"{url}/dicom-web"
        yield url


@pytest.fixture
def sqlite_server(sqlite_app):
    with serve(sqlite_app) as url:
        yield url


def _client(server: str, token: str) -> DICOMwebClient:
    return DICOMwebClient(url=f"{server}/dicom-web", headers={"Authorization": f"Bearer {token}"})


def test_dicomweb_client_search_retrieve_store(server, api):
    client = _client(server, api.token_a)
    study, series = "1.2.826.0.1.3680043.9.1", "1.2.826.0.1.3680043.9.1.1"
    # Read back from Part 10 so dicomweb-client's dcmwrite keeps the preamble and meta.
    datasets = [pydicom.dcmread(io.BytesIO(to_bytes(ct_dataset(study_uid=study, series_uid=series,
                                                               number=n)))) for n in (1, 2, 3)]
    result = client.store_instances(datasets)
    assert len(result.ReferencedSOPSequence) == 3 and "FailedSOPSequence" not in result

    assert len(client.search_for_studies(search_filters={"PatientName": "张*"})) == 1
    assert len(client.search_for_studies(fuzzymatching=True,
                                         search_filters={"PatientName": "zhangsan"})) == 1
    [found] = client.search_for_studies(fields=["StudyDescription"], limit=1, offset=0)
    assert found["00081030"]["Value"] == ["胸部CT"]
    assert client.search_for_studies(offset=1) == []
    [found_series] = client.search_for_series(study)
    assert found_series["00201209"]["Value"] == [3]
    instances = client.search_for_instances(study, series)
    sops = [i["00080018"]["Value"][0] for i in instances]
    assert sops == [str(ds.SOPInstanceUID) for ds in datasets]

    retrieved = client.retrieve_study(study)
    assert sorted(str(ds.SOPInstanceUID) for ds in retrieved) == sorted(sops)
    assert len(client.retrieve_series(study, series)) == 3
    instance = client.retrieve_instance(study, series, sops[1])
    assert instance.PixelData == datasets[1].PixelData
    assert instance.PatientName == "Zhang^San=张^三"

    metadata = client.retrieve_instance_metadata(study, series, sops[0])
    assert "InlineBinary" not in metadata["7FE00010"]
    assert client.retrieve_bulkdata(metadata["7FE00010"]["BulkDataURI"]) == \
        [datasets[0].PixelData]
    assert len(client.retrieve_series_metadata(study, series)) == 3
    assert client.retrieve_instance_frames(study, series, sops[2], [1]) == \
        [datasets[2].PixelData]

    other = _client(server, api.token_b)
    assert other.search_for_studies() == []
    with pytest.raises(requests.HTTPError) as refused:
        other.retrieve_study(study)
    assert refused.value.response.status_code == 404


def test_chunked_upload_and_streamed_download(sqlite_server, sqlite_api):
    """Bodies over dicomweb-client's chunk size go up with Transfer-Encoding: chunked."""
    client = _client(sqlite_server, sqlite_api.token_a)
    client.set_chunk_size(64 * 1024)
    datasets = [pydicom.dcmread(io.BytesIO(to_bytes(ct_dataset(size=256, number=n,
                                                                 study_uid="1.2.826.0.1.9"))))
                for n in (1, 2)]
    result = client.store_instances(datasets)
    assert len(result.ReferencedSOPSequence) == 2
    got = list(client.iter_study("1.2.826.0.1.9"))  # streamed, decoded in 64 KiB chunks
    assert sorted(ds.PixelData for ds in got) == sorted(ds.PixelData for ds in datasets)


def test_dicomweb_client_jpeg_frames(sqlite_server, sqlite_api):
    path = get_testdata_file("examples_ybr_color.dcm")
    ds = pydicom.dcmread(path)
    body, content_type = stow_body([Path(path).read_bytes()])
    stored = requests.post(f"{sqlite_server}/dicom-web/studies", data=body,
                           headers=bearer(sqlite_api.token_a, **{"Content-Type": content_type}))
    assert stored.status_code == 200, stored.text
    client = _client(sqlite_server, sqlite_api.token_a)
    uids = (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
    expected = [encaps.get_frame(ds.PixelData, i, number_of_frames=30) for i in (1, 9)]
    assert client.retrieve_instance_frames(*uids, [2, 10], media_types=("image/jpeg",)) == expected
    assert client.retrieve_instance_frames(*uids, [2, 10]) == expected  # type="*/*": native
    decoded = client.retrieve_instance_frames(*uids, [2], media_types=("application/octet-stream",))
    assert len(decoded[0]) == 240 * 320 * 3


def _sample_files() -> tuple[list[tuple[Path, bytes]], list[tuple[str, str]]]:
    """Part 10 sample files with the required UIDs, and those ingest refuses (with why)."""
    usable, refused = [], []
    for name in sorted(get_testdata_files()):
        path = Path(name)
        if not path.is_file():
            continue
        data = path.read_bytes()
        if data[128:132] != b"DICM":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                head = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            if not all(str(head.get(k, "")) for k in REQUIRED_UIDS):
                continue
            parse(data)
        except Invalid as exc:
            refused.append((path.name, exc.message))
            continue
        except Exception:
            continue
        usable.append((path, data))
    return usable, refused


def _rounds(files: list[tuple[Path, bytes]]) -> list[list[tuple[Path, bytes]]]:
    """Split the files so no round holds one SOP Instance UID twice (samples share UIDs)."""
    rounds: list[list[tuple[Path, bytes]]] = []
    seen: collections.Counter = collections.Counter()
    for path, data in files:
        sop = str(parse(data).dataset.SOPInstanceUID)
        if seen[sop] == len(rounds):
            rounds.append([])
        rounds[seen[sop]].append((path, data))
        seen[sop] += 1
    return rounds


def _check_metadata_and_first_frame(url: str, token: str, data: bytes) -> None:
    """Metadata of every sample is valid DICOM JSON without inline pixels; frame 1 comes back."""
    meta = requests.get(url + "/metadata", headers=bearer(token))
    assert meta.status_code == 200
    [doc] = meta.json()
    if "7FE00010" in doc:
        assert "BulkDataURI" in doc["7FE00010"] and "InlineBinary" not in doc["7FE00010"]
        any_frame = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
        frame = requests.get(url + "/frames/1", headers=bearer(token, Accept=any_frame))
        assert frame.status_code == 200, frame.text[:200]
        [(ctype, body)] = decode_multipart(frame.headers["Content-Type"], frame.content)
        assert body and "transfer-syntax=" in ctype


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_pydicom_sample_round_trips_byte_identical(sqlite_server, capsys):
    usable, refused = _sample_files()
    with capsys.disabled():
        print(f"\n{len(usable)} sample files round-trip; ingest refuses {len(refused)}:")
        for name, why in refused:
            print(f"  {name}: {why}")
    assert len(usable) > 100
    for n, files in enumerate(_rounds(usable)):
        # Samples reuse SOP Instance UIDs, so each round goes to an institution of its own.
        tenant = tenants.register(f"SAMPLE{n}", f"Sample {n}", f"SAMPLE{n}", approve=True)
        users.create(tenant, f"sample{n}", PASSWORD, "technician")
        token = users.create_token(tenant, f"sample{n}")
        body, content_type = stow_body([data for _, data in files])
        response = requests.post(f"{sqlite_server}/dicom-web/studies", data=body,
                                 headers=bearer(token, **{"Content-Type": content_type}))
        assert response.status_code == 200, response.text[:500]
        for path, data in files:
            ds = parse(data).dataset
            url = (f"{sqlite_server}/dicom-web/studies/{ds.StudyInstanceUID}/series/"
                   f"{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}")
            got = requests.get(url, headers=bearer(token, Accept=DICOM_ANY))
            [(_, body)] = decode_multipart(got.headers["Content-Type"], got.content)
            assert body == data, path.name
            _check_metadata_and_first_frame(url, token, data)
