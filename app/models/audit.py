"""Append-only audit trail of access to patient data and of every change."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.base import utcnow


class AuditEvent(db.Model):
    """Who did what to which object, from where, with what outcome.

    Carries UIDs and usernames, never patient names. Rows are never updated
    or deleted through the ORM (see the listeners below).
    """

    __tablename__ = "audit_event"
    __table_args__ = (sa.Index("ix_audit_tenant_at", "tenant_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenant.id", ondelete="SET NULL")
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(sa.String(80))  # username or AE title
    actor_type: Mapped[str] = mapped_column(sa.String(16))  # user | token | dicom | system
    source: Mapped[str] = mapped_column(sa.String(80), default="")  # IP or host
    action: Mapped[str] = mapped_column(sa.String(40), index=True)
    object_type: Mapped[str] = mapped_column(sa.String(20), default="")
    object_uid: Mapped[str] = mapped_column(sa.String(128), default="")
    outcome: Mapped[str] = mapped_column(sa.String(16), default="success")
    detail: Mapped[str] = mapped_column(sa.String(500), default="")


@event.listens_for(AuditEvent, "before_update")
@event.listens_for(AuditEvent, "before_delete")
def _append_only(mapper, connection, target) -> None:  # pragma: no cover - guard
    raise RuntimeError("audit events are append-only")
