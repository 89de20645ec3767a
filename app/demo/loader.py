"""Idempotent demo data: the DEMO institution, its users and synthetic studies."""
from __future__ import annotations

import os
import secrets
from typing import Callable, Iterable

import pydicom
import sqlalchemy as sa
from pydicom.uid import generate_uid

from app.extensions import db
from app.models import Study, User
from app.services import ingest, tenants, users
from app.services.audit import Actor
from app.services.errors import DomainError, NotFound

DEMO_CODE, DEMO_AE = "DEMO", "DEMO"
LOADER = Actor("load-demo", "system")
DEMO_USERS = [  # (username, role, display name)
    ("admin", "platform-admin", "平台管理员"),
    ("demo-admin", "tenant-admin", "科室管理员"),
    ("doctor", "radiologist", "王医生"),
    ("reviewer", "reviewer", "审核医生"),
    ("tech", "technician", "李技师"),
    ("registrar", "registrar", "登记员"),
    ("clinician", "clinician", "临床医生"),
    ("expert", "expert", "会诊专家"),
]


def load(echo: Callable[[str], None] = print, ct_slices: int | None = None) -> str:
    """Create or refresh the demo tenant, users and studies; return the password."""
    tenant = _tenant()
    password = os.environ.get("PACS_DEMO_PASSWORD") or secrets.token_urlsafe(9)
    for username, role, name in DEMO_USERS:
        user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            users.create(None if role == "platform-admin" else tenant, username, password, role,
                         name, LOADER)
        else:
            users.set_password(user, password)
    n = ct_slices or int(os.environ.get("PACS_DEMO_CT_SLICES", "300"))
    for label, datasets in _studies(n):
        stored = _ingest_all(tenant, datasets)
        echo(f"demo study {label}: {stored} new instances")
    echo("demo logins (password: %s): %s" % (password, ", ".join(
        f"{u} ({r})" for u, r, _ in DEMO_USERS)))
    return password


def _tenant():
    try:
        return tenants.by_code(DEMO_CODE)
    except NotFound:
        return tenants.register(DEMO_CODE, "示范医院 Demo Hospital", DEMO_AE, actor=LOADER,
                                approve=True)


def _uid(label: str) -> str:
    return generate_uid(entropy_srcs=["cloud-pacs-demo", label])


def _studies(n_ct: int) -> Iterable[tuple[str, Iterable[bytes]]]:
    """Each demo study as a lazy iterable of Part 10 bytes (only generated if missing)."""
    from app.demo import synthetic as syn

    chest = syn.StudySpec(study_uid=_uid("chest"), seed=1)
    yield "chest CT", _unless_present(chest.study_uid, "CT", lambda: syn.chest_ct(chest, n_slices=n_ct))
    yield "PET/CT", _unless_present(chest.study_uid, "PT", lambda: syn.pet_series(chest, ct_slices=n_ct))
    mr = syn.StudySpec(patient=syn.PatientSpec("DEMO0002", "Li^Na=李^娜", "F", "19780605"),
                       study_uid=_uid("mr"), accession="A0002", description="头颅MR平扫", seed=2)
    yield "head MR", _unless_present(mr.study_uid, "MR", lambda: syn.mr_series(mr))
    xa = syn.StudySpec(patient=syn.PatientSpec("DEMO0003", "Wang^Qiang=王^强", "M", "19590220"),
                       study_uid=_uid("xa"), accession="A0003", description="冠状动脉造影", seed=3)
    yield "coronary XA", _unless_present(xa.study_uid, "XA", lambda: [syn.xa_cine(xa)])
    yield "pydicom samples", (p.read_bytes() for p in syn.sample_files())


def _unless_present(study_uid: str, modality: str, make: Callable[[], Iterable[pydicom.Dataset]]
                    ) -> Iterable[bytes]:
    """Generate a series only if the demo tenant lacks that study or that modality in it."""
    from app.demo.synthetic import to_bytes

    tenant = tenants.by_code(DEMO_CODE)
    study = db.session.execute(sa.select(Study).where(
        Study.tenant_id == tenant.id, Study.study_uid == study_uid)).scalar_one_or_none()
    if study is not None and modality in study.modalities.split("\\"):
        return []
    return (to_bytes(ds) for ds in make())


def _ingest_all(tenant, parts: Iterable[bytes]) -> int:
    stored = 0
    for data in parts:
        try:
            result = ingest.ingest(tenant, data, LOADER)
        except DomainError:
            continue  # a sample file the archive refuses is simply not part of the demo
        stored += result.status == ingest.STORED
    return stored
