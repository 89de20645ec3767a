"""The study list: search by name (汉字, pinyin, initials), IDs, modality, dates; sort; pages; htmx."""
from __future__ import annotations

import re
from datetime import date

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent
from tests.web.conftest import html

ALL_A = ["PA1001", "PA1002", "PA1003", "PA1004", "PA1005", "PA1006", "PA1007"]


def pids(page: str) -> list[str]:
    """Patient IDs of the table rows, in order."""
    return re.findall(r'class="c-pid"[^>]*>([^<]*)<', page)


@pytest.fixture
def doctor(seeded, client_for):
    return client_for(seeded.a.doctor)


SEARCHES = [
    ({"name": "张三"}, ["PA1001"]),
    ({"name": "zhangsan"}, ["PA1001"]),
    ({"name": "ZhangSan"}, ["PA1001"]),
    ({"name": "zs"}, ["PA1001"]),
    ({"name": "zhang san"}, ["PA1001"]),
    ({"name": "欧阳"}, ["PA1004"]),
    ({"name": "zhao"}, ["PA1003"]),
    ({"patient_id": "PA1002"}, ["PA1002"]),
    ({"patient_id": "PA100"}, ALL_A),
    ({"accession": "ACC005"}, ["PA1005"]),
    ({"modality": "MR"}, ["PA1002"]),
    ({"modality": "CT", "sort": "pid", "dir": "asc"}, ["PA1001", "PA1003", "PA1007"]),
    ({"date_from": "2026-10-01", "date_to": "2026-10-31", "sort": "date", "dir": "asc"},
     ["PA1002", "PA1004", "PA1005", "PA1006"]),
    ({"date_to": "2025-12-31"}, ["PA1003"]),
    ({"name": "张", "modality": "MR"}, []),
]


def test_search(doctor):
    """Name as 汉字 / pinyin / initials, patient ID, accession, modality, date range."""
    for query, expected in SEARCHES:
        response = doctor.get("/", query_string=query)
        assert response.status_code == 200, query
        found = pids(html(response))
        assert (found if "sort" in query else sorted(found)) == expected, query
        if not expected:
            assert "没有符合条件的检查" in html(response)


def test_search_never_shows_the_other_institution(seeded, client_for):
    page = html(client_for(seeded.a.doctor).get("/", query_string={"name": "张"}))
    assert pids(page) == ["PA1001"] and "张伟" not in page and "PB9001" not in page
    page = html(client_for(seeded.b.doctor).get("/"))
    assert pids(page) == ["PB9001"] and "张三" not in page


def test_date_shortcut_without_javascript(seeded, app, client_for):
    from app.services import ingest
    from tests.factory import ct_bytes
    from tests.web.data import ACTOR
    today = date.today().strftime("%Y%m%d")
    ingest.ingest(seeded.a.tenant, ct_bytes(patient_id="PA2000", StudyDate=today), ACTOR)
    page = html(client_for(seeded.a.doctor).get("/", query_string={"days": "7"}))
    assert pids(page) == ["PA2000"]
    iso = f"{today[:4]}-{today[4:6]}-{today[6:]}"
    assert f'name="date_to" type="date" value="{iso}"' in page  # the form shows the range


def test_sort_by_name_and_date(doctor):
    by_date = pids(html(doctor.get("/?sort=date&dir=desc")))
    assert by_date == ["PA1001", "PA1006", "PA1005", "PA1004", "PA1002", "PA1007", "PA1003"]
    assert pids(html(doctor.get("/?sort=date&dir=asc"))) == by_date[::-1]
    by_pid = pids(html(doctor.get("/?sort=pid&dir=asc")))
    assert by_pid == ALL_A
    page = html(doctor.get("/?sort=images&dir=desc"))
    assert pids(page)[0] == "PA1001"  # three images
    assert 'aria-sort="descending"' in page


def test_paging(doctor):
    first = html(doctor.get("/?sort=pid&dir=asc&per_page=5"))
    second = html(doctor.get("/?sort=pid&dir=asc&per_page=5&page=2"))
    assert pids(first) == ALL_A[:5] and pids(second) == ALL_A[5:]
    assert "第 1 / 2 页" in first and 'rel="next"' in first
    assert "page=2" in first and "per_page=5" in first  # the link keeps the page size
    assert 'rel="prev"' in second


def test_htmx_returns_only_the_table(doctor):
    headers = {"HX-Request": "true", "HX-Target": "study-table"}
    response = doctor.get("/?name=zhangsan", headers=headers)
    body = html(response)
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    assert "<table" in body and "<html" not in body and 'id="study-search"' not in body
    assert pids(body) == ["PA1001"]
    # The hidden sort fields belong to the search form, so a later filter keeps the order.
    assert 'form="study-search" name="sort"' in body
    full = doctor.get("/?name=zhangsan")
    assert "<html" in html(full) and "HX-Request" in full.headers["Vary"]
    assert 'hx-history="false"' in html(full)
    # A boosted navigation is a whole page, not the table.
    boosted = doctor.get("/", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in html(boosted) or 'id="study-search"' in html(boosted)


def test_every_search_is_audited(seeded, doctor):
    def count() -> int:
        return db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "study.query", AuditEvent.actor == seeded.a.doctor)).scalar_one()

    before = count()
    doctor.get("/?name=zs")
    doctor.get("/?accession=ACC001", headers={"HX-Request": "true", "HX-Target": "study-table"})
    assert count() == before + 2
    event = db.session.execute(sa.select(AuditEvent).where(AuditEvent.action == "study.query")
                               .order_by(AuditEvent.id.desc())).scalars().first()
    assert event.tenant_id == seeded.a.tenant.id and "accession" in event.detail
    assert "张三" not in event.detail and "ACC001" not in event.detail  # keys, never values


def test_bad_filters_get_a_readable_answer(doctor):
    response = doctor.get("/?date_from=2026-13-45x&sort=nonsense")
    assert response.status_code == 400
    assert "日期" in html(response) and "Traceback" not in html(response)
    response = doctor.get("/?page=abc")
    assert response.status_code == 400


def test_study_page(seeded, doctor):
    uid = seeded.uids_a["PA1001"]
    page = html(doctor.get(f"/studies/{uid}"))
    assert "张三" in page and "PA1001" in page and "胸部CT平扫" in page and uid in page
    assert 'hx-history="false"' in page
    assert f'href="/studies/{uid}"' in html(doctor.get("/?name=zs"))
