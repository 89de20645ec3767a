"""Web fixtures: two institutions with studies, logged-in clients, a compiled catalog."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.services import users
from tests.conftest import PASSWORD, TenantFixture, make_tenant
from tests.web.data import ROWS_A, ROWS_B, ingest_rows

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "app" / "translations"


@pytest.fixture(scope="session", autouse=True)
def compiled_catalog():
    """Compile the zh catalog when the .mo is missing or older than the .po.

    ``make`` runs ``pybabel compile -d app/translations``; this keeps a bare
    ``pytest`` run honest too.
    """
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            with open(po, "rb") as src:
                catalog = read_po(src)
            tmp = mo.with_name(f"messages.mo.{os.getpid()}.tmp")  # xdist workers race here
            with open(tmp, "wb") as out:
                write_mo(out, catalog)
            tmp.replace(mo)


@pytest.fixture(autouse=True)
def fast_password_hashes(monkeypatch):
    """Cheap hashes for the many test users (scrypt costs ~0.1 s each); checking is unchanged."""
    from werkzeug.security import generate_password_hash

    monkeypatch.setattr(users, "generate_password_hash",
                        lambda password, method=None: generate_password_hash(
                            password, method="pbkdf2:sha256:1000"))


@dataclass
class Seeded:
    a: TenantFixture
    b: TenantFixture
    uids_a: dict[str, str]
    uids_b: dict[str, str]
    root: str  # platform admin


@pytest.fixture
def seeded(app) -> Seeded:
    """HOSPA with seven studies, HOSPB with one, and a platform administrator."""
    a, b = make_tenant("HOSPA"), make_tenant("HOSPB")
    users.create(None, "root", PASSWORD, "platform-admin")
    return Seeded(a, b, ingest_rows(a.tenant, ROWS_A), ingest_rows(b.tenant, ROWS_B), "root")


@pytest.fixture
def client_for(app):
    """A new test client logged in as ``username``."""

    def make(username: str):
        client = app.test_client()
        response = client.post("/login", data={"username": username, "password": PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client

    return make


def html(response) -> str:
    return response.get_data(as_text=True)
