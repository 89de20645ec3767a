"""One error handler: domain errors and HTTP errors become readable pages or JSON."""
from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from app.extensions import db
from app.services.errors import DomainError

log = logging.getLogger(__name__)


def _wants_json() -> bool:
    return request.path.startswith("/dicom-web") or request.accept_mimetypes.best == "application/json"


def _respond(status: int, message: str):
    if _wants_json():
        return {"error": message, "status": status}, status
    template = "errors/_error.html" if request.headers.get("HX-Request") else "errors/error.html"
    return render_template(template, status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        db.session.rollback()
        return _respond(exc.http_status, exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code in (301, 302, 303, 307, 308):
            return exc
        return _respond(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _respond(500, _("Internal error; it has been logged."))
