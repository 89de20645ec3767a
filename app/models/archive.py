"""The archive index: Patient ▸ Study ▸ Series ▸ Instance, per tenant.

UIDs are unique per tenant only, so two institutions may hold the same
Study/Series/SOP Instance UID without colliding.
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TenantOwned, utcnow


class Patient(TenantOwned, db.Model):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "patient_key"),
        sa.Index("ix_patient_tenant_pid", "tenant_id", "patient_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_key: Mapped[str] = mapped_column(sa.String(140))  # PatientID + issuer
    patient_id: Mapped[str] = mapped_column(sa.String(64), default="")
    issuer: Mapped[str] = mapped_column(sa.String(64), default="")
    name: Mapped[str] = mapped_column(sa.String(324), default="")  # full PN, all groups
    name_search: Mapped[str] = mapped_column(sa.Text, default="")  # lowercase + pinyin
    sex: Mapped[str] = mapped_column(sa.String(16), default="")
    birth_date: Mapped[str] = mapped_column(sa.String(8), default="")

    studies: Mapped[list["Study"]] = relationship(back_populates="patient")


class Study(TenantOwned, db.Model):
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "study_uid"),
        sa.Index("ix_study_tenant_date", "tenant_id", "study_date"),
        sa.Index("ix_study_tenant_accession", "tenant_id", "accession_number"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_pk: Mapped[int] = mapped_column(sa.ForeignKey("patient.id"), index=True)
    study_uid: Mapped[str] = mapped_column(sa.String(64))
    study_date: Mapped[str] = mapped_column(sa.String(8), default="")
    study_time: Mapped[str] = mapped_column(sa.String(16), default="")
    accession_number: Mapped[str] = mapped_column(sa.String(16), default="")
    study_id: Mapped[str] = mapped_column(sa.String(16), default="")
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    referring_physician: Mapped[str] = mapped_column(sa.String(324), default="")
    institution: Mapped[str] = mapped_column(sa.String(200), default="")
    modalities: Mapped[str] = mapped_column(sa.String(64), default="")  # "CT\PT"
    num_series: Mapped[int] = mapped_column(default=0)
    num_instances: Mapped[int] = mapped_column(default=0)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    flagged: Mapped[bool] = mapped_column(default=False)  # patient data disagree
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    patient: Mapped[Patient] = relationship(back_populates="studies")
    series: Mapped[list["Series"]] = relationship(
        back_populates="study", order_by="Series.series_number"
    )


class Series(TenantOwned, db.Model):
    __table_args__ = (sa.UniqueConstraint("tenant_id", "series_uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_pk: Mapped[int] = mapped_column(sa.ForeignKey("study.id"), index=True)
    series_uid: Mapped[str] = mapped_column(sa.String(64))
    modality: Mapped[str] = mapped_column(sa.String(16), default="")
    series_number: Mapped[int | None] = mapped_column()
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    body_part: Mapped[str] = mapped_column(sa.String(64), default="")
    series_date: Mapped[str] = mapped_column(sa.String(8), default="")
    series_time: Mapped[str] = mapped_column(sa.String(16), default="")
    frame_of_reference_uid: Mapped[str] = mapped_column(sa.String(64), default="")
    num_instances: Mapped[int] = mapped_column(default=0)

    study: Mapped[Study] = relationship(back_populates="series")
    instances: Mapped[list["Instance"]] = relationship(
        back_populates="series", order_by="Instance.instance_number"
    )


class Instance(TenantOwned, db.Model):
    __table_args__ = (sa.UniqueConstraint("tenant_id", "sop_uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    series_pk: Mapped[int] = mapped_column(sa.ForeignKey("series.id"), index=True)
    sop_uid: Mapped[str] = mapped_column(sa.String(64))
    sop_class_uid: Mapped[str] = mapped_column(sa.String(64))
    transfer_syntax_uid: Mapped[str] = mapped_column(sa.String(64))
    instance_number: Mapped[int | None] = mapped_column()
    rows: Mapped[int | None] = mapped_column()
    columns: Mapped[int | None] = mapped_column()
    number_of_frames: Mapped[int] = mapped_column(default=1)
    image_position: Mapped[str] = mapped_column(sa.String(100), default="")
    image_orientation: Mapped[str] = mapped_column(sa.String(160), default="")
    pixel_spacing: Mapped[str] = mapped_column(sa.String(64), default="")
    slice_location: Mapped[float | None] = mapped_column()
    storage_key: Mapped[str] = mapped_column(sa.String(128))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(sa.String(80), default="")
    patient_mismatch: Mapped[str | None] = mapped_column(sa.Text)  # JSON of differing tags

    series: Mapped[Series] = relationship(back_populates="instances")
