"""Stored instances go out as their stored bytes, or re-encoded by pynetdicom."""
from __future__ import annotations

from io import BytesIO

import pydicom
from pydicom.data import get_testdata_file
from pynetdicom import association
from pynetdicom.dsutils import encode

from dicom_node import stored
from dicom_node.stored import StoredInstance
from tests.dicom_node.conftest import dataset_part


def _instance(name: str) -> tuple[bytes, StoredInstance]:
    data = open(get_testdata_file(name), "rb").read()
    ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True)
    return data, StoredInstance(data, ds.SOPClassUID, ds.SOPInstanceUID)


def test_same_encoding_sends_the_stored_bytes_unchanged():
    stored.install()
    data, instance = _instance("CT_small.dcm")  # explicit VR little endian
    assert association.encode(instance, False, True, False) == dataset_part(data)
    assert instance.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert instance.original_encoding[:2] == (False, True)


def test_other_encoding_is_pynetdicoms_re_encoding():
    stored.install()
    data, instance = _instance("CT_small.dcm")
    implicit = association.encode(instance, True, True, False)
    assert implicit == encode(pydicom.dcmread(BytesIO(data)), True, True, False)


def test_plain_datasets_are_encoded_as_before():
    stored.install()
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    assert association.encode(ds, True, True, False) == encode(ds, True, True, False)
