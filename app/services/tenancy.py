"""The one tenant-scoped way to look up tenant-owned rows.

Every query on a :class:`~app.models.base.TenantOwned` model goes through
:func:`select` or :func:`get`, which add ``tenant_id = :tenant``. Another
tenant's row is therefore simply not found (404), never forbidden (403), so
its existence does not leak.
"""
from __future__ import annotations

from typing import Any, TypeVar

import sqlalchemy as sa

from app.extensions import db
from app.models import Tenant
from app.services.errors import NotFound

M = TypeVar("M")


def select(tenant: Tenant, model: type[M], *columns: Any) -> sa.Select:
    """``SELECT model (or columns) FROM model WHERE tenant_id = tenant.id``."""
    stmt = sa.select(*columns) if columns else sa.select(model)
    return stmt.where(model.tenant_id == tenant.id)  # type: ignore[attr-defined]


def find(tenant: Tenant, model: type[M], **filters: Any) -> M | None:
    """Return the tenant's one row matching ``filters``, or ``None``."""
    stmt = select(tenant, model).filter_by(**filters)
    return db.session.execute(stmt).scalars().first()


def get(tenant: Tenant, model: type[M], **filters: Any) -> M:
    """Return the tenant's one row matching ``filters`` or raise :class:`NotFound`."""
    row = find(tenant, model, **filters)
    if row is None:
        raise NotFound(f"{model.__name__} not found")
    return row
