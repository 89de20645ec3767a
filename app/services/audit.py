"""Audit trail: one call for every access to patient data and every change.

Events carry usernames, AE titles and UIDs — never patient names.
"""
from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from app.database import RELAXED_SYNC
from app.extensions import db
from app.models import AuditEvent, Tenant
from app.models.base import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who acts: a logged-in user, a token, a DICOM peer or the system."""

    name: str
    kind: str = "user"  # user | token | dicom | system
    source: str = ""  # client IP, or peer host for DICOM
    user_id: int | None = None
    role: str = ""


SYSTEM = Actor("system", "system")


def record(
    tenant: Tenant | None,
    actor: Actor,
    action: str,
    object_type: str = "",
    object_uid: str = "",
    outcome: str = "success",
    detail: str = "",
    commit: bool = False,
) -> None:
    """Append an audit event to the current transaction (and commit if asked).

    Parameters
    ----------
    action
        Dotted verb, e.g. ``study.query``, ``instance.store``, ``series.retrieve``.
    detail
        Short non-PHI context: counts, query keys present, error class.
    """
    db.session.add(
        AuditEvent(
            tenant_id=tenant.id if tenant else None,
            actor=actor.name[:80],
            actor_type=actor.kind,
            source=actor.source[:80],
            action=action,
            object_type=object_type,
            object_uid=object_uid[:128],
            outcome=outcome,
            detail=detail[:500],
        )
    )
    if commit:
        db.session.commit()


def access(tenant: Tenant | None, actor: Actor, action: str, object_type: str = "",
           object_uid: str = "", outcome: str = "success", detail: str = "") -> None:
    """Record and commit a read of patient data (a query, view, retrieval or render).

    Unlike :func:`record` with ``commit=True``, the commit does not wait for
    the disk: a read is audited for every request, and a flush per query
    would be most of a C-FIND's or QIDO's time. The event survives the
    process crashing; only a power loss before the database's next flush
    (the next durable commit, a checkpoint, or PostgreSQL's WAL writer within
    a second) can drop it. Changes to data keep using :func:`record`,
    whose commit is durable before the caller answers.
    """
    _relax_this_commit()
    insert(tenant, actor, action, object_type, object_uid, outcome, detail)
    db.session.commit()


def _relax_this_commit() -> None:
    """Let the current transaction's commit skip waiting for the disk."""
    conn = db.session.connection()
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")  # this transaction only
    elif dialect == "sqlite":
        # WAL + NORMAL: the commit is appended to the WAL, fsynced at the next durable
        # commit or checkpoint. app.database restores FULL when the connection goes back to
        # the pool, before any other transaction can use it. SQLite allows the change only
        # outside a transaction: after a write in this one, the commit stays durable.
        pooled = conn.connection
        try:
            pooled.driver_connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError:
            return
        pooled.info[RELAXED_SYNC] = True


_INSERT = sa.insert(AuditEvent)


def insert(tenant: Tenant | None, actor: Actor, action: str, object_type: str = "",
           object_uid: str = "", outcome: str = "success", detail: str = "") -> None:
    """:func:`record` as one Core INSERT in the current transaction, for hot paths."""
    # Core on the session's connection: no statement built and no ORM bulk path per call.
    db.session.connection().execute(_INSERT, dict(
        tenant_id=tenant.id if tenant else None, at=utcnow(), actor=actor.name[:80],
        actor_type=actor.kind, source=actor.source[:80], action=action,
        object_type=object_type, object_uid=object_uid[:128], outcome=outcome,
        detail=detail[:500]))


def browse(
    tenant: Tenant | None,
    action: str = "",
    actor: str = "",
    outcome: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEvent], int]:
    """Return one page of a tenant's audit events, newest first, and the total.

    ``tenant=None`` (platform admin) browses every tenant's events.
    """
    stmt = sa.select(AuditEvent)
    if tenant is not None:
        stmt = stmt.where(AuditEvent.tenant_id == tenant.id)
    if action:
        stmt = stmt.where(AuditEvent.action.like(f"{action}%"))
    if actor:
        stmt = stmt.where(AuditEvent.actor == actor)
    if outcome:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    if since:
        stmt = stmt.where(AuditEvent.at >= since)
    if until:
        stmt = stmt.where(AuditEvent.at < until)
    total = db.session.execute(sa.select(sa.func.count()).select_from(stmt.subquery())).scalar_one()
    rows = db.session.execute(
        stmt.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    ).scalars().all()
    return list(rows), total
