"""Shared helpers and fixtures of the DICOMweb tests (imported by the test modules).

Multipart bodies in tests are decoded with the standard library's email
parser, independently of :mod:`app.dicomweb.multipart`, so an encoder bug
cannot hide behind the matching parser bug.
"""
from __future__ import annotations


import email
import email.policy
from dataclasses import dataclass

import pytest

from app.models import Tenant
from app.services import tenants, users
from tests.conftest import PASSWORD

DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


def bearer(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


def stow_body(parts: list[bytes], boundary: str = "b0undary-7f3a",
              part_type: str = "application/dicom") -> tuple[bytes, str]:
    """A STOW-RS request body and its Content-Type."""
    body = b"".join(b"--" + boundary.encode() + b"\r\nContent-Type: " + part_type.encode()
                    + b"\r\n\r\n" + data + b"\r\n" for data in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    return body, f'multipart/related; type="application/dicom"; boundary={boundary}'


def decode_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """``(part Content-Type, body)`` of each part, decoded by the stdlib email parser."""
    assert content_type.startswith("multipart/related"), content_type
    head = b"Content-Type: " + content_type.encode() + b"\r\n\r\n"
    message = email.message_from_bytes(head + body, policy=email.policy.compat32)
    assert message.is_multipart()
    return [(part["Content-Type"], part.get_payload(decode=True) or b"")
            for part in message.get_payload()]


def parts_of(response) -> list[tuple[str, bytes]]:
    """Decode a Flask test-client or requests response."""
    body = response.get_data() if hasattr(response, "get_data") else response.content
    return decode_multipart(response.headers["Content-Type"], body)


@dataclass
class Api:
    """Two institutions; bearer tokens of their radiologists and of HOSPA's clinician."""

    a: Tenant
    b: Tenant
    token_a: str
    token_b: str
    clinician_a: str
    doctor_a: str = "hospa-doctor"  # password conftest.PASSWORD, for session tests


def make_api() -> Api:
    """Like ``two_tenants`` with only the users these tests need (password hashing is slow)."""
    a, b = (tenants.register(code, f"{code} 医院", code, approve=True) for code in ("HOSPA", "HOSPB"))
    for tenant, username, role in ((a, "hospa-doctor", "radiologist"),
                                   (a, "hospa-clinician", "clinician"),
                                   (b, "hospb-doctor", "radiologist")):
        users.create(tenant, username, PASSWORD, role)
    return Api(a, b, users.create_token(a, "hospa-doctor"), users.create_token(b, "hospb-doctor"),
               users.create_token(a, "hospa-clinician"))


@pytest.fixture
def api(app) -> Api:
    """:func:`make_api` on each database backend."""
    return make_api()


@pytest.fixture
def sqlite_api(sqlite_app) -> Api:
    """:func:`make_api` on SQLite only, for tests whose subject is not the database."""
    return make_api()


class Client:
    """A test client whose every request runs in an app context of its own.

    The ``app`` fixtures keep one app context pushed for the whole test, and
    Flask reuses it for test-client requests, so ``g`` — and Flask-Login's
    cached user in it — would leak from one request into the next (a token of
    tenant A answering a later request made with tenant B's token). Production
    requests never share ``g``; neither do these.
    """

    def __init__(self, app) -> None:
        self.app, self.client = app, app.test_client()

    def open(self, *args, **kwargs):
        with self.app.app_context():
            response = self.client.open(*args, **kwargs)
            response.get_data()  # run the streamed body inside the request's context
        return response

    def get(self, *args, **kwargs):
        return self.open(*args, method="GET", **kwargs)

    def post(self, *args, **kwargs):
        return self.open(*args, method="POST", **kwargs)

    def options(self, *args, **kwargs):
        return self.open(*args, method="OPTIONS", **kwargs)


@pytest.fixture
def web(app) -> Client:
    return Client(app)


@pytest.fixture
def sqlite_web(sqlite_app) -> Client:
    return Client(sqlite_app)
