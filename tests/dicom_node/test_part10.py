"""Part 10 assembly of received data sets, and the node's malloc tuning."""
from __future__ import annotations

import pytest
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEG2000Lossless
from pynetdicom.dsutils import create_file_meta, encode_file_meta
from pynetdicom.sop_class import CTImageStorage, MRImageStorage

from dicom_node import memory
from dicom_node.part10 import FileMetaEncoder


@pytest.mark.parametrize("sop_class", [CTImageStorage, MRImageStorage])
@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian,
                                    JPEG2000Lossless])
@pytest.mark.parametrize("instance", ["1.2.3", "1.2.34", "1.2.826.0.1.3680043.8.498." + "9" * 38])
def test_file_meta_is_byte_for_byte_pynetdicoms(sop_class, syntax, instance):
    encoder = FileMetaEncoder()
    reference = b"".join((b"\x00" * 128, b"DICM", encode_file_meta(create_file_meta(
        sop_class_uid=UID(sop_class), sop_instance_uid=UID(instance),
        transfer_syntax=UID(syntax))), b"\x08\x00\x05\x00"))
    for _ in range(2):  # built, then cached
        assert encoder.file(sop_class, instance, syntax, memoryview(b"\x08\x00\x05\x00")) \
            == reference


def test_malloc_tuning_is_idempotent():
    first = memory.tune_malloc()
    assert memory.tune_malloc() is first
