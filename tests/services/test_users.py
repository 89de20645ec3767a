"""Password login with lockout, tokens, and institution approval."""
from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.models import AuditEvent, TenantStatus
from app.services import tenants, users
from app.services.audit import Actor
from app.services.errors import Conflict, Invalid, Unauthorized
from tests.conftest import PASSWORD


def test_password_is_hashed_and_checked(two_tenants):
    a, _ = two_tenants
    user = users.by_username(a.doctor)
    assert PASSWORD not in user.password_hash and user.password_hash.startswith("scrypt:")
    assert users.authenticate(a.doctor, PASSWORD, "10.0.0.1").id == user.id
    with pytest.raises(Unauthorized, match="wrong username or password"):
        users.authenticate(a.doctor, "wrong", "10.0.0.1")
    with pytest.raises(Unauthorized, match="wrong username or password"):
        users.authenticate("nobody", "wrong", "10.0.0.1")


def test_lockout_after_repeated_failures(two_tenants):
    a, _ = two_tenants
    for _ in range(5):
        with pytest.raises(Unauthorized):
            users.authenticate(a.doctor, "wrong", "10.0.0.1", max_failures=5)
    with pytest.raises(Unauthorized, match="locked"):
        users.authenticate(a.doctor, PASSWORD, "10.0.0.1")
    user = users.by_username(a.doctor)
    user.locked_until = user.locked_until - timedelta(minutes=16)
    db.session.commit()
    assert users.authenticate(a.doctor, PASSWORD, "10.0.0.1").username == a.doctor
    outcomes = [e.outcome for e in db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.action == "login").order_by(AuditEvent.id)).scalars()]
    assert outcomes == ["failure"] * 5 + ["denied", "success"]


@pytest.mark.usefixtures("app")
def test_pending_institution_cannot_log_in_until_approved():
    tenant = tenants.register("NEWH", "新医院", "NEWHAE")
    assert tenant.status == TenantStatus.PENDING.value
    users.create(tenant, "newadmin", PASSWORD, "tenant-admin")
    with pytest.raises(Unauthorized):
        users.authenticate("newadmin", PASSWORD, "x")
    assert tenants.for_called_ae("NEWHAE") is None  # nor receive DICOM
    tenants.set_status("NEWH", TenantStatus.APPROVED, Actor("root"))
    assert users.authenticate("newadmin", PASSWORD, "x").username == "newadmin"
    assert tenants.for_called_ae("NEWHAE").code == "NEWH"


def test_tokens_belong_to_their_tenant(two_tenants):
    a, b = two_tenants
    token = users.create_token(a.tenant, a.doctor)
    assert users.user_for_token(token).tenant_id == a.tenant.id
    assert users.user_for_token(token + "x") is None
    with pytest.raises(Exception, match="not found"):
        users.create_token(b.tenant, a.doctor)  # another tenant's user


def test_registration_rules(two_tenants):
    with pytest.raises(Conflict):
        tenants.register("HOSPA", "dup", "OTHERAE")
    with pytest.raises(Conflict):
        tenants.register("NEWC", "dup", "HOSPA")
    with pytest.raises(Invalid):
        tenants.register("x", "too short code", "AE1")
    with pytest.raises(Invalid):
        tenants.register("GOODC", "name", "AE TITLE TOO LONG!")
    with pytest.raises(Invalid):
        users.create(None, "plainuser", PASSWORD, "radiologist")  # needs an institution
