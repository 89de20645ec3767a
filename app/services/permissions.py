"""Roles and what each may do: the one place permissions are decided."""
from __future__ import annotations

import enum

from app.services.errors import Forbidden


class Role(str, enum.Enum):
    PLATFORM_ADMIN = "platform-admin"
    TENANT_ADMIN = "tenant-admin"
    REGISTRAR = "registrar"
    TECHNICIAN = "technician"
    RADIOLOGIST = "radiologist"
    REVIEWER = "reviewer"
    CLINICIAN = "clinician"
    EXPERT = "expert"


ROLE_NAMES = [r.value for r in Role]

STUDY_READ = "study.read"
STUDY_WRITE = "study.write"  # upload / STOW / import
AUDIT_READ = "audit.read"
TENANT_ADMIN = "tenant.admin"  # users, AE titles, peers of one tenant
PLATFORM_ADMIN = "platform.admin"  # approve institutions

_READERS = {Role.TENANT_ADMIN, Role.REGISTRAR, Role.TECHNICIAN, Role.RADIOLOGIST,
            Role.REVIEWER, Role.CLINICIAN, Role.EXPERT}
_WRITERS = {Role.TENANT_ADMIN, Role.REGISTRAR, Role.TECHNICIAN, Role.RADIOLOGIST}

PERMISSIONS: dict[str, set[Role]] = {
    STUDY_READ: _READERS,
    STUDY_WRITE: _WRITERS,
    AUDIT_READ: {Role.TENANT_ADMIN, Role.PLATFORM_ADMIN},
    TENANT_ADMIN: {Role.TENANT_ADMIN},
    PLATFORM_ADMIN: {Role.PLATFORM_ADMIN},
}


def allowed(role: str, permission: str) -> bool:
    """Whether ``role`` holds ``permission``."""
    try:
        return Role(role) in PERMISSIONS[permission]
    except ValueError:
        return False


def require(role: str, permission: str) -> None:
    """Raise :class:`Forbidden` unless ``role`` holds ``permission``."""
    if not allowed(role, permission):
        raise Forbidden(f"role {role!r} may not {permission}")
