"""Shared column helpers and the tenant-ownership mixin."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


def utcnow() -> datetime:
    """Timezone-aware now in UTC (stored naive-UTC on SQLite)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


class TenantOwned:
    """Mixin for every row that belongs to one tenant.

    The non-null ``tenant_id`` is the structural half of tenancy; the other
    half is :mod:`app.services.tenancy`, the only way services look rows up.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:  # noqa: N805 - SQLAlchemy declared_attr
        return mapped_column(
            sa.ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False, index=True
        )
