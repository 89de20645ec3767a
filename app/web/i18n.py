"""Simplified Chinese by default, English switchable (cookie ``lang``)."""
from __future__ import annotations

from flask import Flask, redirect, request
from flask_babel import get_locale

LANGUAGES = {"zh": "简体中文", "en": "English"}


def select_locale() -> str:
    lang = request.args.get("lang") or request.cookies.get("lang")
    return lang if lang in LANGUAGES else "zh"


def init_app(app: Flask) -> None:
    @app.route("/lang/<code>")
    def set_language(code: str):
        """Switch the UI language and go back where the user was."""
        # Back to the page the link was on, but only on this site (no open redirect).
        target = request.referrer or "/"
        if target.startswith(request.host_url):
            target = "/" + target[len(request.host_url):]
        if not target.startswith("/") or target.startswith("//") or target.startswith("/\\"):
            target = "/"
        response = redirect(target)
        if code in LANGUAGES:
            response.set_cookie("lang", code, max_age=365 * 86400, samesite="Lax")
        return response

    @app.context_processor
    def languages():
        return {"LANGUAGES": LANGUAGES, "current_locale": str(get_locale())}
