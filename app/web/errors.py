"""One error handler: domain errors and HTTP errors become readable pages or JSON."""
from __future__ import annotations

import logging

from flask import Flask, current_app, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.services.errors import DomainError
from app.web.filters import filesize
from app.web.messages import localise

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/dicom-web") or request.accept_mimetypes.best == "application/json"


def wants_partial() -> bool:
    """An htmx request for a fragment (not a boosted page navigation)."""
    return bool(request.headers.get("HX-Request")) and not request.headers.get("HX-Boosted")


def _respond(status: int, message: str):
    if _wants_json():
        return {"error": message, "status": status}, status
    template = "errors/_error.html" if wants_partial() else "errors/error.html"
    response = current_app.make_response(
        (render_template(template, status=status, message=message), status))
    response.headers["Vary"] = "HX-Request"
    response.headers["Cache-Control"] = "no-store"
    return response


def _http_message(exc: HTTPException) -> str:
    """A readable sentence for an HTTP error, in the user's language."""
    if isinstance(exc, CSRFError):
        return _("This form has expired or did not come from this site. "
                 "Reload the page and try again.")
    if exc.description and exc.description != type(exc).description:
        return localise(exc.description)  # a view's own explanation
    code = exc.code or 500
    if code == 413:
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        return _("The upload is too large: at most %(size)s can be sent at once. "
                 "Upload fewer files at a time.", size=filesize(limit) if limit else "?")
    return {
        400: _("The request could not be understood. Check the form or the address and try again."),
        401: _("Please log in first."),
        403: _("You do not have permission for this page."),
        404: _("The page or record does not exist, or it is not available to your institution."),
        405: _("This address does not accept that kind of request."),
        429: _("Too many requests. Wait a moment and try again."),
    }.get(code, _("Internal error; it has been logged.") if code >= 500 else _("Error"))


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        db.session.rollback()
        return _respond(exc.http_status, localise(exc.message))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code in (301, 302, 303, 307, 308):
            return exc
        if _wants_json():
            return _respond(exc.code or 500, exc.description or exc.name)
        return _respond(exc.code or 500, _http_message(exc))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, _("Internal error; it has been logged."))
