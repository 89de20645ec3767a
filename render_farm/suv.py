"""Standardised uptake value (SUV) scaling of PET images, body-weight normalised.

SUVbw = activity concentration (Bq/mL) × body weight (g) / injected dose
decayed to the time the image values refer to (Bq). With 1 mL of tissue
taken as 1 g, SUVbw is dimensionless ("g/mL" in DICOM). This follows the
vendor-neutral calculation of the QIBA FDG-PET profile, from the PET Series
(PS3.3 C.8.9.1) and PET Isotope (C.8.9.2) modules:

* Units (0054,1001) must be BQML (GML is already SUVbw: factor 1).
* Decay Correction (0054,1102): START — values are decay corrected to the
  series start, so the dose is decayed from injection to Series Date/Time
  (Acquisition Date/Time when the series time is missing); ADMIN — values
  are corrected to the injection, the dose is used as is; NONE — values are
  not corrected, the dose is decayed to this image's Acquisition Date/Time.
* Radiopharmaceutical Information Sequence (0054,0016), first item:
  Radionuclide Total Dose (0018,1074, Bq), Radionuclide Half Life
  (0018,1075, s), Radiopharmaceutical Start DateTime (0018,1078) or Start
  Time (0018,1072) on the series date.
* Patient's Weight (0010,1030) in kg.
"""
from __future__ import annotations

import datetime as dt
import math

from pydicom.dataset import Dataset
from pydicom.valuerep import DA, DT, TM


class SUVError(ValueError):
    """The dataset lacks (or has unusable) attributes that SUV needs; the message names them."""


def _required(ds: Dataset, keyword: str, tag: str, what: str) -> object:
    value = ds.get(keyword)
    if value is None or value == "":
        raise SUVError(f"cannot compute SUV: {what} {keyword} {tag} is missing")
    return value


def _positive(ds: Dataset, keyword: str, tag: str, what: str) -> float:
    raw = _required(ds, keyword, tag, what)
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SUVError(f"cannot compute SUV: {keyword} {tag} is not a number: {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise SUVError(f"cannot compute SUV: {keyword} {tag} must be positive, got {raw!r}")
    return value


def _naive(moment: dt.datetime) -> dt.datetime:
    # Mixed offset/no-offset times cannot be compared; DICOM times without an
    # offset are local, and the offsets here belong to the same site.
    return moment.replace(tzinfo=None)


def _date_time(ds: Dataset, date_keyword: str, time_keyword: str) -> dt.datetime | None:
    date, time = ds.get(date_keyword), ds.get(time_keyword)
    if not date or not time:
        return None
    try:
        return dt.datetime.combine(DA(str(date)), TM(str(time)))
    except (TypeError, ValueError):
        raise SUVError(f"cannot compute SUV: {date_keyword}/{time_keyword} is not a valid "
                       f"date and time: {date!r} {time!r}") from None


def _injection_time(ds: Dataset, drug: Dataset, scan: dt.datetime) -> dt.datetime:
    start = drug.get("RadiopharmaceuticalStartDateTime")
    if start:
        try:
            return _naive(DT(str(start)))
        except (TypeError, ValueError):
            raise SUVError("cannot compute SUV: RadiopharmaceuticalStartDateTime (0018,1078) "
                           f"is not a valid date-time: {start!r}") from None
    time = drug.get("RadiopharmaceuticalStartTime")
    if not time:
        raise SUVError("cannot compute SUV: the injection time, RadiopharmaceuticalStartDateTime "
                       "(0018,1078) or RadiopharmaceuticalStartTime (0018,1072), is missing")
    try:
        injected = dt.datetime.combine(scan.date(), TM(str(time)))
    except (TypeError, ValueError):
        raise SUVError("cannot compute SUV: RadiopharmaceuticalStartTime (0018,1072) is not "
                       f"a valid time: {time!r}") from None
    # A time alone is on the scan's date; an injection "after" the scan then
    # happened the evening before (the scan crossed midnight).
    return injected - dt.timedelta(days=1) if injected > scan else injected


def _scan_time(ds: Dataset, correction: str) -> dt.datetime:
    if correction == "NONE":
        moment = _date_time(ds, "AcquisitionDate", "AcquisitionTime")
        where = "AcquisitionDate (0008,0022) and AcquisitionTime (0008,0032)"
    else:
        moment = (_date_time(ds, "SeriesDate", "SeriesTime")
                  or _date_time(ds, "AcquisitionDate", "AcquisitionTime"))
        where = ("SeriesDate/SeriesTime (0008,0021)/(0008,0031) or "
                 "AcquisitionDate/AcquisitionTime (0008,0022)/(0008,0032)")
    if moment is None:
        raise SUVError(f"cannot compute SUV: the scan time, {where}, is missing")
    return moment


def suv_bw_factor(ds: Dataset) -> float:
    """Return the factor that turns this PET image's modality values into SUVbw.

    ``SUVbw = (stored × RescaleSlope + RescaleIntercept) × factor``.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A PET image header (pixel data not needed).

    Raises
    ------
    SUVError
        A required attribute is missing or unusable; the message names it
        with its tag.
    """
    units = str(_required(ds, "Units", "(0054,1001)", "the pixel value unit")).upper()
    if units == "GML":
        return 1.0
    if units != "BQML":
        raise SUVError(f"cannot compute SUV from Units (0054,1001) {units!r}: only BQML "
                       "activity concentrations can be normalised")
    correction = str(_required(ds, "DecayCorrection", "(0054,1102)",
                               "the decay correction")).upper()
    if correction not in ("START", "ADMIN", "NONE"):
        raise SUVError(f"cannot compute SUV: DecayCorrection (0054,1102) {correction!r} "
                       "is not START, ADMIN or NONE")
    weight_kg = _positive(ds, "PatientWeight", "(0010,1030)", "the patient's weight")
    drugs = ds.get("RadiopharmaceuticalInformationSequence")
    if not drugs:
        raise SUVError("cannot compute SUV: RadiopharmaceuticalInformationSequence (0054,0016) "
                       "is missing")
    drug = drugs[0]
    dose = _positive(drug, "RadionuclideTotalDose", "(0018,1074)", "the injected dose")
    if correction == "ADMIN":
        return weight_kg * 1000.0 / dose
    half_life = _positive(drug, "RadionuclideHalfLife", "(0018,1075)",
                          "the radionuclide half-life")
    scan = _scan_time(ds, correction)
    elapsed = (scan - _injection_time(ds, drug, scan)).total_seconds()
    if elapsed < 0:
        raise SUVError("cannot compute SUV: the radiopharmaceutical start time is after "
                       "the scan time")
    decayed = dose * 2.0 ** (-elapsed / half_life)
    return weight_kg * 1000.0 / decayed
