"""Administration: institutions (platform admin), users, DICOM peers, audit trail."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.extensions import db
from app.models import TenantStatus
from app.models.base import utcnow
from app.services import audit, permissions, tenants, users
from app.services.errors import DomainError, Invalid
from app.web.messages import TENANT_STATUS_LABELS, localise
from app.web.security import current_actor, permission_required

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_PAGE_SIZE = 100


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
    flash(_("Institution %(code)s is now %(status)s", code=code,
            status=TENANT_STATUS_LABELS[status.value]))
    return redirect(url_for("admin.tenants"))


def _roles() -> list[str]:
    # Least privilege first-come: the institution-admin role is offered last, never by default.
    roles = [r for r in permissions.ROLE_NAMES if r != permissions.Role.PLATFORM_ADMIN.value]
    return sorted(roles, key=lambda r: r == permissions.Role.TENANT_ADMIN.value)


@bp.route("/users", methods=["GET", "POST"])
@permission_required(permissions.TENANT_ADMIN)
def users_page():
    """The institution's users; add one."""
    error, status = "", 200
    if request.method == "POST":
        form = request.form
        try:
            users.create(g.tenant, form.get("username", "").strip(), form.get("password", ""),
                         form.get("role", ""), form.get("display_name", "").strip()[:80],
                         current_actor())
        except DomainError as exc:
            db.session.rollback()
            error, status = localise(exc.message), 400
        else:
            flash(_("User %(name)s created", name=form.get("username", "").strip()))
            return redirect(url_for("admin.users_page"))
    return render_template("admin/users.html", users=users.of_tenant(g.tenant), roles=_roles(),
                           error=error, form=request.form, now=utcnow()), status


@bp.route("/peers", methods=["GET", "POST"])
@permission_required(permissions.TENANT_ADMIN)
def peers_page():
    """DICOM peers: C-MOVE destinations and allowed callers."""
    error, status = "", 200
    if request.method == "POST" and request.form.get("action") == "callers":
        tenants.set_calling_ae_restriction(g.tenant, request.form.get("restrict") == "1",
                                           current_actor())
        flash(_("Only registered peers may now send and query.") if g.tenant.restrict_calling_aes
              else _("Any DICOM AE may now send and query."))
        return redirect(url_for("admin.peers_page"))
    if request.method == "POST":
        form = request.form
        try:
            try:
                port = int(form.get("port", "0") or 0)
            except ValueError as exc:
                raise Invalid(_("port must be a number")) from exc
            tenants.add_peer(g.tenant, form.get("ae_title", ""), form.get("host", ""), port,
                             form.get("description", "")[:200], current_actor())
        except DomainError as exc:
            db.session.rollback()
            error, status = localise(exc.message), 400
        else:
            flash(_("DICOM peer %(ae)s added", ae=form.get("ae_title", "").strip()))
            return redirect(url_for("admin.peers_page"))
    return render_template("admin/peers.html", peers=tenants.peers(g.tenant), tenant=g.tenant,
                           error=error, form=request.form), status


@bp.route("/audit")
@permission_required(permissions.AUDIT_READ)
def audit_page():
    """Browse and filter the audit trail."""
    args = request.args
    since = _date(args.get("since", ""))
    until = _date(args.get("until", ""))
    page = int(args["page"]) if args.get("page", "").isdigit() and int(args["page"]) > 0 else 1
    tenant = g.get("tenant") if current_user.role != permissions.Role.PLATFORM_ADMIN.value else None
    events, total = audit.browse(
        tenant, args.get("action", "").strip()[:40], args.get("actor", "").strip()[:80],
        args.get("outcome", "")[:16], since, until + timedelta(days=1) if until else None,
        AUDIT_PAGE_SIZE, (page - 1) * AUDIT_PAGE_SIZE)
    partial = request.headers.get("HX-Request") == "true" and \
        request.headers.get("HX-Target") == "audit-rows"
    template = "admin/_audit_rows.html" if partial else "admin/audit.html"
    filters = {k: args.get(k, "") for k in ("action", "actor", "outcome", "since", "until")}
    tenant_codes = {t.id: t.code for t in tenants.list_all()} if tenant is None else None
    response = make_response(render_template(
        template, events=events, total=total, page=page, filters=filters,
        link_filters={k: v for k, v in filters.items() if v},
        pages=max(1, -(-total // AUDIT_PAGE_SIZE)), tenant_codes=tenant_codes))
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise Invalid(_("dates must be YYYY-MM-DD")) from exc
