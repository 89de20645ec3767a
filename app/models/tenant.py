"""Tenants (institutions), their users, API tokens and DICOM peers."""
from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models.base import TenantOwned, utcnow


class TenantStatus(str, enum.Enum):
    """Approval state of an institution (seed 003, 平台管理)."""

    PENDING = "pending"
    APPROVED = "approved"
    SUSPENDED = "suspended"


class Tenant(db.Model):
    """A hospital or imaging centre; the unit of data isolation."""

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(16), default=TenantStatus.PENDING.value)
    contact: Mapped[str] = mapped_column(sa.String(200), default="")
    restrict_calling_aes: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ae_titles: Mapped[list["TenantAE"]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan", order_by="TenantAE.ae_title"
    )

    @property
    def approved(self) -> bool:
        return self.status == TenantStatus.APPROVED.value


class TenantAE(db.Model):
    """A called AE title of the DICOM node that receives for one tenant."""

    __tablename__ = "tenant_ae"
    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.ForeignKey("tenant.id", ondelete="CASCADE"))
    ae_title: Mapped[str] = mapped_column(sa.String(16), unique=True)
    tenant: Mapped[Tenant] = relationship(back_populates="ae_titles")


class DicomPeer(TenantOwned, db.Model):
    """A remote AE known to a tenant: a C-MOVE destination and/or an allowed caller."""

    __tablename__ = "dicom_peer"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "ae_title"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    ae_title: Mapped[str] = mapped_column(sa.String(16))
    host: Mapped[str] = mapped_column(sa.String(255), default="")
    port: Mapped[int] = mapped_column(default=104)
    description: Mapped[str] = mapped_column(sa.String(200), default="")


class User(db.Model):
    """A person who logs in. Platform admins have no tenant; everyone else has one."""

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(100), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(256))
    role: Mapped[str] = mapped_column(sa.String(32))
    active: Mapped[bool] = mapped_column(default=True)
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None] = mapped_column()
    last_login_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    tenant: Mapped[Tenant | None] = relationship()

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class ApiToken(TenantOwned, db.Model):
    """A bearer token for DICOMweb and scripts; only its SHA-256 is stored."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship()
