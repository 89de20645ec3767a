"""SUVbw scale factors against values worked out by hand."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from render_farm.suv import SUVError, suv_bw_factor

F18_HALF_LIFE = 6586.2  # s (109.77 min)


def _pet(**changes: object) -> Dataset:
    """70 kg patient, 370 MBq F-18 at 10:00:00, series starting 11:00:00 the same day."""
    drug = Dataset()
    drug.RadionuclideTotalDose = 370e6
    drug.RadionuclideHalfLife = F18_HALF_LIFE
    drug.RadiopharmaceuticalStartTime = "100000"
    ds = Dataset()
    ds.Modality = "PT"
    ds.Units = "BQML"
    ds.DecayCorrection = "START"
    ds.PatientWeight = 70
    ds.SeriesDate, ds.SeriesTime = "20240301", "110000"
    ds.AcquisitionDate, ds.AcquisitionTime = "20240301", "111500"
    ds.RadiopharmaceuticalInformationSequence = Sequence([drug])
    for keyword, value in changes.items():
        target = drug if keyword.startswith("Radio") and keyword != \
            "RadiopharmaceuticalInformationSequence" else ds
        if value is None:
            delattr(target, keyword)
        else:
            setattr(target, keyword, value)
    return ds


def test_decay_corrected_to_series_start():
    # One hour after injection the dose is 370 MBq × 2^(−3600/6586.2) = 370e6 × 0.684633
    # = 253.314 MBq; 70,000 g / 253.314e6 Bq = 2.76337e-4 per Bq/mL.
    assert suv_bw_factor(_pet()) == pytest.approx(2.763367e-4, rel=1e-6)


def test_injection_as_a_date_time_and_a_heavier_patient():
    # 82.5 kg, 400 MBq injected 09:30, series at 11:00: 5,400 s, decay 0.566483;
    # 82,500 / (400e6 × 0.566483) = 3.640888e-4.
    ds = _pet(PatientWeight=82.5, RadionuclideTotalDose=400e6,
              RadiopharmaceuticalStartTime=None,
              RadiopharmaceuticalStartDateTime="20240301093000")
    assert suv_bw_factor(ds) == pytest.approx(3.640888e-4, rel=1e-6)


def test_corrected_to_administration_needs_no_decay():
    # 70,000 g / 370e6 Bq, whatever the times.
    assert suv_bw_factor(_pet(DecayCorrection="ADMIN", SeriesTime=None)) == \
        pytest.approx(1.891892e-4, rel=1e-6)


def test_uncorrected_images_use_their_own_acquisition_time():
    # Acquired at 11:15: 4,500 s after injection; 2^(−4500/6586.2) = 0.622762,
    # 70,000 / (370e6 × 0.622762) = 3.037904e-4.
    ds = _pet(DecayCorrection="NONE")
    assert suv_bw_factor(ds) == pytest.approx(3.037904e-4, rel=1e-6)


def test_series_crossing_midnight():
    # Injected 23:30 the day before a 00:30 series: one hour, as the first case.
    ds = _pet(RadiopharmaceuticalStartTime="233000", SeriesTime="003000")
    assert suv_bw_factor(ds) == pytest.approx(2.763367e-4, rel=1e-6)


def test_values_already_in_suv():
    assert suv_bw_factor(_pet(Units="GML")) == 1.0


@pytest.mark.parametrize("changes, message", [
    ({"PatientWeight": None}, r"PatientWeight \(0010,1030\) is missing"),
    ({"PatientWeight": 0}, r"PatientWeight \(0010,1030\) must be positive"),
    ({"Units": "CNTS"}, r"Units \(0054,1001\) 'CNTS'"),
    ({"Units": None}, r"Units \(0054,1001\) is missing"),
    ({"DecayCorrection": None}, r"DecayCorrection \(0054,1102\) is missing"),
    ({"RadionuclideTotalDose": None}, r"RadionuclideTotalDose \(0018,1074\) is missing"),
    ({"RadionuclideHalfLife": None}, r"RadionuclideHalfLife \(0018,1075\) is missing"),
    ({"RadiopharmaceuticalStartTime": None}, r"injection time"),
    ({"SeriesTime": None, "AcquisitionTime": None}, r"scan time"),
    ({"RadiopharmaceuticalInformationSequence": None}, r"\(0054,0016\) is missing"),
    ({"RadiopharmaceuticalStartTime": None,
      "RadiopharmaceuticalStartDateTime": "20240301120000"}, r"after the scan time"),
])
def test_missing_attributes_are_named(changes, message):
    with pytest.raises(SUVError, match=message):
        suv_bw_factor(_pet(**changes))
    assert issubclass(SUVError, ValueError)
