"""The study list: search, sort and page a tenant's studies; open one study."""
from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from app.extensions import db
from app.models import Patient, Series, Study, Tenant
from app.services import audit, names, tenancy
from app.services.audit import Actor
from app.services.errors import Invalid

SORTABLE = {
    "date": (Study.study_date, Study.study_time),
    "name": (Patient.name,),
    "pid": (Patient.patient_id,),
    "accession": (Study.accession_number,),
    "modality": (Study.modalities,),
    "images": (Study.num_instances,),
    "received": (Study.created_at,),
}


@dataclass(frozen=True)
class StudyQuery:
    name: str = ""  # Chinese characters, pinyin, pinyin initials or alphabetic
    patient_id: str = ""
    accession: str = ""
    modality: str = ""
    date_from: str = ""  # YYYYMMDD
    date_to: str = ""
    sort: str = "date"
    descending: bool = True
    page: int = 1
    per_page: int = 25


@dataclass(frozen=True)
class StudyPage:
    rows: list[tuple[Study, Patient]]
    total: int
    query: StudyQuery

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.query.per_page))


def search(tenant: Tenant, q: StudyQuery, actor: Actor) -> StudyPage:
    """One page of the tenant's studies matching ``q``; audited as ``study.query``."""
    if q.sort not in SORTABLE:
        raise Invalid(f"cannot sort by {q.sort!r}")
    for value in (q.date_from, q.date_to):
        if value and not (len(value) == 8 and value.isdigit()):
            raise Invalid("dates must be YYYYMMDD")
    stmt = tenancy.select(tenant, Study, Study, Patient).join(Patient, Study.patient_pk == Patient.id)
    if q.name.strip():
        needle = names.normalise_query(q.name).replace("!", "!!").replace("%", "!%").replace("_", "!_")
        stmt = stmt.where(Patient.name_search.like(f"%{needle}%", escape="!"))
    if q.patient_id.strip():
        stmt = stmt.where(Patient.patient_id.like(f"{_prefix(q.patient_id)}%", escape="!"))
    if q.accession.strip():
        stmt = stmt.where(Study.accession_number.like(f"{_prefix(q.accession)}%", escape="!"))
    if q.modality.strip():
        stmt = stmt.where(("\\" + Study.modalities + "\\").like(f"%\\{_prefix(q.modality.upper())}\\%",
                                                                escape="!"))
    if q.date_from:
        stmt = stmt.where(Study.study_date >= q.date_from)
    if q.date_to:
        stmt = stmt.where(Study.study_date <= q.date_to, Study.study_date != "")
    total = db.session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    columns = SORTABLE[q.sort]
    order = [c.desc() if q.descending else c.asc() for c in columns] + [Study.id.desc()]
    page = max(1, q.page)
    rows = db.session.execute(
        stmt.order_by(*order).limit(q.per_page).offset((page - 1) * q.per_page)
    ).all()
    keys = ",".join(k for k in ("name", "patient_id", "accession", "modality", "date_from", "date_to")
                    if getattr(q, k))
    audit.access(tenant, actor, "study.query", "study", detail=f"keys={keys} results={total}")
    return StudyPage([(s, p) for s, p in rows], total, q)


def _prefix(text: str) -> str:
    return text.strip().replace("!", "!!").replace("%", "!%").replace("_", "!_")


def get_study(tenant: Tenant, study_uid: str, actor: Actor, action: str = "study.view") -> Study:
    """One study of ``tenant`` (404 otherwise), audited as ``action``."""
    study = tenancy.get(tenant, Study, study_uid=study_uid)
    audit.access(tenant, actor, action, "study", study_uid)
    return study


def series_of(tenant: Tenant, study: Study) -> list[Series]:
    stmt = tenancy.select(tenant, Series).where(Series.study_pk == study.id) \
        .order_by(Series.series_number, Series.id)
    return list(db.session.execute(stmt).scalars())


def display_name(patient: Patient) -> str:
    return names.display(patient.name)
