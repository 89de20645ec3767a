"""Who is asking: session login, bearer tokens, the current tenant and actor.

Tenancy is resolved once per request (``g.tenant``) from the authenticated
user; views pass it to services explicitly.
"""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import Flask, g, request, session
from flask_login import current_user

from app.extensions import db, login_manager
from app.models import Tenant, User
from app.services import permissions, users
from app.services.audit import Actor
from app.services.errors import Forbidden


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
        if user is None or not user.active:
            return None
        if user.tenant is not None and not user.tenant.approved:
            return None
        return user

    @login_manager.request_loader
    def load_from_token(req) -> User | None:
        header = req.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            user = users.user_for_token(header[7:].strip())
            if user is not None:
                g.auth_kind = "token"
            return user
        return None

    @app.before_request
    def _session_timeout() -> None:
        session.permanent = True  # PERMANENT_SESSION_LIFETIME is the idle timeout


def current_tenant() -> Tenant | None:
    """The tenant of the authenticated user (``None`` for platform admins)."""
    if not current_user.is_authenticated:
        return None
    return current_user.tenant


def current_actor() -> Actor:
    """The :class:`Actor` for audit events of this request."""
    source = request.headers.get("X-Real-IP") or request.remote_addr or ""
    if not current_user.is_authenticated:
        return Actor("-", "user", source)
    kind = g.get("auth_kind", "user")
    return Actor(current_user.username, kind, source, current_user.id, current_user.role)


def permission_required(permission: str) -> Callable:
    """View decorator: log in first, then require ``permission`` for the user's role."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not permissions.allowed(current_user.role, permission):
                raise Forbidden("you do not have permission for this page")
            if current_user.role != permissions.Role.PLATFORM_ADMIN.value:
                g.tenant = current_user.tenant
            return view(*args, **kwargs)

        return wrapped

    return decorator
