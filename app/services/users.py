"""Users: creation, password login with lockout, API tokens."""
from __future__ import annotations

import hashlib
import re
import secrets
from datetime import timedelta

import sqlalchemy as sa
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from app.models import ApiToken, Tenant, User
from app.models.base import utcnow
from app.services import audit
from app.services.audit import Actor
from app.services.errors import Conflict, Invalid, NotFound, Unauthorized
from app.services.permissions import ROLE_NAMES, Role

_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
# A hash to compare against when the user does not exist, so timing does not tell.
_DUMMY_HASH = generate_password_hash("not-a-password", method="scrypt")


def create(tenant: Tenant | None, username: str, password: str, role: str,
           display_name: str = "", actor: Actor = audit.SYSTEM) -> User:
    """Create a user; platform admins have no tenant, every other role needs one."""
    if (role == Role.PLATFORM_ADMIN.value) != (tenant is None):
        raise Invalid("platform-admin has no institution; every other role needs one")
    validate_new(username, password, role)
    user = User(
        tenant_id=tenant.id if tenant else None, username=username, role=role,
        display_name=display_name or username,
        password_hash=generate_password_hash(password, method="scrypt"),
    )
    db.session.add(user)
    audit.record(tenant, actor, "user.create", "user", username, detail=role)
    db.session.commit()
    return user


def validate_new(username: str, password: str, role: str) -> None:
    """Raise :class:`Invalid`/:class:`Conflict` if this user could not be created."""
    if not _USERNAME.match(username or ""):
        raise Invalid("username must be 2–64 letters, digits or . _ @ -")
    if role not in ROLE_NAMES:
        raise Invalid(f"role must be one of {', '.join(ROLE_NAMES)}")
    if len(password or "") < 8:
        raise Invalid("password must have at least 8 characters")
    if db.session.execute(sa.select(User.id).where(User.username == username)).first():
        raise Conflict(f"username {username} is taken")


def set_password(user: User, password: str) -> None:
    if len(password or "") < 8:
        raise Invalid("password must have at least 8 characters")
    user.password_hash = generate_password_hash(password, method="scrypt")
    db.session.commit()


def of_tenant(tenant: Tenant) -> list[User]:
    stmt = sa.select(User).where(User.tenant_id == tenant.id).order_by(User.username)
    return list(db.session.execute(stmt).scalars())


def by_username(username: str) -> User | None:
    return db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()


def authenticate(username: str, password: str, source: str, max_failures: int = 5,
                 lockout: timedelta = timedelta(minutes=15)) -> User:
    """Check a password; lock the account after ``max_failures`` consecutive failures.

    Raises :class:`Unauthorized` with one message for every failure, so the
    response does not tell whether a username exists.
    """
    user = by_username(username or "")
    now = utcnow()
    actor = Actor(username[:80] if username else "-", "user", source)
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        audit.record(None, actor, "login", outcome="failure", detail="unknown user", commit=True)
        raise Unauthorized("wrong username or password")
    tenant = user.tenant
    if user.locked_until and user.locked_until > now:
        audit.record(tenant, actor, "login", outcome="denied", detail="locked", commit=True)
        raise Unauthorized("account locked; try again later")
    if not user.active or (tenant is not None and not tenant.approved):
        audit.record(tenant, actor, "login", outcome="denied", detail="inactive", commit=True)
        raise Unauthorized("wrong username or password")
    if not check_password_hash(user.password_hash, password or ""):
        user.failed_logins += 1
        if user.failed_logins >= max_failures:
            user.locked_until = now + lockout
            user.failed_logins = 0
        audit.record(tenant, actor, "login", outcome="failure", commit=True)
        raise Unauthorized("wrong username or password")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(tenant, actor, "login", commit=True)
    return user


def create_token(tenant: Tenant, username: str, name: str = "",
                 actor: Actor = audit.SYSTEM) -> str:
    """Create an API token for a user of ``tenant``; return the token (shown once)."""
    user = by_username(username)
    if user is None or user.tenant_id != tenant.id:
        raise NotFound(f"user {username} not found in {tenant.code}")
    token = "pacs_" + secrets.token_urlsafe(32)
    db.session.add(ApiToken(tenant_id=tenant.id, user_id=user.id, name=name,
                            token_hash=_token_hash(token)))
    audit.record(tenant, actor, "token.create", "user", username)
    db.session.commit()
    return token


def user_for_token(token: str) -> User | None:
    """The active user behind a bearer token, or ``None``."""
    # One statement for token, user and institution: this runs on every API request.
    row = db.session.execute(
        sa.select(ApiToken.revoked, User, Tenant)
        .join(User, ApiToken.user_id == User.id).join(Tenant, User.tenant_id == Tenant.id)
        .where(ApiToken.token_hash == _token_hash(token))
    ).one_or_none()
    if row is None:
        return None
    revoked, user, tenant = row
    if revoked or not user.active or not tenant.approved:
        return None
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
