"""Attribute matching over the index, shared by C-FIND and QIDO-RS.

Implements PS3.4 §C.2.2.2 matching on the attributes the index keeps:
single value, universal (empty), wildcard (``*``, ``?``), range (dates,
times), and list of UIDs (``\\``). Person names match case-insensitively
against the whole value or any one component group (alphabetic,
ideographic, phonetic), so ``ZHANG*`` and ``张*`` both find
``Zhang^San=张^三``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute

from app.extensions import db
from app.models import Instance, Patient, Series, Study, Tenant
from app.services import names
from app.services.errors import Invalid


class Level(str, enum.Enum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


# keyword -> (column, kind); kind picks the matching rule.
_PATIENT = {
    "PatientName": (Patient.name, "PN"), "PatientID": (Patient.patient_id, "LO"),
    "IssuerOfPatientID": (Patient.issuer, "LO"), "PatientBirthDate": (Patient.birth_date, "DA"),
    "PatientSex": (Patient.sex, "CS"),
}
_STUDY = {
    "StudyInstanceUID": (Study.study_uid, "UI"), "StudyDate": (Study.study_date, "DA"),
    "StudyTime": (Study.study_time, "TM"), "AccessionNumber": (Study.accession_number, "SH"),
    "StudyID": (Study.study_id, "SH"), "StudyDescription": (Study.description, "LO"),
    "ReferringPhysicianName": (Study.referring_physician, "PN"),
    "InstitutionName": (Study.institution, "LO"), "ModalitiesInStudy": (Study.modalities, "MOD"),
    "NumberOfStudyRelatedSeries": (Study.num_series, "IS"),
    "NumberOfStudyRelatedInstances": (Study.num_instances, "IS"),
}
_SERIES = {
    "SeriesInstanceUID": (Series.series_uid, "UI"), "Modality": (Series.modality, "CS"),
    "SeriesNumber": (Series.series_number, "IS"), "SeriesDescription": (Series.description, "LO"),
    "BodyPartExamined": (Series.body_part, "CS"), "SeriesDate": (Series.series_date, "DA"),
    "SeriesTime": (Series.series_time, "TM"),
    "FrameOfReferenceUID": (Series.frame_of_reference_uid, "UI"),
    "NumberOfSeriesRelatedInstances": (Series.num_instances, "IS"),
}
_IMAGE = {
    "SOPInstanceUID": (Instance.sop_uid, "UI"), "SOPClassUID": (Instance.sop_class_uid, "UI"),
    "InstanceNumber": (Instance.instance_number, "IS"), "Rows": (Instance.rows, "US"),
    "Columns": (Instance.columns, "US"), "NumberOfFrames": (Instance.number_of_frames, "IS"),
    "AvailableTransferSyntaxUID": (Instance.transfer_syntax_uid, "UI"),
}
_LEVELS = [Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE]
_MAPS = {Level.PATIENT: _PATIENT, Level.STUDY: _STUDY, Level.SERIES: _SERIES, Level.IMAGE: _IMAGE}
_MODELS = {Level.PATIENT: Patient, Level.STUDY: Study, Level.SERIES: Series, Level.IMAGE: Instance}


def attributes(level: Level) -> dict[str, tuple[InstrumentedAttribute, str]]:
    """Every attribute known at ``level`` (its own and those of the levels above)."""
    known: dict[str, tuple[InstrumentedAttribute, str]] = {}
    for lvl in _LEVELS[: _LEVELS.index(level) + 1]:
        known.update(_MAPS[lvl])
    return known


@dataclass(frozen=True)
class Match:
    """One matching entity with its ancestors (``None`` above the query level)."""

    patient: Patient
    study: Study | None = None
    series: Series | None = None
    instance: Instance | None = None

    def value(self, keyword: str) -> Any:
        """The indexed value of ``keyword`` for this match, or ``None`` if not kept."""
        for level, mapping in _MAPS.items():
            if keyword in mapping:
                row = {Level.PATIENT: self.patient, Level.STUDY: self.study,
                       Level.SERIES: self.series, Level.IMAGE: self.instance}[level]
                return None if row is None else getattr(row, mapping[keyword][0].key)
        if keyword == "NumberOfPatientRelatedStudies":
            return _count(Study, Study.patient_pk, self.patient.id)
        return None


def search(tenant: Tenant, level: Level, filters: Mapping[str, str], *, limit: int | None = None,
           offset: int = 0, fuzzy: bool = False) -> list[Match]:
    """Entities of ``tenant`` at ``level`` matching every filter.

    Filters on attributes the index does not keep are ignored (they match
    everything), as PS3.4 §C.2.2.1.2 allows for optional keys.
    """
    models = [_MODELS[lvl] for lvl in _LEVELS[: _LEVELS.index(level) + 1]]
    stmt = sa.select(*models).select_from(models[-1])
    # Join upward from the query level: instance → series → study → patient.
    for child, parent, fk in ((Instance, Series, Instance.series_pk),
                              (Series, Study, Series.study_pk), (Study, Patient, Study.patient_pk)):
        if child in models:
            stmt = stmt.join(parent, fk == parent.id)
    stmt = stmt.where(*(m.tenant_id == tenant.id for m in models))
    known = attributes(level)
    for keyword, raw in filters.items():
        if keyword in known and raw not in (None, ""):
            column, kind = known[keyword]
            stmt = stmt.where(_condition(column, kind, str(raw), fuzzy))
    stmt = stmt.order_by(*_order(level)).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [Match(*row) for row in db.session.execute(stmt).all()]


def _order(level: Level) -> list:
    return {
        Level.PATIENT: [Patient.id],
        Level.STUDY: [Study.study_date.desc(), Study.study_time.desc(), Study.id],
        Level.SERIES: [Series.series_number, Series.id],
        Level.IMAGE: [Instance.instance_number, Instance.id],
    }[level]


def _count(model, column, value) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(model)
                              .where(column == value)).scalar_one()


def _condition(column: InstrumentedAttribute, kind: str, raw: str, fuzzy: bool):
    if kind == "UI":
        uids = [u.strip() for u in raw.split("\\") if u.strip()]
        return column.in_(uids)
    if kind in ("DA", "TM"):
        return _range(column, raw, kind)
    if kind in ("IS", "US"):
        try:
            return column == int(raw)
        except ValueError as exc:
            raise Invalid(f"not a number: {raw!r}") from exc
    if kind == "MOD":  # any of the study's modalities
        padded = "\\" + sa.func.coalesce(column, "") + "\\"
        alternatives = [m for m in raw.split("\\") if m]
        return sa.or_(*(padded.like(f"%\\{_like(m)}\\%", escape="!") for m in alternatives))
    if kind == "PN":
        return _person_name(column, raw, fuzzy)
    if "*" in raw or "?" in raw:
        return column.like(_like(raw), escape="!")
    return column == raw


def _like(pattern: str) -> str:
    """A DICOM wildcard pattern as a LIKE pattern (``!`` escapes)."""
    escaped = pattern.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return escaped.replace("*", "%").replace("?", "_")


def _person_name(column: InstrumentedAttribute, raw: str, fuzzy: bool):
    if fuzzy and column is Patient.name:
        return Patient.name_search.like(f"%{_like(names.normalise_query(raw))}%", escape="!")
    pattern = _like(raw.lower())
    value = sa.func.lower(column)
    # Whole value, or any one component group of "alphabetic=ideographic=phonetic".
    return sa.or_(value.like(pattern, escape="!"), value.like(pattern + "=%", escape="!"),
                  value.like("%=" + pattern, escape="!"), value.like("%=" + pattern + "=%", escape="!"))


def _range(column: InstrumentedAttribute, raw: str, kind: str):
    width = 8 if kind == "DA" else 6
    if "-" not in raw:
        return column.like(_like(raw), escape="!") if "*" in raw or "?" in raw else column == raw
    low, _, high = raw.partition("-")
    low, high = low.strip().replace(":", ""), high.strip().replace(":", "")
    if (low and not low[:width].replace(".", "").isdigit()) or \
            (high and not high[:width].replace(".", "").isdigit()):
        raise Invalid(f"malformed {kind} range {raw!r}")
    conditions = [column != ""]
    if low:
        conditions.append(column >= low)
    if high:
        # "20261231" must include the whole day; "1200" the whole minute.
        conditions.append(column <= high + ("" if kind == "DA" else "\uffff"))
    return sa.and_(*conditions)
