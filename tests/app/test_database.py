"""SQLite keeps its planner statistics current as the archive grows."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from app import database
from app.extensions import db
from tests.bench.data import populate_studies
from tests.conftest import make_tenant


@pytest.mark.parametrize("app", ["sqlite"], indirect=True)
def test_a_grown_archive_gets_statistics_and_the_patient_index(app, monkeypatch):
    monkeypatch.setattr(database, "_analyzed_size", 0)
    tenant = make_tenant("HOSPA")
    pids = populate_studies(db.engine, tenant.code, 400)
    monkeypatch.setattr(database, "_checked_at", -database.CHECK_EVERY_S)  # due for a look
    db.session.execute(sa.text("SELECT 1"))  # a request's work on a pooled connection...
    db.session.close()  # ...which goes back to the pool: statistics are taken
    with db.engine.connect() as conn:
        stats = conn.exec_driver_sql("SELECT tbl FROM sqlite_stat1").scalars().all()
        assert "study" in stats and "patient" in stats
        plan = " ".join(str(row) for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT study.id FROM study JOIN patient ON study.patient_pk = "
            "patient.id WHERE patient.tenant_id = 1 AND study.tenant_id = 1 AND "
            "patient.patient_id = ? ORDER BY study.study_date DESC", (pids[3],)))
    assert "ix_patient_tenant_pid" in plan  # found by Patient ID, not by scanning every study
    assert database._analyzed_size >= 400
