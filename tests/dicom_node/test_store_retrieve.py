"""C-ECHO, C-STORE and C-GET with real peers: dcmtk tools and a pynetdicom SCU."""
from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.uid import (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    generate_uid,
)
from pynetdicom import AllStoragePresentationContexts, build_context
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelGet

from app.models import Instance
from app.services import dicom_parse, retrieve, tenancy
from app.services.errors import Invalid
from tests.dicom_node.conftest import dataset_part, refresh, run
from tests.factory import ct_dataset, to_bytes

STORAGE = {cx.abstract_syntax for cx in AllStoragePresentationContexts}


def _write(path: Path, ds) -> Path:
    path.write_bytes(to_bytes(ds))
    return path


def _series(tmp_path: Path, n: int = 3, **kwargs) -> tuple[str, list[Path]]:
    study, series = generate_uid(), generate_uid()
    files = [_write(tmp_path / f"ct{i}.dcm", ct_dataset(study_uid=study, series_uid=series,
                                                        number=i + 1, size=32, **kwargs))
             for i in range(n)]
    return study, files


SAMPLES = Path(pydicom.data.__file__).parent / "test_files"  # local: no download
# storescu proposes only uncompressed syntaxes unless told which compressed one to offer.
STORESCU_PROPOSE = {
    "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx",
    "1.2.840.10008.1.2.4.70": "-xs", "1.2.840.10008.1.2.4.80": "-xt",
    "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.4.90": "-xv",
    "1.2.840.10008.1.2.4.91": "-xw", "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.1.99": "-xd", "1.2.840.10008.1.2.2": "-xb", "1.2.840.10008.1.2": "-xi",
}


def _sendable_samples() -> dict[str, list[Path]]:
    """pydicom's sample files that are valid Part 10 storage instances, grouped by
    transfer syntax; one per SOP Instance UID, never reusing a series in two studies."""
    chosen: dict[str, list[Path]] = {}
    seen, series_study = set(), {}
    for path in sorted(SAMPLES.glob("*.dcm")):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                parsed = dicom_parse.parse(path.read_bytes())
        except Invalid:
            continue
        ds = parsed.dataset
        study, series = str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
        if ds.SOPClassUID not in STORAGE or ds.SOPInstanceUID in seen \
                or series_study.setdefault(series, study) != study:
            continue
        seen.add(ds.SOPInstanceUID)
        chosen.setdefault(parsed.transfer_syntax_uid, []).append(path)
    return chosen


def _store_results(stderr: str) -> dict[str, bool]:
    """File name -> whether storescu -v reported success for it."""
    results, current = {}, None
    for line in stderr.splitlines():
        if line.startswith("I: Sending file: "):
            current = Path(line.split(": ", 2)[2]).name
            results[current] = False
        elif current and "Received Store Response (Success)" in line:
            results[current] = True
    return results


def _getscu(port: int, out: Path, level: str, **keys: str) -> None:
    out.mkdir(exist_ok=True)
    args = ["-k", f"QueryRetrieveLevel={level}"]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}"]
    run("getscu", "-S", "-aec", "HOSPA", "+B", "-od", str(out), *args, "127.0.0.1", str(port))


def test_echoscu(dicom_node):
    run("echoscu", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port))
    run("echoscu", "-aec", "HOSPB", "127.0.0.1", str(dicom_node.port))


def test_storescu_then_getscu_gives_the_same_datasets(dicom_node, tmp_path):
    study, files = _series(tmp_path)
    implicit = ct_dataset(study_uid=study, series_uid=pydicom.dcmread(files[0]).SeriesInstanceUID,
                          number=9, size=32)
    implicit.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    files.append(_write(tmp_path / "implicit.dcm", implicit))
    run("storescu", "-R", "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port), *map(str, files))

    refresh()
    for path in files:
        inst = tenancy.get(dicom_node.a.tenant, Instance,
                           sop_uid=pydicom.dcmread(path).SOPInstanceUID)
        assert dataset_part(retrieve.read(inst)) == dataset_part(path)

    _getscu(dicom_node.port, tmp_path / "got", "STUDY", StudyInstanceUID=study)
    got = {pydicom.dcmread(p).SOPInstanceUID: p for p in (tmp_path / "got").iterdir()}
    assert len(got) == len(files)
    for path in files:
        sent = pydicom.dcmread(path)
        back = got[sent.SOPInstanceUID]
        if pydicom.dcmread(back).file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID:
            assert dataset_part(back) == dataset_part(path)
        else:  # converted to what getscu accepted: same content
            assert pydicom.dcmread(back).PixelData == sent.PixelData
            assert pydicom.dcmread(back).PatientName == sent.PatientName


@pytest.mark.slow
def test_every_pydicom_sample_stores_and_comes_back(dicom_node, tmp_path):
    groups = _sendable_samples()
    samples = [path for paths in groups.values() for path in paths]
    assert len(samples) > 30
    sent: dict[str, bool] = {}
    for syntax, paths in groups.items():
        proc = run("storescu", "-R", "-nh", "-v", STORESCU_PROPOSE.get(syntax, "-xe"),
                   "-aec", "HOSPA", "127.0.0.1", str(dicom_node.port), *map(str, paths))
        sent.update(_store_results(proc.stderr))
    failed = sorted(name for name, ok in sent.items() if not ok)
    assert not failed, failed
    assert len(sent) >= len(samples) - 2  # dcmtk itself cannot parse one or two samples

    out = tmp_path / "got"
    stored = [p for p in samples if p.name in sent]
    for study in sorted({str(pydicom.dcmread(p).StudyInstanceUID) for p in stored}):
        _getscu(dicom_node.port, out, "STUDY", StudyInstanceUID=study)
    got = {pydicom.dcmread(p).SOPInstanceUID: p for p in out.iterdir()}
    identical = 0
    for path in stored:
        original = pydicom.dcmread(path)
        if original.SOPInstanceUID not in got:
            # getscu takes only uncompressed data; this one could not be decompressed
            assert original.file_meta.TransferSyntaxUID.is_compressed, path.name
            assert _pixels(original) is None, path.name
            continue
        back = pydicom.dcmread(got[original.SOPInstanceUID])
        if back.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID:
            # Against what the node received: storescu itself drops e.g. trailing padding.
            stored = _stored(dicom_node, original.SOPInstanceUID)
            assert _elements(got[original.SOPInstanceUID]) == _elements(stored), path.name
            identical += 1
        else:
            assert back.file_meta.TransferSyntaxUID in (ExplicitVRLittleEndian,
                                                        ImplicitVRLittleEndian)
            _assert_same_pixels(original, back, path.name)
    assert identical >= 10


def _stored(node, sop_uid: str) -> bytes:
    refresh()
    return retrieve.read(tenancy.get(node.a.tenant, Instance, sop_uid=sop_uid))


def _elements(source: Path | bytes) -> list[tuple]:
    """The encoded dataset, element by element. Retired group lengths (PS3.5 §7.2)
    are left out: a re-encoding may drop them."""
    ds = pydicom.dcmread(pydicom.filebase.DicomBytesIO(source) if isinstance(source, bytes)
                         else source)
    return [(tag, ds.get_item(tag).value) for tag in sorted(ds.keys()) if tag.element != 0]


def _pixels(ds):
    try:
        return ds.pixel_array
    except Exception:  # pydicom cannot decode this sample
        return None


def _assert_same_pixels(original, back, name: str) -> None:
    expected = _pixels(original) if "PixelData" in original else None
    if expected is not None:
        assert np.array_equal(back.pixel_array, expected), name


def test_instances_are_converted_for_a_peer_that_wants_uncompressed(dicom_node, tmp_path):
    study, series = generate_uid(), generate_uid()
    datasets = []
    for number, syntax in enumerate((JPEG2000Lossless, RLELossless), start=1):
        ds = ct_dataset(study_uid=study, series_uid=series, number=number, size=32)
        ds.compress(syntax, generate_instance_uid=False)
        datasets.append(ds)
    big = pydicom.dcmread(SAMPLES / "MR_small_bigendian.dcm")
    big.StudyInstanceUID = study
    datasets.append(big)
    contexts = [build_context(ds.SOPClassUID, [ds.file_meta.TransferSyntaxUID])
                for ds in datasets]
    assoc = dicom_node.associate(contexts=contexts)
    assert [assoc.send_c_store(ds).Status for ds in datasets] == [0, 0, 0]
    assoc.release()

    out = tmp_path / "got"
    _getscu(dicom_node.port, out, "STUDY", StudyInstanceUID=study)
    got = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in out.iterdir()}
    assert len(got) == 3
    for ds in datasets:
        back = got[ds.SOPInstanceUID]
        assert back.file_meta.TransferSyntaxUID in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
        assert np.array_equal(back.pixel_array, ds.pixel_array)
        assert back.Rows == ds.Rows and back.PatientName == ds.PatientName


def test_pynetdicom_store_and_get(any_node):
    study, series = generate_uid(), generate_uid()
    datasets = [ct_dataset(study_uid=study, series_uid=series, number=i, size=16)
                for i in range(1, 4)]
    assoc = any_node.associate(contexts=[CTImageStorage])
    assert assoc.is_established
    assert [assoc.send_c_store(ds).Status for ds in datasets] == [0, 0, 0]
    assoc.release()

    received = []

    def on_store(event):
        received.append(event.dataset)
        return 0x0000

    from pynetdicom import evt
    assoc = any_node.associate(
        contexts=[StudyRootQueryRetrieveInformationModelGet,
                  build_context(CTImageStorage, [ExplicitVRLittleEndian])],
        roles=any_node.storage_roles([CTImageStorage]),
        handlers=[(evt.EVT_C_STORE, on_store)])
    query = pydicom.Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
    responses = list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))
    assoc.release()
    final = responses[-1][0]
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == 3
    assert sorted(ds.SOPInstanceUID for ds in received) == \
        sorted(ds.SOPInstanceUID for ds in datasets)
    assert all(ds.PatientName == "Zhang^San=张^三" for ds in received)


def test_get_without_a_storage_context_fails_the_sub_operations(dicom_node):
    study = generate_uid()
    assoc = dicom_node.associate(contexts=[CTImageStorage])
    assoc.send_c_store(ct_dataset(study_uid=study))
    assoc.release()
    assoc = dicom_node.associate(contexts=[StudyRootQueryRetrieveInformationModelGet])
    query = pydicom.Dataset()
    query.QueryRetrieveLevel, query.StudyInstanceUID = "STUDY", study
    final = list(assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet))[-1][0]
    assoc.release()
    assert final.Status == 0xA702  # PS3.4 Table C.4-3: unable to perform sub-operations
    assert final.NumberOfFailedSuboperations == 1


if not shutil.which("storescu"):  # pragma: no cover - dcmtk is a declared system dependency
    pytestmark = pytest.mark.skip("dcmtk is not installed")
