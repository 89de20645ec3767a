"""Studies for the web tests and the screenshots: Chinese, pinyin-only and mixed names."""
from __future__ import annotations

from dataclasses import dataclass

from app.services import ingest
from app.services.audit import Actor
from tests.factory import ct_bytes

ACTOR = Actor("web-test")


@dataclass(frozen=True)
class Row:
    patient_id: str
    name: str  # DICOM PN
    date: str
    modality: str
    accession: str
    description: str
    sex: str = "M"
    birth: str = "19650312"
    images: int = 1


# Tenant A (HOSPA). Patient IDs are distinctive so a test can look for them in any page.
ROWS_A = [
    Row("PA1001", "Zhang^San=张^三", "20261101", "CT", "ACC001", "胸部CT平扫", images=3),
    Row("PA1002", "Li^Si=李^四", "20261015", "MR", "ACC002", "头颅MR平扫+增强", "F", "19800704"),
    Row("PA1003", "Zhao^Liu", "20250101", "CT", "ACC003", "Abdomen CT", "M", "19591130"),
    Row("PA1004", "Ouyang^Nana=欧阳^娜娜", "20261020", "DX", "ACC004", "胸部正位", "F", "19990215"),
    Row("PA1005", "Wang^Xiaoming=王^小明", "20261028", "US", "ACC005", "腹部超声", "M", "20120901"),
    Row("PA1006", "Chen^Jing=陈^静", "20261030", "MG", "ACC006", "双侧乳腺钼靶", "F", "19720418"),
    Row("PA1007", "Zhou^Jianguo=周^建国", "20260930", "CT", "ACC007", "冠状动脉CTA", "M", "19480101", 2),
]
# Tenant B (HOSPB): a Zhang too, so a search for 张 in A must not find B's patient.
ROWS_B = [Row("PB9001", "Zhang^Wei=张^伟", "20261101", "CT", "ACC901", "胸部CT", "M", "19700101")]


def ingest_rows(tenant, rows: list[Row]) -> dict[str, str]:
    """Ingest one study per row (``images`` instances each); Patient ID → Study Instance UID."""
    uids: dict[str, str] = {}
    for row in rows:
        study_uid = series_uid = None
        for number in range(1, row.images + 1):
            result = ingest.ingest(tenant, ct_bytes(
                patient_id=row.patient_id, patient_name=row.name, study_uid=study_uid,
                series_uid=series_uid, number=number, StudyDate=row.date, Modality=row.modality,
                AccessionNumber=row.accession, StudyDescription=row.description,
                PatientSex=row.sex, PatientBirthDate=row.birth, SeriesDescription=row.description,
            ), ACTOR)
            study_uid, series_uid = result.study_uid, result.series_uid
        uids[row.patient_id] = study_uid
    return uids
