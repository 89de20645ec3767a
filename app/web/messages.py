"""User-facing words the services speak in English, translated for the UI.

Services raise domain errors with plain English messages (they know nothing
of Flask or locales). The web shows them through :func:`localise`, which looks
the message up in the catalog; messages carrying a value (a username, an
exception class) are matched by pattern and translated with the value kept.
``N_`` only marks strings so ``pybabel extract`` puts them in the catalog.
"""
from __future__ import annotations

import re

from flask_babel import gettext
from flask_babel import lazy_gettext as _  # labels below are translated when shown


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark only"
    """Mark ``message`` for extraction; it is translated when shown."""
    return message


# Messages raised as-is by app/services (and Flask-Login).
SERVICE_MESSAGES = [
    N_("wrong username or password"),
    N_("account locked; try again later"),
    N_("platform-admin has no institution; every other role needs one"),
    N_("username must be 2–64 letters, digits or . _ @ -"),
    N_("password must have at least 8 characters"),
    N_("dates must be YYYYMMDD"),
    N_("Series Instance UID already belongs to another study"),
    N_("unsafe path in zip entry (absolute or '..'); skipped"),
    N_("zip entry inflates too much (zip bomb?); skipped"),
    N_("AE title must be 1–16 printable ASCII characters, no backslash"),
    N_("code must be 2–32 letters, digits, '-' or '_'"),
    N_("name is required"),
    N_("port must be 1–65535"),
    N_("not a DICOM Part 10 file (no 'DICM' prefix after the preamble)"),
    N_("missing or invalid Transfer Syntax UID in the file meta"),
    N_("truncated file: an element is shorter than its length"),
    N_("truncated file: image without pixel data"),
    N_("image attributes (Rows, Columns, BitsAllocated) are invalid"),
    N_("truncated file: pixel data shorter than Rows × Columns × frames"),
    N_("you do not have permission for this page"),
    N_("Study not found"),
    N_("Series not found"),
    N_("Instance not found"),
    N_("Patient not found"),
    N_("DicomPeer not found"),
    N_("Please log in to access this page."),
    # app/services/rendering.py (viewer frames, exports, DICOMweb rendered)
    N_("the instance has no image to render"),
    N_("the archive backend has no local files to render from"),
    N_("no such study, series or instance"),
    N_("no such study or series, or it has no images"),
    N_("this image cannot be shown"),
    N_("the image could not be rendered; try again"),
    N_("only a signed-in user can open the viewer"),
    N_("no such study"),
    N_("no such instance"),
    N_("this image link is not valid; reload the viewer"),
    N_("this image link has expired; reload the viewer"),
    N_("no render worker answered in time"),
]

# Messages with a value in them: (pattern of the English text, catalog template).
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^username (?P<name>.+) is taken$"), N_("username %(name)s is taken")),
    (re.compile(r"^role must be one of (?P<roles>.+)$"), N_("role must be one of %(roles)s")),
    (re.compile(r"^user (?P<name>\S+) not found in (?P<code>\S+)$"),
     N_("user %(name)s not found in %(code)s")),
    (re.compile(r"^institution code (?P<code>.+) is taken$"),
     N_("institution code %(code)s is taken")),
    (re.compile(r"^AE title (?P<ae>.+) is taken$"), N_("AE title %(ae)s is taken")),
    (re.compile(r"^institution (?P<code>.+) not found$"), N_("institution %(code)s not found")),
    (re.compile(r"^peer (?P<ae>.+) exists$"), N_("peer %(ae)s exists")),
    (re.compile(r"^cannot sort by (?P<key>.+)$"), N_("cannot sort by %(key)s")),
    (re.compile(r"^cannot parse DICOM: (?P<error>\w+)$"), N_("cannot parse DICOM: %(error)s")),
    (re.compile(r"^missing or invalid (?P<keyword>\w+)$"), N_("missing or invalid %(keyword)s")),
    (re.compile(r"^not a readable zip archive \((?P<error>\w+)\)$"),
     N_("not a readable zip archive (%(error)s)")),
    (re.compile(r"^corrupt zip entry \((?P<error>\w+)\)$"), N_("corrupt zip entry (%(error)s)")),
    (re.compile(r"^bad viewport parameters: (?P<detail>.+)$"),
     N_("bad viewport parameters: %(detail)s")),
    (re.compile(r"^role (?P<role>.+) may not (?P<permission>.+)$"),
     N_("role %(role)s may not %(permission)s")),
]


def localise(message: str) -> str:
    """``message`` in the user's language: catalog entry, pattern, or unchanged.

    Services write messages in lower case (they read as clauses in logs); on
    screen a message starts with a capital.
    """
    if not message:
        return ""
    message = str(message)
    translated = gettext(message)
    if translated == message:
        for pattern, template in _PATTERNS:
            match = pattern.match(message)
            if match:
                translated = gettext(template, **match.groupdict())
                break
    return translated[:1].upper() + translated[1:]


ROLE_LABELS = {
    "platform-admin": _("Platform administrator"),
    "tenant-admin": _("Institution administrator"),
    "registrar": _("Registrar"),
    "technician": _("Technician"),
    "radiologist": _("Radiologist"),
    "reviewer": _("Reviewing radiologist"),
    "clinician": _("Clinician"),
    "expert": _("Consulting expert"),
}

TENANT_STATUS_LABELS = {
    "pending": _("Pending"),
    "approved": _("Approved"),
    "suspended": _("Suspended"),
}

OUTCOME_LABELS = {
    "success": _("Success"),
    "failure": _("Failure"),
    "denied": _("Denied"),
}

SEX_LABELS = {"M": _("Male"), "F": _("Female"), "O": _("Other")}

OBJECT_LABELS = {
    "study": _("Study"), "series": _("Series"), "instance": _("Image"), "user": _("User"),
    "tenant": _("Institution"), "peer": _("DICOM peer"), "patient": _("Patient"),
}

ACTOR_LABELS = {"user": _("User"), "token": _("API token"), "dicom": "DICOM", "system": _("System")}

# Audit actions offered as filter suggestions; the filter matches by prefix.
ACTION_LABELS = {
    "login": _("Log in"),
    "logout": _("Log out"),
    "study.query": _("Study search"),
    "study.view": _("Study opened"),
    "study.": _("All study access"),
    "series.retrieve": _("Series retrieved"),
    "series.export": _("Series exported"),
    "instance.export": _("Image exported"),
    "instance.store": _("Image stored"),
    "instance.": _("All image events"),
    "user.create": _("User created"),
    "token.create": _("API token created"),
    "tenant.register": _("Institution registered"),
    "tenant.approved": _("Institution approved"),
    "tenant.suspended": _("Institution suspended"),
    "peer.add": _("DICOM peer added"),
}


def label(mapping: dict, key: str | None) -> str:
    """``mapping[key]`` as text, or ``key`` itself when it has no label."""
    value = mapping.get(key or "")
    return str(value) if value is not None else (key or "")
