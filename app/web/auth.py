"""Login, logout and institution self-registration."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from app.services import audit, tenants, users
from app.services.errors import DomainError, Unauthorized
from app.web.messages import localise
from app.web.security import current_actor

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    # Only same-site relative paths, so the login page is no open redirect.
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return url_for("studies.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in with username and password."""
    if request.method == "POST":
        cfg = current_app.config
        try:
            user = users.authenticate(
                request.form.get("username", "").strip(), request.form.get("password", ""),
                current_actor().source, cfg["PACS_LOCKOUT_FAILURES"],
                timedelta(minutes=cfg["PACS_LOCKOUT_MINUTES"]))
        except Unauthorized as exc:
            return render_template("auth/login.html", error=localise(exc.message),
                                   username=request.form.get("username", "")), 401
        login_user(user)
        if user.role == "platform-admin":
            return redirect(url_for("admin.tenants"))
        return redirect(_safe_next(request.args.get("next")))
    if current_user.is_authenticated:
        return redirect(url_for("admin.tenants") if current_user.tenant is None
                        else url_for("studies.index"))
    return render_template("auth/login.html")


@bp.route("/logout", methods=["POST"])
def logout():
    """Log out and return to the login page."""
    if current_user.is_authenticated:
        audit.record(current_user.tenant, current_actor(), "logout", commit=True)
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    """An institution applies for an account; a platform admin approves it."""
    if request.method == "POST":
        form = request.form
        try:
            users.validate_new(form.get("username", "").strip(), form.get("password", ""),
                               "tenant-admin")
            tenant = tenants.register(form.get("code", "").strip(), form.get("name", ""),
                                      form.get("ae_title", ""), form.get("contact", "")[:200],
                                      actor=current_actor())
            users.create(tenant, form.get("username", "").strip(), form.get("password", ""),
                         "tenant-admin", actor=current_actor())
        except DomainError as exc:
            return render_template("auth/register.html", error=localise(exc.message),
                                   form=form), 400
        flash(_("Application received. You can log in once a platform administrator approves it."))
        return redirect(url_for("auth.login"))
    return render_template("auth/register.html", form={})
