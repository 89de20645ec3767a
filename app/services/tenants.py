"""Institutions: registration, approval, AE titles and DICOM peers."""
from __future__ import annotations

import re

import sqlalchemy as sa

from app.extensions import db
from app.models import DicomPeer, Tenant, TenantAE, TenantStatus
from app.services import audit, tenancy
from app.services.audit import Actor
from app.services.errors import Conflict, Invalid, NotFound

_CODE = re.compile(r"^[A-Za-z0-9_-]{2,32}$")
# PS3.5 §6.2 AE: up to 16 chars of the default repertoire, no backslash or controls.
_AE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")


def normalise_ae(ae_title: str) -> str:
    """Strip padding and validate an AE title; raise :class:`Invalid` if unusable."""
    ae = (ae_title or "").strip()
    if not _AE.match(ae):
        raise Invalid("AE title must be 1–16 printable ASCII characters, no backslash")
    return ae


def register(code: str, name: str, ae_title: str, contact: str = "",
             actor: Actor = audit.SYSTEM, approve: bool = False) -> Tenant:
    """Register an institution, pending approval unless ``approve``."""
    if not _CODE.match(code or ""):
        raise Invalid("code must be 2–32 letters, digits, '-' or '_'")
    if not (name or "").strip():
        raise Invalid("name is required")
    ae = normalise_ae(ae_title)
    if db.session.execute(sa.select(Tenant.id).where(Tenant.code == code)).first():
        raise Conflict(f"institution code {code} is taken")
    if db.session.execute(sa.select(TenantAE.id).where(TenantAE.ae_title == ae)).first():
        raise Conflict(f"AE title {ae} is taken")
    status = TenantStatus.APPROVED if approve else TenantStatus.PENDING
    tenant = Tenant(code=code, name=name.strip(), contact=contact, status=status.value)
    tenant.ae_titles.append(TenantAE(ae_title=ae))
    db.session.add(tenant)
    db.session.flush()
    audit.record(tenant, actor, "tenant.register", "tenant", code, detail=status.value)
    db.session.commit()
    return tenant


def set_status(code: str, status: TenantStatus, actor: Actor) -> Tenant:
    """Approve or suspend an institution (platform admin)."""
    tenant = by_code(code)
    tenant.status = status.value
    audit.record(tenant, actor, f"tenant.{status.value}", "tenant", code)
    db.session.commit()
    return tenant


def by_code(code: str) -> Tenant:
    tenant = db.session.execute(sa.select(Tenant).where(Tenant.code == code)).scalar_one_or_none()
    if tenant is None:
        raise NotFound(f"institution {code} not found")
    return tenant


def list_all() -> list[Tenant]:
    return list(db.session.execute(sa.select(Tenant).order_by(Tenant.code)).scalars())


def for_called_ae(ae_title: str) -> Tenant | None:
    """The approved tenant that receives on ``ae_title``, or ``None``."""
    stmt = (
        sa.select(Tenant)
        .join(TenantAE, TenantAE.tenant_id == Tenant.id)
        .where(TenantAE.ae_title == ae_title.strip())
    )
    tenant = db.session.execute(stmt).scalar_one_or_none()
    if tenant is None or not tenant.approved:
        return None
    return tenant


def calling_ae_allowed(tenant: Tenant, calling_ae: str) -> bool:
    """Whether a calling AE may associate, per the tenant's optional allow-list."""
    if not tenant.restrict_calling_aes:
        return True
    return tenancy.find(tenant, DicomPeer, ae_title=calling_ae.strip()) is not None


def set_calling_ae_restriction(tenant: Tenant, restrict: bool, actor: Actor) -> None:
    """Accept associations only from the tenant's registered peers (`restrict`), or from any AE.

    Either way the called AE title must be the tenant's; the restriction adds
    a check of the calling AE title against :func:`peers` (PS3.8 §9.3.4
    reason 3 when refused).
    """
    tenant.restrict_calling_aes = bool(restrict)
    audit.record(tenant, actor, "tenant.callers", "tenant", tenant.code,
                 detail="registered peers only" if restrict else "any calling AE")
    db.session.commit()


def add_peer(tenant: Tenant, ae_title: str, host: str, port: int, description: str,
             actor: Actor) -> DicomPeer:
    """Register a remote AE (C-MOVE destination / allowed caller) for a tenant."""
    ae = normalise_ae(ae_title)
    if not 0 < int(port) < 65536:
        raise Invalid("port must be 1–65535")
    if tenancy.find(tenant, DicomPeer, ae_title=ae):
        raise Conflict(f"peer {ae} exists")
    peer = DicomPeer(tenant_id=tenant.id, ae_title=ae, host=host.strip(), port=int(port),
                     description=description)
    db.session.add(peer)
    audit.record(tenant, actor, "peer.add", "peer", ae)
    db.session.commit()
    return peer


def peers(tenant: Tenant) -> list[DicomPeer]:
    stmt = tenancy.select(tenant, DicomPeer).order_by(DicomPeer.ae_title)
    return list(db.session.execute(stmt).scalars())


def move_destination(tenant: Tenant, ae_title: str) -> DicomPeer | None:
    """The tenant's registered peer for a C-MOVE destination AE, or ``None``."""
    return tenancy.find(tenant, DicomPeer, ae_title=ae_title.strip())
