"""DICOMweb routes (PS3.18 Studies Service): QIDO-RS, WADO-RS and STOW-RS.

Views parse the URL and headers and hand over to :mod:`qido`, :mod:`wado`
and :mod:`stow`. Callers authenticate with a session or a bearer token; an
API client is never redirected to a login page: no credentials is 401, a
role without the permission is 403, and another tenant's UIDs are simply not
found (404 or an empty result).
"""
from __future__ import annotations

from functools import wraps
from typing import Callable

from flask import Blueprint, Response, current_app, g, jsonify, request
from flask_login import current_user

from app.dicomweb import qido, stow, wado
from app.extensions import csrf
from app.services import permissions
from app.services.query import Level
from app.web.security import current_actor

bp = Blueprint("dicomweb", __name__, url_prefix="/dicom-web")

_STUDY = "/studies/<study>"
_SERIES = _STUDY + "/series/<series>"
_INSTANCE = _SERIES + "/instances/<sop>"


def _error(status: int, message: str) -> Response:
    response = jsonify(error=message, status=status)
    response.status_code = status
    return response


def api_permission(permission: str) -> Callable:
    """Require an authenticated user of a tenant holding ``permission``; sets ``g.tenant``."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                response = _error(401, "authentication required (session or bearer token)")
                response.headers["WWW-Authenticate"] = 'Bearer realm="dicom-web"'
                return response
            if current_user.tenant is None or \
                    not permissions.allowed(current_user.role, permission):
                return _error(403, "your role may not do this")
            g.tenant = current_user.tenant
            return view(*args, **kwargs)

        return wrapped

    return decorator


def _base() -> str:
    """Absolute URL of this service, for Retrieve URLs and BulkDataURIs.

    ``PACS_DICOMWEB_URL`` names the public URL where the Host header cannot
    (a proxy rewriting it, or clients that send it without the port).
    """
    configured = current_app.config.get("PACS_DICOMWEB_URL", "")
    return configured.rstrip("/") if configured else \
        request.url_root.rstrip("/") + (bp.url_prefix or "")


@bp.after_request
def _cors(response: Response) -> Response:
    """CORS for viewers (OHIF) served from a configured origin; none by default."""
    origin = request.headers.get("Origin", "")
    allowed = {o.strip() for o in current_app.config.get("PACS_CORS_ORIGINS", "").split(",")
               if o.strip()}
    if not origin or not (origin in allowed or "*" in allowed):
        return response
    response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
    response.vary.add("Origin")
    response.headers["Access-Control-Expose-Headers"] = "Content-Type, Content-Length, Warning"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = \
            "Authorization, Accept, Content-Type, X-CSRFToken, X-Requested-With"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


# --------------------------------------------------------------------------- QIDO-RS


def _search(level: Level, **path: str) -> Response:
    search = qido.parse(level, request.args, path,
                        int(current_app.config.get("PACS_QIDO_MAX_RESULTS", 1000)))
    results, more = qido.run(g.tenant, search, _base(), current_actor())
    return qido.respond(results, more, search)


@bp.get("/studies")
@api_permission(permissions.STUDY_READ)
def search_studies():
    """QIDO-RS: search for studies."""
    return _search(Level.STUDY)


@bp.get("/series")
@bp.get(_STUDY + "/series")
@api_permission(permissions.STUDY_READ)
def search_series(study: str = ""):
    """QIDO-RS: search for series (of all studies or of one)."""
    return _search(Level.SERIES, **({"StudyInstanceUID": study} if study else {}))


@bp.get("/instances")
@bp.get(_STUDY + "/instances")
@bp.get("/series/<series>/instances")
@bp.get(_SERIES + "/instances")
@api_permission(permissions.STUDY_READ)
def search_instances(study: str = "", series: str = ""):
    """QIDO-RS: search for instances (of all studies, a study or a series)."""
    path = {k: v for k, v in (("StudyInstanceUID", study), ("SeriesInstanceUID", series)) if v}
    return _search(Level.IMAGE, **path)


# --------------------------------------------------------------------------- WADO-RS


@bp.get(_STUDY)
@bp.get(_SERIES)
@bp.get(_INSTANCE)
@api_permission(permissions.STUDY_READ)
def retrieve(study: str, series: str = "", sop: str = ""):
    """WADO-RS: a study, series or instance as multipart/related application/dicom."""
    return wado.retrieve_instances(g.tenant, current_actor(), _accept(), study, series, sop)


@bp.get(_STUDY + "/metadata")
@bp.get(_SERIES + "/metadata")
@bp.get(_INSTANCE + "/metadata")
@api_permission(permissions.STUDY_READ)
def metadata(study: str, series: str = "", sop: str = ""):
    """WADO-RS: metadata of a study, series or instance as application/dicom+json."""
    return wado.metadata(g.tenant, current_actor(), _base(), study, series, sop)


@bp.get(_INSTANCE + "/frames/<frame_list>")
@api_permission(permissions.STUDY_READ)
def frames(study: str, series: str, sop: str, frame_list: str):
    """WADO-RS: frames of an instance."""
    return wado.frames(g.tenant, current_actor(), _accept(), study, series, sop, frame_list)


@bp.get(_INSTANCE + "/bulkdata/<tag>")
@api_permission(permissions.STUDY_READ)
def bulkdata(study: str, series: str, sop: str, tag: str):
    """WADO-RS: the value of one bulk data attribute."""
    return wado.bulkdata(g.tenant, current_actor(), _accept(), study, series, sop, tag)


def _accept() -> str:
    # PS3.18 §8.3.3.1: an "accept" query parameter overrides the Accept header.
    return request.args.get("accept") or request.headers.get("Accept", "")


# --------------------------------------------------------------------------- STOW-RS


@bp.post("/studies")
@bp.post(_STUDY)
@api_permission(permissions.STUDY_WRITE)
def store(study: str = ""):
    """STOW-RS: store the instances of a multipart/related request."""
    if g.get("auth_kind") != "token" and current_app.config.get("WTF_CSRF_ENABLED", True):
        csrf.protect()  # a browser session must prove the page is ours (X-CSRFToken)
    outcome = stow.store(g.tenant, current_actor(), request.content_type or "", request.stream,
                         _base(), study)
    return stow.response(outcome, _base())


# Rendered and thumbnail resources register their routes on ``bp``.
from app.dicomweb import rendered  # noqa: F401
