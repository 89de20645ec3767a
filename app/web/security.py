"""Who is asking: session login, bearer tokens, the current tenant and actor.

Tenancy is resolved once per request (``g.tenant``) from the authenticated
user; views pass it to services explicitly.
"""
from __future__ import annotations

from functools import wraps
from typing import Callable
from urllib.parse import urlparse

from flask import Flask, g, make_response, request, session, url_for
from flask_babel import gettext
from flask_login import current_user

from app.extensions import db, login_manager
from app.models import Tenant, User
from app.services import permissions, users
from app.services.audit import Actor
from app.services.errors import Forbidden


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.login_message = "Please log in to access this page."  # in messages.py
    login_manager.login_message_category = "info"
    login_manager.localize_callback = gettext

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
        # PERMANENT_SESSION_LIFETIME is the idle timeout; token clients get no session.
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            session.permanent = True

    @app.after_request
    def _privacy_headers(response):
        # Study-list URLs carry search terms (patient names); never send them to other sites.
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


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
                if request.headers.get("HX-Request"):
                    return _htmx_login_redirect()
                return login_manager.unauthorized()
            if not permissions.allowed(current_user.role, permission):
                raise Forbidden("you do not have permission for this page")
            if current_user.role != permissions.Role.PLATFORM_ADMIN.value:
                g.tenant = current_user.tenant
            return view(*args, **kwargs)

        wrapped.required_permission = permission  # read by the route-walk test
        return wrapped

    return decorator


def _htmx_login_redirect():
    # An expired session during an htmx swap: send the whole page to the login
    # form (HX-Redirect), not the login page into a table cell.
    page = urlparse(request.headers.get("HX-Current-URL", ""))
    if page.path and (not page.netloc or page.netloc == request.host):
        target = page.path + (f"?{page.query}" if page.query else "")
    else:
        target = request.full_path.rstrip("?")
    response = make_response("", 200)
    response.headers["HX-Redirect"] = url_for("auth.login", next=target)
    return response
