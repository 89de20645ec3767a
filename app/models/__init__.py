"""SQLAlchemy models; importing this package registers every table."""
from app.models.annotation import Annotation, KeyImage  # noqa: F401 (viewer)
from app.models.archive import Instance, Patient, Series, Study
from app.models.audit import AuditEvent
from app.models.tenant import ApiToken, DicomPeer, Tenant, TenantAE, TenantStatus, User

__all__ = [
    "ApiToken", "AuditEvent", "DicomPeer", "Instance", "Patient", "Series", "Study",
    "Tenant", "TenantAE", "TenantStatus", "User",
]
