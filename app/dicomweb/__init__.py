"""DICOMweb (PS3.18): QIDO-RS, WADO-RS, STOW-RS under ``/dicom-web``."""
