"""Shared fixtures: an app on SQLite or the machine's PostgreSQL, two tenants, logins.

Database tests take the ``app`` fixture, which runs each test on both
backends. The schema is built by the real migrations once per backend and
emptied between tests. Tests that start servers take ``sqlite_app`` or
``pg_app`` directly.
"""
from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from app.services import tenants, users

PG_SERVER = os.environ.get("PACS_TEST_PG", "postgresql+psycopg://postgres@localhost")
REDIS_TEST_URL = os.environ.get("PACS_TEST_REDIS", "redis://localhost:6379/15")
PASSWORD = "correct-horse-9"


@dataclass
class TenantFixture:
    tenant: object
    code: str
    ae: str
    admin: str
    doctor: str


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw0")


@pytest.fixture(scope="session")
def pg_database():
    """A PostgreSQL database of this test run and worker, dropped at the end."""
    name = f"pacs_test_{_worker()}_{os.getpid()}"
    engine = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"{PG_SERVER}/{name}"
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


class FreshContextClient(FlaskClient):
    """Runs each request in its own app context, as a real server does.

    Tests keep an app context open to call services; without this, ``g``
    (and Flask-Login's cached user) would leak from one request to the next.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


def _make_app(uri: str, tmp: Path, migrated: set) -> object:
    app = create_app({
        "TESTING": True, "SQLALCHEMY_DATABASE_URI": uri, "STORAGE_URL": f"file://{tmp / 'archive'}",
        "PACS_DATA_DIR": str(tmp), "WTF_CSRF_ENABLED": False, "SECRET_KEY": "test-secret",
        "SERVER_NAME": None,
    })
    app.test_client_class = FreshContextClient
    with app.app_context():
        if uri not in migrated:
            upgrade()
            migrated.add(uri)
        _empty(uri)
    return app


def _empty(uri: str) -> None:
    from app.services import index_parents

    index_parents.CACHE.clear()
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    if uri.startswith("postgresql"):
        quoted = ", ".join(f'"{t}"' for t in tables)
        db.session.execute(sa.text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    else:
        for table in tables:
            db.session.execute(sa.text(f'DELETE FROM "{table}"'))
    db.session.commit()


_MIGRATED: set[str] = set()


@pytest.fixture(scope="session")
def sqlite_uri(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'pacs.sqlite3'}"


@pytest.fixture
def sqlite_app(sqlite_uri, tmp_path):
    app = _make_app(sqlite_uri, tmp_path, _MIGRATED)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def pg_app(pg_database, tmp_path):
    app = _make_app(pg_database, tmp_path, _MIGRATED)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request):
    """The app on each backend in turn (the test runs twice)."""
    return request.getfixturevalue(f"{request.param}_app" if request.param == "sqlite" else "pg_app")


@pytest.fixture
def client(app):
    return app.test_client()


def make_tenant(code: str) -> TenantFixture:
    tenant = tenants.register(code, f"{code} 医院", code, approve=True)
    admin, doctor = f"{code.lower()}-admin", f"{code.lower()}-doctor"
    users.create(tenant, admin, PASSWORD, "tenant-admin")
    users.create(tenant, doctor, PASSWORD, "radiologist")
    return TenantFixture(tenant, code, code, admin, doctor)


@pytest.fixture
def two_tenants(app):
    """Two approved institutions, HOSPA and HOSPB, each with an admin and a radiologist."""
    return make_tenant("HOSPA"), make_tenant("HOSPB")


@pytest.fixture
def login(client):
    def do(username: str, password: str = PASSWORD):
        response = client.post("/login", data={"username": username, "password": password})
        assert response.status_code == 302, response.data[:500]
        return response

    return do


def unique_uid() -> str:
    return f"2.25.{uuid.uuid4().int}"
