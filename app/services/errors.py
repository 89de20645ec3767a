"""Domain errors raised by services.

The web maps them to pages and HTTP statuses in one error handler; the
DICOM node maps them to DIMSE statuses.
"""
from __future__ import annotations


class DomainError(Exception):
    """Base class; ``message`` is safe to show a user (no stack, no PHI)."""

    http_status = 400

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message or self.__class__.__name__


class NotFound(DomainError):
    http_status = 404


class Forbidden(DomainError):
    http_status = 403


class Conflict(DomainError):
    http_status = 409


class Invalid(DomainError):
    """Input that cannot be understood (bad DICOM, bad form data, bad query)."""

    http_status = 400


class Unauthorized(DomainError):
    http_status = 401
