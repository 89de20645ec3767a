"""Audit: reads are recorded without a flush each; changes stay durable."""
from __future__ import annotations

import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, Tenant
from app.services import audit, ingest
from app.services.audit import Actor
from tests.factory import ct_bytes

ACTOR = Actor("reader", "user", "10.0.0.7")


def _events(tenant, action):
    return db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.tenant_id == tenant.id, AuditEvent.action == action)).scalars().all()


def test_read_access_is_committed_and_browsable(two_tenants):
    a, b = two_tenants
    audit.access(a.tenant, ACTOR, "study.query", "study", detail="keys=name results=3")
    db.session.rollback()  # what access() committed is not undone by a later rollback
    events = _events(a.tenant, "study.query")
    assert [(e.actor, e.source, e.detail) for e in events] == [
        ("reader", "10.0.0.7", "keys=name results=3")]
    rows, total = audit.browse(b.tenant, action="study.query")
    assert (rows, total) == ([], 0)


def test_relaxed_commit_does_not_leak_into_later_writes(app, two_tenants):
    """After a read's commit skipped the flush, the next transaction's commit
    on any pooled connection flushes again (SQLite ``synchronous`` back to FULL)."""
    a, _ = two_tenants
    tenant_id = a.tenant.id
    audit.access(a.tenant, ACTOR, "study.view", "study", "1.2.3")
    db.session.close()
    for _ in range(3):  # whichever pooled connection comes back
        conn = db.session.connection()
        if conn.dialect.name == "sqlite":
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        else:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        db.session.close()
    tenant = db.session.get(Tenant, tenant_id)
    result = ingest.ingest(tenant, ct_bytes(), ACTOR)
    assert result.status == ingest.STORED
    assert len(_events(tenant, "instance.store")) == 1
