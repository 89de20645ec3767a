"""Viewer measurements, annotations and key images: per study and per user.

Geometry is kept in image pixel coordinates of one frame of one instance
(see :mod:`render_farm.measure`), so it does not depend on how the image was
shown; the computed values (mm, mm², HU …) are stored beside it as they were
reported to the user.
"""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import TenantOwned, utcnow


class Annotation(TenantOwned, db.Model):
    """One measurement or annotation a user drew on a frame."""

    __table_args__ = (sa.Index("ix_annotation_owner_study", "tenant_id", "user_id", "study_uid"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    study_uid: Mapped[str] = mapped_column(sa.String(64))
    series_uid: Mapped[str] = mapped_column(sa.String(64), default="")
    sop_uid: Mapped[str] = mapped_column(sa.String(64))
    frame: Mapped[int] = mapped_column(default=0)  # 0-based
    kind: Mapped[str] = mapped_column(sa.String(16))  # length | angle | ellipse | text …
    geometry: Mapped[str] = mapped_column(sa.Text)  # JSON: {"points": [[x, y], ...]}
    text: Mapped[str] = mapped_column(sa.String(200), default="")
    result: Mapped[str] = mapped_column(sa.Text, default="{}")  # JSON of computed values
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KeyImage(TenantOwned, db.Model):
    """A frame a user marked as a key image (关键图像) of a study."""

    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "user_id", "sop_uid", "frame"),
        sa.Index("ix_key_image_owner_study", "tenant_id", "user_id", "study_uid"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"), index=True)
    study_uid: Mapped[str] = mapped_column(sa.String(64))
    series_uid: Mapped[str] = mapped_column(sa.String(64), default="")
    sop_uid: Mapped[str] = mapped_column(sa.String(64))
    frame: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
