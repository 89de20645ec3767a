"""Jinja filters for DICOM values."""
from __future__ import annotations

from flask import Flask

from app.services import names


def dicom_date(value: str | None) -> str:
    """``20261101`` → ``2026-11-01``; anything else unchanged."""
    if value and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    return value or ""


def init_app(app: Flask) -> None:
    app.add_template_filter(dicom_date, "dicom_date")
    app.add_template_filter(names.display, "pn")
