"""Small DICOM instances for tests that need exact control over attributes."""
from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def ct_dataset(study_uid: str | None = None, series_uid: str | None = None,
               sop_uid: str | None = None, patient_id: str = "P001",
               patient_name: str = "Zhang^San=张^三", size: int = 16, number: int = 1,
               **attrs) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.PatientID, ds.PatientName = patient_id, patient_name
    ds.PatientSex, ds.PatientBirthDate = "M", "19650312"
    ds.StudyDate, ds.StudyTime, ds.AccessionNumber = "20261101", "101500", "ACC001"
    ds.StudyDescription, ds.Modality, ds.SeriesNumber = "胸部CT", "CT", 1
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [0, 0, float(number)]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.5, 0.5]
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.PixelData = (np.arange(size * size, dtype=np.uint16) % 4096).tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def ct_bytes(**kwargs) -> bytes:
    return to_bytes(ct_dataset(**kwargs))
