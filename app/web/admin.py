"""Administration: institutions (platform admin), users, DICOM peers, audit trail."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.models import TenantStatus
from app.services import audit, permissions, tenants, users
from app.services.errors import Invalid
from app.web.security import current_actor, permission_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/tenants", endpoint="tenants")
@permission_required(permissions.PLATFORM_ADMIN)
def tenants_page():
    """All institutions with their approval state."""
    return render_template("admin/tenants.html", tenants=tenants.list_all())


@bp.route("/tenants/<code>/status", methods=["POST"])
@permission_required(permissions.PLATFORM_ADMIN)
def tenant_status(code: str):
    """Approve or suspend an institution."""
    try:
        status = TenantStatus(request.form.get("status", ""))
    except ValueError as exc:
        raise Invalid(_("unknown status")) from exc
    tenants.set_status(code, status, current_actor())
    flash(_("Institution %(code)s is now %(status)s", code=code, status=status.value))
    return redirect(url_for("admin.tenants"))


@bp.route("/users", methods=["GET", "POST"])
@permission_required(permissions.TENANT_ADMIN)
def users_page():
    """The institution's users; add one."""
    if request.method == "POST":
        form = request.form
        users.create(g.tenant, form.get("username", "").strip(), form.get("password", ""),
                     form.get("role", ""), form.get("display_name", ""), current_actor())
        flash(_("User created"))
        return redirect(url_for("admin.users_page"))
    return render_template("admin/users.html", users=users.of_tenant(g.tenant), roles=[
        r for r in permissions.ROLE_NAMES if r != permissions.Role.PLATFORM_ADMIN.value])


@bp.route("/peers", methods=["GET", "POST"])
@permission_required(permissions.TENANT_ADMIN)
def peers_page():
    """DICOM peers: C-MOVE destinations and allowed callers."""
    if request.method == "POST":
        form = request.form
        try:
            port = int(form.get("port", "0") or 0)
        except ValueError as exc:
            raise Invalid(_("port must be a number")) from exc
        tenants.add_peer(g.tenant, form.get("ae_title", ""), form.get("host", ""), port,
                         form.get("description", "")[:200], current_actor())
        flash(_("Peer added"))
        return redirect(url_for("admin.peers_page"))
    return render_template("admin/peers.html", peers=tenants.peers(g.tenant), tenant=g.tenant)


@bp.route("/audit")
@permission_required(permissions.AUDIT_READ)
def audit_page():
    """Browse and filter the audit trail."""
    args = request.args
    since = _date(args.get("since", ""))
    until = _date(args.get("until", ""))
    page = max(1, int(args.get("page", "1")) if args.get("page", "1").isdigit() else 1)
    tenant = g.get("tenant") if current_user.role != permissions.Role.PLATFORM_ADMIN.value else None
    events, total = audit.browse(tenant, args.get("action", "")[:40], args.get("actor", "")[:80],
                                 args.get("outcome", "")[:16], since, until, 100, (page - 1) * 100)
    template = "admin/_audit_rows.html" if request.headers.get("HX-Request") and \
        request.headers.get("HX-Target") == "audit-rows" else "admin/audit.html"
    return render_template(template, events=events, total=total, page=page, args=args)


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise Invalid(_("dates must be YYYY-MM-DD")) from exc
