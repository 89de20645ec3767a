"""Jinja filters and globals: DICOM values, labels in the user's language."""
from __future__ import annotations

from flask import Flask, current_app, request, url_for

from flask_login import current_user

from app.services import names, permissions
from app.web import messages


def person_name(pn: str | None) -> str:
    """A PN as people read it: ``Zhang^San=张^三`` → ``张三``, ``Smith^John`` → ``Smith John``.

    Chinese names are written without a space between family and given name.
    """
    return names.display(pn or "")


def patient_name(patient) -> str:
    """The display name of a :class:`~app.models.Patient`."""
    return person_name(patient.name)


def dicom_date(value: str | None) -> str:
    """``20261101`` → ``2026-11-01``; anything else unchanged."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""


def dicom_time(value: str | None) -> str:
    """``101500.123`` → ``10:15``; anything else unchanged."""
    if value and len(value) >= 4 and value[:4].isdigit():
        return f"{value[:2]}:{value[2:4]}"
    return value or ""


def age(birth: str | None, at: str | None) -> int | None:
    """Whole years between two DICOM dates (``at`` is the study date), or ``None``."""
    if not (birth and at and len(birth) == 8 and len(at) == 8 and birth.isdigit() and at.isdigit()):
        return None
    years = int(at[:4]) - int(birth[:4]) - (at[4:] < birth[4:])
    return years if 0 <= years < 150 else None


def filesize(value: int | float | None) -> str:
    """Bytes in a short human form: ``2.0 GB``."""
    size = float(value or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def viewer_url(study_uid: str) -> str | None:
    """The image viewer's URL for a study, or ``None`` while no viewer is installed.

    The viewer lives at ``/viewer/<StudyInstanceUID>`` once its blueprint is
    registered; until then the study list links nowhere rather than to a 404.
    """
    endpoint = current_app.extensions.get("pacs_viewer_endpoint", False)
    if endpoint is False:
        endpoint = None
        for rule in current_app.url_map.iter_rules():
            if rule.rule.startswith("/viewer/<") and len(rule.arguments) == 1 and \
                    "GET" in (rule.methods or ()):
                endpoint = (rule.endpoint, next(iter(rule.arguments)))
                break
        current_app.extensions["pacs_viewer_endpoint"] = endpoint
    if endpoint is None:
        return None
    return url_for(endpoint[0], **{endpoint[1]: study_uid})


def is_active(*prefixes: str) -> bool:
    """Whether the current endpoint starts with one of ``prefixes`` (navigation highlight)."""
    endpoint = request.endpoint or ""
    return any(endpoint == p or endpoint.startswith(p + ".") for p in prefixes)


def can(permission: str) -> bool:
    """Whether the logged-in user holds ``permission`` (to show or hide links)."""
    return current_user.is_authenticated and permissions.allowed(current_user.role, permission)


def init_app(app: Flask) -> None:
    app.add_template_filter(dicom_date, "dicom_date")
    app.add_template_filter(dicom_time, "dicom_time")
    app.add_template_filter(person_name, "pn")
    app.add_template_filter(filesize, "filesize")
    app.add_template_global(age, "age")
    app.add_template_filter(messages.localise, "msg")
    app.add_template_filter(lambda v: messages.label(messages.SEX_LABELS, v), "sex")
    app.add_template_filter(lambda v: messages.label(messages.ROLE_LABELS, v), "role_label")
    app.add_template_filter(lambda v: messages.label(messages.TENANT_STATUS_LABELS, v),
                            "status_label")
    app.add_template_filter(lambda v: messages.label(messages.OUTCOME_LABELS, v), "outcome_label")
    app.add_template_filter(lambda v: messages.label(messages.ACTION_LABELS, v), "action_label")
    app.add_template_filter(lambda v: messages.label(messages.OBJECT_LABELS, v), "object_label")
    app.add_template_filter(lambda v: messages.label(messages.ACTOR_LABELS, v), "actor_label")
    app.add_template_global(viewer_url, "viewer_url")
    app.add_template_global(is_active, "is_active")
    app.add_template_global(can, "can")
    app.add_template_global(messages.ACTION_LABELS, "ACTION_LABELS")
